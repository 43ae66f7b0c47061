"""scripts/setup works on a machine with no C compiler: every C compiler is hidden from PATH
(a folder of links to everything on PATH except cc, gcc, g++, clang, tcc and their
target-prefixed names). Setup must pass, and with the same PATH the kernel it builds is
rebuilt from scratch into an empty folder, so the only compiler it can use is the pinned
zig cc from PyPI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPILER = re.compile(r"^(?:.*-)?(?:cc|c\+\+|gcc|g\+\+|clang|clang\+\+|tcc)(?:-[\d.]+)?$")


def _path_without_compilers(tmp: Path) -> str:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for folder in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
        if not folder or not Path(folder).is_dir() or Path(folder).resolve().is_relative_to(ROOT):
            continue
        for entry in Path(folder).iterdir():
            if COMPILER.match(entry.name) or (bin_dir / entry.name).exists():
                continue
            (bin_dir / entry.name).symlink_to(entry)
    return str(bin_dir)


def test_setup_needs_no_c_compiler(tmp_path):
    path = _path_without_compilers(tmp_path)
    hidden = {"cc", "gcc", "g++", "c++", "clang", "x86_64-linux-gnu-gcc"}
    assert not any(shutil.which(name, path=path) for name in hidden), "a C compiler is still on the test PATH"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CC", "CFLAGS"))}, "PATH": path}
    r = subprocess.run(["bash", str(ROOT / "scripts" / "setup")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "simulator kernel (zig cc)" in r.stderr
    kernel_dir = tmp_path / "kernel"
    python = str(ROOT / ".venv" / "bin" / "python")
    b = subprocess.run(
        [python, "-m", "acme_telemetry.simulator.build_kernel", "--dest", str(kernel_dir)],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert b.returncode == 0, b.stderr[-2000:]
    built = list(kernel_dir.glob("_kernel-*.so"))
    assert built and built[0].read_bytes()[:4] == b"\x7fELF", (b.stdout, b.stderr)
