"""Time in the telemetry core: UTC epoch milliseconds and ISO-8601 text with a `Z`.

One module for what six helpers did before (kpis.parse_ts_ms and kpis._ms, the
simulator's to_ms, the feed's and the hub's ISO parsers, and the CLI's --start parser).

- Epoch milliseconds (int) are the core's clock: events, windows and the simulator count in them.
- `event_timestamp` is 'YYYY-MM-DDTHH:MM:SS.mmmZ' (DESIGN.md "Event"); `iso_ms` writes it
  and `ms_of_iso` / `parse_iso_ms` read it back (fast: the hot path of the validator and the
  KPI consumer).
- A naive datetime means UTC everywhere.

    >>> iso_ms(to_ms(datetime(2026, 11, 26, 15, 0, 0, 123000, tzinfo=UTC)))
    '2026-11-26T15:00:00.123Z'
    >>> parse_iso_ms("2026-11-26T15:00:00.123Z") == 1795705200123
    True
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = [
    "EPOCH",
    "from_ms",
    "iso_ms",
    "iso_z",
    "ms_of_iso",
    "parse_datetime",
    "parse_iso_ms",
    "parse_utc",
    "to_ms",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_EXAMPLE = "2026-11-26T15:00:00Z"
_SECOND_CACHE: dict[str, int] = {}  # 'YYYY-MM-DDTHH:MM:SS' -> epoch seconds, each parsed once
_MILLIS: dict[str, int] = {f".{i:03d}Z": i for i in range(1000)}  # the common ending, '.mmmZ'
_PREFIX_CACHE: dict[int, str] = {}


def to_ms(t: datetime) -> int:
    """UTC epoch milliseconds of a datetime (naive means UTC), sub-millisecond part dropped."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    d = t - EPOCH
    return (d.days * 86_400 + d.seconds) * 1000 + d.microseconds // 1000


def from_ms(ms: int) -> datetime:
    """The aware UTC datetime of epoch milliseconds (the inverse of to_ms)."""
    return EPOCH + timedelta(milliseconds=ms)


def iso_ms(ms: int) -> str:
    """'YYYY-MM-DDTHH:MM:SS.mmmZ' for epoch milliseconds (the event_timestamp format)."""
    sec = ms // 1000
    prefix = _PREFIX_CACHE.get(sec)
    if prefix is None:
        if len(_PREFIX_CACHE) > 100_000:
            _PREFIX_CACHE.clear()
        prefix = _PREFIX_CACHE[sec] = (_NAIVE_EPOCH + timedelta(seconds=sec)).isoformat()  # zero-pads the year, unlike %Y
    return f"{prefix}.{ms % 1000:03d}Z"


def iso_z(t: datetime) -> str:
    """A datetime as UTC ISO-8601 with `Z`: milliseconds only when it has a sub-second part
    ('2026-11-26T15:00:00Z', '2026-11-26T15:00:00.250Z'); naive means UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    t = t.astimezone(UTC)
    return t.replace(tzinfo=None, microsecond=0).isoformat() + (f".{t.microsecond // 1000:03d}Z" if t.microsecond else "Z")


def ms_of_iso(value: object) -> int | None:
    """Epoch ms of 'YYYY-MM-DDTHH:MM:SS[.f...]Z' (up to 9 fraction digits, truncated to ms),
    or None if `value` is not such a string. Never raises: for untrusted input on hot paths."""
    try:  # the common form, ...SS.mmmZ of a second met before: two lookups (a cached head passed the checks below)
        return _SECOND_CACHE[value[:19]] * 1000 + _MILLIS[value[19:]]  # type: ignore[index]
    except (KeyError, TypeError):
        pass
    if not isinstance(value, str) or len(value) < 20 or value[-1] != "Z" or value[10] != "T":
        return None
    head = value[:19]
    sec = _SECOND_CACHE.get(head)
    if sec is None:
        try:
            dt = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            return None
        if len(_SECOND_CACHE) > 100_000:
            _SECOND_CACHE.clear()
        d = dt - EPOCH
        sec = _SECOND_CACHE[head] = d.days * 86_400 + d.seconds
    frac = value[19:-1]
    if not frac:
        return sec * 1000
    if frac[0] != "." or not frac[1:].isascii() or not frac[1:].isdigit() or len(frac) > 10:
        return None
    return sec * 1000 + int((frac[1:] + "00")[:3])


def parse_iso_ms(text: str) -> int:
    """Epoch ms of 'YYYY-MM-DDTHH:MM:SS[.f...]Z'; ValueError naming the text otherwise."""
    ms = ms_of_iso(text)
    if ms is None:
        raise ValueError(f"not a UTC ISO-8601 time with Z such as {_EXAMPLE}: {text!r}")
    return ms


def parse_datetime(value: object) -> datetime | None:
    """An aware datetime from any ISO-8601 text (`Z` or an offset; naive means UTC), or None
    if `value` is not one. Never raises: for message fields read off the wire."""
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def parse_utc(text: str, what: str = "the time") -> datetime:
    """A user-given ISO-8601 time (e.g. --start) as an aware UTC datetime; a time without an
    offset is taken as UTC, one with an offset is converted.

    Raises ValueError with a one-line message that starts with `what`, e.g.
    "--start must be an ISO-8601 time such as 2026-11-26T15:00:00Z, got 'yesterday'".
    """
    try:
        t = datetime.fromisoformat(text)
    except (ValueError, TypeError):
        raise ValueError(f"{what} must be an ISO-8601 time such as {_EXAMPLE}, got {text!r}") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
