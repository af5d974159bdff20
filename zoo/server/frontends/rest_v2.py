"""The Open Inference Protocol's REST routes, the front end for paths under /v2 (behind
`zoo.server.edge.rest_app`, beside TF Serving's on the same port).

    GET  /v2                                        server metadata
    GET  /v2/health/live | /v2/health/ready         200, or 400 when not ready
    GET  /v2/models/{m}[/versions/{v}]              model metadata
    GET  /v2/models/{m}[/versions/{v}]/ready        200, or 400 when not ready
    POST /v2/models/{m}[/versions/{v}]/infer        inference

Inference takes JSON tensors and the binary tensor data extension: with an
`Inference-Header-Content-Length: N` header, the body's first N bytes are the JSON request
and the rest the raw data of the inputs that declare `parameters.binary_data_size`, in
order. Outputs come back as binary when the request asks (`binary_data_output`, or an
output's `binary_data`), after a JSON header whose length the answer's own
`Inference-Header-Content-Length` gives. Errors are `{"error": "..."}`: 400 for a bad
request, 404 for an unknown model or version, as the protocol specifies.
"""

from __future__ import annotations

import re
import urllib.parse

import orjson

from zoo.server.edge.http_answer import REQUEST_ID_HEADER, Answer, RestRequest
from zoo.server.frontends import open_inference, rest_json, v2_tensors
from zoo.server.plane.data_plane import DataPlane
from zoo.server.plane.errors import ServingError, invalid_argument

PREFIX = re.compile(r"/v2(?:/.*)?")
MODEL_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?")
HEADER_LENGTH = "inference-header-content-length"
BINARY = b"application/octet-stream"


class OpenInferenceRest:
    """V2's REST routes over a `DataPlane` (called on a worker thread, one request each).

    Args:
        plane: what serves the requests.
        max_elements: the most elements a request's inputs may declare.
    """

    PREFIX = PREFIX

    def __init__(self, plane: DataPlane, *, max_elements: int):
        self.plane = plane
        self.max_elements = max_elements

    def answer(self, request: RestRequest) -> Answer:
        """One request under /v2."""
        try:
            return self._route(request)
        except ServingError as error:
            return Answer.error(error.http_status, error.message)

    def _route(self, request: RestRequest) -> Answer:
        method, path = request.method, request.path
        if method == "GET" and path in ("/v2", "/v2/"):
            return _json(200, {"name": open_inference.SERVER_NAME, "version": open_inference.server_version(),
                               "extensions": list(open_inference.EXTENSIONS)})
        if method == "GET" and path == "/v2/health/live":
            return Answer(200, "")
        if method == "GET" and path == "/v2/health/ready":
            return Answer(200 if open_inference.server_ready(self.plane) else 400, "")
        match = MODEL_PATH.fullmatch(path)
        if match is None:
            return Answer.error(404, f"Not found: {path[:200]} (not an Open Inference Protocol route)")
        name, version = urllib.parse.unquote(match.group(1)), urllib.parse.unquote(match.group(2) or "")
        action = match.group(3)
        if action == "/infer":
            if method != "POST":
                return Answer.error(405, f"{method} {path[:200]}: inference is a POST")
            with self.plane.observe(name, "infer", "REST"):
                return self._infer(name, version, request)
        if method != "GET":
            return Answer.error(405, f"{method} {path[:200]}: model metadata and readiness are a GET")
        if action == "/ready":
            return Answer(200 if open_inference.model_ready(self.plane, name, version) else 400, "")
        return _json(200, open_inference.model_metadata(self.plane, name, version))

    def _infer(self, name: str, version: str, request: RestRequest) -> Answer:
        body = request.body
        header_length = _header_length(request.headers, len(body))
        request.afford_json(header_length)
        document = rest_json.parse_body(body[:header_length] if header_length < len(body) else body)
        binary = memoryview(body)[header_length:]
        inputs, used = _inputs(document, binary)
        if used != len(binary):
            raise invalid_argument(f"the inputs' binary_data_size add up to {used} bytes, but {len(binary)} "
                                   "follow the JSON header")
        requested, binary_outputs = _outputs(document)
        parameters = _object(document.get("parameters", {}), "parameters")
        all_binary = parameters.get("binary_data_output") is True
        request_id = document.get("id")
        if not isinstance(request_id, str):
            request_id = request.headers.get(REQUEST_ID_HEADER)
        result = open_inference.infer(self.plane, name, version, inputs, list(requested), parameters,
                                      max_elements=self.max_elements, timeout=request.deadline,
                                      request_id=request_id)
        return _infer_answer(result, document.get("id"), lambda output: all_binary or binary_outputs.get(output))


