"""VPIN, its time bars and its CDF, on sequences computed by hand."""

from __future__ import annotations

import math

import pytest

from starmesh.engines.vpin import TimeBars, VpinEstimator, empirical_cdf, normal_cdf

PHI_1 = 0.8413447460685429  # Φ(1), from a table
PHI_2 = 0.9772498680518208  # Φ(2)


def test_normal_cdf_matches_the_table() -> None:
    assert normal_cdf(0.0) == 0.5
    assert normal_cdf(1.0) == pytest.approx(PHI_1, abs=1e-15)
    assert normal_cdf(-2.0) == pytest.approx(1 - PHI_2, abs=1e-15)


def test_vpin_with_a_fixed_sigma_and_a_bar_split_across_buckets() -> None:
    vpin = VpinEstimator(bucket_volume=100, window=2, sigma=1.0)
    # Bar 1: no price change, 100 shares -> one bucket, 50 buy / 50 sell; one bucket < window.
    assert vpin.add_bar(0.0, 100) is None
    assert vpin.completed[0].buy_volume == 50
    assert vpin.completed[0].sell_volume == 50
    # Bar 2: +1 σ, 150 shares: 100 fill bucket 2 at Φ(1) buy; 50 stay in bucket 3.
    # Bucket 2's |S - B| = 100 (2Φ(1) - 1) = 68.26894921; VPIN = (0 + 68.26894921) / 200.
    assert vpin.add_bar(1.0, 150) == pytest.approx(0.3413447461, abs=1e-10)
    # Bar 3: +2 σ, 50 shares complete bucket 3, whose two parts keep their own bar's Φ:
    # B = 50 Φ(1) + 50 Φ(2) = 90.92973070, S = 9.07026930 -> |S - B| = 81.85946141.
    # VPIN over buckets 2 and 3 = (68.26894921 + 81.85946141) / 200 = 0.75064205.
    assert vpin.add_bar(2.0, 50) == pytest.approx(0.7506420531, abs=1e-10)
    (bucket,) = vpin.completed
    assert bucket.buy_volume == pytest.approx(50 * PHI_1 + 50 * PHI_2, abs=1e-9)
    assert vpin.buckets == 3


def test_one_bar_may_complete_several_buckets() -> None:
    vpin = VpinEstimator(bucket_volume=10, window=3, sigma=1.0)
    assert vpin.add_bar(1.0, 35) == pytest.approx(2 * PHI_1 - 1, abs=1e-12)
    assert len(vpin.completed) == 3  # the last 5 shares wait in the fourth bucket
    assert vpin.add_bar(0.0, 4) is None  # completes nothing


def test_vpin_with_the_running_sigma_of_bar_price_changes() -> None:
    vpin = VpinEstimator(bucket_volume=100, window=1)
    # Bar 1: one change, no σ yet: split half and half.
    assert vpin.add_bar(1.0, 100) == 0.0
    # Bar 2: changes [1, -1], sample σ = √2: buy fraction Φ(-1/√2) = 0.23975006.
    assert vpin.add_bar(-1.0, 100) == pytest.approx(1 - 2 * 0.23975006, abs=1e-8)
    assert vpin.sigma == pytest.approx(math.sqrt(2))
    assert vpin.add_bar(-1.0, 0) is None  # no volume: no bucket, but σ takes the change in
    # Changes [1, -1, -1, 5]: mean 1, sample variance (0 + 4 + 4 + 16) / 3 = 8:
    # |2 Φ(5 / √8) - 1| = 0.92290013.
    assert vpin.add_bar(5.0, 100) == pytest.approx(0.92290013, abs=1e-8)
    # Changes [1, -1, -1, 5, 5]: mean 1.8, variance 36.8 / 4 = 9.2, σ = 3.03315:
    # |2 Φ(5 / 3.03315) - 1| = 0.90073988.
    assert vpin.add_bar(5.0, 100) == pytest.approx(0.90073988, abs=1e-8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bucket_volume": 0, "window": 1}, "bucket_volume must be positive"),
        ({"bucket_volume": 10, "window": 0}, "window must be at least 1"),
        ({"bucket_volume": 10, "window": 1, "sigma": -1.0}, "sigma must be positive"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VpinEstimator(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("change", "volume"), [(math.nan, 1.0), (0.0, -5.0), (0.0, math.inf)])
def test_bad_bars_are_refused_and_leave_the_estimator_as_it_was(
    change: float, volume: float
) -> None:
    vpin = VpinEstimator(bucket_volume=10, window=1, sigma=1.0)
    with pytest.raises(ValueError, match="must be finite"):
        vpin.add_bar(change, volume)
    assert vpin.add_bar(0.0, 10) == 0.0


def test_time_bars_close_on_the_first_trade_of_a_later_bar() -> None:
    bars = TimeBars(bar_s=1.0)
    second = 1_000_000_000
    assert bars.add("X", 0, 10.0, 100) is None
    assert bars.add("X", second // 2, 10.5, 50) is None
    # First bar: close 10.5 - its own first price 10.0, 150 shares.
    assert bars.add("X", second, 11.0, 10) == (0.5, 150)
    assert bars.add("Y", second, 7.0, 1) is None  # symbols are apart
    # Three seconds with no trade make no bar; the next bar's change is from 10.5.
    assert bars.add("X", 4 * second, 9.0, 5) == (0.5, 10)
    assert bars.add("X", 5 * second, 9.0, 5) == (-2.0, 5)


def test_empirical_cdf_counts_ties_half() -> None:
    assert empirical_cdf([], 0.3) == 0.0
    assert empirical_cdf([0.1, 0.2, 0.3, 0.4], 0.3) == 0.625  # 2 below, 1 equal
    assert empirical_cdf([0.1, 0.2, 0.3, 0.4], 0.05) == 0.0
    assert empirical_cdf([0.1, 0.2, 0.3, 0.4], 0.5) == 1.0
    assert empirical_cdf([0.2, 0.2, 0.2], 0.2) == 0.5  # a flat history is not an extreme
