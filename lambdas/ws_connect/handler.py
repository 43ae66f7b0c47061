"""WebSocket $connect (after the token authorizer allowed it): remember the connection."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any

import boto3


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    ttl_hours = int(os.environ.get("CONNECTION_TTL_HOURS", "24"))
    table = boto3.resource("dynamodb").Table(os.environ["CONNECTIONS_TABLE"])
    table.put_item(Item={
        "connectionId": connection_id,
        "connectedAt": datetime.now(timezone.utc).isoformat(),
        "ttl": int(time.time()) + ttl_hours * 3600,
    })
    return {"statusCode": 200}
