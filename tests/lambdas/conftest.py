"""Load each lambdas/<fn>/handler.py as its own module, and fake AWS credentials for moto."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"


def load_handler(name: str):
    spec = importlib.util.spec_from_file_location(f"lambda_{name}_handler", LAMBDAS / name / "handler.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-west-2", "AWS_REGION": "us-west-2",
    }.items():
        monkeypatch.setenv(k, v)
