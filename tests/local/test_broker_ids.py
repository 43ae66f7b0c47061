"""Kafka cluster ids must never look like a command-line option to kafka-storage."""

import uuid
from unittest import mock

from acme_telemetry.local import broker


def test_cluster_id_never_starts_with_a_dash():
    # uuid bytes 0xf8... encode to a leading '-' in URL-safe base64 (measured CI failure).
    dash_first = uuid.UUID(bytes=b"\xf8" + bytes(15))
    ok = uuid.UUID(bytes=b"\x10" + bytes(15))
    with mock.patch.object(broker.uuid, "uuid4", side_effect=[dash_first, ok]):
        cid = broker._new_cluster_id()
    assert not cid.startswith("-")
    assert len(cid) == 22


def test_cluster_ids_are_random_and_valid():
    ids = {broker._new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(not i.startswith("-") and len(i) == 22 for i in ids)
