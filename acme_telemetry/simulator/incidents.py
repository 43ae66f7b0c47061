"""Incidents to rehearse: one slice (a CDN, ISP, region or device type) degraded for a while.

`parse_incident("cdn=fastly,at=+2m,for=3m,kind=outage", origin_ms)` gives an Incident:

- the slice: exactly one of cdn=, isp=, state= (the region), device_type=, connection_type=,
  with a value the population has (population.CDNS, the ISPs, the states ...);
- at=: when it starts, relative to `origin_ms` (the run's start: +90s, +2m, +1h) or an
  absolute UTC time (2026-12-01T06:50:00Z); for=: how long (90s, 3m, 1h);
- kind=: what goes wrong (KINDS):
  - outage: most play attempts fail to start and start slowly, playing sessions hit fatal
    errors within a minute or two, and stalls are frequent;
  - rebuffer: stalls ten times as often and three times as long;
  - errors: fatal errors and start failures at several times the usual rate.

Sessions of the slice feel it from their first event inside the period (the hazards are
re-drawn there, and again when it ends, so they recover); attempts that start inside it
draw their start-up outcome with the incident's odds. Nothing else changes: without an
incident, or outside its slice, the output is byte-identical to a run without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from acme_telemetry.simulator.population import CDNS, DEVICE_TYPE_WEIGHTS, ISPS_BY_CONNECTION, STATES, SessionFacts
from acme_telemetry.times import parse_utc, to_ms

NEVER = (1 << 63) - 1


@dataclass(frozen=True)
class Effect:
    vsf_prob: float  # video start failure probability of attempts that start in the period
    extra_startup_ms: float  # added to the start-up latency of those attempts
    fatal_per_ms: float  # extra fatal-error hazard while playing
    rebuffer_factor: float  # rebuffer hazard multiplier while playing
    stall_factor: float  # stall length multiplier


KINDS: dict[str, Effect] = {
    "outage": Effect(vsf_prob=0.6, extra_startup_ms=4000.0, fatal_per_ms=1 / 60_000, rebuffer_factor=4.0, stall_factor=2.0),
    "rebuffer": Effect(vsf_prob=0.0, extra_startup_ms=1500.0, fatal_per_ms=0.0, rebuffer_factor=10.0, stall_factor=3.0),
    "errors": Effect(vsf_prob=0.15, extra_startup_ms=0.0, fatal_per_ms=1 / 300_000, rebuffer_factor=1.0, stall_factor=1.0),
}
DIMENSIONS: dict[str, frozenset[str]] = {
    "cdn": frozenset(CDNS),
    "isp": frozenset(i for isps in ISPS_BY_CONNECTION.values() for i in isps),
    "state": frozenset(s for s, _, _ in STATES),
    "device_type": frozenset(DEVICE_TYPE_WEIGHTS),
    "connection_type": frozenset(ISPS_BY_CONNECTION),
}


class IncidentError(ValueError):
    """A malformed incident; the message says which part and what is accepted."""


@dataclass(frozen=True)
class Incident:
    dimension: str
    value: str
    start_ms: int
    end_ms: int
    kind: str

    @property
    def effect(self) -> Effect:
        return KINDS[self.kind]

    def matches(self, facts: SessionFacts) -> bool:
        return bool(getattr(facts, self.dimension) == self.value)

    def active(self, ts_ms: int) -> bool:
        return self.start_ms <= ts_ms < self.end_ms

    def describe(self) -> dict[str, object]:
        return {"dimension": self.dimension, "value": self.value, "start_ms": self.start_ms, "end_ms": self.end_ms, "kind": self.kind}


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
EXAMPLE = "cdn=fastly,at=+2m,for=3m,kind=outage"


def parse_duration_ms(text: str, what: str) -> int:
    m = _DURATION.match(text.strip())
    if not m:
        raise IncidentError(f"{what} must be a duration such as 90s, 3m or 1h, got {text!r}")
    return int(float(m.group(1)) * _UNIT_MS[m.group(2)])


def parse_incident(text: str, origin_ms: int) -> Incident:
    """An Incident from 'dim=value,at=+2m,for=3m,kind=outage' (module doc); `at` relative to origin_ms."""
    parts: dict[str, str] = {}
    for item in text.split(","):
        if "=" not in item:
            raise IncidentError(f"an incident is key=value pairs such as {EXAMPLE}, got {text!r}")
        k, v = (x.strip() for x in item.split("=", 1))
        if k in parts:
            raise IncidentError(f"incident {text!r} gives {k}= twice")
        parts[k] = v
    dims = [k for k in parts if k in DIMENSIONS]
    unknown = sorted(set(parts) - set(DIMENSIONS) - {"at", "for", "kind"})
    if unknown:
        raise IncidentError(f"incident {text!r}: unknown key {unknown[0]!r} (slice: {', '.join(DIMENSIONS)}; at, for, kind)")
    if len(dims) != 1:
        raise IncidentError(f"incident {text!r} needs exactly one slice: {', '.join(DIMENSIONS)} (e.g. {EXAMPLE})")
    dim = dims[0]
    value = parts[dim]
    if value not in DIMENSIONS[dim]:
        raise IncidentError(f"incident {dim}={value!r} is not in the population; one of: {', '.join(sorted(DIMENSIONS[dim]))}")
    kind = parts.get("kind", "outage")
    if kind not in KINDS:
        raise IncidentError(f"incident kind={kind!r}: one of {', '.join(KINDS)}")
    at = parts.get("at", "+0s")
    if at.startswith("+"):
        start = origin_ms + parse_duration_ms(at[1:], "at=+")
    else:
        try:
            start = to_ms(parse_utc(at, "at="))
        except ValueError as exc:
            raise IncidentError(str(exc)) from None
    length = parse_duration_ms(parts.get("for", "3m"), "for=")
    if length <= 0:
        raise IncidentError(f"incident for= must be positive, got {parts.get('for')!r}")
    return Incident(dim, value, start, start + length, kind)


def for_session(incidents: tuple[Incident, ...], facts: SessionFacts) -> Incident | None:
    """The first incident whose slice the session is in (a session feels at most one)."""
    for inc in incidents:
        if inc.matches(facts):
            return inc
    return None
