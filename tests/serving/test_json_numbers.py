"""Large numeric arrays decoded piece by piece (zoo.server.frontends.json_numbers) against the whole
parse they stand in for: the same array whenever that path answers, and never an answer
where the whole parse fails or would say something else."""

from __future__ import annotations

import tracemalloc

import numpy as np
import orjson
import pytest

from zoo.server.frontends import json_numbers
from zoo.server.frontends.json_numbers import NumericText, skeleton


@pytest.fixture()
def small_pieces(monkeypatch):
    """Pieces of a few dozen bytes, so that small arrays are cut many times."""
    monkeypatch.setattr(json_numbers, "PIECE_BYTES", 23)
    monkeypatch.setattr(json_numbers, "SMALLEST_BYTES", 1)


def _text(array: np.ndarray, rng) -> bytes:
    """JSON for `array` with random blanks, ints and floats mixed."""
    if array.ndim == 0:
        value = array.item()
        return (str(int(value)) if rng.random() < 0.3 else repr(float(value))).encode()
    blank = lambda: b" \n\t"[: rng.integers(0, 3)]  # noqa: E731
    return b"[" + blank() + (blank() + b"," + blank()).join(_text(part, rng) for part in array) + blank() + b"]"


def _whole(body: bytes, dtype) -> np.ndarray | None:
    """What the ordinary path makes of the body's array, or None where it refuses it."""
    try:
        value = orjson.loads(body)["instances"]
        array = np.asarray(value)
    except (orjson.JSONDecodeError, ValueError):
        return None
    if array.size == 0 or array.dtype.kind not in "iuf" or (array.dtype.kind == "f" and np.dtype(dtype).kind in "iu"):
        return None
    return array.astype(dtype)


def _fast(body: bytes, dtype) -> np.ndarray | None:
    document = skeleton(body)
    assert document is not None and isinstance(document["instances"], NumericText)
    return document["instances"].to_array(dtype)


@pytest.mark.parametrize("seed", range(40))
def test_rectangular_arrays_come_out_as_the_whole_parse_makes_them(small_pieces, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 6, size=rng.integers(1, 4)))
    values = np.round(rng.normal(0, 1000, size=shape), int(rng.integers(0, 4)))
    body = b'{"instances": ' + _text(values, rng) + b', "signature_name": "serving_default"}'
    for dtype in (np.float32, np.float64, np.int64, np.int32):
        fast, whole = _fast(body, dtype), _whole(body, dtype)
        if whole is None:
            assert fast is None
        elif fast is not None:
            assert fast.dtype == whole.dtype and fast.shape == whole.shape
            np.testing.assert_array_equal(fast, whole)
    assert _fast(body, np.float64) is not None  # the path is taken for every rectangular array


CORRUPTIONS = [
    (b"[[1,2],[3,4]]", b"[[1,2],[3]]"),  # ragged
    (b"[[1,2],[3,4]]", b"[[1,2],[3,[4]]]"),  # mixed depth
    (b"[[1,2],[3,4]]", b"[[1,2],,[3,4]]"),  # a comma too many
    (b"[[1,2],[3,4]]", b"[[1,2][3,4]]"),  # a comma missing
    (b"[[1,2],[3,4]]", b"[[1,2],[3,4],]"),  # a trailing comma
    (b"[[1,2],[3,4]]", b"[[],[]]"),  # empty rows
    (b"[[1,2],[3,4]]", b"[[1,2],[3,4]"),  # a bracket missing
    (b"[1,2,3,4]", b"[1,2,-,4]"),  # not a number
    (b"[1,2,3,4]", b"[1,2,01,4]"),  # a leading zero (JSON has none)
    (b"[1,2,3,4]", b"[1,2,3.,4]"),  # a point with no digits
    (b"[1,2,3,4]", b"[1,2,3e,4]"),  # an exponent with no digits
    (b"[1,2,3,4]", b"[1,2,3 4]"),  # blank instead of a comma
    (b"[1,2,3,4]", b"[]"),  # nothing
]


@pytest.mark.parametrize("good, bad", CORRUPTIONS, ids=[bad.decode() for _, bad in CORRUPTIONS])
def test_what_the_whole_parse_refuses_is_left_to_it(small_pieces, good, bad):
    for text in (good, bad):
        rows = 30 if text.startswith(b"[[") else 1
        body = b'{"instances": ' + (text if rows == 1 else b"[" + b",".join([text[1:-1]] * rows) + b"]") + b"}"
        fast, whole = _fast(body, np.float32), _whole(body, np.float32)
        if text is good:
            np.testing.assert_array_equal(fast, whole)
        else:
            assert fast is None, bad


@pytest.mark.parametrize("body", [
    b'{"instances": [1, 2], "signature_name": "]"}',  # the last bracket is inside a string
    b'{"instances": [1, 2], "other": [3]}',  # another key after the array
    b'{"signature_name": "a\\"b", "instances": [1, 2]}',  # an escaped name: not this path's
    b'{"instances": [1, NaN]}',  # NaN: the ordinary path takes it, as TF Serving does
    b'{"instances": ["a", "b"]}',
    b'[{"instances": [1, 2]}]',
    b'{"instances": [1, 2]',
])
def test_bodies_of_another_shape_are_parsed_whole(small_pieces, body):
    assert skeleton(body) is None


def test_the_named_columnar_form_keeps_the_name_and_the_signature(small_pieces):
    document = skeleton(b'{"signature_name": "s", "inputs": {"x": [[1.5, 2], [3, 4]]}}')
    assert document["signature_name"] == "s" and set(document["inputs"]) == {"x"}
    np.testing.assert_array_equal(document["inputs"]["x"].to_array(np.float32), [[1.5, 2], [3, 4]])


def test_decoding_a_large_body_costs_about_its_body_and_its_array():
    """The reason this path exists: the whole parse of `1.5,` over and over costs ~13x the
    body (a Python float per number); this path, the body and the array plus a piece."""
    count = 2_000_000
    body = b'{"inputs": {"x": [' + b",".join([b"1.5"] * count) + b"]}}"
    tracemalloc.start()
    try:
        array = skeleton(body)["inputs"]["x"].to_array(np.float32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert array.shape == (count,) and float(array.sum()) == 1.5 * count
    assert peak < 0.3 * len(body) + count * 4 + (8 << 20), peak / len(body)  # the whole parse: ~22x
