"""The dashboard fan-out core: one published message reaches every connected page.

A Hub owns the set of connected WebSocket clients. Producers call `publish(data, kind)`
from the event loop, or `publish_threadsafe(data, kind)` from another thread (the Kafka
KPI consumer runs in one). `data` is an already encoded protocol message
(acme_telemetry.protocol.encode), sent as a text frame.

Guarantees:
- A slow or dead client never delays the others: `publish` only appends a reference to
  each client's bounded queue and wakes its sender task; it never awaits a socket.
- Memory stays bounded: a client's queue holds at most `queue_size` messages (the oldest
  are dropped, the page tolerates missed windows), queues share the same bytes objects,
  and a client whose socket has not accepted a frame for `send_timeout` seconds is
  disconnected.
- A newly connected page gets `hello`, then the `kpi` messages of the last
  `retain_seconds` (by window_end, so a replayed or accelerated stream keeps the right
  span; every part of a window is kept), then the latest `feed`, then live messages, in
  order.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from acme_telemetry.protocol import encode, hello_message
from acme_telemetry.times import parse_datetime

log = logging.getLogger(__name__)

KIND_KPI = "kpi"
KIND_FEED = "feed"


@dataclass(eq=False)
class Client:
    """One connected page: its socket, its bounded queue and what it lost."""

    ws: Any
    queue: deque[bytes] = field(default_factory=deque)
    replay: list[bytes] = field(default_factory=list)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    dropped: int = 0
    sent: int = 0
    closed_reason: str | None = None


class Hub:
    """Fan-out of encoded protocol messages to WebSocket clients (see module doc)."""

    def __init__(
        self,
        *,
        window_seconds: float = 5.0,
        server: str = "acme-telemetry-local",
        retain_seconds: float = 15 * 60,
        max_retained: int = 2000,
        queue_size: int = 32,
        send_timeout: float = 10.0,
        heartbeat_ms: int = 10_000,
        rolling_seconds: float = 60.0,
    ) -> None:
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds!r}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size!r}")
        if send_timeout <= 0:
            raise ValueError(f"send_timeout must be > 0, got {send_timeout!r}")
        if rolling_seconds < window_seconds:
            raise ValueError(f"rolling_seconds must be at least window_seconds ({window_seconds}), got {rolling_seconds!r}")
        self.window_seconds = window_seconds
        self.heartbeat_ms = heartbeat_ms
        self.rolling_seconds = rolling_seconds
        self.server = server
        self.retain = timedelta(seconds=retain_seconds)
        self.queue_size = queue_size
        self.send_timeout = send_timeout
        self.hello = encode(hello_message(server, window_seconds, heartbeat_ms=heartbeat_ms, rolling_seconds=rolling_seconds))
        self.loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[Any, Client] = {}
        # (window_end or None, data) of recent kpi messages, oldest first.
        self._kpis: deque[tuple[datetime | None, bytes]] = deque(maxlen=max_retained)
        self._feed: bytes | None = None
        self._lock = threading.Lock()  # guards _kpis/_feed against publish_threadsafe before a loop exists
        self.published = 0
        self.dropped = 0
        self.disconnected_slow = 0

    # ---- producers -------------------------------------------------------------------

    def bind(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Attach the hub to the event loop that runs the WebSocket server."""
        self.loop = loop or asyncio.get_running_loop()

    def publish(self, data: bytes, kind: str) -> None:
        """Retain (kpi, feed) and queue `data` for every client. Call on the event loop."""
        self._retain(data, kind)
        self.published += 1
        for client in self._clients.values():
            self._enqueue(client, data)

    def publish_threadsafe(self, data: bytes, kind: str) -> None:
        """`publish` from any thread. Before the server runs, the message is only retained."""
        loop = self.loop
        if loop is None or loop.is_closed():
            self._retain(data, kind)
            return
        try:
            loop.call_soon_threadsafe(self.publish, data, kind)
        except RuntimeError:  # loop closed between the check and the call
            self._retain(data, kind)

    def publish_message(self, message: dict[str, Any]) -> None:
        """Encode (PII and size checked) and publish a protocol message dict."""
        self.publish(encode(message), str(message["type"]))

    def _retain(self, data: bytes, kind: str) -> None:
        with self._lock:
            if kind == KIND_FEED:
                self._feed = data
            elif kind == KIND_KPI:
                end = None
                try:
                    end = parse_datetime(orjson.loads(data).get("window_end"))
                except (orjson.JSONDecodeError, AttributeError):
                    log.warning("kpi message is not a JSON object; retained by count only")
                self._kpis.append((end, data))
                newest = max((e for e, _ in self._kpis if e is not None), default=None)
                if newest is not None:
                    horizon = newest - self.retain
                    while self._kpis and self._kpis[0][0] is not None and self._kpis[0][0] <= horizon:
                        self._kpis.popleft()

    def retained(self) -> list[bytes]:
        """What a newly connected client is sent before live messages."""
        with self._lock:
            out = [self.hello] + [d for _, d in self._kpis]
            if self._feed is not None:
                out.append(self._feed)
            return out

    # ---- clients ---------------------------------------------------------------------

    def register(self, ws: Any) -> Client:
        """Start sending to `ws`: the replay first, then live messages. Call on the loop."""
        if self.loop is None:
            self.bind()
        client = Client(ws=ws, queue=deque(), replay=self.retained())
        self._clients[ws] = client
        client.task = asyncio.get_running_loop().create_task(self._sender(client))
        return client

    def unregister(self, ws: Any) -> None:
        client = self._clients.pop(ws, None)
        if client is not None and client.task is not None and client.task is not asyncio.current_task():
            client.task.cancel()

    async def handle(self, ws: Any) -> None:
        """Serve one WebSocket connection until it closes (incoming messages are ignored)."""
        self.register(ws)
        try:
            async for _ in ws:
                pass
        except Exception:  # ConnectionClosedError and friends: the client is gone either way
            pass
        finally:
            self.unregister(ws)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def stats(self) -> dict[str, int]:
        queued = [len(c.queue) for c in self._clients.values()]
        buffered = []
        for c in self._clients.values():
            transport = getattr(c.ws, "transport", None)
            if transport is not None and hasattr(transport, "get_write_buffer_size"):
                buffered.append(transport.get_write_buffer_size())
        return {
            "clients": len(self._clients),
            "published": self.published,
            "dropped": self.dropped,
            "disconnected_slow": self.disconnected_slow,
            "retained_kpis": len(self._kpis),
            "max_queued": max(queued, default=0),
            "queued_total": sum(queued),
            "max_buffered_bytes": max(buffered, default=0),  # in the socket's user-space write buffer
        }

    def _enqueue(self, client: Client, data: bytes) -> None:
        if len(client.queue) >= self.queue_size:
            client.queue.popleft()
            client.dropped += 1
            self.dropped += 1
        client.queue.append(data)
        client.wakeup.set()

    async def _sender(self, client: Client) -> None:
        ws = client.ws
        try:
            for data in client.replay:
                if not await self._send(client, data):
                    return
            client.replay = []
            while True:
                while client.queue:
                    if not await self._send(client, client.queue.popleft()):
                        return
                client.wakeup.clear()
                await client.wakeup.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the socket closed under us: stop quietly, the handler unregisters
            client.closed_reason = f"{type(exc).__name__}: {exc}"
        finally:
            client.queue.clear()
            client.replay = []
            if client.closed_reason is not None:
                self._clients.pop(ws, None)

    async def _send(self, client: Client, data: bytes) -> bool:
        try:
            async with asyncio.timeout(self.send_timeout):
                await client.ws.send(data, text=True)
        except TimeoutError:
            # The socket has accepted nothing for send_timeout: a dead or stuck client.
            self.disconnected_slow += 1
            client.closed_reason = f"no progress for {self.send_timeout}s"
            log.info("dashboard client disconnected: %s", client.closed_reason)
            transport = getattr(client.ws, "transport", None)
            if transport is not None:
                transport.abort()
            return False
        client.sent += 1
        return True
