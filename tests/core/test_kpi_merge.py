"""Partial KPI states merge to the whole (issue 12): any split of a seeded event stream, by
partition, batch and concurrent Lambda invocation, in any order, through the wire and the
page's merge by (window key, part id), gives exactly the whole windows' states."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acme_telemetry import kpis, protocol
from acme_telemetry.simulator import SimConfig, iter_window
from acme_telemetry.times import parse_iso_ms

A = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
PARTITIONS = 6


@pytest.fixture(scope="module")
def stream():
    """A seeded stream keyed by session, as the topic holds it: (partition, event) in order."""
    cfg = SimConfig(seed=31, concurrent_viewers=300)
    out = []
    for key, value in iter_window(cfg, A, A + timedelta(minutes=2)):
        part = int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "big") % PARTITIONS
        out.append((part, orjson.loads(value)))
    return out


def _whole(events, window_ms):
    wins, bad = kpis.split_by_window(events, window_ms)
    assert bad == 0
    return wins


def _lambda_invocations(stream, r: random.Random, batch_max: int):
    """Records as MSK event source mappings deliver them: each partition's records in order,
    cut into batches at random points, the batches spread over concurrent invocations (each
    sees a subset of partitions' batches, interleaved) and run in any order."""
    by_part: dict[int, list] = {}
    for offset, (p, e) in enumerate(stream):
        by_part.setdefault(p, []).append((offset, e))
    batches = []
    for p, recs in by_part.items():
        i = 0
        while i < len(recs):
            n = r.randint(1, batch_max)
            batches.append((p, recs[i : i + n]))
            i += n
    r.shuffle(batches)
    invocations: list[list] = [[] for _ in range(r.randint(1, 4))]
    for b in batches:
        r.choice(invocations).append(b)
    return invocations


def _invoke(batches, window_ms):
    """One invocation, as lambdas/consumer does it: the partial state per window its events
    fall in, sent as `kpi` frames with a part id naming the records (partition@offsets)."""
    events = [e for _, recs in batches for _, e in recs]
    part = kpis.part_id((p, recs[0][0], recs[-1][0]) for p, recs in batches)
    states, bad = kpis.split_by_window(events, window_ms)
    assert bad == 0
    return [f for s in states.values() for f in protocol.kpi_frames(s, part)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1), batch_max=st.sampled_from([1, 7, 50, 400, 5000]), window_s=st.sampled_from([5, 30]), retry=st.booleans()
)
def test_random_splits_across_concurrent_invocations_merge_to_the_whole(stream, seed, batch_max, window_s, retry):
    r = random.Random(seed)
    window_ms = window_s * 1000
    whole = _whole([e for _, e in stream], window_ms)
    frames = [f for inv in _lambda_invocations(stream, r, batch_max) for f in _invoke(inv, window_ms)]
    if retry:  # a failed batch is retried: the same records, the same part ids, delivered again
        frames += r.sample(frames, max(1, len(frames) // 5))
    r.shuffle(frames)
    page = kpis.PartMerger()
    for f in frames:
        assert len(f) <= protocol.MAX_MESSAGE_BYTES
        page.add(orjson.loads(f))
    merged = page.windows()
    assert {k[0] for k in merged} == set(whole)
    for (start, _), state in merged.items():
        assert state == whole[start]
        assert state.report() == whole[start].report()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
def test_any_partition_of_the_events_merges_in_any_order(stream, seed, n_parts):
    r = random.Random(seed)
    events = [e for _, e in stream[:3000]]
    t0 = kpis.window_start_ms(parse_iso_ms(events[0]["event_timestamp"]), 60_000)
    whole = kpis.WindowState(t0, t0 + 10 * 60_000).add_all(events)
    parts = [kpis.WindowState(t0, t0 + 10 * 60_000) for _ in range(n_parts)]
    for e in events:
        r.choice(parts).add(e)
    r.shuffle(parts)
    merged = parts[0].copy()
    for p in parts[1:]:
        merged.merge(kpis.WindowState.from_wire(orjson.loads(orjson.dumps(p.wire()))))
    assert merged == whole and merged.overall.events == len(events)


def test_consecutive_windows_merge_into_their_union_and_overlaps_are_refused(stream):
    events = [e for _, e in stream]
    fives = _whole(events, 5000)
    thirties = _whole(events, 30_000)
    for start, w30 in thirties.items():
        six = kpis.rolling(fives[s] for s in range(start, start + 30_000, 5000) if s in fives)
        assert six is not None and six == w30 and six.span_ms == 30_000
    a, b = kpis.WindowState(0, 10_000), kpis.WindowState(5000, 15_000)
    with pytest.raises(ValueError, match="overlapping"):
        a.merge(b)
    with pytest.raises(ValueError, match="heartbeat"):
        a.merge(kpis.WindowState(0, 10_000, heartbeat_ms=5000))


def test_a_state_too_big_for_one_frame_is_cut_into_parts_that_merge_back():
    st_ = kpis.WindowState(0, 5000)
    for i in range(3000):  # thousands of invented slices: far over 32 KB as one message
        st_.add(
            {
                "event_timestamp": "1970-01-01T00:00:01.000Z",
                "session_id": f"s{i}",
                "event_type": "heartbeat",
                "video_started": True,
                "played_ms": 1000,
                "stalled_ms": 0,
                "played_bitrate_kbps": 3000,
                "device_type": "tv",
                "connection_type": "wifi",
                "state": f"X{i}",
                "isp": f"isp{i}",
                "cdn": "a",
            }
        )
    frames = protocol.kpi_frames(st_)
    assert len(frames) > 1 and all(len(f) <= protocol.MAX_MESSAGE_BYTES for f in frames)
    page = kpis.PartMerger()
    for f in frames:
        page.add(orjson.loads(f))
    assert page.window((0, 5000)) == st_


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), reads=st.integers(0, 6))
def test_each_slice_is_the_state_of_its_own_events_however_often_the_state_is_read(stream, seed, reads):
    """COMBINED_DIMENSIONS are counted by their combination and added into the slices when
    the state is read (kpis module doc, "Counting"). Each slice must still be exactly the
    state of the events with its value, whatever was read in between and whichever optional
    dimension an event lacks."""
    r = random.Random(seed)
    start = parse_iso_ms(stream[0][1]["event_timestamp"])
    events = []
    for _, e in stream:
        e = dict(e)
        for dim in kpis.OPTIONAL_DIMENSIONS:
            if r.random() < 0.2:
                del e[dim]
        events.append(e)
    read_at = set(r.sample(range(len(events)), reads))
    w = kpis.WindowState(start, start + 3_600_000)
    for i, e in enumerate(events):
        if i in read_at:
            r.choice([w.wire, lambda: w.by, lambda: w.overall.events, w.report])()
        assert w.add(e)
    assert set(kpis.COMBINED_DIMENSIONS) == {"device_type", "connection_type", "cdn"}
    for dim in kpis.SLICE_DIMENSIONS:
        values = {e[dim] for e in events if dim in e}
        assert set(w.by[dim]) == values, dim
        for value in values:
            alone = kpis.WindowState(start, start + 3_600_000).add_all(e for e in events if e.get(dim) == value)
            assert w.by[dim][value] == alone.overall, (dim, value)
    assert w.overall.events == len(events) == sum(s.events for s in w.by["device_type"].values())
    assert w.overall.beats == sum(s.beats for s in w.by["connection_type"].values())


def test_a_full_split_cache_is_emptied_and_counts_stay_exact(stream, monkeypatch):
    """The slice values' split (kpis._split) is cached per process and emptied when full:
    a state counted through a cache of two entries equals one counted through the default."""
    events = [e for _, e in stream[:4000]]
    start = parse_iso_ms(events[0]["event_timestamp"])
    roomy = kpis.WindowState(start, start + 3_600_000).add_all(events)
    monkeypatch.setattr(kpis, "_SPLIT_CAP", 2)
    kpis._SPLIT.clear()
    cramped = kpis.WindowState(start, start + 3_600_000).add_all(events)
    assert len(kpis._SPLIT) <= 2
    assert cramped == roomy and cramped.report() == roomy.report()
    assert cramped.overall.events == len(events)
