"""The shared trainer end to end: outputs, determinism, early stopping, resuming, config."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from zoo.errors import ConfigError
from zoo.training.config import TrainConfig
from zoo.training.evaluation import evaluate_version
from zoo.training.trainer import train


def _config(tmp_path, name="run", **overrides):
    values = {"model": "dnn-regressor", "epochs": 2, "output_dir": str(tmp_path / name),
              "models_dir": str(tmp_path / "models"), "hparams": {"units": 32}}
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    return train(_config(tmp_path_factory.mktemp("trainer")), verbose=0)


def test_a_run_writes_its_outputs_and_exports_a_version(first_run):
    run = first_run.run_dir
    for name in ("config.yaml", "history.csv", "curves.png", "metrics.json", "model.keras"):
        assert (run / name).is_file(), name
    assert not (run / "backup").exists()  # removed once training finished
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [0, 1] and {"loss", "val_loss", "val_mae"} <= set(history)
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["mae"] == first_run.metrics["test"]["mae"] > 0
    assert metrics["epochs_run"] == 2 and metrics["primary_metric"] == "mae"
    assert first_run.version_dir.name == "1"
    resolved = TrainConfig.from_dict(TrainConfig.read_yaml(run / "config.yaml"))
    assert resolved.optimizer == "adam" and resolved.batch_size == 256 and resolved.dataset == "red-wine"


def test_the_served_signature_scores_what_the_trainer_measured(first_run):
    served = evaluate_version(first_run.version_dir.parent.parent, "dnn-regressor")
    assert served["version"] == 1 and served["rows"] == 240
    assert served["metrics"]["mae"] == pytest.approx(first_run.metrics["test"]["mae"], rel=1e-5)
    assert served["metrics"]["mse"] == pytest.approx(first_run.metrics["test"]["mse"], rel=1e-5)


def test_the_same_config_gives_the_same_metrics(first_run, tmp_path):
    again = train(_config(tmp_path, models_dir=str(tmp_path / "other-models")), verbose=0)
    assert again.metrics["test"] == first_run.metrics["test"]
    assert again.metrics["validation"] == first_run.metrics["validation"]


def test_early_stopping_restores_the_best_weights(tmp_path):
    # A learning rate this high makes validation loss bounce, so patience 1 stops early.
    result = train(_config(tmp_path, epochs=40, patience=1, learning_rate=0.5, export=False), verbose=0)
    history = pd.read_csv(result.run_dir / "history.csv")
    assert len(history) < 40
    assert result.metrics["validation"]["loss"] == pytest.approx(history["val_loss"].min(), rel=1e-5)
    assert result.version_dir is None


class _Interrupt(keras.callbacks.Callback):
    """Stands in for a killed process: stops the run after an epoch's backup is written."""

    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt


class _EpochsSeen(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_a_killed_run_resumes_where_it_stopped(tmp_path):
    config = _config(tmp_path, epochs=4, patience=10, export=False, backup_seconds=0)
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0, callbacks=[_Interrupt(after_epoch=1)])
    assert (config.run_dir() / "backup").is_dir()
    seen = _EpochsSeen()
    train(config, verbose=0, callbacks=[seen])
    assert seen.epochs == [2, 3]
    assert list(pd.read_csv(config.run_dir() / "history.csv")["epoch"]) == [0, 1, 2, 3]


def test_the_default_run_dir_is_stable_for_a_config_and_differs_across_configs():
    a = TrainConfig(model="dnn-regressor", dataset="red-wine", epochs=3)
    assert a.run_dir() == TrainConfig(model="dnn-regressor", dataset="red-wine", epochs=3).run_dir()
    assert a.run_dir() != TrainConfig(model="dnn-regressor", dataset="red-wine", epochs=4).run_dir()
    assert a.run_dir().parts[:2] == ("runs", "dnn-regressor")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochs": 0}, "epochs must be a whole number >= 1, got 0"),
        ({"batch_size": 2.5}, "batch_size must be a whole number >= 1"),
        ({"learning_rate": -1.0}, "learning_rate must be a number > 0"),
        ({"test_fraction": 1.2}, "test_fraction must be a number between 0 and 1"),
        ({"hparams": [1, 2]}, "hparams must be a mapping"),
    ],
)
def test_bad_config_values_name_the_field(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(model="dnn-regressor", **values)


def test_a_config_file_rejects_unknown_keys(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: dnn-regressor\nepochz: 3\n")
    with pytest.raises(ConfigError, match="unknown key.*epochz"):
        TrainConfig.from_dict(TrainConfig.read_yaml(path), source=str(path))


def test_a_bad_optimizer_or_loss_is_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown optimizer 'adamm'"):
        train(_config(tmp_path, optimizer="adamm"), verbose=0)
    with pytest.raises(ConfigError, match="unknown loss 'maee'"):
        train(_config(tmp_path, loss="maee"), verbose=0)


def test_a_user_csv_trains_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    size = rng.uniform(30, 200, 300)
    rows = ["size,district,price"] + [
        f"{s:.1f},{'north' if i % 2 else 'south'},{3 * s + (40 if i % 2 else 0) + rng.normal(0, 5):.1f}"
        for i, s in enumerate(size)
    ]
    (tmp_path / "houses.csv").write_text("\n".join(rows) + "\n")
    result = train(_config(tmp_path, dataset="csv", data=str(tmp_path / "houses.csv"), target="price",
                           epochs=30, learning_rate=0.01), verbose=0)
    card = json.loads((result.version_dir / "model_card.json").read_text())
    assert set(card["signature"]["inputs"]) == {"size", "district"}
    assert card["signature"]["inputs"]["district"]["dtype"] == "string"
    assert result.metrics["test"]["mae"] < 0.5 * np.std(3 * size)  # it learned something
    served = evaluate_version(tmp_path / "models", "dnn-regressor")
    assert served["metrics"]["mae"] == pytest.approx(result.metrics["test"]["mae"], rel=1e-4)


def test_the_resume_checkpoint_is_written_at_most_every_backup_seconds(tmp_path):
    # With a long interval only the first epoch's end is saved: a kill after epoch 3
    # resumes from epoch 1, never from a later one.
    config = _config(tmp_path, epochs=4, patience=10, export=False, backup_seconds=3600)
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0, callbacks=[_Interrupt(after_epoch=2)])
    seen = _EpochsSeen()
    train(config, verbose=0, callbacks=[seen])
    assert seen.epochs == [1, 2, 3]
    assert list(pd.read_csv(config.run_dir() / "history.csv")["epoch"]) == [0, 1, 2, 3]  # no epoch twice


def test_learning_curves_of_a_two_output_model_are_a_readable_grid(tmp_path):
    import matplotlib.image
    import pandas as pd

    from zoo.training.plots import plot_history

    names = ["loss", "main_loss", "aux_loss", "main_mae", "aux_mae", "main_mse", "aux_mse"]
    history = pd.DataFrame({"epoch": range(5), **{n: range(5) for n in names}, **{f"val_{n}": range(5) for n in names},
                            "learning_rate": [1e-3] * 5})
    history.to_csv(tmp_path / "history.csv", index=False)
    plot_history(tmp_path / "history.csv", tmp_path / "curves.png")
    height, width, _ = matplotlib.image.imread(tmp_path / "curves.png").shape
    assert (width, height) == (3 * 450, 3 * 350)  # seven panels: three rows of at most three (was 3150 x 350)
