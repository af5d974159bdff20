"""The model-quality benchmark: the zoo's models against scikit-learn on the same rows.

    python -m bench quality            # everything; writes docs/QUALITY.md, docs/quality.json
                                       # and the tables between the markers in README.md
    python -m bench quality --quick    # two epochs a zoo run, two seeds: checks the harness only
    python -m bench quality --render   # the tables again from docs/quality.json

Three parts, all scored on the test split (never the validation split that early stopping
reads):

1. Against the classical baselines: for each dataset, every zoo model that trains on it and
   HistGradientBoosting, RandomForest (500 trees) and a linear model, fit on the same train
   rows of the zoo's own `load_dataset` split, over five seeds (the seed moves the split, the
   weights and the shuffling). Mean and standard deviation; the best zoo model's mean against
   the best baseline's, with the gap where it is behind.
2. Transfer learning, paired over the same seeds: model B (digits 8 vs 9) from model A's
   hidden layers against the same network from scratch, with few labels and a test split
   large enough (half the rows) that a difference can be told from noise.
3. Course figures: the models whose sources publish a figure or a comparison that no part
   above covers, at seed 42, each reproducible with the `zoo train` line under the table.

Nothing here is typed by hand: the README's tables are this script's output.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import multiprocessing
import os
import platform
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np

from zoo.training.config import TrainConfig
from zoo.training.trainer import train

BEGIN, END = "<!-- quality:begin -->", "<!-- quality:end -->"
SEEDS = (42, 7, 123, 0, 1)
QUICK_SEEDS = (42, 7)
COURSE_SEED = 42


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """A zoo model in a comparison, with the trainer overrides that make its run."""

    model: str
    overrides: dict = dataclasses.field(default_factory=dict)
    source: str = ""  # a figure its source publishes, where there is one


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One dataset and metric; the zoo's models and the baselines, on the same split."""

    id: str
    label: str
    dataset: str
    task: str
    metric: str  # the Keras metric on the test split, e.g. "accuracy", "mae"
    entries: tuple[ZooEntry, ...]
    split: dict = dataclasses.field(default_factory=dict)  # load_dataset options beyond the seed
    features: tuple[str, ...] | None = None  # the baselines' columns (default: all)
    # Also score every model apart on the test rows that repeat a training row and on the rest
    # (red wine repeats itself; a model that remembers its training rows wins on the repeats).
    repeats: bool = False

    @property
    def lower_is_better(self) -> bool:
        """Whether a smaller value of the metric is better (errors, not accuracies)."""
        return self.metric in ("mae", "mse")


WINE_CLASSIFICATION = {"test_fraction": 0.3, "validation_fraction": 0.1}  # the course's 70/30
COMPARISONS = (
    Comparison("red-wine-classification", "red wine quality as a class, 70/30", "red-wine", "multiclass", "accuracy",
               (ZooEntry("wine-quality-classifier", {}, "0.602 after 1000 epochs (course); target >= 0.62 at seed 42"),
                ZooEntry("ple-mlp-classifier"), ZooEntry("ple-memory-classifier")), WINE_CLASSIFICATION,
               repeats=True),
    Comparison("red-wine-regression", "red wine quality, all columns min-max scaled", "red-wine", "regression", "mae",
               (ZooEntry("dnn-regressor", {}, "0.0977 validation MAE after 10 epochs (Kaggle Intro to DL)"),
                ZooEntry("ple-mlp-regressor"), ZooEntry("ple-memory-regressor")), {"scale": "minmax"},
               repeats=True),
    Comparison("california-housing", "California housing (target in $100,000)", "california-housing", "regression",
               "mse", (ZooEntry("ple-geo-regressor"),)),
    Comparison("coffee-roasting", "coffee roasting (synthetic, 2 features)", "coffee-roasting", "binary", "accuracy",
               (ZooEntry("binary-classifier"), ZooEntry("ple-mlp-binary-ensemble"))),
    Comparison("digits", "scikit-learn digits, 10 classes", "digits", "multiclass", "accuracy",
               (ZooEntry("digits-mlp"), ZooEntry("digits-mlp-ensemble"))),
    Comparison("cereals", "80 Cereals: calories from sugars, fiber, protein", "cereals", "regression", "mae",
               (ZooEntry("linear-unit"),), features=("sugars", "fiber", "protein")),
)
# For each comparison's zoo rows, the classical models' constructors (seeded).
BASELINE_NAMES = ("HistGradientBoosting", "RandomForest (500)", "linear")

