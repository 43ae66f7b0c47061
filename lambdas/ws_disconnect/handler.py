"""WebSocket $disconnect: forget the connection.

Env (set by the dashboard stack): CONNECTIONS_TABLE.
Metrics (EMF): ConnectionsClosed.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas._env import require

logger = Logger()
metrics = Metrics()
dynamodb = boto3.resource("dynamodb")  # module scope: reused across warm invocations


@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=APIGatewayWebSocketEvent)
def handler(event: APIGatewayWebSocketEvent, context: LambdaContext) -> dict[str, Any]:
    table = dynamodb.Table(require("CONNECTIONS_TABLE"))
    table.delete_item(Key={"connectionId": event.request_context.connection_id})
    metrics.add_metric(name="ConnectionsClosed", unit=MetricUnit.Count, value=1)
    return {"statusCode": 200}
