"""Read a local lake back for assertions (plain gzip + orjson, independent of DuckDB)."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson


def lake_events(lake: Path) -> list[dict]:
    out = []
    for f in sorted((lake / "telemetry").glob("*/*/*/*/*.gz")):
        with gzip.open(f) as fh:
            out += [orjson.loads(line) for line in fh if line.strip()]
    return out


def error_records(lake: Path) -> list[dict]:
    out = []
    for f in sorted((lake / "errors").glob("*/*/*/*/*/*.gz")):
        with gzip.open(f) as fh:
            out += [{**orjson.loads(line), "_path": str(f.relative_to(lake))} for line in fh if line.strip()]
    return out
