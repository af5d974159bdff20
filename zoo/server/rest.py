"""The REST front end: TF Serving's HTTP API on a threaded HTTP/1.1 server.

Routes (case-insensitive, as TF Serving's regular expressions):

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            model status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature defs
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict|classify|regress
    any  {prometheus path}                                       metrics, when enabled

As TF Serving's http_server.cc and http_rest_api_handler.cc: any other request under /v1/
(another path, or another method: PUT, PATCH, HEAD...) is 400 `Malformed request: METHOD
path`; OPTIONS is a CORS preflight, answered 200 when it has an http(s) Origin and 400
otherwise; `--rest_api_enable_cors_support` adds the CORS headers to every answer. Errors
are `{"error": "..."}` with TF Serving's HTTP status for the error's code. A body larger
than the limit is refused with 413 before it is read.
"""

from __future__ import annotations

import http.server
import logging
import re
import threading
import urllib.parse

from zoo.server import rest_json
from zoo.server.core import ServingCore, Target
from zoo.server.errors import Code, ServingError, invalid_argument
from zoo.server.flags import DEFAULT_MAX_BODY_BYTES

log = logging.getLogger("zoo.server")

PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)
API_PREFIX = re.compile(r"/v1/.*", re.IGNORECASE)
CORS_ORIGIN = re.compile(r"https?://")
CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "POST, GET"),
    ("Access-Control-Allow-Headers", "Content-Type"),
)
_INT64_MAX = 2**63 - 1
_DRAIN_LIMIT = 8 * 1024 * 1024