# Transfer: A learns digits 0-7 (mlp-classifier, the book's network); B tells 8 from 9.
TRANSFER_LABELS = (20, 100)
TRANSFER_SPLIT = {"test_fraction": 0.5, "validation_fraction": 0.15}
A_CLASSES = [str(digit) for digit in range(8)]
TRANSFER_A = ("mlp-classifier", COURSE_SEED, {"dataset": "digits", "dataset_options": {"classes": A_CLASSES}})


@dataclasses.dataclass(frozen=True)
class CourseRow:
    """A course model's run at seed 42: its metric beside its source's figure and our target."""
    id: str
    model: str
    dataset: str
    metric: str  # the key in the run's test metrics
    source: str
    target: str
    passes: Callable[[float, dict], bool] | None
    config: dict = dataclasses.field(default_factory=dict)
    baseline: str | None = None


COURSE_ROWS = (
    # Digits has 1,257 training images to Fashion-MNIST's 51,000: more epochs for as many steps.
    CourseRow("mlp-classifier", "mlp-classifier", "digits (offline), 100 epochs", "accuracy", "n/a", ">= 0.97",
              lambda value, _: value >= 0.97, {"dataset": "digits", "epochs": 100}),
    # The ablation: the same 2 x 30 ReLU stack without the wide path (and MSE, as wide-and-deep).
    CourseRow("housing-dnn", "dnn-regressor", "california-housing, 2 x 30 like wide-and-deep", "mse",
              "baseline for wide-and-deep", "report it", None,
              {"dataset": "california-housing", "epochs": 100, "patience": 10, "loss": "mse", "batch_size": 32,
               "hparams": {"units": 30, "depth": 2}}),
    CourseRow("wide-and-deep", "wide-and-deep", "california-housing", "main_mse",
              "Hands-On ML ch. 10 (reported, no fixed figure)", "lower than housing-dnn on the same split",
              lambda value, results: value < results["housing-dnn"], baseline="housing-dnn"),
)


def run(*, quick: bool = False, only: list[str] | None = None, out_dir: str = "docs",
        readme: str | None = "README.md", workers: int = 1) -> dict:
    """Run the parts (or only the comparisons / course rows / "transfer" named) and report.

    Args:
        workers: training runs at a time, each in its own process (1: in this process).
    """
    started = time.perf_counter()
    seeds = QUICK_SEEDS if quick else SEEDS

    def wanted(name: str) -> bool:
        return only is None or name in only

    report: dict = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "quick": quick, "seeds": list(seeds), "workers": workers, "comparisons": [], "transfer": None, "course": [],
    }
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as scratch:
        runs = _Runs(Path(scratch), quick, workers)
        course = [row for row in COURSE_ROWS if wanted(row.id)]
        comparisons = [comparison for comparison in COMPARISONS if wanted(comparison.id)]
        # Everything is started up front, the longest runs (Wide & Deep's 100 epochs of housing,
        # then housing's comparison) first, so that no worker waits at a part's end.
        planned = [(row.model, COURSE_SEED, row.config) for row in course]
        if wanted("transfer"):
            planned.insert(0, TRANSFER_A)
        for comparison in sorted(comparisons, key=lambda c: c.dataset != "california-housing"):
            planned += comparison_runs(comparison, seeds)
        for model, seed, overrides in planned:
            runs.submit(model, seed, **overrides)
        try:
            for comparison in comparisons:
                report["comparisons"].append(compare(comparison, seeds, runs))
            if wanted("transfer"):
                report["transfer"] = transfer_experiment(seeds, runs)
            report["course"] = course_figures(course, runs)
        finally:
            runs.close()
    report["minutes"] = round((time.perf_counter() - started) / 60, 1)
    out = Path(out_dir)
    if only and not quick and (out / "quality.json").is_file():
        report = merged(json.loads((out / "quality.json").read_text()), report, only)
    tables = markdown(report)
    if not quick:
        out.mkdir(parents=True, exist_ok=True)
        (out / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "QUALITY.md").write_text("# Model quality\n\n" + tables)
        if readme:
            _replace_between_markers(Path(readme), tables)
    print("\n" + tables)
    return report


