"""A Python Lambda bundled per function: its pip dependencies and only the first-party
modules its handler imports, built locally without Docker.

What a bundle holds (`bundle()`):

- pip's output for lambdas/<fn>/requirements.txt, for the function's architecture
  (lambdas.architecture, ARCHITECTURES): `pip install --platform manylinux2014_<m>
  --platform manylinux_2_28_<m> --only-binary=:all: --python-version 3.12 --no-compile
  -t <out>` with <m> x86_64 or aarch64, minus the packages the Lambda runtime already
  ships (boto3, botocore and their own dependencies);
- lambdas/<fn>/*.py at the top (the handler module);
- the first-party modules the handler imports, transitively (`first_party_files()`): an
  AST walk of every `import acme_telemetry...` / `from acme_telemetry... import ...`
  (and `lambdas._env`, the handlers' shared settings reader), function-level imports
  too, relative imports resolved. A module brings its package `__init__` files (which
  run on import, so they are walked as well) and the data files beside it that it names
  in a string literal (the simulator's kernel.c, which kernel.py hashes at run time);
- build output those modules load: the simulator's compiled kernel, cross-compiled with
  the pinned zig cc for the function's architecture (kernel.build(dir,
  kernel.TARGETS[architecture]), cached in .cache/lambda-kernel/), only in a bundle that
  imports the simulator.

Before a bundle is accepted, check_bundle() reads every native file in it (the kernel,
pip's extension modules and the libraries they load) with a small ELF reader
(read_elf(): e_ident's class, e_machine, and the GLIBC_x.y names in .gnu.version_r): each
must be a 64-bit ELF for the architecture (EM_X86_64 / EM_AARCH64) needing no newer glibc
than the runtime's (Amazon Linux 2023: 2.34). A mismatch fails synth with one line naming
the file, the host, the target and the fix. It runs on the local bundle and again on the
staged asset folder (which covers the Docker fallback and a folder left in cdk.out). The
host never decides what is bundled: a Mac or an arm64 laptop builds the same bundle.

So the consumer carries kpis, protocol, times and schema, and no simulator or local/;
the WebSocket connect/disconnect functions carry no acme_telemetry at all.

The asset hash is ours (AssetHashType.CUSTOM): it covers exactly the function folder,
those first-party files, the architecture with its pip arguments and kernel target, the
built kernel's name and digest, and this file's own source. Editing
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

pip's output per requirements file and architecture is cached under
.cache/lambda-pip/<hash>/ (the key covers the platform tags), so
functions with the same requirements and repeated synths (dev, prod, tests) run pip
once. Docker is only a fallback when pip cannot run locally; it copies the same files,
with the same platform tags and zig target (the image's own machine does not matter).
"""

from __future__ import annotations

import ast
import hashlib
import os
import platform
import re
import shlex
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from acme_telemetry.simulator import kernel
from data_stack import nag

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = ROOT / "lambdas"
CACHE_DIR = Path(os.environ.get("ACME_LAMBDA_PIP_CACHE", ROOT / ".cache" / "lambda-pip"))
KERNEL_CACHE_DIR = ROOT / ".cache" / "lambda-kernel"

RUNTIME = lambda_.Runtime.PYTHON_3_12
PYTHON_VERSION = "3.12"
# The python3.12 runtime is Amazon Linux 2023: glibc 2.34. No native code in a bundle may
# need a newer symbol version.
RUNTIME_GLIBC: tuple[int, ...] = (2, 34)
METRICS_NAMESPACE = "AcmeTelemetry"


