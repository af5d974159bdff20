"""The loop, end to end: a version served with request logging, traffic from a shifted
distribution (red wine with alcohol moved by two standard deviations) and unshifted traffic
over TF Serving's REST and gRPC APIs (sent by the walkthrough's python -m zoo.loop.demo_traffic), `zoo logs` to rows, `zoo drift` naming the shifted
feature first and failing while the unshifted rows pass, labels joined by request id,
`zoo retrain --traffic` publishing version 2 through the gate, and the server answering and
logging with version 2."""

from __future__ import annotations

import glob
import json
import math
import time

import grpc
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from zoo.cli import main
from zoo.datasets import load_dataset
from zoo.loop import demo_traffic
from zoo.training.config import TrainConfig
from zoo.training.trainer import train

MODEL = "dnn-regressor"
ROWS_PER_REQUEST = demo_traffic.ROWS_PER_REQUEST


def _wait_for_rows(prefix, tmp_path, expected: int) -> pd.DataFrame:
    """The log's rows once `expected` are written (the log is flushed every second)."""
    out = tmp_path / "all-rows.csv"
    deadline = time.monotonic() + 30
    while True:
        if glob.glob(f"{prefix}-*.tfrecord"):
            assert main(["logs", str(prefix), "--output", str(out), "--model", MODEL]) == 0
            frame = pd.read_csv(out) if out.exists() else pd.DataFrame()  # no rows flushed yet: no file
            if len(frame) >= expected or time.monotonic() > deadline:
                return frame
        elif time.monotonic() > deadline:
            raise AssertionError("no request log was written")
        time.sleep(0.5)


@pytest.fixture()
def logged_server(tmp_path, monkeypatch):
    """Version 1 (deliberately weak: one epoch, a tiny step), served with logging at rate 1."""
    from google.protobuf import text_format

    from zoo.server.app import ZooServer
    from zoo.server.config import single_model_config

    monkeypatch.chdir(tmp_path)
    models = tmp_path / "models"
    train(TrainConfig(model=MODEL, epochs=1, learning_rate=1e-5, hparams={"units": 32, "depth": 2},
                      models_dir=str(models)), verbose=0)
    prefix = tmp_path / "logs" / MODEL
    config = single_model_config(MODEL, str(models / MODEL))
    text_format.Parse(f'log_collector_config {{ type: "tfrecord" filename_prefix: "{prefix}" }} '
                      "sampling_config { sampling_rate: 1.0 }", config.model_config_list.config[0].logging_config)
    server = ZooServer(config, grpc_port=0, rest_port=0, poll_seconds=0.5).start()
    yield server, models, prefix
    server.stop()


