"""REQUEST authorizer for the WebSocket $connect route.

Identity source: route.request.querystring.token. The token is compared in constant time
with the secret string in Secrets Manager (TOKEN_SECRET_ARN), cached for a few minutes.
Returns an IAM policy allowing or denying execute-api:Invoke on the route (methodArn),
built with Powertools' WebSocket authorizer response.

Metrics (EMF): ConnectAllowed, ConnectDenied.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponseWebSocket,
    parse_api_gateway_arn,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas._env import require

logger = Logger()
metrics = Metrics()
secrets = boto3.client("secretsmanager")  # module scope: reused across warm invocations

PRINCIPAL = "dashboard"
CACHE_SECONDS = 300
_cache: dict[str, Any] = {"token": None, "at": 0.0}


def expected_token() -> str:
    now = time.monotonic()
    if _cache["token"] is None or now - _cache["at"] > CACHE_SECONDS:
        secret = secrets.get_secret_value(SecretId=require("TOKEN_SECRET_ARN"))
        _cache["token"], _cache["at"] = secret["SecretString"], now
    return str(_cache["token"])


def policy(allow: bool, method_arn: str) -> dict[str, Any]:
    """Allow or Deny execute-api:Invoke on exactly the route being connected to."""
    route = parse_api_gateway_arn(method_arn, is_websocket_authorizer=True)
    response = APIGatewayAuthorizerResponseWebSocket(
        principal_id=PRINCIPAL,
        region=route.region,
        aws_account_id=route.aws_account_id,
        api_id=route.api_id,
        stage=route.stage,
        partition=route.partition,
    )
    (response.allow_route if allow else response.deny_route)(resource=route.resource)
    return response.asdict()


@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def handler(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    supplied = (event.get("queryStringParameters") or {}).get("token") or ""
    ok = bool(supplied) and hmac.compare_digest(supplied.encode(), expected_token().encode())
    metrics.add_metric(name="ConnectAllowed" if ok else "ConnectDenied", unit=MetricUnit.Count, value=1)
    if not ok:
        logger.info("connect denied: missing or wrong token")
    return policy(ok, event.method_arn)
