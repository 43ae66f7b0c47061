"""`python -m acme_telemetry local` end to end on the session broker: the dashboard server
broadcasts KPI messages equal to acme_telemetry.kpis.compute on the same events, and
--events N exits 0 with all N events queryable."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from lake_read import lake_events
from localrun import ENV, ROOT, folders, local, wait_for
from websockets.sync.client import connect

from acme_telemetry import kpis
from acme_telemetry.local.broker import pick_port
from acme_telemetry.simulator import SimConfig, iter_records

pytestmark = pytest.mark.integration


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_local_events_n_feeds_the_dashboard_with_kpis_equal_to_the_kpi_module(broker, tmp_path):
    n, seed, port, start = 6000, 9, pick_port(None), "2026-11-26T15:00:00Z"
    proc = local(
        "--bootstrap-servers",
        broker.bootstrap,
        "--events",
        str(n),
        "--seed",
        str(seed),
        "--start",
        start,
        "--rate",
        "3000",
        "--window",
        "5",
        "--port",
        str(port),
        *folders(tmp_path / "lake", tmp_path / "state"),
        "--buffer-interval",
        "1",
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
    log_text = (tmp_path / "state" / "logs" / "local.log").read_text()
    for role in ("producer", "writer", "dashboard"):  # each child says which malloc it got (local.proc)
        assert f"the {role} starts; malloc: mimalloc" in log_text, role

    # All N events, exactly the seed's stream from --start, are in the lake.
    events = lake_events(tmp_path / "lake")
    expected_ids = {orjson.loads(v)["event_id"] for _, v in iter_records(n, SimConfig(seed=seed, start=_ts(start)))}
    assert len(events) == n and {e["event_id"] for e in events} == expected_ids

    kpi = [m for m in messages if m["type"] == "kpi"]
    assert messages and messages[0]["type"] == "hello" and messages[0]["v"] == 2
    assert kpi, f"no kpi messages among {collections.Counter(m['type'] for m in messages)}"
    # Protocol v2: a window's state may come in parts (late events, slice-disjoint pieces);
    # the page merges the parts of a window key, a repeated part id replacing the earlier one.
    parts: dict[tuple[str, str], dict[str | None, dict]] = {}
    for m in kpi:
        key = (m["window_start"], m["window_end"])
        assert m.get("part") not in parts.get(key, {}), f"part {m.get('part')} of {key} sent twice"
        parts.setdefault(key, {})[m.get("part")] = m
    covered = 0
    for (ws_iso, we_iso), by_part in sorted(parts.items()):
        ws, we = _ts(ws_iso), _ts(we_iso)
        merged = kpis.WindowState.of(ws, we)
        for m in by_part.values():
            merged.merge(kpis.WindowState.from_wire(m))
        expected = kpis.WindowState.of(ws, we).add_all(e for e in events if ws <= _ts(e["event_timestamp"]) < we)
        assert merged.wire() == expected.wire(), ws_iso
        covered += merged.overall.events
    assert covered == n, "the windows together hold every event of the lake exactly once"
    # Notable events reach the feed without PII.
    feeds = [m for m in messages if m["type"] == "feed"]
    if any(e["event_type"] == "error" for e in events):
        assert feeds and all("session_id" not in item for f in feeds for item in f["items"])


def test_local_events_n_flushes_once_all_are_read_instead_of_waiting_out_the_buffer(broker, tmp_path):
    """With --events N the writer flushes as on shutdown once it has read all N: a 900 s
    buffer interval (Firehose's maximum) must not keep the command running for 15 minutes."""
    n = 3000
    env = ENV
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "acme_telemetry",
            "local",
            "--bootstrap-servers",
            broker.bootstrap,
            "--events",
            str(n),
            "--seed",
            "5",
            "--no-dashboard",
            "--buffer-interval",
            "900",
            *folders(tmp_path / "lake", tmp_path / "state"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len({e["event_id"] for e in lake_events(tmp_path / "lake")}) == n


def _lake_ids(lake: Path) -> list[str]:
    return [e["event_id"] for e in lake_events(lake)] if lake.exists() else []


def _produced(log: Path) -> int:
    """N from the producer's last log line, 'producer stopped: N produced'."""
    lines = [ln for ln in log.read_text().splitlines() if "producer stopped: " in ln]
    assert lines, "the producer never logged its stop"
    return int(lines[-1].rsplit("producer stopped: ", 1)[1].split()[0])


def _start_local(tmp_path: Path, *extra: str) -> subprocess.Popen:
    proc = local(
        "--rate",
        "1000",
        "--seed",
        "4",
        "--buffer-interval",
        "1",
        "--start",
        "2026-11-26T15:00:00Z",
        "--port",
        str(pick_port(None)),
        *folders(tmp_path / "lake", tmp_path / "state"),
        *extra,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("dashboard: "):
            break
    wait_for(lambda: len(_lake_ids(tmp_path / "lake")) > 0, 60, "the first lake object")
    return proc


def test_sighup_takes_the_orderly_stop_and_the_embedded_broker_dies_with_the_run(tmp_path):
    """Closing the terminal: the writer flushes what it holds, and no broker is left behind."""
    proc = _start_local(tmp_path, "--kafka-port", str(pick_port(None)))
    pid = int((tmp_path / "state" / "kafka" / "broker.pid").read_text())
    assert "kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 128 + signal.SIGHUP, err[-2000:]
    assert not Path(f"/proc/{pid}").exists(), "the broker outlived the run"
    n = _produced(tmp_path / "state" / "logs" / "local.log")
    ids = _lake_ids(tmp_path / "lake")
    assert n > 0 and len(ids) == len(set(ids)) == n, "every acknowledged event is in the lake, once"


def test_a_closed_output_takes_the_same_orderly_stop(broker, tmp_path):
    """`local | tee` and tee goes away: the status write fails, and the run stops in order."""
    proc = _start_local(tmp_path, "--bootstrap-servers", broker.bootstrap)
    proc.stdout.close()
    proc.stderr.close()  # the next status line (every 10 s when not a terminal) hits EPIPE
    assert proc.wait(60) == 128 + signal.SIGPIPE
    log = (tmp_path / "state" / "logs" / "local.log").read_text()
    assert "is closed" in log and "stopped the lake writer" in log
    n = _produced(tmp_path / "state" / "logs" / "local.log")
    ids = _lake_ids(tmp_path / "lake")
    assert n > 0 and len(ids) == len(set(ids)) == n, "every acknowledged event is in the lake, once"
