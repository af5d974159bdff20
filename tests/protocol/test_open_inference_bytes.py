"""The Open Inference Protocol's raw BYTES encoding, checked against Triton's own client
(tritonclient.utils.serialize_byte_tensor / deserialize_bytes_tensor) as the reference."""

from __future__ import annotations

import numpy as np
import pytest
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from zoo.protocol.open_inference import deserialize_bytes, serialize_bytes

CASES = {
    "repeated labels": np.array([str(i % 10).encode() for i in range(4096)], dtype=object),
    "text and bytes": np.array(["café", b"\x00\xff", b"", "x"], dtype=object),
    "long elements, not kept": np.array([b"y" * 300, b"y" * 300, b"z" * 100_000], dtype=object),
    "a matrix": np.array([[b"a", b"bb"], [b"ccc", b"a"]], dtype=object),
    "more distinct elements than are kept": np.array([str(i).encode() for i in range(3000)], dtype=object),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bytes_are_framed_as_tritonclient_frames_them(case):
    array = CASES[case]
    reference = serialize_byte_tensor(array).item()  # a 0-d array holding the bytes
    assert serialize_bytes(array) == reference
    assert serialize_bytes(array) == reference  # again: now from the kept elements
    assert deserialize_bytes(reference) == list(deserialize_bytes_tensor(reference))


def test_numbers_that_are_equal_as_keys_are_still_framed_as_their_own_text():
    framed = deserialize_bytes(serialize_bytes(np.array([b"1", True, 1, 1.0, "1"], dtype=object)))
    assert framed == [b"1", b"True", b"1", b"1.0", b"1"]
