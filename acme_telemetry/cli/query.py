"""`query "SQL" [--lake DIR]`: SQL on acme_telemetry.streaming_events over the local lake,
the rows as CSV with a header."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from acme_telemetry.cli import flags


def run(args: argparse.Namespace) -> int:
    from acme_telemetry.local.query import run_query, to_csv

    sql: str = args.sql
    lake: Path = args.lake
    columns, rows = run_query(sql, lake)
    sys.stdout.write(to_csv(columns, rows))
    return 0


def register(sub: flags.Subparsers) -> None:
    p = sub.add_parser("query", help="run SQL on acme_telemetry.streaming_events over the local lake; prints CSV")
    p.add_argument("sql", metavar="SQL", help="one SQL statement")
    flags.add_lake(p)
    p.set_defaults(func=run)
