"""Thread services (supervisor.ThreadService) around the pipeline's components.

`local` runs the producer, the lake writer and the dashboard as child processes
(local.proc, local.child); inside the dashboard process the server and the feed are the
ServerService and FeedService here. ProducerService and WriterService run the same
components in a thread of the caller, for embedding and tests. Each wrapper: `__enter__`
starts it, `poll()` reports its failure, `__exit__` stops it in order.

The components know nothing of the supervisor; only these wrappers do. A service that
runs its component in a child process instead keeps the same three methods.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from acme_telemetry.local.feed import DashboardFeed
from acme_telemetry.local.hub import Hub
from acme_telemetry.local.producer import LocalProducer
from acme_telemetry.local.supervisor import ThreadService
from acme_telemetry.local.writer import LakeWriter

log = logging.getLogger(__name__)


class ProducerService(ThreadService):
    """Simulator -> Kafka. Stopping it flushes and closes the Kafka producer."""

    name = "producer"
    thread_name = "producer"

    def __init__(self, producer: LocalProducer) -> None:
        super().__init__()
        self.producer = producer
        self.stats = producer.stats
        self.finishes = producer.events is not None  # with --events N its work ends by itself

    def run(self, stop: threading.Event) -> None:
        self.producer.run(stop)


class WriterService(ThreadService):
    """Kafka -> lake (the Firehose stand-in). Stopping it writes and commits what it holds."""

    name = "lake writer"
    thread_name = "writer"

    def __init__(self, writer: LakeWriter) -> None:
        super().__init__()
        self.writer = writer

    def run(self, stop: threading.Event) -> None:
        self.writer.run(stop)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        super().__exit__(exc_type, exc, tb)
        log.info("writer: %s", self.writer.stats.as_dict())


class FeedService(ThreadService):
    """Kafka -> KPI windows -> hub. Ready once its partitions are positioned at the end.

    The producer starts after it, so the dashboard sees every event of the run. A feed
    that is not positioned within `start_timeout_s` only logs a warning, as the page is
    not worth holding the pipeline for; a feed that fails fails the run.
    """

    name = "dashboard feed"
    thread_name = "feed"
    start_timeout_s = 15.0
    ready_required = False
    catch_up_s = 15.0

    def __init__(self, feed: DashboardFeed) -> None:
        super().__init__(ready=feed.ready)
        self.feed = feed
        self._catch_up_to: dict[int, int] | None = None

    def run(self, stop: threading.Event) -> None:
        self.feed.run(stop)

    def catch_up_to(self, end_offsets: dict[int, int]) -> None:
        """Before it stops, let the feed read up to these offsets (partition -> next offset), so
        the dashboard sees every event of a finished run before its last windows close."""
        self._catch_up_to = dict(end_offsets)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        ends = self._catch_up_to
        thread = self._thread
        if ends and exc is None and thread is not None and thread.is_alive():
            deadline = time.monotonic() + self.catch_up_s
            while (
                time.monotonic() < deadline and self.error is None and any(self.feed.positions.get(p, 0) < end for p, end in ends.items())
            ):
                time.sleep(0.1)
        super().__exit__(exc_type, exc, tb)
        a = self.feed.aggregator
        log.info("feed: %d events, %d kpi windows, %d late, %d unparseable", a.events, a.windows_emitted, a.late, a.bad)


class ServerService(ThreadService):
    """The page, /config.json and the WebSocket (local.web) on their own asyncio loop.

    Ready once the port is bound (`url` is then set). Stopping it waits `linger_s` so the
    last kpi and feed frames reach connected pages, then closes the server.
    """

    name = "dashboard server"
    thread_name = "server"
    start_timeout_s = 15.0
    linger_s = 0.5

    def __init__(self, hub: Hub, *, host: str, port: int, static_dir: Path, page_config: dict[str, Any]) -> None:
        super().__init__(ready=threading.Event())
        self.hub = hub
        self.host = host
        self.port = port
        self.static_dir = static_dir
        self.page_config = page_config
        self.url: str | None = None

    def run(self, stop: threading.Event) -> None:
        asyncio.run(self._serve(stop))

    async def _serve(self, stop: threading.Event) -> None:
        from acme_telemetry.local import web

        server = await web.serve(self.hub, host=self.host, port=self.port, static_dir=self.static_dir, page_config=self.page_config)
        try:
            self.url = f"http://{self.host}:{self.port}/"
            assert self.ready is not None
            self.ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.1)
            await asyncio.sleep(self.linger_s)
        finally:
            server.close()
            await server.wait_closed()
