"""MskCluster: an MSK cluster with IAM auth, its one topic, the Firehose cluster policy and
the bootstrap string, with grants named by intent; MskClusterRef: the same cluster as
another stack sees it.

- Kafka version, brokers and storage are props (3.5.1 reached end of support 2025-10-23).
- The topic is declared (AWS::MSK::Topic): MSK defaults to auto.create.topics.enable=false.
- An AWS::MSK::ClusterPolicy gives firehose.amazonaws.com exactly what the Firehose
  developer guide lists for a private MSK source ("Grant Firehose access to your private
  Amazon MSK cluster"): kafka:CreateVpcConnection on this cluster, only for this account
  (aws:SourceAccount).
- The SASL/IAM bootstrap string comes from GetBootstrapBrokers (the cluster has no
  BootstrapBrokers attribute), read by an AwsCustomResource keyed on the cluster ARN.
- No strong cross-stack export of a value that changes when the cluster is replaced: the
  cluster ARN and the bootstrap string are published as SSM parameters
  (`/<prefix>-<stage>/msk/...`), and `reference(scope)` reads them in the consuming stack
  as deploy-time SSM parameter values. A replaced cluster updates the parameters; the CDK
  CLI always redeploys a stack with SSM parameters ("some parameters come from SSM so we
  have to assume they may have changed"), so `cdk deploy --all` carries the new values
  to every consumer instead of failing with "export ... in use".
- Multi-VPC connectivity (Firehose's private source) is its own stack
  (data_stack.constructs.msk_connectivity): its wait can outlast CloudFormation's
  one-hour custom-resource limit, and its failure never rolls back this cluster.
- Grants by intent, scoped to the cluster, topic and group ARNs: `grant_produce`,
  `grant_consume(group=...)`, `grant_delivery_stream_read`. `Resource: '*'` appears only
  for actions with no resource-level permissions (EC2 Describe*), each acknowledged in
  cdk-nag with that reason.
"""

from __future__ import annotations

import base64
import json

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_msk as msk
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from acme_telemetry.settings import TopicSettings
from data_stack.constructs.common import log_group, private_bucket
from data_stack.nag import acknowledge

FIREHOSE_PRINCIPAL = "firehose.amazonaws.com"
# The Firehose developer guide's cluster policy for a private MSK source: only this.
FIREHOSE_CLUSTER_POLICY_ACTIONS = ("kafka:CreateVpcConnection",)
# What the Lambda MSK event source mapping needs to reach the cluster's VPC
# (Lambda "Configuring Lambda permissions for Amazon MSK event source mappings";
# AWSLambdaMSKExecutionRole). EC2 Describe* actions support no resource-level permissions.
ESM_EC2_DESCRIBE_ACTIONS = ("ec2:DescribeVpcs", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets")
BASIC_EXECUTION_ROLE = "service-role/AWSLambdaBasicExecutionRole"

# A grantee: anything with a principal (a function, a role), or an explicit iam.Policy
# when a resource must depend on exactly the policy that holds the grant (Firehose).
Grantee = iam.IGrantable | iam.Policy


class ClusterAccess:
    """What a stack needs to use the cluster: its ARN, topic and group ARNs, and grants by
    intent. `cluster_arn` is a token of the stack that holds this object."""

    cluster_name: str
    topic_name: str
    cluster_arn: str

    def _arns(self, scope: Construct) -> None:
        stack = cdk.Stack.of(scope)
        cluster_uuid = cdk.Fn.select(2, cdk.Fn.split("/", self.cluster_arn))
        arn_base = f"arn:{stack.partition}:kafka:{stack.region}:{stack.account}"
        self.topic_arn = f"{arn_base}:topic/{self.cluster_name}/{cluster_uuid}/{self.topic_name}"
        self._group_arn_base = f"{arn_base}:group/{self.cluster_name}/{cluster_uuid}/"

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
                actions=[
                    "kafka:DescribeClusterV2",
                    "kafka:GetBootstrapBrokers",
                    "kafka-cluster:Connect",
                    "kafka-cluster:DescribeClusterDynamicConfiguration",
                ],
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
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            "Only ec2:DescribeVpcs/DescribeSecurityGroups/DescribeSubnets, which the MSK event source mapping needs "
            "(AWSLambdaMSKExecutionRole) and which do not support resource-level permissions; every Kafka action is scoped.",
            resource="*",
        )
        return policy

    def grant_delivery_stream_read(self, grantee: Grantee) -> IConstruct:
        """Read the topic as a Firehose delivery stream's MSK source (Firehose picks its
        own consumer group: DescribeGroup on this cluster's groups, acknowledged)."""
        policy = _policy_of(grantee, _grant(grantee, self.delivery_stream_read_statements()))
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            "Firehose names its own consumer group; DescribeGroup is limited to groups of this one cluster.",
            resource=self.group_arn("*"),
        )
        return policy


