"""The Firehose-equivalent lake writer: consumer group `acme-lake-writer` -> gzip NDJSON objects.

Like Firehose with an MSK source and an S3 destination:
- it buffers records until `buffer_size_mb` (uncompressed) or `buffer_interval_s` is
  reached (bufferingHints, from data_stack.config's firehose section);
- it writes one gzip NDJSON object per flush to telemetry/year=/month=/day=/hour=/ by the
  UTC arrival time (the Kafka record timestamp) of the oldest record, named
  acme-data-delivery-stream-1-YYYY-MM-DD-HH-MM-SS-<uuid>.gz;
- records that are not schema-valid JSON events go to errors/<reason>/year=.../ as
  Firehose error records (base64 rawData, errorCode, errorMessage), counted, never fatal.

Durability: each object is written to a temp name, fsynced, renamed and its folder
fsynced; only THEN are the Kafka offsets committed. A crash at any point loses nothing;
it can only re-deliver records whose offsets were not committed yet (at-least-once).

The hot path (about 7 CPU-us per event on this 2-core machine, against about 45 with
kafka-python, orjson and gzip level 6):
- librdkafka (confluent-kafka) reads in batches of up to 10,000 records;
- the schema check is one msgspec decode into a Struct (lake.fast_check); only a record it
  rejects goes through lake.check_record, which says why;
- each object is compressed with ISA-L (python-isal) at lake.GZIP_LEVEL (measured there), in
  the sink thread.

Two ways to read, chosen by the caller:
- `start_offsets` given (`local --events N`): the writer assigns itself every partition
  at those offsets (the topic's end when the run started) and commits under its own
  group. No group membership, so no rebalance can leave it without partitions, and
  nothing an earlier run left in the topic reaches this run's lake;
- otherwise it subscribes in group `acme-lake-writer` (static member `instance_id`) and
  resumes from the committed offsets, as Firehose resumes its source; with `resume` and
  `start_offsets`, a partition the group never committed starts at `start_offsets` (as a
  new Firehose stream reads from the time it became active), else at the earliest offset.

It never hangs silently: a subscribed writer with no partitions for `assign_timeout_s`
rejoins once, and after another `assign_timeout_s` fails with WriterStalled, one line that
names the cause (the topic is missing, or the group's other members hold every
partition); a writer fenced out of its group (another member took its instance id) fails
at once with WriterStalled too.

Run alone (the fault tests kill -9 it): python -m acme_telemetry.local.writer --help
"""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from acme_telemetry import lake
from acme_telemetry.kafka import KafkaSettings
from acme_telemetry.schema import TOPIC
from acme_telemetry.settings import EMBEDDED

log = logging.getLogger(__name__)

GROUP_ID = "acme-lake-writer"
MB = 1024 * 1024
CONSUME_BATCH = 10_000
ASSIGN_TIMEOUT_S = 15.0
# The lag (what the supervisor's back-pressure holds the producer on) is refreshed every
# LAG_EVERY_S from librdkafka's cached high watermarks (no round trip). Refreshed once a
# second, it was up to 1 s stale: at 50k+ events/s the producer stayed held for a second
# after the writer had caught up, and the writer then waited for records.
LAG_EVERY_S = 0.1
# consume() waits up to this long for CONSUME_BATCH records: records wait in the writer's
# hands (counted as lag) no longer than that before they join the buffer.
CONSUME_WAIT_S = 0.05
# Stopping with a drain target (the producer's acknowledged end offsets, handed over as the
# orderly stop begins): read on until everything below it is read, for at most this long,
# so every record the producer had acknowledged reaches the lake before the last flush.
DRAIN_ON_STOP_S = 15.0


class WriterStalled(RuntimeError):
    """The writer cannot read the topic (no partitions, fenced): the one-line cause."""


