"""The serving benchmark: what `zoo serve` adds to the cost of the model itself.

    python -m bench serving            # the full grid, a few seconds a cell; docs/PERFORMANCE.md
    python -m bench serving --smoke    # a handful of requests a cell: checks the harness and answers

Baseline, in this process: the SavedModel's `serving_default` called in-process on the same
rows at the same batch size. Load: this process is the client; the server is a separate
`zoo serve` process on 127.0.0.1 (one with batching off, one with it on). Each cell is an
(API, batch size, concurrency, batching) combination, bounded in requests and in time; it
alternates baseline and load for a few rounds and reports requests/s, rows/s, p50/p99
latency and the ratio of served rows/s to in-process rows/s, the median over its rounds,
which is what counts on a noisy machine.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime
import functools
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench import lifecycle
from zoo.server.config import write_model_config_file

API = ("grpc", "rest")
BATCH_SIZES = (1, 64, 4096)
CONCURRENCY = (1, 8, 32)
MODELS = ("dnn-regressor", "digits-mlp")
# The Open Inference Protocol's cells (binary REST, raw gRPC): (batch, concurrency) pairs, fewer
# than V1's grid; each is compared with the V1 cell of the same shape.
V2_API = ("v2-rest", "v2-grpc")
V2_CELLS = ((1, 1), (1, 32), (64, 8), (4096, 1))
# Request logging (logging_config, sampling_rate 1.0): its cost, logging on against off, same run.
LOGGING_CELLS = ((1, 32),)


@dataclasses.dataclass(frozen=True)
class Budget:
    """How many requests a cell sends and for how long at most."""
    seconds: float  # per round of a cell, each way
    requests: int  # per round of a cell, at most
    rounds: int  # in-process and served alternate this many times a cell


FULL, SMOKE = Budget(1.0, 2000, 3), Budget(0.3, 4, 1)

# The batching-on server. One batch thread: in a Python server, TensorFlow calls made from
# two threads at once cost each other more than the overlap buys (1-row x32: ~0.4x with two
# batch threads, ~0.5-0.6x with one, measured back to back; docs/OPTIMIZATIONS.md).
BATCHING_CONFIG = ("max_batch_size { value: 4096 } batch_timeout_micros { value: 1000 } "
                   "num_batch_threads { value: 1 } max_enqueued_batches { value: 1000 }")


def run(*, smoke: bool = False, out_dir: str = "docs") -> dict:
    """Measure every cell against in-process TensorFlow; write PERFORMANCE.md and performance.json."""
    budget = SMOKE if smoke else FULL
    report = {"date": datetime.date.today().isoformat(), "machine": _machine(), "smoke": smoke,
              "rounds": budget.rounds, "cells": []}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-serving-") as scratch:
        models_dir = Path(scratch) / "models"
        rows = export_models(models_dir, MODELS)
        batching = Path(scratch) / "batching.config"
        batching.write_text(BATCHING_CONFIG)
        functions = {name: signature_function(models_dir / name / "1") for name in MODELS}
        for batched in (False, True):
            with serve(models_dir, MODELS, batching if batched else None) as server:
                for name in MODELS:
                    for batch in BATCH_SIZES:
                        for api in (*API, *V2_API):
                            port = server.grpc_port if api.endswith("grpc") else server.rest_port
                            for concurrency in CONCURRENCY:
                                if api in V2_API and (batch, concurrency) not in V2_CELLS:
                                    continue
                                cell = _cell(functions[name], api, port, name, rows[name], batch, concurrency, budget)
                                cell.update(model=name, batching=batched)
                                report["cells"].append(cell)
                                print(_line(cell), flush=True)
        report["logging"] = _logging_cells(models_dir, Path(scratch), functions["dnn-regressor"],
                                           rows["dnn-regressor"], budget)
        report["lifecycle"] = lifecycle.run(models_dir, Path(scratch), rows["dnn-regressor"], smoke=smoke)
        print(json.dumps(report["lifecycle"], indent=1), flush=True)
    if not smoke:
        write_report(Path(out_dir), "performance.json", report, "PERFORMANCE.md", markdown(report))
    return report


def write_report(out: Path, json_name: str, report: dict, markdown_name: str, text: str) -> None:
    """A benchmark's report as JSON and as Markdown under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / json_name).write_text(json.dumps(report, indent=2) + "\n")
    (out / markdown_name).write_text(text)


