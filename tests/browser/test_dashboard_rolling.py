"""The page's rolling tiles and an incident, in Debian's headless Chromium (issue 12).

The local web server and hub (acme_telemetry.local.web / hub) serve the built page; the
feed's KpiAggregator turns a seeded simulator stream with an injected CDN outage into v2
`kpi` messages, window by window, as the pipeline does (no broker needed: what is under
test is the page and the KPI engine). The test checks that:
- the headline tiles are the rolling 60 s and equal acme_telemetry.kpis over the same
  events (the page merges the windows' states with the same maths and the same sketch);
- the breakdown by CDN and the notable-event feed show the affected slice degrade during
  the outage, and recover after it;
- the header shows the current UTC time.
A screenshot during the incident is kept at artifacts/browser/dashboard-incident.png.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from acme_telemetry import kpis
from acme_telemetry.local.broker import pick_port
from acme_telemetry.local.feed import KpiAggregator
from acme_telemetry.local.hub import Hub
from acme_telemetry.local.web import serve
from acme_telemetry.simulator import SimConfig, iter_window, parse_incident
from acme_telemetry.times import parse_iso_ms, to_ms
from tests.browser.test_dashboard_browser import ARTIFACTS, CHROMIUM, TILE_KEYS, Driver, built_page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

A = datetime(2026, 12, 1, 6, 50, tzinfo=UTC)
A_MS = to_ms(A)
INCIDENT = parse_incident("cdn=fastly,at=+4m,for=3m,kind=outage", A_MS)

READ = """(() => {
  const w = document.querySelector('[data-testid=window]');
  const tiles = {}, samples = {};
  for (const t of document.querySelectorAll('[data-testid^=tile-]')) { tiles[t.dataset.testid.slice(5)] = t.dataset.value; samples[t.dataset.testid.slice(5)] = t.dataset.enough; }
  const cdn = {};
  for (const tr of document.querySelectorAll('[data-testid=by-cdn] tbody tr'))
    cdn[tr.dataset.key] = { cells: [...tr.querySelectorAll('td')].map((td) => td.dataset.value), alert: tr.classList.contains('alert') };
  const feed = [...document.querySelectorAll('[data-testid=feed] li')].map((li) => [li.dataset.eventType, li.dataset.slice || '']);
  return { start: w.dataset.windowStart, end: w.dataset.windowEnd, span: Number(w.dataset.spanMs), tiles, samples, cdn, feed,
           clock: document.querySelector('[data-testid=clock]').textContent,
           windows: Number(document.querySelector('[data-testid=tiles]').dataset.rollingWindows || 0) };
})()"""


class Server:
    """The local web server and hub on their own event loop thread."""

    def __init__(self, static_dir: Path) -> None:
        self.port = pick_port(None)
        self.loop = asyncio.new_event_loop()
        self.hub = Hub(window_seconds=5, rolling_seconds=60, heartbeat_ms=10_000)
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(serve(self.hub, port=self.port, static_dir=static_dir))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def stream():
    cfg = SimConfig(seed=8, concurrent_viewers=1500, incidents=(INCIDENT,))
    return [orjson.loads(v) for _, v in iter_window(cfg, A, A + timedelta(minutes=10))]


def _expected(events, page) -> dict:
    a, b = parse_iso_ms(page["start"]), parse_iso_ms(page["end"])
    assert page["span"] == b - a == 60_000 and page["windows"] == 12
    return kpis.WindowState(a, b, 10_000).add_all(e for e in events if a <= parse_iso_ms(e["event_timestamp"]) < b).report()


def _num(raw: str) -> float | None:
    return None if raw in ("", None) else float(raw)


def _assert_tiles_equal_kpis(page, exp) -> None:
    o = exp["overall"]
    for k in TILE_KEYS:
        got = _num(page["tiles"][k])
        if o[k] is None:
            assert got is None, k
        else:  # JS rounds half away from zero, Python half to even: one unit of the last digit
            assert got == pytest.approx(
                o[k], abs=0.11 if k in ("concurrent_viewers", "startup_time_ms_p50", "startup_time_ms_p95", "avg_bitrate_kbps") else 0.011
            ), k
    assert page["samples"]["startup_time_ms_p95"] == ("true" if o["startup_samples"] >= kpis.MIN_SAMPLES else "false")
    for cdn, row in page["cdn"].items():
        k = exp["by"]["cdn"][cdn]
        assert _num(row["cells"][0]) == pytest.approx(k["concurrent_viewers"], abs=0.11)
        assert _num(row["cells"][1]) == k["play_attempts"]


def test_rolling_tiles_equal_kpis_and_an_outage_degrades_and_recovers(built_page, stream):  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    server = Server(built_page)
    driver = None
    clock = [0.0]
    agg = KpiAggregator(
        server.hub.publish_threadsafe, window_s=5, lateness_s=0, idle_flush_s=1e9, heartbeat_ms=10_000, now=lambda: clock[0]
    )
    agg.expect_partitions([0])
    feed_pos = [0]

    def publish_until(t_ms: int) -> None:
        while feed_pos[0] < len(stream) and parse_iso_ms(stream[feed_pos[0]]["event_timestamp"]) < t_ms:
            agg.add(stream[feed_pos[0]], 0)
            feed_pos[0] += 1
        clock[0] += 10
        agg.tick()

    def page_at(t_ms: int) -> dict:
        publish_until(t_ms + 500)  # events past t_ms move the watermark past the window ending at t_ms
        end = datetime.fromtimestamp(t_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        driver.wait_for(f"document.querySelector('[data-testid=window]').dataset.windowEnd === '{end}'", 20)
        time.sleep(0.3)
        page = driver.call("eval", js=READ)
        page["feed"] = [tuple(x) for x in page["feed"]]
        return page

    try:
        driver = Driver()
        driver.call("open", url=f"http://127.0.0.1:{server.port}/")
        driver.wait_for("document.querySelector('[data-testid=connection]').dataset.state === 'open'", 10)
        # before: 3 minutes in (the first minute fills the rolling span)
        before = page_at(A_MS + 180_000)
        exp = _expected(stream, before)
        _assert_tiles_equal_kpis(before, exp)
        assert 1300 < exp["overall"]["concurrent_viewers"] < 1700
        assert not before["cdn"]["fastly"]["alert"] and ("alert", "cdn=fastly") not in before["feed"]
        now_utc = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
        assert before["clock"].startswith(now_utc[:15]) and before["clock"].endswith("UTC"), before["clock"]

        # during: 2 minutes into the outage of cdn=fastly
        during = page_at(INCIDENT.start_ms + 120_000)
        exp = _expected(stream, during)
        _assert_tiles_equal_kpis(during, exp)
        fastly = exp["by"]["cdn"]["fastly"]
        assert fastly["video_start_failure_pct"] > 40 > exp["by"]["cdn"]["akamai"]["video_start_failure_pct"]
        assert during["cdn"]["fastly"]["alert"] and not during["cdn"]["akamai"]["alert"]
        assert ("alert", "cdn=fastly") in during["feed"]
        # only the affected slice alerts, not the ISPs or states its sessions are spread over
        assert {s for kind, s in during["feed"] if kind == "alert"} <= {"cdn=fastly"}, during["feed"]
        shot = ARTIFACTS / "dashboard-incident.png"
        driver.call("screenshot", path=str(shot))
        print(f"screenshot during the incident: {shot}")

        # after: 2 minutes after it ended, the slice has recovered
        after = page_at(INCIDENT.end_ms + 120_000)
        exp = _expected(stream, after)
        _assert_tiles_equal_kpis(after, exp)
        assert not after["cdn"]["fastly"]["alert"]
        assert ("recovered", "cdn=fastly") in after["feed"]
        assert exp["by"]["cdn"]["fastly"]["video_start_failure_pct"] < 15
        driver.call("screenshot", path=str(ARTIFACTS / "dashboard-after-incident.png"))

        report = driver.call("errors")
        assert [p for p in report["problems"] if "WebSocket connection to" not in p] == []
    finally:
        if driver is not None:
            driver.close()
        server.close()


def test_the_page_still_reads_a_v1_message(built_page):  # noqa: F811
    """During a rolling deploy an old consumer may still send v1 (derived figures per window)."""
    server = Server(built_page)
    driver = None
    try:
        driver = Driver()
        driver.call("open", url=f"http://127.0.0.1:{server.port}/")
        driver.wait_for("document.querySelector('[data-testid=connection]').dataset.state === 'open'", 10)
        v1 = {
            "type": "kpi",
            "v": 1,
            "window_start": "2026-12-01T06:50:00Z",
            "window_end": "2026-12-01T06:50:05Z",
            "overall": {
                "events": 812,
                "concurrent_viewers": 196,
                "play_attempts": 14,
                "video_start_failure_pct": 7.14,
                "exits_before_video_start_pct": 0.0,
                "startup_time_ms_p50": 1034.0,
                "startup_time_ms_p95": 2876.0,
                "rebuffer_ratio": 0.0123,
                "avg_bitrate_kbps": 4312.1,
                "quality_share": {"HD": 0.4, "FHD": 0.6},
            },
            "by": {"device_type": {"tv": {"concurrent_viewers": 50, "play_attempts": 3}}},
        }
        server.loop.call_soon_threadsafe(server.hub.publish, orjson.dumps(v1), "kpi")
        driver.wait_for("document.querySelector('[data-testid=tile-concurrent_viewers]').dataset.value === '196'", 10)
        assert driver.call("eval", js="document.querySelector('[data-testid=tile-play_attempts_per_min]').dataset.value") == "168"
        assert driver.call("eval", js="document.querySelectorAll('[data-testid=by-device_type] tbody tr').length") == 1
        assert [p for p in driver.call("errors")["problems"] if "WebSocket connection to" not in p] == []
    finally:
        if driver is not None:
            driver.close()
        server.close()
