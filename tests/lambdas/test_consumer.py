"""The KPI consumer fed the documented MSK event (eventSource aws:kafka, base64 values):
malformed records are counted and skipped, the broadcast is PII-free, a GoneException
(410) deletes the stale connection, each count is an EMF metric, and the partial states of
concurrent invocations merge, on the page, to the whole windows."""

from __future__ import annotations

import base64

import boto3
import orjson
import pytest
from aws_lambda_powertools.utilities.data_classes import KafkaEvent
from moto import mock_aws
from moto.apigatewaymanagementapi import models as apigw_models
from moto.core.exceptions import JsonRESTError

from acme_telemetry import kpis, schema
from acme_telemetry.simulator import SimConfig, iter_records
from tests.lambdas.conftest import load_handler

ENDPOINT = "https://abc123defg.execute-api.us-west-2.amazonaws.com/prod"


def msk_event(values: list[bytes], t0_ms: int = 1767225600000, partition: int = 0, first_offset: int = 0):
    recs = [
        {
            "topic": "acme-telemetry",
            "partition": partition,
            "offset": first_offset + i,
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
        "records": {f"acme-telemetry-{partition}": recs},
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
        monkeypatch.setenv("KPI_WINDOW_S", "5")
        monkeypatch.setenv("HEARTBEAT_INTERVAL_S", "10")
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
        # one partial state per 5 s window the batch touches, all named by the batch's records
        assert len(kpi) >= 2 and sum(m["overall"]["events"] for m in kpi) == 400
        assert {m["part"] for m in kpi} == {out["part"]} and all(m["v"] == 2 for m in kpi)
        assert len({m["window_start"] for m in kpi}) == len(kpi)
        text = orjson.dumps(msgs).decode()
        for pii in schema.PII_FIELDS:
            assert f'"{pii}"' not in text


def test_malformed_only_batch_does_not_crash(setup, context, metrics_out):
    consumer = load_handler("consumer")
    out = consumer.handler(msk_event([b"{oops", b"42"]), context)
    assert out == {"records": 2, "events": 0, "malformed": 2}
    assert metrics_out() == {"RecordsConsumed": 2, "MalformedRecords": 2}


@pytest.mark.parametrize("missing", ["CONNECTIONS_TABLE", "WEBSOCKET_ENDPOINT", "KPI_WINDOW_S", "HEARTBEAT_INTERVAL_S"])
def test_missing_setting_fails_naming_it(setup, context, monkeypatch, missing):
    monkeypatch.delenv(missing)
    consumer = load_handler("consumer")
    with pytest.raises(RuntimeError, match=f"^environment variable {missing} is not set;"):
        consumer.handler(msk_event([b'{"event_type":"heartbeat"}']), context)


def test_parse_reports_reason_position_and_the_offset_ranges():
    consumer = load_handler("consumer")
    events, ranges, malformed = consumer.parse_records(KafkaEvent(msk_event([b'{"event_type":"heartbeat"}', b"[]"], first_offset=40)))
    assert events == [{"event_type": "heartbeat"}]
    assert ranges == [("acme-telemetry-0", 40, 41)]
    assert malformed == [{"position": "acme-telemetry-0@41", "reason": "value is a JSON list, not an object"}]


def test_concurrent_invocations_over_split_partitions_merge_to_the_whole_windows(setup, context, metrics_out):
    """The Lambda path of the merge: records of two partitions, cut into batches that two
    concurrent invocations handle (one retried), merged on the page per (window, part)."""
    values = [v for _, v in iter_records(1500, SimConfig(seed=3, concurrent_viewers=300))]
    by_part = {0: values[0::2], 1: values[1::2]}
    events = [
        msk_event(by_part[0][:300], partition=0),
        msk_event(by_part[1][:500], partition=1),
        msk_event(by_part[0][300:], partition=0, first_offset=300),
        msk_event(by_part[1][500:], partition=1, first_offset=500),
    ]
    consumer = load_handler("consumer")
    for ev in (events[1], events[0], events[3], events[2], events[0]):  # any order; the first batch retried
        consumer.handler(ev, context)
    page = kpis.PartMerger()
    for m in sent_to("alive-1"):
        if m["type"] == "kpi":
            page.add(m)
    whole, _ = kpis.split_by_window([orjson.loads(v) for v in values], 5000, heartbeat_ms=10_000)
    assert {k[0]: w for k, w in page.windows().items()} == whole


def test_a_thousand_connections_are_served_concurrently_and_the_gone_pruned_in_bulk(monkeypatch):
    consumer = load_handler("consumer")

    class Gone(Exception):
        pass

    class Api:
        class exceptions:  # noqa: N801 - boto3's shape
            GoneException = Gone

        def __init__(self):
            import threading

            self.lock, self.calls, self.in_flight, self.peak = threading.Lock(), [], 0, 0

        def post_to_connection(self, ConnectionId, Data):  # noqa: N803 - boto3's names
            import time

            with self.lock:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            time.sleep(0.002)
            with self.lock:
                self.in_flight -= 1
                self.calls.append((ConnectionId, Data))
            if ConnectionId.startswith("gone"):
                raise Gone()

    class Batch:
        def __init__(self, table):
            self.table = table

        def __enter__(self):
            self.table.batches += 1
            return self

        def __exit__(self, *exc):
            return False

        def delete_item(self, Key):  # noqa: N803
            self.table.deleted.append(Key["connectionId"])

    class Table:
        def __init__(self, ids):
            self.ids, self.deleted, self.batches = ids, [], 0

        def scan(self, **kw):
            return {"Items": [{"connectionId": i} for i in self.ids]}

        def batch_writer(self):
            return Batch(self)

        def delete_item(self, Key):  # noqa: N803
            raise AssertionError("gone connections are deleted in bulk, not one by one")

    ids = [f"c{i}" for i in range(990)] + [f"gone{i}" for i in range(10)]
    api, table = Api(), Table(ids)
    stats = consumer.broadcast([b"m1", b"m2"], table, api)
    assert stats == {"connections": 1000, "sent": 1980, "gone": 10, "failed": 0}
    assert sorted(table.deleted) == sorted(ids[-10:]) and table.batches == 1
    assert 1 < api.peak <= consumer.BROADCAST_CONCURRENCY
    order = {}
    for cid, data in api.calls:
        order.setdefault(cid, []).append(data)
    assert all(v == [b"m1", b"m2"] for k, v in order.items() if not k.startswith("gone"))  # in order per connection