@dataclass(frozen=True)
class Arch:
    """What one Lambda instruction set decides in a bundle."""

    name: str  # lambdas.architecture, aws_lambda.Architecture's name
    function: lambda_.Architecture
    # manylinux2014 (glibc 2.17) wheels, and manylinux_2_28 ones for packages that no
    # longer publish 2014 wheels (numpy >= 2.3); both are below the runtime's glibc 2.34.
    platforms: tuple[str, str]
    elf_machine: int  # e_machine of every native file in the bundle
    kernel_target: str  # zig target of the simulator kernel

    @property
    def pip_args(self) -> tuple[str, ...]:
        return (
            *(arg for tag in self.platforms for arg in ("--platform", tag)),
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


EM_X86_64, EM_AARCH64 = 62, 183
ARCHITECTURES: dict[str, Arch] = {
    "x86_64": Arch(
        "x86_64", lambda_.Architecture.X86_64, ("manylinux2014_x86_64", "manylinux_2_28_x86_64"), EM_X86_64, kernel.TARGETS["x86_64"]
    ),
    "arm64": Arch(
        "arm64", lambda_.Architecture.ARM_64, ("manylinux2014_aarch64", "manylinux_2_28_aarch64"), EM_AARCH64, kernel.TARGETS["arm64"]
    ),
}
# The Lambda Python runtime ships the AWS SDK; bundling it again adds ~30 MB (docs/toolchain.md).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil", "six", "urllib3")
# The top-level packages whose modules are copied file by file, as the handler reaches them.
FIRST_PARTY = ("acme_telemetry", "lambdas")


def arch(name: str) -> Arch:
    """The Arch for a lambdas.architecture value; ValueError naming the choices."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"lambdas.architecture {name!r} is not one of {', '.join(ARCHITECTURES)}") from None


def lambda_kernel(architecture: str) -> Path:
    """The simulator kernel for a Lambda architecture (zig cc cross-compiles it from any
    host), built once into .cache/lambda-kernel/ under its content-hashed name."""
    target = arch(architecture).kernel_target
    built = KERNEL_CACHE_DIR / kernel.library_name(target)
    return built if built.is_file() else kernel.build(built.parent, target)


# Build output a first-party module loads at run time, made here for an architecture and
# added to the bundle beside it: module name -> maker of the built file.
BUILT: dict[str, Callable[[str], Path]] = {"acme_telemetry.simulator.kernel": lambda_kernel}


# ---- native code checks: a small ELF reader (no binutils needed, any host) -------------

MACHINE_NAMES = {3: "i386", 40: "ARM (32-bit)", 62: "x86-64", 183: "AArch64", 243: "RISC-V"}
SHT_GNU_VERNEED = 0x6FFFFFFE
_MACHO_MAGICS = (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xfe\xed\xfa\xce", b"\xca\xfe\xba\xbe")


class NotElfError(ValueError):
    """The file is not an ELF object; the message says what it is instead."""


@dataclass(frozen=True)
class ElfInfo:
    elf_class: int  # 32 or 64
    machine: int  # e_machine
    glibc: tuple[tuple[int, ...], ...]  # the GLIBC_x.y[.z] symbol versions it needs, sorted

    @property
    def machine_name(self) -> str:
        return MACHINE_NAMES.get(self.machine, f"e_machine {self.machine}")

    @property
    def max_glibc(self) -> tuple[int, ...] | None:
        return self.glibc[-1] if self.glibc else None


def _glibc_version(name: bytes) -> tuple[int, ...] | None:
    m = re.fullmatch(rb"GLIBC_(\d+(?:\.\d+)+)", name)
    return tuple(int(x) for x in m.group(1).split(b".")) if m else None


def read_elf(path: Path) -> ElfInfo:
    """ELF class, machine and the GLIBC versions the file needs (from .gnu.version_r,
    whose names are in the section it links to, .dynstr). NotElfError otherwise."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF":
        what = "a Mach-O file (macOS)" if data[:4] in _MACHO_MAGICS else f"not an ELF file (starts {data[:4]!r})"
        raise NotElfError(what)
    elf_class = {1: 32, 2: 64}.get(data[4])
    order = {1: "<", 2: ">"}.get(data[5])
    if elf_class is None or order is None:
        raise NotElfError(f"an ELF file with an unknown class {data[4]} or data encoding {data[5]}")
    (machine,) = struct.unpack_from(order + "H", data, 18)
    if elf_class == 64:
        (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x3A)
        sh_fmt = order + "IIQQQQIIQQ"
    else:
        (shoff,) = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x2E)
        sh_fmt = order + "IIIIIIIIII"
    # (sh_type, sh_offset, sh_size, sh_link, sh_info) of each section
    sections = [
        (f[1], f[4], f[5], f[6], f[7])
        for f in (struct.unpack_from(sh_fmt, data, shoff + i * shentsize) for i in range(shnum if shoff else 0))
    ]
    names: set[bytes] = set()
    for sh_type, offset, _size, link, count in sections:
        if sh_type != SHT_GNU_VERNEED:
            continue
        strtab = sections[link][1]
        entry = offset
        for _ in range(count):  # Elf_Verneed: vn_version, vn_cnt, vn_file, vn_aux, vn_next
            _version, cnt, _file, aux, nxt = struct.unpack_from(order + "HHIII", data, entry)
            at = entry + aux
            for _ in range(cnt):  # Elf_Vernaux: vna_hash, vna_flags, vna_other, vna_name, vna_next
                _hash, _flags, _other, name, anext = struct.unpack_from(order + "IHHII", data, at)
                start = strtab + name
                names.add(data[start : data.index(b"\0", start)])
                at += anext
            entry += nxt
    if not sections:  # no section headers (stripped hard): the version names are still in the file
        names = set(re.findall(rb"GLIBC_\d+(?:\.\d+)+(?=\0)", data))
    versions = sorted({v for v in map(_glibc_version, names) if v is not None})
    return ElfInfo(elf_class, machine, tuple(versions))


