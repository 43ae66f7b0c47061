"""Ground truth: what the simulator itself knows about the events it emitted.

Pass a GroundTruth to iter_records / iter_window and it records, for every emitted
event, the simulator's internal facts (not the event's JSON fields): the outcome of each
play attempt as drawn, the startup time as drawn, the milliseconds actually played and
stalled and at which bitrate and quality. Tests compare the KPIs computed from the JSON
events against it, so a mistake in the event encoding or in the KPI code shows up.

Live sessions: the truth also keeps each observed session's start and, once its terminal
event (stop, complete, fatal error) is observed, its end, so `live_sessions(a, b)` is the
true time-averaged number of live sessions over [a, b) (exact when every event in [a, b)
was observed and b - a is at least one heartbeat interval: every session live in it then
has an event in it), overall or in one slice. The dashboard's concurrent viewers are
checked against it.

Incidents: `incidents` lists the simulator.incidents.Incident the run was configured with;
`window(a, b)` is a GroundTruth of only the events in [a, b), so a test can compare a slice
during an incident with the same slice before and after.

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
_STOP = EVENT_TYPES.index("stop")
_COMPLETE = EVENT_TYPES.index("complete")
DIMENSIONS = ("device_type", "connection_type", "state", "cdn", "isp")

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
    @property
    def cdn(self) -> str: ...
    @property
    def isp(self) -> str: ...
    @property
    def start(self) -> int: ...


def is_end(fact: Fact) -> bool:
    """Whether the event ends its session: stop, complete or a fatal error."""
    return fact[0] in (_STOP, _COMPLETE) or fact[6] or fact[8]


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
        """The KPIs these facts imply, with the definitions of acme_telemetry.kpis (except
        concurrent_viewers: see GroundTruth.live_sessions)."""
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
            # distinct sessions observed (kept so the golden facts stay comparable); the
            # KPI's concurrent viewers is checked against GroundTruth.live_sessions instead
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

    def __init__(self, keep_events: bool = False) -> None:
        self.overall = Tally()
        self.by: dict[str, dict[str, Tally]] = {d: {} for d in DIMENSIONS}
        # uid -> [start, end or None, slices]
        self.lives: dict[int, list[Any]] = {}
        self.incidents: list[Any] = []
        self._log: list[tuple[int, SessionSlices, Fact]] | None = [] if keep_events else None

    def observe(self, session: SessionSlices, ts: int, fact: Fact) -> None:
        uid = session.uid
        self.overall.add(uid, fact)
        slices = (
            ("device_type", session.device_type),
            ("connection_type", session.connection_type),
            ("state", session.state),
            ("cdn", session.cdn),
            ("isp", session.isp),
        )
        for dim, value in slices:
            tally = self.by[dim].get(value)
            if tally is None:
                tally = self.by[dim][value] = Tally()
            tally.add(uid, fact)
        life = self.lives.get(uid)
        if life is None:
            life = self.lives[uid] = [session.start, None, dict(slices)]
        if is_end(fact):
            life[1] = ts
        if self._log is not None:
            self._log.append((ts, session, fact))

    def live_sessions(self, a_ms: int, b_ms: int, dim: str | None = None, value: str | None = None) -> float:
        """The true time-averaged number of live sessions over [a_ms, b_ms), overall or in
        the slice dim=value (a session is live from its start to its terminal event)."""
        total = 0
        for start, end, slices in self.lives.values():
            if dim is not None and slices.get(dim) != value:
                continue
            lo, hi = max(start, a_ms), min(b_ms if end is None else end, b_ms)
            if hi > lo:
                total += hi - lo
        return total / (b_ms - a_ms)

    def window(self, a_ms: int, b_ms: int) -> GroundTruth:
        """A GroundTruth of the observed events with a_ms <= ts < b_ms (needs keep_events)."""
        if self._log is None:
            raise ValueError("GroundTruth(keep_events=True) keeps the events window() needs")
        out = GroundTruth()
        out.incidents = list(self.incidents)
        for ts, session, fact in self._log:
            if a_ms <= ts < b_ms:
                out.observe(session, ts, fact)
        return out
