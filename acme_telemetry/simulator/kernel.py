"""Builds kernel.c, the simulator's compiled hot loop, with one pinned C toolchain: zig cc.

The toolchain is the PyPI package `ziglang` (TOOLCHAIN, pinned in requirements.txt): a
clang that cross-compiles for every target from any host, so neither the local build nor
the Lambda bundle needs a system C compiler, and a Mac or an arm64 laptop builds the
same x86_64 (or arm64) Linux kernel as CI does.

* `build(dest_dir, target)` compiles for one zig target, e.g. `TARGETS["arm64"]` for an
  arm64 Lambda function, and returns the file. `library_name(target)` is its name: a hash
  of the source, the flags, the target and the toolchain, so a stale or foreign build is
  never picked up.
* `host_target()` is the target of this machine (x86_64/aarch64 Linux or macOS).
  `library_path()` finds or builds the kernel for it. Where it is looked for, in order:
  beside this file (the checkout after `scripts/setup`, or a Lambda bundle, which the
  bundler fills with `build(..., TARGETS[architecture])`); then $ACME_KERNEL_DIR, else
  $XDG_CACHE_HOME/acme-telemetry, else ~/.cache/acme-telemetry. If it is in neither, it
  is compiled into the first writable one.

The shared library has no Python ABI (plain C called through ctypes, see binding.py), so
one build serves any Python version. Linux builds link against glibc 2.28 (GLIBC_2.2.5
symbols only), so they load on every Lambda runtime (Amazon Linux 2023 has glibc 2.34)
and on any Linux from 2018 on.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("kernel.c")
# The pinned toolchain (requirements.txt): part of the library name, so a new compiler
# version builds a new kernel instead of reusing one it did not build.
TOOLCHAIN = "ziglang==0.17.0"
# Portable x86-64/arm64 baseline (no -march=native: a build may run on another machine);
# plain IEEE doubles (no fast-math, no FMA contraction) for determinism; no debug info,
# so the bytes do not depend on the checkout's path.
CFLAGS = ("-O2", "-std=gnu11", "-fPIC", "-shared", "-fvisibility=hidden", "-fno-fast-math", "-ffp-contract=off", "-g0", "-Wall", "-Wextra")
LDLIBS = ("-lm",)
# zig cc only: the target CPU's baseline feature set (what the target triple promises).
ZIG_FLAGS = ("-mcpu=baseline",)
# Linux builds are linked against this glibc (zig ships a stub for each version).
GLIBC = "2.28"

# Lambda architecture (the CDK's Architecture names) -> zig target of its kernel.
TARGETS: dict[str, str] = {
    "x86_64": f"x86_64-linux-gnu.{GLIBC}",
    "arm64": f"aarch64-linux-gnu.{GLIBC}",
}
# Every target kernel.c must build for, warning-free (tests/core/test_kernel_targets.py).
PORTABLE_TARGETS: tuple[str, ...] = (TARGETS["x86_64"], TARGETS["arm64"], "aarch64-macos", "x86_64-macos")

_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


class KernelBuildError(RuntimeError):
    """The compiled kernel is missing and could not be built, or does not match; the message says why."""


def host_target() -> str:
    """The zig target of this machine: what the local build compiles for."""
    arch = _MACHINES.get(platform.machine().lower())
    if arch is not None and sys.platform == "darwin":
        return f"{arch}-macos"
    if arch is not None and sys.platform.startswith("linux"):
        libc, version = platform.libc_ver()
        if libc != "glibc":
            return f"{arch}-linux-musl"
        if version and tuple(map(int, version.split("."))) < tuple(map(int, GLIBC.split("."))):
            return f"{arch}-linux-gnu.{version}"  # an older glibc than the Lambda builds': link against it
        return f"{arch}-linux-gnu.{GLIBC}"
    raise KernelBuildError(
        f"the simulator kernel has no build target for {sys.platform}/{platform.machine()} "
        f"(it builds for x86_64 and aarch64 Linux and macOS: {', '.join(PORTABLE_TARGETS)})"
    )


def library_name(target: str | None = None) -> str:
    """File name of the kernel built for `target` (default: this host's)."""
    target = target or host_target()
    key = SOURCE.read_bytes() + repr((CFLAGS, LDLIBS, ZIG_FLAGS, target, TOOLCHAIN)).encode()
    return f"_kernel-{hashlib.sha256(key).hexdigest()[:16]}.so"


def _cache_dir() -> Path:
    if os.environ.get("ACME_KERNEL_DIR"):
        return Path(os.environ["ACME_KERNEL_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "acme-telemetry"


def zig_command() -> list[str]:
    """The command that runs the pinned zig (`python -m ziglang`); KernelBuildError if it is not installed."""
    pin = TOOLCHAIN.split("==")[1]
    if importlib.util.find_spec("ziglang") is None:
        raise KernelBuildError(
            f"the simulator kernel needs the C toolchain from PyPI's ziglang, which is not installed: "
            f"run `pip install {TOOLCHAIN}` (or scripts/setup)"
        )
    installed = importlib.metadata.version("ziglang")
    if installed != pin:
        raise KernelBuildError(
            f"the simulator kernel is built with {TOOLCHAIN}, but ziglang {installed} is installed: "
            f"run `pip install {TOOLCHAIN}` (or scripts/setup)"
        )
    return [sys.executable, "-m", "ziglang"]


def compile_command(output: Path, target: str) -> list[str]:
    """The zig cc command line that builds kernel.c for `target` into `output`."""
    return [*zig_command(), "cc", "-target", target, *ZIG_FLAGS, *CFLAGS, "-o", str(output), str(SOURCE), *LDLIBS]


def compile_kernel(output: Path, target: str) -> str:
    """Compiles kernel.c for `target` into `output`; returns the compiler's diagnostics
    (empty when clean). KernelBuildError with the compiler's output if it fails."""
    proc = subprocess.run(compile_command(output, target), capture_output=True, text=True)
    if proc.returncode != 0:
        raise KernelBuildError(f"compiling {SOURCE.name} for {target} with zig cc failed:\n{proc.stderr.strip()[-2000:]}")
    return proc.stderr


def build(dest_dir: Path, target: str | None = None) -> Path:
    """Compiles kernel.c for `target` (a zig target such as TARGETS["arm64"]; default this
    host's) into dest_dir / library_name(target), atomically, and returns the path."""
    target = target or host_target()
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / library_name(target)
    fd, tmp = tempfile.mkstemp(prefix=".kernel-", suffix=".so", dir=dest_dir)
    os.close(fd)
    try:
        compile_kernel(Path(tmp), target)
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def library_path() -> Path:
    """The built kernel for this source and this host, building it if needed."""
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
    raise KernelBuildError(
        f"no writable place to build the simulator kernel (tried {SOURCE.parent} and {_cache_dir()}); set ACME_KERNEL_DIR"
    )
