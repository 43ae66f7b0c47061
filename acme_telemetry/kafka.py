"""Kafka client settings and helpers, shared by the producer Lambda and the local pipeline.

Two ways to reach a broker, one code path:
- locally, PLAINTEXT on 127.0.0.1 (the embedded Apache Kafka broker, acme_telemetry.local);
- on AWS, Amazon MSK with IAM auth: SASL_SSL + OAUTHBEARER, the token signed by
  aws-msk-iam-sasl-signer-python (MSKTokenProvider).

kafka-python 3.x only accepts an OAUTHBEARER token provider that subclasses its
AbstractTokenProvider (kafka.net.sasl.oauth in 3.0.x; kafka.sasl.oauth before), so the
import below tries both paths.

Values are bytes (one JSON event, UTF-8); the key is the session_id (UTF-8), so one
session stays in order on one partition. The producer waits for all in-sync replicas
(acks=all) and is idempotent, so retries after a broker hiccup neither lose nor duplicate.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

try:  # kafka-python 3.0.x
    from kafka.net.sasl.oauth import AbstractTokenProvider
except ImportError:  # pragma: no cover - kafka-python 2.x layout
    from kafka.sasl.oauth import AbstractTokenProvider

__all__ = [
    "AbstractTokenProvider",
    "KafkaConfigError",
    "KafkaSettings",
    "MSKTokenProvider",
    "ProduceError",
    "ensure_topic",
    "make_admin",
    "make_consumer",
    "make_producer",
    "produce",
]

# Refresh an MSK token this long before it expires (tokens live 15 minutes).
_TOKEN_REFRESH_MARGIN_S = 60.0


class KafkaConfigError(ValueError):
    """A Kafka setting is missing or invalid; the message names the setting."""


class ProduceError(RuntimeError):
    """Some records were not acknowledged by the broker.

    `sent` records were acknowledged; `failed` were not (or were never handed to the
    producer because sending stopped at the first error). The caller may retry the whole
    batch: consumers downstream are at-least-once and dedupe on event_id when they must.
    """

    def __init__(self, message: str, *, sent: int, failed: int, cause: BaseException | None = None):
        super().__init__(message)
        self.sent = sent
        self.failed = failed
        self.cause = cause


class MSKTokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # kafka-python is untyped
    """OAUTHBEARER tokens for MSK IAM auth, signed with the runtime's AWS credentials.

    Tokens are reused until shortly before they expire, so the many connections a client
    opens at start-up do not each sign a new one.
    """

    def __init__(self, region: str, **config: Any):
        super().__init__(**config)
        if not region:
            raise KafkaConfigError("MSK IAM auth needs an AWS region (AWS_REGION)")
        self.region = region
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def _generate(self) -> tuple[str, float]:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(self.region)
        return token, expiry_ms / 1000.0

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.time() >= self._expires_at - _TOKEN_REFRESH_MARGIN_S:
                self._token, self._expires_at = self._generate()
            return self._token


@dataclass(frozen=True)
class KafkaSettings:
    """Where the brokers are and how to authenticate; turned into kafka-python config."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    token_provider: AbstractTokenProvider | None = field(default=None, compare=False, repr=False)
    client_id: str = "acme-telemetry"
    region: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.bootstrap_servers, str) or not self.bootstrap_servers.strip():
            raise KafkaConfigError("bootstrap_servers is empty; give host:port[,host:port...]")
        for server in self.bootstrap_servers.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise KafkaConfigError(f"bootstrap_servers: {server.strip()!r} is not host:port")
        if self.security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise KafkaConfigError(f"security_protocol: {self.security_protocol!r} is not a Kafka security protocol")
        if self.sasl_mechanism == "OAUTHBEARER" and not isinstance(self.token_provider, AbstractTokenProvider):
            raise KafkaConfigError("sasl_mechanism OAUTHBEARER needs a token_provider subclassing AbstractTokenProvider")

    # --- constructors -------------------------------------------------------------------

    @classmethod
    def local(cls, bootstrap: str) -> KafkaSettings:
        """PLAINTEXT, for the embedded broker or any unsecured Kafka."""
        return cls(bootstrap_servers=bootstrap)

    @classmethod
    def oauthbearer(
        cls, bootstrap: str, token_provider: AbstractTokenProvider, *, security_protocol: str = "SASL_SSL", region: str | None = None
    ) -> KafkaSettings:
        """SASL/OAUTHBEARER with any token provider (MSK IAM, or an unsecured JWS in tests)."""
        return cls(
            bootstrap_servers=bootstrap,
            security_protocol=security_protocol,
            sasl_mechanism="OAUTHBEARER",
            token_provider=token_provider,
            region=region,
        )

    @classmethod
    def msk_iam(cls, bootstrap: str, region: str) -> KafkaSettings:
        """Amazon MSK with IAM access control: SASL_SSL + OAUTHBEARER (port 9098)."""
        return cls.oauthbearer(bootstrap, MSKTokenProvider(region), security_protocol="SASL_SSL", region=region)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSettings:
        """From BOOTSTRAP_SERVERS and KAFKA_AUTH ('iam', the default, or 'plaintext').

        The region for IAM comes from AWS_REGION, which the Lambda runtime sets itself.
        """
        env = os.environ if env is None else env
        bootstrap = env.get("BOOTSTRAP_SERVERS", "").strip()
        if not bootstrap:
            raise KafkaConfigError("BOOTSTRAP_SERVERS is not set; it must list the brokers as host:port[,host:port...]")
        auth = env.get("KAFKA_AUTH", "iam").strip().lower()
        if auth == "plaintext":
            return cls.local(bootstrap)
        if auth == "iam":
            region = env.get("AWS_REGION", "").strip()
            if not region:
                raise KafkaConfigError("KAFKA_AUTH=iam needs AWS_REGION (set by the Lambda runtime)")
            return cls.msk_iam(bootstrap, region)
        raise KafkaConfigError(f"KAFKA_AUTH={auth!r} is not one of 'iam', 'plaintext'")

    # --- kafka-python config ------------------------------------------------------------

    def client_config(self) -> dict[str, Any]:
        """Keyword arguments common to KafkaProducer, KafkaConsumer and KafkaAdminClient."""
        cfg: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in self.bootstrap_servers.split(",")],
            "security_protocol": self.security_protocol,
            "client_id": self.client_id,
        }
        if self.sasl_mechanism:
            cfg["sasl_mechanism"] = self.sasl_mechanism
        if self.token_provider is not None:
            cfg["sasl_oauth_token_provider"] = self.token_provider
        return cfg

    def with_client_id(self, client_id: str) -> KafkaSettings:
        return replace(self, client_id=client_id)


