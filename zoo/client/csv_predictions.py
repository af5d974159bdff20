"""Batch predictions from a CSV file: streamed in chunks, written atomically.

Memory stays flat in the file's size: the CSV is read `batch_size` rows at a time, each
chunk is checked, sent and appended to a temporary file beside the output, which is renamed
to the requested name only when every row has its prediction. A bad row stops the run with
its row number and the problem, and leaves no partial output behind.

Chunks are pipelined: while the server works on one chunk, the next is read, checked and
sent, so the client's own work (CSV parsing, conversion, writing) hides behind the server's
instead of adding to it. At most `_IN_FLIGHT + 1` chunks are held at once, and results are
written in file order.

Numeric inputs are parsed by pandas' C reader. A cell that is not a finite number makes the
rest of the file, from that chunk on, be read as text, where the check names its row, column
and text as written. Key columns are always text, so they are copied exactly as in the file.

A row is never shifted: pandas, reading chosen columns, takes the first fields of a row that
has too many and drops the rest without a word (a stray comma in a number moved every later
value one column over), and fills a short row with empty cells. So before anything is sent,
one pass over the file's bytes checks that every row has the header's number of fields and
that the text is UTF-8 (numpy counts the commas of each line: ~0.055 s for 100,000 rows; a
file with quotes is counted by the csv module, which knows quoted commas, at ~0.35 s).
A quote never closed is refused with the row it starts in.
"""

from __future__ import annotations

import codecs
import collections
import concurrent.futures
import csv
import dataclasses
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from zoo.client.base import ClientError, ModelClient, model_target
from zoo.protocol.names import DEFAULT_SIGNATURE

_PROGRESS_EVERY = 0.5  # seconds between progress bar updates
_IN_FLIGHT = 2  # chunks being converted or predicted while the next one is read
_FLOAT_DTYPES = {"DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_BFLOAT16"}


@dataclasses.dataclass(frozen=True)
class BatchResult:
    """What a batch prediction job wrote: rows, requests and the output file."""
    rows: int
    seconds: float
    output: Path


def predict_csv(client: ModelClient, model: str, input_path: Path, output_path: Path, *,
                batch_size: int = 1024, keys: list[str] | None = None, version: int | None = None,
                label: str | None = None, signature: str = DEFAULT_SIGNATURE,
                progress: bool = True) -> BatchResult:
    """Predict every row of a CSV and write the key columns with the predictions.

    Args:
        client: a RestClient or GrpcClient.
        model: the model's name on the server.
        input_path: a CSV with a header, holding (at least) the model's input columns.
        output_path: where the predictions go; written only if every row succeeds.
        batch_size: rows per request.
        keys: input columns to copy into the output; default every column the model does
            not take (ids, timestamps...).
        version, label, signature: which version and signature to call.
        progress: print a progress line to stderr.

    Raises:
        ClientError: a missing column, a bad cell (with its row number), a server error.
    """
    if batch_size < 1:
        raise ClientError(f"batch size must be >= 1, got {batch_size}")
    input_path, output_path = Path(input_path), Path(output_path)
    info = client.signature(model_target(model, version, label, signature))
    header = _header(input_path)
    missing = [name for name in info.inputs if name not in header]
    if missing:
        raise ClientError(
            f"{input_path} has no column(s) {', '.join(missing)}; the model '{model}' takes: "
            f"{', '.join(info.inputs)}; the file has: {', '.join(header)}"
        )
    keys = [c for c in header if c not in info.inputs] if keys is None else keys
    unknown = [key for key in keys if key not in header]
    if unknown:
        raise ClientError(f"{input_path} has no key column(s) {', '.join(unknown)}")
    total = check_rows(input_path, len(header))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{output_path.name}.", suffix=".partial", dir=output_path.parent)
    started, done = time.perf_counter(), 0
    share = "/{total_fmt} rows ({percentage:.0f}%)" if total else " rows"
    bar = tqdm(total=total, unit=" rows", disable=not progress, file=sys.stderr, mininterval=_PROGRESS_EVERY,
               bar_format="{n_fmt}" + share + ", {rate_fmt}")
    pool = concurrent.futures.ThreadPoolExecutor(_IN_FLIGHT, thread_name_prefix="zoo-predict")
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            columns = list(dict.fromkeys([*keys, *info.inputs]))
            numbers = [name for name, tensor in info.inputs.items()
                       if tensor.dtype in _FLOAT_DTYPES and name not in keys]
            pending = collections.deque()  # (chunk, its predictions' future), in file order

            def write_oldest() -> None:
                nonlocal done
                chunk, future = pending.popleft()
                written = pd.concat([chunk[keys], future.result()], axis=1)
                written.to_csv(out, header=done == 0, index=False)
                done += len(chunk)
                bar.update(len(chunk))

            for chunk in _numbered_chunks(input_path, columns, numbers, batch_size):
                pending.append((chunk, pool.submit(client.predict, model, chunk, version=version,
                                                   label=label, signature=signature)))
                if len(pending) > _IN_FLIGHT:
                    write_oldest()
            while pending:
                write_oldest()
        os.replace(temp_name, output_path)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # nothing may still write once we clean up
        os.unlink(temp_name)
        raise
    finally:
        bar.close()
    pool.shutdown()
    seconds = time.perf_counter() - started
    return BatchResult(done, seconds, output_path)


