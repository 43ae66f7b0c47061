"""Producer Lambda (async-invoked by the generator): write a chunk of records to MSK.

Payload: {"records": [[key, value], ...], ...} with key = session_id and value = one
JSON event, both strings (see lambdas/generator/handler.py). A payload of another
shape, or any record the brokers do not acknowledge, raises: the invocation fails, Lambda
retries it, and then sends it (with the error) to the on-failure destination (SQS) that
raises an alarm. Nothing fails silently.

The payload is our own contract, not an AWS event, so there is no Powertools event class
for it: parse_records is its typed reader.

Env (set by the data-gen stack): BOOTSTRAP_SERVERS (SASL/IAM bootstrap string),
KAFKA_TOPIC, KAFKA_AUTH=iam. The region comes from the runtime's own AWS_REGION, which we
never set. The client is kafka-python with MSK IAM (acme_telemetry.kafka).
Metrics (EMF): RecordsProduced, RecordsFailed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from acme_telemetry.kafka import KafkaSettings, ProduceError, make_producer, produce
from lambdas._env import require

logger = Logger()
metrics = Metrics()

_producer: Any = None  # created on first use (it connects), reused across warm invocations


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


def get_producer() -> Any:
    global _producer
    if _producer is None:
        _producer = make_producer(KafkaSettings.from_env().with_client_id("acme-producer-lambda"))
    return _producer


def count(name: str, value: int) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    records = parse_records(event)
    topic = require("KAFKA_TOPIC")
    try:
        sent = produce(get_producer(), topic, records) if records else 0
    except ProduceError as exc:
        count("RecordsProduced", exc.sent)
        count("RecordsFailed", exc.failed)
        raise
    count("RecordsProduced", sent)
    count("RecordsFailed", 0)
    result = {"topic": topic, "produced": sent, "chunk": event.get("chunk"), "window_start": event.get("window_start")}
    logger.info("chunk produced", extra=result)
    return result
