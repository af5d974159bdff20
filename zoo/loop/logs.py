"""`zoo logs`: request-log records (TF Serving's PredictionLog, in TFRecord files) to rows.

A row per example the model answered: when (UTC), model, version, signature, the request's
id (`request_id`: the X-Request-Id header, gRPC x-request-id metadata or V2 `id` the client
sent; empty without one) and the row's place in its request (`row`), one column per input
feature and one per output (a vector a row becomes `name_0`, `name_1`..., text stays
text), written as CSV or Parquet a chunk at a time, so memory stays flat in the number of
records. Predict, Classify and Regress records become rows (a Classify row has a score
column per class and `label`, a Regress row `value`); MultiInference records are counted
and skipped.

`labels` joins ground truth that arrived later: a CSV or Parquet with `request_id` (and `row`,
for requests of several rows) and label column(s); rows without a label are left out.

A file cut short (the server killed in the middle of a write) is read up to its last whole
record, with a warning naming it; the files after it are still read.
"""

from __future__ import annotations

import datetime
import glob
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from zoo.errors import ZooError

log = logging.getLogger("zoo.loop")

CHUNK_ROWS = 10_000
META_COLUMNS = ["time", "model", "version", "signature", "request_id", "row"]


class LogsError(ZooError):
    """Request logs that cannot be read or written, said in one line."""


def log_files(sources: list[str]) -> list[str]:
    """The TFRecord files named: files as they are, a prefix (`filename_prefix`) as its files."""
    files = []
    for source in sources:
        if Path(source).is_file():
            files.append(source)
            continue
        found = sorted(glob.glob(f"{glob.escape(source)}-*.tfrecord"))
        if not found:
            raise LogsError(f"no request-log files at {source} (a file, or a filename_prefix: {source}-*.tfrecord)")
        files += found
    return files


