"""Strict CSV reading: a file either parses into exactly the expected table or is rejected.

A truncated download or a hand-edited file must never turn into a table with silently
missing or shifted values, so every check here fails with the line number and the column.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from zoo.errors import DatasetError

_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.]+")


def input_name(column: str) -> str:
    """A column name made usable as a model input and signature key.

    TensorFlow node names allow letters, digits, "_" and "."; so "fixed acidity" becomes
    "fixed_acidity". Names that are already valid ("pH") are kept as they are.
    """
    name = _INVALID_NAME_CHARS.sub("_", column.strip()).strip("_")
    if not name or not name[0].isalnum():
        name = f"f_{name}"
    return name


def read_csv(
    dataset: str,
    path: Path,
    *,
    expected_columns: list[str] | None = None,
    string_columns: tuple[str, ...] = (),
    may_be_empty: tuple[str, ...] = (),
    expected_rows: int | None = None,
) -> pd.DataFrame:
    """Read a CSV (`,` or `;` separated) into a DataFrame with input-safe column names.

    Args:
        dataset: the dataset's name, for error messages.
        path: the file.
        expected_columns: the exact columns (after `input_name`), in order. None means a
            user's file: any columns, and a column whose cells are mostly not numbers is
            read as text (a category).
        string_columns: columns kept as text; every other column must be numeric.
        may_be_empty: numeric columns in which an empty cell is allowed (read as NaN).
        expected_rows: the exact row count of the published file, to catch truncation.

    Raises:
        DatasetError: naming the file, the line and the column that do not fit.
    """
    rows = list(csv.reader(io.StringIO(_read_text(dataset, path)), delimiter=_separator(path)))
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    if not rows:
        raise DatasetError(f"dataset '{dataset}': {path} is empty")
    header, body = [input_name(column) for column in rows[0]], rows[1:]
    # Count fields ourselves: pandas pads short rows with NaN, which would hide truncation.
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DatasetError(
                f"dataset '{dataset}': {path} is corrupt or truncated: line {number} has "
                f"{len(row)} fields, the header has {len(header)}"
            )
    if len(set(header)) != len(header):
        raise DatasetError(f"dataset '{dataset}': {path} has duplicate column names: {header}")
    if expected_columns is not None and header != expected_columns:
        missing = [c for c in expected_columns if c not in header]
        unexpected = [c for c in header if c not in expected_columns]
        raise DatasetError(
            f"dataset '{dataset}': {path} does not have the expected columns "
            f"(missing: {missing or 'none'}, unexpected: {unexpected or 'none'})"
        )
    if expected_rows is not None and len(body) != expected_rows:
        raise DatasetError(
            f"dataset '{dataset}': {path} is corrupt or truncated: {len(body)} rows, "
            f"the published file has {expected_rows}"
        )
    frame = pd.DataFrame(body, columns=header, dtype=object)
    for column in header:
        cells = frame[column].str.strip()
        frame[column] = cells
        if column in string_columns:
            continue
        numbers = pd.to_numeric(cells, errors="coerce")
        bad = numbers.isna() & ~((cells == "") & (column in may_be_empty))
        if bad.any() and expected_columns is None and _mostly_text(cells, numbers):
            continue
        # "1e400" reads as inf (and "nan" as NaN): one such cell trains a model whose loss
        # and every answer are NaN, and that model was exported as a new version.
        infinite = np.isinf(numbers.to_numpy(dtype="float64", na_value=np.nan))
        if bad.any() or infinite.any():
            row = int((bad.to_numpy() | infinite).nonzero()[0][0])
            found = "an empty cell" if cells.iloc[row] == "" else repr(cells.iloc[row])
            kind = "a finite number" if infinite[row] else "a number"
            raise DatasetError(
                f"dataset '{dataset}': {path} line {row + 2}, column '{column}': "
                f"expected {kind}, got {found}"
            )
        frame[column] = numbers.astype("float64")
    return frame


def _separator(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = handle.readline()
    return ";" if first.count(";") > first.count(",") else ","


def _mostly_text(cells: pd.Series, numbers: pd.Series) -> bool:
    # A category column: most filled cells are words. A number column with a few typos
    # in it is an error to report, not a category to learn.
    filled = (cells != "").sum()
    return filled > 0 and numbers.notna().sum() < 0.9 * filled


def _read_text(dataset: str, path: Path) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"dataset '{dataset}': no file at {path}") from None
    except UnicodeDecodeError as error:
        raise DatasetError(
            f"dataset '{dataset}': {path} is not UTF-8 text (byte {error.start}); is it corrupt?"
        ) from None
    # Some copies of housing.csv were written as str(bytes): "b'<csv>'" around the real text.
    stripped = text.strip()
    if len(stripped) > 3 and stripped[:2] in ("b'", 'b"') and stripped[-1] == stripped[1]:
        text = stripped[2:-1]
    return text
