"""Logistic regression learnt online, one sample at a time, by stochastic gradient descent.

scikit-learn's ``SGDClassifier(loss="log_loss", penalty="l2", learning_rate="optimal",
shuffle=False)`` update, step for step (a test holds the coefficients to scikit-learn's):

- the step size ``eta = 1 / (alpha * (t0 + t - 1))``, with ``t0 = 1 / (alpha * sqrt(1 /
  sqrt(alpha)))`` (Bottou's heuristic for the first step) and ``t`` counting every sample
  learnt since the start;
- the gradient of the half binomial loss, ``expit(p) - y`` for ``y`` in {0, 1}, computed as
  scikit-learn does it (stable for large ``|p|``);
- the L2 penalty as weight decay: ``w *= 1 - eta * alpha`` (never below 0), then
  ``w += -eta * gradient * x``, and the intercept moves by the same step, undecayed.

Why not ``partial_fit`` itself: it validates its inputs on every call, which cost 0.5-2 ms
per batch of 16 rows here, with the event loop of every engine in the process waiting. The
arithmetic of a batch is a few dozen microseconds in plain Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["OnlineLogistic"]


class OnlineLogistic:
    def __init__(self, width: int, *, alpha: float) -> None:
        if width < 1:
            raise ValueError("a model needs at least one feature")
        if not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha!r}")
        self.alpha = alpha
        self.coef = [0.0] * width
        self.intercept = 0.0
        self.samples = 0
        """Samples learnt from."""
        typical_weight = math.sqrt(1.0 / math.sqrt(alpha))
        self._t0 = 1.0 / (typical_weight * alpha)

    def learn(self, rows: Sequence[Sequence[float]], labels: Sequence[int]) -> None:
        """One SGD step per row, in order; ``labels`` are 1 (rise) or 0."""
        if len(rows) != len(labels):
            raise ValueError(f"{len(rows)} rows but {len(labels)} labels")
        alpha, width = self.alpha, len(self.coef)
        coef, intercept, t = self.coef, self.intercept, self.samples + 1
        for row, label in zip(rows, labels, strict=True):
            if len(row) != width:
                raise ValueError(f"expected {width} features, got {len(row)}")
            eta = 1.0 / (alpha * (self._t0 + t - 1))
            score = sum(w * x for w, x in zip(coef, row, strict=True)) + intercept
            step = -eta * _gradient(label, score)
            decay = max(0.0, 1.0 - eta * alpha)
            coef = [w * decay + step * x for w, x in zip(coef, row, strict=True)]
            intercept += step
            t += 1
        self.coef, self.intercept, self.samples = coef, intercept, t - 1

    def score(self, row: Sequence[float]) -> float:
        """The log-odds of a rise for ``row``."""
        return sum(w * x for w, x in zip(self.coef, row, strict=True)) + self.intercept


def _gradient(label: float, score: float) -> float:
    """d(loss)/d(score) of the half binomial loss: expit(score) - label, as scikit-learn
    computes it."""
    if score > -37:
        e = math.exp(-score)
        return ((1 - label) - label * e) / (1 + e)
    return math.exp(score) - label
