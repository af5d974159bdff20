"""TensorFlow Serving's own test suite, ported: its cases, its models, its expected answers.

Each test names the TF Serving test it ports, from the tensorflow/serving repository:
tensorflow_model_server_test.py (TF1 and TF2 exports over gRPC and REST, configs, reloads,
Prometheus, a Unix socket, models written at run time), http_rest_api_handler_test.cc
(routes, errors, label and version lookups) and predict_impl_test.cc (input checks, output
filters, the stateful counter). The models are TF Serving's test models with their
zero-padded version folders (../shared/tfserving-testdata, or the same models built by
tfserving_models.py where that copy is absent). The expected numbers, JSON bodies and
messages are TF Serving's, as its tests state them.

Not ported, as they do not apply to a CPU server without TF Serving's extra runtimes: the
TF Lite and tf_text models, the profiler service, the MKL/GPU/TensorRT model variants.
The cases that start a server of their own are marked `embedded`; the others run against
the session server, so ZOO_TEST_REST/ZOO_TEST_GRPC can point them at the real TF Serving.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tests.serving import tfserving_models
from tests.serving.conftest import TWO_VERSIONS_LABEL, Server

VERSION = 123
TWO_VERSIONS = "saved_model_half_plus_two_2_versions"


# -- TF Serving's test helpers (tensorflow_model_server_test_base.py) -------------------------


def verify_predict(address_or_stub, expected_output, expected_version, model_name="default",
                   specify_output=True, batch_input=False, signature_name="serving_default"):
    """VerifyPredictRequest: x = 2.0 as one typed float, answered as one typed float."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].float_val.append(2.0)
    request.inputs["x"].tensor_shape.dim.add().size = 1
    if batch_input:
        request.inputs["x"].tensor_shape.dim.add().size = 1
    if specify_output:
        request.output_filter.append("y")
    stub = address_or_stub
    channel = None
    if isinstance(address_or_stub, str):
        channel = grpc.insecure_channel(address_or_stub)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        result = stub.Predict(request, timeout=20)
    finally:
        if channel is not None:
            channel.close()
    assert "y" in result.outputs
    assert result.outputs["y"].dtype == types_pb2.DT_FLOAT
    assert len(result.outputs["y"].float_val) == 1
    assert result.outputs["y"].float_val[0] == expected_output
    verify_model_spec(result.model_spec, model_name, signature_name, expected_version)


def verify_model_spec(spec, name, signature_name, version):
    """_VerifyModelSpec."""
    assert (spec.name, spec.signature_name, spec.version.value) == (name, signature_name, version)


def sorted_object(value):
    """SortedObject: JSON with every list and object sorted, for order-free comparison."""
    if isinstance(value, dict):
        return sorted((key, sorted_object(item)) for key, item in value.items())
    if isinstance(value, list):
        return sorted(sorted_object(item) for item in value)
    return value


def _example_request(kind, model_name, signature_name, x=2.0):
    request = kind()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([x])
    return request


# -- tensorflow_model_server_test.py, against the session server ----------------------------


def test_get_model_status(model_stub):
    """testGetModelStatus."""
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    result = model_stub.GetModelStatus(request, timeout=20)
    assert len(result.model_version_status) == 1
    assert result.model_version_status[0].version == VERSION
    assert result.model_version_status[0].status.error_code == 0


def test_get_model_metadata(prediction_stub):
    """testGetModelMetadata."""
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    result = prediction_stub.GetModelMetadata(request, timeout=20)
    assert result.model_spec.name == "default"
    assert result.model_spec.version.value == VERSION
    assert len(result.metadata) == 1 and "signature_def" in result.metadata


@pytest.mark.parametrize("model_name", ["default", "half_plus_two_tf2"], ids=["tf1", "tf2"])
def test_classify(prediction_stub, model_name):
    """testClassify, testClassifyTf2 (the TF2 export's signatures are all predict methods)."""
    request = _example_request(classification_pb2.ClassificationRequest, model_name, "classify_x_to_y")
    result = prediction_stub.Classify(request, timeout=20)
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == 3.0
    verify_model_spec(result.model_spec, model_name, "classify_x_to_y", VERSION)


@pytest.mark.parametrize("model_name", ["default", "half_plus_two_tf2"], ids=["tf1", "tf2"])
def test_regress(prediction_stub, model_name):
    """testRegress, testRegressTf2."""
    request = _example_request(regression_pb2.RegressionRequest, model_name, "regress_x_to_y")
    result = prediction_stub.Regress(request, timeout=20)
    assert len(result.result.regressions) == 1
    assert result.result.regressions[0].value == 3.0
    verify_model_spec(result.model_spec, model_name, "regress_x_to_y", VERSION)


