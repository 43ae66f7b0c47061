"""Parsing of CLI values shared by the subcommands: each failure is a one-line CliError
that names the flag, never an argparse usage dump or a traceback."""

from __future__ import annotations

from datetime import datetime, timezone

from acme_telemetry.errors import CliError


def whole_number(flag: str, text: str | int, minimum: int | None = None) -> int:
    """`text` as an int, at least `minimum` when given."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise CliError(f"{flag} must be a whole number, got {text!r}") from None
    if minimum is not None and value < minimum:
        floor = "zero or more" if minimum == 0 else f"at least {minimum}"
        raise CliError(f"{flag} must be {floor}, got {value}")
    return value


def utc_time(flag: str, text: str) -> datetime:
    """An ISO-8601 time as an aware UTC datetime; a time without an offset is taken as UTC."""
    try:
        t = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise CliError(f"{flag} must be an ISO-8601 time such as 2026-11-26T15:00:00Z, got {text!r}") from None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
