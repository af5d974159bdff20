"""Check a request's TensorProtos before anything is allocated for them.

A TensorProto declares its shape apart from the values it carries, and TensorFlow fills a
tensor that carries fewer values than its shape with copies of the last one (or zeros). A
441-byte request declaring [250000000] doubles on each input was expanded to a full array,
gigabytes of it, before anything looked at it. So, before decoding:

- the dtype must be one a client can send (not DT_VARIANT, DT_RESOURCE, a reference type);
- the shape must have a known rank and no negative dimension;
- raw `tensor_content` must hold exactly the bytes the shape needs, and typed value fields no
  more values than the shape has elements;
- the request's declared elements, all inputs together, must stay within
  `--max_tensor_elements` and within `AMPLIFICATION` elements a byte of the message as sent
  (but at least `FLOOR`). A tensor that carries its values takes at least one byte a value,
  so only a shape declared and not sent can reach that bound.

Each error is INVALID_ARGUMENT and names the input and what was expected.

`decode_request_tensors` applies these checks only where they are needed: a numeric tensor
that carries all its values is decoded at once (its size is what was sent, so it cannot
amplify; checking it first cost as much again as decoding, ~100 us an 11-input request), and
only the rest (strings, padded values, odd dtypes and shapes) is checked before TensorFlow
decodes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

from zoo.protocol import tensor_protos
from zoo.server.flags import DEFAULT_MAX_TENSOR_ELEMENTS as DEFAULT_MAX_ELEMENTS
from zoo.server.plane.errors import invalid_argument

AMPLIFICATION = 16  # declared elements a byte of request, at most (a value sent takes >= 1 byte)
FLOOR = 1 << 16  # small requests may still broadcast one value over a modest shape

# dtype -> (bytes a value in tensor_content, the typed field, numbers a value in that field)
_SENDABLE = {
    types_pb2.DT_FLOAT: (4, "float_val", 1),
    types_pb2.DT_DOUBLE: (8, "double_val", 1),
    types_pb2.DT_INT32: (4, "int_val", 1),
    types_pb2.DT_UINT8: (1, "int_val", 1),
    types_pb2.DT_INT16: (2, "int_val", 1),
    types_pb2.DT_INT8: (1, "int_val", 1),
    types_pb2.DT_UINT16: (2, "int_val", 1),
    types_pb2.DT_INT64: (8, "int64_val", 1),
    types_pb2.DT_UINT32: (4, "uint32_val", 1),
    types_pb2.DT_UINT64: (8, "uint64_val", 1),
    types_pb2.DT_BOOL: (1, "bool_val", 1),
    types_pb2.DT_HALF: (2, "half_val", 1),
    types_pb2.DT_BFLOAT16: (2, "half_val", 1),
    types_pb2.DT_COMPLEX64: (8, "scomplex_val", 2),
    types_pb2.DT_COMPLEX128: (16, "dcomplex_val", 2),
    types_pb2.DT_STRING: (None, "string_val", 1),
}


def decode_request_tensors(tensors: Mapping[str, tensor_pb2.TensorProto], request_bytes: int,
                           max_elements: int = DEFAULT_MAX_ELEMENTS) -> dict[str, np.ndarray]:
    """A request's inputs as arrays, every tensor checked before it can allocate more than
    was sent (see the module docstring); INVALID_ARGUMENT names the input."""
    arrays, others, total = {}, {}, 0
    for alias, proto in tensors.items():
        array = tensor_protos.whole_array(proto)
        if array is None:
            others[alias] = proto
        else:
            arrays[alias] = array
            total += array.size
    if others:
        check_request_tensors(others, request_bytes, max_elements, already=total)
        for alias, proto in others.items():
            try:
                arrays[alias] = tensor_protos.to_array(proto)
            except (TypeError, ValueError) as error:
                raise invalid_argument(f"tensor parsing error: {_short(alias)} ({error})") from None
    elif total > max_elements:
        raise invalid_argument(f"the request holds {total} elements, more than --max_tensor_elements={max_elements}")
    return {alias: arrays[alias] for alias in tensors}


def check_request_tensors(tensors: Mapping[str, tensor_pb2.TensorProto], request_bytes: int,
                          max_elements: int = DEFAULT_MAX_ELEMENTS, already: int = 0) -> None:
    """Refuse a request's tensors (INVALID_ARGUMENT naming the input) before they are decoded.

    Args:
        tensors: the request's inputs by alias.
        request_bytes: the size of the message as received (its ByteSize()).
        max_elements: `--max_tensor_elements`.
        already: elements of the request's other inputs, already decoded.
    """
    limit = min(max_elements, max(FLOOR, AMPLIFICATION * request_bytes))
    total = already
    for alias, proto in tensors.items():
        total += check_tensor(alias, proto)
        if total > limit:
            why = (f"--max_tensor_elements={max_elements}" if limit == max_elements
                   else f"{AMPLIFICATION} a byte of a {request_bytes}-byte request")
            raise invalid_argument(
                f"input '{_short(alias)}' brings the request to {total} elements, more than the {limit} allowed "
                f"({why}); send the values, or fewer rows a request"
            )


def check_tensor(alias: str, proto: tensor_pb2.TensorProto) -> int:
    """Check one TensorProto's dtype, shape and value count; returns its element count."""
    known = _SENDABLE.get(proto.dtype)
    if known is None:
        name = types_pb2.DataType.Name(proto.dtype) if proto.dtype in types_pb2.DataType.values() else proto.dtype
        raise invalid_argument(f"input '{_short(alias)}': dtype {name} cannot be sent in a request")
    if proto.tensor_shape.unknown_rank:
        raise invalid_argument(f"input '{_short(alias)}': the shape must have a known rank")
    sizes = [dim.size for dim in proto.tensor_shape.dim]
    if any(size < 0 for size in sizes):
        raise invalid_argument(f"input '{_short(alias)}': shape {sizes} has a negative dimension")
    elements = math.prod(sizes)
    item_bytes, field, numbers_a_value = known
    shape_text = f"shape {sizes} ({elements} elements)"
    content_bytes = len(proto.tensor_content)  # (each read of the field copies the bytes)
    if content_bytes and item_bytes is not None:
        needed = elements * item_bytes
        if content_bytes != needed:
            raise invalid_argument(
                f"input '{_short(alias)}': tensor_content holds {content_bytes} bytes; "
                f"{shape_text} of {types_pb2.DataType.Name(proto.dtype)} needs {needed}"
            )
        return elements
    values = len(getattr(proto, field))
    if values > elements * numbers_a_value:
        raise invalid_argument(f"input '{_short(alias)}': {values // numbers_a_value} values for {shape_text}")
    return elements


def _short(text: str, limit: int = 200) -> str:
    """A client-chosen name, cut to a length fit for an error message."""
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} characters)"
