"""`Answer`: what a REST front end sends back (both protocols' routes build one)."""

from __future__ import annotations

import dataclasses
import json

JSON = b"application/json"


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
