"""The data plane: the serving APIs as plain methods, shared by every front end.

A front end decodes its wire format into numpy arrays or protos, calls one method here once
per request, and encodes what comes back; every rule about models, versions, signatures,
batching, timeouts and metrics lives here once. Each method follows the TF Serving function of the same job
(predict_impl.cc, classification_service.cc, regression_service.cc, multi_inference_helper.cc,
get_model_status_impl.cc, get_model_metadata_impl.cc), including the order of its checks.
"""

from __future__ import annotations

import contextlib
import functools
import time

from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    logging_pb2,
    model_pb2,
    prediction_log_pb2,
)

from zoo.protocol.model_spec import ModelTarget
from zoo.server.plane import example_apis, predict_log_wire
from zoo.server.plane.batching import Batcher
from zoo.server.plane.errors import ServingError, invalid_argument
from zoo.server.plane.manager import ModelManager
from zoo.server.plane.metrics import Metrics
from zoo.server.plane.request_log import RequestLogs
from zoo.server.plane.servable import Servable

SIGNATURE_DEF_FIELD = "signature_def"
MAX_REQUEST_ID = 256


class DataPlane:
    """Predict, Classify, Regress, MultiInference, status and metadata over a ModelManager.

    Args:
        manager: the loaded versions.
        batcher: dynamic batching for Predict, or None.
        metrics: where requests are counted.
    """

    def __init__(self, manager: ModelManager, *, batcher: Batcher | None = None, metrics: Metrics | None = None):
        self.manager = manager
        self.batcher = batcher
        self.metrics = metrics or Metrics()
        self.request_logs = RequestLogs(self.metrics.log_dropped, self.metrics.logged)

    def close(self) -> None:
        """Stop the model manager and the batcher; write the request logs' queued records."""
        self.manager.stop()
        if self.batcher is not None:
            self.batcher.stop()
        self.request_logs.close()

    @contextlib.contextmanager
    def observe(self, model_name: str, api: str | None, entrypoint: str):
        """Count a request under the status it ends with, and time it if it succeeds
        (RecordModelRequestCount / RecordRequestLatency). `api=None`: counted only."""
        started = time.perf_counter()
        status = "OK"
        try:
            yield
        except ServingError as error:
            status = error.code.name
            raise
        except Exception:
            status = "INTERNAL"
            raise
        finally:
            # Under the name a client sent only if it is a configured model: any other
            # name is counted under "", so clients cannot grow the metrics (20,000 404s
            # with 2 KB names had added 34 MB, never freed).
            counted = model_name if self.manager.is_configured(model_name) else ""
            self.metrics.count(counted, status)
            if status == "OK" and api is not None:
                self.metrics.latency(counted, api, entrypoint, time.perf_counter() - started)

    def resolve(self, target: ModelTarget) -> Servable:
        """The version a request resolves to (ServerCore::GetServableHandle)."""
        if not target.name:
            raise invalid_argument("ModelSpec has no name specified.")
        return self.manager.resolve(target.name, target.version, target.label)

    # -- Predict ---------------------------------------------------------------------------

    def predict(self, target: ModelTarget, inputs, output_filter=(), timeout: float | None = None,
                request_id=None):
        """Returns (servable, signature, outputs by alias).

        `inputs`: the arrays by alias, or a function of the version's input signature that
        decodes them (JSON's numbers become the signature's dtypes), called once the version
        is resolved, so that one call serves the request. `timeout` is the request's deadline
        in seconds: a batched request waits for its batch at most that long. Answering at the
        deadline is the front end's job (gRPC's runtime ends the call; the REST edge answers
        504 while the call finishes). `request_id`: the id the client gave the request (text,
        or a function that reads it, called only if the model logs), kept in its log record.
        """
        servable = self.resolve(target)
        if callable(inputs):
            inputs = inputs(servable.input_signature(target.signature_name))
        prediction = servable.prepare(target.signature_name, inputs, output_filter)
        if self.batcher is not None:
            outputs = self.batcher.run(servable, prediction, timeout)
        else:
            outputs = servable.run(prediction)
        logging_config = self.manager.logging_config(target.name)
        if logging_config is not None:
            held = sum(array.nbytes for array in (*prediction.inputs.values(), *outputs.values()))
            key = request_id() if callable(request_id) else request_id
            self.request_logs.log(target.name, logging_config, held, lambda: _predict_record(
                target, servable, logging_config, prediction.inputs, output_filter, outputs, key))
        return servable, prediction.signature, outputs

    # -- Classify / Regress / MultiInference -----------------------------------------------

    def classify(self, target: ModelTarget, model_input: input_pb2.Input):
        """Returns (the response's ModelSpec, the ClassificationResult)."""
        servable = self.resolve(target)
        signature = example_apis.classification_signature(servable, target.signature_name)
        result = example_apis.classify(servable, signature, model_input)
        spec = target.served_by(servable.version)
        self._log(target, servable, "classify_log", model_input.ByteSize(),
                  _examples_log(target, model_input, spec, result))
        return spec, result

    def regress(self, target: ModelTarget, model_input: input_pb2.Input):
        """Returns (the response's ModelSpec, the RegressionResult)."""
        servable = self.resolve(target)
        signature = example_apis.regression_signature(servable, target.signature_name)
        result = example_apis.regress(servable, signature, model_input)
        spec = target.served_by(servable.version)
        self._log(target, servable, "regress_log", model_input.ByteSize(),
                  _examples_log(target, model_input, spec, result))
        return spec, result

    def multi_inference(self, request: inference_pb2.MultiInferenceRequest):
        """The MultiInferenceResponse; the version is the first task's (as TF Serving)."""
        first = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
        target = ModelTarget.from_proto(first)
        servable = self.resolve(target)
        response = example_apis.multi_inference(servable, request)
        self._log(target, servable, "multi_inference_log", request.ByteSize(),
                  lambda log: log.CopyFrom(prediction_log_pb2.MultiInferenceLog(request=request, response=response)))
        return response

    # -- request logging -------------------------------------------------------------------

    def _log(self, target: ModelTarget, servable: Servable, field: str, size: int, build) -> None:
        """Hand an answered request to its model's request log, if it has one (request_log):
        the PredictionLog is built on the log's thread, not this one; `build(log)` writes the
        request and answer into its `field`."""
        logging_config = self.manager.logging_config(target.name)
        if logging_config is None:
            return

        def record() -> prediction_log_pb2.PredictionLog:
            entry = prediction_log_pb2.PredictionLog(log_metadata=logging_pb2.LogMetadata(
                model_spec=target.served_by(servable.version), sampling_config=logging_config.sampling_config,
                saved_model_tags=list(servable.tags), timestamp_secs=int(time.time())))
            build(getattr(entry, field))
            return entry

        self.request_logs.log(target.name, logging_config, size, record)

    # -- Status and metadata ---------------------------------------------------------------

    def status(self, target: ModelTarget) -> get_model_status_pb2.GetModelStatusResponse:
        """GetModelStatus: a version's state, or every version's. A label is not looked at
        (TF Serving's GetModelStatus reads only the name and the version)."""
        return self.manager.status(target.name, target.version)

    def metadata(self, target: ModelTarget, fields=(SIGNATURE_DEF_FIELD,)):
        """GetModelMetadata: the signature defs of the target version."""
        if not fields:
            raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        for field in fields:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid_argument(f"Metadata field {field} is not supported")
        servable = self.resolve(target)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, definition in servable.meta_graph.signature_def.items():
            signatures.signature_def[key].CopyFrom(definition)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signatures)
        return response