class BundleCheckError(RuntimeError):
    """Native code in a bundle does not match the function's architecture or runtime; the
    one-line message names the file, the host, the target and the fix."""


def _is_native(path: Path) -> bool:
    return path.is_file() and (path.name.endswith(".so") or ".so." in path.name)


def _version(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v))


def check_native_file(path: Path, architecture: str, *, label: str, fix: str) -> ElfInfo:
    """The file is a 64-bit ELF for the architecture that needs no newer glibc than the
    runtime's; BundleCheckError otherwise."""
    a = arch(architecture)
    want = f"a 64-bit {MACHINE_NAMES[a.elf_machine]} ELF needing at most GLIBC_{_version(RUNTIME_GLIBC)}"
    host = f"host {platform.system()}/{platform.machine()}"
    try:
        info = read_elf(path)
    except NotElfError as exc:
        raise BundleCheckError(
            f"{label} is {exc}, but the {a.name} function needs {want} (built on {host}, target {a.kernel_target}); fix: {fix}"
        ) from None
    problems = []
    if info.elf_class != 64:
        problems.append(f"is {info.elf_class}-bit")
    if info.machine != a.elf_machine:
        problems.append(f"is built for {info.machine_name}")
    if info.max_glibc is not None and info.max_glibc > RUNTIME_GLIBC:
        problems.append(f"needs GLIBC_{_version(info.max_glibc)}")
    if problems:
        raise BundleCheckError(
            f"{label} {' and '.join(problems)}, but the {a.name} function needs {want} (built on {host}, target {a.kernel_target}); fix: {fix}"
        )
    return info


def check_bundle(function_dir: Path, bundle_dir: Path, architecture: str) -> dict[str, ElfInfo]:
    """Every native file in a bundle (the simulator kernel, pip's extension modules and
    the libraries they load) is for the function's architecture and runtime, and each
    piece of build output is where the module that loads it looks. Bundle-relative path
    -> what was read. BundleCheckError (one line) on the first mismatch."""
    a = arch(architecture)
    fn = function_dir.name
    built = {folder / make(architecture).name for folder, make in built_files(function_dir).items()}
    for rel in sorted(built):
        if not (bundle_dir / rel).is_file():
            raise BundleCheckError(
                f"lambdas/{fn}: the {a.name} bundle lacks {rel.as_posix()}, the kernel built for {a.kernel_target} that kernel.py loads "
                f"on Lambda (host {platform.system()}/{platform.machine()}); fix: delete cdk.out and synth again"
            )
    checked: dict[str, ElfInfo] = {}
    for path in sorted(p for p in bundle_dir.rglob("*") if _is_native(p)):
        rel = path.relative_to(bundle_dir)
        if rel in built or rel.parent in {b.parent for b in built} and rel.name.startswith("_kernel-"):
            fix = (
                f"delete {KERNEL_CACHE_DIR} and cdk.out, and synth again: the bundler cross-compiles it with zig cc "
                f"for {a.kernel_target} from any host (kernel.build(dir, kernel.TARGETS[{a.name!r}]))"
            )
            label = f"lambdas/{fn}: the simulator kernel {rel.as_posix()}"
        else:
            fix = (
                f"delete {CACHE_DIR} and cdk.out, and synth again (pip fetches {' / '.join(a.platforms)} wheels); "
                f"if it persists, pin a version of that package in lambdas/{fn}/requirements.txt that has one"
            )
            label = f"lambdas/{fn}: {rel.as_posix()} (from pip)"
        checked[rel.as_posix()] = check_native_file(path, architecture, label=label, fix=fix)
    return checked


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


