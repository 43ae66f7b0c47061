"""The lake writer's batch path (LakeWriter._add_batch) buffers exactly what the per-record
path (_add) buffers: the same lines, event ids, error records, offsets and batch boundaries."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from acme_telemetry.kafka import KafkaSettings
from acme_telemetry.local.writer import LakeWriter
from acme_telemetry.simulator import SimConfig, iter_records


class Msg:
    def __init__(self, partition: int, offset: int, value: bytes | None, ts: int, key: bytes | None = b"k") -> None:
        self._p, self._o, self._v, self._ts, self._k = partition, offset, value, ts, key

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes | None:
        return self._v

    def key(self) -> bytes | None:
        return self._k

    def timestamp(self) -> tuple[int, int]:
        return (1, self._ts)


def _messages(n: int) -> list[Msg]:
    values = [v for _, v in iter_records(n, SimConfig(seed=3))]
    # poison: not JSON, a JSON array, a valid event spread over two lines, a tombstone
    values[5] = b"not json"
    values[17] = b"[1, 2]"
    values[40] = orjson.dumps(orjson.loads(values[40]), option=orjson.OPT_INDENT_2)
    values[41] = None  # type: ignore[call-overload]
    offsets = [0, 0, 0]
    out = []
    for i, v in enumerate(values):
        p = (i * 7) % 3
        out.append(Msg(p, 100 * p + offsets[p], v, 1_764_000_000_000 + (i * 37) % 1000))
        offsets[p] += 1
    return out


def _writer(buffer_size_mb: float) -> tuple[LakeWriter, list[Any]]:
    w = LakeWriter(
        KafkaSettings.local("127.0.0.1:1"), "/nonexistent", buffer_interval_s=60, buffer_size_mb=buffer_size_mb, track_event_ids=True
    )
    taken: list[Any] = []

    def flush_async() -> None:
        b = w._take()
        if b is not None:
            taken.append(b)

    w._flush_async = flush_async  # type: ignore[method-assign]
    return w, taken


def _summary(batches: list[Any]) -> list[tuple[Any, ...]]:
    return [(b.lines, b.ids, b.size, b.oldest_ms, b.errors, b.errors_oldest_ms, b.n_errors, b.offsets) for b in batches]


@pytest.mark.parametrize("buffer_size_mb", [0.02, 0.1, 5])
def test_batch_path_buffers_what_the_record_path_buffers(buffer_size_mb: float) -> None:
    msgs = _messages(300)
    one, one_taken = _writer(buffer_size_mb)
    for m in msgs:
        one._add(m.topic(), m.partition(), m.offset(), m.value(), m.key(), m.timestamp()[1])
        if one._size >= one.buffer_bytes:
            one._flush_async()
    one._flush_async()

    many, many_taken = _writer(buffer_size_mb)
    for i in range(0, len(msgs), 64):  # consume() batches of 64
        many._add_batch(msgs[i : i + 64])  # type: ignore[arg-type]
    many._flush_async()

    assert len(one_taken) > (1 if buffer_size_mb < 1 else 0)
    assert _summary(many_taken) == _summary(one_taken)
    assert many.stats.records_in == one.stats.records_in == len(msgs)
    assert many._first_offset == one._first_offset == {0: 0, 1: 100, 2: 200}
    errors = sum(b.n_errors for b in many_taken)
    assert errors == 3  # the re-encoded two-line event is valid; None, text and an array are not
