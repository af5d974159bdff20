"""The fast TensorProto codec gives exactly what TensorFlow's make_ndarray/make_tensor_proto give."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from zoo.protocol.tensor_protos import to_array, to_proto

ARRAYS = [
    np.array([1.5], np.float32),                      # one value: make_tensor_proto writes float_val
    np.arange(12, dtype=np.float32).reshape(4, 3),    # tensor_content
    np.array(3.25, np.float64),                       # a scalar
    np.arange(5, dtype=np.int64) - 2,
    np.array([[7], [-8]], np.int32),
    np.zeros((0, 3), np.float32),                     # no rows
    np.array([b"a", b"bc"], object),                  # bytes: one list
    np.array([[b"x", b""], [b"\x00y", b"z"]], object),  # 2-D, empty and NUL bytes
    np.array(b"one", object),                          # a string scalar
    np.array(["caf\u00e9", "b"], object),                # text: TensorFlow's own path
    np.array([b"a", "b"], object),                     # mixed: TensorFlow's own path
    np.array([True, False]),
    np.array([1.5, 2.5], np.float16),
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_decoding_matches_tensorflow(array):
    proto = tf.make_tensor_proto(array)
    got, want = to_array(proto), tf.make_ndarray(proto)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    got[...] = got  # writable: callers may hand it on


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_encoding_reads_back_as_tensorflows_own_encoding(array):
    back, want = tf.make_ndarray(to_proto(array)), tf.make_ndarray(tf.make_tensor_proto(array))
    assert back.dtype == want.dtype and back.shape == want.shape == array.shape
    np.testing.assert_array_equal(back, want)
    if array.dtype != object:
        np.testing.assert_array_equal(back, array)


def test_numbers_are_written_as_raw_content_like_tf_serving_responses():
    proto = to_proto(np.array([0.5, 2.0], np.float32))
    assert proto.dtype == types_pb2.DT_FLOAT and not proto.float_val
    assert proto.tensor_content == np.array([0.5, 2.0], "<f4").tobytes()
    assert [d.size for d in proto.tensor_shape.dim] == [2]


def test_bytes_are_written_as_one_string_list():
    proto = to_proto(np.array([[b"a"], [b"bc"]], object))
    assert proto.dtype == types_pb2.DT_STRING and list(proto.string_val) == [b"a", b"bc"]
    assert [d.size for d in proto.tensor_shape.dim] == [2, 1]


def test_a_short_value_list_is_padded_as_tensorflow_pads_it():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.0, 2.0])
    for size in (2, 2):
        proto.tensor_shape.dim.add(size=size)
    np.testing.assert_array_equal(to_array(proto), tf.make_ndarray(proto))  # [[1, 2], [2, 2]]


def test_content_of_the_wrong_length_is_an_error_not_garbage():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=b"\x00" * 12)
    proto.tensor_shape.dim.add(size=4)
    with pytest.raises((ValueError, TypeError)):
        to_array(proto)


TYPED = [
    (np.array([[0.5, -2.0], [1e30, 0.0]], np.float32), "float_val"),
    (np.array([1.5, -1e300], np.float64), "double_val"),
    (np.array([0, 1, 127, 128, 300, -1, -(2**31), 2**31 - 1], np.int32), "int_val"),
    (np.array([0, 5, 9], np.int64), "int64_val"),  # class ids: one byte each
    (np.array([0, 127, 128, 2**35, -1, -(2**63), 2**63 - 1], np.int64), "int64_val"),
    (np.array([0, 2**64 - 1, 2**32], np.uint64), "uint64_val"),
    (np.array([7, 65535], np.uint16), "int_val"),
    (np.array([True, False, True]), "bool_val"),
    (np.zeros((0, 2), np.int64), "int64_val"),
]


@pytest.mark.parametrize("array,field", TYPED, ids=lambda a: f"{getattr(a, 'dtype', a)}")
def test_typed_fields_are_protobufs_own_encoding(array, field):
    """TF Serving's default answer (Tensor::AsProtoField): one typed value per element; the
    zoo writes the packed field's bytes itself, so protobuf's own setter is the reference."""
    made = tf.make_tensor_proto(array)  # dtype and shape as TensorFlow writes them
    reference = tensor_pb2.TensorProto(dtype=made.dtype, tensor_shape=made.tensor_shape)
    getattr(reference, field).extend(array.ravel().tolist())
    got = to_proto(array, as_content=False)
    assert got == reference
    assert got.SerializeToString(deterministic=True) == reference.SerializeToString(deterministic=True)
    np.testing.assert_array_equal(tf.make_ndarray(got), array)
