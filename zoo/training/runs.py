"""The run folder, the trainer's output, and publishing a finished run as a version.

    runs/<model>/<dataset>-seed<seed>-<digest>/
      config.yaml     the resolved TrainConfig
      history.csv     one row an epoch (CSVLogger); curves.png, its plot
      metrics.json    test and validation metrics, epochs, seconds
      model.keras     the trained model
      card.json       the model card's fields, for publishing later
      backup/         the resume checkpoint while training runs
      finished.json   written last: the data's digest and the version the run made

`publish_run` is the one way a finished run becomes a version: `zoo export RUN_DIR` and
`zoo retrain` both use it (the trainer exports its in-memory model with the same warm-up rows).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ExportError, TrainingError

HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.keras"
CARD_FILE = "card.json"  # the model card fields, for `zoo export RUN_DIR`
BACKUP_DIR = "backup"
FINISHED_FILE = "finished.json"  # written last: the data it was trained on and the version it made
WORKERS_DIR = "workers"  # under a multi-worker run's folder: one folder per non-chief worker
SCRATCH_MODELS_DIR = "scratch-models"
# A seed ensemble's members: members/<i>/ holds member i's resume checkpoint and history
# (member 0's are the run's own) and, once it has trained, its weights (MEMBER_WEIGHTS_FILE).
MEMBERS_DIR = "members"
MEMBER_WEIGHTS_FILE = "member.weights.h5"
WARMUP_ROWS = 8  # rows of the test split written as the version's warm-up requests


def warmup_rows(features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The first WARMUP_ROWS rows of each feature (export keeps those the signature takes)."""
    return {name: column[:WARMUP_ROWS] for name, column in features.items()}


def require_finite(metrics: dict, run_dir: Path) -> None:
    """Refuse a run whose test or validation metrics are not finite numbers: such a model
    answers NaN (or nonsense) for every row, and must never become a version."""
    for split in ("test", "validation"):
        for name, value in metrics.get(split, {}).items():
            if isinstance(value, (int, float)) and not math.isfinite(value):
                raise TrainingError(
                    f"the trained model's {split} {name} is {value}: it is not exported. Look for "
                    f"infinite or huge values in the data, or lower the learning rate; the run is in {run_dir}"
                )


def read_card(run_dir: Path) -> dict[str, Any]:
    """A finished run's card fields; ExportError if the run did not finish."""
    card_file, keras_file = run_dir / CARD_FILE, run_dir / MODEL_FILE
    if not card_file.is_file() or not keras_file.is_file():
        raise ExportError(f"{run_dir} is not a finished run: it needs {CARD_FILE} and {MODEL_FILE}")
    return json.loads(card_file.read_text(encoding="utf-8"))


def publish_run(run_dir: Path, models_dir: Path, *, card_extra: dict[str, Any] | None = None,
                test_features: dict[str, np.ndarray] | None = None) -> Path:
    """Export a finished run's model as the next version of its model; returns the version folder.

    Args:
        run_dir: the run folder (it must hold card.json and model.keras).
        models_dir: the repository to publish into.
        card_extra: fields added to the version's model card (a retrain's comparison, say).
        test_features: the rows the warm-up requests come from; default the run's own test
            split, reloaded from its card.
    """
    from zoo.repository.export import export_keras_file
    from zoo.training.evaluation import training_data_from_card

    card = read_card(run_dir)
    require_finite(card.get("metrics", {}), run_dir)  # a NaN model is never published
    data = training_data_from_card(card)
    if test_features is None:
        test_features = data.test.features
    return export_keras_file(
        run_dir / MODEL_FILE, name=card["config"]["model"], task=card["task"],
        class_names=card["dataset"]["class_names"], models_dir=Path(models_dir),
        card={**card, **(card_extra or {})}, warmup_rows=warmup_rows(test_features),
        profile_rows=(data.train.features, data.validation.features),
    )
