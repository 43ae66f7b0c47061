"""Golden output: the simulator's bytes do not move when its code, its kernel or its toolchain does.

The digests were recorded with the kernel built by the host's `cc` (gcc 12.2, Debian 12,
x86_64) before the kernel moved to zig cc, its own sort and the split engine. The
issue asks that the toolchain's x86_64 build gives byte-identical `generate` output;
these tests prove it for the CLI's JSON Lines, the (key, JSON) records, a stateless
window and the ground truth the simulator records. A deliberate change to the model
changes these digests: record the new ones in the same commit and say why.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from acme_telemetry.simulator import GroundTruth, SimConfig, iter_lines, iter_records, iter_window, kernel

ROOT = Path(__file__).resolve().parents[2]

# (generate arguments, sha256 of its stdout), recorded with the cc build.
GENERATE = [
    (
        ("--events", "200000", "--seed", "42", "--start", "2026-11-26T15:00:00Z"),
        "8004d67f41b08dd8fc5c1fcd1364556762db1105c2da64ac3a7a4320c40e51b9",
    ),
    (("--events", "200000", "--seed", "7", "--viewers", "2000"), "3e2f1a4e69db46406ef288a29ce42f087af5765a19d0d2a5c0531196765d178d"),
    (
        ("--events", "50000", "--seed", "3", "--heartbeat", "5", "--start", "2027-03-01T23:59:00Z"),
        "ffd662293d573e329e2fa90d73f13094d8b10ca88626e73c08274c83643aa97b",
    ),
]
# sha256 of "key\tvalue\n" per record
WINDOW = "9b265fdfbb682c0fcd9f4c273b6c3f4e9061ac06a45fa5ef60a1053ff34b0d60"
RECORDS = "3991a987fc225c62b4e8d6fe942edfe9b0887656d1c8d657d2f2440ffe40c2cc"
# sha256 of json.dumps(truth.overall.expected(), sort_keys=True)
TRUTH = "b841fc9fdafe338c1e5537f829cffdc5ad547141451cc5566df05d8db1206ac1"


def _digest(pairs: Iterable[tuple[bytes, bytes]]) -> str:
    d = hashlib.sha256()
    for k, v in pairs:
        d.update(k + b"\t" + v + b"\n")
    return d.hexdigest()


def test_the_kernel_in_use_is_the_zig_build_for_this_host():
    """What the digests below are checked against: on x86_64 Linux, the x86_64 zig build."""
    path = kernel.library_path()
    assert path.name == kernel.library_name(kernel.host_target())
    if sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64"):
        assert kernel.host_target() == kernel.TARGETS["x86_64"] == "x86_64-linux-gnu.2.28"
        with path.open("rb") as f:
            head = f.read(20)
        assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 62  # EM_X86_64


def test_generate_cli_output_is_the_golden_bytes():
    args, want = GENERATE[0]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "acme_telemetry", "generate", *args], cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert hashlib.sha256(proc.stdout).hexdigest() == want


@pytest.mark.parametrize(("args", "want"), GENERATE, ids=["seed42", "seed7-2000-viewers", "seed3-heartbeat5"])
def test_json_lines_are_the_golden_bytes(args, want):
    """iter_lines is what `generate` writes; checked in process for every recorded config."""
    opts = dict(zip(args[::2], args[1::2], strict=False))
    start = opts.get("--start")
    cfg = SimConfig(
        seed=int(opts["--seed"]),
        start=datetime.fromisoformat(start.replace("Z", "+00:00")) if start else None,
        concurrent_viewers=int(opts.get("--viewers", 200)),
        heartbeat_interval_s=float(opts.get("--heartbeat", 10)),
    )
    d = hashlib.sha256()
    for block in iter_lines(int(opts["--events"]), cfg):
        d.update(block)
    assert d.hexdigest() == want


def test_a_window_and_records_are_the_golden_bytes():
    t0 = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)
    assert _digest(iter_window(SimConfig(seed=11, concurrent_viewers=500), t0, t0 + timedelta(minutes=10))) == WINDOW
    cfg = SimConfig(seed=5, heartbeat_interval_s=7.5, customers=5000, titles=300)
    assert _digest(iter_records(30000, cfg)) == RECORDS


def test_the_ground_truth_is_the_golden_facts():
    truth = GroundTruth()
    for _ in iter_records(20000, SimConfig(seed=9, target_events_per_s=300.0), truth=truth):
        pass
    facts = json.dumps(truth.overall.expected(), sort_keys=True).encode()
    assert hashlib.sha256(facts).hexdigest() == TRUTH