def merged(previous: dict, fresh: dict, only: list[str]) -> dict:
    """The previous full report with the parts named in `only` replaced by this run's."""
    report = dict(previous)
    fresh_comparisons = {c["id"]: c for c in fresh["comparisons"]}
    order = [c.id for c in COMPARISONS]
    kept = [c for c in previous["comparisons"] if c["id"] not in fresh_comparisons]
    report["comparisons"] = sorted(kept + list(fresh_comparisons.values()), key=lambda c: order.index(c["id"]))
    if fresh["transfer"] is not None:
        report["transfer"] = fresh["transfer"]
    fresh_course = {row["id"]: row for row in fresh["course"]}
    report["course"] = [fresh_course.get(row["id"], row) for row in previous["course"]]
    report["updates"] = [*previous.get("updates", []), f"{', '.join(only)} rerun on {fresh['date']}"]
    return report


class _Runs:
    """Zoo training runs in a scratch folder, nothing exported; in `workers` processes.

    The runs are independent and small: one Keras fit of a few thousand rows keeps about one
    core busy with Python, so two processes of one TensorFlow thread each finish the runs of
    this 2-core machine in about 0.6 of the time one process takes. With one worker, runs
    train in this process.
    """

    def __init__(self, scratch: Path, quick: bool, workers: int = 1):
        self.scratch, self.quick, self.count = scratch, quick, 0
        self.started: dict[str, Future] = {}
        self.pool = None
        if workers > 1:
            self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_start_worker)

    def submit(self, model: str, seed: int, **overrides) -> Future:
        """Start a run, or find the same run started before; the future's result is
        (RunResult, seconds). Starting the long runs first keeps both workers busy to the end."""
        key = json.dumps({"model": model, "seed": seed, **overrides}, sort_keys=True, default=str)
        if key in self.started:
            return self.started[key]
        values = {"model": model, "seed": seed, "export": False, **overrides}
        values["output_dir"] = str(self.scratch / f"run-{self.count}")
        self.count += 1
        if self.pool is not None:
            future = self.pool.submit(_train_run, values, self.quick)
        else:
            future = Future()
            future.set_result(_train_run(values, self.quick))
        self.started[key] = future
        return future

    def train(self, model: str, seed: int, **overrides):
        """Run one training to its end: (RunResult, seconds)."""
        return self.submit(model, seed, **overrides).result()

    def close(self) -> None:
        """Stop the worker processes."""
        if self.pool is not None:
            self.pool.shutdown()


def _start_worker() -> None:
    from zoo.server.app import set_tensorflow_threads
    from zoo.tensorflow_logs import import_tensorflow_quietly

    import_tensorflow_quietly()
    set_tensorflow_threads(1, 1)  # zoo serve's own helper: one thread a worker, two workers on two cores


def _train_run(values: dict, quick: bool):
    if quick:
        values["epochs"] = 2
    started = time.perf_counter()
    result = train(TrainConfig(**values), verbose=0)
    return result, time.perf_counter() - started


