"""`zoo retrain`: retrain a model in production, and publish the candidate only if it is at
least as good as the version being served.

The candidate is trained with the served version's recorded configuration (its model card),
on new data (`--data`) or the same data, with `--config` on top. Then candidate and served
version are scored on the same held-out rows (the candidate's test split) on the model's
primary metric. A candidate that is worse (beyond `threshold`) stays under runs/ and the
reason is printed; `force` publishes it anyway. The comparison goes into the new version's
model card.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd

from zoo import repository
from zoo.errors import ConfigError
from zoo.registry import model_info
from zoo.repository import model_card, version_labels
from zoo.training.config import TrainConfig
from zoo.training.evaluation import dataset_from_card, task_metrics


@dataclasses.dataclass(frozen=True)
class RetrainResult:
    """What a retrain did: the candidate's run, its metric against the served one, and whether it was published."""
    published: bool
    reason: str
    run_dir: Path
    version_dir: Path | None
    comparison: dict[str, Any]


def retrain(models_dir: Path, name: str, *, data: str | None = None, config_file: str | None = None,
            threshold: float = 0.0, force: bool = False, keep: int | None = None,
            verbose: int | str = 0) -> RetrainResult:
    """Train a candidate for `name` and publish it if it passes the gate (see module doc)."""
    import keras

    from zoo.training.runs import CARD_FILE, MODEL_FILE, publish_run
    from zoo.training.trainer import train

    models_dir = Path(models_dir)
    served_version = (version_labels.labels(models_dir, name).get(version_labels.STABLE)
                      or repository.latest_version(models_dir, name))
    served_dir = repository.version_dir(models_dir, name, served_version)
    served_card = model_card.read(served_dir)
    info = model_info(name)

    values = {k: v for k, v in served_card["config"].items() if k not in ("output_dir",)}
    if config_file:
        values.update(TrainConfig.read_yaml(config_file))
    if data:
        check_columns(Path(data), served_card)  # before any training: nothing changes on a bad file
        values.update(dataset="csv", data=str(data), target=served_card["dataset"]["target"])
    values.update(model=name, export=False, models_dir=str(models_dir), output_dir=None)
    candidate = train(TrainConfig.from_dict(values, source=config_file or "model card"), verbose=verbose)

    candidate_card = json.loads((candidate.run_dir / CARD_FILE).read_text(encoding="utf-8"))
    data = dataset_from_card(candidate_card)
    held_out = data.test
    metric = info.primary_metric
    # compile=False: scoring only predicts, and a model's training loss need not be importable here.
    scores = {
        "candidate": score(keras.saving.load_model(candidate.run_dir / MODEL_FILE, compile=False), info.task, data),
        f"version {served_version}": score(
            keras.saving.load_model(served_dir / "model.keras", compile=False), info.task, data),
    }
    candidate_value, served_value = scores["candidate"][metric], scores[f"version {served_version}"][metric]
    lower_is_better = metric.endswith(("mae", "mse", "loss"))
    if lower_is_better:
        passes = candidate_value <= served_value + threshold
    else:
        passes = candidate_value >= served_value - threshold
    comparison = {
        "metric": metric, "lower_is_better": lower_is_better, "threshold": threshold,
        "held_out_rows": len(held_out), "served_version": served_version,
        "candidate": candidate_value, "served": served_value, "scores": scores,
        "passed": bool(passes), "forced": bool(force and not passes),
    }
    verdict = (f"{metric} {candidate_value:.4f} for the candidate against {served_value:.4f} for version "
               f"{served_version} on the same {len(held_out)} held-out rows")
    if not passes and not force:
        return RetrainResult(False, f"not published: {verdict}; the candidate stays in {candidate.run_dir}",
                             candidate.run_dir, None, comparison)
    version_dir = publish_run(candidate.run_dir, models_dir, card_extra={"retrain": comparison},
                              test_features=held_out.features)
    if keep is not None:
        version_labels.prune(models_dir, name, keep)
    how = "published (forced)" if not passes else "published"
    return RetrainResult(True, f"{how} as {version_dir}: {verdict}", candidate.run_dir, version_dir, comparison)


def score(model, task: str, data) -> dict[str, float]:
    """The trainer's metrics for a Keras model on `data`'s held-out rows, computed on the
    outputs its serving signature would give (the export's own conversion, run eagerly)."""
    import tensorflow as tf

    from zoo.repository.export import signature_outputs
    from zoo.training.trainer import input_names

    rows = data.test
    outputs = model.predict(rows.select(input_names(model)), verbose=0)
    served = signature_outputs({k: tf.constant(v) for k, v in outputs.items()}, task, data.class_names)
    return task_metrics(task, {k: v.numpy() for k, v in served.items()}, rows.target)


def check_columns(path: Path, card: dict) -> None:
    """The new data must have exactly the served model's features and target."""
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except FileNotFoundError:
        raise ConfigError(f"no data file at {path}") from None
    from zoo.datasets.csv_reader import input_name

    header = [input_name(column) for column in header]
    expected = [*card["signature"]["inputs"], card["dataset"]["target"]]
    missing = [c for c in expected if c not in header]
    unexpected = [c for c in header if c not in expected]
    if missing or unexpected:
        raise ConfigError(
            f"{path} does not match model '{card.get('name')}': missing column(s): "
            f"{', '.join(missing) or 'none'}; unexpected column(s): {', '.join(unexpected) or 'none'}"
        )
