"""The viewer simulator: session-coherent telemetry on a player state machine.

Public interface (docs/contracts.md): SimConfig, iter_records, iter_window, iter_lines,
GroundTruth. See engine.py for the design (session state is derived from (seed, time),
never persisted, so the stateless generator Lambda can produce consecutive windows that
concatenate to one coherent stream) and for the modules it is made of; live.py for the
wall-clock stream (start now, resume without replay) and incidents.py for degraded slices.
"""

from acme_telemetry.simulator.config import SimConfig, SimConfigError
from acme_telemetry.simulator.engine import expected_events_per_s, iter_lines, iter_records, iter_window
from acme_telemetry.simulator.incidents import Incident, IncidentError, parse_incident
from acme_telemetry.simulator.live import iter_live, iter_since, resume_from, wall_ms
from acme_telemetry.simulator.truth import GroundTruth
from acme_telemetry.times import iso_ms, to_ms

__all__ = [
    "GroundTruth",
    "Incident",
    "IncidentError",
    "SimConfig",
    "SimConfigError",
    "expected_events_per_s",
    "iso_ms",
    "iter_lines",
    "iter_live",
    "iter_records",
    "iter_since",
    "iter_window",
    "parse_incident",
    "resume_from",
    "to_ms",
    "wall_ms",
]
