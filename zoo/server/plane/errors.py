"""Serving errors with TensorFlow Serving's status codes, and their REST translation.

Every failure inside the server is a `ServingError` carrying a gRPC status code; the gRPC
front end returns that code as it is, and the REST front end maps it to the HTTP status
TF Serving uses (tensorflow_serving/model_servers/http_server.cc, ToHTTPStatusCode).
"""

from __future__ import annotations

import grpc

Code = grpc.StatusCode

HTTP_STATUS = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}

# tensorflow.error.Code numbers, as GetModelStatus's StatusProto carries them.
TF_ERROR_CODE = {code: code.value[0] for code in Code}


class ServingError(Exception):
    """A request that cannot be served, with the status code TF Serving would return."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        """The HTTP status TF Serving's REST API gives this error code."""
        return HTTP_STATUS.get(self.code, 500)


def invalid_argument(message: str) -> ServingError:
    """An INVALID_ARGUMENT error with TF Serving's wording."""
    return ServingError(Code.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    """A NOT_FOUND error."""
    return ServingError(Code.NOT_FOUND, message)
