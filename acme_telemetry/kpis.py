"""Windowed QoE KPIs from telemetry events, overall and sliced by device_type, connection_type and state.

Definitions (after CTA-2066 "Streaming Quality of Experience Events, Properties and
Metrics" and Mux Data's metric definitions). A window is [window_start, window_end);
an event belongs to it by event_timestamp. Percentages are 0..100 and null when the
denominator is zero.

- events: events in the window.
- concurrent_viewers: distinct sessions with at least one event in the window (every live
  session sends a heartbeat each heartbeat interval, so for windows at least that long
  this is the number of live sessions, as Mux's "current concurrent viewers").
- play_attempts: `start` events (CTA-2066 play attempt: the viewer asked for playback).
- video_start_failures: fatal `error` events before the first frame (video_started false).
  video_start_failure_pct = video_start_failures / play_attempts * 100.
- exits_before_video_start: `stop` events before the first frame: the viewer gave up
  while waiting. exits_before_video_start_pct = exits / play_attempts * 100.
  (Both ratios take numerator and denominator from the same window, so in a short
  window a failure whose attempt fell in the previous window can push them past 100.)
- startup_time_ms_p50 / _p95: nearest-rank percentiles of startup_time_ms of the
  `first_frame` events (CTA-2066 video startup time: play attempt to first frame).
- Time in a state comes from each event alone, as player beacons report it (Mux and
  Conviva heartbeats carry the time since the previous beacon): an event's played_ms is the
  video played and its stalled_ms the stall time since the session's previous event, and
  played_bitrate_kbps the bitrate of that played video. The time belongs to the window of
  the event that reports it, so a window's KPIs depend on its own events only: no
  per-session state crosses windows or Lambda batches, and summing over consecutive windows
  gives the totals of one window over their union. (With heartbeats every H seconds, the
  time reported in a window lags real time by at most H per session.)
- playing time = sum of played_ms; stall time = sum of stalled_ms (stalls after the first
  frame, seek-induced buffering excluded, as CTA-2066); watch time = playing + stall time.
- rebuffer_ratio: stall time / watch time (Mux "rebuffer percentage" as a fraction, 0..1).
- rebuffers_per_minute: `rebuffer_start` events / watch time in minutes (Mux "rebuffer
  frequency").
- avg_bitrate_kbps: time-weighted average bitrate over playing time (CTA-2066 average
  media bitrate): sum(played_bitrate_kbps x played_ms) / sum(played_ms).
- quality_share: share of playing time at each quality label, the label of
  played_bitrate_kbps's ABR rung (only labels seen; sums to 1).
- playback_failures: fatal `error` events after the first frame (CTA-2066 playback failure).

The snapshot carries no customer_id, device_id, session_id or ip_address, rounds its
floats, and fits one 32 KB WebSocket frame even with all 51 state slices.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from acme_telemetry.schema import QUALITY_LABELS, QUALITY_OF_BITRATE
from acme_telemetry.times import iso_z, ms_of_iso, to_ms

SLICE_DIMENSIONS: tuple[str, ...] = ("device_type", "connection_type", "state")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least q% of values at or below it."""
    if not values:
        return None
    v = sorted(values)
    return float(v[max(0, math.ceil(q / 100.0 * len(v)) - 1)])


class _Acc:
    """Running sums for one KpiSet."""

    __slots__ = ("events", "sessions", "attempts", "vsf", "ebvs", "startups", "played", "stalled", "rebuffers",
                 "bitrate_ms", "quality_ms", "pbf")

    def __init__(self) -> None:
        self.events = 0
        self.sessions: set[str] = set()
        self.attempts = self.vsf = self.ebvs = self.rebuffers = self.pbf = 0
        self.startups: list[int] = []
        self.played = self.stalled = self.bitrate_ms = 0
        self.quality_ms: dict[str, int] = {}

    def kpis(self) -> dict[str, Any]:
        watch = self.played + self.stalled
        att = self.attempts

        def r(x: float | None, nd: int) -> float | None:
            return None if x is None else round(x, nd)

        return {
            "events": self.events,
            "concurrent_viewers": len(self.sessions),
            "play_attempts": att,
            "video_start_failures": self.vsf,
            "video_start_failure_pct": r(100.0 * self.vsf / att, 3) if att else None,
            "exits_before_video_start": self.ebvs,
            "exits_before_video_start_pct": r(100.0 * self.ebvs / att, 3) if att else None,
            "startup_time_ms_p50": percentile(self.startups, 50),
            "startup_time_ms_p95": percentile(self.startups, 95),
            "rebuffer_ratio": r(self.stalled / watch, 6) if watch else None,
            "rebuffers_per_minute": r(self.rebuffers * 60_000 / watch, 4) if watch else None,
            "avg_bitrate_kbps": r(self.bitrate_ms / self.played, 1) if self.played else None,
            "quality_share": {q: round(self.quality_ms[q] / self.played, 4) for q in QUALITY_LABELS if self.quality_ms.get(q)}
            if self.played
            else {},
            "playback_failures": self.pbf,
        }


