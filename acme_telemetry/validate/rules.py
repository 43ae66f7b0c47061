"""The validator's rules: each one a named, documented check, registered in one table, `RULES`.

A violation carries its rule's name (`[device-os] ...`). Rules come in five scopes:

- `line`: a raw line (found while decoding; no check function here).
- `event`: one event alone, `check(event) -> message(s) | None`. They run in table order,
  in stages: a rule marked `gate` ends a stage, and when anything in a stage failed the
  later stages are skipped (an event without its fields would only repeat the failure).
  An event that fails any event rule is not fed to the session rules.
- `pair`: two consecutive events of one session, `check(prev, cur) -> message | None`
  (entries, see `Entry`), with the same stages (`after-end` gates the rest).
- `session`: order and duplicates, found by the reorder buffer (`reorder.py`).
- `cross`: across sessions, on a session's first event, `check(state, event)`.

A rule name may appear in two scopes (`interval` and `video-started` are checked on one
event and between two). `python -c "from acme_telemetry.validate import rules; print(rules.describe())"`
prints the table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from operator import itemgetter
from typing import Any, Literal, NamedTuple

from acme_telemetry.schema import (
    CONNECTION_TYPES,
    DEVICE_OS,
    DEVICE_TYPES,
    EVENT_TYPES,
    FIELDS,
    PLAYER_STATES,
    QUALITY_LABELS,
    QUALITY_OF_BITRATE,
    TITLE_TYPES,
    UHD_DEVICE_TYPES,
)
from acme_telemetry.simulator.population import CITIES, ISPS_BY_CONNECTION, MAX_DEVICES_PER_CUSTOMER

Event = dict[str, Any]
# What a check returns: None when the rule holds, else one message or several.
Messages = str | list[str] | None
Scope = Literal["line", "event", "pair", "session", "cross"]


class Entry(NamedTuple):
    """One checked event as the session rules see it (computed once per event)."""

    event: Event
    fixed: tuple[Any, ...]  # the SESSION_FIXED values
    ts: int  # event_timestamp in epoch ms
    counters: tuple[Any, ...]  # the COUNTERS values
    source: str
    line: int
    hash: int  # of the raw line: exact duplicates are the same line


@dataclass
class CrossState:
    """What the cross-session rules remember: per customer its home and devices, per device its facts."""

    homes: dict[str, tuple[str, str]] = field(default_factory=dict)
    devices_of: dict[str, set[str]] = field(default_factory=dict)
    devices: dict[str, tuple[str, str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    name: str
    scope: Scope
    doc: str
    check: Callable[..., Messages] | None = None
    gate: bool = False  # event/pair: a failure up to here skips the rules after
    unless: str | None = None  # event: skipped when this rule already failed on the event


RULES: list[Rule] = []  # THE table, in check order within each scope


def _register(
    name: str, scope: Scope, *, gate: bool = False, unless: str | None = None
) -> Callable[[Callable[..., Messages]], Callable[..., Messages]]:
    def deco(fn: Callable[..., Messages]) -> Callable[..., Messages]:
        RULES.append(Rule(name, scope, " ".join((fn.__doc__ or "").split()), fn, gate, unless))
        return fn

    return deco


def _declare(name: str, scope: Scope, doc: str) -> None:
    """A rule found by the reader or the reorder buffer rather than by a check function."""
    RULES.append(Rule(name, scope, doc))


# ----------------------------------------------------------------------------- facts
_TS = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z\Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_NAMES = frozenset(f.name for f in FIELDS)
_N_FIELDS = len(_NAMES)
_ALL = itemgetter(*(f.name for f in FIELDS))
_ENUMS = {
    "event_type": frozenset(EVENT_TYPES),
    "player_state": frozenset(PLAYER_STATES),
    "device_type": frozenset(DEVICE_TYPES),
    "connection_type": frozenset(CONNECTION_TYPES),
    "title_type": frozenset(TITLE_TYPES),
    "quality": frozenset(QUALITY_LABELS),
}
_ENUM_ITEMS = tuple(_ENUMS.items())
SESSION_FIXED = (
    "customer_id",
    "device_id",
    "device_type",
    "device_os",
    "app_version",
    "title_id",
    "title_type",
    "title_duration_seconds",
    "ip_address",
    "isp",
    "connection_type",
    "country",
    "state",
    "city",
    "cdn",
)
# cumulative counters; the counter and interval rules index them (0..3) in this order
COUNTERS = ("buffering_events", "buffering_duration_seconds", "error_count", "watch_duration_seconds")
_COUNTERS_OF = itemgetter(*COUNTERS)
_FIXED_OF = itemgetter(*SESSION_FIXED)
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
TERMINAL_STATES = frozenset({"ended", "quit", "failed"})

# The exact Python types each field decodes to (orjson gives exact types), as every
# combination of the fields' types: an event whose type signature is one of these has
# every field of an accepted type, except for the int range checked separately.
_PY_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "double": (float, int), "int": (int,), "bigint": (int,), "boolean": (bool,)}
_GOOD_SIGNATURES = frozenset(product(*((*_PY_TYPES[f.glue_type], *((type(None),) if f.nullable else ())) for f in FIELDS)))
_INT32 = [i for i, f in enumerate(FIELDS) if f.glue_type == "int"]
_INT_LO, _INT_HI = -(2**31), 2**31


def entry(e: Event, source: str, line: int, h: int, ts: int) -> Entry:
    """The session rules' view of a checked event."""
    return Entry(e, _FIXED_OF(e), ts, _COUNTERS_OF(e), source, line, h)


