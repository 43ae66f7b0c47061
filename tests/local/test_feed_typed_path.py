"""The feed's hot path (KpiAggregator.add_values: one msgspec decode of the KPI fields, then
WindowState.add_checked) against the reference path it replaces (orjson.loads, then add() of
the dict), on the simulator's records and on records broken in every way a producer can."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acme_telemetry import kpis, protocol
from acme_telemetry.local.feed import KpiAggregator
from acme_telemetry.simulator.config import SimConfig
from acme_telemetry.simulator.engine import iter_records


def _records(n: int, viewers: int, seed: int = 3) -> list[bytes]:
    return [v for _, v in iter_records(n, SimConfig(seed=seed, concurrent_viewers=viewers))]


def _both(values: list[bytes | None], partitions: list[int]) -> tuple[KpiAggregator, list[bytes], KpiAggregator, list[bytes]]:
    fast_out: list[bytes] = []
    ref_out: list[bytes] = []
    fast = KpiAggregator(lambda d, k: fast_out.append(d), window_s=5.0, now=lambda: 0.0)
    ref = KpiAggregator(lambda d, k: ref_out.append(d), window_s=5.0, now=lambda: 0.0)
    for i in range(0, len(values), 700):
        fast.add_values(values[i : i + 700], partitions[i : i + 700])
        for value, partition in zip(values[i : i + 700], partitions[i : i + 700], strict=True):
            ref.add_value(value, partition)  # orjson.loads, then add() of the dict
        fast.tick()
        ref.tick()
    fast.close_all()
    ref.close_all()
    return fast, fast_out, ref, ref_out


def _same(fast: KpiAggregator, fast_out: list[bytes], ref: KpiAggregator, ref_out: list[bytes]) -> None:
    assert [orjson.loads(d) for d in fast_out] == [orjson.loads(d) for d in ref_out]
    assert (fast.events, fast.late, fast.bad, fast.windows_emitted) == (ref.events, ref.late, ref.bad, ref.windows_emitted)
    assert list(fast.notable) == list(ref.notable)
    assert fast.partition_max == ref.partition_max


def test_simulator_records_give_the_same_kpi_messages_as_the_dict_path():
    values = _records(30_000, viewers=20_000)
    fast, fast_out, ref, ref_out = _both(list(values), [i % 3 for i in range(len(values))])
    _same(fast, fast_out, ref, ref_out)
    assert fast.events == 30_000 and fast.notable, "the sample has notable events"
    states = [kpis.WindowState.from_wire(m) for m in map(orjson.loads, fast_out) if m["type"] == "kpi"]
    assert sum(s.overall.events for s in states) == 30_000


_BREAKS = st.sampled_from(
    [
        ("played_ms", -5),
        ("played_ms", 1.5),
        ("played_ms", True),
        ("stalled_ms", "7"),
        ("played_bitrate_kbps", 1234),  # not an ABR rung
        ("played_bitrate_kbps", None),
        ("video_started", None),
        ("video_started", "yes"),
        ("device_type", 3),
        ("cdn", 7),
        ("isp", None),
        ("fatal", "true"),
        ("fatal", True),  # on an event that is not an error
        ("event_type", "error"),
        ("event_type", "first_frame"),
        ("startup_time_ms", 12.5),
        ("event_timestamp", "2026-11-26T15:00:00+01:00"),
        ("event_timestamp", "yesterday"),
        ("session_id", None),
        ("event_type", 5),
        ("state", None),
        # str values the simulator never draws: refused by the typed decode until learned
        ("cdn", "edgio"),
        ("event_type", "ad_start"),
        ("state", "ZZ"),
        ("device_type", "console"),
        ("isp", "NewNet"),
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    breaks=st.lists(st.tuples(st.integers(0, 1999), _BREAKS), max_size=25),
    drops=st.lists(st.tuples(st.integers(0, 1999), st.sampled_from(["played_ms", "cdn", "event_type", "video_started"])), max_size=10),
    junk=st.lists(st.tuples(st.integers(0, 1999), st.sampled_from([b"not json", b"[1,2]", b"null", b'"x"', None])), max_size=5),
)
def test_broken_records_are_counted_exactly_as_the_dict_path_counts_them(breaks, drops, junk):
    values: list[bytes | None] = list(_RECORDS)
    for i, (name, bad) in breaks:
        event = orjson.loads(values[i])  # type: ignore[arg-type]
        event[name] = bad
        values[i] = orjson.dumps(event)
    for i, name in drops:
        event = orjson.loads(values[i])  # type: ignore[arg-type]
        event.pop(name, None)
        values[i] = orjson.dumps(event)
    for i, raw in junk:
        values[i] = raw
    _same(*_both(values, [i % 2 for i in range(len(values))]))


_RECORDS = _records(2000, viewers=300, seed=9)


def _dict_path_calls(agg: KpiAggregator) -> list[bytes | None]:
    """Record every value that takes the dict path in `agg`."""
    calls: list[bytes | None] = []
    add_value = agg.add_value

    def counted(value: bytes | None, partition: object = 0) -> dict[str, object] | None:
        calls.append(value)
        return add_value(value, partition)

    agg.add_value = counted  # type: ignore[method-assign]
    return calls


def _with(values: list[bytes | None], every: int, **fields: object) -> list[bytes | None]:
    out = list(values)
    for i in range(0, len(out), every):
        event = orjson.loads(out[i])  # type: ignore[arg-type]
        event.update(fields)
        out[i] = orjson.dumps(event)
    return out


def test_a_value_not_met_before_takes_the_dict_path_once_then_the_typed_one():
    fast = KpiAggregator(lambda d, k: None, window_s=5.0, now=lambda: 0.0)
    fast.add_values(list(_RECORDS), [0] * len(_RECORDS))  # learns the simulator's vocabulary
    calls = _dict_path_calls(fast)
    later = _records(600, viewers=300, seed=9)[-300:]
    fast.add_values(_with(list(later), 6, cdn="edgio"), [0] * len(later))
    assert len(calls) == 1 and orjson.loads(calls[0])["cdn"] == "edgio"  # type: ignore[arg-type]
    assert "edgio" in fast._decoder.vocabulary["cdn"]
    # and the counts are the dict path's
    values = list(_RECORDS) + _with(list(later), 6, cdn="edgio")
    _same(*_both(values, [0] * len(values)))


def test_a_dimension_past_its_vocabulary_cap_decodes_as_a_plain_str(monkeypatch):
    from acme_telemetry.local import feed

    monkeypatch.setattr(feed, "VOCABULARY_CAP", 5)
    values = list(_RECORDS)
    for i in range(0, 2000, 50):  # 40 distinct CDNs
        event = orjson.loads(values[i])  # type: ignore[arg-type]
        event["cdn"] = f"cdn-{i}"
        values[i] = orjson.dumps(event)
    fast = KpiAggregator(lambda d, k: None, window_s=5.0, now=lambda: 0.0)
    fast.add_values(list(_RECORDS), [0] * len(_RECORDS))  # learns the simulator's vocabulary
    assert len(fast._decoder.vocabulary["cdn"]) == 4  # the three CDNs and the seed ""
    calls = _dict_path_calls(fast)
    fast.add_values(values, [0] * len(values))
    # two new CDNs fill the vocabulary past its cap; the other 38 decode as plain str
    assert [orjson.loads(v)["cdn"] for v in calls] == ["cdn-0", "cdn-50"]  # type: ignore[arg-type]
    assert len(fast._decoder.vocabulary["cdn"]) == 6
    _same(*_both(values, [0] * len(values)))


def test_encode_refuses_a_pii_key_anywhere_and_names_it():
    message = protocol.kpi_message({"state": {"by": {"isp": {"x": {"n": 1, "customer_id": "cust_1"}}}}})
    try:
        protocol.encode(message)
    except protocol.ProtocolError as exc:
        assert "state.by.isp.x.customer_id" in str(exc)
    else:
        raise AssertionError("a PII key was sent")
    # the name as a value, or inside a longer key, is not a PII key
    data = protocol.encode(protocol.kpi_message({"note": "customer_id", "x_customer_id": 1, "s": '"customer_id":'}))
    assert orjson.loads(data)["note"] == "customer_id"
