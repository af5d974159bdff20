"""`zoo demo`: the quick start's tour of the whole zoo. Train one model of every family,
export each as a version, serve the repository with `zoo serve`'s server, and ask every
model for the same test row over REST and over gRPC. The output is one table (model,
dataset, test metric, version, the true value and both served answers) and each run's
learning-curve PNG. `--quick` trains each model a few epochs: a one-minute tour.

Every demo model trains offline: digits and the synthetic coffee roasts are generated or
come with scikit-learn, and red wine, cereals and California housing ship with the zoo
(zoo/datasets/files). A model whose data cannot be read is skipped with the reason (a
user's broken ZOO_DATA_DIR copy, say), and the rest still run. Run again, a finished model
is not trained twice: its version is reused (see zoo/training/trainer.py, finished_run).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from zoo.errors import ConfigError, DatasetError
from zoo.training.config import TrainConfig
from zoo.training.runs import CURVES_FILE

# Model A of the transfer pair learns digits 0-7; model B (transfer-mlp) tells 8 from 9 with
# A's hidden layers, as the Keras transfer-learning guide splits Fashion-MNIST.
MODEL_A_CLASSES = [str(digit) for digit in range(8)]


@dataclasses.dataclass(frozen=True)
class DemoRun:
    """One demo model: its family, the trainer's overrides, and the `--quick` ones on top."""

    model: str
    family: str
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    quick: dict[str, Any] = dataclasses.field(default_factory=dict)


# Short runs that still reach sensible numbers. The coffee network's registered Adam 0.01 is
# the course's, tuned for 200,000 tiled rows; on our 700 rows a larger step reaches the same
# accuracy in a fraction of the epochs. Wide & Deep stops at 20 epochs (its curve is flat by
# then on 14,000 rows).
DEMO_RUNS = (
    DemoRun("linear-unit", "linear unit (Sequential)", quick={"epochs": 10}),
    DemoRun("dnn-regressor", "Sequential regressor", quick={"epochs": 3}),
    DemoRun("digits-mlp", "softmax classifier, model A", {"dataset_options": {"classes": MODEL_A_CLASSES}},
            quick={"epochs": 5}),
    DemoRun("binary-classifier", "sigmoid binary classifier", {"epochs": 80, "learning_rate": 0.05},
            quick={"epochs": 20}),
    DemoRun("wide-and-deep", "subclassed Wide & Deep", {"epochs": 20}, quick={"epochs": 2, "batch_size": 128}),
    DemoRun("transfer-mlp", "transfer learning from A", quick={"epochs": 15}),
)
TRANSFER_SOURCE = {"transfer-mlp": "digits-mlp"}  # model B -> the demo model it reuses


@dataclasses.dataclass
class DemoRow:
    """What the demo learned about one model: from training, then from serving it."""

    run: DemoRun
    dataset: str
    metric: str
    version_dir: Path
    curves: Path
    truth: str = ""
    rest: str = ""
    grpc: str = ""


def run_demo(models_dir: Path, keep_serving: bool = False, quick: bool = False) -> int:
    """Train, serve and ask every demo model; print the table. Returns the exit status."""
    from zoo.datasets import data_dir

    print(f"dataset cache: {data_dir()}   model repository: {models_dir}")
    server = None
    try:
        with _DataNotes() as notes:
            rows, skipped = train_all(models_dir, quick)
            if rows:
                server = start_server(models_dir, keep_serving)
                ask_every_model(server, rows)
        print_table(rows, skipped)
        for note in notes.messages:
            print(f"note: {note}")
        print(f"TF Serving config: {models_dir / 'models.config'}   (see README for docker compose)")
        if server is not None and keep_serving:  # the table first: it is what --serve is kept up for
            print(f"serving on gRPC {server.grpc_port} and REST {server.rest_port} until Ctrl-C")
            try:
                while True:  # (Event.wait interrupted by Ctrl-C raises from inside its lock)
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    finally:
        if server is not None:
            server.stop()
    return 0 if rows and not skipped else 1


