"""kernel.c is portable C: zig cc builds it warning-free for every target, from this host, without a system cc.

Each build's object format is read from its header: ELF class and machine for Linux
(what a Lambda function of that architecture loads), Mach-O magic and CPU type for macOS.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from acme_telemetry.simulator import kernel

ROOT = Path(__file__).resolve().parents[2]
EM_X86_64, EM_AARCH64 = 62, 183
CPU_TYPE_X86_64, CPU_TYPE_ARM64 = 0x01000007, 0x0100000C
# target -> (format, machine)
EXPECTED = {
    "x86_64-linux-gnu.2.28": ("elf", EM_X86_64),
    "aarch64-linux-gnu.2.28": ("elf", EM_AARCH64),
    "aarch64-macos": ("macho", CPU_TYPE_ARM64),
    "x86_64-macos": ("macho", CPU_TYPE_X86_64),
}


def object_format(path: Path) -> tuple[str, int]:
    """('elf', e_machine) of a 64-bit little-endian ELF shared object, or ('macho', cputype) of a
    64-bit Mach-O dylib; AssertionError for anything else."""
    head = path.read_bytes()[:64]
    if head[:4] == b"\x7fELF":
        assert head[4] == 2, "not ELFCLASS64"
        assert head[5] == 1, "not little-endian"
        assert int.from_bytes(head[16:18], "little") == 3, "not a shared object (ET_DYN)"
        return "elf", int.from_bytes(head[18:20], "little")
    assert int.from_bytes(head[:4], "little") == 0xFEEDFACF, f"neither ELF nor 64-bit Mach-O: {head[:4]!r}"
    assert int.from_bytes(head[12:16], "little") == 6, "not a dylib (MH_DYLIB)"
    return "macho", int.from_bytes(head[4:8], "little")


def glibc_versions(path: Path) -> set[tuple[int, ...]]:
    return {tuple(map(int, v.split(b"."))) for v in re.findall(rb"GLIBC_([0-9]+(?:\.[0-9]+)+)", path.read_bytes())}


def test_the_portable_targets_are_the_four_of_the_issue():
    assert set(kernel.PORTABLE_TARGETS) == set(EXPECTED)


@pytest.mark.parametrize("target", list(EXPECTED))
def test_kernel_c_cross_compiles_without_warnings(tmp_path, target):
    out = tmp_path / "k.so"
    diagnostics = kernel.compile_kernel(out, target)
    assert "-Wall" in kernel.CFLAGS and "-Wextra" in kernel.CFLAGS
    assert diagnostics == ""  # zero warnings at -Wall -Wextra
    assert object_format(out) == EXPECTED[target]


@pytest.mark.parametrize("architecture", ["x86_64", "arm64"])
def test_build_for_a_lambda_architecture(tmp_path, architecture):
    """What the Lambda bundler calls: build(dest, TARGETS[architecture])."""
    path = kernel.build(tmp_path, kernel.TARGETS[architecture])
    assert path == tmp_path / kernel.library_name(kernel.TARGETS[architecture])
    assert object_format(path) == ("elf", {"x86_64": EM_X86_64, "arm64": EM_AARCH64}[architecture])
    versions = glibc_versions(path)
    assert versions and max(versions) <= (2, 28)  # Amazon Linux 2023 has 2.34
    assert not list(tmp_path.glob(".kernel-*"))


def test_builds_are_reproducible(tmp_path):
    """Same source, flags and target, same bytes (no paths or times in the library)."""
    a = kernel.build(tmp_path / "a", kernel.TARGETS["x86_64"])
    b = kernel.build(tmp_path / "b", kernel.TARGETS["x86_64"])
    assert a.read_bytes() == b.read_bytes()


def test_the_build_needs_no_system_c_compiler(tmp_path):
    """scripts/setup's kernel step with a PATH that has no cc, gcc or clang."""
    empty = tmp_path / "bin"
    empty.mkdir()
    for cc in ("cc", "gcc", "clang"):
        assert shutil.which(cc, path=str(empty)) is None
    env = dict(os.environ, PATH=str(empty), PYTHONPATH=str(ROOT), ACME_KERNEL_DIR=str(tmp_path / "cache"))
    env.pop("CC", None)
    dest = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "acme_telemetry.simulator.build_kernel", "--dest", str(dest)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path == dest / kernel.library_name() and path.is_file()
    assert object_format(path)[1] in (EM_X86_64, EM_AARCH64, CPU_TYPE_X86_64, CPU_TYPE_ARM64)


def test_setup_builds_the_kernel_through_zig_not_cc():
    setup = (ROOT / "scripts" / "setup").read_text()
    assert "python -m acme_telemetry.simulator.build_kernel" in setup
    assert not re.search(r"need\s+\"?\$\{?CC", setup) and "need cc" not in setup
