"""The dashboard in Debian's headless Chromium against the real local pipeline.

The test starts `python -m acme_telemetry local` (embedded Kafka broker, producer, lake
writer, KPI feed, web server) on free 127.0.0.1 ports and drives Chromium with
playwright-core (tests/browser/driver.mjs). It checks that:
- the page connects and the tiles fill within a few seconds of the first events;
- the rolling tiles shown equal acme_telemetry.kpis over the same events (the span the
  page merged, regenerated from the seed: the simulator is deterministic, and the pipeline
  carries its output);
- the page reconnects by itself after the server restarts, and shows the new run;
- it loads nothing but its own origin, and throws no script errors.
A full-page screenshot is kept in artifacts/browser/ (ignored by git, kept by CI).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from acme_telemetry.local.broker import pick_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "browser" / "driver.mjs"
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WINDOW_S = 5
RATE = 400  # events/s: simulated time runs faster than the wall clock, so windows close every ~second
RUNS = [  # (seed, simulated start) of the first run and of the run after the restart
    (11, "2026-11-26T15:00:00Z"),
    (12, "2026-11-26T18:00:00Z"),
]
TILE_KEYS = (
    "concurrent_viewers",
    "play_attempts_per_min",
    "video_start_failure_pct",
    "exits_before_video_start_pct",
    "startup_time_ms_p50",
    "startup_time_ms_p95",
    "rebuffer_ratio",
    "avg_bitrate_kbps",
)


def _two_ports() -> tuple[int, int]:
    first = pick_port(None)
    return first, pick_port(None, avoid={first})


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(UTC)


class Driver:
    """tests/browser/driver.mjs: one JSON command per line in, one JSON reply per line out."""

    def __init__(self) -> None:
        node = shutil.which("node")
        assert node, "node is not on PATH (source scripts/env.sh)"
        self.proc = subprocess.Popen(
            [node, str(DRIVER)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CHROMIUM": CHROMIUM},
        )
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.replies.put(line)
        self.replies.put(None)

    def call(self, cmd: str, wait: float = 30, **args):
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        try:
            line = self.replies.get(timeout=wait)
        except queue.Empty:
            raise AssertionError(f"driver gave no answer to {cmd} in {wait} s") from None
        if line is None:
            raise AssertionError(f"driver exited: {self.proc.stderr.read()[-2000:]}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise AssertionError(f"{cmd} {args}: {reply['error']}")
        return reply.get("value")

    def wait_for(self, js: str, timeout_s: float):
        return self.call("waitFor", wait=timeout_s + 10, js=js, timeout=int(timeout_s * 1000))

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("close", wait=15)
            except AssertionError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class LocalPipeline:
    """`python -m acme_telemetry local` as a user runs it, on the test's ports and folders."""

    def __init__(self, state: Path, port: int, kafka_port: int) -> None:
        self.state, self.port, self.kafka_port = state, port, kafka_port
        self.proc: subprocess.Popen | None = None

    def start(self, seed: int, start: str) -> str:
        self.log = open(self.state / f"local-{seed}.err", "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "acme_telemetry",
                "local",
                "--seed",
                str(seed),
                "--start",
                start,
                "--viewers",
                "200",
                "--rate",
                str(RATE),
                "--window",
                str(WINDOW_S),
                "--port",
                str(self.port),
                "--kafka-port",
                str(self.kafka_port),
                "--state-dir",
                str(self.state),
                "--lake",
                str(self.state / "lake"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + 120
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.proc.stdout], daemon=True).start()
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert self.proc.poll() is None, f"local exited {self.proc.returncode}: {self._err()}"
                continue
            if line.startswith("dashboard: "):
                url = line.split(" ", 1)[1].strip()
                assert url == f"http://127.0.0.1:{self.port}/", url
                return url
        raise AssertionError(f"local printed no dashboard URL in 120 s: {self._err()}")

    def _err(self) -> str:
        self.log.flush()
        return (self.state / Path(self.log.name).name).read_text()[-3000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()


def expected_snapshot(seed: int, start: str, window_start: str, window_end: str, span_ms: int | None = None) -> dict:
    """acme_telemetry.kpis over the span's events, regenerated from the seed (span_ms: the
    time the page's merged windows cover, less than end - start if a window was missed)."""
    import orjson

    from acme_telemetry import kpis
    from acme_telemetry.simulator import SimConfig, iter_records

    ws, we = _parse(window_start), _parse(window_end)
    events = []
    for _, value in iter_records(10**9, SimConfig(seed=seed, start=_parse(start))):
        event = orjson.loads(value)
        t = _parse(event["event_timestamp"])
        if t >= we:
            break  # iter_records is in time order
        if t >= ws:
            events.append(event)
    assert events, f"no simulated events in [{window_start}, {window_end})"
    state = kpis.WindowState.of(ws, we).add_all(events)
    if span_ms:
        state.span_ms = span_ms
    return state.report()


READ_PAGE = """(() => {
  const w = document.querySelector('[data-testid=window]');
  const tiles = {};
  for (const t of document.querySelectorAll('[data-testid^=tile-]')) tiles[t.dataset.testid.slice(5)] = t.dataset.value;
  const devices = {};
  for (const tr of document.querySelectorAll('[data-testid=by-device_type] tbody tr'))
    devices[tr.dataset.key] = [...tr.querySelectorAll('td')].map((td) => td.dataset.value);
  const quality = {};
  for (const s of document.querySelectorAll('[data-testid=quality-share] .seg')) quality[s.dataset.quality] = s.dataset.value;
  return { start: w.dataset.windowStart, end: w.dataset.windowEnd, span: Number(w.dataset.spanMs || 0), tiles, devices, quality,
           feed: document.querySelectorAll('[data-testid=feed] li').length,
           points: Number(document.querySelector('[data-testid=charts]').dataset.points || 0) };
})()"""


def _num(raw: str) -> float | None:
    return None if raw == "" else float(raw)


def assert_page_equals_kpis(page: dict, seed: int, start: str) -> dict:
    exp = expected_snapshot(seed, start, page["start"], page["end"], page["span"])
    assert (exp["window_start"], exp["window_end"]) == (page["start"], page["end"])
    o = exp["overall"]
    got = {k: _num(page["tiles"][k]) for k in TILE_KEYS}
    # JS rounds half away from zero, Python half to even: one unit in the last digit
    assert got == {k: pytest.approx(o[k], abs=0.11) if o[k] is not None else None for k in TILE_KEYS}, f"{page['start']}..{page['end']}"
    by_device = exp["by"]["device_type"]
    assert set(page["devices"]) == set(by_device)
    for device, cells in page["devices"].items():
        k = by_device[device]
        want = [
            k["concurrent_viewers"],
            k["play_attempts"],
            k["video_start_failure_pct"],
            k["rebuffer_ratio"],
            k["playback_failures"],
            k["avg_bitrate_kbps"],
        ]
        assert [_num(c) for c in cells] == [pytest.approx(v, abs=0.11) if v is not None else None for v in want], device
    assert {q: float(v) for q, v in page["quality"].items()} == {q: v for q, v in o["quality_share"].items() if v >= 0}
    return exp


@pytest.fixture(scope="module")
def built_page() -> Path:
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/setup does)"
    subprocess.run([shutil.which("node") or "node", str(ROOT / "dashboard" / "build.mjs")], cwd=ROOT, check=True)
    return ROOT / "dashboard" / "dist"


