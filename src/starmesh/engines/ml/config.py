"""The ML engine's settings, apart from the model so reading them costs no scikit-learn."""

from __future__ import annotations

import msgspec

from starmesh.engines.features.engine import FEATURE_NAMES

__all__ = ["MlConfig"]


class MlConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    model: str = "sgd_direction"
    features: tuple[str, ...] = FEATURE_NAMES
    window: int = 200
    """Recent predictions the accuracy, log-loss and base rate are taken over."""
    min_scored: int = 50
    """Predictions scored before the model can be judged worse than the base rate."""
    seed: int = 0
    train_batch: int = 16
    """Labels learnt per ``partial_fit``. Each call costs scikit-learn 1-3 ms of the event
    loop whatever its size, and no engine of the process runs meanwhile: at 16, a call every
    ~0.16 s at 1,000 quotes/s over 50 symbols, the cause of most routes' p99 tails. 64 makes
    those pauses a quarter as frequent but the model learns later: measured over 30 s at
    that rate, 24-28 routes of 43 under 1 ms instead of 12-18, and 155-516 predictions
    published instead of 627-750 (the model is trusted less often)."""

    def __post_init__(self) -> None:
        if self.train_batch < 1:
            raise ValueError("train_batch must be at least 1")
        unknown = set(self.features) - set(FEATURE_NAMES)
        if unknown:
            raise ValueError(f"unknown features {sorted(unknown)}; use {', '.join(FEATURE_NAMES)}")
