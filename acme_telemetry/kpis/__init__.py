"""QoE KPIs from telemetry events: mergeable window states, windowing, the notable-event rule.

One engine for both places: the consumer Lambda (lambdas/consumer) and the local feed
(acme_telemetry.local.feed) are thin adapters over it, and the page (dashboard/src/app.js)
derives its figures from the same states with the same maths.

**Mergeable state.** A window [window_start, window_end) is keyed by its bounds; an event
belongs to it by event_timestamp. Its state (`WindowState`) holds, overall and per slice
(SLICE_DIMENSIONS), only additive counters and a mergeable quantile sketch
(`kpis.sketch`, fixed log-spaced bins, 1% relative error). So partial states over any
split of the same events (by partition, batch, concurrent Lambda invocation, in any
order) merge to exactly the state of all of them, and states of consecutive windows merge
into the state of their union (the page's rolling tiles). Nothing per session crosses a
window or a batch.

**Counting.** Every event counts overall and in one slice per dimension it carries: six
states at full width, the hot path of the KPI consumer. COMBINED_DIMENSIONS, the ones of a
few values each (device and connection type are the schema's enums; the simulator's
population has 3 CDNs), are counted once, in the state of their combination (36 of them
in a 20,000-viewer window of 12,000 events), and that state is added into the overall
and into each of its dimensions' slices when the window is read (`overall`, `by` and
everything built on them). Addition is exact, so the result is the same state; an event
updates three states instead of six. An event's slice values are split into its
combination and its other slices once per process (`_split`), not once per window: a
20,000-viewer window of 12,000 events holds some 4,000 distinct sets of slice values.

**Heartbeats are tallied.** Nine events in ten are a `heartbeat` with played time and no
stall: it adds one event, one beat, its played_ms, bitrate x played_ms and played_ms at its
quality, all fixed by its ABR rung and its played_ms. So such an event adds 1 and its
played_ms into a tally of each of its three states (a list: beats, then played_ms per
rung of ABR_LADDER), and the tallies are added into their states' counters when the window
is read, with the combinations. Two list updates per state instead of five counters and a
dict; the sums are the same.

Definitions (after CTA-2066 "Streaming Quality of Experience Events, Properties and
Metrics" and Mux Data's metric definitions). `span` is the time the state covers (one
window, or the sum of the merged windows). Percentages are 0..100 and null when the
denominator is zero.

- events: events counted.
- concurrent_viewers: time-weighted session presence / span. Every live session sends a
  `heartbeat` each heartbeat interval H in every player state (the player's beacon
  contract, `heartbeat_ms`), starting H after its `start`. So each `start` or `heartbeat`
  event stands for H ms of one session's presence, and a session's terminal event (`stop`,
  `complete`, fatal `error`) takes back H/2, the expected overshoot of its last beat past
  its end: presence_ms = H x beats - H/2 x ends. This does not depend on the window length
  versus H: a 5 s window over 10 s heartbeats sees about half the sessions' beats, each
  worth 10 s. (The old definition, distinct sessions with an event in the window, read
  half the audience in 5 s windows.) Per window it is a sample (beat phases are random,
  so a 5 s window over N viewers varies by about 1/sqrt(N)); over the rolling 60 s every
  session beats 60/H times and the noise is gone.
- play_attempts: `start` events (CTA-2066 play attempt); play_attempts_per_min = attempts
  per minute of span.
- video_start_failures: fatal `error` events before the first frame (video_started false).
  video_start_failure_pct = video_start_failures / play_attempts * 100.
- exits_before_video_start: `stop` events before the first frame: the viewer gave up while
  waiting. exits_before_video_start_pct = exits / play_attempts * 100. (Numerator and
  denominator come from the same span, so a short one can exceed 100: the page shows
  ratios only with at least MIN_SAMPLES attempts.)
- startup_time_ms_p50 / _p95: nearest-rank percentiles of startup_time_ms of the
  `first_frame` events (CTA-2066 video startup time), from the sketch: within 1% relative
  of the exact nearest-rank value. startup_samples: how many.
- Time in a state comes from each event alone, as player beacons report it (Mux and Conviva
  heartbeats carry the time since the previous beacon): an event's played_ms is the video
  played and its stalled_ms the stall time since the session's previous event, and
  played_bitrate_kbps the bitrate of that played video. The time belongs to the window of
  the event that reports it.
- playing time = sum of played_ms; stall time = sum of stalled_ms (stalls after the first
  frame, seek-induced buffering excluded, as CTA-2066); watch time = playing + stall time.
- rebuffer_ratio: stall time / watch time (Mux "rebuffer percentage" as a fraction, 0..1).
- rebuffers_per_minute: `rebuffer_start` events / watch time in minutes.
- avg_bitrate_kbps: time-weighted average bitrate over playing time (CTA-2066 average media
  bitrate): sum(played_bitrate_kbps x played_ms) / sum(played_ms).
- quality_share: share of playing time at each quality label (only labels seen; sums to 1).
- playback_failures: fatal `error` events after the first frame (CTA-2066 playback failure).

**Enough samples.** MIN_SAMPLES (20) attempts before a ratio of attempts is shown, and
startups before a percentile; MIN_AUDIENCE (20 concurrent viewers) before a slice is
ranked. The state carries the counts, so the page says "n=3" instead.

**Notable events** (`is_notable`): errors (fatal or not) and stalls of at least
LONG_REBUFFER_MS; the page adds slice alerts from the rolling state.

The wire form (`WindowState.wire`) carries no customer_id, device_id, session_id or
ip_address, and its slices' fields are documented in docs/protocol.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from itertools import chain
from typing import Any

from acme_telemetry import settings
from acme_telemetry.kpis.sketch import RELATIVE_ACCURACY, Sketch
from acme_telemetry.schema import QUALITY_LABELS, QUALITY_OF_BITRATE
from acme_telemetry.times import from_ms, iso_z, ms_of_iso, parse_datetime, to_ms

__all__ = [
    "DEFAULT_HEARTBEAT_MS",
    "LONG_REBUFFER_MS",
    "MIN_AUDIENCE",
    "MIN_SAMPLES",
    "OPTIONAL_DIMENSIONS",
    "PartMerger",
    "RELATIVE_ACCURACY",
    "SLICE_DIMENSIONS",
    "KpiWindow",
    "SliceState",
    "Sketch",
    "WindowState",
    "compute",
    "is_notable",
    "part_id",
    "percentile",
    "rolling",
    "split_by_window",
    "window_start_ms",
]

# Slices and the beacon interval are settings both this engine and kpi_sql read.
REQUIRED_DIMENSIONS: tuple[str, ...] = settings.KPI_REQUIRED_DIMENSIONS
OPTIONAL_DIMENSIONS: tuple[str, ...] = settings.KPI_OPTIONAL_DIMENSIONS
SLICE_DIMENSIONS: tuple[str, ...] = settings.KPI_SLICE_DIMENSIONS
DEFAULT_HEARTBEAT_MS = settings.HEARTBEAT_INTERVAL_MS
# Counted by their combination and added into their slices when read (module doc, "Counting").
COMBINED_DIMENSIONS: tuple[str, ...] = tuple(d for d in SLICE_DIMENSIONS if d in ("device_type", "connection_type", "cdn"))
_COMBINED_AT = tuple(SLICE_DIMENSIONS.index(d) for d in COMBINED_DIMENSIONS)
_SEPARATE = tuple((i, d) for i, d in enumerate(SLICE_DIMENSIONS) if d not in COMBINED_DIMENSIONS)
MIN_SAMPLES = 20
MIN_AUDIENCE = 20
LONG_REBUFFER_MS = 2000
_BEATS = frozenset({"start", "heartbeat"})
_ENDS = frozenset({"stop", "complete"})
# A heartbeat's tally (module doc, "Heartbeats are tallied"): [beats, played_ms at rung 0, ...].
_RUNGS: tuple[tuple[int, str], ...] = tuple(QUALITY_OF_BITRATE.items())
_TALLY_AT: dict[int, int] = {bitrate: 1 + j for j, (bitrate, _) in enumerate(_RUNGS)}


def _new_tally() -> list[int]:
    return [0] * (1 + len(_RUNGS))


def _add_tally(state: SliceState, tally: list[int]) -> None:
    """Add a heartbeat tally into its state: as each of its beats through add_checked."""
    beats = tally[0]
    if not beats:
        return
    state.events += beats
    state.beats += beats
    qm = state.quality_ms
    for (bitrate, quality), played in zip(_RUNGS, tally[1:], strict=True):
        if played:
            state.played_ms += played
            state.bitrate_ms += bitrate * played
            qm[quality] = qm.get(quality, 0) + played


# slice values (SLICE_DIMENSIONS order) -> (the COMBINED_DIMENSIONS values, and
# (j, value) for each dimension of _SEPARATE the event carries): the same for every window,
# so cached here (module doc, "Counting"). A cache, emptied when full: some 400 bytes an
# entry, so at most about 20 MB; 9M events of a 20,000-viewer simulator run hold 8,211.
_SPLIT: dict[tuple[str | None, ...], tuple[tuple[str | None, ...], tuple[tuple[int, str], ...]]] = {}
_SPLIT_CAP = 50_000


def _split(key: tuple[str | None, ...]) -> tuple[tuple[str | None, ...], tuple[tuple[int, str], ...]]:
    if len(_SPLIT) >= _SPLIT_CAP:
        _SPLIT.clear()
    combo = tuple(key[i] for i in _COMBINED_AT)
    values = tuple((j, value) for j, (i, _) in enumerate(_SEPARATE) if (value := key[i]) is not None)
    split = _SPLIT[key] = (combo, values)
    return split


# SliceState counter -> its key on the wire (short: 80 slices share one 32 KB frame).
_WIRE = {
    "events": "n",
    "beats": "b",
    "ends": "x",
    "play_attempts": "a",
    "video_start_failures": "f",
    "exits_before_video_start": "e",
    "playback_failures": "p",
    "rebuffers": "r",
    "played_ms": "pl",
    "stalled_ms": "st",
    "bitrate_ms": "br",
}


def percentile(values: Iterable[float], q: float) -> float | None:
    """Exact nearest-rank percentile: the smallest value with at least q% of values at or below it."""
    v = sorted(values)
    if not v:
        return None
    return float(v[max(0, math.ceil(q / 100.0 * len(v)) - 1)])


def is_notable(event: Mapping[str, Any]) -> bool:
    """Errors (fatal or not) and long stalls: what the notable-event feed shows."""
    et = event.get("event_type")
    if et == "error" or event.get("fatal") is True:
        return True
    return et == "rebuffer_end" and (event.get("rebuffer_duration_ms") or 0) >= LONG_REBUFFER_MS


def window_start_ms(ts_ms: int, window_ms: int) -> int:
    """The start of the tumbling window (aligned to the Unix epoch) that holds ts_ms."""
    return ts_ms - ts_ms % window_ms


class SliceState:
    """Additive counters and the startup sketch of one slice (or overall)."""

    __slots__ = (*_WIRE, "quality_ms", "startup")

    def __init__(self) -> None:
        self.events = self.beats = self.ends = 0
        self.play_attempts = self.video_start_failures = self.exits_before_video_start = self.playback_failures = 0
        self.rebuffers = self.played_ms = self.stalled_ms = self.bitrate_ms = 0
        self.quality_ms: dict[str, int] = {}
        self.startup = Sketch()

    def merge(self, other: SliceState) -> None:
        # each _WIRE counter spelled out: a window's read merges each of its combinations
        # into four states (module doc, "Counting"), 3x faster than setattr over _WIRE
        # (tests/core/test_kpi_merge.py checks that every counter is merged)
        self.events += other.events
        self.beats += other.beats
        self.ends += other.ends
        self.play_attempts += other.play_attempts
        self.video_start_failures += other.video_start_failures
        self.exits_before_video_start += other.exits_before_video_start
        self.playback_failures += other.playback_failures
        self.rebuffers += other.rebuffers
        self.played_ms += other.played_ms
        self.stalled_ms += other.stalled_ms
        self.bitrate_ms += other.bitrate_ms
        qm = self.quality_ms
        for q, ms in other.quality_ms.items():
            qm[q] = qm.get(q, 0) + ms
        if other.startup.count:
            self.startup.merge(other.startup)

    def presence_ms(self, heartbeat_ms: int) -> float:
        return max(0.0, heartbeat_ms * self.beats - heartbeat_ms / 2 * self.ends)

    def kpis(self, span_ms: int, heartbeat_ms: int) -> dict[str, Any]:
        """The KpiSet (module doc) of these counters over `span_ms`."""
        watch = self.played_ms + self.stalled_ms
        att = self.play_attempts

        def r(x: float | None, nd: int) -> float | None:
            return None if x is None else round(x, nd)

        return {
            "events": self.events,
            "concurrent_viewers": round(self.presence_ms(heartbeat_ms) / span_ms, 1),
            "play_attempts": att,
            "play_attempts_per_min": round(att * 60_000 / span_ms, 2),
            "video_start_failures": self.video_start_failures,
            "video_start_failure_pct": r(100.0 * self.video_start_failures / att, 3) if att else None,
            "exits_before_video_start": self.exits_before_video_start,
            "exits_before_video_start_pct": r(100.0 * self.exits_before_video_start / att, 3) if att else None,
            "startup_time_ms_p50": r(self.startup.quantile(50), 1),
            "startup_time_ms_p95": r(self.startup.quantile(95), 1),
            "startup_samples": self.startup.count,
            "rebuffer_ratio": r(self.stalled_ms / watch, 6) if watch else None,
            "rebuffers_per_minute": r(self.rebuffers * 60_000 / watch, 4) if watch else None,
            "avg_bitrate_kbps": r(self.bitrate_ms / self.played_ms, 1) if self.played_ms else None,
            "quality_share": {q: round(self.quality_ms[q] / self.played_ms, 4) for q in QUALITY_LABELS if self.quality_ms.get(q)}
            if self.played_ms
            else {},
            "playback_failures": self.playback_failures,
        }

    def wire(self) -> dict[str, Any]:
        """Compact JSON form: short keys, zero counters left out (docs/protocol.md)."""
        out: dict[str, Any] = {w: getattr(self, k) for k, w in _WIRE.items() if getattr(self, k)}
        if self.quality_ms:
            out["q"] = {q: self.quality_ms[q] for q in QUALITY_LABELS if self.quality_ms.get(q)}
        if self.startup.count:
            out["su"] = self.startup.wire()
        return out

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> SliceState:
        s = cls()
        for k, w in _WIRE.items():
            setattr(s, k, int(data.get(w, 0)))
        s.quality_ms = {str(q): int(ms) for q, ms in (data.get("q") or {}).items()}
        s.startup = Sketch.from_wire(data.get("su") or {})
        return s

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SliceState) and self.wire() == other.wire()

    def __repr__(self) -> str:
        return f"SliceState({self.wire()!r})"


class WindowState:
    """The mergeable KPI state of the events in [start_ms, end_ms) (see module doc).

    add() never raises on bad input: an event that is not a dict with the fields the KPIs
    need (including played_ms, stalled_ms and played_bitrate_kbps, a non-negative int each
    and an ABR rung), or whose timestamp is outside the window, is counted in `rejected` /
    `outside` and otherwise ignored. A redelivered event is counted again (the lake, not the
    live view, deduplicates; a retried Lambda batch keeps its part id, docs/protocol.md).

    `span_ms` is the time covered: the window's length, or, after merging other windows
    (not parts of this one), the sum of their lengths.
    """

    __slots__ = ("start_ms", "end_ms", "span_ms", "heartbeat_ms", "_overall", "_by", "rejected", "outside", "_combos", "_separate")

    def __init__(self, start_ms: int, end_ms: int, heartbeat_ms: int = DEFAULT_HEARTBEAT_MS) -> None:
        if end_ms <= start_ms:
            raise ValueError(f"window_end {iso_z(from_ms(end_ms))} must be after window_start {iso_z(from_ms(start_ms))}")
        if heartbeat_ms <= 0:
            raise ValueError(f"heartbeat_ms must be > 0, got {heartbeat_ms!r}")
        self.start_ms, self.end_ms, self.span_ms = start_ms, end_ms, end_ms - start_ms
        self.heartbeat_ms = heartbeat_ms
        self._overall = SliceState()
        self._by: dict[str, dict[str, SliceState]] = {d: {} for d in SLICE_DIMENSIONS}
        self.rejected = 0
        self.outside = 0
        # What is counted and not yet folded (module doc), each as (state, heartbeat tally):
        # COMBINED_DIMENSIONS values -> the state of the combination, not yet added into the
        # overall and its slices; and per dimension of _SEPARATE, value -> its slice's state.
        self._combos: dict[tuple[str | None, ...], tuple[SliceState, list[int]]] = {}
        self._separate: tuple[dict[str, tuple[SliceState, list[int]]], ...] = tuple({} for _ in _SEPARATE)

    @property
    def overall(self) -> SliceState:
        """The state of every event counted."""
        if self._combos:
            self._fold()
        return self._overall

    @property
    def by(self) -> dict[str, dict[str, SliceState]]:
        """dimension -> value -> the state of the events with that value."""
        if self._combos:
            self._fold()
        return self._by

    def _fold(self) -> None:
        """Add the heartbeat tallies into their states, then the combinations' counts into
        the overall and their slices (module doc)."""
        combos, self._combos = self._combos, {}
        separate, self._separate = self._separate, tuple({} for _ in _SEPARATE)
        for state, tally in chain(combos.values(), *(entries.values() for entries in separate)):
            _add_tally(state, tally)
        overall = self._overall
        for values, (state, _) in combos.items():
            overall.merge(state)
            for dim, value in zip(COMBINED_DIMENSIONS, values, strict=True):
                if value is not None:  # None: an optional dimension these events do not carry
                    self._slice(dim, value).merge(state)

    def _slice(self, dim: str, value: str) -> SliceState:
        """The state of the slice dim=value, made on first use."""
        states = self._by.get(dim)
        if states is None:
            states = self._by[dim] = {}
        acc = states.get(value)
        if acc is None:
            acc = states[value] = SliceState()
        return acc

    @classmethod
    def of(cls, window_start: datetime, window_end: datetime, heartbeat_ms: int = DEFAULT_HEARTBEAT_MS) -> WindowState:
        return cls(to_ms(window_start), to_ms(window_end), heartbeat_ms)

    def add(self, event: Any) -> bool:
        """Count one event; False if it was rejected or outside the window."""
        try:
            ts = ms_of_iso(event["event_timestamp"])
            sid = event["session_id"]
            etype = event["event_type"]
            started = event["video_started"]
            played = event["played_ms"]
            stalled = event["stalled_ms"]
            bitrate = event["played_bitrate_kbps"]
            slices = [event[d] for d in REQUIRED_DIMENSIONS]
        except (KeyError, TypeError):
            self.rejected += 1
            return False
        if (
            ts is None
            or not isinstance(sid, str)
            or not isinstance(etype, str)
            or type(played) is not int
            or type(stalled) is not int
            or type(bitrate) is not int
            or not all(isinstance(s, str) for s in slices)
        ):
            self.rejected += 1
            return False
        key = (*slices, *(v if isinstance(v := event.get(d), str) else None for d in OPTIONAL_DIMENSIONS))
        startup = event.get("startup_time_ms") if etype == "first_frame" else None
        fatal = etype == "error" and event.get("fatal") is True
        return self.add_checked(ts, etype, started, fatal, played, stalled, bitrate, startup if type(startup) is int else None, key)

    def add_checked(
        self,
        ts: int,
        etype: str,
        started: Any,
        fatal: bool,
        played: int,
        stalled: int,
        bitrate: int,
        startup: int | None,
        key: tuple[str | None, ...],
    ) -> bool:
        """Count one event whose fields are already read and type-checked: by add() from a
        dict, or by a typed decoder (local.feed decodes records into a msgspec Struct of the
        KPI fields). The fields: the epoch-ms timestamp, event_type, video_started, fatal (a
        fatal `error`), played_ms, stalled_ms and played_bitrate_kbps (ints), startup_time_ms
        (a `first_frame`'s int, else None), and the slice values in SLICE_DIMENSIONS order
        (None: not carried). Rejects what a type cannot rule out (a negative time, a bitrate
        that is no ABR rung) and counts an event outside the window in `outside`.

        This is the one place an event is counted, into the overall state and its slices
        (through the state of its COMBINED_DIMENSIONS, module doc)."""
        at = _TALLY_AT.get(bitrate)
        if at is None or played < 0 or stalled < 0:
            self.rejected += 1
            return False
        if not (self.start_ms <= ts < self.end_ms):
            self.outside += 1
            return False
        split = _SPLIT.get(key)
        if split is None:
            split = _split(key)
        combo, values = split
        entry = self._combos.get(combo)
        if entry is None:
            entry = self._combos[combo] = (SliceState(), _new_tally())
        separate = self._separate
        if etype == "heartbeat" and played and not stalled:  # most events: tallied (module doc)
            tally = entry[1]
            tally[0] += 1
            tally[at] += played
            for j, value in values:
                e = separate[j].get(value)
                if e is None:
                    e = self._separate_entry(j, value)
                tally = e[1]
                tally[0] += 1
                tally[at] += played
            return True
        accs = [entry[0]]
        for j, value in values:
            e = separate[j].get(value)
            accs.append((e if e is not None else self._separate_entry(j, value))[0])
        quality = _RUNGS[at - 1][1]
        beat = etype in _BEATS
        end = fatal or etype in _ENDS
        for acc in accs:
            acc.events += 1
            if beat:
                acc.beats += 1
            if end:
                acc.ends += 1
            if etype == "start":
                acc.play_attempts += 1
            elif etype == "rebuffer_start":
                acc.rebuffers += 1
            elif etype == "stop" and started is False:
                acc.exits_before_video_start += 1
            elif fatal:
                if started is True:
                    acc.playback_failures += 1
                else:
                    acc.video_start_failures += 1
            if startup is not None:
                acc.startup.add(startup)
            if played:
                acc.played_ms += played
                acc.bitrate_ms += bitrate * played
                acc.quality_ms[quality] = acc.quality_ms.get(quality, 0) + played
            acc.stalled_ms += stalled
        return True

    def _separate_entry(self, j: int, value: str) -> tuple[SliceState, list[int]]:
        """The slice of the j-th dimension of _SEPARATE = value, with a new tally."""
        entry = self._separate[j][value] = (self._slice(_SEPARATE[j][1], value), _new_tally())
        return entry

    def add_all(self, events: Iterable[Any]) -> WindowState:
        for e in events:
            self.add(e)
        return self

    # ---- merging -----------------------------------------------------------------------

    def merge(self, other: WindowState) -> WindowState:
        """Add `other` into this state, in place; returns self.

        Another part of the same window (same bounds) adds its counters; a disjoint window
        adds its counters and its span (the bounds grow to cover both). Overlapping,
        different windows cannot be merged without counting events twice: ValueError.
        """
        if other.heartbeat_ms != self.heartbeat_ms:
            raise ValueError(f"cannot merge states with heartbeat {self.heartbeat_ms} and {other.heartbeat_ms} ms")
        same = (other.start_ms, other.end_ms) == (self.start_ms, self.end_ms)
        if not same:
            if other.start_ms < self.end_ms and self.start_ms < other.end_ms:
                raise ValueError("cannot merge overlapping windows: an event could be counted twice")
            self.start_ms, self.end_ms = min(self.start_ms, other.start_ms), max(self.end_ms, other.end_ms)
            self.span_ms += other.span_ms
        self.overall.merge(other.overall)
        for dim, values in other.by.items():
            mine = self.by.setdefault(dim, {})
            for v, s in values.items():
                acc = mine.get(v)
                if acc is None:
                    acc = mine[v] = SliceState()
                acc.merge(s)
        self.rejected += other.rejected
        self.outside += other.outside
        return self

    def copy(self) -> WindowState:
        c = WindowState(self.start_ms, self.end_ms, self.heartbeat_ms)
        c.merge(self)
        c.span_ms = self.span_ms
        return c

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WindowState) and self.wire() == other.wire()

    def __repr__(self) -> str:
        return f"WindowState({iso_z(from_ms(self.start_ms))}..{iso_z(from_ms(self.end_ms))}, events={self.overall.events})"

    # ---- figures and the wire ----------------------------------------------------------

    def totals(self) -> dict[str, Any]:
        """The overall sums behind the time-based KPIs, in ms (additive across windows)."""
        o = self.overall
        return {"played_ms": o.played_ms, "stalled_ms": o.stalled_ms, "bitrate_ms": o.bitrate_ms, "quality_ms": dict(o.quality_ms)}

    def kpis(self, state: SliceState | None = None) -> dict[str, Any]:
        return (state or self.overall).kpis(self.span_ms, self.heartbeat_ms)

    def report(self) -> dict[str, Any]:
        """The figures: window bounds, overall KpiSet and a KpiSet per slice."""
        return {
            "window_start": iso_z(from_ms(self.start_ms)),
            "window_end": iso_z(from_ms(self.end_ms)),
            "overall": self.kpis(),
            "by": {dim: {v: self.kpis(s) for v, s in sorted(vals.items())} for dim, vals in self.by.items() if vals},
        }

    def wire(self) -> dict[str, Any]:
        """The mergeable state as JSON (the `kpi` message body, docs/protocol.md): bounds,
        span and heartbeat, the overall KpiSet of this state (for simple readers), and
        every slice's counters."""
        return {
            "window_start": iso_z(from_ms(self.start_ms)),
            "window_end": iso_z(from_ms(self.end_ms)),
            "span_ms": self.span_ms,
            "heartbeat_ms": self.heartbeat_ms,
            "overall": self.kpis(),
            "state": {
                "overall": self.overall.wire(),
                "by": {dim: {v: s.wire() for v, s in sorted(vals.items())} for dim, vals in self.by.items() if vals},
            },
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> WindowState:
        """The state of a `wire()` dict (or a `kpi` message); ValueError if it is not one."""
        start, end = parse_datetime(data.get("window_start")), parse_datetime(data.get("window_end"))
        state = data.get("state")
        if start is None or end is None or not isinstance(state, Mapping):
            raise ValueError("not a KPI state: it needs window_start, window_end and state")
        w = cls(to_ms(start), to_ms(end), int(data.get("heartbeat_ms", DEFAULT_HEARTBEAT_MS)))
        w.span_ms = int(data.get("span_ms", w.span_ms))
        w._overall = SliceState.from_wire(state.get("overall") or {})  # a new state: nothing to fold
        for dim, vals in (state.get("by") or {}).items():
            w.by[str(dim)] = {str(v): SliceState.from_wire(s) for v, s in vals.items()}
        return w

    def split_slices(self, parts: int) -> list[WindowState]:
        """This state cut into `parts` states whose slices are disjoint (the overall goes to
        the first): they merge back to this one. For messages over the frame limit."""
        out = [WindowState(self.start_ms, self.end_ms, self.heartbeat_ms) for _ in range(parts)]
        for o in out:
            o.span_ms = self.span_ms
        out[0].overall.merge(self.overall)
        k = 0
        for dim, vals in self.by.items():
            for v, s in sorted(vals.items()):
                acc = out[k % parts].by[dim][v] = SliceState()
                acc.merge(s)
                k += 1
        return out


class KpiWindow(WindowState):
    """A WindowState built from datetimes (the feed's window_factory); snapshot() is wire()."""

    def __init__(self, window_start: datetime, window_end: datetime, heartbeat_ms: int = DEFAULT_HEARTBEAT_MS) -> None:
        super().__init__(to_ms(window_start), to_ms(window_end), heartbeat_ms)
        self.window_start, self.window_end = window_start, window_end

    def snapshot(self) -> dict[str, Any]:
        return self.wire()


def compute(
    events: Iterable[Any], window_start: datetime, window_end: datetime, heartbeat_ms: int = DEFAULT_HEARTBEAT_MS
) -> dict[str, Any]:
    """The report (overall and per slice KpiSets) of the events with window_start <= event_timestamp < window_end."""
    return WindowState.of(window_start, window_end, heartbeat_ms).add_all(events).report()


def rolling(states: Iterable[WindowState]) -> WindowState | None:
    """The merge of distinct windows' states (e.g. the last 60 s of 5 s windows), or None."""
    out: WindowState | None = None
    for s in sorted(states, key=lambda w: w.start_ms):
        out = s.copy() if out is None else out.merge(s)
    return out


def split_by_window(events: Iterable[Any], window_ms: int, heartbeat_ms: int = DEFAULT_HEARTBEAT_MS) -> tuple[dict[int, WindowState], int]:
    """Partial states of a batch, per tumbling window of `window_ms` (epoch-aligned) its
    events fall in; and the number of events without a valid timestamp."""
    out: dict[int, WindowState] = {}
    bad = 0
    for e in events:
        ts = ms_of_iso(e.get("event_timestamp")) if isinstance(e, Mapping) else None
        if ts is None:
            bad += 1
            continue
        start = window_start_ms(ts, window_ms)
        w = out.get(start)
        if w is None:
            w = out[start] = WindowState(start, start + window_ms, heartbeat_ms)
        if not w.add(e):
            bad += 1
    return out, bad


class PartMerger:
    """What the page does with `kpi` messages (dashboard/src/app.js does the same): keep the
    state of each (window key, part id), a repeated part id replacing the earlier one (a
    retried Lambda batch, a resent window), and merge the parts of a window key."""

    def __init__(self) -> None:
        self.parts: dict[tuple[int, int], dict[str, WindowState]] = {}

    def add(self, message: Mapping[str, Any]) -> tuple[int, int]:
        state = WindowState.from_wire(message)
        key = (state.start_ms, state.end_ms)
        self.parts.setdefault(key, {})[str(message.get("part") or "")] = state
        return key

    def window(self, key: tuple[int, int]) -> WindowState:
        states = list(self.parts[key].values())
        out = states[0].copy()
        for s in states[1:]:
            out.merge(s)
        return out

    def windows(self) -> dict[tuple[int, int], WindowState]:
        return {k: self.window(k) for k in sorted(self.parts)}


def part_id(ranges: Iterable[tuple[Any, int, int]]) -> str:
    """A short, stable id for the records a partial state came from: (partition, first
    offset, last offset) ranges, in any order. A retried batch gets the same id, so the
    page replaces its earlier copy instead of counting it twice."""
    import hashlib

    text = ";".join(f"{p}@{a}-{b}" for p, a, b in sorted((str(p), int(a), int(b)) for p, a, b in ranges))
    return "b" + hashlib.blake2b(text.encode(), digest_size=9).hexdigest()
