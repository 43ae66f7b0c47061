"""The supervisor's back-pressure: it holds the producer while the slower consumer, the lake
writer or the dashboard feed, is more than MAX_LAG behind, and lets it go below half of that.
Driven with stand-ins for the three children (their stats and the commands sent to them)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from acme_telemetry.local import runner
from acme_telemetry.local.supervisor import Console


class Child:
    def __init__(self, stats: dict[str, Any]) -> None:
        self.stats = stats
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


def _pipeline(tmp_path: Path, **opts: Any) -> tuple[runner.LocalPipeline, Child, Child, Child]:
    o = runner.RunOptions(lake=tmp_path / "lake", state_dir=tmp_path / "state", **opts)
    p = runner.LocalPipeline(o, Console(stdout=io.StringIO(), stderr=io.StringIO()), tmp_path / "log")
    producer = Child({"produced": 0, "end_offsets": {}})
    writer = Child({"lag": 0})
    dashboard = Child({})
    p.producer, p.writer, p.dashboard = producer, writer, dashboard  # type: ignore[assignment]
    return p, producer, writer, dashboard


def _step(p: runner.LocalPipeline, writer: Child, producer: Child, dashboard: Child, *, writer_lag: int, end: int, fed: int) -> list[str]:
    """One look at the children: `end` records in Kafka, `fed` of them read by the feed."""
    producer.stats["produced"] = end
    dashboard.stats["lag"] = end - fed
    writer.stats["lag"] = writer_lag
    before = len(producer.sent)
    p._backpressure(writer.stats)
    return [m["cmd"] for m in producer.sent[before:]]


def test_a_lagging_dashboard_feed_holds_the_producer_as_a_lagging_writer_does(tmp_path):
    p, producer, writer, dashboard = _pipeline(tmp_path, events=10**9)
    m = runner.MAX_LAG
    assert p.feed_lag() is None  # no figure from the feed yet
    assert _step(p, writer, producer, dashboard, writer_lag=0, end=m, fed=m) == []
    # the writer keeps up; the feed falls more than MAX_LAG behind: hold
    assert _step(p, writer, producer, dashboard, writer_lag=10, end=3 * m, fed=2 * m - 1) == ["hold"]
    assert p.feed_lag() == m + 1
    # half way back is not enough (hysteresis), below half is
    assert _step(p, writer, producer, dashboard, writer_lag=10, end=3 * m, fed=3 * m - m // 2) == []
    assert _step(p, writer, producer, dashboard, writer_lag=10, end=3 * m, fed=3 * m - m // 2 + 1) == ["go"]
    # the writer behind, the feed caught up: hold again, go once the writer is back too
    assert _step(p, writer, producer, dashboard, writer_lag=m + 1, end=3 * m, fed=3 * m) == ["hold"]
    assert _step(p, writer, producer, dashboard, writer_lag=m // 2 - 1, end=3 * m, fed=3 * m) == ["go"]


def test_a_paced_run_is_never_held(tmp_path):
    p, producer, writer, dashboard = _pipeline(tmp_path, events=10**9, rate=1000.0)
    assert _step(p, writer, producer, dashboard, writer_lag=10 * runner.MAX_LAG, end=10 * runner.MAX_LAG, fed=0) == []


def test_no_report_from_the_feed_yet_leaves_the_writer_lag_in_charge(tmp_path):
    p, producer, writer, dashboard = _pipeline(tmp_path, events=10**9)
    dashboard.stats = {}
    assert p.feed_lag() is None
    writer.stats["lag"] = runner.MAX_LAG + 1
    p._backpressure(writer.stats)
    assert [m["cmd"] for m in producer.sent] == ["hold"]
