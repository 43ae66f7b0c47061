"""Ground truth: what the simulator itself knows about the events it emitted.

Pass a GroundTruth to iter_records / iter_window and it records, for every emitted
event, the simulator's internal facts (not the event's JSON fields): the outcome of each
play attempt as drawn, the startup time as drawn, the milliseconds actually played and
stalled and at which bitrate and quality. Tests compare the KPIs computed from the JSON
events against it, so a mistake in the event encoding or in the KPI code shows up.

Interval rule (the same one kpis.py documents): each event reports the time played and
stalled since the session's previous event, so every observed event's interval counts,
whether or not the event before it was observed (the simulator's own counters, not the
event's played_ms / stalled_ms fields, are the truth here).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Protocol

from acme_telemetry.schema import EVENT_TYPES, QUALITY_LABELS

_REBUF_START = EVENT_TYPES.index("rebuffer_start")
_START = EVENT_TYPES.index("start")
_FIRST_FRAME = EVENT_TYPES.index("first_frame")
DIMENSIONS = ("device_type", "connection_type", "state")

# One event's facts: (event type code, played ms, stalled ms, bitrate kbps of what was
# played, its quality label, startup ms on first_frame else None, video start failure,
# exit before video start, playback failure).
Fact = tuple[int, int, int, int, bytes, int | None, bool, bool, bool]


class SessionSlices(Protocol):
    """What GroundTruth needs of a session: its uid and the dimensions it is sliced by."""

    @property
    def uid(self) -> int: ...
    @property
    def device_type(self) -> str: ...
    @property
    def connection_type(self) -> str: ...
    @property
    def state(self) -> str: ...


class Tally:
    """Internal facts summed over a set of events."""

    def __init__(self) -> None:
        self.events = 0
        self.sessions: set[int] = set()
        self.events_by_type: Counter[str] = Counter()
        self.play_attempts = 0
        self.video_start_failures = 0
        self.exits_before_video_start = 0
        self.startup_ms: list[int] = []
        self.played_ms = 0
        self.stalled_ms = 0
        self.rebuffers = 0
        self.bitrate_ms = 0
        self.quality_ms: Counter[str] = Counter()
        self.playback_failures = 0

    def add(self, uid: int, fact: Fact) -> None:
        etype, played, stalled, bitrate, quality, startup, vsf, ebvs, pbf = fact
        self.events += 1
        self.sessions.add(uid)
        self.events_by_type[EVENT_TYPES[etype]] += 1
        if etype == _START:
            self.play_attempts += 1
        elif etype == _REBUF_START:
            self.rebuffers += 1
        elif etype == _FIRST_FRAME and startup is not None:
            self.startup_ms.append(startup)
        self.video_start_failures += vsf
        self.exits_before_video_start += ebvs
        self.playback_failures += pbf
        self.played_ms += played
        self.stalled_ms += stalled
        self.bitrate_ms += bitrate * played
        if played:
            self.quality_ms[quality.decode()] += played

    def expected(self) -> dict[str, Any]:
        """The KPIs these facts imply, with the definitions of acme_telemetry.kpis."""
        watch = self.played_ms + self.stalled_ms

        def pct(x: int) -> float | None:
            return 100.0 * x / self.play_attempts if self.play_attempts else None

        def nearest_rank(q: float) -> float | None:
            if not self.startup_ms:
                return None
            v = sorted(self.startup_ms)
            return float(v[max(0, math.ceil(q / 100 * len(v)) - 1)])

        return {
            "events": self.events,
            "concurrent_viewers": len(self.sessions),
            "play_attempts": self.play_attempts,
            "video_start_failures": self.video_start_failures,
            "video_start_failure_pct": pct(self.video_start_failures),
            "exits_before_video_start": self.exits_before_video_start,
            "exits_before_video_start_pct": pct(self.exits_before_video_start),
            "startup_time_ms_p50": nearest_rank(50),
            "startup_time_ms_p95": nearest_rank(95),
            "rebuffer_ratio": self.stalled_ms / watch if watch else None,
            "rebuffers_per_minute": self.rebuffers / (watch / 60_000) if watch else None,
            "avg_bitrate_kbps": self.bitrate_ms / self.played_ms if self.played_ms else None,
            "quality_share": {q: self.quality_ms[q] / self.played_ms for q in QUALITY_LABELS if self.quality_ms[q]}
            if self.played_ms
            else {},
            "playback_failures": self.playback_failures,
        }


class GroundTruth:
    """Facts of every event emitted while it was passed to the simulator, overall and by slice."""

    def __init__(self) -> None:
        self.overall = Tally()
        self.by: dict[str, dict[str, Tally]] = {d: {} for d in DIMENSIONS}

    def observe(self, session: SessionSlices, ts: int, fact: Fact) -> None:
        uid = session.uid
        self.overall.add(uid, fact)
        for dim, value in (
            ("device_type", session.device_type),
            ("connection_type", session.connection_type),
            ("state", session.state),
        ):
            tally = self.by[dim].get(value)
            if tally is None:
                tally = self.by[dim][value] = Tally()
            tally.add(uid, fact)
