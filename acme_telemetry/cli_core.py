"""`generate` and `validate`: the telemetry core's subcommands (registered by __main__)."""

from __future__ import annotations

import gzip
import sys
import zlib

from acme_telemetry.cli_args import utc_time, whole_number
from acme_telemetry.errors import CliError


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CliError(f"--seed must be an integer, got {text!r}") from None


def generate(args) -> int:
    from acme_telemetry.simulator import SimConfig, SimConfigError, iter_lines

    n = whole_number("--events", args.events, minimum=0)
    try:
        cfg = SimConfig(
            seed=_seed(args.seed),
            start=utc_time("--start", args.start) if args.start else None,
            concurrent_viewers=args.viewers,
            heartbeat_interval_s=args.heartbeat,
        )
    except SimConfigError as exc:
        raise CliError(str(exc)) from None
    out = sys.stdout.buffer
    for block in iter_lines(n, cfg):
        out.write(block)
    out.flush()
    return 0


def validate(args) -> int:
    from acme_telemetry.validate import validate_paths

    try:
        report = validate_paths(args.files)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise CliError(f"cannot read input: {exc}") from None
    out = sys.stdout
    for v in report.violations:
        print(v, file=out)
    summary = (
        f"{report.events} events, {report.sessions} sessions in {report.files} files: "
        f"{len(report.violations)} violations, {report.duplicates} exact duplicates tolerated"
    )
    if report.error_objects:
        summary += f", {report.error_objects} objects under errors/ not checked"
    print(summary, file=sys.stderr)
    return 0 if report.ok else 1


def register(sub) -> None:
    p = sub.add_parser("generate", help="print N simulated events as JSON Lines (byte-identical for the same arguments)")
    # parsed in the handler so a bad value is a CliError, one line, not an argparse usage dump
    p.add_argument("--events", required=True, metavar="N", help="how many events")
    p.add_argument("--seed", default="42", metavar="S", help="random seed (default 42)")
    p.add_argument("--start", metavar="ISO8601", help="simulated start time, UTC (default 2026-11-26T15:00:00Z)")
    p.add_argument("--viewers", type=int, default=200, help="mean concurrent viewers (default 200)")
    p.add_argument("--heartbeat", type=float, default=10.0, help="heartbeat interval in seconds (default 10)")
    p.set_defaults(func=generate)
    v = sub.add_parser("validate", help="check JSON Lines files (.gz too) or a lake folder; exit 1 on any violation")
    v.add_argument("files", nargs="+", metavar="FILE", help="JSON Lines file, .gz file, folder, or - for standard input")
    v.set_defaults(func=validate)
