"""`local [--events N] [--rate R] [--seed S] [--viewers N] [--incident SPEC]... [--rolling S] [--lake DIR] ...`:
broker, producer, lake writer and dashboard on this machine (acme_telemetry.local.runner).
With --events N it exits 0 once all N events are in the lake and the writer has flushed.

Event time is the wall clock unless --start or --events is given (runner.RunOptions.start explains the
three ways a run chooses its events); --incident's relative at= counts from the run's start:
--start, else now."""

from __future__ import annotations

import argparse

from acme_telemetry.cli import flags
from acme_telemetry.cli.errors import CliError
from acme_telemetry.settings import EMBEDDED


def run(args: argparse.Namespace) -> int:
    from acme_telemetry.local import runner
    from acme_telemetry.simulator.incidents import IncidentError, parse_incident
    from acme_telemetry.simulator.live import wall_ms
    from acme_telemetry.times import to_ms

    origin_ms = to_ms(args.start) if args.start is not None else wall_ms()
    try:
        incidents = tuple(parse_incident(spec, origin_ms) for spec in args.incident)
    except IncidentError as exc:  # checked while parsing already; kept for a direct caller
        raise CliError(f"--incident: {exc}", exit_code=2) from None
    if args.rolling < args.window:
        raise CliError(f"--rolling must be at least --window ({args.window:g} s), got {args.rolling:g}")
    explicit = frozenset(flag for flag, dest in (("--port", "port"), ("--kafka-port", "kafka_port")) if getattr(args, dest) is not None)
    opts = runner.RunOptions(
        events=args.events,
        rate=args.rate,
        seed=args.seed,
        start=args.start,
        lake=args.lake,
        state_dir=args.state_dir,
        bootstrap_servers=args.bootstrap_servers,
        port=args.port if args.port is not None else runner.DEFAULT_PORT,
        kafka_port=args.kafka_port if args.kafka_port is not None else runner.DEFAULT_KAFKA_PORT,
        window_s=args.window,
        buffer_interval_s=args.buffer_interval,
        buffer_size_mb=args.buffer_size_mb,
        no_dashboard=args.no_dashboard,
        concurrent_viewers=args.viewers,
        incidents=incidents,
        rolling_s=args.rolling,
        client=args.client,
        explicit=explicit,
    )
    code: int = runner.run(opts)
    return code


def register(sub: flags.Subparsers) -> None:
    p = sub.add_parser("local", help="run broker, producer, lake writer and dashboard on this machine")
    flags.add_events(p, minimum=1, help="produce N events, exit 0 once all are durable in the lake")
    flags.add_number(
        p,
        "--rate",
        metavar="R",
        above=0,
        unit="events/s",
        help="events per second (default: as fast as possible with --events, else real time)",
    )
    flags.add_seed(p)
    flags.add_start(
        p,
        help="event time of the first event, UTC, for a reproducible run (default: the wall clock; a restart "
        "continues after the last event the previous run produced)",
    )
    flags.add_viewers(p, default_text="2,000, about 225 events/s; with --events N the simulator's 200, as generate")
    flags.add_incident(p)
    flags.add_number(
        p,
        "--rolling",
        metavar="S",
        default=60.0,
        above=0,
        unit="seconds",
        help="span of the page's headline tiles in seconds (default 60; at least --window)",
    )
    flags.add_lake(p)
    p.add_argument(
        "--state-dir",
        type=flags.Folder("--state-dir"),
        default=flags.DEFAULT_STATE,
        metavar="DIR",
        help="broker data and logs (default .local)",
    )
    p.add_argument(
        "--bootstrap-servers",
        type=flags.Bootstrap("--bootstrap-servers"),
        metavar="HOST:PORT",
        help="use this Kafka instead of starting one",
    )
    # No argparse default: a port the user names must be free (else an error naming it);
    # only the default moves on to the next free port, with a warning line.
    p.add_argument(
        "--port",
        type=flags.Port("--port"),
        default=None,
        metavar="PORT",
        help="dashboard port (default 8000, or the next free one; a given port that is taken is an error)",
    )
    p.add_argument(
        "--kafka-port",
        type=flags.Port("--kafka-port"),
        default=None,
        metavar="PORT",
        help="embedded broker port (default 9092, or the next free one; a given port that is taken is an error)",
    )
    p.add_argument(
        "--client",
        choices=("confluent-kafka", "kafka-python"),
        default="confluent-kafka",
        help="the local producer's Kafka client (kafka-python rehearses the producer Lambda's; default confluent-kafka)",
    )
    flags.add_number(
        p,
        "--window",
        metavar="S",
        default=float(EMBEDDED.kpi_window_s),
        above=0,
        unit="seconds",
        help=f"KPI window in seconds (default {EMBEDDED.kpi_window_s})",
    )
    flags.add_number(
        p,
        "--buffer-interval",
        metavar="S",
        minimum=0,
        maximum=900,
        unit="s",
        why="Firehose's range",
        help="writer buffer interval (default: the CDK config's Firehose value)",
    )
    flags.add_number(
        p,
        "--buffer-size-mb",
        metavar="MB",
        above=0,
        maximum=128,
        unit="MB",
        why="Firehose's range",
        help="writer buffer size (default: the CDK config's Firehose value)",
    )
    p.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard server and feed")
    p.set_defaults(func=run)
