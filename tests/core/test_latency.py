"""The latency histogram reads percentiles to within 1% of the exact ones."""

from __future__ import annotations

import numpy as np
import pytest

from starmesh.core.latency import LatencyHistogram


def test_percentiles_within_one_percent_of_numpy() -> None:
    samples = np.random.default_rng(5).lognormal(mean=11, sigma=1.2, size=50_000).astype(int)
    histogram = LatencyHistogram()
    for sample in samples:
        histogram.record(int(sample))
    for q in (50, 90, 99, 99.9):
        exact = np.percentile(samples, q, method="inverted_cdf")
        assert histogram.percentile(q) == pytest.approx(exact, rel=0.01), q
    assert histogram.count == samples.size
    assert histogram.max_ns == samples.max()
    assert histogram.percentile(100) == samples.max()
    assert histogram.mean_ns == pytest.approx(samples.mean())


def test_edges() -> None:
    histogram = LatencyHistogram()
    assert histogram.percentile(99) == 0.0
    histogram.record(-5)  # a clock skew across hosts
    histogram.record(1_000)
    assert histogram.min_ns == 0
    assert histogram.percentile(50) == 0.0
    assert histogram.percentile(100) == 1_000
    with pytest.raises(ValueError, match="between 0 and 100"):
        histogram.percentile(101)


def test_merge_adds_the_counts() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    for n in range(1, 101):
        (a if n % 2 else b).record(n * 1_000)
    a.merge(b)
    assert a.count == 100
    assert a.percentile(50) == pytest.approx(50_000, rel=0.01)
    assert (a.min_ns, a.max_ns) == (1_000, 100_000)
