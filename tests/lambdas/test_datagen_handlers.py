"""Generator (EventBridge scheduled event -> chunked async invokes), producer (payload
contract, IAM token provider: item 11). The MSK connectivity custom resource is tested in
test_msk_connectivity.py."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from acme_telemetry.simulator import SimConfig, iter_window
from tests.lambdas.conftest import load_handler

SCHEDULED_EVENT = {
    "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
    "source": "aws.events", "account": "123456789012", "time": "2026-01-15T12:05:00Z", "region": "us-west-2",
    "resources": ["arn:aws:events:us-west-2:123456789012:rule/acme-data-generator-schedule"], "detail": {},
}


class RecordingLambda:
    """Stands in for the Lambda client at the boundary: records async invokes."""

    def __init__(self):
        self.calls = []

    def invoke(self, **kw):
        self.calls.append(kw)
        return {"StatusCode": 202}


def test_window_is_the_schedule_period_ending_at_event_time():
    gen = load_handler("generator")
    start, end = gen.window_for("2026-01-15T12:05:07Z", 5)
    assert (start, end) == (datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc), datetime(2026, 1, 15, 12, 5, tzinfo=timezone.utc))


def test_generator_chunks_under_limit_and_loses_nothing(monkeypatch):
    gen = load_handler("generator")
    monkeypatch.setenv("PRODUCER_FUNCTION_NAME", "acme-data-producer")
    monkeypatch.setenv("SCHEDULE_MINUTES", "1")
    monkeypatch.setenv("CONCURRENT_VIEWERS", "40")
    monkeypatch.setenv("HEARTBEAT_INTERVAL_S", "10")
    monkeypatch.setenv("SEED", "3")
    limit = 20_000
    monkeypatch.setenv("MAX_ASYNC_PAYLOAD_BYTES", str(limit))
    client = RecordingLambda()
    out = gen.handler(SCHEDULED_EVENT, None, lambda_client=client)
    assert out["invocations"] == len(client.calls) > 1
    got = []
    for i, call in enumerate(client.calls):
        assert call["FunctionName"] == "acme-data-producer" and call["InvocationType"] == "Event"
        assert len(call["Payload"]) <= limit
        body = json.loads(call["Payload"])
        assert body["chunk"] == i and body["window_end"] == "2026-01-15T12:05:00Z"
        got.extend((k.encode(), v.encode()) for k, v in body["records"])
    expected = list(iter_window(SimConfig(seed=3, concurrent_viewers=40, heartbeat_interval_s=10.0),
                                datetime(2026, 1, 15, 12, 4, tzinfo=timezone.utc), datetime(2026, 1, 15, 12, 5, tzinfo=timezone.utc)))
    assert got == expected and out["records"] == len(expected) > 0


def test_chunking_refuses_a_record_over_the_limit():
    gen = load_handler("generator")
    with pytest.raises(ValueError, match="payload limit"):
        list(gen.chunk_payloads([(b"k", b"x" * 5000)], 1000, {}))


def test_producer_rejects_malformed_payload_loudly():
    prod = load_handler("producer")
    for bad in ({}, {"records": "x"}, {"records": [["only-key"]]}, {"records": [[1, 2]]}):
        with pytest.raises(prod.PayloadError):
            prod.handler(bad)
    assert prod.parse_records({"records": [["s1", '{"a":1}']]}) == [(b"s1", b'{"a":1}')]


def test_item11_iam_settings_use_a_token_provider_object(monkeypatch):
    """kafka-python 3 needs an AbstractTokenProvider subclass for OAUTHBEARER, not a function."""
    from acme_telemetry.kafka import AbstractTokenProvider, KafkaSettings

    env = {"BOOTSTRAP_SERVERS": "b-1.acme.kafka.us-west-2.amazonaws.com:9098", "KAFKA_AUTH": "iam", "AWS_REGION": "us-west-2"}
    cfg = KafkaSettings.from_env(env).client_config()
    assert cfg["security_protocol"] == "SASL_SSL" and cfg["sasl_mechanism"] == "OAUTHBEARER"
    assert isinstance(cfg["sasl_oauth_token_provider"], AbstractTokenProvider)
    assert callable(cfg["sasl_oauth_token_provider"].token)
