"""The MSK multi-VPC connectivity custom resource (Provider framework on_event/is_complete).

The kafka client is a small fake at the boundary (moto has no MSK control plane), returning
the documented response shapes of DescribeClusterV2, UpdateConnectivity,
DescribeClusterOperationV2 and GetBootstrapBrokers. It refuses calls the handler must not
make, so "UpdateConnectivity is issued once and never again" is checked, not assumed.
"""

from __future__ import annotations

import sys

import pytest

from tests.lambdas.conftest import FakeLambdaContext, load_handler

ARN = "arn:aws:kafka:us-west-2:123456789012:cluster/acme-msk-cluster/abcd-1234-5"
OP = "arn:aws:kafka:us-west-2:123456789012:cluster-operation/acme-msk-cluster/abcd-1234-5/op-1"
BROKERS = "b-1.acme.kafka.us-west-2.amazonaws.com:9098,b-2.acme.kafka.us-west-2.amazonaws.com:9098"


class FakeKafka:
    def __init__(self, clusters=(), operations=(), allow_update=True):
        self.clusters = list(clusters)  # (State, iam_vpc_connectivity_enabled)
        self.operations = list(operations)  # ClusterOperationV2 dicts
        self.allow_update = allow_update
        self.updates = []
        self.op_polls = 0

    def describe_cluster_v2(self, ClusterArn):
        assert ClusterArn == ARN
        state, enabled = self.clusters.pop(0)
        conn = {"VpcConnectivity": {"ClientAuthentication": {"Sasl": {"Iam": {"Enabled": True}}}}} if enabled else {}
        return {
            "ClusterInfo": {
                "ClusterArn": ARN,
                "State": state,
                "CurrentVersion": "K3AEGXETSR30VB",
                "Provisioned": {"BrokerNodeGroupInfo": {"ConnectivityInfo": conn}},
            }
        }

    def update_connectivity(self, **kw):
        if not self.allow_update:
            raise AssertionError(f"UpdateConnectivity must not be called here: {kw}")
        self.updates.append(kw)
        return {"ClusterArn": kw["ClusterArn"], "ClusterOperationArn": OP}

    def describe_cluster_operation_v2(self, ClusterOperationArn):
        assert ClusterOperationArn == OP
        self.op_polls += 1
        return {
            "ClusterOperationInfo": {
                "ClusterArn": ARN,
                "OperationArn": OP,
                "OperationType": "UPDATE_CONNECTIVITY",
                **self.operations.pop(0),
            }
        }

    def get_bootstrap_brokers(self, ClusterArn):
        assert ClusterArn == ARN
        return {"BootstrapBrokerStringSaslIam": BROKERS}


def framework_event(request_type, on_event_result=None):
    """What the CDK Provider framework passes: the CloudFormation request, and for
    is_complete the request merged with on_event's result (framework.js createResponseEvent)."""
    ev = {
        "RequestType": request_type,
        "ResourceType": "Custom::MskMultiVpcConnectivity",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:...", "ClusterArn": ARN, "Sasl": "IAM"},
        "StackId": "arn:aws:cloudformation:us-west-2:123456789012:stack/AcmeMskStack/1",
        "RequestId": "r-1",
        "LogicalResourceId": "MultiVpcConnectivity",
    }
    if request_type != "Create":
        ev["PhysicalResourceId"] = f"{ARN}/multi-vpc-iam"
    return {**ev, **(on_event_result or {})}


@pytest.fixture
def cr():
    return load_handler("msk_connectivity")


def invoke(entry, event, kafka):
    """Run a Provider-framework entry point with `kafka` as the handler's module-scope client."""
    sys.modules[entry.__module__].kafka = kafka  # the module is loaded afresh for every test
    return entry(event, FakeLambdaContext())


def test_create_updates_once_then_polls_the_operation_then_reports(cr):
    kafka = FakeKafka(clusters=[("ACTIVE", False)])
    result = invoke(cr.on_event, framework_event("Create"), kafka)
    assert result == {"PhysicalResourceId": f"{ARN}/multi-vpc-iam", "Data": {"ClusterOperationArn": OP}}
    assert kafka.updates == [{"ClusterArn": ARN, "CurrentVersion": "K3AEGXETSR30VB", "ConnectivityInfo": cr.CONNECTIVITY}]

    ev = framework_event("Create", result)
    kafka.allow_update = False  # is_complete never (re-)issues the update
    kafka.operations = [
        {"OperationState": "PENDING"},
        {"OperationState": "UPDATE_IN_PROGRESS"},
        {"OperationState": "UPDATE_COMPLETE", "EndTime": "2026-01-15T12:31:00Z"},
        {"OperationState": "UPDATE_COMPLETE", "EndTime": "2026-01-15T12:31:00Z"},
    ]
    kafka.clusters = [("UPDATING", False), ("ACTIVE", True)]
    assert invoke(cr.is_complete, ev, kafka) == {"IsComplete": False}
    assert invoke(cr.is_complete, ev, kafka) == {"IsComplete": False}
    assert invoke(cr.is_complete, ev, kafka) == {"IsComplete": False}  # operation done, cluster still UPDATING
    done = invoke(cr.is_complete, ev, kafka)
    assert done == {"IsComplete": True, "Data": {"ClusterArn": ARN, "BootstrapBrokerStringSaslIam": BROKERS}}
    assert kafka.op_polls == 4 and len(kafka.updates) == 1


