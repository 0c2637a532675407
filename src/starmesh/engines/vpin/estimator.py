"""VPIN, the volume-synchronised probability of informed trading (Easley, López de Prado and
O'Hara, "Flow Toxicity and Liquidity in a High-frequency World", RFS 2012).

Trades are first gathered into time bars. Each bar's volume is split into buy and sell volume
by bulk volume classification: ``V_B = V · Φ(ΔP / σ)``, ``V_S = V - V_B``, with ``ΔP`` the
bar's price change and ``σ`` the standard deviation of bar price changes. Volume then fills
buckets of equal size ``V``; a bar that crosses a bucket boundary is split, both parts keeping
the bar's ``ΔP`` (so the same buy fraction). Over the last ``n`` buckets,

    VPIN = Σ |V_S - V_B| / (n · V).
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

__all__ = ["Bucket", "VpinEstimator", "empirical_cdf", "normal_cdf"]


def normal_cdf(x: float) -> float:
    """Φ(x), the standard normal distribution function."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def empirical_cdf(history: deque[float] | list[float], value: float) -> float:
    """Where ``value`` stands in ``history``: the fraction below it, plus half the fraction
    equal to it (the mid-distribution function, so a flat history puts any value of it at 0.5,
    not at 1). 0 for an empty history.
    """
    if not history:
        return 0.0
    below = equal = 0
    for seen in history:
        if seen < value:
            below += 1
        elif seen == value:
            equal += 1
    return (below + equal / 2) / len(history)


class Bucket(NamedTuple):
    buy_volume: float
    sell_volume: float
    vpin: float | None
    """VPIN as of this bucket: None until ``window`` buckets exist."""


class VpinEstimator:
    """VPIN of one symbol from its time bars.

    ``sigma`` fixes σ; without it σ is the running sample standard deviation of every bar
    price change seen so far, this bar's included. While σ is zero or undefined (fewer than
    two bars) a bar carries no information on direction and is split half and half.
    """

    def __init__(self, bucket_volume: float, window: int, sigma: float | None = None) -> None:
        if not bucket_volume > 0:
            raise ValueError(f"bucket_volume must be positive, got {bucket_volume!r}")
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window!r}")
        if sigma is not None and not sigma > 0:
            raise ValueError(f"sigma must be positive when given, got {sigma!r}")
        self.bucket_volume = float(bucket_volume)
        self.window = window
        self._fixed_sigma = sigma
        self._imbalances: deque[float] = deque(maxlen=window)
        self._bucket_buy = 0.0
        self._bucket_sell = 0.0
        self._bucket_fill = 0.0
        self._bars = 0
        self._mean = 0.0
        self._m2 = 0.0
        self.buckets = 0
        """Buckets completed so far."""
        self.completed: list[Bucket] = []
        """The buckets the last ``add_bar`` completed, oldest first."""

    @property
    def sigma(self) -> float:
        if self._fixed_sigma is not None:
            return self._fixed_sigma
        return math.sqrt(self._m2 / (self._bars - 1)) if self._bars > 1 else 0.0

    def add_bar(self, price_change: float, volume: float) -> float | None:
        """Add one time bar; the VPIN as of the last bucket it completed, or None when it
        completed none or fewer than ``window`` buckets exist yet.
        """
        if not math.isfinite(price_change):
            raise ValueError(f"price_change must be finite, got {price_change!r}")
        if not (volume >= 0 and math.isfinite(volume)):
            raise ValueError(f"volume must be finite and not negative, got {volume!r}")
        self._update_sigma(price_change)
        sigma = self.sigma
        buy_fraction = normal_cdf(price_change / sigma) if sigma > 0 else 0.5
        self.completed = []
        remaining = float(volume)
        while remaining > 0:
            room = self.bucket_volume - self._bucket_fill
            take = room if remaining >= room else remaining
            self._bucket_buy += take * buy_fraction
            self._bucket_sell += take * (1.0 - buy_fraction)
            remaining -= take
            if take == room:
                self._complete_bucket()
            else:
                self._bucket_fill += take
        return self.completed[-1].vpin if self.completed else None

    def _update_sigma(self, price_change: float) -> None:
        # Welford: the running mean and sum of squared deviations, stable in one pass.
        self._bars += 1
        delta = price_change - self._mean
        self._mean += delta / self._bars
        self._m2 += delta * (price_change - self._mean)

    def _complete_bucket(self) -> None:
        self._imbalances.append(abs(self._bucket_sell - self._bucket_buy))
        self.buckets += 1
        vpin = None
        if len(self._imbalances) == self.window:
            vpin = sum(self._imbalances) / (self.window * self.bucket_volume)
        self.completed.append(Bucket(self._bucket_buy, self._bucket_sell, vpin))
        self._bucket_buy = self._bucket_sell = self._bucket_fill = 0.0
