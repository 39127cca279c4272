"""numpy arrays ⇄ TensorProtos for the common dtypes, without importing TensorFlow.

Exactly what TensorFlow's ``tensor_util.MakeNdarray`` and ``make_tensor_proto`` (given a numpy
array) do for float16/32/64, int8/16/32/64, uint8 and bool: same field, same bytes
(tests/test_tensors.py checks them against TensorFlow). Anything else returns None and the
caller asks TensorFlow (:func:`.graph.const_value`, :func:`.graph.make_const`).
"""
from __future__ import annotations

import numpy as np

from .protos import tensor_pb2, types_pb2

_DT = types_pb2
#: dtype enum ⇄ numpy dtype, and the TensorProto field that holds values of it
_BY_ENUM = {
    _DT.DT_FLOAT: (np.dtype(np.float32), "float_val"),
    _DT.DT_DOUBLE: (np.dtype(np.float64), "double_val"),
    _DT.DT_HALF: (np.dtype(np.float16), "half_val"),
    _DT.DT_INT32: (np.dtype(np.int32), "int_val"),
    _DT.DT_INT16: (np.dtype(np.int16), "int_val"),
    _DT.DT_INT8: (np.dtype(np.int8), "int_val"),
    _DT.DT_UINT8: (np.dtype(np.uint8), "int_val"),
    _DT.DT_INT64: (np.dtype(np.int64), "int64_val"),
    _DT.DT_BOOL: (np.dtype(np.bool_), "bool_val"),
}
_BY_NUMPY = {dt: enum for enum, (dt, _) in _BY_ENUM.items()}
#: dtypes TensorFlow writes as ``tensor_content`` when there is more than one element
_CONTENT = {_DT.DT_FLOAT, _DT.DT_DOUBLE, _DT.DT_HALF, _DT.DT_INT32, _DT.DT_INT16,
            _DT.DT_INT8, _DT.DT_UINT8, _DT.DT_INT64}


def itemsize(enum_value: int) -> int | None:
    """Bytes per element of a dtype enum, when it is one of the common ones."""
    entry = _BY_ENUM.get(enum_value)
    return entry[0].itemsize if entry else None


def to_ndarray(tensor) -> np.ndarray | None:
    """``MakeNdarray(tensor)`` for the common dtypes; None for the others."""
    entry = _BY_ENUM.get(tensor.dtype)
    if entry is None:
        return None
    dtype, field = entry
    shape = [d.size for d in tensor.tensor_shape.dim]
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype=dtype).copy().reshape(shape)
    num = int(np.prod(shape, dtype=np.int64))
    if field == "half_val":
        values = np.fromiter(tensor.half_val, dtype=np.uint16)
        values.dtype = dtype
    else:
        values = np.fromiter(getattr(tensor, field), dtype=dtype)
    if values.size == 0:
        return np.zeros(shape, dtype)
    if values.size != num:
        values = np.pad(values, (0, num - values.size), "edge")
    return values.reshape(shape)


def to_proto(arr: np.ndarray):
    """``make_tensor_proto(arr)`` of a numpy array of a common dtype; None for the others."""
    enum = _BY_NUMPY.get(arr.dtype)
    if enum is None or arr.dtype.byteorder == ">":
        return None
    if arr.size * arr.itemsize >= (1 << 31):
        return None  # TensorFlow refuses it: let it say so
    t = tensor_pb2.TensorProto(dtype=enum)
    t.tensor_shape.SetInParent()  # present even for a scalar, as TensorFlow writes it
    for d in arr.shape:
        t.tensor_shape.dim.add(size=int(d))
    if enum in _CONTENT and arr.size > 1:
        t.tensor_content = arr.tobytes()
        return t
    flat = arr.ravel()
    field = _BY_ENUM[enum][1]
    if field == "half_val":
        t.half_val.extend(flat.view(np.uint16).tolist())
    else:
        getattr(t, field).extend(flat.tolist())
    return t
