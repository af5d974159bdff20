"""HTTP/1.1 request framing for the REST front end, strict where `http.server` is lenient.

`http.server` leaves the body to the handler, and a handler that trusts `Content-Length`
can be made to read forever (`-1`), to wait for bytes never sent, or to take the rest of a
body as the next request (two Content-Length headers behind a proxy: request smuggling).
Here, following RFC 9112 section 6:

- a body is framed by exactly one Content-Length of digits, or by `Transfer-Encoding:
  chunked` (TF Serving's libevent server takes both); both at once, several different
  lengths, or any other transfer coding are refused and the connection is closed;
- a body over the limit is refused (413) as soon as its size is known, before it is read,
  and a chunked body as soon as its chunks pass the limit;
- every request must arrive by a deadline: `HEADER_SECONDS` for the request line and
  headers (which also ends idle keep-alive connections), then `HEADER_SECONDS` plus a
  minimum rate (`MIN_BYTES_PER_SECOND`) for the body. A client that sends a byte a second
  (slowloris) loses its connection at the deadline instead of holding a thread forever.
"""

from __future__ import annotations

import io
import socket
import time

HEADER_SECONDS = 30.0
MIN_BYTES_PER_SECOND = 64 * 1024
MAX_CHUNK_LINE = 1024  # a chunk-size line (hex size and extensions), or a trailer line


class FramingError(Exception):
    """A request whose framing cannot be trusted: answer `status` and close the connection."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class DeadlineSocketIO(socket.SocketIO):
    """A socket reader that fails with TimeoutError once `deadline` (monotonic) has passed,
    however slowly the bytes trickle in; `deadline = None` leaves the socket's own timeout."""

    deadline: float | None = None

    def readinto(self, buffer) -> int:
        """Read into `buffer`, failing once the request's deadline or minimum rate is missed."""
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the request did not arrive in time")
            self._sock.settimeout(remaining)
        return super().readinto(buffer)


def deadline_reader(connection: socket.socket) -> tuple[io.BufferedReader, DeadlineSocketIO]:
    """A buffered reader over `connection` whose reads enforce the deadlines."""
    raw = DeadlineSocketIO(connection, "rb")
    return io.BufferedReader(raw, io.DEFAULT_BUFFER_SIZE), raw


def body_length(headers) -> int | None:
    """The body's length from Content-Length; None for a chunked body. Raises FramingError."""
    lengths = headers.get_all("Content-Length") or []
    codings = [c.strip().lower() for value in headers.get_all("Transfer-Encoding") or [] for c in value.split(",")]
    if codings:
        if lengths:
            raise FramingError(400, "Both Content-Length and Transfer-Encoding were sent; send one")
        if codings != ["chunked"]:
            raise FramingError(501, f"Transfer-Encoding '{', '.join(codings)[:100]}' is not supported; "
                                    "send 'chunked' or a Content-Length")
        return None
    if not lengths:
        return 0
    values = {value.strip() for value in lengths}
    if len(values) > 1:
        raise FramingError(400, "Several different Content-Length headers were sent")
    text = values.pop()
    if not (text.isascii() and text.isdigit()):
        raise FramingError(400, f"Content-Length '{text[:40]}' is not a length")
    return int(text)


def read_chunked(rfile, limit: int, reader: DeadlineSocketIO, started: float) -> bytes:
    """A chunked body (RFC 9112 section 7.1), at most `limit` bytes; trailers are dropped.
    Its deadline grows with what has arrived, at MIN_BYTES_PER_SECOND."""
    parts, total = [], 0
    while True:
        reader.deadline = started + HEADER_SECONDS + total / MIN_BYTES_PER_SECOND
        line = _line(rfile, "chunk size")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise FramingError(400, f"Chunk size {size_text[:20]!r} is not hexadecimal") from None
        if size < 0 or not size_text.isalnum():
            raise FramingError(400, f"Chunk size {size_text[:20]!r} is not hexadecimal")
        if size == 0:
            break
        total += size
        if total > limit:
            raise FramingError(413, f"Request body of more than {limit} bytes exceeds the limit of {limit} bytes")
        reader.deadline = started + HEADER_SECONDS + total / MIN_BYTES_PER_SECOND
        data = rfile.read(size)
        if len(data) != size:
            raise FramingError(400, "The chunked body ended inside a chunk")
        parts.append(data)
        if _line(rfile, "chunk end") != b"":
            raise FramingError(400, "A chunk is longer than its size says")
    while _line(rfile, "trailer") != b"":  # trailer fields, up to the blank line
        pass
    return b"".join(parts)


def _line(rfile, what: str) -> bytes:
    line = rfile.readline(MAX_CHUNK_LINE + 1)
    if not line.endswith(b"\n"):
        raise FramingError(400, f"Malformed chunked body: the {what} line is too long or cut off")
    return line.rstrip(b"\r\n")
