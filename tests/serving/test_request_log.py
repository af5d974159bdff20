"""Request logging as TF Serving specifies it (logging_config in models.config): every answered
call of a logged model found in TFRecord files of TF Serving's own PredictionLog proto, read
back with TensorFlow's TFRecord reader, whatever protocol carried it; sampling; a folder that
cannot be written drops records, counted, and fails no request."""

from __future__ import annotations

import glob
import logging
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tritonclient.http as triton_http
from google.protobuf import text_format
from tensorflow_serving.apis import (
    input_pb2,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tests.serving.conftest import Server, write_config

pytestmark = pytest.mark.embedded


@pytest.fixture()
def logged_server(repository, tmp_path):
    """start(prefix, rate, model) -> a Server whose one model logs to `prefix` at `rate`."""
    from zoo.server.app import ZooServer
    from zoo.server.config import load_model_config_file

    servers = []

    def starter(prefix, rate=1.0, model="half_plus_two"):
        config = load_model_config_file(write_config(repository.root, [model], tmp_path / "models.config"))
        entry = config.model_config_list.config[0]
        text_format.Parse(f'log_collector_config {{ type: "tfrecord" filename_prefix: "{prefix}" }} '
                          f"sampling_config {{ sampling_rate: {rate} }}", entry.logging_config)
        embedded = ZooServer(config, grpc_port=0, rest_port=0, poll_seconds=0,
                             metrics_path="/monitoring/prometheus/metrics").start()
        servers.append(embedded)
        return Server(f"127.0.0.1:{embedded.rest_port}", f"127.0.0.1:{embedded.grpc_port}", embedded)

    yield starter
    for embedded in servers:
        embedded.stop()


def _records(prefix) -> list[prediction_log_pb2.PredictionLog]:
    files = sorted(glob.glob(f"{prefix}-*.tfrecord"))
    return [prediction_log_pb2.PredictionLog.FromString(raw.numpy()) for raw in tf.data.TFRecordDataset(files)]


def test_every_answered_call_over_every_protocol_is_logged_with_its_inputs_and_answer(logged_server, tmp_path):
    prefix = tmp_path / "logs" / "half_plus_two"
    server = logged_server(prefix)
    assert server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [1.0, 2.0]})[0] == 200
    assert server.rest("POST", "/v1/models/half_plus_two:regress", {"signature_name": "regression",
                                                                          "examples": [{"x": 3.0}]})[0] == 200
    assert server.rest("POST", "/v1/models/half_plus_two:predict",
                       {"signature_name": "nope", "instances": [1.0]})[0] == 400  # not answered: not logged
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "half_plus_two"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[4.0]], np.float32)))
        stub.Predict(request, timeout=30)
        regression = regression_pb2.RegressionRequest(input=input_pb2.Input())
        regression.model_spec.name = "half_plus_two"
        regression.model_spec.signature_name = "regression"
        regression.input.example_list.examples.add().features.feature["x"].float_list.value.append(5.0)
        stub.Regress(regression, timeout=30)
    client = triton_http.InferenceServerClient(url=server.rest_address)
    tensor = triton_http.InferInput("x", [1], "FP32")
    tensor.set_data_from_numpy(np.array([6.0], np.float32))
    assert client.infer("half_plus_two", [tensor]).as_numpy("y").tolist() == [5.0]
    client.close()
    server.embedded.stop()  # SIGTERM's drain: what is queued is written

    records = _records(prefix)
    kinds = [record.WhichOneof("log_type") for record in records]
    assert sorted(kinds) == sorted(["predict_log", "regress_log", "predict_log", "regress_log", "predict_log"])
    for record in records:
        metadata = record.log_metadata
        assert metadata.model_spec.name == "half_plus_two" and metadata.model_spec.version.value == 1
        assert metadata.sampling_config.sampling_rate == 1.0 and list(metadata.saved_model_tags) == ["serve"]
        assert metadata.timestamp_secs > 0
    predicted = [(tf.make_ndarray(r.predict_log.request.inputs["x"]).ravel().tolist(),
                  tf.make_ndarray(r.predict_log.response.outputs["y"]).ravel().tolist())
                 for r in records if r.HasField("predict_log")]
    assert sorted(predicted) == [([1.0, 2.0], [2.5, 3.0]), ([4.0], [4.0]), ([6.0], [5.0])]
    regressed = sorted((r.regress_log.request.input.example_list.examples[0].features.feature["x"].float_list.value[0],
                        r.regress_log.response.result.regressions[0].value) for r in records if r.HasField("regress_log"))
    assert regressed == [(3.0, 3.5), (5.0, 4.5)]


def test_a_quarter_sampling_rate_logs_about_a_quarter(logged_server, tmp_path):
    prefix = tmp_path / "sampled"
    server = logged_server(prefix, rate=0.25)
    for _ in range(400):
        assert server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [1.0]})[0] == 200
    server.embedded.stop()
    assert 60 <= len(_records(prefix)) <= 140  # binomial(400, 0.25): 100, sd 8.7


