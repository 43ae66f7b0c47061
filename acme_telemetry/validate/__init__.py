"""Validate telemetry: the schema and the session invariants, over JSON Lines files or a lake folder.

Inputs (sources.py): plain JSON Lines files, gzip'd ones (`.gz`), `-` for standard input
(plain JSON Lines, e.g. piped from `generate`; a file named "-" is `./-`), or folders (read
recursively, files in path order; a lake root is read under `telemetry/` only: `errors/`
holds records the writer already rejected, and they are counted, not checked). Blank
lines are skipped.

Rules (rules.py): every violation names one rule of the table `rules.RULES`, each rule a
documented check: per line (`json`, `not-object`), per event (the schema's fields, types
and enums, the timestamp and ids, device/OS, ABR rung, geography, ISP, ranges,
completion, the per-type fields, the player state, seq 0, video start, the first
event's interval), between two consecutive events of a session (after-end,
session-fixed, timestamp-order, position, counter, transition, video-started, interval),
per session (`seq`, `duplicate`) and across sessions (customer-home, customer-devices,
device-fixed). `rules.describe()` prints the table.

Order and duplicates (reorder.py). A session's events must come in order (Kafka keeps one
session on one partition). In a plain file they are checked in file order. In a folder (a
lake) objects are read in path order and an event that arrives ahead of a missing one
waits for it; what never arrives is a `seq` gap. The lake is at-least-once, so in a
folder an exact duplicate (the same event_id with byte-identical JSON) is counted and
tolerated; a duplicate that differs is a `duplicate` violation. In a plain file (for
example `generate` output) any repeated event_id is a `duplicate` violation. Memory: per
session a small state plus 8 bytes per event (the line hashes that make duplicate checks
exact), per customer its home and devices.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from acme_telemetry.validate.report import Report, Violation
from acme_telemetry.validate.rules import COUNTERS, RESULT_STATES, RULES, SESSION_FIXED, TRANSITIONS, Rule
from acme_telemetry.validate.sources import expand, open_sources
from acme_telemetry.validate.validator import Validator

__all__ = [
    "COUNTERS",
    "RESULT_STATES",
    "RULES",
    "SESSION_FIXED",
    "TRANSITIONS",
    "Report",
    "Rule",
    "Validator",
    "Violation",
    "expand",
    "validate_events",
    "validate_lines",
    "validate_paths",
]


def validate_paths(paths: Iterable[str | Path], max_violations: int | None = None) -> Report:
    """Validate files and folders; raises OSError (or gzip's BadGzipFile) when one cannot be read."""
    files, error_objects = expand(paths)
    v = Validator(max_violations)
    v.report.error_objects = error_objects
    for source, lines, lake in open_sources(files):
        v.feed(source, lines, lake)
    return v.finish()


def validate_lines(lines: Iterable[bytes], source: str = "<lines>", lake: bool = False) -> Report:
    """Validate in-memory JSON lines (for tests and the pipeline)."""
    v = Validator()
    v.feed(source, lines, lake)
    return v.finish()


def validate_events(events: Iterable[dict[str, Any]], source: str = "<events>", lake: bool = False) -> Report:
    """Validate decoded events (each is encoded as one JSON line first)."""
    return validate_lines((orjson.dumps(e) for e in events), source, lake)
