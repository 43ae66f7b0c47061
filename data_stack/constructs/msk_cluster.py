"""MskCluster: an MSK cluster with IAM auth, its one topic, Firehose access and the
bootstrap string, with grants named by intent.

- Kafka version, brokers and storage are props (3.5.1 reached end of support 2025-10-23).
- The topic is declared (AWS::MSK::Topic): MSK defaults to auto.create.topics.enable=false.
- Multi-VPC private connectivity with IAM, which CloudFormation refuses at cluster
  creation, is turned on once the cluster is ACTIVE by a custom resource whose
  is_complete handler waits for the update to finish (Provider framework).
- An AWS::MSK::ClusterPolicy lets firehose.amazonaws.com create its VPC connection.
- The SASL/IAM bootstrap string comes from GetBootstrapBrokers (the cluster has no
  BootstrapBrokers attribute).
- Grants by intent, scoped to the cluster, topic and group ARNs: `grant_produce`,
  `grant_consume(group=...)`, `grant_delivery_stream_read`. `Resource: '*'` appears only
  for actions with no resource-level permissions (EC2 Describe*,
  kafka:DescribeClusterOperationV2), each acknowledged in cdk-nag with that reason.
"""

from __future__ import annotations

import base64
import json

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_msk as msk
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from acme_telemetry.settings import TopicSettings
from data_stack.constructs.common import log_group, private_bucket
from data_stack.constructs.python_function import PythonFunction
from data_stack.nag import acknowledge

