"""`RestClient`: TF Serving's REST API over keep-alive HTTP/1.1 connections."""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any

import numpy as np

from zoo.client.base import ClientError, ModelClient, SignatureInfo, SignatureTensor, Unavailable
from zoo.protocol.model_spec import ModelTarget

DEFAULT_REST_ADDRESS = "localhost:8501"
_RETRYABLE_STATUS = 503  # UNAVAILABLE


class RestClient(ModelClient):
    """A client for `zoo serve` or TF Serving's REST port.

    Args:
        address: "host:port" of the REST API.
        timeout: seconds per request.
        retries: how often to retry a request the server could not take (connection
            refused or reset, 503); other errors are never retried.
        tls: a ClientTls for HTTPS (the server's CA; the client's certificate for mutual
            TLS); None for plain HTTP.
    """

    def __init__(self, address: str = DEFAULT_REST_ADDRESS, **options):
        super().__init__(address, **options)
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ClientError(f"a REST address is host:port, got '{address}'")
        self._host, self._port = host, int(port)
        self._local = threading.local()  # one connection per thread: http.client is not shared
        self._ssl_context = self.tls.ssl_context() if self.tls is not None else None

    def close(self) -> None:
        """Close the HTTP session's connections."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    # -- transport ---------------------------------------------------------------------------

    def _predict(self, ref, info, columns):
        inputs = {name: _jsonable(columns[name], info.inputs[name]) for name in info.inputs}
        body = self._request("POST", ref, ":predict", {"signature_name": ref.signature, "inputs": inputs})
        outputs = body["outputs"]
        if not isinstance(outputs, dict):  # one output: TF Serving drops its name
            (name,) = info.outputs
            outputs = {name: outputs}
        return {name: np.asarray(value) for name, value in outputs.items()}

    def _classify(self, ref, rows):
        body = self._request("POST", ref, ":classify", {"signature_name": ref.signature, "examples": rows})
        return [[(label, score) for label, score in row] for row in body["results"]]

    def _regress(self, ref, rows):
        body = self._request("POST", ref, ":regress", {"signature_name": ref.signature, "examples": rows})
        return list(body["results"])

    def _status(self, ref):
        body = self._request("GET", ref)
        return [
            {"version": int(v["version"]), "state": v["state"],
             "error_code": v.get("status", {}).get("error_code", "OK"),
             "error_message": v.get("status", {}).get("error_message", "")}
            for v in body["model_version_status"]
        ]

    def _metadata(self, ref):
        body = self._request("GET", ref, "/metadata")
        definitions = body["metadata"]["signature_def"]["signature_def"]
        return {name: _signature(name, definition) for name, definition in definitions.items()}

    def _request(self, method: str, ref: ModelTarget, suffix: str = "", payload: Any = None) -> dict:
        path = ref.rest_path(suffix)
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        connection = self._connection()
        try:
            connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            text = response.read()
        except (ConnectionError, http.client.HTTPException, OSError) as error:
            self.close()  # a broken keep-alive connection is not reused
            raise Unavailable(f"cannot reach the model server at {self.address} ({error})") from None
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            raise ClientError(f"{self.address} answered {response.status} with no JSON: {text[:200]!r}") from None
        if response.status == 200:
            return body
        message = body.get("error", text) if isinstance(body, dict) else text
        raise refusal(response.status, message, ref.name, self.address)

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self._ssl_context is None:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
            else:
                connection = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                                         context=self._ssl_context)
            self._local.connection = connection
        return connection


def refusal(status: int, message, model: str, address: str) -> ClientError:
    """The error for a non-200 answer: Unavailable (worth retrying) for 503."""
    if status == _RETRYABLE_STATUS:
        return Unavailable(f"model '{model}' on {address} is unavailable: {message}")
    if status == 404:
        return ClientError(f"model '{model}' not found on {address}: {message}")
    return ClientError(f"model '{model}' on {address} refused the request ({status}): {message}")


def _jsonable(column: np.ndarray, tensor: SignatureTensor):
    if tensor.dtype == "DT_STRING":
        return [str(value) for value in column]
    return column.tolist()


def _signature(name: str, definition: dict) -> SignatureInfo:
    def tensors(entries: dict) -> dict[str, SignatureTensor]:
        result = {}
        for key, info in entries.items():
            shape = info.get("tensor_shape", {})
            dims = None if shape.get("unknown_rank") else tuple(int(d["size"]) for d in shape.get("dim", []))
            result[key] = SignatureTensor(info.get("dtype", "DT_INVALID"), dims)
        return result

    return SignatureInfo(name, definition.get("method_name", ""), tensors(definition.get("inputs", {})),
                         tensors(definition.get("outputs", {})))
