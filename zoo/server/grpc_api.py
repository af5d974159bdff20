"""The gRPC front end: the official `PredictionService` and `ModelService` servicers.

Requests and responses are the `tensorflow-serving-api` protos; errors end the call with
TF Serving's status code (NOT_FOUND, INVALID_ARGUMENT, UNAVAILABLE...) and its message.
"""

from __future__ import annotations

import concurrent.futures
import logging

import grpc
import numpy as np
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from zoo import tensor_protos
from zoo.server.core import ServingCore, Target
from zoo.server.errors import Code, ServingError, invalid_argument

log = logging.getLogger("zoo.server")
MAX_MESSAGE_BYTES = 2**31 - 1  # as TF Serving: large batches must not hit gRPC's 4 MB default


def _serve(method):
    """Run a servicer method, turning ServingErrors into the call's status."""

    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as error:
            context.abort(error.code, error.message)
        except Exception as error:  # noqa: BLE001  (the server keeps serving)
            log.exception("internal error in %s", method.__name__)
            context.abort(Code.INTERNAL, f"Internal error: {type(error).__name__}: {error}")

    wrapper.__name__ = method.__name__
    return wrapper


def _deadline(context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e9 else max(remaining, 0.0)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ServingCore):
        self.core = core

    @_serve
    def Predict(self, request, context):
        target = Target.from_spec(request.model_spec)
        with self.core.observe(target.name, "predict", "GRPC"):
            inputs = {name: tensor_to_array(name, proto) for name, proto in request.inputs.items()}
            servable, signature, outputs = self.core.predict(
                target, inputs, tuple(request.output_filter), timeout=_deadline(context), answer_at_deadline=False
            )
            response = predict_pb2.PredictResponse(model_spec=target.spec(servable, signature.name))
            for name, value in outputs.items():
                response.outputs[name].CopyFrom(tensor_protos.to_proto(value))
            return response

    @_serve
    def Classify(self, request, context):
        return self._on_examples("classify", self.core.classify, classification_pb2.ClassificationResponse,
                                 request, context)

    @_serve
    def Regress(self, request, context):
        return self._on_examples("regress", self.core.regress, regression_pb2.RegressionResponse,
                                 request, context)

    def _on_examples(self, api: str, run, response_type, request, context):
        """Classify and Regress: tf.Examples in, one result message out."""
        target = Target.from_spec(request.model_spec)
        with self.core.observe(target.name, api, "GRPC"):
            spec, result = run(target, request.input, timeout=_deadline(context))
            return response_type(model_spec=spec, result=result)

    @_serve
    def MultiInference(self, request, context):
        """Several Classify/Regress tasks over one input, as TF Serving's MultiInference."""
        response = inference_pb2.MultiInferenceResponse()
        names = {task.model_spec.name for task in request.tasks}
        if len(names) > 1:
            raise invalid_argument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        for task in request.tasks:
            target = Target.from_spec(task.model_spec)
            with self.core.observe(target.name, "multi_inference", "GRPC"):
                result = response.results.add()
                if task.method_name == "tensorflow/serving/classify":
                    spec, classification = self.core.classify(target, request.input, timeout=_deadline(context))
                    result.classification_result.CopyFrom(classification)
                elif task.method_name == "tensorflow/serving/regress":
                    spec, regression = self.core.regress(target, request.input, timeout=_deadline(context))
                    result.regression_result.CopyFrom(regression)
                else:
                    raise invalid_argument(f"Unsupported signature method_name: {task.method_name}")
                result.model_spec.CopyFrom(spec)
        return response

    @_serve
    def GetModelMetadata(self, request, context):
        target = Target.from_spec(request.model_spec)
        with self.core.observe(target.name, "metadata", "GRPC"):
            return self.core.metadata(target, tuple(request.metadata_field))


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ServingCore):
        self.core = core

    @_serve
    def GetModelStatus(self, request, context):
        target = Target.from_spec(request.model_spec)
        if not target.name:
            raise invalid_argument("Missing model name in request.")
        with self.core.observe(target.name, "status", "GRPC"):
            return self.core.status(target)

    @_serve
    def HandleReloadConfigRequest(self, request, context):
        response = model_management_pb2.ReloadConfigResponse()
        if request.config.WhichOneof("config") != "model_config_list":
            raise invalid_argument("ReloadConfigRequest needs a model_config_list")
        self.core.manager.reload(request.config)
        response.status.error_code = 0
        return response


def start_grpc_server(core: ServingCore, host: str, port: int, workers: int = 32) -> tuple[grpc.Server, int]:
    """Start the gRPC server; returns it and the port it bound (port 0: any free port)."""
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zoo-grpc"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(core), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(core), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the gRPC port {host}:{port}")
    server.start()
    return server, bound


def tensor_to_array(name: str, proto) -> np.ndarray:
    try:
        return tensor_protos.to_array(proto)
    except (TypeError, ValueError) as error:
        raise invalid_argument(f"input '{name}': not a valid TensorProto ({error})") from None