class RestServer:
    """TF Serving's REST API over a `ServingCore`, on its own threads.

    Args:
        core: what serves the requests.
        host, port: where to listen (port 0: any free port; see `.port`).
        timeout_ms: the per-request deadline (`--rest_api_timeout_in_ms`); 0 for none.
        max_body_bytes: the largest request body accepted.
        metrics_path: where to serve Prometheus metrics; None to not serve them.
        cors: `--rest_api_enable_cors_support`.
    """

    def __init__(self, core: ServingCore, host: str, port: int, *, timeout_ms: int = 0,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, metrics_path: str | None = None,
                 cors: bool = False):
        handler = type("Handler", (_Handler,), {
            "core": core,
            "timeout": timeout_ms / 1000 if timeout_ms > 0 else None,
            "max_body_bytes": max_body_bytes,
            "metrics_path": metrics_path,
            "cors": cors,
        })
        self._server = _ThreadingServer((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="zoo-rest", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _ThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # many clients connecting at once must queue, not be refused


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: batch clients reuse their connection
    # Headers and body leave in two writes; with Nagle's algorithm on, the body then waits
    # for the client's delayed ACK (~40 ms a response on Linux).
    disable_nagle_algorithm = True
    server_version = "zoo-serve"
    core: ServingCore
    timeout: float | None
    max_body_bytes: int
    metrics_path: str | None
    cors: bool

    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        log.debug("%s " + format, self.address_string(), *args)

    def __getattr__(self, name: str):
        # http.server looks up do_<METHOD>; every method goes to one dispatcher, so that
        # PATCH, HEAD or a made-up method gets TF Serving's answer, not an HTML 501.
        if name.startswith("do_"):
            return lambda: self._dispatch(name[3:])
        raise AttributeError(name)

    def _dispatch(self, method: str) -> None:
        path = urllib.parse.urlsplit(self.path).path
        length = self._content_length()
        if length is None:
            return
        if length > self.max_body_bytes:
            # Read (and drop) a little of the body so that a client still sending it sees
            # the answer rather than a broken pipe; beyond that, close on it.
            self._discard(min(length, _DRAIN_LIMIT))
            self.close_connection = True
            self._send_error(413, f"Request body of {length} bytes exceeds the limit of {self.max_body_bytes} bytes")
            return
        body = self.rfile.read(length) if length else b""
        if self.metrics_path and path == self.metrics_path:
            self._send(200, self.core.metrics.render(), "text/plain; version=0.0.4")
            return
        if not API_PREFIX.fullmatch(path):
            self._send_error(404, f"Not found: {path} (the API is under /v1/)")
            return
        if method == "OPTIONS":
            if CORS_ORIGIN.search(self.headers.get("Origin", "")):
                self._send(200, "", None)
            else:
                self._send_error(400, "Origin header is missing in CORS preflight")
            return
        model_name, api = _model_and_api(method, path)
        try:
            with self.core.observe(model_name, api, "REST"):
                text = self._route(method, path, body)
            self._send(200, text)
        except ServingError as error:
            self._send_error(error.http_status, error.message)
        except Exception as error:  # noqa: BLE001  (the server keeps serving; the client learns why)
            log.exception("internal error serving %s %s", method, path)
            self._send_error(500, f"Internal error: {type(error).__name__}: {error}")

    def _content_length(self) -> int | None:
        text = self.headers.get("Content-Length")
        if text is None:
            return 0
        if not (text.strip().isascii() and text.strip().isdigit()):
            self.close_connection = True
            self._send_error(400, f"Content-Length '{text[:40]}' is not a length")
            return None
        return int(text)

    def _route(self, method: str, path: str, body: bytes) -> str:
        match = PREDICTION_PATH.fullmatch(path) if method == "POST" else None
        if match:
            name, version, label, verb = match.groups()
            return self._predict_like(verb.lower(), _target(name, version, label), body)
        match = STATUS_PATH.fullmatch(path) if method == "GET" else None
        if match:
            name, version, label, subresource = match.groups()
            target = _target(name, version, label)
            if not target.name:
                raise invalid_argument("Missing model name in request.")
            if subresource:
                return rest_json.encode_metadata(self.core.metadata(target))
            return rest_json.encode_status(self.core.status(target))
        raise invalid_argument(f"Malformed request: {method} {path}")

    def _predict_like(self, verb: str, target: Target, body: bytes) -> str:
        document = rest_json.parse_body(body)
        target = Target(target.name, target.version, target.label, rest_json.signature_name(document))
        if verb == "predict":
            servable, signature = self.core.input_signature(target)
            inputs, request_format = rest_json.decode_predict(document, signature)
            _, _, outputs = self.core.predict(target, inputs, timeout=self.timeout, servable=servable)
            return rest_json.encode_predict(outputs, request_format)
        model_input = rest_json.decode_examples(document)
        if verb == "classify":
            _, result = self.core.classify(target, model_input, timeout=self.timeout)
            return rest_json.encode_classification(result)
        _, result = self.core.regress(target, model_input, timeout=self.timeout)
        return rest_json.encode_regression(result)

    def _discard(self, count: int) -> None:
        while count > 0:
            chunk = self.rfile.read(min(count, 1 << 16))
            if not chunk:
                return
            count -= len(chunk)

    def _send_error(self, status: int, message: str) -> None:
        self._send(status, rest_json.encode_error(message))

    def _send(self, status: int, text: str, content_type: str | None = "application/json") -> None:
        payload = text.encode("utf-8")
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if self.cors:
            for header, value in CORS_HEADERS:
                self.send_header(header, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has headers only (RFC 9110, 9.3.2)
            self.wfile.write(payload)


def _model_and_api(method: str, path: str) -> tuple[str, str | None]:
    """The model name and API a request is counted under, as TF Serving's REST handler
    counts it (the URL's verb for POST, "" for GET; no model name if the path is not one)."""
    if method == "POST" and (match := PREDICTION_PATH.fullmatch(path)):
        return urllib.parse.unquote(match.group(1)), match.group(4)
    if method == "GET" and (match := STATUS_PATH.fullmatch(path)):
        return urllib.parse.unquote(match.group(1) or ""), ""
    return "", None


def _target(name: str | None, version: str | None, label: str | None) -> Target:
    number = None
    if version:
        number = int(version)
        if number > _INT64_MAX:
            raise ServingError(Code.INVALID_ARGUMENT, f"Failed to convert version: {version} to numeric.")
    return Target(
        name=urllib.parse.unquote(name or ""),
        version=number,
        label=urllib.parse.unquote(label) if label else None,
    )
