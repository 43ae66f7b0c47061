"""Generator (EventBridge scheduled event -> chunked async invokes), producer (payload
contract, IAM token provider), their settings (required, named when missing) and their
EMF metrics. The MSK connectivity custom resource is tested in test_msk_connectivity.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from acme_telemetry.simulator import SimConfig, iter_window
from tests.lambdas.conftest import load_handler

SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-01-15T12:05:00Z",
    "region": "us-west-2",
    "resources": ["arn:aws:events:us-west-2:123456789012:rule/acme-data-generator-schedule"],
    "detail": {},
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
    assert (start, end) == (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), datetime(2026, 1, 15, 12, 5, tzinfo=UTC))


GENERATOR_ENV = {
    "PRODUCER_FUNCTION_NAME": "acme-data-producer",
    "SCHEDULE_MINUTES": "1",
    "CONCURRENT_VIEWERS": "40",
    "HEARTBEAT_INTERVAL_S": "10",
    "SEED": "3",
    "MAX_ASYNC_PAYLOAD_BYTES": "20000",
}


@pytest.fixture
def generator(monkeypatch):
    """The generator handler with the stack's settings and a recording Lambda client."""
    for k, v in GENERATOR_ENV.items():
        monkeypatch.setenv(k, v)
    gen = load_handler("generator")
    monkeypatch.setattr(gen, "lambda_client", RecordingLambda())
    return gen


def test_generator_chunks_under_limit_and_loses_nothing(generator, context, metrics_out):
    gen, client, limit = generator, generator.lambda_client, 20_000
    out = gen.handler(SCHEDULED_EVENT, context)
    assert out["invocations"] == len(client.calls) > 1
    got = []
    for i, call in enumerate(client.calls):
        assert call["FunctionName"] == "acme-data-producer" and call["InvocationType"] == "Event"
        assert len(call["Payload"]) <= limit
        body = json.loads(call["Payload"])
        assert body["chunk"] == i and body["window_end"] == "2026-01-15T12:05:00Z"
        got.extend((k.encode(), v.encode()) for k, v in body["records"])
    expected = list(
        iter_window(
            SimConfig(seed=3, concurrent_viewers=40, heartbeat_interval_s=10.0),
            datetime(2026, 1, 15, 12, 4, tzinfo=UTC),
            datetime(2026, 1, 15, 12, 5, tzinfo=UTC),
        )
    )
    assert got == expected and out["records"] == len(expected) > 0
    assert metrics_out() == {"EventsGenerated": len(expected), "ProducerInvocations": len(client.calls)}


@pytest.mark.parametrize("name", sorted(GENERATOR_ENV))
def test_generator_fails_naming_a_missing_setting(generator, context, monkeypatch, name):
    """No default duplicates data_stack.config: an unset setting stops the run, and says which."""
    monkeypatch.delenv(name)
    with pytest.raises(RuntimeError, match=f"^environment variable {name} is not set;"):
        generator.handler(SCHEDULED_EVENT, context)
    assert generator.lambda_client.calls == []


def test_generator_fails_naming_a_malformed_setting(generator, context, monkeypatch):
    monkeypatch.setenv("CONCURRENT_VIEWERS", "forty")
    with pytest.raises(RuntimeError, match="^environment variable CONCURRENT_VIEWERS='forty' is not a valid int$"):
        generator.handler(SCHEDULED_EVENT, context)


def test_chunking_refuses_a_record_over_the_limit():
    gen = load_handler("generator")
    with pytest.raises(ValueError, match="payload limit"):
        list(gen.chunk_payloads([(b"k", b"x" * 5000)], 1000, {}))


def test_producer_rejects_malformed_payload_loudly(context, monkeypatch):
    monkeypatch.setenv("KAFKA_TOPIC", "acme-telemetry")
    prod = load_handler("producer")
    for bad in ({}, {"records": "x"}, {"records": [["only-key"]]}, {"records": [[1, 2]]}):
        with pytest.raises(prod.PayloadError):
            prod.handler(bad, context)
    assert prod.parse_records({"records": [["s1", '{"a":1}']]}) == [(b"s1", b'{"a":1}')]


class FakeFuture:
    def __init__(self, ok: bool):
        self.ok, self.exception = ok, None if ok else RuntimeError("NotEnoughReplicas")

    def succeeded(self) -> bool:
        return self.ok


class FakeProducer:
    """kafka-python's KafkaProducer at the boundary: send() -> future, flush()."""

    def __init__(self, fail_keys=()):
        self.fail_keys, self.sent = set(fail_keys), []

    def send(self, topic, key, value):
        self.sent.append((topic, key, value))
        return FakeFuture(key not in self.fail_keys)

    def flush(self):
        pass


def test_producer_writes_the_chunk_and_counts_it(context, monkeypatch, metrics_out):
    monkeypatch.setenv("KAFKA_TOPIC", "acme-telemetry")
    prod = load_handler("producer")
    monkeypatch.setattr(prod, "_producer", FakeProducer())
    out = prod.handler({"chunk": 2, "window_start": "2026-01-15T12:00:00Z", "records": [["s1", "{}"], ["s2", "{}"]]}, context)
    assert out == {"topic": "acme-telemetry", "produced": 2, "chunk": 2, "window_start": "2026-01-15T12:00:00Z"}
    assert prod._producer.sent == [("acme-telemetry", b"s1", b"{}"), ("acme-telemetry", b"s2", b"{}")]
    assert metrics_out() == {"RecordsProduced": 2, "RecordsFailed": 0}


def test_producer_counts_unacknowledged_records_and_fails(context, monkeypatch, metrics_out):
    from acme_telemetry.kafka import ProduceError

    monkeypatch.setenv("KAFKA_TOPIC", "acme-telemetry")
    prod = load_handler("producer")
    monkeypatch.setattr(prod, "_producer", FakeProducer(fail_keys={b"s2"}))
    with pytest.raises(ProduceError):
        prod.handler({"records": [["s1", "{}"], ["s2", "{}"], ["s3", "{}"]]}, context)
    assert metrics_out() == {"RecordsProduced": 2, "RecordsFailed": 1}


def test_producer_fails_naming_a_missing_topic(context, monkeypatch):
    monkeypatch.delenv("KAFKA_TOPIC", raising=False)
    prod = load_handler("producer")
    monkeypatch.setattr(prod, "_producer", FakeProducer())
    with pytest.raises(RuntimeError, match="^environment variable KAFKA_TOPIC is not set;"):
        prod.handler({"records": [["s1", "{}"]]}, context)
    assert prod._producer.sent == []


def test_item11_iam_settings_use_a_token_provider_object(monkeypatch):
    """kafka-python 3 needs an AbstractTokenProvider subclass for OAUTHBEARER, not a function."""
    from acme_telemetry.kafka import AbstractTokenProvider, KafkaSettings

    env = {"BOOTSTRAP_SERVERS": "b-1.acme.kafka.us-west-2.amazonaws.com:9098", "KAFKA_AUTH": "iam", "AWS_REGION": "us-west-2"}
    cfg = KafkaSettings.from_env(env).client_config()
    assert cfg["security_protocol"] == "SASL_SSL" and cfg["sasl_mechanism"] == "OAUTHBEARER"
    assert isinstance(cfg["sasl_oauth_token_provider"], AbstractTokenProvider)
    assert callable(cfg["sasl_oauth_token_provider"].token)
