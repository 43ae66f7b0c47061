"""The local producer and the dashboard feed on the real broker: what they report about Kafka.

The producer (confluent-kafka) gets no callback for a delivered record; it counts what the
broker acknowledged from librdkafka's queue and reads the end offsets from the broker. The
feed reports its own lag from its client's cached high watermarks. Both are checked here
against what the broker itself says.
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from localrun import wait_for

from acme_telemetry.kafka import KafkaSettings
from acme_telemetry.local.broker import pick_port
from acme_telemetry.local.feed import DashboardFeed
from acme_telemetry.local.producer import LocalProducer, high_watermarks
from acme_telemetry.simulator import SimConfig, iter_records

pytestmark = pytest.mark.integration


def _broker_ends(settings, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": f"{topic}-probe"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(3)}
    finally:
        c.close()


def _produce_plain(settings, topic: str, records) -> None:
    p = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for key, value in records:
        p.produce(topic, value, key)
    assert p.flush(30) == 0


def test_the_producer_counts_acknowledged_records_and_reads_the_end_offsets_from_the_broker(settings, topic):
    _produce_plain(settings, topic, iter_records(123, SimConfig(seed=7)))  # an earlier run's records
    n = 20_000
    p = LocalProducer(settings, events=n, seed=8, topic=topic, concurrent_viewers=2_000)
    stats = p.run(threading.Event())
    assert (stats.sent, stats.produced, stats.failed, stats.done) == (n, n, 0, True)
    ends = _broker_ends(settings, topic)
    assert stats.end_offsets == ends, "the end offsets are the broker's high watermarks"
    assert sum(ends.values()) == n + 123
    assert high_watermarks(settings, topic) == ends


def test_a_stopped_producer_reports_only_what_the_broker_acknowledged(settings, topic):
    p = LocalProducer(settings, events=10**9, seed=9, topic=topic, concurrent_viewers=2_000)
    stop = threading.Event()
    out: list = []
    t = threading.Thread(target=lambda: out.append(p.run(stop)), daemon=True)
    t.start()
    wait_for(lambda: p.stats.produced > 5_000, 60, "some records acknowledged")
    for _ in range(10):  # while it runs: never more acknowledged than the broker holds
        acknowledged = p.stats.produced
        in_kafka = sum(_broker_ends(settings, topic).values())
        assert acknowledged <= in_kafka
        assert p.stats.sent > acknowledged, "records in flight are not counted as acknowledged"
    stop.set()
    t.join(60)
    assert not t.is_alive() and out
    stats = out[0]
    ends = _broker_ends(settings, topic)
    assert stats.produced == stats.sent == sum(ends.values()), "after the flush, everything handed over is acknowledged"
    assert stats.end_offsets == ends
    assert not stats.done


def test_reading_the_end_offsets_of_a_broker_that_is_gone_gives_up_within_its_budget():
    """The producer reads them as it stops; a stop with the broker gone must not wait long."""
    nobody = KafkaSettings.local(f"127.0.0.1:{pick_port(None)}")
    t = time.monotonic()
    with pytest.raises(KafkaException):
        high_watermarks(nobody, "acme-telemetry", timeout_s=1.0)
    assert time.monotonic() - t < 3.0


class _Sink:
    def publish_threadsafe(self, data: bytes, kind: str) -> None:
        pass


def test_the_feed_reports_its_lag_behind_the_topic(settings, topic):
    feed = DashboardFeed(settings, _Sink(), topic=topic, group_id=f"{topic}-feed")
    slow = feed.aggregator.add_values

    def add_values(values, partitions):  # a feed that reads slower than the topic grows
        time.sleep(0.3)
        slow(values, partitions)

    feed.aggregator.add_values = add_values  # type: ignore[method-assign]
    stop = threading.Event()
    t = threading.Thread(target=feed.run, args=(stop,), daemon=True)
    t.start()
    try:
        assert feed.ready.wait(30)
        n = 30_000
        _produce_plain(settings, topic, iter_records(n, SimConfig(seed=10, concurrent_viewers=2_000)))
        seen: list[int] = []

        def caught_up() -> bool:
            if isinstance(feed.lag, int):
                seen.append(feed.lag)
            return feed.aggregator.events == n and feed.lag == 0

        wait_for(caught_up, 120, "the feed to read every record")
        assert max(seen) > 0, "the feed never reported a lag while it was behind"
        assert max(seen) <= n
    finally:
        stop.set()
        t.join(30)
