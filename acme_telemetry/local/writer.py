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

Run alone (the fault tests kill -9 it): python -m acme_telemetry.local.writer --help
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from acme_telemetry import lake
from acme_telemetry.kafka import KafkaSettings, make_consumer
from acme_telemetry.schema import TOPIC
from acme_telemetry.settings import EMBEDDED

log = logging.getLogger(__name__)

GROUP_ID = "acme-lake-writer"
MB = 1024 * 1024


@dataclass
class WriterStats:
    records_in: int = 0  # consumed, valid or not
    events_written: int = 0  # durable in telemetry/ objects
    errors_written: int = 0  # durable in errors/ objects
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    objects_written: int = 0
    error_objects_written: int = 0
    bytes_written: int = 0  # compressed bytes of telemetry objects
    flushes: int = 0
    commit_failures: int = 0
    buffered: int = 0
    lag: int | None = None  # records in the topic not yet durable in the lake
    distinct_events: int = 0  # distinct event_ids written, when tracked
    started_at: float = field(default_factory=time.monotonic)
    first_object_at: float | None = None  # monotonic time of the first durable object

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _tp_key(tp: Any) -> tuple[str, int]:
    return (tp.topic, tp.partition)


class LakeWriter:
    """Consume `topic` in group `group_id` and write the lake under `lake_dir`."""

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
        self.stats = WriterStats()
        self.event_ids: set[str] | None = set() if track_event_ids else None
        # (topic, partition) -> next offset whose records are all durable in the lake
        self.durable_offsets: dict[tuple[str, int], int] = {}
        # Set by drain(): once everything below these offsets has been read, flush at once
        # instead of waiting out the buffer interval (as on shutdown).
        self._drain_to: dict[tuple[str, int], int] | None = None
        self._consumer: Any = None
        self._lock = threading.Lock()
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

    def _add(self, rec: Any) -> None:
        arrival_ms = rec.timestamp if rec.timestamp and rec.timestamp > 0 else int(time.time() * 1000)
        value = rec.value
        event, reason, detail = lake.check_record(value)
        if event is not None:
            line = value if (b"\n" not in value and b"\r" not in value) else orjson.dumps(event)
            self._lines.append(line)
            self._size += len(line) + 1
            if self.event_ids is not None:
                self._ids.append(event["event_id"])
            if self._oldest_ms is None or arrival_ms < self._oldest_ms:
                self._oldest_ms = arrival_ms
        else:
            reason = reason or "unknown"
            detail = detail or ""
            err = lake.error_line(
                value, reason, detail, arrival_ms, topic=rec.topic, partition=rec.partition, offset=rec.offset,
                key=(rec.key or b"").decode("utf-8", "replace")[:200],
            )
            self._errors.setdefault(reason, []).append(err)
            self._size += len(err) + 1
            self._n_errors += 1
            if reason not in self._errors_oldest_ms or arrival_ms < self._errors_oldest_ms[reason]:
                self._errors_oldest_ms[reason] = arrival_ms
            log.warning("record %s/%d@%d -> errors/%s: %s", rec.topic, rec.partition, rec.offset, reason, detail)
        self._offsets[(rec.topic, rec.partition)] = rec.offset + 1
        if self._started is None:
            self._started = time.monotonic()
        self.stats.records_in += 1
        self.stats.buffered += 1

    def drain(self, end_offsets: dict[tuple[str, int], int]) -> None:
        """Flush as soon as every record below `end_offsets` has been read (thread-safe:
        the writer thread acts on it). `local --events N` uses it once N are produced."""
        self._drain_to = dict(end_offsets)

    def _drained(self) -> bool:
        target = self._drain_to
        if target is None or not self._offsets:
            return False
        read = {**self.durable_offsets, **self._offsets}
        return all(read.get(tp, 0) >= end for tp, end in target.items())

    def _due(self) -> bool:
        if self._started is None:
            return False
        return (
            self._size >= self.buffer_bytes
            or time.monotonic() - self._started >= self.buffer_interval_s
            or self._drained()
        )

    # --- flush: objects first, offsets after -------------------------------------------

    def flush(self) -> bool:
        """Write what is buffered, durably, then commit its offsets. True if anything was written."""
        with self._lock:
            if not self._offsets:
                return False
            written_objects = []
            if self._lines and self._oldest_ms is not None:
                arrival = datetime.fromtimestamp(self._oldest_ms / 1000, tz=UTC)
                key = lake.partition_path(arrival) + lake.object_name(arrival)
                path = lake.write_object(self.lake_dir, key, self._lines)
                written_objects.append(path)
                self.stats.bytes_written += path.stat().st_size
            for reason, lines in self._errors.items():
                arrival = datetime.fromtimestamp(self._errors_oldest_ms[reason] / 1000, tz=UTC)
                key = lake.error_partition_path(reason, arrival) + lake.object_name(arrival)
                lake.write_object(self.lake_dir, key, lines)
            # Everything above is durable: the offsets may move past it now.
            self.durable_offsets.update(self._offsets)
            self._commit(dict(self._offsets))
            s = self.stats
            s.events_written += len(self._lines)
            s.errors_written += self._n_errors
            for reason, lines in self._errors.items():
                s.errors_by_reason[reason] = s.errors_by_reason.get(reason, 0) + len(lines)
            s.objects_written += len(written_objects)
            s.error_objects_written += len(self._errors)
            s.flushes += 1
            if written_objects and s.first_object_at is None:
                s.first_object_at = time.monotonic()
            if self.event_ids is not None:
                self.event_ids.update(self._ids)
                s.distinct_events = len(self.event_ids)
            log.info(
                "flushed %d events, %d errors in %d object(s); offsets %s",
                len(self._lines), self._n_errors, len(written_objects) + len(self._errors),
                {f"{t}/{p}": o for (t, p), o in sorted(self._offsets.items())},
            )
            self._reset_buffer()
        if self.on_flush:
            self.on_flush(self.stats)
        return True

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        from kafka import TopicPartition
        from kafka.errors import CommitFailedError, KafkaError
        from kafka.structs import OffsetAndMetadata

        if self._consumer is None:
            return
        payload = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
        for attempt in range(3):
            try:
                self._consumer.commit(payload)
                return
            except KafkaError as exc:
                # The objects are durable; an uncommitted offset only means re-delivery.
                self.stats.commit_failures += 1
                log.warning("offset commit failed (attempt %d): %r; records may be re-delivered", attempt + 1, exc)
                if isinstance(exc, CommitFailedError):  # the group moved on: no retry helps
                    return
                time.sleep(0.5)

    # --- consumer loop ------------------------------------------------------------------

    def _make_consumer(self) -> Any:
        from kafka import ConsumerRebalanceListener

        writer = self

        class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python is untyped
            def on_partitions_revoked(self, revoked: Any) -> None:
                # Hand partitions over with nothing pending, so the next owner starts
                # exactly where our durable objects end.
                try:
                    writer.flush()
                except Exception:  # noqa: BLE001
                    log.exception("flush on partition revocation failed; records will be re-delivered")

            def on_partitions_assigned(self, assigned: Any) -> None:
                log.info("assigned %s", sorted(_tp_key(tp) for tp in assigned))

        overrides = {
            "max_poll_records": 5000,
            "session_timeout_ms": 10_000,
            "heartbeat_interval_ms": 2_000,
            "fetch_max_wait_ms": 200,
            **self.consumer_overrides,
        }
        if self.instance_id:
            overrides.setdefault("group_instance_id", self.instance_id)
        consumer = make_consumer(self.settings, self.group_id, **overrides)
        consumer.subscribe([self.topic], listener=_Listener())
        return consumer

    def _update_lag(self) -> None:
        consumer = self._consumer
        try:
            assigned = consumer.assignment()
            if not assigned:
                return
            ends = consumer.end_offsets(list(assigned), timeout_ms=2000)
            lag = 0
            for tp in assigned:
                pos = self._offsets.get(_tp_key(tp))
                if pos is None:
                    pos = consumer.position(tp, timeout_ms=2000)
                    # position is past what is buffered; nothing is buffered for tp here
                lag += max(0, (ends.get(tp) or 0) - pos)
            self.stats.lag = lag + self.stats.buffered
        except Exception as exc:  # noqa: BLE001 - lag is informational
            log.debug("lag unavailable: %r", exc)

    def run(self, stop: threading.Event, *, until_events: int | None = None) -> WriterStats:
        """Consume until `stop` is set (or `until_events` distinct/written events are durable)."""
        removed = lake.remove_partial_objects(self.lake_dir) if self.lake_dir.exists() else 0
        if removed:
            log.info("removed %d partial object(s) left by a crashed writer", removed)
        self._consumer = self._make_consumer()
        last_lag = 0.0
        try:
            while not stop.is_set():
                timeout_ms = 500
                if self._started is not None:
                    left = self.buffer_interval_s - (time.monotonic() - self._started)
                    timeout_ms = int(max(0, min(500, left * 1000)))
                batches = self._consumer.poll(timeout_ms=timeout_ms)
                for records in batches.values():
                    for rec in records:
                        self._add(rec)
                        if self._size >= self.buffer_bytes:
                            self.flush()
                if self._due():
                    self.flush()
                now = time.monotonic()
                if now - last_lag >= 1.0:
                    self._update_lag()
                    last_lag = now
                if until_events is not None and self._written_target() >= until_events:
                    break
            self.flush()
            self._update_lag()
        finally:
            consumer, self._consumer = self._consumer, None
            try:
                consumer.close(autocommit=False)
            except Exception:  # noqa: BLE001
                log.exception("closing the consumer failed")
        return self.stats

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
    p.add_argument("--log-file", type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        filename=args.log_file, force=True,
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    writer = LakeWriter(
        KafkaSettings.local(args.bootstrap_servers), args.lake,
        buffer_interval_s=args.buffer_interval, buffer_size_mb=args.buffer_size_mb, topic=args.topic,
        group_id=args.group, instance_id=f"{args.group}-1",
    )
    stats = writer.run(stop)
    print(orjson.dumps(stats.as_dict()).decode(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
