"""A Python Lambda bundled per function: its pip dependencies and only the first-party
modules its handler imports, built locally without Docker.

What a bundle holds (`bundle()`):

- pip's output for lambdas/<fn>/requirements.txt: `pip install --platform
  manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --only-binary=:all:
  --python-version 3.12 --no-compile -t <out>`, minus the packages the Lambda runtime
  already ships (boto3, botocore and their own dependencies);
- lambdas/<fn>/*.py at the top (the handler module);
- the first-party modules the handler imports, transitively (`first_party_files()`): an
  AST walk of every `import acme_telemetry...` / `from acme_telemetry... import ...`
  (and `lambdas._env`, the handlers' shared settings reader), function-level imports
  too, relative imports resolved. A module brings its package `__init__` files (which
  run on import, so they are walked as well) and the data files beside it that it names
  in a string literal (the simulator's kernel.c, which kernel.py hashes at run time);
- build output those modules load: the simulator's compiled kernel, cross-compiled with
  the pinned zig cc for the functions' architecture (kernel.build(dir,
  kernel.TARGETS[ARCHITECTURE.name]), cached in .cache/lambda-kernel/), only in a bundle
  that imports the simulator.

So the consumer carries kpis, protocol, times and schema, and no simulator or local/;
the WebSocket connect/disconnect functions carry no acme_telemetry at all.

The asset hash is ours (AssetHashType.CUSTOM): it covers exactly the function folder,
those first-party files, the pip arguments and this file's own source. Editing
acme_telemetry/local/web.py changes no function's asset, so no Lambda redeploys; editing
kpis.py changes the consumer's alone. CDK only knows the source folder, so without this a
changed bundler or requirement would silently keep an old bundle.

Powertools for AWS Lambda (Python) is bundled by pip (aws-lambda-powertools==3.37.0 pinned
in each requirements.txt), not taken from the AWS-managed layer: synth stays offline and
the template holds no layer ARN with a region, the Powertools account id and a layer
version to keep in step with the pin the tests run; the handlers get exactly the version
the tests ran. The cost, measured: 3.7 MB unpacked, 1.0 MB zipped per function (mostly
Powertools' event_handler package, which no handler imports; Lambda loads only what is
imported).

POWERTOOLS_SERVICE_NAME (the function folder's name) and POWERTOOLS_METRICS_NAMESPACE
(METRICS_NAMESPACE) are merged into the function's environment here, so every stack's
functions log and emit metrics under one namespace without repeating it; a value the
stack passes wins.

pip's output per requirements file is cached under .cache/lambda-pip/<hash>/, so
functions with the same requirements and repeated synths (dev, prod, tests) run pip
once. Docker is only a fallback when pip cannot run locally; it copies the same files.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from acme_telemetry.simulator import kernel
from data_stack import nag

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = ROOT / "lambdas"
CACHE_DIR = Path(os.environ.get("ACME_LAMBDA_PIP_CACHE", ROOT / ".cache" / "lambda-pip"))

RUNTIME = lambda_.Runtime.PYTHON_3_12
PYTHON_VERSION = "3.12"
METRICS_NAMESPACE = "AcmeTelemetry"
# manylinux2014 (glibc 2.17) wheels, and manylinux_2_28 ones for packages that no longer
# publish 2014 wheels (numpy >= 2.3): the python3.12 runtime is Amazon Linux 2023, glibc 2.34.
PIP_ARGS: tuple[str, ...] = (
    "--platform",
    "manylinux2014_x86_64",
    "--platform",
    "manylinux_2_28_x86_64",
    "--implementation",
    "cp",
    "--python-version",
    PYTHON_VERSION,
    "--only-binary=:all:",
    "--no-compile",
    "--disable-pip-version-check",
    "--no-input",
    "--quiet",
)
# The Lambda Python runtime ships the AWS SDK; bundling it again adds ~30 MB (docs/toolchain.md).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil", "six", "urllib3")
ARCHITECTURE = lambda_.Architecture.X86_64
# The top-level packages whose modules are copied file by file, as the handler reaches them.
FIRST_PARTY = ("acme_telemetry", "lambdas")


def lambda_kernel() -> Path:
    """The simulator kernel for the functions' architecture (zig cc cross-compiles it from
    any host), built once into .cache/lambda-kernel/ under its content-hashed name."""
    target = kernel.TARGETS[ARCHITECTURE.name]
    built = ROOT / ".cache" / "lambda-kernel" / kernel.library_name(target)
    return built if built.is_file() else kernel.build(built.parent, target)


# Build output a first-party module loads at run time, made here and added to the bundle
# beside it: module name -> the built file.
BUILT: dict[str, Callable[[], Path]] = {"acme_telemetry.simulator.kernel": lambda_kernel}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"))


def _module_file(name: str) -> Path | None:
    """ROOT/a/b.py or ROOT/a/b/__init__.py for module a.b, if it is first-party source."""
    if name.split(".")[0] not in FIRST_PARTY:
        return None
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imported(tree: ast.AST, package: str | None) -> set[str]:
    """Module names a module's code imports (anywhere in it): for `from m import a`, both m
    and m.a, since a may be a submodule; relative imports resolved against `package`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if package is None:
                    continue  # a relative import in a top-level handler module: not ours to follow
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return names


