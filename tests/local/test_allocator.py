"""The children's malloc (local.proc.allocator_preload): mimalloc on Linux, judged by the
dynamic linker (which library the process's `malloc` symbol resolves to) and the kernel's
map of the process, not by our own bookkeeping."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest
from localrun import ENV, ROOT, folders

from acme_telemetry.local.proc import ALLOCATOR_ENV, allocator_preload, child_env, preload_env

# In a child: which mapped file holds the address `malloc` resolves to (dlsym of the default scope).
_WHO_SERVES_MALLOC = """
import ctypes
addr = ctypes.cast(ctypes.CDLL(None).malloc, ctypes.c_void_p).value
for line in open("/proc/self/maps"):
    fields = line.split()
    lo, hi = (int(x, 16) for x in fields[0].split("-"))
    if lo <= addr < hi:
        print(fields[-1])
        break
"""


def _malloc_of(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", _WHO_SERVES_MALLOC], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "cannot be preloaded" not in out.stderr, out.stderr
    return out.stdout.strip()


def test_on_linux_the_children_get_mimalloc_from_the_wheel_and_it_serves_their_malloc():
    assert sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64"), "this suite runs on Linux"
    lib = allocator_preload({})
    assert lib is not None and Path(lib).name == "libmimalloc.so.3"
    assert Path(lib).read_bytes()[:4] == b"\x7fELF"
    served_by = _malloc_of(preload_env(child_env(), lib))
    assert Path(served_by).name.startswith("libmimalloc"), served_by
    # without the preload (ACME_ALLOCATOR=system) glibc's malloc serves
    assert allocator_preload({ALLOCATOR_ENV: "system"}) is None
    assert Path(_malloc_of(child_env())).name.startswith("libc"), "the reference: an unpreloaded child"


def test_an_earlier_preload_is_kept_after_mimalloc():
    env = preload_env({"LD_PRELOAD": "/opt/x/libtrace.so"}, "/lib/libmimalloc.so.3")
    assert env["LD_PRELOAD"] == "/lib/libmimalloc.so.3 /opt/x/libtrace.so"
    assert preload_env({}, None) == {}


def test_macos_keeps_the_system_allocator():
    assert allocator_preload({}, platform="darwin") is None


def test_a_bad_allocator_setting_fails_local_at_start_up_naming_the_setting(tmp_path):
    with pytest.raises(ValueError, match=f"^{ALLOCATOR_ENV} must be one of mimalloc, system, got 'jemalloc'$"):
        allocator_preload({ALLOCATOR_ENV: "jemalloc"})
    proc = subprocess.run(
        [sys.executable, "-m", "acme_telemetry", "local", "--events", "10", *folders(tmp_path / "lake", tmp_path / "state")],
        cwd=ROOT,
        env={**ENV, ALLOCATOR_ENV: "jemalloc"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert errors and errors[-1].endswith(f"{ALLOCATOR_ENV} must be one of mimalloc, system, got 'jemalloc'"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "lake").exists() or not any((tmp_path / "lake").rglob("*.gz"))
