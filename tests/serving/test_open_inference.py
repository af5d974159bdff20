"""The Open Inference Protocol (V2) on zoo serve, called with Triton's own clients
(tritonclient.http and tritonclient.grpc) as the reference: every route, answers equal to
the TF Serving API's for the same rows and version, and bad input refused with clear errors."""

from __future__ import annotations

import http.client
import json
import socket
import time

import numpy as np
import pytest
import tensorflow as tf
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tensorflow_serving.apis import predict_pb2
from tritonclient.utils import InferenceServerException

from tests.serving.conftest import TWO_VERSIONS_LABEL

pytestmark = pytest.mark.embedded
TWO_VERSIONS = "saved_model_half_plus_two_2_versions"


@pytest.fixture(scope="module")
def clients(server):
    rest = triton_http.InferenceServerClient(url=server.rest_address)
    grpc_client = triton_grpc.InferenceServerClient(url=server.grpc_address)
    yield {"http": (triton_http, rest), "grpc": (triton_grpc, grpc_client)}
    rest.close()
    grpc_client.close()


@pytest.fixture(params=["http", "grpc"])
def triton(request, clients):
    return clients[request.param]


def _input(module, name, array, datatype, binary=True):
    tensor = module.InferInput(name, list(array.shape), datatype)
    if module is triton_http:
        tensor.set_data_from_numpy(array, binary_data=binary)
    else:
        tensor.set_data_from_numpy(array)
    return tensor


def _v1_outputs(prediction_stub, name, rows, version=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    for key, column in rows.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(column))
    response = prediction_stub.Predict(request, timeout=30)
    return {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}


def test_health_and_metadata(triton, repository):
    module, client = triton
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("half_plus_two") and client.is_model_ready(TWO_VERSIONS, "123")
    assert client.is_model_ready(TWO_VERSIONS, TWO_VERSIONS_LABEL)  # a label as the version string
    assert not client.is_model_ready("no-such-model") and not client.is_model_ready(TWO_VERSIONS, "7")
    server = client.get_server_metadata(**({"as_json": True} if module is triton_grpc else {}))
    assert server["name"] == "zoo" and "binary_tensor_data" in server["extensions"]
    metadata = client.get_model_metadata("dnn-regressor", **({"as_json": True} if module is triton_grpc else {}))
    names = repository.zoo_models["dnn-regressor"].input_names
    assert metadata["name"] == "dnn-regressor" and metadata["versions"] == ["1"]
    assert metadata["platform"] == "tensorflow_savedmodel"
    assert sorted(tensor["name"] for tensor in metadata["inputs"]) == sorted(names)
    assert {tensor["datatype"] for tensor in metadata["inputs"]} == {"FP32"}
    with pytest.raises(InferenceServerException, match="Servable not found"):
        client.get_model_metadata("no-such-model")


@pytest.mark.parametrize("name", ["dnn-regressor", "wide-and-deep", "binary-classifier", "digits-mlp"])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_inference_answers_as_tf_servings_api_does(triton, prediction_stub, repository, name, binary):
    module, client = triton
    if module is triton_grpc and not binary:
        pytest.skip("gRPC has one encoding here: raw contents")
    rows = {key: column.astype(np.float32) for key, column in repository.zoo_models[name].rows(5).items()}
    expected = _v1_outputs(prediction_stub, name, rows)
    inputs = [_input(module, key, column, "FP32", binary) for key, column in rows.items()]
    outputs = [module.InferRequestedOutput(alias, **({"binary_data": binary} if module is triton_http else {}))
               for alias in sorted(expected)]
    result = client.infer(name, inputs, outputs=outputs, request_id="row-5")
    assert result.get_response(**({"as_json": True} if module is triton_grpc else {}))["model_version"] == "1"
    for alias, value in expected.items():
        got = result.as_numpy(alias)
        assert got.shape == value.shape, alias
        if value.dtype == object:  # a classifier's labels come back as they do over V1: BYTES
            assert [g if isinstance(g, bytes) else g.encode() for g in got.ravel()] == list(value.ravel())
        else:
            np.testing.assert_array_equal(got, value)


def test_versions_and_labels_choose_what_runs(triton, prediction_stub):
    module, client = triton
    x = np.array([1.0, 2.0], np.float32)
    for version in ("123", TWO_VERSIONS_LABEL):
        result = client.infer(TWO_VERSIONS, [_input(module, "x", x, "FP32")], model_version=version)
        np.testing.assert_array_equal(result.as_numpy("y"), _v1_outputs(prediction_stub, TWO_VERSIONS, {"x": x}, 123)["y"])
    with pytest.raises(InferenceServerException, match=r"Specific\(saved_model_half_plus_two_2_versions, 7\)"):
        client.infer(TWO_VERSIONS, [_input(module, "x", x, "FP32")], model_version="7")


