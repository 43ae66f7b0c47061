"""Every module a Lambda handler can import is in its bundle (or in the Lambda runtime).

The tests run on the developer's Python with every dependency installed, so a handler
test cannot notice a package missing from the function's requirements.txt. This walks
the imports of each handler and of the acme_telemetry modules it reaches (function-level
imports too), and checks each third-party module against the real pip bundle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "lambdas").glob("*/handler.py"))
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}


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
            if top in ("acme_telemetry", "data_stack"):
                f = _module_file(name)
                if f is not None:
                    todo.append(f)
                if top == "data_stack":
                    found.add(name)  # not bundled: a handler must not reach the CDK app
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
    return found


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_import_of_the_handler_is_bundled(name, tmp_path):
    from data_stack.constructs import python_function as pf

    fn = ROOT / "lambdas" / name
    out = tmp_path / "out"
    out.mkdir()
    pf.bundle(fn, out)
    missing = sorted(
        m for m in third_party_imports(fn / "handler.py") - RUNTIME_PROVIDED
        if not ((out / m).is_dir() or (out / f"{m}.py").is_file() or list(out.glob(f"{m}.*.so")))
    )
    assert not missing, f"lambdas/{name} imports {missing}, which its bundle lacks (add to requirements.txt)"


def test_generator_bundle_carries_a_kernel_the_lambda_runtime_can_load(tmp_path):
    """The simulator's compiled kernel is in the bundle under the name kernel.py looks
    for, and needs no glibc newer than the python3.12 runtime's (Amazon Linux 2023: 2.34)."""
    import re
    import shutil
    import subprocess

    from acme_telemetry.simulator import kernel
    from data_stack.constructs import python_function as pf

    out = tmp_path / "out"
    out.mkdir()
    pf.bundle(ROOT / "lambdas" / "generator", out)
    so = out / "acme_telemetry" / "simulator" / kernel.library_name()
    assert so.is_file()
    assert sorted(p.name for p in (out / "acme_telemetry" / "simulator").glob("*.so")) == [so.name]
    objdump = shutil.which("objdump")
    assert objdump, "binutils' objdump comes with gcc, which builds the kernel"
    symbols = subprocess.run([objdump, "-T", str(so)], capture_output=True, text=True, check=True).stdout
    versions = {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_([0-9.]+)", symbols)}
    assert versions and max(versions) <= (2, 34), sorted(versions)
