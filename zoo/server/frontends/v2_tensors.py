"""The Open Inference Protocol's tensors (KServe V2, Triton) to arrays and back.

One tensor is a name, a datatype (`FP32`, `INT64`, `BYTES`...), a shape and its data, which
comes as JSON (`data`, row-major, flat or nested), as raw bytes after the JSON header (the
binary tensor data extension: `parameters.binary_data_size`), or over gRPC as typed
`contents` or `raw_input_contents`. Raw bytes are little-endian, row-major; a BYTES tensor's
raw form is each element as a 4-byte little-endian length and its bytes.

Every check runs before anything the shape declares is allocated, and names the input: the
datatype is known and the model's own (no silent casts), the shape has no negative size and
at most `max_elements` elements, and the data holds exactly that many elements (a shape
declared and not sent is refused, as `tensor_checks` refuses it for TF Serving's API).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from zoo.protocol import open_inference as protocol
from zoo.server.plane.errors import invalid_argument

# V2 datatype -> TensorFlow dtype.
DATATYPES = {datatype: tf.dtypes.as_dtype(types_pb2.DataType.Value(name))
             for datatype, name in protocol.TF_TYPES.items()}
_BY_DTYPE = {dtype: name for name, dtype in DATATYPES.items()}
# Which JSON numbers a datatype takes: ints for integer types, any number for floats.
_JSON_KINDS = {"b": "b", "i": "iu", "u": "iu", "f": "iuf", "V": "iuf"}  # V: bfloat16 (ml_dtypes)
# gRPC InferTensorContents field per datatype (FP16 and BF16 travel only as raw bytes).
CONTENTS_FIELD = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}


def datatype_of(dtype: tf.DType) -> str:
    """The V2 datatype of a TensorFlow dtype."""
    return _BY_DTYPE.get(tf.dtypes.as_dtype(dtype).base_dtype, "UNSUPPORTED")


def datatype_of_array(array: np.ndarray) -> str:
    """The V2 datatype of an answer's array (strings, as TensorFlow gives them: BYTES)."""
    if array.dtype.kind in "OSU":
        return "BYTES"
    return datatype_of(tf.dtypes.as_dtype(array.dtype))


def check_header(name, datatype, shape, expected: tf.DType | None, max_elements: int) -> int:
    """Check one input's name, datatype and shape against the model; its element count."""
    if not isinstance(name, str) or not name:
        raise invalid_argument("every input needs a 'name' (a string)")
    where = f"input '{name[:200]}'"
    if datatype not in DATATYPES:
        raise invalid_argument(f"{where}: datatype {str(datatype)[:50]!r} is not one of {', '.join(DATATYPES)}")
    if expected is not None and DATATYPES[datatype] != expected.base_dtype:
        raise invalid_argument(f"{where}: datatype {datatype} does not match the model's {datatype_of(expected)}")
    if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                       for d in shape):
        raise invalid_argument(f"{where}: 'shape' must be a list of sizes >= 0, got {str(shape)[:100]}")
    elements = math.prod(shape)
    if elements > max_elements:
        raise invalid_argument(f"{where}: shape {list(shape)} has {elements} elements, more than the "
                               f"{max_elements} a request may declare (--max_tensor_elements)")
    return elements


def from_json_data(name: str, datatype: str, shape: list[int], data) -> np.ndarray:
    """An input's JSON `data` (flat or nested, row-major) as an array of its datatype."""
    where = f"input '{name[:200]}'"
    dtype = DATATYPES[datatype]
    if datatype == "BYTES":
        flat = _flat_strings(data, where)
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
    else:
        try:
            array = np.asarray(data)
        except ValueError:
            raise invalid_argument(f"{where}: 'data' is ragged: nested lists must be of equal lengths") from None
        if array.size and array.dtype.kind not in _JSON_KINDS[np.dtype(dtype.as_numpy_dtype).kind]:
            raise invalid_argument(f"{where}: 'data' must be all {_words(datatype)} for datatype {datatype}")
        array = array.astype(dtype.as_numpy_dtype).ravel()
    if array.size != math.prod(shape):
        raise invalid_argument(f"{where}: shape {list(shape)} needs {math.prod(shape)} values, 'data' has "
                               f"{array.size}")
    return array.reshape(shape)


def from_raw(name: str, datatype: str, shape: list[int], raw) -> np.ndarray:
    """An input sent as raw bytes (binary extension or raw_input_contents)."""
    where = f"input '{name[:200]}'"
    elements = math.prod(shape)
    if datatype == "BYTES":
        values = deserialize_bytes(raw, where)
        if len(values) != elements:
            raise invalid_argument(f"{where}: shape {list(shape)} needs {elements} BYTES elements, "
                                   f"the raw data has {len(values)}")
        array = np.empty(elements, dtype=object)
        array[:] = values
        return array.reshape(shape)
    dtype = np.dtype(DATATYPES[datatype].as_numpy_dtype).newbyteorder("<")
    if len(raw) != elements * dtype.itemsize:
        raise invalid_argument(f"{where}: shape {list(shape)} of {datatype} needs {elements * dtype.itemsize} "
                               f"bytes, the raw data has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def from_values(name: str, datatype: str, shape: list[int], values) -> np.ndarray:
    """An input sent as gRPC's typed contents (already of the datatype's field)."""
    if datatype == "BYTES":
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
    else:
        array = np.asarray(values, dtype=DATATYPES[datatype].as_numpy_dtype)
    if array.size != math.prod(shape):
        raise invalid_argument(f"input '{name[:200]}': shape {list(shape)} needs {math.prod(shape)} values, "
                               f"contents has {array.size}")
    return array.reshape(shape)


def raw_bytes(array: np.ndarray) -> bytes:
    """An answer's array as the protocol's raw bytes."""
    if array.dtype.kind in "OSU":
        return protocol.serialize_bytes(array)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def deserialize_bytes(raw, where: str) -> list[bytes]:
    """The elements of a raw BYTES tensor; a length that runs past the data is named."""
    try:
        return protocol.deserialize_bytes(raw)
    except ValueError as error:
        raise invalid_argument(f"{where}: {error}") from None


def _flat_strings(data, where: str) -> list[bytes]:
    flat, stack = [], [data]
    while stack:  # iteratively: nesting depth is the client's to choose
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, str):
            flat.append(item.encode("utf-8"))
        else:
            raise invalid_argument(f"{where}: 'data' must be all strings for datatype BYTES")
    return flat


def _words(datatype: str) -> str:
    return {"BOOL": "true/false", "FP16": "numbers", "FP32": "numbers", "FP64": "numbers",
            "BF16": "numbers"}.get(datatype, "integers")
