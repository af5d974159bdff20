"""The `zoo` command, as a user runs it: real processes for training, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.cli import main


def _zoo_command():
    script = Path(sys.executable).parent / "zoo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "zoo.cli"]


def test_zoo_train_from_the_command_line_exports_once_and_says_so_when_rerun(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    runs = []
    for seed in ("42", "42", "7"):  # the same command twice, then a new seed
        done = subprocess.run(
            [*_zoo_command(), "train", "dnn-regressor", "--epochs", "2", "--verbose", "0", "--seed", seed],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr
        runs.append(done)
    assert "version: models/dnn-regressor/1" in runs[0].stdout
    assert "version: models/dnn-regressor/1" in runs[1].stdout  # not trained, not published twice
    assert "already finished" in runs[1].stderr and "models/dnn-regressor/1" in runs[1].stderr
    assert "version: models/dnn-regressor/2" in runs[2].stdout
    assert "oneDNN" not in done.stderr and "cuda" not in done.stderr.lower()
    run_dir = next(p for p in (tmp_path / "runs" / "dnn-regressor").iterdir() if "seed7" in p.name)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"mae {metrics['test']['mae']:.4f}" in runs[2].stdout

    import tensorflow as tf

    signature = tf.saved_model.load(str(tmp_path / "models/dnn-regressor/2")).signatures["serving_default"]
    assert "alcohol" in signature.structured_input_signature[1]


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "resnet-9000"], "unknown model 'resnet-9000'; known models: "),
        (["train", "dnn-regressor", "--epochs", "0"], "epochs must be a whole number >= 1, got 0"),
        (["train", "dnn-regressor", "--dataset", "white-wine"], "unknown dataset 'white-wine'"),
        (["train", "dnn-regressor", "--set", "colour=red"], "no hyperparameter(s) colour"),
        (["train", "dnn-regressor", "--set", "units"], "--set takes NAME=VALUE"),
        (["train", "dnn-regressor", "--optimizer", "adamm"], "unknown optimizer 'adamm'"),
        (["train", "dnn-regressor", "--config", "missing.yaml"], "no config file at missing.yaml"),
        (["train"], "no model given"),
        (["info", "resnet-9000"], "unknown model 'resnet-9000'"),
        (["evaluate", "dnn-regressor", "--models-dir", "nowhere"], "has no exported version"),
        (["export", "not-a-run"], "not-a-run is not a finished run"),
    ],
)
def test_errors_are_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("zoo: error: ") and message in err
    assert "Traceback" not in err


def test_a_bad_flag_type_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "dnn-regressor", "--epochs", "many"])
    assert exit_.value.code == 2
    assert "argument --epochs: invalid int value: 'many'" in capsys.readouterr().err


def test_list_info_and_datasets(capsys):
    code, out, _ = _run(capsys, "list", "d*")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == ["digits-mlp", "digits-mlp-ensemble", "dnn-regressor"]
    code, out, _ = _run(capsys, "info", "linear-unit")
    info = json.loads(out)
    assert info["hyperparameters"]["features"] == ["sugars", "fiber", "protein"]
    code, out, _ = _run(capsys, "datasets")
    assert code == 0 and "red-wine" in out and "fashion-mnist" in out


def test_config_file_flags_and_export_of_a_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("run.yaml").write_text(
        "model: linear-unit\nepochs: 50\nlearning_rate: 0.05\nhparams:\n  features: [sugars, fiber]\n"
    )
    code, out, err = _run(capsys, "train", "--config", "run.yaml", "--epochs", "3", "--verbose", "0", "--no-export")
    assert code == 0, err
    assert "version:" not in out
    run_dir = Path(out.split("run:")[1].split()[0])
    saved = (run_dir / "config.yaml").read_text()
    assert "epochs: 3" in saved and "learning_rate: 0.05" in saved  # the flag beat the file
    assert not Path("models").exists()

    code, out, err = _run(capsys, "export", str(run_dir))
    assert code == 0, err
    assert "version: models/linear-unit/1" in out
    card = json.loads(Path("models/linear-unit/1/model_card.json").read_text())
    assert sorted(card["signature"]["inputs"]) == ["fiber", "sugars"]
    code, out, err = _run(capsys, "evaluate", "linear-unit")
    assert code == 0 and out.startswith("linear-unit v1 on cereals test (11 rows): mae ")


def test_every_train_config_field_has_a_flag_that_sets_it():
    """The flags are generated from TrainConfig's fields: each one reaches the config."""
    import dataclasses

    from zoo.cli import build_parser, train_config_from_args
    from zoo.training.config import TrainConfig

    argv = ["train", "digits-mlp", "--dataset", "digits", "--data", "x.csv", "--target", "y", "--epochs", "3",
            "--batch-size", "8", "--learning-rate", "0.5", "--optimizer", "sgd", "--loss", "mse", "--patience", "2",
            "--seed", "7", "--validation-fraction", "0.2", "--test-fraction", "0.25", "--set", "units=4",
            "--dataset-option", "scale=minmax", "--output-dir", "out", "--models-dir", "m", "--no-export",
            "--strategy", "mirrored", "--backup-seconds", "0", "--traffic", "t.csv", "--traffic-recent", "0.2"]
    config = train_config_from_args(build_parser().parse_args(argv))
    defaults = TrainConfig(model="digits-mlp")
    for field in dataclasses.fields(TrainConfig):
        if field.name != "model":
            assert getattr(config, field.name) != getattr(defaults, field.name), field.name


def test_the_beam_runner_without_the_beam_extra_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    import sys

    from zoo.cli import main

    monkeypatch.setitem(sys.modules, "apache_beam", None)  # as if keras-zoo[beam] were not installed
    code = main(["predict", "dnn-regressor", "--input", str(tmp_path / "*.csv"), "--output", str(tmp_path / "p"),
                 "--runner", "beam"])
    assert code == 2
    assert "pip install 'keras-zoo[beam]'" in capsys.readouterr().err
