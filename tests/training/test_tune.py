"""`zoo tune` (KerasTuner's RandomSearch) and training on a tf.distribute strategy."""

from __future__ import annotations

import pandas as pd
import yaml

from zoo.cli import main
from zoo.training.config import TrainConfig
from zoo.training.trainer import train
from zoo.training.tune import tune


def test_a_tiny_search_finishes_resumes_and_its_best_config_trains(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = TrainConfig(model="dnn-regressor", batch_size=256)
    result = tune(config, trials=2, max_epochs=2, directory=tmp_path / "search")
    trials = pd.read_csv(result.trials)
    assert len(trials) == 2 and {"score", "learning_rate", "depth", "units"} <= set(trials.columns)
    assert trials["score"].is_monotonic_increasing  # best (lowest val_loss) first
    best = yaml.safe_load(result.best_config.read_text())
    assert best["learning_rate"] == result.best["learning_rate"] == trials["learning_rate"][0]
    assert best["hparams"] == {"depth": int(trials["depth"][0]), "units": int(trials["units"][0])}
    assert 3e-4 <= best["learning_rate"] <= 3e-2 and 0 <= best["hparams"]["depth"] <= 3

    again = tune(config, trials=2, max_epochs=2, directory=tmp_path / "search")  # resumes: nothing left to try
    assert again.best == result.best

    assert main(["train", "--config", str(result.best_config), "--epochs", "1", "--verbose", "0"]) == 0
    run_dir = capsys.readouterr().out.split("run:")[1].split()[0]
    trained = yaml.safe_load((tmp_path / run_dir / "config.yaml").read_text())
    assert trained["hparams"] == best["hparams"] and trained["learning_rate"] == best["learning_rate"]


def test_training_under_a_mirrored_strategy(tmp_path):
    result = train(TrainConfig(model="dnn-regressor", epochs=2, strategy="mirrored", hparams={"units": 16},
                               output_dir=str(tmp_path / "run"), models_dir=str(tmp_path / "models")), verbose=0)
    assert result.metrics["test"]["mae"] > 0 and result.version_dir.name == "1"
