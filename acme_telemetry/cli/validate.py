"""`validate FILE...`: the schema and the session invariants of JSON Lines files (.gz too),
lake folders, or standard input (-). Exit 0 when all hold, else each violation and exit 1."""

from __future__ import annotations

import argparse
import gzip
import sys
import zlib

from acme_telemetry.cli import flags
from acme_telemetry.cli.errors import CliError


def run(args: argparse.Namespace) -> int:
    from acme_telemetry.validate import validate_paths

    files: list[str] = args.files
    try:
        report = validate_paths(files)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise CliError(f"cannot read input: {exc}") from None
    for v in report.violations:
        print(v)
    summary = (
        f"{report.events} events, {report.sessions} sessions in {report.files} files: "
        f"{len(report.violations)} violations, {report.duplicates} exact duplicates tolerated"
    )
    if report.error_objects:
        summary += f", {report.error_objects} objects under errors/ not checked"
    print(summary, file=sys.stderr)
    return 0 if report.ok else 1


def register(sub: flags.Subparsers) -> None:
    p = sub.add_parser("validate", help="check JSON Lines files (.gz too) or a lake folder; exit 1 on any violation")
    p.add_argument("files", nargs="+", metavar="FILE", help="JSON Lines file, .gz file, folder, or - for standard input")
    p.set_defaults(func=run)
