"""Validate telemetry: the schema and the session invariants, over JSON Lines files or a lake folder.

Inputs: plain JSON Lines files, gzip'd ones (`.gz`), or folders (read recursively, files
in path order; a lake root is read under `telemetry/` only: `errors/` holds records the
writer already rejected, and they are counted, not checked). Blank lines are skipped.

Rules (each violation names one):
- per event: `json` (unparseable line), `not-object`, `missing-field`, `unknown-field`,
  `type` (schema.Field.accepts), `enum`, `timestamp` (UTC ISO-8601, ms, Z), `uuid`,
  `device-os` (OS matches device_type), `quality-bitrate` (quality is the ABR rung's
  label), `uhd-device` (4K only on 4K-capable device types), `geo` (country US, city in
  state), `isp-connection`, `completion` (= position / title duration), `range`
  (negative counters, position past the end, non-positive bandwidth), `event-fields`
  (startup_time_ms only and always on first_frame, rebuffer_duration_ms on rebuffer_end,
  error_code on error, fatal only on error), `player-state` (the state an event type can
  leave the player in).
- per session: `session-fixed` (customer, device, title, network and geography never
  change), `seq` (+1 per event), `timestamp-order` (strictly increasing), `position`
  (never backwards except on seek; never faster than the clock), `counter` (cumulative
  counters never decrease; watch time never faster than the clock), `transition` (the
  player state machine), `start` (seq 0 is the only start), `after-end` (nothing after
  stop, complete or a fatal error), `video-started` (turns true at first_frame and stays).
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
    __slots__ = ("fixed", "seq", "ts", "pos", "counters", "state", "started", "base", "hashes", "pending", "ended")

    def __init__(self) -> None:
        self.fixed: tuple | None = None
        self.seq = -1
        self.ts = 0
        self.pos = 0
        self.counters: tuple = ()
        self.state: str | None = None
        self.started: bool | None = None
        self.base = 0  # seq of hashes[0]
        self.hashes = array("q")
        self.pending: dict[int, tuple] = {}
        self.ended = False


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
        if dur <= 0 or not 0 <= pos <= dur or e["bandwidth_mbps"] <= 0 or e["seq"] < 0 or any(e[c] < 0 for c in COUNTERS):
            self._v(src, no, "range", f"out of range: title_duration_seconds={dur} position_seconds={pos} bandwidth_mbps={e['bandwidth_mbps']} seq={e['seq']}", e)
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
        vs = e["video_started"]
        if (etype == "start" or st == "starting") and vs or (etype == "first_frame" or st in _STARTED_STATES) and not vs:
            self._v(src, no, "video-started", f"video_started={vs} on {etype} in state {st}", e)
            ok = False
        return ok

    # -- per session, in seq order
    def _session_event(self, src: str, no: int, e: dict, h: int, lake: bool) -> None:
        sid = e["session_id"]
        s = self._sessions.get(sid)
        if s is None:
            s = self._sessions[sid] = _Session()
            self.report.sessions += 1
            s.base = e["seq"]
            self._apply(s, src, no, e, h, first=True)
            return
        seq = e["seq"]
        expect = s.seq + 1
        if seq < expect:
            idx = seq - s.base
            if 0 <= idx < len(s.hashes):
                if s.hashes[idx] == h and lake:
                    self.report.duplicates += 1
                elif s.hashes[idx] == h:
                    self._v(src, no, "duplicate", f"event seq {seq} repeated (duplicates are tolerated only in a lake folder)", e)
                else:
                    self._v(src, no, "duplicate", f"seq {seq} seen before with different content", e)
            else:
                self._v(src, no, "seq", f"seq {seq} arrived after seq {s.seq} (out of order)", e)
            return
        if seq > expect and lake:
            if seq in s.pending:
                if s.pending[seq][3] == h:
                    self.report.duplicates += 1
                else:
                    self._v(src, no, "duplicate", f"seq {seq} seen before with different content", e)
                return
            s.pending[seq] = (src, no, e, h)
            return
        if seq > expect:
            self._v(src, no, "seq", f"seq {seq} follows seq {s.seq}: {seq - expect} missing", e)
        self._apply(s, src, no, e, h, first=False)
        while s.pending and (s.seq + 1) in s.pending:
            item = s.pending.pop(s.seq + 1)
            self._apply(s, *item, first=False)

    def _apply(self, s: _Session, src: str, no: int, e: dict, h: int, first: bool) -> None:
        seq, etype, state = e["seq"], e["event_type"], e["player_state"]
        ts = _ts_ms(e["event_timestamp"])
        fixed = tuple(e[k] for k in SESSION_FIXED)
        counters = tuple(e[c] for c in COUNTERS)
        pos = e["position_seconds"]
        while len(s.hashes) < seq - s.base:
            s.hashes.append(0)  # a gap
        s.hashes.append(h)
        if first:
            if (seq == 0) != (etype == "start"):
                self._v(src, no, "start", "seq 0 must be the session's start and only seq 0 may be", e)
            self._cross_session(src, no, e)
        else:
            if s.ended:
                self._v(src, no, "after-end", f"{etype} after the session ended ({s.state})", e)
            if fixed != s.fixed:
                diff = [f"{k}: {a!r} -> {b!r}" for k, a, b in zip(SESSION_FIXED, s.fixed, fixed) if a != b]
                self._v(src, no, "session-fixed", "changed within the session: " + ", ".join(diff), e)
            if etype == "start":
                self._v(src, no, "start", "a second start in one session", e)
            if ts <= s.ts:
                self._v(src, no, "timestamp-order", f"timestamp not after the previous event's ({_iso(s.ts)})", e)
            elapsed_s = (ts - s.ts) / 1000.0
            if etype != "seek" and pos < s.pos:
                self._v(src, no, "position", f"position went back from {s.pos} to {pos} without a seek", e)
            elif etype != "seek" and pos - s.pos > elapsed_s + 1:
                self._v(src, no, "position", f"position advanced {pos - s.pos}s in {elapsed_s:.3f}s", e)
            dec = [f"{c}: {a} -> {b}" for c, a, b in zip(COUNTERS, s.counters, counters) if b < a]
            if dec:
                self._v(src, no, "counter", "cumulative counter decreased: " + ", ".join(dec), e)
            elif counters[3] - s.counters[3] > elapsed_s + 1:
                self._v(src, no, "counter", f"watch_duration_seconds grew {counters[3] - s.counters[3]}s in {elapsed_s:.3f}s", e)
            if etype == "error" and e["fatal"]:
                nxt = "failed" if s.state in _ANY_LIVE else None
            else:
                nxt = TRANSITIONS.get((s.state, etype))
            if not s.ended and nxt != state:
                self._v(src, no, "transition", f"{etype} from {s.state} cannot leave the player {state}", e)
            started = e["video_started"]
            if started != (s.started or etype == "first_frame"):
                self._v(src, no, "video-started", f"video_started={started} after {etype} (was {s.started})", e)
        s.fixed, s.seq, s.ts, s.pos, s.counters, s.state, s.started = fixed, seq, ts, pos, counters, state, e["video_started"]
        s.ended = s.ended or state in _TERMINAL_STATES

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
            if s.pending:
                first = min(s.pending)
                self._v("(end of input)", 0, "seq", f"session {sid}: seq {s.seq + 1}..{first - 1} never arrived; {len(s.pending)} later events unchecked")
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


def expand(paths: Iterable[str | Path]) -> tuple[list[tuple[Path, bool]], int]:
    """Files to check as (path, in_lake_folder), and the count of lake error objects.

    Raises FileNotFoundError / NotADirectoryError / PermissionError for unusable paths.
    """
    files: list[tuple[Path, bool]] = []
    errors = 0
    for p in map(Path, paths):
        if p.is_dir():
            root = p / LAKE_PREFIX.rstrip("/")
            if root.is_dir():
                errors += sum(1 for f in (p / "errors").rglob("*") if f.is_file()) if (p / "errors").is_dir() else 0
            else:
                root = p
            files.extend((f, True) for f in sorted(root.rglob("*")) if f.is_file() and not f.name.startswith("."))
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
        v.feed(str(path), _read_lines(path), lake)
    return v.finish()


def validate_lines(lines: Iterable[bytes], source: str = "<lines>", lake: bool = False) -> Report:
    """Validate in-memory JSON lines (for tests and the pipeline)."""
    v = Validator()
    v.feed(source, lines, lake)
    return v.finish()


def validate_events(events: Iterable[dict[str, Any]], source: str = "<events>", lake: bool = False) -> Report:
    return validate_lines((orjson.dumps(e) for e in events), source, lake)
