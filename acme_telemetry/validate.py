"""Validate telemetry: the schema and the session invariants, over JSON Lines files or a lake folder.

Inputs: plain JSON Lines files, gzip'd ones (`.gz`), `-` for standard input (plain JSON
Lines, e.g. piped from `generate`; a file named "-" is `./-`), or folders (read recursively, files
in path order; a lake root is read under `telemetry/` only: `errors/` holds records the
writer already rejected, and they are counted, not checked). Blank lines are skipped.

Rules (each violation names one):
- per event: `json` (unparseable line), `not-object`, `missing-field`, `unknown-field`,
  `type` (schema.Field.accepts), `enum`, `timestamp` (UTC ISO-8601, ms, Z), `uuid`,
  `device-os` (OS matches device_type), `quality-bitrate` (quality is the ABR rung's
  label), `uhd-device` (4K only on 4K-capable device types), `geo` (country US, city in
  state), `isp-connection`, `completion` (= position / title duration), `range`
  (negative counters or intervals, position past the end, non-positive bandwidth),
  `played-bitrate` (played_bitrate_kbps is an ABR rung the device can play), `event-fields`
  (startup_time_ms only and always on first_frame, rebuffer_duration_ms on rebuffer_end,
  error_code on error, fatal only on error), `player-state` (the state an event type can
  leave the player in).
- per session: `session-fixed` (customer, device, title, network and geography never
  change), `seq` (+1 per event), `timestamp-order` (strictly increasing), `position`
  (never backwards except on seek; never faster than the clock), `counter` (cumulative
  counters never decrease; watch time never faster than the clock), `transition` (the
  player state machine), `start` (seq 0 is the only start), `after-end` (nothing after
  stop, complete or a fatal error), `video-started` (turns true at first_frame and stays),
  `interval` (the per-event intervals agree with the cumulative counters: played_ms is the
  growth of watch_duration_seconds x1000 within its whole-second rounding, stalled_ms the
  growth of buffering_duration_seconds x1000 within 1 ms; played_ms + stalled_ms fit in the
  time since the previous event; video is played only after an event that left the player
  playing and stalls only after one that left it rebuffering; played_bitrate_kbps is the
  previous event's bitrate_kbps; all three are 0 / bitrate_kbps on a session's seq 0).
- across sessions: `customer-home` (one home state and city per customer),
  `customer-devices` (at most MAX_DEVICES_PER_CUSTOMER devices), `device-fixed` (a device
  keeps its customer, type and OS).

Order and duplicates. A session's events must come in order (Kafka keeps one session on
one partition). In a plain file they are checked in file order. In a folder (a lake)
objects are read in path order and an event that arrives ahead of a missing one waits
for it; what never arrives is a `seq` gap. The lake is at-least-once, so in a folder an
exact duplicate (the same event_id with byte-identical JSON) is counted and tolerated;
a duplicate that differs is a `duplicate` violation. In a plain file (for example
`generate` output) any repeated event_id is a `duplicate` violation. Memory: per
session a small state plus 8 bytes per event (the line hashes that make duplicate checks
exact), per customer its home and devices.
"""

from __future__ import annotations

import gzip
import re
import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from acme_telemetry.schema import (
    ABR_LADDER,
    CONNECTION_TYPES,
    DEVICE_OS,
    DEVICE_TYPES,
    EVENT_TYPES,
    FIELDS,
    LAKE_PREFIX,
    PLAYER_STATES,
    QUALITY_LABELS,
    QUALITY_OF_BITRATE,
    TITLE_TYPES,
    UHD_DEVICE_TYPES,
)
from acme_telemetry.simulator.population import CITIES, ISPS_BY_CONNECTION, MAX_DEVICES_PER_CUSTOMER

