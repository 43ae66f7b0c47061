"""The local producer: simulator records into the topic, at a rate or as fast as Kafka takes them.

On AWS the generator and producer Lambdas do this. Here one loop draws records from the
simulator and sends them in chunks. Each chunk is flushed and checked; a chunk with a
failed record is sent again (at-least-once: the lake writer and the KPIs tolerate
duplicates of an event_id).

`end_offsets` records, per partition, the offset after the last acknowledged record: the
lake writer has everything once its durable offsets reach them (`local --events N`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from acme_telemetry.kafka import KafkaSettings, ProduceError, make_producer
from acme_telemetry.schema import TOPIC

log = logging.getLogger(__name__)

PRODUCE_CHUNK = 2000
DEFAULT_VIEWERS = 200  # the simulator's audience when --viewers is not given


@dataclass
class ProducerStats:
    produced: int = 0
    failed_chunks: int = 0
    done: bool = False  # all `events` are acknowledged
    # partition -> highest acknowledged offset + 1 (what the writer must commit to be done)
    end_offsets: dict[int, int] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)


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
    ) -> None:
        self.settings = settings.with_client_id("acme-local-producer")
        self.events = events
        self.rate = rate
        self.seed = seed
        self.start = start
        self.concurrent_viewers = concurrent_viewers
        self.topic = topic
        self.stats = ProducerStats()

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        from acme_telemetry.simulator import SimConfig, iter_records

        kw: dict[str, Any] = {"seed": self.seed}
        if self.start is not None:
            kw["start"] = self.start
        if self.concurrent_viewers:
            kw["concurrent_viewers"] = self.concurrent_viewers
        n = self.events if self.events is not None else 10**15
        return iter_records(n, SimConfig(**kw))

    def _pace(self) -> float | None:
        """Events per second to keep to: --rate, else real time for an endless run."""
        if self.rate is not None or self.events is not None:
            return self.rate
        from acme_telemetry.simulator import SimConfig, expected_events_per_s

        # Interactive run: real time, events stamped about now.
        return float(expected_events_per_s(SimConfig(seed=self.seed, concurrent_viewers=self.concurrent_viewers or DEFAULT_VIEWERS)))

    def run(self, stop: threading.Event) -> ProducerStats:
        """Produce until all events are acknowledged or `stop` is set; always flush and close."""
        stats = self.stats
        producer = make_producer(self.settings, linger_ms=20, batch_size=256 * 1024)
        rate = self._pace()
        try:
            stats.started_at = t0 = time.monotonic()
            chunk: list[tuple[bytes, bytes]] = []
            chunk_size = PRODUCE_CHUNK if not rate else max(1, min(PRODUCE_CHUNK, int(rate / 10)))
            sent_or_queued = 0
            for rec in self.records():
                if stop.is_set():
                    break
                chunk.append(rec)
                sent_or_queued += 1
                if len(chunk) >= chunk_size:
                    self._send_chunk(producer, chunk, stop)
                    chunk = []
                    if rate:
                        ahead = sent_or_queued / rate - (time.monotonic() - t0)
                        if ahead > 0 and stop.wait(ahead):
                            break
            if chunk and not stop.is_set():
                self._send_chunk(producer, chunk, stop)
            stats.done = self.events is not None and stats.produced >= self.events
        finally:
            try:
                producer.flush()
                producer.close(timeout=10)
            except Exception:  # noqa: BLE001 - what was acknowledged is counted; the rest is resent next run
                log.exception("closing the producer failed")
            log.info("producer stopped: %d produced", stats.produced)
        return stats

    def _send_chunk(self, producer: Any, chunk: list[tuple[bytes, bytes]], stop: threading.Event) -> None:
        stats = self.stats
        while True:
            futures = []
            try:
                for key, value in chunk:
                    futures.append(producer.send(self.topic, key=key, value=value))
                producer.flush()
                failed = [f for f in futures if not f.succeeded()]
                if failed:
                    raise ProduceError(
                        f"{len(failed)} records failed: {failed[0].exception!r}", sent=len(futures) - len(failed), failed=len(failed)
                    )
            except Exception as exc:  # noqa: BLE001 - resend the chunk: at-least-once
                stats.failed_chunks += 1
                log.warning("produce failed (%r); resending %d records", exc, len(chunk))
                if stop.wait(1.0):
                    raise
                continue
            for f in futures:
                md = f.value
                if md.offset + 1 > stats.end_offsets.get(md.partition, 0):
                    stats.end_offsets[md.partition] = md.offset + 1
            stats.produced += len(chunk)
            return
