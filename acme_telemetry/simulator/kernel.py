"""Builds and loads kernel.c, the simulator's compiled hot loop, through ctypes.

The shared library has no Python ABI (plain C called through ctypes), so one build
serves any Python version. Its file name carries a hash of the source and the compiler
flags, so a stale build is never loaded. Where it is looked for, in order:

* beside this file (the repo checkout after `scripts/setup`, or a Lambda bundle, which
  data_stack's bundler builds);
* $ACME_KERNEL_DIR, else $XDG_CACHE_HOME/acme-telemetry, else ~/.cache/acme-telemetry.

If it is in neither, it is compiled with $CC (default `cc`) into the first writable one.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("kernel.c")
# Portable x86-64/arm64 baseline (no -march=native: the Lambda bundle is built here and
# runs elsewhere); plain IEEE doubles (no fast-math, no FMA contraction) for determinism.
CFLAGS = ("-O2", "-std=gnu11", "-fPIC", "-shared", "-fvisibility=hidden", "-fno-fast-math", "-ffp-contract=off")
LDLIBS = ("-lm",)

# numpy view of kernel.c's event_t (checked against k_event_size at load)
EVENT_DTYPE = np.dtype(
    [(f, np.int64) for f in ("ts", "uid", "stall", "played", "pos_ms", "played_d", "stall_d")]
    + [("bw", np.float64)]
    + [(f, np.int32) for f in ("slot", "etype", "state", "seq", "rung", "prev_rung", "buf_events", "errors",
                               "startup_out", "rebuf_out", "code", "fatal", "started", "dur_s", "startup", "vsf")]
)


class KernelBuildError(RuntimeError):
    """The compiled kernel is missing and could not be built; the message says why."""


def library_name() -> str:
    h = hashlib.sha256(SOURCE.read_bytes() + repr((CFLAGS, LDLIBS)).encode()).hexdigest()[:16]
    return f"_kernel-{h}.so"


def _cache_dir() -> Path:
    if os.environ.get("ACME_KERNEL_DIR"):
        return Path(os.environ["ACME_KERNEL_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "acme-telemetry"


def build(dest_dir: Path) -> Path:
    """Compiles kernel.c into dest_dir/library_name() (atomically) and returns the path."""
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        raise KernelBuildError(
            f"the simulator's compiled kernel ({library_name()}) is not built and the C compiler '{cc}' is not on "
            "PATH: install gcc (Debian: apt-get install gcc) or set CC, then run scripts/setup")
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / library_name()
    fd, tmp = tempfile.mkstemp(prefix=".kernel-", suffix=".so", dir=dest_dir)
    os.close(fd)
    try:
        proc = subprocess.run([cc, *CFLAGS, "-o", tmp, str(SOURCE), *LDLIBS], capture_output=True, text=True)
        if proc.returncode != 0:
            raise KernelBuildError(f"compiling {SOURCE.name} with {cc} failed:\n{proc.stderr.strip()[-2000:]}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def library_path() -> Path:
    """The built kernel for this source, building it if needed."""
    name = library_name()
    for d in (SOURCE.parent, _cache_dir()):
        if (d / name).is_file():
            return d / name
    for d in (SOURCE.parent, _cache_dir()):
        if os.access(d if d.exists() else d.parent, os.W_OK):
            try:
                return build(d)
            except PermissionError:
                continue
    raise KernelBuildError(f"no writable place to build the simulator kernel (tried {SOURCE.parent} and {_cache_dir()}); "
                           "set ACME_KERNEL_DIR")


_LIB: list = []


def load() -> ctypes.CDLL:
    """The kernel library, loaded once per process, its functions typed."""
    if _LIB:
        return _LIB[0]
    lib = ctypes.CDLL(str(library_path()))
    P, I64, I32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
    sigs = {
        "k_init": (ctypes.c_int, [P, ctypes.c_int, P, ctypes.c_int, ctypes.c_char_p, P, ctypes.c_int]),
        "k_new": (P, []),
        "k_free": (None, [P]),
        "k_add": (I32, [P, P, P, ctypes.c_char_p, P]),
        "k_advance": (I64, [P, I64, I64, I64, ctypes.c_int]),
        "k_live": (I64, [P]),
        "k_out": (P, [P]),
        "k_offsets": (ctypes.POINTER(I64), [P]),
        "k_order": (ctypes.POINTER(I64), [P]),
        "k_slots": (ctypes.POINTER(I32), [P]),
        "k_events": (P, [P]),
        "k_event_size": (ctypes.c_int, []),
        "k_totals": (None, [P, P]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    if lib.k_event_size() != EVENT_DTYPE.itemsize:
        raise KernelBuildError(f"kernel event size {lib.k_event_size()} != {EVENT_DTYPE.itemsize} (EVENT_DTYPE)")
    _LIB.append(lib)
    return lib