_TS = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z\Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_FIELDS = [(f.name, f) for f in FIELDS]
_NAMES = frozenset(f.name for f in FIELDS)
_ENUMS = {
    "event_type": frozenset(EVENT_TYPES),
    "player_state": frozenset(PLAYER_STATES),
    "device_type": frozenset(DEVICE_TYPES),
    "connection_type": frozenset(CONNECTION_TYPES),
    "title_type": frozenset(TITLE_TYPES),
    "quality": frozenset(QUALITY_LABELS),
}
SESSION_FIXED = (
    "customer_id", "device_id", "device_type", "device_os", "app_version", "title_id", "title_type",
    "title_duration_seconds", "ip_address", "isp", "connection_type", "country", "state", "city", "cdn",
)
COUNTERS = ("buffering_events", "buffering_duration_seconds", "error_count", "watch_duration_seconds")
# (state before, event type) -> state after; a fatal error always leaves "failed".
_ANY_LIVE = ("starting", "playing", "paused", "rebuffering")
TRANSITIONS: dict[tuple[str, str], str] = {
    ("starting", "heartbeat"): "starting",
    ("starting", "first_frame"): "playing",
    ("playing", "heartbeat"): "playing",
    ("playing", "pause"): "paused",
    ("playing", "rebuffer_start"): "rebuffering",
    ("playing", "bitrate_change"): "playing",
    ("playing", "seek"): "playing",
    ("playing", "complete"): "ended",
    ("paused", "heartbeat"): "paused",
    ("paused", "resume"): "playing",
    ("paused", "seek"): "paused",
    ("rebuffering", "heartbeat"): "rebuffering",
    ("rebuffering", "rebuffer_end"): "playing",
    **{(s, "stop"): "quit" for s in _ANY_LIVE},
    **{(s, "error"): s for s in _ANY_LIVE},  # non-fatal
}
# event type -> states it can leave the player in (for a session's first event seen)
RESULT_STATES: dict[str, frozenset[str]] = {"start": frozenset({"starting"})}
for (_, _e), _s in TRANSITIONS.items():
    RESULT_STATES[_e] = RESULT_STATES.get(_e, frozenset()) | {_s}
RESULT_STATES["error"] = RESULT_STATES["error"] | {"failed"}
_STARTED_STATES = frozenset({"playing", "paused", "rebuffering", "ended"})
_TERMINAL_STATES = frozenset({"ended", "quit", "failed"})
_LADDER_MAX_NON_UHD = max(k for k, q in ABR_LADDER if q != "4K")


@dataclass
class Violation:
    source: str
    line: int
    rule: str
    message: str
    event: dict | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        ev = ""
        if isinstance(self.event, dict):
            keys = ("event_id", "session_id", "seq", "event_type", "event_timestamp")
            ev = " | " + " ".join(f"{k}={self.event.get(k)}" for k in keys if k in self.event)
        return f"{where}: [{self.rule}] {self.message}{ev}"


@dataclass
class Report:
    events: int = 0
    sessions: int = 0
    files: int = 0
    duplicates: int = 0
    error_objects: int = 0
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


class _Session:
    """What the validator keeps per session: its lowest and highest events checked so far
    (each as (event, fixed fields, ts ms, counters)), the line hashes, and what waits."""

    __slots__ = ("low", "high", "base", "hashes", "pending_high", "pending_low")

    def __init__(self, first: tuple, h: int) -> None:
        self.low = self.high = first
        self.base = first[0]["seq"]  # seq of hashes[0]
        self.hashes = array("q", [h])
        self.pending_high: dict[int, tuple] = {}
        self.pending_low: dict[int, tuple] = {}