def export_models(models_dir: Path, names) -> dict[str, dict[str, np.ndarray]]:
    """Export each model (untrained: the bench measures serving, not accuracy) as version 1;
    returns each one's test rows, tiled to the largest batch, by input name."""
    from zoo.datasets import load_dataset
    from zoo.registry import create_model, model_info
    from zoo.repository.export import export_model
    from zoo.training.trainer import input_names

    rows = {}
    for name in names:
        info = model_info(name)
        data = load_dataset(info.dataset, task=info.task)
        model = create_model(name, data)
        export_model(model, name=name, task=info.task, class_names=data.class_names,
                     models_dir=models_dir, card={"task": info.task})
        rows[name] = _tile({k: data.test.features[k] for k in input_names(model)}, max(BATCH_SIZES))
    return rows


def _machine() -> str:
    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def _tile(columns: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    return {k: np.resize(v, (count, *v.shape[1:])).astype(np.float32) for k, v in columns.items()}


@functools.lru_cache(maxsize=None)
def signature_function(version_dir: Path):
    """A version's `serving_default`, loaded once per process."""
    import tensorflow as tf

    return tf.saved_model.load(str(version_dir)).signatures["serving_default"]


def _in_process(function, rows, batch: int, budget: Budget) -> dict:
    """`serving_default` called in this process on `batch` rows, back to back."""
    import tensorflow as tf

    feed = {k: tf.constant(v[:batch]) for k, v in rows.items()}
    outputs = {k: v.numpy() for k, v in function(**feed).items()}  # also the warm-up
    latencies, started = [], time.perf_counter()
    while time.perf_counter() - started < budget.seconds and len(latencies) < budget.requests:
        began = time.perf_counter()
        function(**feed)
        latencies.append(time.perf_counter() - began)
    seconds = time.perf_counter() - started
    return {"rows_per_s": len(latencies) * batch / seconds, "p50_ms": 1e3 * float(np.median(latencies)),
            "outputs": outputs}


@dataclasses.dataclass(frozen=True)
class Server:
    """`zoo serve` in a child process on free ports, stopped on exit."""
    grpc_port: int
    rest_port: int
    pid: int


def _logging_cells(models_dir: Path, scratch: Path, function, rows, budget: Budget) -> list[dict]:
    """dnn-regressor's LOGGING_CELLS over both APIs on two servers at once, one logging every
    request (sampling_rate 1.0) and one not, measured alternately: on / off is the cost."""
    model, cells = "dnn-regressor", []
    with serve(models_dir, [model]) as off, serve(models_dir, [model], log_prefix=scratch / "request-logs") as on:
        for api in API:
            for batch, concurrency in LOGGING_CELLS:
                rounds = {"off": [], "on": []}
                for _ in range(2):
                    for name, server in (("off", off), ("on", on)):
                        port = server.grpc_port if api == "grpc" else server.rest_port
                        cell = _cell(function, api, port, model, rows, batch, concurrency, budget)
                        rounds[name].append(cell["ratio"])
                cell = {"api": api, "batch": batch, "concurrency": concurrency,
                        "off": float(np.median(rounds["off"])), "on": float(np.median(rounds["on"]))}
                cell["ratio"] = cell["on"] / cell["off"]
                cells.append(cell)
                print(f"{model:<14} {api:<5} batch {batch:>4} x{concurrency:<3} request logging on/off "
                      f"{cell['on']:.2f}/{cell['off']:.2f} = {cell['ratio']:.2f}", flush=True)
        logged = _logged_records(on.rest_port)
    for cell in cells:
        cell["records_logged"] = logged
    return cells


def _logged_records(rest_port: int) -> int:
    """What the server's request log wrote, from its metrics (:tensorflow:serving:request_log_count)."""
    connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=10)
    connection.request("GET", "/monitoring/prometheus/metrics")
    text = connection.getresponse().read().decode()
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(":tensorflow:serving:request_log_count{"))