def built_files(function_dir: Path) -> dict[Path, Callable[[str], Path]]:
    """Bundle-relative destination folder -> maker (given the architecture), for the build
    output the bundle needs."""
    return {Path(*module.split(".")[:-1]): make for module, make in BUILT.items() if module in first_party_modules(function_dir)}


def asset_hash(function_dir: Path, architecture: str) -> str:
    """sha256 over everything that ends up in (or decides) the bundle, and nothing else:
    the architecture and its pip arguments, and each piece of build output by name (which
    covers its zig target) and digest, so a bundle for another machine never keeps the
    same S3 key."""
    a = arch(architecture)
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(repr((a.name, a.pip_args, RUNTIME_PROVIDED, RUNTIME.name)).encode())
    for p in [*_files(function_dir), *first_party_files(function_dir)]:
        h.update(str(p.relative_to(ROOT)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    for folder, make in sorted(built_files(function_dir).items()):
        built = make(architecture)
        h.update(f"{folder.as_posix()}/{built.name}\0{hashlib.sha256(built.read_bytes()).hexdigest()}".encode())
    return h.hexdigest()


def _remove_runtime_provided(out: Path) -> None:
    for entry in out.iterdir():
        base = entry.name.split("-")[0].lower() if entry.name.endswith((".dist-info", ".egg-info")) else entry.name.lower()
        if base.removesuffix(".py") in RUNTIME_PROVIDED:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def pip_install(requirements: Path, architecture: str) -> Path:
    """pip's output for one requirements file and architecture, built once and cached by
    content (the key covers the platform tags)."""
    pip_args = arch(architecture).pip_args
    text = requirements.read_bytes() if requirements.exists() else b""
    key = hashlib.sha256(text + repr((pip_args, RUNTIME_PROVIDED)).encode() + Path(__file__).read_bytes()).hexdigest()[:24]
    target = CACHE_DIR / key
    if (target / ".complete").exists():
        return target
    tmp = CACHE_DIR / f"{key}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    wanted = [ln for ln in text.decode().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if wanted:
        cmd = [sys.executable, "-m", "pip", "install", "-r", str(requirements), *pip_args, "-t", str(tmp)]
        subprocess.run(cmd, check=True)
        _remove_runtime_provided(tmp)
        for extra in tmp.glob("bin"):
            shutil.rmtree(extra)
    (tmp / ".complete").write_text(" ".join(pip_args))
    try:
        tmp.rename(target)
    except OSError:  # another process finished first; theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def bundle(function_dir: Path, output_dir: Path, architecture: str) -> dict[str, ElfInfo]:
    """Write the deployable folder for an architecture: dependencies, then everything of
    ours; then check its native code (check_bundle) and return what was read."""
    deps = pip_install(function_dir / "requirements.txt", architecture)
    shutil.copytree(deps, output_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))
    copy_first_party(function_dir, output_dir, architecture)
    return check_bundle(function_dir, output_dir, architecture)


def copy_first_party(function_dir: Path, output_dir: Path, architecture: str) -> None:
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
        built = make(architecture)
        shutil.copy2(built, output_dir / folder / built.name)


@jsii.implements(cdk.ILocalBundling)
class LocalPipBundler:
    """CDK local bundling hook: returns True when it bundled, so Docker never starts. A
    bundle that fails check_bundle fails synth (Docker would not build a better one)."""

    def __init__(self, function_dir: Path, architecture: str) -> None:
        self.function_dir = function_dir
        self.architecture = architecture

    def try_bundle(self, output_dir: str, *, image: Any = None, **_: Any) -> bool:
        try:
            bundle(self.function_dir, Path(output_dir), self.architecture)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"local bundling of {self.function_dir.name} failed ({exc}); falling back to Docker", file=sys.stderr)
            return False
        return True


