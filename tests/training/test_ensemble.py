"""A seed ensemble (a recipe with members > 1): trained member by member on the same rows,
served as one SavedModel whose answer is the members' average."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zoo.datasets import load_dataset
from zoo.registry import create_model, model_info
from zoo.training.config import TrainConfig
from zoo.training.runs import FINISHED_FILE, MEMBER_WEIGHTS_FILE, MEMBERS_DIR
from zoo.training.trainer import train

MODEL = "digits-mlp-ensemble"


def _config(tmp_path):
    return TrainConfig(model=MODEL, epochs=2, output_dir=str(tmp_path / "run"), models_dir=str(tmp_path / "models"))


class _Fits(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.count = 0

    def on_train_begin(self, logs=None):
        self.count += 1


def test_the_served_ensemble_is_the_average_of_its_independently_trained_members(tmp_path):
    fits = _Fits()
    result = train(_config(tmp_path), verbose=0, callbacks=[fits])
    members = model_info(MODEL).recipe.members
    assert members == 3 and fits.count == members
    data = load_dataset("digits", seed=42)
    images = data.test.features["image"].astype(np.float32)
    answers = []
    for member in range(members):
        model = create_model(MODEL, data)  # one member's network
        model.load_weights(result.run_dir / MEMBERS_DIR / str(member) / MEMBER_WEIGHTS_FILE)
        answers.append(model.predict({"image": images}, verbose=0)["probabilities"])
    assert not np.allclose(answers[0], answers[1])  # different starts, different members
    served = tf.saved_model.load(str(result.version_dir)).signatures["serving_default"]
    probabilities = served(image=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, np.mean(answers, axis=0), rtol=1e-5, atol=1e-6)
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == data.test.target))
    assert abs(result.metrics["test"]["accuracy"] - accuracy) < 1e-6  # what the trainer reports is the ensemble's


def test_a_rerun_trains_only_the_members_that_had_not_finished(tmp_path):
    first = train(_config(tmp_path), verbose=0)
    (first.run_dir / FINISHED_FILE).unlink()  # as if killed while training the last member
    (first.run_dir / MEMBERS_DIR / "2" / MEMBER_WEIGHTS_FILE).unlink()
    fits = _Fits()
    again = train(_config(tmp_path), verbose=0, callbacks=[fits])
    assert fits.count == 1  # members 0 and 1 were loaded, not trained again
    assert again.metrics["test"]["accuracy"] == first.metrics["test"]["accuracy"]  # seeded: the same member 2
