"""The lake writer and SQL on the real broker: completeness, ground truth, poison, faults."""

from __future__ import annotations

import base64
import collections
import os
import signal
import subprocess
import sys
import threading
import time

import orjson
import pytest
from lake_read import error_records, lake_events
from localrun import ROOT, wait_for

from acme_telemetry import kafka as k
from acme_telemetry.local.query import run_query
from acme_telemetry.local.writer import LakeWriter
from acme_telemetry.simulator import SimConfig, iter_records

pytestmark = pytest.mark.integration
README_QUERY = (
    "SELECT event_type, COUNT(*) AS count FROM acme_telemetry.streaming_events WHERE year = '2026' AND month = '01' GROUP BY event_type"
)


def _writer_thread(settings, lake, topic, **kw):
    stop = threading.Event()
    w = LakeWriter(
        settings,
        lake,
        topic=topic,
        group_id=f"{topic}-writer",
        instance_id=None,
        buffer_interval_s=kw.pop("buffer_interval_s", 1),
        buffer_size_mb=kw.pop("buffer_size_mb", 5),
        **kw,
    )
    t = threading.Thread(target=w.run, args=(stop,), daemon=True)
    t.start()
    return w, stop, t


def test_n_events_give_n_distinct_ids_and_query_matches_ground_truth(settings, topic, tmp_path):
    n = 20_000
    records = list(iter_records(n, SimConfig(seed=7)))
    truth = collections.Counter(orjson.loads(v)["event_type"] for _, v in records)
    producer = k.make_producer(settings, linger_ms=20)
    assert k.produce(producer, topic, records) == n
    producer.close()

    w, stop, t = _writer_thread(settings, tmp_path, topic, track_event_ids=True)
    wait_for(lambda: w.stats.distinct_events >= n, 90, f"{n} events in the lake")
    stop.set()
    t.join(30)

    events = lake_events(tmp_path)
    assert len(events) == n
    assert len({e["event_id"] for e in events}) == n
    assert w.stats.errors_written == 0
    # Objects are Firehose-named, under arrival-time partitions, and nothing partial is left.
    objs = list((tmp_path / "telemetry").rglob("*.gz"))
    assert objs and all(o.name.startswith("acme-data-delivery-stream-1-") for o in objs)
    assert not list(tmp_path.rglob("*.tmp"))
    assert all(o.relative_to(tmp_path).parts[1].startswith("year=") for o in objs)

    cols, rows = run_query("SELECT event_type, COUNT(*) AS count FROM acme_telemetry.streaming_events GROUP BY event_type", tmp_path)
    assert cols == ["event_type", "count"]
    assert dict(rows) == dict(truth)
    # The partition columns are strings as in Glue, whatever the folder values are.
    (types,) = run_query("SELECT DISTINCT typeof(year) || typeof(month) || typeof(hour) FROM acme_telemetry.streaming_events", tmp_path)[1]
    assert types == ("VARCHAR" * 3,)
    # The README's Athena query runs unchanged (this lake's arrival month is not January).
    cols, rows = run_query(README_QUERY, tmp_path)
    assert cols == ["event_type", "count"]


def test_poison_records_land_in_errors_with_reasons_and_never_stop_the_writer(settings, topic, tmp_path):
    good = list(iter_records(200, SimConfig(seed=3)))
    wrong_type = orjson.loads(good[0][1])
    wrong_type["buffering_events"] = "three"
    poison = {
        "not-json": b"this is not json {",
        "schema-mismatch": orjson.dumps(wrong_type),
        "oversized": b'{"pad": "' + b"x" * 70_000 + b'"}',
        "not-an-object": b"[1, 2, 3]",
    }
    producer = k.make_producer(settings)
    k.produce(producer, topic, good[:100] + [(b"poison", v) for v in poison.values()] + good[100:])
    producer.close()

    w, stop, t = _writer_thread(settings, tmp_path, topic)
    wait_for(lambda: w.stats.events_written + w.stats.errors_written >= 204, 60, "all records handled")
    stop.set()
    t.join(30)
    assert t.is_alive() is False
    assert w.stats.events_written == 200
    assert w.stats.errors_by_reason == {r: 1 for r in poison}
    errs = error_records(tmp_path)
    assert {e["errorCode"] for e in errs} == set(poison)
    for e in errs:
        assert e["_path"].startswith(f"errors/{e['errorCode']}/year=")
        assert base64.b64decode(e["rawData"]) == poison[e["errorCode"]]
        assert e["errorMessage"]
    assert "buffering_events" in next(e for e in errs if e["errorCode"] == "schema-mismatch")["errorMessage"]
    assert len(lake_events(tmp_path)) == 200


