"""Clients for TF Serving's API (`zoo serve` or TensorFlow Serving) and for the Open Inference
Protocol (V2: `zoo serve`, Triton, KServe): REST and gRPC, one interface, DataFrames in and out;
and batch predictions from a CSV file (`zoo.client.csv_predictions`).

    from zoo.client import RestClient, GrpcClient
    with GrpcClient("localhost:8500") as client:
        predictions = client.predict("dnn-regressor", frame)
"""

from zoo.client.base import ClientError, ClientTls, ModelClient, Unavailable
from zoo.client.grpc_client import DEFAULT_GRPC_ADDRESS, GrpcClient
from zoo.client.open_inference import V2GrpcClient, V2RestClient
from zoo.client.rest import DEFAULT_REST_ADDRESS, RestClient

__all__ = [
    "DEFAULT_GRPC_ADDRESS",
    "DEFAULT_REST_ADDRESS",
    "ClientError",
    "ClientTls",
    "GrpcClient",
    "ModelClient",
    "RestClient",
    "Unavailable",
    "V2GrpcClient",
    "V2RestClient",
    "client_class",
    "default_address",
]

PROTOCOLS = ("v1", "v2")  # TF Serving's API, the Open Inference Protocol


def client_class(via: str, protocol: str = "v1") -> type[ModelClient]:
    """The client for a transport ("grpc" or "rest") and a protocol ("v1": TF Serving's API,
    "v2": the Open Inference Protocol)."""
    if protocol not in PROTOCOLS:
        raise ClientError(f"protocol must be one of {', '.join(PROTOCOLS)}, got '{protocol}'")
    if protocol == "v2":
        return V2RestClient if via == "rest" else V2GrpcClient
    return RestClient if via == "rest" else GrpcClient


def default_address(via: str) -> str:
    """Where TF Serving (and `zoo serve`) listens by default for "grpc" or "rest"."""
    return DEFAULT_REST_ADDRESS if via == "rest" else DEFAULT_GRPC_ADDRESS
