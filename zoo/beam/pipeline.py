"""The batch-prediction pipeline: files -> rows -> RunInference -> sharded predictions.

    MatchFiles(glob) -> ReadMatches -> ReadRows ──chunks──> RunInference(KeyedModelHandler(handler))
                                          │                    │ predictions    │ failed batches
                                          └──dead letters──────┴────────────────┴──> errors shards
    predictions -> key columns + named outputs -> WriteToText (CSV) / WriteToParquetBatched

The output has `zoo predict`'s columns: the key columns (default: every input column the
model does not take), then the outputs sorted by name, vectors as name_0..name_k. Shards
come in no order; a file without key columns gets `file` and `row` ones, so every
prediction can be matched to its row. Nothing is dropped: every row ends up in the
predictions or in the errors output (file, row, column, reason).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import sys
from collections.abc import Sequence

import apache_beam as beam
import pandas as pd
from apache_beam.io import fileio
from apache_beam.metrics import Metrics, MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from zoo.beam.handlers import SavedModelHandler, ServedModelHandler
from zoo.beam.rows import ERROR_COLUMNS, ERRORS, ReadRows, dead_letter, file_records
from zoo.client.base import SignatureInfo

NAMESPACE = "zoo_beam"
_QUOTED = 200  # the longest exception text a dead letter keeps


@dataclasses.dataclass(frozen=True)
class Job:
    """What a batch-prediction run reads, calls and writes."""

    input: str  # a file pattern: data/*.csv, gs://bucket/day=*/part-*.parquet
    output: str  # the shards' prefix: out/predictions -> out/predictions-00000-of-00004.csv
    handler: SavedModelHandler | ServedModelHandler
    file_format: str = "csv"  # of the input and the output
    errors: str | None = None  # the dead letters' prefix; default: <output>-errors
    keys: list[str] | None = None
    chunk_rows: int = 1024  # rows a model call: `zoo predict`'s --batch-size

    @property
    def errors_prefix(self) -> str:
        """Where the dead letters go."""
        return self.errors or f"{self.output}-errors"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a finished run wrote."""

    predictions: int
    dead_letters: int
    state: str


def output_columns(signature: SignatureInfo) -> list[str]:
    """The prediction columns, as `zoo predict` names them."""
    columns = []
    for name in sorted(signature.outputs):
        shape = signature.outputs[name].shape or ()
        width = 1
        for size in shape[1:]:
            width *= max(size, 1)
        columns += [name] if len(shape) <= 1 else [f"{name}_{position}" for position in range(width)]
    return columns


def key_columns(job: Job, signature: SignatureInfo) -> list[str] | None:
    """The key columns every output row starts with; None: `file` and `row` stand in.

    With no --key, the first input file's header decides (every column the model does not
    take), so that the output header is known before the pipeline runs."""
    if job.keys is not None:
        return job.keys or None
    header = _first_header(job)
    keys = [column for column in header if column not in signature.inputs]
    return keys or None


def build(pipeline: beam.Pipeline, job: Job, signature: SignatureInfo) -> None:
    """Add the job's transforms to a pipeline."""
    keys = key_columns(job, signature)
    outputs = output_columns(signature)
    header = [*(keys or ["file", "row"]), *outputs]
    read = (
        pipeline
        | "Match" >> fileio.MatchFiles(job.input)
        | "Open" >> fileio.ReadMatches()
        | "Rows" >> beam.ParDo(ReadRows(signature, keys or [], job.file_format, job.chunk_rows))
        .with_outputs(ERRORS, main="chunks")
    )
    predicted, failed = (
        read.chunks
        | "Predict" >> RunInference(KeyedModelHandler(job.handler)).with_exception_handling()
    )
    frames = predicted | "Frame" >> beam.Map(_output_frame, keys=keys, columns=outputs)
    failed_rows = failed.failed_inferences | "FailedBatches" >> beam.FlatMap(_batch_dead_letters)
    errors = (read[ERRORS], failed_rows) | "AllErrors" >> beam.Flatten()
    _ = frames | "Count" >> beam.Map(lambda frame: _count("predictions", len(frame)))
    _ = errors | "CountErrors" >> beam.Map(lambda _: _count("dead_letters", 1))
    if job.file_format == "parquet":
        _write_parquet(frames, job.output, header, _output_types(signature))
    else:
        # One element a chunk: its rows as CSV lines, which WriteToText ends with a newline.
        _ = (frames | "CSV" >> beam.Map(lambda frame: frame.to_csv(header=False, index=False).rstrip("\n"))
             | "Write" >> beam.io.WriteToText(job.output, file_name_suffix=".csv", header=",".join(header)))
    _ = (errors | "ErrorsCSV" >> beam.Map(lambda record: _csv_line([record[c] for c in ERROR_COLUMNS]))
         | "WriteErrors" >> beam.io.WriteToText(job.errors_prefix, file_name_suffix=".csv",
                                                header=",".join(ERROR_COLUMNS)))


