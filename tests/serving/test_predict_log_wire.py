"""The request log's hand-written PredictionLog bytes, parsed by TF Serving's own protos, are
the message its official API builds from the same arrays."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import logging_pb2, model_pb2, prediction_log_pb2

from zoo.server.plane import predict_log_wire

ARRAYS = {
    "one row": {"alcohol": np.array([10.5], np.float32), "pH": np.array([3.3], np.float32)},
    "matrix": {"pixels": np.arange(12, dtype=np.float32).reshape(3, 4)},
    "scalar": {"x": np.array(2.5, np.float32)},
    "empty": {"x": np.zeros((0, 3), np.float32)},
    "integers": {"ids": np.array([1, 2**40, 3], np.int64), "flags": np.array([True, False])},
    "text": {"label": np.array([b"good", b"bad"], dtype=object)},
    "a big shape": {"x": np.zeros((1, 300), np.float64)},
}


@pytest.mark.parametrize("case", list(ARRAYS))
def test_the_bytes_parse_to_the_message_the_official_api_builds(case):
    inputs = ARRAYS[case]
    outputs = {"prediction": np.array([5.25, 6.0], np.float32), "label": np.array([b"5", b"6"], dtype=object)}
    spec = model_pb2.ModelSpec(name="dnn-regressor", signature_name="serving_default")
    served = model_pb2.ModelSpec(name="dnn-regressor", signature_name="serving_default")
    served.version.value = 3
    metadata = logging_pb2.LogMetadata(model_spec=served, saved_model_tags=["serve"], timestamp_secs=1796400000)
    metadata.sampling_config.sampling_rate = 0.5

    record = predict_log_wire.predict_log_record(
        metadata.SerializeToString(), spec.SerializeToString(), inputs, ["prediction"], b"req-7",
        served.SerializeToString(), outputs)

    expected = prediction_log_pb2.PredictionLog(log_metadata=metadata)
    log = expected.predict_log
    log.request.model_spec.CopyFrom(spec)
    log.request.output_filter.append("prediction")
    log.request.client_id = b"req-7"
    for name, value in inputs.items():
        log.request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    log.response.model_spec.CopyFrom(served)
    for name, value in outputs.items():
        log.response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    parsed = prediction_log_pb2.PredictionLog.FromString(record)
    assert parsed.log_metadata == expected.log_metadata and parsed.predict_log.request.client_id == b"req-7"
    for side, field in (("request", "inputs"), ("response", "outputs")):
        got, want = getattr(getattr(parsed.predict_log, side), field), getattr(getattr(log, side), field)
        assert sorted(got) == sorted(want)
        for name in want:  # the same tensor, whichever of tensor_content or typed values holds it
            assert got[name].dtype == want[name].dtype and got[name].tensor_shape == want[name].tensor_shape
            np.testing.assert_array_equal(tf.make_ndarray(got[name]), tf.make_ndarray(want[name]))
    assert parsed.predict_log.request.model_spec == spec and parsed.predict_log.response.model_spec == served
    assert list(parsed.predict_log.request.output_filter) == ["prediction"]
