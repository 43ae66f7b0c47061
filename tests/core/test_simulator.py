"""The simulator: determinism, window stability, coherence, rates and config errors."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from acme_telemetry import kpis
from acme_telemetry.schema import FIELD_NAMES, UHD_DEVICE_TYPES
from acme_telemetry.simulator import SimConfig, SimConfigError, iter_records, iter_window
from acme_telemetry.validate import validate_lines

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


def test_same_config_gives_identical_bytes_and_another_seed_does_not():
    a = list(iter_records(5000, SimConfig(seed=5)))
    b = list(iter_records(5000, SimConfig(seed=5)))
    c = list(iter_records(5000, SimConfig(seed=6)))
    assert a == b
    assert len(a) == 5000
    assert a != c
    assert not set(v for _, v in a) & set(v for _, v in c)


def test_records_are_time_ordered_keyed_by_session_and_carry_every_field(seeded_run):
    records, events, _ = seeded_run
    assert len(records) == 50_000
    stamps = [e["event_timestamp"] for e in events]
    assert all(TS.match(s) for s in stamps)
    assert stamps == sorted(stamps)
    for (key, value), e in zip(records, events, strict=True):
        assert key == e["session_id"].encode()
        assert not value.endswith(b"\n")
        assert list(e) == list(FIELD_NAMES)  # schema order, nothing missing or extra


def test_seeded_run_passes_the_validator(seeded_run):
    records, _, _ = seeded_run
    report = validate_lines(v for _, v in records)
    assert report.violations == []
    assert report.events == 50_000
    assert report.sessions > 300


def test_every_event_type_and_outcome_occurs(seeded_run):
    _, events, truth = seeded_run
    types = {e["event_type"] for e in events}
    assert types == {
        "start",
        "pause",
        "resume",
        "stop",
        "complete",
        "first_frame",
        "heartbeat",
        "rebuffer_start",
        "rebuffer_end",
        "bitrate_change",
        "seek",
        "error",
    }
    t = truth.overall
    assert t.video_start_failures > 0 and t.exits_before_video_start > 0 and t.playback_failures > 0
    assert any(e["event_type"] == "error" and not e["fatal"] for e in events)  # non-fatal errors too
    assert 0.8 < t.events_by_type["heartbeat"] / len(events) < 0.95


def test_consecutive_windows_concatenate_to_one_window():
    cfg = SimConfig(seed=3, concurrent_viewers=150)
    a = T0 + timedelta(hours=2)
    cut1 = a + timedelta(minutes=7, seconds=13, milliseconds=457)  # cuts inside buckets and heartbeat runs
    cut2 = a + timedelta(minutes=21)
    b = a + timedelta(minutes=30)
    whole = list(iter_window(cfg, a, b))
    parts = list(iter_window(cfg, a, cut1)) + list(iter_window(cfg, cut1, cut2)) + list(iter_window(cfg, cut2, b))
    assert len(whole) > 5000
    assert parts == whole
    # sessions run across the cuts: the same session has events on both sides
    left = {k for k, _ in iter_window(cfg, a, cut1)}
    right = {k for k, _ in iter_window(cfg, cut1, cut2)}
    assert len(left & right) > 100
    # and the stream from config.start is the same stream
    assert list(iter_records(len(whole), SimConfig(seed=3, concurrent_viewers=150, start=a))) == whole


def test_window_contains_exactly_its_timestamps():
    cfg = SimConfig(seed=4)
    a, b = T0 + timedelta(minutes=3), T0 + timedelta(minutes=4)
    got = [orjson.loads(v)["event_timestamp"] for _, v in iter_window(cfg, a, b)]
    assert got and min(got) >= "2026-11-26T15:03:00.000Z" and max(got) < "2026-11-26T15:04:00.000Z"
    assert list(iter_window(cfg, a, a)) == []
    with pytest.raises(SimConfigError, match="window_end"):
        list(iter_window(cfg, b, a))


def test_sessions_are_coherent(seeded_run):
    _, events, _ = seeded_run
    by_session = defaultdict(list)
    for e in events:
        by_session[e["session_id"]].append(e)
    homes = defaultdict(set)
    for evs in by_session.values():
        first = evs[0]
        homes[first["customer_id"]].add((first["state"], first["city"]))
        assert [e["seq"] for e in evs] == list(range(first["seq"], first["seq"] + len(evs)))
        for e in evs:
            assert abs(e["completion_percentage"] - 100 * e["position_seconds"] / e["title_duration_seconds"]) <= 0.006
            if e["quality"] == "4K":
                assert e["device_type"] in UHD_DEVICE_TYPES
    assert all(len(h) == 1 for h in homes.values())
    # a customer has a small set of devices, each with one type and OS
    devices = defaultdict(set)
    kinds = defaultdict(set)
    for evs in by_session.values():
        devices[evs[0]["customer_id"]].add(evs[0]["device_id"])
        kinds[evs[0]["device_id"]].add((evs[0]["device_type"], evs[0]["device_os"]))
    assert max(len(d) for d in devices.values()) <= 4
    assert all(len(k) == 1 for k in kinds.values())


def test_slow_connections_have_measurably_worse_qoe(seeded_run):
    _, events, _ = seeded_run
    snap = kpis.compute(events, T0, T0 + timedelta(days=1))
    by = snap["by"]["connection_type"]
    for slow in ("satellite", "dsl"):
        assert by[slow]["startup_time_ms_p50"] > 1.4 * by["fiber"]["startup_time_ms_p50"]
        assert by[slow]["rebuffer_ratio"] > 5 * by["fiber"]["rebuffer_ratio"]
        assert by[slow]["avg_bitrate_kbps"] < 0.8 * by["fiber"]["avg_bitrate_kbps"]


def test_concurrent_viewers_and_target_rate_set_the_load():
    a = T0 + timedelta(hours=1)
    for viewers in (50, 400):
        cfg = SimConfig(seed=8, concurrent_viewers=viewers)
        # live sessions at an instant = sessions with an event in one heartbeat interval (10 s);
        # averaged over 8 instants 7 minutes apart
        counts = [
            len({k for k, _ in iter_window(cfg, t, t + timedelta(seconds=10))}) for t in (a + timedelta(minutes=7 * i) for i in range(8))
        ]
        assert 0.75 * viewers < sum(counts) / len(counts) < 1.25 * viewers
    cfg = SimConfig(seed=8, target_events_per_s=120.0)
    n = sum(1 for _ in iter_window(cfg, a, a + timedelta(minutes=5)))
    assert 0.75 * 120 * 300 < n < 1.25 * 120 * 300
    slow = SimConfig(seed=8, concurrent_viewers=100, heartbeat_interval_s=30.0)
    fast = SimConfig(seed=8, concurrent_viewers=100, heartbeat_interval_s=5.0)
    n_slow = sum(1 for _ in iter_window(slow, a, a + timedelta(minutes=5)))
    n_fast = sum(1 for _ in iter_window(fast, a, a + timedelta(minutes=5)))
    assert n_fast > 3.5 * n_slow


@pytest.mark.parametrize(
    "kwargs, setting",
    [
        ({"seed": "x"}, "seed"),
        ({"concurrent_viewers": 0}, "concurrent_viewers"),
        ({"heartbeat_interval_s": 0.01}, "heartbeat_interval_s"),
        ({"target_events_per_s": -1.0}, "target_events_per_s"),
        ({"customers": 0}, "customers"),
        ({"start": "2026-01-01"}, "start"),
    ],
)
def test_bad_config_names_the_setting(kwargs, setting):
    with pytest.raises(SimConfigError, match=setting):
        SimConfig(**kwargs)


def test_bad_event_count_is_refused():
    with pytest.raises(SimConfigError, match="n must be"):
        list(iter_records(-1, SimConfig()))
    assert list(iter_records(0, SimConfig())) == []
