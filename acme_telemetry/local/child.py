"""`python -m acme_telemetry.local.child ROLE`: one part of the local pipeline in its own process.

Started by local.proc.ChildService (see there for the channel and the parent-death guard).
Roles:

    producer   simulator -> Kafka (local.producer.LocalProducer)
    writer     Kafka -> lake, the Firehose stand-in (local.writer.LakeWriter)
    dashboard  Kafka -> KPI windows -> hub -> the page's WebSocket (local.feed, local.hub, local.web)

Every role stops the same way, whatever asks: {"cmd": "stop"} on stdin, EOF on stdin (the
supervisor is gone), SIGTERM (the parent-death signal, or the supervisor's last resort),
SIGINT or SIGHUP. Stopping flushes, commits and closes; then the final stats are sent and
the process exits 0. A role with nothing to flush yet (Role.idle(): the producer before its
first record, while the simulator draws a large audience) is cut short at once. A failure
is sent as {"kind": "error"}, one line, and the exit code is 1.
"""

from __future__ import annotations

import _thread
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from acme_telemetry.kafka import KafkaSettings
from acme_telemetry.local.proc import PARENT_PID_ENV, lower_priority, malloc_in_use, usage
from acme_telemetry.local.supervisor import one_line

log = logging.getLogger(__name__)

STATS_EVERY_S = 0.25
GC_THRESHOLD = (50_000, 20, 100)  # gen0 allocations, gen0 passes per gen1, gen1 per gen2
ORPHAN_GRACE_S = 20.0  # an orphan (the supervisor died) gets this long for its orderly stop, then exits


