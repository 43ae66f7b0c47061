"""AcmeMskStack: the MSK cluster (data_stack.constructs.msk_cluster.MskCluster) and its outputs.

Other stacks get `cluster.reference(self)` (ARN and bootstrap string from SSM parameters,
never a strong export) and call its grants by intent (grant_produce, grant_consume,
grant_delivery_stream_read) for their own principals.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from acme_telemetry.settings import TopicSettings
from data_stack.config import MskConfig
from data_stack.constructs.common import bucket_name
from data_stack.constructs.msk_cluster import MskCluster


class MskStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        msk: MskConfig,
        cluster_name: str,
        topic: TopicSettings,
        logs_bucket_base_name: str,
        parameter_prefix: str,
        retain_logs: bool,
        handler_log_retention_days: int,
        vpc: ec2.IVpc,
        msk_security_group: ec2.ISecurityGroup,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        # Id "Default": CDK leaves it out of logical ids, so the resources keep the
        # logical ids they had when this stack created them itself (a deployed cluster,
        # topic or bucket is never replaced by the move into the construct).
        self.cluster = MskCluster(
            self,
            "Default",
            cluster_name=cluster_name,
            kafka_version=msk.kafka_version,
            broker_instance_type=msk.broker_instance_type,
            broker_count=msk.broker_count,
            ebs_volume_gb=msk.ebs_volume_gb,
            broker_log_retention_days=msk.log_retention_days,
            logs_bucket_name=None if retain_logs else bucket_name(self, logs_bucket_base_name),
            retain_logs=retain_logs,
            parameter_prefix=parameter_prefix,
            topic=topic,
            vpc=vpc,
            security_group=msk_security_group,
            handler_log_retention_days=handler_log_retention_days,
        )

        cdk.CfnOutput(self, "MskClusterArn", value=self.cluster.cluster_arn)
        cdk.CfnOutput(self, "BootstrapServers", value=self.cluster.bootstrap_brokers)
        cdk.CfnOutput(self, "TopicName", value=topic.name)
        cdk.CfnOutput(self, "ClusterArnParameterName", value=self.cluster.cluster_arn_parameter_name)
