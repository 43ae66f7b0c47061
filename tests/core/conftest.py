"""Shared fixtures: one seeded run, generated once per test session."""

from __future__ import annotations

import orjson
import pytest

from acme_telemetry.simulator import GroundTruth, SimConfig, iter_records

N_EVENTS = 50_000


@pytest.fixture(scope="session")
def seeded_run():
    """(records, events, truth) of the first 50k events of seed 11."""
    truth = GroundTruth()
    records = list(iter_records(N_EVENTS, SimConfig(seed=11), truth=truth))
    events = [orjson.loads(v) for _, v in records]
    return records, events, truth
