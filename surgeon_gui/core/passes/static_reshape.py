"""Give a Reshape a constant target shape when the shape it computes at run time from its own
input is provably what a ``-1`` would infer."""
from __future__ import annotations

import numpy as np
from tensorflow.core.framework import types_pb2

from ..model.editor import GraphEditor, protected_names
from ..model.graph import Graph, const_value, make_const, parse_input
from .base import (
    Match,
    Pass,
    PassReport,
    PassResult,
    Refusal,
    fill_report,
    is_selected,
    sorted_names,
)

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


def _const(graph: Graph, tensor: str) -> np.ndarray | None:
    ref = parse_input(tensor)
    node = graph.nodes.get(ref.node)
    if node is None or node.op != "Const" or ref.port != 0:
        return None
    try:
        return const_value(node)
    except Exception:  # noqa: BLE001
        return None


def _dim_of(graph: Graph, tensor: str, x: str) -> int | None:
    """i when ``tensor`` is ``tf.shape(x)[i]`` (StridedSlice of Shape(x), one element)."""
    ref = parse_input(tensor)
    ss = graph.nodes.get(ref.node)
    if ss is None or ss.op != "StridedSlice" or ref.port != 0:
        return None
    data = [t for t in ss.input if not t.startswith("^")]
    if len(data) != 4:
        return None
    shape = graph.nodes.get(parse_input(data[0]).node)
    if shape is None or shape.op != "Shape" or parse_input(data[0]).port != 0:
        return None
    shape_in = [t for t in shape.input if not t.startswith("^")]
    if len(shape_in) != 1 or parse_input(shape_in[0]) != parse_input(x):
        return None
    masks = {k: ss.attr[k].i for k in ("begin_mask", "end_mask", "ellipsis_mask",
                                       "new_axis_mask", "shrink_axis_mask") if k in ss.attr}
    if masks.get("shrink_axis_mask") != 1 or any(masks.get(k, 0) for k in (
            "begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask")):
        return None
    b, e, s = (_const(graph, t) for t in data[1:])
    if b is None or e is None or s is None or b.shape != (1,) or e.shape != (1,) \
            or s.shape != (1,):
        return None
    i = int(b[0])
    if i < 0 or int(e[0]) != i + 1 or int(s[0]) != 1:
        return None
    return i


def static_reshape(graph: Graph, select: set[str] | None = None) -> PassResult:
    report = PassReport("static_reshape")
    editor = GraphEditor(graph)
    keep = protected_names(graph, detected_outputs=True)
    dead_candidates: set[str] = set()
    for node in graph.graph_def.node:
        if node.op != "Reshape":
            continue
        data = [t for t in node.input if not t.startswith("^")]
        if len(data) != 2:
            continue
        x, shape_t = data
        pack = graph.nodes.get(parse_input(shape_t).node)
        if pack is None or pack.op != "Pack" or parse_input(shape_t).port != 0:
            continue
        entries = [t for t in pack.input if not t.startswith("^")]
        if pack.attr["axis"].i != 0 or not entries:
            continue
        dims: list[int] = []
        dynamic = []
        problem = ""
        for j, t in enumerate(entries):
            v = _const(graph, t)
            if v is not None and v.shape == () and np.issubdtype(v.dtype, np.integer):
                if int(v) < 1:
                    problem = f"entry {j} of the target shape is {int(v)}, not a size >= 1"
                dims.append(int(v))
                continue
            i = _dim_of(graph, t, x)
            if i is None:
                problem = problem or "part of the target shape is neither constant nor " \
                                     f"tf.shape({x})[i] ({t})"
                break
            dynamic.append((j, i, parse_input(t).node))
            dims.append(-1)
        if not problem and len(dynamic) != 1:
            problem = (f"{len(dynamic)} entries are read from x's shape at run time; only one "
                       "can become -1")
        if problem:
            if dynamic or "neither constant" in problem:
                report.refused.append(Refusal(node.name, f"Reshape {node.name} keeps its "
                                                         f"computed shape: {problem}",
                                              [node.name, pack.name]))
            continue
        (j, i, ss) = dynamic[0]
        shape_node = graph.nodes[parse_input(
            [t for t in graph.nodes[ss].input if not t.startswith("^")][0]).node]
        region = [pack.name, ss, shape_node.name]
        match = Match(node.name, f"Reshape {node.name} to {dims}: entry {j} was "
                                 f"tf.shape({x})[{i}], which -1 infers", nodes=[node.name] + region,
                      changed=[node.name])
        report.matches.append(match)
        if not is_selected(node.name, select):
            match.applied = False
            continue
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
        dead = set(editor.remove_unread(dead_candidates, keep))
        for m in report.matches:
            if m.applied:
                m.removed = sorted_names(graph, dead & set(m.nodes))
    fill_report(report, editor)
    return PassResult(editor.result(), report)


PASS = Pass(
    id="static_reshape",
    title="Give Reshape a constant shape (tf.shape(x)[0] becomes -1)",
    explanation=EXPLANATION,
    fn=static_reshape,
    params=[],
)

__all__ = ["PASS", "static_reshape"]
