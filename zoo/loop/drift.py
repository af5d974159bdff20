"""`zoo drift`: served traffic against the drift profile of the version that answered it.

Per input feature and per output:
- the population stability index, PSI = sum over bins of (served - training) * ln(served /
  training) shares, over the profile's training deciles (a category a bin for text). Common
  reading: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift.
- a two-sample test from scipy.stats: Kolmogorov-Smirnov against the profile's sample of
  training values (numbers), chi-square against the training shares (categories).
- rows out of the training range, and rows with a missing or non-numeric value.

Features are ranked by PSI. The report is drift.md (what people read), drift.json (what
schedulers read) and features.png / outputs.png (training and served histograms overlaid);
`zoo drift` exits 1 when a column is past a threshold, so a scheduler can act on it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoo.errors import ZooError
from zoo.loop import profile as drift_profile

FLOOR = 1e-4  # a bin's share below this counts as this: an empty bin would make PSI infinite
PANELS_PER_ROW = 3
MAX_PANELS = 12
FEW_ROWS = 100  # below this, PSI and the tests are noisy: the report says so


class DriftError(ZooError):
    """Traffic or a profile that cannot be compared, said in one line."""


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """When a column counts as drifted. `alpha` None: the test's p-value is reported, not
    used (with much traffic, every tiny shift has a tiny p-value; PSI does not grow with rows)."""
    psi: float = 0.2
    alpha: float | None = None
    out_of_range: float = 0.05
    missing: float = 0.01


@dataclasses.dataclass
class ColumnDrift:
    """One feature's or output's comparison."""
    name: str
    kind: str
    rows: int
    psi: float
    test: str
    statistic: float
    p_value: float
    missing: int
    out_of_range: int
    training_mean: float | None = None
    training_std: float | None = None
    served_mean: float | None = None
    reasons: list[str] = dataclasses.field(default_factory=list)
    served: np.ndarray | None = dataclasses.field(default=None, repr=False)  # for the histograms

    @property
    def drifted(self) -> bool:
        """Past a threshold (the reasons say which)."""
        return bool(self.reasons)

    def to_json(self) -> dict[str, Any]:
        """The comparison as drift.json holds it (without the served values)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "served"}
        return {**fields, "drifted": self.drifted}


