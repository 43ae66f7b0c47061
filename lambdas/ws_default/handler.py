"""WebSocket $default: any client message gets a `hello` back (server name, window).

The page sends one message after connecting (API Gateway cannot post during $connect);
the reply tells it the server and the KPI window length. Bodies are not trusted or echoed.
"""

from __future__ import annotations

import os
from typing import Any

import boto3

from acme_telemetry import protocol

SERVER = "aws-lambda"


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    ctx = event["requestContext"]
    endpoint = f"https://{ctx['domainName']}/{ctx['stage']}"
    api = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
    window = float(os.environ.get("WINDOW_SECONDS", "5"))
    try:
        api.post_to_connection(ConnectionId=ctx["connectionId"], Data=protocol.encode(protocol.hello_message(SERVER, window)))
    except api.exceptions.GoneException:
        return {"statusCode": 410}
    return {"statusCode": 200}