def _numbered_chunks(path: Path, columns: list[str], numbers: list[str], batch_size: int):
    """The CSV in chunks indexed by row number (1 = the first data row). At a cell of
    `numbers` that is not a number, the rest of the file is read as text from that chunk on,
    so the check names the cell as it is written."""
    read = 0
    chunks = _chunks(path, columns, numbers, batch_size)
    while True:
        try:
            chunk = next(chunks)
            if numbers and not np.isfinite(chunk[numbers].to_numpy()).all():
                raise ValueError("an empty, NaN or infinite cell")
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise ClientError(_not_utf8(path)) from None
        except ValueError as error:
            if not numbers:  # already text: a malformed file
                raise ClientError(_malformed(path, error)) from None
            numbers = []
            chunks = _chunks(path, columns, numbers, batch_size, skip=read)
            continue
        chunk.index = pd.RangeIndex(read + 1, read + 1 + len(chunk))
        read += len(chunk)
        yield chunk


def _chunks(path: Path, columns: list[str], numbers: list[str], batch_size: int, skip: int = 0):
    """The CSV's `columns` in chunks of `batch_size` rows, after its first `skip` data rows:
    `numbers` parsed as float64 (correctly rounded, as Python's float() reads them), every
    other column as text."""
    dtype = {column: np.float64 if column in numbers else str for column in columns}
    return iter(pd.read_csv(path, chunksize=batch_size, dtype=dtype, keep_default_na=False, usecols=columns,
                            skiprows=range(1, skip + 1), float_precision="round_trip", encoding="utf-8"))


def _malformed(path: Path, error: Exception) -> str:
    """pandas' tokenizer error, with its line turned into the data row it is."""
    text = str(error)
    if match := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text):
        expected, line, saw = map(int, match.groups())
        return f"{path}: row {line - 1} has {saw} fields, the header {expected - 1}; its values would be shifted"
    if match := re.search(r"EOF inside string starting at row (\d+)", text):
        return f"{path}: a quoted field that starts in row {match.group(1)} is never closed"
    return f"{path} is not a well-formed CSV: {text}"


def _not_utf8(path: Path) -> str:
    """Which row holds the first bytes that are not UTF-8 (read again, a line at a time)."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                return (f"{path}: row {number} is not UTF-8 text (byte {line[error.start]:#04x} at "
                        f"character {error.start + 1}); save the file as UTF-8")
    return f"{path} is not UTF-8 text"


def _header(path: Path) -> list[str]:
    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except FileNotFoundError:
        raise ClientError(f"no input file at {path}") from None
    except UnicodeDecodeError:
        raise ClientError(_not_utf8(path)) from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        raise ClientError(f"{path} is not a CSV with a header: {error}") from None


def check_rows(path: Path, fields: int) -> int:
    """Every row's field count against the header's, and the text's encoding, in one pass
    of constant memory; returns the number of data rows. Raises ClientError naming the row."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, carry = 0, b""  # carry: the line a block ended inside
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            if b'"' in block:  # quoted commas: only a CSV parser can count, from the start
                return _check_rows_quoted(path, fields)
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                raise ClientError(_not_utf8(path)) from None
            data = carry + block
            cut = data.rfind(b"\n") + 1
            line = _check_lines(path, data[:cut], line, fields)
            carry = data[cut:]
    if carry.strip():
        line = _check_lines(path, carry + b"\n", line, fields)
    return max(line - 1, 0)


def _check_lines(path: Path, data: bytes, first_line: int, fields: int) -> int:
    """Whole lines of unquoted CSV: each non-blank line must hold `fields - 1` commas."""
    if not data:
        return first_line
    raw = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(raw == ord("\n"))
    per_line = np.diff(np.searchsorted(np.flatnonzero(raw == ord(",")), ends), prepend=0)
    starts = np.concatenate([[0], ends[:-1] + 1])
    blank = (ends - starts) <= (raw[np.maximum(ends - 1, 0)] == ord("\r"))  # "" or "\r": pandas skips them
    wrong = np.flatnonzero((per_line != fields - 1) & ~blank)
    if len(wrong):
        row = first_line + int(wrong[0])
        raise ClientError(_field_count_error(path, row, int(per_line[wrong[0]]) + 1, fields))
    return first_line + len(ends)


def _check_rows_quoted(path: Path, fields: int) -> int:
    rows = 0
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            for row, values in enumerate(csv.reader(handle)):
                if values and len(values) != fields:
                    raise ClientError(_field_count_error(path, row, len(values), fields))
                rows = row
    except UnicodeDecodeError:
        raise ClientError(_not_utf8(path)) from None
    except csv.Error:
        raise ClientError(f"{path}: a quoted field that starts in row {rows + 1} is never closed") from None
    return rows


def _field_count_error(path: Path, row: int, found: int, fields: int) -> str:
    cause = "a stray comma?" if found > fields else "a row cut short?"
    return f"{path}: row {row} has {found} fields, the header {fields} ({cause}); its values would be shifted"
