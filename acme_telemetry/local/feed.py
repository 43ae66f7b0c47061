"""The dashboard feed: consumer `acme-dashboard` (all partitions, from the end) -> KPI windows -> the hub.

Events are grouped into tumbling event-time windows of `window_s` seconds
(acme_telemetry.kpis.KpiWindow). A window closes when the watermark passes its end:
the watermark is the smallest, over the partitions that are delivering, of the largest
event time seen on that partition, minus `lateness_s` (so one partition running ahead of
another does not close a window early). When nothing arrives for `idle_flush_s` seconds of
wall clock, every open window closes. A closed window becomes one `kpi` message: its
mergeable state (kpis.WindowState.wire(), protocol v2), cut into slice-disjoint parts only
if it would exceed the 32 KB frame. An event for an already closed window is counted as
late and goes into a late part of that window (`part` "late-N"), sent on the next tick:
the page merges parts per window key, so a late event is counted, once, instead of lost.

Concurrent viewers weigh each beat by the heartbeat interval (`heartbeat_ms`, the
simulator's), see acme_telemetry.kpis.

Notable events (kpis.is_notable: errors, long rebuffers) are published as `feed` messages,
PII-free (protocol.feed_item), at most once per `feed_every_s`.

The sink is anything with publish_threadsafe(data: bytes, kind: str), e.g. local.hub.Hub.
"""

from __future__ import annotations

import logging
import operator
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import msgspec
import orjson

from acme_telemetry import kpis, protocol, schema
from acme_telemetry.kafka import KafkaSettings, make_consumer
from acme_telemetry.schema import TOPIC
from acme_telemetry.times import EPOCH, ms_of_iso, parse_datetime

log = logging.getLogger(__name__)

GROUP_ID = "acme-dashboard"
LAG_EVERY_S = 0.1  # how often the feed's lag is refreshed (the lake writer's cadence too)
LONG_REBUFFER_MS = kpis.LONG_REBUFFER_MS
_US = timedelta(microseconds=1)


class Sink(Protocol):
    def publish_threadsafe(self, data: bytes, kind: str) -> None: ...


is_notable = kpis.is_notable

# The fields the KPIs read, as a msgspec Struct: one typed decode per record reads and
# type-checks them (about 1.4 us for a 1 KB event, half an orjson.loads into a dict) and
# skips the rest. A record it refuses (a type, a missing field) takes the dict path
# (KpiAggregator.add), which counts it exactly as before: rejected, late or unparseable.
#
# event_type and the slice dimensions decode as Literals of the values met so far
# (_KpiDecoder): msgspec then hands out the same str object for a value every time, so its
# hash is cached and the slice-key lookups compare by identity (0.2-0.35 CPU-us per event
# less than a new str per field). A value not met yet makes the typed decode refuse the
# record: the dict path counts it, as any refused record, and the value joins its
# dimension's vocabulary. Past VOCABULARY_CAP values a dimension decodes as a plain str
# (learning costs up to ~0.55 ms a value then: at most about half a second per dimension, once).
VOCABULARY_CAP = 1000
_VOCABULARY_FIELDS: tuple[str, ...] = ("event_type", *kpis.SLICE_DIMENSIONS)
_SEEDS: dict[str, tuple[str, ...]] = {
    "event_type": schema.EVENT_TYPES,
    "device_type": schema.DEVICE_TYPES,
    "connection_type": schema.CONNECTION_TYPES,
}


class _KpiDecoder:
    """The typed decode of the KPI fields, with the vocabulary it has learned (see above)."""

    def __init__(self) -> None:
        self.vocabulary: dict[str, set[str]] = {f: set(_SEEDS.get(f, ("",))) for f in _VOCABULARY_FIELDS}
        self.decode: Callable[[bytes], Any] = self._build()

    def _build(self) -> Callable[[bytes], Any]:
        def kind(name: str) -> Any:
            values = self.vocabulary[name]
            return Literal[tuple(sorted(values))] if len(values) <= VOCABULARY_CAP else str

        struct = msgspec.defstruct(
            "KpiFields",
            [
                ("event_timestamp", str),
                ("session_id", str),
                ("event_type", kind("event_type")),
                ("video_started", bool),
                ("played_ms", int),
                ("stalled_ms", int),
                ("played_bitrate_kbps", int),
                *((d, kind(d)) for d in kpis.REQUIRED_DIMENSIONS),
                *((d, kind(d) | None, None) for d in kpis.OPTIONAL_DIMENSIONS),
                ("startup_time_ms", int | None, None),
                ("fatal", bool | None, None),
            ],
            gc=False,  # only str, int, bool and None inside: no cycle to find, so not tracked by the collector
        )
        return msgspec.json.Decoder(struct).decode

    def learn(self, event: dict[str, Any]) -> bool:
        """Add the event's new str values to the vocabulary; True if the decode was rebuilt."""
        new = False
        for name, values in self.vocabulary.items():
            v = event.get(name)
            if isinstance(v, str) and v not in values and len(values) <= VOCABULARY_CAP:
                values.add(v)
                new = True
        if new:
            self.decode = self._build()
        return new


