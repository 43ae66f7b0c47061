"""`local` on the wall clock, on the session broker: event time is UTC now, the page's KPI
windows are current, and a Ctrl-C and restart over the same state folder and lake continues
the stream (no duplicate event_id, the second run starts after the first run's last event)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from lake_read import lake_events
from localrun import folders, local, wait_for
from websockets.sync.client import connect

from acme_telemetry.local.broker import pick_port
from acme_telemetry.times import ms_of_iso

pytestmark = pytest.mark.integration
SEED = 1212  # no other test's stream: what this test's lake holds is this test's


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _local(broker, tmp_path: Path, port: int, *extra: str) -> subprocess.Popen:
    proc = local(
        "--bootstrap-servers",
        broker.bootstrap,
        "--seed",
        str(SEED),
        "--buffer-interval",
        "1",
        "--window",
        "5",
        "--port",
        str(port),
        *folders(tmp_path / "lake", tmp_path / "state"),
        *extra,
    )
    assert proc.stdout is not None
    if "--no-dashboard" in extra:
        return proc
    for line in proc.stdout:
        if line.startswith("dashboard: "):
            return proc
    raise AssertionError(f"no dashboard line: {proc.communicate(timeout=30)[1][-2000:]}")


def _events(lake: Path) -> list[dict]:
    return lake_events(lake) if lake.exists() else []


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    return err


def test_local_runs_on_the_wall_clock_and_a_restart_continues_without_duplicates(broker, tmp_path):
    lake, port = tmp_path / "lake", pick_port(None)
    t0 = _now_ms()
    first = _local(broker, tmp_path, port, "--rolling", "30")
    messages: list[dict] = []

    def listen() -> None:
        try:
            with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
                for raw in ws:
                    messages.append({**orjson.loads(raw), "_at": _now_ms()})
        except Exception:  # noqa: BLE001 - the server goes away at the stop
            pass

    threading.Thread(target=listen, daemon=True).start()
    wait_for(lambda: any(m["type"] == "kpi" for m in messages), 40, "a kpi window on the page")
    wait_for(lambda: len(_events(lake)) > 500, 30, "events in the lake")
    err = _stop(first)
    t1 = _now_ms()

    # The page: v2 hello with this run's heartbeat and rolling span; its windows are now.
    hello = messages[0]
    assert hello["type"] == "hello" and hello["heartbeat_ms"] == 10_000 and hello["rolling_seconds"] == 30
    for m in (m for m in messages if m["type"] == "kpi"):
        # a window closes 5 s + 2 s lateness after its start, or earlier (idle, or the stop)
        start = ms_of_iso(m["window_start"])
        assert start is not None and m["_at"] - 20_000 <= start <= m["_at"], (m["window_start"], m["_at"])
    # The lake: event time is the wall clock of the run (UTC now), at about 225 events/s.
    run1 = _events(lake)
    stamps1 = sorted(ms_of_iso(e["event_timestamp"]) for e in run1)
    assert t0 - 2_000 <= stamps1[0] and stamps1[-1] <= t1 + 1_000, (stamps1[0], stamps1[-1], t0, t1)
    assert datetime.fromtimestamp(stamps1[-1] / 1000).date() == datetime.fromtimestamp(t1 / 1000).date()
    assert "event time " in err  # the status line shows it
    saved = orjson.loads((tmp_path / "state" / "producer.json").read_bytes())
    assert saved["last_ts_ms"] == stamps1[-1], "the resume point is the last event produced (all are in the lake)"

    # Ctrl-C, then the same command again: the stream continues.
    second = _local(broker, tmp_path, pick_port(None), "--no-dashboard")
    wait_for(lambda: len(_events(lake)) > len(run1) + 300, 40, "the second run's events in the lake")
    _stop(second)
    everything = _events(lake)
    ids = [e["event_id"] for e in everything]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicate event_ids after a restart"
    first_ids = {e["event_id"] for e in run1}
    run2 = sorted(ms_of_iso(e["event_timestamp"]) for e in everything if e["event_id"] not in first_ids)
    assert run2 and run2[0] > stamps1[-1], "the second run starts after the first run's last event"