def _data_files(path: Path, tree: ast.AST) -> set[Path]:
    """Non-Python files beside `path` that its code names in a string literal."""
    siblings = {p.name: p for p in path.parent.iterdir() if p.is_file() and p.suffix not in (".py", ".pyc", ".pyo")}
    return {
        siblings[node.value]
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in siblings
    }


def _walk(function_dir: Path) -> tuple[list[Path], list[str]]:
    """(first-party files the handler reaches, sorted; their module names, sorted)."""
    todo: list[tuple[Path, str | None]] = [(p, None) for p in sorted(function_dir.glob("*.py"))]
    seen: set[Path] = set()
    files: set[Path] = set()
    modules: set[str] = set()
    while todo:
        path, module = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_bytes(), str(path))
        if module is not None:
            files.add(path)
            modules.add(module)
            files.update(_data_files(path, tree))
        package = None if module is None else (module if path.name == "__init__.py" else module.rpartition(".")[0])
        for name in _imported(tree, package):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
                prefix = ".".join(parts[:i])
                found = _module_file(prefix)
                if found is not None:
                    todo.append((found, prefix))
    return sorted(files), sorted(modules)


def first_party_files(function_dir: Path) -> list[Path]:
    """The first-party source and data files lambdas/<fn> needs, as absolute paths under ROOT."""
    return _walk(function_dir)[0]


def first_party_modules(function_dir: Path) -> list[str]:
    """The first-party module names lambdas/<fn>'s handler imports, transitively."""
    return _walk(function_dir)[1]


def built_files(function_dir: Path) -> dict[Path, Callable[[], Path]]:
    """Bundle-relative destination folder -> maker, for the build output the bundle needs."""
    return {Path(*module.split(".")[:-1]): make for module, make in BUILT.items() if module in first_party_modules(function_dir)}


def asset_hash(function_dir: Path) -> str:
    """sha256 over everything that ends up in (or decides) the bundle, and nothing else."""
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(repr((PIP_ARGS, RUNTIME_PROVIDED, RUNTIME.name)).encode())
    for p in [*_files(function_dir), *first_party_files(function_dir)]:
        h.update(str(p.relative_to(ROOT)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


def _remove_runtime_provided(out: Path) -> None:
    for entry in out.iterdir():
        base = entry.name.split("-")[0].lower() if entry.name.endswith((".dist-info", ".egg-info")) else entry.name.lower()
        if base.removesuffix(".py") in RUNTIME_PROVIDED:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def pip_install(requirements: Path) -> Path:
    """pip's output for one requirements file, built once and cached by content."""
    text = requirements.read_bytes() if requirements.exists() else b""
    key = hashlib.sha256(text + repr((PIP_ARGS, RUNTIME_PROVIDED)).encode() + Path(__file__).read_bytes()).hexdigest()[:24]
    target = CACHE_DIR / key
    if (target / ".complete").exists():
        return target
    tmp = CACHE_DIR / f"{key}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    wanted = [ln for ln in text.decode().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if wanted:
        cmd = [sys.executable, "-m", "pip", "install", "-r", str(requirements), *PIP_ARGS, "-t", str(tmp)]
        subprocess.run(cmd, check=True)
        _remove_runtime_provided(tmp)
        for extra in tmp.glob("bin"):
            shutil.rmtree(extra)
    (tmp / ".complete").write_text(" ".join(PIP_ARGS))
    try:
        tmp.rename(target)
    except OSError:  # another process finished first; theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def bundle(function_dir: Path, output_dir: Path) -> None:
    """Write the deployable folder: dependencies, then everything of ours."""
    deps = pip_install(function_dir / "requirements.txt")
    shutil.copytree(deps, output_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))
    copy_first_party(function_dir, output_dir)


def copy_first_party(function_dir: Path, output_dir: Path) -> None:
    """The bundle without pip's output: lambdas/<fn>/*.py at the top, the first-party files
    the handler reaches at their repository paths, and the build output they load."""
    for src in function_dir.glob("*.py"):
        shutil.copy2(src, output_dir / src.name)
    for src in first_party_files(function_dir):
        dest = output_dir / src.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    # The simulator's compiled kernel: plain C through ctypes (no Python ABI), built for
    # the function's architecture against glibc 2.28 (the python3.12 runtime has 2.34).
    for folder, make in built_files(function_dir).items():
        built = make()
        shutil.copy2(built, output_dir / folder / built.name)


@jsii.implements(cdk.ILocalBundling)
class LocalPipBundler:
    """CDK local bundling hook: returns True when it bundled, so Docker never starts."""

    def __init__(self, function_dir: Path) -> None:
        self.function_dir = function_dir

    def try_bundle(self, output_dir: str, *, image: Any = None, **_: Any) -> bool:
        try:
            bundle(self.function_dir, Path(output_dir))
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"local bundling of {self.function_dir.name} failed ({exc}); falling back to Docker", file=sys.stderr)
            return False
        return True


