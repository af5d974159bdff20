"""TF Serving's REST JSON: request bodies to arrays and protos, results back to JSON.

The rules and messages follow tensorflow_serving/util/json_tensor.cc:
- `instances` (row format: a list, one entry per example; objects when the signature has
  several inputs) or `inputs` (columnar: a value, or an object of named values);
- `{"b64": "..."}` for binary strings, in requests and for outputs named `*_bytes`;
- responses `{"predictions": [...]}` (row) or `{"outputs": ...}` (columnar), with the output
  name dropped when the signature has only one output;
- floats written in their shortest form that reads back to the same float32, whole
  numbers with ".0", and NaN / Infinity as TF Serving writes them (very small and large
  numbers in positional form, 0.00001, where TF Serving writes 1e-05: the same number);
- Classify/Regress take `context` + `examples` and answer `{"results": [...]}`.
"""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np
import orjson
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import input_pb2

from zoo.server.frontends.json_numbers import NumericText, skeleton
from zoo.server.plane.errors import invalid_argument
from zoo.server.plane.servable import Signature, type_name

ROW, COLUMNAR = "row", "columnar"


# -- requests ------------------------------------------------------------------------------


def parse_body(body: bytes | bytearray) -> dict:
    """The request's JSON object, or INVALID_ARGUMENT saying why it is not one, in
    RapidJSON's words (TF Serving's parser). As there, NaN and Infinity are numbers, and
    anything after the first complete JSON value is ignored (kParseStopWhenDoneFlag)."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        document = orjson.loads(body)  # several times faster than json on large batches
    except orjson.JSONDecodeError:
        document = _parse_leniently(body)
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {_short(document)} Is not object")
    return document


def numeric_skeleton(body: bytes | bytearray) -> dict | None:
    """A :predict body with its one large array of numbers left as text, to be decoded
    straight into its input's dtype (`zoo.server.frontends.json_numbers`); None when the body is not of
    that shape (parse it whole). `decode_predict` raises ParseWhole if the numbers turn out
    not to be what that decoding takes."""
    return skeleton(body)


class _NumberTooBig(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NumberTooBig(text)
    return value


def _json_int(text: str) -> int | float:
    """An integer as RapidJSON reads it: int64/uint64 as it is, a larger one as a double,
    and one past the double range refused (orjson refuses anything over 64 bits, so such
    numbers reach this parser)."""
    value = int(text)
    if -(2**63) <= value < 2**64:
        return value
    return _finite_float(text)


# Python's json messages -> RapidJSON's (rapidjson/error/en.h), which TF Serving answers with.
_RAPIDJSON_WORDS = {
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
    "Invalid control character at": "Invalid encoding in string.",
}


def _parse_leniently(body: bytes):
    """What orjson refuses but RapidJSON (with TF Serving's flags) takes: NaN and Infinity,
    trailing content. Anything else malformed gets RapidJSON's message and an offset."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise invalid_argument(f"JSON Parse error: Invalid encoding in string. at offset: {error.start}") from None
    start = len(text) - len(text.lstrip(" \t\n\r"))
    if start == len(text):
        raise invalid_argument(f"JSON Parse error: The document is empty. at offset: {start}")
    decoder = json.JSONDecoder(parse_float=_finite_float, parse_int=_json_int)
    try:
        document, _ = decoder.raw_decode(text, start)
    except _NumberTooBig:
        raise invalid_argument("JSON Parse error: Number too big to be stored in double.") from None
    except json.JSONDecodeError as error:
        raise invalid_argument(f"JSON Parse error: {_rapidjson_words(error)} at offset: {error.pos}") from None
    except RecursionError:
        raise invalid_argument("JSON Parse error: Unspecific syntax error. (nested too deeply)") from None
    return document


def _rapidjson_words(error: json.JSONDecodeError) -> str:
    if error.msg == "Expecting ',' delimiter":
        if _innermost_container(error.doc, error.pos) == "[":
            return "Missing a comma or ']' after an array element."
        return "Missing a comma or '}' after an object member."
    for python_words, rapidjson_words in _RAPIDJSON_WORDS.items():
        if error.msg.startswith(python_words):
            return rapidjson_words
    return "Unspecific syntax error."


def _innermost_container(text: str, end: int) -> str:
    """'[' or '{': the bracket still open at `end` (strings skipped)."""
    stack, in_string, escaped = [], False, False
    for char in text[:end]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else "{"


def signature_name(document: dict) -> str:
    """The request's signature_name, or serving_default."""
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid_argument(
            f"JSON Value: {_short(document)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


class ParseWhole(Exception):
    """Numbers left as text that their piecewise decoding does not take: parse the body whole."""


def request_format(document: dict) -> str:
    """ROW for `instances`, COLUMNAR for `inputs`: the shape the answer takes."""
    return ROW if "instances" in document else COLUMNAR


def decode_predict(document: dict, signature: Signature) -> dict[str, np.ndarray]:
    """The named input arrays of a :predict body, as the signature's dtypes."""
    if not signature.inputs:
        raise invalid_argument(
            f"Failed to get input map for signature: {signature.name if document.get('signature_name') else 'DEFAULT'}"
        )
    has_instances, has_inputs = "instances" in document, "inputs" in document
    if has_instances and has_inputs:
        raise invalid_argument(
            f"JSON Value: {_short(document)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist"
        )
    if has_instances:
        return _decode_instances(document["instances"], signature)
    if has_inputs:
        return _decode_inputs(document["inputs"], signature)
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _decode_instances(instances, signature: Signature) -> dict[str, np.ndarray]:
    if isinstance(instances, NumericText):
        if len(signature.inputs) > 1:
            raise ParseWhole()
        return {name: _to_array(instances, signature, name, row_format=True) for name in signature.inputs}
    if not isinstance(instances, list):
        raise invalid_argument("Excepting 'instances' to be an list/array")
    if not instances:
        raise invalid_argument("No values in 'instances' array")
    names = sorted(signature.inputs)
    if not _is_named_object(instances[0]):
        if len(names) > 1:
            raise invalid_argument(
                "instances is a plain list, but expecting list of objects as multiple input "
                f"tensors required as per tensorinfo_map (inputs: {', '.join(names)})"
            )
        return {names[0]: _to_array(instances, signature, names[0], row_format=True)}
    expected = set(names)
    for index, instance in enumerate(instances):
        if not _is_named_object(instance):
            raise invalid_argument(f"Expecting object but got list at item {index} of input list")
        for key in instance:  # TF Serving's AddInstanceItem looks at each key in turn
            if key not in expected:
                raise invalid_argument(
                    f"Failed to process element: {index} key: {_short_name(key)} of 'instances' list. "
                    f"Error: JSON object: does not have named input: {_short_name(key)}"
                )
        if set(instance) != expected:
            missing, extra = sorted(expected - set(instance)), sorted(set(instance) - expected)
            raise invalid_argument(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{_short(instance)} keys must be equal to: {','.join(names)}"
                f" (missing: {', '.join(missing) or 'none'}; unexpected: {', '.join(extra) or 'none'})"
            )
    return {
        name: _to_array([instance[name] for instance in instances], signature, name, row_format=True)
        for name in names
    }


def _decode_inputs(inputs, signature: Signature) -> dict[str, np.ndarray]:
    names = sorted(signature.inputs)
    if not _is_named_object(inputs):
        if len(names) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors "
                f"required as per tensorinfo_map (inputs: {', '.join(names)})"
            )
        return {names[0]: _to_array(inputs, signature, names[0], row_format=False)}
    arrays = {}
    for name in names:
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = _to_array(inputs[name], signature, name, row_format=False)
    # Like TF Serving, keys the signature does not take are ignored in columnar requests.
    return arrays


def _to_array(value, signature: Signature, name: str, *, row_format: bool) -> np.ndarray:
    """One input's JSON value (a list of rows, or a tensor) as an array of its dtype."""
    dtype = signature.inputs[name].dtype
    if isinstance(value, NumericText):
        array = None if dtype == tf.string else value.to_array(dtype.as_numpy_dtype)
        if array is None:
            raise ParseWhole()
        return array
    if dtype == tf.string:
        array = np.asarray(_decode_strings(value, name), dtype=object)
    else:
        try:
            array = np.asarray(value)
        except ValueError:
            raise invalid_argument(
                f"input '{name}': the lists are of unequal lengths; a tensor must be dense"
            ) from None
        if array.dtype.kind not in "iuf" or (array.dtype.kind == "f" and dtype.is_integer):
            raise _type_error(value, name, dtype, row_format)
        array = array.astype(dtype.as_numpy_dtype, copy=False)
    return array


def _decode_strings(value, name: str):
    if isinstance(value, list):
        decoded = [_decode_strings(item, name) for item in value]
        if decoded and isinstance(decoded[0], list) and len({len(d) if isinstance(d, list) else -1
                                                             for d in decoded}) > 1:
            raise invalid_argument(f"input '{name}': the lists are of unequal lengths; a tensor must be dense")
        return decoded
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise invalid_argument(f"input '{name}': Unable to base64 decode {_short(value)}") from None
    raise invalid_argument(
        f"input '{name}': JSON Value: {_short(value)} Type: {_json_type(value)} is not of expected type: string"
    )


def _type_error(value, name: str, dtype: tf.DType, row_format: bool):
    """Name the first value that is not of the input's type (and its row, in row format)."""
    where, bad = f"input '{name}': ", _bad_leaf(value, dtype)
    if row_format:
        for index, item in enumerate(value):
            if _bad_leaf(item, dtype) is not _OK:
                where = f"Failed to process element: {index} key: {name} of 'instances' list. Error: "
                bad = _bad_leaf(item, dtype)
                break
    if bad is _OK:
        return invalid_argument(f"{where}values are not all numbers of type {type_name(dtype)}")
    return invalid_argument(
        f"{where}JSON Value: {_short(bad)} Type: {_json_type(bad)} is not of expected type: {type_name(dtype)}"
    )


def _bad_leaf(value, dtype: tf.DType):
    if isinstance(value, list):
        for item in value:
            bad = _bad_leaf(item, dtype)
            if bad is not _OK:
                return bad
        return _OK
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and not (dtype.is_integer and isinstance(value, float)):
        return _OK
    return value


_OK = object()


def decode_examples(document: dict) -> input_pb2.Input:
    """A :classify / :regress body as the Input proto: `context` and `examples` as tf.Examples."""
    model_input = input_pb2.Input()
    if "examples" not in document:
        raise invalid_argument(
            f"JSON Value: {_short(document)} When method is classify, key 'examples' is expected and was not found"
        )
    examples = document["examples"]
    if not isinstance(examples, list):
        raise invalid_argument("Expecting 'examples' value to be an list/array")
    if not examples:
        raise invalid_argument("'examples' value is an empty array")
    if "context" in document:
        target = model_input.example_list_with_context
        _fill_example(document["context"], target.context)
        for example in examples:
            _fill_example(example, target.examples.add())
    else:
        for example in examples:
            _fill_example(example, model_input.example_list.examples.add())
    return model_input


def _fill_example(value, example) -> None:
    if not isinstance(value, dict):
        raise invalid_argument(f"Example must be JSON object but got JSON {_json_type(value)}")
    for name, content in value.items():
        feature = example.features.feature[name]
        for item in content if isinstance(content, list) else [content]:
            _add_feature_value(name, item, feature)


def _add_feature_value(name: str, item, feature) -> None:
    kind = feature.WhichOneof("kind")

    def require(wanted: str) -> None:
        if kind not in (None, wanted):
            raise invalid_argument(
                f"Unexpected element type in feature: {name} expecting type: {kind.removesuffix('_list')}"
            )

    if isinstance(item, bool):
        require("int64_list")
        feature.int64_list.value.append(int(item))
    elif isinstance(item, int):
        require("int64_list")
        feature.int64_list.value.append(item)
    elif isinstance(item, float):
        require("float_list")
        feature.float_list.value.append(item)
    elif isinstance(item, str):
        require("bytes_list")
        feature.bytes_list.value.append(item.encode("utf-8"))
    elif isinstance(item, dict) and _is_b64(item):
        require("bytes_list")
        try:
            feature.bytes_list.value.append(base64.b64decode(item["b64"], validate=True))
        except (binascii.Error, ValueError):
            raise invalid_argument(f"Feature: {name}: Unable to base64 decode") from None
    else:
        raise invalid_argument(f"Feature: {name} has element with unexpected JSON type: {_json_type(item)}")


# -- responses -----------------------------------------------------------------------------


def encode_predict(outputs: dict[str, np.ndarray], request_format: str) -> list[bytes]:
    """A Predict answer in the request's format (row or columnar), as the parts of its body
    (a large tensor's text is sent as it is, not copied into one string with the rest)."""
    names = sorted(outputs)
    if request_format == COLUMNAR:
        if len(names) == 1:
            return [b'{"outputs": ', tensor_json_bytes(outputs[names[0]], _is_bytes(names[0])), b"}"]
        parts = [f"{json.dumps(n)}: {tensor_json(outputs[n], _is_bytes(n))}" for n in names]
        return [('{"outputs": {' + ", ".join(parts) + "}}").encode()]
    batch = None
    for name in names:
        value = outputs[name]
        if value.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch is not None and value.shape[0] != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {value.shape[0]} expecting: {batch}"
            )
        batch = value.shape[0]
    if len(names) == 1:  # the predictions are the tensor's rows: the tensor itself
        return [b'{"predictions": ', tensor_json_bytes(outputs[names[0]], _is_bytes(names[0])), b"}"]
    rows = {name: _row_texts(outputs[name], _is_bytes(name)) for name in names}
    keys = [json.dumps(n) for n in names]
    items = ("{" + ", ".join(f"{k}: {rows[n][i]}" for k, n in zip(keys, names)) + "}" for i in range(batch))
    return [('{"predictions": [' + ", ".join(items) + "]}").encode()]


