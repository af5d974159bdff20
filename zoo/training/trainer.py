"""The shared trainer: one dataset, one registered model, one `TrainConfig` -> a `RunResult`.

    load the dataset (seeded split)  ->  build the model (preprocessing adapted on train)
    -> compile with the model's task defaults  ->  fit with validation, early stopping
    (best weights restored) and BackupAndRestore  ->  evaluate on the test split
    -> write history.csv, curves.png, metrics.json, model.keras  ->  export a version

A run writes into its own folder (see `TrainConfig.run_dir`). If it is killed, the same
command finds the backup there and resumes from the last finished epoch. Under
`--strategy multi-worker` every worker runs this, and only the chief writes the run's folder
and exports (see `zoo.training.distribution.Role`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

import zoo
from zoo.datasets import Dataset, load_dataset
from zoo.datasets.cache import file_digest
from zoo.errors import ConfigError
from zoo.loop.traffic import add_traffic
from zoo.registry import ModelInfo, create_model, model_info
from zoo.repository import atomic_write_text
from zoo.repository.export import export_model
from zoo.training import distribution
from zoo.training.config import TrainConfig
from zoo.training.losses import training_loss
from zoo.training.plots import plot_history
from zoo.training.runs import (
    BACKUP_DIR,
    CARD_FILE,
    CONFIG_FILE,
    CURVES_FILE,
    FINISHED_FILE,
    HISTORY_FILE,
    MEMBER_WEIGHTS_FILE,
    MEMBERS_DIR,
    METRICS_FILE,
    MODEL_FILE,
    SCRATCH_MODELS_DIR,
    WORKERS_DIR,
    require_finite,
    warmup_rows,
)

log = logging.getLogger("zoo.training.trainer")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a run produced: its folder, its metrics, and the version it exported."""

    config: TrainConfig
    run_dir: Path
    metrics: dict[str, Any]
    version_dir: Path | None


