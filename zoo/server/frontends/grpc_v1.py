"""TF Serving's gRPC API: the official `PredictionService` and `ModelService` servicers.

Requests and responses are the `tensorflow-serving-api` protos; errors end the call with
TF Serving's status code and message (cut at 1,024 characters, as ToGRPCStatus cuts them).
Predict answers with typed value fields (`float_val`...), as TF Serving does, or with raw
`tensor_content` under `--enable_serialization_as_tensor_content`.
"""

from __future__ import annotations

import logging

from tensorflow_serving.apis import (
    classification_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from zoo.protocol import tensor_protos
from zoo.protocol.model_spec import ModelTarget
from zoo.server.edge.memory_budget import MemoryBudget
from zoo.server.frontends.grpc_calls import deadline as _deadline
from zoo.server.frontends.grpc_calls import request_id
from zoo.server.frontends.grpc_calls import serve as _serve
from zoo.server.frontends.tensor_checks import DEFAULT_MAX_ELEMENTS, decode_request_tensors
from zoo.server.plane.data_plane import DataPlane
from zoo.server.plane.errors import invalid_argument, not_found

log = logging.getLogger("zoo.server")

MISSING_MODEL_SPEC = "Missing ModelSpec"


def _target(request) -> ModelTarget:
    if not request.HasField("model_spec"):
        raise invalid_argument(MISSING_MODEL_SPEC)
    return ModelTarget.from_proto(request.model_spec)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify, Regress, MultiInference and GetModelMetadata.

    Args:
        plane: what serves the requests.
        tensor_content: answer Predict with `tensor_content` rather than typed value fields.
        max_tensor_elements: the most elements a Predict request's inputs may declare.
        budget: the memory budget for requests in flight (shared with REST); None for none.
    """

    def __init__(self, plane: DataPlane, tensor_content: bool = False,
                 max_tensor_elements: int = DEFAULT_MAX_ELEMENTS, budget: MemoryBudget | None = None):
        self.plane = plane
        self.tensor_content = tensor_content
        self.max_tensor_elements = max_tensor_elements
        self.budget = budget

    @_serve
    def Predict(self, request, context):
        """PredictionService.Predict."""
        name = request.model_spec.name
        with self.plane.observe(name, "Predict", "GRPC"):
            target = _target(request)
            # A shape declared and not sent must not allocate its gigabytes (tensor_checks).
            inputs = decode_request_tensors(request.inputs, request.ByteSize(), self.max_tensor_elements)
            servable, _, outputs = self.plane.predict(
                target, inputs, tuple(request.output_filter), timeout=_deadline(context),
                request_id=request_id(context),
            )
            response = predict_pb2.PredictResponse(model_spec=target.served_by(servable.version))
            for alias, value in outputs.items():
                response.outputs[alias].CopyFrom(tensor_protos.to_proto(value, as_content=self.tensor_content))
            return response

    @_serve
    def Classify(self, request, context):
        """PredictionService.Classify."""
        return self._on_examples("Classify", self.plane.classify, classification_pb2.ClassificationResponse,
                                 request, context)

    @_serve
    def Regress(self, request, context):
        """PredictionService.Regress."""
        return self._on_examples("Regress", self.plane.regress, regression_pb2.RegressionResponse,
                                 request, context)

    def _on_examples(self, api: str, run, response_type, request, context):
        """Classify and Regress: tf.Examples in, one result message out."""
        with self.plane.observe(request.model_spec.name, api, "GRPC"):
            spec, result = run(_target(request), request.input)
            return response_type(model_spec=spec, result=result)

    @_serve
    def MultiInference(self, request, context):
        """PredictionService.MultiInference."""
        return self.plane.multi_inference(request)

    @_serve
    def GetModelMetadata(self, request, context):
        """PredictionService.GetModelMetadata."""
        return self.plane.metadata(_target(request), tuple(request.metadata_field))


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus and HandleReloadConfigRequest."""

    def __init__(self, plane: DataPlane):
        self.plane = plane

    @_serve
    def GetModelStatus(self, request, context):
        """ModelService.GetModelStatus."""
        target = _target(request)
        if not target.name:
            raise not_found("Could not find any versions of model ")
        return self.plane.status(target)

    @_serve
    def HandleReloadConfigRequest(self, request, context):
        """ModelService.HandleReloadConfigRequest: apply a new model config."""
        # TF Serving also puts the status in the response, but a call that fails sends no
        # response: the client sees the same code and message either way.
        self.plane.manager.reload(request.config)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0
        for metric_name in request.metric_names:  # the zoo keeps no such counters: no increase
            response.metric.add(name=metric_name, int64_value_increase=0)
        return response
