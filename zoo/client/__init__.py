"""Clients for TF Serving's API (`zoo serve` or TensorFlow Serving): REST and gRPC, one
interface, DataFrames in and out; and batch predictions from a CSV file (`zoo.client.csv_predictions`).

    from zoo.client import RestClient, GrpcClient
    with GrpcClient("localhost:8500") as client:
        predictions = client.predict("dnn-regressor", frame)
"""

from zoo.client.base import ClientError, ClientTls, ModelClient, Unavailable
from zoo.client.grpc_client import DEFAULT_GRPC_ADDRESS, GrpcClient
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
    "default_address",
]


def default_address(via: str) -> str:
    """Where TF Serving (and `zoo serve`) listens by default for "grpc" or "rest"."""
    return DEFAULT_REST_ADDRESS if via == "rest" else DEFAULT_GRPC_ADDRESS