@contextlib.contextmanager
def serve(models_dir: Path, names, batching: Path | None = None, poll_seconds: float = 0,
          log_prefix: Path | None = None):
    """`zoo serve` of `names` in its own process on free ports, for the duration of a `with`;
    with `log_prefix`, every model logs every request there (logging_config)."""
    config = write_model_config_file(models_dir / ("models-logged.config" if log_prefix else "models.config"),
                                     {name: models_dir / name for name in names})
    if log_prefix:
        from google.protobuf import text_format

        from zoo.server.config import load_model_config_file

        logged = load_model_config_file(config)
        for entry in logged.model_config_list.config:
            entry.logging_config.log_collector_config.type = "tfrecord"
            entry.logging_config.log_collector_config.filename_prefix = str(log_prefix / entry.name)
            entry.logging_config.sampling_config.sampling_rate = 1.0
        config.write_text(text_format.MessageToString(logged))
    grpc_port, rest_port = free_port(), free_port()
    command = [sys.executable, "-m", "zoo", "serve", f"--model_config_file={config}", f"--port={grpc_port}",
               f"--rest_api_port={rest_port}", f"--file_system_poll_wait_seconds={poll_seconds}",
               "--monitoring_config_file=" + str(_monitoring_config(models_dir))]
    if batching:
        command += ["--enable_batching", f"--batching_parameters_file={batching}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not all(model_available(rest_port, name) for name in names):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("zoo serve did not come up within 120 s")
            time.sleep(0.2)
        yield Server(grpc_port, rest_port, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)


def _monitoring_config(folder: Path) -> Path:
    path = folder / "monitoring.config"
    path.write_text('prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }')
    return path


def model_available(rest_port: int, name: str) -> bool:
    """Whether the server on `rest_port` has a version of `name` AVAILABLE."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=2)
        connection.request("GET", f"/v1/models/{name}")
        response = connection.getresponse()
        body = json.loads(response.read())
    except (OSError, ValueError):
        return False
    return response.status == 200 and any(v["state"] == "AVAILABLE" for v in body["model_version_status"])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cell(function, api: str, port: int, model: str, rows, batch: int, concurrency: int, budget: Budget) -> dict:
    """One cell: the in-process baseline and the served load, alternating `budget.rounds`
    times (this machine's speed drifts from one minute to the next, so each served round is
    divided by the baseline taken just before it, and the median of those ratios counts).
    Latency percentiles and rates pool every served round."""
    callers = {"grpc": grpc_caller, "rest": _rest_caller, "v2-rest": _v2_rest_caller, "v2-grpc": _v2_grpc_caller}
    call = callers[api](port, model, rows, batch)
    first = call()
    latencies, seconds, ratios, baselines = [], 0.0, [], []
    for _ in range(budget.rounds):
        baselines.append(_in_process(function, rows, batch, budget))
        got, took = _load(call, concurrency, budget)
        latencies += got
        seconds += took
        ratios.append(max(len(got), 1) * batch / took / baselines[-1]["rows_per_s"])
    _check(first, baselines[0]["outputs"])  # a benchmark of a correct server: its answer is in-process's
    middle = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
    count = max(len(latencies), 1)
    return {"api": api, "batch": batch, "concurrency": concurrency, "requests": len(latencies),
            "requests_per_s": count / seconds, "rows_per_s": count * batch / seconds,
            "p50_ms": 1e3 * float(np.percentile(latencies or [0], 50)),
            "p99_ms": 1e3 * float(np.percentile(latencies or [0], 99)),
            "in_process_rows_per_s": baselines[middle]["rows_per_s"],
            "in_process_p50_ms": float(np.median([b["p50_ms"] for b in baselines])),
            "ratio": ratios[middle], "round_ratios": ratios}


def _load(call, concurrency: int, budget: Budget) -> tuple[list[float], float]:
    """`call` from `concurrency` threads until the budget is spent: latencies, seconds."""
    latencies, lock, stop = [], threading.Lock(), time.perf_counter() + budget.seconds
    tickets = iter(range(budget.requests))  # the request budget, shared by every client thread

    def client():
        local = []
        while time.perf_counter() < stop:
            with lock:
                if next(tickets, None) is None:
                    break
            began = time.perf_counter()
            call()
            local.append(time.perf_counter() - began)
        with lock:
            latencies.extend(local)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(client) for _ in range(concurrency)]:
            future.result()
    return latencies, time.perf_counter() - started


def grpc_predict(port, model, rows, batch):
    """A PredictionService stub on 127.0.0.1:`port` and a Predict request of `batch` rows."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 2**31 - 1)])
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for key, value in rows.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value[:batch]))
    return prediction_service_pb2_grpc.PredictionServiceStub(channel), request


