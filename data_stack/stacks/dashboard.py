"""AcmeDashboardStack: the KPI WebSocket API, the KPI consumer on the MSK topic, and the
dashboard page hosting.

Fixes against the plan:
- The WebSocket API (data_stack.constructs.kpi_websocket_api.KpiWebSocketApi) admits a
  connection only with the dashboard token (REQUEST authorizer on $connect).
- The consumer broadcasts one PII-free KPI snapshot (plus a PII-free feed) per batching
  window, not whole events with ip_address/customer_id/device_id per 100 records.
- A GoneException (410) deletes the stale connection (the plan checked the wrong status
  field and called an undefined DeleteCommand).
- The event source mapping starts at LATEST, batches per window and has an on-failure
  destination; its role is scoped to the cluster, topic and consumer group
  (MskCluster.grant_consume). Its error handling is explicit (provisioned mode, which
  Kafka's retry controls need): a batch that keeps failing is retried a bounded number
  of times, split in halves, and sent to the on-failure queue (Kafka's default, -1, would
  retry it until its records expire from the topic).
- Failures reach a person: alarms on the consumer's errors and its failure queue notify
  the alarm topic; a CloudWatch dashboard (output HealthDashboardUrl) shows the whole
  pipeline's health in one place (data_stack.constructs.health_dashboard).
- All functions are Python 3.12, bundled without Docker (the plan used nodejs18.x).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from data_stack.config import DashboardConfig, LambdaConfig
from data_stack.constructs.common import alarm_on_any, alarm_topic_arn, prefixed_function
from data_stack.constructs.dashboard_site import DashboardSite
from data_stack.constructs.health_dashboard import HealthDashboard
from data_stack.constructs.kpi_websocket_api import KpiWebSocketApi
from data_stack.constructs.msk_cluster import MskCluster
from data_stack.nag import acknowledge


class DashboardStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        lambdas: LambdaConfig,
        dashboard: DashboardConfig,
        cluster: MskCluster,
        vpc: ec2.IVpc,
        consumer_security_group: ec2.ISecurityGroup,
        alarm_topic_name: str,
        manage_api_gateway_account: bool,
        heartbeat_interval_s: int,
        health: dict[str, str],
        site_dir: Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        lam, dash = lambdas, dashboard
        msk = cluster.reference(self)
        self.alarm_topic = sns.Topic.from_topic_arn(self, "AlarmTopic", alarm_topic_arn(self, alarm_topic_name))
        self.consumer_group_id = f"{prefix}-kpi-consumer"

        # Id "Default": CDK leaves it out of logical ids, so the API, stage, table, secret
        # and functions keep the logical ids they had before the move into the construct.
        self.websocket = KpiWebSocketApi(
            self,
            "Default",
            name_prefix=prefix,
            stage_name=dash.stage_name,
            connection_ttl_hours=dash.connection_ttl_hours,
            window_seconds=dash.batching_window_s,
            throttle_rate_limit=dash.throttle_rate_limit,
            throttle_burst_limit=dash.throttle_burst_limit,
            function_timeout=cdk.Duration.seconds(lam.ws_timeout_s),
            log_retention_days=lam.log_retention_days,
            lambda_architecture=lam.architecture,
            manage_api_gateway_account=manage_api_gateway_account,
        )
        self.connections = self.websocket.connections
        self.stage = self.websocket.stage

        # --- KPI consumer on the MSK topic ------------------------------------------------
        self.consumer_dlq = sqs.Queue(
            self,
            "ConsumerFailures",
            queue_name=f"{prefix}-consumer-failures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            self.consumer_dlq,
            "AwsSolutions-SQS3",
            "This queue is itself the on-failure destination of the consumer's event source mapping.",
        )
        self.consumer = prefixed_function(
            self,
            "ConsumerFunction",
            "consumer",
            "KPIs per batching window from the MSK topic, broadcast to WebSocket clients",
            name_prefix=prefix,
            log_retention_days=lam.log_retention_days,
            architecture=lam.architecture,
            memory_size=lam.consumer_memory_mb,
            timeout=cdk.Duration.seconds(lam.consumer_timeout_s),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[consumer_security_group],
            environment={
                "CONNECTIONS_TABLE": self.connections.table_name,
                "WEBSOCKET_ENDPOINT": self.websocket.callback_url,
                # The KPI window and the viewers' heartbeat (concurrent viewers are
                # heartbeat-weighted presence): the same values the local feed uses.
                "KPI_WINDOW_S": str(dash.batching_window_s),
                "HEARTBEAT_INTERVAL_S": str(heartbeat_interval_s),
            },
        )
        self.websocket.grant_broadcast(self.consumer)
        msk.grant_consume(self.consumer, group=self.consumer_group_id)
        self.event_source_mapping = lambda_.EventSourceMapping(
            self,
            "ConsumerEventSource",
            target=self.consumer,
            event_source_arn=msk.cluster_arn,
            kafka_topic=msk.topic_name,
            kafka_consumer_group_id=self.consumer_group_id,
            starting_position=lambda_.StartingPosition.LATEST,
            # One broadcast per window: the batch closes on the window, not on 100 records.
            batch_size=dash.batch_size,
            max_batching_window=cdk.Duration.seconds(dash.batching_window_s),
            on_failure=event_sources.SqsDlq(self.consumer_dlq),
            # Lambda "Configuring error handling controls for Kafka event sources": bounded
            # retries and record age, halves on error; then the batch goes to on_failure.
            retry_attempts=dash.consumer_retry_attempts,
            max_record_age=cdk.Duration.seconds(dash.consumer_max_record_age_s),
            bisect_batch_on_error=True,
            provisioned_poller_config=lambda_.ProvisionedPollerConfig(
                minimum_pollers=dash.consumer_min_pollers, maximum_pollers=dash.consumer_max_pollers
            ),
        )
        # The ESM validates its role on create: make it wait for the consumer's policy.
        self.event_source_mapping.node.add_dependency(self.consumer.role)

        # --- Dashboard page hosting (S3 + CloudFront OAC + config.json) ---------------------
        # >>> DashboardSite hook: the dashboard engineer's construct
        # data_stack/constructs/dashboard_site.py (class DashboardSite) is instantiated here.
        self.site = DashboardSite(
            self,
            "DashboardSite",
            site_dir=site_dir or Path("dashboard/dist"),
            websocket_url=self.websocket.url,
            window_seconds=float(dash.batching_window_s),
        )
        # <<< DashboardSite hook

        # --- failures reach a person ------------------------------------------------------
        self.consumer_failures_alarm = alarm_on_any(
            self,
            "ConsumerFailuresAlarm",
            name=f"{prefix}-consumer-failures",
            description="KPI batches failed after every retry and landed in the consumer's on-failure queue",
            metric=self.consumer_dlq.metric_approximate_number_of_messages_visible(period=cdk.Duration.minutes(5)),
            topic=self.alarm_topic,
        )
        self.consumer_errors_alarm = alarm_on_any(
            self,
            "ConsumerErrorsAlarm",
            name=f"{prefix}-consumer-errors",
            description="The KPI consumer Lambda reported errors (its batches are being retried)",
            metric=self.consumer.metric_errors(period=cdk.Duration.minutes(5)),
            topic=self.alarm_topic,
        )
        self.health = HealthDashboard(
            self,
            "Health",
            dashboard_name=f"{prefix}-health",
            consumer=self.consumer,
            api_id=self.websocket.api.api_id,
            stage_name=self.stage.stage_name,
            metrics_namespace=health["metrics_namespace"],
            generator_function=health["generator_function"],
            producer_function=health["producer_function"],
            cluster_name=health["cluster_name"],
            delivery_stream=health["delivery_stream"],
            broker_count=int(health["broker_count"]),
            alarms=[
                self.consumer_failures_alarm,
                self.consumer_errors_alarm,
                *(
                    cloudwatch.Alarm.from_alarm_arn(
                        self,
                        f"Alarm-{name}",
                        self.format_arn(
                            service="cloudwatch", resource="alarm", resource_name=name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
                        ),
                    )
                    for name in health["producer_alarms"].split(",")
                ),
            ],
        )

        cdk.CfnOutput(self, "WebSocketApiEndpoint", value=self.websocket.url)
        cdk.CfnOutput(self, "ConnectionsTableName", value=self.connections.table_name)
        cdk.CfnOutput(self, "DashboardTokenSecretArn", value=self.websocket.token_secret.secret_arn)
        cdk.CfnOutput(self, "ConsumerFailureQueueUrl", value=self.consumer_dlq.queue_url)
        cdk.CfnOutput(
            self,
            "HealthDashboardUrl",
            value=self.health.url,
            description="CloudWatch dashboard: generator, producer, MSK, Firehose, consumer lag, WebSocket",
        )