def comparison_runs(comparison: Comparison, seeds) -> list[tuple[str, int, dict]]:
    """The zoo training runs of one comparison: (model, seed, trainer overrides)."""
    planned = []
    for seed in seeds:
        for entry in comparison.entries:
            overrides = {"dataset": comparison.dataset, **_split_fields(comparison.split), **entry.overrides}
            options = {k: v for k, v in comparison.split.items() if k not in ("test_fraction", "validation_fraction")}
            if options:
                overrides["dataset_options"] = options
            planned.append((entry.model, seed, overrides))
    return planned


def compare(comparison: Comparison, seeds, runs: _Runs) -> dict:
    """Every zoo entry and baseline of one comparison, over the seeds."""
    from zoo.datasets import load_dataset

    rows: dict[str, dict] = {}
    shares = []
    pending = {(seed, model): runs.submit(model, seed, **overrides)
               for model, seed, overrides in comparison_runs(comparison, seeds)}
    for seed in seeds:
        data = load_dataset(comparison.dataset, seed=seed, task=comparison.task, **comparison.split)
        repeated = _repeated_rows(data, comparison) if comparison.repeats else None
        if repeated is not None:
            shares.append(float(repeated.mean()))
        for entry in comparison.entries:
            result, seconds = pending[seed, entry.model].result()
            metric = _metric_key(result.metrics["test"], comparison.metric)
            row = rows.setdefault(entry.model, {"name": entry.model, "kind": "zoo", "values": [], "seconds": 0.0,
                                                "recipe": _recipe(entry.model), "source": entry.source,
                                                "command": _command(result.config)})
            row["values"].append(result.metrics["test"][metric])
            row["seconds"] += seconds
            if repeated is not None:
                _score_apart(row, comparison, data, _zoo_predictions(result.run_dir, data, comparison.task), repeated)
        for name, value, predicted, seconds in baselines(comparison, data, seed):
            row = rows.setdefault(name, {"name": name, "kind": "scikit-learn", "values": [], "seconds": 0.0,
                                         "recipe": BASELINE_RECIPES[name], "source": "", "command": ""})
            row["values"].append(value)
            row["seconds"] += seconds
            if repeated is not None:
                _score_apart(row, comparison, data, predicted, repeated)
    for row in rows.values():
        row["mean"], row["std"] = float(np.mean(row["values"])), float(np.std(row["values"]))
        row["seconds"] = round(row["seconds"], 1)
        for part in ("repeated", "new"):
            if part in row:
                row[f"{part}_mean"] = float(np.mean(row[part]))
    better = min if comparison.lower_is_better else max
    best_zoo = better((r for r in rows.values() if r["kind"] == "zoo"), key=lambda r: r["mean"])
    best_baseline = better((r for r in rows.values() if r["kind"] != "zoo"), key=lambda r: r["mean"])
    gap = best_zoo["mean"] - best_baseline["mean"]
    behind = (gap > 0 if comparison.lower_is_better else gap < 0) and not _ties(gap, best_baseline["mean"])
    return {
        "id": comparison.id, "label": comparison.label, "metric": comparison.metric,
        "lower_is_better": comparison.lower_is_better, "rows": list(rows.values()),
        "repeated_share": float(np.mean(shares)) if shares else None, "repeated_shares": shares,
        "best_zoo": best_zoo["name"], "best_baseline": best_baseline["name"], "gap": gap, "met": not behind,
    }


BASELINE_RECIPES = {
    "HistGradientBoosting": "scikit-learn defaults",
    "RandomForest (500)": "scikit-learn defaults, 500 trees",
    "linear": "least squares / logistic regression on standardized columns",
}


def _repeated_rows(data, comparison: Comparison) -> np.ndarray:
    """Which test rows repeat a training row exactly (every feature)."""
    names = comparison.features or tuple(data.feature_names)
    seen = {row.tobytes() for row in _matrix(data.train, names)}
    return np.array([row.tobytes() in seen for row in _matrix(data.test, names)])


