"""The local producer: simulator records into the topic, at a rate or as fast as Kafka takes them.

On AWS the generator and producer Lambdas do this. Here one loop draws records from the
simulator and hands them to a Kafka producer. There is no flush barrier per chunk: the
client batches and pipelines, and only stopping flushes. What the broker acknowledged:
- confluent-kafka reports only failed deliveries (`delivery.report.only.error`: a Python
  callback per record cost about 0.7 CPU-us, a tenth of the producer's time). A record
  handed over is acknowledged once librdkafka no longer holds it and no failure was
  reported for it, so `produced` = records handed over - len(producer) - failures, exact
  after each poll(). Once everything is acknowledged (all `events`, or the flush at stop)
  `end_offsets` are read from the broker: the topic's high watermarks, which cover every
  acknowledged record (acks=all) and nothing else, as one run produces to the topic at
  a time (the state folder's lock);
- kafka-python (the Lambda's client) calls back for every record: `produced` counts them
  and `end_offsets` keeps the offset after the highest one per partition.

Two clients:
- `confluent-kafka` (librdkafka, the default): 7-10x kafka-python's throughput on 2 cores;
- `kafka-python` (`local --client kafka-python`): the producer Lambda's client and settings
  (acme_telemetry.kafka.make_producer), to rehearse that path end to end.

What it produces (RunOptions in local.runner says when each applies):
- the wall clock (no `start`, no `events`): simulator.live.iter_live releases the events
  as the clock reaches their event time, from `resume_from(now, last)` where `last` is the
  event time of the last record the previous run over the same state folder handed to
  Kafka (`state_file`, state_dir/producer.json, replaced atomically about once a second
  and at stop), so a restart continues the stream instead of replaying it; with `rate`
  the same stream (iter_since) is paced at R events/s;
- the deterministic stream (iter_records) from `start` (endless without `events`), or,
  with `events` and no `start`, exactly `generate --events N --seed S`'s records: the
  simulator's fixed start and its default audience unless `concurrent_viewers` is given
  (a batch run is reproducible and compares with `generate`).

Both are acks=all and idempotent. A record whose delivery failed (after the client's own
retries) is sent again: at-least-once, as the lake writer and the KPIs tolerate duplicates
of an event_id. The lake writer has everything once its durable offsets reach
`end_offsets` (`local --events N`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from acme_telemetry.kafka import KafkaSettings, make_producer
from acme_telemetry.schema import TOPIC

if TYPE_CHECKING:
    from acme_telemetry.simulator import SimConfig
    from acme_telemetry.simulator.incidents import Incident

log = logging.getLogger(__name__)

Client = Literal["confluent-kafka", "kafka-python"]
CLIENTS: tuple[Client, ...] = ("confluent-kafka", "kafka-python")
DEFAULT_VIEWERS = 200  # the simulator's audience: --events N without --viewers (as `generate`)
LIVE_VIEWERS = 2000  # an endless run's audience without --viewers: about 225 events/s
PACE_STEP = 500  # records between two looks at the clock (--rate) and at the delivery reports
MAX_IN_FLIGHT = 200_000  # records handed over and not yet acknowledged (bounds memory)
SAVE_EVERY_S = 1.0  # how often the wall-clock stream's resume point is written
SETTLE_TIMEOUT_S = 5.0  # reading the end offsets from the broker, at most (module doc)
Batch = list[tuple[bytes, bytes, int | None]]  # (key, value, event time ms if known)


def read_last_ts(path: Path | None) -> int | None:
    """The event time (ms) of the last record a previous run produced, from its state file."""
    if path is None:
        return None
    try:
        value = orjson.loads(path.read_bytes()).get("last_ts_ms")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def write_last_ts(path: Path, last_ts_ms: int, seed: int) -> None:
    """Replace the state file atomically (a crash leaves the old or the new one, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(
        orjson.dumps({"last_ts_ms": last_ts_ms, "seed": seed, "last_ts": datetime.fromtimestamp(last_ts_ms / 1000, tz=UTC).isoformat()})
    )
    os.replace(tmp, path)


@dataclass
class ProducerStats:
    produced: int = 0  # acknowledged by the broker
    sent: int = 0  # handed to the client (acknowledged or not yet)
    failed: int = 0  # deliveries that failed and were sent again
    done: bool = False  # all `events` are acknowledged
    # partition -> highest acknowledged offset + 1 (what the writer must commit to be done);
    # with confluent-kafka known once everything handed over is acknowledged (module doc)
    end_offsets: dict[int, int] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)
    last_error: str | None = None
    first_ts_ms: int | None = None  # event time of the first record handed over
    last_ts_ms: int | None = None  # ... and of the last one


