"""The six stacks and how they are wired (used by app.py and by the tests).

`build()` is the one place that reads the whole AppConfig: it picks each stack's
sections and values and passes them explicitly; stacks hand explicit props to the
constructs, and the MskCluster construct (not its stack) goes to the stacks that need
its grants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from data_stack.config import AppConfig
from data_stack.constructs.python_function import METRICS_NAMESPACE
from data_stack.queries import NAMED_QUERIES
from data_stack.stacks.dashboard import DashboardStack
from data_stack.stacks.data_gen import DataGenStack
from data_stack.stacks.data_lake import DataLakeStack
from data_stack.stacks.msk import MskStack
from data_stack.stacks.msk_connectivity import MskConnectivityStack
from data_stack.stacks.network import NetworkStack

# Used for a synth without credentials (CI, tests). A real deploy takes the account
# from the CLI's credentials (CDK_DEFAULT_ACCOUNT) or from `-c account=...`.
SYNTH_ACCOUNT = "123456789012"


@dataclass
class AcmeStacks:
    network: NetworkStack
    msk: MskStack
    connectivity: MskConnectivityStack
    data_lake: DataLakeStack
    data_gen: DataGenStack
    dashboard: DashboardStack

    def all(self) -> list[cdk.Stack]:
        return [self.network, self.msk, self.connectivity, self.data_lake, self.data_gen, self.dashboard]


def az_context_key(account: str, region: str) -> str:
    return f"availability-zones:account={account}:region={region}"


def fill_placeholder_az_context(app: cdk.App, account: str, config: AppConfig) -> bool:
    """For a placeholder synth only (no account, or SYNTH_ACCOUNT), fill CDK's AZ lookup
    from config: without credentials CDK cannot look AZs up and falls back to two.

    With a real account the lookup is left to CDK: the CLI asks EC2 for the account's real
    AZ names (they differ per account) and caches them in cdk.context.json. Forcing
    '<region>a/b/c' there could name an AZ the account does not have, or one MSK does not
    support. Returns True when it filled the context."""
    if account != SYNTH_ACCOUNT:
        return False
    key = az_context_key(account, config.region)
    if app.node.try_get_context(key) is not None:  # cdk.context.json already holds an answer
        return False
    app.node.set_context(key, config.availability_zones)
    return True


def build(app: cdk.App, config: AppConfig, *, nag: bool = True, site_dir: Path | None = None) -> AcmeStacks:
    """Create the six stacks on `app` for `config`, with the plan's dependencies.

    Stack names and physical names carry the stage (config.stage_name): AcmeMskStack ->
    AcmeMskStack-<stage>; the construct ids stay the plan's names, so `cdk deploy
    AcmeMskStack` still selects a stack and the templates keep their file names."""
    account = config.account or SYNTH_ACCOUNT
    env = cdk.Environment(account=account, region=config.region)
    fill_placeholder_az_context(app, account, config)

    tags = {"project": "acme-telemetry", "profile": config.profile, "stage": config.stage_name}

    def common(stack_id: str) -> dict[str, Any]:
        return {"env": env, "tags": tags, "stack_name": config.stack_name(stack_id)}

    prefix, lambdas = config.name_prefix, config.lambdas
    alarm_topic_name = f"{prefix}-alarms"
    network = NetworkStack(
        app,
        "AcmeNetworkStack",
        prefix=prefix,
        network=config.network,
        alarm_topic_name=alarm_topic_name,
        alarm_email=config.alarms.email,
        **common("AcmeNetworkStack"),
        description="ACME telemetry: VPC, security groups, alarm topic",
    )
    msk = MskStack(
        app,
        "AcmeMskStack",
        msk=config.msk,
        cluster_name=config.cluster_name,
        topic=config.topic,
        logs_bucket_base_name=config.bucket_base(config.logs_bucket_name),
        parameter_prefix=f"/{prefix}/msk",
        # Broker logs expire within days; they are not the lake's data.
        retain_logs=False,
        handler_log_retention_days=lambdas.log_retention_days,
        vpc=network.vpc,
        msk_security_group=network.msk_security_group,
        **common("AcmeMskStack"),
        description="ACME telemetry: MSK cluster, topic, Firehose access",
    )
    connectivity = MskConnectivityStack(
        app,
        "AcmeMskConnectivityStack",
        prefix=prefix,
        cluster=msk.cluster,
        timeout_hours=config.msk.connectivity_timeout_hours,
        log_retention_days=lambdas.log_retention_days,
        architecture=lambdas.architecture,
        **common("AcmeMskConnectivityStack"),
        description="ACME telemetry: MSK multi-VPC connectivity (waits up to 12 h)",
    )
    data_lake = DataLakeStack(
        app,
        "AcmeDataLakeStack",
        data_bucket_base_name=config.bucket_base(config.data_bucket_name),
        results_bucket_base_name=config.bucket_base(config.athena_results_bucket_name),
        access_logs_bucket_base_name=config.bucket_base(config.access_logs_bucket_name),
        database_name=config.database_name,
        table_name=config.glue_table,
        workgroup_name=config.workgroup_name,
        named_queries=NAMED_QUERIES,
        retain_data=config.retain_data,
        ia_after_days=config.lake_ia_after_days,
        archive_after_days=config.lake_archive_after_days,
        **common("AcmeDataLakeStack"),
        description="ACME telemetry: S3 lake, Glue table, Athena",
    )
    data_gen = DataGenStack(
        app,
        "AcmeDataGenStack",
        prefix=prefix,
        lambdas=lambdas,
        generator=config.generator,
        firehose=config.firehose,
        cluster=msk.cluster,
        data_bucket=data_lake.data_bucket,
        vpc=network.vpc,
        producer_security_group=network.producer_security_group,
        alarm_topic_name=alarm_topic_name,
        **common("AcmeDataGenStack"),
        description="ACME telemetry: generator, producer, Firehose to the lake",
    )
    health = {
        "metrics_namespace": METRICS_NAMESPACE,
        "generator_function": f"{prefix}-generator",
        "producer_function": f"{prefix}-producer",
        "cluster_name": config.cluster_name,
        "broker_count": str(config.msk.broker_count),
        "delivery_stream": f"{prefix}-delivery-stream",
        "producer_alarms": f"{prefix}-producer-failures,{prefix}-producer-errors",
    }
    dashboard = DashboardStack(
        app,
        "AcmeDashboardStack",
        prefix=prefix,
        lambdas=lambdas,
        dashboard=config.dashboard,
        cluster=msk.cluster,
        vpc=network.vpc,
        consumer_security_group=network.consumer_security_group,
        site_dir=site_dir,
        alarm_topic_name=alarm_topic_name,
        manage_api_gateway_account=config.manage_api_gateway_account,
        heartbeat_interval_s=config.generator.heartbeat_interval_s,
        health=health,
        **common("AcmeDashboardStack"),
        description="ACME telemetry: WebSocket KPI feed, dashboard hosting, health dashboard",
    )
    msk.add_stack_dependency(network)
    connectivity.add_stack_dependency(msk)
    data_gen.add_stack_dependency(msk)
    data_gen.add_stack_dependency(connectivity)  # the delivery stream needs the connectivity
    data_gen.add_stack_dependency(data_lake)
    dashboard.add_stack_dependency(msk)
    dashboard.add_stack_dependency(network)  # the alarm topic
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return AcmeStacks(network, msk, connectivity, data_lake, data_gen, dashboard)
