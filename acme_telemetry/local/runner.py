"""`python -m acme_telemetry local`: broker, producer, lake writer and dashboard on one machine.

`run(opts)` enters these services, in this order, into one Supervisor (local.supervisor):

    state folder      local.statedir.StateLock    (one run per --state-dir: pid and start time)
    Kafka broker      local.broker.LocalBroker    (a JVM; none with --bootstrap-servers)
    dashboard         child process "dashboard"   (the page, the WebSocket and the KPI feed)
    lake writer       child process "writer"      (the Firehose stand-in)
    producer          child process "producer"    (the generator and producer Lambdas' stand-in)

Each part after the broker is its own process (local.proc.ChildService running
local.child), so the producer, the writer and the feed do not share one GIL. Children and the
broker get the parent-death signal (Linux) and a watchdog pipe, so they never outlive the
supervisor, even after `kill -9` of it (local.proc explains both and what macOS does).

One supervision loop shows one status line and watches every service. It ends on the first of:
- `--events N`: all N events are durable in the lake (exit 0);
- a signal (SIGINT, SIGTERM, SIGHUP) or a closed stdout/stderr: one stop flag;
- a failed service: the run fails with that service's error, one line (exit 1);
- `--events N` past its deadline (DEADLINE_BASE_S + N / DEADLINE_MIN_RATE seconds, or
  twice N / --rate): the run fails naming what stalled.

Leaving the supervisor is the one stop path, in reverse order: the producer flushes and
closes, the writer writes and commits what it holds, the feed closes its windows, the
server lets the last frames out and closes, and the broker gets SIGTERM.

Isolation. `--events N` writes exactly this run's N events into the lake it is given,
whatever earlier runs left in the topic: its writer reads under a consumer group of its own
(acme-lake-writer-run-<time>-<pid>) from the topic's end offsets at the start of the run,
taken before the producer starts. An endless run (no --events) is the Firehose stand-in:
group acme-lake-writer resumes from its committed offsets, so what an endless run read but
had not yet made durable reaches the lake on the next endless run; a partition the group has
never committed starts at the run's start (as a new Firehose stream reads from the time it
became active), never at the topic's beginning.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acme_telemetry.errors import CliError
from acme_telemetry.kafka import KafkaConfigError, KafkaSettings, ensure_topic
from acme_telemetry.local.supervisor import OUTPUT_CLOSED, Console, Outcome, ServiceFailed, Supervisor
from acme_telemetry.schema import TOPIC
from acme_telemetry.settings import EMBEDDED

if TYPE_CHECKING:
    from acme_telemetry.simulator.incidents import Incident

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
EXIT_INTERRUPTED = 130  # --events N stopped before all N were in the lake (as Ctrl-C)
DEFAULT_PORT = 8000
DEFAULT_KAFKA_PORT = 9092
WRITER_GROUP = "acme-lake-writer"
# --events N must finish within DEADLINE_BASE_S + N / DEADLINE_MIN_RATE seconds (at --rate R:
# DEADLINE_BASE_S + 2 N / R): far beyond a healthy run, well short of "hung for 11 minutes".
DEADLINE_BASE_S = 60.0
DEADLINE_MIN_RATE = 1000.0
# CPU priority of the children when the machine is short of cores: the two consumers (the
# writer, the Firehose stand-in, and the dashboard feed) first, then the producer, a load
# generator: slower only means a smaller rate, never lost data, and what it leaves the
# consumers keeps their lags short (the back-pressure below counts both). Niceness, added to
# the supervisor's, and written to each child's session autogroup (proc.lower_priority):
# without that, Linux shared the CPU evenly between the children's sessions, the feed fell
# 200k events behind every ~8 s, and the producer's holds left a core idle (bench pipeline:
# 94k -> 103k events/s). The feed ran at 2 until it became the costlier consumer and the
# one the back-pressure waited on: at 2 it still fell behind (up to 7.6% of the CPU idle
# while the producer was held); at 0, 119.8k and 124.2k events/s against 114.3k and 120.5k.
NICE = {"writer": 0, "producer": 5, "dashboard": 0}
# Back-pressure for an unpaced run: hold the producer while the slower consumer, the lake
# writer (records not yet durable in the lake) or the dashboard feed (records produced it has
# not read), is more than MAX_LAG events behind; let it go again below half of that. The
# producer is the local load generator; at full speed it outruns what the consumers keep up
# with, and a lag would grow without bound. The lags reach the supervisor up to ~0.35 s old
# (each child reports every 0.25 s): at 85k events/s that is ~30k events, so a small
# threshold holds the producer in short bursts and leaves the consumers idle between them
# (bench --only pipeline: 25k gave 0.49x of ProducerPerformance; 100k 0.70x; 200k 0.73x).
# 200k events is about 190 MB of the topic and 2.5 s of flow at full speed.
MAX_LAG = 200_000
STALL_AFTER_S = 5.0  # no progress for this long: the status line says what is stuck
# The lake part of the status line (lake_state): records the writer holds are "buffered"
# while the oldest is younger than the buffer interval plus BUFFER_GRACE_S (a flush is
# written, then committed); the writer is "behind" once that is passed, or while what it has
# not even read (lag minus buffered) grew by more than BEHIND_GROWTH over BEHIND_SPAN_S.
BUFFER_GRACE_S = 5.0
BEHIND_SPAN_S = 5.0
BEHIND_GROWTH = 1000


def lake_state(lag: int | None, buffered: int, oldest_age_s: float | None, interval_s: float | None, unread_growth: int) -> str:
    """What the lake writer's lag means, for the status line (see BUFFER_GRACE_S):

    - "lag 0": everything produced is durable;
    - "behind: ...": the oldest buffered record has waited past the interval, or the
      records not yet read pile up (unread_growth over BEHIND_SPAN_S);
    - "buffered N, waiting for the Firehose interval (X s left)": the lag is what the
      writer holds by design, as Firehose holds records for its buffer interval;
    - "lag N": in flight (read, or being written), neither of the above."""
    if lag is None:
        return "lag ?"
    if lag <= 0:
        return "lag 0"
    if oldest_age_s is not None and interval_s is not None and oldest_age_s > interval_s + BUFFER_GRACE_S:
        return f"behind: lag {lag:,}, the oldest buffered record is {oldest_age_s:.0f} s old (interval {interval_s:g} s)"
    if unread_growth > BEHIND_GROWTH:
        return f"behind: lag {lag:,}, {unread_growth:,} more unread than {BEHIND_SPAN_S:g} s ago"
    if buffered > 0 and oldest_age_s is not None and interval_s is not None:
        left = max(0.0, interval_s - oldest_age_s)
        return f"buffered {buffered:,}, waiting for the Firehose interval ({left:.0f} s left)"
    return f"lag {lag:,}"


@dataclass
class RunOptions:
    """What one `local` run does. Its events, by `start` and `events`:

    - no `start`, no `events` (the default): the wall clock. The producer streams the
      simulator's events as the clock reaches their event time (simulator.live.iter_live),
      from now or, on a restart over the same state folder, from just after the last event
      the previous run produced (state_dir/producer.json): the stream continues, never
      replays. With `rate` the same stream is paced at R events/s instead of the clock.
      The audience is `concurrent_viewers`, 2,000 when None (about 225 events/s).
    - `start`: reproducible. The simulator's deterministic stream from that time
      (iter_records), paced at `rate` or, endless without one, at the audience's rate.
    - `events` without `start`: a batch, exactly `generate --events N --seed S`'s events
      (the simulator's fixed start and, when None, its audience of 200), as fast as
      possible or at `rate`. Reproducible; it does not move the wall-clock resume point.
    """

    events: int | None = None
    rate: float | None = None
    seed: int = 42
    start: datetime | None = None
    lake: Path = ROOT / ".local" / "lake"
    state_dir: Path = ROOT / ".local"
    bootstrap_servers: str | None = None
    port: int = DEFAULT_PORT
    kafka_port: int = DEFAULT_KAFKA_PORT
    host: str = "127.0.0.1"
    window_s: float = 5.0
    buffer_interval_s: float | None = None
    buffer_size_mb: float | None = None
    no_dashboard: bool = False
    static_dir: Path = ROOT / "dashboard" / "dist"
    concurrent_viewers: int | None = None  # None: 2,000 live, the simulator's 200 for --events N
    incidents: tuple[Incident, ...] = ()
    rolling_s: float = 60.0  # the page's headline tiles span (the hub's rolling_seconds)
    status_every_s: float = 1.0
    client: str = "confluent-kafka"
    # Flags the user gave (e.g. {"--port"}): a taken explicit port is an error, a taken
    # default one moves to the next free port with a warning line.
    explicit: frozenset[str] = field(default=frozenset(), compare=False)
    deadline_s: float | None = None  # None: from --events N (see DEADLINE_BASE_S)
    duration_s: float | None = None  # stop (in order, exit 0) this long after the producer starts: the benchmark
    assign_timeout_s: float = 15.0


def _setup_logging(log_dir: Path) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "local.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s supervisor[%(process)d] %(threadName)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)  # "slow task" chatter on 2 cores
    logging.getLogger("websockets").setLevel(logging.WARNING)
    return path


def run(opts: RunOptions, *, console: Console | None = None, pipeline_out: list[LocalPipeline] | None = None) -> int:
    """Run the pipeline until --events N are durable, a stop request, or a failure."""
    log_path = _setup_logging(opts.state_dir / "logs")
    console = console if console is not None else Console()
    console.say(f"logs: {log_path}")
    pipeline = LocalPipeline(opts, console, log_path)
    if pipeline_out is not None:
        pipeline_out.append(pipeline)
    try:
        with Supervisor(console=console) as sup:
            pipeline.start(sup)
            outcome = sup.watch(done=pipeline.done, tick=pipeline.tick, status=pipeline.status, status_every_s=opts.status_every_s)
            if outcome.kind == "done" and pipeline.dashboard is not None:
                pipeline.dashboard.send({"cmd": "catch_up", "to": pipeline.produced_offsets()})
    except ServiceFailed as exc:  # a service could not start
        raise CliError(f"{exc} (see {log_path})", exit_code=exc.exit_code) from None
    if pipeline.producer is not None:
        console.final(pipeline.status())
    assert sup.outcome is not None
    return pipeline.exit_code(sup.outcome, log_path)


def topic_end_offsets(settings: KafkaSettings, topic: str) -> dict[int, int]:
    """partition -> the offset the next record will get (the run's start, for --events N)."""
    from acme_telemetry.local.producer import high_watermarks

    try:
        return high_watermarks(settings, topic)
    except ValueError as exc:
        raise CliError(str(exc)) from None


class LocalPipeline:
    """The services of one `local` run, and what the supervision loop asks of them."""

    def __init__(self, opts: RunOptions, console: Console, log_path: Path | None = None) -> None:
        from acme_telemetry.local.proc import ChildService

        self.opts = opts
        self.cfg = EMBEDDED
        self.console = console
        self.log_path = log_path or opts.state_dir / "logs" / "local.log"
        self.broker: Any = None
        self.dashboard: ChildService | None = None
        self.writer: ChildService | None = None
        self.producer: ChildService | None = None
        self.url: str | None = None
        self.run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        self.cold_start_at = time.monotonic()
        self.started_at: float | None = None  # when the producer started
        self._first_object_reported = False
        self._drain_sent = False
        self._last_status: tuple[float, int] | None = None
        self._progress: tuple[int, int] = (-1, -1)
        self._progress_at = time.monotonic()
        self.deadline_error: str | None = None
        self._held = False
        self._unread: list[tuple[float, int]] = []  # (monotonic time, lag - buffered) of recent status lines

    # --- start-up, in order --------------------------------------------------------------

    def start(self, sup: Supervisor) -> None:
        from acme_telemetry.local.proc import ChildService, allocator_preload
        from acme_telemetry.local.statedir import StateLock

        o, cfg = self.opts, self.cfg
        try:
            preload = allocator_preload()  # the children's malloc (local.proc)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        sup.start(StateLock(o.state_dir))
        settings = self._kafka(sup)
        log_dir = o.state_dir / "logs"
        common = {"bootstrap_servers": settings.bootstrap_servers, "topic": TOPIC, "log_file": str(self.log_path)}
        if not o.no_dashboard:
            port = self._port("--port", o.port, DEFAULT_PORT, "the dashboard")
            self.dashboard = sup.start(
                ChildService(
                    "dashboard",
                    "dashboard",
                    {
                        **common,
                        "host": o.host,
                        "port": port,
                        "static_dir": str(o.static_dir),
                        "window_s": o.window_s,
                        "heartbeat_ms": self.sim_heartbeat_ms(),
                        "rolling_s": o.rolling_s,
                        "nice": NICE["dashboard"],
                    },
                    log_dir=log_dir,
                    preload=preload,
                    start_timeout_s=45.0,
                )
            )
            self.url = self.dashboard.ready_info.get("url")
            self.console.say(f"dashboard: {self.url}", stdout=True)
        writer_cfg: dict[str, Any] = {
            **common,
            "lake": str(o.lake),
            "buffer_interval_s": o.buffer_interval_s if o.buffer_interval_s is not None else cfg.firehose.buffer_interval_s,
            "buffer_size_mb": o.buffer_size_mb if o.buffer_size_mb is not None else cfg.firehose.buffer_size_mb,
            "assign_timeout_s": o.assign_timeout_s,
        }
        start = topic_end_offsets(settings, TOPIC)  # before anything of this run is produced
        if o.events is not None:  # isolated: this run's records only, under a group of its own
            writer_cfg.update(group_id=f"{WRITER_GROUP}-run-{self.run_id}", instance_id=None, start_offsets=start)
            log.info("run %s: the writer reads %s from %s", self.run_id, TOPIC, start)
        else:  # the Firehose stand-in: resume from the committed offsets (a new group: from now)
            writer_cfg.update(group_id=WRITER_GROUP, instance_id=f"{WRITER_GROUP}-1", start_offsets=start, resume=True)
        self.writer = sup.start(
            ChildService("lake writer", "writer", writer_cfg, log_dir=log_dir, before_stop=self._last_drain, preload=preload)
        )
        for inc in o.incidents:
            span = "..".join(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t / 1000)) for t in (inc.start_ms, inc.end_ms))
            self.console.say(f"incident: {inc.dimension}={inc.value} {inc.kind} {span}", stdout=True)
            log.info("incident %s", inc.describe())
        self.producer = sup.start(
            ChildService(
                "producer",
                "producer",
                {
                    **common,
                    "events": o.events,
                    "rate": o.rate,
                    "seed": o.seed,
                    "start": o.start.isoformat() if o.start is not None else None,
                    "concurrent_viewers": o.concurrent_viewers,
                    "client": o.client,
                    "nice": NICE["producer"],
                    "incidents": [i.describe() for i in o.incidents],
                    "state_dir": str(o.state_dir),
                },
                log_dir=log_dir,
                preload=preload,
                finishes=o.events is not None,
            )
        )
        self.started_at = time.monotonic()
        self._progress_at = self.started_at

    @staticmethod
    def sim_heartbeat_ms() -> int:
        """The simulated players' beacon interval: what the feed weighs each heartbeat by."""
        from acme_telemetry.simulator import SimConfig

        return int(SimConfig().heartbeat_interval_s * 1000)

    def _port(self, flag: str, port: int, default: int, what: str) -> int:
        from acme_telemetry.local.broker import pick_port, port_free

        if flag in self.opts.explicit or port != default:
            if not port_free(port, self.opts.host):
                raise CliError(
                    f"{flag} {port}: port {port} on {self.opts.host} is in use; choose another port, "
                    f"or leave {flag} out to take the next free one from {default}",
                    exit_code=1,
                )
            return port
        chosen = pick_port(port)
        if chosen != port:
            self.console.say(f"warning: port {port} is in use; {what} takes port {chosen}")
        return chosen

    def _kafka(self, sup: Supervisor) -> KafkaSettings:
        """The embedded broker (a service) or the given one; the topic exists afterwards."""
        o, cfg = self.opts, self.cfg
        if o.bootstrap_servers:
            settings = KafkaSettings.local(o.bootstrap_servers)
        else:
            from acme_telemetry.local.broker import LocalBroker

            strict = "--kafka-port" in o.explicit or o.kafka_port != DEFAULT_KAFKA_PORT
            self.console.say(f"starting Kafka {cfg.local_kafka_release} (KRaft) ...")
            broker = self.broker = sup.start(
                LocalBroker(
                    o.state_dir,
                    port=o.kafka_port,
                    release=cfg.local_kafka_release,
                    num_partitions=cfg.topic.partitions,
                    strict_port=strict,
                )
            )
            assert broker.ports is not None
            if broker.ports.plaintext != o.kafka_port:
                self.console.say(f"warning: port {o.kafka_port} is in use; Kafka takes port {broker.ports.plaintext}")
            settings = KafkaSettings.local(broker.bootstrap)
        try:
            created = ensure_topic(settings, TOPIC, partitions=cfg.topic.partitions, retention_hours=cfg.topic.retention_hours)
        except KafkaConfigError as exc:
            raise CliError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - any client error here means Kafka is not usable
            raise CliError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc!r}") from None
        log.info("topic %s %s", TOPIC, "created" if created else "exists")
        self.console.say(
            f"Kafka at {settings.bootstrap_servers}, topic {TOPIC} ({cfg.topic.partitions} partitions, "
            f"{cfg.topic.retention_hours} h retention)"
        )
        return settings

    # --- what the loop asks --------------------------------------------------------------

    def produced_offsets(self) -> dict[int, int]:
        ps = self.producer.stats if self.producer is not None else {}
        return {int(p): int(o) for p, o in (ps.get("end_offsets") or {}).items()}

    def produced(self) -> int:
        return int(self.producer.stats.get("produced", 0)) if self.producer is not None else 0

    def lake_events(self) -> int:
        return int(self.writer.stats.get("events_written", 0)) if self.writer is not None else 0

    def all_produced(self) -> bool:
        ps = self.producer.stats if self.producer is not None else {}
        return self.opts.events is not None and bool(ps) and bool(ps.get("done")) and self.produced() >= self.opts.events

    def done(self) -> bool:
        """All --events N durable, or --duration over."""
        d = self.opts.duration_s
        if d is not None and self.started_at is not None and time.monotonic() - self.started_at >= d:
            return True
        return self.all_durable()

    def all_durable(self) -> bool:
        """True once --events N were produced and the writer committed past all of them."""
        if not self.all_produced() or self.writer is None:
            return False
        durable = {int(p): int(o) for p, o in (self.writer.stats.get("durable_offsets") or {}).items()}
        return all(durable.get(p, 0) >= end for p, end in self.produced_offsets().items())

    def tick(self) -> None:
        ws = self.writer.stats if self.writer is not None else {}
        if not self._first_object_reported and ws.get("objects_written"):
            self._first_object_reported = True
            log.info("cold start to first lake object: %.1f s", time.monotonic() - self.cold_start_at)
        if self.writer is not None and not self._drain_sent and self.all_produced():
            # All N are in Kafka: flush once they are read, as a shutdown would.
            self._drain_sent = True
            self.writer.send({"cmd": "drain", "to": self.produced_offsets()})
        self._backpressure(ws)
        now = time.monotonic()
        progress = (self.produced(), self.lake_events())
        if progress != self._progress:
            self._progress, self._progress_at = progress, now
        deadline = self.deadline_s()
        if (
            deadline is not None
            and self.opts.duration_s is None
            and self.started_at is not None
            and now - self.started_at > deadline
            and not self.all_durable()
        ):
            self.deadline_error = (
                f"--events {self.opts.events:,}: only {self.lake_events():,} events reached the lake within {deadline:.0f} s"
                f" ({self.stall_cause() or 'still moving, too slowly'})"
            )
            raise _DeadlinePassed(f"{self.deadline_error} (see {self.log_path})")

    def _backpressure(self, ws: dict[str, Any]) -> None:
        if self.producer is None or self.opts.rate is not None or (self.opts.events is None and self.opts.duration_s is None):
            return  # a paced run keeps its rate
        lag = ws.get("lag")
        if not isinstance(lag, int):
            return
        lag = max(lag, self.feed_lag() or 0)
        if lag > MAX_LAG and not self._held:
            self._held = True
            self.producer.send({"cmd": "hold"})
        elif lag < MAX_LAG // 2 and self._held:
            self._held = False
            self.producer.send({"cmd": "go"})

    def _last_drain(self) -> dict[str, Any] | None:
        """As the writer's stop begins (the producer has stopped; its final stats are in): read
        up to everything the producer acknowledged, then flush. Without it, the records
        acknowledged in the producer's final flush could still be on their way to the writer
        when its stop came, and stay in Kafka instead of the lake."""
        ends = self.produced_offsets()
        return {"cmd": "drain", "to": ends} if ends else None

    def feed_lag(self) -> int | None:
        """Records in the topic that the dashboard feed has not read yet, as it reports them
        (None: no dashboard, or no figure from it yet)."""
        if self.dashboard is None:
            return None
        lag = self.dashboard.stats.get("lag")
        return lag if isinstance(lag, int) else None

    def deadline_s(self) -> float | None:
        o = self.opts
        if o.deadline_s is not None:
            return o.deadline_s
        if o.events is None:
            return None
        if o.rate:
            return DEADLINE_BASE_S + 2 * o.events / o.rate
        return DEADLINE_BASE_S + o.events / DEADLINE_MIN_RATE

    def stalled_for(self) -> float:
        if self.started_at is None or self.all_durable():
            return 0.0
        return time.monotonic() - self._progress_at

    def stall_cause(self) -> str | None:
        ws = self.writer.stats if self.writer is not None else {}
        if ws.get("unassigned_for_s"):
            return f"the lake writer has had no partitions for {ws['unassigned_for_s']:.0f} s"
        if self.stalled_for() < STALL_AFTER_S:
            return None
        if self.opts.events is not None and self.all_produced():
            return "all events are in Kafka; the lake writer is not writing them"
        ps = self.producer.stats if self.producer is not None else {}
        if ps.get("last_error"):
            return f"the producer's deliveries fail: {ps['last_error']}"
        return "nothing is produced or written"

    def status(self) -> str:
        if self.producer is None:
            return "starting"
        now = time.monotonic()
        produced = self.produced()
        last_t, last_n = self._last_status or (self.started_at or now, 0)
        rate = (produced - last_n) / max(1e-6, now - last_t)
        self._last_status = (now, produced)
        parts = []
        n = self.opts.events
        if n:
            done = min(1.0, self.lake_events() / n)
            filled = int(done * 20)
            parts.append(f"[{'#' * filled}{'.' * (20 - filled)}] {done * 100:3.0f}%")
        parts.append(f"produced {produced:,} ({rate:,.0f}/s)")
        last_ts = self.producer.stats.get("last_ts_ms")
        if isinstance(last_ts, int):
            parts.append(f"event time {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(last_ts / 1000))}")
        if self.writer is not None:
            ws = self.writer.stats
            parts += [
                self.lake_status(ws, now),
                f"lake {ws.get('events_written', 0):,} events in {ws.get('objects_written', 0)} objects",
                f"errors {ws.get('errors_written', 0)}",
            ]
        cause = self.stall_cause()
        if cause is not None:
            parts.append(f"STALLED {self.stalled_for():.0f} s: {cause}")
        if self.url:
            parts.append(self.url)
        return " | ".join(parts)

    def lake_status(self, ws: dict[str, Any], now: float, wall_ms: int | None = None) -> str:
        """lake_state from the writer's stats: the age of its oldest buffered record (by the
        wall clock, against the record's Kafka arrival time) and how its unread part moved."""
        lag = ws.get("lag")
        buffered = int(ws.get("buffered") or 0)
        oldest = ws.get("oldest_buffered_ms")
        wall = wall_ms if wall_ms is not None else time.time_ns() // 1_000_000
        age = max(0.0, (wall - oldest) / 1000) if isinstance(oldest, int) and buffered else None
        interval = ws.get("buffer_interval_s")
        growth = 0
        if isinstance(lag, int):
            unread = max(0, lag - buffered)
            self._unread = [(t, u) for t, u in self._unread if now - t <= BEHIND_SPAN_S] + [(now, unread)]
            t0, u0 = self._unread[0]
            growth = unread - u0 if now - t0 >= BEHIND_SPAN_S / 2 else 0
        return lake_state(
            lag if isinstance(lag, int) else None, buffered, age, float(interval) if isinstance(interval, (int, float)) else None, growth
        )

    # --- the end -------------------------------------------------------------------------

    def exit_code(self, outcome: Outcome, log_path: Path) -> int:
        """0 when the run did what was asked; CliError for a failure; else why it stopped."""
        if outcome.kind == "failed":
            raise CliError(f"the pipeline stopped: the {outcome.service} failed: {outcome.reason} (see {log_path})", exit_code=1)
        if outcome.kind == "done":
            return 0
        interrupted = self.opts.events is not None and not self.all_durable()
        if interrupted:
            self.console.say(
                f"interrupted: {self.lake_events():,} of {self.opts.events:,} events are in the lake "
                "(this run's group stops here; a later run does not write the rest)"
            )
        if outcome.reason == OUTPUT_CLOSED:
            return 128 + signal.SIGPIPE  # as a shell reports a writer whose pipe closed
        if outcome.signum == signal.SIGHUP:
            return 128 + signal.SIGHUP  # the terminal went away: not the way a run is meant to end
        # Ctrl-C or SIGTERM: the way an endless run ends; with --events N, before all N are in
        return EXIT_INTERRUPTED if interrupted else 0


class _DeadlinePassed(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)
