"""scripts/verify-aws, with botocore's Stubber on the real cloudformation, lambda, s3,
athena and secretsmanager models: each step's PASS/FAIL and the exit status."""

from __future__ import annotations

import datetime as dt
import importlib.machinery
import importlib.util
import io
import sys
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify-aws"
NOW = dt.datetime(2026, 3, 7, 14, 5, tzinfo=dt.UTC)
REGION = "eu-west-1"
OUTPUTS = {
    "AcmeDataGenStack": {"GeneratorFunctionName": "acme-data-dev-generator", "DeliveryStreamName": "acme-data-dev-delivery-stream"},
    "AcmeDataLakeStack": {
        "DataBucketName": "acme-telemetry-data-dev-111122223333-eu-west-1",
        "GlueDatabaseName": "acme_telemetry_dev",
        "AthenaWorkGroupName": "acme-telemetry-dev",
    },
    "AcmeDashboardStack": {
        "DashboardTokenSecretArn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:DashboardToken-abc",
        "WebSocketApiEndpoint": "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod",
        # CDK may suffix an output key with a hash; verify-aws finds it by prefix
    },
}


@pytest.fixture(scope="module")
def verify():
    loader = importlib.machinery.SourceFileLoader("verify_aws", str(SCRIPT))
    spec = importlib.util.spec_from_loader("verify_aws", loader)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["verify_aws"] = mod  # dataclasses look their module up
    loader.exec_module(mod)
    return mod


class Aws:
    def __init__(self):
        self.clients = {n: boto3.client(n, region_name=REGION) for n in ("cloudformation", "lambda", "s3", "athena", "secretsmanager")}
        self.stubs = {n: Stubber(c) for n, c in self.clients.items()}

    def __call__(self, name):
        return self.clients[name]

    def add(self, service, op, response, params=None):
        self.stubs[service].add_response(op, response, params)

    def error(self, service, op, code, message="nope"):
        self.stubs[service].add_client_error(op, service_error_code=code, service_message=message, http_status_code=400)

    def __enter__(self):
        for s in self.stubs.values():
            s.activate()
        return self

    def __exit__(self, *exc):
        for s in self.stubs.values():
            s.assert_no_pending_responses()
            s.deactivate()


def outputs_ok(aws, stage="dev", hashed=False):
    for stack, outs in OUTPUTS.items():
        items = [
            {"OutputKey": (k + "A1B2C3D4" if hashed and k == "WebSocketApiEndpoint" else k), "OutputValue": v} for k, v in outs.items()
        ]
        aws.add(
            "cloudformation",
            "describe_stacks",
            {"Stacks": [{"StackName": f"{stack}-{stage}", "CreationTime": NOW, "StackStatus": "CREATE_COMPLETE", "Outputs": items}]},
            {"StackName": f"{stack}-{stage}"},
        )


def invoke_ok(aws, error=None):
    body = b'{"events": 4200, "invocations": 3}' if not error else b'{"errorMessage": "boom"}'
    resp = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))}
    if error:
        resp["FunctionError"] = "Unhandled"
    aws.add("lambda", "invoke", resp, {"FunctionName": "acme-data-dev-generator", "InvocationType": "RequestResponse", "Payload": ANY})


def listing(aws, keys):
    bucket = OUTPUTS["AcmeDataLakeStack"]["DataBucketName"]
    resp = {"KeyCount": len(keys), "IsTruncated": False, "Name": bucket, "Prefix": "telemetry/year=2026/month=03/day=07/"}
    if keys:
        resp["Contents"] = [{"Key": k, "Size": 100} for k in keys]
    aws.add("s3", "list_objects_v2", resp, {"Bucket": bucket, "Prefix": "telemetry/year=2026/month=03/day=07/", "MaxKeys": 10})


def athena_ok(aws, states=("RUNNING", "SUCCEEDED"), rows=(("heartbeat", "3900"), ("start", "40")), query=ANY):
    aws.add("athena", "start_query_execution", {"QueryExecutionId": "q-1"}, {"QueryString": query, "WorkGroup": "acme-telemetry-dev"})
    for state in states:
        status = {"State": state}
        if state == "FAILED":
            status["StateChangeReason"] = "TABLE_NOT_FOUND: acme_telemetry_dev.streaming_events"
        aws.add(
            "athena", "get_query_execution", {"QueryExecution": {"QueryExecutionId": "q-1", "Status": status}}, {"QueryExecutionId": "q-1"}
        )
    if states[-1] == "SUCCEEDED":
        data = [{"Data": [{"VarCharValue": "event_type"}, {"VarCharValue": "count"}]}]
        data += [{"Data": [{"VarCharValue": a}, {"VarCharValue": b}]} for a, b in rows]
        aws.add("athena", "get_query_results", {"ResultSet": {"Rows": data}}, {"QueryExecutionId": "q-1"})


