"""Every registered model, tested the moment it is registered: build, forward, a training
step, the `.keras` round trip and the SavedModel round trip through `serving_default`."""

from __future__ import annotations

import numpy as np
import pytest

from tests.zoo_models import build, keras_outputs, served
from zoo.registry import list_models
from zoo.training.trainer import input_names, targets

ROWS = 16


@pytest.fixture(scope="module", params=list_models())
def built(request, load):
    return build(request.param, load)


def _rows(data, model, split="test"):
    return {name: column[:ROWS] for name, column in getattr(data, split).select(input_names(model)).items()}


def _predict(model, rows):
    return {key: np.asarray(value) for key, value in model.predict(rows, verbose=0).items()}


def test_inputs_are_named_after_features_and_outputs_after_their_meaning(built):
    info, data, model = built
    names = input_names(model)
    assert set(names) <= set(data.feature_names)
    assert not any(name.startswith(("args_", "input_", "keras_tensor")) for name in names)
    assert set(_predict(model, _rows(data, model))) == set(keras_outputs(info))


def test_forward_on_a_tiny_batch(built):
    info, data, model = built
    rows = _rows(data, model)
    count = len(next(iter(rows.values())))  # the cereals' test split has only 11 rows
    for value in _predict(model, rows).values():
        assert np.isfinite(value).all()
        if info.task == "multiclass":
            assert value.shape == (count, len(data.class_names))
            np.testing.assert_allclose(value.sum(axis=1), 1.0, rtol=1e-5)
        else:
            assert value.shape == (count, 1)


def test_one_training_step_moves_the_weights(built):
    from zoo.training.config import TrainConfig
    from zoo.training.trainer import compile_model

    info, data, model = built
    compile_model(model, TrainConfig(model=info.name).resolved(), info)
    trainable = [w.numpy().copy() for w in model.trainable_weights]
    rows = _rows(data, model, "train")
    y = targets(info, data.train.target[: len(next(iter(rows.values())))])
    loss = model.train_on_batch(rows, y, return_dict=True)["loss"]
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(trainable, model.trainable_weights))


def test_keras_file_round_trip_gives_the_same_outputs(built, tmp_path):
    import keras

    _, data, model = built
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    rows = _rows(data, model)
    for key, value in _predict(model, rows).items():
        np.testing.assert_allclose(_predict(reloaded, rows)[key], value, rtol=1e-6, atol=1e-6)


def test_savedmodel_round_trip_through_serving_default(built, tmp_path):
    import tensorflow as tf

    from zoo.repository.export import export_model

    info, data, model = built
    rows = _rows(data, model)
    version = export_model(
        model, name=info.name, task=info.task, class_names=data.class_names,
        models_dir=tmp_path / "models", card={"task": info.task}, warmup_rows=rows,
    )
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    assert sorted(inputs) == sorted(input_names(model))
    got = {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in rows.items()}).items()}
    assert sorted(got) == sorted(info.outputs)
    expected = served(info, _predict(model, rows))
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-5)
    if info.task != "regression":
        probabilities = expected[keras_outputs(info)[0]]
        ids = probabilities.argmax(axis=1) if info.task == "multiclass" else (probabilities >= 0.5).astype(int)
        np.testing.assert_array_equal(got["class_id"], ids)
        assert [s.decode() for s in got["label"]] == [data.class_names[i] for i in ids]
