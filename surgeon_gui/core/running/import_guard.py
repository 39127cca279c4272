"""Does TensorFlow import this graph, and if a pipeline broke that, which pass did it?

``surgeon optimize`` checks the input before any pass (a graph TensorFlow refuses is not one to
optimize silently) and the result after the last: a result that no longer imports when its input
did is a bug, so nothing is written and the pass is named. Finding it replays the steps one pass
at a time, only on that failure path, so the usual run costs two imports.

The check is TensorFlow's own C++ importer (what ``tf.compat.v1.import_graph_def`` runs),
called through its C API (:mod:`..model.tfc`), on the graph with its big floating-point weights
left out (:func:`checked_bytes`): the importer checks ops, attributes, input types, shapes and
colocation, and reads a constant's values only where a shape function asks for them (shape,
axis, size inputs: integers), never a weight's. A NASNetLarge result then imports in a tenth of a
second instead of seconds, and without a second copy of its 350 MB of weights.
"""
from __future__ import annotations

from ..history.recipe import Recipe, preset_params
from ..model.deferred import MARK, resolved
from ..model.files import _varint
from ..model.graph import Graph, GraphDef, NodeDef, copy_without_nodes
from ..model.protos import types_pb2
from ..passes import PRESET_ID, PRESET_PASSES
from ..passes.pipeline import MAX_ROUNDS, inputs_after, run_pass
from .runner import _short


#: Floating-point weights bigger than this are left out of what the import check reads.
STUB_BYTES = 1024
_STUB_DTYPES = frozenset({types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF,
                          types_pb2.DT_BFLOAT16, types_pb2.DT_COMPLEX64,
                          types_pb2.DT_COMPLEX128})


def import_problem(gd: GraphDef) -> str | None:
    """None when TensorFlow's importer takes ``gd`` into a fresh graph, else what TensorFlow
    objects to (one line)."""
    from ..model.tfc import import_error
    e = import_error(checked_bytes(gd))
    return None if e is None else _short(e)


def checked_bytes(gd: GraphDef) -> bytes:
    """``gd`` serialized for the import check: every Const holding more than
    :data:`STUB_BYTES` of floating-point ``tensor_content`` keeps its dtype and shape but not
    its values (TensorFlow reads such a tensor as zeros, should anything read it)."""
    parts = []
    for node in gd.node:
        if node.op == "Const" and _heavy(node):
            node = _stub(node)
        elif node.op == "Const" and MARK in node.attr:
            node = resolved(node)
        data = node.SerializeToString()
        parts.append(b"\n" + _varint(len(data)) + data)  # GraphDef field 1 (node)
    parts.append(copy_without_nodes(gd).SerializeToString())
    return b"".join(parts)



def _heavy(node) -> bool:
    t = node.attr["value"].tensor if "value" in node.attr else None
    return t is not None and t.dtype in _STUB_DTYPES and len(t.tensor_content) > STUB_BYTES


def _stub(node):
    stub = NodeDef(name=node.name, op=node.op, device=node.device)
    stub.input.extend(node.input)
    for key, value in node.attr.items():
        if key not in ("value", MARK):
            stub.attr[key].CopyFrom(value)
    t = node.attr["value"].tensor
    st = stub.attr["value"].tensor
    st.dtype = t.dtype
    st.tensor_shape.CopyFrom(t.tensor_shape)
    return stub


def first_breaking_pass(graph: Graph, recipe: Recipe) -> tuple[str, str] | None:
    """Replay ``recipe`` pass by pass (the preset's passes one at a time, round after round);
    return ``(label, problem)`` of the first pass whose result does not import, or None."""
    from ..history.recipe import apply_step
    for i, step in enumerate(recipe.steps, 1):
        if step.is_pass and step.pass_id == PRESET_ID:
            params = preset_params(step.params, f"step {i}")
            for _ in range(MAX_ROUNDS):
                changed = False
                for pid in PRESET_PASSES:
                    res = run_pass(graph, pid, params.get(pid), check=False)
                    if not res.report.modified:
                        continue
                    problem = import_problem(res.graph_def)
                    if problem:
                        return f"{pid} (in the {PRESET_ID} preset)", problem
                    graph = Graph(res.graph_def, inputs_after(graph, res.graph_def),
                                  graph.given_outputs, source=graph.source)
                    changed = True
                if not changed:
                    break
            continue
        graph, _ = apply_step(graph, step, f"step {i}")
        problem = import_problem(graph.graph_def)
        if problem:
            return step.label, problem
    return None
