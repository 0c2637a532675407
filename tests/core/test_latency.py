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


def test_the_samples_between_two_snapshots_have_their_own_percentiles() -> None:
    """A start-up's slow samples, then a quiet window: the window's p99 is the window's."""
    histogram = LatencyHistogram()
    for _ in range(1_000):
        histogram.record(500_000_000)  # 500 ms, while everything starts
    earlier = histogram.buckets()
    window_samples = list(range(1_000, 101_000, 1_000))  # 1-100 µs
    for sample in window_samples:
        histogram.record(sample)
    window = LatencyHistogram.between(earlier, histogram.buckets())
    assert window.count == 100
    assert window.percentile(99) == pytest.approx(99_000, rel=0.01)
    assert window.percentile(50) == pytest.approx(50_000, rel=0.01)
    assert window.max_ns == pytest.approx(100_000, rel=0.01)
    assert window.mean_ns == pytest.approx(50_500, rel=0.01)
    assert histogram.percentile(50) == pytest.approx(500_000_000, rel=0.01)  # since the start


def test_snapshots_in_the_wrong_order_are_refused() -> None:
    histogram = LatencyHistogram()
    histogram.record(10)
    later = histogram.buckets()
    with pytest.raises(ValueError, match="fewer samples"):
        LatencyHistogram.between(later, {})
