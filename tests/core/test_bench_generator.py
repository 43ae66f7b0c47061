"""bench runs from the repository alone: the plan's generator, its baseline, lives in bench/."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from acme_telemetry.schema import BY_NAME, PLAN_COLUMNS
from bench import plan_generator

ROOT = Path(__file__).resolve().parents[2]


def test_the_baseline_draws_the_plans_25_columns_in_order_with_their_glue_types():
    for _ in range(200):
        event = plan_generator.generate_event()
        assert tuple(event) == PLAN_COLUMNS
        for name, value in json.loads(json.dumps(event)).items():
            assert BY_NAME[name].accepts(value), (name, value)
        assert event["event_timestamp"].endswith("Z")


def test_each_event_is_drawn_independently():
    a, b = plan_generator.generate_event(), plan_generator.generate_event()
    assert a["event_id"] != b["event_id"] and a["session_id"] != b["session_id"]


def test_bench_generator_quick_runs_from_a_copy_of_the_repository_alone(tmp_path: Path):
    """A copy of the package and bench/ with nothing beside it (no ../shared): the command
    prints the table with its ratio rows. No timing is asserted."""
    repo = tmp_path / "clone"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("acme_telemetry", "bench"):
        shutil.copytree(ROOT / part, repo / part, ignore=ignore)
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(repo), "HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-m", "acme_telemetry", "bench", "--only", "generator", "--quick"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    for metric in ("plan generator (json.dumps)", "ratio iter_records / plan", "ratio iter_lines / plan"):
        assert re.search(rf"^generator\s+{re.escape(metric)}\s+[\d,]+\.\d+\s+\S+", proc.stdout, re.M), proc.stdout
