"""Peak memory of one request against its size: what `zoo serve` holds while it decodes.

    python -m bench memory            # docs/MEMORY.md and docs/memory.json
    python -m bench memory --smoke    # small requests: checks the harness

A `zoo serve` process serves an identity model (x: float32[-1] -> y = x). Requests of
increasing size go one at a time, over REST (JSON, columnar: random float32 numbers, and
`1.5` over and over, 4 bytes a number: the most numbers a body byte can carry) and over gRPC
(a TensorProto), a
fresh server for each; before each request, the server's resident memory, and after it the
process's high-water mark (VmHWM, which only grows: requests go smallest first, so each new
mark is that request's).
The peak over the resting memory, divided by the request's size, is the factor the memory
budget (zoo/server/edge/memory_budget.py) estimates with.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import serving

SIZES = (250_000, 1_000_000, 2_500_000, 5_000_000)  # numbers a request
SMOKE_SIZES = (10_000, 50_000)


def run(*, smoke: bool = False, out_dir: str = "docs") -> dict:
    """Measure peak memory per request over REST and gRPC; write MEMORY.md and memory.json."""
    import tensorflow as tf

    report = {"date": datetime.date.today().isoformat(), "machine": serving._machine(), "smoke": smoke, "rows": []}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-memory-") as scratch:
        models_dir = Path(scratch) / "models"
        module = _Identity()
        tf.saved_model.save(module, str(models_dir / "identity" / "1"), signatures={"serving_default": module.call})
        config = serving.write_model_config_file(models_dir / "models.config", {"identity": models_dir / "identity"})
        for api in ("rest", "rest-short", "grpc"):  # each in a fresh server: the high-water mark only grows
            with _server(config) as (pid, grpc_port, rest_port):
                for count in (SMOKE_SIZES if smoke else SIZES):
                    row = _measure(api, pid, grpc_port if api == "grpc" else rest_port, count)
                    report["rows"].append(row)
                    ratio = f"x{row['ratio']:.1f}" if row["ratio"] is not None else "(below an earlier peak)"
                    print(f"{api:<10} {count:>10,} numbers  request {row['request_mb']:8.1f} MB  peak "
                          f"+{row['peak_mb']:8.1f} MB  {ratio}", flush=True)
    if not smoke:
        serving.write_report(Path(out_dir), "memory.json", report, "MEMORY.md", markdown(report))
    return report


@contextlib.contextmanager
def _server(config: Path):
    grpc_port, rest_port = serving.free_port(), serving.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", "serve", f"--model_config_file={config}", f"--port={grpc_port}",
         f"--rest_api_port={rest_port}", "--file_system_poll_wait_seconds=0",
         f"--request_memory_budget_bytes={8 << 30}", f"--rest_api_max_body_bytes={1 << 30}",
         "--rest_api_timeout_in_ms=300000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not serving.model_available(rest_port, "identity"):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("zoo serve did not come up")
            time.sleep(0.2)
        yield process.pid, grpc_port, rest_port
    finally:
        process.terminate()
        process.wait(timeout=60)


class _Identity:
    """y = x, as a tf.Module (built lazily: importing this module needs no TensorFlow)."""

    def __new__(cls):
        import tensorflow as tf

        class Identity(tf.Module):
            @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
            def call(self, x):
                return {"y": tf.identity(x)}

        return Identity()


def _status(pid: int) -> dict[str, float]:
    with open(f"/proc/{pid}/status") as status:
        return {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status
                if line.startswith(("VmRSS:", "VmHWM:"))}


def _measure(api: str, pid: int, port: int, count: int) -> dict:
    values = np.random.default_rng(count).random(count, dtype=np.float32)
    if api == "rest":
        import orjson

        payload = orjson.dumps({"inputs": {"x": values}}, option=orjson.OPT_SERIALIZE_NUMPY)
        call = _rest_call(port, payload)
    elif api == "rest-short":  # "1.5,": 4 bytes a number, each still a Python float (the worst case per byte)
        values = np.full(count, 1.5, np.float32)
        payload = b'{"inputs": {"x": [' + b",".join([b"1.5"] * count) + b"]}}"
        call = _rest_call(port, payload)
    else:
        stub, request = serving.grpc_predict(port, "identity", {"x": values}, count)
        payload = request.SerializeToString()

        def call():
            return np.asarray(stub.Predict(request, timeout=300).outputs["y"].float_val, np.float32)
    time.sleep(0.5)
    before = _status(pid)
    answer = call()
    after = _status(pid)
    assert len(answer) == count and np.allclose(answer[:10], values[:10]), "the answer is not the request's"
    peak = max(after["VmHWM"], before["VmHWM"]) - before["VmRSS"]
    request_mb = len(payload) / 2**20
    return {"api": api, "numbers": count, "request_mb": request_mb, "peak_mb": peak,
            "ratio": peak / request_mb if after["VmHWM"] > before["VmHWM"] else None}


def _rest_call(port: int, payload: bytes):
    def call():
        import orjson

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        connection.request("POST", "/v1/models/identity:predict", body=payload)
        response = connection.getresponse()
        body = orjson.loads(response.read())
        connection.close()
        if response.status != 200:
            raise RuntimeError(body)
        return np.asarray(body["outputs"], np.float32)

    return call


def markdown(report: dict) -> str:
    """The memory report as Markdown."""
    lines = ["# Peak memory per request", "",
             f"Generated by `python -m bench memory` on {report['date']} ({report['machine']}). One request at a "
             "time to `zoo serve` serving an identity model; peak = the server's high-water mark after the "
             "request over its resident memory before it. The answer is as large as the request (its JSON "
             "text or TensorProto is part of the peak). A REST body that is one large array of numbers is "
             "decoded a piece at a time straight into the input's dtype (zoo/server/frontends/json_numbers.py); parsed "
             "whole, as before 2026-12-04 and still for bodies of other shapes, the same requests cost 6.5-17x. "
             "The smallest requests' ratios are mostly the fixed cost of a piece and a thread.", "",
             "| API | numbers | request MB | peak MB over resting | peak / request |", "|---|---|---|---|---|"]
    for row in report["rows"]:
        ratio = f"{row['ratio']:.1f}x" if row["ratio"] is not None else "(below an earlier peak)"
        lines.append(f"| {row['api']} | {row['numbers']:,} | {row['request_mb']:.1f} | {row['peak_mb']:.1f} | "
                     f"{ratio} |")
    return "\n".join(lines) + "\n"
