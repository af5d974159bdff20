"""Bad requests: TF Serving's status codes, a message that names the problem, and a server
that answers the next good request."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, predict_pb2

WINE_ROW = {
    "fixed_acidity": 7.4, "volatile_acidity": 0.7, "citric_acid": 0.0, "residual_sugar": 1.9,
    "chlorides": 0.076, "free_sulfur_dioxide": 11.0, "total_sulfur_dioxide": 34.0,
    "density": 0.9978, "pH": 3.51, "sulphates": 0.56, "alcohol": 9.4,
}  # fmt: skip


def _still_serving(server):
    status, body = server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [1.0]})
    assert (status, body) == (200, {"predictions": [2.5]})


REST_CASES = [
    ("unknown model", "POST", "/v1/models/nope:predict", {"instances": [1.0]}, 404,
     "Servable not found for request: Latest(nope)"),
    ("unknown version", "POST", "/v1/models/half_plus_two/versions/7:predict", {"instances": [1.0]}, 404,
     "Specific(half_plus_two, 7)"),
    ("unknown label", "POST", "/v1/models/half_plus_two/labels/gold:predict", {"instances": [1.0]}, 400,
     "Unrecognized servable version label: gold"),
    ("status of an unknown model", "GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
    ("status of an unknown version", "GET", "/v1/models/half_plus_two/versions/9", None, 404,
     "Could not find version 9 of model half_plus_two"),
    ("malformed JSON", "POST", "/v1/models/half_plus_two:predict", b'{"instances": [1.0,', 400, "JSON Parse error"),
    ("empty body", "POST", "/v1/models/half_plus_two:predict", b"", 400, "The document is empty"),
    # RapidJSON: an integer past 64 bits becomes a double, and one past the doubles is refused.
    ("10**400", "POST", "/v1/models/half_plus_two:predict", b'{"instances": [1' + b"0" * 400 + b"]}", 400,
     "JSON Parse error: Number too big to be stored in double."),
    ("not an object", "POST", "/v1/models/half_plus_two:predict", [1, 2], 400, "Is not object"),
    ("neither inputs nor instances", "POST", "/v1/models/half_plus_two:predict", {"rows": [1.0]}, 400,
     "Missing 'inputs' or 'instances' key"),
    ("both inputs and instances", "POST", "/v1/models/half_plus_two:predict",
     {"inputs": [1.0], "instances": [1.0]}, 400, "expecting only one of 'inputs' or 'instances'"),
    ("wrong dtype", "POST", "/v1/models/half_plus_two:predict", {"instances": [1.0, "two"]}, 400,
     'Failed to process element: 1 key: x of \'instances\' list. Error: JSON Value: "two" Type: String '
     "is not of expected type: float"),
    ("wrong dtype, named input", "POST", "/v1/models/dnn-regressor:predict",
     {"instances": [{**WINE_ROW, "pH": "acidic"}]}, 400, 'key: pH of \'instances\' list. Error: JSON Value: "acidic"'),
    ("missing input", "POST", "/v1/models/dnn-regressor:predict",
     {"instances": [{k: v for k, v in WINE_ROW.items() if k != "alcohol"}]}, 400, "missing: alcohol"),
    ("extra input", "POST", "/v1/models/dnn-regressor:predict",
     {"instances": [{**WINE_ROW, "colour": 1.0}]}, 400,
     "Failed to process element: 0 key: colour of 'instances' list. Error: JSON object: does not have named input: colour"),
    ("missing columnar input", "POST", "/v1/models/dnn-regressor:predict",
     {"inputs": {k: [v] for k, v in WINE_ROW.items() if k != "pH"}}, 400, "Missing named input: pH in 'inputs' object."),
    ("wrong shape", "POST", "/v1/models/digits-mlp:predict", {"inputs": {"image": [[1.0, 2.0]]}}, 400,
     "input 'image': has shape [1,2] but the signature expects [-1,8,8]"),
    ("ragged lists", "POST", "/v1/models/digits-mlp:predict", {"inputs": {"image": [[[1.0], [2.0, 3.0]]]}}, 400,
     "input 'image': the lists are of unequal lengths"),
    ("unknown signature", "POST", "/v1/models/half_plus_two:predict",
     {"signature_name": "sideways", "instances": [1.0]}, 400, 'Serving signature name: "sideways" not found'),
    ("classify on a predict signature", "POST", "/v1/models/binary-classifier:classify",
     {"examples": [{"temperature": 200.0, "duration": 13.0}]}, 400,
     'Expected one input Tensor. (this model takes tf.Examples through signature "classification")'),
    ("classify without examples", "POST", "/v1/models/binary-classifier:classify",
     {"signature_name": "classification"}, 400, "key 'examples' is expected"),
    ("a feature of two kinds", "POST", "/v1/models/binary-classifier:classify",
     {"signature_name": "classification", "examples": [{"temperature": [200.0, "hot"], "duration": 13.0}]},
     400, "Unexpected element type in feature: temperature expecting type: float"),
    ("malformed path", "POST", "/v1/models/half_plus_two:explode", {"instances": [1.0]}, 400,
     "Malformed request: POST /v1/models/half_plus_two:explode"),
    ("no model name", "GET", "/v1/models", None, 400, "Missing model name in request."),
]


@pytest.mark.parametrize(("case", "method", "path", "body", "status", "message"), REST_CASES,
                         ids=[c[0] for c in REST_CASES])
def test_rest_errors(server, case, method, path, body, status, message):
    raw = body if isinstance(body, bytes) else None
    got_status, got = server.rest(method, path, None if raw is not None else body, raw=raw)
    assert got_status == status, got
    assert set(got) == {"error"} and message in got["error"], got["error"]
    _still_serving(server)


def test_paths_outside_the_api_and_traversal_are_not_found(server):
    for path in ("/v3/models/half_plus_two", "/etc/passwd", "/v1/models/..%2F..%2Fetc%2Fpasswd",
                 "/v1/models/%2E%2E:predict"):
        status, body = server.rest("GET" if "predict" not in path else "POST", path, {"instances": [1.0]})
        assert status in (400, 404), (path, status, body)
        assert status == 404 or "Malformed" in body["error"]
    _still_serving(server)


@pytest.mark.embedded
def test_a_body_over_the_limit_is_refused_before_it_is_read(server):
    status, body = server.rest("POST", "/v1/models/half_plus_two:predict", raw=b" " * ((1 << 20) + 1))
    assert status == 413 and "exceeds the limit of 1048576 bytes" in body["error"]
    _still_serving(server)


def _predict_request(name, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


GRPC_CASES = [
    ("unknown model", _predict_request("nope", x=np.array([1.0], np.float32)), grpc.StatusCode.NOT_FOUND,
     "Servable not found for request: Latest(nope)"),
    ("missing input", _predict_request("half_plus_two"), grpc.StatusCode.INVALID_ARGUMENT,
     "Missing but required: {x}"),
    ("extra input", _predict_request("half_plus_two", x=np.array([1.0], np.float32), z=np.array([1.0], np.float32)),
     grpc.StatusCode.INVALID_ARGUMENT, "Sent extra: {z}"),
    ("wrong dtype", _predict_request("half_plus_two", x=np.array(["one"])), grpc.StatusCode.INVALID_ARGUMENT,
     "input 'x': expects float but string is provided"),
    ("a shape the graph refuses", _predict_request("digits-mlp", image=np.ones((1, 2), np.float32)),
     grpc.StatusCode.INVALID_ARGUMENT, "(input 'image': has shape [1,2] but the signature expects [-1,8,8]"),
]


@pytest.mark.parametrize(("case", "request_", "code", "message"), GRPC_CASES, ids=[c[0] for c in GRPC_CASES])
def test_grpc_errors(server, prediction_stub, case, request_, code, message):
    with pytest.raises(grpc.RpcError) as error:
        prediction_stub.Predict(request_, timeout=30)
    assert error.value.code() == code
    assert message in error.value.details()
    _still_serving(server)


def test_grpc_errors_for_versions_labels_filters_and_status(prediction_stub, model_stub):
    request = _predict_request("half_plus_two", x=np.array([1.0], np.float32))
    request.model_spec.version.value = 5
    with pytest.raises(grpc.RpcError) as error:
        prediction_stub.Predict(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND and "Specific(half_plus_two, 5)" in error.value.details()

    request = _predict_request("half_plus_two", x=np.array([1.0], np.float32))
    request.model_spec.version_label = "gold"
    with pytest.raises(grpc.RpcError) as error:
        prediction_stub.Predict(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    request = _predict_request("half_plus_two", x=np.array([1.0], np.float32))
    request.output_filter.append("z")
    with pytest.raises(grpc.RpcError) as error:
        prediction_stub.Predict(request, timeout=30)
    assert "output tensor alias not found in signature: z" in error.value.details()

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as error:
        model_stub.GetModelStatus(status_request, timeout=30)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
