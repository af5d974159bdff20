"""Input files -> keyed rows for RunInference, and the dead letters of rows that cannot be.

A row is checked before it is batched, so one bad cell costs one row, not the batch it
would have been sent in: a row whose field count is not the header's (a stray comma, a row
cut short: its values would be shifted) or whose model input is not a number is written to
the errors output with its file, row number, column and reason, as `zoo predict` names it.
Each file is read whole by one worker (a CSV header applies to the rows below it); to
spread a big input over workers, shard it into many files, as Beam's writers do.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Iterator

import apache_beam as beam
import numpy as np

from zoo.client.base import SignatureInfo

ERRORS = "errors"  # the tagged output of the dead letters
ERROR_COLUMNS = ("file", "row", "column", "reason")
_NUMERIC = {"DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_BFLOAT16", "DT_INT8", "DT_INT16", "DT_INT32", "DT_INT64",
            "DT_UINT8", "DT_UINT16", "DT_UINT32", "DT_UINT64"}
# The longest cell a dead letter quotes: the reason must not carry an attacker's megabyte.
_QUOTED = 60


@dataclasses.dataclass(frozen=True)
class RowKey:
    """Where a row came from, and the key columns that go out with its predictions."""

    file: str
    row: int  # 1 = the first data row, as `zoo predict` counts
    keys: tuple[str, ...]  # the key columns' values, as written


def dead_letter(file: str, row: int, column: str, reason: str) -> dict[str, object]:
    """One errors-output record."""
    return {"file": file, "row": row, "column": column, "reason": reason}


class ReadRows(beam.DoFn):
    """A matched file -> (RowKey, features) per good row; a dead letter per bad one.

    Args:
        signature: the model's signature (its inputs decide what is checked).
        keys: the key columns; None: every column the model does not take.
        file_format: "csv" or "parquet".
    """

    def __init__(self, signature: SignatureInfo, keys: list[str] | None, file_format: str):
        self.inputs = {name: tensor.dtype for name, tensor in signature.inputs.items()}
        self.keys = keys
        self.file_format = file_format

    def process(self, readable) -> Iterator:
        """Read one matched file."""
        path = readable.metadata.path
        with readable.open() as handle:
            records = _csv_records(handle) if self.file_format == "csv" else _parquet_records(handle)
            header = next(records, None)
            if header is None:
                return
            missing = [name for name in self.inputs if name not in header]
            if missing:  # a whole file without a model input: one dead letter, not one per row
                yield beam.pvalue.TaggedOutput(ERRORS, dead_letter(
                    path, 0, missing[0], f"the file has no column(s) {', '.join(missing)}; the model takes "
                                         f"{', '.join(self.inputs)}"))
                return
            keys = [c for c in header if c not in self.inputs] if self.keys is None else self.keys
            absent = [key for key in keys if key not in header]
            if absent:
                yield beam.pvalue.TaggedOutput(ERRORS, dead_letter(path, 0, absent[0], "no such key column"))
                return
            position = {name: header.index(name) for name in header}
            for row, values in enumerate(records, start=1):
                if len(values) != len(header):
                    cause = "a stray comma?" if len(values) > len(header) else "a row cut short?"
                    yield beam.pvalue.TaggedOutput(ERRORS, dead_letter(
                        path, row, "", f"{len(values)} fields, the header {len(header)} ({cause}); its values "
                                       "would be shifted"))
                    continue
                features, problem = _features(values, position, self.inputs)
                if problem is not None:
                    yield beam.pvalue.TaggedOutput(ERRORS, dead_letter(path, row, *problem))
                    continue
                yield RowKey(path, row, tuple(_text(values[position[k]]) for k in keys)), features


def _features(values, position, inputs) -> tuple[dict[str, np.ndarray], tuple[str, str] | None]:
    features = {}
    for name, dtype in inputs.items():
        cell = values[position[name]]
        if dtype == "DT_STRING":
            features[name] = np.asarray(_text(cell), dtype=object)
            continue
        if dtype not in _NUMERIC:
            return {}, (name, f"the model takes {dtype}, which batch predictions do not read from a file")
        try:
            number = float(cell)
        except (TypeError, ValueError):
            return {}, (name, f"expected a number, got {_text(cell)[:_QUOTED]!r}")
        if math.isnan(number):  # a model fed NaN answers NaN: refuse it here, by name
            return {}, (name, f"expected a number, got {_text(cell)[:_QUOTED]!r}")
        features[name] = np.asarray(number, dtype=np.float32 if dtype != "DT_DOUBLE" else np.float64)
    return features, None


def _text(value) -> str:
    return "" if value is None else str(value)


def _csv_records(handle) -> Iterator[list[str]]:
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    yield from csv.reader(text)


def _parquet_records(handle) -> Iterator[list]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(handle)
    yield list(table.schema_arrow.names)
    for batch in table.iter_batches():
        columns = [column.to_pylist() for column in batch.columns]
        yield from (list(row) for row in zip(*columns))
