"""WebSocket $connect (after the token authorizer allowed it): remember the connection.

Env (set by the dashboard stack): CONNECTIONS_TABLE, CONNECTION_TTL_HOURS.
Metrics (EMF): ConnectionsOpened.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
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
    ttl_hours = require("CONNECTION_TTL_HOURS", int)
    table.put_item(
        Item={
            "connectionId": event.request_context.connection_id,
            "connectedAt": datetime.now(UTC).isoformat(),
            "ttl": int(time.time()) + ttl_hours * 3600,
        }
    )
    metrics.add_metric(name="ConnectionsOpened", unit=MetricUnit.Count, value=1)
    return {"statusCode": 200}
