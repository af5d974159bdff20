"""Large numeric JSON arrays decoded piece by piece into one typed array.

Parsed whole, a request of numbers costs far more than its body: every number becomes a
Python float (24 bytes, plus 8 for its place in a list) before NumPy makes one array of it,
13-17 times the body for short numbers (`python -m bench memory`, docs/MEMORY.md). A
predict body is nearly always one big array of numbers in a small object, so here that
array is cut out of the body and left as text (`NumericText`) while the small rest (the
"skeleton": signature name, keys) is parsed as usual; the array is then parsed a piece of
about `PIECE_BYTES` at a time, each piece straight into its slot of one array of the
signature's dtype. A request then costs about its body plus its array.

The pieces are still parsed by orjson, so the rules are JSON's, and the result is the one
the whole parse gives: if `"[" + piece + "]"` is a JSON array for every piece, the pieces
joined by the commas they were cut at are the same array. Anything this path does not
handle (strings, NaN, objects, ragged or empty lists, a float for an integer input) makes it
give up, and the caller parses the body whole, which says what is wrong as before.

Where to cut: a nested array of numbers has one comma fewer than it has numbers (every
comma separates two siblings, and each list of k members has k - 1 of them), so the
array's size is known from one count; between rows of a d-deep array, and nowhere else in a
rectangular one, d - 1 closing brackets come before a comma.
"""

from __future__ import annotations

import dataclasses
import math
import re
import secrets

import numpy as np
import orjson

PIECE_BYTES = 1 << 18  # a piece costs ~25x its bytes while orjson parses it (its tree, then Python floats)
SMALLEST_BYTES = 1 << 15  # smaller arrays go the ordinary way: nothing to save
DEEPEST = 32  # deeper nesting goes the ordinary way (which refuses what is nested too deeply)
NUMERIC_BYTES = b"0123456789.eE+-[], \t\n\r"

# The head of a predict body whose inputs are one array: `{"instances": [`, `{"inputs": [`,
# or `{"inputs": {"name": [`, optionally after a signature name (names without escapes).
_HEAD = re.compile(
    rb'\s*\{(?:\s*"signature_name"\s*:\s*"[^"\\]*"\s*,)?'
    rb'\s*"(instances|inputs)"\s*:\s*(?:\{\s*"([^"\\]{1,1000})"\s*:\s*)?\[',
)
_OPENING = re.compile(rb"(?:\[\s*)+")


@dataclasses.dataclass(eq=False)
class NumericText:
    """A JSON array of numbers still as text: `body[start:end]`, brackets included."""

    body: bytes | bytearray
    start: int
    end: int

    def to_array(self, dtype: np.dtype) -> np.ndarray | None:
        """The array as `dtype`, or None where this path gives up (the whole parse then says
        what is wrong): see the module docstring."""
        try:
            return self._decode(np.dtype(dtype))
        except (orjson.JSONDecodeError, ValueError, TypeError, OverflowError):
            return None

    def _decode(self, dtype: np.dtype) -> np.ndarray | None:
        body, end = self.body, self.end - 1  # end: the closing bracket
        depth = _OPENING.match(body, self.start).group().count(b"[")
        if depth > DEEPEST:
            return None
        count = body.count(b",", self.start, end) + 1
        out = np.empty(count, dtype)
        cut = re.compile(rb"\](?:\s*\]){%d}\s*," % (depth - 2)) if depth > 1 else None
        position, filled, row_shape = self.start + 1, 0, None
        while position < end:
            comma = _next_cut(body, position + PIECE_BYTES, end, cut)
            piece = np.asarray(orjson.loads(b"[" + body[position:comma] + b"]"))
            if (piece.dtype.kind not in "iuf" or piece.ndim != depth or filled + piece.size > count
                    or (piece.dtype.kind == "f" and dtype.kind in "iu")
                    or (row_shape is not None and piece.shape[1:] != row_shape)):
                return None
            row_shape = piece.shape[1:]
            out[filled:filled + piece.size] = piece.ravel()  # cast as astype does: ints straight to dtype
            filled += piece.size
            position = comma + 1
        if row_shape is None or filled != count:
            return None
        return out.reshape((count // math.prod(row_shape),) + row_shape)


def _next_cut(body, start: int, end: int, cut: re.Pattern | None) -> int:
    """The comma between rows at or after `start`, or `end` when none is left."""
    if start >= end:
        return end
    if cut is None:
        comma = body.find(b",", start, end)
        return comma if comma >= 0 else end
    match = cut.search(body, start, end)
    return match.end() - 1 if match else end


def skeleton(body: bytes | bytearray) -> dict | None:
    """The body parsed with its one large array of numbers left as `NumericText`, or None
    when the body is not of that shape (the caller then parses it whole)."""
    head = _HEAD.match(body, 0, 4096)
    if head is None:
        return None
    start, end = head.end() - 1, body.rfind(b"]") + 1
    if end - start < SMALLEST_BYTES or not _only_numbers(body, start, end):
        return None
    # Parse what is around the array with a marker in its place; the marker found where the
    # array's key says proves the array was that value (and not, say, inside a string).
    marker = secrets.token_hex(16)
    try:
        document = orjson.loads(body[:start] + b'"' + marker.encode() + b'"' + body[end:])
    except orjson.JSONDecodeError:
        return None
    key, name = head.group(1).decode(), head.group(2)
    holder = document.get(key) if isinstance(document, dict) else None
    if name is not None:
        name = name.decode("utf-8", "replace")
        if not isinstance(holder, dict) or holder.get(name) != marker:
            return None
        holder[name] = NumericText(body, start, end)
    elif holder == marker:
        document[key] = NumericText(body, start, end)
    else:
        return None
    return document


def _only_numbers(body, start: int, end: int) -> bool:
    """Whether `body[start:end]` holds only numbers, brackets, commas and blanks (a piece at a
    time: the check copies what it looks at)."""
    for offset in range(start, end, PIECE_BYTES):
        if body[offset:min(offset + PIECE_BYTES, end)].translate(None, NUMERIC_BYTES):
            return False
    return True