def test_failed_update_fails_the_deploy_with_msk_error_info(cr):
    kafka = FakeKafka(clusters=[("ACTIVE", False)])
    ev = framework_event("Create", invoke(cr.on_event, framework_event("Create"), kafka))
    kafka.allow_update = False
    kafka.operations = [
        {
            "OperationState": "UPDATE_FAILED",
            "EndTime": "2026-01-15T12:20:00Z",
            "ErrorInfo": {"ErrorCode": "InvalidSubnet", "ErrorString": "Subnet subnet-0a is in an unsupported AZ"},
        }
    ]
    with pytest.raises(RuntimeError) as exc:
        invoke(cr.is_complete, ev, kafka)
    msg = str(exc.value)
    assert OP in msg and "UPDATE_FAILED" in msg and "InvalidSubnet" in msg and "unsupported AZ" in msg
    assert len(kafka.updates) == 1


def test_rolled_back_operation_is_a_failure_too(cr):
    kafka = FakeKafka(operations=[{"OperationState": "ROLLBACK_COMPLETE", "EndTime": "2026-01-15T12:20:00Z"}], allow_update=False)
    ev = framework_event("Create", {"PhysicalResourceId": f"{ARN}/multi-vpc-iam", "Data": {"ClusterOperationArn": OP}})
    with pytest.raises(RuntimeError, match="ROLLBACK_COMPLETE"):
        invoke(cr.is_complete, ev, kafka)


def test_redeploy_when_already_on_completes_immediately_without_an_update(cr):
    for rtype in ("Create", "Update"):
        kafka = FakeKafka(clusters=[("ACTIVE", True), ("ACTIVE", True)], allow_update=False)
        result = invoke(cr.on_event, framework_event(rtype), kafka)
        assert result == {"PhysicalResourceId": f"{ARN}/multi-vpc-iam"}
        done = invoke(cr.is_complete, framework_event(rtype, result), kafka)
        assert done == {"IsComplete": True, "Data": {"ClusterArn": ARN, "BootstrapBrokerStringSaslIam": BROKERS}}
        assert kafka.op_polls == 0 and kafka.updates == []


def test_on_event_refuses_a_cluster_that_is_not_active(cr):
    kafka = FakeKafka(clusters=[("MAINTENANCE", False)], allow_update=False)
    with pytest.raises(RuntimeError, match="MAINTENANCE, not ACTIVE"):
        invoke(cr.on_event, framework_event("Create"), kafka)


def test_operation_done_but_connectivity_off_is_reported(cr):
    kafka = FakeKafka(
        clusters=[("ACTIVE", False)],
        operations=[{"OperationState": "UPDATE_COMPLETE", "EndTime": "2026-01-15T12:31:00Z"}],
        allow_update=False,
    )
    ev = framework_event("Create", {"PhysicalResourceId": f"{ARN}/multi-vpc-iam", "Data": {"ClusterOperationArn": OP}})
    with pytest.raises(RuntimeError, match="without IAM multi-VPC connectivity"):
        invoke(cr.is_complete, ev, kafka)


def test_failed_cluster_raises_and_delete_leaves_the_cluster_alone(cr):
    with pytest.raises(RuntimeError, match="is FAILED"):
        invoke(
            cr.is_complete,
            framework_event("Update", {"PhysicalResourceId": f"{ARN}/multi-vpc-iam"}),
            FakeKafka(clusters=[("FAILED", False)], allow_update=False),
        )
    untouched = FakeKafka(allow_update=False)  # any describe would pop from an empty list
    assert invoke(cr.on_event, framework_event("Delete"), untouched) == {"PhysicalResourceId": f"{ARN}/multi-vpc-iam"}
    assert invoke(cr.is_complete, framework_event("Delete"), untouched) == {"IsComplete": True}
