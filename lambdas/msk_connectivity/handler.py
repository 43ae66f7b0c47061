"""Custom resource (Provider framework): multi-VPC private connectivity with IAM on an
MSK cluster, then its SASL/IAM bootstrap string.

CloudFormation cannot turn multi-VPC connectivity on at cluster creation, and the update
takes tens of minutes, so on_event only records the request and is_complete (polled by
the framework) does the work: while the cluster is not ACTIVE it waits; once ACTIVE
without IAM VPC connectivity it calls UpdateConnectivity and waits; once ACTIVE with it,
it reports GetBootstrapBrokers' BootstrapBrokerStringSaslIam and the cluster ARN.
Delete leaves the cluster alone (deleting the cluster removes the connectivity).
"""

from __future__ import annotations

import logging
from typing import Any

import boto3

log = logging.getLogger()
log.setLevel(logging.INFO)

TERMINAL_FAILURES = ("FAILED", "DELETING")
CONNECTIVITY = {"VpcConnectivity": {"ClientAuthentication": {"Sasl": {"Iam": {"Enabled": True}}}}}


def _kafka():
    return boto3.client("kafka")


def on_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    arn = event["ResourceProperties"]["ClusterArn"]
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    return {"PhysicalResourceId": f"{arn}/multi-vpc-iam"}


def iam_vpc_connectivity_enabled(info: dict[str, Any]) -> bool:
    conn = info.get("Provisioned", {}).get("BrokerNodeGroupInfo", {}).get("ConnectivityInfo", {})
    return bool(conn.get("VpcConnectivity", {}).get("ClientAuthentication", {}).get("Sasl", {}).get("Iam", {}).get("Enabled"))


def is_complete(event: dict[str, Any], context: Any = None, *, kafka: Any = None) -> dict[str, Any]:
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    arn = event["ResourceProperties"]["ClusterArn"]
    kafka = kafka or _kafka()
    info = kafka.describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]
    state = info["State"]
    if state in TERMINAL_FAILURES:
        raise RuntimeError(f"cluster {arn} is {state}")
    if state != "ACTIVE":
        log.info("cluster is %s; waiting", state)
        return {"IsComplete": False}
    if not iam_vpc_connectivity_enabled(info):
        try:
            kafka.update_connectivity(ClusterArn=arn, CurrentVersion=info["CurrentVersion"], ConnectivityInfo=CONNECTIVITY)
        except kafka.exceptions.ConflictException as exc:  # another update won the race: wait
            log.info("update conflict (%s); waiting", exc)
        return {"IsComplete": False}
    brokers = kafka.get_bootstrap_brokers(ClusterArn=arn)
    return {
        "IsComplete": True,
        "Data": {
            "ClusterArn": arn,
            "BootstrapBrokerStringSaslIam": brokers["BootstrapBrokerStringSaslIam"],
        },
    }
