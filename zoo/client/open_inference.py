"""Clients for the Open Inference Protocol (V2): `V2RestClient` and `V2GrpcClient`.

The same interface and DataFrames as the TF Serving API's clients, over V2: tensors go as
raw bytes both ways (REST's binary tensor data extension, gRPC's raw contents), so no number
is written as text. V2 names a model's version by a string, which `zoo serve` reads as a
version number or a label. V2 describes one signature, the default, and these clients call
only that one (`zoo serve` takes a `signature_name` parameter; other servers have no
signatures). V2 has no Classify or Regress: those calls say so. Works against `zoo serve`,
Triton, KServe and any V2 server that has the model's inputs by name.
"""

from __future__ import annotations

import http.client
import json

import numpy as np

from zoo.client.base import ClientError, SignatureInfo, SignatureTensor, Unavailable
from zoo.client.grpc_client import GrpcClient
from zoo.client.rest import RestClient, refusal
from zoo.protocol import open_inference as protocol
from zoo.protocol.model_spec import ModelTarget
from zoo.protocol.names import DEFAULT_SIGNATURE

HEADER_LENGTH = "Inference-Header-Content-Length"


class _OpenInference:
    """What both V2 transports share (before their TF Serving API client in the MRO, whose
    connection handling they keep): versions as strings, signatures from V2 metadata."""

    def _classify(self, ref, rows):
        raise ClientError("the Open Inference Protocol (V2) has no Classify API: use predict, or TF Serving's API")

    def _regress(self, ref, rows):
        raise ClientError("the Open Inference Protocol (V2) has no Regress API: use predict, or TF Serving's API")

    def _status(self, ref):
        metadata = self._model_metadata(ref)
        return [{"version": int(v), "state": "AVAILABLE", "error_code": "OK", "error_message": ""}
                for v in metadata["versions"] if v.isdigit()]

    def _metadata(self, ref):
        metadata = self._model_metadata(ref)

        def tensors(entries) -> dict[str, SignatureTensor]:
            return {t["name"]: SignatureTensor(protocol.TF_TYPES.get(t["datatype"], "DT_INVALID"),
                                               tuple(int(d) for d in t["shape"])) for t in entries}

        # V2's metadata describes one signature, the default: the only one these clients call.
        return {DEFAULT_SIGNATURE: SignatureInfo(DEFAULT_SIGNATURE, "", tensors(metadata["inputs"]),
                                                 tensors(metadata["outputs"]))}

    def _model_metadata(self, ref: ModelTarget) -> dict:
        raise NotImplementedError

    @staticmethod
    def _inputs(info: SignatureInfo, columns) -> list[tuple[str, str, list[int], bytes]]:
        """Each input as (name, datatype, shape, raw bytes), in the signature's dtype."""
        inputs = []
        for name, tensor in info.inputs.items():
            datatype = protocol.V2_TYPES.get(tensor.dtype)
            if datatype is None:
                raise ClientError(f"input '{name}': dtype {tensor.dtype} has no Open Inference Protocol datatype")
            value = np.asarray(columns[name], dtype=object if datatype == "BYTES" else protocol.numpy_dtype(datatype))
            inputs.append((name, datatype, list(value.shape), protocol.to_raw(value, datatype)))
        return inputs


def version_string(ref: ModelTarget) -> str:
    """A target's V2 version string: the number, the label, or "" for the latest."""
    if ref.version is not None:
        return str(ref.version)
    return ref.label or ""


class V2RestClient(_OpenInference, RestClient):
    """The Open Inference Protocol over REST (binary tensor data both ways).

    Args: as `RestClient`'s.
    """

    def _model_metadata(self, ref):
        return json.loads(self._raw_request("GET", _path(ref), ref)[0])

    def _predict(self, ref, info, columns):
        inputs = self._inputs(info, columns)
        header = json.dumps({
            "inputs": [{"name": name, "datatype": datatype, "shape": shape,
                        "parameters": {"binary_data_size": len(raw)}} for name, datatype, shape, raw in inputs],
            "parameters": {"binary_data_output": True},
        }).encode()
        body = header + b"".join(raw for *_, raw in inputs)
        payload, length = self._raw_request("POST", _path(ref) + "/infer", ref, body, {
            HEADER_LENGTH: str(len(header)), "Content-Type": "application/octet-stream"})
        answer = json.loads(payload[:length])
        outputs, offset = {}, length
        for output in answer["outputs"]:
            size = output.get("parameters", {}).get("binary_data_size")
            if size is None:  # a server that answered in JSON after all
                dtype = object if output["datatype"] == "BYTES" else protocol.numpy_dtype(output["datatype"])
                outputs[output["name"]] = np.asarray(output["data"], dtype=dtype).reshape(output["shape"])
                continue
            outputs[output["name"]] = protocol.from_raw(payload[offset:offset + size], output["datatype"],
                                                        output["shape"])
            offset += size
        return outputs

    def _raw_request(self, method: str, path: str, ref: ModelTarget, body: bytes | None = None,
                     headers: dict | None = None) -> tuple[bytes, int]:
        """(the answer's bytes, its JSON header's length) for one request."""
        connection = self._connection()
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            payload = response.read()
        except (ConnectionError, http.client.HTTPException, OSError) as error:
            self.close()
            raise Unavailable(f"cannot reach the model server at {self.address} ({error})") from None
        if response.status == 200:
            length = response.getheader(HEADER_LENGTH)
            return payload, int(length) if length and length.isdigit() else len(payload)
        try:
            message = json.loads(payload).get("error", payload[:200])
        except (json.JSONDecodeError, AttributeError):
            message = payload[:200]
        raise refusal(response.status, message, ref.name, self.address)


def _path(ref: ModelTarget) -> str:
    from urllib.parse import quote

    version = version_string(ref)
    return f"/v2/models/{quote(ref.name, safe='')}" + (f"/versions/{quote(version, safe='')}" if version else "")


class V2GrpcClient(_OpenInference, GrpcClient):
    """The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`, raw contents).

    Args: as `GrpcClient`'s.
    """

    def __init__(self, address: str = "localhost:8500", **options):
        from tritonclient.grpc import service_pb2, service_pb2_grpc

        super().__init__(address, **options)
        self._messages = service_pb2
        self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)

    def _model_metadata(self, ref):
        response = self._rpc(self._stub.ModelMetadata,
                             self._messages.ModelMetadataRequest(name=ref.name, version=version_string(ref)), ref)
        return {"versions": list(response.versions),
                "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in response.inputs],
                "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in response.outputs]}

    def _predict(self, ref, info, columns):
        request = self._messages.ModelInferRequest(model_name=ref.name, model_version=version_string(ref))
        for name, datatype, shape, raw in self._inputs(info, columns):
            request.inputs.add(name=name, datatype=datatype, shape=shape)
            request.raw_input_contents.append(raw)
        response = self._rpc(self._stub.ModelInfer, request, ref)
        return {output.name: protocol.from_raw(raw, output.datatype, list(output.shape))
                for output, raw in zip(response.outputs, response.raw_output_contents)}
