"""The KPI consumer fed the documented MSK event (eventSource aws:kafka, base64 values):
malformed records are counted and skipped, the broadcast is PII-free, a GoneException
(410) deletes the stale connection, and each count is an EMF metric."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import boto3
import orjson
import pytest
from aws_lambda_powertools.utilities.data_classes import KafkaEvent
from moto import mock_aws
from moto.apigatewaymanagementapi import models as apigw_models
from moto.core.exceptions import JsonRESTError

from acme_telemetry import schema
from acme_telemetry.simulator import SimConfig, iter_records
from tests.lambdas.conftest import load_handler

ENDPOINT = "https://abc123defg.execute-api.us-west-2.amazonaws.com/prod"


def msk_event(values: list[bytes], t0_ms: int = 1767225600000):
    recs = [
        {
            "topic": "acme-telemetry",
            "partition": 0,
            "offset": i,
            "timestamp": t0_ms + i * 10,
            "timestampType": "CREATE_TIME",
            "key": base64.b64encode(b"session").decode(),
            "value": base64.b64encode(v).decode(),
            "headers": [],
        }
        for i, v in enumerate(values)
    ]
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:us-west-2:123456789012:cluster/acme-msk-cluster/abcd-1234-5",
        "bootstrapServers": "b-1.acme.kafka.us-west-2.amazonaws.com:9098",
        "records": {"acme-telemetry-0": recs},
    }


@pytest.fixture
def setup(monkeypatch):
    with mock_aws():
        ddb = boto3.resource("dynamodb", region_name="us-west-2")
        table = ddb.create_table(
            TableName="conns",
            KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for cid in ("alive-1", "alive-2", "gone-1"):
            table.put_item(Item={"connectionId": cid})
        monkeypatch.setenv("CONNECTIONS_TABLE", "conns")
        monkeypatch.setenv("WEBSOCKET_ENDPOINT", ENDPOINT)
        original = apigw_models.ApiGatewayManagementApiBackend.post_to_connection

        def post(self, data, connection_id):  # API Gateway answers 410 for a closed connection
            if connection_id.startswith("gone"):
                raise JsonRESTError("GoneException", f"connection {connection_id} is gone")
            return original(self, data, connection_id)

        monkeypatch.setattr(apigw_models.ApiGatewayManagementApiBackend, "post_to_connection", post)
        monkeypatch.setattr(JsonRESTError, "code", 410, raising=False)
        yield table


def sent_to(cid):
    data = apigw_models.apigatewaymanagementapi_backends["123456789012"]["us-west-2"].connections[cid].data
    # messages are concatenated JSON objects; split on the boundary
    out, dec = [], data.decode()
    import json

    idx = 0
    decoder = json.JSONDecoder()
    while idx < len(dec):
        obj, end = decoder.raw_decode(dec, idx)
        out.append(obj)
        idx = end
    return out


def test_broadcast_kpis_and_gone_cleanup(setup, context, metrics_out):
    table = setup
    values = [v for _, v in iter_records(400, SimConfig(seed=7))]
    bad = [b"not json", b"[1,2,3]", b"\xff\xfe"]
    event = msk_event(values + bad)
    event["records"]["acme-telemetry-0"].append({"topic": "acme-telemetry", "partition": 0, "offset": 999, "value": "%%%not-base64"})
    consumer = load_handler("consumer")
    out = consumer.handler(event, context)
    assert out["events"] == 400 and out["malformed"] == 4
    assert out["connections"] == 3 and out["gone"] == 1
    assert out["sent"] >= 2 and out["failed"] == 0
    assert metrics_out() == {
        "RecordsConsumed": 404,
        "MalformedRecords": 4,
        "Broadcasts": out["sent"],
        "GoneConnections": 1,
        "FailedPosts": 0,
    }
    remaining = {i["connectionId"] for i in table.scan()["Items"]}
    assert remaining == {"alive-1", "alive-2"}
    for cid in ("alive-1", "alive-2"):
        msgs = sent_to(cid)
        kpi = [m for m in msgs if m["type"] == "kpi"]
        assert len(kpi) == 1 and kpi[0]["overall"]["events"] == 400
        text = orjson.dumps(msgs).decode()
        for pii in schema.PII_FIELDS:
            assert f'"{pii}"' not in text


def test_malformed_only_batch_does_not_crash(setup, context, metrics_out):
    consumer = load_handler("consumer")
    out = consumer.handler(msk_event([b"{oops", b"42"]), context)
    assert out == {"records": 2, "events": 0, "malformed": 2}
    assert metrics_out() == {"RecordsConsumed": 2, "MalformedRecords": 2}


@pytest.mark.parametrize("missing", ["CONNECTIONS_TABLE", "WEBSOCKET_ENDPOINT"])
def test_missing_setting_fails_naming_it(setup, context, monkeypatch, missing):
    monkeypatch.delenv(missing)
    consumer = load_handler("consumer")
    with pytest.raises(RuntimeError, match=f"^environment variable {missing} is not set;"):
        consumer.handler(msk_event([b'{"event_type":"heartbeat"}']), context)


def test_parse_reports_reason_and_position():
    consumer = load_handler("consumer")
    events, stamps, malformed = consumer.parse_records(KafkaEvent(msk_event([b'{"event_type":"heartbeat"}', b"[]"])))
    assert events == [{"event_type": "heartbeat"}] and len(stamps) == 1
    assert malformed == [{"position": "acme-telemetry-0@1", "reason": "value is a JSON list, not an object"}]
    # no event_timestamp: fall back to the Kafka record timestamps
    start, end = consumer.window_of([1767225600000, 1767225605000], events)
    assert start == datetime(2026, 1, 1, tzinfo=UTC) and (end - start).total_seconds() == pytest.approx(5.001)
    # event time wins when present: KPIs count events by event_timestamp
    ev = [{"event_timestamp": "2026-01-01T10:00:00.000Z"}, {"event_timestamp": "2026-01-01T10:00:04.500Z"}]
    start, end = consumer.window_of([1], ev)
    assert start == datetime(2026, 1, 1, 10, tzinfo=UTC) and (end - start).total_seconds() == pytest.approx(4.501)
