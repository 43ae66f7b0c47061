"""`python -m acme_telemetry bench`: run every benchmark and print one table.

Each bench module defines run(quick: bool = False) -> list[dict] with the keys
benchmark, metric, value, unit, note. Targets are ratios measured in the same run,
never timed unit tests.
"""

from __future__ import annotations

import importlib
import sys

from acme_telemetry.errors import CliError

BENCHMARKS = {
    "generator": "bench.generator",  # simulator vs the plan's generator (issue: telemetry core)
    "fanout": "bench.fanout",  # local WebSocket fan-out to 200 clients (issue: dashboard)
}


def _format(rows: list[dict]) -> str:
    cols = ("benchmark", "metric", "value", "unit", "note")
    cells = [[str(r.get(c, "")) if not isinstance(r.get(c), float) else f"{r[c]:,.2f}" for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def main(args) -> int:
    names = args.only or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise CliError(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    rows: list[dict] = []
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        rows.extend(module.run(quick=args.quick))
        print(f"[bench] {name} done", file=sys.stderr, flush=True)
    print(_format(rows))
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="run the benchmarks and print the table")
    p.add_argument("--only", action="append", metavar="NAME", help=f"run only this benchmark ({', '.join(BENCHMARKS)})")
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    p.set_defaults(func=main)
