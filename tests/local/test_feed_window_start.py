"""KpiAggregator's integer window starts equal the tumbling windows of the epoch-aligned definition."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from acme_telemetry.local.feed import KpiAggregator
from acme_telemetry.times import EPOCH


@pytest.mark.parametrize("window_s", [1, 5, 2.5, 60, 0.1])
def test_window_start_is_the_epoch_aligned_window_holding_t(window_s: float) -> None:
    agg = KpiAggregator(lambda data, kind: None, window_s=window_s)
    w_us = round(window_s * 1_000_000)
    rng = random.Random(window_s)
    base = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)
    times = [base + timedelta(microseconds=rng.randrange(0, 3_600_000_000)) for _ in range(2000)]
    times += [base + timedelta(microseconds=k * w_us + d) for k in range(5) for d in (-1, 0, 1)]  # the edges
    for t in times:
        start = agg._window_start(t)
        us = (t - EPOCH) // timedelta(microseconds=1)
        assert start == EPOCH + timedelta(microseconds=us - us % w_us), t
        assert start <= t < start + agg.window
