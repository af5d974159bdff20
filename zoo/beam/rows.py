"""Input files -> chunks of checked rows for RunInference, and the dead letters of rows that
cannot be predicted.

A row is checked before it is sent, so one bad cell costs one row, not the request it would
have been in: a row whose field count is not the header's (a stray comma, a row cut short:
its values would be shifted) or whose model input is not a number goes to the errors output
with its file, row number, column and reason, as `zoo predict` names it. Good rows travel in
chunks of up to `chunk_rows` rows of one file, as columns: one chunk is one RunInference
element and one model call, as one `zoo predict` request is (per-row elements cost Beam's
per-element overhead ten times over: bench/beam.py). Each file is read by one worker (a CSV
header applies to the rows below it); to spread a big input over workers, shard it into many
files, as Beam's own writers do.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator

import apache_beam as beam
import numpy as np
import pandas as pd

from zoo.client.base import SignatureInfo

ERRORS = "errors"  # the tagged output of the dead letters
ERROR_COLUMNS = ("file", "row", "column", "reason")
_NUMPY_TYPES = {"DT_FLOAT": np.float32, "DT_HALF": np.float32, "DT_BFLOAT16": np.float32, "DT_DOUBLE": np.float64,
                "DT_INT8": np.int8, "DT_INT16": np.int16, "DT_INT32": np.int32, "DT_INT64": np.int64,
                "DT_UINT8": np.uint8, "DT_UINT16": np.uint16, "DT_UINT32": np.uint32, "DT_UINT64": np.uint64}
_QUOTED = 60  # the longest cell a dead letter quotes: a reason must not carry an attacker's megabyte


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Where a chunk's rows came from, and the key columns that go out with their predictions."""

    file: str
    rows: tuple[int, ...]  # 1 = the first data row, as `zoo predict` counts
    keys: tuple[tuple[str, ...], ...]  # per row, the key columns' values as written


def dead_letter(file: str, row: int, column: str, reason: str) -> dict[str, object]:
    """One errors-output record."""
    return {"file": file, "row": row, "column": column, "reason": reason}


class ReadRows(beam.DoFn):
    """A matched file -> (Chunk, columns) per chunk of good rows; a dead letter per bad row.

    Args:
        signature: the model's signature (its inputs decide what is checked).
        keys: the key columns every file must have.
        file_format: "csv" or "parquet".
        chunk_rows: the most rows in one chunk (one model call).
    """

    def __init__(self, signature: SignatureInfo, keys: list[str], file_format: str, chunk_rows: int):
        self.inputs = {name: tensor.dtype for name, tensor in signature.inputs.items()}
        self.keys = keys
        self.file_format = file_format
        self.chunk_rows = chunk_rows

    def process(self, readable) -> Iterator:
        """Read one matched file."""
        path = readable.metadata.path
        with readable.open() as handle:
            records = file_records(handle, self.file_format)
            header = next(records, None)
            if header is None:
                return
            absent = [c for c in [*self.inputs, *self.keys] if c not in header]
            if absent:  # a file without a needed column: one dead letter for the file, row 0
                wanted = f"the model takes {', '.join(self.inputs)}; the keys are {', '.join(self.keys) or 'none'}"
                yield beam.pvalue.TaggedOutput(ERRORS, dead_letter(
                    path, 0, absent[0], f"the file has no column(s) {', '.join(absent)}; {wanted}"))
                return
            rows, values = [], []
            for row, fields in enumerate(records, start=1):
                if len(fields) != len(header):
                    cause = "a stray comma?" if len(fields) > len(header) else "a row cut short?"
                    yield beam.pvalue.TaggedOutput(ERRORS, dead_letter(
                        path, row, "", f"{len(fields)} fields, the header {len(header)} ({cause}); its values "
                                       "would be shifted"))
                    continue
                rows.append(row)
                values.append(fields)
                if len(rows) == self.chunk_rows:
                    yield from self._chunk(path, header, rows, values)
                    rows, values = [], []
            if rows:
                yield from self._chunk(path, header, rows, values)

    def _chunk(self, path: str, header: list[str], rows: list[int], values: list[list]) -> Iterator:
        position = {name: index for index, name in enumerate(header)}
        columns, bad = {}, {}  # bad: row index in the chunk -> (column, reason), its first problem
        for name, dtype in self.inputs.items():
            cells = [fields[position[name]] for fields in values]
            if dtype == "DT_STRING":
                columns[name] = np.array([_text(cell) for cell in cells], dtype=object)
                continue
            if dtype not in _NUMPY_TYPES:
                reason = f"the model takes {dtype}, which batch predictions do not read from a file"
                bad.update({i: (name, reason) for i in range(len(rows)) if i not in bad})
                continue
            numbers = pd.to_numeric(pd.Series(cells, dtype=object), errors="coerce").to_numpy(np.float64)
            wrong = np.isnan(numbers)  # not a number, empty, or "nan": a model fed NaN answers NaN
            integral = np.dtype(_NUMPY_TYPES[dtype]).kind in "iu"
            if integral:
                wrong |= ~np.isfinite(numbers) | (numbers != np.floor(numbers))
            for i in np.flatnonzero(wrong):
                kind = "an integer" if integral else "a number"
                bad.setdefault(int(i), (name, f"expected {kind}, got {_text(cells[i])[:_QUOTED]!r}"))
            columns[name] = numbers.astype(_NUMPY_TYPES[dtype]) if not integral else \
                np.where(wrong, 0, numbers).astype(_NUMPY_TYPES[dtype])
        for i, (name, reason) in sorted(bad.items()):
            yield beam.pvalue.TaggedOutput(ERRORS, dead_letter(path, rows[i], name, reason))
        keep = [i for i in range(len(rows)) if i not in bad]
        if keep:
            key_positions = [position[k] for k in self.keys]
            chunk = Chunk(path, tuple(rows[i] for i in keep),
                          tuple(tuple(_text(values[i][p]) for p in key_positions) for i in keep))
            yield chunk, {name: column[keep] for name, column in columns.items()}


def _text(value) -> str:
    return "" if value is None else str(value)


def file_records(handle, file_format: str) -> Iterator[list]:
    """A CSV or Parquet file's header, then its rows, each a list of cells."""
    return _csv_records(handle) if file_format == "csv" else _parquet_records(handle)


def _csv_records(handle) -> Iterator[list[str]]:
    yield from csv.reader(io.TextIOWrapper(handle, encoding="utf-8", newline=""))


def _parquet_records(handle) -> Iterator[list]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(handle)
    yield list(table.schema_arrow.names)
    for batch in table.iter_batches():
        yield from (list(row) for row in zip(*(column.to_pylist() for column in batch.columns)))
