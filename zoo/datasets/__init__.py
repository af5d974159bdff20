"""Datasets: `load_dataset(name, **options)` -> a split `Dataset` of named features.

Each source module registers its datasets when imported; they are imported here, by name,
so `list_datasets()` always knows every source.
"""

from zoo.datasets import images, synthetic, tabular  # noqa: F401  (registers the sources)
from zoo.datasets.base import (
    TASKS,
    Dataset,
    FeatureSpec,
    Split,
    Table,
    dataset_entry,
    list_datasets,
    load_dataset,
    register_dataset,
)
from zoo.datasets.cache import DATA_DIR_VARIABLE, data_dir

__all__ = [
    "DATA_DIR_VARIABLE",
    "TASKS",
    "Dataset",
    "FeatureSpec",
    "Split",
    "Table",
    "data_dir",
    "dataset_entry",
    "list_datasets",
    "load_dataset",
    "register_dataset",
]