class Validator:
    """Feed lines with feed(); call finish() for the report. Sources are checked in feed order."""

    def __init__(self, max_violations: int | None = None) -> None:
        self.report = Report()
        self._sessions: dict[str, _Session] = {}
        self._customers: dict[str, tuple[tuple, set]] = {}
        self._devices: dict[str, tuple] = {}
        self._max = max_violations

    # -- reporting
    def _v(self, source: str, line: int, rule: str, message: str, event: dict | None = None) -> None:
        if self._max is None or len(self.report.violations) < self._max:
            self.report.violations.append(Violation(source, line, rule, message, event))
        else:
            self.report.violations.append(Violation(source, line, rule, message))  # count only

    # -- one source
    def feed(self, source: str, lines: Iterable[bytes], lake: bool) -> None:
        self.report.files += 1
        for no, raw in enumerate(lines, 1):
            raw = raw.strip()
            if not raw:
                continue
            try:
                e = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                self._v(source, no, "json", f"not JSON: {exc}")
                continue
            if not isinstance(e, dict):
                self._v(source, no, "not-object", f"a JSON {type(e).__name__}, not an object")
                continue
            self.report.events += 1
            if not self._check_event(source, no, e):
                continue  # schema broken: session rules would only repeat it
            self._session_event(source, no, e, hash(raw), lake)

    # -- per event
    def _check_event(self, src: str, no: int, e: dict) -> bool:
        ok = True
        for name, f in _FIELDS:
            if name not in e:
                self._v(src, no, "missing-field", f"{name} is missing", e)
                ok = False
            elif not f.accepts(e[name]):
                self._v(src, no, "type", f"{name}={e[name]!r} is not a {f.glue_type}{' or null' if f.nullable else ''}", e)
                ok = False
        if len(e) != len(_NAMES) or not ok:
            for k in e:
                if k not in _NAMES:
                    self._v(src, no, "unknown-field", f"{k} is not in the schema", e)
                    ok = False
        if not ok:
            return False
        for name, allowed in _ENUMS.items():
            if e[name] not in allowed:
                self._v(src, no, "enum", f"{name}={e[name]!r} is not one of {sorted(allowed)}", e)
                ok = False
        if not ok:
            return False
        if not _TS.match(e["event_timestamp"]):
            self._v(src, no, "timestamp", f"event_timestamp={e['event_timestamp']!r} is not UTC ISO-8601 with ms and Z", e)
            ok = False
        for k in ("event_id", "session_id", "device_id"):
            if not _UUID.match(e[k]):
                self._v(src, no, "uuid", f"{k}={e[k]!r} is not a lowercase UUID", e)
                ok = False
        dtype, etype = e["device_type"], e["event_type"]
        if e["device_os"] not in DEVICE_OS[dtype]:
            self._v(src, no, "device-os", f"device_os={e['device_os']!r} cannot run on a {dtype}", e)
            ok = False
        q = QUALITY_OF_BITRATE.get(e["bitrate_kbps"])
        if q != e["quality"]:
            self._v(src, no, "quality-bitrate", f"quality={e['quality']!r} but bitrate_kbps={e['bitrate_kbps']} is {'rung ' + q if q else 'not a rung'}", e)
            ok = False
        pq = QUALITY_OF_BITRATE.get(e["played_bitrate_kbps"])
        if pq is None or pq == "4K" and dtype not in UHD_DEVICE_TYPES:
            self._v(src, no, "played-bitrate", f"played_bitrate_kbps={e['played_bitrate_kbps']} is {'not a rung' if pq is None else 'a 4K rung on a ' + dtype}", e)
            ok = False
        if e["seq"] == 0 and (e["played_ms"] or e["stalled_ms"] or e["played_bitrate_kbps"] != e["bitrate_kbps"]):
            self._v(src, no, "interval", f"a session's first event has no interval: played_ms={e['played_ms']} stalled_ms={e['stalled_ms']} (must be 0), played_bitrate_kbps={e['played_bitrate_kbps']} (must be bitrate_kbps={e['bitrate_kbps']})", e)
            ok = False
        if e["quality"] == "4K" and dtype not in UHD_DEVICE_TYPES:
            self._v(src, no, "uhd-device", f"4K on a {dtype}, which is not 4K-capable", e)
            ok = False
        if e["country"] != "US" or e["city"] not in CITIES.get(e["state"], ()):
            self._v(src, no, "geo", f"city={e['city']!r} is not in state={e['state']!r}, country={e['country']!r}", e)
            ok = False
        if e["isp"] not in ISPS_BY_CONNECTION[e["connection_type"]]:
            self._v(src, no, "isp-connection", f"isp={e['isp']!r} does not offer {e['connection_type']}", e)
            ok = False
        dur, pos = e["title_duration_seconds"], e["position_seconds"]
        if (dur <= 0 or not 0 <= pos <= dur or e["bandwidth_mbps"] <= 0 or e["seq"] < 0 or any(e[c] < 0 for c in COUNTERS)
                or e["played_ms"] < 0 or e["stalled_ms"] < 0):
            self._v(src, no, "range", f"out of range: title_duration_seconds={dur} position_seconds={pos} bandwidth_mbps={e['bandwidth_mbps']} seq={e['seq']} played_ms={e['played_ms']} stalled_ms={e['stalled_ms']} (or a negative counter)", e)
            ok = False
        elif abs(e["completion_percentage"] - 100.0 * pos / dur) > 0.006:
            self._v(src, no, "completion", f"completion_percentage={e['completion_percentage']} but position/duration = {100.0 * pos / dur:.3f}", e)
            ok = False
        problems = []
        if (e["startup_time_ms"] is not None) != (etype == "first_frame") or (e["startup_time_ms"] or 0) < 0:
            problems.append("startup_time_ms belongs on first_frame only")
        if (e["rebuffer_duration_ms"] is not None) != (etype == "rebuffer_end") or (e["rebuffer_duration_ms"] or 0) < 0:
            problems.append("rebuffer_duration_ms belongs on rebuffer_end only")
        if (e["error_code"] is not None) != (etype == "error"):
            problems.append("error_code belongs on error events only")
        if e["fatal"] and etype != "error":
            problems.append("fatal is only true on error events")
        if problems:
            self._v(src, no, "event-fields", "; ".join(problems), e)
            ok = False
        st = e["player_state"]
        if etype == "error" and e["fatal"]:
            good = st == "failed"
        else:
            good = st in RESULT_STATES[etype] and not (etype == "error" and st == "failed")
        if not good:
            self._v(src, no, "player-state", f"a {'fatal ' if e['fatal'] else ''}{etype} cannot leave the player {st}", e)
            ok = False
        if (e["seq"] == 0) != (etype == "start"):
            self._v(src, no, "start", "seq 0 must be the session's start, and only seq 0 may be", e)
            ok = False
        vs = e["video_started"]
        if (etype == "start" or st == "starting") and vs or (etype == "first_frame" or st in _STARTED_STATES) and not vs:
            self._v(src, no, "video-started", f"video_started={vs} on {etype} in state {st}", e)
            ok = False
        return ok

    # -- per session, in seq order
    def _session_event(self, src: str, no: int, e: dict, h: int, lake: bool) -> None:
        item = (e, tuple(e[k] for k in SESSION_FIXED), _ts_ms(e["event_timestamp"]), tuple(e[c] for c in COUNTERS), src, no, h)
        sid = e["session_id"]
        s = self._sessions.get(sid)
        if s is None:
            self._sessions[sid] = _Session(item, h)
            self.report.sessions += 1
            self._cross_session(src, no, e)
            return
        seq = e["seq"]
        lo, hi = s.low[0]["seq"], s.high[0]["seq"]
        if lo <= seq <= hi:
            if s.hashes[seq - s.base] == h:
                if lake:
                    self.report.duplicates += 1
                else:
                    self._v(src, no, "duplicate", f"seq {seq} repeated (exact duplicates are tolerated only in a lake folder)", e)
            elif s.hashes[seq - s.base] == 0:
                self._v(src, no, "seq", f"seq {seq} arrived after the gap it was missing from was reported", e)
            else:
                self._v(src, no, "duplicate", f"seq {seq} seen before with different content", e)
            return
        if lake and (seq > hi + 1 or seq < lo - 1):
            pending = s.pending_high if seq > hi else s.pending_low
            if seq in pending:
                if pending[seq][6] == h:
                    self.report.duplicates += 1
                else:
                    self._v(src, no, "duplicate", f"seq {seq} seen before with different content", e)
            else:
                pending[seq] = item  # waits for the events between
            return
        if seq > hi:
            if seq > hi + 1:
                self._v(src, no, "seq", f"seq {seq} follows seq {hi}: {seq - hi - 1} missing", e)
            self._extend(s, item)
            while s.pending_high and (s.high[0]["seq"] + 1) in s.pending_high:
                self._extend(s, s.pending_high.pop(s.high[0]["seq"] + 1))
        elif lake:
            self._extend(s, item)
            while s.pending_low and (s.low[0]["seq"] - 1) in s.pending_low:
                self._extend(s, s.pending_low.pop(s.low[0]["seq"] - 1))
        else:
            self._v(src, no, "seq", f"seq {seq} arrived after seq {hi} (out of order)", e)

    def _extend(self, s: _Session, item: tuple) -> None:
        """Add an event just above the session's highest or just below its lowest."""
        seq = item[0]["seq"]
        if seq > s.high[0]["seq"]:
            self._pair(s.high, item, item)
            s.high = item
            while len(s.hashes) < seq - s.base:
                s.hashes.append(0)  # a gap (plain files only)
            s.hashes.append(item[6])
        else:
            self._pair(item, s.low, item)
            s.low = item
            s.hashes = array("q", [item[6]]) + s.hashes
            s.base = seq

    def _pair(self, prev_item: tuple, cur_item: tuple, at: tuple) -> None:
        """Rules between two consecutive events of a session; violations are reported at `at`."""
        p, p_fixed, p_ts, p_counters = prev_item[:4]
        e, fixed, ts, counters = cur_item[:4]
        src, no, ev = at[4], at[5], at[0]
        etype, state, p_state = e["event_type"], e["player_state"], p["player_state"]
        if p_state in _TERMINAL_STATES:
            self._v(src, no, "after-end", f"{etype} (seq {e['seq']}) after the session ended ({p_state})", ev)
            return
        if fixed != p_fixed:
            diff = [f"{k}: {a!r} -> {b!r}" for k, a, b in zip(SESSION_FIXED, p_fixed, fixed) if a != b]
            self._v(src, no, "session-fixed", "changed within the session: " + ", ".join(diff), ev)
        if ts <= p_ts:
            self._v(src, no, "timestamp-order", f"seq {e['seq']} at {e['event_timestamp']} is not after seq {p['seq']} at {p['event_timestamp']}", ev)
        elapsed_s = (ts - p_ts) / 1000.0
        pos, p_pos = e["position_seconds"], p["position_seconds"]
        if etype != "seek" and pos < p_pos:
            self._v(src, no, "position", f"position went back from {p_pos} to {pos} without a seek", ev)
        elif etype != "seek" and pos - p_pos > elapsed_s + 1:
            self._v(src, no, "position", f"position advanced {pos - p_pos}s in {elapsed_s:.3f}s", ev)
        dec = [f"{c}: {a} -> {b}" for c, a, b in zip(COUNTERS, p_counters, counters) if b < a]
        if dec:
            self._v(src, no, "counter", "cumulative counter decreased: " + ", ".join(dec), ev)
        elif counters[3] - p_counters[3] > elapsed_s + 1:
            self._v(src, no, "counter", f"watch_duration_seconds grew {counters[3] - p_counters[3]}s in {elapsed_s:.3f}s", ev)
        if etype == "error" and e["fatal"]:
            nxt = "failed" if p_state in _ANY_LIVE else None
        else:
            nxt = TRANSITIONS.get((p_state, etype))
        if nxt != state:
            self._v(src, no, "transition", f"{etype} from {p_state} cannot leave the player {state}", ev)
        if e["video_started"] != (p["video_started"] or etype == "first_frame"):
            self._v(src, no, "video-started", f"video_started={e['video_started']} after {etype} (was {p['video_started']})", ev)
        played, stalled = e["played_ms"], e["stalled_ms"]
        problems = []
        if abs((counters[3] - p_counters[3]) * 1000 - played) >= 1000:
            problems.append(f"played_ms={played} but watch_duration_seconds grew {p_counters[3]} -> {counters[3]}")
        if abs(round((counters[1] - p_counters[1]) * 1000) - stalled) > 1:
            problems.append(f"stalled_ms={stalled} but buffering_duration_seconds grew {p_counters[1]} -> {counters[1]}")
        if played + stalled > ts - p_ts:
            problems.append(f"played_ms + stalled_ms = {played + stalled} in {ts - p_ts} ms since seq {p['seq']}")
        if played and p_state != "playing":
            problems.append(f"played_ms={played} after an event that left the player {p_state}")
        if stalled and p_state != "rebuffering":
            problems.append(f"stalled_ms={stalled} after an event that left the player {p_state}")
        if e["played_bitrate_kbps"] != p["bitrate_kbps"]:
            problems.append(f"played_bitrate_kbps={e['played_bitrate_kbps']} but the previous event's bitrate_kbps={p['bitrate_kbps']}")
        if problems:
            self._v(src, no, "interval", "; ".join(problems), ev)

    def _cross_session(self, src: str, no: int, e: dict) -> None:
        cust, dev = e["customer_id"], e["device_id"]
        home = (e["state"], e["city"])
        known = self._customers.get(cust)
        if known is None:
            self._customers[cust] = (home, {dev})
        else:
            if known[0] != home:
                self._v(src, no, "customer-home", f"{cust} watches from {home}, but its home is {known[0]}", e)
            known[1].add(dev)
            if len(known[1]) == MAX_DEVICES_PER_CUSTOMER + 1:
                self._v(src, no, "customer-devices", f"{cust} has more than {MAX_DEVICES_PER_CUSTOMER} devices", e)
        facts = (cust, e["device_type"], e["device_os"])
        seen = self._devices.setdefault(dev, facts)
        if seen != facts:
            self._v(src, no, "device-fixed", f"device {dev} was {seen}, now {facts}", e)

    def finish(self) -> Report:
        for sid, s in self._sessions.items():
            for pending, where in ((s.pending_high, "after"), (s.pending_low, "before")):
                if pending:
                    lo, hi = s.low[0]["seq"], s.high[0]["seq"]
                    first = min(pending) if where == "after" else max(pending)
                    gap = f"{hi + 1}..{first - 1}" if where == "after" else f"{first + 1}..{lo - 1}"
                    self._v("(end of input)", 0, "seq", f"session {sid}: seq {gap} never arrived; {len(pending)} events {where} the gap unchecked")
        return self.report