def train(config: TrainConfig, *, verbose: int | str = "auto", callbacks=()) -> RunResult:
    """Train, evaluate and (unless `config.export` is False) export one model.

    Args:
        config: what to train; None fields take the model's defaults.
        verbose: Keras's progress output: "auto", 0 (silent), 1 (bar) or 2 (a line an epoch).
        callbacks: extra Keras callbacks, run after the trainer's own.

    Returns:
        The run's result; `metrics["test"]` holds the test-split metrics.
    """
    config = config.resolved()
    info = model_info(config.model)
    strategy = distribution.strategy(config.strategy)
    seed_everything(config.seed)
    # The model's own dataset options (a class subset, say) hold for its default dataset only.
    defaults = info.dataset_options if config.dataset == info.dataset else {}
    data = load_dataset(
        config.dataset, seed=config.seed, validation_fraction=config.validation_fraction,
        test_fraction=config.test_fraction, task=info.task, **config.load_options(defaults),
    )
    if config.traffic:
        data = add_traffic(data, config.traffic, config.traffic_recent)
    role = distribution.role(config.strategy)
    run_dir = config.run_dir()
    models_dir = Path(config.models_dir)
    if not role.is_chief:
        # Another worker of a multi-worker run: the same steps (they hold collectives), but
        # into a folder of its own, and a scratch repository that is deleted at the end.
        run_dir = run_dir / WORKERS_DIR / role.name
        models_dir = run_dir / SCRATCH_MODELS_DIR
    if config.strategy == "multi-worker":
        # Workers must resume from the same epoch, so each saves at every epoch's end
        # rather than when its own clock says so.
        config = dataclasses.replace(config, backup_seconds=0)
    run_dir.mkdir(parents=True, exist_ok=True)
    data_digest = _data_digest(config)
    if role.is_chief and config.strategy is None:
        finished = finished_run(run_dir, config, models_dir, data_digest)
        if finished is not None:  # the same command again: say what it made, do not make it twice
            return finished
    config.write_yaml(run_dir / CONFIG_FILE)

    with strategy.scope():  # variables are created (and mirrored) where the strategy says
        model = create_model(config.model, data, **config.hparams)
        compile_model(model, config, info)
    names = input_names(model)
    extra_callbacks = list(callbacks)

    def callbacks_for(member_dir: Path, append_history: bool) -> list[keras.callbacks.Callback]:
        # Order matters: the backup is written before any later callback can stop the run.
        return [
            ThrottledBackupAndRestore(str(member_dir / BACKUP_DIR), config.backup_seconds),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                          restore_best_weights=info.recipe.restore_best_weights),
            keras.callbacks.CSVLogger(str(member_dir / HISTORY_FILE), append=append_history),
            *([keras.callbacks.ReduceLROnPlateau(factor=1 / 3, patience=info.recipe.reduce_lr_patience)]
              if info.recipe.reduce_lr_patience else []),
            *extra_callbacks,
        ]

    fit = {
        "x": data.train.select(names), "y": targets(info, data.train.target),
        "validation_data": (data.validation.select(names), targets(info, data.validation.target)),
        "batch_size": config.batch_size, "shuffle": True, "verbose": verbose,
    }
    if config.strategy is not None:
        # A distributed fit takes a tf.data pipeline, which the strategy splits across devices.
        fit.update(
            x=distribution.dataset(fit["x"], fit["y"], config.batch_size, shuffle_seed=config.seed),
            y=None, batch_size=None, shuffle=False,
            validation_data=distribution.dataset(*fit["validation_data"], config.batch_size),
        )

    def fit_phases(model: keras.Model, member_dir: Path) -> None:
        """Train one model through the recipe's phases, resuming from its checkpoint."""
        _drop_unreadable_backup(member_dir / BACKUP_DIR)  # each member's checkpoint, not only the run's
        resuming = (member_dir / BACKUP_DIR).exists()
        if resuming:  # epochs after the last checkpoint are trained again: forget their history
            saved = ThrottledBackupAndRestore(str(member_dir / BACKUP_DIR), 0).saved_epoch()
            _truncate_history(member_dir / HISTORY_FILE, saved or 0)
        epoch = 0
        for index, (end, phase) in enumerate(info.recipe.schedule(config.epochs, frozen=has_frozen_layers(model))):
            if index:  # a later phase: Keras needs a recompile after `trainable` changes
                if phase.unfreeze:
                    unfreeze(model)
                with strategy.scope():
                    compile_model(model, dataclasses.replace(
                        config, learning_rate=phase.learning_rate or config.learning_rate), info)
            history = model.fit(epochs=end, initial_epoch=epoch,
                                callbacks=callbacks_for(member_dir, resuming or index > 0), **fit)
            # A resumed run restores past this phase's end and trains none of it: go on from its end.
            epoch = history.epoch[-1] + 1 if history.epoch else end

    started = time.perf_counter()
    if info.recipe.members == 1:
        fit_phases(model, run_dir)
    else:
        members = [model]
        for member in range(1, info.recipe.members):
            seed_everything(member_seed(config.seed, member))  # another start, the same rows
            with strategy.scope():
                members.append(create_model(config.model, data, **config.hparams))
                compile_model(members[-1], config, info)
        for member, member_model in enumerate(members):
            # Member 0 keeps the run's own checkpoint and history (its curves are the run's);
            # a trained member's weights are kept, so a killed run does not train it again.
            member_dir = run_dir if member == 0 else run_dir / MEMBERS_DIR / str(member)
            member_dir.mkdir(parents=True, exist_ok=True)
            weights = run_dir / MEMBERS_DIR / str(member) / MEMBER_WEIGHTS_FILE
            if weights.is_file():
                member_model.optimizer.build(member_model.trainable_variables)  # the file holds its state too
                member_model.load_weights(weights)
                continue
            fit_phases(member_model, member_dir)
            weights.parent.mkdir(parents=True, exist_ok=True)
            partial = weights.with_name(f".partial-{os.getpid()}.weights.h5")
            member_model.save_weights(partial)
            os.replace(partial, weights)
        with strategy.scope():
            model = average_of(members, names, name=model.name)
            compile_model(model, config, info)
    seconds = time.perf_counter() - started

    metrics = {
        "test": evaluate_split(model, data, "test", names, config.batch_size, info, config.strategy),
        "validation": evaluate_split(model, data, "validation", names, config.batch_size, info, config.strategy),
        "epochs_run": _epochs_in(run_dir / HISTORY_FILE),
        "train_seconds": round(seconds, 3),
        "replicas_in_sync": strategy.num_replicas_in_sync,  # devices x workers that shared each batch
        "primary_metric": info.primary_metric,
    }
    (run_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    require_finite(metrics, run_dir)  # before the model is saved, plotted or exported
    plot_history(run_dir / HISTORY_FILE, run_dir / CURVES_FILE)
    model.save(run_dir / MODEL_FILE)
    card = model_card_fields(config, info, data, metrics)
    (run_dir / CARD_FILE).write_text(json.dumps(card, indent=2, default=str) + "\n", encoding="utf-8")

    version_dir = None
    if config.export:
        version_dir = export_model(
            model, name=config.model, task=info.task, class_names=data.class_names,
            models_dir=models_dir, card=card,
            warmup_rows=warmup_rows(data.test.select(names)),
            profile_rows=(data.train.select(names), data.validation.select(names)),
        )
        if not role.is_chief:
            shutil.rmtree(models_dir)
            version_dir = None
    if role.is_chief:
        atomic_write_text(run_dir / FINISHED_FILE, json.dumps({
            "data_sha256": data_digest, "models_dir": str(models_dir.resolve()) if version_dir else None,
            "version": int(version_dir.name) if version_dir else None,
        }, indent=2))
    return RunResult(config=config, run_dir=run_dir, metrics=metrics, version_dir=version_dir)


def finished_run(run_dir: Path, config: TrainConfig, models_dir: Path, data_digest: str | None) -> RunResult | None:
    """The result of this very run if it already finished: same folder, same data, and (when
    exporting) its version still published in the same repository; else None."""
    try:
        record = json.loads((run_dir / FINISHED_FILE).read_text(encoding="utf-8"))
        metrics = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("data_sha256") != data_digest or (run_dir / BACKUP_DIR).exists():
        return None
    version_dir = None
    if config.export:
        version = record.get("version")
        version_dir = models_dir / config.model / str(version)  # as the first run named it
        if version is None or record.get("models_dir") != str(models_dir.resolve()) or \
                not (version_dir / "saved_model.pb").is_file():
            return None  # finished without exporting here, or the version was pruned: train again
    log.warning("this run already finished in %s%s; not training it again (a new --seed, or "
                "--output-dir, trains anew)", run_dir, f" and was published as {version_dir}" if version_dir else "")
    return RunResult(config=config, run_dir=run_dir, metrics=metrics, version_dir=version_dir)


def _data_digest(config: TrainConfig) -> str | None:
    """The SHA-256 of a user's data file and traffic file (their paths alone are in the run
    folder's name, and the files may have changed since); None for the zoo's own datasets,
    which are checked by hash."""
    files = [Path(f) for f in (config.data, config.traffic) if f and Path(f).is_file()]
    if not files:
        return None
    return "+".join(file_digest(f) for f in files)


def _drop_unreadable_backup(backup_dir: Path) -> None:
    """A resume checkpoint that cannot be read (a run killed while writing it, before writes
    were atomic) is removed with a warning, so that the run starts over instead of failing
    every time with `OSError: truncated file`."""
    weights = backup_dir / "latest.weights.h5"
    for partial in backup_dir.glob(".partial-*"):
        partial.unlink(missing_ok=True)
    if not weights.exists():
        return
    try:
        import h5py

        with h5py.File(weights, "r"):
            pass
    except OSError as error:
        log.warning("the resume checkpoint %s cannot be read (%s); starting the run over", weights, error)
        shutil.rmtree(backup_dir, ignore_errors=True)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow's kernels deterministic, so
    the same command gives the same metrics."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class ThrottledBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that writes its checkpoint at most every `seconds` seconds.

    Writing the weights at every epoch's end costs a fixed few tens of milliseconds, half
    again the epoch time of a small model on this data (see bench/training.py); bounding
    what a killed run loses by time, not by epochs, keeps that cost off short epochs.
    The first epoch is always saved.
    """

    def __init__(self, backup_dir: str, seconds: float):
        super().__init__(backup_dir)
        self.seconds = seconds
        self._saved_at: float | None = None

    def on_epoch_end(self, epoch, logs=None):
        """Write the backup if `seconds` have passed since the last one."""
        # Keras 3's own bookkeeping of where a resumed run starts (see BackupAndRestore).
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        now = time.monotonic()
        if self._saved_at is None or now - self._saved_at >= self.seconds:
            self._save_model()
            self._saved_at = now

    def _save_model(self):
        """Keras's save, made atomic: the weights and the epoch are written to temporary
        files and renamed over the checkpoint, so a run killed mid-write leaves the previous
        checkpoint whole (Keras writes in place: a kill left a 96-byte file that every later
        run failed to read)."""
        os.makedirs(self.backup_dir, exist_ok=True)
        partial = os.path.join(self.backup_dir, f".partial-{os.getpid()}")
        self.model.save_weights(filepath=partial + ".weights.h5", overwrite=True)
        _fsync(partial + ".weights.h5")
        with open(partial + ".json", "w", encoding="utf-8") as handle:
            json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial + ".weights.h5", self._weights_path)
        os.replace(partial + ".json", self._training_metadata_path)

    def saved_epoch(self) -> int | None:
        """The epoch a resumed run starts at, from the checkpoint's metadata (None: none)."""
        try:
            with open(self._training_metadata_path, encoding="utf-8") as handle:
                return int(json.load(handle)["epoch"])
        except (OSError, ValueError, KeyError):
            return None


def _fsync(path: str) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _truncate_history(history_csv: Path, epochs: int) -> None:
    """Keep the history of the epochs a resumed run will not redo."""
    if not history_csv.is_file():
        return
    lines = history_csv.read_text(encoding="utf-8").splitlines(keepends=True)
    history_csv.write_text("".join(lines[: 1 + epochs]), encoding="utf-8")


def input_names(model: keras.Model) -> list[str]:
    """The features a model takes: its Input names, or a subclassed model's `feature_names`."""
    names = getattr(model, "feature_names", None)
    return list(names) if names is not None else [tensor.name for tensor in model.inputs]


def nested_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer of a model, at any depth (a Sequential body's layers too)."""
    found, stack = [], list(model.layers)
    while stack:
        layer = stack.pop()
        found.append(layer)
        stack.extend(getattr(layer, "layers", ()))
    return found


def member_seed(seed: int, member: int) -> int:
    """Member `member`'s seed; member 0 trains at the run's own seed."""
    return (seed + 7919 * member) % 2**32


def average_of(members: list[keras.Model], names: list[str], *, name: str) -> keras.Model:
    """One model whose every output is the mean of the members' (probabilities stay
    probabilities): exported, served and evaluated like any single model of its task."""
    inputs = {feature: keras.Input(shape=tensor.shape[1:], dtype=tensor.dtype, name=feature)
              for feature, tensor in zip(names, members[0].inputs)}
    answers = [keras.Model(member.input, member.output, name=f"member_{index}")(inputs)
               for index, member in enumerate(members)]
    outputs = {key: keras.layers.Average(name=key)([answer[key] for answer in answers]) for key in answers[0]}
    return keras.Model(inputs, outputs, name=name)


def has_frozen_layers(model: keras.Model) -> bool:
    """Whether the factory built any layer frozen (`trainable = False`)."""
    return any(not layer.trainable for layer in nested_layers(model))


def unfreeze(model: keras.Model) -> None:
    """Make every layer trainable. (Setting a functional model's own `trainable` does not
    reach its layers in Keras 3.15: the frozen base stayed frozen.)"""
    for layer in nested_layers(model):
        layer.trainable = True


def targets(info: ModelInfo, target):
    """The fit/evaluate targets: one array, or the same array for each of several outputs."""
    weights = info.recipe.loss_weights
    return {name: target for name in weights} if weights else target


def compile_model(model: keras.Model, config: TrainConfig, info: ModelInfo) -> None:
    """Compile with the config's optimizer, learning rate and loss, and the model's metrics."""
    try:
        settings = {"learning_rate": config.learning_rate}
        if info.recipe.weight_decay is not None:
            settings["weight_decay"] = info.recipe.weight_decay
        optimizer = keras.optimizers.get({"class_name": config.optimizer, "config": settings})
    except ValueError:
        raise ConfigError(
            f"unknown optimizer '{config.optimizer}'; use a Keras optimizer name such as "
            "adam, sgd, rmsprop, adamw"
        ) from None
    try:
        loss = keras.losses.get(config.loss)
    except ValueError:
        raise ConfigError(
            f"unknown loss '{config.loss}'; use a Keras loss name such as mae, mse, huber, "
            "sparse_categorical_crossentropy, binary_crossentropy"
        ) from None
    if info.recipe.label_smoothing:
        try:
            loss = training_loss(config.loss, label_smoothing=info.recipe.label_smoothing)
        except ValueError as error:
            raise ConfigError(f"model '{info.name}': {error}") from None
    if info.recipe.loss_weights:
        outputs = list(info.recipe.loss_weights)
        model.compile(optimizer=optimizer, loss={name: loss for name in outputs},
                      loss_weights=dict(info.recipe.loss_weights),
                      metrics={name: list(info.metrics) for name in outputs})
    else:
        model.compile(optimizer=optimizer, loss=loss, metrics=list(info.metrics))


def evaluate_split(model: keras.Model, data: Dataset, split: str, names, batch_size: int,
                   info: ModelInfo | None = None, strategy: str | None = None) -> dict[str, float]:
    """A split's metrics (loss and the task's metrics) by name."""
    rows = getattr(data, split)
    y = targets(info, rows.target) if info is not None else rows.target
    if strategy is not None:
        result = model.evaluate(distribution.dataset(rows.select(names), y, batch_size), verbose=0, return_dict=True)
    else:
        result = model.evaluate(rows.select(names), y, batch_size=batch_size, verbose=0, return_dict=True)
    return {key: float(value) for key, value in result.items()}


def model_card_fields(config: TrainConfig, info: ModelInfo, data: Dataset, metrics: dict) -> dict[str, Any]:
    """Everything a model card records except the version and the signature."""
    return {
        "description": info.description,
        "task": info.task,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": data.describe(),
        "hyperparameters": {**info.describe()["hyperparameters"], **config.hparams},
        "config": config.to_dict(),
        "metrics": metrics,
        "zoo": zoo.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def _epochs_in(history_csv: Path) -> int:
    with open(history_csv, encoding="utf-8") as handle:
        return max(0, sum(1 for _ in handle) - 1)