# ----------------------------------------------------------------------------- per line
_declare("json", "line", "A line that is not JSON.")
_declare("not-object", "line", "A JSON value that is not an object.")


# ----------------------------------------------------------------------------- per event
@_register("missing-field", "event")
def missing_field(e: Event) -> Messages:
    """Every schema field is present (null only where the schema allows it)."""
    if len(e) >= _N_FIELDS:
        try:
            _ALL(e)
            return None
        except KeyError:
            pass
    return [f"{f.name} is missing" for f in FIELDS if f.name not in e] or None


@_register("type", "event")
def type_(e: Event) -> Messages:
    """Each present field's value fits its Glue type (schema.Field.accepts: bool is not a
    number, int is 32-bit, null only on nullable fields)."""
    try:
        values = _ALL(e)
    except KeyError:
        values = None
    if values is not None and tuple(map(type, values)) in _GOOD_SIGNATURES:
        for i in _INT32:
            v = values[i]
            if v is not None and not _INT_LO <= v < _INT_HI:
                break
        else:
            return None
    return [
        f"{f.name}={e[f.name]!r} is not a {f.glue_type}{' or null' if f.nullable else ''}"
        for f in FIELDS
        if f.name in e and not f.accepts(e[f.name])
    ] or None


@_register("unknown-field", "event", gate=True)
def unknown_field(e: Event) -> Messages:
    """No field outside the schema."""
    if len(e) == _N_FIELDS:
        try:
            _ALL(e)
            return None  # all N names present and N keys: nothing else
        except KeyError:
            pass
    return [f"{k} is not in the schema" for k in e if k not in _NAMES] or None


@_register("enum", "event", gate=True)
def enum(e: Event) -> Messages:
    """event_type, player_state, device_type, connection_type, title_type and quality take
    one of the schema's values."""
    bad = None
    for name, allowed in _ENUM_ITEMS:
        if e[name] not in allowed:
            if bad is None:
                bad = []
            bad.append(f"{name}={e[name]!r} is not one of {sorted(allowed)}")
    return bad


@_register("timestamp", "event")
def timestamp(e: Event) -> Messages:
    """event_timestamp is UTC ISO-8601 with milliseconds and Z."""
    if _TS.match(e["event_timestamp"]):
        return None
    return f"event_timestamp={e['event_timestamp']!r} is not UTC ISO-8601 with ms and Z"


@_register("uuid", "event")
def uuid(e: Event) -> Messages:
    """event_id, session_id and device_id are lowercase UUIDs."""
    m = _UUID.match
    if m(e["event_id"]) and m(e["session_id"]) and m(e["device_id"]):
        return None
    return [f"{k}={e[k]!r} is not a lowercase UUID" for k in ("event_id", "session_id", "device_id") if not m(e[k])]


@_register("device-os", "event")
def device_os(e: Event) -> Messages:
    """device_os is an operating system the device_type runs (a tv never runs iOS)."""
    if e["device_os"] in DEVICE_OS[e["device_type"]]:
        return None
    return f"device_os={e['device_os']!r} cannot run on a {e['device_type']}"


@_register("quality-bitrate", "event")
def quality_bitrate(e: Event) -> Messages:
    """quality is the label of the ABR rung bitrate_kbps."""
    q = QUALITY_OF_BITRATE.get(e["bitrate_kbps"])
    if q == e["quality"]:
        return None
    return f"quality={e['quality']!r} but bitrate_kbps={e['bitrate_kbps']} is {'rung ' + q if q else 'not a rung'}"


