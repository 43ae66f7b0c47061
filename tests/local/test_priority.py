"""The children's CPU priority, judged by the kernel's scheduler: two busy processes, each in a
session of its own (as the supervisor starts its children), share one CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each copy waits for "go", spins for SPIN_S of wall clock, then prints the CPU seconds it got.
SPINNER = """
import os, sys, time
from acme_telemetry.local.proc import lower_priority
os.sched_setaffinity(0, {cpu})
n = int(sys.argv[1])
if n:
    lower_priority(n)
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()
c0, end = time.process_time(), time.monotonic() + {spin}
while time.monotonic() < end:
    pass
print(time.process_time() - c0, flush=True)
"""
SPIN_S = 1.5


def _share(niceness: tuple[int, int]) -> tuple[float, float]:
    cpu = min(os.sched_getaffinity(0))
    code = SPINNER.format(cpu={cpu}, spin=SPIN_S)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            start_new_session=True,
        )
        for n in niceness
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        out = [p.communicate(timeout=30)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    a, b = (float(o.strip()) for o in out)
    return a, b


def test_a_lowered_child_in_its_own_session_yields_the_cpu_to_a_sibling():
    # Weights 1024 against 110 (nice 0 against 10): the lowered one gets about a tenth.
    # With os.nice alone, Linux's autogroup scheduling shares the CPU between the two
    # sessions evenly (about 0.75 s each here): the supervisor's priorities did nothing.
    normal, lowered = _share((0, 10))
    assert normal > 0.5 * SPIN_S, (normal, lowered)
    assert lowered < 0.35 * normal, f"a nice-10 child got {lowered:.2f} CPU-s against its sibling's {normal:.2f}"


def test_equal_children_share_the_cpu_evenly():
    a, b = _share((0, 0))
    assert 0.6 < a / b < 1.6, (a, b)


def test_the_autogroup_setting_is_written_where_the_kernel_has_one(tmp_path: Path):
    group = tmp_path / "autogroup"
    group.write_text("/autogroup-1 nice 0\n")
    before = os.nice(0)
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; from pathlib import Path; from acme_telemetry.local.proc import lower_priority;"
            " lower_priority(3, Path(sys.argv[1])); print(os.nice(0))",
            str(group),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert int(probe.stdout) == before + 3
    assert group.read_text() == "3"


def test_without_an_autogroup_only_the_niceness_changes(tmp_path: Path):
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; from pathlib import Path; from acme_telemetry.local.proc import lower_priority;"
            " lower_priority(2, Path(sys.argv[1])); print(os.nice(0))",
            str(tmp_path / "absent" / "autogroup"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert int(probe.stdout) == os.nice(0) + 2
    assert not (tmp_path / "absent").exists()
