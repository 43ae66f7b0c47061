"""A real Apache Kafka broker (KRaft, jars from Maven Central) for the whole session.

Each test uses its own topic and consumer groups, so tests stay independent while paying
the broker's start-up once. The broker also has an unsecured-JWS OAUTHBEARER listener.
"""

from __future__ import annotations

import itertools

import pytest

from acme_telemetry.kafka import KafkaSettings, ensure_topic
from acme_telemetry.local.broker import LocalBroker

_counter = itertools.count()


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    state = tmp_path_factory.mktemp("kafka-state")
    b = LocalBroker(state, port=None, oauth_listener=True, heap="384m")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def settings(broker) -> KafkaSettings:
    return KafkaSettings.local(broker.bootstrap)


@pytest.fixture
def topic(request, settings) -> str:
    name = f"it-{next(_counter)}-{request.node.name[:40]}".replace("[", "-").replace("]", "")
    ensure_topic(settings, name, partitions=3, retention_hours=1)
    return name