def _spawn_writer(settings, lake, topic, log):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "acme_telemetry.local.writer",
            "--bootstrap-servers",
            settings.bootstrap_servers,
            "--lake",
            str(lake),
            "--topic",
            topic,
            "--group",
            f"{topic}-writer",
            "--buffer-interval",
            "0.5",
            "--buffer-size-mb",
            "0.5",
            "--log-file",
            str(log),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.DEVNULL,
    )


def test_kill_9_of_the_writer_loses_nothing(settings, topic, tmp_path):
    n = 30_000
    records = list(iter_records(n, SimConfig(seed=11)))
    ids = {orjson.loads(v)["event_id"] for _, v in records}
    producer = k.make_producer(settings, linger_ms=20)
    k.produce(producer, topic, records)
    producer.close()
    lake = tmp_path / "lake"

    first = _spawn_writer(settings, lake, topic, tmp_path / "w1.log")
    try:
        wait_for(lambda: len(list(lake.rglob("*.gz"))) >= 2, 60, "the writer's first objects")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    written_before = len(lake_events(lake))
    assert 0 < written_before < n, "the kill must land mid-run"

    second = _spawn_writer(settings, lake, topic, tmp_path / "w2.log")
    try:
        wait_for(lambda: {e["event_id"] for e in lake_events(lake)} >= ids, 120, "every event after the restart")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    events = lake_events(lake)
    assert {e["event_id"] for e in events} == ids
    # At-least-once: duplicates only from the uncommitted tail of the killed writer.
    assert len(events) - n <= 30_000 and len(events) >= n
    assert not list(lake.rglob(".*.tmp")), "the restarted writer removes partial objects"


def test_broker_restart_mid_produce_loses_nothing(broker, settings, topic, tmp_path):
    n = 15_000
    records = list(iter_records(n, SimConfig(seed=5)))
    ids = {orjson.loads(v)["event_id"] for _, v in records}
    w, stop, t = _writer_thread(settings, tmp_path, topic, track_event_ids=True)
    produced = threading.Event()
    errors = []

    def produce_paced():
        producer = k.make_producer(settings, linger_ms=20)
        try:
            for i in range(0, n, 500):
                k.produce(producer, topic, records[i : i + 500])
                time.sleep(0.05)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            producer.close()
            produced.set()

    p = threading.Thread(target=produce_paced, daemon=True)
    p.start()
    wait_for(lambda: w.stats.events_written > 2000, 60, "some events in the lake before the restart")
    broker.stop()
    time.sleep(2)
    broker.start()
    assert produced.wait(180) and not errors, errors
    wait_for(lambda: w.stats.distinct_events >= n, 120, "every event after the broker restart")
    stop.set()
    t.join(30)
    assert {e["event_id"] for e in lake_events(tmp_path)} == ids


def test_a_stop_with_the_producers_end_offsets_reads_up_to_them_before_the_last_flush(settings, topic, tmp_path):
    """The orderly stop hands the writer the producer's acknowledged end offsets (runner's
    _last_drain) just before the stop. Records acknowledged in the producer's final flush may
    not have reached the writer yet: here its fetches wait up to 3 s (fetch.min.bytes far
    above what the topic holds), so the stop comes before it has read any of them."""
    w, stop, t = _writer_thread(
        settings,
        tmp_path,
        topic,
        track_event_ids=True,
        consumer_overrides={"fetch.min.bytes": 64 * 1024 * 1024, "fetch.wait.max.ms": 3000},
    )
    wait_for(lambda: w.stats.assigned == 3, 30, "the writer's partitions")
    time.sleep(3.5)  # its first (empty) fetch answered; the next one waits 3 s at the broker
    n = 2_000
    producer = k.make_producer(settings, linger_ms=5)
    assert k.produce(producer, topic, list(iter_records(n, SimConfig(seed=31)))) == n
    producer.close()
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": f"{topic}-probe"})
    ends = {p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(3)}
    probe.close()
    assert sum(ends.values()) == n
    assert w.stats.records_in == 0, "the writer read the records before the stop: the test proves nothing"
    w.drain({(topic, p): o for p, o in ends.items()})
    stop.set()
    t.join(30)
    assert not t.is_alive()
    ids = [e["event_id"] for e in lake_events(tmp_path)]
    assert len(ids) == len(set(ids)) == n, "every acknowledged record is in the last flush"