class LocalProducer:
    """Produce `events` simulated records (None: without end, in real time unless `rate`)."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        events: int | None,
        rate: float | None = None,
        seed: int = 42,
        start: datetime | None = None,
        concurrent_viewers: int | None = None,
        topic: str = TOPIC,
        client: Client = "confluent-kafka",
        incidents: tuple[Incident, ...] = (),
        state_file: Path | None = None,
    ) -> None:
        if client not in CLIENTS:
            raise ValueError(f"client must be one of {', '.join(CLIENTS)}, got {client!r}")
        self.settings = settings.with_client_id("acme-local-producer")
        self.events = events
        self.rate = rate
        self.seed = seed
        self.start = start
        self.concurrent_viewers = concurrent_viewers
        self.topic = topic
        self.client = client
        self.incidents = incidents
        self.state_file = state_file
        self.stats = ProducerStats()
        self._lock = threading.Lock()
        self._retry: deque[tuple[bytes, bytes]] = deque()
        # Cleared by the supervisor while the lake writer is too far behind (back-pressure):
        # the load generator waits instead of growing the lag without bound.
        self.go = threading.Event()
        self.go.set()
        # False until the first record is handed to the client: before that (the simulator
        # drawing a large audience can take a minute) a stop has nothing to flush.
        self.producing = False

    @property
    def wall_clock(self) -> bool:
        """Event time is the wall clock: no `start`, no `events` (see the module doc)."""
        return self.start is None and self.events is None

    def sim_config(self, start: datetime | None = None) -> SimConfig:
        from acme_telemetry.simulator import SimConfig

        viewers = self.concurrent_viewers or (DEFAULT_VIEWERS if self.events is not None else LIVE_VIEWERS)
        return SimConfig(seed=self.seed, start=start, concurrent_viewers=viewers, incidents=self.incidents)

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        """The deterministic stream: `events` records (endless without) from `start`, or from
        the simulator's fixed start (module doc)."""
        from acme_telemetry.simulator import iter_records

        n = self.events if self.events is not None else 10**15
        return iter_records(n, self.sim_config(self.start))

    def batches(self, stop: threading.Event) -> Iterator[Batch]:
        """What the loop hands to Kafka, in batches (an empty one: nothing is due yet)."""
        if not self.wall_clock:
            it = self.records()
            while chunk := list(islice(it, PACE_STEP)):
                yield [(k, v, None) for k, v in chunk]
            return
        from acme_telemetry.simulator.live import event_ms, iter_live, iter_since, resume_from, wall_ms

        since = resume_from(wall_ms(), read_last_ts(self.state_file))
        log.info("wall clock: the stream starts at %s", datetime.fromtimestamp(since / 1000, tz=UTC).isoformat())
        if self.rate is None:
            for live in iter_live(self.sim_config(), since, stop=stop, max_batch=PACE_STEP):
                yield [(k, v, ts) for k, v, ts in live]
            return
        stream = iter_since(self.sim_config(), since)
        while chunk := list(islice(stream, PACE_STEP)):
            batch: Batch = [(k, v, None) for k, v in chunk]
            key, value = chunk[-1]
            batch[-1] = (key, value, event_ms(value))
            yield batch

    def _pace(self) -> float | None:
        """Events per second to keep to: --rate, else real time for an endless --start run
        (the wall-clock stream keeps to the clock itself)."""
        if self.rate is not None or self.events is not None or self.wall_clock:
            return self.rate
        from acme_telemetry.simulator import expected_events_per_s

        return float(expected_events_per_s(self.sim_config()))

    def _note_times(self, batch: Batch) -> None:
        """First and last event time handed over (from the batch's ends: the stream is in time order)."""
        from acme_telemetry.simulator.live import event_ms

        s = self.stats
        if s.first_ts_ms is None:
            first = batch[0]
            s.first_ts_ms = first[2] if first[2] is not None else event_ms(first[1])
        last = batch[-1]
        s.last_ts_ms = last[2] if last[2] is not None else event_ms(last[1])

    def _save(self) -> None:
        if self.wall_clock and self.state_file is not None and self.stats.last_ts_ms is not None:
            try:
                write_last_ts(self.state_file, self.stats.last_ts_ms, self.seed)
            except OSError:
                log.exception("could not write %s", self.state_file)

    # --- delivery reports (the client's thread or poll(); both only count) -------------------

    def _delivered(self, partition: int, offset: int) -> None:
        s = self.stats
        with self._lock:
            s.produced += 1
            if offset + 1 > s.end_offsets.get(partition, 0):
                s.end_offsets[partition] = offset + 1

    def _failed(self, key: bytes, value: bytes, error: object) -> None:
        with self._lock:
            self.stats.failed += 1
            self.stats.last_error = repr(error)
            self._retry.append((key, value))
        log.warning("delivery failed (%r); sending the record again", error)

    # --- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> ProducerStats:
        """Produce until all events are acknowledged or `stop` is set; always flush and close."""
        send, send_all, poll, close, settle = self._confluent() if self.client == "confluent-kafka" else self._kafka_python()
        stats = self.stats
        rate = self._pace()
        saved_at = time.monotonic()
        try:
            stats.started_at = t0 = time.monotonic()
            for batch in self.batches(stop):
                if stop.is_set():
                    break
                self.producing = True  # from here on a stop flushes what was handed over
                send_all(batch)
                stats.sent += len(batch)
                if batch:
                    self._note_times(batch)
                if self._retry:
                    self._resend(send)
                if stats.sent - stats.produced > MAX_IN_FLIGHT:
                    while stats.sent - stats.produced > MAX_IN_FLIGHT // 2 and not stop.is_set():
                        poll(0.05)
                        self._resend(send)
                poll(0)  # serve delivery reports (confluent-kafka runs callbacks only in poll)
                while not self.go.is_set() and not stop.is_set():
                    poll(0.05)
                if rate:
                    ahead = stats.sent / rate - (time.monotonic() - t0)
                    if ahead > 0 and stop.wait(ahead):
                        break
                if time.monotonic() - saved_at >= SAVE_EVERY_S:
                    saved_at = time.monotonic()
                    self._save()
            # Every record is handed over: wait for the acknowledgements (and resend failures).
            while not stop.is_set() and (stats.produced < stats.sent or self._retry):
                poll(0.1)
                self._resend(send)
            if stats.produced >= stats.sent and not self._retry:
                settle()
            stats.done = self.events is not None and stats.produced >= self.events
        finally:
            try:
                close()
            except Exception:  # noqa: BLE001 - what was acknowledged is counted; the rest is resent next run
                log.exception("closing the producer failed")
            if self.producing:
                settle()
            stats.done = self.events is not None and stats.produced >= self.events
            self._save()
            log.info("producer stopped: %d produced", stats.produced)
        return stats

    def _resend(self, send: Any) -> None:
        while self._retry:
            with self._lock:
                if not self._retry:
                    return
                key, value = self._retry.popleft()
                self.stats.failed -= 1  # counted again if this delivery fails too
            send(key, value)

    def _confluent(self) -> tuple[Any, Any, Any, Any, Any]:
        from confluent_kafka import Producer

        stats = self.stats
        calls = failures = 0  # produce() calls (resends included); failed deliveries reported

        def on_delivery(err: Any, msg: Any) -> None:
            # Only failures reach Python (delivery.report.only.error); they run inside poll(),
            # in this (the main) thread.
            nonlocal failures
            if err is not None:
                failures += 1
                self._failed(msg.key(), msg.value(), err)

        producer = Producer({**confluent_producer_config(self.settings), "on_delivery": on_delivery})
        produce, poll_, topic = producer.produce, producer.poll, self.topic

        def poll(timeout: float) -> None:
            poll_(timeout)
            # acknowledged: handed over, no longer held by librdkafka (a failure's report is
            # held until this poll served it), and not failed
            stats.produced = calls - len(producer) - failures

        def put(key: bytes, value: bytes) -> None:
            while True:
                try:
                    produce(topic, value, key)
                    return
                except BufferError:  # librdkafka's queue is full: serve delivery reports
                    poll(0.05)

        def send(key: bytes, value: bytes) -> None:
            nonlocal calls
            put(key, value)
            calls += 1

        def send_all(batch: Batch) -> None:
            nonlocal calls
            for key, value, _ in batch:
                try:
                    produce(topic, value, key)
                except BufferError:
                    put(key, value)
            calls += len(batch)  # counted once handed over, so `produced` never runs ahead

        def close() -> None:
            left = producer.flush(30)
            stats.produced = calls - len(producer) - failures
            if left:
                log.warning("%d records were not acknowledged within 30 s of stopping", left)

        def settle() -> None:
            try:  # a short budget: a stop with the broker gone must not wait on it again
                stats.end_offsets = high_watermarks(self.settings, topic, SETTLE_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - the run goes on; the writer flushes what it read
                log.warning("could not read the end offsets of %s: %s", topic, exc)

        return send, send_all, poll, close, settle

    def _kafka_python(self) -> tuple[Any, Any, Any, Any, Any]:
        producer = make_producer(self.settings, linger_ms=20, batch_size=256 * 1024)
        topic = self.topic

        def send(key: bytes, value: bytes) -> None:
            future = producer.send(topic, key=key, value=value)
            future.add_callback(lambda md: self._delivered(md.partition, md.offset))
            future.add_errback(lambda exc: self._failed(key, value, exc))

        def poll(timeout: float) -> None:
            if timeout:
                time.sleep(timeout)  # kafka-python's sender thread delivers the callbacks

        def send_all(batch: Batch) -> None:
            for key, value, _ in batch:
                send(key, value)

        def close() -> None:
            producer.flush(30)
            producer.close(timeout=10)

        def settle() -> None:
            pass  # end_offsets come from the callbacks

        return send, send_all, poll, close, settle


def high_watermarks(settings: KafkaSettings, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """partition -> the topic's high watermark (the offset the next record will get) on the
    embedded broker, within `timeout_s` in all (else the client's KafkaException); ValueError
    if the topic has no partitions there."""
    from confluent_kafka import Consumer, TopicPartition

    deadline = time.monotonic() + timeout_s

    def left() -> float:
        return max(0.1, deadline - time.monotonic())

    c = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "acme-offsets-probe", "client.id": "acme-offsets-probe"})
    try:
        tmd = c.list_topics(topic, timeout=left()).topics.get(topic)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            raise ValueError(f"topic {topic} has no partitions on {settings.bootstrap_servers}")
        return {p: int(c.get_watermark_offsets(TopicPartition(topic, p), timeout=left())[1]) for p in sorted(tmd.partitions)}
    finally:
        c.close()


def confluent_producer_config(settings: KafkaSettings) -> dict[str, Any]:
    """librdkafka settings for the embedded pipeline: acks=all, idempotent, batched."""
    if settings.security_protocol != "PLAINTEXT":
        raise ValueError("the confluent-kafka stand-ins are for the embedded broker (PLAINTEXT)")
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "batch.size": 1024 * 1024,
        "queue.buffering.max.messages": 2 * MAX_IN_FLIGHT,
        "queue.buffering.max.kbytes": 512 * 1024,
        "message.timeout.ms": 120_000,
        "delivery.report.only.error": True,  # see the module doc for what is counted instead
        # JSON events compress about 5x: the broker writes and serves a fifth of the bytes
        # (its CPU per event fell by a fifth in the pipeline benchmark), for ~0.5 CPU-us per
        # event here and less in each consumer. The lake objects are gzip regardless.
        "compression.type": "lz4",
        "partitioner": "murmur2_random",  # Java's partitioner: the same session -> partition as the Lambda
    }