@pytest.mark.parametrize("case, words", [
    ("datatype", "input 'x': datatype FP64 does not match the model's FP32"),
    ("unknown model", "Servable not found for request: Latest(no-such-model)"),
    ("unknown output", "output tensor alias not found in signature: z"),
    ("unknown input", "Signature input alias: x(feed name: serving_default_x:0) not found in request"),  # V1's words
])
def test_bad_requests_get_the_reason(triton, case, words):
    module, client = triton
    x = np.array([1.0, 2.0], np.float32)
    model, inputs, outputs = "half_plus_two", [_input(module, "x", x, "FP32")], None
    if case == "datatype":
        inputs = [_input(module, "x", x.astype(np.float64), "FP64")]
    elif case == "unknown model":
        model = "no-such-model"
    elif case == "unknown output":
        outputs = [module.InferRequestedOutput("z")]
    elif case == "unknown input":
        inputs = [_input(module, "w", x, "FP32")]
    with pytest.raises(InferenceServerException) as refused:
        client.infer(model, inputs, outputs=outputs)
    assert words in refused.value.message()
    assert client.is_server_live()


def _raw_infer(server, body: bytes, headers: dict) -> tuple[int, dict]:
    host, port = server.rest_address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("POST", "/v2/models/half_plus_two/infer", body=body, headers=headers)
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    return response.status, json.loads(answer) if answer.startswith(b"{") else answer


def _binary_request(declared_size: int, sent: bytes, shape=(2,)) -> tuple[bytes, dict]:
    header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": list(shape),
                                     "parameters": {"binary_data_size": declared_size}}]}).encode()
    return header + sent, {"Inference-Header-Content-Length": str(len(header))}


@pytest.mark.parametrize("case, words", [
    ("size past the data", "binary_data_size 800 runs past the 8 bytes"),
    ("bytes left over", "add up to 4 bytes, but 8 follow the JSON header"),
    ("shape and bytes disagree", "shape [3] of FP32 needs 12 bytes, the raw data has 8"),
    ("header longer than the body", "is not a length within the"),
    ("shape declared, not sent", "more than the 16777216 a request may declare"),
    ("data of the wrong length", "shape [3] needs 3 values, 'data' has 2"),
    ("ragged data", "'data' is ragged"),
    ("strings for numbers", "'data' must be all numbers for datatype FP32"),
])
def test_hostile_bodies_are_refused_by_name(server, prediction_stub, case, words):
    values = np.array([1.0, 2.0], np.float32).tobytes()
    if case == "size past the data":
        body, headers = _binary_request(800, values)
    elif case == "bytes left over":
        body, headers = _binary_request(4, values)
    elif case == "shape and bytes disagree":
        body, headers = _binary_request(8, values, shape=(3,))
    elif case == "header longer than the body":
        body, headers = _binary_request(8, values)
        headers["Inference-Header-Content-Length"] = str(len(body) + 1)
    elif case == "shape declared, not sent":
        body, headers = _binary_request(8, values, shape=(10**9,))
    else:
        data = {"data of the wrong length": [1.0, 2.0], "ragged data": [[1.0], [2.0, 3.0]],
                "strings for numbers": ["a", "b", "c"]}[case]
        body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [3], "data": data}]}).encode()
        headers = {}
    status, answer = _raw_infer(server, body, headers)
    assert status == 400 and words in answer["error"], answer
    assert _v1_outputs(prediction_stub, "half_plus_two", {"x": np.array([1.0], np.float32)})["y"].tolist() == [2.5]


def test_a_body_declaring_more_bytes_than_it_sends_costs_nothing_once_the_client_is_gone(server, prediction_stub):
    host, port = server.rest_address.rsplit(":", 1)
    body, headers = _binary_request(8, np.array([1.0, 2.0], np.float32).tobytes())
    budget = server.embedded.budget
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /v2/models/half_plus_two/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
                     + f"Content-Length: {len(body) + 1_000_000}\r\n\r\n".encode() + body)
    client = triton_http.InferenceServerClient(url=server.rest_address)
    result = client.infer("half_plus_two", [_input(triton_http, "x", np.array([4.0], np.float32), "FP32")])
    assert result.as_numpy("y").tolist() == [4.0]
    client.close()
    deadline = time.monotonic() + 10
    while budget is not None and budget.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert budget is None or budget.in_flight == 0  # the megabyte it declared is given back


def test_the_readmes_tritonclient_example_runs_as_written(server, capsys):
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The Open Inference Protocol (V2)", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'url="127.0.0.1:8501"' in example
    exec(compile(example.replace("127.0.0.1:8501", server.rest_address), "README.md", "exec"), {})  # noqa: S102
    printed = capsys.readouterr().out
    assert printed.startswith("[") and len(np.array(printed.strip("[]\n").split(), float)) == 2