@_register("played-bitrate", "event")
def played_bitrate(e: Event) -> Messages:
    """played_bitrate_kbps is an ABR rung the device can play (4K only on 4K-capable types)."""
    pq = QUALITY_OF_BITRATE.get(e["played_bitrate_kbps"])
    dtype = e["device_type"]
    if pq is not None and (pq != "4K" or dtype in UHD_DEVICE_TYPES):
        return None
    return f"played_bitrate_kbps={e['played_bitrate_kbps']} is {'not a rung' if pq is None else 'a 4K rung on a ' + dtype}"


@_register("interval", "event")
def first_interval(e: Event) -> Messages:
    """A session's first event (seq 0) has no interval: played_ms and stalled_ms are 0 and
    played_bitrate_kbps is its own bitrate_kbps."""
    if e["seq"] != 0 or not (e["played_ms"] or e["stalled_ms"] or e["played_bitrate_kbps"] != e["bitrate_kbps"]):
        return None
    return (
        f"a session's first event has no interval: played_ms={e['played_ms']} stalled_ms={e['stalled_ms']} (must be 0), "
        f"played_bitrate_kbps={e['played_bitrate_kbps']} (must be bitrate_kbps={e['bitrate_kbps']})"
    )


@_register("uhd-device", "event")
def uhd_device(e: Event) -> Messages:
    """4K quality only on 4K-capable device types."""
    if e["quality"] != "4K" or e["device_type"] in UHD_DEVICE_TYPES:
        return None
    return f"4K on a {e['device_type']}, which is not 4K-capable"


@_register("geo", "event")
def geo(e: Event) -> Messages:
    """country is US and city is a city of state."""
    if e["country"] == "US" and e["city"] in CITIES.get(e["state"], ()):
        return None
    return f"city={e['city']!r} is not in state={e['state']!r}, country={e['country']!r}"


@_register("isp-connection", "event")
def isp_connection(e: Event) -> Messages:
    """isp offers the connection_type."""
    if e["isp"] in ISPS_BY_CONNECTION[e["connection_type"]]:
        return None
    return f"isp={e['isp']!r} does not offer {e['connection_type']}"


@_register("range", "event")
def range_(e: Event) -> Messages:
    """No negative counter, seq or interval; a positive title duration and bandwidth; the
    position within the title."""
    dur, pos = e["title_duration_seconds"], e["position_seconds"]
    if (
        dur <= 0
        or not 0 <= pos <= dur
        or e["bandwidth_mbps"] <= 0
        or e["seq"] < 0
        or min(_COUNTERS_OF(e)) < 0
        or e["played_ms"] < 0
        or e["stalled_ms"] < 0
    ):
        return (
            f"out of range: title_duration_seconds={dur} position_seconds={pos} bandwidth_mbps={e['bandwidth_mbps']} "
            f"seq={e['seq']} played_ms={e['played_ms']} stalled_ms={e['stalled_ms']} (or a negative counter)"
        )
    return None


@_register("completion", "event", unless="range")
def completion(e: Event) -> Messages:
    """completion_percentage = position_seconds / title_duration_seconds x 100 (within
    rounding); not checked when `range` failed."""
    pos, dur = e["position_seconds"], e["title_duration_seconds"]
    if abs(e["completion_percentage"] - 100.0 * pos / dur) <= 0.006:
        return None
    return f"completion_percentage={e['completion_percentage']} but position/duration = {100.0 * pos / dur:.3f}"


@_register("event-fields", "event")
def event_fields(e: Event) -> Messages:
    """startup_time_ms only and always on first_frame, rebuffer_duration_ms on rebuffer_end
    (both non-negative), error_code on error, fatal only on error."""
    etype = e["event_type"]
    problems = []
    if (e["startup_time_ms"] is not None) != (etype == "first_frame") or (e["startup_time_ms"] or 0) < 0:
        problems.append("startup_time_ms belongs on first_frame only")
    if (e["rebuffer_duration_ms"] is not None) != (etype == "rebuffer_end") or (e["rebuffer_duration_ms"] or 0) < 0:
        problems.append("rebuffer_duration_ms belongs on rebuffer_end only")
    if (e["error_code"] is not None) != (etype == "error"):
        problems.append("error_code belongs on error events only")
    if e["fatal"] and etype != "error":
        problems.append("fatal is only true on error events")
    return "; ".join(problems) if problems else None


