"""RestClient and GrpcClient: one interface, DataFrames of raw named features in and out."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pandas as pd
import pytest

from zoo.client import ClientError, GrpcClient, RestClient, Unavailable, client_class
from zoo.registry import list_models

VIAS = ("rest", "grpc")
# Each transport with TF Serving's API (v1) and the Open Inference Protocol (v2): one interface.
CLIENTS = ("rest", "grpc", "rest-v2", "grpc-v2")


@pytest.fixture(params=CLIENTS)
def client(request, server):
    via, _, protocol = request.param.partition("-")
    address = server.rest_address if via == "rest" else server.grpc_address
    with client_class(via, protocol or "v1")(address, timeout=30, retries=1, backoff=0.05) as client:
        yield client


def _frame(zoo_model, count=6):
    rows = zoo_model.rows(count)
    return pd.DataFrame({k: list(v) if v.ndim > 1 else v for k, v in rows.items()})


@pytest.mark.parametrize("name", list_models())
def test_predict_returns_what_model_predict_returns(client, repository, name):
    zoo_model = repository.zoo_models[name]
    frame = _frame(zoo_model)
    frame.index = [f"row-{i}" for i in range(len(frame))]  # the caller's index is kept
    predictions = client.predict(name, frame)
    assert list(predictions.index) == list(frame.index)
    for output, values in zoo_model.expected(len(frame)).items():
        if values.ndim == 2:  # a vector a row: one column per element
            got = predictions[[f"{output}_{i}" for i in range(values.shape[1])]].to_numpy()
        else:
            got = predictions[output].to_numpy()
        np.testing.assert_allclose(got, values, rtol=1e-5, atol=1e-5)
    if zoo_model.task != "regression":
        assert list(predictions["label"]) == [zoo_model.data.class_names[i] for i in predictions["class_id"]]


def test_a_dict_of_columns_works_as_well_as_a_frame(client, repository):
    zoo_model = repository.zoo_models["dnn-regressor"]
    predictions = client.predict("dnn-regressor", zoo_model.rows(4))
    np.testing.assert_allclose(predictions["prediction"], zoo_model.expected(4)["prediction"], rtol=1e-5, atol=1e-5)


def test_classify_and_regress(client, repository):
    coffee = repository.zoo_models["binary-classifier"]
    frame = _frame(coffee, 4)
    if "V2" in type(client).__name__:
        with pytest.raises(ClientError, match=r"the Open Inference Protocol \(V2\) has no Classify API"):
            client.classify("binary-classifier", frame)
        return
    classes = client.classify("binary-classifier", frame)
    probability = coffee.expected(4)["probability"]
    np.testing.assert_allclose(classes["good"], probability, rtol=1e-5, atol=1e-6)
    assert list(classes["label"]) == ["good" if p >= 0.5 else "bad" for p in probability]
    values = client.regress("half_plus_two", pd.DataFrame({"x": [1.0, 5.0]}))
    assert list(values["value"]) == [2.5, 4.5]


def test_status_and_versions(client):
    status = client.status("half_plus_two")
    assert status.to_dict(orient="records") == [
        {"version": 1, "state": "AVAILABLE", "error_code": "OK", "error_message": ""}
    ]
    assert client.predict("half_plus_two", {"x": [1.0]}, version=1)["y"].tolist() == [2.5]


def test_a_missing_feature_column_is_named(client, repository):
    frame = _frame(repository.zoo_models["dnn-regressor"]).drop(columns=["alcohol"])
    with pytest.raises(ClientError, match="missing feature column.*alcohol"):
        client.predict("dnn-regressor", frame)


def test_a_non_numeric_cell_is_named_with_its_row_and_column(client, repository):
    frame = _frame(repository.zoo_models["dnn-regressor"]).astype(object)
    frame.loc[3, "pH"] = "acidic"
    with pytest.raises(ClientError, match=r"row 3, column 'pH': expected a number, got 'acidic'"):
        client.predict("dnn-regressor", frame)
    frame.loc[3, "pH"] = None
    with pytest.raises(ClientError, match=r"row 3, column 'pH': expected a number, got an empty cell"):
        client.predict("dnn-regressor", frame)


def test_a_ragged_or_non_list_image_cell_is_named_with_its_row(client):
    image = np.zeros((8, 8)).tolist()
    with pytest.raises(ClientError, match=r"row 1, column 'image': expected shape \[8, 8\] like the rows before it, got \[2\]"):
        client.predict("digits-mlp", pd.DataFrame({"image": [image, [1.0, 2.0]]}))
    with pytest.raises(ClientError, match=r"row 2, column 'image': expected a list of numbers, got oops"):
        client.predict("digits-mlp", pd.DataFrame({"image": [image, image, "oops"]}))


def test_an_unknown_model_or_signature_is_named(client):
    with pytest.raises(ClientError, match=r"model 'nope' not found on 127\.0\.0\.1:\d+"):
        client.predict("nope", {"x": [1.0]})
    with pytest.raises(ClientError, match="has no signature 'sideways'; it has: .*serving_default"):
        client.predict("half_plus_two", {"x": [1.0]}, signature="sideways")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("via", VIAS)
def test_a_server_that_is_down_is_named_after_the_retries(via):
    address = f"127.0.0.1:{_free_port()}"
    client_class = RestClient if via == "rest" else GrpcClient
    with client_class(address, timeout=2, retries=2, backoff=0.01) as client:
        with pytest.raises(Unavailable, match=rf"cannot reach the model server at {address}.*after 3 attempts"):
            client.predict("half_plus_two", {"x": [1.0]})


@pytest.mark.parametrize("via", VIAS)
def test_unavailable_is_retried_until_the_server_is_up(via, repository):
    from tests.serving.conftest import write_config
    from zoo.server.app import ZooServer
    from zoo.server.config import load_model_config_file

    grpc_port, rest_port = _free_port(), _free_port()
    config = load_model_config_file(write_config(repository.root, ["half_plus_two"],
                                                 path=repository.root / f"retry-{via}.config"))
    servers = []

    def start_late():
        time.sleep(1.0)
        servers.append(ZooServer(config, grpc_port=grpc_port, rest_port=rest_port, poll_seconds=0).start())

    starter = threading.Thread(target=start_late)
    starter.start()
    client_class = RestClient if via == "rest" else GrpcClient
    port = rest_port if via == "rest" else grpc_port
    try:
        with client_class(f"127.0.0.1:{port}", timeout=5, retries=8, backoff=0.1) as client:
            assert client.predict("half_plus_two", {"x": [2.0]})["y"].tolist() == [3.0]
    finally:
        starter.join()
        for embedded in servers:
            embedded.stop()


def test_invalid_requests_are_not_retried(server):
    with RestClient(server.rest_address, retries=5, backoff=0.5) as client:
        started = time.perf_counter()
        with pytest.raises(ClientError, match="refused the request \\(400\\)"):
            client.predict("digits-mlp", {"image": [[1.0, 2.0]]})  # the wrong shape: the server says so
        assert time.perf_counter() - started < 0.5  # no backoff sleeps happened
