"""Value at risk and expected shortfall by historical simulation, and the drawdown of equity.

Losses are positive fractions: a VaR of 0.021 means a loss of 2.1% is exceeded with
probability ``1 - confidence`` over the horizon of the returns given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["DrawdownTracker", "expected_shortfall", "historical_var"]


def _returns_array(
    returns: Sequence[float] | NDArray[np.float64], confidence: float
) -> NDArray[np.float64]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    values = np.asarray(returns, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("returns must be a non-empty series")
    if not np.isfinite(values).all():
        raise ValueError("returns must be finite (no NaN or infinity)")
    return values


def historical_var(
    returns: Sequence[float] | NDArray[np.float64], confidence: float = 0.99
) -> float:
    """Minus the ``1 - confidence`` quantile of ``returns`` (numpy's linear interpolation)."""
    values = _returns_array(returns, confidence)
    return float(-np.quantile(values, 1 - confidence))


def expected_shortfall(
    returns: Sequence[float] | NDArray[np.float64], confidence: float = 0.975
) -> float:
    """Minus the mean of the returns at or below the ``1 - confidence`` quantile."""
    values = _returns_array(returns, confidence)
    cutoff = np.quantile(values, 1 - confidence)
    return float(-values[values <= cutoff].mean())


class DrawdownTracker:
    """The fall of equity from its highest value seen."""

    def __init__(self, peak: float = 0.0) -> None:
        self.peak = peak

    def update(self, equity: float) -> float:
        """Record ``equity``; the drawdown from the peak as a fraction (0 at a new high)."""
        if equity > self.peak:
            self.peak = equity
        return self.drawdown(equity)

    def drawdown(self, equity: float) -> float:
        return 0.0 if self.peak <= 0 else max(0.0, (self.peak - equity) / self.peak)