def docker_command(function_dir: Path, architecture: str) -> list[str]:
    """The Docker fallback's bundling command: the same files as bundle(), from /asset-input,
    with the same platform tags and kernel target (the image's own machine does not matter)."""
    a = arch(architecture)
    rel = function_dir.relative_to(ROOT)
    pip_args = " ".join(arg for arg in a.pip_args if arg != "--quiet")
    steps = [f"pip install -r {rel}/requirements.txt {pip_args} -t /asset-output", f"cp {rel}/*.py /asset-output/"]
    sources = [str(p.relative_to(ROOT)) for p in first_party_files(function_dir)]
    if sources:
        steps.append(f"cp --parents {' '.join(map(shlex.quote, sources))} /asset-output/")
    if "acme_telemetry.simulator.kernel" in first_party_modules(function_dir):
        # the same pinned zig cc as kernel.build(), for the same target, under the same name
        src, target = kernel.SOURCE.relative_to(ROOT), a.kernel_target
        flags = " ".join([*kernel.ZIG_FLAGS, *kernel.CFLAGS])
        steps.append(
            f"pip install {kernel.TOOLCHAIN} -t /tmp/zig --no-compile && PYTHONPATH=/tmp/zig python -m ziglang cc -target {target}"
            f" {flags} -o /asset-output/{src.parent}/{kernel.library_name(target)} {src} {' '.join(kernel.LDLIBS)}"
        )
    return ["bash", "-c", " && ".join(steps)]


def bundled_code(name: str, architecture: str) -> lambda_.Code:
    """Code for lambdas/<name> on an architecture, bundled locally (Docker fallback with
    the same layout)."""
    function_dir = LAMBDAS_DIR / name
    if not (function_dir / "handler.py").is_file():
        raise FileNotFoundError(f"lambdas/{name}/handler.py does not exist")
    return lambda_.Code.from_asset(
        str(ROOT),
        asset_hash=asset_hash(function_dir, architecture),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=cdk.BundlingOptions(
            image=RUNTIME.bundling_image,
            local=LocalPipBundler(function_dir, architecture),
            command=docker_command(function_dir, architecture),
        ),
    )


def powertools_environment(name: str, environment: dict[str, str] | None) -> dict[str, str]:
    """The function's environment with Powertools' service name and metrics namespace
    added; a value the stack set itself wins."""
    return {"POWERTOOLS_SERVICE_NAME": name, "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE, **(environment or {})}


class PythonFunction(lambda_.Function):
    """lambda_.Function on Python 3.12 for `architecture` (lambdas.architecture: "x86_64" or
    "arm64"), with lambdas/<name> bundled for it by LocalPipBundler, and Powertools'
    service name and metrics namespace in its environment.

    After staging, the asset folder CDK will upload is checked again (check_bundle): that
    also covers a Docker-fallback bundle and an asset folder left in cdk.out."""

    def __init__(self, scope: Construct, id: str, *, name: str, architecture: str, handler: str = "handler.handler", **props: Any) -> None:
        a = arch(architecture)
        props["environment"] = powertools_environment(name, props.get("environment"))
        super().__init__(
            scope,
            id,
            runtime=RUNTIME,
            architecture=a.function,
            code=bundled_code(name, a.name),
            handler=handler,
            **props,
        )
        staged = self.staged_bundle()
        if staged is not None:
            check_bundle(LAMBDAS_DIR / name, staged, a.name)

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

    def staged_bundle(self) -> Path | None:
        """The bundled asset folder in the cloud assembly, or None when this stack is not
        bundled in this run (e.g. `cdk deploy OtherStack`, or bundling-stacks [])."""
        asset = self.node.try_find_child("Code")
        if not isinstance(asset, s3_assets.Asset) or not cdk.Stack.of(self).bundling_required:
            return None
        stage = cdk.Stage.of(self)
        path = Path(asset.asset_path) if stage is None else Path(stage.outdir) / asset.asset_path
        return path if path.is_dir() else None
