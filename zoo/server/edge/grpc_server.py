"""The gRPC edge: one server for TF Serving's services and the Open Inference Protocol's.

TF Serving's PredictionService and ModelService (`zoo.server.frontends.grpc_v1`), V2's
GRPCInferenceService (`grpc_v2`), gRPC health checking and server reflection on one port,
over TLS when --ssl_config_file is set (and a Unix socket in plaintext); health alone on its
own plaintext port for probes that speak no TLS. Channel arguments are TF Serving's flag.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tensorflow_serving.apis import (
    model_service_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)
from tritonclient.grpc import service_pb2_grpc

from zoo.errors import ConfigError
from zoo.protocol.names import MAX_MESSAGE_BYTES
from zoo.server.edge import tls
from zoo.server.edge.memory_budget import MemoryBudget
from zoo.server.frontends.grpc_v1 import ModelService, PredictionService
from zoo.server.frontends.grpc_v2 import SERVICE_NAME as V2_SERVICE_NAME
from zoo.server.frontends.grpc_v2 import InferenceService
from zoo.server.frontends.tensor_checks import DEFAULT_MAX_ELEMENTS
from zoo.server.plane.data_plane import DataPlane


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
    ssl_config: object = None  # a tensorflow.serving.SSLConfig (zoo.server.edge.tls)


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


def start_grpc_server(plane: DataPlane, options: GrpcOptions, health_servicer=None,
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
        PredictionService(plane, options.tensor_content, options.max_tensor_elements, budget), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(plane), server)
    services = [prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"].full_name,
                model_service_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name]
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceService(plane, options.max_tensor_elements, budget), server)
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
