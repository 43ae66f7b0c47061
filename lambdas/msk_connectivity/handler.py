"""Custom resource (Provider framework): multi-VPC private connectivity with IAM on an
MSK cluster, then its SASL/IAM bootstrap string.

CloudFormation cannot turn multi-VPC connectivity on at cluster creation, and the update
(a rolling broker restart) usually takes about 30 minutes, so:

- on_event (Create/Update) describes the cluster. If IAM VPC connectivity is already on
  it does nothing more (idempotent: a re-deploy after a timeout completes at once).
  Otherwise it calls UpdateConnectivity once and returns the ClusterOperationArn in
  Data, which the framework hands to every is_complete call.
- is_complete polls DescribeClusterOperationV2 for that operation and raises on a failed
  or rolled-back operation with MSK's ErrorInfo, so a failed update fails the deploy
  with the reason instead of being re-issued forever. Once the operation is done and the
  cluster is ACTIVE with IAM VPC connectivity on, it reports GetBootstrapBrokers'
  BootstrapBrokerStringSaslIam and the cluster ARN.
- Delete leaves the cluster alone (deleting the cluster removes the connectivity).

The framework passes CloudFormation's custom resource request, read through Powertools'
CloudFormationCustomResourceEvent. No environment variables; no metrics (it runs once
per deploy, and CloudFormation reports its outcome).
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
kafka = boto3.client("kafka")  # module scope: reused across the framework's polls

CLUSTER_FAILURES = ("FAILED", "DELETING")
CONNECTIVITY = {"VpcConnectivity": {"ClientAuthentication": {"Sasl": {"Iam": {"Enabled": True}}}}}
OPERATION_DONE = "UPDATE_COMPLETE"


def physical_id(arn: str) -> str:
    return f"{arn}/multi-vpc-iam"


def iam_vpc_connectivity_enabled(info: dict[str, Any]) -> bool:
    conn = info.get("Provisioned", {}).get("BrokerNodeGroupInfo", {}).get("ConnectivityInfo", {})
    return bool(conn.get("VpcConnectivity", {}).get("ClientAuthentication", {}).get("Sasl", {}).get("Iam", {}).get("Enabled"))


@logger.inject_lambda_context
@event_source(data_class=CloudFormationCustomResourceEvent)
def on_event(event: CloudFormationCustomResourceEvent, context: LambdaContext) -> dict[str, Any]:
    if event.request_type == "Delete":
        return {"PhysicalResourceId": event.physical_resource_id}
    arn = event.resource_properties["ClusterArn"]
    info = kafka.describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]
    if iam_vpc_connectivity_enabled(info):
        logger.info("IAM multi-VPC connectivity is already on for %s; nothing to update", arn)
        return {"PhysicalResourceId": physical_id(arn)}
    state = info["State"]
    if state != "ACTIVE":
        raise RuntimeError(
            f"cluster {arn} is {state}, not ACTIVE: MSK accepts UpdateConnectivity only on an ACTIVE cluster; re-deploy once it is ACTIVE"
        )
    resp = kafka.update_connectivity(ClusterArn=arn, CurrentVersion=info["CurrentVersion"], ConnectivityInfo=CONNECTIVITY)
    op = resp["ClusterOperationArn"]
    logger.info("UpdateConnectivity started on %s: operation %s", arn, op)
    return {"PhysicalResourceId": physical_id(arn), "Data": {"ClusterOperationArn": op}}


def _raise_if_failed(op_arn: str, op: dict[str, Any]) -> None:
    state = op.get("OperationState", "")
    err = op.get("ErrorInfo") or {}
    if "FAILED" in state or "ROLLBACK" in state or err:
        raise RuntimeError(
            f"MSK operation {op_arn} ({op.get('OperationType', 'UPDATE_CONNECTIVITY')}) is {state or 'in error'}: "
            f"{err.get('ErrorCode', 'no error code')}: {err.get('ErrorString', 'no error string')}"
        )


@logger.inject_lambda_context
@event_source(data_class=CloudFormationCustomResourceEvent)
def is_complete(event: CloudFormationCustomResourceEvent, context: LambdaContext) -> dict[str, Any]:
    """The Provider framework's poll: the CloudFormation request plus on_event's result
    (its Data, which CloudFormationCustomResourceEvent does not model, is read as a key)."""
    if event.request_type == "Delete":
        return {"IsComplete": True}
    arn = event.resource_properties["ClusterArn"]
    op_arn = (event.get("Data") or {}).get("ClusterOperationArn")
    if op_arn:
        op = kafka.describe_cluster_operation_v2(ClusterOperationArn=op_arn)["ClusterOperationInfo"]
        _raise_if_failed(op_arn, op)
        # Done: the documented terminal state, or any state with an end time and no error.
        if op.get("OperationState") != OPERATION_DONE and not op.get("EndTime"):
            logger.info("operation %s is %s; waiting", op_arn, op.get("OperationState"))
            return {"IsComplete": False}
    info = kafka.describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]
    state = info["State"]
    if state in CLUSTER_FAILURES:
        raise RuntimeError(f"cluster {arn} is {state}")
    if state != "ACTIVE":
        logger.info("cluster is %s; waiting", state)
        return {"IsComplete": False}
    if not iam_vpc_connectivity_enabled(info):
        what = f"operation {op_arn} finished" if op_arn else "connectivity was on when this deploy started"
        raise RuntimeError(f"cluster {arn} is ACTIVE without IAM multi-VPC connectivity ({what}); re-deploy to turn it on")
    brokers = kafka.get_bootstrap_brokers(ClusterArn=arn)
    return {
        "IsComplete": True,
        "Data": {
            "ClusterArn": arn,
            "BootstrapBrokerStringSaslIam": brokers["BootstrapBrokerStringSaslIam"],
        },
    }
