"""The model-quality benchmark: each zoo model trained with its defaults on its dataset,
its metric set beside the figure its source reports and our target.

    python -m bench quality            # every row; writes docs/QUALITY.md, docs/quality.json
                                       # and the table between the markers in README.md
    python -m bench quality --quick    # one epoch a row: checks the harness only

Every row is one `zoo.train.train` call with a seed, so `zoo train` with the same flags
reproduces it. Nothing here is typed by hand: the README's table is this script's output.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from zoo.config import TrainConfig
from zoo.train import RunResult, train

BEGIN, END = "<!-- quality:begin -->", "<!-- quality:end -->"
SEED = 42


@dataclasses.dataclass(frozen=True)
class Row:
    id: str
    model: str
    dataset: str
    metric: str  # "<split>:<keras metric>", e.g. "test:accuracy"
    source: str  # the source's figure, as it reports it
    target: str  # what we aim for, in words
    passes: Callable[[float, dict], bool] | None  # value, results of earlier rows -> met?
    config: dict = dataclasses.field(default_factory=dict)
    lower_is_better: bool = False
    baseline: str | None = None  # the row whose result the target compares against


def _below(limit):
    return lambda value, _: value <= limit


def _above(limit):
    return lambda value, _: value >= limit


ROWS = (
    Row("dnn-regressor", "dnn-regressor", "red-wine (all columns min-max scaled)", "validation:mae",
        "0.0977 after 10 epochs (Kaggle Intro to DL)", "<= 0.0977", _below(0.0977),
        {"dataset_options": {"scale": "minmax"}}, lower_is_better=True),
    Row("wine-quality-classifier", "wine-quality-classifier", "red-wine, 70/30 split", "test:accuracy",
        "0.602 after 1000 epochs", ">= 0.62 in under 2 minutes",
        lambda value, results: value >= 0.62 and results["wine-quality-classifier"]["seconds"] < 120,
        {"test_fraction": 0.3, "validation_fraction": 0.1}),
    # Digits has 1,257 training images to Fashion-MNIST's 51,000: more epochs for as many steps.
    Row("mlp-classifier", "mlp-classifier", "digits (offline), 100 epochs", "test:accuracy", "n/a", ">= 0.97",
        _above(0.97), {"dataset": "digits", "epochs": 100}),
    Row("transfer-scratch", "transfer-mlp", "digits 8 vs 9, 200 labels, from scratch", "test:accuracy",
        "baseline", "the from-scratch B", None, {"hparams": {"pretrained": False}}),
    Row("transfer-mlp", "transfer-mlp", "digits A (0-7) -> B (8 vs 9, 200 labels)", "test:accuracy",
        "from-scratch B", "higher than from-scratch B",
        lambda value, results: value > results["transfer-scratch"]["value"], baseline="transfer-scratch"),
    Row("binary-classifier", "binary-classifier", "coffee-roasting", "test:accuracy", "n/a", ">= 0.95",
        _above(0.95)),
    Row("wide-and-deep", "wide-and-deep", "california-housing", "test:main_mse",
        "Hands-On ML ch. 10 (reported, no fixed figure)", "lower than dnn-regressor on the same split",
        lambda value, results: value < results["housing-dnn"]["value"], lower_is_better=True,
        baseline="housing-dnn"),
    Row("wide-and-deep-functional", "wide-and-deep-functional", "california-housing", "test:main_mse",
        "the subclassed model's", "report it", None, lower_is_better=True),
    # The ablation: the same 2 x 30 ReLU stack without the wide path (and dnn-regressor's MAE loss).
    Row("housing-dnn", "dnn-regressor", "california-housing (same split), 2 x 30 like wide-and-deep", "test:mse",
        "baseline for wide-and-deep", "report it", None,
        {"dataset": "california-housing", "epochs": 100, "patience": 10, "hparams": {"units": 30, "depth": 2}},
        lower_is_better=True),
    Row("linear-unit", "linear-unit", "cereals", "test:mae", "n/a", "report it", None, lower_is_better=True),
)
# The book's experiment on Fashion-MNIST itself, run when its files are in the dataset cache
# (or can be downloaded): A on the 8 other classes, B = sandal or shirt from 200 labels.
FASHION_B = {"classes": ["Sandal", "Shirt"], "max_train_rows": 200}
FASHION_ROWS = (
    Row("fashion-mlp", "mlp-classifier", "fashion-mnist", "test:accuracy", "about 0.88 (Hands-On ML ch. 10)",
        ">= 0.88", _above(0.88)),
    Row("fashion-transfer-scratch", "transfer-mlp", "fashion-mnist sandal vs shirt, 200 labels, from scratch",
        "test:accuracy", "baseline", "the from-scratch B", None,
        {"dataset": "fashion-mnist", "dataset_options": FASHION_B, "hparams": {"pretrained": False}}),
    Row("fashion-transfer", "transfer-mlp", "fashion-mnist A (8 classes) -> B (sandal vs shirt, 200 labels)",
        "test:accuracy", "from-scratch B (the book: 97% -> 99.3% with transfer)", "higher than from-scratch B",
        lambda value, results: value > results["fashion-transfer-scratch"]["value"],
        {"dataset": "fashion-mnist", "dataset_options": FASHION_B}, baseline="fashion-transfer-scratch"),
)
A_CLASSES = {
    "digits": [str(d) for d in range(8)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sneaker", "Bag", "Ankle boot"],
}


def run(*, quick: bool = False, only: list[str] | None = None, out_dir: str = "docs",
        readme: str | None = "README.md") -> dict:
    every = ROWS + (FASHION_ROWS if _available("fashion-mnist") else ())
    baselines = {row.baseline for row in every if row.baseline}
    rows = sorted(every, key=lambda row: (row.id not in baselines, every.index(row)))  # baselines first
    if only:
        rows = [row for row in rows if row.id in only]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as scratch:
        sources: dict[str, Path] = {}
        for row in rows:
            source_a = None
            if row.model == "transfer-mlp":
                dataset = row.config.get("dataset", "digits")
                if dataset not in sources:
                    sources[dataset] = _train_model_a(Path(scratch), quick, dataset)
                source_a = sources[dataset]
            results[row.id] = _run_row(row, Path(scratch), source_a, quick)
            print(f"{row.id:<26} {row.metric:<16} {results[row.id]['value']:.4f}  "
                  f"({results[row.id]['epochs']} epochs, {results[row.id]['seconds']:.0f}s)", flush=True)
    for row in rows:
        check = row.passes
        results[row.id]["met"] = None if check is None or _missing(row, results) else bool(check(results[row.id]["value"], results))
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "quick": quick,
        "seed": SEED,
        "rows": [{**dataclasses.asdict(row, dict_factory=_no_callables), **results[row.id]}
                 for row in sorted(rows, key=every.index)],
    }
    table = markdown_table(report)
    out = Path(out_dir)
    if not quick:
        out.mkdir(parents=True, exist_ok=True)
        (out / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "QUALITY.md").write_text("# Model quality\n\n" + table)
        if readme:
            _replace_between_markers(Path(readme), table)
    print("\n" + table)
    return report


def _missing(row: Row, results: dict) -> bool:
    return row.baseline is not None and row.baseline not in results


def _available(dataset: str) -> bool:
    from zoo.datasets import load_dataset
    from zoo.errors import DatasetError

    try:
        load_dataset(dataset)
    except DatasetError:
        return False
    return True


def _train_model_a(scratch: Path, quick: bool, dataset: str) -> Path:
    """Model A of the transfer recipe: the book's MLP on the dataset's other 8 classes."""
    config = _config("mlp-classifier", scratch / f"model-a-{dataset}", quick, dataset=dataset,
                     dataset_options={"classes": A_CLASSES[dataset]})
    return train(config, verbose=0).run_dir / "model.keras"


def _config(model: str, run_dir: Path, quick: bool, **overrides) -> TrainConfig:
    values = {"model": model, "seed": SEED, "output_dir": str(run_dir), "export": False, **overrides}
    if quick:
        values["epochs"] = 1
    return TrainConfig(**values)


def _run_row(row: Row, scratch: Path, source_a: Path | None, quick: bool) -> dict:
    config = dict(row.config)
    if row.model == "transfer-mlp":
        config["hparams"] = {"source": str(source_a), **config.get("hparams", {})}
    started = time.perf_counter()
    result: RunResult = train(_config(row.model, scratch / row.id, quick, **config), verbose=0)
    seconds = time.perf_counter() - started
    split, metric = row.metric.split(":")
    return {
        "value": result.metrics[split][metric],
        "epochs": result.metrics["epochs_run"],
        "seconds": round(seconds, 1),
        "command": _command(result.config, row),
    }


def _command(config: TrainConfig, row: Row) -> str:
    parts = [f"zoo train {config.model} --dataset {config.dataset} --seed {config.seed}"]
    if row.config.get("test_fraction"):
        parts.append(f"--test-fraction {config.test_fraction} --validation-fraction {config.validation_fraction}")
    for key, value in config.dataset_options.items():
        parts.append(f"--dataset-option {key}={json.dumps(value, separators=(',', ':'))}")
    for key, value in config.hparams.items():
        parts.append(f"--set {key}={'A' if key == 'source' else json.dumps(value)}")
    if row.config.get("epochs"):
        parts.append(f"--epochs {config.epochs}")
    if row.config.get("patience"):
        parts.append(f"--patience {config.patience}")
    return " ".join(parts)


def markdown_table(report: dict) -> str:
    lines = [
        f"Generated by `python -m bench quality` on {report['date']} ({report['machine']}), seed {report['seed']}"
        + (" — QUICK MODE, not real figures" if report["quick"] else "") + ".",
        "",
        "| model | dataset | metric | ours | source figure | target | met | epochs | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        met = {True: "yes", False: "**no**", None: "—"}[row["met"]]
        lines.append(
            f"| {row['model']} | {row['dataset']} | {row['metric']} | {row['value']:.4f} | {row['source']} | "
            f"{row['target']} | {met} | {row['epochs']} | {row['seconds']:.0f} |"
        )
    lines += ["", "To reproduce a row (`A`: model A of the transfer recipe, `mlp-classifier` trained on the "
              "dataset's other 8 classes, e.g. `--dataset digits --dataset-option "
              "'classes=[\"0\",...,\"7\"]'`). The Fashion-MNIST rows run when its files are in the cache.", ""]
    lines += [f"- {row['id']}: `{row['command']}`" for row in report["rows"]]
    return "\n".join(lines) + "\n"


def render(out_dir: str = "docs", readme: str | None = "README.md") -> dict:
    """Write QUALITY.md and the README table again from quality.json, without training."""
    report = json.loads((Path(out_dir) / "quality.json").read_text())
    table = markdown_table(report)
    (Path(out_dir) / "QUALITY.md").write_text("# Model quality\n\n" + table)
    if readme:
        _replace_between_markers(Path(readme), table)
    return report


def _replace_between_markers(path: Path, table: str) -> None:
    if not path.is_file():
        return
    text = path.read_text()
    if BEGIN not in text or END not in text:
        return
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{table}{END}{tail}")


def _no_callables(items):
    return {key: value for key, value in items if not callable(value)}
