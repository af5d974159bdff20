"""`zoo tune`: KerasTuner's RandomSearch over a zoo model, the course's search space.

    number of hidden layers  0..3        (the factory's `depth`, or the length of `hidden`)
    neurons per layer        1..100      (`units`, or each entry of `hidden`)
    learning rate            3e-4..3e-2, log-uniform

Each trial builds the registered model with the trial's values, trains it with early
stopping, and is scored on the validation split. The search lives in a folder of its own
and resumes where it stopped. The best trial is written as a run.yaml that
`zoo train --config` takes, and every trial as a row of trials.csv.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from zoo.errors import ConfigError
from zoo.training.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class TuneResult:
    """A search's result: its folder, the best hyperparameters and their score."""
    best_config: Path
    trials: Path
    best: dict
    rows: list[dict]


def tune(config: TrainConfig, *, trials: int, max_epochs: int, objective: str = "val_loss",
         directory: Path | None = None, verbose: int = 0) -> TuneResult:
    """Search hyperparameters for `config.model` on its dataset (see the module doc)."""
    import keras
    import keras_tuner

    from zoo.datasets import load_dataset
    from zoo.registry import create_model, model_info
    from zoo.training.trainer import compile_model, input_names, seed_everything, targets

    if trials < 1 or max_epochs < 1:
        raise ConfigError(f"--trials and --max-epochs must be >= 1, got {trials} and {max_epochs}")
    config = config.resolved()
    info = model_info(config.model)
    seed_everything(config.seed)
    defaults = info.dataset_options if config.dataset == info.dataset else {}
    data = load_dataset(config.dataset, seed=config.seed, validation_fraction=config.validation_fraction,
                        test_fraction=config.test_fraction, task=info.task, **config.load_options(defaults))
    space = search_space(info)
    directory = Path(directory or Path("runs") / "tune" / config.model)

    def build(hp) -> keras.Model:
        values = trial_values(hp, space)
        model = create_model(config.model, data, **{**config.hparams, **values["hparams"]})
        compile_model(model, dataclasses.replace(config, learning_rate=values["learning_rate"]), info)
        return model

    tuner = keras_tuner.RandomSearch(
        build, objective=objective, max_trials=trials, seed=config.seed, directory=str(directory.parent),
        project_name=directory.name, overwrite=False,  # the same command resumes an interrupted search
    )
    sample = create_model(config.model, data, **config.hparams)
    names = input_names(sample)
    tuner.search(
        data.train.select(names), targets(info, data.train.target),
        validation_data=(data.validation.select(names), targets(info, data.validation.target)),
        epochs=max_epochs, batch_size=config.batch_size, verbose=verbose,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience)],
    )
    rows = []
    for trial in tuner.oracle.get_best_trials(num_trials=trials):
        values = trial_values(trial.hyperparameters, space)
        rows.append({"trial": trial.trial_id, "score": trial.score, "learning_rate": values["learning_rate"],
                     **{k: str(v) if isinstance(v, list) else v for k, v in values["hparams"].items()}})
    best = trial_values(tuner.get_best_hyperparameters(1)[0], space)
    best_config = dataclasses.replace(
        config, learning_rate=best["learning_rate"], hparams={**config.hparams, **best["hparams"]},
        output_dir=None,
    )
    directory.mkdir(parents=True, exist_ok=True)
    best_path = directory / "best.yaml"
    best_path.write_text(yaml.safe_dump(best_config.to_dict(), sort_keys=False), encoding="utf-8")
    trials_path = directory / "trials.csv"
    import pandas as pd

    pd.DataFrame(rows).to_csv(trials_path, index=False)
    return TuneResult(best_path, trials_path, best, rows)


def search_space(info) -> str:
    """How the model's factory takes its hidden layers: "depth+units", "hidden", or "" (LR only)."""
    if {"depth", "units"} <= set(info.hyperparameters):
        return "depth+units"
    if "hidden" in info.hyperparameters:
        return "hidden"
    return ""


def trial_values(hp, space: str) -> dict:
    """The factory hyperparameters and learning rate a trial's choices stand for."""
    learning_rate = hp.Float("learning_rate", 3e-4, 3e-2, sampling="log")
    layers = hp.Int("hidden_layers", 0, 3) if space else 0
    units = hp.Int("neurons", 1, 100) if space else 0
    if space == "depth+units":
        hparams = {"depth": layers, "units": units}
    elif space == "hidden":
        hparams = {"hidden": [units] * layers}
    else:
        hparams = {}
    return {"learning_rate": learning_rate, "hparams": hparams}
