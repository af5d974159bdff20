"""The `zoo` command: train, export, serve and call Keras models the TensorFlow Serving way.

Commands: list, info, datasets, train, tune, evaluate, export, retrain, versions, logs, drift,
promote, rollback, prune, predict, serve, demo.

Every error a user can cause (an unknown model, a bad flag value, a missing file) ends as
one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from zoo.beam import add_beam_arguments
from zoo.errors import ConfigError, ZooError
from zoo.protocol.names import DEFAULT_SIGNATURE
from zoo.tensorflow_logs import import_tensorflow_quietly

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    """The `zoo` command: parse, run the subcommand, turn known errors into exit status 2."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # After "--": Beam's own pipeline options, passed through untouched (argparse's subparsers
    # do not hand "--" to a subcommand's positional).
    beam_options = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:len(argv) - len(beam_options) - 1] if "--" in argv else argv)
    args.beam_options = beam_options
    if beam_options and args.command != "predict":
        parser.error("options after -- are Beam pipeline options, for zoo predict --runner beam")
    if args.command != "datasets":
        import_tensorflow_quietly()
    from zoo.registry import UnknownModelError

    try:
        return args.handler(args) or 0
    except (ZooError, UnknownModelError) as error:
        print(f"zoo: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of a batch-prediction job: `zoo predict`'s, which `python -m zoo.beam` takes too."""
    parser.add_argument("model")
    # Text, not Path: with --runner beam they are a glob and a prefix that may be gs://...
    parser.add_argument("--input", required=True,
                        help="a CSV with the model's input columns (Beam: a file pattern, CSV or Parquet)")
    parser.add_argument("--output", required=True, help="where to write the predictions (Beam: the shards' prefix)")
    parser.add_argument("--via", choices=("rest", "grpc"), default="grpc")
    parser.add_argument("--protocol", choices=("v1", "v2"), default="v1",
                        help="v1: TF Serving's API; v2: the Open Inference Protocol (zoo serve, Triton, KServe)")
    parser.add_argument("--server", help="host:port (default localhost:8500 for grpc, localhost:8501 for rest)")
    parser.add_argument("--batch-size", type=int, default=1024, help="rows per request")
    parser.add_argument("--key", action="append", dest="keys", metavar="COLUMN",
                        help="an input column to copy into the output (default: every column the model does not take)")
    parser.add_argument("--version", type=int)
    parser.add_argument("--label", help="a version label, e.g. stable")
    parser.add_argument("--signature", default=DEFAULT_SIGNATURE)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    tls = parser.add_argument_group("TLS (a server started with --ssl_config_file or --rest_api_ssl_*)")
    tls.add_argument("--ca-file", help="the CA that signed the server's certificate (PEM); turns TLS on")
    tls.add_argument("--client-cert", help="mutual TLS: this client's certificate (PEM)")
    tls.add_argument("--client-key", help="mutual TLS: its private key (PEM)")
    add_beam_arguments(parser.add_argument_group("with --runner beam"))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="zoo", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="list registered models")
    listing.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'wine*'")
    listing.set_defaults(handler=cmd_list)

    info = commands.add_parser("info", help="show a model's task, defaults and hyperparameters")
    info.add_argument("model")
    info.set_defaults(handler=cmd_info)

    datasets = commands.add_parser("datasets", help="list registered datasets")
    datasets.set_defaults(handler=cmd_datasets)

    train = commands.add_parser("train", help="train a model, evaluate it and export a version")
    add_train_arguments(train)
    train.set_defaults(handler=cmd_train)

    tune = commands.add_parser("tune", help="random search over layers, neurons and learning rate (KerasTuner)")
    add_train_arguments(tune)
    tune.add_argument("--trials", type=int, required=True, help="how many configurations to try")
    tune.add_argument("--max-epochs", type=int, required=True, help="epochs a trial at most (early stopping)")
    tune.add_argument("--objective", default="val_loss")
    tune.add_argument("--tune-dir", type=Path, help="the search's folder (default runs/tune/<model>); it resumes")
    tune.set_defaults(handler=cmd_tune)

    evaluate = commands.add_parser("evaluate", help="evaluate an exported version on its test split")
    evaluate.add_argument("model")
    evaluate.add_argument("--version", type=int, help="default: the latest")
    evaluate.add_argument("--models-dir", default="models")
    evaluate.set_defaults(handler=cmd_evaluate)

    export = commands.add_parser("export", help="export a finished run as a new version")
    export.add_argument("run_dir", type=Path, help="a run folder written by `zoo train`")
    export.add_argument("--models-dir", default="models")
    export.set_defaults(handler=cmd_export)

    retrain = commands.add_parser("retrain", help="retrain a served model; publish only if at least as good")
    retrain.add_argument("model")
    retrain.add_argument("--data", help="a CSV with the model's feature columns and target (default: its dataset)")
    retrain.add_argument("--config", help="run.yaml with settings over the served version's own")
    retrain.add_argument("--traffic", help="labelled served rows (zoo logs --labels): trained on, and the most "
                                           "recent of them gated on")
    retrain.add_argument("--recent", type=float, default=0.3,
                         help="the most recent share of --traffic held out for the gate (default 0.3)")
    retrain.add_argument("--threshold", type=float, default=0.0,
                         help="how much worse on the primary metric the candidate may be and still publish")
    retrain.add_argument("--force", action="store_true", help="publish even if the candidate is worse")
    retrain.add_argument("--keep", type=int, help="then keep only this many versions (never labelled or served ones)")
    retrain.add_argument("--models-dir", default="models")
    retrain.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0)
    retrain.set_defaults(handler=cmd_retrain)

    versions_parser = commands.add_parser(
        "versions", help="a model's versions: created, dataset, metric, labels, served")
    versions_parser.add_argument("model")
    versions_parser.add_argument("--models-dir", default="models")
    versions_parser.set_defaults(handler=cmd_versions)

    logs = commands.add_parser("logs", help="request-log records (logging_config) to rows: CSV or Parquet")
    logs.add_argument("sources", nargs="+", help="request-log files, or a logging_config filename_prefix")
    logs.add_argument("--output", required=True, type=Path, help="rows.csv or rows.parquet")
    logs.add_argument("--model", help="only this model's records")
    logs.add_argument("--labels", type=Path,
                      help="ground truth to join (CSV/Parquet: request_id, optionally row, and the label columns); "
                           "only labelled rows are written")
    logs.set_defaults(handler=cmd_logs)

    drift = commands.add_parser("drift", help="served traffic against the training rows: a report, exit 1 on drift")
    drift.add_argument("model")
    drift.add_argument("traffic", nargs="+",
                       help="served rows: zoo logs output (CSV/Parquet), any CSV of features, or request-log files "
                            "/ a logging_config filename_prefix")
    drift.add_argument("--version", type=int, help="default: the newest version the rows name, else the served one")
    drift.add_argument("--report", type=Path, default=Path("drift-report"),
                       help="the report's folder: drift.md, drift.json, features.png, outputs.png")
    drift.add_argument("--psi-threshold", type=float, default=0.2, help="a column drifts past this PSI (0.2)")
    drift.add_argument("--alpha", type=float,
                       help="a column drifts when its test's p-value is below this (default: reported only)")
    drift.add_argument("--max-out-of-range", type=float, default=0.05,
                       help="share of rows out of the training range a column may have (0.05)")
    drift.add_argument("--max-missing", type=float, default=0.01,
                       help="share of rows with a missing value a column may have (0.01)")
    drift.add_argument("--models-dir", default="models")
    drift.set_defaults(handler=cmd_drift)

    promote = commands.add_parser("promote", help="point a version label (stable, canary) at a version")
    promote.add_argument("model")
    promote.add_argument("version", type=int)
    promote.add_argument("--label", default="stable")
    promote.add_argument("--models-dir", default="models")
    promote.set_defaults(handler=cmd_promote)

    rollback = commands.add_parser("rollback", help="move a label (default stable) back to the previous version")
    rollback.add_argument("model")
    rollback.add_argument("--label", default="stable")
    rollback.add_argument("--models-dir", default="models")
    rollback.set_defaults(handler=cmd_rollback)

    prune = commands.add_parser("prune", help="delete old versions, never labelled or served ones")
    prune.add_argument("model")
    prune.add_argument("--keep", type=int, required=True)
    prune.add_argument("--models-dir", default="models")
    prune.set_defaults(handler=cmd_prune)

    predict = commands.add_parser("predict", help="batch predictions for a CSV file from a model server")
    add_predict_arguments(predict)
    predict.add_argument("--runner", choices=("local", "beam"), default="local",
                         help="beam: an Apache Beam pipeline (--input a glob, --output a prefix of shards; "
                              "Beam's own options after --, e.g. -- --runner=DataflowRunner); needs keras-zoo[beam]")
    predict.set_defaults(handler=cmd_predict)

    serve = commands.add_parser("serve", help="serve models over gRPC and REST (TF Serving's API and flags)")
    from zoo.server.flags import add_serve_arguments

    add_serve_arguments(serve)
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="train and export the demo models, print their metrics")
    demo.add_argument("--models-dir", default="models")
    demo.add_argument("--serve", action="store_true", help="keep serving on 8500/8501 afterwards")
    demo.add_argument("--quick", action="store_true", help="a few epochs a model: a one-minute tour")
    demo.set_defaults(handler=cmd_demo)
    return parser


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags shared by train and tune, one per TrainConfig field (from its metadata)."""
    from zoo.training.config import TrainConfig

    parser.add_argument("--config", type=Path, help="run.yaml with defaults for these flags")
    groups = {name: parser.add_argument_group(name) for name in ("data", "training", "output")}
    for field in dataclasses.fields(TrainConfig):
        meta = field.metadata
        options = dict(meta["argparse"])
        if meta["positional"]:
            parser.add_argument(field.name, nargs="?", **options)
            continue
        flag = meta["flag"] or "--" + field.name.replace("_", "-")
        target = groups[meta["group"]]
        if field.type.startswith("dict"):
            target.add_argument(flag, dest=field.name, action="append", **options)
        elif field.type == "bool":
            target.add_argument(flag, dest=field.name, action="store_false" if field.default else "store_true",
                                default=None, **options)
        else:
            kind = int if field.type.startswith("int") else float if field.type.startswith("float") else str
            target.add_argument(flag, dest=field.name, type=kind, default=None, **options)
    groups["output"].add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                                  help="0 silent, 1 progress bar, 2 one line an epoch")


def train_config_from_args(args: argparse.Namespace):
    """Merge run.yaml (if any) under the flags given, into a TrainConfig."""
    from zoo.errors import ConfigError
    from zoo.training.config import TrainConfig

    values: dict[str, Any] = TrainConfig.read_yaml(args.config) if args.config else {}
    for field in dataclasses.fields(TrainConfig):
        given = getattr(args, field.name)
        if given is None:
            continue
        if field.type.startswith("dict"):  # NAME=VALUE flags, merged over the file's mapping
            flag = field.metadata["flag"]
            values[field.name] = {**values.get(field.name, {}), **parse_assignments(given, flag)}
        else:
            values[field.name] = given
    if not values.get("model"):
        raise ConfigError("no model given: name one (`zoo train dnn-regressor`) or set `model:` in --config")
    return TrainConfig.from_dict(values, source=str(args.config or "flags"))


def parse_assignments(items: list[str], flag: str) -> dict[str, Any]:
    """NAME=VALUE pairs, each value read as YAML (3 -> int, [a, b] -> list, text -> str)."""
    import yaml

    from zoo.errors import ConfigError

    parsed = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"{flag} takes NAME=VALUE, got '{item}'")
        try:
            parsed[name.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"{flag} {name}: cannot read the value '{text}'") from None
    return parsed


def cmd_list(args) -> int:
    """`zoo list [PATTERN]`: the registered models, a line each."""
    from zoo.registry import list_models, model_info

    names = list_models(args.pattern)
    if not names:
        print(f"no model matches '{args.pattern}'", file=sys.stderr)
        return 1
    infos = [model_info(name) for name in names]
    _print_rows([(i.name, i.task, i.dataset, i.description) for i in infos], widths=(None, 10, 18))
    return 0


def cmd_info(args) -> int:
    """`zoo info MODEL`: a model's metadata and recipe, as JSON."""
    from zoo.registry import model_info

    print(json.dumps(model_info(args.model).describe(), indent=2))
    return 0


