"""`generate --events N [--seed S] [--start ISO8601]`: N simulated events as JSON Lines on
stdout, byte-identical for the same arguments."""

from __future__ import annotations

import argparse
import sys

from acme_telemetry.cli import flags
from acme_telemetry.cli.errors import CliError

# SimConfig names the setting it rejects; the user knows the flag.
_FLAG_OF_SETTING = {
    "seed": "--seed",
    "start": "--start",
    "concurrent_viewers": "--viewers",
    "heartbeat_interval_s": "--heartbeat",
}


def run(args: argparse.Namespace) -> int:
    from acme_telemetry.simulator import SimConfig, SimConfigError, iter_lines

    events: int = args.events
    viewers: int | None = args.viewers
    try:
        cfg = SimConfig(
            seed=args.seed,
            start=args.start,
            concurrent_viewers=SimConfig.concurrent_viewers if viewers is None else viewers,
            heartbeat_interval_s=args.heartbeat,
        )
    except SimConfigError as exc:
        message = str(exc)
        flag = next((f for s, f in _FLAG_OF_SETTING.items() if message.startswith(s + " ")), None)
        raise CliError(f"{flag}: {message}" if flag else message) from None
    out = sys.stdout.buffer
    for block in iter_lines(events, cfg):
        out.write(block)
    out.flush()
    return 0


def register(sub: flags.Subparsers) -> None:
    p = sub.add_parser("generate", help="print N simulated events as JSON Lines (byte-identical for the same arguments)")
    flags.add_events(p, minimum=0, required=True, help="how many events")
    flags.add_seed(p)
    flags.add_start(p, help="simulated start time, UTC (default 2026-11-26T15:00:00Z)")
    flags.add_viewers(p)
    flags.add_number(p, "--heartbeat", metavar="S", default=10.0, help="heartbeat interval in seconds, 0.5..3600 (default 10)")
    p.set_defaults(func=run)
