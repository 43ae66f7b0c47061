"""The generator Lambda rehearses incidents from INCIDENTS (absolute times only, so every
scheduled invocation sees the same ones and consecutive windows stay one coherent stream),
and its window is the schedule period ending at the invocation's scheduled time."""

from __future__ import annotations

import pytest

from acme_telemetry.simulator import IncidentError, SimConfig, iter_window
from tests.lambdas.conftest import load_handler
from tests.lambdas.test_datagen_handlers import GENERATOR_ENV


def test_incidents_env_configures_the_simulator(monkeypatch):
    for k, v in GENERATOR_ENV.items():
        monkeypatch.setenv(k, v)
    gen = load_handler("generator")
    monkeypatch.delenv("INCIDENTS", raising=False)
    assert gen.sim_config().incidents == ()
    monkeypatch.setenv(
        "INCIDENTS", "cdn=fastly,at=2026-12-01T07:00:00Z,for=10m,kind=outage; state=CA,at=2026-12-01T08:00:00Z,for=1m,kind=rebuffer"
    )
    cfg = gen.sim_config()
    assert [(i.dimension, i.value, i.kind, i.end_ms - i.start_ms) for i in cfg.incidents] == [
        ("cdn", "fastly", "outage", 600_000),
        ("state", "CA", "rebuffer", 60_000),
    ]
    monkeypatch.setenv("INCIDENTS", "cdn=fastly,at=+2m,for=3m")
    with pytest.raises(IncidentError, match="absolute at="):
        gen.sim_config()


def test_the_scheduled_window_with_an_incident_is_the_same_stream_in_any_cut(monkeypatch):
    for k, v in GENERATOR_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("INCIDENTS", "cdn=akamai,at=2026-12-01T07:01:00Z,for=2m,kind=outage")
    gen = load_handler("generator")
    cfg: SimConfig = gen.sim_config()
    a, b = gen.window_for("2026-12-01T07:02:00Z", 1)
    c, d = gen.window_for("2026-12-01T07:03:00Z", 1)
    assert b == c
    two = list(iter_window(cfg, a, b)) + list(iter_window(cfg, c, d))
    assert two == list(iter_window(cfg, a, d))
    assert any(b'"fatal":true' in v and b'"cdn":"akamai"' in v for _, v in two)
