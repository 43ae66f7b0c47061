"""MskMultiVpcConnectivity: turn on MSK multi-VPC private connectivity (IAM) and make the
deploy wait for it as long as it really takes, up to CloudFormation's 12-hour maximum.

Firehose's private MSK source needs the feature, CloudFormation cannot turn it on at
cluster creation, and real clusters report more than an hour for the rolling restart
(cloudformation-coverage-roadmap #1775). A custom resource waits at most one hour, so:

1. `MultiVpcConnectivity` (custom resource, CDK Provider framework with an on_event
   handler only) returns within seconds: it adopts a running UPDATE_CONNECTIVITY
   operation or starts one (lambdas/msk_connectivity `on_event`), and starts the poller;
   when the connectivity is already on, it signals at once.
2. The poller, a Step Functions state machine (standard: runs up to a year), asks
   DescribeClusterOperationV2 once a minute (`poll`) and, when the operation has ended,
   signals the wait condition handle: SUCCESS, or FAILURE with MSK's ErrorInfo.
3. `ConnectivityReady` (AWS::CloudFormation::WaitCondition, Timeout up to 43200 s) holds
   the stack until that signal. The delivery stream's stack depends on this stack.

The signal is an HTTP PUT to the handle's presigned S3 URL, so the functions that signal
run outside the VPC (Lambda's own network reaches S3's public endpoint); no VPC endpoint
or NAT route is involved.

This construct is the whole of its own stack (AcmeMskConnectivityStack): when the wait
fails (FAILURE signal or timeout) only this stack rolls back. The cluster, in
AcmeMskStack, is never deleted by it, and the custom resource's Delete touches nothing.
A re-deploy adopts the operation MSK may still be running.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from aws_cdk import custom_resources as cr
from constructs import Construct

from data_stack.constructs.common import log_group
from data_stack.constructs.python_function import PythonFunction
from data_stack.nag import acknowledge

# CloudFormation: a WaitCondition's Timeout is at most 43200 s (12 hours).
WAIT_CONDITION_MAX_TIMEOUT_S = 43_200
POLL_INTERVAL = cdk.Duration.minutes(1)
CONNECTIVITY_EC2_DESCRIBE_ACTIONS = ("ec2:DescribeSubnets", "ec2:DescribeRouteTables")
BASIC_EXECUTION_ROLE = "service-role/AWSLambdaBasicExecutionRole"


class MskMultiVpcConnectivity(Construct):
    """Custom resource + poller state machine + wait condition. `ready` is the
    WaitCondition: anything that needs the connectivity depends on it (or on its stack)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster_arn: str,
        timeout_hours: int,
        state_machine_name: str,
        log_retention_days: int,
        architecture: str,
    ) -> None:
        super().__init__(scope, id)
        if not 1 <= timeout_hours * 3600 <= WAIT_CONDITION_MAX_TIMEOUT_S:
            raise ValueError(f"timeout_hours={timeout_hours}: a WaitCondition waits 1 s..12 h")
        region = cdk.Stack.of(self).region

        def fn(cid: str, handler: str, logs_id: str) -> PythonFunction:
            # No VPC: these reach the MSK and Step Functions APIs and the handle's S3 URL
            # over Lambda's own network.
            return PythonFunction(
                self,
                cid,
                name="msk_connectivity",
                handler=handler,
                architecture=architecture,
                timeout=cdk.Duration.minutes(1),
                memory_size=256,
                log_group=log_group(self, logs_id, log_retention_days),
            )

        on_event = fn("ConnectivityOnEvent", "handler.on_event", "ConnectivityHandlerLogs")
        poller = fn("ConnectivityPoller", "handler.poll", "ConnectivityPollerLogs")
        self.on_event, self.poller = on_event, poller

        # on_event: describe, start or adopt the update. MSK checks the cluster's subnets
        # and route tables with the caller's permissions (as AWS's data-solutions-framework
        # grants for UpdateConnectivity).
        on_event.add_to_role_policy(
            iam.PolicyStatement(actions=["kafka:DescribeClusterV2", "kafka:UpdateConnectivity"], resources=[cluster_arn])
        )
        on_event.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(CONNECTIVITY_EC2_DESCRIBE_ACTIONS), resources=["*"], conditions={"StringEquals": {"ec2:Region": region}}
            )
        )
        for f in (on_event, poller):
            f.add_to_role_policy(iam.PolicyStatement(actions=["kafka:DescribeClusterOperationV2"], resources=["*"]))
        poller.add_to_role_policy(iam.PolicyStatement(actions=["kafka:DescribeClusterV2"], resources=[cluster_arn]))

        # --- the poller: wait a minute, poll, until the operation has ended ---------------
        wait = sfn.Wait(self, "WaitAMinute", time=sfn.WaitTime.duration(POLL_INTERVAL))
        poll = tasks.LambdaInvoke(
            self,
            "PollOperation",
            lambda_function=poller,
            payload=sfn.TaskInput.from_object(
                {
                    "ClusterArn": sfn.JsonPath.string_at("$.ClusterArn"),
                    "OperationArn": sfn.JsonPath.string_at("$.OperationArn"),
                    "WaitHandleUrl": sfn.JsonPath.string_at("$.WaitHandleUrl"),
                }
            ),
            result_selector={"Done.$": "$.Payload.Done", "Status.$": "$.Payload.Status"},
            result_path="$.Poll",
            retry_on_service_exceptions=True,
        )
        # A poll that errors (throttling, a transient API error) is retried; the next
        # minute's poll runs regardless, so only a lasting error leaves the wait to time out.
        poll.add_retry(errors=["States.ALL"], interval=cdk.Duration.seconds(30), max_attempts=6, backoff_rate=2)
        ended = (
            sfn.Choice(self, "OperationEnded")
            .when(sfn.Condition.boolean_equals("$.Poll.Done", True), sfn.Succeed(self, "Signalled"))
            .otherwise(wait)
        )
        self.state_machine = sfn.StateMachine(
            self,
            "ConnectivityPollerStateMachine",
            state_machine_name=state_machine_name,
            definition_body=sfn.DefinitionBody.from_chainable(wait.next(poll).next(ended)),
            timeout=cdk.Duration.hours(timeout_hours + 1),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group(self, "ConnectivityPollerStateMachineLogs", log_retention_days),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
        )
        self.state_machine.grant_start_execution(on_event)

        # --- the custom resource and the wait condition ------------------------------------
        provider = cr.Provider(
            self,
            "ConnectivityProvider",
            on_event_handler=on_event,
            log_group=log_group(self, "ConnectivityProviderLogs", log_retention_days),
        )
        self.handle = cdk.CfnWaitConditionHandle(self, "ConnectivityWaitHandle")
        self.connectivity = cdk.CustomResource(
            self,
            "MultiVpcConnectivity",
            service_token=provider.service_token,
            resource_type="Custom::MskMultiVpcConnectivity",
            properties={
                "ClusterArn": cluster_arn,
                "Sasl": "IAM",
                "WaitHandleUrl": self.handle.ref,
                "PollerStateMachineArn": self.state_machine.state_machine_arn,
            },
            # on_event returns within seconds; the long wait is the WaitCondition's.
            service_timeout=cdk.Duration.minutes(5),
        )
        self.ready = cdk.CfnWaitCondition(self, "ConnectivityReady", handle=self.handle.ref, count=1, timeout=str(timeout_hours * 3600))
        self.ready.node.add_dependency(self.connectivity)
        self._acknowledge(provider, on_event, poller)

    def _acknowledge(self, provider: cr.Provider, on_event: PythonFunction, poller: PythonFunction) -> None:
        acknowledge(
            provider,
            "AwsSolutions-IAM4",
            "The Provider framework's function only writes its own CloudWatch logs with this policy.",
            policy=iam.ManagedPolicy.from_aws_managed_policy_name(BASIC_EXECUTION_ROLE),
        )
        acknowledge(
            provider,
            "AwsSolutions-IAM5",
            "The framework invokes the on_event function by ARN; ':*' covers its versions and aliases, nothing else.",
            resource=f"{on_event.function_arn}:*",
        )
        acknowledge(
            provider, "AwsSolutions-L1", "The Provider framework's Node.js function uses the runtime CDK pins for it; it is not our code."
        )
        acknowledge(
            on_event.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5",  # type: ignore[union-attr]
            "Only ec2:DescribeSubnets/DescribeRouteTables (limited to this region), which UpdateConnectivity checks with the "
            "caller's permissions, and kafka:DescribeClusterOperationV2: neither supports resource-level permissions.",
            resource="*",
        )
        acknowledge(
            poller.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5",  # type: ignore[union-attr]
            "Only kafka:DescribeClusterOperationV2, which has no resource types in the Service Authorization Reference "
            "(the operation ARN is known only at run time); DescribeClusterV2 is scoped to the cluster ARN.",
            resource="*",
        )
        role_policy = self.state_machine.role.node.find_child("DefaultPolicy")
        acknowledge(
            role_policy,
            "AwsSolutions-IAM5",
            "The state machine invokes the poller by ARN (':*': its versions and aliases); X-Ray and CloudWatch Logs "
            "vended-delivery actions do not support resource-level permissions.",
            resource=["*", f"{poller.function_arn}:*"],
        )
