"""RunningScaler against scikit-learn's StandardScaler.partial_fit, its reference."""

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from starmesh.engines.ml.scaling import RunningScaler


def test_a_hand_computed_pair_of_batches() -> None:
    scaler = RunningScaler(1)
    scaler.update(np.array([[1.0], [3.0]]))
    scaler.update(np.array([[5.0], [7.0], [9.0]]))
    # 1, 3, 5, 7, 9: mean 5, population variance (16 + 4 + 0 + 4 + 16) / 5 = 8
    assert scaler.mean.tolist() == [5.0]
    assert scaler.scale[0] == pytest.approx(8**0.5, rel=1e-15)
    assert scaler.transform(np.array([[5.0 + 8**0.5]])).tolist() == [[pytest.approx(1.0)]]


def test_it_keeps_what_standard_scaler_keeps_batch_after_batch() -> None:
    rng = np.random.default_rng(11)
    reference, ours = StandardScaler(), RunningScaler(4)
    for size in [1, 16, 16, 3, 64, 16, 1, 1, 200]:
        batch = rng.normal(
            loc=[100.0, 0.0, -3.0, 1e-4], scale=[5.0, 1.0, 0.01, 1e-6], size=(size, 4)
        )
        batch[:, 2] = -3.0 if size < 50 else batch[:, 2]  # constant for a while, then not
        reference.partial_fit(batch)
        ours.update(batch)
        np.testing.assert_allclose(ours.mean, reference.mean_, rtol=1e-12)
        np.testing.assert_allclose(ours.scale, reference.scale_, rtol=1e-9)
        probe = rng.normal(size=(3, 4))
        np.testing.assert_allclose(ours.transform(probe), reference.transform(probe), rtol=1e-9)


def test_a_constant_column_is_left_unscaled() -> None:
    scaler = RunningScaler(2)
    scaler.update(np.array([[2.5, 1.0], [2.5, 2.0], [2.5, 4.0]]))
    assert scaler.scale[0] == 1.0
    assert scaler.transform(np.array([[3.5, 1.0]]))[0, 0] == 1.0


def test_a_batch_of_the_wrong_shape_is_refused() -> None:
    scaler = RunningScaler(3)
    for bad in (np.zeros((2, 2)), np.zeros(3), np.zeros((0, 3))):
        with pytest.raises(ValueError, match="rows of 3 columns"):
            scaler.update(bad)
    with pytest.raises(ValueError, match="at least one column"):
        RunningScaler(0)
