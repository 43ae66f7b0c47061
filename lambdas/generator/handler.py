"""Generator Lambda (EventBridge schedule): one schedule period of simulated telemetry,
handed to the producer Lambda in async invokes that each stay under the 1 MB limit.

Window: the schedule period ending at the event's `time` (floored to the minute), so
consecutive invocations cover consecutive windows and sessions stay coherent
(acme_telemetry.simulator.iter_window).

Producer payload (documented contract, see lambdas/producer/handler.py):
    {"window_start": ISO, "window_end": ISO, "chunk": i, "records": [[key, value], ...]}
where key is the session_id and value one JSON event, both UTF-8 strings.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

import boto3

from acme_telemetry.simulator import SimConfig, iter_window

log = logging.getLogger()
log.setLevel(logging.INFO)

_SEP = (",", ":")


def window_for(event_time: str, minutes: int) -> tuple[datetime, datetime]:
    """[end - minutes, end) with end = the event time floored to the minute, UTC."""
    end = datetime.fromisoformat(event_time.replace("Z", "+00:00")).astimezone(timezone.utc)
    end = end.replace(second=0, microsecond=0)
    return end - timedelta(minutes=minutes), end


def chunk_payloads(
    records: Iterable[tuple[bytes, bytes]], max_bytes: int, header: dict[str, Any]
) -> Iterator[bytes]:
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


def handler(event: dict[str, Any], context: Any = None, *, lambda_client: Any = None) -> dict[str, Any]:
    minutes = int(os.environ.get("SCHEDULE_MINUTES", "5"))
    event_time = event.get("time") or datetime.now(timezone.utc).isoformat()
    start, end = window_for(event_time, minutes)
    config = SimConfig(
        seed=int(os.environ.get("SEED", "42")),
        concurrent_viewers=int(os.environ.get("CONCURRENT_VIEWERS", "200")),
        heartbeat_interval_s=float(os.environ.get("HEARTBEAT_INTERVAL_S", "10")),
    )
    max_bytes = int(os.environ.get("MAX_ASYNC_PAYLOAD_BYTES", "900000"))
    function = os.environ["PRODUCER_FUNCTION_NAME"]
    client = lambda_client or boto3.client("lambda")

    header = {"window_start": start.isoformat().replace("+00:00", "Z"), "window_end": end.isoformat().replace("+00:00", "Z")}
    invocations = records = 0
    counted = _Counter(iter_window(config, start, end))
    for payload in chunk_payloads(counted, max_bytes, header):
        resp = client.invoke(FunctionName=function, InvocationType="Event", Payload=payload)
        if resp.get("StatusCode") != 202:
            raise RuntimeError(f"async invoke of {function} returned {resp.get('StatusCode')}")
        invocations += 1
    records = counted.n
    summary = {**header, "records": records, "invocations": invocations}
    log.info(json.dumps(summary))
    return summary


class _Counter:
    def __init__(self, it: Iterable[tuple[bytes, bytes]]) -> None:
        self._it = iter(it)
        self.n = 0

    def __iter__(self) -> "_Counter":
        return self

    def __next__(self) -> tuple[bytes, bytes]:
        item = next(self._it)
        self.n += 1
        return item
