"""What passes between the REST edge and a REST front end: `RestRequest` in, `Answer` out."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

JSON = b"application/json"


# A request's id for its request-log record (zoo logs' request_id column): the de facto header
# of proxies and tracing (Envoy, nginx), sent or not by the client.
REQUEST_ID_HEADER = "x-request-id"


@dataclasses.dataclass
class Answer:
    """What goes back: status, body (text, or the parts of a large one), content type and
    any headers of the protocol's own."""

    status: int
    text: str | list[bytes]
    content_type: bytes | None = JSON
    headers: list[tuple[bytes, bytes]] = dataclasses.field(default_factory=list)

    @classmethod
    def error(cls, status: int, message: str) -> Answer:
        """Both APIs' error body, {"error": message}, with `status`."""
        return cls(status, json.dumps({"error": message}))  # as TF Serving writes it: ASCII, ": "

    def parts(self) -> list[bytes]:
        """The body as bytes, in the parts it was made in."""
        return [self.text.encode("utf-8")] if isinstance(self.text, str) else self.text


@dataclasses.dataclass
class RestRequest:
    """One REST request as the edge hands it to a front end: its line, headers (lower-case
    names) and whole body, the deadline in seconds (None: none), and `afford_json(n)`, to be
    called before n bytes of JSON are parsed whole (the memory budget's reservation for it;
    raises OverBudget when there is no room)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes | bytearray
    deadline: float | None
    afford_json: Callable[[int], None]