def _zoo_predictions(run_dir: Path, data, task: str) -> np.ndarray:
    """A finished run's model's answers on the test rows: class ids, or values."""
    import keras

    import zoo.architectures  # noqa: F401  (registers the zoo's serializable layers)
    from zoo.training.runs import MODEL_FILE
    from zoo.training.trainer import input_names

    model = keras.saving.load_model(run_dir / MODEL_FILE, compile=False)
    outputs = model.predict(data.test.select(input_names(model)), verbose=0)
    if task == "regression":
        return np.asarray(outputs["prediction"]).reshape(-1)
    return np.argmax(np.asarray(outputs["probabilities"]), axis=1)


def _score_apart(row: dict, comparison: Comparison, data, predicted: np.ndarray, repeated: np.ndarray) -> None:
    truth = data.test.target
    for part, rows in (("repeated", repeated), ("new", ~repeated)):
        row.setdefault(part, []).append(_score(comparison.metric, truth[rows], predicted[rows]))


def baselines(comparison: Comparison, data, seed: int):
    """(name, test metric, test predictions, seconds) of each classical model fit on the train rows only."""
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    names = comparison.features or tuple(data.feature_names)
    train_x, test_x = _matrix(data.train, names), _matrix(data.test, names)
    if comparison.task == "regression":
        models = (HistGradientBoostingRegressor(random_state=seed),
                  RandomForestRegressor(500, n_jobs=-1, random_state=seed), LinearRegression())
    else:
        models = (HistGradientBoostingClassifier(random_state=seed),
                  RandomForestClassifier(500, n_jobs=-1, random_state=seed),
                  make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)))
    for name, model in zip(BASELINE_NAMES, models):
        started = time.perf_counter()
        model.fit(train_x, data.train.target)
        predicted = model.predict(test_x)
        yield name, _score(comparison.metric, data.test.target, predicted), predicted, time.perf_counter() - started


def _matrix(split, names) -> np.ndarray:
    return np.concatenate([np.asarray(split.features[n], np.float64).reshape(len(split), -1) for n in names], axis=1)


