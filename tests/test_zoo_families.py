"""What the registry-wide tests cannot see: Wide & Deep's config round trip and two outputs,
and transfer learning's guarantees (A untouched, B's base frozen, then fine-tuned)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from zoo.registry import create_model, model_info
from zoo.training.config import TrainConfig
from zoo.training.trainer import train


def test_wide_and_deep_config_round_trip(load):
    from zoo.architectures.wide_deep import WideAndDeep

    data = load("california-housing")
    model = create_model("wide-and-deep", data, units=8)
    rows = {k: data.test.features[k][:5] for k in model.feature_names}
    clone = WideAndDeep.from_config(model.get_config())
    clone(rows)
    clone.set_weights(model.get_weights())
    for key, value in model(rows).items():
        np.testing.assert_allclose(clone(rows)[key], value, rtol=1e-6)
    assert model.get_config()["wide_features"] == ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population"]
    assert keras.saving.get_registered_name(WideAndDeep) == "zoo>WideAndDeep"


def test_wide_and_deep_trains_both_outputs_with_their_weights(tmp_path):
    result = train(TrainConfig(model="wide-and-deep", epochs=2, hparams={"units": 8},
                               output_dir=str(tmp_path / "run"), models_dir=str(tmp_path / "models")), verbose=0)
    assert {"main_mse", "aux_mse", "loss"} <= set(result.metrics["test"])
    card = json.loads((result.version_dir / "model_card.json").read_text())
    assert set(card["signature"]["outputs"]) == {"main", "aux"}
    assert result.metrics["primary_metric"] == "main_mae"
    # loss = 0.9 * main + 0.1 * aux, as compiled
    test = result.metrics["test"]
    assert test["loss"] == pytest.approx(0.9 * test["main_loss"] + 0.1 * test["aux_loss"], rel=1e-3)


@pytest.fixture()
def model_a(load, tmp_path):
    data = load("digits", classes=[str(d) for d in range(8)])
    model = create_model("digits-mlp", data, hidden=[32, 16])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.train.select(["image"]), data.train.target, epochs=1, verbose=0)
    path = tmp_path / "a.keras"
    model.save(path)
    return model, path


def test_training_b_never_changes_a(model_a, load):
    model, _ = model_a
    before = [w.copy() for w in model.get_weights()]
    data = load("digits", task="binary", classes=["8", "9"], max_train_rows=200)
    b = create_model("transfer-mlp", data, source=model)
    b.get_layer("base").trainable = True
    b.compile("adam", "binary_crossentropy")
    b.fit(data.train.select(["image"]), data.train.target, epochs=2, verbose=0)
    for original, now in zip(before, model.get_weights()):
        np.testing.assert_array_equal(original, now)
    moved = [not np.array_equal(a, b_) for a, b_ in zip(before, b.get_layer("base").get_weights())]
    assert any(moved)  # B's copy did train


class _BaseWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.by_epoch = {}

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch[epoch] = [w.copy() for w in self.model.get_layer("base").get_weights()]


def test_the_base_is_frozen_then_fine_tuned(model_a, tmp_path):
    model, path = model_a
    a_hidden = [w for layer in model.get_layer("digits_mlp").layers[:-1] for w in layer.get_weights()]
    seen = _BaseWeights()
    result = train(TrainConfig(model="transfer-mlp", epochs=14, patience=50, hparams={"source": str(path)},
                               output_dir=str(tmp_path / "b"), models_dir=str(tmp_path / "models")),
                   verbose=0, callbacks=[seen])
    frozen_epochs = model_info("transfer-mlp").recipe.phases[0].epochs  # the head-only phase
    assert frozen_epochs < 14  # so that the run below fine-tunes too
    for epoch in range(frozen_epochs):
        for a, b in zip(a_hidden, seen.by_epoch[epoch]):
            np.testing.assert_array_equal(a, b)  # did not move while frozen
    assert any(not np.array_equal(a, b) for a, b in zip(a_hidden, seen.by_epoch[13]))
    history = pd.read_csv(result.run_dir / "history.csv")
    assert list(history["epoch"]) == list(range(14))  # one history across both phases
    assert result.metrics["test"]["accuracy"] > 0.5
