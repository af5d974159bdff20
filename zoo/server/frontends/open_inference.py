"""The Open Inference Protocol (V2) over the data plane: what its REST and gRPC front ends share.

V2 names a model and a version string; the zoo reads the string as TF Serving's version
choice: "" the latest available version, digits a version number, anything else a version
label (`models.config`'s version_labels). A request may name a signature in its
parameters (`"signature_name"`, a zoo extension: V2 has no signatures); otherwise
`serving_default` runs. Inputs and outputs are the signature's aliases, so a V2 request and
a TF Serving Predict for the same rows and version run the same session call, through the
same batching, metrics and checks (`DataPlane.predict`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tensorflow_serving.apis import get_model_status_pb2

from zoo.protocol.model_spec import ModelTarget
from zoo.server.frontends import v2_tensors
from zoo.server.plane.data_plane import DataPlane
from zoo.server.plane.errors import ServingError, invalid_argument

SERVER_NAME = "zoo"
EXTENSIONS = ("binary_tensor_data",)  # Triton's name for the binary tensor data extension
PLATFORM = "tensorflow_savedmodel"  # Triton's platform name for a TensorFlow SavedModel
SIGNATURE_PARAMETER = "signature_name"
_INT64_MAX = 2**63 - 1


def server_version() -> str:
    """The zoo's package version: what V2's server metadata reports."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keras-zoo")
    except PackageNotFoundError:
        return "unknown"


def target(model_name: str, model_version: str, signature_name: str = "") -> ModelTarget:
    """The ModelTarget a V2 model name and version string mean (see the module docstring)."""
    if not model_name:
        raise invalid_argument("Missing model name in request.")
    if not model_version:
        return ModelTarget(model_name, signature_name=signature_name)
    if model_version.isdigit():
        if int(model_version) > _INT64_MAX:
            raise invalid_argument(f"Failed to convert version: {model_version[:50]} to numeric.")
        return ModelTarget(model_name, version=int(model_version), signature_name=signature_name)
    return ModelTarget(model_name, label=model_version, signature_name=signature_name)


def server_ready(plane: DataPlane) -> bool:
    """Ready: every configured model has a version available (as gRPC health's "")."""
    availability = plane.manager.availability()
    return bool(availability) and all(availability.values())


def model_ready(plane: DataPlane, model_name: str, model_version: str) -> bool:
    """Whether the version (or the latest, or the label's) is available."""
    try:
        plane.resolve(target(model_name, model_version))
    except ServingError:
        return False
    return True


def model_metadata(plane: DataPlane, model_name: str, model_version: str) -> dict:
    """V2 model metadata: name, available versions, platform, and the default signature's
    inputs and outputs with datatype and shape (-1 where a size is not fixed)."""
    servable = plane.resolve(target(model_name, model_version))
    signature = servable.input_signature("")
    versions = plane.manager.status(model_name).model_version_status
    available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    return {
        "name": model_name,
        "versions": sorted((str(s.version) for s in versions if s.state == available), key=int),
        "platform": PLATFORM,
        "inputs": [_tensor_metadata(alias, binding) for alias, binding in sorted(signature.inputs.items())],
        "outputs": [_tensor_metadata(alias, binding) for alias, binding in sorted(signature.outputs.items())],
    }


def _tensor_metadata(alias: str, binding) -> dict:
    return {"name": alias, "datatype": v2_tensors.datatype_of(binding.dtype),
            "shape": list(binding.shape) if binding.shape is not None else [-1]}


@dataclasses.dataclass
class InferInput:
    """One input as the wire gave it: its header, and JSON `data`, `raw` bytes or typed
    `values` (gRPC's contents)."""

    name: str
    datatype: str
    shape: list[int]
    data: object = None
    raw: bytes | memoryview | None = None
    values: object = None


@dataclasses.dataclass
class InferResult:
    """What one inference answers: the version that served, and the outputs in order."""

    model_name: str
    model_version: str
    outputs: dict[str, np.ndarray]


def infer(plane: DataPlane, model_name: str, model_version: str, inputs: list[InferInput],
          requested: list[str], parameters: dict, *, max_elements: int,
          timeout: float | None = None, request_id=None) -> InferResult:
    """Decode, check and run one V2 inference request; `requested`: the outputs asked for
    (none: every output of the signature); `request_id`: the request's id, for its log."""
    signature_name = parameters.get(SIGNATURE_PARAMETER, "")
    if not isinstance(signature_name, str):
        raise invalid_argument(f"parameter '{SIGNATURE_PARAMETER}' must be a string")
    if len(set(requested)) != len(requested):
        raise invalid_argument("an output is requested twice")

    def decode(signature) -> dict:
        arrays, total = {}, 0
        for item in inputs:
            binding = signature.inputs.get(item.name) if isinstance(item.name, str) else None
            total += v2_tensors.check_header(item.name, item.datatype, item.shape,
                                             binding.dtype if binding is not None else None, max_elements)
            if total > max_elements:
                raise invalid_argument(f"the inputs declare {total} elements together, more than the "
                                       f"{max_elements} a request may declare (--max_tensor_elements)")
            if item.name in arrays:
                raise invalid_argument(f"input '{item.name[:200]}' is given twice")
            if item.raw is not None:
                arrays[item.name] = v2_tensors.from_raw(item.name, item.datatype, item.shape, item.raw)
            elif item.values is not None:
                arrays[item.name] = v2_tensors.from_values(item.name, item.datatype, item.shape, item.values)
            else:
                arrays[item.name] = v2_tensors.from_json_data(item.name, item.datatype, item.shape, item.data)
        return arrays

    servable, _, outputs = plane.predict(target(model_name, model_version, signature_name), decode,
                                         tuple(requested), timeout=timeout, request_id=request_id)
    order = requested or sorted(outputs)
    return InferResult(model_name, str(servable.version), {name: outputs[name] for name in order})
