"""Load each lambdas/<fn>/handler.py as its own module, fake AWS credentials for moto, and
give the handlers what the Lambda runtime and PythonFunction give them: a context object
and Powertools' service name and metrics namespace."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
NAMESPACE = "AcmeTelemetryTest"


def load_handler(name: str):
    spec = importlib.util.spec_from_file_location(f"lambda_{name}_handler", LAMBDAS / name / "handler.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@dataclass
class FakeLambdaContext:
    """The attributes of the runtime's context object that Powertools' Logger reads."""

    function_name: str = "acme-data-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-west-2:123456789012:function:acme-data-test"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def context() -> FakeLambdaContext:
    return FakeLambdaContext()


def emitted_metrics(stdout: str) -> Counter:
    """Metric name -> summed value over the EMF documents in `stdout` (Powertools Metrics
    prints one JSON object per flush; Logger's JSON lines have no `_aws` key)."""
    totals: Counter = Counter()
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        doc = json.loads(line)
        if "_aws" not in doc:
            continue
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE
        for metric in directive["Metrics"]:
            assert metric["Unit"] == "Count"
            value = doc[metric["Name"]]
            totals[metric["Name"]] += sum(value) if isinstance(value, list) else value
    return totals


@pytest.fixture
def metrics_out(capsys):
    """Call it after a handler ran: the metrics that handler flushed."""
    return lambda: emitted_metrics(capsys.readouterr().out)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_REGION": "us-west-2",
        "POWERTOOLS_SERVICE_NAME": "test",
        "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
    }.items():
        monkeypatch.setenv(k, v)
