"""Tabular sources: Red Wine Quality, 80 Cereals, California housing, and any user CSV.

Each published file is fetched into the cache once (checked against its SHA-256), then
parsed strictly: a file that is not byte-for-byte the published one (Kaggle's comma-separated
re-upload of the wine data, say) is still accepted when it has exactly the published
columns and row count.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from zoo.datasets.base import Table, register_dataset
from zoo.datasets.bundled import bundled_copy
from zoo.datasets.cache import data_dir, fetch, file_digest
from zoo.datasets.csv_reader import read_csv
from zoo.errors import DatasetError

log = logging.getLogger("zoo.datasets")
_REPORTED: set[tuple[str, str]] = set()

RED_WINE_URL = (
    "https://archive.ics.uci.edu/ml/machine-learning-databases/wine-quality/winequality-red.csv"
)
RED_WINE_SHA256 = "d8e6ba89f11ca28524de436540063aac12a9a623683046b28ea6eaad357044c2"
RED_WINE_COLUMNS = [
    "fixed_acidity", "volatile_acidity", "citric_acid", "residual_sugar", "chlorides",
    "free_sulfur_dioxide", "total_sulfur_dioxide", "density", "pH", "sulphates", "alcohol",
    "quality",
]  # fmt: skip

# What a red wine can measure (the published data's own ranges, rounded outwards). Cells of
# the reference file lost their decimal point: alcohol 956666666666667 for 9.56666666666667,
# density 100369 for 1.00369, volatile acidity 1185 for 1.185.
RED_WINE_RANGES = {
    "fixed_acidity": (4.0, 16.0), "volatile_acidity": (0.1, 1.6), "citric_acid": (0.0, 1.0),
    "residual_sugar": (0.5, 16.0), "chlorides": (0.01, 0.7), "free_sulfur_dioxide": (1.0, 75.0),
    "total_sulfur_dioxide": (5.0, 300.0), "density": (0.98, 1.01), "pH": (2.7, 4.1),
    "sulphates": (0.3, 2.1), "alcohol": (8.0, 15.5),
}  # fmt: skip

CEREALS_URL = "https://www.kaggle.com/api/v1/datasets/download/crawford/80-cereals/cereal.csv"
CEREALS_SHA256 = "9a0f5d93df28536e8c372b529f533f587cceb872c61f313a13314cd404ef12a8"
CEREALS_COLUMNS = [
    "name", "mfr", "type", "calories", "protein", "fat", "sodium", "fiber", "carbo", "sugars",
    "potass", "vitamins", "shelf", "weight", "cups", "rating",
]  # fmt: skip

HOUSING_URL = "https://raw.githubusercontent.com/ageron/handson-ml2/master/datasets/housing/housing.csv"
HOUSING_SHA256 = "eeaba00e73aede58b33244ed9fe5e13335ee53145de70ce53014435e88dd03a7"
HOUSING_COLUMNS = [
    "longitude", "latitude", "housing_median_age", "total_rooms", "total_bedrooms",
    "population", "households", "median_income", "median_house_value", "ocean_proximity",
]  # fmt: skip


def _published_file(dataset: str, filename: str, url: str | None, default_url: str,
                    sha256: str, path: str | None) -> tuple[Path, str]:
    """The local file to parse and its checksum: a user's `path`, the cached copy, the copy
    shipped with the zoo, or a download."""
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise DatasetError(f"dataset '{dataset}': no file at {file}")
    elif url is None and not (data_dir() / filename).is_file() and \
            (shipped := bundled_copy(dataset, filename, sha256)) is not None:
        file = shipped
    else:
        # A user-chosen URL may serve another copy of the data: verify it by parsing instead.
        checksum = f"sha256:{sha256}" if url is None else None
        file = fetch(dataset, filename, url or default_url, checksum)
    return file, f"sha256:{file_digest(file)}"


@register_dataset(
    "red-wine",
    task="regression",
    description="Red Wine Quality (UCI, 1599 wines): 11 physicochemical features -> quality 3..8",
)
def red_wine(*, path: str | None = None, url: str | None = None) -> Table:
    """Red Wine Quality. Accepts the UCI file (`;`, quoted header) and Kaggle's (`,`)."""
    file, checksum = _published_file(
        "red-wine", "winequality-red.csv", url, RED_WINE_URL, RED_WINE_SHA256, path
    )
    frame = read_csv("red-wine", file, expected_columns=RED_WINE_COLUMNS, expected_rows=1599)
    frame = restore_lost_decimal_points("red-wine", frame, RED_WINE_RANGES)
    return _table(frame, "quality", source=str(url or path or RED_WINE_URL), checksum=checksum)


@register_dataset(
    "cereals",
    task="regression",
    description="80 Cereals (77 cereals): nutrition facts -> calories; rows with -1 dropped",
)
def cereals(*, path: str | None = None, url: str | None = None) -> Table:
    """80 Cereals, target `calories`.

    The file marks missing values with -1 (carbo, sugars, potass in three cereals). Those
    three rows are dropped rather than imputed: 74 rows remain, and no model learns from a
    made-up sugar content. `name` is an identifier and not a feature.
    """
    file, checksum = _published_file("cereals", "cereal.csv", url, CEREALS_URL, CEREALS_SHA256, path)
    frame = read_csv(
        "cereals", file, expected_columns=CEREALS_COLUMNS, string_columns=("name", "mfr", "type"),
        expected_rows=77,
    )
    numeric = [c for c in CEREALS_COLUMNS if c not in ("name", "mfr", "type")]
    frame = frame[~(frame[numeric] == -1).any(axis=1)].drop(columns=["name"])
    return _table(frame, "calories", source=str(url or path or CEREALS_URL), checksum=checksum)