def run(job: Job, pipeline_args: Sequence[str] = ()) -> Outcome:
    """Build and run the pipeline (DirectRunner unless `pipeline_args` say otherwise)."""
    signature = job.handler.signature()
    options = PipelineOptions(list(pipeline_args))
    pipeline = beam.Pipeline(options=options)
    build(pipeline, job, signature)
    result = pipeline.run()
    state = result.wait_until_finish()
    counters = {name: _counter(result, name) for name in ("predictions", "dead_letters")}
    return Outcome(counters["predictions"], counters["dead_letters"], str(state))


def _output_frame(element, *, keys: list[str] | None, columns: list[str]) -> pd.DataFrame:
    """A chunk's output rows: its key columns (or, without any, file and row), then its predictions."""
    chunk, result = element
    if keys is None:
        start = pd.DataFrame({"file": [chunk.file] * len(chunk.rows), "row": list(chunk.rows)})
    else:
        start = pd.DataFrame(list(chunk.keys), columns=keys, dtype=object)
    return pd.concat([start, result.inference[columns]], axis=1)


def _batch_dead_letters(failure):
    """A failed batch (after Beam's retries): each row of each of its chunks, with the error."""
    batch, error = failure
    reason = f"prediction failed: {error}"[:_QUOTED]
    for chunk, _ in batch:
        for row in chunk.rows:
            yield dead_letter(chunk.file, row, "", reason)


def _csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


_ARROW_TYPES = {"DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_HALF": "float32", "DT_INT32": "int32",
                "DT_INT64": "int64", "DT_BOOL": "bool_", "DT_STRING": "string"}


def _write_parquet(frames, prefix: str, header: list[str], types: dict[str, str]) -> None:
    """Typed as the signature's outputs (float32 predictions, int64 class ids, text labels);
    key columns as text, as the input wrote them; `row` (no key columns) as int64."""
    import pyarrow as pa

    types = {"row": "int64", **types}
    schema = pa.schema([(column, getattr(pa, types.get(column, "string"))()) for column in header])
    _ = (frames
         | "Arrow" >> beam.Map(lambda frame: pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
         | "WriteParquet" >> beam.io.WriteToParquetBatched(prefix, schema, file_name_suffix=".parquet"))


def _output_types(signature: SignatureInfo) -> dict[str, str]:
    """Each prediction column's Arrow type, from its signature output's dtype."""
    types = {}
    for column in output_columns(signature):
        name = column if column in signature.outputs else column.rsplit("_", 1)[0]
        types[column] = _ARROW_TYPES.get(signature.outputs[name].dtype, "string")
    return types


def _count(name: str, rows: int) -> None:
    Metrics.counter(NAMESPACE, name).inc(rows)


def _counter(result, name: str) -> int:
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE).with_name(name))
    return int(sum(counter.committed or 0 for counter in query["counters"]))


def _first_header(job: Job) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    matches = FileSystems.match([job.input])[0].metadata_list
    if not matches:
        from zoo.errors import ConfigError

        raise ConfigError(f"no input file matches {job.input}")
    path = sorted(m.path for m in matches)[0]
    with FileSystems.open(path) as handle:
        return next(file_records(handle, job.file_format), [])


def parser() -> argparse.ArgumentParser:
    """`python -m zoo.beam`'s options (`zoo predict`'s); anything else is a Beam pipeline option."""
    from zoo.cli import add_predict_arguments

    p = argparse.ArgumentParser(prog="python -m zoo.beam", description="batch predictions on Apache Beam")
    add_predict_arguments(p)
    return p


def job_from(args) -> Job:
    """A Job from parsed flags."""
    if args.saved_model:
        handler = SavedModelHandler(args.saved_model, args.signature)
    else:
        from zoo.client import ClientTls, default_address

        handler = ServedModelHandler(args.server or default_address(args.via), args.model, via=args.via,
                                     protocol=args.protocol,
                                     version=args.version, label=args.label, signature_name=args.signature,
                                     timeout=args.timeout, tls=ClientTls.from_args(args))
    return Job(input=str(args.input), output=str(args.output), handler=handler, file_format=args.format,
               errors=args.errors, keys=args.keys, chunk_rows=args.batch_size)


def report(job: Job, outcome: Outcome) -> int:
    """Say what was written; exit status 1 if any row went to the dead letters."""
    print(f"{outcome.predictions} predictions -> {job.output}-*.{job.file_format} ({outcome.state})")
    if outcome.dead_letters:
        print(f"{outcome.dead_letters} rows could not be predicted -> {job.errors_prefix}-*.csv "
              "(file, row, column, reason)", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m zoo.beam MODEL --input GLOB --output PREFIX [Beam options]`."""
    args, pipeline_args = parser().parse_known_args(argv)
    job = job_from(args)
    return report(job, run(job, pipeline_args))
