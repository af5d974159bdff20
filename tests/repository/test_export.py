"""The model repository: integer versions, atomic publication, models.config, warm-up, cards."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from zoo import repository
from zoo.registry import create_model, model_info
from zoo.repository.export import WARMUP_FILE, export_model


@pytest.fixture(scope="module")
def wine_model(load):
    data = load("red-wine")
    return data, create_model("dnn-regressor", data, units=8, depth=1)


def _export(wine_model, models_dir, name="dnn-regressor"):
    data, model = wine_model
    names = [t.name for t in model.inputs]
    return export_model(
        model, name=name, task="regression", class_names=None, models_dir=models_dir,
        card={"task": "regression", "dataset": data.describe()},
        warmup_rows={k: v[:4] for k, v in data.test.select(names).items()},
    )


def _serving_config(models_dir):
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((models_dir / "models.config").read_text(), config)
    return config


def test_versions_are_integers_counting_up(wine_model, models_dir):
    assert _export(wine_model, models_dir).name == "1"
    assert _export(wine_model, models_dir).name == "2"
    assert repository.versions(models_dir / "dnn-regressor") == [1, 2]
    # Nothing but the versions is left beside them: the staging folders were renamed.
    assert sorted(p.name for p in (models_dir / "dnn-regressor").iterdir()) == ["1", "2"]


def test_concurrent_exports_never_share_a_version(wine_model, models_dir):
    results, errors = [], []

    def run():
        try:
            results.append(_export(wine_model, models_dir).name)
        except Exception as error:  # noqa: BLE001  (reported by the assertion below)
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(results, key=int) == ["1", "2", "3"]
    for version in results:
        card = json.loads((models_dir / "dnn-regressor" / version / "model_card.json").read_text())
        assert card["version"] == int(version)


def test_a_failed_export_leaves_no_version_behind(models_dir):
    def write(folder):
        (folder / "saved_model.pb").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        repository.publish_version(models_dir, "broken", write, lambda folder, version: None)
    assert list((models_dir / "broken").iterdir()) == []


def test_models_config_parses_with_the_serving_protos_and_lists_every_model(wine_model, models_dir):
    _export(wine_model, models_dir)
    _export(wine_model, models_dir, name="wine-small")
    config = _serving_config(models_dir)
    entries = {c.name: c for c in config.model_config_list.config}
    assert sorted(entries) == ["dnn-regressor", "wine-small"]
    assert entries["wine-small"].base_path == "/models/wine-small"
    assert entries["wine-small"].model_platform == "tensorflow"


def test_regenerating_models_config_keeps_labels_and_policies(wine_model, models_dir):
    _export(wine_model, models_dir)
    _export(wine_model, models_dir)
    config = _serving_config(models_dir)
    entry = config.model_config_list.config[0]
    entry.version_labels["stable"] = 1
    entry.model_version_policy.specific.versions.extend([1, 2])
    (models_dir / "models.config").write_text(text_format.MessageToString(config))
    _export(wine_model, models_dir, name="another")
    kept = {c.name: c for c in _serving_config(models_dir).model_config_list.config}["dnn-regressor"]
    assert kept.version_labels["stable"] == 1
    assert list(kept.model_version_policy.specific.versions) == [1, 2]


def test_the_warmup_file_holds_predict_requests_for_the_signature(wine_model, models_dir):
    data, model = wine_model
    version = _export(wine_model, models_dir)
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(str(version / WARMUP_FILE))]
    assert [log.predict_log.request.inputs["alcohol"].tensor_shape.dim[0].size for log in logs] == [1, 4]
    request = logs[-1].predict_log.request
    assert request.model_spec.name == "dnn-regressor"
    assert request.model_spec.signature_name == "serving_default"
    assert sorted(request.inputs) == sorted(t.name for t in model.inputs)
    np.testing.assert_allclose(tf.make_ndarray(request.inputs["pH"]), data.test.features["pH"][:4])


def test_the_model_card_records_the_signature_and_the_dataset(wine_model, models_dir):
    version = _export(wine_model, models_dir)
    card = json.loads((version / "model_card.json").read_text())
    assert card["name"] == "dnn-regressor" and card["version"] == 1
    assert card["signature"]["inputs"]["alcohol"] == {"dtype": "float32", "shape": [-1]}
    assert card["signature"]["outputs"] == {"prediction": {"dtype": "float32", "shape": [-1]}}
    assert card["dataset"]["name"] == "red-wine" and card["dataset"]["split"]["seed"] == 42
    markdown = (version / "model_card.md").read_text()
    assert markdown.startswith("# dnn-regressor v1") and "`alcohol`" in markdown
    assert (version / "model.keras").is_file() and (version / "saved_model.pb").is_file()


def test_a_classifier_signature_returns_probabilities_class_ids_and_labels(load, models_dir):
    data = load("digits")
    model = create_model("digits-mlp", data, hidden=[16])
    version = export_model(model, name="digits-mlp", task="multiclass", class_names=data.class_names,
                           models_dir=models_dir, card={})
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    out = signature(image=tf.constant(data.test.features["image"][:5]))
    assert out["probabilities"].shape == (5, 10)
    assert out["class_id"].dtype == tf.int64
    assert [s.decode() for s in out["label"].numpy()] == [str(i) for i in out["class_id"].numpy()]
    assert model_info("digits-mlp").outputs == ("probabilities", "class_id", "label")
