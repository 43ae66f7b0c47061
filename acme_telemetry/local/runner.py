"""`python -m acme_telemetry local`: broker, producer, lake writer and dashboard on one machine.

Threads: the producer (simulator -> Kafka), the lake writer (Kafka -> lake) and the
dashboard feed (Kafka -> KPI windows -> hub) each run in one; the asyncio loop in the
main thread serves the page and the WebSocket and prints the status line.

Stop (Ctrl-C, SIGTERM, or --events N reached): the producer stops and flushes, the writer
writes and commits what it holds, the feed closes its windows, the server closes, and the
embedded broker gets SIGTERM. Broker data stays in .local/kafka, so the next run resumes
from the writer's committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from acme_telemetry.errors import CliError
from acme_telemetry.settings import EMBEDDED
from acme_telemetry.kafka import KafkaSettings, ProduceError, ensure_topic, make_producer
from acme_telemetry.schema import TOPIC

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
PRODUCE_CHUNK = 2000


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


@dataclass
class ProducerStats:
    produced: int = 0
    failed_chunks: int = 0
    done: bool = False
    error: str | None = None
    # partition -> highest acknowledged offset + 1 (what the writer must commit to be done)
    end_offsets: dict[int, int] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)


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


class Pipeline:
    def __init__(self, opts: RunOptions):
        self.opts = opts
        self.cfg = EMBEDDED
        self.stop = threading.Event()
        self.producer_stats = ProducerStats()
        self.broker = None
        self.writer = None
        self.feed = None
        self.hub = None
        self.url: str | None = None
        self.threads: list[threading.Thread] = []
        self.failure: BaseException | None = None
        self.cold_start_at = time.monotonic()

    # --- producer -----------------------------------------------------------------------

    def _records(self):
        from acme_telemetry.simulator import SimConfig, iter_records

        o = self.opts
        kw: dict[str, Any] = {"seed": o.seed}
        if o.start is not None:
            kw["start"] = o.start
        if o.concurrent_viewers:
            kw["concurrent_viewers"] = o.concurrent_viewers
        n = o.events if o.events is not None else 10**15
        return iter_records(n, SimConfig(**kw))

    def _send_chunk(self, producer, chunk: list[tuple[bytes, bytes]]) -> None:
        stats = self.producer_stats
        while True:
            futures = []
            try:
                for key, value in chunk:
                    futures.append(producer.send(TOPIC, key=key, value=value))
                producer.flush()
                failed = [f for f in futures if not f.succeeded()]
                if failed:
                    raise ProduceError(f"{len(failed)} records failed: {failed[0].exception!r}", sent=len(futures) - len(failed), failed=len(failed))
            except Exception as exc:  # noqa: BLE001 - resend the chunk: at-least-once
                stats.failed_chunks += 1
                log.warning("produce failed (%r); resending %d records", exc, len(chunk))
                if self.stop.wait(1.0):
                    raise
                continue
            for f in futures:
                md = f.value
                if md.offset + 1 > stats.end_offsets.get(md.partition, 0):
                    stats.end_offsets[md.partition] = md.offset + 1
            stats.produced += len(chunk)
            return

    def run_producer(self) -> None:
        o = self.opts
        stats = self.producer_stats
        producer = make_producer(self.settings.with_client_id("acme-local-producer"), linger_ms=20, batch_size=256 * 1024)
        rate = o.rate
        if rate is None and o.events is None:  # interactive run: real time, events stamped ~now
            from acme_telemetry.simulator import expected_events_per_s, SimConfig

            rate = expected_events_per_s(SimConfig(seed=o.seed, concurrent_viewers=o.concurrent_viewers or 200))
        try:
            stats.started_at = t0 = time.monotonic()
            chunk: list[tuple[bytes, bytes]] = []
            chunk_size = PRODUCE_CHUNK if not rate else max(1, min(PRODUCE_CHUNK, int(rate / 10)))
            sent_or_queued = 0
            for rec in self._records():
                if self.stop.is_set():
                    break
                chunk.append(rec)
                sent_or_queued += 1
                if len(chunk) >= chunk_size:
                    self._send_chunk(producer, chunk)
                    chunk = []
                    if rate:
                        ahead = sent_or_queued / rate - (time.monotonic() - t0)
                        if ahead > 0 and self.stop.wait(ahead):
                            break
            if chunk and not self.stop.is_set():
                self._send_chunk(producer, chunk)
            stats.done = o.events is not None and stats.produced >= o.events
        except Exception as exc:  # noqa: BLE001
            stats.error = repr(exc)
            log.exception("the producer failed")
            self.failure = exc
            self.stop.set()
        finally:
            try:
                producer.flush()
                producer.close(timeout=10)
            except Exception:  # noqa: BLE001
                log.exception("closing the producer failed")
            log.info("producer stopped: %d produced", stats.produced)

    # --- writer and feed ----------------------------------------------------------------

    def run_writer(self) -> None:
        try:
            self.writer.run(self.writer_stop)
        except Exception as exc:  # noqa: BLE001
            log.exception("the lake writer failed")
            self.failure = exc
            self.stop.set()

    def run_feed(self) -> None:
        try:
            self.feed.run(self.feed_stop)
        except Exception:  # noqa: BLE001 - the dashboard is not worth stopping the pipeline for
            log.exception("the dashboard feed failed")

    def all_durable(self) -> bool:
        """True once --events N were produced and the writer committed past all of them."""
        ps = self.producer_stats
        if self.opts.events is None or not ps.done or ps.produced < self.opts.events:
            return False
        committed = self.writer.durable_offsets if self.writer else {}
        return all(committed.get((TOPIC, p), 0) >= end for p, end in ps.end_offsets.items())

    # --- status -------------------------------------------------------------------------

    def status(self) -> str:
        ps = self.producer_stats
        ws = self.writer.stats if self.writer else None
        now = time.monotonic()
        last_t, last_n = getattr(self, "_last_status", (ps.started_at, 0))
        rate = (ps.produced - last_n) / max(1e-6, now - last_t)
        self._last_status = (now, ps.produced)
        parts = [f"produced {ps.produced:,} ({rate:,.0f}/s)"]
        if ws:
            parts += [
                f"lag {ws.lag if ws.lag is not None else '?'}",
                f"lake {ws.events_written:,} events in {ws.objects_written} objects",
                f"errors {ws.errors_written}",
            ]
        if self.url:
            parts.append(self.url)
        return " | ".join(parts)

    async def _status_loop(self, done: asyncio.Event) -> None:
        tty = sys.stderr.isatty()
        last_plain = 0.0
        while not done.is_set():
            line = self.status()
            if tty:
                sys.stderr.write("\r\x1b[2K" + line)
                sys.stderr.flush()
            elif time.monotonic() - last_plain >= 10:
                print(line, file=sys.stderr, flush=True)
                last_plain = time.monotonic()
            log.info("status: %s", line)
            try:
                await asyncio.wait_for(done.wait(), self.opts.status_every_s)
            except asyncio.TimeoutError:
                pass
        if tty:
            sys.stderr.write("\r\x1b[2K")
        print(self.status(), file=sys.stderr, flush=True)

    # --- lifecycle ----------------------------------------------------------------------

    def start_kafka(self) -> None:
        o = self.opts
        if o.bootstrap_servers:
            self.settings = KafkaSettings.local(o.bootstrap_servers)
        else:
            from acme_telemetry.local.broker import LocalBroker

            self.broker = LocalBroker(o.state_dir, port=o.kafka_port, release=self.cfg.local_kafka_release,
                                      num_partitions=self.cfg.topic.partitions)
            print(f"starting Kafka {self.cfg.local_kafka_release} (KRaft) ...", file=sys.stderr, flush=True)
            self.broker.start()
            self.settings = KafkaSettings.local(self.broker.bootstrap)
        try:
            created = ensure_topic(
                self.settings, TOPIC, partitions=self.cfg.topic.partitions, retention_hours=self.cfg.topic.retention_hours
            )
        except Exception as exc:
            from acme_telemetry.kafka import KafkaConfigError

            if isinstance(exc, KafkaConfigError):
                raise CliError(str(exc)) from None
            raise CliError(f"cannot reach Kafka at {self.settings.bootstrap_servers}: {exc!r}") from None
        log.info("topic %s %s", TOPIC, "created" if created else "exists")
        print(f"Kafka at {self.settings.bootstrap_servers}, topic {TOPIC} ({self.cfg.topic.partitions} partitions, "
              f"{self.cfg.topic.retention_hours} h retention)", file=sys.stderr, flush=True)

    async def main(self) -> int:
        from acme_telemetry.local.writer import LakeWriter

        o = self.opts
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        await loop.run_in_executor(None, self.start_kafka)
        self.writer_stop = threading.Event()
        self.feed_stop = threading.Event()
        self.writer = LakeWriter(
            self.settings, o.lake,
            buffer_interval_s=o.buffer_interval_s if o.buffer_interval_s is not None else self.cfg.firehose.buffer_interval_s,
            buffer_size_mb=o.buffer_size_mb if o.buffer_size_mb is not None else self.cfg.firehose.buffer_size_mb,
        )
        server = None
        if not o.no_dashboard:
            from acme_telemetry.local import web
            from acme_telemetry.local.broker import pick_port
            from acme_telemetry.local.feed import DashboardFeed
            from acme_telemetry.local.hub import Hub

            self.hub = Hub(window_seconds=o.window_s)
            port = pick_port(o.port)
            server = await web.serve(
                self.hub, host=o.host, port=port, static_dir=o.static_dir,
                page_config={"windowSeconds": o.window_s, "environment": "local"},
            )
            self.url = f"http://{o.host}:{port}/"
            print(f"dashboard: {self.url}", flush=True)
            self.feed = DashboardFeed(self.settings, self.hub, window_s=o.window_s)
            self.threads.append(threading.Thread(target=self.run_feed, name="feed", daemon=True))
        self.threads.append(threading.Thread(target=self.run_writer, name="writer", daemon=True))
        for t in self.threads:
            t.start()
        if self.feed is not None:  # the feed reads from 'latest': let it be positioned first
            await loop.run_in_executor(None, self.feed.ready.wait, 15)
        producer = threading.Thread(target=self.run_producer, name="producer", daemon=True)
        producer.start()

        done = asyncio.Event()
        status = asyncio.create_task(self._status_loop(done))
        first_object_reported = False
        try:
            while not self.stop.is_set():
                await asyncio.sleep(0.2)
                ws = self.writer.stats
                if not first_object_reported and ws.first_object_at is not None:
                    first_object_reported = True
                    log.info("cold start to first lake object: %.1f s", ws.first_object_at - self.cold_start_at)
                if self.all_durable():
                    log.info("all %d events are durable in the lake", o.events)
                    break
                ps = self.producer_stats
                if o.events is not None and ps.done and ps.produced >= o.events:
                    # All N are in Kafka: flush once they are read, as a shutdown would.
                    self.writer.drain({(TOPIC, p): end for p, end in ps.end_offsets.items()})
                if not any(t.is_alive() for t in self.threads if t.name == "writer"):
                    break
        finally:
            self.stop.set()
            await loop.run_in_executor(None, producer.join, 60)
            self.writer_stop.set()
            if self.feed is not None and self.all_durable():
                # Let the dashboard see every event before its last windows close.
                deadline = time.monotonic() + 15
                ends = self.producer_stats.end_offsets
                while time.monotonic() < deadline and any(
                    self.feed.positions.get(p, 0) < end for p, end in ends.items()
                ):
                    await asyncio.sleep(0.1)
            self.feed_stop.set()
            for t in self.threads:
                await loop.run_in_executor(None, t.join, 60)
            done.set()
            await status
            if server is not None:
                await asyncio.sleep(0.5)  # let the last kpi/feed frames reach connected pages
                server.close()
                await server.wait_closed()
            if self.broker is not None:
                await loop.run_in_executor(None, self.broker.stop)
            ws = self.writer.stats
            log.info("writer: %s", ws.as_dict())
            if self.feed is not None:
                a = self.feed.aggregator
                log.info("feed: %d events, %d kpi windows, %d late, %d unparseable", a.events, a.windows_emitted, a.late, a.bad)
        if self.failure is not None:
            raise CliError(f"the pipeline stopped: {self.failure!r} (see {o.state_dir / 'logs' / 'local.log'})", exit_code=1)
        if o.events is not None and not self.all_durable():
            print(f"interrupted: {self.writer.stats.events_written:,} of {o.events:,} events are in the lake "
                  "(the rest stay in Kafka; the next run writes them)", file=sys.stderr)
            return 130
        return 0


def run(opts: RunOptions) -> int:
    log_path = _setup_logging(opts.state_dir / "logs")
    print(f"logs: {log_path}", file=sys.stderr, flush=True)
    pipeline = Pipeline(opts)
    return asyncio.run(pipeline.main())