def _ts_ms(value: str) -> int:
    from acme_telemetry.kpis import parse_ts_ms

    ms = parse_ts_ms(value)
    return ms if ms is not None else 0


def _iso(ms: int) -> str:
    from acme_telemetry.simulator.engine import iso_ms

    return iso_ms(ms)


def _read_lines(path: Path) -> Iterator[bytes]:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            yield from fh
    else:
        with open(path, "rb") as fh:
            yield from fh


def expand(paths: Iterable[str | Path]) -> tuple[list[tuple[Path | None, bool]], int]:
    """Files to check as (path, in_lake_folder), path None for standard input (the string
    "-"), and the count of lake error objects.

    Raises FileNotFoundError / NotADirectoryError / PermissionError for unusable paths.
    """
    files: list[tuple[Path | None, bool]] = []
    errors = 0
    for raw in paths:
        if isinstance(raw, str) and raw == "-":
            files.append((None, False))
            continue
        p = Path(raw)
        if p.is_dir():
            root = p / LAKE_PREFIX.rstrip("/")
            if root.is_dir():
                errors += sum(1 for f in (p / "errors").rglob("*") if f.is_file()) if (p / "errors").is_dir() else 0
            else:
                root = p
            found = [(f, True) for f in sorted(root.rglob("*")) if f.is_file() and not f.name.startswith(".")]
            if not found:
                raise FileNotFoundError(f"{p}: no files to check in this folder")
            files.extend(found)
        elif p.exists():
            files.append((p, False))
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return files, errors


def validate_paths(paths: Iterable[str | Path], max_violations: int | None = None) -> Report:
    """Validate files and folders; raises OSError (or gzip's BadGzipFile) when one cannot be read."""
    files, error_objects = expand(paths)
    v = Validator(max_violations)
    v.report.error_objects = error_objects
    for path, lake in files:
        if path is None:
            v.feed("<stdin>", sys.stdin.buffer, False)
        else:
            v.feed(str(path), _read_lines(path), lake)
    return v.finish()


def validate_lines(lines: Iterable[bytes], source: str = "<lines>", lake: bool = False) -> Report:
    """Validate in-memory JSON lines (for tests and the pipeline)."""
    v = Validator()
    v.feed(source, lines, lake)
    return v.finish()


def validate_events(events: Iterable[dict[str, Any]], source: str = "<events>", lake: bool = False) -> Report:
    return validate_lines((orjson.dumps(e) for e in events), source, lake)
