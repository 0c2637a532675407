"""The ML engine: next-bar direction from the Features engine's updates, learnt online.

Publishes ``ml.prediction.<model>`` (a Prediction with ``probability_up``, to Strategy) for
every update it can predict on, while the model does at least as well as the base rate over
its recent predictions; below it, it goes quiet (and keeps learning) until it recovers.
"""

from __future__ import annotations

from typing import Any

from starmesh.core.enums import EngineType
from starmesh.core.message import Message
from starmesh.core.payloads import FeatureUpdate, Prediction
from starmesh.engines.base import Engine, EngineContext, Routes
from starmesh.engines.ml.config import MlConfig
from starmesh.engines.ml.model import OnlineDirectionModel

__all__ = ["MlEngine"]


class MlEngine(Engine):
    kind = EngineType.ML

    def __init__(self, context: EngineContext, config: MlConfig | None = None) -> None:
        super().__init__(context)
        self.config = config = config or MlConfig()
        self.model = OnlineDirectionModel(
            config.features, window=config.window, min_scored=config.min_scored,
            train_batch=config.train_batch,
        )  # fmt: skip
        self.published = 0
        self.withheld = 0

    def routes(self) -> Routes:
        return {"features.update.*": self.on_features}

    async def on_features(self, message: Message) -> None:
        update = message.payload
        if not isinstance(update, FeatureUpdate):
            return
        probability = self.model.observe(
            update.symbol, update.features, update.features.get("ret_1")
        )
        if probability is None:
            return
        if not self.model.trusted:
            self.withheld += 1
            return
        self.published += 1
        prediction = Prediction(
            model=self.config.model,
            symbol=update.symbol,
            horizon="1 bar",
            value=probability,
            confidence=max(probability, 1 - probability),
            probability_up=probability,
        )
        await self.publish(f"ml.prediction.{self.config.model}", prediction)

    def health_detail(self) -> dict[str, Any]:
        model = self.model
        return {
            "published": self.published,
            "withheld": self.withheld,
            "samples": model.samples,
            "accuracy": model.accuracy,
            "base_rate": model.base_rate,
            "log_loss": model.log_loss,
            "trusted": model.trusted,
        }
