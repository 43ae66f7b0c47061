"""The dashboard's WebSocket protocol, shared by the local server and the consumer Lambda.

Every message is a JSON object with `type` and `v` (the protocol version), at most
MAX_MESSAGE_BYTES (API Gateway's 32 KB frame limit), and never carries a PII field
(schema.PII_FIELDS). Clients ignore unknown types and fields.

Types (v2; docs/protocol.md):
- `kpi`:   the mergeable KPI state of one window, or of one part of it
           (acme_telemetry.kpis.WindowState.wire(), plus an optional `part` id). A reader
           merges the parts of a window key; a repeated part id replaces the earlier one.
- `feed`:  recent notable events (errors, long rebuffers), PII-free.
- `hello`: sent once on connect: server name, window length, heartbeat, rolling span.

v1 (before the mergeable state) sent derived figures per window only; the page still
reads v1 messages during a rolling deploy (docs/protocol.md, "Versions").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from acme_telemetry.schema import PII_FIELDS

PROTOCOL_VERSION = 2
MAX_MESSAGE_BYTES = 32 * 1024

# Event fields a feed item may carry: what an operator needs, nothing that identifies a viewer.
FEED_FIELDS = (
    "event_type",
    "event_timestamp",
    "device_type",
    "connection_type",
    "state",
    "quality",
    "bitrate_kbps",
    "error_code",
    "fatal",
    "rebuffer_duration_ms",
    "title_type",
    "cdn",
    "isp",
)


_PII_MARKERS = tuple(b'"' + name.encode() + b'":' for name in sorted(PII_FIELDS))


class ProtocolError(ValueError):
    """A message that must not be sent: PII, no type, or over the frame limit."""


def _find_pii(value: Any, path: str = "") -> str | None:
    if isinstance(value, dict):
        for k, v in value.items():
            if k in PII_FIELDS:
                return f"{path}.{k}" if path else k
            hit = _find_pii(v, f"{path}.{k}" if path else str(k))
            if hit:
                return hit
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            hit = _find_pii(v, f"{path}[{i}]")
            if hit:
                return hit
    return None


def encode(message: dict[str, Any]) -> bytes:
    """Serialise one message, refusing PII and frames over the limit."""
    if not isinstance(message.get("type"), str) or message.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"a message needs a string 'type' and v={PROTOCOL_VERSION}")
    data = orjson.dumps(message)
    # A PII field can only be a key, and orjson writes a key as "name": with nothing between,
    # so one byte search per field over the encoded message finds any (a windowed state is
    # thousands of nested keys: walking them cost more than encoding them). The walk runs
    # only to name the path of a hit.
    if any(marker in data for marker in _PII_MARKERS):
        pii = _find_pii(message) or "(a key named like a PII field)"
        raise ProtocolError(f"message {message['type']!r} carries PII field {pii}")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message {message['type']!r} is {len(data)} bytes, over {MAX_MESSAGE_BYTES}")
    return data


def kpi_message(snapshot: dict[str, Any], part: str | None = None) -> dict[str, Any]:
    """Wrap a KPI state (acme_telemetry.kpis.WindowState.wire()) as a `kpi` message; `part`
    names a partial state (e.g. one Lambda batch), absent for a whole window."""
    msg = {"type": "kpi", "v": PROTOCOL_VERSION, **snapshot}
    if part is not None:
        msg["part"] = part
    return msg


def kpi_frames(state: Any, part: str | None = None) -> list[bytes]:
    """Encoded `kpi` messages for a kpis.WindowState: one, or, if that is over the frame
    limit, the state cut into slice-disjoint parts ("<part>/1of3", ...) that merge back to it."""
    try:
        return [encode(kpi_message(state.wire(), part))]
    except ProtocolError as exc:
        if "bytes, over" not in str(exc):
            raise
    for n in range(2, 17):
        pieces = state.split_slices(n)
        try:
            return [encode(kpi_message(p.wire(), f"{part or 'w'}/{i + 1}of{n}")) for i, p in enumerate(pieces)]
        except ProtocolError as exc:
            if "bytes, over" not in str(exc):
                raise
    raise ProtocolError("a KPI state does not fit in 16 frames")


def feed_item(event: dict[str, Any]) -> dict[str, Any]:
    """The PII-free view of one notable event."""
    return {k: event[k] for k in FEED_FIELDS if event.get(k) is not None}


def feed_message(events: Iterable[dict[str, Any]], limit: int = 50) -> dict[str, Any]:
    """A `feed` message of up to `limit` notable events, newest last."""
    items = [feed_item(e) for e in events]
    return {"type": "feed", "v": PROTOCOL_VERSION, "items": items[-limit:]}


def hello_message(
    server: str,
    window_seconds: float,
    *,
    heartbeat_ms: int = 10_000,
    rolling_seconds: float = 60.0,
    min_samples: int = 20,
    min_audience: int = 20,
) -> dict[str, Any]:
    return {
        "type": "hello",
        "v": PROTOCOL_VERSION,
        "server": server,
        "window_seconds": window_seconds,
        "heartbeat_ms": heartbeat_ms,
        "rolling_seconds": rolling_seconds,
        "min_samples": min_samples,
        "min_audience": min_audience,
    }
