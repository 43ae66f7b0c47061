"""AcmeDataGenStack: generator -> producer -> MSK, and Firehose MSK -> S3.

Fixes against the plan:
- Lambdas run Python 3.12, bundled with their pip dependencies (no Docker); the
  producer gets no AWS_REGION (reserved; the runtime sets it).
- BOOTSTRAP_SERVERS is the SASL/IAM string from GetBootstrapBrokers in AcmeMskStack,
  read from its SSM parameter at deploy time (no strong export, so a replaced cluster
  never blocks on "export in use").
- The generator chunks async invokes below the 1 MB payload limit; a failed produce is
  a failed invocation that lands in a DLQ (on-failure destination) with an alarm.
- Firehose: AppendDelimiterToRecord so Athena's JSON SerDe can split records; the
  prefix Glue's projection expects; created after the MSK cluster policy and the
  multi-VPC connectivity wait (this stack depends on AcmeMskConnectivityStack), and
  after its role's policy.
- The schedule can be paused without destroy (generator.schedule_enabled; dev deploys
  it disabled); every alarm notifies the alarm topic.
- IAM is scoped to the cluster, topic and bucket: the producer and Firehose get their
  access from the MskCluster construct's grants (grant_produce, grant_delivery_stream_read).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from acme_telemetry import lake
from acme_telemetry.settings import FirehoseSettings
from data_stack.config import GeneratorConfig, LambdaConfig
from data_stack.constructs.common import alarm_on_any, alarm_topic_arn, log_group
from data_stack.constructs.firehose_msk_to_s3 import FirehoseMskToS3
from data_stack.constructs.msk_cluster import MskCluster
from data_stack.constructs.python_function import PythonFunction
from data_stack.nag import acknowledge


class DataGenStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        lambdas: LambdaConfig,
        generator: GeneratorConfig,
        firehose: FirehoseSettings,
        cluster: MskCluster,
        data_bucket: s3.IBucket,
        vpc: ec2.IVpc,
        producer_security_group: ec2.ISecurityGroup,
        alarm_topic_name: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        lam, gen = lambdas, generator
        msk = cluster.reference(self)
        self.alarm_topic = sns.Topic.from_topic_arn(self, "AlarmTopic", alarm_topic_arn(self, alarm_topic_name))

        self.dlq = sqs.Queue(
            self,
            "ProducerFailures",
            queue_name=f"{prefix}-producer-failures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            self.dlq,
            "AwsSolutions-SQS3",
            "This queue is itself the on-failure destination (DLQ) of the generator and producer; a DLQ of a DLQ adds nothing.",
        )

        def function_logs(name: str) -> logs.LogGroup:
            return log_group(self, f"{name}Logs", lam.log_retention_days, name=f"/aws/lambda/{prefix}-{name.lower()}")

        self.producer = PythonFunction(
            self,
            "ProducerFunction",
            name="producer",
            architecture=lam.architecture,
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
                "KAFKA_TOPIC": msk.topic_name,
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
            architecture=lam.architecture,
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
                **({"INCIDENTS": gen.incidents} if gen.incidents else {}),
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
            # Paused: nothing runs or charges; `aws events enable-rule --name <rule>` resumes.
            enabled=gen.schedule_enabled,
        )
        self.schedule.add_target(targets.LambdaFunction(self.generator, retry_attempts=2, dead_letter_queue=self.dlq))

        # A failed produce must be seen: the DLQ receiving anything raises an alarm.
        self.failure_alarm = alarm_on_any(
            self,
            "ProducerFailuresAlarm",
            name=f"{prefix}-producer-failures",
            description="Generator/producer invocations failed and landed in the DLQ",
            metric=self.dlq.metric_approximate_number_of_messages_visible(period=cdk.Duration.minutes(5)),
            topic=self.alarm_topic,
        )
        self.producer_errors_alarm = alarm_on_any(
            self,
            "ProducerErrorsAlarm",
            name=f"{prefix}-producer-errors",
            description="The producer Lambda reported errors (records not acknowledged by Kafka)",
            metric=self.producer.metric_errors(period=cdk.Duration.minutes(5)),
            topic=self.alarm_topic,
        )

        # Id "Default": CDK leaves it out of logical ids, so the role, policy, log group
        # and delivery stream keep the logical ids they had before the move into the construct.
        self.firehose = FirehoseMskToS3(
            self,
            "Default",
            delivery_stream_name=f"{prefix}-delivery-stream",
            source_cluster_arn=msk.cluster_arn,
            topic_name=msk.topic_name,
            bucket=data_bucket,
            prefix=lake.FIREHOSE_PREFIX,
            error_output_prefix=lake.FIREHOSE_ERROR_PREFIX,
            buffer_interval_s=firehose.buffer_interval_s,
            buffer_size_mb=firehose.buffer_size_mb,
            log_group_name=f"/aws/firehose/{prefix}-delivery",
            log_retention_days=lam.log_retention_days,
        )
        msk.grant_delivery_stream_read(self.firehose.policy)
        self.delivery_stream = self.firehose.delivery_stream

        acknowledge(
            self.generator.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5",  # type: ignore[union-attr]
            "grant_invoke on the producer: ':*' covers its versions and aliases only.",
            resource=f"{self.producer.function_arn}:*",
        )

        cdk.CfnOutput(self, "GeneratorFunctionArn", value=self.generator.function_arn)
        cdk.CfnOutput(self, "ProducerFunctionArn", value=self.producer.function_arn)
        cdk.CfnOutput(self, "ProducerFailureQueueUrl", value=self.dlq.queue_url)
        cdk.CfnOutput(self, "DeliveryStreamName", value=self.delivery_stream.ref)
        cdk.CfnOutput(self, "GeneratorFunctionName", value=self.generator.function_name)
        cdk.CfnOutput(
            self,
            "GeneratorScheduleRuleName",
            value=self.schedule.rule_name,
            description="Pause: aws events disable-rule --name <this>; resume: aws events enable-rule --name <this>",
        )
