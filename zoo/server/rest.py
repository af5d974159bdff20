"""The REST front end: TF Serving's HTTP API on a threaded HTTP/1.1 server.

Routes (case-insensitive, as TF Serving's regular expressions):

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            model status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature defs
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict|classify|regress
    GET  {prometheus path}                                       metrics, when enabled

Errors are `{"error": "..."}` with TF Serving's HTTP status for the error's code. A body
larger than the limit is refused with 413 before it is read.
"""

from __future__ import annotations

import http.server
import logging
import re
import threading
import urllib.parse

from zoo.server import rest_json
from zoo.server.core import ServingCore, Target
from zoo.server.errors import ServingError, invalid_argument
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
_DRAIN_LIMIT = 8 * 1024 * 1024


class RestServer:
    """TF Serving's REST API over a `ServingCore`, on its own threads.

    Args:
        core: what serves the requests.
        host, port: where to listen (port 0: any free port; see `.port`).
        timeout_ms: the per-request deadline (`--rest_api_timeout_in_ms`); 0 for none.
        max_body_bytes: the largest request body accepted.
        metrics_path: where to serve Prometheus metrics; None to not serve them.
    """

    def __init__(self, core: ServingCore, host: str, port: int, *, timeout_ms: int = 0,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, metrics_path: str | None = None):
        handler = type("Handler", (_Handler,), {
            "core": core,
            "timeout": timeout_ms / 1000 if timeout_ms > 0 else None,
            "max_body_bytes": max_body_bytes,
            "metrics_path": metrics_path,
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

    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if self.metrics_path and path == self.metrics_path:
            self._send(200, self.core.metrics.render(), "text/plain; version=0.0.4")
            return
        self._dispatch("GET", path)

    def do_POST(self):
        self._dispatch("POST", urllib.parse.urlsplit(self.path).path)

    def do_PUT(self):
        self._dispatch("PUT", urllib.parse.urlsplit(self.path).path)

    def do_DELETE(self):
        self._dispatch("DELETE", urllib.parse.urlsplit(self.path).path)

    def _dispatch(self, method: str, path: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.max_body_bytes:
            # Read (and drop) a little of the body so that a client still sending it sees
            # the answer rather than a broken pipe; beyond that, close on it.
            self._discard(min(length, _DRAIN_LIMIT))
            self.close_connection = True
            self._send_error(413, f"Request body of {length} bytes exceeds the limit of {self.max_body_bytes} bytes")
            return
        body = self.rfile.read(length) if length else b""
        if not API_PREFIX.fullmatch(path):
            self._send_error(404, f"Not found: {path} (the API is under /v1/)")
            return
        try:
            self._send(200, self._route(method, path, body))
        except ServingError as error:
            self._send_error(error.http_status, error.message)
        except Exception as error:  # noqa: BLE001  (the server keeps serving; the client learns why)
            log.exception("internal error serving %s %s", method, path)
            self._send_error(500, f"Internal error: {type(error).__name__}: {error}")

    def _route(self, method: str, path: str, body: bytes) -> str:
        match = PREDICTION_PATH.fullmatch(path) if method == "POST" else None
        if match:
            name, version, label, verb = match.groups()
            target = _target(name, version, label)
            with self.core.observe(target.name, verb.lower(), "REST"):
                return self._predict_like(verb.lower(), target, body)
        match = STATUS_PATH.fullmatch(path) if method == "GET" else None
        if match:
            name, version, label, subresource = match.groups()
            if not name:
                raise invalid_argument("Missing model name in request.")
            target = _target(name, version, label)
            if subresource:
                with self.core.observe(target.name, "metadata", "REST"):
                    return rest_json.encode_metadata(self.core.metadata(target))
            with self.core.observe(target.name, "status", "REST"):
                return rest_json.encode_status(self.core.status(target))
        raise invalid_argument(f"Malformed request: {method} {path}")

    def _predict_like(self, verb: str, target: Target, body: bytes) -> str:
        document = rest_json.parse_body(body)
        target = Target(target.name, target.version, target.label, rest_json.signature_name(document))
        if verb == "predict":
            servable, signature = self.core.signature(target)
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

    def _send(self, status: int, text: str, content_type: str = "application/json") -> None:
        payload = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _target(name: str, version: str | None, label: str | None) -> Target:
    return Target(
        name=urllib.parse.unquote(name),
        version=int(version) if version else None,
        label=urllib.parse.unquote(label) if label else None,
    )

