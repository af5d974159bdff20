"""The Open Inference Protocol's (V2's) datatypes and raw BYTES format, for server and client.

A V2 tensor's datatype names its element type; its raw form (the binary tensor data
extension over REST, raw_input_contents / raw_output_contents over gRPC) is the elements
little-endian in row-major order, and for BYTES each element as a 4-byte little-endian
length followed by its bytes.
"""

from __future__ import annotations

import struct

import numpy as np

# V2 datatype -> TensorFlow's DataType name (what signatures and the zoo's clients speak).
TF_TYPES = {
    "BOOL": "DT_BOOL", "UINT8": "DT_UINT8", "UINT16": "DT_UINT16", "UINT32": "DT_UINT32", "UINT64": "DT_UINT64",
    "INT8": "DT_INT8", "INT16": "DT_INT16", "INT32": "DT_INT32", "INT64": "DT_INT64",
    "FP16": "DT_HALF", "FP32": "DT_FLOAT", "FP64": "DT_DOUBLE", "BF16": "DT_BFLOAT16", "BYTES": "DT_STRING",
}
V2_TYPES = {tf_type: datatype for datatype, tf_type in TF_TYPES.items()}
# Little-endian NumPy dtypes of the fixed-size datatypes (BF16 needs ml_dtypes: see numpy_dtype).
_NUMPY = {
    "BOOL": "|b1", "UINT8": "|u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "|i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}


def numpy_dtype(datatype: str) -> np.dtype:
    """The NumPy dtype of a fixed-size datatype (little-endian)."""
    if datatype == "BF16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(_NUMPY[datatype])


class _FramedElements(dict):
    """Element -> its 4-byte length and bytes, kept for short elements. A classifier's BYTES
    answer is the same few labels over and over: framing 4,096 of them one by one took
    ~0.5 ms of a 4,096-row answer, looking them up here ~0.13 ms."""

    MAX_ENTRIES, MAX_ELEMENT_BYTES = 1024, 256

    def __missing__(self, item) -> bytes:
        value = item if isinstance(item, bytes) else str(item).encode("utf-8")
        framed = struct.pack("<I", len(value)) + value
        # Only text and bytes are kept: 1, 1.0 and True are one dict key, but not one element.
        if type(item) in (bytes, str) and len(value) <= self.MAX_ELEMENT_BYTES and len(self) < self.MAX_ENTRIES:
            self[item] = framed
        return framed


_FRAMED = _FramedElements()


def serialize_bytes(array: np.ndarray) -> bytes:
    """Each element as a 4-byte little-endian length and its bytes (text as UTF-8)."""
    items = np.asarray(array, dtype=object).ravel().tolist()
    try:
        return b"".join(map(_FRAMED.__getitem__, items))
    except TypeError:  # an element that cannot be a dict key: framed one by one
        return b"".join(_FRAMED.__missing__(item) for item in items)


def deserialize_bytes(raw) -> list[bytes]:
    """The elements of a raw BYTES tensor; ValueError naming the byte where it goes wrong."""
    values, offset, view = [], 0, memoryview(raw)
    while offset < len(view):
        if offset + 4 > len(view):
            raise ValueError(f"BYTES data ends inside an element's 4-byte length at byte {offset}")
        (length,) = struct.unpack_from("<I", view, offset)
        offset += 4
        if offset + length > len(view):
            raise ValueError(f"a BYTES element of {length} bytes at byte {offset - 4} runs past the "
                             f"{len(view)} bytes sent")
        values.append(bytes(view[offset:offset + length]))
        offset += length
    return values


def to_raw(array: np.ndarray, datatype: str) -> bytes:
    """An array's raw V2 bytes as `datatype`."""
    if datatype == "BYTES":
        return serialize_bytes(array)
    return np.ascontiguousarray(array, dtype=numpy_dtype(datatype)).tobytes()


def from_raw(raw, datatype: str, shape) -> np.ndarray:
    """Raw V2 bytes as an array (object dtype of bytes for BYTES); ValueError if they do not fit."""
    if datatype == "BYTES":
        values = deserialize_bytes(raw)
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    return np.frombuffer(raw, dtype=numpy_dtype(datatype)).reshape(shape)
