"""The Open Inference Protocol's gRPC service, `inference.GRPCInferenceService`, on zoo serve's port.

The protos are NVIDIA's, compiled in the maintained `tritonclient` package
(tritonclient.grpc.service_pb2: KServe's grpc_predict_v2.proto plus Triton's own RPCs). The
V2 RPCs are served: ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata,
ModelInfer; Triton's others (repository, statistics, shared memory, streaming) answer
UNIMPLEMENTED. An input comes as typed `contents` or, for every input at once, as
`raw_input_contents`; outputs go back as `raw_output_contents`, as Triton answers them.
Errors end the call with the data plane's status code and message.
"""

from __future__ import annotations

from tritonclient.grpc import service_pb2, service_pb2_grpc

from zoo.server.edge.memory_budget import MemoryBudget
from zoo.server.frontends import open_inference, v2_tensors
from zoo.server.frontends.grpc_calls import deadline, request_id, serve
from zoo.server.frontends.tensor_checks import DEFAULT_MAX_ELEMENTS
from zoo.server.plane.data_plane import DataPlane
from zoo.server.plane.errors import invalid_argument

SERVICE_NAME = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


class InferenceService(service_pb2_grpc.GRPCInferenceServiceServicer):
    """V2 over a `DataPlane`.

    Args:
        plane: what serves the requests.
        max_tensor_elements: the most elements a request's inputs may declare.
        budget: the memory budget for requests in flight (shared with the other front ends).
    """

    def __init__(self, plane: DataPlane, max_tensor_elements: int = DEFAULT_MAX_ELEMENTS,
                 budget: MemoryBudget | None = None):
        self.plane = plane
        self.max_tensor_elements = max_tensor_elements
        self.budget = budget

    @serve
    def ServerLive(self, request, context):
        """Live while it answers."""
        return service_pb2.ServerLiveResponse(live=True)

    @serve
    def ServerReady(self, request, context):
        """Ready when every configured model has a version available."""
        return service_pb2.ServerReadyResponse(ready=open_inference.server_ready(self.plane))

    @serve
    def ModelReady(self, request, context):
        """Whether the named version (or the latest, or a label's) is available."""
        return service_pb2.ModelReadyResponse(
            ready=open_inference.model_ready(self.plane, request.name, request.version))

    @serve
    def ServerMetadata(self, request, context):
        """The server's name, version and protocol extensions."""
        return service_pb2.ServerMetadataResponse(
            name=open_inference.SERVER_NAME, version=open_inference.server_version(),
            extensions=list(open_inference.EXTENSIONS))

    @serve
    def ModelMetadata(self, request, context):
        """Versions, platform, and the default signature's inputs and outputs."""
        metadata = open_inference.model_metadata(self.plane, request.name, request.version)
        response = service_pb2.ModelMetadataResponse(
            name=metadata["name"], versions=metadata["versions"], platform=metadata["platform"])
        for field in ("inputs", "outputs"):
            for tensor in metadata[field]:
                getattr(response, field).add(name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"])
        return response

    @serve
    def ModelInfer(self, request, context):
        """One inference: typed contents or raw bytes in, raw bytes out."""
        with self.plane.observe(request.model_name, "ModelInfer", "GRPC"):
            result = open_inference.infer(
                self.plane, request.model_name, request.model_version, _inputs(request),
                [output.name for output in request.outputs], _parameters(request.parameters),
                max_elements=self.max_tensor_elements, timeout=deadline(context),
                request_id=request.id or request_id(context))
            response = service_pb2.ModelInferResponse(
                model_name=result.model_name, model_version=result.model_version, id=request.id)
            for name, array in result.outputs.items():
                response.outputs.add(name=name, datatype=v2_tensors.datatype_of_array(array), shape=array.shape)
                response.raw_output_contents.append(v2_tensors.raw_bytes(array))
            return response


def _inputs(request) -> list[open_inference.InferInput]:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise invalid_argument(f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs: "
                               "give every input's raw bytes, or none")
    inputs = []
    for index, tensor in enumerate(request.inputs):
        item = open_inference.InferInput(tensor.name, tensor.datatype, list(tensor.shape))
        if raw:
            if tensor.HasField("contents"):
                raise invalid_argument(f"input '{tensor.name[:200]}' has contents and raw_input_contents: give one")
            item.raw = raw[index]
        else:
            field = v2_tensors.CONTENTS_FIELD.get(tensor.datatype)
            if field is None:
                raise invalid_argument(f"input '{tensor.name[:200]}': datatype {tensor.datatype[:50]} is sent "
                                       "only in raw_input_contents")
            item.values = getattr(tensor.contents, field)
        inputs.append(item)
    return inputs


def _parameters(parameters) -> dict:
    return {key: getattr(value, value.WhichOneof("parameter_choice")) for key, value in parameters.items()
            if value.WhichOneof("parameter_choice")}
