"""The simulator's compiled kernel: built from source with zig cc on demand, never stale, clear errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from acme_telemetry.simulator import binding, kernel, template


@pytest.fixture
def other_source(tmp_path, monkeypatch):
    """kernel.c with one extra comment, in a folder of its own: a source with no build yet."""
    src = tmp_path / "pkg" / "kernel.c"
    src.parent.mkdir()
    src.write_text(kernel.SOURCE.read_text() + "\n/* changed */\n")
    monkeypatch.setattr(kernel, "SOURCE", src)
    monkeypatch.setenv("ACME_KERNEL_DIR", str(tmp_path / "cache"))
    return src


def test_the_library_name_follows_the_source_the_target_and_the_toolchain(other_source, monkeypatch):
    name = kernel.library_name()
    assert name.startswith("_kernel-") and name.endswith(".so")
    assert name == kernel.library_name(kernel.host_target())
    assert len({kernel.library_name(t) for t in kernel.PORTABLE_TARGETS}) == len(kernel.PORTABLE_TARGETS)
    monkeypatch.setattr(kernel, "TOOLCHAIN", "ziglang==0.18.0")
    assert kernel.library_name() != name
    monkeypatch.undo()
    other_source.write_text(other_source.read_text() + "/* again */\n")
    assert kernel.library_name() != name


def test_a_missing_build_is_compiled_beside_the_source(other_source):
    path = kernel.library_path()
    assert path == other_source.parent / kernel.library_name() and path.is_file()
    assert kernel.library_path() == path  # found, not rebuilt
    assert not list(other_source.parent.glob(".kernel-*"))  # no temporary left behind


def test_without_ziglang_the_first_call_says_how_to_install_it(other_source, monkeypatch):
    monkeypatch.setitem(sys.modules, "ziglang", None)  # as if the package were not installed
    with pytest.raises(kernel.KernelBuildError) as err:
        kernel.library_path()
    msg = str(err.value)
    assert "\n" not in msg
    assert "ziglang" in msg and f"pip install {kernel.TOOLCHAIN}" in msg
    assert not list(other_source.parent.glob("*.so")) and not list(other_source.parent.glob(".kernel-*"))


def test_another_ziglang_version_is_refused_with_the_pin(other_source, monkeypatch):
    monkeypatch.setattr(kernel, "TOOLCHAIN", "ziglang==0.0.1")
    with pytest.raises(kernel.KernelBuildError, match=r"built with ziglang==0\.0\.1, but ziglang 0\.17\.0 is installed"):
        kernel.library_path()


def test_a_compile_error_shows_the_compiler_output(other_source):
    other_source.write_text("this is not C\n")
    with pytest.raises(kernel.KernelBuildError, match="compiling kernel.c for .* with zig cc failed:(.|\n)*error"):
        kernel.library_path()
    assert not list(other_source.parent.glob("*.so")) and not list(other_source.parent.glob(".kernel-*"))


def test_the_lambda_architectures_map_to_linux_targets():
    assert kernel.TARGETS == {"x86_64": "x86_64-linux-gnu.2.28", "arm64": "aarch64-linux-gnu.2.28"}
    assert set(kernel.TARGETS.values()) < set(kernel.PORTABLE_TARGETS)


def test_the_event_layout_matches_the_library_field_by_field():
    lib = binding.load()
    c_layout = binding.event_layout(lib)
    assert c_layout == binding.dtype_layout(binding.EVENT_DTYPE)
    assert [name for name, *_ in c_layout] == list(binding.EVENT_DTYPE.names)
    assert lib.k_event_size() == binding.EVENT_DTYPE.itemsize


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        # the same total size, two int32 fields swapped: only a field-by-field check sees it
        (lambda f: f[:8] + [f[9], f[8]] + f[10:], r"event field 'etype': kernel.c has offset 68.*EVENT_DTYPE has offset 64"),
        (lambda f: f[:7] + [("bw", "<i8")] + f[8:], r"event field 'bw':.*kind 'f'.*kind 'i'"),
        (lambda f: [("tss" if n == "ts" else n, t) for n, t in f], r"event field 'tss' of EVENT_DTYPE is not in kernel.c"),
        (lambda f: f[:-1], r"event field 'vsf' of kernel.c's event_t is not in EVENT_DTYPE"),
    ],
    ids=["swapped", "wrong-kind", "renamed", "missing"],
)
def test_a_layout_mismatch_names_the_field(fields, message):
    lib = binding.load()
    descr = [(n, binding.EVENT_DTYPE.fields[n][0].str) for n in binding.EVENT_DTYPE.names]
    with pytest.raises(kernel.KernelBuildError, match=message):
        binding.check_event_layout(lib, np.dtype(fields(descr)))


def test_the_template_slots_are_the_kernels():
    lib = binding.load()
    assert binding.kernel_slot_fields(lib) == template.SLOT_FIELDS
    assert lib.k_n_slots() == template.N_SLOTS
    swapped = (template.SLOT_FIELDS[1], template.SLOT_FIELDS[0], *template.SLOT_FIELDS[2:])
    with pytest.raises(kernel.KernelBuildError, match=r"template slot 0 is 'event_type' .* kernel.c renders 'event_id'"):
        binding.check_slots(lib, swapped)
    with pytest.raises(kernel.KernelBuildError, match=r"22 per-event slots, kernel.c renders 23: played_bitrate_kbps"):
        binding.check_slots(lib, template.SLOT_FIELDS[:-1])