def test_dashboard_live_in_chromium(built_page: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pipeline = LocalPipeline(tmp_path, *_two_ports())
    driver = None
    try:
        (seed, start) = RUNS[0]
        url = pipeline.start(seed, start)
        t0 = time.monotonic()  # the URL is printed: a user could open it now
        driver = Driver()
        driver.call("open", url=url)
        driver.wait_for("document.querySelector('[data-testid=connection]').dataset.state === 'open'", 10)
        connected_s = time.monotonic() - t0
        # tiles fill once the first KPI window closes (the producer starts with the server)
        driver.wait_for("document.querySelector('[data-testid=tile-concurrent_viewers]').dataset.value !== ''", 20)
        filled_s = time.monotonic() - t0
        # let a few windows arrive so the window shown has some history and trend
        # (messages count the late parts of a window too: wait for six windows, not six messages)
        driver.wait_for(
            "Number(document.querySelector('[data-testid=tiles]').dataset.kpiMessages) >= 6"
            " && Number(document.querySelector('[data-testid=charts]').dataset.points || 0) >= 6",
            30,
        )
        page = driver.call("eval", js=READ_PAGE)
        exp = assert_page_equals_kpis(page, seed, start)
        assert exp["overall"]["concurrent_viewers"] > 0 and page["points"] >= 6
        driver.call("screenshot", path=str(ARTIFACTS / "dashboard.png"))
        print(f"after the URL was printed: connected {connected_s:.1f} s, tiles filled {filled_s:.1f} s; window {page['start']}")

        # the server goes away: the page notices and retries with backoff
        pipeline.stop()
        driver.wait_for("document.querySelector('[data-testid=connection]').dataset.state !== 'open'", 10)
        (seed, start) = RUNS[1]
        pipeline.start(seed, start)
        t1 = time.monotonic()
        driver.wait_for(
            "document.querySelector('[data-testid=connection]').dataset.connects === '2'"
            " && document.querySelector('[data-testid=connection]').dataset.state === 'open'",
            30,
        )
        reconnect_s = time.monotonic() - t1
        # the new run's windows (3 h later in simulated time) replace the old ones
        driver.wait_for(f"document.querySelector('[data-testid=window]').dataset.windowStart >= '{start}'", 30)
        driver.wait_for("Number(document.querySelector('[data-testid=charts]').dataset.points) >= 3", 30)
        page = driver.call("eval", js=READ_PAGE)
        assert_page_equals_kpis(page, seed, start)
        driver.call("screenshot", path=str(ARTIFACTS / "dashboard-after-restart.png"))
        print(f"reconnected {reconnect_s:.1f} s after the server came back; window {page['start']}")

        report = driver.call("errors")
        origin = url.rstrip("/")
        assert [r for r in report["requests"] if not r.startswith(origin + "/") and not r.startswith("ws://127.0.0.1")] == []
        # a refused WebSocket while the server is down is logged by Chromium itself; nothing else may be
        problems = [p for p in report["problems"] if "WebSocket connection to" not in p]
        assert problems == []
    except AssertionError as exc:
        alive = pipeline.proc is not None and pipeline.proc.poll() is None
        raise AssertionError(f"{exc}\n--- local pipeline ({'running' if alive else 'exited'}) stderr tail ---\n{pipeline._err()}") from None
    finally:
        if driver is not None:
            driver.close()
        pipeline.stop()
