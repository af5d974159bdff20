"""`zoo serve` as users start it: a real process with TF Serving's flags and config files."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.serving.conftest import Server, write_config

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.embedded


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _zoo():
    script = Path(sys.executable).parent / "zoo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "zoo.cli"]


def test_zoo_serve_serves_a_config_file_with_batching_and_metrics(repository, tmp_path):
    config_file = write_config(repository.root, ["half_plus_two"], path=tmp_path / "models.config")
    grpc_port, rest_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [*_zoo(), "serve", f"--model_config_file={config_file}", f"--port={grpc_port}",
         "--rest_api_port", str(rest_port), "--enable_batching",
         f"--batching_parameters_file={REPO / 'serving/batching.config'}",
         f"--monitoring_config_file={REPO / 'serving/monitoring.config'}",
         "--file_system_poll_wait_seconds=1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    server = Server(f"127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if server.rest("GET", "/v1/models/half_plus_two", timeout=2)[0] == 200:
                    break
            except OSError:
                time.sleep(0.25)
        assert server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [1.0, 2.0, 5.0]}) == (
            200, {"predictions": [2.5, 3.0, 4.5]})
        status, metrics = server.rest("GET", "/monitoring/prometheus/metrics")
        assert status == 200 and ':tensorflow:serving:request_latency_count{model_name="half_plus_two",API="predict",entrypoint="REST"} 1' in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "serving half_plus_two: gRPC on 127.0.0.1:" in output
    assert "half_plus_two version 1 is available" in output
    assert "oneDNN" not in output  # TensorFlow's start-up chatter stays out of the log


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "nothing to serve: give --model_config_file, or --model_name and --model_base_path"),
        (["--model_config_file=missing.config"], "cannot read missing.config"),
        (["--model_base_path=x", "--batching_parameters_file=serving/batching.config"],
         "--batching_parameters_file needs --enable_batching"),
    ],
)
def test_zoo_serve_reports_bad_flags_in_one_line(capsys, monkeypatch, argv, message):
    from zoo.cli import main

    monkeypatch.chdir(REPO)
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: ") and message in err and err.count("\n") == 1


def test_a_malformed_config_file_names_the_file_and_line(tmp_path, capsys):
    from zoo.cli import main

    bad = tmp_path / "models.config"
    bad.write_text("model_config_list {\n  config { name: 'x' base_pth: '/models/x' }\n}\n")
    assert main(["serve", f"--model_config_file={bad}"]) == 2
    err = capsys.readouterr().err
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig: 2:" in err  # TF Serving's words
    assert "base_pth" in err and str(bad) in err


def test_the_shipped_serving_configs_parse_with_tf_servings_field_names():
    from zoo.server.config import load_batching_parameters, load_monitoring_config

    batching = load_batching_parameters(REPO / "serving/batching.config")
    assert batching.max_batch_size.value == 4096 and batching.max_execution_batch_size.value == 256
    assert batching.enable_large_batch_splitting.value and batching.num_batch_threads.value == 2
    monitoring = load_monitoring_config(REPO / "serving/monitoring.config")
    assert monitoring.prometheus_config.enable and monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"


@pytest.mark.parametrize(("file_text", "flag", "named"), [
    ('model_config_list { config { name: "m" base_path: "/models/m" model_platform: "tensorflow" '
     'logging_config { sampling_config { sampling_rate: 1.0 per_task_sampling_configs { sampling_rate: 0.5 } } } } }',
     "--model_config_file", "model_config_list.config[0].logging_config.sampling_config.per_task_sampling_configs"),
    ("max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 8", "--batching_parameters_file",
     "allowed_batch_sizes"),
    ("max_batch_size { value: 8 } pad_variable_length_inputs: true", "--batching_parameters_file",
     "pad_variable_length_inputs"),
])
def test_a_config_field_zoo_serve_does_not_honour_is_refused_by_name(tmp_path, capsys, file_text, flag, named):
    from zoo.cli import main

    config = tmp_path / "file.config"
    config.write_text(file_text)
    argv = ["serve", f"{flag}={config}"]
    if flag == "--batching_parameters_file":
        argv += ["--enable_batching", "--model_base_path", str(tmp_path), "--model_name", "m"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not honoured by zoo serve" in err and named in err and str(config) in err


def test_tf_servings_production_flags_are_taken_and_the_substitutes_said(tmp_path, caplog):
    from zoo.cli import build_parser
    from zoo.server.app import server_from_args

    args = build_parser().parse_args([
        "serve", "--model_name=m", f"--model_base_path={tmp_path}", "--rest_api_num_threads=5",
        "--enable_per_model_batching_parameters", f"--thread_pool_factory_config_file={tmp_path / 'pools.config'}"])
    with caplog.at_level("WARNING", logger="zoo.server"):
        server = server_from_args(args)
    assert server._rest_executor._max_workers == 5
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "--enable_per_model_batching_parameters" in said and "--thread_pool_factory_config_file" in said
    server._rest_executor.shutdown()