@dataclass
class WriterStats:
    records_in: int = 0  # consumed, valid or not
    events_written: int = 0  # durable in telemetry/ objects
    errors_written: int = 0  # durable in errors/ objects
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    objects_written: int = 0
    error_objects_written: int = 0
    bytes_written: int = 0  # compressed bytes of telemetry objects
    bytes_in: int = 0  # uncompressed bytes of the telemetry lines written
    flushes: int = 0
    commit_failures: int = 0
    buffered: int = 0
    lag: int | None = None  # records in the topic not yet durable in the lake
    distinct_events: int = 0  # distinct event_ids written, when tracked
    assigned: int = 0  # partitions this writer reads now
    unassigned_for_s: float = 0.0  # how long it has had no partitions (0 while it has some)
    started_at: float = field(default_factory=time.monotonic)
    first_object_at: float | None = None  # monotonic time of the first durable object
    # where the reading thread's time goes (seconds): in consume(), in the per-record loop,
    # waiting for a free slot in the sink queue (compress or disk behind)
    consume_s: float = 0.0
    process_s: float = 0.0
    sink_wait_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def cached_lag(high_watermark: Callable[[int], int | None], done: Callable[[int], int | None], partitions: Iterable[int]) -> int | None:
    """Records in the topic past what a consumer has done (`done(p)`: the offset after its
    last record on partition p, None: nothing yet, which counts no lag), summed over the
    partitions whose high watermark its client has cached from its fetches (`high_watermark`:
    no round trip); None while it knows none. The lake writer's and the feed's lag."""
    lag: int | None = None
    for p in partitions:
        try:
            hi = high_watermark(p)
        except Exception:  # noqa: BLE001 - lag is informational
            continue
        if hi is None or hi < 0:
            continue
        d = done(p)
        lag = (lag or 0) + max(0, hi - (d if d is not None else hi))
    return lag


def confluent_consumer_config(settings: KafkaSettings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """librdkafka consumer settings: manual commits, earliest, read_committed, batched fetches."""
    if settings.security_protocol != "PLAINTEXT":
        raise ValueError("the confluent-kafka stand-ins are for the embedded broker (PLAINTEXT)")
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 2_000,
        "fetch.wait.max.ms": 100,
        # Big fetches: at 40k+ events/s (40 MB/s) the default 1 MB per partition per round trip
        # left the writer waiting on the broker, which the producer keeps busy.
        "fetch.min.bytes": 256 * 1024,
        "max.partition.fetch.bytes": 8 * 1024 * 1024,
        "fetch.max.bytes": 64 * 1024 * 1024,
        "queued.max.messages.kbytes": 96 * 1024,
        "topic.metadata.refresh.interval.ms": 5_000,
        **overrides,
    }


@dataclass
class _Batch:
    """One flush's worth: the telemetry lines, the error lines by reason, the offsets after them."""

    lines: list[bytes]
    ids: list[str]
    size: int
    oldest_ms: int | None
    errors: dict[str, list[bytes]]
    errors_oldest_ms: dict[str, int]
    n_errors: int
    offsets: dict[tuple[str, int], int]
    seq: int = 0  # the order batches were taken in: their offsets are applied in it
    gzipped: bytes | None = None  # the telemetry object, once compressed
    written: list[Path] | None = None  # the objects, once durable
    t0: float = 0.0


SINK_QUEUE = 4  # batches waiting for each of the two sink stages (compress, disk)
DISK_WORKERS = 3


