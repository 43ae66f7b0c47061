"""The benchmark table: run the benchmarks, format their rows as one table.

`python -m acme_telemetry bench` (acme_telemetry/cli/bench.py) parses the flags and calls
run_benchmarks; this module knows the benchmarks. Each bench module defines
run(quick: bool = False) -> list[dict] with the keys benchmark, metric, value, unit, note.
Targets are ratios measured in the same run, never timed unit tests.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from typing import Any

Row = dict[str, Any]

# name -> module, imported only when that benchmark runs (each pulls in what it measures)
BENCHMARKS = {
    "generator": "bench.generator",  # simulator vs the plan's generator (issue: telemetry core)
    "fanout": "bench.fanout",  # local WebSocket fan-out to 200 clients (issue: dashboard)
    "pipeline": "bench.pipeline",  # broker -> lake end to end vs Kafka's own tools (issue 13)
    "consumer_fanout": "bench.consumer_fanout",  # the consumer Lambda's broadcast to 1,000 connections (issue 12)
}


def format_table(rows: list[Row]) -> str:
    cols = ("benchmark", "metric", "value", "unit", "note")
    cells = [[str(r.get(c, "")) if not isinstance(r.get(c), float) else f"{r[c]:,.2f}" for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


_format = format_table  # the name bench/generator.py and bench/fanout.py import


def unknown(names: Iterable[str]) -> list[str]:
    """The names that are not benchmarks."""
    return [n for n in names if n not in BENCHMARKS]


def run_benchmarks(names: list[str], quick: bool = False) -> list[Row]:
    """The rows of the named benchmarks, in order; a progress line per benchmark on stderr."""
    rows: list[Row] = []
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        rows.extend(module.run(quick=quick))
        print(f"[bench] {name} done", file=sys.stderr, flush=True)
    return rows
