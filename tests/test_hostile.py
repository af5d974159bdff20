"""What the trainer and the model repository withstand: a crash at the worst moment, a rerun,
a data file with a poisoned cell, a broken config. Numbered as in issue 13 (the serving side
is tests/serving/test_hostile.py, `zoo predict`'s files tests/client/test_hostile_csv.py):

8. kill -9 while the resume checkpoint is written; the same finished command run again;
9. kill -9 during an export; the files' permissions under the user's umask; a corrupt
   models.config met by `zoo export`;
11. a `1e400` cell in a training CSV; a run whose metrics are NaN.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys

import keras
import numpy as np
import pytest

from zoo.errors import DatasetError, ExportError, TrainingError
from zoo.repository import versions
from zoo.training.config import TrainConfig
from zoo.training.trainer import train


def _config(tmp_path, **overrides):
    values = {"model": "dnn-regressor", "epochs": 3, "patience": 10, "output_dir": str(tmp_path / "run"),
              "models_dir": str(tmp_path / "models"), "hparams": {"units": 16}, "backup_seconds": 0}
    values.update(overrides)
    return TrainConfig(**values)


class _KilledWhileSaving(keras.callbacks.Callback):
    """A kill -9 in the middle of the second checkpoint write: the weights file Keras is
    writing has its first 96 bytes, and the process is gone."""

    def __init__(self):
        super().__init__()
        self.saves = 0

    def set_model(self, model):
        super().set_model(model)
        original = model.save_weights

        def dying_save(filepath, *args, **kwargs):
            self.saves += 1
            if self.saves == 2:
                with open(filepath, "wb") as partial:
                    partial.write(b"\x89HDF\r\n\x1a\n" + b"\x00" * 88)
                raise KeyboardInterrupt  # the process ends here
            return original(filepath, *args, **kwargs)

        model.save_weights = dying_save


# -- 8. the resume checkpoint and reruns -----------------------------------------------------


def test_a_kill_while_the_checkpoint_is_written_leaves_the_previous_one_whole(tmp_path):
    config = _config(tmp_path, export=False)
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0, callbacks=[_KilledWhileSaving()])
    backup = config.run_dir() / "backup"
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1
    result = train(config, verbose=0)  # resumes from epoch 1's checkpoint: no OSError
    assert result.metrics["epochs_run"] == 3 and not backup.exists()


def test_a_truncated_checkpoint_from_an_older_kill_is_dropped_and_the_run_starts_over(tmp_path, caplog):
    config = _config(tmp_path, export=False)
    backup = config.run_dir() / "backup"
    backup.mkdir(parents=True)
    (backup / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 88)  # the 96 bytes a kill left
    (backup / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    with caplog.at_level(logging.WARNING, logger="zoo.training.trainer"):
        result = train(config, verbose=0)
    assert result.metrics["epochs_run"] == 3
    assert any("cannot be read" in r.getMessage() and "starting the run over" in r.getMessage() for r in caplog.records)


def test_the_same_finished_command_does_not_train_or_publish_again(tmp_path, caplog):
    config = _config(tmp_path, epochs=2)
    first = train(config, verbose=0)
    assert first.version_dir.name == "1"
    with caplog.at_level(logging.WARNING, logger="zoo.training.trainer"):
        again = train(config, verbose=0)
    assert again.version_dir == first.version_dir and again.metrics == first.metrics
    assert versions(tmp_path / "models" / "dnn-regressor") == [1]
    assert any("already finished" in r.getMessage() and str(first.version_dir) in r.getMessage()
               for r in caplog.records)


def test_a_rerun_on_a_changed_data_file_trains_again(tmp_path):
    rng = np.random.default_rng(0)
    size = rng.uniform(30, 200, 200)
    data = tmp_path / "houses.csv"
    data.write_text("size,price\n" + "".join(f"{s:.1f},{3 * s:.1f}\n" for s in size))
    config = _config(tmp_path, dataset="csv", data=str(data), target="price", epochs=2)
    train(config, verbose=0)
    data.write_text("size,price\n" + "".join(f"{s:.1f},{2 * s:.1f}\n" for s in size))  # same path, new rows
    again = train(config, verbose=0)
    assert again.version_dir.name == "2"


# -- 9. exports: a kill mid-way, permissions, a corrupt config --------------------------------


def test_a_killed_exports_staging_folder_is_removed_by_the_next_export(tmp_path, load):
    from zoo.registry import create_model
    from zoo.repository.export import export_model

    models = tmp_path / "models"
    (models / "dnn-regressor").mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    abandoned = models / "dnn-regressor" / f".incoming-{int(dead.stdout)}-x1y2"
    (abandoned / "variables").mkdir(parents=True)
    (abandoned / "variables" / "variables.data-00000-of-00001").write_bytes(b"\x00" * 4_000_000)
    data = load("red-wine")
    export_model(create_model("dnn-regressor", data), name="dnn-regressor", task="regression",
                 class_names=None, models_dir=models, card={"task": "regression"})
    assert not abandoned.exists()
    assert sorted(p.name for p in (models / "dnn-regressor").iterdir()) == ["1"]


def test_versions_and_the_config_are_readable_as_the_umask_says(tmp_path, load):
    from zoo.registry import create_model
    from zoo.repository.export import export_model

    data = load("red-wine")
    version_dir = export_model(create_model("dnn-regressor", data), name="dnn-regressor", task="regression",
                               class_names=None, models_dir=tmp_path / "models", card={"task": "regression"})
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(version_dir.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((tmp_path / "models" / "models.config").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(version_dir.stat().st_mode) & 0o005 == 0o005 or umask & 0o005  # others may read and enter


def test_export_with_a_corrupt_models_config_publishes_nothing(tmp_path, load):
    from zoo.registry import create_model
    from zoo.repository.export import export_model

    models = tmp_path / "models"
    models.mkdir()
    (models / "models.config").write_text("model_config_list { config { name: 'x' ")  # cut off
    data = load("red-wine")
    with pytest.raises(ExportError, match="is not a valid ModelServerConfig"):
        export_model(create_model("dnn-regressor", data), name="dnn-regressor", task="regression",
                     class_names=None, models_dir=models, card={"task": "regression"})
    assert not (models / "dnn-regressor").exists() or versions(models / "dnn-regressor") == []


# -- 11. poisoned data, NaN models --------------------------------------------------------------


@pytest.mark.parametrize("cell", ["1e400", "-inf", "nan"])
def test_a_training_csv_with_a_non_finite_cell_is_refused_by_line_and_column(tmp_path, cell):
    rows = ["size,price"] + [f"{30 + i},{90 + 3 * i}" for i in range(100)]
    rows[42] = f"{cell},200"
    (tmp_path / "houses.csv").write_text("\n".join(rows) + "\n")
    config = _config(tmp_path, dataset="csv", data=str(tmp_path / "houses.csv"), target="price")
    kind = "a number" if cell == "nan" else "a finite number"
    with pytest.raises(DatasetError, match=rf"line 43, column 'size': expected {kind}, got '{cell}'"):
        train(config, verbose=0)
    assert not (tmp_path / "models").exists()


def test_a_model_whose_metrics_are_nan_is_never_exported(tmp_path):
    config = _config(tmp_path, epochs=2, learning_rate=1e30, optimizer="sgd")  # diverges to inf/NaN
    with pytest.raises(TrainingError, match="is not exported"):
        train(config, verbose=0)
    assert not (tmp_path / "models" / "dnn-regressor").exists()
