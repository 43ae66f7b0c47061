"""Every module a Lambda handler can import is in its bundle (or in the Lambda runtime).

The tests run on the developer's Python with every dependency installed, so a handler
test cannot notice a package missing from the function's requirements.txt, nor a core
module the per-function bundle left out. So:

- this walks the imports of each handler and of the acme_telemetry modules it reaches
  (function-level imports too), and checks each third-party module against the real pip
  bundle;
- each bundle's first-party part (handler, the core modules it was given, build output)
  is imported in a fresh interpreter that cannot see the repository: a module the
  bundler left out fails the import.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "lambdas").glob("*/handler.py"))
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}
ARCHITECTURES = ("x86_64", "arm64")  # lambdas.architecture's values
READELF_MACHINE = {"x86_64": "Advanced Micro Devices X86-64", "arm64": "AArch64"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party_imports(handler: Path) -> set[str]:
    seen: set[Path] = set()
    todo, found = [handler], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            top = name.split(".")[0]
            if top in ("acme_telemetry", "data_stack", "lambdas"):
                f = _module_file(name)
                if f is not None:
                    todo.append(f)
                if top == "data_stack":
                    found.add(name)  # not bundled: a handler must not reach the CDK app
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
    return found


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_import_of_the_handler_is_bundled(name, architecture, tmp_path):
    from data_stack.constructs import python_function as pf

    fn = ROOT / "lambdas" / name
    out = tmp_path / "out"
    out.mkdir()
    pf.bundle(fn, out, architecture)
    missing = sorted(
        m
        for m in third_party_imports(fn / "handler.py") - RUNTIME_PROVIDED
        if not ((out / m).is_dir() or (out / f"{m}.py").is_file() or list(out.glob(f"{m}.*.so")))
    )
    assert not missing, f"lambdas/{name} imports {missing}, which its {architecture} bundle lacks (add to requirements.txt)"


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_generator_bundle_carries_a_kernel_the_lambda_runtime_can_load(architecture, tmp_path):
    """The simulator's compiled kernel is in the bundle under the name kernel.py looks for
    on the function's architecture, is built for that architecture, and needs no glibc
    newer than the python3.12 runtime's (Amazon Linux 2023: 2.34). Read with binutils'
    readelf (which reads any machine's ELF), independently of the bundler's own reader."""
    import re
    import shutil

    from acme_telemetry.simulator import kernel
    from data_stack.constructs import python_function as pf

    out = tmp_path / "out"
    out.mkdir()
    pf.bundle(ROOT / "lambdas" / "generator", out, architecture)
    so = out / "acme_telemetry" / "simulator" / kernel.library_name(kernel.TARGETS[architecture])
    assert so.is_file()
    assert sorted(p.name for p in (out / "acme_telemetry" / "simulator").glob("*.so")) == [so.name]
    readelf = shutil.which("readelf")
    assert readelf, "the test reads the kernel's ELF header and symbol versions with binutils' readelf"
    header = subprocess.run([readelf, "-h", str(so)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Class:\s+ELF64\n", header) and re.search(rf"Machine:\s+{READELF_MACHINE[architecture]}\n", header), header
    symbols = subprocess.run([readelf, "-V", "--wide", str(so)], capture_output=True, text=True, check=True).stdout
    versions = {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_([0-9.]+)", symbols)}
    assert versions and max(versions) <= (2, 34), sorted(versions)


# Runs in the fresh interpreter (-I: no PYTHONPATH, no current directory on sys.path):
# the bundle first, then only the standard library and site-packages for third-party code.
_IMPORT_PROBE = r"""
import importlib, json, sys
bundle = sys.argv[1]
sys.path.insert(0, bundle)
handler = importlib.import_module("handler")
ours = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())
        if n == "handler" or n.split(".")[0] in ("acme_telemetry", "lambdas", "data_stack")}
kernel = sys.modules.get("acme_telemetry.simulator.kernel")
target = kernel and kernel.TARGETS[sys.argv[2]]
lambda_kernel = kernel and str(__import__("pathlib").Path(kernel.__file__).with_name(kernel.library_name(target)))
print(json.dumps({"ours": ours, "entry": [e for e in ("handler", "on_event", "is_complete") if callable(getattr(handler, e, None))],
                  "kernel": lambda_kernel, "loads": kernel and kernel.host_target() == target and str(kernel.library_path())}))
"""


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_bundle_imports_its_handler_from_the_bundle_alone(name, architecture, tmp_path):
    from data_stack.constructs import python_function as pf

    out = tmp_path / "bundle"
    out.mkdir()
    pf.copy_first_party(ROOT / "lambdas" / name, out, architecture)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_", "POWERTOOLS_"))}
    env.update(AWS_DEFAULT_REGION="us-west-2", AWS_REGION="us-west-2", ACME_KERNEL_DIR=str(tmp_path / "no-kernel-cache"))
    r = subprocess.run(
        [sys.executable, "-I", "-c", _IMPORT_PROBE, str(out), architecture],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, f"lambdas/{name}: its bundle does not import:\n{r.stderr[-3000:]}"
    probe = json.loads(r.stdout.strip().splitlines()[-1])
    for module, path in probe["ours"].items():
        assert module.split(".")[0] != "data_stack", f"lambdas/{name} imports {module}"
        if path is not None:  # namespace packages (lambdas) have no file
            assert Path(path).is_relative_to(out), f"lambdas/{name}: {module} came from {path}, not the bundle"
    assert probe["entry"], f"lambdas/{name}/handler.py has no entry point"
    if probe["kernel"]:  # the generator: its bundle holds the architecture's kernel beside kernel.py
        assert Path(probe["kernel"]).is_relative_to(out) and Path(probe["kernel"]).is_file(), probe["kernel"]
    if probe["loads"]:  # and on a host of that architecture (Linux), that is the kernel it loads
        assert Path(probe["loads"]) == Path(probe["kernel"]), probe