class Channel:
    """JSON lines to the supervisor (stdout), from any thread."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.lock = threading.Lock()
        self.closed = False

    def send(self, kind: str, **fields: Any) -> None:
        if self.closed:
            return
        with self.lock:
            try:
                self.out.write(orjson.dumps({"kind": kind, **fields}, option=orjson.OPT_NON_STR_KEYS) + b"\n")
                self.out.flush()
            except (OSError, ValueError):
                self.closed = True  # the supervisor is gone: stdin's EOF stops us


class Role:
    """What a role does: run(stop) in the main thread; stats() and command() from others."""

    def __init__(self, config: dict[str, Any], channel: Channel) -> None:
        self.config = config
        self.channel = channel
        self.settings = KafkaSettings.local(config["bootstrap_servers"])

    def run(self, stop: threading.Event) -> None:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        return {}

    def command(self, message: dict[str, Any]) -> None:
        log.warning("unknown command %r", message.get("cmd"))

    def idle(self) -> bool:
        """True while a stop has nothing to flush, commit or close: it may cut run() short."""
        return False


class Abandoned(Exception):
    """Raised in the main thread by a stop while the role is idle(): run() ends at once."""


class ProducerRole(Role):
    def __init__(self, config: dict[str, Any], channel: Channel) -> None:
        super().__init__(config, channel)
        from acme_telemetry.local.producer import LocalProducer
        from acme_telemetry.simulator.incidents import Incident
        from acme_telemetry.times import parse_utc

        start = config.get("start")
        state_dir = config.get("state_dir")
        self.producer = LocalProducer(
            self.settings,
            events=config.get("events"),
            rate=config.get("rate"),
            seed=config.get("seed", 42),
            start=parse_utc(start) if start else None,
            concurrent_viewers=config.get("concurrent_viewers"),
            topic=config["topic"],
            client=config.get("client", "confluent-kafka"),
            incidents=tuple(Incident(**i) for i in config.get("incidents") or ()),
            state_file=Path(state_dir) / "producer.json" if state_dir else None,
        )

    def run(self, stop: threading.Event) -> None:
        self.channel.send("ready")
        self.producer.run(stop)

    def stats(self) -> dict[str, Any]:
        s = self.producer.stats
        return {
            "produced": s.produced,
            "sent": s.sent,
            "failed": s.failed,
            "done": s.done,
            "end_offsets": dict(s.end_offsets),
            "last_error": s.last_error,
            "held": not self.producer.go.is_set(),
            "first_ts_ms": s.first_ts_ms,
            "last_ts_ms": s.last_ts_ms,
            "wall_clock": self.producer.wall_clock,
        }

    def idle(self) -> bool:
        return not self.producer.producing

    def command(self, message: dict[str, Any]) -> None:
        if message.get("cmd") == "hold":
            self.producer.go.clear()
        elif message.get("cmd") == "go":
            self.producer.go.set()
        else:
            super().command(message)


class WriterRole(Role):
    def __init__(self, config: dict[str, Any], channel: Channel) -> None:
        super().__init__(config, channel)
        from acme_telemetry.local.writer import LakeWriter

        start = config.get("start_offsets")
        self.writer = LakeWriter(
            self.settings,
            Path(config["lake"]),
            buffer_interval_s=config["buffer_interval_s"],
            buffer_size_mb=config["buffer_size_mb"],
            topic=config["topic"],
            group_id=config["group_id"],
            instance_id=config.get("instance_id"),
            start_offsets={int(p): int(o) for p, o in start.items()} if start is not None else None,
            resume=bool(config.get("resume")),
            assign_timeout_s=config.get("assign_timeout_s", 15.0),
        )

    def run(self, stop: threading.Event) -> None:
        self.channel.send("ready")
        self.writer.run(stop)

    def stats(self) -> dict[str, Any]:
        w = self.writer
        # The arrival time of the oldest record the writer holds (None: it holds nothing): the
        # status line tells "buffered, waiting for the interval" from "behind" by its age.
        oldest = getattr(w, "_oldest_ms", None)
        return {
            **w.stats.as_dict(),
            "durable_offsets": {p: o for (_, p), o in w.durable_offsets.items()},
            "oldest_buffered_ms": oldest if isinstance(oldest, int) else None,
            "buffer_interval_s": self.config["buffer_interval_s"],
        }

    def command(self, message: dict[str, Any]) -> None:
        if message.get("cmd") == "drain":
            topic = self.writer.topic
            self.writer.drain({(topic, int(p)): int(o) for p, o in message["to"].items()})
        else:
            super().command(message)


class DashboardRole(Role):
    """The page's server and the KPI feed, in one process (the feed publishes into the server's hub)."""

    def __init__(self, config: dict[str, Any], channel: Channel) -> None:
        super().__init__(config, channel)
        from acme_telemetry import kpis
        from acme_telemetry.local.feed import DashboardFeed
        from acme_telemetry.local.hub import Hub
        from acme_telemetry.local.services import FeedService, ServerService

        window_s = float(config["window_s"])
        heartbeat_ms = int(config.get("heartbeat_ms") or kpis.DEFAULT_HEARTBEAT_MS)
        rolling_s = float(config.get("rolling_s") or 60.0)
        self.hub = Hub(window_seconds=window_s, heartbeat_ms=heartbeat_ms, rolling_seconds=rolling_s)
        self.server = ServerService(
            self.hub,
            host=config["host"],
            port=int(config["port"]),
            static_dir=Path(config["static_dir"]),
            page_config={"windowSeconds": window_s, "environment": "local"},
        )
        self.feed = FeedService(DashboardFeed(self.settings, self.hub, topic=config["topic"], window_s=window_s, heartbeat_ms=heartbeat_ms))

    def run(self, stop: threading.Event) -> None:
        with self.server, self.feed:
            self.channel.send("ready", url=self.server.url)
            while not stop.wait(0.2):
                for service in (self.server, self.feed):
                    error = service.poll()
                    if error is not None:
                        raise RuntimeError(f"the {service.name} failed: {error}")
        for service in (self.feed, self.server):
            error = service.poll()
            if error is not None:
                raise RuntimeError(f"the {service.name} failed while stopping: {error}")

    def stats(self) -> dict[str, Any]:
        a = self.feed.feed.aggregator
        feed = self.feed.feed
        return {
            "events": a.events,
            "windows": a.windows_emitted,
            "late": a.late,
            "bad": a.bad,
            "positions": dict(feed.positions),
            "lag": feed.lag,
        }

    def command(self, message: dict[str, Any]) -> None:
        if message.get("cmd") == "catch_up":
            self.feed.catch_up_to({int(p): int(o) for p, o in message["to"].items()})
        else:
            super().command(message)


ROLES: dict[str, Callable[[dict[str, Any], Channel], Role]] = {
    "producer": ProducerRole,
    "writer": WriterRole,
    "dashboard": DashboardRole,
}


def _setup_logging(path: str | None, role: str) -> None:
    handler: logging.Handler = logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {role}[%(process)d] %(threadName)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name, level in (("kafka", logging.WARNING), ("kafka.net.selector", logging.ERROR), ("websockets", logging.WARNING)):
        logging.getLogger(name).setLevel(level)


class Lines:
    """Lines from a file descriptor with plain os.read: no buffered reader whose lock a thread
    blocked in it would hold at interpreter shutdown."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""

    def readline(self) -> bytes:
        while b"\n" not in self.buf:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


