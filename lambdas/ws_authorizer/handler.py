"""REQUEST authorizer for the WebSocket $connect route.

Identity source: route.request.querystring.token. The token is compared in constant time
with the secret string in Secrets Manager (TOKEN_SECRET_ARN), cached for a few minutes.
Returns an IAM policy allowing or denying execute-api:Invoke on the route (methodArn).
"""

from __future__ import annotations

import hmac
import os
import time
from typing import Any

import boto3

CACHE_SECONDS = 300
_cache: dict[str, Any] = {"token": None, "at": 0.0}


def expected_token() -> str:
    now = time.monotonic()
    if _cache["token"] is None or now - _cache["at"] > CACHE_SECONDS:
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["TOKEN_SECRET_ARN"])
        _cache["token"], _cache["at"] = secret["SecretString"], now
    return _cache["token"]


def policy(effect: str, resource: str) -> dict[str, Any]:
    return {
        "principalId": "dashboard",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    supplied = (event.get("queryStringParameters") or {}).get("token") or ""
    expected = expected_token()
    ok = bool(supplied) and hmac.compare_digest(supplied.encode(), expected.encode())
    return policy("Allow" if ok else "Deny", event["methodArn"])
