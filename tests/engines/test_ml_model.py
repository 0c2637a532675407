"""The online model learns a learnable signal, and goes quiet on noise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

from starmesh.core.enums import EngineType
from starmesh.engines.ml import MlConfig, MlEngine, OnlineDirectionModel
from starmesh.platform.composition import Platform
from starmesh.platform.config import PlatformConfig

FEATURES = ("a", "b")


def stream(
    model: OnlineDirectionModel, rng: np.random.Generator, n: int, signal: float, drift: float = 0
) -> int:
    """n steps: each brings new features and the return that followed the last ones,
    ``drift + signal * a + noise``; how many steps found the model untrusted."""
    previous: dict[str, float] | None = None
    untrusted = 0
    for _ in range(n):
        features = {"a": rng.normal(), "b": rng.normal()}
        realised = None
        if previous is not None:
            realised = drift + signal * previous["a"] + rng.normal()
        model.observe("X", features, realised)
        untrusted += not model.trusted
        previous = features
    return untrusted


def test_a_learnable_signal_beats_the_base_rate_by_far() -> None:
    model = OnlineDirectionModel(FEATURES, window=400, min_scored=50)
    stream(model, np.random.default_rng(7), 2_000, signal=2.0)
    assert model.accuracy is not None
    assert model.base_rate is not None
    # P(sign(2a + e) = sign(a)) for independent normals: 1/2 + atan(2)/pi = 0.852.
    assert model.accuracy > 0.75
    assert model.base_rate < 0.58
    assert model.trusted
    assert model.log_loss is not None
    assert model.log_loss < 0.5


def test_noise_stays_near_the_base_rate_and_stops_publishing() -> None:
    model = OnlineDirectionModel(FEATURES, window=200, min_scored=50)
    # No feature helps; a drift up makes the base rate about 0.62.
    untrusted = stream(model, np.random.default_rng(3), 3_000, signal=0.0, drift=0.3)
    assert model.accuracy is not None
    assert model.base_rate is not None
    assert model.base_rate - 0.1 < model.accuracy < model.base_rate + 0.03
    assert untrusted > 0  # it went quiet whenever it fell below the base rate


class Recording(OnlineDirectionModel):
    """Keeps what it learnt from, in order, for the reference to learn the same."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.learnt: list[tuple[NDArray[np.float64], int]] = []

    def _learn(self, x: NDArray[np.float64], label: int) -> None:
        self.learnt.append((x, label))
        super()._learn(x, label)


@pytest.mark.parametrize("train_batch", [1, 4])
def test_its_probability_is_scikit_learn_s_on_the_same_batches(train_batch: int) -> None:
    """The reference: StandardScaler and SGDClassifier(loss="log_loss", shuffle=False), fed
    the batches the model learnt from, in the same order."""
    model = Recording(FEATURES, window=50, min_scored=5, train_batch=train_batch)
    stream(model, np.random.default_rng(5), 300, signal=1.0)
    scaler = StandardScaler()
    classifier = SGDClassifier(loss="log_loss", alpha=1e-2, shuffle=False)
    learnt = model.learnt[: len(model.learnt) - len(model.learnt) % train_batch]
    assert len(learnt) > 200
    for start in range(0, len(learnt), train_batch):
        batch = np.vstack([x for x, _ in learnt[start : start + train_batch]])
        labels = [label for _, label in learnt[start : start + train_batch]]
        scaler.partial_fit(batch)
        classifier.partial_fit(scaler.transform(batch), labels, classes=[0, 1])
    for row in ([0.3, -1.2], [2.0, 0.1], [-0.7, 0.0]):
        x = np.array([row])
        expected = classifier.predict_proba(scaler.transform(x))[0, 1]
        assert model.probability(x) == pytest.approx(expected, abs=1e-12)


def test_incomplete_features_and_flat_bars_teach_nothing() -> None:
    model = OnlineDirectionModel(FEATURES, window=10, min_scored=5, train_batch=1)
    assert model.observe("X", {"a": 1.0}, None) is None  # "b" missing
    assert model.observe("X", {"a": 1.0, "b": float("nan")}, None) is None
    assert model.observe("X", {"a": 1.0, "b": 2.0}, None) is None  # nothing learnt yet
    assert model.observe("X", {"a": 0.5, "b": 1.0}, 0.0) is None  # a flat bar: no label
    assert model.samples == 0
    model.observe("X", {"a": 0.5, "b": 1.0}, 0.01)
    assert model.samples == 1
    probability = model.observe("Y", {"a": 0.5, "b": 1.0}, None)
    assert probability is not None
    assert 0 < probability < 1


def test_learning_batches_are_sized_by_the_ml_config() -> None:
    with pytest.raises(ValueError, match="train_batch"):
        MlConfig(train_batch=0)
    model = OnlineDirectionModel(FEATURES, window=10, min_scored=5, train_batch=3)
    for n in range(1, 4):
        model.observe("X", {"a": 0.5, "b": 1.0}, None)
        model.observe("X", {"a": 0.5, "b": 1.0}, 0.01 * (-1) ** n)
    assert model.samples == 3
    assert model._fitted, "the third label fills the batch: learnt"


async def test_the_ml_engine_takes_its_batch_size_from_the_platform_config() -> None:
    config = PlatformConfig(symbols=("AAPL",), engines=(EngineType.ML,),
                            ml=MlConfig(train_batch=5))  # fmt: skip
    platform = Platform(config)
    await platform.start()
    try:
        engine = platform.engines[EngineType.ML]
        assert isinstance(engine, MlEngine)
        assert engine.model.train_batch == 5
    finally:
        await platform.stop()
