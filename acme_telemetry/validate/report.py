"""What a validation run finds: violations, each naming its rule, and the run's counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The event fields a violation line shows, to find the event again.
_SHOWN = ("event_id", "session_id", "seq", "event_type", "event_timestamp")


@dataclass
class Violation:
    """One broken rule at one place: `source:line: [rule] message | event_id=... ...`."""

    source: str
    line: int
    rule: str
    message: str
    event: dict[str, Any] | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        ev = ""
        if isinstance(self.event, dict):
            ev = " | " + " ".join(f"{k}={self.event.get(k)}" for k in _SHOWN if k in self.event)
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
