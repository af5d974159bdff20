"""Served traffic as data: rows read from `zoo logs` output (or any CSV/Parquet with the
model's features), split into older and recent rows, and added to a training split.

Retraining on traffic (`zoo retrain --traffic`) trains on the original training rows plus the
older labelled traffic, and gates on the original test split plus the recent labelled
traffic, which the candidate never trained on.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd

from zoo.datasets.base import Dataset, Split, class_name
from zoo.errors import ConfigError

TIME_COLUMN = "time"


def read_rows(path: str | Path) -> pd.DataFrame:
    """A CSV or Parquet file of rows; ConfigError naming the file if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no traffic file at {path}")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise ConfigError(f"cannot read the rows in {path}: {str(error).splitlines()[0][:200]}") from None


def split_recent(frame: pd.DataFrame, recent_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(older, recent): the last `recent_fraction` of the rows by their `time` column (in file
    order where there is none, or where times tie)."""
    if not 0.0 <= recent_fraction < 1.0:
        raise ConfigError(f"the recent share of the traffic must be in [0, 1), got {recent_fraction}")
    if TIME_COLUMN in frame.columns:
        frame = frame.sort_values(TIME_COLUMN, kind="stable")
    recent = math.ceil(len(frame) * recent_fraction)
    cut = len(frame) - recent
    return frame.iloc[:cut], frame.iloc[cut:]


def as_split(frame: pd.DataFrame, data: Dataset, source: str) -> Split:
    """The rows as a Split of `data`'s features and encoded target. A feature with a shape per
    row is read from its flattened columns (`name_0`, `name_1`...), as `zoo logs` writes it."""
    features, missing = {}, []
    for spec in data.features:
        if spec.shape:
            size = int(np.prod(spec.shape))
            names = [f"{spec.name}_{i}" for i in range(size)]
            absent = [n for n in names if n not in frame.columns]
            if absent:
                missing.append(f"{spec.name} (as {names[0]}..{names[-1]})")
                continue
            values = frame[names].to_numpy(np.float32).reshape(len(frame), *spec.shape)
        elif spec.name not in frame.columns:
            missing.append(spec.name)
            continue
        elif spec.dtype == "string":
            values = frame[spec.name].astype(str).to_numpy(object)
        else:
            values = _numbers(frame[spec.name], spec.name, source)
        features[spec.name] = values
    if data.target_name not in frame.columns:
        missing.append(f"{data.target_name} (the label)")
    if missing:
        raise ConfigError(f"{source} lacks column(s) {', '.join(missing)}; rows for model training need "
                          f"every feature ({', '.join(data.feature_names)}) and the label '{data.target_name}'")
    target = frame[data.target_name]
    if target.isna().any():
        raise ConfigError(f"{source}: {int(target.isna().sum())} row(s) have no label in '{data.target_name}'; "
                          "join the labels first (zoo logs --labels) or drop those rows")
    if data.task == "regression":
        encoded = _numbers(target, data.target_name, source)
    else:
        index = {label: i for i, label in enumerate(data.class_names)}
        labels = [class_name(v) for v in target]
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ConfigError(f"{source}: label(s) {', '.join(unknown[:10])} in '{data.target_name}' are not "
                              f"classes of the model ({', '.join(data.class_names)})")
        encoded = np.array([index[label] for label in labels], dtype=np.int64)
    return Split(features, encoded)


def _numbers(column: pd.Series, name: str, source: str) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.argmax(bad))
        raise ConfigError(f"{source}: column '{name}' has {int(bad.sum())} value(s) that are not finite numbers "
                          f"(first at row {first + 1}: {column.iloc[first]!r})")
    return values.astype(np.float32)


def with_training_rows(data: Dataset, rows: Split) -> Dataset:
    """`data` with `rows` added to its training split (validation and test unchanged)."""
    if data.split.get("scale"):
        raise ConfigError("traffic rows cannot be added to a dataset scaled at load (scale=minmax): served rows "
                          "are in the scaled units but their labels are not; train on raw features instead")
    train = Split({k: np.concatenate([v, rows.features[k]]) for k, v in data.train.features.items()},
                  np.concatenate([data.train.target, rows.target]))
    split = {**data.split, "rows": {**data.split["rows"], "train": len(train)}, "traffic_rows": len(rows)}
    return dataclasses.replace(data, train=train, split=split)


def add_traffic(data: Dataset, path: str, recent_fraction: float) -> Dataset:
    """`data` with the older labelled traffic rows in `path` added to its training split."""
    older, _ = split_recent(read_rows(path), recent_fraction)
    return with_training_rows(data, as_split(older, data, str(path)))


def recent_traffic(data: Dataset, path: str, recent_fraction: float) -> Split:
    """The recent labelled traffic rows of `path`: what a retrained candidate is gated on."""
    _, recent = split_recent(read_rows(path), recent_fraction)
    return as_split(recent, data, str(path))
