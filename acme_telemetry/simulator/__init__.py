"""The viewer simulator: session-coherent telemetry on a player state machine.

Public interface (docs/contracts.md): SimConfig, iter_records, iter_window, GroundTruth.
See engine.py for the design: session state is derived from (seed, time), never
persisted, so the stateless generator Lambda can produce consecutive windows that
concatenate to one coherent stream.
"""

from acme_telemetry.simulator.engine import (
    SimConfig,
    SimConfigError,
    expected_events_per_s,
    iso_ms,
    iter_lines,
    iter_records,
    iter_window,
    to_ms,
)
from acme_telemetry.simulator.truth import GroundTruth

__all__ = [
    "GroundTruth",
    "SimConfig",
    "SimConfigError",
    "expected_events_per_s",
    "iso_ms",
    "iter_lines",
    "iter_records",
    "iter_window",
    "to_ms",
]