def test_served_traffic_drifts_is_labelled_and_retrains_a_gated_version_the_server_then_serves(
        logged_server, tmp_path, capsys):
    server, models, prefix = logged_server
    data = load_dataset("red-wine", seed=42, task="regression")
    rows, shifted = demo_traffic.shifted_rows(data, {}), demo_traffic.shifted_rows(data, {"alcohol": 2.0})
    np.testing.assert_allclose(shifted["alcohol"] - rows["alcohol"], 2 * data.train.features["alcohol"].std(),
                               rtol=1e-5)
    plain_ids = demo_traffic.send(f"127.0.0.1:{server.rest_port}", MODEL, rows, prefix="plain", via="rest")
    shifted_ids = demo_traffic.send(f"127.0.0.1:{server.grpc_port}", MODEL, shifted, prefix="shifted", via="grpc")

    served = _wait_for_rows(prefix, tmp_path, 2 * len(data.test))
    assert len(served) == 2 * len(data.test)
    assert set(served["request_id"]) == set(plain_ids + shifted_ids) and set(served["version"]) == {1}
    plain = served[served["request_id"].str.startswith("plain")]
    shifted_rows = served[served["request_id"].str.startswith("shifted")]
    plain.to_csv(tmp_path / "plain.csv", index=False)
    shifted_rows.to_csv(tmp_path / "shifted.csv", index=False)
    # The logged inputs are the ones sent, in request and row order.
    ordered = shifted_rows.sort_values(["request_id", "row"], key=lambda c: c.map(
        lambda v: int(v.rsplit("-", 1)[1]) if isinstance(v, str) else v))
    np.testing.assert_allclose(ordered["alcohol"].to_numpy(), shifted["alcohol"], rtol=1e-6)

    # Drift: the shifted feature ranked first and past the threshold; the unshifted rows pass.
    capsys.readouterr()
    assert main(["drift", MODEL, str(tmp_path / "shifted.csv"), "--report", str(tmp_path / "shifted-report")]) == 1
    assert "drift: alcohol: PSI" in capsys.readouterr().out
    report = json.loads((tmp_path / "shifted-report" / "drift.json").read_text())
    assert report["features"][0]["name"] == "alcohol" and report["features"][0]["drifted"]
    assert report["version"] == 1 and report["rows"] == len(data.test)
    assert [o["name"] for o in report["outputs"]] == ["prediction"]  # the answers are compared too
    assert (tmp_path / "shifted-report" / "features.png").stat().st_size > 10_000
    assert "![Features, most drifted first](features.png)" in (tmp_path / "shifted-report" / "drift.md").read_text()
    assert main(["drift", MODEL, str(tmp_path / "plain.csv"), "--report", str(tmp_path / "plain-report")]) == 0
    plain_report = json.loads((tmp_path / "plain-report" / "drift.json").read_text())
    assert plain_report["drifted"] == [] and max(f["psi"] for f in plain_report["features"]) < 0.2

    # Ground truth arrives later, keyed by request id and row: only the shifted traffic is labelled.
    demo_traffic.truth(shifted_ids, data.test.target, "quality").to_csv(tmp_path / "truth.csv", index=False)
    labelled = tmp_path / "labelled.parquet"
    assert main(["logs", str(prefix), "--output", str(labelled), "--labels", str(tmp_path / "truth.csv")]) == 0
    joined = pd.read_parquet(labelled)
    assert len(joined) == len(data.test) and joined["request_id"].str.startswith("shifted").all()
    by_key = joined.set_index(["request_id", "row"])
    for position in (0, 17, len(data.test) - 1):
        key = (shifted_ids[position // ROWS_PER_REQUEST], position % ROWS_PER_REQUEST)
        assert by_key.loc[key, "quality"] == pytest.approx(data.test.target[position])
        assert by_key.loc[key, "alcohol"] == pytest.approx(shifted["alcohol"][position], rel=1e-6)

    # Retrain on it: trained on the older 70% of the traffic, gated on the test split and the recent 30%.
    better = tmp_path / "better.yaml"
    better.write_text("epochs: 12\nlearning_rate: 0.001\n")
    capsys.readouterr()
    status = main(["retrain", MODEL, "--traffic", str(labelled), "--config", str(better), "--models-dir", str(models)])
    said = capsys.readouterr().out
    recent = math.ceil(0.3 * len(data.test))
    assert f"on the test split ({len(data.test)} rows)" in said and f"on the recent traffic ({recent} rows)" in said
    assert status == 0, said  # version 1 is weak: the candidate must beat it on both
    card = json.loads((models / MODEL / "2" / "model_card.json").read_text())
    checks = card["retrain"]["checks"]
    assert checks["test split"]["passed"] and checks["recent traffic"]["passed"]
    assert checks["recent traffic"]["candidate"] < checks["recent traffic"]["served"]
    assert card["dataset"]["split"]["traffic_rows"] == len(data.test) - recent
    assert card["dataset"]["split"]["rows"]["train"] == len(data.train) + len(data.test) - recent
    assert (models / MODEL / "2" / "drift_profile.json").is_file()

    # The server picks version 2 up; its answers are logged as version 2.
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        status_stub = model_service_pb2_grpc.ModelServiceStub(channel)
        deadline = time.monotonic() + 30
        while True:
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = MODEL
            states = {s.version: s.state for s in status_stub.GetModelStatus(request, timeout=10).model_version_status}
            if states.get(2) == get_model_status_pb2.ModelVersionStatus.AVAILABLE:
                break
            assert time.monotonic() < deadline, f"version 2 not served: {states}"
            time.sleep(0.5)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        for name, values in shifted.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(values[:4]))
        response = stub.Predict(request, timeout=30, metadata=[("x-request-id", "after-retrain")])
        assert response.model_spec.version.value == 2
    after = _wait_for_rows(prefix, tmp_path, 2 * len(data.test) + 4)
    assert set(after[after["request_id"] == "after-retrain"]["version"]) == {2}
