"""Multi-VPC private connectivity (IAM) on an MSK cluster, without CloudFormation's
one-hour custom-resource limit.

Turning the feature on is a rolling broker restart that real clusters report taking more
than an hour (cloudformation-coverage-roadmap #1775); a custom resource waits at most one
hour. So the work is split, and the wait is bounded by an AWS::CloudFormation::WaitCondition
(up to 12 hours) instead:

- `on_event` (the custom resource, CDK Provider framework, returns within seconds):
  - Delete: touches nothing. The cluster lives in another stack, and a failed or rolled
    back connectivity step must never take the cluster with it.
  - Create/Update: describes the cluster, then
    - connectivity already on: signals the wait condition SUCCESS at once;
    - an UPDATE_CONNECTIVITY operation already running (a retry after a timeout or a
      rollback): adopts it, and starts the poller on it;
    - an ACTIVE cluster without it: calls UpdateConnectivity once and starts the poller;
    - otherwise (another operation, a cluster not ACTIVE): fails naming the state.
- `poll` (one step of the poller state machine, once a minute): reads the operation
  (DescribeClusterOperationV2). A failed or rolled back operation signals FAILURE with
  MSK's ErrorInfo; a finished one signals SUCCESS once the cluster is ACTIVE with the
  connectivity on. It returns {"Done": bool} for the state machine's loop.

The signal is an HTTP PUT of a small JSON document to the wait condition handle's
presigned S3 URL. These functions run outside the VPC, so they reach S3 (and the MSK and
Step Functions APIs) over Lambda's own network. The stack passes everything as custom
resource properties or state machine input: no environment variables.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.request
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
# Module scope: reused across invocations (tests replace them with stubbed clients).
kafka = boto3.client("kafka")
stepfunctions = boto3.client("stepfunctions")

CONNECTIVITY = {"VpcConnectivity": {"ClientAuthentication": {"Sasl": {"Iam": {"Enabled": True}}}}}
OPERATION_TYPE = "UPDATE_CONNECTIVITY"
OPERATION_DONE = "UPDATE_COMPLETE"
SIGNAL_ID = "multi-vpc-iam"


def physical_id(arn: str) -> str:
    return f"{arn}/multi-vpc-iam"


def iam_vpc_connectivity_enabled(info: dict[str, Any]) -> bool:
    conn = info.get("Provisioned", {}).get("BrokerNodeGroupInfo", {}).get("ConnectivityInfo", {})
    return bool(conn.get("VpcConnectivity", {}).get("ClientAuthentication", {}).get("Sasl", {}).get("Iam", {}).get("Enabled"))


def operation_failed(op: dict[str, Any]) -> bool:
    state = op.get("OperationState", "")
    return "FAILED" in state or "ROLLBACK" in state or bool(op.get("ErrorInfo"))


def operation_finished(op: dict[str, Any]) -> bool:
    return op.get("OperationState") == OPERATION_DONE or bool(op.get("EndTime"))


def failure_reason(op_arn: str, op: dict[str, Any]) -> str:
    err = op.get("ErrorInfo") or {}
    return (
        f"MSK operation {op_arn} ({op.get('OperationType', OPERATION_TYPE)}) is {op.get('OperationState') or 'in error'}: "
        f"{err.get('ErrorCode', 'no error code')}: {err.get('ErrorString', 'no error string')}"
    )


def put(url: str, body: bytes) -> int:
    """PUT `body` to a presigned S3 URL; the signature covers no Content-Type, so send none."""
    req = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (https presigned URL from CloudFormation)
        return int(resp.status)


def signal(url: str, *, success: bool, reason: str, data: str = "") -> None:
    """Signal the wait condition (CloudFormation's documented JSON). Reasons are capped
    well below the 4 KB a signal may carry."""
    body = {"Status": "SUCCESS" if success else "FAILURE", "Reason": reason[:1000], "UniqueId": SIGNAL_ID, "Data": data}
    status = put(url, json.dumps(body).encode())
    logger.info("signalled the wait condition %s (HTTP %s): %s", body["Status"], status, body["Reason"])


def execution_name(op_arn: str, handle_url: str) -> str:
    """One poller execution per (operation, wait condition handle): a retry that starts the
    same pair again finds it running (ExecutionAlreadyExists) instead of doubling it."""
    op_id = re.sub(r"[^A-Za-z0-9_-]", "-", op_arn.rsplit("/", 1)[-1])[:60]
    return f"{op_id}-{hashlib.sha256(handle_url.encode()).hexdigest()[:16]}"


def start_poller(state_machine_arn: str, cluster_arn: str, op_arn: str, handle_url: str) -> None:
    payload = {"ClusterArn": cluster_arn, "OperationArn": op_arn, "WaitHandleUrl": handle_url}
    try:
        stepfunctions.start_execution(stateMachineArn=state_machine_arn, name=execution_name(op_arn, handle_url), input=json.dumps(payload))
    except stepfunctions.exceptions.ExecutionAlreadyExists:
        logger.info("a poller for %s is already running", op_arn)


@logger.inject_lambda_context
@event_source(data_class=CloudFormationCustomResourceEvent)
def on_event(event: CloudFormationCustomResourceEvent, context: LambdaContext) -> dict[str, Any]:
    if event.request_type == "Delete":
        return {"PhysicalResourceId": event.physical_resource_id}
    props = event.resource_properties
    arn, handle, machine = props["ClusterArn"], props["WaitHandleUrl"], props["PollerStateMachineArn"]
    info = kafka.describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]
    result = {"PhysicalResourceId": physical_id(arn)}

    if iam_vpc_connectivity_enabled(info):
        logger.info("IAM multi-VPC connectivity is already on for %s", arn)
        signal(handle, success=True, reason=f"IAM multi-VPC connectivity is on for {arn}", data=arn)
        return {**result, "Data": {"Status": "ALREADY_ENABLED", "ClusterOperationArn": ""}}

    active = info.get("ActiveOperationArn")
    if active:
        op = kafka.describe_cluster_operation_v2(ClusterOperationArn=active)["ClusterOperationInfo"]
        if op.get("OperationType") == OPERATION_TYPE and not operation_finished(op) and not operation_failed(op):
            logger.info("adopting the running operation %s on %s", active, arn)
            start_poller(machine, arn, active, handle)
            return {**result, "Data": {"Status": "ADOPTED", "ClusterOperationArn": active}}
        state = info["State"]
        raise RuntimeError(
            f"cluster {arn} is {state} with operation {active} ({op.get('OperationType')}, "
            f"{op.get('OperationState')}) running: re-deploy once it has finished"
        )

    state = info["State"]
    if state != "ACTIVE":
        raise RuntimeError(
            f"cluster {arn} is {state}, not ACTIVE: MSK accepts UpdateConnectivity only on an ACTIVE cluster; re-deploy once it is ACTIVE"
        )
    op_arn = kafka.update_connectivity(ClusterArn=arn, CurrentVersion=info["CurrentVersion"], ConnectivityInfo=CONNECTIVITY)[
        "ClusterOperationArn"
    ]
    logger.info("UpdateConnectivity started on %s: operation %s", arn, op_arn)
    start_poller(machine, arn, op_arn, handle)
    return {**result, "Data": {"Status": "STARTED", "ClusterOperationArn": op_arn}}


@logger.inject_lambda_context
def poll(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One poll of the operation; signals the wait condition when it has ended."""
    arn, op_arn, handle = event["ClusterArn"], event["OperationArn"], event["WaitHandleUrl"]
    op = kafka.describe_cluster_operation_v2(ClusterOperationArn=op_arn)["ClusterOperationInfo"]
    if operation_failed(op):
        signal(handle, success=False, reason=failure_reason(op_arn, op))
        return {"Done": True, "Status": "FAILED"}
    if not operation_finished(op):
        logger.info("operation %s is %s; waiting", op_arn, op.get("OperationState"))
        return {"Done": False, "Status": op.get("OperationState", "PENDING")}
    info = kafka.describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]
    if info["State"] != "ACTIVE":
        logger.info("operation %s ended; cluster is %s; waiting", op_arn, info["State"])
        return {"Done": False, "Status": info["State"]}
    if not iam_vpc_connectivity_enabled(info):
        signal(
            handle,
            success=False,
            reason=f"operation {op_arn} ended but cluster {arn} is ACTIVE without IAM multi-VPC connectivity; re-deploy to turn it on",
        )
        return {"Done": True, "Status": "FAILED"}
    signal(handle, success=True, reason=f"operation {op_arn} turned IAM multi-VPC connectivity on", data=arn)
    return {"Done": True, "Status": "SUCCEEDED"}