def _examples_log(target: ModelTarget, model_input, spec, result):
    """What writes a ClassifyLog or RegressLog (the same fields: request's spec and input,
    response's spec and result) in place."""
    def build(log) -> None:
        target.fill(log.request.model_spec)
        log.request.input.CopyFrom(model_input)
        log.response.model_spec.CopyFrom(spec)
        log.response.result.CopyFrom(result)

    return build


def _predict_record(target: ModelTarget, servable: Servable, logging_config, inputs, output_filter, outputs,
                    request_id: str | None) -> bytes:
    """A Predict's PredictionLog, serialized (predict_log_wire; this runs for every logged
    request): the inputs as decoded (the signature's defaults filled in) and the outputs.
    The client's request id goes into the request's `client_id`, the one field of TF
    Serving's PredictRequest that names where a request came from; an id over
    MAX_REQUEST_ID characters is not kept (a client must not grow every record by a megabyte)."""
    served_by, request_spec = _specs(target, servable.version)
    # LogMetadata's timestamp_secs (field 4, a varint) appended to its cached other fields.
    metadata = _metadata_fields(served_by, logging_config.sampling_config.SerializeToString(), tuple(servable.tags)) \
        + b"\x20" + predict_log_wire.varint(int(time.time()))
    client_id = request_id.encode("utf-8", "replace") if request_id and len(request_id) <= MAX_REQUEST_ID else b""
    return predict_log_wire.predict_log_record(metadata, request_spec, inputs, output_filter, client_id, served_by,
                                               outputs)


@functools.lru_cache(maxsize=1024)
def _specs(target: ModelTarget, version: int) -> tuple[bytes, bytes]:
    """The serialized ModelSpecs of a record: the response's (the version that served) and
    the request's (as asked)."""
    request_spec = model_pb2.ModelSpec()
    target.fill(request_spec)
    return target.served_by(version).SerializeToString(), request_spec.SerializeToString()


@functools.lru_cache(maxsize=1024)
def _metadata_fields(served_by: bytes, sampling_config: bytes, tags: tuple[str, ...]) -> bytes:
    """A record's LogMetadata but its timestamp, serialized."""
    metadata = logging_pb2.LogMetadata(model_spec=model_pb2.ModelSpec.FromString(served_by),
                                       saved_model_tags=list(tags))
    metadata.sampling_config.ParseFromString(sampling_config)
    return metadata.SerializeToString()
