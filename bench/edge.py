"""The REST edge benchmark: which HTTP server library, measured, and floods it must survive.

    python -m bench edge                      # every candidate; docs/EDGE.md and docs/edge.json
    python -m bench edge --before 89ef68f     # also the server of that commit (from a git worktree)
    python -m bench edge --smoke              # a handful of requests and 50-connection floods

Each candidate serves the same models with the zoo's own REST application, in its own
process: `zoo serve` (uvicorn, httptools, uvloop), the same application under uvicorn's h11
parser on asyncio, under hypercorn, and under granian (bench/edge_servers.py), and, with
--before, `zoo serve` as it was at a commit (the thread-a-connection http.server the edge
replaced). For each: REST cells of dnn-regressor (1 and 64 rows at concurrency 1, 8 and 32;
4,096 rows at 1) as `python -m bench serving` measures them (ratio = served rows/s over
in-process rows/s, alternating rounds), then two floods of FLOOD connections:

- slow headers: each connection sends a request line and a header line every second, never
  finishing; meanwhile a new client asks every 0.25 s on a fresh connection;
- idle keep-alive: each connection sends one request, reads its answer, and sits idle;
  then a new client asks.

Reported: the new client's answers and their worst latency, how many flooding connections
got their answer (idle) or were dropped by the header deadline (slow; `zoo serve` runs with
--rest_api_header_timeout_seconds=5 here), and the server's resident memory per connection.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import serving

MODEL = "dnn-regressor"
CELLS = ((1, 1), (1, 8), (1, 32), (64, 1), (64, 8), (64, 32), (4096, 1))
FLOOD, SMOKE_FLOOD = 2000, 50
HEADER_DEADLINE = 5.0  # zoo serve's, for the slow-header flood (the default is 30 s)


def run(*, smoke: bool = False, before: str | None = None, out_dir: str = "docs") -> dict:
    """Measure every candidate; write EDGE.md and edge.json (not in a smoke run)."""
    budget = serving.SMOKE if smoke else serving.FULL
    flood = SMOKE_FLOOD if smoke else FLOOD
    report = {"date": datetime.date.today().isoformat(), "machine": serving._machine(), "smoke": smoke,
              "flood": flood, "rounds": budget.rounds, "candidates": []}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-edge-") as scratch:
        models_dir = Path(scratch) / "models"
        rows = serving.export_models(models_dir, [MODEL])[MODEL]
        config = serving.write_model_config_file(models_dir / "models.config", {MODEL: models_dir / MODEL})
        function = serving.signature_function(models_dir / MODEL / "1")
        body = json.dumps({"instances": [{k: float(v[0]) for k, v in rows.items()}]}).encode()
        for name, command, cwd in _candidates(config, Path(scratch), before):
            port = serving.free_port()
            with _process([*command(port)], port, cwd) as pid:
                result = {"name": name, "cells": []}
                for batch, concurrency in CELLS:
                    cell = serving._cell(function, "rest", port, MODEL, rows, batch, concurrency, budget)
                    result["cells"].append({k: cell[k] for k in ("batch", "concurrency", "ratio", "p50_ms", "p99_ms",
                                                                  "rows_per_s")})
                    print(f"{name:<40} {batch:>4} x{concurrency:<3} ratio {cell['ratio']:.2f}  "
                          f"p50 {cell['p50_ms']:.2f} ms", flush=True)
                result["slow_headers"] = slow_header_flood(port, pid, flood, body)
                print(f"{name:<40} slow headers {result['slow_headers']}", flush=True)
                result["idle"] = idle_flood(port, pid, flood, body)
                print(f"{name:<40} idle {result['idle']}", flush=True)
            report["candidates"].append(result)
    if not smoke:
        serving.write_report(Path(out_dir), "edge.json", report, "EDGE.md", markdown(report))
    return report


def _candidates(config: Path, scratch: Path, before: str | None):
    """(name, command for a port, working folder) for each server measured."""
    python = sys.executable

    def zoo_serve(*extra):
        return lambda port: [python, "-m", "zoo", "serve", f"--model_config_file={config}",
                             f"--port={serving.free_port()}", f"--rest_api_port={port}",
                             "--file_system_poll_wait_seconds=0", *extra]

    if before:
        worktree = scratch / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), before], check=True,
                       capture_output=True)
        yield f"before: zoo serve at {before} (http.server)", zoo_serve(), worktree
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], check=False, capture_output=True)
    yield "zoo serve: uvicorn + httptools + uvloop", zoo_serve(
        f"--rest_api_header_timeout_seconds={HEADER_DEADLINE}"), None
    for candidate in ("uvicorn-h11", "hypercorn", "granian"):
        yield (f"{candidate} (same application)",
               lambda port, c=candidate: [python, "-m", "bench.edge_servers", c, str(config), str(port)], None)


@contextlib.contextmanager
def _process(command: list[str], port: int, cwd: Path | None):
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not serving.model_available(port, MODEL):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{' '.join(command[:4])} did not come up")
            time.sleep(0.2)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def _good_request(port: int, body: bytes, timeout: float = 5.0) -> float | None:
    """Seconds for one predict on a fresh connection, or None if it got no 200."""
    started = time.monotonic()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        connection.request("POST", f"/v1/models/{MODEL}:predict", body=body)
        response = connection.getresponse()
        response.read()
        connection.close()
    except OSError:
        return None
    return time.monotonic() - started if response.status == 200 else None


@contextlib.contextmanager
def _connections(port: int, count: int):
    sockets = []
    try:
        for _ in range(count):
            try:
                sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def _send_all(sockets, data: bytes) -> int:
    sent = 0
    for sock in sockets:
        try:
            sock.sendall(data)
            sent += 1
        except OSError:
            pass
    return sent


def _closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def _good_clients(port: int, body: bytes, seconds: float, every: float = 0.25) -> dict:
    latencies, failed, stop = [], 0, time.monotonic() + seconds
    while time.monotonic() < stop:
        took = _good_request(port, body)
        if took is None:
            failed += 1
        else:
            latencies.append(took)
        time.sleep(every)
    return {"new_client_ok": len(latencies), "new_client_failed": failed,
            "new_client_worst_s": round(max(latencies), 3) if latencies else None}


def slow_header_flood(port: int, pid: int, count: int, body: bytes) -> dict:
    """Connections that never finish their headers, and a new client meanwhile."""
    before = _rss_mb(pid)
    with _connections(port, count) as sockets:
        opened = time.monotonic()
        _send_all(sockets, f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
        result = {"opened": len(sockets)}
        good, stop = [], opened + 3.0
        while time.monotonic() < stop:
            _send_all(sockets, b"X-Slow: 1\r\n")
            good.append(_good_clients(port, body, 1.0))
        result["rss_mb_per_1000"] = round((_rss_mb(pid) - before) * 1000 / max(len(sockets), 1), 1)
        result.update(new_client_ok=sum(g["new_client_ok"] for g in good),
                      new_client_failed=sum(g["new_client_failed"] for g in good),
                      new_client_worst_s=max((g["new_client_worst_s"] or 0) for g in good))
        time.sleep(max(0.0, opened + HEADER_DEADLINE + 1.5 - time.monotonic()))
        _send_all(sockets, b"X-Slow: 1\r\n")
        result[f"dropped_after_{HEADER_DEADLINE + 1.5:g}s"] = sum(_closed(sock) for sock in sockets)
    return result


def idle_flood(port: int, pid: int, count: int, body: bytes) -> dict:
    """Connections that ask once and then sit idle, and a new client meanwhile."""
    before = _rss_mb(pid)
    request = (f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
               f"{len(body)}\r\n\r\n").encode() + body
    with _connections(port, count) as sockets:
        _send_all(sockets, request)
        answered = _answers(sockets, deadline=time.monotonic() + 20)
        result = {"opened": len(sockets), "flood_answered_200": answered,
                  "rss_mb_per_1000": round((_rss_mb(pid) - before) * 1000 / max(len(sockets), 1), 1)}
        result.update(_good_clients(port, body, 2.0))
    return result


def _answers(sockets, deadline: float) -> int:
    """How many sockets received a response starting with a 200, by the deadline."""
    selector, ok = selectors.DefaultSelector(), 0
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    pending = len(sockets)
    while pending and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            ok += data.startswith(b"HTTP/1.1 200")
            selector.unregister(key.fileobj)
            pending -= 1
    selector.close()
    for sock in sockets:
        sock.setblocking(True)
    return ok


def markdown(report: dict) -> str:
    """The edge report as Markdown."""
    cells = [f"{b} row{'s' if b > 1 else ''} x{c}" for b, c in CELLS]
    lines = [
        "# The REST edge: server libraries and floods",
        "",
        f"Generated by `python -m bench edge` on {report['date']} ({report['machine']}); client and servers on "
        f"the same machine. Ratios: served rows/s over in-process `serving_default` rows/s ({MODEL}, REST, "
        f"batching off), the median of {report['rounds']} alternating rounds. Floods: {report['flood']:,} "
        "connections.",
        "",
        "| server | " + " | ".join(cells) + " |",
        "|---|" + "---|" * len(cells),
    ]
    for candidate in report["candidates"]:
        ratios = " | ".join(f"{c['ratio']:.2f}" for c in candidate["cells"])
        lines.append(f"| {candidate['name']} | {ratios} |")
    lines += ["", "| server | slow headers: new client ok / failed, worst s | slow: dropped by the deadline "
              "| slow: MB per 1,000 | idle: flood answered | idle: new client ok / failed, worst s "
              "| idle: MB per 1,000 |", "|---|---|---|---|---|---|---|"]
    for candidate in report["candidates"]:
        slow, idle = candidate["slow_headers"], candidate["idle"]
        dropped = next(v for k, v in slow.items() if k.startswith("dropped_after"))
        lines.append(
            f"| {candidate['name']} | {slow['new_client_ok']} / {slow['new_client_failed']}, "
            f"{slow['new_client_worst_s']} | {dropped} of {slow['opened']} | {slow['rss_mb_per_1000']} | "
            f"{idle['flood_answered_200']} of {idle['opened']} | {idle['new_client_ok']} / "
            f"{idle['new_client_failed']}, {idle['new_client_worst_s']} | {idle['rss_mb_per_1000']} |")
    return "\n".join(lines) + "\n"
