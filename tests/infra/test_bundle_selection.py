"""Per-function bundles: a function's asset holds (and its hash covers) the first-party
modules its handler imports, not the whole core. Editing acme_telemetry/local/web.py
redeploys no Lambda; editing a module one handler imports redeploys that one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from data_stack.constructs import python_function as pf

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "lambdas").glob("*/handler.py"))


def modules(name: str) -> set[str]:
    return set(pf.first_party_modules(ROOT / "lambdas" / name))


def test_functions_are_the_eight_handlers():
    assert FUNCTIONS == [
        "consumer",
        "generator",
        "msk_connectivity",
        "producer",
        "ws_authorizer",
        "ws_connect",
        "ws_default",
        "ws_disconnect",
    ]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_no_bundle_carries_the_local_pipeline_or_the_cli(name):
    for m in modules(name):
        assert not m.startswith(("acme_telemetry.local", "acme_telemetry.cli", "acme_telemetry.validate")), (name, m)
        assert m != "acme_telemetry.__main__", name


def test_each_bundle_follows_its_handler_imports():
    consumer = modules("consumer")
    assert {"acme_telemetry", "acme_telemetry.kpis", "acme_telemetry.protocol", "acme_telemetry.schema", "lambdas._env"} <= consumer
    assert not any(m.startswith(("acme_telemetry.simulator", "acme_telemetry.kafka")) for m in consumer)
    generator = modules("generator")
    assert {"acme_telemetry.simulator", "acme_telemetry.simulator.kernel", "acme_telemetry.schema"} <= generator
    assert "acme_telemetry.kpis" not in generator and "acme_telemetry.kafka" not in generator
    producer = modules("producer")
    assert "acme_telemetry.kafka" in producer and not any(m.startswith("acme_telemetry.simulator") for m in producer)
    assert {"acme_telemetry.protocol", "acme_telemetry.schema"} <= modules("ws_default")
    # these four use no core module at all: boto3, Powertools and the shared settings reader
    for name in ("ws_connect", "ws_disconnect", "ws_authorizer", "msk_connectivity"):
        assert not any(m.startswith("acme_telemetry") for m in modules(name)), name


def test_a_module_brings_its_packages_and_the_data_files_it_names():
    files = {p.relative_to(ROOT).as_posix() for p in pf.first_party_files(ROOT / "lambdas" / "generator")}
    assert {"acme_telemetry/__init__.py", "acme_telemetry/simulator/__init__.py", "acme_telemetry/simulator/kernel.py"} <= files
    assert "acme_telemetry/simulator/kernel.c" in files  # kernel.py hashes its source at run time
    assert not any(f.endswith(".so") for f in files)  # build output is added by bundle(), not hashed as source
    assert set(pf.built_files(ROOT / "lambdas" / "generator")) == {Path("acme_telemetry/simulator")}
    for name in FUNCTIONS:
        if name != "generator":
            assert pf.built_files(ROOT / "lambdas" / name) == {}, name


def test_relative_imports_and_function_level_imports_are_followed(tmp_path, monkeypatch):
    monkeypatch.setattr(pf, "ROOT", tmp_path)
    pkg = tmp_path / "acme_telemetry" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "acme_telemetry" / "__init__.py").write_text("")
    (tmp_path / "acme_telemetry" / "far.py").write_text("")
    (tmp_path / "acme_telemetry" / "unused.py").write_text("")
    (pkg / "__init__.py").write_text("from .near import f\n")
    (pkg / "near.py").write_text("def f():\n    from .. import far\n    return far\n")
    (pkg / "table.csv").write_text("a,b\n")
    (pkg / "other.csv").write_text("a,b\n")
    (pkg / "reads.py").write_text("from pathlib import Path\nDATA = Path(__file__).with_name('table.csv')\n")
    fn = tmp_path / "lambdas" / "fn"
    fn.mkdir(parents=True)
    (fn / "handler.py").write_text("import acme_telemetry.sub.reads\n")
    assert pf.first_party_modules(fn) == [
        "acme_telemetry",
        "acme_telemetry.far",
        "acme_telemetry.sub",
        "acme_telemetry.sub.near",
        "acme_telemetry.sub.reads",
    ]
    files = {p.relative_to(tmp_path).as_posix() for p in pf.first_party_files(fn)}
    assert "acme_telemetry/sub/table.csv" in files and "acme_telemetry/sub/other.csv" not in files
    assert "acme_telemetry/unused.py" not in files


def _copy_sources(dest: Path) -> None:
    """lambdas/ and acme_telemetry/ as source (no caches, no build output)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "_kernel-*", ".kernel-*")
    for top in ("lambdas", "acme_telemetry"):
        shutil.copytree(ROOT / top, dest / top, ignore=ignore)


def test_an_edit_redeploys_exactly_the_functions_that_import_the_file(tmp_path, monkeypatch):
    _copy_sources(tmp_path)
    monkeypatch.setattr(pf, "ROOT", tmp_path)
    monkeypatch.setattr(pf, "LAMBDAS_DIR", tmp_path / "lambdas")

    def hashes() -> dict[str, str]:
        return {name: pf.asset_hash(tmp_path / "lambdas" / name, "arm64") for name in FUNCTIONS}

    def touch(rel: str) -> None:
        path = tmp_path / rel
        path.write_text(path.read_text() + "\n# edited\n")

    before = hashes()
    assert len(set(before.values())) == len(FUNCTIONS)  # one asset per function
    touch("acme_telemetry/local/web.py")
    assert hashes() == before  # the local web server is in no bundle

    kpis = pf._module_file("acme_telemetry.kpis")  # a module or a package
    assert kpis is not None
    touch(kpis.relative_to(tmp_path).as_posix())  # only the KPI consumer computes KPIs
    after = hashes()
    assert {n for n in FUNCTIONS if after[n] != before[n]} == {"consumer"}

    before = after
    touch("acme_telemetry/simulator/kernel.c")  # the generator's kernel source
    after = hashes()
    assert {n for n in FUNCTIONS if after[n] != before[n]} == {"generator"}

    before = after
    touch("acme_telemetry/schema.py")  # the schema reaches whoever imports protocol or the simulator
    after = hashes()
    assert {n for n in FUNCTIONS if after[n] != before[n]} == {"consumer", "generator", "ws_default"}

    before = after
    touch("lambdas/ws_connect/requirements.txt")
    after = hashes()
    assert {n for n in FUNCTIONS if after[n] != before[n]} == {"ws_connect"}


@pytest.mark.parametrize("architecture", sorted(pf.ARCHITECTURES))
def test_the_docker_fallback_copies_the_same_files(architecture):
    a = pf.ARCHITECTURES[architecture]
    for name in FUNCTIONS:
        command = pf.docker_command(ROOT / "lambdas" / name, architecture)[2]
        for f in pf.first_party_files(ROOT / "lambdas" / name):
            assert f" {f.relative_to(ROOT).as_posix()}" in command, (name, f)
        assert "cp -r acme_telemetry" not in command
        # the function's wheels, whatever machine the image runs on
        assert all(f"--platform {tag}" in command for tag in a.platforms) and "--only-binary=:all:" in command, command
        other = next(o for o in pf.ARCHITECTURES.values() if o is not a)
        assert not any(tag in command for tag in other.platforms), command
    kernel_step = pf.docker_command(ROOT / "lambdas" / "generator", architecture)[2]
    assert f"-target {a.kernel_target} " in kernel_step and pf.kernel.library_name(a.kernel_target) in kernel_step