class KpiWindow:
    """Accumulates the events of one window; snapshot() gives the KPI dict (see module doc).

    add() never raises on bad input: an event that is not a dict with the fields the KPIs
    need (including played_ms, stalled_ms and played_bitrate_kbps, a non-negative int each
    and an ABR rung), or whose timestamp is outside the window, is counted in `rejected` /
    `outside` and otherwise ignored. Each event is counted on its own, in any order; a
    redelivered event is counted again (the lake, not the live view, deduplicates).
    """

    def __init__(self, window_start: datetime, window_end: datetime):
        self.window_start = window_start
        self.window_end = window_end
        self._ws, self._we = to_ms(window_start), to_ms(window_end)
        if self._we <= self._ws:
            raise ValueError(f"window_end {window_end} must be after window_start {window_start}")
        self._overall = _Acc()
        self._by: dict[str, dict[str, _Acc]] = {d: {} for d in SLICE_DIMENSIONS}
        self.rejected = 0
        self.outside = 0

    def add(self, event: dict[str, Any]) -> bool:
        """Count one event; False if it was rejected or outside the window."""
        try:
            ts = ms_of_iso(event["event_timestamp"])
            sid = event["session_id"]
            etype = event["event_type"]
            started = event["video_started"]
            played = event["played_ms"]
            stalled = event["stalled_ms"]
            quality = QUALITY_OF_BITRATE.get(event["played_bitrate_kbps"])
            bitrate = event["played_bitrate_kbps"]
            slices = [event[d] for d in SLICE_DIMENSIONS]
        except (KeyError, TypeError):
            self.rejected += 1
            return False
        if (
            ts is None
            or not isinstance(sid, str)
            or not isinstance(etype, str)
            or type(played) is not int
            or type(stalled) is not int
            or played < 0
            or stalled < 0
            or quality is None
            or type(bitrate) is not int
            or not all(isinstance(s, str) for s in slices)
        ):
            self.rejected += 1
            return False
        if not (self._ws <= ts < self._we):
            self.outside += 1
            return False
        accs = [self._overall]
        for dim, value in zip(SLICE_DIMENSIONS, slices, strict=True):
            by = self._by[dim]
            acc = by.get(value)
            if acc is None:
                acc = by[value] = _Acc()
            accs.append(acc)
        startup = event.get("startup_time_ms") if etype == "first_frame" else None
        fatal = etype == "error" and event.get("fatal") is True
        for acc in accs:
            acc.events += 1
            acc.sessions.add(sid)
            if etype == "start":
                acc.attempts += 1
            elif etype == "rebuffer_start":
                acc.rebuffers += 1
            elif etype == "stop" and started is False:
                acc.ebvs += 1
            elif fatal:
                if started is True:
                    acc.pbf += 1
                else:
                    acc.vsf += 1
            if isinstance(startup, int) and not isinstance(startup, bool):
                acc.startups.append(startup)
            if played:
                acc.played += played
                acc.bitrate_ms += bitrate * played
                acc.quality_ms[quality] = acc.quality_ms.get(quality, 0) + played
            acc.stalled += stalled
        return True

    def totals(self) -> dict[str, Any]:
        """The overall sums behind the time-based KPIs, in ms (additive across windows)."""
        o = self._overall
        return {"played_ms": o.played, "stalled_ms": o.stalled, "bitrate_ms": o.bitrate_ms, "quality_ms": dict(o.quality_ms)}

    def snapshot(self) -> dict[str, Any]:
        """The KPI dict of docs/contracts.md: window bounds, overall, and by slice."""
        return {
            "window_start": iso_z(self.window_start),
            "window_end": iso_z(self.window_end),
            "overall": self._overall.kpis(),
            "by": {dim: {v: acc.kpis() for v, acc in sorted(self._by[dim].items())} for dim in SLICE_DIMENSIONS},
        }


def compute(events: Iterable[dict[str, Any]], window_start: datetime, window_end: datetime) -> dict[str, Any]:
    """KPIs of the events with window_start <= event_timestamp < window_end (others are ignored)."""
    w = KpiWindow(window_start, window_end)
    for e in events:
        w.add(e)
    return w.snapshot()
