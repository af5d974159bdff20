"""The HTTP edge of `zoo serve`: uvicorn (httptools parser, uvloop event loop) on a thread.

HTTP framing, keep-alive, pipelining, chunked bodies, TLS and the handshake belong to
uvicorn, a maintained event-loop server: an idle or slow connection costs a few KB of
memory and no thread, so thousands of them do not push out a well-behaved client (the
thread-a-connection server before it went offline under 1,000 idle sockets). The zoo adds
only what uvicorn lacks:

- a *request deadline*: the request line and headers must arrive within `header_seconds`
  of the connection opening (or of the previous answer on a keep-alive connection), and the
  body at no less than `MIN_BODY_BYTES_PER_SECOND` after that. uvicorn has no such timeout
  (its keep-alive timer is reset by every byte, so a client that sends a byte now and then
  holds its connection for ever: uvicorn issue #157, "--timeout-request-start", open since
  2018), so `DeadlineHttpToolsProtocol` arms one timer per request on uvicorn's own
  protocol class, through the `http=` protocol-class option uvicorn's Config takes;
- the listening socket is bound here, so a taken port fails at start with its address and
  port 0 reports the port it got;
- TLS from PEM files, optionally requiring a client certificate signed by a given CA.

The ASGI application (the routes, TF Serving's JSON) is `zoo.server.frontends.rest_v1`; it runs on the
event loop and hands every model call to a thread pool.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import resource
import socket
import ssl
import threading
import time

import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from zoo.errors import ConfigError
from zoo.server.flags import DRAIN_SECONDS, HEADER_SECONDS, IDLE_SECONDS, MAX_CONNECTIONS

log = logging.getLogger("zoo.server")

MIN_BODY_BYTES_PER_SECOND = 64 * 1024  # a 256 MiB body gets 30 s + 68 min; 1 KB, 30 s
LINGER_SECONDS = 1.0  # reading what a refused client still sends, before closing


@dataclasses.dataclass(frozen=True)
class HttpLimits:
    """What one connection may take: its request's deadline, its idle time, and how many
    connections are served at once (more are answered 503)."""

    header_seconds: float = HEADER_SECONDS
    idle_seconds: float = IDLE_SECONDS
    max_connections: int = MAX_CONNECTIONS


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """REST TLS: the server's certificate chain and key (PEM files), and, for mutual TLS,
    the CA whose signature a client certificate must carry."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None

    def context(self) -> ssl.SSLContext:
        """The server's SSLContext; a clear ConfigError for a missing, unreadable or
        mismatched key and certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except FileNotFoundError as error:
            raise ConfigError(f"REST TLS: cannot read {error.filename}: no such file") from None
        except ssl.SSLError as error:
            raise ConfigError(f"REST TLS: the key {self.key_file} and certificate {self.cert_file} "
                              f"do not load as a pair: {error.reason or error}") from None
        except OSError as error:
            raise ConfigError(f"REST TLS: cannot read the key or certificate: {error}") from None
        if self.client_ca_file:
            try:
                context.load_verify_locations(cafile=self.client_ca_file)
            except (OSError, ssl.SSLError) as error:
                raise ConfigError(f"REST TLS: cannot read the client CA {self.client_ca_file}: {error}") from None
            context.verify_mode = ssl.CERT_REQUIRED
        return context


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's arrival (see the
    module docstring), and a lingering close for a body answered before it was read.

    The deadline is armed when the connection opens and after each answer, pushed back once
    the headers are in (by the body's size at the minimum rate), and disarmed when the whole
    request has arrived; at the deadline the connection closes. When the application answers
    while the body is still arriving (a 413), the parser goes on framing and discarding it
    for up to `LINGER_SECONDS`, then the connection closes: a client that sends its whole
    body before reading (most do) sees the answer rather than a reset connection, and one
    that keeps sending costs a second, never memory."""

    header_seconds = HEADER_SECONDS  # set per server by HttpServer

    def connection_made(self, transport) -> None:  # noqa: D102
        self._deadline = None
        self._receiving = self._lingering = self._half_closed = False
        super().connection_made(transport)
        self._arm(self.header_seconds)

    def connection_lost(self, exc) -> None:  # noqa: D102
        self._disarm()
        super().connection_lost(exc)

    def eof_received(self) -> bool:  # noqa: D102
        # A client may half-close after sending its request (shutdown(SHUT_WR)); uvicorn would
        # close at once and drop the answer. Keep the write side open while a request is being
        # answered, and close after it. One that stops in the middle of a body has gone: its
        # request (and the memory budget it reserved) must not wait for the arrival deadline.
        self._half_closed = True
        if self._receiving:  # the body can never arrive now: close, and the application sees a disconnect
            return False
        return self.cycle is not None and not self.cycle.response_complete

    def on_headers_complete(self) -> None:  # noqa: D102
        super().on_headers_complete()
        self._receiving = True
        # The parser has checked the length (digits, one value) before this is called.
        length = next((int(value) for name, value in self.headers if name == b"content-length"), None)
        if length is None:  # chunked or no body: as long again as the headers had
            self._arm(self.header_seconds)
        else:
            self._arm(self.header_seconds + length / MIN_BODY_BYTES_PER_SECOND)

    def on_message_complete(self) -> None:  # noqa: D102
        self._receiving = False
        self._disarm()
        super().on_message_complete()
        if self._lingering:
            self.transport.close()

    def on_response_complete(self) -> None:  # noqa: D102
        super().on_response_complete()
        if self.transport.is_closing() or self.pipeline:
            return
        if self._half_closed:
            self.transport.close()
            return
        if self._receiving:
            self._lingering = True
            self._arm(LINGER_SECONDS)
        else:
            # The next request's headers are due as the first one's were; an idle
            # connection is still closed by uvicorn's keep-alive timer first.
            self._arm(max(self.header_seconds, self.timeout_keep_alive))

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.debug("closing a connection whose request did not arrive in time: %s", self.client)
            self.transport.close()


