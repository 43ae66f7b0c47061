"""KpiWebSocketApi: the API Gateway WebSocket API the KPI feed is broadcast on.

- A REQUEST authorizer on $connect checks ?token= against a generated secret in Secrets
  Manager (constant-time compare); the plan's routes had no authorization.
- $connect stores the connection id with a TTL in a DynamoDB table, $disconnect deletes
  it, $default answers client messages (hello).
- One stage with throttling and JSON access logs (no query string: it carries the token).
  A stage can log only once the account's API Gateway CloudWatch role is set: ONE
  setting per account and region, shared by every REST and WebSocket API there. So the
  AWS::ApiGateway::Account is opt-in (`manage_api_gateway_account`); when this app owns
  it, its role is retained on delete, so deleting the stack never cuts off the other
  APIs' logs. Otherwise it is a prerequisite (README, "Deploy to AWS").
- The token secret has a generated name: a destroy schedules it for deletion (Secrets
  Manager's recovery window), and a fixed name would block the next deploy meanwhile.
- `grant_broadcast(grantee)`: what a broadcaster needs (list and prune connections, post
  to @connections), with the one wildcard acknowledged for this API and stage.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigw1
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from data_stack.constructs.common import log_group, prefixed_function
from data_stack.constructs.python_function import PythonFunction
from data_stack.nag import acknowledge

TOKEN_IDENTITY_SOURCE = "route.request.querystring.token"
API_GATEWAY_LOGS_POLICY = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


class KpiWebSocketApi(Construct):
    """WebSocket API, routes and authorizer, stage, access logs, connections table and
    the dashboard token secret. `url` is the wss:// stage URL, `callback_url` the
    https:// management endpoint a broadcaster posts to."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name_prefix: str,
        stage_name: str,
        connection_ttl_hours: int,
        window_seconds: int,
        throttle_rate_limit: int,
        throttle_burst_limit: int,
        function_timeout: cdk.Duration,
        log_retention_days: int,
        manage_api_gateway_account: bool = False,
        lambda_architecture: str,
    ) -> None:
        super().__init__(scope, id)
        self._name_prefix, self._log_retention_days = name_prefix, log_retention_days
        self._architecture = lambda_architecture

        self.connections = dynamodb.Table(
            self,
            "ConnectionsTable",
            table_name=f"{name_prefix}-connections",
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
            description="Shared token the dashboard page passes as ?token= on the WebSocket $connect",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=40, exclude_punctuation=True),
        )
        acknowledge(
            self.token_secret,
            "AwsSolutions-SMG4",
            "The token is handed to dashboard viewers in the page URL; rotating it is a deliberate manual step (README) so open dashboards are not cut off mid-session.",
        )

        def fn(cid: str, name: str, description: str, **props: Any) -> PythonFunction:
            return self.function(cid, name, description, timeout=function_timeout, **props)

        table_env = {"CONNECTIONS_TABLE": self.connections.table_name}
        self.authorizer_fn = fn(
            "AuthorizerFunction",
            "ws_authorizer",
            "$connect REQUEST authorizer: ?token= vs the secret",
            environment={"TOKEN_SECRET_ARN": self.token_secret.secret_arn},
        )
        self.token_secret.grant_read(self.authorizer_fn)
        self.connect_fn = fn(
            "ConnectFunction",
            "ws_connect",
            "Stores the connection id (with a TTL)",
            environment={**table_env, "CONNECTION_TTL_HOURS": str(connection_ttl_hours)},
        )
        self.disconnect_fn = fn("DisconnectFunction", "ws_disconnect", "Deletes the connection id", environment=table_env)
        self.default_fn = fn(
            "DefaultFunction", "ws_default", "Answers client messages (hello)", environment={"WINDOW_SECONDS": str(window_seconds)}
        )
        self.connections.grant(self.connect_fn, "dynamodb:PutItem")
        self.connections.grant(self.disconnect_fn, "dynamodb:DeleteItem")

        self.api = apigw.WebSocketApi(
            self,
            "WebSocketApi",
            api_name=f"{name_prefix}-websocket",
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
        for route in ("$disconnect-Route", "$default-Route"):
            acknowledge(
                self.api.node.find_child(route),
                "AwsSolutions-APIG4",
                "API Gateway WebSocket authorizers run on $connect only; this route is reachable only over a connection the token authorizer admitted.",
            )

        access_logs = log_group(self, "WebSocketAccessLogs", log_retention_days)
        self.api_gateway_account: apigw1.CfnAccount | None = None
        if manage_api_gateway_account:
            self._api_gateway_logging_role()
        self.stage = apigw.WebSocketStage(
            self,
            "WebSocketStage",
            web_socket_api=self.api,
            stage_name=stage_name,
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=throttle_rate_limit, burst_limit=throttle_burst_limit),
            access_log_settings=_AccessLogs(access_logs),
        )
        if self.api_gateway_account is not None:
            self.stage.node.add_dependency(self.api_gateway_account)
        self.url = self.stage.url
        self.callback_url = self.stage.callback_url
        self._grant_post_to_connections(self.default_fn)

    def function(self, cid: str, name: str, description: str, **props: Any) -> PythonFunction:
        """One of the API's route functions, named and logged like every function here."""
        return prefixed_function(
            self,
            cid,
            name,
            description,
            name_prefix=self._name_prefix,
            log_retention_days=self._log_retention_days,
            architecture=self._architecture,
            **props,
        )

    def grant_broadcast(self, grantee: lambda_.Function) -> None:
        """List and prune connections (Scan, DeleteItem) and post to them."""
        self.connections.grant(grantee, "dynamodb:Scan", "dynamodb:DeleteItem")
        self._grant_post_to_connections(grantee)

    def _grant_post_to_connections(self, grantee: lambda_.Function) -> None:
        self.stage.grant_management_api_access(grantee)
        # The ARN Stage.grant_management_api_access grants (its own formatArn).
        connections = cdk.Stack.of(self).format_arn(
            service="execute-api", resource=self.api.api_id, resource_name=f"{self.stage.stage_name}/*/@connections/*"
        )
        acknowledge(
            grantee.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5",  # type: ignore[union-attr]
            "Posting to clients needs @connections/<id> for connection ids known only at run time; scoped to this API and stage.",
            resource=connections,
        )

    def _api_gateway_logging_role(self) -> None:
        """API Gateway needs an account-level CloudWatch role before a stage can log."""
        managed = iam.ManagedPolicy.from_aws_managed_policy_name(API_GATEWAY_LOGS_POLICY)
        self.api_gateway_logs_role = iam.Role(
            self,
            "ApiGatewayLogsRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[managed],
        )
        # Every API in the account and region logs through this role once it is set:
        # deleting the stack must not delete it.
        self.api_gateway_logs_role.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        acknowledge(
            self.api_gateway_logs_role,
            "AwsSolutions-IAM4",
            "The account-level role API Gateway uses to write stage access logs; this managed policy is the documented one for it.",
            policy=managed,
        )
        self.api_gateway_account = apigw1.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=self.api_gateway_logs_role.role_arn)
        self.api_gateway_account.apply_removal_policy(cdk.RemovalPolicy.RETAIN)


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
        return apigw1.AccessLogFormat.custom(
            json.dumps(
                {
                    "requestId": "$context.requestId",
                    "ip": "$context.identity.sourceIp",
                    "requestTime": "$context.requestTime",
                    "routeKey": "$context.routeKey",
                    "eventType": "$context.eventType",
                    "status": "$context.status",
                    "connectionId": "$context.connectionId",
                    "authorizerError": "$context.authorizer.error",
                    "integrationError": "$context.integration.error",
                }
            )
        )