@pytest.mark.parametrize("model_name", ["default", "half_plus_two_tf2"], ids=["tf1", "tf2"])
def test_multi_inference(prediction_stub, model_name):
    """testMultiInference, testMultiInferenceTf2."""
    request = inference_pb2.MultiInferenceRequest()
    for signature_name, method in (("regress_x_to_y", "regress"), ("classify_x_to_y", "classify")):
        task = request.tasks.add()
        task.model_spec.name = model_name
        task.model_spec.signature_name = signature_name
        task.method_name = f"tensorflow/serving/{method}"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    result = prediction_stub.MultiInference(request, timeout=20)
    assert len(result.results) == 2
    assert result.results[0].regression_result.regressions[0].value == 3.0
    assert result.results[1].classification_result.classifications[0].classes[0].score == 3.0
    for index in range(2):
        verify_model_spec(result.results[index].model_spec, model_name,
                          request.tasks[index].model_spec.signature_name, VERSION)


def test_predict_saved_model(prediction_stub):
    """testPredictSavedModel (_TestPredict): with and without an output filter."""
    verify_predict(prediction_stub, expected_output=3.0, expected_version=VERSION)
    verify_predict(prediction_stub, expected_output=3.0, expected_version=VERSION, specify_output=False)


def test_predict_a_tf1_model_whose_signatures_disagree_with_its_graph(prediction_stub):
    """testGoodModelConfig's half_plus_three: its SignatureDefs call every tensor a scalar,
    its graph says [?, 1]; TF Serving serves it (tf.saved_model.load refuses it)."""
    verify_predict(prediction_stub, expected_output=4.0, expected_version=VERSION, model_name="half_plus_three")
    verify_predict(prediction_stub, expected_output=4.0, expected_version=VERSION, model_name="half_plus_three",
                   specify_output=False)


def test_classify_rest(server):
    """testClassifyREST."""
    status, body = server.rest("POST", "/v1/models/default:classify",
                               {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]})
    assert (status, body) == (200, {"results": [[["", 3.0]]]})


def test_regress_rest(server):
    """testRegressREST."""
    status, body = server.rest("POST", "/v1/models/default:regress",
                               {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]})
    assert (status, body) == (200, {"results": [3.0]})


def test_predict_rest(server):
    """testPredictREST: three values to an x of shape [-1, 1] reach the graph as sent."""
    status, body = server.rest("POST", "/v1/models/default:predict", {"instances": [2.0, 3.0, 4.0]})
    assert (status, body) == (200, {"predictions": [3.0, 3.5, 4.0]})


def test_predict_columnar_rest(server):
    """testPredictColumnarREST."""
    status, body = server.rest("POST", "/v1/models/default:predict", {"inputs": [2.0, 3.0, 4.0]})
    assert (status, body) == (200, {"outputs": [3.0, 3.5, 4.0]})


def test_get_status_rest(server):
    """testGetStatusREST."""
    status, body = server.rest("GET", "/v1/models/default")
    assert (status, body) == (200, {"model_version_status": [
        {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]})


@pytest.mark.skipif(tfserving_models.metadata_json("half_plus_two_model_metadata.json") is None,
                    reason="TF Serving's recorded metadata is in ../shared/tfserving-testdata")
def test_get_model_metadata_rest(server):
    """testGetModelMetadataREST: TF Serving's recorded answer, as a whole."""
    expected = json.loads(tfserving_models.metadata_json("half_plus_two_model_metadata.json").read_text())
    status, body = server.rest("GET", "/v1/models/default/metadata")
    assert status == 200 and sorted_object(body) == sorted_object(expected)


def test_prometheus_endpoint(server):
    """testPrometheusEndpoint."""
    status, body = server.rest("GET", "/monitoring/prometheus/metrics")
    assert status == 200 and "# TYPE" in body


# -- http_rest_api_handler_test.cc ----------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "message"), [
    ("GET", "/v1/foo", "Malformed request"),
    ("POST", "/v1/foo", "Malformed request"),
    ("GET", "/v1/models", "Missing model name"),
    ("GET", "/v1/models/debug/model_name", "Malformed request"),
    ("POST", "/v1/models", "Malformed request"),
    ("GET", "/v1/models/foo:predict", "Malformed request"),
    ("GET", "/v1/models/foo/version/50:predict", "Malformed request"),
    ("POST", "/v1/models/foo/version/50:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/HELLO:regress", "Malformed request"),
    ("POST", f"/v1/models/foo/versions/{2**64 - 1}:regress", "Failed to convert version"),
    ("POST", "/v1/models/foo/metadata", "Malformed request"),
    ("POST", "/v1/models/foo/label/some_label:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/50/labels/some_label:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/some_label:regress", "Malformed request"),
])
def test_unsupported_api_calls(server, method, path, message):
    """UnsupportedApiCalls: INVALID_ARGUMENT (400) and TF Serving's words."""
    status, body = server.rest(method, path, raw=b"")
    assert status == 400 and message in body["error"], body


