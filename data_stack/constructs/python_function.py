"""A Python Lambda whose pip dependencies are bundled locally, without Docker.

`LocalPipBundler` runs `pip install --platform manylinux2014_x86_64 --platform
manylinux_2_28_x86_64 --only-binary=:all: --python-version 3.12 --no-compile -t <out>` on
the function's requirements.txt, drops the
packages the Lambda runtime already ships (boto3, botocore and their own dependencies),
and copies lambdas/<fn>/*.py plus the acme_telemetry package next to them.

The asset hash is ours (AssetHashType.CUSTOM): it covers the function folder, the
acme_telemetry package, the requirements, the pip arguments and this file's own source,
so a change to any of them produces a new asset. CDK only knows the source folder, so
without this a changed bundler or requirement would silently keep an old bundle.

pip's output per requirements file is cached under .cache/lambda-pip/<hash>/, so the
five-plus functions with the same requirements and repeated synths (dev, prod, tests)
run pip once. Docker is only a fallback when pip cannot run locally.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from acme_telemetry.simulator import kernel

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = ROOT / "lambdas"
CORE_DIR = ROOT / "acme_telemetry"
CACHE_DIR = Path(os.environ.get("ACME_LAMBDA_PIP_CACHE", ROOT / ".cache" / "lambda-pip"))

RUNTIME = lambda_.Runtime.PYTHON_3_12
PYTHON_VERSION = "3.12"
# manylinux2014 (glibc 2.17) wheels, and manylinux_2_28 ones for packages that no longer
# publish 2014 wheels (numpy >= 2.3): the python3.12 runtime is Amazon Linux 2023, glibc 2.34.
PIP_ARGS: tuple[str, ...] = (
    "--platform", "manylinux2014_x86_64",
    "--platform", "manylinux_2_28_x86_64",
    "--implementation", "cp",
    "--python-version", PYTHON_VERSION,
    "--only-binary=:all:",
    "--no-compile",
    "--disable-pip-version-check",
    "--no-input",
    "--quiet",
)
# The Lambda Python runtime ships the AWS SDK; bundling it again adds ~30 MB (TOOLCHAIN.md).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil", "six", "urllib3")
# Build output inside acme_telemetry is not source: the simulator's compiled kernel is
# built from kernel.c (which is hashed) into every bundle by bundle().
_SKIP = ("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", "_kernel-*.so", ".kernel-*")


def _files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
        and not p.name.startswith(("_kernel-", ".kernel-"))
    )


def asset_hash(function_dir: Path) -> str:
    """sha256 over everything that ends up in (or decides) the bundle."""
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(repr((PIP_ARGS, RUNTIME_PROVIDED, RUNTIME.name)).encode())
    for base in (function_dir, CORE_DIR):
        for p in _files(base):
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
    """Write the deployable folder: dependencies, handler module(s), acme_telemetry."""
    deps = pip_install(function_dir / "requirements.txt")
    shutil.copytree(deps, output_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))
    for src in function_dir.glob("*.py"):
        shutil.copy2(src, output_dir / src.name)
    shutil.copytree(CORE_DIR, output_dir / CORE_DIR.name, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_SKIP))
    # The simulator's compiled kernel (plain C through ctypes: no Python ABI, glibc <= 2.29
    # symbols, so this machine's build runs on the python3.12 runtime's Amazon Linux 2023).
    built = kernel.library_path()
    shutil.copy2(built, output_dir / CORE_DIR.name / "simulator" / built.name)


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


def bundled_code(name: str) -> lambda_.Code:
    """Code for lambdas/<name>, bundled locally (Docker fallback with the same layout)."""
    function_dir = LAMBDAS_DIR / name
    if not (function_dir / "handler.py").is_file():
        raise FileNotFoundError(f"lambdas/{name}/handler.py does not exist")
    rel = function_dir.relative_to(ROOT)
    return lambda_.Code.from_asset(
        str(ROOT),
        asset_hash=asset_hash(function_dir),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=cdk.BundlingOptions(
            image=RUNTIME.bundling_image,
            local=LocalPipBundler(function_dir),
            command=[
                "bash", "-c",
                f"pip install -r {rel}/requirements.txt -t /asset-output --no-compile"
                f" && cp {rel}/*.py /asset-output/ && cp -r acme_telemetry /asset-output/"
                f" && gcc {' '.join(kernel.CFLAGS)} -o /asset-output/acme_telemetry/simulator/{kernel.library_name()}"
                f" acme_telemetry/simulator/kernel.c {' '.join(kernel.LDLIBS)}",
            ],
        ),
    )


class PythonFunction(lambda_.Function):
    """lambda_.Function on Python 3.12 with lambdas/<name> bundled by LocalPipBundler."""

    def __init__(self, scope: Construct, id: str, *, name: str, handler: str = "handler.handler", **props: Any) -> None:
        super().__init__(
            scope,
            id,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            code=bundled_code(name),
            handler=handler,
            **props,
        )
        # cdk-nag findings every function here shares, acknowledged once, with reasons.
        ack = lambda finding, reason: cdk.Validations.of(self).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))  # noqa: E731
        ack("AwsSolutions-L1", "Pinned to python3.12 (supported until 2028-10) so the runtime matches the wheels the local bundler fetches with pip --python-version 3.12.")
        ack(
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "AWSLambdaBasicExecutionRole only allows writing this function's CloudWatch logs (CreateLogGroup/Stream, PutLogEvents).",
        )
        if props.get("vpc") is not None:
            ack(
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
                "AWSLambdaVPCAccessExecutionRole holds the ENI actions Lambda needs to run in the VPC; EC2 does not scope them to resources.",
            )
