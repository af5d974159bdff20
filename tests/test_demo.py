"""The quick start as a new user meets it: an empty data cache, no network, `zoo demo --quick`.

The cache points at an empty folder, so every table comes from the copies the zoo ships;
any download attempt would fail the run (the test machine has no network to the sources).
"""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest
import yaml

from zoo.demo import DEMO_RUNS, run_demo


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    cache = root / "empty-cache"
    cache.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # runs/ is written under the working directory
        patch.setenv("ZOO_DATA_DIR", str(cache))
        # Loaders say a repair once a process; earlier tests in this one may have said it.
        patch.setattr("zoo.datasets.tabular._REPORTED", set())
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            status = run_demo(root / "models", quick=True)
    return root, status, output.getvalue()


def table_rows(output: str) -> dict[str, list[str]]:
    """The demo table's rows by model name, split on its column gaps (two or more spaces)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("model ") and "gRPC" in line)
    rows = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells
    return rows


def test_every_family_trains_offline_and_is_served(quick_demo):
    root, status, output = quick_demo
    assert status == 0, output
    rows = table_rows(output)
    assert list(rows) == [run.model for run in DEMO_RUNS]
    families = " ".join(run.family for run in DEMO_RUNS)
    for family in ("linear unit", "Sequential regressor", "softmax", "binary", "Wide & Deep", "transfer"):
        assert family in families
    for model, cells in rows.items():
        _, _, _, metric, version, truth, rest, grpc = cells
        assert rest == grpc, f"{model}: REST answered {rest}, gRPC {grpc}"
        assert (root / "models" / model / version / "saved_model.pb").is_file()
        value = float(metric.split()[-1])
        assert np.isfinite(value), f"{model}: {metric}"
    # The table's answers are the served models' own: two classifiers that learn in seconds
    # get the first test row right even in --quick.
    assert rows["digits-mlp"][5] == rows["digits-mlp"][6]
    assert float(rows["digits-mlp"][3].split()[-1]) > 0.8


def test_transfer_reuses_the_demo_model_a(quick_demo):
    root, _, _ = quick_demo

    configs = list((root / "runs" / "transfer-mlp").glob("*/config.yaml"))
    assert len(configs) == 1
    source = yaml.safe_load(configs[0].read_text())["hparams"]["source"]
    assert source == str(root / "models" / "digits-mlp" / "1")
    model_a = yaml.safe_load(next((root / "runs" / "digits-mlp").glob("*/config.yaml")).read_text())
    assert "8" not in model_a["dataset_options"]["classes"]  # A never saw B's classes


def test_learning_curves_are_written_and_named(quick_demo):
    root, _, output = quick_demo
    curves = re.findall(r"^\s+(\S+)\s+(runs/\S+/curves\.png)$", output, flags=re.MULTILINE)
    assert [model for model, _ in curves] == [run.model for run in DEMO_RUNS]
    for _, path in curves:
        assert (root / path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_data_repairs_are_said_once_under_the_table(quick_demo):
    _, _, output = quick_demo
    notes = [line for line in output.splitlines() if "restored the decimal point" in line]
    assert notes and all(line.startswith("note: ") for line in notes)
    assert len(notes) == len(set(notes))