def _score(metric: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    if metric == "accuracy":
        return float(np.mean(predicted == truth))
    error = predicted.astype(np.float64) - truth.astype(np.float64)
    return float(np.mean(np.abs(error)) if metric == "mae" else np.mean(error**2))


def transfer_experiment(seeds, runs: _Runs) -> dict:
    """B from A's hidden layers against B from scratch: paired by seed, for each label count."""
    model, seed, overrides = TRANSFER_A
    model_a, _ = runs.train(model, seed, **overrides)
    source = str(model_a.run_dir / "model.keras")
    pending = {
        (labels, seed, pretrain): runs.submit(
            "transfer-mlp", seed, **_split_fields(TRANSFER_SPLIT),
            dataset_options={"classes": ["8", "9"], "max_train_rows": labels},
            hparams={"source": source, "pretrained": pretrain},
        )
        for labels in TRANSFER_LABELS for seed in seeds for pretrain in (True, False)
    }
    results = []
    for labels in TRANSFER_LABELS:
        pretrained, scratch = [], []
        for seed in seeds:
            for pretrain, into in ((True, pretrained), (False, scratch)):
                result, _ = pending[labels, seed, pretrain].result()
                into.append(result.metrics["test"]["accuracy"])
        test_rows = _test_rows(seeds[-1])
        difference = np.subtract(pretrained, scratch)
        results.append({
            "labels": labels, "test_rows": test_rows, "transfer": pretrained, "scratch": scratch,
            "difference_mean": float(difference.mean()), "difference_std": float(difference.std()),
            "transfer_mean": float(np.mean(pretrained)), "scratch_mean": float(np.mean(scratch)),
        })
    return {"rows": results, "split": TRANSFER_SPLIT}


def _test_rows(seed: int) -> int:
    from zoo.datasets import load_dataset

    data = load_dataset("digits", seed=seed, task="binary", classes=["8", "9"], **TRANSFER_SPLIT)
    return len(data.test)


def course_figures(rows, runs: _Runs) -> list[dict]:
    """Train the course rows (their baselines first) and judge each against its target."""
    results: dict[str, float] = {}
    report = []
    pending = {row.id: runs.submit(row.model, COURSE_SEED, **row.config) for row in rows}
    for row in sorted(rows, key=lambda r: r.id not in {x.baseline for x in rows if x.baseline}):
        result, seconds = pending[row.id].result()
        results[row.id] = result.metrics["test"][row.metric]
        met = None
        if row.passes is not None and (row.baseline is None or row.baseline in results):
            met = bool(row.passes(results[row.id], results))
        report.append({"id": row.id, "model": row.model, "dataset": row.dataset, "metric": f"test:{row.metric}",
                       "value": results[row.id], "source": row.source, "target": row.target, "met": met,
                       "epochs": result.metrics["epochs_run"], "seconds": round(seconds, 1),
                       "command": _command(result.config)})
    order = [row.id for row in COURSE_ROWS]
    return sorted(report, key=lambda r: order.index(r["id"]))


def _split_fields(split: dict) -> dict:
    return {k: v for k, v in split.items() if k in ("test_fraction", "validation_fraction")}


def _metric_key(test_metrics: dict, metric: str) -> str:
    """The metric's key in a run's test metrics (several-output models prefix it: main_mse)."""
    return metric if metric in test_metrics else f"main_{metric}"


def _recipe(model: str) -> str:
    from zoo.registry import model_info

    return model_info(model).recipe.about


def _command(config: TrainConfig) -> str:
    from zoo.registry import model_info

    info = model_info(config.model)
    parts = [f"zoo train {config.model} --dataset {config.dataset} --seed {config.seed}"]
    if (config.test_fraction, config.validation_fraction) != (0.15, 0.15):
        parts.append(f"--test-fraction {config.test_fraction} --validation-fraction {config.validation_fraction}")
    for key, value in config.dataset_options.items():
        parts.append(f"--dataset-option {key}={json.dumps(value, separators=(',', ':'))}")
    for key, value in config.hparams.items():
        parts.append(f"--set {key}={'A' if key == 'source' else json.dumps(value)}")
    for flag in ("epochs", "patience", "loss", "batch_size"):
        value = getattr(config, flag)
        if value != getattr(info.recipe, flag):
            parts.append(f"--{flag.replace('_', '-')} {value}")
    return " ".join(parts)


def markdown(report: dict) -> str:
    """The report as the Markdown that QUALITY.md and the README hold."""
    quick = " — QUICK MODE, not real figures" if report["quick"] else ""
    seeds = ", ".join(map(str, report["seeds"]))
    lines = [
        f"Generated by `python -m bench quality` on {report['date']} ({report['machine']}) in "
        f"{report.get('minutes', '?')} minutes{quick}"
        + "".join(f"; {update}" for update in report.get("updates", [])) + ".",
        "",
        f"**Against scikit-learn**, test split, mean ± standard deviation over seeds {seeds} (each seed "
        "its own split). Baselines fit on the same train rows; the zoo's models also read the "
        "validation rows, for early stopping only.",
        "",
        "| dataset, test metric | model | recipe | mean ± std | seed 42 | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for comparison in report["comparisons"]:
        first = True
        for row in comparison["rows"]:
            verdict = ""
            if row["name"] == comparison["best_zoo"]:
                verdict = _verdict(comparison)
            label = f"{comparison['label']}, {comparison['metric']}" if first else ""
            name = f"**{row['name']}**" if row["kind"] == "zoo" else row["name"]
            recipe = row["recipe"].split(":")[0] if row["kind"] == "zoo" else row["recipe"]
            lines.append(f"| {label} | {name} | {recipe} | {row['mean']:.4f} ± {row['std']:.4f} | "
                         f"{row['values'][0]:.4f} | {verdict} |")
            first = False
    apart = [c for c in report["comparisons"] if c.get("repeated_share") is not None]
    if apart:
        lines += ["", "**Repeated rows.** Red Wine Quality holds 1,599 rows but 1,359 distinct measurements; "
                  "the test rows that repeat a training row exactly are scored apart from the new ones "
                  "(means over the same seeds):", "",
                  "| dataset, test metric | test rows repeated | model | on repeated rows | on new rows |",
                  "|---|---|---|---|---|"]
        for comparison in apart:
            first = True
            for row in comparison["rows"]:
                label = f"{comparison['label']}, {comparison['metric']}" if first else ""
                share = f"{comparison['repeated_share']:.1%}" if first else ""
                name = f"**{row['name']}**" if row["kind"] == "zoo" else row["name"]
                lines.append(f"| {label} | {share} | {name} | {row['repeated_mean']:.4f} | {row['new_mean']:.4f} |")
                first = False
    if report["transfer"]:
        lines += ["", "**Transfer learning**, digits 8 vs 9: model B from model A's hidden layers (A: "
                  "`mlp-classifier` on digits 0-7, seed 42) against the same network from scratch, paired "
                  f"by seed ({seeds}), half the rows held out for the test.", "",
                  "| labels | test images | from A | from scratch | difference (A - scratch) |",
                  "|---|---|---|---|---|"]
        for row in report["transfer"]["rows"]:
            lines.append(f"| {row['labels']} | {row['test_rows']} | {row['transfer_mean']:.4f} | "
                         f"{row['scratch_mean']:.4f} | {row['difference_mean']:+.4f} ± {row['difference_std']:.4f} |")
    if report["course"]:
        lines += ["", "**Course figures** not covered above, seed 42:", "",
                  "| model | dataset | metric | ours | source figure | target | met |", "|---|---|---|---|---|---|---|"]
        for row in report["course"]:
            met = {True: "yes", False: "**no**", None: "—"}[row["met"]]
            lines.append(f"| {row['model']} | {row['dataset']} | {row['metric']} | {row['value']:.4f} | "
                         f"{row['source']} | {row['target']} | {met} |")
    lines += ["", "To reproduce a zoo row at one seed (`A`: model A's `model.keras`):", ""]
    for comparison in report["comparisons"]:
        lines += [f"- `{row['command']}`" for row in comparison["rows"] if row["kind"] == "zoo"]
    lines += [f"- `{row['command']}`" for row in report["course"]]
    lines += ["", "Recipes (`zoo info MODEL` says the same):", ""]
    recipes = {row["name"]: row["recipe"] for c in report["comparisons"] for row in c["rows"] if row["kind"] == "zoo"}
    lines += [f"- {name}: {recipe}" for name, recipe in recipes.items()]
    return "\n".join(lines) + "\n"


def _ties(gap: float, reference: float) -> bool:
    """A gap below 0.1% of the value: the same model (OLS and a converged linear unit) up to float32."""
    return abs(gap) <= 1e-3 * abs(reference)


def _verdict(comparison: dict) -> str:
    best = next(r for r in comparison["rows"] if r["name"] == comparison["best_baseline"])
    if _ties(comparison["gap"], best["mean"]):
        return f"matches {best['name']} ({best['mean']:.4f})"
    if comparison["met"]:
        return f"at least as good as {best['name']} ({best['mean']:.4f})"
    return f"**behind {best['name']} ({best['mean']:.4f}) by {abs(comparison['gap']):.4f}**"


def render(out_dir: str = "docs", readme: str | None = "README.md") -> dict:
    """Write QUALITY.md and the README tables again from quality.json, without training."""
    report = json.loads((Path(out_dir) / "quality.json").read_text())
    tables = markdown(report)
    (Path(out_dir) / "QUALITY.md").write_text("# Model quality\n\n" + tables)
    if readme:
        _replace_between_markers(Path(readme), tables)
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
