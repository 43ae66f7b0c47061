"""Stacks compose constructs (issue 9, point 2): constructs take explicit keyword-only
props, no stack takes AppConfig, grants are MskCluster methods, and the move into
constructs kept every stateful resource's logical id (a deployed user keeps them)."""

from __future__ import annotations

import inspect
import json

import pytest

from data_stack.config import AppConfig
from data_stack.constructs.firehose_msk_to_s3 import FirehoseMskToS3
from data_stack.constructs.kpi_websocket_api import KpiWebSocketApi
from data_stack.constructs.msk_cluster import MskCluster
from data_stack.constructs.telemetry_lake import TelemetryLake
from data_stack.stacks.dashboard import DashboardStack
from data_stack.stacks.data_gen import DataGenStack
from data_stack.stacks.data_lake import DataLakeStack
from data_stack.stacks.msk import MskStack
from data_stack.stacks.network import NetworkStack

CONSTRUCTS = [MskCluster, FirehoseMskToS3, TelemetryLake, KpiWebSocketApi]
STACKS = [NetworkStack, MskStack, DataLakeStack, DataGenStack, DashboardStack]

# Logical ids from before the constructs (the templates of the previous release): a
# changed id would make CloudFormation replace the resource (the cluster, the buckets,
# the table, the secret) or orphan a named one.
# Issue 10 moved the (stateless) multi-VPC connectivity step into AcmeMskConnectivityStack,
# intentionally: its handlers, logs and custom resource are new there, and its waiter
# (is_complete) is gone; every stateful resource of AcmeMskStack keeps its id.
KEPT = {
    "AcmeMskStack": [
        "FirehoseClusterPolicy",
        "MskCluster",
        "MskLogGroupCAC153F9",
        "MskLogsBucketFABD1A2D",
        "TelemetryTopic",
    ],
    "AcmeMskConnectivityStack": [
        "ConnectivityHandlerLogsD9433C15",
        "ConnectivityOnEvent4E0EA2EE",
        "MultiVpcConnectivity",
    ],
    "AcmeDataLakeStack": [
        "AccessLogsBucket83982689",
        "AthenaResultsBucket879938FA",
        "AthenaWorkGroup",
        "DataBucketE3889A50",
        "GlueDatabase",
        "StreamingEventsTable",
    ],
    "AcmeDataGenStack": [
        "DeliveryStream",
        "FirehoseLogGroup1B45149B",
        "FirehosePolicy3A3B2DF8",
        "FirehoseRoleAA67C190",
        "GeneratorFunction36E4EF26",
        "GeneratorLogs1B29DEE5",
        "ProducerFailures40BBFFB4",
        "ProducerFunction96264A1C",
        "ProducerLogs253FAF64",
    ],
    "AcmeDashboardStack": [
        "AuthorizerFunctionB4DBAA43",
        "AuthorizerFunctionLogsBF52B654",
        "ConnectFunction52BFC429",
        "ConnectFunctionLogsD475429D",
        "ConnectionsTable8000B8A1",
        "ConsumerEventSource4F6DAC08",
        "ConsumerFailures74B6E16F",
        "ConsumerFunction40CB859D",
        "ConsumerFunctionLogsAC3C2CB2",
        "DashboardSiteBucket3926571B",
        "DashboardSiteLogBucketF42697D4",
        "DashboardTokenA0566501",
        "DefaultFunction1A91F45E",
        "DefaultFunctionLogs2E5134EA",
        "DisconnectFunctionEFD34B26",
        "DisconnectFunctionLogsC84CD486",
        "WebSocketAccessLogs7FFF6977",
        "WebSocketApi34BCF99B",
        "WebSocketStageC46B7E43",
    ],
    "AcmeNetworkStack": ["VpcFlowLogsE6FFDEF9"],
}


@pytest.mark.parametrize("cls", CONSTRUCTS, ids=lambda c: c.__name__)
def test_constructs_take_keyword_only_explicit_props(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[3:]  # self, scope, id
    assert params and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    assert not [p.name for p in params if "config" in p.name or p.annotation in (AppConfig, "AppConfig")]


@pytest.mark.parametrize("cls", STACKS, ids=lambda c: c.__name__)
def test_no_stack_takes_the_whole_app_config(cls):
    params = inspect.signature(cls.__init__).parameters
    assert "config" not in params
    assert all(p.annotation not in (AppConfig, "AppConfig") for p in params.values())


def test_grants_are_cluster_methods_not_stack_methods():
    for name in ("grant_produce", "grant_consume", "grant_delivery_stream_read"):
        assert callable(getattr(MskCluster, name))
    assert not [m for m in dir(MskStack) if m.startswith("grant_")]
    assert inspect.signature(MskCluster.grant_consume).parameters["group"].kind is inspect.Parameter.KEYWORD_ONLY


def test_logical_ids_survive_the_move_into_constructs(any_profile):
    for stack_id, ids in KEPT.items():
        resources = any_profile.templates[stack_id]["Resources"]
        assert set(ids) <= set(resources), (stack_id, sorted(set(ids) - set(resources)))
    # ... and the paths show the composition.
    stacks = any_profile.stacks
    assert stacks.msk.cluster.cluster.node.path == "AcmeMskStack/Default/MskCluster"
    assert stacks.data_lake.lake.table.node.path == "AcmeDataLakeStack/Default/StreamingEventsTable"


def test_grants_land_on_the_consuming_stacks_principals(dev):
    """grant_produce on the producer's role, grant_consume (group-scoped) on the consumer's,
    grant_delivery_stream_read on the Firehose stream's own explicit policy."""

    def actions(stack_id, fragment):
        found = set()
        for lid, res in dev.resources(stack_id, "AWS::IAM::Policy").items():
            if fragment in lid:
                for st in res["Properties"]["PolicyDocument"]["Statement"]:
                    found.update(st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
        return found

    assert {"kafka-cluster:WriteData", "kafka-cluster:WriteDataIdempotently"} <= actions("AcmeDataGenStack", "ProducerFunction")
    assert {"kafka-cluster:ReadData", "kafka-cluster:AlterGroup"} <= actions("AcmeDashboardStack", "ConsumerFunction")
    assert {"kafka-cluster:ReadData", "kafka-cluster:DescribeGroup"} <= actions("AcmeDataGenStack", "FirehosePolicy")
    consumer = json.dumps(dev.resources("AcmeDashboardStack", "AWS::IAM::Policy"))
    assert f"group/{dev.config.cluster_name}/" in consumer and f"/{dev.config.name_prefix}-kpi-consumer" in consumer
