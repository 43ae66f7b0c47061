"""Generator Lambda (EventBridge schedule): one schedule period of simulated telemetry,
handed to the producer Lambda in async invokes that each stay under the 1 MB limit.

Window: the schedule period ending at the event's `time` (floored to the minute), so
consecutive invocations cover consecutive windows and sessions stay coherent
(acme_telemetry.simulator.iter_window).

Producer payload (documented contract, see lambdas/producer/handler.py):
    {"window_start": ISO, "window_end": ISO, "chunk": i, "records": [[key, value], ...]}
where key is the session_id and value one JSON event, both UTF-8 strings.

Env (all required, set by the data-gen stack from data_stack.config): PRODUCER_FUNCTION_NAME,
SCHEDULE_MINUTES, SEED, CONCURRENT_VIEWERS, HEARTBEAT_INTERVAL_S, MAX_ASYNC_PAYLOAD_BYTES.
Optional: INCIDENTS, incidents to rehearse (acme_telemetry.simulator.incidents), separated
by ';', e.g. "cdn=fastly,at=2026-12-01T07:00:00Z,for=10m,kind=outage"; empty or unset: none.
Their `at=` is an absolute UTC time: every invocation must see the same incidents, or
consecutive windows would not concatenate to one coherent stream.
Metrics (EMF): EventsGenerated, ProducerInvocations.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from acme_telemetry import times
from acme_telemetry.simulator import Incident, IncidentError, SimConfig, iter_window, parse_incident
from lambdas._env import require

logger = Logger()
metrics = Metrics()
lambda_client = boto3.client("lambda")  # module scope: reused across warm invocations

_SEP = (",", ":")


def window_for(event_time: str, minutes: int) -> tuple[datetime, datetime]:
    """[end - minutes, end) with end = the event time floored to the minute, UTC."""
    end = times.parse_utc(event_time, "the EventBridge event's time").replace(second=0, microsecond=0)
    return end - timedelta(minutes=minutes), end


def incidents(text: str) -> tuple[Incident, ...]:
    """INCIDENTS: ';'-separated incident specs with absolute `at=` times (module doc)."""
    out = []
    for spec in (s.strip() for s in text.split(";")):
        if not spec:
            continue
        at = next((kv.split("=", 1)[1] for kv in spec.split(",") if kv.strip().startswith("at=")), None)
        if at is None or at.strip().startswith("+"):
            raise IncidentError(f"INCIDENTS: {spec!r} needs an absolute at= time (such as at=2026-12-01T07:00:00Z) on the Lambda")
        out.append(parse_incident(spec, 0))
    return tuple(out)


def sim_config() -> SimConfig:
    """The simulator settings the stack passed in (data_stack.config's generator profile)."""
    return SimConfig(
        seed=require("SEED", int),
        concurrent_viewers=require("CONCURRENT_VIEWERS", int),
        heartbeat_interval_s=require("HEARTBEAT_INTERVAL_S", float),
        incidents=incidents(os.environ.get("INCIDENTS", "")),
    )


def chunk_payloads(records: Iterable[tuple[bytes, bytes]], max_bytes: int, header: dict[str, Any]) -> Iterator[bytes]:
    """JSON payloads {**header, "chunk": i, "records": [[k, v], ...]}, each <= max_bytes."""
    chunk_no = 0

    def envelope(n: int) -> bytes:
        return json.dumps({**header, "chunk": n, "records": []}, separators=_SEP).encode()

    base = len(envelope(0)) + 8  # room for a chunk number of up to 8 more digits
    parts: list[bytes] = []
    size = base
    for key, value in records:
        part = json.dumps([key.decode(), value.decode()], separators=_SEP).encode()
        if base + len(part) > max_bytes:
            raise ValueError(f"one record is {len(part)} bytes, over the {max_bytes}-byte payload limit")
        if parts and size + len(part) + 1 > max_bytes:
            yield _join(envelope(chunk_no), parts)
            chunk_no += 1
            parts, size = [], base
        parts.append(part)
        size += len(part) + (1 if len(parts) > 1 else 0)
    if parts:
        yield _join(envelope(chunk_no), parts)


def _join(envelope: bytes, parts: list[bytes]) -> bytes:
    assert envelope.endswith(b"[]}")
    return envelope[:-2] + b",".join(parts) + b"]}"


@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    function = require("PRODUCER_FUNCTION_NAME")
    minutes = require("SCHEDULE_MINUTES", int)
    max_bytes = require("MAX_ASYNC_PAYLOAD_BYTES", int)
    config = sim_config()
    # A scheduled event always has `time`; a hand-made test invoke may not.
    start, end = window_for(event.get("time") or datetime.now(UTC).isoformat(), minutes)

    header = {"window_start": times.iso_z(start), "window_end": times.iso_z(end)}
    invocations = 0
    counted = _Counter(iter_window(config, start, end))
    try:
        for payload in chunk_payloads(counted, max_bytes, header):
            resp = lambda_client.invoke(FunctionName=function, InvocationType="Event", Payload=payload)
            if resp.get("StatusCode") != 202:
                raise RuntimeError(f"async invoke of {function} returned {resp.get('StatusCode')}")
            invocations += 1
    finally:
        metrics.add_metric(name="EventsGenerated", unit=MetricUnit.Count, value=counted.n)
        metrics.add_metric(name="ProducerInvocations", unit=MetricUnit.Count, value=invocations)
    summary = {**header, "records": counted.n, "invocations": invocations}
    logger.info("window handed to the producer", extra=summary)
    return summary


class _Counter:
    def __init__(self, it: Iterable[tuple[bytes, bytes]]) -> None:
        self._it = iter(it)
        self.n = 0

    def __iter__(self) -> _Counter:
        return self

    def __next__(self) -> tuple[bytes, bytes]:
        item = next(self._it)
        self.n += 1
        return item