def cmd_datasets(args) -> int:
    """`zoo datasets`: the registered datasets, their tasks and descriptions."""
    from zoo.datasets import dataset_entry, list_datasets

    entries = [dataset_entry(name) for name in list_datasets()]
    _print_rows([(e.name, e.task, e.description) for e in entries], widths=(None, 10))
    return 0


def _print_rows(rows: list[tuple[str, ...]], widths: tuple[int | None, ...]) -> None:
    """Aligned columns: the first as wide as its longest entry, the next as `widths` says,
    the last as it is."""
    first = max(len(row[0]) for row in rows)
    for row in rows:
        cells = [f"{cell:<{width or first}}" for cell, width in zip(row, widths)]
        print("  ".join([*cells, *row[len(widths):]]))


def cmd_train(args) -> int:
    """`zoo train`: train, evaluate and export one model."""
    config = train_config_from_args(args)
    from zoo.training.trainer import train

    result = train(config, verbose="auto" if args.verbose is None else args.verbose)
    print_run(result)
    return 0


def print_run(result) -> None:
    """Print a finished run's folder, test metrics and exported version."""
    test = ", ".join(f"{key} {value:.4f}" for key, value in result.metrics["test"].items())
    print(f"run:     {result.run_dir}")
    print(f"test:    {test}")
    if result.version_dir is not None:
        print(f"version: {result.version_dir}")


