"""The issue's acceptance run: 1M events with a fixed seed validate clean, twice byte-identical."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
N = 1_000_000


def _generate(path: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with path.open("wb") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "acme_telemetry", "generate", "--events", str(N), "--seed", "42"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            timeout=300,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_one_million_events_validate_and_are_byte_identical(tmp_path: Path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert _generate(first) == _generate(second)
    with first.open("rb") as f:
        assert sum(1 for _ in f) == N
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    v = subprocess.run(
        [sys.executable, "-m", "acme_telemetry", "validate", str(first)], cwd=ROOT, env=env, capture_output=True, timeout=600
    )
    assert v.returncode == 0, v.stdout[-3000:]
    assert f"{N} events".encode() in v.stderr and b"0 violations" in v.stderr
