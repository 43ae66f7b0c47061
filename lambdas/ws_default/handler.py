"""WebSocket $default: any client message gets a `hello` back (server name, window).

The page sends one message after connecting (API Gateway cannot post during $connect);
the reply tells it the server and the KPI window length. Bodies are not trusted or echoed.

Env (set by the dashboard stack): WINDOW_SECONDS.
Metrics (EMF): HellosSent, GoneConnections.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from acme_telemetry import protocol
from lambdas._env import require

logger = Logger()
metrics = Metrics()

SERVER = "aws-lambda"


@cache
def management_api(endpoint: str) -> Any:
    """The API Gateway management client for one endpoint, created once per container."""
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)


@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=APIGatewayWebSocketEvent)
def handler(event: APIGatewayWebSocketEvent, context: LambdaContext) -> dict[str, Any]:
    window = require("WINDOW_SECONDS", float)
    ctx = event.request_context
    api = management_api(f"https://{ctx.domain_name}/{ctx.stage}")
    try:
        api.post_to_connection(ConnectionId=ctx.connection_id, Data=protocol.encode(protocol.hello_message(SERVER, window)))
    except api.exceptions.GoneException:
        metrics.add_metric(name="GoneConnections", unit=MetricUnit.Count, value=1)
        return {"statusCode": 410}
    metrics.add_metric(name="HellosSent", unit=MetricUnit.Count, value=1)
    return {"statusCode": 200}
