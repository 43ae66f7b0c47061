"""KPI consumer Lambda (MSK event source mapping): the batch's partial KPI states, fanned out.

Input: the MSK event (eventSource "aws:kafka"), read through Powertools' `KafkaEvent`:
records grouped by "topic-partition", each with base64 `key`/`value`, `timestamp` (ms),
`partition`, `offset`.

Each value is parsed as one JSON event. A record that is not (bad base64, bad UTF-8, bad
JSON, not an object) is counted and logged with its reason and position, and skipped: it
never fails the batch. The events are cut into the same epoch-aligned KPI windows as the
local feed (KPI_WINDOW_S), and each window's events become a mergeable partial state
(acme_telemetry.kpis.split_by_window), sent as `kpi` messages with a `part` id computed
from the batch's (partition, offset) ranges (kpis.part_id). The mapping may run concurrent
invocations over subsets of partitions and cut windows across batches: the page merges
the parts of a window key, and a retried batch has the same part id, so it replaces
instead of counting twice (docs/protocol.md, "Where partial windows merge"). Notable
events (kpis.is_notable) go out as a PII-free `feed` message.

Fan-out: every connection in the DynamoDB table receives the messages, in order, from a
bounded pool of BROADCAST_CONCURRENCY threads sharing one API Gateway management client
(module scope, reused across warm invocations, its connection pool as large as the pool).
Connections that answer GoneException (410) are deleted together at the end, in
BatchWriteItem requests of 25. A failure to reach DynamoDB fails the batch, so the event
source mapping retries it and then sends it to its on-failure destination.

Env (set by the dashboard stack): CONNECTIONS_TABLE, WEBSOCKET_ENDPOINT, KPI_WINDOW_S,
HEARTBEAT_INTERVAL_S. Metrics (EMF, namespace POWERTOOLS_METRICS_NAMESPACE):
RecordsConsumed, MalformedRecords, Broadcasts (messages posted), GoneConnections,
FailedPosts.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import boto3
import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import KafkaEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from acme_telemetry import kpis, protocol
from lambdas._env import require

logger = Logger()
metrics = Metrics()
dynamodb = boto3.resource("dynamodb")  # module scope: reused across warm invocations

BROADCAST_CONCURRENCY = 32  # PostToConnection calls in flight (each ~15 ms): 1,000 connections in well under 1 s
FEED_LIMIT = 50


@cache
def management_api(endpoint: str) -> Any:
    """The API Gateway management client for one endpoint, created once per container and
    shared by the broadcast threads (boto3 clients are thread-safe), with one pooled HTTP
    connection per thread."""
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint,
        config=Config(max_pool_connections=BROADCAST_CONCURRENCY, retries={"max_attempts": 2, "mode": "standard"}),
    )


def parse_records(event: KafkaEvent) -> tuple[list[dict[str, Any]], list[tuple[str, int, int]], list[dict[str, Any]]]:
    """(events, the (topic-partition, first offset, last offset) ranges of the records read,
    malformed [{position, reason}])."""
    events: list[dict[str, Any]] = []
    malformed: list[dict[str, Any]] = []
    ranges: dict[str, list[int]] = {}
    for rec in event.records:
        where = f"{rec.get('topic')}-{rec.get('partition')}@{rec.get('offset')}"
        offset = rec.get("offset")
        if isinstance(offset, int):
            r = ranges.setdefault(f"{rec.get('topic')}-{rec.get('partition')}", [offset, offset])
            r[0], r[1] = min(r[0], offset), max(r[1], offset)
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
    return events, [(tp, a, b) for tp, (a, b) in ranges.items()], malformed


def build_messages(events: list[dict[str, Any]], part: str, window_ms: int, heartbeat_ms: int) -> tuple[list[bytes], int]:
    """The batch's `kpi` frames (a partial state per window it touches, all with `part`)
    and its `feed` message; and the number of events the KPIs rejected."""
    states, rejected = kpis.split_by_window(events, window_ms, heartbeat_ms)
    messages = [f for start in sorted(states) for f in protocol.kpi_frames(states[start], part)]
    feed = [e for e in events if kpis.is_notable(e)]
    if feed:
        limit = FEED_LIMIT
        while True:
            try:
                messages.append(protocol.encode(protocol.feed_message(feed, limit=limit)))
                break
            except protocol.ProtocolError:
                if limit <= 1:
                    raise
                limit //= 2
    return messages, rejected


def connection_ids(table: Any) -> Iterable[str]:
    kwargs: dict[str, Any] = {"ProjectionExpression": "connectionId"}
    while True:
        page = table.scan(**kwargs)
        for item in page.get("Items", []):
            yield item["connectionId"]
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _send_all(api: Any, cid: str, messages: list[bytes]) -> tuple[int, str | None]:
    """Post the messages to one connection, in order: (sent, None | "gone" | "failed")."""
    sent = 0
    for data in messages:
        try:
            api.post_to_connection(ConnectionId=cid, Data=data)
            sent += 1
        except api.exceptions.GoneException:
            return sent, "gone"
        except Exception as exc:  # noqa: BLE001 - one bad client must not stop the rest
            logger.warning("post to a connection failed", extra={"connection": cid, "error": repr(exc)[:200]})
            return sent, "failed"
    return sent, None


def broadcast(messages: list[bytes], table: Any, api: Any, concurrency: int = BROADCAST_CONCURRENCY) -> dict[str, int]:
    """Every connection gets the messages, `concurrency` connections at a time; the gone
    ones are deleted together afterwards (BatchWriteItem, 25 a request)."""
    stats = {"connections": 0, "sent": 0, "gone": 0, "failed": 0}
    cids = list(connection_ids(table))
    stats["connections"] = len(cids)
    if not cids or not messages:
        return stats
    gone: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(cids)))) as pool:
        for cid, (sent, outcome) in zip(cids, pool.map(lambda c: _send_all(api, c, messages), cids), strict=True):
            stats["sent"] += sent
            if outcome == "gone":
                gone.append(cid)
            elif outcome == "failed":
                stats["failed"] += 1
    if gone:
        with table.batch_writer() as batch:
            for cid in gone:
                batch.delete_item(Key={"connectionId": cid})
        stats["gone"] = len(gone)
    return stats


def count(name: str, value: int) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=KafkaEvent)
def handler(event: KafkaEvent, context: LambdaContext) -> dict[str, Any]:
    table_name, endpoint = require("CONNECTIONS_TABLE"), require("WEBSOCKET_ENDPOINT")
    window_ms = int(round(require("KPI_WINDOW_S", float) * 1000))
    heartbeat_ms = int(round(require("HEARTBEAT_INTERVAL_S", float) * 1000))
    events, ranges, malformed = parse_records(event)
    for bad in malformed:
        logger.warning("malformed record skipped", extra={"malformed_record": bad})
    result: dict[str, Any] = {"records": len(events) + len(malformed), "events": len(events), "malformed": len(malformed)}
    count("RecordsConsumed", result["records"])
    count("MalformedRecords", len(malformed))
    if not events:
        logger.info("batch had no events", extra=result)
        return result
    part = kpis.part_id(ranges)
    messages, rejected = build_messages(events, part, window_ms, heartbeat_ms)
    result.update(part=part, rejected=rejected)
    stats = broadcast(messages, dynamodb.Table(table_name), management_api(endpoint))
    count("Broadcasts", stats["sent"])
    count("GoneConnections", stats["gone"])
    count("FailedPosts", stats["failed"])
    result.update(stats)
    logger.info("batch broadcast", extra=result)
    return result
