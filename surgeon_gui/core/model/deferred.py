"""Weights computed when they are written, not when a pass decides them.

Why: a parsed GraphDef lives in one protobuf (upb) arena, which frees nothing until the whole
message dies. When ``fold_batch_norm`` replaces a convolution's weights, the old
``tensor_content`` stays in that arena and the new one is added to it: on NASNetLarge the
model's weights are held twice (~350 MB more than the file). The ``surgeon optimize`` CLI, which
streams its result to the file node by node and drops the graph afterwards, does not need the
new bytes before it writes them.

So, only inside :func:`deferring` (the CLI's optimize run) and only for a pass that edits the
pipeline's own GraphDef in place without keeping old nodes for undo, ``fold_batch_norm`` leaves
a big weight Const as it is and marks it: the attribute :data:`MARK` holds the per-channel
scale, and the node's value *is* ``(old * scale).astype(old dtype)`` — exactly the arithmetic the
pass would have done. The mark travels with the node (copies, reordering, renaming), and every
place that reads a Const's value or hands a graph to TensorFlow or to a file resolves it:

- :func:`.graph.const_value` (every pass's constant reads, :class:`.consteval.Constants`);
- :func:`.consteval.copy_for_side_graph` (graphs run by TensorFlow to evaluate constants);
- ``merge_duplicates`` (compares resolved values);
- the import check (:func:`..running.import_guard.checked_bytes`);
- writing: :func:`.files.graph_def_chunks` (one node at a time) and :func:`.io.serialize`.

A marked node is written as the node the pass would have made (``make_const`` of the value,
same name, device and inputs), so the output bytes are the same as without deferring.
"""
from __future__ import annotations

import contextlib
import contextvars

import numpy as np

from .graph import GraphDef, NodeDef, make_const

#: The attribute holding the scale of a deferred weight (float64, broadcastable to it).
MARK = "_surgeon_deferred_scale"

#: Weights smaller than this are scaled at once (deferring them saves nothing worth a mark).
MIN_BYTES = 1 << 16

_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar("surgeon_deferred",
                                                                 default=False)


@contextlib.contextmanager
def deferring():
    """Within this block, passes that edit the pipeline's GraphDef in place may defer weights
    (the caller writes the result through :func:`.files.graph_def_chunks` or
    :func:`.io.serialize`, which resolve them)."""
    token = _enabled.set(True)
    try:
        yield
    finally:
        _enabled.reset(token)


def enabled() -> bool:
    return _enabled.get()


def is_deferred(node: NodeDef) -> bool:
    return node.op == "Const" and MARK in node.attr


def can_defer(node: NodeDef) -> bool:
    """A plain float Const whose raw ``tensor_content`` is big enough to be worth deferring."""
    if node.op != "Const" or MARK in node.attr or "value" not in node.attr:
        return False
    t = node.attr["value"].tensor
    from .tensors import _BY_ENUM
    entry = _BY_ENUM.get(t.dtype)
    if entry is None or entry[0].kind != "f":
        return False
    nbytes = int(np.prod([d.size for d in t.tensor_shape.dim], dtype=np.int64)) * \
        entry[0].itemsize
    # in tensor_content (reading it would copy it): no typed values, and at least its bytes
    return (nbytes >= MIN_BYTES and len(getattr(t, entry[1])) == 0
            and t.ByteSize() >= nbytes)


def mark(node: NodeDef, scale: np.ndarray, controls: list[str] = ()) -> None:
    """Make ``node`` (a Const, edited where it is: its weights are not copied) stand for
    ``make_const(node.name, (value * scale).astype(dtype))`` whose inputs are ``controls``."""
    from .tensors import to_proto
    for key in [k for k in node.attr if k not in ("dtype", "value")]:
        del node.attr[key]
    node.attr["dtype"].type = node.attr["value"].tensor.dtype
    del node.input[:]
    node.input.extend("^" + c for c in controls)
    node.attr[MARK].tensor.CopyFrom(to_proto(np.asarray(scale, dtype=np.float64)))


def value(node: NodeDef) -> np.ndarray:
    """The value of a marked Const."""
    from .tensors import to_ndarray
    return scaled(node.attr["value"].tensor, to_ndarray(node.attr[MARK].tensor))


def stored(tensor) -> np.ndarray:
    """The array a float TensorProto holds in ``tensor_content`` (a view of its bytes)."""
    from .tensors import _BY_ENUM
    return np.frombuffer(tensor.tensor_content, dtype=_BY_ENUM[tensor.dtype][0]).reshape(
        [d.size for d in tensor.tensor_shape.dim])


def scaled(tensor, scale: np.ndarray) -> np.ndarray:
    """``(value * scale).astype(dtype)`` of a float TensorProto holding ``tensor_content``."""
    old = stored(tensor)
    return (old * scale).astype(old.dtype)


def resolved(node: NodeDef) -> NodeDef:
    """The node a marked Const stands for (a new NodeDef; ``node`` is not changed)."""
    made = make_const(node.name, value(node))
    made.device = node.device
    made.input.extend(node.input)
    return made


def resolved_copy(gd: GraphDef) -> GraphDef:
    """``gd`` with every marked Const resolved: ``gd`` itself when none is, else a copy (which
    costs the new weights' memory)."""
    if not any(is_deferred(n) for n in gd.node):
        return gd
    out = GraphDef()
    out.CopyFrom(gd)
    for node in out.node:
        if is_deferred(node):
            node.CopyFrom(resolved(node))
    return out