def cmd_evaluate(args) -> int:
    """`zoo evaluate MODEL`: an exported version's metrics on its own test split."""
    from zoo.training.evaluation import evaluate_version

    result = evaluate_version(Path(args.models_dir), args.model, args.version)
    metrics = ", ".join(f"{key} {value:.4f}" for key, value in result["metrics"].items())
    print(f"{args.model} v{result['version']} on {result['dataset']} test ({result['rows']} rows): {metrics}")
    return 0


def cmd_export(args) -> int:
    """`zoo export RUN_DIR`: publish a finished run as a new version."""
    from zoo.training.runs import publish_run

    version_dir = publish_run(args.run_dir, Path(args.models_dir))
    print(f"version: {version_dir}")
    return 0


def cmd_tune(args) -> int:
    """`zoo tune`: a Keras Tuner search over a model's hyperparameters."""
    from zoo.training.tune import tune

    result = tune(train_config_from_args(args), trials=args.trials, max_epochs=args.max_epochs,
                  objective=args.objective, directory=args.tune_dir, verbose=args.verbose or 0)
    import pandas as pd

    print(pd.DataFrame(result.rows).to_string(index=False))
    print(f"best: {result.best} -> {result.best_config} (zoo train --config {result.best_config})")
    return 0


def cmd_retrain(args) -> int:
    """`zoo retrain`: train a candidate and publish it only if it is no worse."""
    from zoo.training.retrain import retrain

    result = retrain(Path(args.models_dir), args.model, data=args.data, config_file=args.config,
                     traffic=args.traffic, recent=args.recent, threshold=args.threshold, force=args.force,
                     keep=args.keep, verbose=args.verbose)
    print(result.reason)
    return 0 if result.published else 1


