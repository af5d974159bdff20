"""`zoo train --strategy multi-worker`: two worker processes on 127.0.0.1, one cluster, one version."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from zoo.cli import main
from zoo.errors import ConfigError
from zoo.training.distribution import role


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_two_workers_train_one_model_and_only_the_chief_exports(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    command = [sys.executable, "-m", "zoo", "train", "dnn-regressor", "--strategy", "multi-worker",
               "--epochs", "2", "--set", "units=16", "--verbose", "0",
               "--output-dir", "run", "--models-dir", "models"]
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    outputs = []
    for worker in workers:
        try:
            outputs.append(worker.communicate(timeout=240)[0])
        except subprocess.TimeoutExpired:
            for other in workers:
                other.kill()
            pytest.fail("the workers did not finish: " + "\n".join(o for o in outputs))
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output

    # Exactly one version, published by the chief (worker 0); worker 1 exported into scratch.
    assert sorted(p.name for p in (tmp_path / "models" / "dnn-regressor").iterdir()) == ["1"]
    assert "version: models/dnn-regressor/1" in outputs[0]
    assert "version:" not in outputs[1]
    worker_run = tmp_path / "run" / "workers" / "worker-1"
    assert not (worker_run / "scratch-models").exists()

    # One synchronous model: both workers saw every batch split in two and agree on the result.
    chief_metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    worker_metrics = json.loads((worker_run / "metrics.json").read_text())
    assert chief_metrics["replicas_in_sync"] == 2
    assert chief_metrics["test"] == pytest.approx(worker_metrics["test"])
    assert chief_metrics["epochs_run"] == 2
    card = json.loads((tmp_path / "models" / "dnn-regressor" / "1" / "model_card.json").read_text())
    assert card["config"]["strategy"] == "multi-worker"


def test_tf_config_is_checked_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(["train", "dnn-regressor", "--strategy", "multi-worker", "--epochs", "1"]) != 0
    assert "needs TF_CONFIG" in capsys.readouterr().err
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}')
    with pytest.raises(ConfigError, match=r"task.index 3 is not in cluster.worker"):
        role("multi-worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG must be JSON"):
        role("multi-worker")
    assert not (tmp_path / "models").exists() and not (tmp_path / "runs").exists()


def test_the_chief_is_tf_s_chief_or_else_worker_0(monkeypatch):
    def of(cluster, task_type, index):
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}}))
        return role("multi-worker").is_chief

    workers = {"worker": ["a:1", "b:1"]}
    assert of(workers, "worker", 0) and not of(workers, "worker", 1)
    with_chief = {"chief": ["c:1"], "worker": ["a:1", "b:1"]}
    assert of(with_chief, "chief", 0) and not of(with_chief, "worker", 0)
