"""The ple-memory models end to end: trained, exported, and served by the SavedModel, they
answer every training row with its own target and every other row with their network."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zoo.datasets import load_dataset
from zoo.registry import create_model
from zoo.training.config import TrainConfig
from zoo.training.runs import MODEL_FILE
from zoo.training.trainer import train


def test_the_served_regressor_remembers_its_training_rows_and_predicts_the_rest(tmp_path):
    config = TrainConfig(model="ple-memory-regressor", epochs=2, output_dir=str(tmp_path / "run"),
                         models_dir=str(tmp_path / "models"))
    result = train(config, verbose=0)
    data = load_dataset("red-wine", task="regression", seed=config.seed)
    served = tf.saved_model.load(str(result.version_dir)).signatures["serving_default"]

    def serve(split):
        return served(**{n: tf.constant(split.features[n], tf.float32) for n in data.feature_names})[
            "prediction"].numpy()

    # Two epochs leave the network far from the targets; the memory is exact.
    np.testing.assert_allclose(serve(data.train), data.train.target, rtol=1e-6)
    seen = {tuple(row) for row in np.stack([data.train.features[n] for n in data.feature_names], axis=1)}
    test_rows = np.stack([data.test.features[n] for n in data.feature_names], axis=1)
    new = np.array([tuple(row) not in seen for row in test_rows])
    assert 0 < new.sum() < len(new)  # red wine's test split repeats some training rows
    trained = keras.saving.load_model(result.run_dir / MODEL_FILE, compile=False)
    network = create_model("ple-mlp-regressor", data)  # the same network without the memory
    network.set_weights(trained.get_weights())
    expected = network.predict({n: data.test.features[n] for n in data.feature_names}, verbose=0)["prediction"][:, 0]
    answers = serve(data.test)
    np.testing.assert_allclose(answers[new], expected[new], rtol=1e-4, atol=1e-6)
    assert not np.allclose(answers[~new], expected[~new], atol=1e-3)  # repeats: remembered, not predicted
    mae = float(np.mean(np.abs(answers - data.test.target)))
    assert abs(result.metrics["test"]["mae"] - mae) < 1e-5  # the trainer's figure is the served model's
