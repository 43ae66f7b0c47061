"""`bench [--only NAME] [--quick]`: run the benchmarks and print the table.

The benchmarks live in the repository's bench/ folder, not in the installed package, so
they are imported only when this command runs; outside a checkout it is a one-line error.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from acme_telemetry.cli import flags
from acme_telemetry.cli.errors import CliError


def _bench_module() -> ModuleType:
    """bench.run, from sys.path or else from the checkout this package sits in."""
    try:
        import bench.run
    except ModuleNotFoundError as exc:
        if exc.name not in ("bench", "bench.run"):
            raise
        if not (flags.ROOT / "bench" / "run.py").is_file():
            raise CliError("bench needs the repository checkout (its bench/ folder); run it from a clone of the repo") from None
        sys.path.insert(0, str(flags.ROOT))
        import bench.run
    return bench.run


def run(args: argparse.Namespace) -> int:
    runner = _bench_module()
    names: list[str] = args.only or list(runner.BENCHMARKS)
    bad: list[str] = runner.unknown(names)
    if bad:
        raise CliError(f"--only: unknown benchmark {', '.join(bad)}; choose from {', '.join(runner.BENCHMARKS)}")
    table: str = runner.format_table(runner.run_benchmarks(names, quick=args.quick))
    print(table)
    return 0


def register(sub: flags.Subparsers) -> None:
    p = sub.add_parser("bench", help="run the benchmarks (the repository's bench/ folder) and print the table")
    p.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark (repeatable): generator, fanout")
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    p.set_defaults(func=run)
