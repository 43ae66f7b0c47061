"""Hub fan-out and the local dashboard server: behaviour over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from acme_telemetry.local.hub import Hub
from acme_telemetry.local.web import resolve_static, serve
from acme_telemetry.protocol import encode, feed_message, kpi_message


def kpi(end_minute: int, second: int = 0) -> bytes:
    snap = {
        "window_start": f"2026-11-26T15:{end_minute:02d}:{second:02d}Z",
        "window_end": f"2026-11-26T15:{end_minute:02d}:{second + 5:02d}Z",
        "overall": {"events": end_minute},
        "by": {},
    }
    return encode(kpi_message(snap))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>")
    (tmp_path / "app.js").write_text("console.log(1)")
    (tmp_path / ".hidden").write_text("secret")
    (tmp_path.parent / "outside.txt").write_text("outside")
    return tmp_path


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def http_get(port: int, path: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_static_files_config_and_security_headers(site: Path) -> None:
    async def main():
        hub = Hub(window_seconds=5)
        srv = await serve(hub, port=0, static_dir=site, page_config={"websocketUrl": "ws://x/ws", "windowSeconds": 5})
        port = srv.sockets[0].getsockname()[1]
        try:
            get = lambda p: asyncio.to_thread(http_get, port, p)  # noqa: E731
            status, headers, body = await get("/")
            assert status == 200 and body.startswith(b"<!doctype html>")
            assert headers["Content-Type"] == "text/html; charset=utf-8"
            assert "default-src 'self'" in headers["Content-Security-Policy"]
            assert headers["X-Content-Type-Options"] == "nosniff"
            status, headers, body = await get("/app.js")
            assert (status, headers["Content-Type"]) == (200, "text/javascript; charset=utf-8")
            status, headers, body = await get("/config.json")
            assert status == 200 and orjson.loads(body) == {"websocketUrl": "ws://x/ws", "windowSeconds": 5}
            for bad in ("/../outside.txt", "/%2e%2e/outside.txt", "/..%2foutside.txt", "/.hidden", "/nope.js", "/a%00.js"):
                status, _, body = await get(bad)
                assert status == 404, bad
                assert b"outside" not in body and b"secret" not in body
            status, _, _ = await get("/ws")
            assert status == 426
        finally:
            srv.close()
            await srv.wait_closed()

    run(main())


def test_resolve_static_refuses_escape(site: Path) -> None:
    assert resolve_static(site, "/") == (site / "index.html").resolve()
    assert resolve_static(site, "/../outside.txt") is None
    assert resolve_static(site, "/sub/../../outside.txt") is None
    assert resolve_static(site, "/..\\outside.txt") is None


def test_unbuilt_page_says_how_to_build(tmp_path: Path) -> None:
    async def main():
        srv = await serve(Hub(), port=0, static_dir=tmp_path / "missing")
        port = srv.sockets[0].getsockname()[1]
        try:
            status, _, body = await asyncio.to_thread(http_get, port, "/")
            assert status == 503 and b"node dashboard/build.mjs" in body
        finally:
            srv.close()
            await srv.wait_closed()

    run(main())


def test_new_client_gets_hello_retained_kpis_latest_feed_then_live(site: Path) -> None:
    async def main():
        hub = Hub(window_seconds=5, retain_seconds=15 * 60)
        for minute in (0, 10, 20, 30):  # 15:00 and 15:10 fall out of 15 minutes before 15:30
            hub.publish(kpi(minute), "kpi")
        hub.publish(encode(feed_message([{"event_type": "error", "error_code": "E1"}])), "feed")
        hub.publish(encode(feed_message([{"event_type": "error", "error_code": "E2"}])), "feed")
        srv = await serve(hub, port=0, static_dir=site)
        port = srv.sockets[0].getsockname()[1]
        try:
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                got = [orjson.loads(await ws.recv()) for _ in range(4)]
                assert [m["type"] for m in got] == ["hello", "kpi", "kpi", "feed"]
                assert got[0]["window_seconds"] == 5
                assert [m["overall"]["events"] for m in got[1:3]] == [20, 30]
                assert got[3]["items"] == [{"event_type": "error", "error_code": "E2"}]
                # a publish from another thread reaches the client
                t = threading.Thread(target=hub.publish_threadsafe, args=(kpi(31), "kpi"))
                t.start()
                t.join()
                live = orjson.loads(await ws.recv())
                assert live["overall"]["events"] == 31
        finally:
            srv.close()
            await srv.wait_closed()

    run(main())


def test_cross_origin_websocket_refused(site: Path) -> None:
    async def main():
        srv = await serve(Hub(), port=0, static_dir=site)
        port = srv.sockets[0].getsockname()[1]
        try:
            with pytest.raises(InvalidStatus) as exc:
                async with connect(f"ws://127.0.0.1:{port}/ws", origin="http://evil.example"):
                    pass
            assert exc.value.response.status_code == 403
            async with connect(f"ws://127.0.0.1:{port}/ws", origin=f"http://127.0.0.1:{port}") as ws:
                assert orjson.loads(await ws.recv())["type"] == "hello"
        finally:
            srv.close()
            await srv.wait_closed()

    run(main())


class StuckSocket:
    """A client whose socket never accepts a frame (a dead peer with full buffers)."""

    def __init__(self) -> None:
        self.aborted = False
        self.transport = self

    def abort(self) -> None:
        self.aborted = True

    async def send(self, data, text=None) -> None:
        await asyncio.Event().wait()


class RecordingSocket:
    def __init__(self) -> None:
        self.got: list[bytes] = []

    async def send(self, data, text=None) -> None:
        assert text is True
        self.got.append(data)


def test_dead_client_is_disconnected_and_never_delays_others() -> None:
    async def main():
        hub = Hub(queue_size=4, send_timeout=0.3)
        dead, live = StuckSocket(), RecordingSocket()
        hub.register(dead)
        hub.register(live)
        await asyncio.sleep(0.01)
        for minute in range(20):
            hub.publish(kpi(minute), "kpi")
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        # the live client got everything, in order, while the dead one held at most 4
        assert [orjson.loads(d)["overall"]["events"] for d in live.got[1:] if b'"kpi"' in d][-20:] == list(range(20))
        assert hub.stats()["max_queued"] <= 4
        assert hub.dropped >= 15
        await asyncio.sleep(0.5)
        assert dead.aborted and hub.disconnected_slow == 1
        assert hub.clients == 1

    run(main())


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="queue_size"):
        Hub(queue_size=0)
    with pytest.raises(ValueError, match="window_seconds"):
        Hub(window_seconds=0)
