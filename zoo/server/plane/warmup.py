"""Model warm-up: replay a version's recorded requests before it serves, as TF Serving does.

`assets.extra/tf_serving_warmup_requests` is a TFRecord file of PredictionLogs. Each
Predict, Classify, Regress and MultiInference log is run `iterations` times against the
freshly loaded version, so the first real request does not pay for TensorFlow's lazy
initialisation. As in TF Serving's saved_model_warmup.cc, a request that fails, a log type
that cannot be replayed, or more than 1,000 records fail the load.
"""

from __future__ import annotations

import tensorflow as tf

from zoo.protocol import tensor_protos
from zoo.protocol.names import WARMUP_FILE
from zoo.server.plane import example_apis
from zoo.server.plane.errors import Code, ServingError, invalid_argument
from zoo.server.plane.servable import Servable

MAX_RECORDS = 1000  # WarmupConsts::kMaxNumRecords


def warm_up(servable: Servable, iterations: int = 1) -> int:
    """Replay the version's warm-up requests; returns how many records were replayed."""
    path = servable.path / WARMUP_FILE
    if not path.is_file():
        return 0
    from tensorflow_serving.apis import prediction_log_pb2

    count = 0
    for record in tf.data.TFRecordDataset(str(path)):
        count += 1
        if count > MAX_RECORDS:
            raise invalid_argument(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
        log_entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for _ in range(max(iterations, 1)):
            _replay(servable, log_entry)
    return count


def _replay(servable: Servable, log_entry) -> None:
    kind = log_entry.WhichOneof("log_type")
    if kind == "predict_log":
        request = log_entry.predict_log.request
        inputs = {key: tensor_protos.to_array(proto) for key, proto in request.inputs.items()}
        servable.predict(request.model_spec.signature_name, inputs, list(request.output_filter))
    elif kind == "classify_log":
        request = log_entry.classify_log.request
        signature = example_apis.classification_signature(servable, request.model_spec.signature_name)
        example_apis.classify(servable, signature, request.input)
    elif kind == "regress_log":
        request = log_entry.regress_log.request
        signature = example_apis.regression_signature(servable, request.model_spec.signature_name)
        example_apis.regress(servable, signature, request.input)
    elif kind == "multi_inference_log":
        example_apis.multi_inference(servable, log_entry.multi_inference_log.request)
    elif kind is not None:
        raise ServingError(Code.UNIMPLEMENTED, f"Unsupported log_type for warmup: {kind}")