def grpc_caller(port, model, rows, batch):
    """A function that sends one Predict of `batch` rows over gRPC to `model`."""
    from zoo.protocol import tensor_protos

    stub, request = grpc_predict(port, model, rows, batch)

    def call():
        # The zoo's decoder, as GrpcClient uses it: the answer's typed value fields (TF
        # Serving's default) in one numpy call each; tf.make_ndarray iterates them in Python
        # (~3 ms for digits' 4096 x 10 probabilities), a cost of the client, not the server.
        response = stub.Predict(request, timeout=60)
        return {k: tensor_protos.to_array(v) for k, v in response.outputs.items()}

    return call


def _rest_caller(port, model, rows, batch):
    # orjson on the client as on the server: numpy float32 written as its shortest text, and
    # the answer parsed in C, so the client's JSON work stays out of the server's numbers.
    import orjson

    body = orjson.dumps({"inputs": {k: v[:batch] for k, v in rows.items()}}, option=orjson.OPT_SERIALIZE_NUMPY)
    local = threading.local()

    def call():
        if getattr(local, "connection", None) is None:
            local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local.connection.request("POST", f"/v1/models/{model}:predict", body=body)
        response = local.connection.getresponse()
        payload = orjson.loads(response.read())
        if response.status != 200:
            raise RuntimeError(payload)
        outputs = payload["outputs"]
        return outputs if isinstance(outputs, dict) else {"prediction": outputs}

    return call