@_register("player-state", "event")
def player_state(e: Event) -> Messages:
    """player_state is a state the event type can leave the player in (a fatal error:
    failed; a non-fatal one: not failed)."""
    etype, st = e["event_type"], e["player_state"]
    if etype == "error" and e["fatal"]:
        good = st == "failed"
    else:
        good = st in RESULT_STATES[etype] and not (etype == "error" and st == "failed")
    return None if good else f"a {'fatal ' if e['fatal'] else ''}{etype} cannot leave the player {st}"


@_register("start", "event")
def start(e: Event) -> Messages:
    """seq 0 is the session's start, and only seq 0 is."""
    if (e["seq"] == 0) == (e["event_type"] == "start"):
        return None
    return "seq 0 must be the session's start, and only seq 0 may be"


@_register("video-started", "event")
def video_started(e: Event) -> Messages:
    """video_started is false on start and while starting, true on first_frame and in the
    states after it."""
    etype, st, vs = e["event_type"], e["player_state"], e["video_started"]
    if (etype == "start" or st == "starting") and vs or (etype == "first_frame" or st in _STARTED_STATES) and not vs:
        return f"video_started={vs} on {etype} in state {st}"
    return None


# ----------------------------------------------------------------------------- per session (order)
_declare("seq", "session", "seq goes +1 per event: a gap, an event out of order in a plain file, or one that never arrived in a lake.")
_declare(
    "duplicate",
    "session",
    "An event_id seen twice: in a plain file always; in a lake folder only when the copies differ (exact ones are tolerated, at-least-once).",
)


# ----------------------------------------------------------------------------- per session (pairs)
@_register("after-end", "pair", gate=True)
def after_end(prev: Entry, cur: Entry) -> Messages:
    """Nothing after stop, complete or a fatal error (the rules below are then skipped)."""
    p_state = prev.event["player_state"]
    if p_state not in TERMINAL_STATES:
        return None
    e = cur.event
    return f"{e['event_type']} (seq {e['seq']}) after the session ended ({p_state})"


@_register("session-fixed", "pair")
def session_fixed(prev: Entry, cur: Entry) -> Messages:
    """Customer, device, title, network and geography never change within a session."""
    if cur.fixed == prev.fixed:
        return None
    diff = [f"{k}: {a!r} -> {b!r}" for k, a, b in zip(SESSION_FIXED, prev.fixed, cur.fixed, strict=True) if a != b]
    return "changed within the session: " + ", ".join(diff)


@_register("timestamp-order", "pair")
def timestamp_order(prev: Entry, cur: Entry) -> Messages:
    """event_timestamp strictly increases within a session."""
    if cur.ts > prev.ts:
        return None
    e, p = cur.event, prev.event
    return f"seq {e['seq']} at {e['event_timestamp']} is not after seq {p['seq']} at {p['event_timestamp']}"


@_register("position", "pair")
def position(prev: Entry, cur: Entry) -> Messages:
    """The position never goes backwards except on seek, and never runs faster than the
    clock (1 s of slack for whole-second rounding)."""
    e = cur.event
    if e["event_type"] == "seek":
        return None
    pos, p_pos = e["position_seconds"], prev.event["position_seconds"]
    if pos < p_pos:
        return f"position went back from {p_pos} to {pos} without a seek"
    elapsed_s = (cur.ts - prev.ts) / 1000.0
    if pos - p_pos > elapsed_s + 1:
        return f"position advanced {pos - p_pos}s in {elapsed_s:.3f}s"
    return None


@_register("counter", "pair")
def counter(prev: Entry, cur: Entry) -> Messages:
    """Cumulative counters never decrease; watch time never grows faster than the clock."""
    pc, c = prev.counters, cur.counters
    if not (pc[0] <= c[0] and pc[1] <= c[1] and pc[2] <= c[2] and pc[3] <= c[3]):
        dec = [f"{n}: {a} -> {b}" for n, a, b in zip(COUNTERS, pc, c, strict=True) if b < a]
        return "cumulative counter decreased: " + ", ".join(dec)
    elapsed_s = (cur.ts - prev.ts) / 1000.0
    if c[3] - pc[3] > elapsed_s + 1:
        return f"watch_duration_seconds grew {c[3] - pc[3]}s in {elapsed_s:.3f}s"
    return None


@_register("transition", "pair")
def transition(prev: Entry, cur: Entry) -> Messages:
    """The player state machine (TRANSITIONS): the previous state and the event type give
    the new state; a fatal error from any live state leaves the player failed."""
    e = cur.event
    etype, state, p_state = e["event_type"], e["player_state"], prev.event["player_state"]
    if etype == "error" and e["fatal"]:
        nxt = "failed" if p_state in _ANY_LIVE else None
    else:
        nxt = TRANSITIONS.get((p_state, etype))
    return None if nxt == state else f"{etype} from {p_state} cannot leave the player {state}"