def _commands(stdin: Lines, role: Role, stop: threading.Event) -> None:
    """Commands from the supervisor until EOF; EOF means the supervisor is gone: stop."""
    for line in stdin:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if message.get("cmd") == "stop":
            log.info("asked to stop")
            stop.set()
            if role.idle():
                _thread.interrupt_main(signal.SIGINT)  # on_signal cuts run() short in the main thread
        else:
            role.command(message)
    if not stop.is_set():
        log.warning("the supervisor is gone (its pipe closed): stopping")
        stop.set()
    _bound_if_orphan(os.environ.get(PARENT_PID_ENV))


def _bound_if_orphan(expected_parent: str | None) -> None:
    """Nobody will SIGKILL an orphan whose stop hangs (its broker may be gone too): exit after
    ORPHAN_GRACE_S whatever the stop is doing."""
    if not expected_parent or os.getppid() == int(expected_parent):
        return

    def cut() -> None:
        log.error("the orderly stop took over %.0f s without the supervisor; exiting", ORPHAN_GRACE_S)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(ORPHAN_GRACE_S, cut)
    timer.daemon = True
    timer.start()


def _report(role: Role, channel: Channel, stop: threading.Event) -> None:
    while not stop.wait(STATS_EVERY_S):
        try:
            channel.send("stats", stats=role.stats(), usage=usage())
        except Exception:  # noqa: BLE001 - stats are informational
            log.exception("stats failed")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ROLES:
        print(f"usage: python -m acme_telemetry.local.child {{{','.join(ROLES)}}}", file=sys.stderr)
        return 2
    name = args[0]
    expected_parent = os.environ.get(PARENT_PID_ENV)
    if expected_parent and os.getppid() != int(expected_parent):
        print(f"{name}: the supervisor (pid {expected_parent}) is already gone", file=sys.stderr)
        return 1
    stdin, channel = Lines(0), Channel(sys.stdout.buffer)
    sys.stdout = sys.stderr  # stray prints must not corrupt the channel
    first = stdin.readline()
    if not first:
        return 1  # the supervisor went away before it said what to do
    config: dict[str, Any] = orjson.loads(first)["config"]
    _setup_logging(config.get("log_file"), name)
    log.info("the %s starts; malloc: %s", name, malloc_in_use())
    if config.get("nice"):
        lower_priority(int(config["nice"]))  # the consumers first: see runner.NICE
    stop = threading.Event()

    roles: list[Role] = []

    def on_signal(signum: int, frame: object) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()
        _bound_if_orphan(expected_parent)
        if roles and roles[0].idle():
            raise Abandoned  # e.g. the simulator still drawing its audience: nothing to lose

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        role = ROLES[name](config, channel)
    except Exception as exc:  # noqa: BLE001 - reported to the supervisor, one line
        log.exception("the %s could not start", name)
        channel.send("error", error=one_line(exc))
        return 1
    roles.append(role)
    # Every role allocates a few short-lived containers per record (librdkafka's messages,
    # decoded events, slice keys). The collector's default, a pass every 700 of them, cost
    # the dashboard feed 12% of its CPU at full speed (add_values: 4.6 -> 4.1 us per event
    # with this threshold). What exists now (modules, the role) is frozen out of every pass.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    threading.Thread(target=_commands, args=(stdin, role, stop), name="commands", daemon=True).start()
    reporter = threading.Thread(target=_report, args=(role, channel, stop), name="stats", daemon=True)
    reporter.start()
    t0 = time.monotonic()
    try:
        role.run(stop)
    except Abandoned:
        roles.clear()  # a second signal now just stops
        log.info("the %s stopped before it had anything to flush", name)
    except BaseException as exc:  # noqa: BLE001 - reported to the supervisor, one line
        log.exception("the %s failed", name)
        channel.send("stats", stats=role.stats(), usage=usage())
        channel.send("error", error=one_line(exc) if not isinstance(exc, RuntimeError) else str(exc).replace("\n", " | "))
        return 1
    finally:
        stop.set()
    channel.send("stats", stats=role.stats(), usage=usage(), final=True)
    log.info("the %s stopped after %.1f s", name, time.monotonic() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
