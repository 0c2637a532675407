"""OnlineLogistic against scikit-learn's SGDClassifier, its reference, and by hand."""

import math

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier

from starmesh.engines.ml.logistic import OnlineLogistic


def test_the_first_step_by_hand() -> None:
    model = OnlineLogistic(2, alpha=0.01)
    model.learn([[1.0, 2.0]], [1])
    # t0 = 1 / (0.01 * sqrt(1 / sqrt(0.01))) = 10 sqrt(10); eta = 1 / (0.01 * t0) = sqrt(10);
    # score 0, gradient expit(0) - 1 = -0.5, step -eta * -0.5 = sqrt(10) / 2; zero weights
    # stay zero through the decay, then move by step * x.
    step = math.sqrt(10) / 2
    assert model.coef == [pytest.approx(step, rel=1e-15), pytest.approx(2 * step, rel=1e-15)]
    assert model.intercept == pytest.approx(step, rel=1e-15)
    assert model.samples == 1


# Rounding differs a little (scikit-learn keeps the decay as a separate scale factor); at
# a smaller alpha the first steps are larger (eta starts at alpha ** -0.25), amplifying it.
@pytest.mark.parametrize(("alpha", "rtol"), [(1e-2, 1e-12), (1e-3, 1e-10)])
def test_it_learns_what_sgd_classifier_learns_batch_after_batch(alpha: float, rtol: float) -> None:
    rng = np.random.default_rng(1)
    reference = SGDClassifier(loss="log_loss", alpha=alpha, shuffle=False)
    ours = OnlineLogistic(6, alpha=alpha)
    for size in [16] * 50 + [1, 3, 64]:
        rows = rng.normal(size=(size, 6))
        labels = (rows[:, 0] - 0.5 * rows[:, 3] + rng.normal(size=size) > 0).astype(int)
        reference.partial_fit(rows, labels, classes=[0, 1])
        ours.learn(rows.tolist(), labels.tolist())
        np.testing.assert_allclose(ours.coef, reference.coef_[0], rtol=rtol)
        assert ours.intercept == pytest.approx(reference.intercept_[0], rel=rtol)
    assert ours.samples + 1 == reference.t_
    probe = rng.normal(size=(5, 6))
    expected = reference.decision_function(probe)
    assert [ours.score(row) for row in probe.tolist()] == pytest.approx(expected, rel=rtol)


def test_a_very_confident_wrong_score_moves_by_a_whole_eta() -> None:
    """Below a score of -37 the gradient is computed as exp(score) - label (no overflow)."""
    model = OnlineLogistic(1, alpha=0.01)
    model.coef = [-50.0]
    model.learn([[1.0]], [1])  # score -50: expit(-50) - 1 = -1 to 1e-21
    eta = math.sqrt(10)
    assert model.coef == [pytest.approx(-50.0 * (1 - eta * 0.01) + eta, rel=1e-15)]


def test_bad_shapes_and_settings_are_refused() -> None:
    model = OnlineLogistic(2, alpha=0.01)
    with pytest.raises(ValueError, match="2 rows but 1 labels"):
        model.learn([[1.0, 2.0], [3.0, 4.0]], [1])
    with pytest.raises(ValueError, match="expected 2 features, got 3"):
        model.learn([[1.0, 2.0, 3.0]], [0])
    with pytest.raises(ValueError, match="alpha must be positive"):
        OnlineLogistic(2, alpha=0.0)
    with pytest.raises(ValueError, match="at least one feature"):
        OnlineLogistic(0, alpha=0.01)
