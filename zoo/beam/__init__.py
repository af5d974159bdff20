"""Batch predictions on Apache Beam: `zoo predict --runner beam` / `python -m zoo.beam`.

The same job as `zoo predict`, on an engine that scales out: files by glob from any
filesystem Beam reads (local, gs://, s3://), rows batched by Beam, run through Beam's
`RunInference` with a zoo model handler, written as sharded CSV or Parquet. It runs on the
DirectRunner here and, through Beam's own pipeline options, on Dataflow, Flink or Spark.

    rows.py      files -> keyed rows; a bad row goes to the dead letters (file, row, column, reason)
    handlers.py  SavedModelHandler (the version loaded in each worker, as `zoo serve` loads it)
                 and ServedModelHandler (a served model over gRPC or REST, Beam's
                 RemoteModelHandler: batching, retries with backoff, client-side throttling)
    pipeline.py  the pipeline, its options, and the command line

Needs the optional extra: `pip install 'keras-zoo[beam]'`.
"""

from __future__ import annotations


def require_beam():
    """Import apache_beam, or say how to install it."""
    try:
        import apache_beam
    except ImportError:
        from zoo.errors import ConfigError

        raise ConfigError("batch predictions on Beam need the beam extra: pip install 'keras-zoo[beam]'") from None
    return apache_beam


def add_beam_arguments(parser) -> None:
    """The flags of a Beam job that `zoo predict` lacks (shared by it and `python -m zoo.beam`)."""
    parser.add_argument("--saved-model", metavar="VERSION_DIR",
                        help="load this version folder in each worker instead of calling a server")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", help="of the input and the output")
    parser.add_argument("--errors", help="the dead letters' prefix (default: <output>-errors)")
