"""Producer Lambda (async-invoked by the generator): write a chunk of records to MSK.

Payload: {"records": [[key, value], ...], ...} with key = session_id and value = one
JSON event, both strings (see lambdas/generator/handler.py). A payload of another
shape, or any record the brokers do not acknowledge, raises: the invocation fails, Lambda
retries it, and then sends it (with the error) to the on-failure destination (SQS) that
raises an alarm. Nothing fails silently.

Env: BOOTSTRAP_SERVERS (SASL/IAM bootstrap string), KAFKA_TOPIC, KAFKA_AUTH=iam. The
region comes from the runtime's own AWS_REGION, which we never set.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from acme_telemetry.kafka import KafkaSettings, make_producer, produce

log = logging.getLogger()
log.setLevel(logging.INFO)

_producer = None  # reused across warm invocations


class PayloadError(ValueError):
    """The invocation payload is not {"records": [[str, str], ...]}."""


def parse_records(event: Any) -> list[tuple[bytes, bytes]]:
    if not isinstance(event, dict) or not isinstance(event.get("records"), list):
        raise PayloadError("payload must be an object with a 'records' list")
    out = []
    for i, rec in enumerate(event["records"]):
        if not (isinstance(rec, list) and len(rec) == 2 and all(isinstance(x, str) for x in rec)):
            raise PayloadError(f"records[{i}] is not a [key, value] pair of strings")
        out.append((rec[0].encode(), rec[1].encode()))
    return out


def get_producer():
    global _producer
    if _producer is None:
        _producer = make_producer(KafkaSettings.from_env().with_client_id("acme-producer-lambda"))
    return _producer


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    records = parse_records(event)
    topic = os.environ["KAFKA_TOPIC"]
    sent = produce(get_producer(), topic, records) if records else 0  # raises ProduceError
    result = {"topic": topic, "produced": sent, "chunk": event.get("chunk"), "window_start": event.get("window_start")}
    log.info(json.dumps(result))
    return result
