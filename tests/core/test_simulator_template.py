"""The session template comes from schema.FIELDS: a field added or dropped on one side fails loudly."""

from __future__ import annotations

import random

import orjson
import pytest

from acme_telemetry.schema import FIELD_NAMES, FIELDS
from acme_telemetry.simulator import population, template


def _facts() -> population.SessionFacts:
    return population.session_facts(42, 1000, 100, random.Random(7))


def test_the_template_has_the_schemas_fields_in_the_schemas_order():
    # fill every per-event slot with a JSON number: the template must then be valid JSON
    parts = template.session_parts(_facts())
    assert len(parts) == template.N_SLOTS + 1
    event = orjson.loads(b"0".join(parts))
    assert list(event) == list(FIELD_NAMES)
    assert len(FIELDS) == len(template.PER_EVENT) + len(template.PER_SESSION)


def test_session_fields_are_the_facts_json():
    f = _facts()
    event = orjson.loads(b"0".join(template.session_parts(f)))
    for name in template.PER_SESSION:
        assert event[name] == getattr(f, name), name
    assert event["country"] == "US"
    assert event["event_id"].startswith(f.event_id_prefix)


def test_slots_follow_the_schema_order():
    order = {name: i for i, name in enumerate(FIELD_NAMES)}
    assert [order[s] for s in template.SLOT_FIELDS] == sorted(order[s] for s in template.SLOT_FIELDS)
    assert template.SLOT_FIELDS.count("event_timestamp") == 2  # second and millisecond


def test_a_schema_field_without_a_renderer_is_named():
    with pytest.raises(ImportError, match="no renderer for: new_metric"):
        template.check((*FIELD_NAMES, "new_metric"))


def test_a_renderer_without_a_schema_field_is_named():
    with pytest.raises(ImportError, match="rendered but not in the schema: cdn, seq"):
        template.check(tuple(f for f in FIELD_NAMES if f not in ("cdn", "seq")))


def test_a_percent_in_a_population_string_is_refused():
    with pytest.raises(ValueError, match="contains '%'"):
        template.json_name("100% Fiber")