def encode_classification(result) -> str:
    """A Classify answer: label and score pairs per example."""
    rows = []
    for classification in result.classifications:
        pairs = [f"[{json.dumps(c.label)}, {_float32(c.score)}]" for c in classification.classes]
        rows.append("[" + ", ".join(pairs) + "]")
    return '{"results": [' + ", ".join(rows) + "]}"


def encode_regression(result) -> str:
    """A Regress answer: a value per example."""
    return '{"results": [' + ", ".join(_float32(r.value) for r in result.regressions) + "]}"


def encode_status(response) -> str:
    """A GetModelStatus answer as TF Serving's REST API writes it."""
    return json_format.MessageToJson(response, always_print_fields_with_no_presence=True, indent=1)


def encode_metadata(response) -> str:
    """{"model_spec": ..., "metadata": {"signature_def": <SignatureDefMap>}}, as TF Serving
    writes it (field names as in the protos, defaults included)."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    options = {"preserving_proto_field_name": True, "always_print_fields_with_no_presence": True}
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    return json.dumps(
        {
            "model_spec": json_format.MessageToDict(response.model_spec, **options),
            "metadata": {"signature_def": json_format.MessageToDict(signatures, **options)},
        },
        indent=1,
    )


def _orjson_writes(array: np.ndarray) -> bool:
    """Whether orjson can write this tensor: finite numbers only (it has no NaN or Infinity).

    orjson writes a float32 as the shortest text that reads back as the same float32 (in
    positional form: 0.00001 where TF Serving writes 1e-05; the same number), far faster
    than formatting each element.
    """
    return array.dtype.kind in "iu" or (array.dtype.kind == "f" and bool(np.isfinite(array).all()))


def tensor_json(array: np.ndarray, as_bytes: bool = False) -> str:
    """A tensor as nested JSON lists (a bare value for a scalar)."""
    return tensor_json_bytes(array, as_bytes).decode()


def tensor_json_bytes(array: np.ndarray, as_bytes: bool = False) -> bytes:
    """`tensor_json` as UTF-8 bytes (how orjson writes it: no copy to a str and back)."""
    if _orjson_writes(array):
        return orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY)
    return _nest(leaf_strings(array, as_bytes)).encode()


def _row_texts(array: np.ndarray, as_bytes: bool) -> list[str]:
    """Each row (first-axis slice) of a tensor as JSON text."""
    if _orjson_writes(array):
        return [orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY).decode() for row in array]
    return [_nest(row) for row in leaf_strings(array, as_bytes)]


def leaf_strings(array: np.ndarray, as_bytes: bool = False) -> np.ndarray:
    """Each element as its JSON text, vectorized for numbers."""
    kind = array.dtype.kind
    if kind == "f":
        # NumPy prints a float32 in the shortest form that reads back as the same float32,
        # which is what TF Serving writes; whole numbers keep their ".0".
        text = array.astype(str)
        text = np.where(text == "nan", "NaN", text)
        text = np.where(text == "inf", "Infinity", text)
        return np.where(text == "-inf", "-Infinity", text)
    if kind in "iu":
        return array.astype(str)
    if kind == "b":
        return np.where(array, "true", "false")
    encode = _b64_json if as_bytes else _text_json
    return np.vectorize(encode, otypes=[object])(array) if array.size else array.astype(object)


def _nest(strings) -> str:
    if not isinstance(strings, np.ndarray):
        return str(strings)  # one element: a numpy scalar or, from object arrays, a str
    if strings.ndim == 0:
        return str(strings.item())
    if strings.ndim == 1:
        return "[" + ", ".join(strings.tolist()) + "]"
    return "[" + ", ".join(_nest(part) for part in strings) + "]"


def _text_json(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return json.dumps(value, ensure_ascii=False)


def _b64_json(value) -> str:
    raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return '{"b64": "' + base64.b64encode(raw).decode("ascii") + '"}'


def _float32(value: float) -> str:
    return leaf_strings(np.array([value], dtype=np.float32))[0]


def _is_bytes(name: str) -> bool:
    return name.endswith("_bytes")


def _is_b64(value: dict) -> bool:
    return len(value) == 1 and isinstance(value.get("b64"), str)


def _is_named_object(value) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _json_type(value) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    return "Object"


def _short_name(name: str, limit: int = 200) -> str:
    return name if len(name) <= limit else name[: limit - 3] + "..."


def _short(value, limit: int = 200) -> str:
    text = json.dumps(value, default=_whole_parse_needed)
    return text if len(text) <= limit else text[: limit - 3] + "..."



def _whole_parse_needed(value):
    """A message that quotes numbers left as text needs the body parsed whole."""
    if isinstance(value, NumericText):
        raise ParseWhole()
    raise TypeError(f"{type(value).__name__} is not JSON")