def test_a_folder_that_cannot_be_written_drops_records_counted_and_fails_no_request(logged_server, tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    server = logged_server(blocker / "half_plus_two")
    with caplog.at_level(logging.WARNING, logger="zoo.server"):
        for _ in range(20):
            assert server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [1.0]}) == (
                200, {"predictions": [2.5]})
        server.embedded.plane.request_logs.close()  # the queue written (here: dropped)
    metrics = server.rest("GET", "/monitoring/prometheus/metrics")[1]
    dropped = [line for line in metrics.splitlines() if line.startswith(":tensorflow:serving:request_log_dropped_count")]
    assert dropped == [':tensorflow:serving:request_log_dropped_count{model_name="half_plus_two",'
                       'reason="write_failed"} 20']
    assert "request log of half_plus_two: cannot write to" in caplog.text


def test_a_log_collector_zoo_serve_lacks_is_refused_at_start_by_name(tmp_path):
    from zoo.server.config import single_model_config
    from zoo.server.plane.errors import ServingError
    from zoo.server.plane.manager import ModelManager

    config = single_model_config("m", str(tmp_path))
    config.model_config_list.config[0].logging_config.log_collector_config.type = "bigquery"
    with pytest.raises(ServingError, match="log_collector_config.type 'bigquery' is not a log collector"):
        ModelManager(config, poll_seconds=0)


def test_zoo_logs_turns_the_records_into_the_rows_that_were_served_and_reads_a_cut_file_to_its_last_record(
        logged_server, repository, tmp_path, capsys, caplog):
    import pandas as pd

    from zoo.cli import main
    from zoo.client import client_class

    prefix = tmp_path / "logs" / "dnn-regressor"
    server = logged_server(prefix, model="dnn-regressor")
    rows = repository.zoo_models["dnn-regressor"].rows(12)
    sent, answers = [], []
    for (via, protocol), (start, stop) in zip([("rest", "v1"), ("grpc", "v1"), ("rest", "v2")],
                                              [(0, 5), (5, 8), (8, 12)]):
        address = server.rest_address if via == "rest" else server.grpc_address
        part = pd.DataFrame({k: v[start:stop] for k, v in rows.items()})
        with client_class(via, protocol)(address, timeout=30) as client:
            answers.append(client.predict("dnn-regressor", part)["prediction"])
        sent.append(part)
    server.embedded.stop()
    sent, answers = pd.concat(sent, ignore_index=True), pd.concat(answers, ignore_index=True)

    for output in (tmp_path / "rows.csv", tmp_path / "rows.parquet"):
        assert main(["logs", str(prefix), "--output", str(output)]) == 0
        assert "12 rows from 3 records" in capsys.readouterr().out
        written = pd.read_csv(output) if output.suffix == ".csv" else pd.read_parquet(output)
        assert list(written.columns[:4]) == ["time", "model", "version", "signature"]
        assert set(written["model"]) == {"dnn-regressor"} and set(written["version"]) == {1}
        written = written.sort_values(list(sent.columns)).reset_index(drop=True)
        order = sent.astype("float32").sort_values(list(sent.columns)).index
        np.testing.assert_allclose(written[list(sent.columns)], sent.loc[order].astype("float32"), rtol=1e-6)
        np.testing.assert_allclose(written["prediction"], answers.loc[order], rtol=1e-5)

    (log_file,) = glob.glob(f"{prefix}-*.tfrecord")
    cut = tmp_path / "cut.tfrecord"
    cut.write_bytes(Path(log_file).read_bytes()[:-10])  # the server killed in the last record's middle
    with caplog.at_level(logging.WARNING, logger="zoo.loop"):
        assert main(["logs", str(cut), "--output", str(tmp_path / "cut.csv")]) == 0
    assert "8 rows from 2 records" in capsys.readouterr().out
    assert "ends in a partial record after 2 whole ones" in caplog.text