def records(files: list[str]) -> Iterator:
    """Every whole PredictionLog in the files, in order; a file cut short warns and ends there."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    for path in files:
        count = 0
        try:
            for raw in tf.data.TFRecordDataset([path]):
                count += 1
                yield prediction_log_pb2.PredictionLog.FromString(raw.numpy())
        except tf.errors.DataLossError as error:
            log.warning("%s ends in a partial record after %d whole ones (the server was stopped mid-write?): "
                        "read up to its last whole record (%s)", path, count, str(error).splitlines()[0][:200])


def rows(record) -> pd.DataFrame | None:
    """One record's examples as rows (None for a kind that has no rows: MultiInference)."""
    from zoo.client.base import outputs_frame
    from zoo.protocol import tensor_protos

    kind = record.WhichOneof("log_type")
    if kind == "predict_log":
        inputs = {k: tensor_protos.to_array(v) for k, v in record.predict_log.request.inputs.items()}
        outputs = {k: tensor_protos.to_array(v) for k, v in record.predict_log.response.outputs.items()}
        features, answers = outputs_frame(_batched(inputs)), outputs_frame(_batched(outputs))
    elif kind in ("classify_log", "regress_log"):
        entry = getattr(record, kind)
        features = pd.DataFrame(_examples(entry.request.input))
        if kind == "regress_log":
            answers = pd.DataFrame({"value": [r.value for r in entry.response.result.regressions]})
        else:
            scores = [{c.label: c.score for c in row.classes} for row in entry.response.result.classifications]
            answers = pd.DataFrame(scores)
            answers["label"] = answers.idxmax(axis=1)
    else:
        return None
    answers = answers.rename(columns={c: f"{c}_output" for c in answers.columns if c in features.columns})
    frame = pd.concat([features.reset_index(drop=True), answers.reset_index(drop=True)], axis=1)
    spec = record.log_metadata.model_spec
    stamp = datetime.datetime.fromtimestamp(record.log_metadata.timestamp_secs, datetime.timezone.utc)
    client_id = record.predict_log.request.client_id if kind == "predict_log" else b""
    frame.insert(0, "row", np.arange(len(frame)))
    frame.insert(0, "request_id", client_id.decode("utf-8", "replace"))
    frame.insert(0, "signature", spec.signature_name or "serving_default")
    frame.insert(0, "version", spec.version.value)
    frame.insert(0, "model", spec.name)
    frame.insert(0, "time", stamp.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return frame


def _batched(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Scalars as one row; everything else keeps its first axis as the rows."""
    return {k: (v.reshape(1) if v.ndim == 0 else v) for k, v in arrays.items()}


def _examples(model_input) -> list[dict]:
    """tf.Examples (with their context's features) as dicts of first values."""
    which = model_input.WhichOneof("kind")
    if which == "example_list_with_context":
        context = _features(model_input.example_list_with_context.context)
        examples = model_input.example_list_with_context.examples
    else:
        context, examples = {}, model_input.example_list.examples
    return [{**context, **_features(example)} for example in examples]


def _features(example) -> dict:
    values = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        items = list(getattr(feature, kind).value) if kind else []
        value = items[0] if len(items) == 1 else (items or None)
        values[name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return values


def read_labels(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The labels file and the columns it is joined on (`request_id`, and `row` if it has one)."""
    from zoo.loop.traffic import read_rows

    labels = read_rows(path)
    if "request_id" not in labels.columns:
        raise LogsError(f"{path} has no request_id column: labels are joined to served rows by the request's "
                        f"id (and row); its columns: {', '.join(map(str, labels.columns[:20]))}")
    keys = ["request_id", "row"] if "row" in labels.columns else ["request_id"]
    labels = labels.astype({"request_id": str, **({"row": int} if "row" in keys else {})})
    duplicated = labels.duplicated(keys)
    if duplicated.any():
        first = labels[duplicated].iloc[0]
        raise LogsError(f"{path} labels the same row twice (first: {', '.join(f'{k} {first[k]}' for k in keys)})")
    return labels, keys


def write_rows(files: list[str], output: Path, *, model: str | None = None,
               labels: Path | None = None) -> dict[str, int]:
    """Write the records' rows to `output` (.csv or .parquet) a chunk at a time (with
    `labels`: only the rows that have one, joined to it); the counts of rows, records and
    skipped records."""
    if output.suffix not in (".csv", ".parquet"):
        raise LogsError(f"--output must end in .csv or .parquet, got {output.name}")
    counts = {"rows": 0, "records": 0, "skipped": 0, "unlabelled": 0}
    joined = read_labels(labels) if labels is not None else None
    writer = _Writer(output, joined)
    pending: list[pd.DataFrame] = []
    pending_rows = 0
    try:
        for record in records(files):
            if model and record.log_metadata.model_spec.name != model:
                continue
            frame = rows(record)
            if frame is None:
                counts["skipped"] += 1
                continue
            counts["records"] += 1
            pending.append(frame)
            pending_rows += len(frame)
            if pending_rows >= CHUNK_ROWS:
                counts["rows"] += writer.write(pd.concat(pending, ignore_index=True))
                pending, pending_rows = [], 0
        if pending:
            counts["rows"] += writer.write(pd.concat(pending, ignore_index=True))
    finally:
        writer.close()
    counts["unlabelled"] = writer.unlabelled
    return counts


class _Writer:
    """CSV or Parquet, appended a chunk at a time with the first chunk's columns; with
    labels, each chunk inner-joined to them first."""

    def __init__(self, output: Path, labels: tuple[pd.DataFrame, list[str]] | None = None):
        self.output = output
        self.labels = labels
        self.unlabelled = 0
        self.columns: list[str] | None = None
        self._parquet = None
        self._warned = False
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.exists():
            output.unlink()

    def write(self, frame: pd.DataFrame) -> int:
        if self.labels is not None:
            labels, keys = self.labels
            clashing = [c for c in labels.columns if c in frame.columns and c not in keys]
            joined = frame.merge(labels.rename(columns={c: f"{c}_label" for c in clashing}), on=keys, how="inner")
            self.unlabelled += len(frame) - len(joined)
            frame = joined
        if self.columns is None:
            self.columns = list(frame.columns)
        elif set(frame.columns) - set(self.columns) and not self._warned:
            self._warned = True
            extra = sorted(set(frame.columns) - set(self.columns))
            log.warning("records with columns the first ones lacked (%s): those columns are left out",
                        ", ".join(map(str, extra[:10])))
        frame = frame.reindex(columns=self.columns)
        if self.output.suffix == ".csv":
            frame.to_csv(self.output, mode="a", header=not self.output.exists(), index=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.output, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        return len(frame)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
