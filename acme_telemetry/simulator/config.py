"""What to simulate: SimConfig, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from acme_telemetry.settings import HEARTBEAT_INTERVAL_MS
from acme_telemetry.times import to_ms

# Where iter_records starts by default: fixed, so that output never depends on the clock.
DEFAULT_START = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)


class SimConfigError(ValueError):
    """An invalid simulator setting; the message names it."""


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class SimConfig:
    """What to simulate.

    seed: everything derives from it; same config, identical bytes.
    start: where iter_records begins (UTC; naive means UTC). Default 2026-11-26T15:00:00Z,
      fixed so that output never depends on the clock.
    concurrent_viewers: the mean number of live sessions (Little's law sets the arrival
      rate from the mean session lifetime). Load is about viewers / heartbeat interval
      plus lifecycle events.
    heartbeat_interval_s: seconds between heartbeats of a live session.
    target_events_per_s: if set, overrides concurrent_viewers with the number of viewers
      that gives this many events per second on average.
    customers, titles: population sizes (ids cust_000001.., title_00001..).
    incidents: simulator.incidents.Incident values (a slice degraded for a period); none
      by default, and without one the output is byte-identical to before they existed.
    """

    seed: int = 42
    start: datetime | None = None
    concurrent_viewers: int = 200
    heartbeat_interval_s: float = HEARTBEAT_INTERVAL_MS / 1000
    target_events_per_s: float | None = None
    customers: int = 100_000
    titles: int = 10_000
    incidents: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if not _is_int(self.seed):
            raise SimConfigError(f"seed must be an integer, got {self.seed!r}")
        if self.start is not None and not isinstance(self.start, datetime):
            raise SimConfigError(f"start must be a datetime, got {self.start!r}")
        if not _is_int(self.concurrent_viewers) or not 1 <= self.concurrent_viewers <= 1_000_000:
            raise SimConfigError(f"concurrent_viewers must be an integer in 1..1000000, got {self.concurrent_viewers!r}")
        hb = self.heartbeat_interval_s
        if not _is_number(hb) or not 0.5 <= hb <= 3600:
            raise SimConfigError(f"heartbeat_interval_s must be a number in 0.5..3600, got {hb!r}")
        tps = self.target_events_per_s
        if tps is not None and (not _is_number(tps) or not 0 < tps <= 1e7):
            raise SimConfigError(f"target_events_per_s must be a number in (0, 1e7], got {tps!r}")
        from acme_telemetry.simulator.incidents import Incident

        if not isinstance(self.incidents, tuple) or not all(isinstance(i, Incident) for i in self.incidents):
            raise SimConfigError(f"incidents must be a tuple of simulator.incidents.Incident, got {self.incidents!r}")
        for name, limit in (("customers", 1_000_000), ("titles", 100_000)):
            v = getattr(self, name)
            if not _is_int(v) or not 1 <= v < limit:
                raise SimConfigError(f"{name} must be a positive integer below {limit}, got {v!r}")

    @property
    def start_ms(self) -> int:
        """The start as UTC epoch milliseconds."""
        return to_ms(self.start or DEFAULT_START)

    @property
    def heartbeat_ms(self) -> int:
        return int(round(self.heartbeat_interval_s * 1000))
