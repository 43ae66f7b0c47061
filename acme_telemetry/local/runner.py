"""`python -m acme_telemetry local`: broker, producer, lake writer and dashboard on one machine.

`run(opts)` enters the services, in this order, into one Supervisor (local.supervisor):

    Kafka broker      local.broker.LocalBroker   (none with --bootstrap-servers)
    dashboard server  services.ServerService     (the page and the WebSocket)
    dashboard feed    services.FeedService       (positioned before anything is produced)
    lake writer       services.WriterService
    producer          services.ProducerService

then runs one supervision loop: the status line, each service's health, and the end,
which is the first of:
- `--events N`: all N events are durable in the lake (exit 0);
- a signal (SIGINT, SIGTERM, SIGHUP) or a closed stdout/stderr: one stop flag;
- a failed service: the run fails with that service's error, one line (exit 1).

Leaving the supervisor is the one stop path, in reverse order: the producer flushes and
closes, the writer writes and commits what it holds, the feed closes its windows, the
server lets the last frames out and closes, and the broker gets SIGTERM. Broker data stays
in <state_dir>/kafka, so the next run resumes from the writer's committed offsets.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from acme_telemetry.errors import CliError
from acme_telemetry.kafka import KafkaConfigError, KafkaSettings, ensure_topic
from acme_telemetry.local.supervisor import OUTPUT_CLOSED, Console, Outcome, ServiceFailed, Supervisor
from acme_telemetry.schema import TOPIC
from acme_telemetry.settings import EMBEDDED

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
EXIT_INTERRUPTED = 130  # --events N stopped before all N were in the lake (as Ctrl-C)


@dataclass
class RunOptions:
    events: int | None = None
    rate: float | None = None
    seed: int = 42
    start: datetime | None = None
    lake: Path = ROOT / ".local" / "lake"
    state_dir: Path = ROOT / ".local"
    bootstrap_servers: str | None = None
    port: int = 8000
    kafka_port: int = 9092
    host: str = "127.0.0.1"
    window_s: float = 5.0
    buffer_interval_s: float | None = None
    buffer_size_mb: float | None = None
    no_dashboard: bool = False
    static_dir: Path = ROOT / "dashboard" / "dist"
    concurrent_viewers: int | None = None
    status_every_s: float = 1.0


def _setup_logging(log_dir: Path) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "local.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)  # "slow task" chatter on 2 cores
    logging.getLogger("websockets").setLevel(logging.WARNING)
    return path


def run(opts: RunOptions) -> int:
    """Run the pipeline until --events N are durable, a stop request, or a failure."""
    log_path = _setup_logging(opts.state_dir / "logs")
    console = Console()
    console.say(f"logs: {log_path}")
    pipeline = LocalPipeline(opts, console)
    try:
        with Supervisor(console=console) as sup:
            pipeline.start(sup)
            outcome = sup.watch(
                done=pipeline.all_durable, tick=pipeline.tick, status=pipeline.status, status_every_s=opts.status_every_s
            )
            if outcome.kind == "done" and pipeline.feed is not None:
                pipeline.feed.catch_up_to(pipeline.produced_offsets())
    except ServiceFailed as exc:  # a service could not start
        raise CliError(f"{exc} (see {log_path})", exit_code=exc.exit_code) from None
    if pipeline.producer is not None:
        console.final(pipeline.status())
    assert sup.outcome is not None
    return pipeline.exit_code(sup.outcome, log_path)


class LocalPipeline:
    """The services of one `local` run, and what the supervision loop asks of them."""

    def __init__(self, opts: RunOptions, console: Console) -> None:
        from acme_telemetry.local.services import FeedService, ProducerService, ServerService, WriterService

        self.opts = opts
        self.cfg = EMBEDDED
        self.console = console
        self.server: ServerService | None = None
        self.feed: FeedService | None = None
        self.writer: WriterService | None = None
        self.producer: ProducerService | None = None
        self.cold_start_at = time.monotonic()
        self._first_object_reported = False
        self._last_status: tuple[float, int] | None = None

    # --- start-up, in order --------------------------------------------------------------

    def start(self, sup: Supervisor) -> None:
        from acme_telemetry.local.feed import DashboardFeed
        from acme_telemetry.local.hub import Hub
        from acme_telemetry.local.producer import LocalProducer
        from acme_telemetry.local.services import FeedService, ProducerService, ServerService, WriterService
        from acme_telemetry.local.writer import LakeWriter

        o, cfg = self.opts, self.cfg
        settings = self._kafka(sup)
        if not o.no_dashboard:
            from acme_telemetry.local.broker import pick_port

            hub = Hub(window_seconds=o.window_s)
            self.server = sup.start(ServerService(
                hub, host=o.host, port=pick_port(o.port), static_dir=o.static_dir,
                page_config={"windowSeconds": o.window_s, "environment": "local"},
            ))
            self.console.say(f"dashboard: {self.server.url}", stdout=True)
            self.feed = sup.start(FeedService(DashboardFeed(settings, hub, window_s=o.window_s)))
        self.writer = sup.start(WriterService(LakeWriter(
            settings, o.lake,
            buffer_interval_s=o.buffer_interval_s if o.buffer_interval_s is not None else cfg.firehose.buffer_interval_s,
            buffer_size_mb=o.buffer_size_mb if o.buffer_size_mb is not None else cfg.firehose.buffer_size_mb,
        )))
        self.producer = sup.start(ProducerService(LocalProducer(
            settings, events=o.events, rate=o.rate, seed=o.seed, start=o.start, concurrent_viewers=o.concurrent_viewers,
        )))

    def _kafka(self, sup: Supervisor) -> KafkaSettings:
        """The embedded broker (a service) or the given one; the topic exists afterwards."""
        o, cfg = self.opts, self.cfg
        if o.bootstrap_servers:
            settings = KafkaSettings.local(o.bootstrap_servers)
        else:
            from acme_telemetry.local.broker import LocalBroker

            self.console.say(f"starting Kafka {cfg.local_kafka_release} (KRaft) ...")
            broker = sup.start(LocalBroker(
                o.state_dir, port=o.kafka_port, release=cfg.local_kafka_release, num_partitions=cfg.topic.partitions,
            ))
            settings = KafkaSettings.local(broker.bootstrap)
        try:
            created = ensure_topic(settings, TOPIC, partitions=cfg.topic.partitions, retention_hours=cfg.topic.retention_hours)
        except KafkaConfigError as exc:
            raise CliError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - any client error here means Kafka is not usable
            raise CliError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc!r}") from None
        log.info("topic %s %s", TOPIC, "created" if created else "exists")
        self.console.say(f"Kafka at {settings.bootstrap_servers}, topic {TOPIC} ({cfg.topic.partitions} partitions, "
                         f"{cfg.topic.retention_hours} h retention)")
        return settings

    # --- what the loop asks --------------------------------------------------------------

    def produced_offsets(self) -> dict[int, int]:
        return dict(self.producer.stats.end_offsets) if self.producer is not None else {}

    def all_produced(self) -> bool:
        ps = self.producer.stats if self.producer is not None else None
        return self.opts.events is not None and ps is not None and ps.done and ps.produced >= self.opts.events

    def all_durable(self) -> bool:
        """True once --events N were produced and the writer committed past all of them."""
        if not self.all_produced() or self.writer is None:
            return False
        committed = self.writer.writer.durable_offsets
        return all(committed.get((TOPIC, p), 0) >= end for p, end in self.produced_offsets().items())

    def tick(self) -> None:
        ws = self.writer.writer.stats if self.writer is not None else None
        if ws is not None and not self._first_object_reported and ws.first_object_at is not None:
            self._first_object_reported = True
            log.info("cold start to first lake object: %.1f s", ws.first_object_at - self.cold_start_at)
        if self.writer is not None and self.all_produced():
            # All N are in Kafka: flush once they are read, as a shutdown would.
            self.writer.writer.drain({(TOPIC, p): end for p, end in self.produced_offsets().items()})

    def status(self) -> str:
        if self.producer is None:
            return "starting"
        ps = self.producer.stats
        now = time.monotonic()
        last_t, last_n = self._last_status or (ps.started_at, 0)
        rate = (ps.produced - last_n) / max(1e-6, now - last_t)
        self._last_status = (now, ps.produced)
        parts = [f"produced {ps.produced:,} ({rate:,.0f}/s)"]
        if self.writer is not None:
            ws = self.writer.writer.stats
            parts += [
                f"lag {ws.lag if ws.lag is not None else '?'}",
                f"lake {ws.events_written:,} events in {ws.objects_written} objects",
                f"errors {ws.errors_written}",
            ]
        if self.server is not None and self.server.url:
            parts.append(self.server.url)
        return " | ".join(parts)

    # --- the end -------------------------------------------------------------------------

    def exit_code(self, outcome: Outcome, log_path: Path) -> int:
        """0 when the run did what was asked; CliError for a failure; else why it stopped."""
        if outcome.kind == "failed":
            raise CliError(f"the pipeline stopped: the {outcome.service} failed: {outcome.reason} (see {log_path})", exit_code=1)
        if outcome.kind == "done":
            return 0
        interrupted = self.opts.events is not None and not self.all_durable()
        if interrupted:
            written = self.writer.writer.stats.events_written if self.writer is not None else 0
            self.console.say(f"interrupted: {written:,} of {self.opts.events:,} events are in the lake "
                             "(the rest stay in Kafka; the next run writes them)")
        if outcome.reason == OUTPUT_CLOSED:
            return 128 + signal.SIGPIPE  # as a shell reports a writer whose pipe closed
        if outcome.signum == signal.SIGHUP:
            return 128 + signal.SIGHUP  # the terminal went away: not the way a run is meant to end
        # Ctrl-C or SIGTERM: the way an endless run ends; with --events N, before all N are in
        return EXIT_INTERRUPTED if interrupted else 0
