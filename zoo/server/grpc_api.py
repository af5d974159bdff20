"""The gRPC front end: the official `PredictionService` and `ModelService` servicers.

Requests and responses are the `tensorflow-serving-api` protos; errors end the call with
TF Serving's status code and message (cut at 1,024 characters, as ToGRPCStatus cuts them).
Predict answers with typed value fields (`float_val`...), as TF Serving does, or with raw
`tensor_content` under `--enable_serialization_as_tensor_content`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tensorflow_serving.apis import (
    classification_pb2,
    model_management_pb2,
    model_service_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tritonclient.grpc import service_pb2_grpc

from zoo.errors import ConfigError
from zoo.protocol import tensor_protos
from zoo.protocol.model_spec import ModelTarget
from zoo.protocol.names import MAX_MESSAGE_BYTES
from zoo.server import tls
from zoo.server.data_plane import ServingCore
from zoo.server.errors import invalid_argument, not_found
from zoo.server.grpc_calls import deadline as _deadline
from zoo.server.grpc_calls import serve as _serve
from zoo.server.memory_budget import MemoryBudget
from zoo.server.tensor_checks import DEFAULT_MAX_ELEMENTS, decode_request_tensors
from zoo.server.v2_grpc import SERVICE_NAME as V2_SERVICE_NAME
from zoo.server.v2_grpc import InferenceService

log = logging.getLogger("zoo.server")

MISSING_MODEL_SPEC = "Missing ModelSpec"


def _target(request) -> ModelTarget:
    if not request.HasField("model_spec"):
        raise invalid_argument(MISSING_MODEL_SPEC)
    return ModelTarget.from_proto(request.model_spec)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify, Regress, MultiInference and GetModelMetadata.

    Args:
        core: what serves the requests.
        tensor_content: answer Predict with `tensor_content` rather than typed value fields.
        max_tensor_elements: the most elements a Predict request's inputs may declare.
        budget: the memory budget for requests in flight (shared with REST); None for none.
    """

    def __init__(self, core: ServingCore, tensor_content: bool = False,
                 max_tensor_elements: int = DEFAULT_MAX_ELEMENTS, budget: MemoryBudget | None = None):
        self.core = core
        self.tensor_content = tensor_content
        self.max_tensor_elements = max_tensor_elements
        self.budget = budget

    @_serve
    def Predict(self, request, context):
        """PredictionService.Predict."""
        name = request.model_spec.name
        with self.core.observe(name, "Predict", "GRPC"):
            target = _target(request)
            # A shape declared and not sent must not allocate its gigabytes (tensor_checks).
            inputs = decode_request_tensors(request.inputs, request.ByteSize(), self.max_tensor_elements)
            servable, _, outputs = self.core.predict(
                target, inputs, tuple(request.output_filter), timeout=_deadline(context)
            )
            response = predict_pb2.PredictResponse(model_spec=target.served_by(servable.version))
            for alias, value in outputs.items():
                response.outputs[alias].CopyFrom(tensor_protos.to_proto(value, as_content=self.tensor_content))
            return response

    @_serve
    def Classify(self, request, context):
        """PredictionService.Classify."""
        return self._on_examples("Classify", self.core.classify, classification_pb2.ClassificationResponse,
                                 request, context)

    @_serve
    def Regress(self, request, context):
        """PredictionService.Regress."""
        return self._on_examples("Regress", self.core.regress, regression_pb2.RegressionResponse,
                                 request, context)

    def _on_examples(self, api: str, run, response_type, request, context):
        """Classify and Regress: tf.Examples in, one result message out."""
        with self.core.observe(request.model_spec.name, api, "GRPC"):
            spec, result = run(_target(request), request.input)
            return response_type(model_spec=spec, result=result)

    @_serve
    def MultiInference(self, request, context):
        """PredictionService.MultiInference."""
        return self.core.multi_inference(request)

    @_serve
    def GetModelMetadata(self, request, context):
        """PredictionService.GetModelMetadata."""
        return self.core.metadata(_target(request), tuple(request.metadata_field))


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus and HandleReloadConfigRequest."""

    def __init__(self, core: ServingCore):
        self.core = core

    @_serve
    def GetModelStatus(self, request, context):
        """ModelService.GetModelStatus."""
        target = _target(request)
        if not target.name:
            raise not_found("Could not find any versions of model ")
        return self.core.status(target)

    @_serve
    def HandleReloadConfigRequest(self, request, context):
        """ModelService.HandleReloadConfigRequest: apply a new model config."""
        # TF Serving also puts the status in the response, but a call that fails sends no
        # response: the client sees the same code and message either way.
        self.core.manager.reload(request.config)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0
        for metric_name in request.metric_names:  # the zoo keeps no such counters: no increase
            response.metric.add(name=metric_name, int64_value_increase=0)
        return response


@dataclasses.dataclass(frozen=True)
class GrpcOptions:
    """The gRPC server's flags: --port, --grpc_socket_path, --grpc_channel_arguments,
    --grpc_max_threads, --enable_serialization_as_tensor_content, --max_tensor_elements,
    and --ssl_config_file's SSLConfig (None: plaintext)."""

    host: str = "127.0.0.1"
    port: int = 8500  # 0: any free port; None: no TCP port (a socket path only)
    socket_path: str = ""
    channel_arguments: str = ""
    max_threads: int = 32
    tensor_content: bool = False
    max_tensor_elements: int = DEFAULT_MAX_ELEMENTS  # zoo only: see tensor_checks
    ssl_config: object = None  # a tensorflow.serving.SSLConfig (zoo.server.tls)


