"""AcmeNetworkStack: the VPC and every security group, with all rules between them.

All ingress rules live here, next to the groups they connect. The plan added ingress to
the MSK group from the Lambda stacks (`mskSecurityGroup.addIngressRule(lambdaSg, ...)`),
which puts a resource in the Network stack that references the Lambda stack while the
Lambda stack references the Network stack: a dependency cycle at synth. Here the Lambda
stacks only receive security groups; they never modify one from another stack.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from data_stack.config import NetworkConfig
from data_stack.constructs.common import log_group
from data_stack.nag import acknowledge

# MSK broker ports for IAM auth: 9098 inside the VPC; 14001-14100 are the multi-VPC
# (PrivateLink) ports Firehose uses once multi-VPC connectivity is on.
MSK_IAM_PORT = 9098
MSK_MULTI_VPC_IAM_PORTS = (14001, 14100)


class NetworkStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        network: NetworkConfig,
        alarm_topic_name: str,
        alarm_email: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)

        # Every alarm of the app notifies this topic (the other stacks build its ARN from
        # the name: no export). An email subscription when configured (-c alarmEmail=).
        self.alarm_topic = sns.Topic(
            self, "AlarmTopic", topic_name=alarm_topic_name, display_name="ACME telemetry alarms", enforce_ssl=True
        )
        acknowledge(
            self.alarm_topic,
            "AwsSolutions-SNS2",
            "CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed SNS key; alarm messages carry "
            "only alarm names and states, no data.",
        )
        if alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(alarm_email))

        self.vpc = ec2.Vpc(
            self,
            "AcmeVpc",
            vpc_name=f"{prefix}-vpc",
            ip_addresses=ec2.IpAddresses.cidr(network.cidr),
            max_azs=network.max_azs,
            nat_gateways=network.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=24),
            ],
        )
        flow_logs = log_group(self, "VpcFlowLogs", network.flow_log_retention_days)
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))

        def group(cid: str, name: str, description: str) -> ec2.SecurityGroup:
            return ec2.SecurityGroup(
                self, cid, vpc=self.vpc, security_group_name=f"{prefix}-{name}", description=description, allow_all_outbound=True
            )

        self.msk_security_group = group("MskSecurityGroup", "msk-sg", "MSK brokers; also used by the Lambda MSK event poller")
        self.producer_security_group = group("ProducerSecurityGroup", "producer-sg", "Producer Lambda (writes to MSK)")
        self.consumer_security_group = group(
            "ConsumerSecurityGroup", "consumer-sg", "KPI consumer Lambda (reads MSK via its event source mapping)"
        )

        iam_port = ec2.Port.tcp(MSK_IAM_PORT)
        self.msk_security_group.add_ingress_rule(self.producer_security_group, iam_port, "Producer Lambda: SASL/IAM")
        self.msk_security_group.add_ingress_rule(self.consumer_security_group, iam_port, "Consumer Lambda: SASL/IAM")
        # Lambda's MSK event poller runs with the cluster's own subnets and security group.
        self.msk_security_group.add_ingress_rule(self.msk_security_group, iam_port, "Lambda MSK event poller (cluster SG)")
        # Firehose reaches the brokers through a managed multi-VPC connection in this VPC.
        self.msk_security_group.add_ingress_rule(
            ec2.Peer.ipv4(network.cidr),
            ec2.Port.tcp_range(*MSK_MULTI_VPC_IAM_PORTS),
            "Multi-VPC private connectivity (Firehose MSK source), SASL/IAM",
        )

        # The consumer's event source mapping sends failed batches to an SQS queue. Lambda's
        # MSK docs ("Capturing discarded batches for an Amazon MSK event source"): "You must
        # deploy a VPC endpoint for your on-failure destination service inside your Amazon
        # MSK cluster VPC." The STS and Lambda endpoints those docs list are for clusters
        # without a route to the internet; this VPC has a NAT gateway, so SQS is the only
        # one required.
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "VpcEndpointSecurityGroup",
            vpc=self.vpc,
            security_group_name=f"{prefix}-endpoints-sg",
            description="Interface VPC endpoints: HTTPS from inside the VPC",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            ec2.Peer.ipv4(network.cidr),
            ec2.Port.tcp(443),
            "HTTPS from the VPC (the Lambda MSK poller delivering to the SQS on-failure destination)",
        )
        self.sqs_endpoint = self.vpc.add_interface_endpoint(
            "SqsEndpoint",
            service=ec2.InterfaceVpcEndpointAwsService.SQS,
            private_dns_enabled=True,
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[self.endpoint_security_group],
            open=False,
        )

        cdk.CfnOutput(self, "VpcId", value=self.vpc.vpc_id)
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)
        cdk.CfnOutput(self, "MskSecurityGroupId", value=self.msk_security_group.security_group_id)
