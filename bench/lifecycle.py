"""The serving measures beyond request load: batch predictions, cold start, memory, rollout.

    zoo predict     100,000 CSV rows through `zoo predict --via grpc`: rows/s (by the
                    command's own clock, which starts when it opens the CSV; the process's
                    wall time, with start-up, is reported too) against the
                    SavedModel called in-process on the same rows in the same batches,
                    the two alternating for three rounds (the median ratio counts), and
                    the command's peak memory at a quarter of the rows and at all of them
                    (flat in the file's size when the two agree)
    cold start      `zoo serve` with every zoo model: seconds from starting the process to
                    every model answering. Models are exported untrained (load time and
                    memory depend on the architecture, not the weights); transfer-mlp takes
                    digits-mlp as its model A, and a dataset that is not on this machine
                    (Fashion-MNIST offline) is replaced by a few rows of the same shapes
    memory          that server's resident memory with every model loaded
    rollout         a server of one model while a client sends requests without pause and a
                    new version is published: the server's peak resident memory against its
                    steady state with one version, and the requests that failed

Run by `python -m bench serving` after the request grid (smaller with --smoke).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import http.client
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

PREDICT_ROWS, SMOKE_PREDICT_ROWS = 100_000, 2_000
PREDICT_BATCH = 1024  # zoo predict's default --batch-size


def run(models_dir: Path, scratch: Path, rows: dict[str, np.ndarray], *, smoke: bool) -> dict:
    """`models_dir` holds dnn-regressor version 1; `rows` are its raw features."""
    from bench.serving import free_port, serve

    report = {}
    with serve(models_dir, ["dnn-regressor"]) as server:
        report["predict_csv"] = predict_csv(models_dir, scratch, rows, server.grpc_port,
                                            SMOKE_PREDICT_ROWS if smoke else PREDICT_ROWS, rounds=1 if smoke else 3)
    everything = scratch / "every-model"
    report["cold_start"] = cold_start(everything, free_port(), free_port())
    report["rollout"] = rollout(models_dir, scratch, rows, seconds_after=0.5 if smoke else 2.0)
    return report


# -- zoo predict ---------------------------------------------------------------------------

def predict_csv(models_dir: Path, scratch: Path, rows, grpc_port: int, total: int, rounds: int = 3) -> dict:
    """`zoo predict` of `total` rows, alternating with the in-process baseline for `rounds`
    rounds (the median of the rounds' ratios is reported), and once with a quarter of the
    rows to see whether peak memory grows with the file."""
    quarter = _predict_run(scratch, rows, grpc_port, total // 4)
    runs, in_process = [], []
    for _ in range(rounds):
        runs.append(_predict_run(scratch, rows, grpc_port, total))
        in_process.append(_in_process_rows_per_s(models_dir / "dnn-regressor" / "1", rows, total))
    ratios = [run["rows_per_s"] / base for run, base in zip(runs, in_process)]
    middle = sorted(range(rounds), key=ratios.__getitem__)[rounds // 2]
    full = runs[middle]
    return {"rows": total, "batch_size": PREDICT_BATCH, "rows_per_s": full["rows_per_s"],
            "in_process_rows_per_s": in_process[middle], "ratio": ratios[middle], "round_ratios": ratios,
            "seconds": full["seconds"], "wall_seconds": full["wall_seconds"],
            "peak_mb": max(r["peak_mb"] for r in runs),
            "quarter_rows": total // 4, "quarter_peak_mb": quarter["peak_mb"],
            "memory_growth": max(r["peak_mb"] for r in runs) / quarter["peak_mb"]}


def _predict_run(scratch: Path, rows, grpc_port: int, count: int) -> dict:
    path, output = scratch / f"rows-{count}.csv", scratch / f"predictions-{count}.csv"
    if not path.exists():
        _write_csv(path, rows, count)
    command = [sys.executable, "-m", "zoo", "predict", "dnn-regressor", "--via", "grpc",
               "--server", f"127.0.0.1:{grpc_port}", "--input", str(path),
               "--output", str(output), "--batch-size", str(PREDICT_BATCH)]
    wall, peak_mb, printed = _run_measured(command)
    written = sum(1 for _ in open(output)) - 1
    if written != count:
        raise RuntimeError(f"zoo predict wrote {written} predictions for {count} rows")
    # "N predictions in S s": the command's own clock, from opening the CSV to the
    # renamed output; the wall time adds Python's and TensorFlow's start-up (~3-4 s).
    # (printed to 10 ms: the smoke run's 500 rows can read 0.00)
    seconds = max(float(re.search(r"predictions in ([0-9.]+)s", printed).group(1)), 0.01)
    return {"seconds": seconds, "wall_seconds": wall, "rows_per_s": count / seconds, "peak_mb": peak_mb}


def _write_csv(path: Path, rows: dict[str, np.ndarray], count: int) -> None:
    names = list(rows)
    tiled = {k: np.resize(v, count) for k, v in rows.items()}
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(zip(*(tiled[k].tolist() for k in names)))


def _run_measured(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak resident memory (MB) and standard output of a child process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as stdout:
        process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # the child's own peak, not this process's
        seconds = time.perf_counter() - started
        stdout.seek(0)
        output = stdout.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command[2:4])} failed: {output[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, output  # Linux reports kilobytes


def _in_process_rows_per_s(version_dir: Path, rows, total: int) -> float:
    import tensorflow as tf

    from bench.serving import signature_function

    function = signature_function(version_dir)
    tiled = {k: np.resize(v, total).astype(np.float32) for k, v in rows.items()}
    function(**{k: tf.constant(v[:PREDICT_BATCH]) for k, v in tiled.items()})  # warm-up
    started = time.perf_counter()
    for start in range(0, total, PREDICT_BATCH):
        function(**{k: tf.constant(v[start:start + PREDICT_BATCH]) for k, v in tiled.items()})
    return total / (time.perf_counter() - started)


# -- cold start and memory -----------------------------------------------------------------

def cold_start(models_dir: Path, grpc_port: int, rest_port: int) -> dict:
    """Time `zoo serve` from start to its first answer, and its memory then."""
    exported, notes = export_every_model(models_dir)
    from bench.serving import model_available
    from zoo.server.config import write_model_config_file

    config = write_model_config_file(models_dir / "models.config", {name: models_dir / name for name in exported})
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", "serve", f"--model_config_file={config}", f"--port={grpc_port}",
         f"--rest_api_port={rest_port}", "--file_system_poll_wait_seconds=0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        waiting = set(exported)
        while waiting:
            if time.perf_counter() - started > 300 or process.poll() is not None:
                raise RuntimeError(f"zoo serve did not load {sorted(waiting)}")
            waiting = {name for name in waiting if not model_available(rest_port, name)}
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        rss = _rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
    return {"models": sorted(exported), "notes": notes, "seconds": seconds, "rss_mb": rss}


def export_every_model(models_dir: Path) -> tuple[list[str], dict[str, str]]:
    """Every registered model, untrained. Returns the names exported and, for models built
    on stand-in data or not built at all, why."""
    from zoo.datasets import load_dataset
    from zoo.errors import DatasetError
    from zoo.registry import create_model, list_models, model_info
    from zoo.repository.export import export_model

    exported, notes, built = [], {}, {}
    for name in list_models():
        info = model_info(name)
        options = {"source": built["digits-mlp"]} if name == "transfer-mlp" and "digits-mlp" in built else {}
        try:
            try:
                data = load_dataset(info.dataset, task=info.task, **info.dataset_options)
            except DatasetError:
                if info.dataset not in STAND_INS:
                    raise
                with _data_dir(models_dir.parent / "stand-in-data") as folder:
                    STAND_INS[info.dataset](folder / info.dataset)
                    data = load_dataset(info.dataset, task=info.task, **info.dataset_options)
                notes[name] = f"built on stand-in {info.dataset} files of the real shapes (not on this machine)"
            model = create_model(name, data, **options)
        except Exception as error:  # noqa: BLE001  (reported, not fatal: a benchmark of what is here)
            notes[name] = f"not built: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
            continue
        built[name] = model
        export_model(model, name=name, task=info.task, class_names=data.class_names,
                     models_dir=models_dir, card={"task": info.task})
        exported.append(name)
    return exported, notes


def _standin_fashion_mnist(folder: Path) -> None:
    """Fashion-MNIST's four IDX files with its shapes (28x28 images, labels 0-9), few rows."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", 200), ("t10k", 50)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(count) % 10).astype(np.uint8))


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


STAND_INS = {"fashion-mnist": _standin_fashion_mnist}


@contextlib.contextmanager
def _data_dir(folder: Path):
    """The zoo's dataset cache pointed at `folder` for the duration of a `with`."""
    from zoo.datasets.cache import DATA_DIR_VARIABLE

    saved = os.environ.get(DATA_DIR_VARIABLE)
    os.environ[DATA_DIR_VARIABLE] = str(folder)
    try:
        yield folder
    finally:
        if saved is None:
            del os.environ[DATA_DIR_VARIABLE]
        else:
            os.environ[DATA_DIR_VARIABLE] = saved


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


# -- rollout -------------------------------------------------------------------------------

def rollout(models_dir: Path, scratch: Path, rows, seconds_after: float) -> dict:
    """Publish version 2 of dnn-regressor under load; watch memory and failures."""
    from bench.serving import serve

    repository = scratch / "rollout"
    shutil.copytree(models_dir / "dnn-regressor" / "1", repository / "dnn-regressor" / "1")
    with serve(repository, ["dnn-regressor"], poll_seconds=0.2) as server:
        pid, rest_port = server.pid, server.rest_port
        call = _versioned_caller(server.grpc_port, rows, 64)
        for _ in range(200):  # steady state: warmed up, allocator settled
            call()
        steady = _rss_mb(pid)
        counts = {"ok": 0, "failed": 0}
        versions_seen, peak, stop = set(), steady, threading.Event()

        def load():
            while not stop.is_set():
                try:
                    versions_seen.add(call())
                    counts["ok"] += 1
                except Exception:  # noqa: BLE001  (every failure is what we count)
                    counts["failed"] += 1

        client = threading.Thread(target=load, daemon=True)
        client.start()
        time.sleep(0.3)
        staging = repository / "dnn-regressor" / ".staging-2"
        shutil.copytree(models_dir / "dnn-regressor" / "1", staging)
        published = time.perf_counter()
        staging.rename(repository / "dnn-regressor" / "2")  # as zoo export publishes: one rename
        switched = None
        while time.perf_counter() - published < 60:
            peak = max(peak, _rss_mb(pid))
            if switched is None and 2 in versions_seen and _only_version(rest_port, 2):
                switched = time.perf_counter() - published
            if switched is not None and time.perf_counter() - published > switched + seconds_after:
                break
            time.sleep(0.02)
        stop.set()
        client.join(timeout=60)
    if switched is None:
        raise RuntimeError("the server did not switch to version 2 within 60 s")
    return {"steady_rss_mb": steady, "peak_rss_mb": peak, "peak_ratio": peak / steady,
            "switch_seconds": switched, "requests": counts["ok"] + counts["failed"], "failed": counts["failed"]}


def _versioned_caller(port: int, rows, batch: int):
    """A gRPC Predict of `batch` rows that returns the version that answered."""
    from bench.serving import grpc_predict

    stub, request = grpc_predict(port, "dnn-regressor", rows, batch)
    return lambda: stub.Predict(request, timeout=30).model_spec.version.value


def _only_version(rest_port: int, version: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=2)
    connection.request("GET", "/v1/models/dnn-regressor")
    statuses = json.loads(connection.getresponse().read())["model_version_status"]
    states = {int(v["version"]): v["state"] for v in statuses}
    return states.get(version) == "AVAILABLE" and all(s == "END" for v, s in states.items() if v != version)


def markdown(report: dict) -> list[str]:
    """The lifecycle report as Markdown table lines."""
    p, c, r = report["predict_csv"], report["cold_start"], report["rollout"]
    lines = [
        "## Batch predictions, cold start, memory, rollout",
        "",
        "| measure | result |",
        "|---|---|",
        f"| `zoo predict` {p['rows']:,} rows via gRPC (batch {p['batch_size']}) | {p['rows_per_s']:,.0f} rows/s, "
        f"{p['ratio']:.2f}x in-process ({p['in_process_rows_per_s']:,.0f} rows/s; the median of "
        f"{len(p['round_ratios'])} alternating rounds: {', '.join(f'{r:.2f}x' for r in p['round_ratios'])}); "
        f"{p['seconds']:.1f} s by its own clock, {p['wall_seconds']:.1f} s with start-up |",
        f"| `zoo predict` peak memory, {p['quarter_rows']:,} -> {p['rows']:,} rows | {p['quarter_peak_mb']:.0f} MB -> "
        f"{p['peak_mb']:.0f} MB ({p['memory_growth']:.2f}x for 4x the rows) |",
        f"| cold start to every model answering ({len(c['models'])} models) | {c['seconds']:.1f} s |",
        f"| server memory, every model loaded | {c['rss_mb']:.0f} MB |",
        "| rollout: peak memory / steady state with one version | "
        f"{r['peak_rss_mb']:.0f} / {r['steady_rss_mb']:.0f} MB "
        f"= {r['peak_ratio']:.2f}x |",
        f"| rollout: requests during it, failed | {r['requests']:,}, {r['failed']} (new version served after "
        f"{r['switch_seconds']:.1f} s) |",
    ]
    if c["notes"]:
        lines += ["", "In the cold start:", *(f"- `{name}`: {note}" for name, note in sorted(c["notes"].items()))]
    return lines