class LakeWriter:
    """Consume `topic` (group `group_id`) and write the lake under `lake_dir`."""

    def __init__(
        self,
        settings: KafkaSettings,
        lake_dir: Path | str,
        *,
        buffer_interval_s: float,
        buffer_size_mb: float,
        topic: str = TOPIC,
        group_id: str = GROUP_ID,
        instance_id: str | None = "acme-lake-writer-1",
        track_event_ids: bool = False,
        on_flush: Callable[[WriterStats], None] | None = None,
        consumer_overrides: dict[str, Any] | None = None,
        start_offsets: dict[int, int] | None = None,
        resume: bool = False,
        assign_timeout_s: float = ASSIGN_TIMEOUT_S,
    ):
        if buffer_interval_s < 0:
            raise ValueError(f"buffer_interval_s must be >= 0, got {buffer_interval_s}")
        if buffer_size_mb <= 0:
            raise ValueError(f"buffer_size_mb must be > 0, got {buffer_size_mb}")
        self.settings = settings.with_client_id("acme-lake-writer")
        self.lake_dir = Path(lake_dir)
        self.topic = topic
        self.group_id = group_id
        self.instance_id = instance_id
        self.buffer_interval_s = float(buffer_interval_s)
        self.buffer_bytes = int(buffer_size_mb * MB)
        self.on_flush = on_flush
        self.consumer_overrides = consumer_overrides or {}
        self.start_offsets = dict(start_offsets) if start_offsets is not None else None
        self.resume = resume
        self.assign_timeout_s = assign_timeout_s
        self.stats = WriterStats()
        self.event_ids: set[str] | None = set() if track_event_ids else None
        # (topic, partition) -> next offset whose records are all durable in the lake
        self.durable_offsets: dict[tuple[str, int], int] = {}
        # Set by drain(): once everything below these offsets has been read, flush at once
        # instead of waiting out the buffer interval (as on shutdown).
        self._drain_to: dict[tuple[str, int], int] | None = None
        self._read_to: dict[tuple[str, int], int] = {}  # next offset to read, per partition read from
        self._consumer: Any = None
        self._lock = threading.Lock()
        self._assignment: set[int] = set()
        self._unassigned_since: float | None = time.monotonic()
        self._rejoined = False
        self._fatal: str | None = None
        self._first_offset: dict[int, int] = {}  # partition -> first offset read (lag before any flush)
        self._sink_queue: queue.Queue[_Batch | None] = queue.Queue(SINK_QUEUE)
        self._disk_queue: queue.Queue[_Batch | None] = queue.Queue(SINK_QUEUE)
        self._order_lock = threading.Lock()
        self._finished: dict[int, _Batch] = {}
        self._next_seq = 0  # the next batch taken gets this number
        self._next_apply = 0  # the next batch whose offsets may be applied
        self._sink_error: BaseException | None = None
        self._to_commit: queue.SimpleQueue[dict[tuple[str, int], int]] = queue.SimpleQueue()
        self._reader: threading.Thread | None = None
        self._reset_buffer()

    # --- buffer -------------------------------------------------------------------------

    def _reset_buffer(self) -> None:
        self._lines: list[bytes] = []
        self._ids: list[str] = []
        self._size = 0
        self._oldest_ms: int | None = None
        self._errors: dict[str, list[bytes]] = {}
        self._errors_oldest_ms: dict[str, int] = {}
        self._n_errors = 0
        self._offsets: dict[tuple[str, int], int] = {}  # next offset to commit per partition
        self._started: float | None = None
        self.stats.buffered = 0

    def _add_batch(self, msgs: list[Any]) -> None:
        """Buffer one consume() batch. The common record (valid, one line) costs one schema
        decode and a few list appends; offsets are taken once per partition per batch.
        Anything else (an error, a rejected record, a line to re-encode) goes through _add."""
        check = lake.fast_check
        ids = self._ids if self.event_ids is not None else None
        lines = self._lines
        buffer_bytes = self.buffer_bytes
        last: dict[int, Any] = {}  # partition -> its last record buffered so far in this batch
        size = self._size
        oldest = self._oldest_ms
        n = 0
        first = self._first_offset
        if len(first) < max(1, len(self._assignment)):  # lag before a partition's first object counts from here
            for msg in msgs:
                if msg.error() is None and msg.partition() not in first:
                    first[msg.partition()] = msg.offset()
        for msg in msgs:
            if msg.error() is not None:
                self._on_error(msg.error())
                continue
            value = msg.value()
            event_id = check(value) if value is not None else None
            # find(), not `in`: `b"\n" in value` first tries the needle as an int and formats
            # the TypeError it catches (2.7% of the writer's CPU)
            if event_id is None or value.find(b"\n") >= 0 or value.find(b"\r") >= 0:
                self._size, self._oldest_ms = size, oldest
                self._close_batch(last, n)
                last, n = {}, 0
                self._add(msg.topic(), msg.partition(), msg.offset(), value, msg.key(), msg.timestamp()[1])
                size, oldest = self._size, self._oldest_ms
            else:
                lines.append(value)
                size += len(value) + 1
                if ids is not None:
                    ids.append(event_id)
                ts = msg.timestamp()[1]
                if ts <= 0:
                    ts = int(time.time() * 1000)
                if oldest is None or ts < oldest:
                    oldest = ts
                last[msg.partition()] = msg
                n += 1
            if size >= buffer_bytes:
                self._size, self._oldest_ms = size, oldest
                self._close_batch(last, n)
                last, n = {}, 0
                self._flush_async()
                lines = self._lines
                ids = self._ids if self.event_ids is not None else None
                size, oldest = self._size, self._oldest_ms
        self._size, self._oldest_ms = size, oldest
        self._close_batch(last, n)

    def _close_batch(self, last: dict[int, Any], n: int) -> None:
        """Book the offsets and counters of the `n` records _add_batch buffered (last: the
        last of them per partition)."""
        if not n:
            return
        offsets, read_to = self._offsets, self._read_to
        for partition, msg in last.items():
            offsets[(msg.topic(), partition)] = read_to[(msg.topic(), partition)] = msg.offset() + 1
        if self._started is None:
            self._started = time.monotonic()
        self.stats.records_in += n
        self.stats.buffered += n

    def _add(self, topic: str, partition: int, offset: int, value: bytes | None, key: bytes | None, ts_ms: int) -> None:
        arrival_ms = ts_ms if ts_ms > 0 else int(time.time() * 1000)
        event_id = lake.fast_check(value) if value is not None else None
        if event_id is not None:
            assert value is not None
            line = value if (value.find(b"\n") < 0 and value.find(b"\r") < 0) else orjson.dumps(orjson.loads(value))
            self._lines.append(line)
            self._size += len(line) + 1
            if self.event_ids is not None:
                self._ids.append(event_id)
            if self._oldest_ms is None or arrival_ms < self._oldest_ms:
                self._oldest_ms = arrival_ms
        else:
            _, reason, detail = lake.check_record(value)
            reason = reason or lake.ERR_SCHEMA  # fast_check is stricter than check_record nowhere; be safe
            detail = detail or "rejected by the schema check"
            err = lake.error_line(
                value,
                reason,
                detail,
                arrival_ms,
                topic=topic,
                partition=partition,
                offset=offset,
                key=(key or b"").decode("utf-8", "replace")[:200],
            )
            self._errors.setdefault(reason, []).append(err)
            self._size += len(err) + 1
            self._n_errors += 1
            if reason not in self._errors_oldest_ms or arrival_ms < self._errors_oldest_ms[reason]:
                self._errors_oldest_ms[reason] = arrival_ms
            log.warning("record %s/%d@%d -> errors/%s: %s", topic, partition, offset, reason, detail)
        self._offsets[(topic, partition)] = self._read_to[(topic, partition)] = offset + 1
        if partition not in self._first_offset:
            self._first_offset[partition] = offset
        if self._started is None:
            self._started = time.monotonic()
        self.stats.records_in += 1
        self.stats.buffered += 1

    def drain(self, end_offsets: dict[tuple[str, int], int]) -> None:
        """Flush as soon as every record below `end_offsets` has been read (thread-safe:
        the writer thread acts on it). `local --events N` uses it once N are produced."""
        self._drain_to = dict(end_offsets)

    def _drained(self) -> bool:
        return self._drain_to is not None and bool(self._offsets) and self._read_all(self._drain_to)

    def _due(self) -> bool:
        if self._started is None:
            return False
        return self._size >= self.buffer_bytes or time.monotonic() - self._started >= self.buffer_interval_s or self._drained()

    # --- flush: objects first, offsets after -------------------------------------------

    def _take(self) -> _Batch | None:
        """What is buffered, as one batch; the buffer starts again empty."""
        with self._lock:
            if not self._offsets:
                return None
            batch = _Batch(
                self._lines,
                self._ids,
                self._size,
                self._oldest_ms,
                self._errors,
                self._errors_oldest_ms,
                self._n_errors,
                self._offsets,
                seq=self._next_seq,
            )
            self._next_seq += 1
            self._reset_buffer()
            return batch

    def flush(self) -> bool:
        """Write what is buffered, durably, then commit its offsets; wait for it (and for any
        batch handed to the sink thread before). True if anything was written."""
        self._sink_queue.join()
        self._raise_sink_error()
        while not self._to_commit.empty():
            self._commit(self._to_commit.get())
        batch = self._take()
        if batch is None:
            return False
        self._write(batch)
        return True

    def _flush_async(self) -> None:
        """Hand the buffer to the sink thread (compress, write, fsync, commit) and read on.
        The queue holds at most SINK_QUEUE batches: a slow disk slows reading, never memory."""
        self._raise_sink_error()
        batch = self._take()
        if batch is not None:
            t0 = time.monotonic()
            self._sink_queue.put(batch)
            self.stats.sink_wait_s += time.monotonic() - t0

    def _raise_sink_error(self) -> None:
        if self._sink_error is not None:
            raise self._sink_error

    def _sink(self) -> None:
        """Stage 1 of 2: compress (isal releases the GIL), then hand to the disk stage, in order."""
        disks = [threading.Thread(target=self._disk, name=f"writer-disk-{i}", daemon=True) for i in range(DISK_WORKERS)]
        for disk in disks:
            disk.start()
        try:
            while True:
                batch = self._sink_queue.get()
                if batch is None:
                    self._sink_queue.task_done()  # so a flush after the end (on close) does not wait
                    return
                handed = False
                try:
                    if self._sink_error is None and batch.lines:
                        batch.gzipped = lake.gzip_lines(batch.lines)
                    self._disk_queue.put(batch)  # task_done once the disk stage has it durable
                    handed = True
                except BaseException as exc:  # noqa: BLE001 - raised in the reading thread
                    log.exception("compressing an object failed")
                    self._sink_error = exc
                finally:
                    if not handed:
                        self._sink_queue.task_done()
        finally:
            self._disk_queue.put(None)
            for disk in disks:
                disk.join(60)

    def _disk(self) -> None:
        """Stage 2 of 2 (DISK_WORKERS threads): write, fsync, rename; then, in batch order,
        the offsets (objects first, offsets after). Several fsyncs in flight share the file
        system's journal commits, which the broker's own writes make slow."""
        while True:
            batch = self._disk_queue.get()
            if batch is None:
                self._disk_queue.put(None)  # for the next worker
                return
            try:
                if self._sink_error is None:
                    batch.written = self._write_objects(batch)
            except BaseException as exc:  # noqa: BLE001 - raised in the reading thread
                log.exception("writing an object failed")
                self._sink_error = exc
            finally:
                self._complete(batch)

    def _complete(self, batch: _Batch) -> None:
        """Apply finished batches in the order they were taken; then their flush is over."""
        with self._order_lock:
            self._finished[batch.seq] = batch
            while self._next_apply in self._finished:
                b = self._finished.pop(self._next_apply)
                self._next_apply += 1
                try:
                    if self._sink_error is None and b.written is not None:
                        self._apply(b, b.written)
                finally:
                    self._sink_queue.task_done()

    def _write(self, b: _Batch) -> None:
        """Write and apply one batch in the calling thread (everything taken before is applied)."""
        with self._order_lock:
            self._next_apply = max(self._next_apply, b.seq + 1)
        self._apply(b, self._write_objects(b))

    def _write_objects(self, b: _Batch) -> list[Path]:
        b.t0 = time.monotonic()
        written_objects = []
        if b.lines and b.oldest_ms is not None:
            arrival = datetime.fromtimestamp(b.oldest_ms / 1000, tz=UTC)
            key = lake.partition_path(arrival) + lake.object_name(arrival)
            data = b.gzipped if b.gzipped is not None else lake.gzip_lines(b.lines)
            written_objects.append(lake.write_bytes(self.lake_dir, key, data))
        for reason, lines in b.errors.items():
            arrival = datetime.fromtimestamp(b.errors_oldest_ms[reason] / 1000, tz=UTC)
            key = lake.error_partition_path(reason, arrival) + lake.object_name(arrival)
            lake.write_object(self.lake_dir, key, lines)
        return written_objects

    def _apply(self, b: _Batch, written_objects: list[Path]) -> None:
        for path in written_objects:
            self.stats.bytes_written += path.stat().st_size
            self.stats.bytes_in += b.size
        t0 = b.t0
        # Everything above is durable: the offsets may move past it now. The consumer is used
        # from the reading thread only (librdkafka's Python consumer blocks a second caller).
        self.durable_offsets.update(b.offsets)
        if threading.current_thread() is self._reader:
            self._commit(dict(b.offsets))
        else:
            self._to_commit.put(dict(b.offsets))
        s = self.stats
        s.events_written += len(b.lines)
        s.errors_written += b.n_errors
        for reason, lines in b.errors.items():
            s.errors_by_reason[reason] = s.errors_by_reason.get(reason, 0) + len(lines)
        s.objects_written += len(written_objects)
        s.error_objects_written += len(b.errors)
        s.flushes += 1
        if written_objects and s.first_object_at is None:
            s.first_object_at = time.monotonic()
        if self.event_ids is not None:
            self.event_ids.update(b.ids)
            s.distinct_events = len(self.event_ids)
        log.info(
            "flushed %d events, %d errors in %d object(s) in %.0f ms; offsets %s",
            len(b.lines),
            b.n_errors,
            len(written_objects) + len(b.errors),
            (time.monotonic() - t0) * 1000,
            {f"{t}/{p}": o for (t, p), o in sorted(b.offsets.items())},
        )
        if self.on_flush:
            self.on_flush(self.stats)

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit after the objects are durable; asynchronously, so that a slow coordinator does
        not hold the next object (commits go out in order; a failed one only means re-delivery)."""
        from confluent_kafka import TopicPartition

        if self._consumer is None:
            return
        payload = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self._consumer.commit(offsets=payload, asynchronous=True)
        except Exception as exc:  # noqa: BLE001 - the objects are durable; an uncommitted offset means re-delivery
            self.stats.commit_failures += 1
            log.warning("offset commit failed: %r; records may be re-delivered", exc)
            if exc.args and hasattr(exc.args[0], "code"):
                self._on_error(exc.args[0])

    def _commit_sync(self) -> None:
        """On stop: the durable offsets, committed and waited for (the async ones may be in flight)."""
        from confluent_kafka import TopicPartition

        if self._consumer is None or not self.durable_offsets:
            return
        payload = [TopicPartition(t, p, o) for (t, p), o in self.durable_offsets.items()]
        try:
            self._consumer.commit(offsets=payload, asynchronous=False)
        except Exception as exc:  # noqa: BLE001 - the objects are durable; re-delivery at worst
            self.stats.commit_failures += 1
            log.warning("final offset commit failed: %r; records may be re-delivered", exc)

    def _on_commit(self, err: Any, partitions: list[Any]) -> None:
        if err is not None:
            self._on_error(err)
            self.stats.commit_failures += 1
            log.warning("offset commit failed: %s; records may be re-delivered", err)

    # --- consumer -----------------------------------------------------------------------

    def _on_error(self, err: Any) -> None:
        from confluent_kafka import KafkaError

        fenced = err.code() in (KafkaError._FENCED, KafkaError.FENCED_INSTANCE_ID) or "fenced" in err.str().lower()
        if fenced:  # librdkafka makes it fatal: this consumer cannot come back
            self._fatal = (
                f"the lake writer was fenced out of group {self.group_id}: another consumer joined with its "
                f"group.instance.id {self.instance_id!r} (a second writer on this broker?)"
            )
        elif err.fatal() or err.code() == KafkaError._FATAL:
            self._fatal = self._fatal or f"the lake writer's Kafka client failed: {err.str()}"
        else:
            log.warning("kafka: %s", err.str())

    def _make_consumer(self) -> Any:
        from confluent_kafka import Consumer, TopicPartition

        overrides = dict(self.consumer_overrides)
        if self.instance_id and (self.start_offsets is None or self.resume):
            overrides.setdefault("group.instance.id", self.instance_id)
        config = confluent_consumer_config(self.settings, self.group_id, **overrides)
        config["error_cb"] = self._on_error
        config["on_commit"] = self._on_commit
        consumer = Consumer(config)
        if self.start_offsets is not None and not self.resume:
            tps = [TopicPartition(self.topic, p, o) for p, o in sorted(self.start_offsets.items())]
            consumer.assign(tps)
            self._assignment = set(self.start_offsets)
            self._unassigned_since = None
            log.info("assigned %s from offsets %s", self.topic, self.start_offsets)
        else:
            self._subscribe(consumer)
        return consumer

    def _subscribe(self, consumer: Any) -> None:
        writer = self

        def on_assign(c: Any, partitions: list[Any]) -> None:
            if writer.resume and writer.start_offsets is not None and partitions:
                # Resume from the group's committed offsets; a partition the group never
                # committed starts at `start_offsets` (Firehose's ReadFromTimestamp: by
                # default the time the stream became active), not at the topic's beginning.
                committed = c.committed(partitions, timeout=10)
                for tp in committed:
                    if tp.offset < 0 and tp.partition in writer.start_offsets:
                        tp.offset = writer.start_offsets[tp.partition]
                c.assign(committed)
                partitions = committed
            writer._assignment = {tp.partition for tp in partitions}
            writer._unassigned_since = None if partitions else time.monotonic()
            log.info("assigned %s", sorted((tp.topic, tp.partition) for tp in partitions))

        def on_revoke(c: Any, partitions: list[Any]) -> None:
            # Hand partitions over with nothing pending, so the next owner starts exactly
            # where our durable objects end.
            try:
                writer.flush()
                writer._commit_sync()
            except Exception:  # noqa: BLE001
                log.exception("flush on partition revocation failed; records will be re-delivered")
            writer._assignment -= {tp.partition for tp in partitions}
            if not writer._assignment:
                writer._unassigned_since = time.monotonic()
            log.info("revoked %s", sorted((tp.topic, tp.partition) for tp in partitions))

        def on_lost(c: Any, partitions: list[Any]) -> None:
            log.warning("lost %s (evicted from group %s)", sorted((tp.topic, tp.partition) for tp in partitions), writer.group_id)
            writer._assignment -= {tp.partition for tp in partitions}
            if not writer._assignment:
                writer._unassigned_since = time.monotonic()

        consumer.subscribe([self.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)

    def _check_assignment(self) -> None:
        """Rejoin once after `assign_timeout_s` without partitions; fail after twice that."""
        since = self._unassigned_since
        if since is None:
            self.stats.unassigned_for_s = 0.0
            return
        waited = time.monotonic() - since
        self.stats.unassigned_for_s = waited
        if waited < self.assign_timeout_s:
            return
        if not self._rejoined:
            self._rejoined = True
            log.warning("no partitions of %s for %.0f s; rejoining group %s", self.topic, waited, self.group_id)
            self._consumer.unsubscribe()
            self._subscribe(self._consumer)
            self._unassigned_since = time.monotonic()
            return
        raise WriterStalled(f"the lake writer has had no partitions of {self.topic} for {waited:.0f} s: {self._why_unassigned()}")

    def _why_unassigned(self) -> str:
        try:
            md = self._consumer.list_topics(self.topic, timeout=3)
            tmd = md.topics.get(self.topic)
        except Exception as exc:  # noqa: BLE001 - the cause is then the broker itself
            return f"Kafka at {self.settings.bootstrap_servers} does not answer ({exc!r})"
        if tmd is None or tmd.error is not None:
            return f"topic {self.topic} does not exist on {self.settings.bootstrap_servers} ({tmd.error.str() if tmd else 'no metadata'})"
        return f"group {self.group_id} gives all {len(tmd.partitions)} partitions to other members (another writer in the same group?)"

    def _update_lag(self) -> None:
        from confluent_kafka import TopicPartition

        def done(p: int) -> int | None:
            d = self.durable_offsets.get((self.topic, p))
            if d is None:
                d = self._first_offset.get(p)
                if d is None and self.start_offsets is not None:
                    d = self.start_offsets.get(p)
            return d

        consumer, topic = self._consumer, self.topic
        lag = cached_lag(lambda p: consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True)[1], done, self._assignment)
        self.stats.lag = lag or 0
        self.stats.assigned = len(self._assignment)

    def run(self, stop: threading.Event, *, until_events: int | None = None) -> WriterStats:
        """Consume until `stop` is set (or `until_events` distinct/written events are durable)."""
        removed = lake.remove_partial_objects(self.lake_dir) if self.lake_dir.exists() else 0
        if removed:
            log.info("removed %d partial object(s) left by a crashed writer", removed)
        self._reader = threading.current_thread()
        self._consumer = consumer = self._make_consumer()
        sink = threading.Thread(target=self._sink, name="writer-sink", daemon=True)
        sink.start()
        last_lag = last_check = 0.0
        add_batch = self._add_batch
        try:
            while not stop.is_set():
                timeout = CONSUME_WAIT_S
                if self._started is not None:
                    left = self.buffer_interval_s - (time.monotonic() - self._started)
                    timeout = max(0.0, min(CONSUME_WAIT_S, left))
                t0 = time.monotonic()
                msgs = consumer.consume(CONSUME_BATCH, timeout)
                t1 = time.monotonic()
                self.stats.consume_s += t1 - t0
                if msgs:
                    add_batch(msgs)
                    self.stats.process_s += time.monotonic() - t1
                if self._fatal is not None:
                    raise WriterStalled(self._fatal)
                while not self._to_commit.empty():
                    self._commit(self._to_commit.get())
                if self._due():
                    self._flush_async()
                now = time.monotonic()
                if now - last_lag >= LAG_EVERY_S:
                    self._update_lag()
                    last_lag = now
                if now - last_check >= 1.0:
                    self._check_assignment()
                    last_check = now
                if until_events is not None and self._written_target() >= until_events:
                    break
            if self._fatal is None and self._drain_to is not None:
                self._read_to_drain(consumer)
            if self._fatal is None:
                self.flush()
                self._commit_sync()
            self._update_lag()
        finally:
            self._sink_queue.put(None)
            sink.join(60)
            self._consumer = None
            try:
                consumer.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the consumer failed")
        return self.stats

    def _read_all(self, target: dict[tuple[str, int], int]) -> bool:
        """Has every record below `target` been read (buffered, in flight or durable)?"""
        for tp, end in target.items():
            read = self._read_to.get(tp)
            if read is None:  # nothing read from it: it holds nothing new if the start is at the end
                read = self.durable_offsets.get(tp, (self.start_offsets or {}).get(tp[1], 0))
            if read < end:
                return False
        return True

    def _read_to_drain(self, consumer: Any) -> None:
        """The orderly stop: read on until every record below the drain target is read (at
        most DRAIN_ON_STOP_S), so what the producer had acknowledged is in the last flush."""
        target = self._drain_to or {}
        deadline = time.monotonic() + DRAIN_ON_STOP_S
        while not self._read_all(target):
            if time.monotonic() > deadline:
                missing = sum(max(0, end - self._read_to.get(tp, end)) for tp, end in target.items())
                log.warning(
                    "stopping with about %d acknowledged records not read within %.0f s: they stay in Kafka", missing, DRAIN_ON_STOP_S
                )
                return
            msgs = consumer.consume(CONSUME_BATCH, CONSUME_WAIT_S)
            if msgs:
                self._add_batch(msgs)
            if self._fatal is not None:
                return
            if self._size >= self.buffer_bytes:
                self._flush_async()
        log.info("read up to the producer's last acknowledged records before the last flush")

    def _written_target(self) -> int:
        return self.stats.distinct_events if self.event_ids is not None else self.stats.events_written


# --- standalone process (used by the fault tests, and handy for operators) -----------------


def main(argv: list[str] | None = None) -> int:
    cfg = EMBEDDED
    p = argparse.ArgumentParser(prog="python -m acme_telemetry.local.writer", description="Run the lake writer alone.")
    p.add_argument("--bootstrap-servers", required=True, metavar="HOST:PORT")
    p.add_argument("--lake", type=Path, required=True)
    p.add_argument("--buffer-interval", type=float, default=cfg.firehose.buffer_interval_s, metavar="S")
    p.add_argument("--buffer-size-mb", type=float, default=cfg.firehose.buffer_size_mb, metavar="MB")
    p.add_argument("--topic", default=TOPIC)
    p.add_argument("--group", default=GROUP_ID)
    p.add_argument(
        "--assign-timeout",
        type=float,
        default=ASSIGN_TIMEOUT_S,
        metavar="S",
        help="fail after twice this long without partitions (one rejoin in between)",
    )
    p.add_argument("--log-file", type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        filename=args.log_file,
        force=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    writer = LakeWriter(
        KafkaSettings.local(args.bootstrap_servers),
        args.lake,
        buffer_interval_s=args.buffer_interval,
        buffer_size_mb=args.buffer_size_mb,
        topic=args.topic,
        group_id=args.group,
        instance_id=f"{args.group}-1",
        assign_timeout_s=args.assign_timeout,
    )
    try:
        stats = writer.run(stop)
    except WriterStalled as exc:
        print(f"lake writer: {exc}", file=sys.stderr)
        return 1
    print(orjson.dumps(stats.as_dict()).decode(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