def _v2_rest_caller(port, model, rows, batch):
    """V2 over REST with the binary tensor data extension both ways: a JSON header, then the
    inputs' raw bytes; the answer's outputs read from its raw bytes (as tritonclient does)."""
    header = json.dumps({
        "inputs": [{"name": k, "datatype": "FP32", "shape": list(v[:batch].shape),
                    "parameters": {"binary_data_size": v[:batch].nbytes}} for k, v in rows.items()],
        "parameters": {"binary_data_output": True}}).encode()
    body = header + b"".join(np.ascontiguousarray(v[:batch], np.float32).tobytes() for v in rows.values())
    headers = {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"}
    local = threading.local()

    def call():
        if getattr(local, "connection", None) is None:
            local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local.connection.request("POST", f"/v2/models/{model}/infer", body=body, headers=headers)
        response = local.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(payload[:500])
        length = int(response.getheader("Inference-Header-Content-Length"))
        answer, offset, outputs = json.loads(payload[:length]), length, {}
        for output in answer["outputs"]:
            size = output["parameters"]["binary_data_size"]
            raw = memoryview(payload)[offset:offset + size]
            outputs[output["name"]] = _v2_array(output["datatype"], raw, output["shape"])
            offset += size
        return outputs

    return call


_V2_NUMPY = {"FP32": "<f4", "FP64": "<f8", "INT32": "<i4", "INT64": "<i8"}


def _v2_array(datatype: str, raw, shape) -> np.ndarray:
    """An output's raw bytes as an array. BYTES (a classifier's labels) stay one undecoded
    object: splitting them is the client's cost (a Python loop in tritonclient, ~1 ms for
    4,096 labels), not the server's, and `_check` compares only numbers, for every API."""
    if datatype == "BYTES":
        return np.array([bytes(raw)], dtype=object)
    return np.frombuffer(raw, _V2_NUMPY[datatype]).reshape(shape)


def _v2_grpc_caller(port, model, rows, batch):
    """V2 over gRPC (inference.GRPCInferenceService, tritonclient's protos) with raw contents."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 2**31 - 1)])
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    request = service_pb2.ModelInferRequest(model_name=model)
    for key, value in rows.items():
        request.inputs.add(name=key, datatype="FP32", shape=value[:batch].shape)
        request.raw_input_contents.append(np.ascontiguousarray(value[:batch], np.float32).tobytes())

    def call():
        response = stub.ModelInfer(request, timeout=60)
        return {output.name: _v2_array(output.datatype, raw, output.shape)
                for output, raw in zip(response.outputs, response.raw_output_contents)}

    return call


def _check(first: dict, expected: dict) -> None:
    """The server's answer must be the in-process answer."""
    for key, want in expected.items():
        got = np.asarray(first[key])
        if got.dtype.kind in "OSU":
            continue
        np.testing.assert_allclose(got, want[: len(got)], rtol=1e-4, atol=1e-4)


def _line(cell: dict) -> str:
    return (f"{cell['model']:<14} {cell['api']:<5} batch {cell['batch']:>4} x{cell['concurrency']:<3} "
            f"batching {'on ' if cell['batching'] else 'off'}  {cell['rows_per_s']:>11,.0f} rows/s  "
            f"p50 {cell['p50_ms']:7.2f} ms  p99 {cell['p99_ms']:7.2f} ms  ratio {cell['ratio']:.2f}")


def markdown(report: dict) -> str:
    """The serving report as Markdown."""
    lines = [
        "# Serving performance",
        "",
        f"Generated by `python -m bench serving` on {report['date']} ({report['machine']}). Client and "
        "server on the same machine; ratio = served rows/s / in-process `serving_default` rows/s at "
        "the same batch size (for batching-on cells of 1-row requests: / sequential in-process 1-row calls). "
        "Each cell alternates the in-process baseline (in the client process) and the served load "
        f"{report['rounds']} times; its ratio is the median of the rounds' ratios, its rates and "
        "latencies pool the served rounds. APIs: `grpc` and `rest` are TF Serving's (REST columnar JSON); "
        "`v2-rest` is the Open Inference Protocol over REST with binary tensor data both ways, `v2-grpc` over "
        "gRPC with raw contents (fewer cells: (batch, concurrency) in "
        f"{', '.join(f'{b}x{c}' for b, c in V2_CELLS)}). "
        "What each optimization bought, measured: [OPTIMIZATIONS.md](OPTIMIZATIONS.md).",
        "",
        *targets(report),
        "",
    ]
    if "lifecycle" in report:
        lines += [*lifecycle.markdown(report["lifecycle"]), ""]
    lines += [
        "## Every cell",
        "",
        "| model | API | batch | concurrency | batching | req/s | rows/s | p50 ms | p99 ms "
        "| in-process rows/s | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in report["cells"]:
        lines.append(f"| {c['model']} | {c['api']} | {c['batch']} | {c['concurrency']} | "
                     f"{'on' if c['batching'] else 'off'} | {c['requests_per_s']:,.0f} | {c['rows_per_s']:,.0f} | "
                     f"{c['p50_ms']:.2f} | {c['p99_ms']:.2f} | {c['in_process_rows_per_s']:,.0f} | {c['ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def targets(report: dict, model: str = "dnn-regressor") -> list[str]:
    """The issue's targets against this run's numbers (dnn-regressor), met or not."""
    def cell(api, batch, concurrency, batching):
        return next(c for c in report["cells"] if (c["model"], c["api"], c["batch"], c["concurrency"],
                                                     c["batching"]) == (model, api, batch, concurrency, batching))

    rows = []
    grpc_big, rest_big = cell("grpc", 4096, 1, False), cell("rest", 4096, 1, False)
    rows.append(("gRPC, 4096-row requests, concurrency 1", ">= 0.85x", f"{grpc_big['ratio']:.2f}x",
                 grpc_big["ratio"] >= 0.85))
    rows.append(("REST columnar, 4096-row requests, concurrency 1", ">= 0.5x", f"{rest_big['ratio']:.2f}x",
                 rest_big["ratio"] >= 0.5))
    batched = cell("grpc", 1, 32, True)
    rows.append(("gRPC, 1-row requests, concurrency 32, batching on", ">= 1.5x, p99 <= 20 ms",
                 f"{batched['ratio']:.2f}x, p99 {batched['p99_ms']:.1f} ms",
                 batched["ratio"] >= 1.5 and batched["p99_ms"] <= 20))
    single = cell("grpc", 1, 1, False)
    base_p50 = single["in_process_p50_ms"]
    rows.append(("gRPC, 1-row requests, concurrency 1", f"p50 <= {base_p50:.2f} + 1 ms",
                 f"p50 {single['p50_ms']:.2f} ms", single["p50_ms"] <= base_p50 + 1))
    if "lifecycle" in report:
        predict, roll = report["lifecycle"]["predict_csv"], report["lifecycle"]["rollout"]
        rows.append(("`zoo predict` 100k rows via gRPC", ">= 0.5x, memory flat",
                     f"{predict['ratio']:.2f}x, memory x{predict['memory_growth']:.2f} for 4x the rows",
                     predict["ratio"] >= 0.5 and predict["memory_growth"] < 1.2))
        rows.append(("rollout", "peak <= 2.2x steady, 0 failed", f"{roll['peak_ratio']:.2f}x, {roll['failed']} failed",
                     roll["peak_ratio"] <= 2.2 and roll["failed"] == 0))
    training = Path(__file__).resolve().parents[1] / "docs" / "training.json"
    if training.is_file():
        ratio = json.loads(training.read_text()).get("ratio")
        if ratio is not None:
            rows.append(("trainer epoch time (docs/training.json)", "<= 1.05x bare fit", f"{ratio:.2f}x",
                         ratio <= 1.05))
    rows += _v2_targets(report)
    for cell in report.get("logging", []):
        rows.append((f"request logging on, {cell['api']} {cell['batch']}-row x{cell['concurrency']} "
                     f"({cell['records_logged']:,} records written)", ">= 0.9x of logging off",
                     f"{cell['ratio']:.2f}x ({cell['on']:.2f} / {cell['off']:.2f})", cell["ratio"] >= 0.9))
    return ["## Targets", "", "| measure | target | this run | met |", "|---|---|---|---|",
            *(f"| {name} | {target} | {got} | {'yes' if met else '**no**'} |" for name, target, got, met in rows)]


def _v2_targets(report: dict) -> list[tuple]:
    """The Open Inference Protocol's targets: 4,096 rows over binary REST >= 0.5x in-process,
    over gRPC at least V1 gRPC's ratio for the same cell (both models, batching off)."""
    cells = {(c["model"], c["api"], c["batch"], c["concurrency"], c["batching"]): c for c in report["cells"]}
    rows = []
    for model in MODELS:
        rest, grpc = cells.get((model, "v2-rest", 4096, 1, False)), cells.get((model, "v2-grpc", 4096, 1, False))
        v1 = cells.get((model, "grpc", 4096, 1, False))
        if rest:
            rows.append((f"{model}: V2 binary REST, 4096 rows, concurrency 1", ">= 0.5x", f"{rest['ratio']:.2f}x",
                         rest["ratio"] >= 0.5))
        if grpc and v1:
            rows.append((f"{model}: V2 gRPC, 4096 rows, concurrency 1", f">= V1 gRPC ({v1['ratio']:.2f}x)",
                         f"{grpc['ratio']:.2f}x", grpc["ratio"] >= v1["ratio"]))
    return rows