def cmd_versions(args) -> int:
    """`zoo versions MODEL`: a row per version."""
    from zoo.repository.version_labels import version_rows

    print(f"{'version':>7}  {'created':<25}  {'dataset':<18}  {'metric':<18}  {'labels':<14}  served")
    for row in version_rows(Path(args.models_dir), args.model):
        value = f"{row.metric} {row.value:.4f}" if row.value is not None else "?"
        print(f"{row.version:>7}  {row.created:<25}  {row.dataset:<18}  {value:<18}  "
              f"{','.join(row.labels) or '-':<14}  {'yes' if row.served else 'no'}")
    return 0


def cmd_logs(args) -> int:
    """`zoo logs`: request-log records to rows."""
    from zoo.loop.logs import log_files, write_rows

    counts = write_rows(log_files(args.sources), args.output, model=args.model, labels=args.labels)
    skipped = f" ({counts['skipped']} MultiInference records skipped)" if counts["skipped"] else ""
    unlabelled = f"; {counts['unlabelled']} rows had no label" if args.labels else ""
    print(f"{counts['rows']} rows from {counts['records']} records -> {args.output}{skipped}{unlabelled}")
    return 0


def cmd_drift(args) -> int:
    """`zoo drift`: compare served rows with a version's drift profile."""
    from zoo.loop.drift import Thresholds, run

    thresholds = Thresholds(psi=args.psi_threshold, alpha=args.alpha, out_of_range=args.max_out_of_range,
                            missing=args.max_missing)
    report = run(Path(args.models_dir), args.model, args.traffic, version=args.version, thresholds=thresholds,
                 report_dir=args.report)
    ranked = ", ".join(f"{c.name} {c.psi:.3f}" for c in report.features[:5])
    print(f"{args.model} v{report.version}: {report.rows} served rows; PSI by feature: {ranked}")
    for column in report.drifted:
        print(f"drift: {column.name}: {'; '.join(column.reasons)}")
    print(f"report: {args.report / 'drift.md'}")
    return 1 if report.drifted else 0