def parse_channel_arguments(text: str) -> list[tuple[str, object]]:
    """--grpc_channel_arguments: "key=value,key=value", values that read as int32 as ints."""
    arguments = []
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--grpc_channel_arguments: '{item}' is not key=value")
        try:
            number = int(value)
            arguments.append((key, number if -(2**31) <= number < 2**31 else value))
        except ValueError:
            arguments.append((key, value))
    return arguments


def server_options(channel_arguments: str) -> list[tuple[str, object]]:
    """The gRPC server's channel arguments: the zoo's message-size defaults, each replaced by
    the user's value for the same key (gRPC keeps the first of a repeated key, so a user's
    limit placed after the zoo's would be ignored)."""
    options = {"grpc.max_receive_message_length": MAX_MESSAGE_BYTES, "grpc.max_send_message_length": MAX_MESSAGE_BYTES}
    options.update(parse_channel_arguments(channel_arguments))
    return list(options.items())


def start_health_server(health_servicer, host: str, port: int) -> tuple[grpc.Server, int]:
    """grpc.health.v1 alone, in plaintext, on its own port (`--grpc_health_port`)."""
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="zoo-health"))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the gRPC health port {host}:{port}")
    server.start()
    return server, bound


def start_grpc_server(core: ServingCore, options: GrpcOptions, health_servicer=None,
                      budget: MemoryBudget | None = None) -> tuple[grpc.Server, int | None]:
    """Start the gRPC server: TF Serving's two services, gRPC health checking (when a
    servicer is given) and server reflection, over TLS when `options.ssl_config` is set.
    `budget` bounds the memory of requests in flight. Returns the server and the TCP port
    it bound (None without one)."""
    if options.port is None and not options.socket_path:
        raise ConfigError("At least one of --port or --grpc_socket_path must be set.")
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=options.max_threads, thread_name_prefix="zoo-grpc"),
        options=server_options(options.channel_arguments),
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(core, options.tensor_content, options.max_tensor_elements, budget), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(core), server)
    services = [prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"].full_name,
                model_service_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name]
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceService(core, options.max_tensor_elements, budget), server)
    services.append(V2_SERVICE_NAME)
    if health_servicer is not None:
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        services.append(health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
    reflection.enable_server_reflection([*services, reflection.SERVICE_NAME], server)
    credentials = tls.server_credentials(options.ssl_config) if options.ssl_config is not None else None
    bound = None
    if options.port is not None:
        address = f"{options.host}:{options.port}"
        bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
        if bound == 0:
            raise OSError(f"cannot bind the gRPC port {options.host}:{options.port}")
    if options.socket_path:
        # A Unix socket is reached only through the file system's permissions: plaintext there.
        if not server.add_insecure_port(f"unix:{options.socket_path}"):
            raise OSError(f"cannot bind the gRPC socket {options.socket_path}")
    server.start()
    return server, bound
