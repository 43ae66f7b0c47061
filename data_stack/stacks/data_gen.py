"""AcmeDataGenStack: generator -> producer -> MSK, and Firehose MSK -> S3.

Fixes against the plan:
- Lambdas run Python 3.12, bundled with their pip dependencies (no Docker); the
  producer gets no AWS_REGION (reserved; the runtime sets it).
- BOOTSTRAP_SERVERS is the SASL/IAM string from GetBootstrapBrokers in AcmeMskStack,
  imported with a real cross-stack reference.
- The generator chunks async invokes below the 1 MB payload limit; a failed produce is
  a failed invocation that lands in a DLQ (on-failure destination) with an alarm.
- Firehose: AppendDelimiterToRecord so Athena's JSON SerDe can split records; the
  prefix Glue's projection expects; created after the MSK cluster policy and the
  multi-VPC connectivity update, and after its role's policy.
- IAM is scoped to the cluster, topic and bucket.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from acme_telemetry import lake
from data_stack.config import AppConfig
from data_stack.constructs.python_function import PythonFunction
from data_stack.nag import acknowledge
from data_stack.stacks._common import alarm_on_any, log_group
from data_stack.stacks.msk import MskStack


class DataGenStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: AppConfig,
        vpc: ec2.IVpc,
        producer_security_group: ec2.ISecurityGroup,
        msk: MskStack,
        data_bucket: s3.IBucket,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        prefix, lam, gen = config.prefix, config.lambdas, config.generator

        self.dlq = sqs.Queue(
            self,
            "ProducerFailures",
            queue_name=f"{prefix}-producer-failures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(self.dlq, "AwsSolutions-SQS3", "This queue is itself the on-failure destination (DLQ) of the generator and producer; a DLQ of a DLQ adds nothing.")

        def function_logs(name: str) -> logs.LogGroup:
            return log_group(self, f"{name}Logs", lam.log_retention_days, name=f"/aws/lambda/{prefix}-{name.lower()}")

        self.producer = PythonFunction(
            self,
            "ProducerFunction",
            name="producer",
            function_name=f"{prefix}-producer",
            description="Writes generator batches to the MSK topic (SASL/IAM); raises when a record fails",
            memory_size=lam.producer_memory_mb,
            timeout=cdk.Duration.seconds(lam.producer_timeout_s),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[producer_security_group],
            log_group=function_logs("Producer"),
            environment={
                # Never AWS_REGION: it is reserved, and the runtime sets it.
                "BOOTSTRAP_SERVERS": msk.bootstrap_brokers,
                "KAFKA_TOPIC": config.topic.name,
                "KAFKA_AUTH": "iam",
            },
            retry_attempts=2,
            max_event_age=cdk.Duration.hours(1),
            on_failure=destinations.SqsDestination(self.dlq),
        )
        msk.grant_produce(self.producer)

        self.generator = PythonFunction(
            self,
            "GeneratorFunction",
            name="generator",
            function_name=f"{prefix}-generator",
            description="Simulates one schedule period of viewer telemetry and hands it to the producer in <1 MB chunks",
            memory_size=lam.generator_memory_mb,
            timeout=cdk.Duration.seconds(lam.generator_timeout_s),
            log_group=function_logs("Generator"),
            environment={
                "PRODUCER_FUNCTION_NAME": self.producer.function_name,
                "SCHEDULE_MINUTES": str(gen.schedule_minutes),
                "SEED": str(gen.seed),
                "CONCURRENT_VIEWERS": str(gen.concurrent_viewers),
                "HEARTBEAT_INTERVAL_S": str(gen.heartbeat_interval_s),
                "MAX_ASYNC_PAYLOAD_BYTES": str(lam.max_async_payload_bytes),
            },
            retry_attempts=0,
            on_failure=destinations.SqsDestination(self.dlq),
        )
        self.producer.grant_invoke(self.generator)

        self.schedule = events.Rule(
            self,
            "GeneratorSchedule",
            rule_name=f"{prefix}-generator-schedule",
            schedule=events.Schedule.rate(cdk.Duration.minutes(gen.schedule_minutes)),
        )
        self.schedule.add_target(targets.LambdaFunction(self.generator, retry_attempts=2, dead_letter_queue=self.dlq))

        # A failed produce must be seen: the DLQ receiving anything raises an alarm.
        self.failure_alarm = alarm_on_any(
            self, "ProducerFailuresAlarm", name=f"{prefix}-producer-failures",
            description="Generator/producer invocations failed and landed in the DLQ",
            metric=self.dlq.metric_approximate_number_of_messages_visible(period=cdk.Duration.minutes(5)),
        )
        self.producer_errors_alarm = alarm_on_any(
            self, "ProducerErrorsAlarm", name=f"{prefix}-producer-errors",
            description="The producer Lambda reported errors (records not acknowledged by Kafka)",
            metric=self.producer.metric_errors(period=cdk.Duration.minutes(5)),
        )

        self._firehose(config, msk, data_bucket)
        self._acknowledge(msk, data_bucket)

        cdk.CfnOutput(self, "GeneratorFunctionArn", value=self.generator.function_arn)
        cdk.CfnOutput(self, "ProducerFunctionArn", value=self.producer.function_arn)
        cdk.CfnOutput(self, "ProducerFailureQueueUrl", value=self.dlq.queue_url)
        cdk.CfnOutput(self, "DeliveryStreamName", value=self.delivery_stream.ref)

    def _firehose(self, config: AppConfig, msk: MskStack, data_bucket: s3.IBucket) -> None:
        prefix = config.prefix
        self.firehose_role = iam.Role(
            self, "FirehoseRole",
            assumed_by=iam.ServicePrincipal("firehose.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self.account}}),
            description="Firehose: read the telemetry topic, write the lake",
        )
        self.firehose_log_group = log_group(self, "FirehoseLogGroup", config.lambdas.log_retention_days, name=f"/aws/firehose/{prefix}-delivery")
        log_stream = logs.LogStream(self, "FirehoseLogStream", log_group=self.firehose_log_group, log_stream_name="delivery")

        # One explicit policy, so the delivery stream can depend on it (the plan's stream
        # could be created before its role's policy existed and fail to start).
        self.firehose_policy = iam.Policy(self, "FirehosePolicy", roles=[self.firehose_role])
        self.firehose_policy.add_statements(
            iam.PolicyStatement(
                actions=["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket",
                         "s3:ListBucketMultipartUploads", "s3:PutObject"],
                resources=[data_bucket.bucket_arn, data_bucket.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                actions=["logs:PutLogEvents"],
                # The log stream's own ARN. (log_group_arn is a token ending in ':*', so
                # string surgery on it does nothing: build the ARN from its parts.)
                resources=[self.format_arn(
                    service="logs", resource="log-group",
                    resource_name=f"{self.firehose_log_group.log_group_name}:log-stream:{log_stream.log_stream_name}",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )],
            ),
        )
        self.firehose_policy.add_statements(*msk.firehose_source_statements())

        self.delivery_stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_name=f"{prefix}-delivery-stream",
            delivery_stream_type="MSKAsSource",
            msk_source_configuration=firehose.CfnDeliveryStream.MSKSourceConfigurationProperty(
                # The ARN as returned by the connectivity custom resource: the stream is
                # created only after multi-VPC IAM connectivity is ACTIVE and the cluster
                # policy for firehose.amazonaws.com exists.
                msk_cluster_arn=msk.firehose_ready_cluster_arn,
                topic_name=config.topic.name,
                authentication_configuration=firehose.CfnDeliveryStream.AuthenticationConfigurationProperty(
                    connectivity="PRIVATE", role_arn=self.firehose_role.role_arn
                ),
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=data_bucket.bucket_arn,
                role_arn=self.firehose_role.role_arn,
                prefix=lake.FIREHOSE_PREFIX,
                error_output_prefix=lake.FIREHOSE_ERROR_PREFIX,
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=config.firehose.buffer_interval_s, size_in_m_bs=config.firehose.buffer_size_mb
                ),
                compression_format="GZIP",
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    # Firehose API Processor: "You don't have to put a processor parameter
                    # when you select AppendDelimiterToRecord" - it appends a newline.
                    processors=[firehose.CfnDeliveryStream.ProcessorProperty(type="AppendDelimiterToRecord")],
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True, log_group_name=self.firehose_log_group.log_group_name, log_stream_name=log_stream.log_stream_name
                ),
            ),
        )
        self.delivery_stream.node.add_dependency(self.firehose_policy)

    def _acknowledge(self, msk: MskStack, data_bucket: s3.IBucket) -> None:
        acknowledge(self.generator.role.node.find_child("DefaultPolicy"), "AwsSolutions-IAM5",  # type: ignore[union-attr]
                    "grant_invoke on the producer: ':*' covers its versions and aliases only.",
                    resource=f"{self.producer.function_arn}:*")
        acknowledge(self.firehose_policy, "AwsSolutions-IAM5",
                    "Firehose writes new objects under time-based prefixes it chooses, so it needs objects in the data bucket (only that bucket).",
                    resource=data_bucket.arn_for_objects("*"))
        acknowledge(self.firehose_policy, "AwsSolutions-IAM5",
                    "Firehose names its own consumer group; DescribeGroup is limited to groups of this one cluster.",
                    resource=msk.group_arn("*"))
        acknowledge(self.delivery_stream, "AwsSolutions-KDF1",
            "Server-side encryption of a delivery stream applies to DirectPut only; with MSKAsSource the data is encrypted in transit (TLS), at rest in MSK, and in S3 (SSE-S3).")