@dataclasses.dataclass
class DriftReport:
    """The whole comparison: features ranked by PSI, outputs, and the verdict."""
    model: str
    version: int
    rows: int
    thresholds: Thresholds
    features: list[ColumnDrift]
    outputs: list[ColumnDrift]

    @property
    def drifted(self) -> list[ColumnDrift]:
        """The columns past a threshold."""
        return [c for c in (*self.features, *self.outputs) if c.drifted]

    def to_json(self) -> dict[str, Any]:
        """The report as drift.json holds it."""
        return {"model": self.model, "version": self.version, "rows": self.rows,
                "thresholds": dataclasses.asdict(self.thresholds), "drifted": [c.name for c in self.drifted],
                "features": [c.to_json() for c in self.features], "outputs": [c.to_json() for c in self.outputs]}


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """The population stability index of two share vectors over the same bins."""
    expected = np.maximum(np.asarray(expected, np.float64), FLOOR)
    actual = np.maximum(np.asarray(actual, np.float64), FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def read_traffic(sources: list[str], model: str | None = None) -> pd.DataFrame:
    """Served rows: CSV or Parquet files (`zoo logs` output, or any rows with the features),
    or request-log files / a logging_config filename_prefix, read as `zoo logs` reads them.
    Only `model`'s rows where the rows name their model."""
    from zoo.loop import logs

    frames = []
    for source in sources:
        path = Path(source)
        if path.suffix == ".csv" and path.is_file():
            frames.append(pd.read_csv(path))
        elif path.suffix == ".parquet" and path.is_file():
            frames.append(pd.read_parquet(path))
        else:
            rows = [logs.rows(record) for record in logs.records(logs.log_files([source]))
                    if model is None or record.log_metadata.model_spec.name == model]
            frames += [frame for frame in rows if frame is not None]
    if not frames:
        raise DriftError(f"no served rows in {', '.join(sources)}")
    frame = pd.concat(frames, ignore_index=True)
    if model is not None and "model" in frame.columns:
        frame = frame[frame["model"].astype(str) == model]
    return frame


def compare(profile: dict[str, Any], frame: pd.DataFrame, *, model: str, version: int,
            thresholds: Thresholds = Thresholds()) -> DriftReport:
    """Compare served rows with a version's profile."""
    if profile.get("format") != drift_profile.FORMAT:
        raise DriftError(f"the drift profile of {model} v{version} has format {profile.get('format')}, "
                         f"this zoo reads format {drift_profile.FORMAT}")
    if len(frame) == 0:
        raise DriftError(f"no served rows of {model} to compare")
    features = [_column_drift(name, spec, _feature_values(frame, name), thresholds)
                for name, spec in profile["features"].items()]
    outputs = []
    for name, spec in profile["outputs"].items():
        values = _output_values(frame, name)
        if values is not None:
            outputs.append(_column_drift(name, spec, values, thresholds))
    features.sort(key=lambda c: (-c.psi, -c.statistic))
    return DriftReport(model, version, len(frame), thresholds, features, outputs)


def _feature_values(frame: pd.DataFrame, name: str) -> pd.Series:
    if name.endswith(drift_profile.ROW_MEAN):
        base = name[: -len(drift_profile.ROW_MEAN)]
        columns = [c for c in frame.columns if c.startswith(base + "_") and c[len(base) + 1:].isdigit()]
        if not columns:
            raise DriftError(f"the served rows have no column {base}_0.. (feature '{base}', a value a row "
                             f"with a shape); they have: {', '.join(map(str, frame.columns[:20]))}")
        return frame[columns].apply(pd.to_numeric, errors="coerce").mean(axis=1, skipna=False)
    if name not in frame.columns:
        raise DriftError(f"the served rows have no column '{name}' (a feature of the model); "
                         f"they have: {', '.join(map(str, frame.columns[:20]))}")
    return frame[name]


def _output_values(frame: pd.DataFrame, name: str) -> pd.Series | None:
    # zoo logs renames an output that has a feature's name to <name>_output.
    for column in (f"{name}_output", name):
        if column in frame.columns:
            return frame[column]
    return None


def _column_drift(name: str, spec: dict[str, Any], values: pd.Series, thresholds: Thresholds) -> ColumnDrift:
    from scipy import stats

    rows = len(values)
    if spec["kind"] == "categorical":
        text = values.astype(str).where(values.notna())
        missing = int(text.isna().sum())
        present = text.dropna()
        known = list(spec["shares"])
        counts = np.array([int((present == category).sum()) for category in known], np.float64)
        counts = np.append(counts, len(present) - counts.sum())
        expected = np.append(np.array(list(spec["shares"].values())), spec["other"])
        actual = counts / max(1, len(present))
        pooled = np.maximum(expected, FLOOR)
        result = stats.chisquare(counts, pooled / pooled.sum() * counts.sum()) if len(present) else None
        column = ColumnDrift(name, "categorical", rows, psi(expected, actual), "chi-square",
                             float(result.statistic) if result else math.nan,
                             float(result.pvalue) if result else math.nan, missing, 0,
                             served=present.to_numpy(object))
    else:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
        finite = numbers[np.isfinite(numbers)]
        missing = rows - len(finite)
        actual = drift_profile.bin_shares(finite, spec["edges"])
        if len(finite) and spec["sample"]:
            test = stats.ks_2samp(np.asarray(spec["sample"]), finite)
            statistic, p_value = float(test.statistic), float(test.pvalue)
        else:
            statistic, p_value = math.nan, math.nan
        out_of_range = int(np.sum((finite < spec.get("min", -np.inf)) | (finite > spec.get("max", np.inf))))
        column = ColumnDrift(name, "numeric", rows, psi(spec["shares"], actual), "Kolmogorov-Smirnov", statistic,
                             p_value, missing, out_of_range, spec.get("mean"), spec.get("std"),
                             float(finite.mean()) if len(finite) else None, served=finite)
    if column.psi > thresholds.psi:
        column.reasons.append(f"PSI {column.psi:.3f} > {thresholds.psi}")
    if thresholds.alpha is not None and column.p_value < thresholds.alpha:
        column.reasons.append(f"{column.test} p {column.p_value:.2g} < {thresholds.alpha}")
    if rows and column.out_of_range / rows > thresholds.out_of_range:
        column.reasons.append(f"{column.out_of_range / rows:.1%} of rows out of the training range "
                              f"(> {thresholds.out_of_range:.1%})")
    if rows and column.missing / rows > thresholds.missing:
        column.reasons.append(f"{column.missing / rows:.1%} of rows missing or not numbers "
                              f"(> {thresholds.missing:.1%})")
    return column


# -- the report ----------------------------------------------------------------------------

def write_report(report: DriftReport, profile: dict[str, Any], folder: Path) -> Path:
    """drift.md, drift.json, features.png and outputs.png into `folder`; returns drift.md."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "drift.json").write_text(json.dumps(report.to_json(), indent=2, default=_plain) + "\n",
                                       encoding="utf-8")
    plot_columns(report.features, profile["features"], folder / "features.png",
                 f"{report.model} v{report.version}: features by drift (PSI)")
    if report.outputs:
        plot_columns(report.outputs, profile["outputs"], folder / "outputs.png",
                     f"{report.model} v{report.version}: answers (training: on the validation split)")
    page = folder / "drift.md"
    page.write_text(markdown(report, profile), encoding="utf-8")
    return page


def markdown(report: DriftReport, profile: dict[str, Any]) -> str:
    """The report people read."""
    drifted = report.drifted
    verdict = (f"**Drift**: {', '.join(f'`{c.name}`' for c in drifted)} past the thresholds." if drifted
               else "**No drift** past the thresholds.")
    t = report.thresholds
    lines = [
        f"# Drift: {report.model} v{report.version}",
        "",
        f"{report.rows} served rows against {profile['rows']['train']} training rows "
        f"(answers: against the version's answers on {profile['rows']['validation']} validation rows).",
        "",
        verdict,
        "",
        f"Thresholds: PSI > {t.psi}; rows out of the training range > {t.out_of_range:.1%}; missing > "
        f"{t.missing:.1%}" + (f"; test p-value < {t.alpha}" if t.alpha is not None else
                              " (the tests' p-values are reported, not used)") + ".",
    ]
    if report.rows < FEW_ROWS:
        lines += ["", f"Only {report.rows} rows: PSI and the tests are noisy at this size."]
    for title, columns, image in (("Features, most drifted first", report.features, "features.png"),
                                  ("Answers", report.outputs, "outputs.png")):
        if not columns:
            continue
        lines += ["", f"## {title}", "", f"![{title}]({image})", "",
                  "| | column | PSI | test | statistic | p-value | served mean | training mean (std) "
                  "| out of range | missing |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for column in columns:
            mark = "**drift**" if column.drifted else ""
            training = (f"{column.training_mean:.4g} ({column.training_std:.3g})"
                        if column.training_mean is not None else "")
            served = f"{column.served_mean:.4g}" if column.served_mean is not None else ""
            lines.append(f"| {mark} | `{column.name}` | {column.psi:.3f} | {column.test} | {column.statistic:.3f} "
                         f"| {column.p_value:.2g} | {served} | {training} | {column.out_of_range} "
                         f"| {column.missing} |")
        for column in columns:
            if column.drifted:
                lines.append(f"\n- `{column.name}`: {'; '.join(column.reasons)}")
    return "\n".join(lines) + "\n"


def plot_columns(columns: list[ColumnDrift], specs: dict[str, Any], out: Path, title: str) -> Path:
    """Training against served histograms (shares), most drifted first, in a grid of at most
    PANELS_PER_ROW panels a row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = columns[:MAX_PANELS]
    rows = math.ceil(len(shown) / PANELS_PER_ROW)
    cols = min(PANELS_PER_ROW, len(shown))
    figure, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.3 * rows), squeeze=False)
    for axis in axes.ravel()[len(shown):]:
        axis.set_visible(False)
    for axis, column in zip(axes.ravel(), shown):
        spec = specs[column.name]
        if column.kind == "categorical":
            categories = list(spec["shares"])[:12]
            served = pd.Series(column.served).value_counts(normalize=True)
            positions = np.arange(len(categories))
            axis.bar(positions - 0.2, [spec["shares"][c] for c in categories], 0.4, label="training")
            axis.bar(positions + 0.2, [served.get(c, 0.0) for c in categories], 0.4, label="served")
            axis.set_xticks(positions, categories, rotation=45, ha="right", fontsize=8)
        else:
            training = np.asarray(spec["sample"])
            both = np.concatenate([training, column.served]) if len(column.served) else training
            bins = np.histogram_bin_edges(both, bins=30) if len(both) else 10
            weights = [np.full(len(training), 1 / max(1, len(training))),
                       np.full(len(column.served), 1 / max(1, len(column.served)))]
            axis.hist([training, column.served], bins=bins, weights=weights, histtype="stepfilled",
                      alpha=0.5, label=["training", "served"])
        axis.set_title(f"{column.name}  PSI {column.psi:.2f}" + ("  DRIFT" if column.drifted else ""),
                       fontsize=10, color="tab:red" if column.drifted else "black")
        axis.set_ylabel("share of rows", fontsize=8)
        axis.tick_params(labelsize=8)
        axis.legend(fontsize=8)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def run(models_dir: Path, model: str, sources: list[str], *, version: int | None = None,
        thresholds: Thresholds = Thresholds(), report_dir: Path = Path("drift-report")) -> DriftReport:
    """`zoo drift`: read the traffic, pick the version (given; else the newest the rows name;
    else the stable label's, else the latest), compare, write the report."""
    from zoo import repository
    from zoo.repository import version_labels

    frame = read_traffic(sources, model)
    if version is None and "version" in frame.columns and len(frame):
        version = int(pd.to_numeric(frame["version"], errors="coerce").max())
    if version is None:
        version = (version_labels.labels(models_dir, model).get(version_labels.STABLE)
                   or repository.latest_version(models_dir, model))
    if "version" in frame.columns:
        frame = frame[pd.to_numeric(frame["version"], errors="coerce") == version]
    folder = repository.version_dir(models_dir, model, version)
    profile = drift_profile.read(folder)
    if profile is None:
        raise DriftError(f"{folder} has no {drift_profile.PROFILE_FILE} (exported before drift profiles were "
                         "written): export its run again (zoo export RUN_DIR) to compare with it")
    report = compare(profile, frame, model=model, version=version, thresholds=thresholds)
    write_report(report, profile, report_dir)
    return report