def docker_command(function_dir: Path) -> list[str]:
    """The Docker fallback's bundling command: the same files as bundle(), from /asset-input."""
    rel = function_dir.relative_to(ROOT)
    steps = [f"pip install -r {rel}/requirements.txt -t /asset-output --no-compile", f"cp {rel}/*.py /asset-output/"]
    sources = [str(p.relative_to(ROOT)) for p in first_party_files(function_dir)]
    if sources:
        steps.append(f"cp --parents {' '.join(map(shlex.quote, sources))} /asset-output/")
    if "acme_telemetry.simulator.kernel" in first_party_modules(function_dir):
        # the same pinned zig cc as kernel.build(), for the same target, under the same name
        src, target = kernel.SOURCE.relative_to(ROOT), kernel.TARGETS[ARCHITECTURE.name]
        flags = " ".join([*kernel.ZIG_FLAGS, *kernel.CFLAGS])
        steps.append(
            f"pip install {kernel.TOOLCHAIN} -t /tmp/zig --no-compile && PYTHONPATH=/tmp/zig python -m ziglang cc -target {target}"
            f" {flags} -o /asset-output/{src.parent}/{kernel.library_name(target)} {src} {' '.join(kernel.LDLIBS)}"
        )
    return ["bash", "-c", " && ".join(steps)]


def bundled_code(name: str) -> lambda_.Code:
    """Code for lambdas/<name>, bundled locally (Docker fallback with the same layout)."""
    function_dir = LAMBDAS_DIR / name
    if not (function_dir / "handler.py").is_file():
        raise FileNotFoundError(f"lambdas/{name}/handler.py does not exist")
    return lambda_.Code.from_asset(
        str(ROOT),
        asset_hash=asset_hash(function_dir),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=cdk.BundlingOptions(
            image=RUNTIME.bundling_image,
            local=LocalPipBundler(function_dir),
            command=docker_command(function_dir),
        ),
    )


def powertools_environment(name: str, environment: dict[str, str] | None) -> dict[str, str]:
    """The function's environment with Powertools' service name and metrics namespace
    added; a value the stack set itself wins."""
    return {"POWERTOOLS_SERVICE_NAME": name, "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE, **(environment or {})}


class PythonFunction(lambda_.Function):
    """lambda_.Function on Python 3.12 with lambdas/<name> bundled by LocalPipBundler, and
    Powertools' service name and metrics namespace in its environment."""

    def __init__(self, scope: Construct, id: str, *, name: str, architecture: str, handler: str = "handler.handler",
                 **props: Any) -> None:
        if architecture != ARCHITECTURE.name:
            raise ValueError(f"lambdas.architecture {architecture!r}: the bundler builds {ARCHITECTURE.name} bundles only")
        props["environment"] = powertools_environment(name, props.get("environment"))
        super().__init__(
            scope,
            id,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=bundled_code(name),
            handler=handler,
            **props,
        )

        # cdk-nag findings every function here shares, acknowledged once, with reasons.
        nag.acknowledge(
            self,
            "AwsSolutions-L1",
            "Pinned to python3.12 (supported until 2028-10) so the runtime matches the wheels the local bundler fetches with pip --python-version 3.12.",
        )
        nag.acknowledge(
            self,
            "AwsSolutions-IAM4",
            "AWSLambdaBasicExecutionRole only allows writing this function's CloudWatch logs (CreateLogGroup/Stream, PutLogEvents).",
            policy=iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole"),
        )
        if props.get("vpc") is not None:
            nag.acknowledge(
                self,
                "AwsSolutions-IAM4",
                "AWSLambdaVPCAccessExecutionRole holds the ENI actions Lambda needs to run in the VPC; EC2 does not scope them to resources.",
                policy=iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaVPCAccessExecutionRole"),
            )
