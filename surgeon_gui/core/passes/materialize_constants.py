"""Write constants out in full: a Const stored in TensorFlow's compact "splat" form (fewer
stored values than elements) becomes one with every element in ``tensor_content``."""
from __future__ import annotations

import numpy as np
from tensorflow.core.framework import types_pb2

from ..model.graph import NodeDef, const_value, dtype_name
from .base import Param, Pass
from .context import PassContext, pass_body

DEFAULT_MAX_ELEMENTS = 4096

EXPLANATION = """\
**What it matches.** A `Const` whose tensor stores fewer values than its shape has elements.
A `TensorProto` may hold its values either as raw bytes (`tensor_content`) or in a typed list
(`float_val`, `int_val`, …); in the list form TensorFlow repeats the *last* value to fill the
shape, and an empty list means all zeros. So `tf.zeros([4])` is stored as shape `[4]` and no
values at all, and `tf.fill([1, 1, 1, 3], 0.5)` as one `0.5`. Keras makes many of these
(`Normalization`'s mean, `strided_slice` stacks, zero biases).

**What it does.** The constant is decoded (exactly as TensorFlow fills it) and stored again
with every element written out in `tensor_content` (or, for strings, every element in
`string_val`). The node keeps its name, dtype, shape, device and readers.

**Why.** Importers that read `tensor_content` directly, such as OpenCV's
`cv2.dnn.readNetFromTensorflow`, reject the compact forms ("`size == (int)dstBlob.total()` in
function `parseTensor`" for a repeated value, "`!field.empty()` in function
`getTensorContentRef_`" for an all-zero tensor stored with no values), so a graph TensorFlow
runs fine does not load there.

**Why it is safe.** The tensor's value is identical element for element; only its encoding
changes (the graph gets a few bytes bigger).

**What it refuses.** A constant with more than `max_elements` elements (default 4096): writing
out, say, a `tf.zeros([1000, 1000])` would add megabytes to the graph; raise the limit if a
target needs it. Dtypes a `Const` stores by reference (`resource`, `variant`) are skipped.
"""

#: TensorProto value fields, and how many stored entries make one element.
_VALUE_FIELDS = (("half_val", 1), ("float_val", 1), ("double_val", 1), ("int_val", 1),
                 ("string_val", 1), ("scomplex_val", 2), ("int64_val", 1), ("bool_val", 1),
                 ("dcomplex_val", 2), ("uint32_val", 1), ("uint64_val", 1))
_SKIP = frozenset({types_pb2.DT_RESOURCE, types_pb2.DT_VARIANT})


def stored_count(tensor) -> int | None:
    """How many elements a TensorProto stores explicitly (None: written in full)."""
    if tensor.tensor_content:
        return None
    if tensor.float8_val:
        return len(tensor.float8_val)
    return sum(len(getattr(tensor, f)) // per for f, per in _VALUE_FIELDS)


def element_count(tensor) -> int | None:
    n = 1
    for d in tensor.tensor_shape.dim:
        if d.size < 0:
            return None
        n *= d.size
    return n


def full_tensor_proto(node: NodeDef, value: np.ndarray):
    """The node's TensorProto with every element written out."""
    t = node.attr["value"].tensor
    out = type(t)()
    out.dtype = t.dtype
    out.tensor_shape.CopyFrom(t.tensor_shape)
    if t.dtype == types_pb2.DT_STRING:
        out.string_val.extend(value.reshape(-1).tolist())
    else:
        out.tensor_content = np.ascontiguousarray(value).tobytes()
    return out


@pass_body("materialize_constants")
def materialize_constants(ctx: PassContext, max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
    if max_elements is None or int(max_elements) < 0:
        raise ValueError("max_elements must be a non-negative number of elements")
    max_elements = int(max_elements)
    for node in ctx.graph.graph_def.node:
        if node.op != "Const":
            continue
        t = node.attr["value"].tensor
        if t.dtype in _SKIP:
            continue
        stored, n = stored_count(t), element_count(t)
        if stored is None or n is None or stored >= n:
            continue
        shape = [d.size for d in t.tensor_shape.dim]
        what = (f"Const {node.name} ({dtype_name(t.dtype)}, shape {shape}) stores "
                f"{stored} of its {n} value(s)")
        if n > max_elements:
            ctx.refuse(node.name, f"{what}; writing it out would store {n} elements, over "
                                  f"max_elements={max_elements}", [node.name])
            continue
        try:
            value = const_value(node)
            if value.size != n:
                raise ValueError(f"it decodes to {value.size} elements, not {n}")
            full = full_tensor_proto(node, value)
        except Exception as e:  # noqa: BLE001 - a corrupt tensor is reported, not raised
            ctx.refuse(node.name, f"{what}, but it cannot be decoded: {e}", [node.name])
            continue
        m = ctx.match(node.name, f"{what}: written out in full", nodes=[node.name],
                      changed=[node.name])
        if not m.applied:
            continue
        live = ctx.editor.node(node.name)
        live.attr["value"].tensor.CopyFrom(full)
        ctx.editor.mark_changed(node.name)


PASS = Pass(
    id="materialize_constants",
    title="Write constants out in full (for OpenCV)",
    explanation=EXPLANATION,
    fn=materialize_constants,
    params=[Param("max_elements", int, DEFAULT_MAX_ELEMENTS,
                  "largest constant (in elements) written out in full; bigger ones are "
                  "refused")],
)

__all__ = ["PASS", "materialize_constants", "stored_count", "element_count"]