@pytest.mark.parametrize("path", ["/v1/models/foo:predict", "/v1/models/foo/versions/50:predict",
                                  f"/v1/models/{TWO_VERSIONS}99:predict"])
def test_predict_model_name_version_errors(server, path):
    """PredictModelNameVersionErrors: NOT_FOUND (404)."""
    assert server.rest("POST", path, {"instances": [1]})[0] == 404


@pytest.mark.parametrize(("path", "body", "message"), [
    (f"/v1/models/{TWO_VERSIONS}:predict", b"", "JSON Parse error: The document is empty"),
    (f"/v1/models/{TWO_VERSIONS}:predict", b"instances = [1, 2]", "JSON Parse error: Invalid value"),
    (f"/v1/models/{TWO_VERSIONS}:predict", b'{ "instances": ["x", "y"] }', "not of expected type: float"),
    (f"/v1/models/{TWO_VERSIONS}/labels/Version_Nonexistent:predict", b'{ "instances": ["x", "y"] }',
     "Unrecognized servable version label"),
    (f"/v1/models/{TWO_VERSIONS}:predict", b'{ "signature_name": 100 }',
     "'signature_name' key must be a string value."),
])
def test_predict_request_errors(server, path, body, message):
    """PredictRequestErrors: INVALID_ARGUMENT (400), TF Serving's words."""
    status, answer = server.rest("POST", path, raw=body)
    assert status == 400 and message in answer["error"], answer


@pytest.mark.parametrize(("path", "body", "expected"), [
    (f"/v1/models/{TWO_VERSIONS}:predict", {"instances": [[1.0, 2.0], [3.0, 4.0]]},
     {"predictions": [[2.5, 3.0], [3.5, 4.0]]}),
    (f"/v1/models/{TWO_VERSIONS}/versions/123:predict", {"instances": [1.0, 2.0]}, {"predictions": [2.5, 3.0]}),
    (f"/v1/models/{TWO_VERSIONS}/labels/{TWO_VERSIONS_LABEL}:predict", {"instances": [1.0, 2.0]},
     {"predictions": [2.5, 3.0]}),
    (f"/v1/models/{TWO_VERSIONS}/versions/123:predict", {"signature_name": "serving_default", "instances": [3.0, 4.0]},
     {"predictions": [3.5, 4.0]}),
    (f"/v1/models/{TWO_VERSIONS}/versions/123:predict", {"signature_name": "serving_default", "inputs": [3.0, 4.0]},
     {"outputs": [3.5, 4.0]}),
    (f"/v1/models/{TWO_VERSIONS}:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 80.0}]},
     {"results": [42.0]}),
    (f"/v1/models/{TWO_VERSIONS}/versions/123:regress",
     {"signature_name": "regress_x_to_y", "examples": [{"x": 80.0}]}, {"results": [42.0]}),
    (f"/v1/models/{TWO_VERSIONS}/labels/{TWO_VERSIONS_LABEL}:regress",
     {"signature_name": "regress_x_to_y", "examples": [{"x": 80.0}]}, {"results": [42.0]}),
    (f"/v1/models/{TWO_VERSIONS}:classify", {"signature_name": "classify_x_to_y", "examples": [{"x": 20.0}]},
     {"results": [[["", 12.0]]]}),
    (f"/v1/models/{TWO_VERSIONS}/labels/{TWO_VERSIONS_LABEL}:classify",
     {"signature_name": "classify_x_to_y", "examples": [{"x": 10.0}]}, {"results": [[["", 7.0]]]}),
], ids=["predict-2x2", "predict-version", "predict-label", "predict-signature", "predict-columnar",
        "regress", "regress-version", "regress-label", "classify", "classify-label"])
def test_predict_regress_classify(server, path, body, expected):
    """Predict, Regress, Classify: the answers and the Content-Type TF Serving sends."""
    status, answer = server.rest("POST", path, body)
    assert (status, answer) == (200, expected)


@pytest.mark.parametrize("path", [f"/v1/models/{TWO_VERSIONS}", f"/v1/models/{TWO_VERSIONS}/versions/123",
                                  f"/v1/models/{TWO_VERSIONS}/labels/{TWO_VERSIONS_LABEL}"])