def train_all(models_dir: Path, quick: bool) -> tuple[list[DemoRow], list[tuple[str, str]]]:
    """Train and export every demo model; a model whose data or source is missing is skipped."""
    from zoo.training.trainer import train

    rows: list[DemoRow] = []
    skipped: list[tuple[str, str]] = []
    for run in DEMO_RUNS:
        overrides = {**run.overrides, **(run.quick if quick else {})}
        source = TRANSFER_SOURCE.get(run.model)
        if source is not None:
            source_row = next((row for row in rows if row.run.model == source), None)
            if source_row is None:
                skipped.append((run.model, f"needs model A ({source}), which did not train"))
                continue
            overrides["hparams"] = {"source": str(source_row.version_dir)}
        config = TrainConfig(model=run.model, models_dir=str(models_dir), **overrides)
        print(f"training {run.model:<18}", end=" ", flush=True)
        try:
            result = train(config, verbose=0)
        except (DatasetError, ConfigError) as error:
            skipped.append((run.model, str(error)))
            print("skipped")
            continue
        print(f"{result.metrics['epochs_run']:>3} epochs in {result.metrics['train_seconds']:5.1f}s")
        primary = result.metrics["primary_metric"]
        metric = f"{primary.removeprefix('main_')} {result.metrics['test'][primary]:.4g}"
        rows.append(DemoRow(run, result.config.dataset, metric, result.version_dir,
                            result.run_dir / CURVES_FILE))
    return rows, skipped


def start_server(models_dir: Path, keep_serving: bool):
    """`zoo serve`'s server on the demo's repository: on 8500/8501 to keep, else on free ports."""
    from zoo.server.app import ZooServer
    from zoo.server.config import load_model_config_file

    config_file = models_dir / "models.config"
    ports = (8500, 8501) if keep_serving else (0, 0)
    server = ZooServer(load_model_config_file(config_file), config_dir=models_dir.resolve(),
                       grpc_port=ports[0], rest_port=ports[1]).start()
    print(f"\nzoo serve on {config_file}: gRPC {server.host}:{server.grpc_port}, "
          f"REST http://{server.host}:{server.rest_port}")
    return server


def ask_every_model(server, rows: list[DemoRow]) -> None:
    """Ask every model for its first test row over REST and over gRPC; fill in the rows."""
    from zoo.client import GrpcClient, RestClient

    rest, grpc = f"{server.host}:{server.rest_port}", f"{server.host}:{server.grpc_port}"
    with RestClient(rest) as rest_client, GrpcClient(grpc) as grpc_client:
        for row in rows:
            features, row.truth = first_test_row(row.version_dir)
            version = int(row.version_dir.name)
            row.rest = served_answer(rest_client.predict(row.run.model, features, version=version))
            row.grpc = served_answer(grpc_client.predict(row.run.model, features, version=version))


def first_test_row(version_dir: Path):
    """The first test row of the model's own split, as raw features, and its true answer."""
    import pandas as pd

    from zoo.repository import model_card
    from zoo.training.evaluation import dataset_from_card

    card = model_card.read(version_dir)
    data = dataset_from_card(card)
    features = pd.DataFrame({name: [data.test.features[name][0]] for name in card["signature"]["inputs"]})
    target = data.test.target[0]
    truth = data.class_names[int(target)] if data.class_names else f"{float(target):.3g}"
    return features, truth


def served_answer(frame) -> str:
    """One served row, shortened: a classifier's label, a regressor's (main) prediction."""
    row = frame.iloc[0]
    for column in ("label", "prediction", "main"):
        if column in row:
            value = row[column]
            return value.decode() if isinstance(value, bytes) else value if isinstance(value, str) else f"{value:.3g}"
    return str(row.to_dict())


def print_table(rows: list[DemoRow], skipped: list[tuple[str, str]]) -> None:
    """The demo's table, the skipped models and the learning-curve paths."""
    header = ("model", "family", "dataset", "test metric", "version", "true", "REST", "gRPC")
    table = [header] + [
        (row.run.model, row.run.family, row.dataset, row.metric, row.version_dir.name, row.truth, row.rest, row.grpc)
        for row in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    print()
    for line in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip())
    for model, reason in skipped:
        print(f"{model}: skipped: {reason}")
    if rows:
        print("\nlearning curves:")
        for row in rows:
            print(f"  {row.run.model:<18} {row.curves}")


class _DataNotes(logging.Handler):
    """Collects the loaders' warnings (red wine's restored decimal points) while the demo
    trains, so they are said once under the table instead of between its progress lines."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._logger = logging.getLogger("zoo.datasets")

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in self.messages:
            self.messages.append(message)

    def __enter__(self) -> _DataNotes:
        self._propagate = self._logger.propagate
        self._logger.addHandler(self)
        self._logger.propagate = False
        return self

    def __exit__(self, *exc) -> None:
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate
