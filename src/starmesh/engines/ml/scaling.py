"""Standardisation learnt online: the mean and standard deviation of every sample seen.

What ``sklearn.preprocessing.StandardScaler.partial_fit`` keeps, for 2% of its cost: on the
model's batches of 16 rows it spent 0.16 ms per call on validation (plus 0.07 ms per
``transform``), with the event loop of every engine waiting. The update is Chan, Golub and
LeVeque's pairwise one (each batch's mean and sum of squared deviations merged into the
running ones), numerically stable; a test holds it to scikit-learn's figures.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["RunningScaler"]

_EPS = float(np.finfo(np.float64).eps)


class RunningScaler:
    def __init__(self, width: int) -> None:
        if width < 1:
            raise ValueError("a scaler needs at least one column")
        self.samples = 0
        self.mean: NDArray[np.float64] = np.zeros(width)
        self.scale: NDArray[np.float64] = np.ones(width)
        """The population standard deviation (as scikit-learn's), 1 for a constant column."""
        self._squares: NDArray[np.float64] = np.zeros(width)
        """Sum of squared deviations from the mean."""

    def update(self, batch: NDArray[np.float64]) -> None:
        """Learn from ``batch`` (rows of samples, one column per feature)."""
        if batch.ndim != 2 or batch.shape[1] != self.mean.shape[0] or batch.shape[0] == 0:
            raise ValueError(f"expected rows of {self.mean.shape[0]} columns, got {batch.shape}")
        rows = batch.shape[0]
        batch_mean = batch.mean(axis=0)
        batch_squares = np.square(batch - batch_mean).sum(axis=0)
        total = self.samples + rows
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (rows / total)
        self._squares = (
            self._squares + batch_squares + np.square(delta) * (self.samples * rows / total)
        )
        self.samples = total
        variance = self._squares / total
        # scikit-learn's rule for a column it treats as constant (no spread beyond rounding).
        constant = variance <= total * _EPS * variance + np.square(total * self.mean * _EPS)
        self.scale = np.where(constant, 1.0, np.sqrt(variance))

    def transform(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        return (rows - self.mean) / self.scale
