"""numpy ⇄ TensorProto without TensorFlow gives TensorFlow's very protos and arrays."""
import numpy as np
import pytest

from surgeon_gui.core.model import tensors

DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int16, np.int8, np.uint8, np.int64,
          np.bool_]
SHAPES = [(), (1,), (0,), (3,), (2, 3), (1, 1, 4), (5, 0)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_proto_and_array_as_tensorflow(dtype):
    from tensorflow.python.framework import tensor_util
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        arr = (rng.normal(size=shape) * 50).astype(dtype)
        mine = tensors.to_proto(arr)
        theirs = tensor_util.make_tensor_proto(arr)
        assert mine.SerializeToString() == theirs.SerializeToString(), (dtype, shape)
        back = tensors.to_ndarray(theirs)
        ref = tensor_util.MakeNdarray(theirs)
        assert back.dtype == ref.dtype and back.shape == ref.shape
        assert back.tobytes() == ref.tobytes()
    # a value list shorter than the shape repeats its last value (TensorFlow's rule)
    short = tensor_util.make_tensor_proto(np.array([1], dtype=dtype))
    short.tensor_shape.dim[0].size = 4
    assert tensors.to_ndarray(short).tobytes() == tensor_util.MakeNdarray(short).tobytes()


def test_other_dtypes_are_left_to_tensorflow():
    assert tensors.to_proto(np.array(["a", "b"], dtype=object)) is None
    assert tensors.to_proto(np.array([1 + 2j, 3j], dtype=np.complex64)) is None
    from surgeon_gui.core.model.protos import tensor_pb2
    assert tensors.to_ndarray(tensor_pb2.TensorProto(dtype=7)) is None  # string
