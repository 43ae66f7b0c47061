"""pyproject.toml declares the package: the `acme-telemetry` console script runs the same CLI
as `python -m acme_telemetry`, the package is acme_telemetry alone (with the kernel's C
source), and its dependencies agree with requirements.txt.

The metadata comes from setuptools' own reading of pyproject.toml (egg_info, which needs
neither the network nor the `wheel` package); the entry point is resolved with
importlib.metadata in a throwaway venv that sees only that metadata, the package, and the
project venv's third-party packages, the way an installed console script resolves it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The egg-info setuptools writes from pyproject.toml (outside the repo)."""
    base = tmp_path_factory.mktemp("meta")
    r = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "egg_info", "--egg-base", str(base)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    (info,) = base.glob("*.egg-info")
    return info


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, metadata: Path) -> Path:
    """A throwaway venv: the package (acme_telemetry only, as the editable install maps it),
    its metadata, the project venv's packages; and bin/acme-telemetry written from the
    entry point the metadata declares."""
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home / "v")], check=True, timeout=60)
    py = home / "v" / "bin" / "python"
    src = home / "src"
    src.mkdir()
    (src / "acme_telemetry").symlink_to(ROOT / "acme_telemetry")
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    project_site = sysconfig.get_paths()["purelib"]
    (site / "_acme_test.pth").write_text(f"{src}\n{metadata.parent}\n{project_site}\n")
    probe = (
        "from importlib.metadata import entry_points\n"
        "(ep,) = entry_points(group='console_scripts', name='acme-telemetry')\n"
        "print(ep.module, ep.attr)\n"
    )
    r = subprocess.run([str(py), "-c", probe], cwd=home, env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    module, attr = r.stdout.split()
    script = home / "v" / "bin" / "acme-telemetry"
    # what pip writes for a console_scripts entry point
    script.write_text(f"#!{py}\nimport sys\nfrom {module} import {attr}\nif __name__ == '__main__':\n    sys.exit({attr}())\n")
    script.chmod(0o755)
    return home / "v"


def test_the_console_script_runs_the_cli_and_generate_matches_python_m(venv: Path, tmp_path: Path):
    env = _clean_env(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    help_ = subprocess.run(["acme-telemetry", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0, help_.stderr
    assert help_.stdout.startswith("usage: acme-telemetry")
    for command in ("generate", "validate", "local", "query", "bench"):
        assert command in help_.stdout

    args = ["generate", "--events", "3", "--seed", "1"]
    script = subprocess.run(["acme-telemetry", *args], cwd=tmp_path, env=env, capture_output=True, timeout=60)
    module = subprocess.run(
        [sys.executable, "-m", "acme_telemetry", *args], cwd=ROOT, env=_clean_env(PYTHONPATH=str(ROOT)), capture_output=True, timeout=60
    )
    assert script.returncode == module.returncode == 0, (script.stderr, module.stderr)
    assert script.stdout == module.stdout
    assert script.stdout.count(b"\n") == 3 and script.stdout.startswith(b'{"event_id":')

    bad = subprocess.run(["acme-telemetry", "generate", "--events", "x"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr == "acme-telemetry generate: error: --events must be a whole number, got 'x'\n"


def test_the_package_is_acme_telemetry_alone_with_the_kernel_source(metadata: Path):
    assert (metadata / "top_level.txt").read_text().split() == ["acme_telemetry"]
    sources = (metadata / "SOURCES.txt").read_text().split()
    assert "acme_telemetry/simulator/kernel.c" in sources
    assert "acme_telemetry/cli/app.py" in sources
    assert not [s for s in sources if s.split("/")[0] in ("data_stack", "lambdas", "bench", "tests", "dashboard")]
    assert PYPROJECT["project"]["scripts"] == {"acme-telemetry": "acme_telemetry.cli:main"}
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"


def test_declared_dependencies_are_pinned_in_requirements_txt_within_their_bounds():
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            req = Requirement(line)
            pins[req.name.lower()] = next(iter(req.specifier)).version
    declared = [Requirement(d) for d in PYPROJECT["project"]["dependencies"]]
    assert declared
    for req in declared:
        name = req.name.lower()
        assert name in pins, f"{req.name} is declared by the package but not pinned in requirements.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (str(req), pins[name])
    # the CDK app's packages are the repo's, not the package's
    assert not {"aws-cdk-lib", "constructs", "cdk-nag"} & {r.name.lower() for r in declared}


def test_bench_outside_a_checkout_is_a_one_line_error(tmp_path: Path):
    site = tmp_path / "site"
    shutil.copytree(ROOT / "acme_telemetry", site / "acme_telemetry", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    run = [sys.executable, "-c", "import sys; from acme_telemetry.cli import main; sys.exit(main(sys.argv[1:]))"]
    r = subprocess.run(
        [*run, "bench", "--quick"], cwd=tmp_path, env=_clean_env(PYTHONPATH=str(site)), capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert r.stderr == (
        "acme-telemetry bench: error: bench needs the repository checkout (its bench/ folder); run it from a clone of the repo\n"
    )
    ok = subprocess.run(
        [*run, "generate", "--help"], cwd=tmp_path, env=_clean_env(PYTHONPATH=str(site)), capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0 and ok.stdout.startswith("usage: acme-telemetry generate")
