"""`python -m acme_telemetry local` end to end on the session broker: the dashboard server
broadcasts KPI messages equal to acme_telemetry.kpis.compute on the same events, and
--events N exits 0 with all N events queryable."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from websockets.sync.client import connect

from acme_telemetry import kpis
from acme_telemetry.simulator import SimConfig, iter_records

from acme_telemetry.local.broker import pick_port
from lake_read import lake_events

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_local_events_n_feeds_the_dashboard_with_kpis_equal_to_the_kpi_module(broker, tmp_path):
    n, seed, port = 6000, 9, pick_port(None)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "acme_telemetry", "local", "--bootstrap-servers", broker.bootstrap,
         "--events", str(n), "--seed", str(seed), "--rate", "3000", "--window", "5", "--port", str(port),
         "--lake", str(tmp_path / "lake"), "--state-dir", str(tmp_path / "state"), "--buffer-interval", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    url = None
    for line in proc.stdout:  # the URL is printed before anything is produced
        if line.startswith("dashboard: "):
            url = line.split(": ", 1)[1].strip()
            break
    assert url == f"http://127.0.0.1:{port}/", url

    messages: list[dict] = []

    def listen():
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
            for raw in ws:
                messages.append(orjson.loads(raw))

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    out, err = proc.communicate(timeout=180)
    listener.join(15)
    assert proc.returncode == 0, err[-2000:]

    events = [orjson.loads(v) for _, v in iter_records(n, SimConfig(seed=seed))]
    # All N events are in the lake.
    assert {e["event_id"] for e in lake_events(tmp_path / "lake")} == {e["event_id"] for e in events}

    kpi = [m for m in messages if m["type"] == "kpi"]
    assert messages and messages[0]["type"] == "hello"
    assert kpi, f"no kpi messages among {collections.Counter(m['type'] for m in messages)}"
    starts = [m["window_start"] for m in kpi]
    assert len(starts) == len(set(starts)), "each window is sent once"
    covered = 0
    for m in kpi:
        ws, we = _ts(m["window_start"]), _ts(m["window_end"])
        expected = kpis.compute([e for e in events if ws <= _ts(e["event_timestamp"]) < we], ws, we)
        snapshot = {k: v for k, v in m.items() if k not in ("type", "v")}
        assert snapshot == expected, m["window_start"]
        covered += snapshot["overall"]["events"]
    assert covered == n, "the windows together hold every event exactly once"
    # Notable events reach the feed without PII.
    feeds = [m for m in messages if m["type"] == "feed"]
    if any(e["event_type"] == "error" for e in events):
        assert feeds and all("session_id" not in item for f in feeds for item in f["items"])


def test_local_events_n_flushes_once_all_are_read_instead_of_waiting_out_the_buffer(broker, tmp_path):
    """With --events N the writer flushes as on shutdown once it has read all N: a 900 s
    buffer interval (Firehose's maximum) must not keep the command running for 15 minutes."""
    n = 3000
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "acme_telemetry", "local", "--bootstrap-servers", broker.bootstrap,
         "--events", str(n), "--seed", "5", "--no-dashboard", "--buffer-interval", "900",
         "--lake", str(tmp_path / "lake"), "--state-dir", str(tmp_path / "state")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len({e["event_id"] for e in lake_events(tmp_path / "lake")}) == n