class HttpServer:
    """An ASGI application served by uvicorn on its own thread and event loop.

    Args:
        app: the ASGI application.
        host, port: where to listen (port 0: any free port; see `.port`).
        tls: certificate, key and optional client CA; None for plain HTTP.
        limits: deadlines and the connection limit.
        drain_seconds: how long `stop` waits for requests in flight.
    """

    def __init__(self, app, host: str, port: int, *, tls: TlsFiles | None = None,
                 limits: HttpLimits | None = None, drain_seconds: float = DRAIN_SECONDS):
        limits = limits or HttpLimits()
        raise_open_files_limit(2 * limits.max_connections + 256)
        protocol = type("Protocol", (DeadlineHttpToolsProtocol,), {"header_seconds": limits.header_seconds})
        self._config = uvicorn.Config(
            app, loop="uvloop", http=protocol, lifespan="off", log_config=None, access_log=False,
            server_header=False, timeout_keep_alive=limits.idle_seconds, limit_concurrency=limits.max_connections,
            timeout_graceful_shutdown=drain_seconds, backlog=2048,
        )
        self._config.load()  # uvicorn reads its settings here; `ssl` is set after, from the context
        self._config.ssl = tls.context() if tls is not None else None
        self._socket = _listen(host, port)
        self._server = uvicorn.Server(self._config)
        self._thread = threading.Thread(target=self._run, name="zoo-rest", daemon=True)
        self.tls = tls is not None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self._socket.getsockname()[1]

    def start(self) -> None:
        """Serve on a background thread; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            raise RuntimeError("the REST server did not start")

    def stop(self) -> None:
        """Stop accepting connections, answer every request already received (up to the
        drain period), then close."""
        self._server.should_exit = True
        self._thread.join()

    def _run(self) -> None:
        # uvicorn installs no signal handlers off the main thread: `stop` ends it.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._server.serve(sockets=[self._socket]))


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(f"cannot bind the REST port {host}:{port}: {error.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def raise_open_files_limit(wanted: int) -> None:
    """Raise this process's soft limit on open files towards `wanted` (up to the hard limit),
    so that the connection limit, not the file limit, is what a flood meets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
