"""The local producer: simulator records into the topic, at a rate or as fast as Kafka takes them.

On AWS the generator and producer Lambdas do this. Here one loop draws records from the
simulator and hands them to a Kafka producer; a delivery callback counts each record the
broker acknowledged and records the offset after it per partition (`end_offsets`). There is
no flush barrier per chunk: the client batches and pipelines, and only stopping flushes.

Two clients:
- `confluent-kafka` (librdkafka, the default): 7-10x kafka-python's throughput on 2 cores;
- `kafka-python` (`local --client kafka-python`): the producer Lambda's client and settings
  (acme_telemetry.kafka.make_producer), to rehearse that path end to end.

Both are acks=all and idempotent. A record whose delivery failed (after the client's own
retries) is sent again: at-least-once, as the lake writer and the KPIs tolerate duplicates
of an event_id. The lake writer has everything once its durable offsets reach
`end_offsets` (`local --events N`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from acme_telemetry.kafka import KafkaSettings, make_producer
from acme_telemetry.schema import TOPIC

log = logging.getLogger(__name__)

Client = Literal["confluent-kafka", "kafka-python"]
CLIENTS: tuple[Client, ...] = ("confluent-kafka", "kafka-python")
DEFAULT_VIEWERS = 200  # the simulator's audience when --viewers is not given
PACE_STEP = 500  # records between two looks at the clock (--rate) and at the delivery reports
MAX_IN_FLIGHT = 200_000  # records handed over and not yet acknowledged (bounds memory)


@dataclass
class ProducerStats:
    produced: int = 0  # acknowledged by the broker
    sent: int = 0  # handed to the client (acknowledged or not yet)
    failed: int = 0  # deliveries that failed and were sent again
    done: bool = False  # all `events` are acknowledged
    # partition -> highest acknowledged offset + 1 (what the writer must commit to be done)
    end_offsets: dict[int, int] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)
    last_error: str | None = None


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
        self.stats = ProducerStats()
        self._lock = threading.Lock()
        self._retry: deque[tuple[bytes, bytes]] = deque()
        # Cleared by the supervisor while the lake writer is too far behind (back-pressure):
        # the load generator waits instead of growing the lag without bound.
        self.go = threading.Event()
        self.go.set()

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
        send, poll, close = self._confluent() if self.client == "confluent-kafka" else self._kafka_python()
        stats = self.stats
        rate = self._pace()
        try:
            stats.started_at = t0 = time.monotonic()
            for key, value in self.records():
                if stop.is_set():
                    break
                send(key, value)
                stats.sent += 1
                if self._retry:
                    self._resend(send)
                if stats.sent - stats.produced > MAX_IN_FLIGHT:
                    while stats.sent - stats.produced > MAX_IN_FLIGHT // 2 and not stop.is_set():
                        poll(0.05)
                        self._resend(send)
                if stats.sent % PACE_STEP == 0:
                    poll(0)  # serve delivery reports (confluent-kafka runs callbacks only in poll)
                    while not self.go.is_set() and not stop.is_set():
                        poll(0.05)
                    if rate:
                        ahead = stats.sent / rate - (time.monotonic() - t0)
                        if ahead > 0 and stop.wait(ahead):
                            break
            # Every record is handed over: wait for the acknowledgements (and resend failures).
            while not stop.is_set() and (stats.produced < stats.sent or self._retry):
                poll(0.1)
                self._resend(send)
            stats.done = self.events is not None and stats.produced >= self.events
        finally:
            try:
                close()
            except Exception:  # noqa: BLE001 - what was acknowledged is counted; the rest is resent next run
                log.exception("closing the producer failed")
            stats.done = self.events is not None and stats.produced >= self.events
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

    def _confluent(self) -> tuple[Any, Any, Any]:
        from confluent_kafka import Producer

        producer = Producer(confluent_producer_config(self.settings))
        produce, poll, topic = producer.produce, producer.poll, self.topic

        def on_delivery(err: Any, msg: Any) -> None:
            if err is None:
                self._delivered(msg.partition(), msg.offset())
            else:
                self._failed(msg.key(), msg.value(), err)

        def send(key: bytes, value: bytes) -> None:
            while True:
                try:
                    produce(topic, value, key, on_delivery=on_delivery)
                    return
                except BufferError:  # librdkafka's queue is full: serve delivery reports
                    poll(0.05)

        def close() -> None:
            left = producer.flush(30)
            if left:
                log.warning("%d records were not acknowledged within 30 s of stopping", left)

        return send, poll, close

    def _kafka_python(self) -> tuple[Any, Any, Any]:
        producer = make_producer(self.settings, linger_ms=20, batch_size=256 * 1024)
        topic = self.topic

        def send(key: bytes, value: bytes) -> None:
            future = producer.send(topic, key=key, value=value)
            future.add_callback(lambda md: self._delivered(md.partition, md.offset))
            future.add_errback(lambda exc: self._failed(key, value, exc))

        def poll(timeout: float) -> None:
            if timeout:
                time.sleep(timeout)  # kafka-python's sender thread delivers the callbacks

        def close() -> None:
            producer.flush(30)
            producer.close(timeout=10)

        return send, poll, close


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
        "partitioner": "murmur2_random",  # Java's partitioner: the same session -> partition as the Lambda
    }
