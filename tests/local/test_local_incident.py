"""`local --incident` on the session broker: the affected slice degrades during the incident's
window (by the KPI engine over the lake's events), the other slices do not, and it recovers."""

from __future__ import annotations

import re
import signal
import time

import pytest
from lake_read import lake_events
from localrun import folders, local

from acme_telemetry import kpis
from acme_telemetry.times import ms_of_iso, parse_utc, to_ms

pytestmark = pytest.mark.integration
RECOVERY_S = 11  # a session feels the end at its next event: up to a heartbeat (10 s) later


def _slice(events: list[dict], start_ms: int, end_ms: int, cdn: str) -> dict:
    w = kpis.WindowState(start_ms, end_ms).add_all(events)
    return w.kpis(w.by["cdn"][cdn])


def test_an_incident_degrades_its_slice_then_it_recovers(broker, tmp_path):
    lake = tmp_path / "lake"
    proc = local(
        "--bootstrap-servers",
        broker.bootstrap,
        "--seed",
        "5",
        "--incident",
        "cdn=fastly,at=+6s,for=8s,kind=outage",
        "--no-dashboard",
        "--buffer-interval",
        "1",
        *folders(lake, tmp_path / "state"),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.fullmatch(r"incident: cdn=fastly outage (\S+)\.\.(\S+)\n", line)
    assert m, line
    start, end = to_ms(parse_utc(m.group(1))), to_ms(parse_utc(m.group(2)))
    assert end - start == 8_000 and abs(start - (time.time() * 1000 + 6_000)) < 6_000
    after = (end + RECOVERY_S * 1000, end + (RECOVERY_S + 10) * 1000)
    deadline = time.monotonic() + 60
    while True:
        events = lake_events(lake) if lake.exists() else []
        if events and max(ms_of_iso(e["event_timestamp"]) for e in events) >= after[1] + 1_000:
            break
        assert time.monotonic() < deadline and proc.poll() is None, "the lake did not reach the end of the recovery window"
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]

    during = _slice(events, start, end + 3_000, "fastly")  # fatal errors land within a few seconds
    control = _slice(events, start, end + 3_000, "akamai")
    recovered = _slice(events, *after, "fastly")
    assert during["events"] > 200 and control["events"] > 200 and recovered["events"] > 200
    # An outage: playing sessions on fastly hit fatal errors (about 15% in 8 s), nobody else does.
    assert during["playback_failures"] >= 15, during
    assert control["playback_failures"] <= 2, control
    assert recovered["playback_failures"] <= 2, recovered
