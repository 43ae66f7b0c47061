"""The dashboard feed's event-time windows (KpiAggregator), driven with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from acme_telemetry.local.feed import KpiAggregator

T0 = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)


class Window:
    def __init__(self, start, end):
        self.start, self.end, self.events = start, end, []

    def add(self, event):
        self.events.append(event)

    def snapshot(self):
        return {"window_start": self.start.isoformat(), "n": len(self.events)}


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def make(clock):
    emitted: list[tuple[bytes, str]] = []
    agg = KpiAggregator(
        lambda data, kind: emitted.append((data, kind)),
        window_s=5,
        lateness_s=1,
        idle_flush_s=30,
        partition_idle_s=3,
        window_factory=Window,
        now=clock,
    )
    return agg, emitted


def ev(seconds: float) -> dict:
    t = T0 + timedelta(seconds=seconds)
    return {"event_timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z", "event_type": "heartbeat"}


def kpis(emitted):
    import orjson

    return [orjson.loads(d) for d, k in emitted if k == "kpi"]


def test_an_assigned_partition_that_has_not_delivered_holds_the_window_open():
    clock = Clock()
    agg, emitted = make(clock)
    agg.expect_partitions([0, 1])
    for s in (1, 2, 3, 9, 12):  # partition 0 races past the first window's end
        agg.add(ev(s), partition=0)
    agg.tick()
    assert kpis(emitted) == [], "closed before partition 1 delivered"
    agg.add(ev(4), partition=1)  # partition 1's event for the first window still counts
    agg.add(ev(11), partition=1)
    agg.tick()
    # watermark = min(12, 11) - 1 s lateness = 10: [0, 5) and [5, 10) close, with every event.
    assert [m["n"] for m in kpis(emitted)] == [4, 1] and agg.late == 0


def test_a_silent_partition_stops_holding_after_partition_idle_s():
    clock = Clock()
    agg, emitted = make(clock)
    agg.expect_partitions([0, 1])
    for s in (1, 2, 9):
        agg.add(ev(s), partition=0)
    agg.tick()
    assert kpis(emitted) == []
    clock.t += 3.5  # partition 1 never delivers
    agg.add(ev(10), partition=0)
    agg.tick()
    assert [m["n"] for m in kpis(emitted)] == [2]


def test_an_event_for_a_closed_window_is_counted_late_and_sent_as_a_part_of_that_window():
    clock = Clock()
    agg, emitted = make(clock)
    agg.expect_partitions([0])
    for s in (1, 7):
        agg.add(ev(s), partition=0)
    agg.tick()
    assert [m["n"] for m in kpis(emitted)] == [1]
    agg.add(ev(2), partition=0)
    assert agg.late == 1
    agg.close_all()
    got = kpis(emitted)
    # the whole first window, then the late part of it (the page merges parts per window
    # key), then the second window; a late event is neither lost nor counted in another window
    assert [(m["window_start"][-14:-6], m["n"], m.get("part")) for m in got] == [
        ("15:00:00", 1, None),
        ("15:00:05", 1, None),
        ("15:00:00", 1, "late-1"),
    ]
    assert agg.windows_emitted == 2


def _heartbeat(ts_s: float, sid: str) -> dict:
    e = ev(ts_s)
    e.update(
        session_id=sid,
        video_started=True,
        played_ms=1000,
        stalled_ms=0,
        played_bitrate_kbps=3000,
        device_type="tv",
        connection_type="wifi",
        state="CA",
        cdn="fastly",
        isp="Comcast",
    )
    return e


def test_the_default_windows_are_mergeable_kpi_states_with_the_heartbeat_weight():
    from acme_telemetry import kpis as core

    clock = Clock()
    emitted: list[tuple[bytes, str]] = []
    agg = KpiAggregator(lambda d, k: emitted.append((d, k)), window_s=5, lateness_s=0, idle_flush_s=30, heartbeat_ms=10_000, now=clock)
    agg.expect_partitions([0])
    for i in range(10):  # 10 sessions beat once in [0, 5): with 10 s heartbeats that is 20 viewers' worth of 5 s
        agg.add(_heartbeat(0.1 * i, f"s{i}"), partition=0)
    agg.add(_heartbeat(6, "s0"), partition=0)
    agg.tick()
    (msg,) = kpis(emitted)
    assert msg["v"] == 2 and msg["heartbeat_ms"] == 10_000
    state = core.WindowState.from_wire(msg)
    assert state.overall.beats == 10 and state.kpis()["concurrent_viewers"] == 20.0
    assert set(state.by) >= {"cdn", "isp"} and state.by["cdn"]["fastly"].events == 10