def _header_length(headers: dict[str, str], body_length: int) -> int:
    declared = headers.get(HEADER_LENGTH)
    if declared is None:
        return body_length
    if not declared.isdigit() or int(declared) > body_length:
        raise invalid_argument(f"Inference-Header-Content-Length {declared[:30]} is not a length within the "
                               f"{body_length}-byte body")
    return int(declared)


def _object(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise invalid_argument(f"'{what}' must be a JSON object")
    return value


def _inputs(request: dict, binary: memoryview) -> tuple[list[open_inference.InferInput], int]:
    items = request.get("inputs")
    if not isinstance(items, list) or not items:
        raise invalid_argument("'inputs' must be a non-empty list of tensors")
    inputs, offset = [], 0
    for index, item in enumerate(items):
        item = _object(item, f"inputs[{index}]")
        name = item.get("name")
        size = _object(item.get("parameters", {}), f"inputs[{index}].parameters").get("binary_data_size")
        tensor = open_inference.InferInput(name, item.get("datatype"), item.get("shape"))
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0 or offset + size > len(binary):
                raise invalid_argument(f"input '{str(name)[:200]}': binary_data_size {str(size)[:30]} runs past the "
                                       f"{len(binary)} bytes of binary data sent")
            tensor.raw = binary[offset:offset + size]
            offset += size
        elif "data" not in item:
            raise invalid_argument(f"input '{str(name)[:200]}' has neither 'data' nor binary_data_size")
        else:
            tensor.data = item["data"]
        inputs.append(tensor)
    return inputs, offset


def _outputs(request: dict) -> tuple[list[str], dict[str, bool]]:
    items = request.get("outputs", [])
    if not isinstance(items, list):
        raise invalid_argument("'outputs' must be a list")
    names, binary = [], {}
    for index, item in enumerate(items):
        item = _object(item, f"outputs[{index}]")
        if not isinstance(item.get("name"), str):
            raise invalid_argument(f"outputs[{index}] needs a 'name' (a string)")
        names.append(item["name"])
        binary[item["name"]] = _object(item.get("parameters", {}), f"outputs[{index}].parameters").get(
            "binary_data") is True
    return names, binary


def _infer_answer(result: open_inference.InferResult, request_id, as_binary) -> Answer:
    head = {"model_name": result.model_name, "model_version": result.model_version}
    if isinstance(request_id, str):
        head["id"] = request_id
    texts, raws = [], []
    for name, array in result.outputs.items():
        meta = {"name": name, "datatype": v2_tensors.datatype_of_array(array), "shape": list(array.shape)}
        if as_binary(name):
            raw = v2_tensors.raw_bytes(array)
            meta["parameters"] = {"binary_data_size": len(raw)}
            texts.append(orjson.dumps(meta))
            raws.append(raw)
        else:
            texts.append(orjson.dumps(meta)[:-1] + b',"data":' + rest_json.tensor_json_bytes(array.ravel()) + b"}")
    header = orjson.dumps(head)[:-1] + b',"outputs":[' + b",".join(texts) + b"]}"
    if not raws:
        return Answer(200, [header])
    return Answer(200, [header, *raws], BINARY, [(HEADER_LENGTH.encode(), str(len(header)).encode())])


def _json(status: int, value) -> Answer:
    return Answer(status, [orjson.dumps(value)])
