"""The lake part of `local`'s status line: "buffered, waiting for the Firehose interval" is
told from "behind", with the writer's numbers faked (runner.lake_state, LocalPipeline.lake_status)."""

from __future__ import annotations

from acme_telemetry.local.runner import BEHIND_SPAN_S, BUFFER_GRACE_S, LocalPipeline, RunOptions, lake_state
from acme_telemetry.local.supervisor import Console


def test_everything_durable_is_lag_0():
    assert lake_state(0, 0, None, 60, 0) == "lag 0"
    assert lake_state(None, 0, None, 60, 0) == "lag ?"


def test_records_held_for_the_interval_are_buffered_not_behind():
    # 225 events/s for 20 s: 4,500 held by design, the oldest 20 s old of a 60 s interval.
    line = lake_state(4500, 4500, 20.0, 60.0, 0)
    assert line == "buffered 4,500, waiting for the Firehose interval (40 s left)"
    assert "behind" not in line


def test_the_oldest_record_past_the_interval_is_behind():
    line = lake_state(20_000, 20_000, 60.0 + BUFFER_GRACE_S + 1, 60.0, 0)
    assert line.startswith("behind: lag 20,000, the oldest buffered record is 66 s old (interval 60 s)")


def test_a_growing_unread_backlog_is_behind_even_with_a_young_buffer():
    line = lake_state(50_000, 1_000, 2.0, 60.0, 8_000)
    assert line == f"behind: lag 50,000, 8,000 more unread than {BEHIND_SPAN_S:g} s ago"


def test_lag_that_is_neither_is_plain():
    assert lake_state(300, 0, None, 60.0, 0) == "lag 300"  # a flush being written


def _pipeline(tmp_path) -> LocalPipeline:
    class Quiet(Console):
        def say(self, text: str, *, stdout: bool = False) -> None:
            pass

    return LocalPipeline(RunOptions(state_dir=tmp_path), Quiet())


def test_lake_status_reads_the_writer_stats_and_tracks_the_unread_part(tmp_path):
    p = _pipeline(tmp_path)
    wall = 1_800_000_000_000
    ws = {"lag": 2_250, "buffered": 2_250, "oldest_buffered_ms": wall - 10_000, "buffer_interval_s": 60}
    assert p.lake_status(ws, now=100.0, wall_ms=wall) == "buffered 2,250, waiting for the Firehose interval (50 s left)"
    # Five seconds later the writer has read nothing more while 5,000 more arrived: behind.
    ws = {"lag": 7_250, "buffered": 2_250, "oldest_buffered_ms": wall - 10_000, "buffer_interval_s": 60}
    assert p.lake_status(ws, now=105.0, wall_ms=wall + 5_000).startswith("behind: lag 7,250, 5,000 more unread")
    # It catches up: what is left is held in the buffer again.
    ws = {"lag": 3_500, "buffered": 3_500, "oldest_buffered_ms": wall - 10_000, "buffer_interval_s": 60}
    assert p.lake_status(ws, now=111.0, wall_ms=wall + 11_000).startswith("buffered 3,500, waiting")


def test_the_status_line_keeps_the_stalled_part(tmp_path, monkeypatch):
    p = _pipeline(tmp_path)

    class Fake:
        def __init__(self, stats):
            self.stats = stats

    p.producer = Fake({"produced": 10, "last_ts_ms": 1_764_572_400_000})  # type: ignore[assignment]
    p.writer = Fake({"lag": 10, "buffered": 0, "events_written": 0})  # type: ignore[assignment]
    p.started_at = 0.0
    p._progress_at = 0.0
    line = p.status()
    assert "event time 2025-12-01T07:00:00Z" in line
    assert "STALLED" in line and "lag 10" in line
