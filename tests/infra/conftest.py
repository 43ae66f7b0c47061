"""Synthesize both profiles once per test session (cdk-nag on, as in app.py).

The built-in CloudFormation validation plugin is off here (it doubles synth time);
cfn-lint runs over the CLI's templates in CI instead (TOOLCHAIN.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Synth:
    config: object
    stacks: object
    templates: dict  # stack id (construct id) -> template dict
    outdir: Path

    def template(self, stack_id: str):
        from aws_cdk.assertions import Template

        return Template.from_json(self.templates[stack_id])

    def resources(self, stack_id: str, type_: str) -> dict:
        return {k: v for k, v in self.templates[stack_id]["Resources"].items() if v["Type"] == type_}

    def all_resources(self, type_: str):
        for sid in self.templates:
            for k, v in self.resources(sid, type_).items():
                yield sid, k, v


def synth(profile: str) -> Synth:
    import aws_cdk as cdk

    from data_stack.config import load_profile
    from data_stack.stacks import build

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    outdir = ROOT / "cdk.out" / f"test-{profile}"
    context = {**context, "profile": profile, "aws:cdk:enable-asset-metadata": True}
    app = cdk.App(context=context, outdir=str(outdir), builtin_cloud_formation_validation=False)
    config = load_profile(profile)
    stacks = build(app, config)
    assembly = app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
    # Keyed by the construct id (AcmeMskStack): stack names carry the stage (AcmeMskStack-dev).
    templates = {s.id: s.template for s in assembly.stacks}
    return Synth(config, stacks, templates, outdir)


@pytest.fixture(scope="session")
def dev() -> Synth:
    return synth("dev")


@pytest.fixture(scope="session")
def prod() -> Synth:
    return synth("prod")


@pytest.fixture(scope="session", params=["dev", "prod"])
def any_profile(request, dev, prod) -> Synth:
    return {"dev": dev, "prod": prod}[request.param]