def test_each_protocols_request_id_is_logged_and_labels_join_on_it(logged_server, tmp_path, capsys):
    import http.client
    import json

    import pandas as pd
    import tritonclient.grpc as triton_grpc

    from zoo.cli import main

    prefix = tmp_path / "logs" / "half_plus_two"
    server = logged_server(prefix)
    host, port = server.rest_address.rsplit(":", 1)

    def rest(path, body, request_id):
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("POST", path, json.dumps(body), {"X-Request-Id": request_id})
        assert connection.getresponse().status == 200
        connection.close()

    rest("/v1/models/half_plus_two:predict", {"instances": [1.0, 2.0]}, "rest-v1")
    rest("/v1/models/half_plus_two:predict", {"instances": [3.0]}, "x" * 300)  # too long to keep
    rest("/v2/models/half_plus_two/infer",
         {"id": "rest-v2", "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [4.0]}]}, "ignored")
    with grpc.insecure_channel(server.grpc_address) as channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "half_plus_two"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([5.0], np.float32)))
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30, metadata=[("x-request-id", "grpc-v1")])
    client = triton_grpc.InferenceServerClient(url=server.grpc_address)
    tensor = triton_grpc.InferInput("x", [1], "FP32")
    tensor.set_data_from_numpy(np.array([6.0], np.float32))
    client.infer("half_plus_two", [tensor], request_id="grpc-v2")
    client.close()
    server.embedded.stop()

    assert main(["logs", str(prefix), "--output", str(tmp_path / "rows.csv")]) == 0
    rows = pd.read_csv(tmp_path / "rows.csv", keep_default_na=False)
    assert sorted(zip(rows["request_id"], rows["row"], rows["x"])) == [
        ("", 0, 3.0), ("grpc-v1", 0, 5.0), ("grpc-v2", 0, 6.0), ("rest-v1", 0, 1.0), ("rest-v1", 1, 2.0),
        ("rest-v2", 0, 4.0)]

    truth = tmp_path / "truth.csv"
    pd.DataFrame({"request_id": ["rest-v1", "rest-v1", "grpc-v2", "unknown"], "row": [1, 0, 0, 0],
                  "y": [10.0, 20.0, 30.0, 40.0]}).to_csv(truth, index=False)
    capsys.readouterr()
    assert main(["logs", str(prefix), "--output", str(tmp_path / "labelled.csv"), "--labels", str(truth)]) == 0
    said = capsys.readouterr().out
    assert "3 rows from 5 records" in said and "3 rows had no label" in said
    labelled = pd.read_csv(tmp_path / "labelled.csv")
    # The label file's y clashes with the output y: the label is y_label.
    assert sorted(zip(labelled["x"], labelled["y"], labelled["y_label"])) == [
        (1.0, 2.5, 20.0), (2.0, 3.0, 10.0), (6.0, 5.0, 30.0)]

    pd.DataFrame({"request_id": ["a", "a"], "y": [1, 2]}).to_csv(truth, index=False)
    assert main(["logs", str(prefix), "--output", str(tmp_path / "l.csv"), "--labels", str(truth)]) == 2
    assert "labels the same row twice (first: request_id a)" in capsys.readouterr().err
    pd.DataFrame({"id": ["a"], "y": [1]}).to_csv(truth, index=False)
    assert main(["logs", str(prefix), "--output", str(tmp_path / "l.csv"), "--labels", str(truth)]) == 2
    assert "has no request_id column" in capsys.readouterr().err


def test_a_disk_that_fills_up_mid_run_drops_records_counted_fails_no_request_and_logging_resumes(
        logged_server, tmp_path, caplog):
    """A full disk, made real for this process: RLIMIT_FSIZE caps every file it writes, and a
    write past the cap fails with EFBIG (SIGXFSZ ignored), as a write to a full disk fails."""
    import resource
    import signal
    import time

    prefix = tmp_path / "logs" / "half_plus_two"
    server = logged_server(prefix)

    def predict(value):
        assert server.rest("POST", "/v1/models/half_plus_two:predict", {"instances": [value]}) == (
            200, {"predictions": [value / 2 + 2]})

    def written():
        return sum(Path(f).stat().st_size for f in glob.glob(f"{prefix}-*.tfrecord"))

    for value in range(20):
        predict(float(value))
    deadline = time.monotonic() + 10
    while written() == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert written() > 0
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (written() + 1000, limits[1]))  # a few more records fit
    try:
        with caplog.at_level(logging.WARNING, logger="zoo.server"):
            for value in range(20, 320):
                predict(float(value))
            time.sleep(2.5)  # a flush (every second) meets the full disk
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    assert "request log of half_plus_two: cannot write to" in caplog.text
    time.sleep(1.2)  # RETRY_SECONDS: then a new file is tried, on a disk with room again
    for value in range(320, 330):
        predict(float(value))
    server.embedded.plane.request_logs.close()  # what is queued, written
    metrics = server.rest("GET", "/monitoring/prometheus/metrics")[1]
    (dropped,) = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith(":tensorflow:serving:request_log_dropped_count") and "write_failed" in line]
    records = []
    for path in sorted(glob.glob(f"{prefix}-*.tfrecord")):
        try:
            for raw in tf.data.TFRecordDataset([path]):
                records.append(prediction_log_pb2.PredictionLog.FromString(raw.numpy()))
        except tf.errors.DataLossError:
            pass  # the file the disk filled up in ends in a partial record
    logged = {tf.make_ndarray(r.predict_log.request.inputs["x"]).ravel()[0] for r in records}
    assert set(range(20)) <= logged  # written before the disk filled: not lost
    assert set(range(320, 330)) <= logged  # logging resumed once there was room
    # Every record not on disk is counted as dropped (a failed flush counts its whole buffer).
    assert len(logged) < 330 and dropped >= 330 - len(logged)
