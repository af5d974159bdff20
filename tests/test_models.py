"""Every registered model, tested the moment it is registered: build, forward, a training
step, the `.keras` round trip and the SavedModel round trip through `serving_default`."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.registry import TASK_OUTPUTS, create_model, list_models, model_info

ROWS = 16


@pytest.fixture(scope="module", params=list_models())
def built(request, load):
    """(info, data, model) for each registered model, on its default dataset."""
    info = model_info(request.param)
    data = load(info.dataset, task=info.task)
    return info, data, create_model(info.name, data)


def _rows(data, model, split="test"):
    names = [tensor.name for tensor in model.inputs]
    return {name: column[:ROWS] for name, column in getattr(data, split).select(names).items()}


def _predict(model, rows):
    return {key: np.asarray(value) for key, value in model.predict(rows, verbose=0).items()}


def test_inputs_are_named_after_features_and_outputs_after_their_meaning(built):
    info, data, model = built
    names = [tensor.name for tensor in model.inputs]
    assert set(names) <= set(data.feature_names)
    assert not any(name.startswith(("args_", "input_", "keras_tensor")) for name in names)
    assert set(_predict(model, _rows(data, model))) == {TASK_OUTPUTS[info.task][0]}


def test_forward_on_a_tiny_batch(built):
    info, data, model = built
    rows = _rows(data, model)
    count = len(next(iter(rows.values())))  # the cereals' test split has only 11 rows
    (value,) = _predict(model, rows).values()
    assert np.isfinite(value).all()
    if info.task == "multiclass":
        assert value.shape == (count, len(data.class_names))
        np.testing.assert_allclose(value.sum(axis=1), 1.0, rtol=1e-5)
    else:
        assert value.shape == (count, 1)


def test_one_training_step_moves_the_weights(built):
    from zoo.config import TrainConfig
    from zoo.train import compile_model

    info, data, model = built
    compile_model(model, TrainConfig(model=info.name).resolved(), info)
    before = [w.copy() for w in model.get_weights()]
    rows = _rows(data, model, "train")
    loss = model.train_on_batch(rows, data.train.target[:ROWS], return_dict=True)["loss"]
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


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

    from zoo.export import export_model

    info, data, model = built
    rows = _rows(data, model)
    version = export_model(
        model, name=info.name, task=info.task, class_names=data.class_names,
        models_dir=tmp_path / "models", card={"task": info.task}, warmup_rows=rows,
    )
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    assert sorted(inputs) == sorted(tensor.name for tensor in model.inputs)
    served = {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in rows.items()}).items()}
    assert sorted(served) == sorted(TASK_OUTPUTS[info.task])
    expected = _predict(model, rows)[TASK_OUTPUTS[info.task][0]]
    if info.task == "regression":
        np.testing.assert_allclose(served["prediction"], expected[:, 0], rtol=1e-5, atol=1e-5)
    elif info.task == "multiclass":
        np.testing.assert_allclose(served["probabilities"], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(served["class_id"], expected.argmax(axis=1))
        assert [s.decode() for s in served["label"]] == [data.class_names[i] for i in expected.argmax(axis=1)]
    else:
        np.testing.assert_allclose(served["probability"], expected[:, 0], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(served["class_id"], (expected[:, 0] >= 0.5).astype(np.int64))