def cmd_promote(args) -> int:
    """`zoo promote MODEL VERSION`: point the stable label at a version."""
    from zoo.repository.version_labels import promote

    promote(Path(args.models_dir), args.model, args.version, args.label)
    print(f"{args.model}: '{args.label}' -> version {args.version}")
    return 0


def cmd_rollback(args) -> int:
    """`zoo rollback MODEL`: move a label to the version before the one it points at."""
    from zoo.repository.version_labels import rollback

    before, after = rollback(Path(args.models_dir), args.model, args.label)
    print(f"{args.model}: '{args.label}' moved back from version {before} to version {after}")
    return 0


def cmd_prune(args) -> int:
    """`zoo prune MODEL`: remove old versions, keeping `--keep` and every labelled one."""
    from zoo.repository.version_labels import prune

    removed = prune(Path(args.models_dir), args.model, args.keep)
    if removed:
        print(f"{args.model}: removed version(s) {', '.join(map(str, removed))}")
    else:
        print(f"{args.model}: nothing to remove")
    return 0


def cmd_predict(args) -> int:
    """`zoo predict`: a CSV file's predictions from a served model."""
    from zoo.client import ClientTls, client_class, default_address
    from zoo.client.csv_predictions import predict_csv

    if args.runner == "beam":
        from zoo.beam import require_beam

        require_beam()
        from zoo.beam import pipeline

        job = pipeline.job_from(args)
        return pipeline.report(job, pipeline.run(job, args.beam_options))
    if args.beam_options or args.saved_model or args.format != "csv" or args.errors:
        raise ConfigError("--saved-model, --format, --errors and Beam options need --runner beam")
    address = args.server or default_address(args.via)
    with client_class(args.via, args.protocol)(address, timeout=args.timeout, tls=ClientTls.from_args(args)) as client:
        result = predict_csv(
            client, args.model, args.input, args.output, batch_size=args.batch_size, keys=args.keys,
            version=args.version, label=args.label, signature=args.signature,
        )
    print(f"{result.rows} predictions in {result.seconds:.2f}s -> {result.output}")
    return 0


def cmd_serve(args) -> int:
    """`zoo serve`: the embedded TF Serving-compatible server."""
    from zoo.server.app import serve

    return serve(args)


def cmd_demo(args) -> int:
    """`zoo demo`: the quick start's tour of the zoo."""
    from zoo.demo import run_demo

    return run_demo(Path(args.models_dir), keep_serving=args.serve, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