def make_producer(settings: KafkaSettings, **overrides: Any) -> Any:
    """A KafkaProducer: acks=all, idempotent (so retries cannot duplicate), bytes in and out.

    Any keyword overrides the defaults (e.g. linger_ms for throughput).
    """
    from kafka import KafkaProducer

    config: dict[str, Any] = {
        **settings.client_config(),
        "acks": "all",
        "enable_idempotence": True,
        # Idempotence keeps order with up to 5 in flight; retries are bounded by time.
        "max_in_flight_requests_per_connection": 5,
        "delivery_timeout_ms": 120_000,
        "linger_ms": 5,
        "batch_size": 64 * 1024,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def produce(producer: Any, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    """Send (key, value) records, flush, and return the count acknowledged.

    Raises ProduceError if any record was not acknowledged. Sending stops at the first
    record the producer refuses outright (e.g. the broker is unreachable for max_block_ms),
    after flushing what was already handed over.
    """
    futures = []
    refused: BaseException | None = None
    for key, value in records:
        try:
            futures.append(producer.send(topic, key=key, value=value))
        except Exception as exc:  # noqa: BLE001 - reported as ProduceError below
            refused = exc
            break
    producer.flush()
    failed = [f for f in futures if not f.succeeded()]
    sent = len(futures) - len(failed)
    if failed or refused is not None:
        first = refused if refused is not None else failed[0].exception
        n_failed = len(failed) + (1 if refused is not None else 0)
        raise ProduceError(
            f"{n_failed} record(s) to {topic!r} were not acknowledged "
            f"({sent} were{'; sending stopped early' if refused is not None else ''}): {first!r}",
            sent=sent,
            failed=n_failed,
            cause=first,
        )
    return sent


def make_consumer(settings: KafkaSettings, group_id: str, **overrides: Any) -> Any:
    """A KafkaConsumer in `group_id`: bytes in, manual commits, earliest offsets by default.

    Pass topics=[...] to subscribe at construction; otherwise call .subscribe()/.assign().
    """
    from kafka import KafkaConsumer

    topics = overrides.pop("topics", ())
    config: dict[str, Any] = {
        **settings.client_config(),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
    }
    config.update(overrides)
    return KafkaConsumer(*topics, **config)


def make_admin(settings: KafkaSettings, **overrides: Any) -> Any:
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(**{**settings.client_config(), **overrides})


def ensure_topic(settings: KafkaSettings, topic: str, *, partitions: int, retention_hours: int, replication_factor: int = 1) -> bool:
    """Create `topic` with the given partitions and retention unless it exists.

    Returns True when it was created. An existing topic is left as is (its data is the
    point of a restart), but a partition count below the configured one is an error.
    """
    from kafka.errors import TopicAlreadyExistsError

    admin = make_admin(settings)
    try:
        try:
            admin.create_topics(
                {
                    topic: {
                        "num_partitions": partitions,
                        "replication_factor": replication_factor,
                        "configs": {"retention.ms": str(retention_hours * 3600 * 1000)},
                    }
                },
                wait_for_metadata=True,
            )
            return True
        except TopicAlreadyExistsError:
            described = admin.describe_topics([topic])
            have = len(described[0]["partitions"]) if described else 0
            if have < partitions:
                raise KafkaConfigError(f"topic {topic!r} exists with {have} partitions, fewer than topic.partitions={partitions}") from None
            admin.wait_for_topics([topic])
            return False
    finally:
        admin.close()