FIREHOSE_PRINCIPAL = "firehose.amazonaws.com"
# What Firehose needs on the cluster policy to read through a private (multi-VPC) connection.
FIREHOSE_CLUSTER_POLICY_ACTIONS = (
    "kafka:CreateVpcConnection",
    "kafka:GetBootstrapBrokers",
    "kafka:DescribeCluster",
    "kafka:DescribeClusterV2",
)
# CloudFormation custom resources: ServiceTimeout is at most 3600 s.
CFN_CUSTOM_RESOURCE_MAX_TIMEOUT = cdk.Duration.seconds(3600)
PROVIDER_TOTAL_TIMEOUT = cdk.Duration.minutes(55)
CONNECTIVITY_EC2_DESCRIBE_ACTIONS = ("ec2:DescribeSubnets", "ec2:DescribeRouteTables")
# What the Lambda MSK event source mapping needs to reach the cluster's VPC
# (Lambda "Configuring Lambda permissions for Amazon MSK event source mappings";
# AWSLambdaMSKExecutionRole). EC2 Describe* actions support no resource-level permissions.
ESM_EC2_DESCRIBE_ACTIONS = ("ec2:DescribeVpcs", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets")
BASIC_EXECUTION_ROLE = "service-role/AWSLambdaBasicExecutionRole"

# A grantee: anything with a principal (a function, a role), or an explicit iam.Policy
# when a resource must depend on exactly the policy that holds the grant (Firehose).
Grantee = iam.IGrantable | iam.Policy


class MskCluster(Construct):
    """The cluster, its topic, the Firehose cluster policy and multi-VPC connectivity.

    Attributes: `cluster` (CfnCluster), `cluster_arn`, `topic` (CfnTopic), `topic_name`,
    `topic_arn`, `bootstrap_brokers` (SASL/IAM), `firehose_ready_cluster_arn` (the ARN once
    multi-VPC connectivity is ACTIVE: what a delivery stream must use), `logs_bucket`."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster_name: str,
        kafka_version: str,
        broker_instance_type: str,
        broker_count: int,
        ebs_volume_gb: int,
        broker_log_retention_days: int,
        logs_bucket_name: str,
        topic: TopicSettings,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        handler_log_retention_days: int,
        handler_architecture: str,
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        self.cluster_name = cluster_name
        self.topic_name = topic.name

        self.logs_bucket = private_bucket(
            self,
            "MskLogsBucket",
            name=logs_bucket_name,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireBrokerLogs", expiration=cdk.Duration.days(max(broker_log_retention_days, 1)))],
        )
        acknowledge(self.logs_bucket, "AwsSolutions-S1", "This bucket only receives MSK broker logs from the log delivery service; access-logging a log bucket would only log the logger.")
        # MSK delivers S3 broker logs through CloudWatch Logs vended delivery; declaring the
        # policy here keeps CloudFormation from overwriting the one MSK would add itself.
        delivery = iam.ServicePrincipal("delivery.logs.amazonaws.com")
        self.logs_bucket.add_to_resource_policy(iam.PolicyStatement(
            principals=[delivery], actions=["s3:PutObject"],
            resources=[self.logs_bucket.arn_for_objects(f"msk-logs/AWSLogs/{stack.account}/*")],
            conditions={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": stack.account}},
        ))
        self.logs_bucket.add_to_resource_policy(iam.PolicyStatement(
            principals=[delivery], actions=["s3:GetBucketAcl"], resources=[self.logs_bucket.bucket_arn],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        ))

        self.log_group = log_group(self, "MskLogGroup", broker_log_retention_days, name=f"/aws/msk/{cluster_name}")

        subnets = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids
        self.cluster = msk.CfnCluster(
            self,
            "MskCluster",
            cluster_name=cluster_name,
            kafka_version=kafka_version,
            number_of_broker_nodes=broker_count,
            broker_node_group_info=msk.CfnCluster.BrokerNodeGroupInfoProperty(
                instance_type=broker_instance_type,
                client_subnets=subnets,
                security_groups=[security_group.security_group_id],
                storage_info=msk.CfnCluster.StorageInfoProperty(
                    ebs_storage_info=msk.CfnCluster.EBSStorageInfoProperty(volume_size=ebs_volume_gb)
                ),
            ),
            client_authentication=msk.CfnCluster.ClientAuthenticationProperty(
                sasl=msk.CfnCluster.SaslProperty(iam=msk.CfnCluster.IamProperty(enabled=True)),
                unauthenticated=msk.CfnCluster.UnauthenticatedProperty(enabled=False),
            ),
            encryption_info=msk.CfnCluster.EncryptionInfoProperty(
                encryption_in_transit=msk.CfnCluster.EncryptionInTransitProperty(client_broker="TLS", in_cluster=True)
            ),
            enhanced_monitoring="PER_TOPIC_PER_BROKER",
            logging_info=msk.CfnCluster.LoggingInfoProperty(
                broker_logs=msk.CfnCluster.BrokerLogsProperty(
                    cloud_watch_logs=msk.CfnCluster.CloudWatchLogsProperty(enabled=True, log_group=self.log_group.log_group_name),
                    s3=msk.CfnCluster.S3Property(enabled=True, bucket=self.logs_bucket.bucket_name, prefix="msk-logs/"),
                )
            ),
        )
        self.cluster.node.add_dependency(self.logs_bucket.policy)
        self.cluster_arn = self.cluster.attr_arn
        cluster_uuid = cdk.Fn.select(2, cdk.Fn.split("/", self.cluster_arn))
        arn_base = f"arn:{stack.partition}:kafka:{stack.region}:{stack.account}"
        self.topic_arn = f"{arn_base}:topic/{cluster_name}/{cluster_uuid}/{topic.name}"
        self._group_arn_base = f"{arn_base}:group/{cluster_name}/{cluster_uuid}/"

        # MSK defaults to auto.create.topics.enable=false: the topic must be declared.
        topic_configs = {
            "retention.ms": str(topic.retention_hours * 3600 * 1000),
            "min.insync.replicas": str(topic.min_insync_replicas),
            "cleanup.policy": "delete",
        }
        self.topic = msk.CfnTopic(
            self,
            "TelemetryTopic",
            cluster_arn=self.cluster_arn,
            topic_name=topic.name,
            partition_count=topic.partitions,
            replication_factor=topic.replication_factor,
            configs=base64.b64encode(json.dumps(topic_configs, sort_keys=True).encode()).decode(),
        )

        self.cluster_policy = msk.CfnClusterPolicy(
            self,
            "FirehoseClusterPolicy",
            cluster_arn=self.cluster_arn,
            policy={
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "FirehoseMskSource",
                    "Effect": "Allow",
                    "Principal": {"Service": FIREHOSE_PRINCIPAL},
                    "Action": list(FIREHOSE_CLUSTER_POLICY_ACTIONS),
                    "Resource": self.cluster_arn,
                }],
            },
        )
        self._multi_vpc_connectivity(handler_log_retention_days, handler_architecture)

    def _multi_vpc_connectivity(self, log_days: int, architecture: str) -> None:
        """Multi-VPC private connectivity (IAM) once the cluster is ACTIVE, then GetBootstrapBrokers."""
        region = cdk.Stack.of(self).region
        on_event = PythonFunction(self, "ConnectivityOnEvent", name="msk_connectivity", handler="handler.on_event",
                                  architecture=architecture,
                                  timeout=cdk.Duration.minutes(1), memory_size=256,
                                  log_group=log_group(self, "ConnectivityHandlerLogs", log_days))
        is_complete = PythonFunction(self, "ConnectivityIsComplete", name="msk_connectivity", handler="handler.is_complete",
                                     architecture=architecture,
                                     timeout=cdk.Duration.minutes(1), memory_size=256,
                                     log_group=log_group(self, "ConnectivityIsCompleteLogs", log_days))
        # on_event starts the update (once, only when connectivity is off); MSK checks the
        # cluster's subnets and route tables with the caller's permissions, as AWS's
        # data-solutions-framework-on-aws grants for UpdateConnectivity.
        on_event.add_to_role_policy(iam.PolicyStatement(
            actions=["kafka:DescribeClusterV2", "kafka:UpdateConnectivity"], resources=[self.cluster_arn],
        ))
        on_event.add_to_role_policy(iam.PolicyStatement(
            actions=list(CONNECTIVITY_EC2_DESCRIBE_ACTIONS), resources=["*"],
            conditions={"StringEquals": {"ec2:Region": region}},
        ))
        # is_complete polls the operation, then the cluster, then reads the bootstrap string.
        is_complete.add_to_role_policy(iam.PolicyStatement(
            actions=["kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers"], resources=[self.cluster_arn],
        ))
        is_complete.add_to_role_policy(iam.PolicyStatement(actions=["kafka:DescribeClusterOperationV2"], resources=["*"]))
        provider = cr.Provider(
            self,
            "ConnectivityProvider",
            on_event_handler=on_event,
            is_complete_handler=is_complete,
            # Turning on multi-VPC connectivity is a rolling broker restart that usually
            # takes about 30 minutes. CloudFormation waits at most 3600 s for a custom
            # resource (ServiceTimeout's maximum), so the waiter gives up at 55 minutes
            # and the resource fails with "Operation timed out" before CloudFormation's
            # own timeout. If that happens, re-deploy: MSK finishes the update on its own,
            # and on_event is idempotent (connectivity already on -> no new update, and
            # is_complete completes at once with the bootstrap string).
            query_interval=cdk.Duration.minutes(1),
            total_timeout=PROVIDER_TOTAL_TIMEOUT,
            log_group=log_group(self, "ConnectivityProviderLogs", log_days),
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                destination=log_group(self, "ConnectivityWaiterLogs", log_days),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
        )
        self.connectivity = cdk.CustomResource(
            self,
            "MultiVpcConnectivity",
            service_token=provider.service_token,
            resource_type="Custom::MskMultiVpcConnectivity",
            properties={"ClusterArn": self.cluster_arn, "Sasl": "IAM"},
            # CloudFormation's maximum (and default) custom-resource timeout, stated so the
            # template shows the bound PROVIDER_TOTAL_TIMEOUT must stay under.
            service_timeout=CFN_CUSTOM_RESOURCE_MAX_TIMEOUT,
        )
        # The policy first: the delivery stream waits on this resource, so it waits on both.
        self.connectivity.node.add_dependency(self.cluster_policy)
        self.connectivity.node.add_dependency(self.topic)

        self.bootstrap_brokers = self.connectivity.get_att_string("BootstrapBrokerStringSaslIam")
        # The cluster ARN as returned once multi-VPC connectivity is ACTIVE: Firehose uses
        # this, so it is created after the connectivity update and the cluster policy.
        self.firehose_ready_cluster_arn = self.connectivity.get_att_string("ClusterArn")
        self._acknowledge_provider(provider, on_event, is_complete)

    # --- grants by intent -------------------------------------------------------------

    def group_arn(self, group: str) -> str:
        """The ARN of consumer group `group` of this cluster ('*': all of its groups)."""
        return self._group_arn_base + group

    def produce_statements(self) -> list[iam.PolicyStatement]:
        """Write to the topic with an idempotent producer: no CreateTopic, no wildcards."""
        return [
            iam.PolicyStatement(
                actions=["kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:WriteDataIdempotently"],
                resources=[self.cluster_arn],
            ),
            iam.PolicyStatement(actions=["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"], resources=[self.topic_arn]),
        ]

    def consume_statements(self, group: str) -> list[iam.PolicyStatement]:
        """What the Lambda MSK event source mapping lists (Lambda MSK permissions docs,
        AWSLambdaMSKExecutionRole, IAM access control), scoped to cluster, topic and group;
        only the EC2 Describe* calls, which have no resource-level permissions, are on '*'.
        The ENI actions come with the function's VPC execution policy."""
        return [
            iam.PolicyStatement(
                actions=["kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers",
                         "kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration"],
                resources=[self.cluster_arn],
            ),
            iam.PolicyStatement(actions=["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"], resources=[self.topic_arn]),
            iam.PolicyStatement(actions=["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"], resources=[self.group_arn(group)]),
            iam.PolicyStatement(actions=list(ESM_EC2_DESCRIBE_ACTIONS), resources=["*"]),
        ]

    def delivery_stream_read_statements(self) -> list[iam.PolicyStatement]:
        """What Firehose's MSK source needs on its role. Firehose names its own consumer
        group, so the group statement is the only one with a wildcard (within this cluster)."""
        return [
            iam.PolicyStatement(
                actions=["kafka:GetBootstrapBrokers", "kafka:DescribeCluster", "kafka:DescribeClusterV2", "kafka-cluster:Connect"],
                resources=[self.cluster_arn],
            ),
            iam.PolicyStatement(
                actions=["kafka-cluster:DescribeTopic", "kafka-cluster:DescribeTopicDynamicConfiguration", "kafka-cluster:ReadData"],
                resources=[self.topic_arn],
            ),
            iam.PolicyStatement(actions=["kafka-cluster:DescribeGroup"], resources=[self.group_arn("*")]),
        ]

    def grant_produce(self, grantee: Grantee) -> None:
        """Write the topic (an idempotent producer)."""
        _grant(grantee, self.produce_statements())

    def grant_consume(self, grantee: Grantee, *, group: str) -> IConstruct:
        """Read the topic as consumer group `group`, as a Lambda MSK event source mapping
        does (with the EC2 Describe* calls it makes on '*', acknowledged)."""
        policy = _policy_of(grantee, _grant(grantee, self.consume_statements(group)))
        acknowledge(policy, "AwsSolutions-IAM5",
                    "Only ec2:DescribeVpcs/DescribeSecurityGroups/DescribeSubnets, which the MSK event source mapping needs "
                    "(AWSLambdaMSKExecutionRole) and which do not support resource-level permissions; every Kafka action is scoped.",
                    resource="*")
        return policy

    def grant_delivery_stream_read(self, grantee: Grantee) -> IConstruct:
        """Read the topic as a Firehose delivery stream's MSK source (Firehose picks its
        own consumer group: DescribeGroup on this cluster's groups, acknowledged)."""
        policy = _policy_of(grantee, _grant(grantee, self.delivery_stream_read_statements()))
        acknowledge(policy, "AwsSolutions-IAM5",
                    "Firehose names its own consumer group; DescribeGroup is limited to groups of this one cluster.",
                    resource=self.group_arn("*"))
        return policy

    def _acknowledge_provider(self, provider: cr.Provider, on_event: PythonFunction, is_complete: PythonFunction) -> None:
        """The Provider framework's own resources (CDK code, not ours to reshape)."""
        acknowledge(provider, "AwsSolutions-IAM4",
                    "The Provider framework's functions only write their own CloudWatch logs with this policy.",
                    policy=iam.ManagedPolicy.from_aws_managed_policy_name(BASIC_EXECUTION_ROLE))
        invoked = [on_event, is_complete, *(provider.node.find_child(f"framework-{n}") for n in ("isComplete", "onTimeout"))]
        acknowledge(provider, "AwsSolutions-IAM5",
                    "The framework invokes the handler functions by ARN; ':*' covers their versions and aliases, nothing else.",
                    resource=[f"{f.function_arn}:*" for f in invoked])  # type: ignore[attr-defined]
        acknowledge(on_event.role.node.find_child("DefaultPolicy"), "AwsSolutions-IAM5",  # type: ignore[union-attr]
                    "Only ec2:DescribeSubnets/DescribeRouteTables (limited to this region), which UpdateConnectivity checks with the "
                    "caller's permissions and which do not support resource-level permissions.", resource="*")
        acknowledge(is_complete.role.node.find_child("DefaultPolicy"), "AwsSolutions-IAM5",  # type: ignore[union-attr]
                    "Only kafka:DescribeClusterOperationV2, which has no resource types in the Service Authorization Reference "
                    "(the operation ARN is known only at run time); the cluster actions are scoped to the cluster ARN.", resource="*")
        acknowledge(provider.node.find_child("waiter-state-machine").node.find_child("Role"), "AwsSolutions-IAM5",
                    "CloudWatch Logs vended-delivery actions (logs:CreateLogDelivery, PutResourcePolicy, ...) do not support "
                    "resource-level permissions.", resource="*")
        acknowledge(provider, "AwsSolutions-SF2", "The waiter state machine only polls is_complete once a minute during a deploy; X-Ray traces would add cost and nothing to diagnose.")
        acknowledge(provider, "AwsSolutions-L1", "The Provider framework's Node.js functions use the runtime CDK pins for them; they are not our code.")


def _grant(grantee: Grantee, statements: list[iam.PolicyStatement]) -> IConstruct | None:
    """Add `statements` to an explicit iam.Policy, or to the grantee principal's policy
    (a CDK role's DefaultPolicy). Returns that policy construct when there is one."""
    if isinstance(grantee, iam.Policy):
        grantee.add_statements(*statements)
        return grantee
    principal = grantee.grant_principal
    for st in statements:
        principal.add_to_principal_policy(st)
    return principal.node.try_find_child("DefaultPolicy") if isinstance(principal, iam.Role) else None


def _policy_of(grantee: Grantee, policy: IConstruct | None) -> IConstruct:
    """The policy a grant with a wildcard went to (its acknowledgement goes there)."""
    if policy is None:
        raise TypeError(f"{grantee!r}: this grant needs an iam.Policy or a grantee whose principal is a CDK iam.Role "
                        "(its DefaultPolicy gets the statements and the cdk-nag acknowledgement)")
    return policy