class MskCluster(Construct, ClusterAccess):
    """The cluster, its topic, the Firehose cluster policy, the bootstrap string and the
    SSM parameters other stacks read.

    Attributes: `cluster` (CfnCluster), `cluster_arn`, `topic` (CfnTopic), `topic_name`,
    `topic_arn`, `bootstrap_brokers` (SASL/IAM), `cluster_arn_parameter`,
    `bootstrap_parameter`, `logs_bucket`; `reference(scope)` for another stack."""

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
        logs_bucket_name: str | None,
        topic: TopicSettings,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        parameter_prefix: str,
        retain_logs: bool,
        handler_log_retention_days: int,
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        self.cluster_name = cluster_name
        self.topic_name = topic.name
        self.parameter_prefix = parameter_prefix
        self._refs: dict[str, MskClusterRef] = {}

        self.logs_bucket = private_bucket(
            self,
            "MskLogsBucket",
            name=logs_bucket_name,
            retain=retain_logs,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireBrokerLogs", expiration=cdk.Duration.days(max(broker_log_retention_days, 1)))],
        )
        acknowledge(
            self.logs_bucket,
            "AwsSolutions-S1",
            "This bucket only receives MSK broker logs from the log delivery service; access-logging a log bucket would only log the logger.",
        )
        # MSK delivers S3 broker logs through CloudWatch Logs vended delivery; declaring the
        # policy here keeps CloudFormation from overwriting the one MSK would add itself.
        delivery = iam.ServicePrincipal("delivery.logs.amazonaws.com")
        self.logs_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[delivery],
                actions=["s3:PutObject"],
                resources=[self.logs_bucket.arn_for_objects(f"msk-logs/AWSLogs/{stack.account}/*")],
                conditions={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": stack.account}},
            )
        )
        self.logs_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[delivery],
                actions=["s3:GetBucketAcl"],
                resources=[self.logs_bucket.bucket_arn],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )

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
        self._arns(self)

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
                "Statement": [
                    {
                        "Sid": "FirehoseMskSource",
                        "Effect": "Allow",
                        "Principal": {"Service": FIREHOSE_PRINCIPAL},
                        "Action": list(FIREHOSE_CLUSTER_POLICY_ACTIONS),
                        "Resource": self.cluster_arn,
                        "Condition": {"StringEquals": {"aws:SourceAccount": stack.account}},
                    }
                ],
            },
        )
        self._bootstrap_brokers(handler_log_retention_days)
        # Literal names: other stacks read them by name (value_for_string_parameter).
        self.cluster_arn_parameter_name = f"{parameter_prefix}/cluster-arn"
        self.bootstrap_parameter_name = f"{parameter_prefix}/bootstrap-brokers-sasl-iam"
        self.cluster_arn_parameter = ssm.StringParameter(
            self,
            "ClusterArnParameter",
            parameter_name=self.cluster_arn_parameter_name,
            string_value=self.cluster_arn,
            description="The MSK cluster ARN (read by the other stacks at deploy time)",
        )
        self.bootstrap_parameter = ssm.StringParameter(
            self,
            "BootstrapBrokersParameter",
            parameter_name=self.bootstrap_parameter_name,
            string_value=self.bootstrap_brokers,
            description="The MSK SASL/IAM bootstrap string (read by the other stacks at deploy time)",
        )

    def _bootstrap_brokers(self, log_days: int) -> None:
        """GetBootstrapBrokers once the cluster is ACTIVE (CloudFormation's create of
        AWS::MSK::Cluster ends there), again whenever the cluster ARN changes."""
        call = cr.AwsSdkCall(
            service="Kafka",
            action="getBootstrapBrokers",
            parameters={"ClusterArn": self.cluster_arn},
            physical_resource_id=cr.PhysicalResourceId.of(self.cluster_arn),
            output_paths=["BootstrapBrokerStringSaslIam"],
        )
        self.bootstrap_lookup = cr.AwsCustomResource(
            self,
            "BootstrapBrokers",
            on_create=call,
            on_update=call,
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[self.cluster_arn]),
            install_latest_aws_sdk=False,
            log_group=log_group(self, "BootstrapBrokersLogs", log_days),
        )
        self.bootstrap_brokers = self.bootstrap_lookup.get_response_field("BootstrapBrokerStringSaslIam")
        # The handler is a singleton per stack, named after CDK's fixed UUID.
        singleton = cdk.Stack.of(self).node.find_child("AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", ""))
        acknowledge(
            singleton,
            "AwsSolutions-IAM4",
            "CDK's AwsCustomResource handler writes only its own CloudWatch logs with this managed policy.",
            policy=iam.ManagedPolicy.from_aws_managed_policy_name(BASIC_EXECUTION_ROLE),
        )
        acknowledge(
            singleton, "AwsSolutions-L1", "CDK's AwsCustomResource handler: its Node.js runtime is pinned by aws-cdk-lib, not by us."
        )

    def reference(self, scope: Construct) -> MskClusterRef:
        """This cluster as `scope`'s stack sees it: ARN and bootstrap string read from the
        SSM parameters at deploy time (no Fn::ImportValue), grants on that stack's principals."""
        stack = cdk.Stack.of(scope)
        if stack is cdk.Stack.of(self):
            raise ValueError("reference() is for other stacks; in this stack use the MskCluster itself")
        key = stack.node.path
        if key not in self._refs:
            self._refs[key] = MskClusterRef(
                stack,
                cluster_name=self.cluster_name,
                topic_name=self.topic_name,
                cluster_arn_parameter=self.cluster_arn_parameter_name,
                bootstrap_parameter=self.bootstrap_parameter_name,
            )
        return self._refs[key]


class MskClusterRef(ClusterAccess):
    """The cluster in a consuming stack: `cluster_arn` and `bootstrap_brokers` are that
    stack's SSM parameter values (MskCluster.reference), each declared only when used
    (an unused template parameter is a cfn-lint warning)."""

    def __init__(
        self, scope: Construct, *, cluster_name: str, topic_name: str, cluster_arn_parameter: str, bootstrap_parameter: str
    ) -> None:
        self._stack = cdk.Stack.of(scope)
        self.cluster_name, self.topic_name = cluster_name, topic_name
        self._bootstrap_parameter = bootstrap_parameter
        self.cluster_arn = ssm.StringParameter.value_for_string_parameter(self._stack, cluster_arn_parameter)
        self._arns(scope)

    @property
    def bootstrap_brokers(self) -> str:
        return ssm.StringParameter.value_for_string_parameter(self._stack, self._bootstrap_parameter)


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
        raise TypeError(
            f"{grantee!r}: this grant needs an iam.Policy or a grantee whose principal is a CDK iam.Role "
            "(its DefaultPolicy gets the statements and the cdk-nag acknowledgement)"
        )
    return policy
