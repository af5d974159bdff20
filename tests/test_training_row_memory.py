"""TrainingRowMemory against its definition (an exact repeat of a training row, found with
numpy), and the smoothed loss against Keras's categorical cross-entropy."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from zoo.architectures.memory import TrainingRowMemory
from zoo.training.losses import SmoothedSparseCategoricalCrossentropy, training_loss


def _table():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, 4)).astype(np.float32)
    rows[:, 3] = np.round(rows[:, 3], 1)  # a coarse column, as measured data has
    rows[[10, 50]] = rows[3]  # row 3 is measured three times, with one target, as red wine's repeats
    targets = rng.normal(size=(300, 2)).astype(np.float32)
    targets[[10, 50]] = targets[3]
    return rows, targets


def _reference(rows, targets, probe):
    found, remembered = [], []
    for row in probe:
        same = np.all(rows == row, axis=1)
        found.append([float(same.any())])
        remembered.append(targets[same].mean(axis=0) if same.any() else np.zeros(targets.shape[1]))
    return np.asarray(found), np.asarray(remembered)


def test_a_repeated_row_gets_its_target_and_a_near_miss_or_new_row_gets_nothing():
    rows, targets = _table()
    near_miss = rows[7].copy()
    near_miss[3] += 0.1  # one step of the coarse column: another measurement
    probe = np.stack([rows[3], rows[7], near_miss, np.full(4, 9.0, np.float32), rows[299]])
    found, remembered = TrainingRowMemory(rows, targets)(probe)
    expected_found, expected_remembered = _reference(rows, targets, probe)
    np.testing.assert_array_equal(np.asarray(found), expected_found)
    assert expected_found.ravel().tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]
    np.testing.assert_allclose(np.asarray(remembered), expected_remembered, rtol=1e-6)


def test_while_training_a_row_does_not_find_itself_only_its_twins():
    rows, targets = _table()
    layer = TrainingRowMemory(rows, targets)
    found, remembered = layer(rows[[3, 10, 7, 299]], training=True)
    assert np.asarray(found).ravel().tolist() == [1.0, 1.0, 0.0, 0.0]  # 3 and 10 have twins; 7, 299 none
    np.testing.assert_allclose(np.asarray(remembered)[:2], targets[[3, 3]], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(remembered)[2:], 0.0)


def test_memory_survives_its_config():
    rows, targets = _table()
    copy = TrainingRowMemory.from_config(TrainingRowMemory(rows, targets).get_config())
    found, remembered = copy(rows[[50]])
    assert float(np.asarray(found)[0, 0]) == 1.0
    np.testing.assert_allclose(np.asarray(remembered)[0], targets[3], rtol=1e-6)


def test_smoothed_sparse_loss_is_keras_categorical_cross_entropy_on_one_hot_targets():
    rng = np.random.default_rng(1)
    probabilities = keras.ops.softmax(rng.normal(size=(16, 5)).astype(np.float32))
    ids = rng.integers(0, 5, size=16)
    ours = SmoothedSparseCategoricalCrossentropy(0.1)(ids, probabilities)
    reference = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(5)[ids], probabilities)
    np.testing.assert_allclose(float(ours), float(reference), rtol=1e-6)
    assert SmoothedSparseCategoricalCrossentropy.from_config(
        SmoothedSparseCategoricalCrossentropy(0.2).get_config()).label_smoothing == 0.2


def test_smoothing_a_loss_that_has_no_classes_is_refused():
    with pytest.raises(ValueError, match="cross-entropy losses, not 'mae'"):
        training_loss("mae", label_smoothing=0.1)
    assert training_loss("mae") is keras.losses.get("mae")
