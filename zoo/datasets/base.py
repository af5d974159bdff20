"""The dataset contract: named feature columns, a target, a task and a seeded split.

A source (one function per dataset, registered with `register_dataset`) returns a `Table`:
the raw feature columns and the target. `load_dataset` turns that into a `Dataset` with a
deterministic train/validation/test split, so every source gets the same split logic and
every model sees the same rows for the same seed.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from zoo.errors import DatasetError

TASKS = ("regression", "multiclass", "binary")


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """One named model input: a column of a table, or an image tensor.

    Attributes:
        name: the input name, used by the model, the signature and the clients.
        dtype: "float32" for numbers and pixels, "string" for categories.
        shape: the per-example shape; () for a table column.
    """

    name: str
    dtype: str = "float32"
    shape: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The spec as the model card and the signature describe it."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclasses.dataclass(frozen=True)
class Table:
    """What a source returns: every row, before the split.

    `test` is set by sources that come with a canonical test set (Fashion-MNIST); the
    validation split is then carved from `features`/`target` only.
    """

    features: dict[str, np.ndarray]
    target: np.ndarray
    target_name: str
    source: str
    class_names: tuple[str, ...] | None = None
    test: Table | None = None
    checksum: str | None = None
    task: str | None = None  # what the data suggests (a user CSV); the caller's task wins


@dataclasses.dataclass(frozen=True)
class Split:
    """A set of rows: feature columns by name and the target, aligned on axis 0."""

    features: dict[str, np.ndarray]
    target: np.ndarray

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def take(self, indices: np.ndarray) -> Split:
        """The rows at `indices`, features and target alike."""
        return Split({k: v[indices] for k, v in self.features.items()}, self.target[indices])

    def select(self, names: list[str] | tuple[str, ...]) -> dict[str, np.ndarray]:
        """The named feature columns, in the given order (a model's inputs)."""
        return {name: self.features[name] for name in names}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A loaded dataset, split and ready for a model.

    The target is float32 for regression and int64 class ids for classification, with
    `class_names[i]` naming class id `i`.
    """

    name: str
    task: str
    features: tuple[FeatureSpec, ...]
    target_name: str
    class_names: tuple[str, ...] | None
    train: Split
    validation: Split
    test: Split
    source: str
    options: dict[str, Any]
    split: dict[str, Any]
    checksum: str | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The input names, in the dataset's order."""
        return tuple(spec.name for spec in self.features)

    def feature(self, name: str) -> FeatureSpec:
        """The spec of one feature; ConfigError naming the known ones if absent."""
        for spec in self.features:
            if spec.name == name:
                return spec
        raise DatasetError(
            f"dataset '{self.name}' has no feature '{name}'; "
            f"its features are: {', '.join(self.feature_names)}"
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: what the model card and `zoo datasets` show."""
        return {
            "name": self.name,
            "task": self.task,
            "source": self.source,
            "checksum": self.checksum,
            "options": self.options,
            "target": self.target_name,
            "class_names": list(self.class_names) if self.class_names else None,
            "features": [spec.to_json() for spec in self.features],
            "split": self.split,
        }


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its loader, task and description."""
    name: str
    loader: Callable[..., Table]
    task: str
    description: str


_DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, *, task: str, description: str):
    """Register a source function `loader(**options) -> Table` under `name`."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")

    def decorator(loader: Callable[..., Table]) -> Callable[..., Table]:
        if name in _DATASETS:
            raise ValueError(f"dataset '{name}' is already registered")
        _DATASETS[name] = DatasetEntry(name, loader, task, description)
        return loader

    return decorator


def list_datasets(pattern: str = "*") -> list[str]:
    """The registered dataset names matching an fnmatch pattern."""
    return sorted(name for name in _DATASETS if fnmatch.fnmatch(name, pattern))


def dataset_entry(name: str) -> DatasetEntry:
    """A registered dataset by name; KeyError listing the known names."""
    try:
        return _DATASETS[name]
    except KeyError:
        raise DatasetError(
            f"unknown dataset '{name}'; known datasets: {', '.join(list_datasets())}"
        ) from None


def load_dataset(
    name: str,
    *,
    seed: int = 42,
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
    task: str | None = None,
    classes: list[str] | tuple[str, ...] | None = None,
    max_train_rows: int | None = None,
    scale: str | None = None,
    **options: Any,
) -> Dataset:
    """Load a registered dataset and split it deterministically.

    Args:
        name: a name from `list_datasets()`.
        seed: seeds the shuffle behind the split; the same seed gives the same rows.
        validation_fraction: share of all rows held out for validation (early
            stopping); for sources with a canonical test set, share of the training rows.
        test_fraction: share of all rows held out for the final evaluation. Ignored by
            sources with a canonical test set.
        task: override the source's task, e.g. "multiclass" to classify wine quality.
        classes: keep only rows of these classes, in this order (class id i is classes[i]);
            e.g. digits ["8", "9"] as a binary task.
        max_train_rows: keep only this many training rows (a small labelled set); the
            validation and test splits are unchanged.
        scale: "minmax" scales every numeric feature and a regression target to [0, 1]
            with the training split's minimum and maximum (as the Kaggle course does).
        **options: passed to the source (`path=`, `url=`, `target=`...).

    Raises:
        DatasetError: unknown name, missing or corrupt file, bad option.
    """
    entry = dataset_entry(name)
    for label, fraction in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < fraction < 1.0:
            raise DatasetError(f"{label} must be between 0 and 1 (exclusive), got {fraction}")
    if validation_fraction + test_fraction >= 1.0:
        raise DatasetError(
            f"validation_fraction + test_fraction must leave rows to train on, "
            f"got {validation_fraction} + {test_fraction}"
        )
    if task is not None and task not in TASKS:
        raise DatasetError(f"task must be one of {', '.join(TASKS)}, got '{task}'")
    accepted = list(inspect.signature(entry.loader).parameters)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DatasetError(
            f"dataset '{name}' does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(accepted) or 'no options'}"
        )
    table = entry.loader(**options)
    task = task or table.task or entry.task
    if classes is not None:
        table = _select_classes(table, [str(c) for c in classes], name)
    if task == "regression" and table.target.dtype.kind not in "biuf":
        raise DatasetError(
            f"dataset '{name}': target '{table.target_name}' is not numeric, so it cannot be "
            "a regression target; use task 'multiclass' or 'binary'"
        )

    full, class_names = _encode_target(table, task, name, tuple(map(str, classes)) if classes else None)
    rng = np.random.default_rng(seed)
    if table.test is not None:
        test, _ = _encode_target(table.test, task, name, class_names)
        n_validation = max(1, round(len(full) * validation_fraction))
        order = rng.permutation(len(full))
        validation, train = full.take(order[:n_validation]), full.take(order[n_validation:])
    else:
        order = rng.permutation(len(full))
        n_test = max(1, round(len(full) * test_fraction))
        n_validation = max(1, round(len(full) * validation_fraction))
        test = full.take(order[:n_test])
        validation = full.take(order[n_test : n_test + n_validation])
        train = full.take(order[n_test + n_validation :])
    if len(train) == 0:
        raise DatasetError(f"dataset '{name}' has too few rows ({len(full)}) to split")
    if max_train_rows is not None:
        if max_train_rows < 1:
            raise DatasetError(f"max_train_rows must be >= 1, got {max_train_rows}")
        train = train.take(np.arange(min(max_train_rows, len(train))))
    if scale == "minmax":
        train, validation, test = _minmax(train, validation, test, scale_target=task == "regression")
    elif scale is not None:
        raise DatasetError(f"scale must be 'minmax' or nothing, got '{scale}'")

    features = tuple(
        FeatureSpec(key, "string" if column.dtype.kind in "OUS" else "float32", tuple(column.shape[1:]))
        for key, column in table.features.items()
    )
    split_info = {
        "seed": seed,
        "validation_fraction": validation_fraction,
        "test_fraction": None if table.test is not None else test_fraction,
        "canonical_test_set": table.test is not None,
        "rows": {"train": len(train), "validation": len(validation), "test": len(test)},
        "classes": list(classes) if classes is not None else None,
        "max_train_rows": max_train_rows,
        "scale": scale,
    }
    return Dataset(
        name=name,
        task=task,
        features=features,
        target_name=table.target_name,
        class_names=class_names,
        train=train,
        validation=validation,
        test=test,
        source=table.source,
        options=dict(options),
        split=split_info,
        checksum=table.checksum,
    )


def _select_classes(table: Table, classes: list[str], name: str) -> Table:
    """The rows of `table` whose class is one of `classes`, with text labels as targets."""

    def labels(part: Table) -> np.ndarray:
        if part.class_names is not None and part.target.dtype.kind in "iu":
            return np.array([part.class_names[i] for i in part.target], dtype=object)
        return np.array([class_name(v) for v in part.target], dtype=object)

    def keep(part: Table) -> Table:
        text = labels(part)
        mask = np.isin(text, classes)
        return dataclasses.replace(
            part, features={k: v[mask] for k, v in part.features.items()}, target=text[mask],
            class_names=None, test=keep(part.test) if part.test is not None else None,
        )

    known = set(labels(table))
    unknown = [c for c in classes if c not in known]
    if unknown:
        raise DatasetError(f"dataset '{name}' has no class(es) {', '.join(unknown)}; its classes: "
                           f"{', '.join(sorted(known, key=_class_sort_key))}")
    return keep(table)


def _minmax(train: Split, validation: Split, test: Split, scale_target: bool):
    """Scale numeric columns (and a regression target) by the training split's range."""
    bounds = {k: (v.min(axis=0), v.max(axis=0)) for k, v in train.features.items() if v.dtype.kind == "f"}

    def scaled(values: np.ndarray, low, high) -> np.ndarray:
        span = np.where(high > low, high - low, 1.0)
        return ((values - low) / span).astype(values.dtype)

    def apply(split: Split) -> Split:
        features = {k: scaled(v, *bounds[k]) if k in bounds else v for k, v in split.features.items()}
        target = scaled(split.target, train.target.min(), train.target.max()) if scale_target else split.target
        return Split(features, target)

    return apply(train), apply(validation), apply(test)


def _encode_target(
    table: Table, task: str, name: str, class_names: tuple[str, ...] | None = None
) -> tuple[Split, tuple[str, ...] | None]:
    """Cast features and encode the target for the task.

    Classification targets become int64 ids into `class_names`. A source that names its
    classes keeps those names; otherwise the sorted distinct values name them, so the
    ids are stable for a given set of values.
    """
    features = {
        key: column if column.dtype.kind in "OUS" else column.astype(np.float32)
        for key, column in table.features.items()
    }
    target = table.target
    if task == "regression":
        return Split(features, target.astype(np.float32)), None

    if table.class_names is not None and target.dtype.kind in "iu":
        class_names = table.class_names
        ids = target.astype(np.int64)
    else:
        values = np.array([class_name(v) for v in target], dtype=object)
        if class_names is None:
            class_names = tuple(sorted(set(values), key=_class_sort_key))
        index = {label: i for i, label in enumerate(class_names)}
        unknown = sorted(set(values) - set(index))
        if unknown:
            raise DatasetError(f"dataset '{name}': labels {unknown} of the test set do not occur in its training set")
        ids = np.array([index[v] for v in values], dtype=np.int64)
    if task == "binary" and len(class_names) != 2:
        raise DatasetError(
            f"dataset '{name}': a binary task needs exactly 2 classes in "
            f"'{table.target_name}', found {len(class_names)}"
        )
    return Split(features, ids), class_names


def class_name(value: Any) -> str:
    """A label value as the name of its class: 6.0 and 6 name the same class (integral
    floats print without ".0")."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _class_sort_key(label: str) -> tuple[int, float, str]:
    # Numeric labels sort by value ("3" < "10"), then everything else alphabetically.
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)
