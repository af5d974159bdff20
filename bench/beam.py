"""Batch predictions on Beam's DirectRunner against `zoo predict`, in one process.

    zoo predict        the CSV through `predict_csv` over gRPC to `zoo serve` (the baseline)
    beam savedmodel    the same CSV through `zoo.beam` with the version loaded in-process
    beam served        the same CSV through `zoo.beam` calling the same server over gRPC

Each runs `rounds` times, alternating, on the same file and the same server; the report
gives each one's median rows/s and its ratio to zoo predict's median (these machines are
noisy: only ratios from one process are compared). Every run's output is counted: a run
that did not write one prediction per row raises instead of reporting a speed.

    python -m bench beam [--smoke]      -> docs/beam.json (not with --smoke)
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROWS, SMOKE_ROWS = 100_000, 2_000
BATCH = 1024  # zoo predict's default --batch-size, and Beam's largest batch here
MODEL = "dnn-regressor"


def run(*, smoke: bool = False, out_dir: str = "docs", rounds: int | None = None) -> dict:
    """Measure the three ways; write docs/beam.json unless smoke."""
    from zoo.server.app import ZooServer
    from zoo.server.config import load_model_config_file

    rows = SMOKE_ROWS if smoke else ROWS
    rounds = rounds or (1 if smoke else 3)
    with tempfile.TemporaryDirectory(prefix="zoo-bench-beam-") as scratch:
        scratch = Path(scratch)
        models_dir = scratch / "models"
        config_file = _export(models_dir)
        source = scratch / "rows.csv"
        _write_rows(source, rows)
        server = ZooServer(load_model_config_file(config_file), config_dir=models_dir, grpc_port=0,
                           rest_port=0, poll_seconds=0).start()
        address = f"127.0.0.1:{server.grpc_port}"
        try:
            ways = {
                "zoo predict": lambda out: _zoo_predict(address, source, out),
                "beam savedmodel": lambda out: _beam(["--saved-model", str(models_dir / MODEL / "1")], source, out),
                "beam served": lambda out: _beam(["--via", "grpc", "--server", address], source, out),
            }
            seconds = {name: [] for name in ways}
            for round_ in range(rounds):
                for name, way in ways.items():
                    out = scratch / f"{name.replace(' ', '-')}-{round_}"
                    started = time.perf_counter()
                    way(out)
                    seconds[name].append(time.perf_counter() - started)
                    _check_count(out, rows)
        finally:
            server.stop()
    rates = {name: rows / statistics.median(values) for name, values in seconds.items()}
    report = {
        "rows": rows, "batch_size": BATCH, "rounds": rounds, "model": MODEL,
        "rows_per_s": rates, "ratio_to_zoo_predict": {n: r / rates["zoo predict"] for n, r in rates.items()},
        "seconds": seconds,
    }
    print(markdown(report))
    if not smoke:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "beam.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def markdown(report: dict) -> str:
    """The report as a Markdown table."""
    lines = [f"{report['rows']:,} rows of {report['model']}, batches of {report['batch_size']}, "
             f"median of {report['rounds']} round(s), Beam on the DirectRunner:", "",
             "| way | rows/s | ratio to zoo predict |", "|---|---|---|"]
    for name, rate in report["rows_per_s"].items():
        lines.append(f"| {name} | {rate:,.0f} | {report['ratio_to_zoo_predict'][name]:.2f} |")
    return "\n".join(lines)


def _export(models_dir: Path) -> Path:
    """dnn-regressor, untrained (speed depends on the architecture, not the weights)."""
    from zoo.datasets import load_dataset
    from zoo.registry import create_model, model_info
    from zoo.repository.export import export_model
    from zoo.server.config import write_model_config_file

    info = model_info(MODEL)
    data = load_dataset(info.dataset, task=info.task)
    export_model(create_model(MODEL, data), name=MODEL, task=info.task, class_names=data.class_names,
                 models_dir=models_dir, card={"task": info.task})
    return write_model_config_file(models_dir / "models.config", {MODEL: models_dir / MODEL})


def _write_rows(path: Path, count: int) -> None:
    from zoo.datasets import load_dataset
    from zoo.registry import model_info

    data = load_dataset(model_info(MODEL).dataset)
    picks = np.random.default_rng(0).integers(0, len(data.test), count)
    frame = pd.DataFrame({name: data.test.features[name][picks] for name in data.feature_names})
    frame.insert(0, "row_id", np.arange(count))
    frame.to_csv(path, index=False)


def _zoo_predict(address: str, source: Path, out: Path) -> None:
    from zoo.client import GrpcClient
    from zoo.client.csv_predictions import predict_csv

    with GrpcClient(address) as client:
        predict_csv(client, MODEL, source, out / "predictions-00000-of-00001.csv", batch_size=BATCH, progress=False)


def _beam(handler_args: list[str], source: Path, out: Path) -> None:
    from zoo.beam.pipeline import main

    code = main([MODEL, "--input", str(source), "--output", str(out / "predictions"), "--batch-size", str(BATCH),
                 *handler_args])
    if code != 0:
        raise RuntimeError(f"the Beam pipeline failed ({code}) with {handler_args}")


def _check_count(out: Path, rows: int) -> None:
    written = sum(sum(1 for _ in open(f)) - 1 for f in out.glob("predictions-[0-9]*-of-*"))
    if written != rows:
        raise RuntimeError(f"{out.name} wrote {written} predictions for {rows} rows")
