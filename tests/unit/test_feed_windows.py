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
    agg = KpiAggregator(lambda data, kind: emitted.append((data, kind)), window_s=5, lateness_s=1,
                        idle_flush_s=30, partition_idle_s=3, window_factory=Window, now=clock)
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


def test_an_event_for_a_closed_window_is_counted_late_and_dropped():
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
    assert [m["n"] for m in kpis(emitted)] == [1, 1]
