"""Set training flags to inference: a bool placeholder that gates training behaviour becomes a
Const, so the conds it drives can be resolved by ``remove_switch_merge``/``inline_functions``."""
from __future__ import annotations

import numpy as np
from tensorflow.core.framework import types_pb2

from ..model.editor import read_nodes
from ..model.graph import INPUT_OPS, Graph, make_const, node_of, shape_list
from ..model.ops import IF_OPS, SWITCH_OPS, trace_source
from .base import Param, Pass
from .context import PassContext, pass_body

#: Names (last path component, lower case) that mark a training flag.
FLAG_NAMES = frozenset({"is_training", "training", "keras_learning_phase", "phase_train",
                        "learning_phase", "train_mode", "is_train", "training_phase"})

EXPLANATION = """\
**What it matches.** A boolean placeholder that switches a model between training and
inference behaviour: a `Placeholder` or `PlaceholderWithDefault` named like a training flag
(`is_training`, `training`, `keras_learning_phase`, `phase_train`, `learning_phase`,
`train_mode`, …), and, whatever its name, any `bool` placeholder of scalar or unknown shape
(`tf.compat.v1.placeholder(tf.bool)`, often just `Placeholder_1`) whose role is a training
switch: it decides a `tf.cond` (the predicate of a `Switch`, the `cond` of an
`If`/`StatelessIf`) or the condition of a `Select`, through `Identity`, `Squeeze` (TF2's
`tf.cond` squeezes a predicate of unknown rank), `Cast`, `LogicalNot`, `Reshape` or
`ExpandDims` nodes. With the `names` parameter you say exactly which nodes to convert instead.

**What it does.** The placeholder is replaced by a `Const` of the same name holding `value`
(False = inference). Nothing else changes here, but the conds it drove now have a constant
predicate, so *Remove Switch/Merge* and *Inline functional control flow* can keep only the
inference branch, and *Remove dropout* can see that dropout is off.

**Why it is safe.** A `PlaceholderWithDefault` already evaluates to its default when nobody feeds
it; a training flag fed `False` at inference computes exactly what the Const computes. The
only thing that changes is that the graph can no longer be switched to training mode.

**Graph inputs.** If the flag is one of the graph's named inputs (a TF2 function with a
`training` argument), the node keeps its name: TensorFlow still lets you feed a `Const`, so
existing code that feeds `training=False` keeps working, but the graph no longer needs the feed.
A pipeline (the `inference` preset, `surgeon optimize`) drops it from the input list, so later
passes remove the Const once nothing reads it.

**What it refuses.** A candidate that is not `bool` (an `int` learning phase is ambiguous) or
not a scalar (a per-example flag), and names given in `names` that are not placeholders.
"""


def _is_scalar(node) -> tuple[bool, str]:
    """(accepted, note): a known non-scalar shape is refused; an unknown shape is accepted."""
    shape = shape_list(node.attr["shape"].shape) if "shape" in node.attr else None
    if shape is None:
        return True, "shape unknown, taken as a scalar"
    if shape == []:
        return True, ""
    return False, f"its shape is {shape}, not a scalar"


#: Ops a predicate passes through on its way from the flag to the cond: TF2's ``tf.cond``
#: squeezes a predicate of unknown rank, and code negates, casts or reshapes its flag.
PREDICATE_THROUGH_OPS = frozenset({"Squeeze", "Cast", "LogicalNot", "Reshape", "ExpandDims"})
SELECT_OPS = frozenset({"Select", "SelectV2"})


def predicate_source(graph: Graph, tensor: str) -> str:
    """The node a cond predicate comes from, through pass-through, Squeeze, Cast, LogicalNot,
    Reshape and ExpandDims nodes (their first input)."""
    seen = set()
    name = node_of(trace_source(graph, tensor))
    while name in graph.nodes and name not in seen:
        seen.add(name)
        node = graph.nodes[name]
        if node.op not in PREDICATE_THROUGH_OPS:
            break
        data = [t for t in node.input if not t.startswith("^")]
        if not data:
            break
        name = node_of(trace_source(graph, data[0]))
    return name


