"""`TrainConfig`: every choice a training run makes, as one frozen, serializable value.

Values come from three places, weakest first: the model's registered defaults, a
`--config run.yaml` file, and command-line flags. Fields the model owns default to None
so the factory's default wins; `resolved()` fills them in, and that resolved config is
what a run writes next to its outputs and what a model card records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from zoo.errors import ConfigError

DEFAULT_RUNS_DIR = "runs"
DEFAULT_MODELS_DIR = "models"


def _flag(default, group: str, *, flag: str | None = None, positional: bool = False, **argparse_options):
    """A TrainConfig field and how `zoo train` spells it: the flags are generated from the
    fields (zoo/cli.py, add_train_arguments), so a field is written once, here."""
    metadata = {"group": group, "flag": flag, "positional": positional, "argparse": argparse_options}
    if callable(default):
        return dataclasses.field(default_factory=default, metadata=metadata)
    if default is None and positional:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What to train, on what, and how.

    Attributes:
        model: a registered model name.
        dataset: a registered dataset name; default the model's.
        data: a file for the dataset to read instead of its cached download (required
            for the `csv` dataset).
        target: the target column (the `csv` dataset).
        traffic: labelled served rows added to the training split (zoo.loop.traffic).
        traffic_recent: the share of `traffic`, most recent last, that is not trained on.
        epochs, batch_size, learning_rate, optimizer, loss, patience: default the model's.
        seed: seeds the split, the weights and the shuffling.
        validation_fraction, test_fraction: the split, as shares of all rows.
        hparams: factory hyperparameters that replace its defaults.
        dataset_options: `load_dataset` options over the model's own (classes,
            max_train_rows, scale...).
        output_dir: where the run writes; default runs/<model>/<config digest>, so the
            same command resumes an interrupted run.
        models_dir: the model repository to export into.
        export: export a new version when training ends.
        strategy: None (one device), "mirrored" (every device of this machine) or
            "multi-worker" (every worker TF_CONFIG names; see zoo.training.distribution).
        backup_seconds: write the resume checkpoint at an epoch's end at most this often
            (0: every epoch). A killed run loses at most this much training.
    """

    model: str = _flag(None, "training", positional=True, help="a registered model (or `model:` in --config)")
    dataset: str | None = _flag(None, "data", help="a registered dataset (default: the model's)")
    data: str | None = _flag(None, "data", help="a CSV file to read instead of the cached download")
    target: str | None = _flag(None, "data", help="the target column (with --dataset csv)")
    traffic: str | None = _flag(None, "data", help="labelled served rows (CSV or Parquet, e.g. from zoo logs "
                                                   "--labels) added to the training split")
    traffic_recent: float = _flag(0.0, "data", help="the most recent share of --traffic kept out of training "
                                                     "(zoo retrain gates on it)")
    epochs: int | None = _flag(None, "training")
    batch_size: int | None = _flag(None, "training")
    learning_rate: float | None = _flag(None, "training")
    optimizer: str | None = _flag(None, "training", help="a Keras optimizer name: adam, adamw, sgd, rmsprop...")
    loss: str | None = _flag(None, "training", help="a Keras loss name: mae, mse, huber...")
    patience: int | None = _flag(None, "training", help="early-stopping patience in epochs")
    seed: int = _flag(42, "data")
    validation_fraction: float = _flag(0.15, "data")
    test_fraction: float = _flag(0.15, "data")
    hparams: dict[str, Any] = _flag(dict, "training", flag="--set", metavar="NAME=VALUE",
                                    help="a model hyperparameter, e.g. --set units=64 --set hidden=[64,32]")
    dataset_options: dict[str, Any] = _flag(
        dict, "data", flag="--dataset-option", metavar="NAME=VALUE",
        help="a load_dataset option, e.g. --dataset-option scale=minmax "
             "--dataset-option 'classes=[\"8\",\"9\"]' --dataset-option max_train_rows=200")
    output_dir: str | None = _flag(None, "output", help="the run folder (default: runs/<model>/<digest>)")
    models_dir: str = _flag(DEFAULT_MODELS_DIR, "output", help="the model repository (default: models)")
    export: bool = _flag(True, "output", flag="--no-export", help="train and evaluate, but export no version")
    strategy: str | None = _flag(None, "training", choices=("mirrored", "multi-worker"),
                                 help="tf.distribute: every device of this machine (mirrored), or every worker "
                                      "in TF_CONFIG (multi-worker; the chief exports)")
    backup_seconds: float = _flag(10.0, "output",
                                  help="write the resume checkpoint at most this often (0: every epoch)")

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 0):
            raise ConfigError(f"patience must be a whole number >= 0, got {self.patience!r}")
        if self.learning_rate is not None and not (
            isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0
        ):
            raise ConfigError(f"learning_rate must be a number > 0, got {self.learning_rate!r}")
        if not isinstance(self.seed, int):
            raise ConfigError(f"seed must be a whole number, got {self.seed!r}")
        for name in ("validation_fraction", "test_fraction"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ConfigError(f"{name} must be a number between 0 and 1, got {value!r}")
        if self.strategy not in (None, "mirrored", "multi-worker"):
            raise ConfigError(f"strategy must be mirrored or multi-worker (or none), got {self.strategy!r}")
        for name in ("hparams", "dataset_options"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name} must be a mapping of name to value, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a mapping, rejecting unknown keys by name."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}"
            )
        if "model" not in values:
            raise ConfigError(f"{source}: no model given")
        return cls(**values)

    @staticmethod
    def read_yaml(path: str | Path) -> dict[str, Any]:
        """The mapping in a run.yaml file (not yet a config: flags may still be merged in)."""
        try:
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"no config file at {path}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not valid YAML: {error}") from None
        if values is None:
            return {}
        if not isinstance(values, dict):
            raise ConfigError(f"{path} must hold a mapping of keys to values")
        return values

    def to_dict(self) -> dict[str, Any]:
        """Every field, as plain values."""
        return dataclasses.asdict(self)

    def write_yaml(self, path: Path) -> None:
        """Write the config as YAML (what `zoo train --config` reads back)."""
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    def resolved(self) -> TrainConfig:
        """This config with every None the model owns replaced by the model's default."""
        from zoo.registry import model_info

        info = model_info(self.model)
        recipe = info.recipe
        defaults = {
            "dataset": info.dataset,
            "epochs": recipe.epochs,
            "batch_size": recipe.batch_size,
            "learning_rate": recipe.learning_rate,
            "optimizer": recipe.optimizer,
            "loss": recipe.loss,
            "patience": recipe.patience,
        }
        filled = {key: value for key, value in defaults.items() if getattr(self, key) is None}
        return dataclasses.replace(self, **filled)

    def load_options(self, model_defaults: dict[str, Any]) -> dict[str, Any]:
        """Options for `load_dataset`: the model's, then this config's, then the file and
        target column, where given."""
        options: dict[str, Any] = {**model_defaults, **self.dataset_options}
        if self.data is not None:
            options["path"] = self.data
        if self.target is not None:
            options["target"] = self.target
        return options

    def run_dir(self) -> Path:
        """The run's folder. The default is a digest of what shapes the run's result, so
        the same command finds the backup of an interrupted run and resumes it."""
        if self.output_dir:
            return Path(self.output_dir)
        excluded = ("output_dir", "models_dir", "export", "strategy", "backup_seconds")
        shaping = {k: v for k, v in self.to_dict().items() if k not in excluded}
        digest = hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()
        return Path(DEFAULT_RUNS_DIR) / self.model / f"{self.dataset}-seed{self.seed}-{digest[:8]}"
