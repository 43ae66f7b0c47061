"""AcmeDashboardStack: WebSocket API, connections table, KPI consumer, page hosting hook.

Fixes against the plan:
- A REQUEST authorizer on $connect checks ?token= against a generated secret in Secrets
  Manager (constant-time compare); the plan's routes had no authorization.
- The consumer broadcasts one PII-free KPI snapshot (plus a PII-free feed) per batching
  window, not whole events with ip_address/customer_id/device_id per 100 records.
- A GoneException (410) deletes the stale connection (the plan checked the wrong status
  field and called an undefined DeleteCommand).
- The event source mapping starts at LATEST, batches per window and has an on-failure
  destination; its role is scoped to the cluster, topic and consumer group.
- All functions are Python 3.12, bundled without Docker (the plan used nodejs18.x).
"""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigw1
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from data_stack.config import AppConfig
from data_stack.constructs.dashboard_site import DashboardSite
from data_stack.constructs.python_function import PythonFunction
from data_stack.nag import acknowledge
from data_stack.stacks._common import log_group
from data_stack.stacks.msk import MskStack

TOKEN_IDENTITY_SOURCE = "route.request.querystring.token"


class DashboardStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: AppConfig,
        vpc: ec2.IVpc,
        consumer_security_group: ec2.ISecurityGroup,
        msk: MskStack,
        site_dir: Path | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        prefix, lam, dash = config.prefix, config.lambdas, config.dashboard
        self.consumer_group_id = f"{prefix}-kpi-consumer"

        self.connections = dynamodb.Table(
            self,
            "ConnectionsTable",
            table_name=f"{prefix}-connections",
            partition_key=dynamodb.Attribute(name="connectionId", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="ttl",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

        self.token_secret = secretsmanager.Secret(
            self,
            "DashboardToken",
            secret_name=f"{prefix}/dashboard-token",
            description="Shared token the dashboard page passes as ?token= on the WebSocket $connect",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=40, exclude_punctuation=True),
        )
        acknowledge(self.token_secret, "AwsSolutions-SMG4", "The token is handed to dashboard viewers in the page URL; rotating it is a deliberate manual step (README) so open dashboards are not cut off mid-session.")

        def fn(cid: str, name: str, description: str, **props) -> PythonFunction:
            group = log_group(self, f"{cid}Logs", lam.log_retention_days, name=f"/aws/lambda/{prefix}-{name.replace('_', '-')}")
            props.setdefault("timeout", cdk.Duration.seconds(lam.ws_timeout_s))
            props.setdefault("memory_size", 256)
            return PythonFunction(
                self, cid, name=name, function_name=f"{prefix}-{name.replace('_', '-')}", description=description,
                log_group=group, **props,
            )

        table_env = {"CONNECTIONS_TABLE": self.connections.table_name}
        self.authorizer_fn = fn("AuthorizerFunction", "ws_authorizer", "$connect REQUEST authorizer: ?token= vs the secret",
                                environment={"TOKEN_SECRET_ARN": self.token_secret.secret_arn})
        self.token_secret.grant_read(self.authorizer_fn)
        self.connect_fn = fn("ConnectFunction", "ws_connect", "Stores the connection id (with a TTL)",
                             environment={**table_env, "CONNECTION_TTL_HOURS": str(dash.connection_ttl_hours)})
        self.disconnect_fn = fn("DisconnectFunction", "ws_disconnect", "Deletes the connection id", environment=table_env)
        self.default_fn = fn("DefaultFunction", "ws_default", "Answers client messages (hello)",
                             environment={"WINDOW_SECONDS": str(dash.batching_window_s)})
        self.connections.grant(self.connect_fn, "dynamodb:PutItem")
        self.connections.grant(self.disconnect_fn, "dynamodb:DeleteItem")

        self.api = apigw.WebSocketApi(
            self,
            "WebSocketApi",
            api_name=f"{prefix}-websocket",
            description="Live KPI feed for the ACME telemetry dashboard",
            connect_route_options=apigw.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("ConnectIntegration", self.connect_fn),
                authorizer=authorizers.WebSocketLambdaAuthorizer(
                    "TokenAuthorizer", self.authorizer_fn, identity_source=[TOKEN_IDENTITY_SOURCE]
                ),
            ),
            disconnect_route_options=apigw.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("DisconnectIntegration", self.disconnect_fn)
            ),
            default_route_options=apigw.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("DefaultIntegration", self.default_fn)
            ),
        )

        access_logs = log_group(self, "WebSocketAccessLogs", lam.log_retention_days)
        self._api_gateway_logging_role()
        self.stage = apigw.WebSocketStage(
            self,
            "WebSocketStage",
            web_socket_api=self.api,
            stage_name=dash.stage_name,
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=dash.throttle_rate_limit, burst_limit=dash.throttle_burst_limit),
            access_log_settings=_AccessLogs(access_logs),
        )
        self.stage.node.add_dependency(self.api_gateway_account)
        self.stage.grant_management_api_access(self.default_fn)

        # --- KPI consumer on the MSK topic ------------------------------------------------
        self.consumer_dlq = sqs.Queue(
            self, "ConsumerFailures", queue_name=f"{prefix}-consumer-failures",
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, retention_period=cdk.Duration.days(14),
        )
        acknowledge(self.consumer_dlq, "AwsSolutions-SQS3", "This queue is itself the on-failure destination of the consumer's event source mapping.")
        self.consumer = fn(
            "ConsumerFunction", "consumer", "KPIs per batching window from the MSK topic, broadcast to WebSocket clients",
            memory_size=lam.consumer_memory_mb,
            timeout=cdk.Duration.seconds(lam.consumer_timeout_s),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[consumer_security_group],
            environment={
                **table_env,
                "WEBSOCKET_ENDPOINT": self.stage.callback_url,
                "WINDOW_SECONDS": str(dash.batching_window_s),
            },
        )
        self.connections.grant(self.consumer, "dynamodb:Scan", "dynamodb:DeleteItem")
        self.stage.grant_management_api_access(self.consumer)
        msk.grant_consume(self.consumer, self.consumer_group_id)
        self.event_source_mapping = lambda_.EventSourceMapping(
            self,
            "ConsumerEventSource",
            target=self.consumer,
            event_source_arn=msk.cluster_arn,
            kafka_topic=config.topic.name,
            kafka_consumer_group_id=self.consumer_group_id,
            starting_position=lambda_.StartingPosition.LATEST,
            # One broadcast per window: the batch closes on the window, not on 100 records.
            batch_size=dash.batch_size,
            max_batching_window=cdk.Duration.seconds(dash.batching_window_s),
            on_failure=event_sources.SqsDlq(self.consumer_dlq),
        )
        # The ESM validates its role on create: make it wait for the consumer's policy.
        self.event_source_mapping.node.add_dependency(self.consumer.role)  # type: ignore[arg-type]

        # --- Dashboard page hosting (S3 + CloudFront OAC + config.json) ---------------------
        # >>> DashboardSite hook: the dashboard engineer's construct
        # data_stack/constructs/dashboard_site.py (class DashboardSite) is instantiated here.
        self.site = DashboardSite(
            self,
            "DashboardSite",
            site_dir=site_dir or Path("dashboard/dist"),
            websocket_url=self.stage.url,
            window_seconds=float(dash.batching_window_s),
        )
        # <<< DashboardSite hook

        self._acknowledge()

        cdk.CfnOutput(self, "WebSocketApiEndpoint", value=self.stage.url)
        cdk.CfnOutput(self, "ConnectionsTableName", value=self.connections.table_name)
        cdk.CfnOutput(self, "DashboardTokenSecretArn", value=self.token_secret.secret_arn)
        cdk.CfnOutput(self, "ConsumerFailureQueueUrl", value=self.consumer_dlq.queue_url)

    def _api_gateway_logging_role(self) -> None:
        """API Gateway needs an account-level CloudWatch role before a stage can log."""
        self.api_gateway_logs_role_policy = iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonAPIGatewayPushToCloudWatchLogs")
        self.api_gateway_logs_role = iam.Role(
            self, "ApiGatewayLogsRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[self.api_gateway_logs_role_policy],
        )
        self.api_gateway_account = apigw1.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=self.api_gateway_logs_role.role_arn)

    def _acknowledge(self) -> None:
        # The ARN Stage.grant_management_api_access grants (its own formatArn).
        connections = self.format_arn(service="execute-api", resource=self.api.api_id,
                                      resource_name=f"{self.stage.stage_name}/*/@connections/*")
        for fn in (self.default_fn, self.consumer):
            acknowledge(fn.role.node.find_child("DefaultPolicy"), "AwsSolutions-IAM5",  # type: ignore[union-attr]
                        "Posting to clients needs @connections/<id> for connection ids known only at run time; scoped to this API and stage.",
                        resource=connections)
        for route in ("$disconnect-Route", "$default-Route"):
            acknowledge(self.api.node.find_child(route), "AwsSolutions-APIG4",
                        "API Gateway WebSocket authorizers run on $connect only; this route is reachable only over a connection the token authorizer admitted.")
        acknowledge(self.api_gateway_logs_role, "AwsSolutions-IAM4",
                    "The account-level role API Gateway uses to write stage access logs; this managed policy is the documented one for it.",
                    policy=self.api_gateway_logs_role_policy)


@jsii.implements(apigw.IAccessLogSettings)
class _AccessLogs:
    """Stage access logs as JSON (no query string: it carries the dashboard token)."""

    def __init__(self, group: logs.ILogGroup) -> None:
        self._destination = apigw.LogGroupLogDestination(group)

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw1.AccessLogFormat:
        return apigw1.AccessLogFormat.custom(json.dumps({
            "requestId": "$context.requestId",
            "ip": "$context.identity.sourceIp",
            "requestTime": "$context.requestTime",
            "routeKey": "$context.routeKey",
            "eventType": "$context.eventType",
            "status": "$context.status",
            "connectionId": "$context.connectionId",
            "authorizerError": "$context.authorizer.error",
            "integrationError": "$context.integration.error",
        }))
