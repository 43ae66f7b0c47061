"""acme_telemetry.kafka against the real broker: PLAINTEXT and the OAUTHBEARER code path."""

from __future__ import annotations

import base64
import json
import time

import pytest

from acme_telemetry import kafka as k
from acme_telemetry.local.broker import OAUTH_REQUIRED_SCOPE

pytestmark = pytest.mark.integration


class UnsecuredJws(k.AbstractTokenProvider):
    """An unsecured JWS (alg none), what Kafka's unsecured validator checks: all but a signature."""

    def __init__(self, scope: str, lifetime_s: int = 600):
        super().__init__()
        self.scope, self.lifetime_s, self.calls = scope, lifetime_s, 0

    def token(self) -> str:
        self.calls += 1
        enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")  # noqa: E731
        now = int(time.time())
        claims = {"sub": "acme-producer", "iat": now, "exp": now + self.lifetime_s, "scope": self.scope}
        return f"{enc({'alg': 'none'})}.{enc(claims)}."


def test_from_env_names_the_missing_setting():
    with pytest.raises(k.KafkaConfigError, match="BOOTSTRAP_SERVERS"):
        k.KafkaSettings.from_env({})
    with pytest.raises(k.KafkaConfigError, match="AWS_REGION"):
        k.KafkaSettings.from_env({"BOOTSTRAP_SERVERS": "b-1:9098", "KAFKA_AUTH": "iam"})
    with pytest.raises(k.KafkaConfigError, match="KAFKA_AUTH"):
        k.KafkaSettings.from_env({"BOOTSTRAP_SERVERS": "b-1:9098", "KAFKA_AUTH": "scram"})
    with pytest.raises(k.KafkaConfigError, match="not host:port"):
        k.KafkaSettings.local("localhost")
    iam = k.KafkaSettings.from_env({"BOOTSTRAP_SERVERS": "b-1:9098,b-2:9098", "AWS_REGION": "us-west-2"})
    cfg = iam.client_config()
    assert (cfg["security_protocol"], cfg["sasl_mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    assert isinstance(cfg["sasl_oauth_token_provider"], k.MSKTokenProvider)
    assert cfg["bootstrap_servers"] == ["b-1:9098", "b-2:9098"]
    plain = k.KafkaSettings.from_env({"BOOTSTRAP_SERVERS": "127.0.0.1:9092", "KAFKA_AUTH": "plaintext"})
    assert plain.client_config()["security_protocol"] == "PLAINTEXT"


def test_msk_token_provider_reuses_a_token_until_near_expiry(monkeypatch):
    provider = k.MSKTokenProvider("us-west-2")
    issued = []

    def fake_generate():
        issued.append(time.time())
        return f"token-{len(issued)}", time.time() + 900  # MSK tokens live 15 minutes

    monkeypatch.setattr(provider, "_generate", fake_generate)
    assert provider.token() == provider.token() == "token-1"
    provider._expires_at = time.time() + 30  # inside the refresh margin
    assert provider.token() == "token-2"


def test_produce_and_consume_plaintext(settings, topic):
    producer = k.make_producer(settings)
    records = [(f"s{i % 7}".encode(), json.dumps({"i": i}).encode()) for i in range(500)]
    assert k.produce(producer, topic, records) == 500
    producer.close()
    consumer = k.make_consumer(settings, f"{topic}-g", topics=[topic], consumer_timeout_ms=5000)
    got = [(m.key, m.value, m.partition) for m in consumer]
    consumer.close()
    assert sorted(v for _, v, _ in got) == sorted(v for _, v in records)
    # one key, one partition: a session stays in order
    by_key = {}
    for key, _, part in got:
        by_key.setdefault(key, set()).add(part)
    assert all(len(parts) == 1 for parts in by_key.values())


def test_oauthbearer_path_accepts_a_valid_token_and_rejects_a_wrong_scope(broker, settings, topic):
    provider = UnsecuredJws(OAUTH_REQUIRED_SCOPE)
    oauth = k.KafkaSettings.oauthbearer(broker.oauth_bootstrap, provider, security_protocol="SASL_PLAINTEXT")
    producer = k.make_producer(oauth)
    assert k.produce(producer, topic, [(b"s-oauth", b'{"via": "oauthbearer"}')]) == 1
    producer.close()
    assert provider.calls >= 1

    consumer = k.make_consumer(settings, f"{topic}-g", topics=[topic], consumer_timeout_ms=5000)
    assert [m.value for m in consumer] == [b'{"via": "oauthbearer"}']
    consumer.close()

    wrong = k.KafkaSettings.oauthbearer(broker.oauth_bootstrap, UnsecuredJws("other-scope"), security_protocol="SASL_PLAINTEXT")
    with pytest.raises(Exception) as info:
        p = k.make_producer(wrong, bootstrap_timeout_ms=3000, max_block_ms=3000)
        k.produce(p, topic, [(b"s", b"{}")])
    assert "bootstrap" in str(info.value).lower() or isinstance(info.value, k.ProduceError)


def test_produce_error_when_the_topic_is_missing(settings):
    producer = k.make_producer(settings, max_block_ms=2000)
    with pytest.raises(k.ProduceError) as info:
        k.produce(producer, "no-such-topic-here", [(b"k", b"{}"), (b"k", b"{}")])
    producer.close(timeout=2)
    assert info.value.sent == 0 and info.value.failed >= 1
