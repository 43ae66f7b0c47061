"""FirehoseMskToS3: a Firehose delivery stream that reads an MSK topic (private, IAM)
and writes gzip NDJSON into an S3 bucket.

- AppendDelimiterToRecord, so Athena's JSON SerDe can split records.
- The prefixes are props (the lake's layout, which the Glue projection expects).
- The stream depends on its role's one explicit policy (`policy`): the plan's stream
  could be created before its role's policy existed and fail to start. Grant the MSK
  source's read on that policy (`MskCluster.grant_delivery_stream_read(firehose.policy)`).
- `source_cluster_arn` must be the cluster ARN as returned once multi-VPC connectivity
  is ACTIVE (`MskCluster.firehose_ready_cluster_arn`), so the stream waits for it.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from data_stack.constructs.common import log_group
from data_stack.nag import acknowledge


class FirehoseMskToS3(Construct):
    """Role, policy, log group and stream, and the MSKAsSource delivery stream."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        delivery_stream_name: str,
        source_cluster_arn: str,
        topic_name: str,
        bucket: s3.IBucket,
        prefix: str,
        error_output_prefix: str,
        buffer_interval_s: int,
        buffer_size_mb: int,
        log_group_name: str,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        self.role = iam.Role(
            self,
            "FirehoseRole",
            assumed_by=iam.ServicePrincipal("firehose.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}),
            description="Firehose: read the telemetry topic, write the lake",
        )
        self.log_group = log_group(self, "FirehoseLogGroup", log_retention_days, name=log_group_name)
        log_stream = logs.LogStream(self, "FirehoseLogStream", log_group=self.log_group, log_stream_name="delivery")

        self.policy = iam.Policy(self, "FirehosePolicy", roles=[self.role])
        self.policy.add_statements(
            iam.PolicyStatement(
                actions=[
                    "s3:AbortMultipartUpload",
                    "s3:GetBucketLocation",
                    "s3:GetObject",
                    "s3:ListBucket",
                    "s3:ListBucketMultipartUploads",
                    "s3:PutObject",
                ],
                resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                actions=["logs:PutLogEvents"],
                # The log stream's own ARN. (log_group_arn is a token ending in ':*', so
                # string surgery on it does nothing: build the ARN from its parts.)
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"{self.log_group.log_group_name}:log-stream:{log_stream.log_stream_name}",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            ),
        )
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5",
            "Firehose writes new objects under time-based prefixes it chooses, so it needs objects in the data bucket (only that bucket).",
            resource=bucket.arn_for_objects("*"),
        )

        self.delivery_stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_name=delivery_stream_name,
            delivery_stream_type="MSKAsSource",
            msk_source_configuration=firehose.CfnDeliveryStream.MSKSourceConfigurationProperty(
                msk_cluster_arn=source_cluster_arn,
                topic_name=topic_name,
                authentication_configuration=firehose.CfnDeliveryStream.AuthenticationConfigurationProperty(
                    connectivity="PRIVATE", role_arn=self.role.role_arn
                ),
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn,
                role_arn=self.role.role_arn,
                prefix=prefix,
                error_output_prefix=error_output_prefix,
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=buffer_interval_s, size_in_m_bs=buffer_size_mb
                ),
                compression_format="GZIP",
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    # Firehose API Processor: "You don't have to put a processor parameter
                    # when you select AppendDelimiterToRecord" - it appends a newline.
                    processors=[firehose.CfnDeliveryStream.ProcessorProperty(type="AppendDelimiterToRecord")],
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True, log_group_name=self.log_group.log_group_name, log_stream_name=log_stream.log_stream_name
                ),
            ),
        )
        self.delivery_stream.node.add_dependency(self.policy)
        acknowledge(
            self.delivery_stream,
            "AwsSolutions-KDF1",
            "Server-side encryption of a delivery stream applies to DirectPut only; with MSKAsSource the data is encrypted in transit (TLS), at rest in MSK, and in S3 (SSE-S3).",
        )
