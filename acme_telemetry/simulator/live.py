"""The simulator on the wall clock: live streams that start now and resume without replay.

Sessions are derived from (seed, session, time) (engine.py), so a stream that starts at
time T holds exactly the events with event time >= T of the one endless stream of the
seed, and every event_id is the same one it has in that stream. A restart that starts at
the current time, or just after the last event it produced (`resume_from`), therefore
produces only new events: no replay, no duplicate event_id in the lake.

- `iter_since(config, since_ms)`: every event with ts >= since_ms, in time order, endless.
- `iter_live(config, since_ms, ...)`: the same, released in batches as the wall clock
  reaches their event time (what `local` produces by default).
- `resume_from(now_ms, last_produced_ms)`: where a restarted run starts.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from itertools import chain

from acme_telemetry.simulator.config import SimConfig
from acme_telemetry.simulator.engine import _chunks
from acme_telemetry.simulator.truth import GroundTruth
from acme_telemetry.times import ms_of_iso

_TS_KEY = b'"event_timestamp":"'


def wall_ms() -> int:
    """The wall clock as UTC epoch milliseconds."""
    return time.time_ns() // 1_000_000


def resume_from(now_ms: int, last_produced_ms: int | None) -> int:
    """Where a (re)started live run begins: now, or just after the last event a previous run
    produced if that is later (its clock ran ahead, or the restart was within a millisecond)."""
    return now_ms if last_produced_ms is None else max(now_ms, last_produced_ms + 1)


def event_ms(value: bytes) -> int:
    """The event time of one simulator JSON event (its event_timestamp), in epoch ms."""
    i = value.index(_TS_KEY) + len(_TS_KEY)
    ts = ms_of_iso(value[i : value.index(b'"', i)].decode())
    if ts is None:
        raise ValueError("a simulator event without a valid event_timestamp")
    return ts


def iter_since(config: SimConfig, since_ms: int, truth: GroundTruth | None = None) -> Iterator[tuple[bytes, bytes]]:
    """(session_id, JSON event) for every event with ts >= since_ms, in time order, without end."""
    return chain.from_iterable(_chunks(config, since_ms, math.inf, None, truth))


def iter_live(
    config: SimConfig,
    since_ms: int | None = None,
    *,
    now_ms: Callable[[], int] = wall_ms,
    stop: threading.Event | None = None,
    max_batch: int = 2000,
    tick_s: float = 0.05,
) -> Iterator[list[tuple[bytes, bytes, int]]]:
    """Batches of (session_id, JSON event, ts ms) whose event time the clock has reached,
    from since_ms (default: now). While the next event is not due it waits (on `stop`, if
    given) in steps of at most tick_s and yields an empty batch after each, so the caller
    keeps control. Ends when `stop` is set."""
    stop = stop or threading.Event()
    start = now_ms() if since_ms is None else since_ms
    batch: list[tuple[bytes, bytes, int]] = []
    for key, value in iter_since(config, start):
        ts = event_ms(value)
        while ts > now_ms():
            if batch:
                yield batch
                batch = []
                continue
            if stop.wait(min(tick_s, max(0.0, (ts - now_ms()) / 1000))):
                return
            yield []
        batch.append((key, value, ts))
        if len(batch) >= max_batch:
            yield batch
            batch = []
        if stop.is_set():
            return
