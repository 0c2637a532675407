"""The ML engine's settings."""

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
    train_batch: int = 1
    """Labels gathered before the model learns from them (one SGD step each, a few µs): 1
    learns from each label as it comes."""

    def __post_init__(self) -> None:
        if self.train_batch < 1:
            raise ValueError("train_batch must be at least 1")
        unknown = set(self.features) - set(FEATURE_NAMES)
        if unknown:
            raise ValueError(f"unknown features {sorted(unknown)}; use {', '.join(FEATURE_NAMES)}")
