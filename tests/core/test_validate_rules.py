"""The validator's rule table: every rule named, documented and registered once; stages and
`unless` behave as documented; the rules the other tests do not break fire too."""

from __future__ import annotations

import orjson
import pytest

from acme_telemetry.simulator import SimConfig, iter_records
from acme_telemetry.simulator.population import MAX_DEVICES_PER_CUSTOMER
from acme_telemetry.validate import RULES, validate_events
from acme_telemetry.validate import rules as R

# The rule list of the validator's documentation before it became a table (issue 9).
DOCUMENTED = {
    "json",
    "not-object",
    "missing-field",
    "unknown-field",
    "type",
    "enum",
    "timestamp",
    "uuid",
    "device-os",
    "quality-bitrate",
    "uhd-device",
    "geo",
    "isp-connection",
    "completion",
    "range",
    "played-bitrate",
    "event-fields",
    "player-state",
    "session-fixed",
    "seq",
    "timestamp-order",
    "position",
    "counter",
    "transition",
    "start",
    "after-end",
    "video-started",
    "interval",
    "duplicate",
    "customer-home",
    "customer-devices",
    "device-fixed",
}


@pytest.fixture(scope="module")
def events():
    return [orjson.loads(v) for _, v in iter_records(4000, SimConfig(seed=2))]


def _rules(report):
    return [v.rule for v in report.violations]


def test_the_table_holds_every_documented_rule_once_per_scope_with_its_doc():
    assert {r.name for r in RULES} == DOCUMENTED
    pairs = [(r.scope, r.name) for r in RULES]
    assert len(pairs) == len(set(pairs))
    for r in RULES:
        assert len(r.doc) > 20, r.name
        assert (r.check is None) == (r.scope in ("line", "session")), r.name
    table = R.describe()
    assert all(r.name in table for r in RULES)


def test_gates_split_the_stages():
    event = R.stages("event")
    assert [name for name, _, _ in event[0]] == ["missing-field", "type", "unknown-field"]
    assert [name for name, _, _ in event[1]] == ["enum"]
    assert [name for name, _, _ in R.stages("pair")[0]] == ["after-end"]
    assert ("completion", R.completion, "range") in event[2]


def test_a_failed_stage_skips_the_later_ones(events):
    # a wrong type and a broken geography: only the type is reported (stage 1 gates)
    e = dict(events[10], seq="7", city="Atlantis")
    assert _rules(validate_events([e])) == ["type"]
    # an unknown enum value: stage 2 gates the rest
    e = dict(events[10], device_type="fridge", city="Atlantis")
    assert _rules(validate_events([e])) == ["enum"]


def test_completion_is_skipped_when_range_failed(events):
    e = next(x for x in events if x["position_seconds"] > 10)
    e = dict(e, bandwidth_mbps=-1.0, completion_percentage=0.0)
    rules = _rules(validate_events([e]))
    assert "range" in rules and "completion" not in rules
    e = dict(e, bandwidth_mbps=1.0)
    assert "completion" in _rules(validate_events([e]))


def test_each_violation_names_its_rule(events):
    e = dict(events[10], city="Atlantis")
    (v,) = validate_events([e]).violations
    assert v.rule == "geo" and "[geo]" in str(v) and e["event_id"] in str(v)


def test_an_unregistered_rule_is_refused():
    from acme_telemetry.validate import Validator

    with pytest.raises(KeyError, match="unregistered"):
        Validator()._v("x", 1, "no-such-rule", "message")


@pytest.mark.parametrize(
    ("pick", "change", "rule"),
    [
        (lambda e: e["event_type"] == "heartbeat" and e["player_state"] == "playing", {"player_state": "ended"}, "player-state"),
        (lambda e: e["event_type"] == "heartbeat" and e["seq"] > 0, {"seq": 0}, "start"),
        (lambda e: e["event_type"] == "start", {"video_started": True}, "video-started"),
        (lambda e: e["event_type"] == "heartbeat", {"bitrate_kbps": 3001}, "quality-bitrate"),
        (lambda e: e["event_type"] == "heartbeat", {"country": "CA"}, "geo"),
        (lambda e: e["event_type"] == "heartbeat", {"error_code": "E1"}, "event-fields"),
        (lambda e: e["event_type"] == "heartbeat", {"session_id": "A" * 36}, "uuid"),
    ],
)
def test_single_event_rules_fire(events, pick, change, rule):
    e = dict(next(x for x in events if pick(x)), **change)
    assert rule in _rules(validate_events([e]))


def _session(events, pred):
    by: dict = {}
    for e in events:
        by.setdefault(e["session_id"], []).append(e)
    return next(evs for evs in by.values() if pred(evs))


def test_transition_fires(events):
    evs = _session(events, lambda s: len(s) > 3 and s[2]["event_type"] == "heartbeat" and s[2]["player_state"] == "playing")
    evs = [dict(e) for e in evs]
    evs[2].update(event_type="resume")  # resume from playing: not in the state machine
    assert "transition" in _rules(validate_events(evs))


def test_cross_session_rules_fire(events):
    starts = [e for e in events if e["seq"] == 0]
    a = starts[0]
    b = next(e for e in starts[1:] if e["customer_id"] != a["customer_id"] and (e["state"], e["city"]) != (a["state"], a["city"]))
    # the same customer from another home
    other_home = dict(b, customer_id=a["customer_id"], device_id=a["device_id"], device_type=a["device_type"], device_os=a["device_os"])
    rules = _rules(validate_events([a, other_home]))
    assert rules == ["customer-home"]
    # a device that changes hands
    stolen = dict(b, device_id=a["device_id"])
    assert "device-fixed" in _rules(validate_events([a, stolen]))
    # one device more than a customer may have, reported once
    many = [
        dict(a, session_id=f"{i:08x}-0000-4000-8000-000000000000", device_id=f"{i:08x}-0000-4000-8000-00000000000d")
        for i in range(MAX_DEVICES_PER_CUSTOMER + 2)
    ]
    assert _rules(validate_events(many)) == ["customer-devices"]
