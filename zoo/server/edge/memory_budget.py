"""A memory budget for requests in flight, spent by estimate before a body is decoded.

What a request costs the server while it is decoded, measured with `python -m bench memory`
(docs/MEMORY.md): a REST body parsed whole, up to 17 times its size (`1.5,` over and over:
4 bytes a number, each a Python float on its way into an array); a body that is one large
array of numbers, decoded piece by piece straight into its dtype (`zoo.server.frontends.json_numbers`),
at most 4 times its size plus a fixed amount for the piece being parsed; a gRPC request up to
10 times its message. The body limit bounds one request's bytes, not its memory, so a few
large requests at once could exhaust the machine. Here every request reserves its estimate
before its body is read (REST: the declared length, as a numeric body; a chunked body, chunk
by chunk; gRPC: the received message, before its tensors are decoded), and a REST body that
turns out to need parsing whole reserves the difference before it is parsed. A request waits
up to `wait_seconds` for room, and is refused otherwise:

- a request whose estimate alone is over the whole budget: REST 413, gRPC RESOURCE_EXHAUSTED;
- a request that finds no room in time: REST 503, gRPC RESOURCE_EXHAUSTED (both retryable).

Both protocols share one budget, so it bounds the process as a whole.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

MEMORY_PER_JSON_BYTE = 17  # REST parsed whole: peak bytes per body byte (bench memory's worst before pieces)
MEMORY_PER_NUMERIC_JSON_BYTE = 4  # REST, one array of numbers decoded in pieces (bench memory: 2.3-3.5x)
NUMERIC_PIECE_MEMORY = 8 << 20  # ... plus the piece being parsed, its answer's first parts, a thread
MEMORY_PER_PROTO_BYTE = 10  # gRPC: the message, its arrays, the session's tensors, the answer
DEFAULT_SHARE = 4  # the default budget: a quarter of the memory this process may use
WAIT_SECONDS = 1.0


def rest_estimate(body_bytes: int) -> int:
    """What a REST body is admitted with: as one array of numbers, the shape of nearly every
    large body (small ones are parsed whole: `json_numbers.SMALLEST_BYTES`)."""
    return min(body_bytes * MEMORY_PER_JSON_BYTE, body_bytes * MEMORY_PER_NUMERIC_JSON_BYTE + NUMERIC_PIECE_MEMORY)


def whole_parse_estimate(body_bytes: int) -> int:
    """What a REST body costs parsed whole (as Python objects first)."""
    return body_bytes * MEMORY_PER_JSON_BYTE


class OverBudget(Exception):
    """A request that cannot be admitted: `whole` when it alone is over the whole budget."""

    def __init__(self, message: str, whole: bool):
        super().__init__(message)
        self.message = message
        self.whole = whole


class MemoryBudget:
    """Bytes reserved by requests in flight, at most `limit` at once (thread-safe).

    Args:
        limit: the budget in bytes.
        wait_seconds: how long a request waits for room before it is refused.
    """

    def __init__(self, limit: int, wait_seconds: float = WAIT_SECONDS):
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.in_flight = 0
        self._lock = threading.Condition()

    def check_whole(self, estimate: int) -> None:
        """Raise OverBudget if `estimate` bytes could never fit, however long a request waited."""
        if estimate > self.limit:
            raise OverBudget(self._whole_message(estimate), whole=True)

    def try_reserve(self, estimate: int) -> bool:
        """Reserve `estimate` bytes now if they fit; raises OverBudget if they never can."""
        self.check_whole(estimate)
        with self._lock:
            if self.in_flight + estimate > self.limit:
                return False
            self.in_flight += estimate
            return True

    def reserve(self, estimate: int) -> None:
        """Reserve `estimate` bytes, waiting up to `wait_seconds` for room (threads)."""
        deadline = time.monotonic() + self.wait_seconds
        with self._lock:  # re-entrant: try_reserve takes it too
            while not self.try_reserve(estimate):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise OverBudget(self.busy_message(estimate), whole=False)
                self._lock.wait(remaining)

    async def reserve_async(self, estimate: int) -> None:
        """`reserve` for the event loop: polls for room without blocking the loop."""
        deadline = time.monotonic() + self.wait_seconds
        while not self.try_reserve(estimate):
            if time.monotonic() >= deadline:
                raise OverBudget(self.busy_message(estimate), whole=False)
            await asyncio.sleep(0.005)

    def release(self, estimate: int) -> None:
        """Give back what a finished request reserved."""
        with self._lock:
            self.in_flight -= estimate
            self._lock.notify_all()

    def busy_message(self, estimate: int) -> str:
        """Why a request found no room in time."""
        return (f"Server busy: requests in flight hold {self.in_flight} of the {self.limit}-byte memory budget "
                f"(--request_memory_budget_bytes) and this one needs about {estimate}; retry")

    def _whole_message(self, estimate: int) -> str:
        return (f"This request needs about {estimate} bytes of memory to decode, more than the server's whole "
                f"budget of {self.limit} bytes for requests in flight (--request_memory_budget_bytes)")


def default_budget_bytes() -> int:
    """A quarter of the memory this process may use: the cgroup's limit (a container's), or
    the machine's physical memory."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        limit = int(text) if text.isdigit() else physical
    except OSError:
        limit = physical
    return min(limit, physical) // DEFAULT_SHARE
