"""The REST edge: one ASGI application in front of both REST front ends.

It reads each request's body within the limits (413 over `--rest_api_max_body_bytes`, as
soon as its size is known, before it is read: the server then drops what the client still
sends for a moment and closes; 413 or 503 when its decoding would not fit the memory
budget), refuses what a web page must not reach, serves the Prometheus metrics path, and
hands the request to the front end whose path prefix it carries: `/v1/` TF Serving's API
(`zoo.server.frontends.rest_v1`), `/v2` the Open Inference Protocol (`rest_v2`). OPTIONS
under either is a CORS preflight, answered 200 when it has an http(s) Origin and 400
otherwise; `--rest_api_enable_cors_support` adds the CORS headers to every answer. HTTP
framing, deadlines for slow clients and TLS are the server's (`zoo.server.edge.http_server`).

The application runs on the event loop and does no model work there: the front end (JSON,
the model call, the answer) runs on a thread pool (`--rest_api_num_threads`), so a slow model
never stalls the connections. A request past `--rest_api_timeout_in_ms` is answered 504 at
its deadline while its model call finishes on its thread.

Two checks TF Serving does not make, because its REST port is usually behind a network
boundary and the zoo's is usually on a developer's machine: on a loopback address, a Host
header that is not a loopback name is refused (a web page cannot reach the server through
DNS rebinding), and without CORS support a request whose Origin is not the server's own is
refused (a web page's cross-site `text/plain` POST, which needs no preflight, is not served).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import ipaddress
import logging
import re
import urllib.parse

from zoo.server.edge.http_answer import Answer, RestRequest
from zoo.server.edge.memory_budget import MemoryBudget, OverBudget, rest_estimate, whole_parse_estimate
from zoo.server.flags import DEFAULT_MAX_BODY_BYTES
from zoo.server.plane.metrics import Metrics

log = logging.getLogger("zoo.server")

CORS_ORIGIN = re.compile(r"https?://")
CORS_HEADERS = (
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"POST, GET"),
    (b"access-control-allow-headers", b"Content-Type"),
)
SEPARATE_PART_BYTES = 1 << 16  # smaller answers go in one write
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class RestApp:
    """The ASGI application: the REST front ends behind one set of limits and checks.

    Args:
        front_ends: each with a `PREFIX` (the paths it serves) and `answer(RestRequest)`.
        executor: the threads the front ends run on (never the event loop).
        metrics: what the metrics path renders.
        timeout_ms: the per-request deadline (`--rest_api_timeout_in_ms`); 0 for none.
        max_body_bytes: the largest request body accepted.
        metrics_path: where to serve Prometheus metrics; None to not serve them.
        cors: `--rest_api_enable_cors_support`.
        check_host: refuse Host headers that are not loopback names (a loopback server).
        budget: the memory budget for requests in flight (shared with gRPC); None for none.
    """

    def __init__(self, front_ends, executor: concurrent.futures.Executor, metrics: Metrics, *, timeout_ms: int = 0,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, metrics_path: str | None = None,
                 cors: bool = False, check_host: bool = True, budget: MemoryBudget | None = None):
        self.front_ends = list(front_ends)
        self.executor = executor
        self.metrics = metrics
        self.deadline = timeout_ms / 1000 if timeout_ms > 0 else None
        self.max_body_bytes = max_body_bytes
        self.metrics_path = metrics_path
        self.cors = cors
        self.check_host = check_host
        self.budget = budget

    async def __call__(self, scope, receive, send) -> None:
        """The ASGI entry point: one HTTP request."""
        if scope["type"] != "http":
            return
        reserved = [0]  # memory-budget bytes this request holds, given back when it is answered
        try:
            answer = await self._answer(scope, receive, reserved)
        finally:
            if reserved[0]:
                self.budget.release(reserved[0])
        headers = [(b"content-type", answer.content_type)] if answer.content_type else []
        if self.cors:
            headers.extend(CORS_HEADERS)
        headers.extend(answer.headers)
        parts = answer.parts()
        size = sum(len(part) for part in parts)
        headers.append((b"content-length", str(size).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        if len(parts) > 1 and size > SEPARATE_PART_BYTES:  # a large tensor's text or bytes: not copied again
            for part in parts[:-1]:
                await send({"type": "http.response.body", "body": part, "more_body": True})
            parts = parts[-1:]
        await send({"type": "http.response.body", "body": b"".join(parts)})

    async def _answer(self, scope, receive, reserved: list[int]) -> Answer:
        method = scope["method"]
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        headers = _headers(scope)
        body = await self._read_body(headers, receive, reserved)
        if isinstance(body, Answer):
            return body
        refusal = self._refusal(headers)
        if refusal:
            return Answer.error(403, refusal)
        if self.metrics_path and path == self.metrics_path:
            return Answer(200, self.metrics.render(), b"text/plain; version=0.0.4")
        front_end = next((f for f in self.front_ends if f.PREFIX.fullmatch(path)), None)
        if front_end is None:
            return Answer.error(404, f"Not found: {path[:200]} (the APIs are under /v1/ and /v2/)")
        if method == "OPTIONS":
            if CORS_ORIGIN.search(headers.get("origin", "")):
                return Answer(200, "", None)
            return Answer.error(400, "Origin header is missing in CORS preflight")
        work = functools.partial(self._on_worker, front_end, method, path, headers, body)
        call = asyncio.get_running_loop().run_in_executor(self.executor, work)
        try:
            return await asyncio.wait_for(call, self.deadline) if self.deadline else await call
        except TimeoutError:
            return Answer.error(504, f"Deadline exceeded after {self.deadline:.3f}s")

    def _on_worker(self, front_end, method: str, path: str, headers: dict[str, str], body) -> Answer:
        """One request in its front end, on a worker thread; what the front end reserves
        beyond the admission (to parse JSON whole) is given back when it is done."""
        extra = [0]
        request = RestRequest(method, path, headers, body, self.deadline,
                              functools.partial(self._afford_json, len(body), extra))
        try:
            return front_end.answer(request)
        except OverBudget as refused:
            return Answer.error(413 if refused.whole else 503, refused.message)
        except Exception as error:  # noqa: BLE001  (the server keeps serving; the client learns why)
            log.exception("internal error serving %s %s", method, path)
            return Answer.error(500, f"Internal error: {type(error).__name__}: {error}")
        finally:
            if extra[0]:
                self.budget.release(extra[0])

    def _afford_json(self, body_bytes: int, extra: list[int], json_bytes: int) -> None:
        """Reserve what parsing `json_bytes` of JSON whole costs beyond what the body was
        admitted with (the rest of a V2 body is raw tensor bytes, used where they lie)."""
        need = whole_parse_estimate(json_bytes) + (body_bytes - json_bytes)
        more = need - rest_estimate(body_bytes)
        if self.budget is not None and more > 0:
            self.budget.check_whole(need)
            self.budget.reserve(more)
            extra[0] += more

    async def _read_body(self, headers: dict[str, str], receive, reserved: list[int]) -> bytes | Answer:
        """The whole body, or the answer that refuses it: 413 before reading when its declared
        length is over the limit, as soon as the chunks pass it otherwise (the server then
        discards the rest for a moment and closes: `http_server.DeadlineHttpToolsProtocol`);
        413 or 503 when its decoding would not fit the memory budget (`memory_budget`)."""
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_body_bytes:
                return Answer.error(413, f"Request body of {declared} bytes exceeds the limit of "
                                         f"{self.max_body_bytes} bytes")
            if refusal := await self._reserve(int(declared), reserved):
                return refusal
        # A declared length is filled in place (joining the chunks would hold the body twice);
        # the parser has made sure the chunks add up to it.
        body = bytearray(int(declared)) if declared is not None and declared.isdigit() else None
        parts, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return Answer.error(400, "The client went away before sending its whole body")
            chunk = message.get("body", b"")
            if body is not None and total + len(chunk) <= len(body):
                body[total:total + len(chunk)] = chunk
            elif chunk:
                parts.append(chunk)
            total += len(chunk)
            if total > self.max_body_bytes:
                return Answer.error(413, f"Request body of more than {self.max_body_bytes} bytes exceeds the "
                                         f"limit of {self.max_body_bytes} bytes")
            if declared is None and chunk and (refusal := await self._reserve(total, reserved)):
                return refusal
            if not message.get("more_body", False):
                if body is None:
                    return parts[0] if len(parts) == 1 else b"".join(parts)
                return body if total == len(body) else bytes(body[:total]) + b"".join(parts)

    async def _reserve(self, body_bytes: int, reserved: list[int]) -> Answer | None:
        """Grow this request's reservation to what a body of `body_bytes` costs to decode;
        the refusal if the budget has no room for it."""
        estimate = rest_estimate(body_bytes)
        if self.budget is None or estimate <= reserved[0]:
            return None
        try:
            self.budget.check_whole(estimate)  # a chunked body grows its reservation: the total is what counts
            await self.budget.reserve_async(estimate - reserved[0])
        except OverBudget as refused:
            return Answer.error(413 if refused.whole else 503, refused.message)
        reserved[0] = estimate
        return None

    def _refusal(self, headers: dict[str, str]) -> str | None:
        """Why a request from a web page must not be served (see the module docstring)."""
        host = headers.get("host", "").strip()
        if self.check_host and host and not is_loopback(_host_name(host)):
            return f"Host '{host[:100]}' is not this server's: on a loopback address only loopback names are served"
        origin = headers.get("origin")
        if origin and not self.cors and _host_name(urllib.parse.urlsplit(origin).netloc) != _host_name(host):
            return (f"Cross-origin request from Origin '{origin[:100]}' refused: start the server with "
                    "--rest_api_enable_cors_support to serve web pages of other origins")
        return None


def _headers(scope) -> dict[str, str]:
    """The request's headers by lower-case name (the first of a repeated name: Host, Origin
    and Content-Length are the only ones read, and the parser refuses repeated lengths)."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


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
