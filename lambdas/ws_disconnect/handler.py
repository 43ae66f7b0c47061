"""WebSocket $disconnect: forget the connection."""

from __future__ import annotations

import os
from typing import Any

import boto3


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    table = boto3.resource("dynamodb").Table(os.environ["CONNECTIONS_TABLE"])
    table.delete_item(Key={"connectionId": connection_id})
    return {"statusCode": 200}
