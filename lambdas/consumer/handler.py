"""KPI consumer Lambda (MSK event source mapping): one broadcast per batching window.

Input: the MSK event (eventSource "aws:kafka"), read through Powertools' `KafkaEvent`:
records grouped by "topic-partition", each with base64 `key`/`value`, `timestamp` (ms),
`partition`, `offset`.

Each value is parsed as one JSON event. A record that is not (bad base64, bad UTF-8, bad
JSON, not an object) is counted and logged with its reason and position, and skipped:
it never fails the batch. The events feed acme_telemetry.kpis.compute for the window the
batch spans; the snapshot goes out as a `kpi` message, and notable events (errors, long
stalls) as a PII-free `feed` message (acme_telemetry.protocol refuses PII and frames over
32 KB). Every connection in the DynamoDB table receives both; a GoneException (410)
deletes that connection. A failure to reach DynamoDB fails the batch, so the event source
mapping retries it and then sends it to its on-failure destination.

Env (set by the dashboard stack): CONNECTIONS_TABLE, WEBSOCKET_ENDPOINT.
Metrics (EMF, namespace POWERTOOLS_METRICS_NAMESPACE): RecordsConsumed, MalformedRecords,
Broadcasts (messages posted), GoneConnections, FailedPosts.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import KafkaEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from acme_telemetry import kpis, protocol, times
from lambdas._env import require

logger = Logger()
metrics = Metrics()
dynamodb = boto3.resource("dynamodb")  # module scope: reused across warm invocations

LONG_STALL_MS = 2000


@cache
def management_api(endpoint: str) -> Any:
    """The API Gateway management client for one endpoint, created once per container."""
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)


def parse_records(event: KafkaEvent) -> tuple[list[dict[str, Any]], list[int], list[dict[str, Any]]]:
    """(events, kafka timestamps in ms, malformed [{position, reason}])."""
    events: list[dict[str, Any]] = []
    stamps: list[int] = []
    malformed: list[dict[str, Any]] = []
    for rec in event.records:
        where = f"{rec.get('topic')}-{rec.get('partition')}@{rec.get('offset')}"
        try:
            if not isinstance(rec.get("value"), str):
                raise ValueError("record has no base64 'value'")
            # strict: KafkaEvent's decoded_value skips non-base64 characters instead
            value = orjson.loads(base64.b64decode(rec.value, validate=True))
            if not isinstance(value, dict):
                raise ValueError(f"value is a JSON {type(value).__name__}, not an object")
        except (ValueError, binascii.Error, orjson.JSONDecodeError) as exc:
            malformed.append({"position": where, "reason": str(exc)[:200]})
            continue
        events.append(value)
        if isinstance(rec.get("timestamp"), int):
            stamps.append(rec.timestamp)
    return events, stamps, malformed


def window_of(stamps: list[int], events: list[dict[str, Any]]) -> tuple[datetime, datetime]:
    """The span the batch covers: [first, last] event_timestamp (kpis counts events inside
    the window, by event time); Kafka record timestamps if no event has a valid one."""
    ms = [t for t in (times.ms_of_iso(e.get("event_timestamp")) for e in events) if t is not None] or stamps
    if ms:
        return times.from_ms(min(ms)), times.from_ms(max(ms) + 1)
    now = datetime.now(UTC)
    return now, now


def notable(e: dict[str, Any]) -> bool:
    return bool(e.get("fatal")) or e.get("error_code") is not None or (e.get("rebuffer_duration_ms") or 0) >= LONG_STALL_MS


def build_messages(events: list[dict[str, Any]], start: datetime, end: datetime) -> list[bytes]:
    snapshot = kpis.compute(events, start, end)
    messages = [protocol.encode(protocol.kpi_message(snapshot))]
    feed = [e for e in events if notable(e)]
    if feed:
        limit = 50
        while True:
            try:
                messages.append(protocol.encode(protocol.feed_message(feed, limit=limit)))
                break
            except protocol.ProtocolError:
                if limit <= 1:
                    raise
                limit //= 2
    return messages


def connection_ids(table: Any) -> Iterable[str]:
    kwargs: dict[str, Any] = {"ProjectionExpression": "connectionId"}
    while True:
        page = table.scan(**kwargs)
        for item in page.get("Items", []):
            yield item["connectionId"]
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def broadcast(messages: list[bytes], table: Any, api: Any) -> dict[str, int]:
    stats = {"connections": 0, "sent": 0, "gone": 0, "failed": 0}
    for cid in list(connection_ids(table)):
        stats["connections"] += 1
        for data in messages:
            try:
                api.post_to_connection(ConnectionId=cid, Data=data)
                stats["sent"] += 1
            except api.exceptions.GoneException:
                table.delete_item(Key={"connectionId": cid})
                stats["gone"] += 1
                break
            except Exception as exc:  # noqa: BLE001 - one bad client must not stop the rest
                logger.warning("post to a connection failed", extra={"connection": cid, "error": repr(exc)[:200]})
                stats["failed"] += 1
                break
    return stats


def count(name: str, value: int) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=KafkaEvent)
def handler(event: KafkaEvent, context: LambdaContext) -> dict[str, Any]:
    table_name, endpoint = require("CONNECTIONS_TABLE"), require("WEBSOCKET_ENDPOINT")
    events, stamps, malformed = parse_records(event)
    for bad in malformed:
        logger.warning("malformed record skipped", extra={"malformed_record": bad})
    result: dict[str, Any] = {"records": len(events) + len(malformed), "events": len(events), "malformed": len(malformed)}
    count("RecordsConsumed", result["records"])
    count("MalformedRecords", len(malformed))
    if not events:
        logger.info("batch had no events", extra=result)
        return result
    start, end = window_of(stamps, events)
    messages = build_messages(events, start, end)
    stats = broadcast(messages, dynamodb.Table(table_name), management_api(endpoint))
    count("Broadcasts", stats["sent"])
    count("GoneConnections", stats["gone"])
    count("FailedPosts", stats["failed"])
    result.update(stats)
    logger.info("batch broadcast", extra=result)
    return result
