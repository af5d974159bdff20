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
are `{"error": "..."}` with TF Serving's HTTP status for the error's code. Request framing
(lengths, chunked bodies, deadlines for slow clients, a body over the limit refused with 413
before it is read) is `http_framing`'s; at most `max_connections` connections are served at
once, and the rest are answered 503 and closed.

Two checks TF Serving does not make, because its REST port is usually behind a network
boundary and the zoo's is usually on a developer's machine: on a loopback address, a Host
header that is not a loopback name is refused (a web page cannot reach the server through
DNS rebinding), and without CORS support a request whose Origin is not the server's own is
refused (a web page's cross-site `text/plain` POST, which needs no preflight, is not served).
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import ipaddress
import logging
import re
import threading
import time
import urllib.parse

from zoo.protocol.model_spec import ModelTarget
from zoo.server import rest_json
from zoo.server.data_plane import ServingCore
from zoo.server.errors import Code, ServingError, invalid_argument
from zoo.server.flags import DEFAULT_MAX_BODY_BYTES
from zoo.server.http_framing import (
    HEADER_SECONDS,
    MIN_BYTES_PER_SECOND,
    FramingError,
    body_length,
    deadline_reader,
    read_chunked,
)

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
_DRAIN_SECONDS = 1.0  # after a refusal, how long to read what the client is still sending
WRITE_SECONDS = 60.0  # a client that does not read its answer loses the connection
MAX_CONNECTIONS = 512
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class RestServer:
    """TF Serving's REST API over a `ServingCore`, on its own threads.

    Args:
        core: what serves the requests.
        host, port: where to listen (port 0: any free port; see `.port`).
        timeout_ms: the per-request deadline (`--rest_api_timeout_in_ms`); 0 for none.
        max_body_bytes: the largest request body accepted.
        metrics_path: where to serve Prometheus metrics; None to not serve them.
        cors: `--rest_api_enable_cors_support`.
        max_connections: connections served at once; more are answered 503 and closed.
    """

    def __init__(self, core: ServingCore, host: str, port: int, *, timeout_ms: int = 0,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, metrics_path: str | None = None,
                 cors: bool = False, max_connections: int = MAX_CONNECTIONS):
        handler = type("Handler", (_Handler,), {
            "core": core,
            "request_deadline": timeout_ms / 1000 if timeout_ms > 0 else None,
            "max_body_bytes": max_body_bytes,
            "metrics_path": metrics_path,
            "cors": cors,
            "check_host": is_loopback(host),
        })
        self._server = _ThreadingServer((host, port), handler)
        self._server.connection_slots = threading.BoundedSemaphore(max_connections)
        self._thread = threading.Thread(target=self._server.serve_forever, name="zoo-rest", daemon=True)

    @property
    def port(self) -> int:
        """The port the REST server listens on."""
        return self._server.server_address[1]

    def start(self) -> None:
        """Serve HTTP on a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()


class _ThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # many clients connecting at once must queue, not be refused
    connection_slots: threading.BoundedSemaphore

    def process_request(self, request, client_address):
        if not self.connection_slots.acquire(blocking=False):
            # A thread a connection: past the limit, answer at once rather than hold one more.
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Connection: close\r\nContent-Length: 42\r\n\r\n"
                                b'{"error": "Too many connections; retry."}\n')
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connection_slots.release()

    def handle_error(self, request, client_address):
        # A client that vanished or timed out is not a server error worth a traceback.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: batch clients reuse their connection
    # Headers and body leave in two writes; with Nagle's algorithm on, the body then waits
    # for the client's delayed ACK (~40 ms a response on Linux).
    disable_nagle_algorithm = True
    server_version = "zoo-serve"
    core: ServingCore
    request_deadline: float | None  # --rest_api_timeout_in_ms, in seconds
    max_body_bytes: int
    metrics_path: str | None
    cors: bool
    check_host: bool

    def setup(self) -> None:
        super().setup()
        self.rfile, self._reader = deadline_reader(self.connection)

    def handle_one_request(self) -> None:
        # The request line and headers must arrive within HEADER_SECONDS of starting to
        # wait for them (an idle keep-alive connection is closed after as long).
        self._reader.deadline = time.monotonic() + HEADER_SECONDS
        try:
            super().handle_one_request()
        except (TimeoutError, ConnectionError):
            self.close_connection = True

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
        try:
            body = self._read_body()
        except FramingError as error:
            self._refuse(error.status, error.message)
            return
        except TimeoutError:
            self._refuse(408, "The request body did not arrive in time")
            return
        finally:
            self._reader.deadline = None
            self.connection.settimeout(WRITE_SECONDS)
        refusal = self._refusal()
        if refusal:
            self._send_error(403, refusal)
            return
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

    def _read_body(self) -> bytes:
        started = time.monotonic()
        length = body_length(self.headers)
        if length is None:
            return read_chunked(self.rfile, self.max_body_bytes, self._reader, started)
        if length > self.max_body_bytes:
            raise FramingError(413, f"Request body of {length} bytes exceeds the limit of {self.max_body_bytes} bytes")
        self._reader.deadline = started + HEADER_SECONDS + length / MIN_BYTES_PER_SECOND
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise FramingError(400, f"The body ended after {len(body)} of the {length} bytes its Content-Length says")
        return body

    def _refuse(self, status: int, message: str) -> None:
        """Answer a request whose body cannot be trusted, then close the connection. What the
        client is still sending is read for a moment (so that it sees the answer rather than a
        reset connection), never for long."""
        self.close_connection = True
        self._send_error(status, message)
        self._reader.deadline = time.monotonic() + _DRAIN_SECONDS
        try:
            self._discard(_DRAIN_LIMIT)
        except (TimeoutError, OSError):
            pass

    def _refusal(self) -> str | None:
        """Why a request from a web page must not be served (see the module docstring)."""
        host = (self.headers.get("Host") or "").strip()
        if self.check_host and host and not is_loopback(_host_name(host)):
            return f"Host '{host[:100]}' is not this server's: on a loopback address only loopback names are served"
        origin = self.headers.get("Origin")
        if origin and not self.cors and _host_name(urllib.parse.urlsplit(origin).netloc) != \
                _host_name(host):
            return (f"Cross-origin request from Origin '{origin[:100]}' refused: start the server with "
                    "--rest_api_enable_cors_support to serve web pages of other origins")
        return None

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

    def _predict_like(self, verb: str, target: ModelTarget, body: bytes) -> str:
        document = rest_json.parse_body(body)
        target = dataclasses.replace(target, signature_name=rest_json.signature_name(document))
        if verb == "predict":
            servable, signature = self.core.input_signature(target)
            inputs, request_format = rest_json.decode_predict(document, signature)
            _, _, outputs = self.core.predict(target, inputs, timeout=self.request_deadline, servable=servable)
            return rest_json.encode_predict(outputs, request_format)
        model_input = rest_json.decode_examples(document)
        if verb == "classify":
            _, result = self.core.classify(target, model_input, timeout=self.request_deadline)
            return rest_json.encode_classification(result)
        _, result = self.core.regress(target, model_input, timeout=self.request_deadline)
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


def _host_name(netloc: str) -> str:
    """The name in a Host header or an Origin's netloc, without the port or brackets."""
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


@functools.lru_cache(maxsize=256)  # a handful of Host names, asked on every request
def is_loopback(name: str) -> bool:
    """Whether a host name or address is this machine's loopback."""
    if name.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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
