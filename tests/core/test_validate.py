"""The validator: each rule fires on a broken event, lake folders tolerate exact duplicates only."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from acme_telemetry.simulator import SimConfig, iter_records
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
    assert "counter" in _rules(validate_events(_broken(s, 5, buffering_events=s[4]["buffering_events"] - 1)))

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