@_register("video-started", "pair")
def video_started_pair(prev: Entry, cur: Entry) -> Messages:
    """video_started turns true at first_frame and stays true."""
    e, p = cur.event, prev.event
    if e["video_started"] == (p["video_started"] or e["event_type"] == "first_frame"):
        return None
    return f"video_started={e['video_started']} after {e['event_type']} (was {p['video_started']})"


@_register("interval", "pair")
def interval(prev: Entry, cur: Entry) -> Messages:
    """The per-event intervals agree with the cumulative counters: played_ms is the growth
    of watch_duration_seconds x1000 within its whole-second rounding, stalled_ms the growth
    of buffering_duration_seconds x1000 within 1 ms; played_ms + stalled_ms fit in the time
    since the previous event; video is played only after an event that left the player
    playing and stalls only after one that left it rebuffering; played_bitrate_kbps is the
    previous event's bitrate_kbps."""
    e, p = cur.event, prev.event
    pc, c = prev.counters, cur.counters
    played, stalled = e["played_ms"], e["stalled_ms"]
    p_state = p["player_state"]
    elapsed = cur.ts - prev.ts
    problems = []
    if abs((c[3] - pc[3]) * 1000 - played) >= 1000:
        problems.append(f"played_ms={played} but watch_duration_seconds grew {pc[3]} -> {c[3]}")
    if abs(round((c[1] - pc[1]) * 1000) - stalled) > 1:
        problems.append(f"stalled_ms={stalled} but buffering_duration_seconds grew {pc[1]} -> {c[1]}")
    if played + stalled > elapsed:
        problems.append(f"played_ms + stalled_ms = {played + stalled} in {elapsed} ms since seq {p['seq']}")
    if played and p_state != "playing":
        problems.append(f"played_ms={played} after an event that left the player {p_state}")
    if stalled and p_state != "rebuffering":
        problems.append(f"stalled_ms={stalled} after an event that left the player {p_state}")
    if e["played_bitrate_kbps"] != p["bitrate_kbps"]:
        problems.append(f"played_bitrate_kbps={e['played_bitrate_kbps']} but the previous event's bitrate_kbps={p['bitrate_kbps']}")
    return "; ".join(problems) if problems else None


# ----------------------------------------------------------------------------- across sessions
@_register("customer-home", "cross")
def customer_home(state: CrossState, e: Event) -> Messages:
    """A customer watches from one home state and city."""
    cust, home = e["customer_id"], (e["state"], e["city"])
    known = state.homes.setdefault(cust, home)
    return None if known == home else f"{cust} watches from {home}, but its home is {known}"


@_register("customer-devices", "cross")
def customer_devices(state: CrossState, e: Event) -> Messages:
    """A customer has at most MAX_DEVICES_PER_CUSTOMER devices (reported once, when one more appears)."""
    devs = state.devices_of.setdefault(e["customer_id"], set())
    devs.add(e["device_id"])
    if len(devs) == MAX_DEVICES_PER_CUSTOMER + 1:
        return f"{e['customer_id']} has more than {MAX_DEVICES_PER_CUSTOMER} devices"
    return None


@_register("device-fixed", "cross")
def device_fixed(state: CrossState, e: Event) -> Messages:
    """A device keeps its customer, type and OS."""
    dev = e["device_id"]
    facts = (e["customer_id"], e["device_type"], e["device_os"])
    seen = state.devices.setdefault(dev, facts)
    return None if seen == facts else f"device {dev} was {seen}, now {facts}"


# ----------------------------------------------------------------------------- the table, by scope
RULE_NAMES: frozenset[str] = frozenset(r.name for r in RULES)


def stages(scope: Scope) -> tuple[tuple[tuple[str, Callable[..., Messages], str | None], ...], ...]:
    """The checks of a scope as stages of (name, check, unless), split after each gate."""
    out: list[tuple[tuple[str, Callable[..., Messages], str | None], ...]] = []
    cur: list[tuple[str, Callable[..., Messages], str | None]] = []
    for r in RULES:
        if r.scope != scope or r.check is None:
            continue
        cur.append((r.name, r.check, r.unless))
        if r.gate:
            out.append(tuple(cur))
            cur = []
    if cur:
        out.append(tuple(cur))
    return tuple(out)


def describe() -> str:
    """The rule table as text: scope, name, what it checks."""
    return "\n".join(f"{r.scope:8} {r.name:17} {r.doc}" for r in RULES)
