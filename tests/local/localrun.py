"""What the tests that run `acme-telemetry local` as a user would share: the command, and waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def local(*args: str, **popen: Any) -> subprocess.Popen:
    """`python -m acme_telemetry local ARGS` from the repository root, text pipes on stdout and stderr."""
    return subprocess.Popen(
        [sys.executable, "-m", "acme_telemetry", "local", *args],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def folders(lake: Path, state_dir: Path) -> list[str]:
    """`--lake LAKE --state-dir STATE`: where a run writes, which every such test names."""
    return ["--lake", str(lake), "--state-dir", str(state_dir)]


def wait_for(cond: Callable[[], object], timeout: float, what: str, every: float = 0.2) -> None:
    """Poll `cond` until it is true; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(every)
