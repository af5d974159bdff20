"""`zoo retrain`: retrain a model in production, and publish the candidate only if it is at
least as good as the version being served.

The candidate is trained with the served version's recorded configuration (its model card),
on new data (`--data`) or the same data, with `--config` on top; `--traffic` adds labelled
served rows (zoo.loop.traffic) to its training split, all but the most recent `recent`
share of them. Then candidate and served version are scored on the same held-out rows on the
model's primary metric: the candidate's test split and, with `--traffic`, the recent traffic
rows it did not train on. A candidate worse (beyond `threshold`) on either stays under runs/
and the reason is printed; `force` publishes it anyway. The comparison goes into the new
version's model card.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd

from zoo import repository
from zoo.datasets.base import Split
from zoo.errors import ConfigError
from zoo.loop.traffic import as_split, read_rows, recent_traffic, split_recent
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
            traffic: str | None = None, recent: float = 0.3, threshold: float = 0.0, force: bool = False,
            keep: int | None = None, verbose: int | str = 0) -> RetrainResult:
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
    if traffic:
        # Every row checked before any training: a bad recent row must not surface after it.
        rows = read_rows(traffic)
        split_recent(rows, recent)  # a share out of range, named
        as_split(rows, dataset_from_card(served_card), str(traffic))
        values.update(traffic=str(traffic), traffic_recent=recent)
    else:  # a served version retrained on traffic: its traffic is not the new candidate's
        values.update(traffic=None, traffic_recent=0.0)
    values.update(model=name, export=False, models_dir=str(models_dir), output_dir=None)
    candidate = train(TrainConfig.from_dict(values, source=config_file or "model card"), verbose=verbose)

    candidate_card = json.loads((candidate.run_dir / CARD_FILE).read_text(encoding="utf-8"))
    data = dataset_from_card(candidate_card)
    held_out = {"test split": data.test}
    if traffic:
        held_out["recent traffic"] = recent_traffic(data, traffic, recent)
    # compile=False: scoring only predicts, and a model's training loss need not be importable here.
    models = {"candidate": keras.saving.load_model(candidate.run_dir / MODEL_FILE, compile=False),
              "served": keras.saving.load_model(served_dir / "model.keras", compile=False)}
    metric = info.primary_metric
    lower_is_better = metric.endswith(("mae", "mse", "loss"))
    checks, verdicts = {}, []
    for where, rows in held_out.items():
        scores = {who: score(model, info.task, rows, data.class_names) for who, model in models.items()}
        candidate_value, served_value = scores["candidate"][metric], scores["served"][metric]
        if lower_is_better:
            passes = candidate_value <= served_value + threshold
        else:
            passes = candidate_value >= served_value - threshold
        checks[where] = {"rows": len(rows), "candidate": candidate_value, "served": served_value,
                         "scores": scores, "passed": bool(passes)}
        verdicts.append(f"{metric} {candidate_value:.4f} for the candidate against {served_value:.4f} for version "
                        f"{served_version} on the {where} ({len(rows)} rows){'' if passes else ' (worse)'}")
    passes = all(check["passed"] for check in checks.values())
    first = checks["test split"]
    comparison = {
        "metric": metric, "lower_is_better": lower_is_better, "threshold": threshold,
        "held_out_rows": first["rows"], "served_version": served_version,
        "candidate": first["candidate"], "served": first["served"], "scores": first["scores"],
        "checks": checks, "traffic": str(traffic) if traffic else None,
        "passed": bool(passes), "forced": bool(force and not passes),
    }
    verdict = "; ".join(verdicts)
    if not passes and not force:
        return RetrainResult(False, f"not published: {verdict}; the candidate stays in {candidate.run_dir}",
                             candidate.run_dir, None, comparison)
    version_dir = publish_run(candidate.run_dir, models_dir, card_extra={"retrain": comparison},
                              test_features=data.test.features)
    if keep is not None:
        version_labels.prune(models_dir, name, keep)
    how = "published (forced)" if not passes else "published"
    return RetrainResult(True, f"{how} as {version_dir}: {verdict}", candidate.run_dir, version_dir, comparison)


def score(model, task: str, rows: Split, class_names) -> dict[str, float]:
    """The trainer's metrics for a Keras model on `rows`, computed on the outputs its serving
    signature would give (the export's own conversion, run eagerly)."""
    import tensorflow as tf

    from zoo.repository.export import signature_outputs
    from zoo.training.trainer import input_names

    outputs = model.predict(rows.select(input_names(model)), verbose=0)
    served = signature_outputs({k: tf.constant(v) for k, v in outputs.items()}, task, class_names)
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
