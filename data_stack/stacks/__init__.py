"""The five stacks and how they are wired (used by app.py and by the tests).

`build()` is the one place that reads the whole AppConfig: it picks each stack's
sections and values and passes them explicitly; stacks hand explicit props to the
constructs, and the MskCluster construct (not its stack) goes to the stacks that need
its grants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from data_stack.config import AppConfig
from data_stack.queries import NAMED_QUERIES
from data_stack.stacks.dashboard import DashboardStack
from data_stack.stacks.data_gen import DataGenStack
from data_stack.stacks.data_lake import DataLakeStack
from data_stack.stacks.msk import MskStack
from data_stack.stacks.network import NetworkStack

# Used for a synth without credentials (CI, tests). A real deploy takes the account
# from the CLI's credentials (CDK_DEFAULT_ACCOUNT) or from `-c account=...`.
SYNTH_ACCOUNT = "123456789012"


@dataclass
class AcmeStacks:
    network: NetworkStack
    msk: MskStack
    data_lake: DataLakeStack
    data_gen: DataGenStack
    dashboard: DashboardStack

    def all(self) -> list[cdk.Stack]:
        return [self.network, self.msk, self.data_lake, self.data_gen, self.dashboard]


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
    """Create the five stacks on `app` for `config`, with the plan's dependencies."""
    account = config.account or SYNTH_ACCOUNT
    env = cdk.Environment(account=account, region=config.region)
    fill_placeholder_az_context(app, account, config)

    tags = {"project": "acme-telemetry", "profile": config.profile}
    common = {"env": env, "tags": tags}
    prefix, lambdas = config.prefix, config.lambdas
    network = NetworkStack(app, "AcmeNetworkStack", prefix=prefix, network=config.network, **common,
                           description="ACME telemetry: VPC and security groups")
    msk = MskStack(app, "AcmeMskStack", msk=config.msk, topic=config.topic,
                   logs_bucket_base_name=config.logs_bucket_name,
                   handler_log_retention_days=lambdas.log_retention_days,
                   handler_architecture=lambdas.architecture,
                   vpc=network.vpc, msk_security_group=network.msk_security_group, **common,
                   description="ACME telemetry: MSK cluster, topic, Firehose access")
    data_lake = DataLakeStack(app, "AcmeDataLakeStack",
                              data_bucket_base_name=config.data_bucket_name,
                              results_bucket_base_name=config.athena_results_bucket_name,
                              access_logs_bucket_base_name=config.access_logs_bucket_name,
                              database_name=config.glue_database, table_name=config.glue_table,
                              workgroup_name=config.athena_workgroup, named_queries=NAMED_QUERIES, **common,
                              description="ACME telemetry: S3 lake, Glue table, Athena")
    data_gen = DataGenStack(app, "AcmeDataGenStack", prefix=prefix, lambdas=lambdas, generator=config.generator,
                            firehose=config.firehose, cluster=msk.cluster, data_bucket=data_lake.data_bucket,
                            vpc=network.vpc, producer_security_group=network.producer_security_group, **common,
                            description="ACME telemetry: generator, producer, Firehose to the lake")
    dashboard = DashboardStack(app, "AcmeDashboardStack", prefix=prefix, lambdas=lambdas, dashboard=config.dashboard,
                               cluster=msk.cluster, vpc=network.vpc,
                               consumer_security_group=network.consumer_security_group, site_dir=site_dir, **common,
                               description="ACME telemetry: WebSocket KPI feed and dashboard hosting")
    msk.add_stack_dependency(network)
    data_gen.add_stack_dependency(msk)
    data_gen.add_stack_dependency(data_lake)
    dashboard.add_stack_dependency(msk)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return AcmeStacks(network, msk, data_lake, data_gen, dashboard)
