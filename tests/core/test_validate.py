"""The validator: each rule fires on a broken event, lake folders tolerate exact duplicates only."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from acme_telemetry.simulator import SimConfig, iter_records
from acme_telemetry.times import parse_iso_ms
from acme_telemetry.validate import validate_events, validate_lines, validate_paths


@pytest.fixture(scope="module")
def good():
    """A small clean stream and the events of its longest session, in order."""
    events = [orjson.loads(v) for _, v in iter_records(4000, SimConfig(seed=2))]
    counts: dict = {}
    for e in events:
        counts[e["session_id"]] = counts.get(e["session_id"], 0) + 1
    sid = max(counts, key=counts.get)
    return events, [e for e in events if e["session_id"] == sid]


def _rules(report):
    return {v.rule for v in report.violations}


def test_clean_stream_passes(good):
    events, _ = good
    r = validate_events(events)
    assert r.ok and r.events == 4000


def _broken(session, i, **changes):
    evs = [dict(e) for e in session]
    evs[i].update(changes)
    return evs


@pytest.mark.parametrize(
    "change, rule",
    [
        ({"bandwidth_mbps": "fast"}, "type"),
        ({"watch_duration_seconds": 2**31}, "type"),
        ({"fatal": None}, "type"),
        ({"player_state": "dancing"}, "enum"),
        ({"device_os": "iOS", "device_type": "tv"}, "device-os"),
        ({"bitrate_kbps": 3000, "quality": "SD"}, "quality-bitrate"),
        ({"bitrate_kbps": 16800, "quality": "4K", "device_type": "mobile", "device_os": "iOS"}, "uhd-device"),
        ({"city": "Unknown"}, "geo"),
        ({"isp": "Starlink", "connection_type": "fiber"}, "isp-connection"),
        ({"completion_percentage": 99.0}, "completion"),
        ({"event_timestamp": "2026-11-26 15:00:00"}, "timestamp"),
        ({"event_id": "not-a-uuid"}, "uuid"),
        ({"startup_time_ms": 5}, "event-fields"),
        ({"app_version": "0.0.1"}, "session-fixed"),
        ({"title_id": "title_99999"}, "session-fixed"),
    ],
)
def test_event_and_session_rules_fire(good, change, rule):
    _, session = good
    evs = _broken(session, 5, **change)
    report = validate_events(evs)
    assert rule in _rules(report), [str(v) for v in report.violations]
    assert all(v.line == 6 or v.rule in ("session-fixed",) for v in report.violations if v.rule == rule)


def test_order_rules_fire(good):
    _, s = good
    assert "seq" in _rules(validate_events(s[:5] + s[6:]))  # a gap
    assert "timestamp-order" in _rules(validate_events(_broken(s, 5, event_timestamp=s[4]["event_timestamp"])))
    back = _broken(s, 5, position_seconds=s[4]["position_seconds"] - 30)
    back[5]["completion_percentage"] = round(100 * back[5]["position_seconds"] / back[5]["title_duration_seconds"], 2)
    assert "position" in _rules(validate_events(back))
    # event 4 claims one rebuffer more than event 5 has: a counter went down (whatever the data)
    assert "counter" in _rules(validate_events(_broken(s, 4, buffering_events=s[5]["buffering_events"] + 1)))


def test_nothing_after_the_end(good):
    events, _ = good
    last = [e for e in events if e["player_state"] in ("ended", "quit", "failed")][0]
    session = [e for e in events if e["session_id"] == last["session_id"]]
    assert session[-1] is last
    ghost = dict(last, seq=last["seq"] + 1, event_id="0" * 8 + last["event_id"][8:], event_timestamp="2099-01-01T00:00:00.000Z")
    r = validate_events(session + [ghost])
    assert [v.rule for v in r.violations] == ["after-end"]


def test_missing_and_unknown_fields_and_bad_lines():
    line = next(iter_records(1, SimConfig(seed=2)))[1]
    e = orjson.loads(line)
    del e["cdn"]
    e["mood"] = "happy"
    r = validate_lines([orjson.dumps(e), b"{oops", b"[1, 2]", b"", line])
    assert {"missing-field", "unknown-field", "json", "not-object"} <= _rules(r)
    assert [v.line for v in r.violations if v.rule == "json"] == [2]
    assert r.events == 2  # the broken object and the clean line; "[1, 2]" is not an event, the blank line is skipped


def test_duplicates_plain_file_vs_lake_folder(tmp_path: Path, good):
    events, _ = good
    lines = [orjson.dumps(e) for e in events]
    # plain file: a repeat is a violation
    assert "duplicate" in _rules(validate_lines(lines[:100] + lines[50:60] + lines[100:]))
    # lake folder: objects by arrival hour; a redelivered batch is tolerated, reordering across objects too
    part = tmp_path / "lake" / "telemetry" / "year=2026" / "month=11" / "day=26"
    (part / "hour=15").mkdir(parents=True)
    (part / "hour=16").mkdir(parents=True)
    with gzip.open(part / "hour=15" / "a.gz", "wb") as fh:
        fh.write(b"\n".join(lines[:2000]) + b"\n")
    with gzip.open(part / "hour=16" / "b.gz", "wb") as fh:
        fh.write(b"\n".join(lines[1990:2000] + lines[2500:] + lines[2000:2500]) + b"\n")  # redelivery + swapped halves
    errors = tmp_path / "lake" / "errors" / "x"
    errors.mkdir(parents=True)
    (errors / "bad.gz").write_bytes(b"whatever")
    r = validate_paths([tmp_path / "lake"])
    assert r.violations == [], [str(v) for v in r.violations[:5]]
    assert r.duplicates == 10 and r.events == 4010 and r.error_objects == 1
    # a redelivered event that differs is a violation
    changed = dict(events[1999], bandwidth_mbps=1.0)
    with gzip.open(part / "hour=16" / "c.gz", "wb") as fh:
        fh.write(orjson.dumps(changed) + b"\n")
    assert "duplicate" in _rules(validate_paths([tmp_path / "lake"]))


def test_missing_event_in_a_lake_is_a_gap(tmp_path: Path, good):
    events, session = good
    drop = session[3]
    (tmp_path / "t.jsonl").write_bytes(b"\n".join(orjson.dumps(e) for e in events if e is not drop))
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "t.jsonl").write_bytes((tmp_path / "t.jsonl").read_bytes())
    r = validate_paths([folder])
    assert [v.rule for v in r.violations] == ["seq"]
    assert "never arrived" in r.violations[0].message


def _session_with(events, pred):
    """(session events, i) of the first event i > 0 with pred(previous, event)."""
    by: dict = {}
    for e in events:
        by.setdefault(e["session_id"], []).append(e)
    for evs in by.values():
        for i in range(1, len(evs)):
            if pred(evs[i - 1], evs[i]):
                return evs, i
    raise AssertionError("no such event in the stream")


def _interval_messages(evs, i, **changes):
    r = validate_events(_broken(evs, i, **changes))
    return [v.message for v in r.violations if v.rule == "interval"], _rules(r)


def test_interval_fields_agree_with_the_counters_and_the_state_machine(good):
    events, _ = good
    hb = lambda p, e: e["event_type"] == "heartbeat" and p["player_state"] == "playing" and e["played_ms"] > 0  # noqa: E731
    evs, i = _session_with(events, hb)
    msgs, _ = _interval_messages(evs, i, played_ms=evs[i]["played_ms"] + 1000)
    assert any("watch_duration_seconds grew" in m for m in msgs), msgs
    msgs, _ = _interval_messages(evs, i, stalled_ms=7)
    assert any("buffering_duration_seconds grew" in m for m in msgs) and any("left the player playing" in m for m in msgs)
    other = 6000 if evs[i - 1]["bitrate_kbps"] != 6000 else 3000
    msgs, _ = _interval_messages(evs, i, played_bitrate_kbps=other)
    assert any("previous event's bitrate_kbps" in m for m in msgs), msgs
    # more played than time passed, even with the counter moved along
    elapsed = kpis_ms(evs[i]["event_timestamp"]) - kpis_ms(evs[i - 1]["event_timestamp"])
    wd = evs[i - 1]["watch_duration_seconds"]
    msgs, _ = _interval_messages(evs, i, played_ms=elapsed + 5000, watch_duration_seconds=wd + (elapsed + 5000) // 1000)
    assert any("ms since seq" in m for m in msgs), msgs
    # video played after a pause
    evs, i = _session_with(events, lambda p, e: p["player_state"] == "paused")
    msgs, _ = _interval_messages(evs, i, played_ms=500)
    assert any("left the player paused" in m for m in msgs), msgs
    # a session's first event has no interval
    start = [e for e in events if e["seq"] == 0][0]
    msgs, _ = _interval_messages([start], 0, played_ms=10)
    assert msgs and "first event" in msgs[0]
    # per event: non-negative, and the played bitrate is a rung the device can play
    assert "range" in _interval_messages(evs, i, stalled_ms=-1)[1]
    assert "played-bitrate" in _interval_messages(evs, i, played_bitrate_kbps=3001)[1]
    mobile = [e for e in events if e["device_type"] == "mobile"][0]
    assert "played-bitrate" in _rules(validate_events([dict(mobile, played_bitrate_kbps=16800)]))


def kpis_ms(ts: str) -> int:
    return parse_iso_ms(ts)