def secret_ok(aws):
    aws.add(
        "secretsmanager",
        "get_secret_value",
        {"SecretString": "t0ken", "Name": "DashboardToken-abc"},
        {"SecretId": OUTPUTS["AcmeDashboardStack"]["DashboardTokenSecretArn"]},
    )


def run(verify, aws, connect=lambda url: 101):
    lines = []
    report = verify.run(aws, "dev", wait_s=20.0, poll_s=20.0, now=lambda: NOW, sleep=lambda s: None, connect=connect, out=lines.append)
    return report, lines


def test_every_step_passes_on_a_flowing_pipeline(verify):
    aws = Aws()
    outputs_ok(aws, hashed=True)
    invoke_ok(aws)
    listing(aws, ["telemetry/year=2026/month=03/day=07/hour=14/acme-data-dev-delivery-stream-1-2026-03-07-14-00-00-x.gz"])
    athena_ok(aws)
    secret_ok(aws)
    urls = []
    with aws:
        report, lines = run(verify, aws, connect=lambda url: urls.append(url) or 101)
    assert report.ok, lines
    assert [n for n, _, _ in report.results] == ["outputs", "generator", "lake", "athena", "websocket"]
    assert all(line.startswith("PASS ") for line in lines)
    assert urls == ["wss://abc123.execute-api.eu-west-1.amazonaws.com/prod?token=t0ken"]
    assert "heartbeat=3900" in lines[3]


def test_the_athena_query_is_the_readme_query_on_the_stage_database(verify):
    from data_stack.queries import README_QUERY

    expected = README_QUERY.replace("acme_telemetry.streaming_events", "acme_telemetry_dev.streaming_events")
    aws = Aws()
    athena_ok(aws, query=expected)  # the stubber checks the request equals this
    with aws:
        ok, detail = verify.check_athena(aws("athena"), "acme_telemetry_dev", "acme-telemetry-dev", 10, 5, lambda s: None)
    assert ok and "2 event types this month" in detail


def test_a_failing_generator_fails_and_skips_what_needs_it(verify):
    aws = Aws()
    outputs_ok(aws)
    invoke_ok(aws, error=True)
    secret_ok(aws)
    with aws:
        report, lines = run(verify, aws)
    assert not report.ok
    status = {n: ok for n, ok, _ in report.results}
    assert status == {"outputs": True, "generator": False, "lake": False, "athena": False, "websocket": True}
    assert "Unhandled" in lines[1] and "boom" in lines[1] and lines[2].startswith("FAIL lake: skipped")


def test_no_objects_today_fails_the_lake_step_with_what_to_check(verify):
    aws = Aws()
    outputs_ok(aws)
    invoke_ok(aws)
    listing(aws, [])
    listing(aws, [])  # polled again once before giving up
    secret_ok(aws)
    with aws:
        report, lines = run(verify, aws)
    lake = next(line for line in lines if " lake:" in line)
    assert lake.startswith("FAIL") and "year=2026/month=03/day=07/" in lake and "firehose" in lake
    assert any(line.startswith("FAIL athena: skipped") for line in lines)


def test_a_failed_query_and_a_refused_token_fail_with_the_reason(verify):
    aws = Aws()
    outputs_ok(aws)
    invoke_ok(aws)
    listing(aws, ["telemetry/year=2026/month=03/day=07/hour=14/x.gz"])
    athena_ok(aws, states=("QUEUED", "FAILED"))
    secret_ok(aws)

    def refuse(url):
        raise ConnectionRefusedError("server rejected WebSocket connection: HTTP 403")

    with aws:
        report, lines = run(verify, aws, connect=refuse)
    status = {n: ok for n, ok, _ in report.results}
    assert status == {"outputs": True, "generator": True, "lake": True, "athena": False, "websocket": False}
    assert "TABLE_NOT_FOUND" in lines[3] and "HTTP 403" in lines[4]


def test_missing_stacks_fail_the_first_step_and_main_exits_1(verify, monkeypatch, capsys):
    aws = Aws()
    aws.error("cloudformation", "describe_stacks", "ValidationError", "Stack with id AcmeDataGenStack-dev does not exist")
    with aws:
        report, lines = run(verify, aws)
    assert not report.ok and lines == [
        "FAIL outputs: cannot read the stacks' outputs: An error occurred (ValidationError) "
        "when calling the DescribeStacks operation: Stack with id AcmeDataGenStack-dev does not exist"
    ]

    class Session:
        def __init__(self, region_name=None):
            self.client = aws

    monkeypatch.setattr(boto3, "Session", Session)
    aws2 = Aws()
    aws2.error("cloudformation", "describe_stacks", "ValidationError", "no such stack")
    aws = aws2
    with aws2:
        assert verify.main(["--stage", "dev"]) == 1
    assert "FAILED: 0/1 steps passed" in capsys.readouterr().out