def _feeds_control_flow(graph: Graph, name: str) -> str | None:
    """The Switch/If/Select whose predicate this node decides, if any: the role of a training
    flag (a cond around batch norm or dropout, a keep probability chosen by a Select)."""
    for node in graph.graph_def.node:
        data = [t for t in node.input if not t.startswith("^")]
        if node.op in SWITCH_OPS and len(data) > 1:
            pred = data[1]
        elif node.op in (IF_OPS | SELECT_OPS) and data:
            pred = data[0]
        else:
            continue
        if predicate_source(graph, pred) == name:
            return node.name
    return None


@pass_body("training_flags")
def set_training_flags(ctx: PassContext, value: bool = False, names: str = "") -> None:
    graph, protected = ctx.graph, ctx.protected
    if isinstance(value, str):  # from a recipe or the command line
        value = value.strip().lower() in ("1", "true", "yes", "on")
    value = bool(value)
    if isinstance(names, (list, tuple, set)):
        names = ",".join(sorted(names) if isinstance(names, set) else names)
    forced = [n.strip() for n in str(names or "").split(",") if n.strip()]

    candidates: list[tuple[str, str]] = []  # (node name, why it is a flag)
    if forced:
        for n in forced:
            nm = node_of(n)
            if nm not in graph.nodes:
                ctx.refuse(nm, f"there is no node named {nm!r}")
            elif graph.nodes[nm].op not in INPUT_OPS:
                op = graph.nodes[nm].op
                why = "it is already a constant" if op == "Const" else "it is not a placeholder"
                ctx.refuse(nm, f"{nm} is a {op}: {why}", [nm])
            else:
                candidates.append((nm, "named in the `names` parameter"))
    else:
        for node in graph.graph_def.node:
            if node.op not in INPUT_OPS:
                continue
            short = node.name.rsplit("/", 1)[-1].lower()
            if short in FLAG_NAMES:
                candidates.append((node.name, f"its name {short!r} marks a training flag"))
                continue
            if node.attr["dtype"].type == types_pb2.DT_BOOL and _is_scalar(node)[0]:
                user = _feeds_control_flow(graph, node.name)
                if user:
                    candidates.append((node.name, f"it decides the cond {user}"))

    for name, why in candidates:
        node = graph.nodes[name]
        dtype = node.attr["dtype"].type
        if dtype != types_pb2.DT_BOOL:
            from ..model.graph import dtype_name
            ctx.refuse(name, f"{name} looks like a training flag ({why}) but its dtype is "
                       f"{dtype_name(dtype)}, not bool; convert it by hand if you are sure",
                       [name])
            continue
        ok, note = _is_scalar(node)
        if not ok:
            ctx.refuse(name, f"{name} is a bool flag candidate ({why}) but {note}", [name])
            continue
        desc = f"{node.op} {name} becomes Const {value} ({why}"
        desc += f"; {note})" if note else ")"
        if name in protected:
            desc += (". It is a named graph input: it keeps its name and can still be fed, "
                     "but no longer needs to be; drop it from the input list")
        match = ctx.match(name, desc, nodes=[name], changed=[name])
        if not match.applied:
            continue
        const = make_const(name, np.bool_(value), device=node.device)
        ctx.editor.replace_node(name, const)
        if name in protected:
            ctx.note(f"{name} is now a Const: feeding it still works but is no longer needed")

    applied = {m.key for m in ctx.report.matches if m.applied}
    if applied:
        dropped = ctx.editor.remove_unread(read_nodes(graph), ctx.keep)
        for m in ctx.report.matches:
            if m.applied:
                inputs = {node_of(i) for i in graph.nodes[m.key].input}
                m.removed = [d for d in dropped if d in inputs]


PASS = Pass(
    id="training_flags",
    title="Set training flags to inference",
    explanation=EXPLANATION,
    fn=set_training_flags,
    params=[
        Param("value", bool, False, "The constant the flags become (False = inference)."),
        Param("names", str, "", "Comma-separated node names to convert instead of detecting "
              "flags by name and use."),
    ],
)
