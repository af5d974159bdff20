"""Retraining with a gate, version labels, rollback and retention, ending at a live server."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from zoo.cli import main
from zoo.errors import ConfigError
from zoo.repository.version_labels import labels, promote, prune, rollback, version_rows
from zoo.training.config import TrainConfig
from zoo.training.retrain import retrain
from zoo.training.trainer import train


def _snapshot(models_dir):
    return sorted(str(p.relative_to(models_dir)) for p in models_dir.rglob("*") if ".lock" not in p.name)


@pytest.fixture()
def served(tmp_path, monkeypatch):
    """models/dnn-regressor/1: a deliberately weak wine model (one epoch, a tiny step)."""
    monkeypatch.chdir(tmp_path)
    models = tmp_path / "models"
    train(TrainConfig(model="dnn-regressor", epochs=1, learning_rate=1e-6, hparams={"units": 16, "depth": 1},
                      models_dir=str(models)), verbose=0)
    return models


def _yaml(tmp_path, name, **values):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_a_better_candidate_is_published_and_a_worse_one_is_not(served, tmp_path):
    better = retrain(served, "dnn-regressor", config_file=_yaml(tmp_path, "better.yaml", epochs=15, learning_rate=1e-3))
    assert better.published and better.version_dir.name == "2"
    card = json.loads((better.version_dir / "model_card.json").read_text())
    assert card["retrain"]["served_version"] == 1 and card["retrain"]["metric"] == "mae"
    assert card["retrain"]["candidate"] < card["retrain"]["served"]
    # The gate scored the candidate as it now serves: the exported SavedModel, on the same rows.
    from zoo.training.evaluation import evaluate_version

    exported = evaluate_version(served, "dnn-regressor", 2)
    assert exported["rows"] == card["retrain"]["held_out_rows"]
    assert exported["metrics"]["mae"] == pytest.approx(card["retrain"]["candidate"], rel=1e-5)

    before = _snapshot(served)
    worse = retrain(served, "dnn-regressor", config_file=_yaml(tmp_path, "worse.yaml", epochs=1, learning_rate=1e-6))
    assert not worse.published and "not published: mae" in worse.reason
    assert str(worse.run_dir) in worse.reason and (worse.run_dir / "model.keras").is_file()
    assert _snapshot(served) == before  # nothing in models/ changed

    forced = retrain(served, "dnn-regressor", config_file=_yaml(tmp_path, "worse.yaml", epochs=1, learning_rate=1e-6),
                     force=True)
    assert forced.published and forced.comparison["forced"] and "published (forced)" in forced.reason


def test_retraining_on_a_csv_with_other_columns_fails_before_training(served, tmp_path):
    frame = pd.DataFrame({"volatile_acidity": [0.5], "colour": ["red"], "quality": [5]})
    frame.to_csv(tmp_path / "new.csv", index=False)
    before, runs = _snapshot(served), sorted((tmp_path / "runs").rglob("metrics.json"))
    with pytest.raises(ConfigError, match=r"missing column\(s\): alcohol, .*fixed_acidity.*; unexpected column\(s\): colour$"):
        retrain(served, "dnn-regressor", data=str(tmp_path / "new.csv"))
    assert _snapshot(served) == before
    assert sorted((tmp_path / "runs").rglob("metrics.json")) == runs  # and nothing was trained


def test_retraining_on_new_rows_from_a_csv(served, tmp_path, load):
    data = load("red-wine")
    frame = pd.DataFrame({k: data.train.features[k] for k in data.feature_names})
    frame["quality"] = data.train.target
    frame.to_csv(tmp_path / "new.csv", index=False)
    result = retrain(served, "dnn-regressor", data=str(tmp_path / "new.csv"),
                     config_file=_yaml(tmp_path, "c.yaml", epochs=10, learning_rate=1e-3))
    assert result.published
    card = json.loads((result.version_dir / "model_card.json").read_text())
    assert card["dataset"]["name"] == "csv" and card["dataset"]["target"] == "quality"


def test_labels_rollback_versions_and_retention(served, tmp_path, capsys):
    for _ in range(4):
        retrain(served, "dnn-regressor", force=True, config_file=_yaml(tmp_path, "q.yaml", epochs=1))
    promote(served, "dnn-regressor", 4)
    promote(served, "dnn-regressor", 5, label="canary")
    assert labels(served, "dnn-regressor") == {"stable": 4, "canary": 5}
    assert rollback(served, "dnn-regressor") == (4, 3)
    rows = {row.version: row for row in version_rows(served, "dnn-regressor")}
    assert rows[3].labels == ("stable",) and rows[5].labels == ("canary",) and rows[5].served
    # Served: each labelled version and the one before it (TF Serving moves a label only to a
    # loaded version, so a rollback's target must be loaded), and the newest.
    assert [v for v, row in sorted(rows.items()) if row.served] == [2, 3, 4, 5]
    assert prune(served, "dnn-regressor", keep=1) == [1]
    assert [row.version for row in version_rows(served, "dnn-regressor")] == [5, 4, 3, 2]

    assert main(["versions", "dnn-regressor", "--models-dir", str(served)]) == 0
    out = capsys.readouterr().out
    assert "stable" in out and "canary" in out and out.count("\n") == 5
    assert main(["rollback", "dnn-regressor", "--models-dir", str(served)]) == 0  # stable: 3 -> 2
    assert main(["rollback", "dnn-regressor", "--models-dir", str(served)]) == 2
    assert "'stable' is at version 2, the oldest there is" in capsys.readouterr().err
    assert main(["promote", "dnn-regressor", "9", "--models-dir", str(served)]) == 2


def test_a_running_server_follows_promotion_and_rollback(served, tmp_path):
    from tests.serving.conftest import Server
    from zoo.server.app import ZooServer
    from zoo.server.config import load_model_config_file

    retrain(served, "dnn-regressor", force=True, config_file=_yaml(tmp_path, "b.yaml", epochs=5, learning_rate=1e-3))
    promote(served, "dnn-regressor", 2)
    config_file = served / "models.config"
    from zoo.server.plane.manager import LoadOptions

    # A config that labels versions at start needs TF Serving's flag (docker-compose.yml sets it).
    embedded = ZooServer(load_model_config_file(config_file), config_dir=served, grpc_port=0, rest_port=0,
                         poll_seconds=0.2, config_file=config_file, config_poll_seconds=0.2,
                         load_options=LoadOptions(allow_unavailable_labels=True)).start()
    server = Server(f"127.0.0.1:{embedded.rest_port}", f"127.0.0.1:{embedded.grpc_port}", embedded)
    try:
        row = {"fixed_acidity": 7.4, "volatile_acidity": 0.7, "citric_acid": 0.0, "residual_sugar": 1.9,
               "chlorides": 0.076, "free_sulfur_dioxide": 11.0, "total_sulfur_dioxide": 34.0,
               "density": 0.9978, "pH": 3.51, "sulphates": 0.56, "alcohol": 9.4}

        def stable():
            return server.rest("POST", "/v1/models/dnn-regressor/labels/stable:predict", {"instances": [row]})

        def version(v):
            return server.rest("POST", f"/v1/models/dnn-regressor/versions/{v}:predict", {"instances": [row]})

        assert stable() == version(2) and stable()[0] == 200
        assert version(1)[1] != version(2)[1]
        rollback(served, "dnn-regressor")
        deadline = time.monotonic() + 30
        # The server re-reads models.config; version 1 stayed loaded (the version before a
        # labelled one is kept for this), so TF Serving's rule lets the label move to it.
        while not (stable()[0] == 200 and stable() == version(1)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stable()[0] == 200 and stable() == version(1)

        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        request = predict_pb2.PredictRequest()
        request.model_spec.name = "dnn-regressor"
        request.model_spec.version_label = "stable"
        for key, value in row.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(np.array([value], np.float32)))
        with grpc.insecure_channel(server.grpc_address) as channel:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
        assert response.model_spec.version.value == 1
    finally:
        embedded.stop()


def test_traffic_without_labels_or_with_a_feature_missing_fails_before_training(served, tmp_path):
    frame = pd.DataFrame({"alcohol": [10.0, 11.0], "request_id": ["a", "b"]})
    frame.to_csv(tmp_path / "traffic.csv", index=False)
    before, runs = _snapshot(served), sorted((tmp_path / "runs").rglob("model.keras"))
    with pytest.raises(ConfigError, match=r"traffic.csv lacks column\(s\) .*fixed_acidity.*quality \(the label\)"):
        retrain(served, "dnn-regressor", traffic=str(tmp_path / "traffic.csv"))
    full = pd.read_csv(tmp_path / "traffic.csv").assign(
        **{name: 0.5 for name in ("fixed_acidity", "volatile_acidity", "citric_acid", "residual_sugar", "chlorides",
                                  "free_sulfur_dioxide", "total_sulfur_dioxide", "density", "pH", "sulphates")},
        quality=[5, None])
    full.to_csv(tmp_path / "traffic.csv", index=False)
    with pytest.raises(ConfigError, match=r"1 row\(s\) have no label in 'quality'; join the labels first"):
        retrain(served, "dnn-regressor", traffic=str(tmp_path / "traffic.csv"))
    assert _snapshot(served) == before and sorted((tmp_path / "runs").rglob("model.keras")) == runs
