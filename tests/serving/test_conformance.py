"""The TF Serving API, over REST and gRPC, as TF Serving documents it and answers it.

Runs against the embedded `zoo serve` by default, and against any other server (the real
TensorFlow Serving) when ZOO_TEST_REST / ZOO_TEST_GRPC are set: see conftest.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
    regression_pb2,
)

# -- half_plus_two: TF Serving's documented test behaviour ---------------------------------


def test_rest_row_predict_of_half_plus_two(server):
    status, body = server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [1.0, 2.0, 5.0]})
    assert (status, body) == (200, {"predictions": [2.5, 3.0, 4.5]})


def test_rest_columnar_predict_of_half_plus_two(server):
    status, body = server.rest("POST", "/v1/models/half_plus_two:predict", {"inputs": [1.0, 2.0, 5.0]})
    assert (status, body) == (200, {"outputs": [2.5, 3.0, 4.5]})
    status, body = server.rest("POST", "/v1/models/half_plus_two:predict", {"inputs": {"x": [1.0, 2.0]}})
    assert (status, body) == (200, {"outputs": [2.5, 3.0]})


def test_rest_predict_by_version_and_with_the_signature_named(server):
    status, body = server.rest(
        "POST", "/v1/models/half_plus_two/versions/1:predict",
        {"signature_name": "serving_default", "instances": [{"x": 1.0}, {"x": 3.0}]},
    )
    assert (status, body) == (200, {"predictions": [2.5, 3.5]})


def test_grpc_predict_of_half_plus_two(prediction_stub):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0, 2.0, 5.0], np.float32)))
    response = prediction_stub.Predict(request, timeout=30)
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["y"]), [2.5, 3.0, 4.5])
    assert response.model_spec.name == "half_plus_two"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"


def test_rest_and_grpc_regress(server, prediction_stub):
    status, body = server.rest(
        "POST", "/v1/models/half_plus_two:regress",
        {"signature_name": "regression", "examples": [{"x": 1.0}, {"x": 5.0}]},
    )
    assert (status, body) == (200, {"results": [2.5, 4.5]})
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "half_plus_two"
    request.model_spec.signature_name = "regression"
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.append(2.0)
    response = prediction_stub.Regress(request, timeout=30)
    assert [r.value for r in response.result.regressions] == [3.0]


def test_model_status_over_rest_and_grpc(server, model_stub):
    status, body = server.rest("GET", "/v1/models/half_plus_two")
    assert status == 200
    assert body == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]}
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "half_plus_two"
    response = model_stub.GetModelStatus(request, timeout=30)
    (version,) = response.model_version_status
    assert version.version == 1 and version.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def test_model_metadata_over_rest_and_grpc(server, prediction_stub):
    status, body = server.rest("GET", "/v1/models/half_plus_two/metadata")
    assert status == 200 and body["model_spec"]["name"] == "half_plus_two"
    assert body["model_spec"]["version"] == "1"
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert signature["outputs"]["y"]["tensor_shape"]["dim"][0]["size"] == "-1"
    assert signature["method_name"] == "tensorflow/serving/predict"

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "half_plus_two"
    response = prediction_stub.GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert list(signatures.signature_def["serving_default"].inputs) == ["x"]
    assert signatures.signature_def["regression"].method_name == "tensorflow/serving/regress"


# -- every zoo model, raw named features in --------------------------------------------------


def _zoo_names():
    from zoo.registry import list_models

    return list_models()


@pytest.mark.parametrize("name", _zoo_names())
def test_zoo_model_answers_rest_with_model_predict_numbers(server, repository, name):
    zoo_model = repository.zoo_models[name]
    rows = zoo_model.rows()
    instances = [{k: v[i].tolist() for k, v in rows.items()} for i in range(len(next(iter(rows.values()))))]
    status, body = server.rest("POST", f"/v1/models/{name}:predict", {"instances": instances})
    assert status == 200, body
    predictions = body["predictions"]
    expected = zoo_model.expected()
    if list(expected) == ["prediction"]:  # one output: TF Serving drops its name
        np.testing.assert_allclose(predictions, expected["prediction"], rtol=1e-5, atol=1e-5)
        return
    for output, values in expected.items():
        np.testing.assert_allclose([p[output] for p in predictions], values, rtol=1e-5, atol=1e-5)
    if zoo_model.task != "regression":
        assert [p["label"] for p in predictions] == [zoo_model.data.class_names[p["class_id"]] for p in predictions]


@pytest.mark.parametrize("name", _zoo_names())
def test_zoo_model_answers_grpc_with_model_predict_numbers(prediction_stub, repository, name):
    zoo_model = repository.zoo_models[name]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for key, column in zoo_model.rows().items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(column.astype(np.float32)))
    response = prediction_stub.Predict(request, timeout=30)
    for output, values in zoo_model.expected().items():
        np.testing.assert_allclose(tf.make_ndarray(response.outputs[output]), values, rtol=1e-5, atol=1e-5)
    if zoo_model.task != "regression":
        labels = [s.decode() for s in tf.make_ndarray(response.outputs["label"])]
        ids = tf.make_ndarray(response.outputs["class_id"])
        assert labels == [zoo_model.data.class_names[i] for i in ids]


def test_grpc_output_filter_returns_only_what_was_asked(prediction_stub, repository):
    zoo_model = repository.zoo_models["digits-mlp"]
    request = predict_pb2.PredictRequest(output_filter=["label"])
    request.model_spec.name = "digits-mlp"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(zoo_model.rows(3)["image"].astype(np.float32)))
    response = prediction_stub.Predict(request, timeout=30)
    assert list(response.outputs) == ["label"]


def test_classify_with_context_and_examples_over_rest_and_grpc(server, prediction_stub, repository):
    zoo_model = repository.zoo_models["binary-classifier"]
    rows = zoo_model.rows(3)
    examples = [{"temperature": float(t)} for t in rows["temperature"]]
    context = {"duration": float(rows["duration"][0])}
    status, body = server.rest(
        "POST", "/v1/models/binary-classifier:classify",
        {"signature_name": "classification", "context": context, "examples": examples},
    )
    assert status == 200, body
    same_duration = {"temperature": rows["temperature"], "duration": np.repeat(rows["duration"][:1], 3)}
    probability = zoo_model.model.predict(same_duration, verbose=0)["probability"]
    for result, p in zip(body["results"], probability[:, 0]):
        assert [label for label, _ in result] == ["bad", "good"]
        assert result[1][1] == pytest.approx(float(p), rel=1e-5)
        assert result[0][1] == pytest.approx(1 - float(p), rel=1e-5, abs=1e-6)

    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "binary-classifier"
    request.model_spec.signature_name = "classification"
    example = request.input.example_list.examples.add()
    example.features.feature["temperature"].float_list.value.append(float(rows["temperature"][0]))
    example.features.feature["duration"].float_list.value.append(float(rows["duration"][0]))
    response = prediction_stub.Classify(request, timeout=30)
    (classes,) = response.result.classifications
    assert [c.label for c in classes.classes] == ["bad", "good"]
    assert classes.classes[1].score == pytest.approx(float(probability[0, 0]), rel=1e-5)


def test_grpc_multi_inference_runs_a_task_and_refuses_a_signature_twice(prediction_stub):
    import grpc
    from tensorflow_serving.apis import inference_pb2

    request = inference_pb2.MultiInferenceRequest()
    task = request.tasks.add(method_name="tensorflow/serving/regress")
    task.model_spec.name = "half_plus_two"
    task.model_spec.signature_name = "regression"
    for x in (1.0, 3.0):
        request.input.example_list.examples.add().features.feature["x"].float_list.value.append(x)
    (result,) = prediction_stub.MultiInference(request, timeout=30).results
    assert [r.value for r in result.regression_result.regressions] == [2.5, 3.5]
    assert result.model_spec.version.value == 1 and result.model_spec.signature_name == "regression"
    request.tasks.add().CopyFrom(task)
    with pytest.raises(grpc.RpcError) as error:  # multi_inference.cc: one evaluation a signature
        prediction_stub.MultiInference(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "Duplicate evaluation of signature: regression"


def test_nan_and_infinity_go_in_and_come_out_as_tf_serving_writes_them(server):
    status, body = server.rest("POST", "/v1/models/half_plus_two:predict",
                               raw=b'{"instances": [NaN, Infinity, -Infinity, 0.00001]}')
    assert status == 200
    values = body["predictions"]
    assert np.isnan(values[0]) and values[1] == np.inf and values[2] == -np.inf
    assert values[3] == pytest.approx(2.000005)
