"""TF Serving's REST API, the front end for paths under /v1/ (behind `zoo.server.edge.rest_app`).

Routes (case-insensitive, as TF Serving's regular expressions):

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            model status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature defs
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict|classify|regress

As TF Serving's http_server.cc and http_rest_api_handler.cc: any other request under /v1/
(another path, or another method: PUT, PATCH, HEAD...) is 400 `Malformed request: METHOD
path`. Errors are `{"error": "..."}` with TF Serving's HTTP status for the error's code. The
JSON is TF Serving's (`rest_json`); a :predict body that is one large array of numbers is
decoded straight into its input's dtype (`json_numbers`), any other is parsed whole after
the memory budget has room for it. Each request is one call into the data plane.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse

from zoo.protocol.model_spec import ModelTarget
from zoo.server.edge.http_answer import REQUEST_ID_HEADER, Answer, RestRequest
from zoo.server.frontends import rest_json
from zoo.server.plane.data_plane import DataPlane
from zoo.server.plane.errors import Code, ServingError, invalid_argument

PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)
API_PREFIX = re.compile(r"/v1/.*", re.IGNORECASE)
_INT64_MAX = 2**63 - 1


class TfServingRest:
    """TF Serving's REST routes over a `DataPlane` (called on a worker thread, one request each)."""

    PREFIX = API_PREFIX

    def __init__(self, plane: DataPlane):
        self.plane = plane

    def answer(self, request: RestRequest) -> Answer:
        """One request under /v1/: counted, routed, answered."""
        model_name, api = _model_and_api(request.method, request.path)
        try:
            with self.plane.observe(model_name, api, "REST"):
                return Answer(200, self._route(request))
        except ServingError as error:
            return Answer.error(error.http_status, error.message)

    def _route(self, request: RestRequest) -> str | list[bytes]:
        method, path = request.method, request.path
        match = PREDICTION_PATH.fullmatch(path) if method == "POST" else None
        if match:
            name, version, label, verb = match.groups()
            return self._predict_like(verb.lower(), _target(name, version, label), request)
        match = STATUS_PATH.fullmatch(path) if method == "GET" else None
        if match:
            name, version, label, subresource = match.groups()
            target = _target(name, version, label)
            if not target.name:
                raise invalid_argument("Missing model name in request.")
            if subresource:
                return rest_json.encode_metadata(self.plane.metadata(target))
            return rest_json.encode_status(self.plane.status(target))
        raise invalid_argument(f"Malformed request: {method} {path}")

    def _predict_like(self, verb: str, target: ModelTarget, request: RestRequest) -> str | list[bytes]:
        body = request.body
        if verb == "predict":
            document = rest_json.numeric_skeleton(body)
            if document is not None:
                try:
                    return self._predict(target, document, request)
                except rest_json.ParseWhole:
                    pass  # not the numbers that decoding takes: the whole parse says what is wrong
        request.afford_json(len(body))
        document = rest_json.parse_body(body)
        if verb == "predict":
            return self._predict(target, document, request)
        target = dataclasses.replace(target, signature_name=rest_json.signature_name(document))
        model_input = rest_json.decode_examples(document)
        if verb == "classify":
            _, result = self.plane.classify(target, model_input)
            return rest_json.encode_classification(result)
        _, result = self.plane.regress(target, model_input)
        return rest_json.encode_regression(result)

    def _predict(self, target: ModelTarget, document: dict, request: RestRequest) -> list[bytes]:
        target = dataclasses.replace(target, signature_name=rest_json.signature_name(document))
        _, _, outputs = self.plane.predict(
            target, lambda signature: rest_json.decode_predict(document, signature), timeout=request.deadline,
            request_id=request.headers.get(REQUEST_ID_HEADER))
        return rest_json.encode_predict(outputs, rest_json.request_format(document))


def _model_and_api(method: str, path: str) -> tuple[str, str | None]:
    """The model name and API a request is counted under, as TF Serving's REST handler
    counts it (the URL's verb for POST, "" for GET; no model name if the path is not one)."""
    if method == "POST" and (match := PREDICTION_PATH.fullmatch(path)):
        return urllib.parse.unquote(match.group(1)), match.group(4)
    if method == "GET" and (match := STATUS_PATH.fullmatch(path)):
        return urllib.parse.unquote(match.group(1) or ""), ""
    return "", None


def _target(name: str | None, version: str | None, label: str | None) -> ModelTarget:
    number = None
    if version:
        number = int(version)
        if number > _INT64_MAX:
            raise ServingError(Code.INVALID_ARGUMENT, f"Failed to convert version: {version} to numeric.")
    return ModelTarget(
        name=urllib.parse.unquote(name or ""),
        version=number,
        label=urllib.parse.unquote(label) if label else None,
    )
