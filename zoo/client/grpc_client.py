"""`GrpcClient`: TF Serving's gRPC API through the official `tensorflow-serving-api` stubs."""

from __future__ import annotations

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from zoo.client.base import ClientError, ModelClient, SignatureInfo, Unavailable
from zoo.protocol import tensor_protos
from zoo.protocol.model_spec import ModelTarget
from zoo.protocol.names import MAX_MESSAGE_BYTES as _MAX_MESSAGE_BYTES

DEFAULT_GRPC_ADDRESS = "localhost:8500"

_STATE_NAMES = {number: name for name, number in get_model_status_pb2.ModelVersionStatus.State.items()}
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}  # TF's error codes are gRPC's


class GrpcClient(ModelClient):
    """A client for `zoo serve` or TF Serving's gRPC port.

    Args:
        address: "host:port" of the gRPC API.
        timeout: the deadline of each call, in seconds.
        retries: how often to retry a call that ended UNAVAILABLE; nothing else is retried.
        tls: a ClientTls for a server started with --ssl_config_file (its CA; the client's
            certificate for mutual TLS); None for plaintext.
    """

    def __init__(self, address: str = DEFAULT_GRPC_ADDRESS, **options):
        super().__init__(address, **options)
        channel_options = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
        ]
        if self.tls is None:
            self._channel = grpc.insecure_channel(address, options=channel_options)
        else:
            ca, key, cert = self.tls.pem()
            credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
            self._channel = grpc.secure_channel(address, credentials, options=channel_options)
        self._prediction = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        """Close the gRPC channel."""
        self._channel.close()

    def _predict(self, ref, info, columns):
        request = predict_pb2.PredictRequest()
        ref.fill(request.model_spec)
        for name, tensor in info.inputs.items():
            dtype = tf.dtypes.as_dtype(_dtype_enum(tensor.dtype))
            if dtype == tf.string:
                request.inputs[name].CopyFrom(tf.make_tensor_proto(columns[name], dtype=dtype))
            else:
                request.inputs[name].CopyFrom(tensor_protos.to_proto(np.asarray(columns[name], dtype.as_numpy_dtype)))
        response = self._rpc(self._prediction.Predict, request, ref)
        return {name: tensor_protos.to_array(proto) for name, proto in response.outputs.items()}

    def _classify(self, ref, rows):
        request = classification_pb2.ClassificationRequest()
        ref.fill(request.model_spec)
        _fill_examples(request.input.example_list, rows)
        response = self._rpc(self._prediction.Classify, request, ref)
        return [[(c.label, c.score) for c in row.classes] for row in response.result.classifications]

    def _regress(self, ref, rows):
        request = regression_pb2.RegressionRequest()
        ref.fill(request.model_spec)
        _fill_examples(request.input.example_list, rows)
        response = self._rpc(self._prediction.Regress, request, ref)
        return [r.value for r in response.result.regressions]

    def _status(self, ref):
        request = get_model_status_pb2.GetModelStatusRequest()
        ref.fill(request.model_spec, with_signature=False)
        response = self._rpc(self._models.GetModelStatus, request, ref)
        return [
            {"version": s.version, "state": _STATE_NAMES.get(s.state, str(s.state)),
             "error_code": _CODE_NAMES.get(s.status.error_code, str(s.status.error_code)),
             "error_message": s.status.error_message}
            for s in response.model_version_status
        ]

    def _metadata(self, ref):
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        ref.fill(request.model_spec, with_signature=False)
        response = self._rpc(self._prediction.GetModelMetadata, request, ref)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return {name: SignatureInfo.from_proto(name, d) for name, d in signatures.signature_def.items()}

    def _rpc(self, method, request, ref: ModelTarget):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            code, details = error.code(), error.details()
            if code == grpc.StatusCode.UNAVAILABLE:
                raise Unavailable(f"cannot reach the model server at {self.address} ({details})") from None
            if code == grpc.StatusCode.NOT_FOUND:
                raise ClientError(f"model '{ref.name}' not found on {self.address}: {details}") from None
            raise ClientError(
                f"model '{ref.name}' on {self.address} refused the request ({code.name}): {details}"
            ) from None


def _fill_examples(example_list, rows: list[dict]) -> None:
    for row in rows:
        features = example_list.examples.add().features.feature
        for name, value in row.items():
            values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
            for item in values:
                if isinstance(item, str):
                    features[name].bytes_list.value.append(item.encode("utf-8"))
                elif isinstance(item, (bool, int, np.integer)):
                    features[name].int64_list.value.append(int(item))
                else:
                    features[name].float_list.value.append(float(item))


def _dtype_enum(name: str) -> int:
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Value(name)
