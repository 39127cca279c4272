"""Give a Reshape a constant target shape when the shape it computes at run time from its own
input is provably what a ``-1`` would infer."""
from __future__ import annotations

import numpy as np
from tensorflow.core.framework import types_pb2

from ..model.graph import const_value, make_const, parse_input
from .base import Pass, sorted_names
from .context import PassContext, pass_body
from .pattern import Any, Const, Op

EXPLANATION = """\
**What it matches.** `Reshape(x, Pack(d0, d1, …))` where exactly one entry is read from `x`'s
own shape at run time — `StridedSlice(Shape(x), [i], [i+1], [1], shrink_axis_mask=1)`, i.e.
`tf.shape(x)[i]` — and every other entry is a positive constant. Keras writes this for every
`Reshape` layer that keeps the batch size (`[tf.shape(x)[0], 1, 1, C]` in each squeeze-excite
block of EfficientNet and MobileNetV3).

**What it does.** The target shape becomes one `Const` with `-1` in place of the run-time
entry; the `Shape`, `StridedSlice` and `Pack` (and constants only they read) go.

**Why it is safe.** A `Reshape` succeeds only when the product of its target shape equals the
number of elements of `x`: `x.shape[i] · Π(others) = size(x)`. With `-1` in that place,
TensorFlow infers `size(x) / Π(others)`, which is therefore exactly `x.shape[i]` — for every
input the original graph accepts. The other entries must be constants `≥ 1` (a `0` would make
the division undefined; a `-1` already there would be a second one).

**Why bother.** Four nodes become one per `Reshape`, and OpenCV's importer cannot evaluate
shape arithmetic (`Shape`/`StridedSlice`/`Pack` chains whose constants are shared between
blocks make it fail with "Duplicate of inferred dim").

**What it refuses** (listed with the reason): a target shape with another run-time entry,
with two `tf.shape(x)[i]` entries (only one can be `-1`), or with a constant entry below 1. A
`Reshape` named as a graph output is rewritten too (it keeps its name and its value); the
`Shape`/`StridedSlice`/`Pack` stay when something else reads them or they are named.
"""


def _slice_of_one(node, m) -> bool:
    """``[i:i+1]`` with shrink_axis_mask=1 and no other mask: picks element i, as a scalar."""
    masks = {k: node.attr[k].i for k in ("begin_mask", "end_mask", "ellipsis_mask",
                                         "new_axis_mask", "shrink_axis_mask") if k in node.attr}
    if masks.get("shrink_axis_mask") != 1 or any(masks.get(k, 0) for k in (
            "begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask")):
        return False
    try:
        b, e, st = (const_value(m.consts[k][0]) for k in ("begin", "end", "strides"))
    except Exception:  # noqa: BLE001 - an undecodable constant is simply not this form
        return False
    if b.shape != (1,) or e.shape != (1,) or st.shape != (1,):
        return False
    i = int(b[0])
    return i >= 0 and int(e[0]) == i + 1 and int(st[0]) == 1


#: ``tf.shape(x)[i]``, with ``x`` bound to the Reshape's input.
SHAPE_ENTRY = Op("StridedSlice", Op("Shape", Any("x"), name="shape"), Const("begin"),
                 Const("end"), Const("strides"), name="slice", guard=None, where=_slice_of_one)


def _int_scalar(node, m) -> bool:
    try:
        v = const_value(node)
    except Exception:  # noqa: BLE001
        return False
    return v.shape == () and np.issubdtype(v.dtype, np.integer)


#: A constant entry of the target shape (an integer scalar).
CONST_ENTRY = Const("value", where=_int_scalar)
#: ``Reshape(x, Pack(entries…))`` stacking along axis 0.
RESHAPE_OF_PACK = Op("Reshape", Any("x"),
                     Op("Pack", name="pack", more_inputs=True,
                        guard=lambda n, m: n.attr["axis"].i == 0
                        and any(not t.startswith("^") for t in n.input)))


@pass_body("static_reshape")
def static_reshape(ctx: PassContext) -> None:
    graph, mx = ctx.graph, ctx.matcher
    dead_candidates: set[str] = set()
    for node in graph.graph_def.node:
        if node.op != "Reshape":
            continue
        found = mx.match(RESHAPE_OF_PACK, node)
        if not found:
            continue
        x, pack = found["x"], graph.nodes[found["pack"]]
        entries = [t for t in pack.input if not t.startswith("^")]
        dims: list[int] = []
        dynamic = []
        problem = ""
        for j, t in enumerate(entries):
            kind, e = mx.first([("const", CONST_ENTRY), ("dim", SHAPE_ENTRY)], t, x=x)
            if kind == "const":
                v = int(const_value(e.consts["value"][0]))
                if v < 1:
                    problem = f"entry {j} of the target shape is {v}, not a size >= 1"
                dims.append(v)
                continue
            if kind is None:
                problem = problem or "part of the target shape is neither constant nor " \
                                     f"tf.shape({x})[i] ({t})"
                break
            i = int(const_value(e.consts["begin"][0])[0])
            dynamic.append((j, i, e["slice"], e["shape"]))
            dims.append(-1)
        if not problem and len(dynamic) != 1:
            problem = (f"{len(dynamic)} entries are read from x's shape at run time; only one "
                       "can become -1")
        if problem:
            if dynamic or "neither constant" in problem:
                ctx.refuse(node.name, f"Reshape {node.name} keeps its computed shape: {problem}",
                           [node.name, pack.name])
            continue
        (j, i, ss, shape_node) = dynamic[0]
        region = [pack.name, ss, shape_node]
        match = ctx.match(node.name, f"Reshape {node.name} to {dims}: entry {j} was "
                                     f"tf.shape({x})[{i}], which -1 infers",
                          nodes=[node.name] + region, changed=[node.name])
        if not match.applied:
            continue
        editor = ctx.editor
        gates = list(dict.fromkeys(t[1:] for n in region for t in graph.nodes[n].input
                                   if t.startswith("^")))
        dtype = np.int64 if pack.attr["T"].type == types_pb2.DT_INT64 else np.int32
        const = make_const(editor.fresh_name(f"{node.name}/static_shape"),
                           np.array(dims, dtype=dtype), device=pack.device)
        const.input.extend("^" + g for g in gates)
        editor.add_node(const)
        live = editor.node(node.name)
        inputs = list(live.input)
        inputs[1] = const.name
        del live.input[:]
        live.input.extend(inputs)
        editor.mark_changed(node.name)
        match.added = [const.name]
        dead_candidates.update(region + [parse_input(t).node for n in region
                                         for t in graph.nodes[n].input])
    if dead_candidates:
        dead = set(ctx.editor.remove_unread(dead_candidates, ctx.keep))
        for m in ctx.report.matches:
            if m.applied:
                m.removed = sorted_names(graph, dead & set(m.nodes))


PASS = Pass(
    id="static_reshape",
    title="Give Reshape a constant shape (tf.shape(x)[0] becomes -1)",
    explanation=EXPLANATION,
    fn=static_reshape,
    params=[],
)

__all__ = ["PASS", "static_reshape"]
