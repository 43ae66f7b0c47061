"""The startup-time sketch: its stated error bound (1% relative, so p50/p95 within 2%) and exact merges."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acme_telemetry import kpis
from acme_telemetry.kpis.sketch import GAMMA, RELATIVE_ACCURACY, Sketch, bin_of, bin_value


def test_every_value_is_within_the_relative_accuracy_of_its_bins_representative():
    for v in [1, 2, 3, 149, 150, 151, 999, 1000, 1001, 12_345, 59_999, 60_000, 3_600_000]:
        assert abs(bin_value(bin_of(v)) - v) <= RELATIVE_ACCURACY * v + 1e-9, v
        assert GAMMA ** (bin_of(v) - 1) < v <= GAMMA ** bin_of(v) * (1 + 1e-12)
    assert bin_value(bin_of(0)) == 0.0 and Sketch().quantile(50) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=120_000), min_size=1, max_size=400), st.sampled_from([50, 95, 99, 1, 100]))
def test_quantiles_are_within_the_bound_of_the_exact_nearest_rank(values, q):
    s = Sketch()
    s.extend(values)
    exact = kpis.percentile(values, q)
    assert exact is not None
    assert s.quantile(q) == pytest.approx(exact, rel=RELATIVE_ACCURACY)
    assert abs(s.quantile(q) - exact) <= 0.02 * exact  # the bound for p50/p95


def test_startup_like_distribution_p50_p95_within_2_percent():
    r = random.Random(5)
    values = [int(900 * r.lognormvariate(0, 0.6)) + 150 for _ in range(20_000)]
    s = Sketch()
    s.extend(values)
    for q in (50, 95):
        exact = kpis.percentile(values, q)
        assert exact is not None and abs(s.quantile(q) - exact) / exact <= 0.02
    assert len(s.bins) < 400  # sparse and small


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=60_000), max_size=200), st.randoms(use_true_random=False))
def test_any_split_merges_to_the_whole(values, r):
    whole = Sketch()
    whole.extend(values)
    parts = [Sketch() for _ in range(r.randint(1, 5))]
    for v in values:
        r.choice(parts).add(v)
    merged = Sketch()
    for p in r.sample(parts, len(parts)):
        merged.merge(Sketch.from_wire(p.wire()))
    assert merged == whole and merged.count == whole.count == len(values)
