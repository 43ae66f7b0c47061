"""A session's JSON template, derived from schema.FIELDS.

Every event of a session is one JSON object with the schema's fields in the schema's
order. The fields fixed for the session (who, what, where) are rendered once, here, from
its SessionFacts; the per-event values are slots that kernel.c's render() fills, in
order. So the event layout is written once, in schema.FIELDS; this module says how each
field's value is rendered, and refuses to load if a schema field has no renderer or a
renderer has no schema field. binding.py checks SLOT_FIELDS against the kernel's own list
(k_slot_field) when it loads the library.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from acme_telemetry.schema import FIELD_NAMES
from acme_telemetry.simulator.population import SessionFacts

# Per-event fields: their JSON value, each %s a slot kernel.c fills (its render() writes
# the event_id's 6 hex digits, the timestamp's second and millisecond, quoted labels bare).
# %(name)s is a session fact.
PER_EVENT: dict[str, bytes] = {
    "event_id": b'"%(event_id_prefix)s%%s"',
    "event_type": b'"%%s"',
    "event_timestamp": b'"%%s.%%sZ"',
    "quality": b'"%%s"',
    "bandwidth_mbps": b"%%s",
    "buffering_events": b"%%s",
    "buffering_duration_seconds": b"%%s",
    "error_count": b"%%s",
    "watch_duration_seconds": b"%%s",
    "position_seconds": b"%%s",
    "completion_percentage": b"%%s",
    "seq": b"%%s",
    "bitrate_kbps": b"%%s",
    "startup_time_ms": b"%%s",  # a number or null
    "rebuffer_duration_ms": b"%%s",
    "error_code": b"%%s",  # a JSON string or null
    "fatal": b"%%s",
    "video_started": b"%%s",
    "player_state": b'"%%s"',
    "played_ms": b"%%s",
    "stalled_ms": b"%%s",
    "played_bitrate_kbps": b"%%s",
}

_JSON_STR: dict[str, bytes] = {}


def json_name(v: str) -> bytes:
    """v as a JSON string (orjson escapes it), memoised: the population's names (states,
    cities, ISPs, operating systems...) are a small fixed set."""
    b = _JSON_STR.get(v)
    if b is None:
        b = orjson.dumps(v)
        if b"%" in b:  # a % would corrupt the session template's slots
            raise ValueError(f"a population string contains '%': {v!r}")
        _JSON_STR[v] = b
    return b


def json_id(v: str) -> bytes:
    """An id, version or address of our own [0-9a-z._-] formats: quoting is its JSON (unique
    per session, so not memoised)."""
    return b'"' + v.encode() + b'"'


def json_int(v: int) -> bytes:
    return b"%d" % v


# Session fields: the SessionFacts attribute of the same name, and how it is encoded.
PER_SESSION: dict[str, Callable[..., bytes]] = {
    "customer_id": json_id,
    "title_id": json_id,
    "session_id": json_id,
    "device_id": json_id,
    "title_type": json_name,
    "device_type": json_name,
    "device_os": json_name,
    "app_version": json_id,
    "ip_address": json_id,
    "isp": json_name,
    "connection_type": json_name,
    "country": json_name,
    "state": json_name,
    "city": json_name,
    "title_duration_seconds": json_int,
    "cdn": json_name,
}
# Facts used inside a per-event value (%(name)s in PER_EVENT).
EMBEDDED: dict[str, Callable[..., bytes]] = {"event_id_prefix": lambda v: v.encode()}


def check(field_names: Sequence[str] = FIELD_NAMES) -> None:
    """ImportError naming every field where the renderers and the schema's fields differ."""
    both = set(PER_EVENT) & set(PER_SESSION)
    missing = [f for f in field_names if f not in PER_EVENT and f not in PER_SESSION]
    extra = sorted((set(PER_EVENT) | set(PER_SESSION)) - set(field_names))
    facts = set(SessionFacts.__dataclass_fields__)
    no_fact = sorted((set(PER_SESSION) | set(EMBEDDED)) - facts)
    if both or missing or extra or no_fact:
        raise ImportError(
            "simulator/template.py does not match schema.FIELDS: "
            + "; ".join(
                f"{what}: {', '.join(sorted(names))}"
                for what, names in (
                    ("no renderer for", missing),
                    ("rendered but not in the schema", extra),
                    ("rendered twice", both),
                    ("not a SessionFacts attribute", no_fact),
                )
                if names
            )
        )


check()

# The template: %(name)s takes a session fact (JSON-rendered), %%s stays a per-event slot.
TEMPLATE: bytes = (
    b"{" + b",".join(b'"%s":%s' % (name.encode(), PER_EVENT.get(name, b"%(" + name.encode() + b")s")) for name in FIELD_NAMES) + b"}"
)
# The schema field of each per-event slot, in template order (kernel.c's SLOT_FIELDS).
SLOT_FIELDS: tuple[str, ...] = tuple(name for name in FIELD_NAMES for _ in range(PER_EVENT.get(name, b"").count(b"%%s")))
N_SLOTS = len(SLOT_FIELDS)
_ENCODERS = tuple((name.encode(), name, enc) for name, enc in (*PER_SESSION.items(), *EMBEDDED.items()))


def session_parts(facts: SessionFacts) -> list[bytes]:
    """The session's template cut at its per-event slots: N_SLOTS + 1 static segments."""
    master = TEMPLATE % {key: enc(getattr(facts, name)) for key, name, enc in _ENCODERS}
    parts = master.split(b"%s")
    if len(parts) != N_SLOTS + 1:
        raise AssertionError(f"session template has {len(parts) - 1} slots, expected {N_SLOTS}")
    return parts
