"""Simulator vs the plan's generator: events/s on one core, JSON-serialised, in the same run.

The plan's generator is re-implemented in bench/plan_generator.py (the original plan's
generator Lambda, draw for draw): generate_event() + json.dumps per event. Ours is the session-coherent simulator, timed
two ways: iter_records (one (key, JSON value) tuple per event, what the producer sends)
and iter_lines (JSON Lines blocks, what `generate` prints). Both sides are timed in CPU
seconds of this process (time.process_time), alternating rounds, best round each, so a
busy machine slows both alike. The simulator's one-time calibration (a few hundred ms per
process and heartbeat interval) is done before timing; each timed run includes its own
warm-up (replaying the sessions alive at the start time).

Memory: peak RSS of a fresh process generating N events, for two N ten times apart; the
difference shows memory follows the live sessions, not the number of events.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import plan_generator

REPO = Path(__file__).resolve().parents[1]
Row = dict[str, Any]


def _time_baseline(n: int) -> float:
    dumps, make = json.dumps, plan_generator.generate_event
    t = time.process_time()
    for _ in range(n):
        dumps(make())
    return n / (time.process_time() - t)


def _time_records(n: int, seed: int) -> float:
    from acme_telemetry.simulator import SimConfig, iter_records

    t = time.process_time()
    count = 0
    for _key, _value in iter_records(n, SimConfig(seed=seed)):
        count += 1
    dt = time.process_time() - t
    assert count == n
    return n / dt


def _time_lines(n: int, seed: int) -> float:
    from acme_telemetry.simulator import SimConfig, iter_lines

    t = time.process_time()
    lines = 0
    for block in iter_lines(n, SimConfig(seed=seed)):
        lines += block.count(b"\n")
    dt = time.process_time() - t
    assert lines == n
    return n / dt


def _time_simulation(n: int, seed: int) -> float:
    """events/s of the simulation alone: arrivals and session set-up (Python), sessions
    run and merged in time order (kernel.c), no JSON (the rest of the difference)."""
    from acme_telemetry.simulator import SimConfig
    from acme_telemetry.simulator.engine import _raw

    cfg = SimConfig(seed=seed)
    t = time.process_time()
    count = 0
    for _sim, held in _raw(cfg, cfg.start_ms, float("inf"), render=False):
        count += held
        if count >= n:
            break
    return count / (time.process_time() - t)


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent at fork time.
_PEAK = """
import re, resource, sys
from acme_telemetry.simulator import SimConfig, iter_records
n, viewers = int(sys.argv[1]), int(sys.argv[2])
for _ in iter_records(n, SimConfig(seed=1, concurrent_viewers=viewers)):
    pass
try:
    print(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
except OSError:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_rss_mb(n: int, viewers: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, str(n), str(viewers)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    return int(out.stdout.strip()) / 1024.0  # ru_maxrss is in KiB on Linux


def run(quick: bool = False) -> list[Row]:
    from acme_telemetry.simulator.engine import session_stats

    session_stats(10_000)  # one-time calibration, outside the timings
    n_base, n_sim, rounds = (20_000, 100_000, 1) if quick else (100_000, 1_000_000, 3)
    base, recs, lines, sims = [], [], [], []
    for i in range(rounds):
        base.append(_time_baseline(n_base))
        recs.append(_time_records(n_sim, seed=100 + i))
        lines.append(_time_lines(n_sim, seed=100 + i))
        sims.append(_time_simulation(n_sim, seed=100 + i))
    b, r, ln, sim = max(base), max(recs), max(lines), max(sims)
    us = 1e6
    rows: list[Row] = [
        {
            "benchmark": "generator",
            "metric": "plan generator (json.dumps)",
            "value": b,
            "unit": "events/s",
            "note": f"best of {rounds} x {n_base:,} events, CPU time",
        },
        {
            "benchmark": "generator",
            "metric": "simulator iter_records",
            "value": r,
            "unit": "events/s",
            "note": f"best of {rounds} x {n_sim:,} (key, JSON) records",
        },
        {
            "benchmark": "generator",
            "metric": "simulator iter_lines",
            "value": ln,
            "unit": "events/s",
            "note": f"best of {rounds} x {n_sim:,} JSON Lines",
        },
        {
            "benchmark": "generator",
            "metric": "ratio iter_records / plan",
            "value": r / b,
            "unit": "x",
            "note": "same process, alternating rounds; target >= 25",
        },
        {
            "benchmark": "generator",
            "metric": "ratio iter_lines / plan",
            "value": ln / b,
            "unit": "x",
            "note": "same process, alternating rounds; target >= 25",
        },
        # where one event's time goes (from the best rounds above)
        {
            "benchmark": "generator",
            "metric": "cost: plan generator",
            "value": us / b,
            "unit": "us/event",
            "note": "random draws + dict + json.dumps",
        },
        {
            "benchmark": "generator",
            "metric": "cost: simulation",
            "value": us / sim,
            "unit": "us/event",
            "note": "arrivals + session set-up (Python), player state machine + merge (kernel.c)",
        },
        {
            "benchmark": "generator",
            "metric": "cost: JSON -> records",
            "value": us / r - us / sim,
            "unit": "us/event",
            "note": "render ~900 B (kernel.c), split into (key, value) objects",
        },
        {
            "benchmark": "generator",
            "metric": "cost: JSON -> JSON Lines",
            "value": us / ln - us / sim,
            "unit": "us/event",
            "note": "render ~900 B (kernel.c), hand out in ~256 KB blocks",
        },
    ]
    small, large = (20_000, 200_000) if quick else (100_000, 1_000_000)
    m_small, m_large = _peak_rss_mb(small, 200), _peak_rss_mb(large, 200)
    m_wide = _peak_rss_mb(small, 2000)
    rows += [
        {
            "benchmark": "generator",
            "metric": f"peak RSS, {large:,} events",
            "value": m_large,
            "unit": "MB",
            "note": "fresh process, 200 concurrent viewers",
        },
        {
            "benchmark": "generator",
            "metric": f"peak RSS, {small:,} events",
            "value": m_small,
            "unit": "MB",
            "note": f"x{large // small} events: +{m_large - m_small:.1f} MB (bounded by live sessions)",
        },
        {
            "benchmark": "generator",
            "metric": f"peak RSS, {small:,} events, 2000 viewers",
            "value": m_wide,
            "unit": "MB",
            "note": f"x10 live sessions: +{m_wide - m_small:.1f} MB",
        },
    ]
    return rows


if __name__ == "__main__":
    from bench.run import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
