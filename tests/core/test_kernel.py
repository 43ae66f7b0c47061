"""The simulator's compiled kernel: built from source on demand, never stale, clear errors."""

from __future__ import annotations

import shutil

import pytest

from acme_telemetry.simulator import kernel


@pytest.fixture
def other_source(tmp_path, monkeypatch):
    """kernel.c with one extra comment, in a folder of its own: a source with no build yet."""
    src = tmp_path / "pkg" / "kernel.c"
    src.parent.mkdir()
    src.write_text(kernel.SOURCE.read_text() + "\n/* changed */\n")
    monkeypatch.setattr(kernel, "SOURCE", src)
    monkeypatch.setenv("ACME_KERNEL_DIR", str(tmp_path / "cache"))
    return src


def test_the_library_name_follows_the_source(other_source):
    name = kernel.library_name()
    assert name.startswith("_kernel-") and name.endswith(".so")
    other_source.write_text(other_source.read_text() + "/* again */\n")
    assert kernel.library_name() != name


def test_a_missing_build_is_compiled_beside_the_source(other_source):
    if not shutil.which("cc"):
        pytest.fail("cc is required to build the simulator kernel")
    path = kernel.library_path()
    assert path == other_source.parent / kernel.library_name() and path.is_file()
    assert kernel.library_path() == path  # found, not rebuilt
    assert not list(other_source.parent.glob(".kernel-*"))  # no temporary left behind


def test_no_compiler_is_a_clear_error(other_source, monkeypatch):
    monkeypatch.setenv("CC", "no-such-cc")
    with pytest.raises(kernel.KernelBuildError, match="C compiler 'no-such-cc' is not on PATH.*install gcc"):
        kernel.library_path()


def test_a_compile_error_shows_the_compiler_output(other_source):
    other_source.write_text("this is not C\n")
    with pytest.raises(kernel.KernelBuildError, match="compiling kernel.c with cc failed:(.|\n)*error"):
        kernel.library_path()
    assert not list(other_source.parent.glob("*.so")) and not list(other_source.parent.glob(".kernel-*"))


def test_the_event_layout_matches_the_library():
    lib = kernel.load()
    assert lib.k_event_size() == kernel.EVENT_DTYPE.itemsize