_slice_key = operator.attrgetter(*kpis.SLICE_DIMENSIONS)
_MAYBE_NOTABLE = frozenset({"error", "rebuffer_end"})  # kpis.is_notable decides, on the whole event
_MS = timedelta(milliseconds=1)


class KpiAggregator:
    """Event-time windows with a per-partition watermark. Pure logic: no Kafka, no clock reads
    except through `now` (monotonic seconds), so tests drive it directly."""

    def __init__(
        self,
        emit: Callable[[bytes, str], None],
        *,
        window_s: float = 5.0,
        lateness_s: float = 2.0,
        idle_flush_s: float = 3.0,
        partition_idle_s: float = 3.0,
        feed_every_s: float = 1.0,
        window_factory: Callable[[datetime, datetime], Any] | None = None,
        heartbeat_ms: int = kpis.DEFAULT_HEARTBEAT_MS,
        now: Callable[[], float] = time.monotonic,
    ):
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        if window_factory is None:

            def window_factory(start: datetime, end: datetime) -> Any:
                return kpis.KpiWindow(start, end, heartbeat_ms)

        self.emit = emit
        self.window = timedelta(seconds=window_s)
        self.lateness = timedelta(seconds=lateness_s)
        self.idle_flush_s = idle_flush_s
        self.partition_idle_s = partition_idle_s
        self.feed_every_s = feed_every_s
        self.window_factory = window_factory
        self.now = now
        self.open: dict[datetime, Any] = {}
        self.late_open: dict[datetime, Any] = {}  # late events per closed window, sent as parts
        self._late_parts = 0
        self.closed_until: datetime | None = None  # every window ending at or before this is closed
        self.partition_max: dict[Any, datetime | None] = {}  # None: assigned, nothing read yet
        self.partition_seen: dict[Any, float] = {}
        self.last_event_at: float | None = None
        self.notable: deque[dict[str, Any]] = deque(maxlen=50)
        self._feed_dirty = False
        self._last_feed = 0.0
        self.events = 0
        self.late = 0
        self.bad = 0
        self.windows_emitted = 0
        # add() runs for every event at full speed: window starts in integer microseconds
        # when the window is a whole number of them (exact, no float rounding), each
        # start's datetime made once
        self._window_us = self.window // _US if self.window % _US == timedelta(0) else None
        self._starts: dict[int, datetime] = {}
        self._closed_until_us: int | None = None
        # add_values' typed path: windows a whole number of ms, the engine's own window states
        self._window_ms = self.window // _MS if self.window % _MS == timedelta(0) else None
        self._typed = self._window_ms is not None and isinstance(window_factory(EPOCH, EPOCH + self.window), kpis.WindowState)
        self._decoder = _KpiDecoder()

    def _window_start(self, t: datetime) -> datetime:
        if self._window_us is not None:
            us = (t - EPOCH) // _US
            start_us = us - us % self._window_us
            return self._start_at_us(start_us)
        w = self.window.total_seconds()
        secs = (t - EPOCH).total_seconds()
        return EPOCH + timedelta(seconds=(secs // w) * w)

    def _start_at_us(self, start_us: int) -> datetime:
        """The datetime of a window start in epoch microseconds, each made once."""
        start = self._starts.get(start_us)
        if start is None:
            if len(self._starts) > 4096:
                self._starts.clear()
            start = self._starts[start_us] = EPOCH + timedelta(microseconds=start_us)
        return start

    def add(self, event: dict[str, Any], partition: Any = 0) -> None:
        t = parse_datetime(event.get("event_timestamp"))
        if t is None:
            self.bad += 1
            return
        start = self._window_start(t)
        if self.closed_until is not None and start + self.window <= self.closed_until:
            self.late += 1
            win = self.late_open.get(start)
            if win is None:
                win = self.late_open[start] = self.window_factory(start, start + self.window)
            win.add(event)
            return
        win = self.open.get(start)
        if win is None:
            win = self.open[start] = self.window_factory(start, start + self.window)
        win.add(event)
        self.events += 1
        now = self.now()
        self.last_event_at = now
        self.partition_seen[partition] = now
        seen = self.partition_max.get(partition)
        if seen is None or t > seen:
            self.partition_max[partition] = t
        if is_notable(event):
            self.notable.append(protocol.feed_item(event))
            self._feed_dirty = True

    def add_values(self, values: Sequence[bytes | None], partitions: Sequence[Any]) -> None:
        """add() for raw records (values[i] read from partitions[i]), the feed's hot path: each
        value is decoded once into KpiFields and counted with WindowState.add_checked; only
        a value that decode refuses, and a candidate notable event, is parsed into a dict.
        Counts, windows, lateness and the watermark come out as add() of each parsed event."""
        if not self._typed:
            for value, partition in zip(values, partitions, strict=True):
                self.add_value(value, partition)
            return
        wms = self._window_ms
        assert wms is not None
        decoder = self._decoder
        decode, keyof, loads = decoder.decode, _slice_key, orjson.loads
        cur: int | None = None
        win: Any = None
        late = False
        counted = 0
        maxes: dict[Any, int] = {}
        for value, partition in zip(values, partitions, strict=True):
            try:
                ev = decode(value)  # type: ignore[arg-type]  # None raises TypeError: the dict path counts it
                ts = ms_of_iso(ev.event_timestamp)  # the fields of the generated struct
            except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
                ts = None
            if ts is None:
                event = self.add_value(value, partition)
                if event is not None and decoder.learn(event):
                    decode = decoder.decode
                continue
            start = ts - ts % wms
            if start != cur:
                cur = start
                win, late = self._window_of_ms(start)
            et = ev.event_type
            win.add_checked(
                ts,
                et,
                ev.video_started,
                et == "error" and ev.fatal is True,
                ev.played_ms,
                ev.stalled_ms,
                ev.played_bitrate_kbps,
                ev.startup_time_ms if et == "first_frame" else None,
                keyof(ev),
            )
            if late:
                self.late += 1
                continue
            counted += 1
            m = maxes.get(partition)
            if m is None or ts > m:
                maxes[partition] = ts
            if et in _MAYBE_NOTABLE or ev.fatal is True:
                event = loads(value)  # type: ignore[arg-type]
                if is_notable(event):
                    self.notable.append(protocol.feed_item(event))
                    self._feed_dirty = True
        if not counted:
            return
        self.events += counted
        now = self.now()
        self.last_event_at = now
        for partition, m in maxes.items():
            self.partition_seen[partition] = now
            t = EPOCH + m * _MS
            seen = self.partition_max.get(partition)
            if seen is None or t > seen:
                self.partition_max[partition] = t

    def add_value(self, value: bytes | None, partition: Any = 0) -> dict[str, Any] | None:
        """One raw record through the dict path: unparseable or not an object counts as bad.
        Returns the parsed object (None if it was not one)."""
        try:
            event = orjson.loads(value)  # type: ignore[arg-type]
        except (orjson.JSONDecodeError, TypeError):
            self.bad += 1
            return None
        if isinstance(event, dict):
            self.add(event, partition)
            return event
        self.bad += 1
        return None

    def _window_of_ms(self, start_ms: int) -> tuple[Any, bool]:
        """The open (or, for a closed window, late) state of the window starting at start_ms."""
        start = self._start_at_us(start_ms * 1000)
        if self.closed_until is not None and start + self.window <= self.closed_until:
            win = self.late_open.get(start)
            if win is None:
                win = self.late_open[start] = self.window_factory(start, start + self.window)
            return win, True
        win = self.open.get(start)
        if win is None:
            win = self.open[start] = self.window_factory(start, start + self.window)
        return win, False

    def expect_partitions(self, partitions: Any) -> None:
        """Hold the watermark until each of these partitions has delivered (or gone idle).

        Without this, the first partition to deliver sets the watermark alone, and a window
        can close before a slower partition's events for it arrive (they would be dropped
        as late). A partition that stays silent for `partition_idle_s` stops holding it.
        """
        now = self.now()
        for p in partitions:
            if p not in self.partition_max:
                self.partition_max[p] = None
                self.partition_seen[p] = now

    def watermark(self) -> datetime | None:
        now = self.now()
        live = [m for p, m in self.partition_max.items() if now - self.partition_seen[p] < self.partition_idle_s]
        if None in live:
            return None  # an assigned partition has not delivered yet
        active = [m for m in (live or self.partition_max.values()) if m is not None]
        return (min(active) - self.lateness) if active else None

    def tick(self) -> int:
        """Close the windows the watermark (or idleness) has passed; publish feed. Returns kpi count."""
        n = 0
        idle = self.last_event_at is not None and self.now() - self.last_event_at >= self.idle_flush_s
        wm = self.watermark()
        for start in sorted(self.open):
            end = start + self.window
            if idle or (wm is not None and end <= wm):
                self._close(start)
                n += 1
        n += self._flush_late()
        if self._feed_dirty and self.now() - self._last_feed >= self.feed_every_s:
            self.flush_feed()
        return n

    def _close(self, start: datetime) -> None:
        win = self.open.pop(start)
        end = start + self.window
        if self.closed_until is None or end > self.closed_until:
            self.closed_until = end
        if self._send(win, None, start):
            self.windows_emitted += 1

    def _flush_late(self) -> int:
        n = 0
        for start in sorted(self.late_open):
            self._late_parts += 1
            n += self._send(self.late_open.pop(start), f"late-{self._late_parts}", start)
        return n

    def _send(self, win: Any, part: str | None, start: datetime) -> bool:
        try:
            if isinstance(win, kpis.WindowState):
                frames = protocol.kpi_frames(win, part)
            else:  # a test's window: snapshot() is the message body
                frames = [protocol.encode(protocol.kpi_message(win.snapshot(), part))]
        except protocol.ProtocolError:
            log.exception("KPI window %s could not be encoded; skipped", start.isoformat())
            return False
        for data in frames:
            self.emit(data, "kpi")
        return True

    def flush_feed(self) -> None:
        if not self.notable:
            return
        self._feed_dirty = False
        self._last_feed = self.now()
        self.emit(protocol.encode(protocol.feed_message(list(self.notable))), "feed")

    def close_all(self) -> None:
        for start in sorted(self.open):
            self._close(start)
        self._flush_late()
        if self._feed_dirty:
            self.flush_feed()


class DashboardFeed:
    """Consume the topic (latest offsets, no commits: the dashboard shows what is live)."""

    def __init__(
        self,
        settings: KafkaSettings,
        sink: Sink,
        *,
        topic: str = TOPIC,
        group_id: str = GROUP_ID,
        from_beginning: bool = False,
        **aggregator_options: Any,
    ):
        self.settings = settings.with_client_id("acme-dashboard")
        self.sink = sink
        self.topic = topic
        self.group_id = group_id
        self.from_beginning = from_beginning
        self.aggregator = KpiAggregator(sink.publish_threadsafe, **aggregator_options)
        self.ready = threading.Event()  # set once partitions are assigned and positioned
        self.positions: dict[int, int] = {}  # partition -> next offset to read
        # records in the topic not read yet (None: no high watermark known yet), from the
        # client's cached high watermarks every LAG_EVERY_S: what back-pressure holds on
        self.lag: int | None = None

    def run(self, stop: threading.Event) -> None:
        if self.settings.security_protocol == "PLAINTEXT":
            self._run_librdkafka(stop)
        else:
            self._run_kafka_python(stop)

    def _run_librdkafka(self, stop: threading.Event) -> None:
        """The embedded broker's feed: confluent-kafka, read in batches (about 1.5 CPU-us per
        event to read, against about 14 with kafka-python).

        The same contract as the kafka-python loop: every partition assigned (no group, so no
        rebalance can leave the dashboard without partitions), positioned at the end before
        `ready` (the producer starts after), `positions` kept, each event into the aggregator,
        windows closed on tick, all closed on stop.
        """
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        from acme_telemetry.local.writer import cached_lag, confluent_consumer_config

        # Fetches of at least 64 KB (compressed: some 300 events), or whatever 100 ms brought:
        # a record waits at the broker 100 ms at most, far inside the windows' 2 s lateness.
        # With fetch.min.bytes 1 the feed sent a fetch for every few records at full speed,
        # and the broker spent more CPU answering them than on the producer's writes.
        consumer = Consumer(
            confluent_consumer_config(
                self.settings,
                self.group_id,
                **{"fetch.min.bytes": 64 * 1024, "fetch.wait.max.ms": 100},
            )
        )
        try:
            deadline = time.monotonic() + 30
            parts: list[int] = []
            while not parts and time.monotonic() < deadline and not stop.is_set():
                tmd = consumer.list_topics(self.topic, timeout=5).topics.get(self.topic)
                parts = sorted(tmd.partitions) if tmd is not None and tmd.error is None else []
                if not parts:
                    time.sleep(0.2)
            if not parts:
                raise RuntimeError(f"topic {self.topic!r} has no partitions the dashboard can read")
            if self.from_beginning:
                tps = [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in parts]
            else:  # resolve the end now, before anyone produces
                tps = [
                    TopicPartition(self.topic, p, consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1])
                    for p in parts
                ]
                self.positions.update({tp.partition: tp.offset for tp in tps})
            consumer.assign(tps)
            self.aggregator.expect_partitions(parts)
            self.ready.set()
            agg, positions = self.aggregator, self.positions
            lag_at = 0.0
            while not stop.is_set():
                now = time.monotonic()
                if now - lag_at >= LAG_EVERY_S:
                    lag_at = now
                    self.lag = cached_lag(
                        lambda p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)[1], positions.get, parts
                    )
                msgs: list[Any] = consumer.consume(5000, 0.2)
                values: list[bytes | None] = []
                partitions: list[int] = []
                last: dict[int, Any] = {}  # partition -> its last record in this batch
                for msg in msgs:
                    if msg.error() is not None:
                        log.warning("dashboard feed: %s", msg.error())
                        continue
                    partition: int = msg.partition()
                    values.append(msg.value())
                    partitions.append(partition)
                    last[partition] = msg
                for partition, msg in last.items():
                    positions[partition] = msg.offset() + 1
                if values:
                    agg.add_values(values, partitions)
                agg.tick()
            agg.close_all()
            self.closed = True
        finally:
            try:
                consumer.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the dashboard consumer failed")

    def _run_kafka_python(self, stop: threading.Event) -> None:
        from kafka import TopicPartition

        from acme_telemetry.local.writer import cached_lag

        # The dashboard shows what is live and needs no offsets of its own, so it assigns
        # itself every partition instead of joining a group: no rebalance can leave it
        # without partitions (kafka-python can join before it has the topic's metadata).
        consumer = make_consumer(
            self.settings,
            self.group_id,
            enable_auto_commit=False,
            max_poll_records=2000,
            fetch_max_wait_ms=200,
        )
        deadline = time.monotonic() + 30
        parts = None
        while not parts and time.monotonic() < deadline and not stop.is_set():
            parts = consumer.partitions_for_topic(self.topic)
            if not parts:
                time.sleep(0.2)
        if not parts:
            consumer.close(autocommit=False)
            raise RuntimeError(f"topic {self.topic!r} has no partitions the dashboard can read")
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        self.aggregator.expect_partitions(sorted(parts))
        if self.from_beginning:
            consumer.seek_to_beginning(*tps)
        else:
            consumer.seek_to_end(*tps)
        for tp in tps:
            consumer.position(tp)  # resolve the offsets now, before anyone produces
        self.ready.set()
        agg = self.aggregator
        by_partition = {tp.partition: tp for tp in tps}
        lag_at = 0.0
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now - lag_at >= LAG_EVERY_S:
                    lag_at = now
                    self.lag = cached_lag(lambda p: consumer.highwater(by_partition[p]), self.positions.get, by_partition)
                batches = consumer.poll(timeout_ms=200)
                for tp, records in batches.items():
                    if records:
                        self.positions[tp.partition] = records[-1].offset + 1
                    agg.add_values([rec.value for rec in records], [tp.partition] * len(records))
                agg.tick()
            agg.close_all()
            self.closed = True
        finally:
            try:
                consumer.close(autocommit=False)
            except Exception:  # noqa: BLE001
                log.exception("closing the dashboard consumer failed")
