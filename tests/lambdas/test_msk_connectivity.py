"""The MSK multi-VPC connectivity step (lambdas/msk_connectivity): the custom resource's
on_event and the poller that signals the wait condition.

Every AWS call goes through botocore's Stubber on the real `kafka` and `stepfunctions`
service models, so each request is validated against the API's input shape and each
canned response against its output shape; a call the handler must not make fails the
test (the stubber has no response queued for it). The wait condition's presigned URL is
the one thing outside AWS's APIs: `put` is replaced by a recorder.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

import boto3
import pytest
from botocore.stub import ANY, Stubber

from tests.lambdas.conftest import FakeLambdaContext, load_handler

ARN = "arn:aws:kafka:eu-west-1:111122223333:cluster/acme-msk-cluster-dev/abcd1234-ab12-cd34-ef56-abcdef123456-5"
OTHER_ARN = ARN.replace("-5", "-6")
OP = "arn:aws:kafka:eu-west-1:111122223333:cluster-operation/acme-msk-cluster-dev/abcd1234-ab12-cd34-ef56-abcdef123456-5/0fb8c1cb-8a1e-4b1c-9d3b-1234567890ab"
HANDLE = "https://cloudformation-waitcondition-eu-west-1.s3.eu-west-1.amazonaws.com/arn%3Aaws%3Acloudformation/Handle?X-Amz-Signature=abc"
MACHINE = "arn:aws:states:eu-west-1:111122223333:stateMachine:acme-data-dev-connectivity-poller"
VERSION = "K3AEGXETSR30VB"
T0 = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


def cluster(state="ACTIVE", enabled=False, active_op=None, arn=ARN):
    conn = {"VpcConnectivity": {"ClientAuthentication": {"Sasl": {"Iam": {"Enabled": True}}}}} if enabled else {}
    info = {
        "ClusterArn": arn,
        "ClusterName": "acme-msk-cluster-dev",
        "ClusterType": "PROVISIONED",
        "State": state,
        "CurrentVersion": VERSION,
        "Provisioned": {
            "NumberOfBrokerNodes": 2,
            "BrokerNodeGroupInfo": {"ClientSubnets": ["subnet-1", "subnet-2"], "InstanceType": "kafka.m7g.large", "ConnectivityInfo": conn},
        },
    }
    if active_op:
        info["ActiveOperationArn"] = active_op
    return {"ClusterInfo": info}


def operation(state, op_type="UPDATE_CONNECTIVITY", end=None, error=None):
    info = {"ClusterArn": ARN, "OperationArn": OP, "OperationType": op_type, "OperationState": state, "StartTime": T0}
    if end:
        info["EndTime"] = end
    if error:
        info["ErrorInfo"] = error
    return {"ClusterOperationInfo": info}


class Aws:
    """The handler's module-scope clients, stubbed on the real service models, and the
    wait condition signals it PUT."""

    def __init__(self, mod):
        self.mod = mod
        self.kafka = boto3.client("kafka", region_name="eu-west-1")
        self.sfn = boto3.client("stepfunctions", region_name="eu-west-1")
        self.kafka_stub, self.sfn_stub = Stubber(self.kafka), Stubber(self.sfn)
        self.signals: list[tuple[str, dict]] = []
        mod.kafka, mod.stepfunctions = self.kafka, self.sfn
        mod.put = lambda url, body: self.signals.append((url, json.loads(body))) or 200
        self.started: list[dict] = []  # StartExecution requests, as the handler made them
        self.sfn.meta.events.register("before-parameter-build.sfn.StartExecution", lambda params, **_: self.started.append(dict(params)))

    def kafka_call(self, op, response, params):
        self.kafka_stub.add_response(op, response, params)

    def start_execution(self, op_arn=OP, cluster_arn=ARN, error=None):
        params = {"stateMachineArn": MACHINE, "name": ANY, "input": ANY}
        if error:
            self.sfn_stub.add_client_error("start_execution", service_error_code=error, http_status_code=400, expected_params=params)
        else:
            self.sfn_stub.add_response(
                "start_execution", {"executionArn": MACHINE.replace(":stateMachine:", ":execution:") + ":x", "startDate": T0}, params
            )
        self.expected_poller_input = {"ClusterArn": cluster_arn, "OperationArn": op_arn, "WaitHandleUrl": HANDLE}

    def __enter__(self):
        self.kafka_stub.activate()
        self.sfn_stub.activate()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.kafka_stub.assert_no_pending_responses()
            self.sfn_stub.assert_no_pending_responses()
        self.kafka_stub.deactivate()
        self.sfn_stub.deactivate()


def cfn_event(request_type, cluster_arn=ARN, old=None):
    ev = {
        "RequestType": request_type,
        "ResourceType": "Custom::MskMultiVpcConnectivity",
        "ServiceToken": "arn:aws:lambda:eu-west-1:111122223333:function:framework-onEvent",
        "ResponseURL": "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/x",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:eu-west-1:111122223333:function:framework-onEvent",
            "ClusterArn": cluster_arn,
            "WaitHandleUrl": HANDLE,
            "PollerStateMachineArn": MACHINE,
        },
        "StackId": "arn:aws:cloudformation:eu-west-1:111122223333:stack/AcmeMskConnectivityStack-dev/1",
        "RequestId": "r-1",
        "LogicalResourceId": "MultiVpcConnectivity",
    }
    if request_type != "Create":
        ev["PhysicalResourceId"] = f"{old or cluster_arn}/multi-vpc-iam"
    if old:
        ev["OldResourceProperties"] = {**ev["ResourceProperties"], "ClusterArn": old}
    return ev


@pytest.fixture
def cr():
    return load_handler("msk_connectivity")


@pytest.fixture
def aws(cr):
    return Aws(cr)


def on_event(cr, event):
    return cr.on_event(event, FakeLambdaContext())


def poll(cr, payload):
    return cr.poll(payload, FakeLambdaContext())


def test_first_enable_starts_the_update_once_and_the_poller_signals_success_when_it_ends(cr, aws):
    aws.kafka_call("describe_cluster_v2", cluster("ACTIVE"), {"ClusterArn": ARN})
    aws.kafka_call(
        "update_connectivity",
        {"ClusterArn": ARN, "ClusterOperationArn": OP},
        {"ClusterArn": ARN, "CurrentVersion": VERSION, "ConnectivityInfo": cr.CONNECTIVITY},
    )
    aws.start_execution()
    with aws:
        result = on_event(cr, cfn_event("Create"))
    assert result == {"PhysicalResourceId": f"{ARN}/multi-vpc-iam", "Data": {"Status": "STARTED", "ClusterOperationArn": OP}}
    (started,) = aws.started
    assert json.loads(started["input"]) == aws.expected_poller_input
    assert aws.signals == []  # the wait condition waits for the poller

    # The poller: once a minute until the operation ends and the cluster is ACTIVE again.
    payload = aws.expected_poller_input
    aws.kafka_call("describe_cluster_operation_v2", operation("PENDING"), {"ClusterOperationArn": OP})
    aws.kafka_call("describe_cluster_operation_v2", operation("UPDATE_IN_PROGRESS"), {"ClusterOperationArn": OP})
    aws.kafka_call(
        "describe_cluster_operation_v2", operation("UPDATE_COMPLETE", end=T0 + dt.timedelta(hours=2)), {"ClusterOperationArn": OP}
    )
    aws.kafka_call("describe_cluster_v2", cluster("UPDATING", enabled=True), {"ClusterArn": ARN})
    aws.kafka_call(
        "describe_cluster_operation_v2", operation("UPDATE_COMPLETE", end=T0 + dt.timedelta(hours=2)), {"ClusterOperationArn": OP}
    )
    aws.kafka_call("describe_cluster_v2", cluster("ACTIVE", enabled=True), {"ClusterArn": ARN})
    with aws:
        assert [poll(cr, payload)["Done"] for _ in range(4)] == [False, False, False, True]
    assert aws.signals == [
        (
            HANDLE,
            {
                "Status": "SUCCESS",
                "UniqueId": "multi-vpc-iam",
                "Data": ARN,
                "Reason": f"operation {OP} turned IAM multi-VPC connectivity on",
            },
        )
    ]


def test_already_enabled_signals_success_at_once_without_an_update(cr, aws):
    aws.kafka_call("describe_cluster_v2", cluster("ACTIVE", enabled=True), {"ClusterArn": ARN})
    with aws:  # no UpdateConnectivity, no poller: the stubbers have nothing else queued
        result = on_event(cr, cfn_event("Create"))
    assert result["Data"]["Status"] == "ALREADY_ENABLED" and aws.started == []
    assert [(u, s["Status"], s["Data"]) for u, s in aws.signals] == [(HANDLE, "SUCCESS", ARN)]


def test_a_retry_adopts_the_update_connectivity_operation_already_running(cr, aws):
    """The first deploy's wait timed out or rolled back while MSK kept going: the cluster
    is UPDATING, not ACTIVE. The retry must follow that operation, not fail "not ACTIVE"
    and not issue a second UpdateConnectivity."""
    for already_polling in (False, True):
        aws.kafka_call("describe_cluster_v2", cluster("UPDATING", active_op=OP), {"ClusterArn": ARN})
        aws.kafka_call("describe_cluster_operation_v2", operation("UPDATE_IN_PROGRESS"), {"ClusterOperationArn": OP})
        aws.start_execution(error="ExecutionAlreadyExists" if already_polling else None)
        with aws:
            result = on_event(cr, cfn_event("Create"))
        assert result["Data"] == {"Status": "ADOPTED", "ClusterOperationArn": OP}
        assert json.loads(aws.started[-1]["input"]) == aws.expected_poller_input
    assert aws.started[0]["name"] == aws.started[1]["name"]  # same operation + handle: one poller
    assert aws.signals == []


def test_another_operation_or_a_cluster_that_is_not_active_fails_naming_it(cr, aws):
    aws.kafka_call("describe_cluster_v2", cluster("UPDATING", active_op=OP), {"ClusterArn": ARN})
    aws.kafka_call(
        "describe_cluster_operation_v2", operation("UPDATE_IN_PROGRESS", op_type="INCREASE_BROKER_COUNT"), {"ClusterOperationArn": OP}
    )
    with aws, pytest.raises(RuntimeError, match="INCREASE_BROKER_COUNT"):
        on_event(cr, cfn_event("Create"))
    aws.kafka_call("describe_cluster_v2", cluster("MAINTENANCE"), {"ClusterArn": ARN})
    with aws, pytest.raises(RuntimeError, match="MAINTENANCE, not ACTIVE"):
        on_event(cr, cfn_event("Create"))
    assert aws.started == [] and aws.signals == []


def test_failed_operation_signals_failure_with_msk_error_info(cr, aws):
    error = {"ErrorCode": "InvalidSubnet", "ErrorString": "Subnet subnet-0a is in an unsupported AZ"}
    aws.kafka_call("describe_cluster_operation_v2", operation("UPDATE_FAILED", end=T0, error=error), {"ClusterOperationArn": OP})
    with aws:  # no describe_cluster, no update: a failed operation is reported, not retried
        assert poll(cr, {"ClusterArn": ARN, "OperationArn": OP, "WaitHandleUrl": HANDLE}) == {"Done": True, "Status": "FAILED"}
    ((url, sig),) = aws.signals
    assert url == HANDLE and sig["Status"] == "FAILURE"
    for part in (OP, "UPDATE_FAILED", "InvalidSubnet", "Subnet subnet-0a is in an unsupported AZ"):
        assert part in sig["Reason"]


def test_rolled_back_operation_and_finished_without_connectivity_signal_failure(cr, aws):
    aws.kafka_call("describe_cluster_operation_v2", operation("ROLLBACK_COMPLETE", end=T0), {"ClusterOperationArn": OP})
    aws.kafka_call("describe_cluster_operation_v2", operation("UPDATE_COMPLETE", end=T0), {"ClusterOperationArn": OP})
    aws.kafka_call("describe_cluster_v2", cluster("ACTIVE", enabled=False), {"ClusterArn": ARN})
    payload = {"ClusterArn": ARN, "OperationArn": OP, "WaitHandleUrl": HANDLE}
    with aws:
        assert poll(cr, payload)["Done"] and poll(cr, payload)["Done"]
    assert [s["Status"] for _, s in aws.signals] == ["FAILURE", "FAILURE"]
    assert "ROLLBACK_COMPLETE" in aws.signals[0][1]["Reason"]
    assert "without IAM multi-VPC connectivity" in aws.signals[1][1]["Reason"]


def test_update_keeps_the_resource_and_follows_a_replaced_cluster(cr, aws):
    # Same cluster, connectivity on: nothing to do, same physical id.
    aws.kafka_call("describe_cluster_v2", cluster("ACTIVE", enabled=True), {"ClusterArn": ARN})
    with aws:
        result = on_event(cr, cfn_event("Update", old=ARN))
    assert result["PhysicalResourceId"] == f"{ARN}/multi-vpc-iam" and result["Data"]["Status"] == "ALREADY_ENABLED"
    # A replaced cluster (new ARN): turned on for the new one, a new physical id.
    aws.kafka_call("describe_cluster_v2", cluster("ACTIVE", arn=OTHER_ARN), {"ClusterArn": OTHER_ARN})
    aws.kafka_call(
        "update_connectivity",
        {"ClusterArn": OTHER_ARN, "ClusterOperationArn": OP},
        {"ClusterArn": OTHER_ARN, "CurrentVersion": VERSION, "ConnectivityInfo": cr.CONNECTIVITY},
    )
    aws.start_execution(cluster_arn=OTHER_ARN)
    with aws:
        result = on_event(cr, cfn_event("Update", cluster_arn=OTHER_ARN, old=ARN))
    assert result == {"PhysicalResourceId": f"{OTHER_ARN}/multi-vpc-iam", "Data": {"Status": "STARTED", "ClusterOperationArn": OP}}


def test_delete_never_touches_the_cluster(cr, aws):
    with aws:  # nothing queued: any kafka or stepfunctions call would fail the test
        assert on_event(cr, cfn_event("Delete")) == {"PhysicalResourceId": f"{ARN}/multi-vpc-iam"}
    assert aws.signals == [] and aws.started == []


def test_signal_is_the_documented_put_without_a_content_type(cr, monkeypatch):
    sent = {}

    class Resp:
        status = 200

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def urlopen(req, timeout):
        sent.update(
            method=req.get_method(), url=req.full_url, body=json.loads(req.data), headers={k.lower(): v for k, v in req.header_items()}
        )
        return Resp()

    monkeypatch.setattr(sys.modules[cr.__name__].urllib.request, "urlopen", urlopen)
    cr.signal(HANDLE, success=False, reason="x" * 5000)
    assert sent["method"] == "PUT" and sent["url"] == HANDLE
    assert sent["headers"].get("content-type") == ""
    assert sent["body"]["Status"] == "FAILURE" and len(sent["body"]["Reason"]) == 1000 and sent["body"]["UniqueId"]


def test_execution_names_are_valid_and_stable(cr):
    name = cr.execution_name(OP, HANDLE)
    assert name == cr.execution_name(OP, HANDLE) != cr.execution_name(OP, HANDLE + "x")
    assert len(name) <= 80 and all(c.isalnum() or c in "-_" for c in name)