@register_dataset(
    "california-housing",
    task="regression",
    description="California housing (1990 census, 20640 block groups): scikit-learn's 8 "
    "features -> median house value in $100,000",
)
def california_housing(*, path: str | None = None, url: str | None = None) -> Table:
    """California housing from the raw `housing.csv`, with scikit-learn's 8 derived features.

    The 207 block groups with no `total_bedrooms` are dropped (AveBedrms cannot be derived
    for them), leaving 20433 rows. The target is capped at 5.00001 in the source data.
    """
    file, checksum = _published_file(
        "california-housing", "housing.csv", url, HOUSING_URL, HOUSING_SHA256, path
    )
    raw = read_csv(
        "california-housing", file, expected_columns=HOUSING_COLUMNS,
        string_columns=("ocean_proximity",), may_be_empty=("total_bedrooms",), expected_rows=20640,
    )
    raw = raw[raw["total_bedrooms"].notna()]
    households = raw["households"]
    frame = pd.DataFrame(
        {
            "MedInc": raw["median_income"],
            "HouseAge": raw["housing_median_age"],
            "AveRooms": raw["total_rooms"] / households,
            "AveBedrms": raw["total_bedrooms"] / households,
            "Population": raw["population"],
            "AveOccup": raw["population"] / households,
            "Latitude": raw["latitude"],
            "Longitude": raw["longitude"],
            "MedHouseVal": raw["median_house_value"] / 100_000.0,
        }
    )
    return _table(frame, "MedHouseVal", source=str(url or path or HOUSING_URL), checksum=checksum)


@register_dataset(
    "csv",
    task="regression",
    description="your own CSV: path=FILE target=COLUMN (task inferred, or task=...)",
)
def user_csv(*, path: str | None = None, target: str | None = None) -> Table:
    """Any CSV with a header: every column but `target` is a feature.

    Columns whose cells are mostly not numbers become text (category) features; a numeric
    column with a non-number or an empty cell in it is reported with its line: fill it in
    or drop the row, the zoo does not guess values.
    """
    if path is None or target is None:
        raise DatasetError("dataset 'csv' needs path=FILE and target=COLUMN (--data and --target)")
    frame = read_csv("csv", Path(path))
    if target not in frame.columns:
        raise DatasetError(
            f"dataset 'csv': {path} has no column '{target}'; its columns are: "
            f"{', '.join(frame.columns)}"
        )
    table = _table(frame, target, source=str(path), checksum=f"sha256:{file_digest(Path(path))}")
    return dataclasses.replace(table, task=_infer_task(table.target))


def _infer_task(target: np.ndarray) -> str:
    """The task a target column suggests: text or 0/1 -> classification, else regression."""
    values = set(target.tolist())
    if target.dtype.kind == "O":
        return "binary" if len(values) == 2 else "multiclass"
    return "binary" if values <= {0.0, 1.0} else "regression"


def restore_lost_decimal_points(dataset: str, frame: pd.DataFrame,
                                ranges: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Put back decimal points a published file lost, where that is unambiguous.

    A value above its column's plausible maximum that lands inside the plausible range
    after dividing by a power of ten had its decimal point dropped (its digits are all
    there), and is restored; where two powers fit (1035 -> 1.035 or 0.1035), the one nearer
    the column's typical value wins. Anything else is left as it is. Repairs are logged, a
    line a column, with the first line number.
    """
    frame = frame.copy()
    exponents = np.arange(1, 20)
    for column, (low, high) in ranges.items():
        values = frame[column].to_numpy(dtype=np.float64, copy=True)
        plausible = values[(values >= low) & (values <= high)]
        typical = np.log10(np.median(plausible)) if len(plausible) and np.median(plausible) > 0 else 0.0
        repaired = []
        for row in np.nonzero(values > high)[0]:
            candidates = values[row] / 10.0**exponents
            fits = candidates[(candidates >= low) & (candidates <= high)]
            if len(fits):
                values[row] = fits[np.argmin(np.abs(np.log10(fits) - typical))]
                repaired.append(row + 2)
        if repaired and (dataset, column) not in _REPORTED:  # once a process is enough
            _REPORTED.add((dataset, column))
            log.warning("dataset '%s': restored the decimal point of %d '%s' values (first at line %d)",
                        dataset, len(repaired), column, repaired[0])
        frame[column] = values
    return frame


def _table(frame: pd.DataFrame, target: str, *, source: str, checksum: str) -> Table:
    columns = {name: _column_array(frame[name]) for name in frame.columns}
    target_values = columns.pop(target)
    return Table(
        features=columns, target=target_values, target_name=target, source=source, checksum=checksum
    )


def _column_array(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=np.float64)
    return column.to_numpy(dtype=object)
