"""WebSocket handlers and the $connect authorizer, fed API Gateway's documented event
shapes; DynamoDB, Secrets Manager and the management API are moto. Each handler's EMF
metrics, and its refusal to run without the settings the stack gives it."""

from __future__ import annotations

import boto3
import orjson
import pytest
from moto import mock_aws
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

from tests.lambdas.conftest import load_handler

METHOD_ARN = "arn:aws:execute-api:us-west-2:123456789012:abc123defg/prod/$connect"


def ws_event(route: str, connection_id: str = "Zx1abcCONNid", **extra):
    return {
        "requestContext": {
            "routeKey": route,
            "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE"),
            "connectionId": connection_id,
            "domainName": "abc123defg.execute-api.us-west-2.amazonaws.com",
            "stage": "prod",
            "apiId": "abc123defg",
            "requestId": "req-1",
            "connectedAt": 1767225600000,
        },
        "isBase64Encoded": False,
        **extra,
    }


def make_table():
    ddb = boto3.resource("dynamodb", region_name="us-west-2")
    return ddb.create_table(
        TableName="acme-data-connections",
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@mock_aws
def test_connect_then_disconnect(monkeypatch, context, metrics_out):
    table = make_table()
    monkeypatch.setenv("CONNECTIONS_TABLE", table.name)
    monkeypatch.setenv("CONNECTION_TTL_HOURS", "2")
    connect, disconnect = load_handler("ws_connect"), load_handler("ws_disconnect")
    connect_event = ws_event("$connect", headers={"Host": "x"}, queryStringParameters={"token": "t"})
    assert connect.handler(connect_event, context)["statusCode"] == 200
    item = table.get_item(Key={"connectionId": "Zx1abcCONNid"})["Item"]
    import time

    assert 7100 <= int(item["ttl"]) - time.time() <= 7200
    assert disconnect.handler(ws_event("$disconnect"), context)["statusCode"] == 200
    assert "Item" not in table.get_item(Key={"connectionId": "Zx1abcCONNid"})
    assert metrics_out() == {"ConnectionsOpened": 1, "ConnectionsClosed": 1}


@mock_aws
@pytest.mark.parametrize(
    "route, missing",
    [
        ("ws_connect", "CONNECTIONS_TABLE"),
        ("ws_connect", "CONNECTION_TTL_HOURS"),
        ("ws_disconnect", "CONNECTIONS_TABLE"),
        ("ws_default", "WINDOW_SECONDS"),
    ],
)
def test_missing_setting_fails_naming_it(monkeypatch, context, route, missing):
    table = make_table()
    env = {"CONNECTIONS_TABLE": table.name, "CONNECTION_TTL_HOURS": "2", "WINDOW_SECONDS": "5"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv(missing)
    fn = load_handler(route)
    with pytest.raises(RuntimeError, match=f"^environment variable {missing} is not set;"):
        fn.handler(ws_event("$connect"), context)
    assert table.scan()["Items"] == []


@mock_aws
def test_default_route_replies_hello(monkeypatch, context, metrics_out):
    monkeypatch.setenv("WINDOW_SECONDS", "5")
    default = load_handler("ws_default")
    assert default.handler(ws_event("$default", body='{"action":"hello"}'), context)["statusCode"] == 200
    sent = apigatewaymanagementapi_backends["123456789012"]["us-west-2"].connections["Zx1abcCONNid"].data
    msg = orjson.loads(sent)
    assert msg == {
        "type": "hello",
        "v": 2,
        "server": "aws-lambda",
        "window_seconds": 5.0,
        "heartbeat_ms": 10000,
        "rolling_seconds": 60.0,
        "min_samples": 20,
        "min_audience": 20,
    }
    assert metrics_out() == {"HellosSent": 1}


@mock_aws
@pytest.mark.parametrize(
    "supplied, effect", [("s3cret-token-value", "Allow"), ("s3cret-token-valuX", "Deny"), ("", "Deny"), (None, "Deny")]
)
def test_authorizer(monkeypatch, context, metrics_out, supplied, effect):
    sm = boto3.client("secretsmanager", region_name="us-west-2")
    arn = sm.create_secret(Name="acme-data/dashboard-token", SecretString="s3cret-token-value")["ARN"]
    monkeypatch.setenv("TOKEN_SECRET_ARN", arn)
    auth = load_handler("ws_authorizer")
    event = {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": {"Host": "abc123defg.execute-api.us-west-2.amazonaws.com"},
        "queryStringParameters": {} if supplied is None else {"token": supplied},
        "requestContext": ws_event("$connect")["requestContext"],
    }
    out = auth.handler(event, context)
    assert out["principalId"] == "dashboard" and out["policyDocument"]["Version"] == "2012-10-17"
    (st,) = out["policyDocument"]["Statement"]
    assert (st["Effect"], st["Resource"], st["Action"]) == (effect, [METHOD_ARN], "execute-api:Invoke")
    assert metrics_out() == {f"Connect{'Allowed' if effect == 'Allow' else 'Denied'}": 1}


@mock_aws
def test_authorizer_caches_the_secret(monkeypatch, context):
    sm = boto3.client("secretsmanager", region_name="us-west-2")
    arn = sm.create_secret(Name="tok", SecretString="first-token-value")["ARN"]
    monkeypatch.setenv("TOKEN_SECRET_ARN", arn)
    auth = load_handler("ws_authorizer")
    ev = {"methodArn": METHOD_ARN, "queryStringParameters": {"token": "first-token-value"}}
    assert auth.handler(ev, context)["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    sm.put_secret_value(SecretId=arn, SecretString="second-token-value")
    assert auth.handler(ev, context)["policyDocument"]["Statement"][0]["Effect"] == "Allow"  # cached
    auth._cache["at"] -= auth.CACHE_SECONDS + 1
    assert auth.handler(ev, context)["policyDocument"]["Statement"][0]["Effect"] == "Deny"


@mock_aws
def test_authorizer_without_its_secret_setting_fails_naming_it(monkeypatch, context):
    monkeypatch.delenv("TOKEN_SECRET_ARN", raising=False)
    auth = load_handler("ws_authorizer")
    with pytest.raises(RuntimeError, match="^environment variable TOKEN_SECRET_ARN is not set;"):
        auth.handler({"methodArn": METHOD_ARN, "queryStringParameters": {"token": "t"}}, context)
