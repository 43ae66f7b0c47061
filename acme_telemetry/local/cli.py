"""CLI: `local` (the whole pipeline on one machine) and `query` (SQL over the local lake)."""

from __future__ import annotations

import sys
from pathlib import Path

from acme_telemetry.cli_args import utc_time, whole_number
from acme_telemetry.errors import CliError
from acme_telemetry.settings import EMBEDDED

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LAKE = ROOT / ".local" / "lake"


def _bootstrap(s: str) -> str:
    from acme_telemetry.kafka import KafkaConfigError, KafkaSettings

    try:
        KafkaSettings.local(s)
    except KafkaConfigError as exc:
        raise CliError(f"--bootstrap-servers: {exc}") from None
    return s


def cmd_local(args) -> int:
    from acme_telemetry.local.runner import RunOptions, run

    if args.events is not None and args.events < 1:
        raise CliError(f"--events must be at least 1, got {args.events}")
    if args.rate is not None and args.rate <= 0:
        raise CliError(f"--rate must be > 0 events/s, got {args.rate}")
    if not 1 <= args.port <= 65535:
        raise CliError(f"--port {args.port} is not a TCP port")
    if args.window <= 0:
        raise CliError(f"--window must be > 0 seconds, got {args.window}")
    if args.buffer_interval is not None and not 0 <= args.buffer_interval <= 900:
        raise CliError(f"--buffer-interval must be 0..900 s (Firehose's range), got {args.buffer_interval}")
    if args.buffer_size_mb is not None and not 0 < args.buffer_size_mb <= 128:
        raise CliError(f"--buffer-size-mb must be in (0, 128] (Firehose's range), got {args.buffer_size_mb}")
    state = Path(args.state_dir)
    opts = RunOptions(
        events=args.events,
        rate=args.rate,
        seed=args.seed,
        start=utc_time("--start", args.start) if args.start else None,
        lake=Path(args.lake),
        state_dir=state,
        bootstrap_servers=_bootstrap(args.bootstrap_servers) if args.bootstrap_servers else None,
        port=args.port,
        kafka_port=args.kafka_port,
        window_s=args.window,
        buffer_interval_s=args.buffer_interval,
        buffer_size_mb=args.buffer_size_mb,
        no_dashboard=args.no_dashboard,
        concurrent_viewers=whole_number("--viewers", args.viewers, minimum=1) if args.viewers is not None else None,
    )
    return run(opts)


def cmd_query(args) -> int:
    from acme_telemetry.local.query import run_query, to_csv

    columns, rows = run_query(args.sql, Path(args.lake))
    sys.stdout.write(to_csv(columns, rows))
    return 0


def register(sub) -> None:
    p = sub.add_parser("local", help="run broker, producer, lake writer and dashboard on this machine")
    p.add_argument("--events", type=int, metavar="N", help="produce N events, exit 0 once all are durable in the lake")
    p.add_argument("--rate", type=float, metavar="R", help="events per second (default: as fast as possible with --events, else real time)")
    p.add_argument("--seed", type=int, default=42, help="simulator seed (default 42)")
    p.add_argument("--start", metavar="ISO8601", help="simulated time of the first event (default: the simulator's)")
    p.add_argument("--viewers", metavar="N", help="concurrent viewers to simulate (default 200)")
    p.add_argument("--lake", default=str(DEFAULT_LAKE), metavar="DIR", help="lake folder (default .local/lake)")
    p.add_argument("--state-dir", default=str(ROOT / ".local"), metavar="DIR", help="broker data and logs (default .local)")
    p.add_argument("--bootstrap-servers", metavar="HOST:PORT", help="use this Kafka instead of starting one")
    p.add_argument("--port", type=int, default=8000, help="dashboard port (default 8000, or the next free one)")
    p.add_argument("--kafka-port", type=int, default=9092, help="embedded broker port (default 9092, or the next free one)")
    p.add_argument("--window", type=float, default=float(EMBEDDED.kpi_window_s), metavar="S", help=f"KPI window in seconds (default {EMBEDDED.kpi_window_s})")
    p.add_argument("--buffer-interval", type=float, metavar="S", help="writer buffer interval (default: the CDK config's Firehose value)")
    p.add_argument("--buffer-size-mb", type=float, metavar="MB", help="writer buffer size (default: the CDK config's Firehose value)")
    p.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard server and feed")
    p.set_defaults(func=cmd_local)

    q = sub.add_parser("query", help="run SQL on acme_telemetry.streaming_events over the local lake; prints CSV")
    q.add_argument("sql", metavar="SQL")
    q.add_argument("--lake", default=str(DEFAULT_LAKE), metavar="DIR", help="lake folder (default .local/lake)")
    q.set_defaults(func=cmd_query)
