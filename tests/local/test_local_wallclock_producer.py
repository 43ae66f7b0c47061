"""The local producer's wall-clock stream without a broker: it starts now, and a restart over
the same state folder continues after the last event the previous run produced."""

from __future__ import annotations

import threading
import time

import orjson

from acme_telemetry.kafka import KafkaSettings
from acme_telemetry.local.producer import LocalProducer, read_last_ts, write_last_ts
from acme_telemetry.simulator.live import wall_ms


def _producer(tmp_path, **kw) -> LocalProducer:
    return LocalProducer(KafkaSettings.local("127.0.0.1:1"), events=kw.pop("events", None), state_file=tmp_path / "producer.json", **kw)


def _take(p: LocalProducer, seconds: float) -> list[tuple[bytes, bytes, int | None]]:
    out: list[tuple[bytes, bytes, int | None]] = []
    stop = threading.Event()
    t0 = time.monotonic()
    for batch in p.batches(stop):
        out += batch
        if batch:
            p._note_times(batch)
        if time.monotonic() - t0 > seconds:
            stop.set()
    return out


def test_the_default_stream_is_the_wall_clock(tmp_path):
    p = _producer(tmp_path)
    assert p.wall_clock
    before = wall_ms()
    got = _take(p, 1.5)
    assert got, "2,000 viewers produce about 225 events/s"
    stamps = [ts for _, _, ts in got]
    assert all(isinstance(ts, int) for ts in stamps)
    assert before - 1000 <= stamps[0] and stamps[-1] <= wall_ms()
    assert stamps == sorted(stamps)


def test_a_restart_continues_after_the_last_produced_event(tmp_path):
    first = _producer(tmp_path)
    got = _take(first, 1.0)
    first._save()
    last = read_last_ts(tmp_path / "producer.json")
    assert last == got[-1][2]
    # The clock of the second run is behind the first's last event (a fast restart, or a
    # clock step): it starts after that event, so nothing is produced twice.
    ahead = wall_ms() + 1500
    write_last_ts(tmp_path / "producer.json", ahead, 42)
    second = _producer(tmp_path)
    again = _take(second, 2.5)
    assert again and all(ts is not None and ts > ahead for _, _, ts in again)
    ids_first = {orjson.loads(v)["event_id"] for _, v, _ in got}
    ids_second = {orjson.loads(v)["event_id"] for _, v, _ in again}
    assert not ids_first & ids_second


def test_the_state_file_is_replaced_whole(tmp_path):
    path = tmp_path / "producer.json"
    write_last_ts(path, 1_764_572_400_123, 7)
    assert orjson.loads(path.read_bytes()) == {"last_ts_ms": 1_764_572_400_123, "seed": 7, "last_ts": "2025-12-01T07:00:00.123000+00:00"}
    assert [q.name for q in tmp_path.iterdir()] == ["producer.json"]
    assert read_last_ts(tmp_path / "missing.json") is None
    path.write_text("{half")
    assert read_last_ts(path) is None


def test_events_n_without_start_is_exactly_generates_stream(tmp_path):
    from acme_telemetry.simulator import SimConfig, iter_records

    p = LocalProducer(KafkaSettings.local("127.0.0.1:1"), events=1234, seed=3, state_file=tmp_path / "producer.json")
    assert not p.wall_clock
    got = _take(p, 30)
    assert [(k, v) for k, v, _ in got] == list(iter_records(1234, SimConfig(seed=3)))
    p._save()
    assert not (tmp_path / "producer.json").exists(), "a batch run does not move the wall-clock resume point"


def test_an_endless_run_without_viewers_has_the_live_audience(tmp_path):
    from acme_telemetry.simulator import expected_events_per_s

    rate = expected_events_per_s(LocalProducer(KafkaSettings.local("127.0.0.1:1"), events=None).sim_config())
    assert 200 < rate < 250  # the README's "about 225 events/s at 2,000 viewers"