def test_get_status(server, path):
    """GetStatus: every version, a version, a label (only version 123 is served)."""
    assert server.rest("GET", path) == (200, {"model_version_status": [
        {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]})


@pytest.mark.skipif(tfserving_models.metadata_json("saved_model_half_plus_two_2_versions_metadata.json") is None,
                    reason="TF Serving's recorded metadata is in ../shared/tfserving-testdata")
def test_get_model_metadata_is_tf_servings_recorded_answer(server):
    """GetModelMetadata over REST: TF Serving's recorded answer, exactly (objects compared as JSON)."""
    expected = json.loads(
        tfserving_models.metadata_json("saved_model_half_plus_two_2_versions_metadata.json").read_text()
    )
    assert server.rest("GET", f"/v1/models/{TWO_VERSIONS}/metadata") == (200, expected)


def test_answers_carry_tf_servings_content_type(server):
    import http.client

    host, port = server.rest_address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("POST", f"/v1/models/{TWO_VERSIONS}:predict", body=b'{"instances": [1.0]}')
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.getheader("Content-Type") == "application/json"


# -- predict_impl_test.cc ---------------------------------------------------------------------


def _float_tensor(value, shape=()):
    proto = predict_pb2.PredictRequest().inputs["x"]
    proto.dtype = types_pb2.DT_FLOAT
    proto.float_val.append(value)
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


def _refused(stub, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=20)
    return error.value


def test_missing_or_empty_model_spec(prediction_stub):
    """MissingOrEmptyModelSpec: no ModelSpec, no name (INVALID_ARGUMENT), unknown (NOT_FOUND)."""
    request = predict_pb2.PredictRequest()
    assert _refused(prediction_stub, request).code() == grpc.StatusCode.INVALID_ARGUMENT
    request.model_spec.SetInParent()
    assert _refused(prediction_stub, request).code() == grpc.StatusCode.INVALID_ARGUMENT
    request.model_spec.name = "test"
    assert _refused(prediction_stub, request).code() == grpc.StatusCode.NOT_FOUND


def _request(signature_name="", model_name=TWO_VERSIONS):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.version.value = VERSION
    request.model_spec.signature_name = signature_name
    return request


def test_empty_input_list(prediction_stub):
    """EmptyInputList."""
    assert _refused(prediction_stub, _request()).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_input_tensors_dont_match_model_spec_inputs(prediction_stub):
    """InputTensorsDontMatchModelSpecInputs: an input by another name."""
    request = _request()
    request.inputs["key"].dtype = types_pb2.DT_STRING
    request.inputs["key"].string_val.append(b"any_key")
    request.inputs["key"].tensor_shape.dim.add(size=1)
    error = _refused(prediction_stub, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "x" in error.details()


def test_output_filters_dont_match_model_spec_outputs(prediction_stub):
    """OutputFiltersDontMatchModelSpecOutputs: unknown alias, then a good one, then twice."""
    request = _request()
    request.inputs["x"].CopyFrom(_float_tensor(2.0))
    request.output_filter.append("output_filter")
    assert _refused(prediction_stub, request).code() == grpc.StatusCode.INVALID_ARGUMENT
    request.ClearField("output_filter")
    request.output_filter.append("y")
    prediction_stub.Predict(request, timeout=20)
    request.output_filter.append("y")
    error = _refused(prediction_stub, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.details() == "duplicate output tensor alias: y"


def test_input_tensors_have_wrong_type(prediction_stub):
    """InputTensorsHaveWrongType."""
    request = _request()
    request.inputs["x"].dtype = types_pb2.DT_STRING
    request.inputs["x"].string_val.append(b"any_key")
    request.inputs["x"].tensor_shape.dim.add(size=1)
    request.output_filter.append("y")
    assert _refused(prediction_stub, request).code() == grpc.StatusCode.INVALID_ARGUMENT


def _expected(request, alias, value):
    """The PredictResponse TF Serving's test expects: the request's spec, one typed float of
    shape [] (present and empty)."""
    expected = predict_pb2.PredictResponse()
    expected.model_spec.CopyFrom(request.model_spec)
    expected.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
    tensor = expected.outputs[alias]
    tensor.dtype = types_pb2.DT_FLOAT
    tensor.float_val.append(value)
    tensor.tensor_shape.SetInParent()
    return expected


def test_prediction_success(prediction_stub):
    """PredictionSuccess: a scalar in, a scalar out, as typed fields, byte for byte."""
    request = _request()
    request.inputs["x"].CopyFrom(_float_tensor(2.0))
    response = prediction_stub.Predict(request, timeout=20)
    assert response == _expected(request, "y", 3.0)
    assert response.SerializeToString(deterministic=True) == _expected(request, "y", 3.0).SerializeToString(
        deterministic=True)


@pytest.mark.parametrize(("signature_name", "alias"), [("regress_x2_to_y3", "outputs"),
                                                       ("classify_x2_to_y3", "scores")])
def test_prediction_with_named_regression_and_classification_signatures(prediction_stub, signature_name, alias):
    """PredictionWithNamedRegressionSignature, ...ClassificationSignature: Predict runs any
    signature, whatever its method name."""
    request = _request(signature_name)
    request.inputs["inputs"].CopyFrom(_float_tensor(2.0))
    assert prediction_stub.Predict(request, timeout=20) == _expected(request, alias, 4.0)


def test_prediction_with_customized_signatures_keeps_the_counters_state(prediction_stub):
    """PredictionWithCustomizedSignatures: a TF1 reference variable that signatures read and
    change, its state kept between calls (get 0, incr 1, reset 0, incr 1, incr_by 3 -> 4)."""
    def call(signature_name, delta=None):
        request = _request(signature_name, model_name="counter")
        if delta is not None:
            request.inputs["delta"].dtype = types_pb2.DT_FLOAT
            request.inputs["delta"].float_val.append(delta)
        response = prediction_stub.Predict(request, timeout=20)
        assert response == _expected(request, "output", response.outputs["output"].float_val[0])
        return response.outputs["output"].float_val[0]

    call("reset_counter")  # the session server is shared: start from a known state
    assert [call("get_counter"), call("incr_counter"), call("reset_counter"), call("incr_counter"),
            call("incr_counter_by", 3.0)] == [0.0, 1.0, 0.0, 1.0, 4.0]
    assert call("get_counter") == 4.0


def test_a_signature_default_fills_an_input_not_sent(prediction_stub):
    """saved_model::GetInputValues: the TF2 export's serving_default has `defaults {x: [0]}`."""
    request = _request("serving_default", model_name="half_plus_two_tf2")
    response = prediction_stub.Predict(request, timeout=20)
    assert list(response.outputs["y"].float_val) == [2.0]


def test_an_unknown_signature_is_failed_precondition_over_grpc(prediction_stub):
    """predict_util.cc: `Serving signature key "nope" not found.` (REST looks the signature up
    first, with other words: INVALID_ARGUMENT)."""
    request = _request("nope")
    request.inputs["x"].CopyFrom(_float_tensor(2.0))
    error = _refused(prediction_stub, request)
    assert (error.code(), error.details()) == (grpc.StatusCode.FAILED_PRECONDITION,
                                               'Serving signature key "nope" not found.')


# -- tensorflow_model_server_test.py: cases that start servers of their own -----------------


@pytest.fixture()
def run_server(tmp_path):
    """run_server(model_name=..., model_path=... | config=..., **ZooServer options) -> Server.

    TF Serving's RunServer: one server for one set of flags, on free ports."""
    from zoo.server.app import ZooServer
    from zoo.server.config import load_model_config_file, single_model_config

    servers = []

    def run(model_name=None, model_path=None, config_file=None, **options):
        config = (load_model_config_file(config_file) if config_file
                  else single_model_config(model_name, str(model_path)))
        options = {"grpc_port": 0, "rest_port": 0, "poll_seconds": 0, **options}
        embedded = ZooServer(config, config_file=config_file, **options).start()
        servers.append(embedded)
        return Server(f"127.0.0.1:{embedded.rest_port}", f"127.0.0.1:{embedded.grpc_port}", embedded)

    yield run
    for embedded in servers:
        embedded.stop()


@pytest.fixture()
def models(tmp_path):
    """provide(name) -> the base path of one of TF Serving's test models, in tmp_path."""
    def provide(name):
        destination = tmp_path / "testdata" / name
        return destination if destination.exists() else tfserving_models.provide(name, destination)

    return provide


def _good_model_config(tmp_path, models) -> Path:
    """__BuildModelConfigFile: good_model_config.txt with its placeholders filled in."""
    template = tfserving_models.TESTDATA / "good_model_config.txt"
    text = template.read_text() if template.is_file() else (
        'model_config_list: {\n'
        '  config: { name: "half_plus_two", base_path: "${TEST_HALF_PLUS_TWO_DIR}", model_platform: "tensorflow" },\n'
        '  config: { name: "half_plus_three", base_path: "${TEST_HALF_PLUS_THREE_DIR}", model_platform: "tensorflow" }\n'
        '}\n'
    )
    text = text.replace("${TEST_HALF_PLUS_TWO_DIR}", str(models("saved_model_half_plus_two_cpu")))
    text = text.replace("${TEST_HALF_PLUS_THREE_DIR}", str(models("saved_model_half_plus_three")))
    path = tmp_path / "good_model_config.conf"
    path.write_text(text)
    return path


@pytest.mark.embedded
def test_good_model_config(run_server, tmp_path, models):
    """testGoodModelConfig."""
    server = run_server(config_file=_good_model_config(tmp_path, models))
    for name, output in (("half_plus_two", 3.0), ("half_plus_three", 4.0)):
        verify_predict(server.grpc_address, output, VERSION, model_name=name)
        verify_predict(server.grpc_address, output, VERSION, model_name=name, specify_output=False)


@pytest.mark.embedded
def test_bad_model_config(tmp_path, capsys):
    """testBadModelConfig: the server does not start, and says why in TF Serving's words."""
    from zoo.cli import main

    bad = tfserving_models.TESTDATA / "bad_model_config.txt"
    if not bad.is_file():
        bad = tmp_path / "bad_model_config.txt"
        bad.write_text("improperly formatted file")
    assert main(["serve", f"--model_config_file={bad}", "--port=0", "--rest_api_port=0"]) == 2
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in capsys.readouterr().err


def _config_text(name, path):
    return f'model_config_list: {{ config: {{ name: "{name}", base_path: "{path}", model_platform: "tensorflow" }} }}'


@pytest.mark.embedded
@pytest.mark.parametrize("poll_seconds", [0.2, 0], ids=["polling", "zero-poll-period"])
def test_model_config_reload(run_server, tmp_path, models, poll_seconds):
    """testModelConfigReload and testModelConfigReloadWithZeroPollPeriod: the file is
    re-read when polling is on (half_plus_three appears), never when it is 0."""
    config_path = tmp_path / "model_config.txt"
    config_path.write_text(_config_text("half_plus_two", models("saved_model_half_plus_two_cpu")))
    server = run_server(config_file=config_path, config_poll_seconds=poll_seconds)
    verify_predict(server.grpc_address, 3.0, VERSION, model_name="half_plus_two", specify_output=False)
    config_path.write_text(_config_text("half_plus_three", models("saved_model_half_plus_three")))
    if poll_seconds:
        deadline = time.monotonic() + 10  # TF Serving's test waits 10 s
        while "AVAILABLE" not in str(server.rest("GET", "/v1/models/half_plus_three")[1]) and time.monotonic() < deadline:
            time.sleep(0.1)
        verify_predict(server.grpc_address, 4.0, VERSION, model_name="half_plus_three", specify_output=False)
    else:
        time.sleep(poll_seconds + 1)
        verify_predict(server.grpc_address, 3.0, VERSION, model_name="half_plus_two", specify_output=False)


@pytest.mark.embedded
def test_good_grpc_channel_args(run_server, models):
    """testGoodGrpcChannelArgs (with RunServer's own grpc.so_reuseaddr=1)."""
    from zoo.server.edge.grpc_server import GrpcOptions

    options = GrpcOptions(channel_arguments="grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb,"
                                            "grpc.so_reuseaddr=1")
    server = run_server("default", models("saved_model_half_plus_two_cpu"), grpc_options=options)
    verify_predict(server.grpc_address, 3.0, VERSION, specify_output=False)


@pytest.mark.embedded
def test_predict_uds(run_server, models, tmp_path):
    """testPredictUDS: gRPC on a Unix socket (--grpc_socket_path), beside the TCP port."""
    from zoo.server.edge.grpc_server import GrpcOptions

    socket_path = tmp_path / "tf-serving.sock"
    run_server("default", models("saved_model_half_plus_two_cpu"), grpc_options=GrpcOptions(socket_path=str(socket_path)))
    verify_predict(f"unix:{socket_path}", 3.0, VERSION, specify_output=False)


@pytest.mark.embedded
def test_zoo_serve_takes_the_grpc_flags_on_its_command_line(tmp_path, models):
    """The flags behind the two tests above, parsed as `zoo serve` parses them."""
    from zoo.cli import build_parser
    from zoo.server.app import server_from_args

    args = build_parser().parse_args([
        "serve", "--model_name=default", f"--model_base_path={models('saved_model_half_plus_two_cpu')}",
        # --rest_api_port=0: REST off, so the test never needs the fixed default port 8501 free.
        "--port=0", "--rest_api_port=0", f"--grpc_socket_path={tmp_path / 'g.sock'}",
        "--grpc_channel_arguments=grpc.so_reuseaddr=1",
        "--allow_version_labels_for_unavailable_models", "--enable_serialization_as_tensor_content=true",
    ])
    server = server_from_args(args).start()
    try:
        assert server.grpc_port is None  # --port=0 disables the TCP port, as in TF Serving
        with grpc.insecure_channel(f"unix:{tmp_path / 'g.sock'}") as channel:
            request = _request(model_name="default")
            request.ClearField("model_spec")
            request.model_spec.name = "default"
            request.inputs["x"].CopyFrom(_float_tensor(2.0, [1]))
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=20)
        assert not response.outputs["y"].float_val  # tensor_content, as the flag asks
        assert tf.make_ndarray(response.outputs["y"]).tolist() == [3.0]
    finally:
        server.stop()


@pytest.mark.embedded
def test_tf_saved_model_save(run_server, tmp_path):
    """test_tf_saved_model_save: a tf.train.Checkpoint root saved with tf.saved_model.save."""
    base_path = tmp_path / "tf_saved_model_save"
    root = tf.train.Checkpoint()
    root.v1, root.v2 = tf.Variable(3.0), tf.Variable(2.0)
    root.f = tf.function(lambda x: {"y": root.v1 * root.v2 * x})
    tf.saved_model.save(root, str(base_path / "00000123"), root.f.get_concrete_function(tf.TensorSpec(None, tf.float32)))
    server = run_server("default", base_path)
    verify_predict(server.grpc_address, 12.0, VERSION, specify_output=False)


@pytest.mark.embedded
def test_tf_saved_model_save_multiple_signatures(run_server, tmp_path):
    """test_tf_saved_model_save_multiple_signatures."""
    base_path = tmp_path / "tf_saved_model_save"
    root = tf.train.Checkpoint()
    root.f = tf.function(lambda x: {"y": 1.0}, input_signature=[tf.TensorSpec(None, tf.float32)])
    root.g = tf.function(lambda x: {"y": 2.0}, input_signature=[tf.TensorSpec(None, tf.float32)])
    tf.saved_model.save(root, str(base_path / "00000123"),
                        signatures={"serving_default": root.f, "custom_signature_key": root.g})
    server = run_server("default", base_path)
    verify_predict(server.grpc_address, 2.0, VERSION, signature_name="custom_signature_key")
    verify_predict(server.grpc_address, 1.0, VERSION)


def _predict_keras_export(server):
    """Predict x = [[2.0]] under the aliases the server's metadata reports for serving_default;
    returns (the response, the output alias)."""
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "default"
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        metadata = stub.GetModelMetadata(request, timeout=20)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        metadata.metadata["signature_def"].Unpack(signatures)
        signature = signatures.signature_def["serving_default"]
        (input_alias,), (output_alias,) = list(signature.inputs), list(signature.outputs)
        predict = predict_pb2.PredictRequest()
        predict.model_spec.name = "default"
        predict.inputs[input_alias].CopyFrom(_float_tensor(2.0, [1, 1]))
        return stub.Predict(predict, timeout=20), output_alias


@pytest.mark.embedded
@pytest.mark.parametrize("how", ["tf.saved_model.save", "model.export"])
def test_sequential_keras_saved_model_save(run_server, tmp_path, how):
    """test_sequential_keras_saved_model_save, in Keras 3: a Sequential of Input(name="x")
    and an identity layer named "y". Keras 3 names the signature's tensors itself
    (tf.saved_model.save: `inputs` -> `output_0`; model.export: `x` -> `output_0`) where
    Keras 2 wrote x -> y, so the request uses the names the export reports."""
    import keras

    model = keras.Sequential([keras.Input(shape=(1,), dtype="float32", name="x"),
                              keras.layers.Lambda(lambda x: x, name="y")])
    export = tmp_path / "keras_sequential_saved_model_save" / "00000123"
    tf.saved_model.save(model, str(export)) if how == "tf.saved_model.save" else model.export(str(export), verbose=False)
    result, output_alias = _predict_keras_export(run_server("default", export.parent))
    assert result.outputs[output_alias].dtype == types_pb2.DT_FLOAT
    assert list(result.outputs[output_alias].float_val) == [2.0]
    verify_model_spec(result.model_spec, "default", "serving_default", VERSION)


_DISTRIBUTED_EXPORT = """
import sys, tensorflow as tf, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
with tf.distribute.MirroredStrategy(devices=["/cpu:0", "/cpu:1"]).scope():
    model = keras.Sequential([keras.Input(shape=(1,), dtype="float32", name="x"),
                              keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros"),
                              keras.layers.Lambda(lambda x: x, name="y")])
tf.saved_model.save(model, sys.argv[1])  # as TF Serving's test saves it
model.export(sys.argv[2], verbose=False)
"""


@pytest.mark.embedded
def test_distrat_sequential_keras_saved_model_save(run_server, tmp_path):
    """test_distrat_sequential_keras_saved_model_save: built under MirroredStrategy on two
    virtual CPUs (set up before TensorFlow starts, hence a process of its own), saved with
    tf.saved_model.save as TF Serving's test saves it (its serving function reads variables
    only the object graph restores) and with Keras 3's model.export."""
    exports = [tmp_path / how / "keras_sequential_saved_model_save" / "00000123" for how in ("save", "export")]
    subprocess.run([sys.executable, "-c", _DISTRIBUTED_EXPORT, *map(str, exports)], check=True,
                   capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    for export in exports:
        result, output_alias = _predict_keras_export(run_server("default", export.parent))
        assert list(result.outputs[output_alias].float_val) == [2.0], export


@pytest.mark.embedded
def test_ordinary_exports_have_nothing_for_the_object_graph_to_restore(server):
    """Only a strategy's export needs the object-graph restore: a Keras 3 or TF2 export also
    holds uninitialized handles, but none that a signature reads (filling them would load a
    second copy of the weights)."""
    from zoo.server.plane.object_graph_restore import restore_uninitialized

    for name in ("dnn-regressor", "wide-and-deep", "half_plus_two_tf2"):
        servable = server.embedded.manager.resolve(name)
        assert restore_uninitialized(servable.session, servable.graph, servable.path, servable.meta_graph) == 0, name
    servable = server.embedded.manager.resolve("dnn-regressor")
    handles = [op for op in servable.graph.get_operations() if op.type == "VarHandleOp"]
    with servable.graph.as_default():
        ready = servable.session.run([tf.raw_ops.VarIsInitializedOp(resource=op.outputs[0]) for op in handles])
    assert not all(ready)  # the unread handles are there, and were left empty at load


@pytest.mark.embedded
def test_a_bad_model_never_becomes_available(run_server, models):
    """_TestBadModel: a legacy SessionBundle export that TF Serving can no longer load. The
    version's status carries the load error; Predict finds nothing to serve."""
    server = run_server("default", models("bad_half_plus_two"))
    status, body = server.rest("GET", "/v1/models/default")
    (version,) = body["model_version_status"]
    assert version["version"] == "123" and version["state"] == "END"
    assert version["status"]["error_code"] != "OK" and "saved_model.pb" in version["status"]["error_message"]
    with pytest.raises(grpc.RpcError) as error:
        verify_predict(server.grpc_address, 3.0, VERSION, signature_name="")
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.embedded
def test_version_folders_are_read_by_their_names(run_server, models):
    """FileSystemStoragePathSource: `00000123` is version 123, loaded from `00000123/`; the
    latest-1 policy picks 124 of the two."""
    server = run_server("default", models("saved_model_half_plus_two_2_versions"))
    assert server.rest("GET", "/v1/models/default")[1]["model_version_status"][0]["version"] == "124"
    verify_predict(server.grpc_address, 3.0, 124, specify_output=False)
    config = text_format.Parse(
        'model_config_list { config { name: "default" base_path: "%s" model_platform: "tensorflow" '
        'model_version_policy { all {} } } }' % models("saved_model_half_plus_two_2_versions"),
        __import__("tensorflow_serving.config.model_server_config_pb2", fromlist=["x"]).ModelServerConfig(),
    )
    server.embedded.manager.reload(config)
    request = _request(model_name="default")
    request.inputs["x"].CopyFrom(_float_tensor(2.0, [1]))
    with grpc.insecure_channel(server.grpc_address) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=20)
    assert response.model_spec.version.value == 123


@pytest.mark.embedded
def test_rest_cors_preflight_and_headers(run_server, models):
    """http_server.cc: OPTIONS with an http(s) Origin is 200, without one 400;
    --rest_api_enable_cors_support adds the CORS headers to every answer."""
    import http.client

    server = run_server("default", models("saved_model_half_plus_two_cpu"), cors=True)
    host, port = server.rest_address.rsplit(":", 1)

    def ask(method, headers):
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request(method, "/v1/models/default", headers=headers)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response, body

    response, _ = ask("OPTIONS", {"Origin": "https://example.com"})
    assert response.status == 200
    assert response.getheader("Access-Control-Allow-Origin") == "*"
    assert response.getheader("Access-Control-Allow-Methods") == "POST, GET"
    assert response.getheader("Access-Control-Allow-Headers") == "Content-Type"
    response, body = ask("OPTIONS", {})
    assert response.status == 400 and b"Origin header is missing in CORS preflight" in body
    response, body = ask("GET", {})
    assert response.status == 200 and response.getheader("Access-Control-Allow-Origin") == "*"
    for method in ("PATCH", "PUT", "DELETE"):
        response, body = ask(method, {})
        assert response.status == 400
        assert json.loads(body) == {"error": f"Malformed request: {method} /v1/models/default"}
    response, body = ask("HEAD", {})
    assert response.status == 400 and body == b""  # a HEAD answer has no body


@pytest.mark.embedded
def test_signature_method_names_are_checked_only_when_asked(run_server, models):
    """--enable_signature_method_name_check (off by default, as in TF Serving): then the TF2
    export's classify_x_to_y, a predict method, is refused by Classify; the TF1 export's,
    a classify method, is served."""
    from zoo.server.plane.manager import LoadOptions

    checked = LoadOptions(check_method_names=True)
    tf2 = run_server("default", models("saved_model_half_plus_two_tf2_cpu"), load_options=checked)
    request = _example_request(classification_pb2.ClassificationRequest, "default", "classify_x_to_y")
    with grpc.insecure_channel(tf2.grpc_address) as channel, pytest.raises(grpc.RpcError) as error:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(request, timeout=20)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == ("Expected classification signature method_name to be "
                                     "tensorflow/serving/classify. Was: tensorflow/serving/predict")
    tf1 = run_server("default", models("saved_model_half_plus_two_cpu"), load_options=checked)
    with grpc.insecure_channel(tf1.grpc_address) as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(request, timeout=20)
    assert result.result.classifications[0].classes[0].score == 3.0
