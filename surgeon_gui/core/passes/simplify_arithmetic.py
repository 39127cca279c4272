"""Remove arithmetic that does nothing: ``x + 0``, ``x - 0``, ``x * 1``, ``x / 1`` and a
``BiasAdd`` of an all-zero bias, when the constant provably leaves ``x`` as it is; and add two
biases that meet in an ``Add`` once instead of twice."""
from __future__ import annotations

import numpy as np
from tensorflow.core.framework import types_pb2

from ..model.consteval import copy_for_side_graph
from ..model.editor import Substitution, protection_reason
from ..model.graph import (
    Graph,
    GraphDef,
    NodeDef,
    const_value,
    format_input,
    make_const,
    parse_input,
)
from ..model.ops import const_source
from .base import Pass, sorted_names
from .context import PassContext, pass_body
from .pattern import Any, Const, Op

EXPLANATION = """\
**What it matches.** A binary op with one constant operand that is its identity element:

| op | no-op when | the other operand |
|---|---|---|
| `Add`, `AddV2` | the constant is all zeros | either side: `x + 0`, `0 + x` |
| `Sub` | the constant is all zeros | only `x - 0` (`0 - x` is `-x`) |
| `Mul` | the constant is all ones | either side: `x * 1`, `1 * x` |
| `RealDiv` | the constant is all ones | only `x / 1` (`1 / x` is not `x`) |
| `BiasAdd` | the bias is all zeros | the value (input 0) |

A typical source: a freshly initialised classifier (`Dense` with `weights=None`) whose bias
is all zeros, Keras' `Normalization` layer with mean 0 and variance 1, and the `x * beta`
inside a swish activation with `beta = 1`.

**What it does.** Readers of the op read `x` instead (control inputs of the op and of the
constant are handed to them), and the op goes; the constant goes too when nothing else reads it.

**Why it is safe — the shape condition.** Element-wise, `x + 0 = x` and `x * 1 = x` (also for
NaN and ±inf). But these ops *broadcast*: `x + zeros([10])` with `x` of shape `[1]` gives
shape `[10]`, not `x`. So the op is removed only when the constant's broadcast provably
cannot change `x`'s shape: the dtype is the same, the constant's rank is at most `x`'s, and
aligned from the right every constant dimension is 1 or equals `x`'s *known* dimension. `x`'s
static shape comes from TensorFlow's shape inference on the graph. A constant dimension above
1 facing an unknown dimension of `x` (which could be 1 at run time and be enlarged), or any
non-scalar constant when `x`'s rank is unknown, is refused with the reason. A `BiasAdd` always
returns its value's shape (its bias is 1-D and must match the channel dimension), so it needs
no shape check.

**Never simplified: `x * 0`.** It is *not* zero for every `x`: `NaN * 0` and `inf * 0` are
NaN, so replacing it by zeros would hide a NaN or an overflow that the original graph
reports. Such ops are listed as refused, with this reason.

**Bit for bit?** Every value stays the same; the only difference is the sign of a zero: in
IEEE arithmetic `-0.0 + 0.0` is `+0.0`, so `x + 0` turned `-0.0` into `+0.0` and now keeps it
`-0.0`. The two compare equal, and no inference result depends on it.

**Also kept:** an op named as a graph input or output (it must stay fetchable by name).

**Second rule: one bias instead of two.** A sum of two biased tensors,
`Add(BiasAdd(u, b1), BiasAdd(v, b2))` — the two branches of a ResNet projection block once
their batch norms are folded — adds two constant vectors where one does:

    (u + b1) + (v + b2) = (u + (b1 + b2)) + v

so the first `BiasAdd` gets the bias `b1 + b2` (computed here, in the bias dtype) and the
second goes. It applies only when each `BiasAdd` is read by that `Add` alone (nothing else
sees the changed value), both are NHWC (the channel is the last axis on both sides, so the
two biases line up under broadcasting; NCHW is refused: with different ranks its channel
axes need not line up), their biases are constant with the same shape and dtype, and neither
is a named graph input or output. The result differs from the original only by the float
rounding of the reordered sum (a few ulps).
"""

#: op → (identity element, operand positions the constant may be in)
RULES = {
    "Add": (0, (1, 0)),
    "AddV2": (0, (1, 0)),
    "Sub": (0, (1,)),
    "Mul": (1, (1, 0)),
    "RealDiv": (1, (1,)),
    "BiasAdd": (0, (1,)),
}
_SYMBOL = {"Add": "+", "AddV2": "+", "Sub": "-", "Mul": "*", "RealDiv": "/", "BiasAdd": "+"}
#: Float Consts bigger than this are replaced by Placeholders for shape inference (their
#: values never decide a shape, and copying weights into a tf.Graph would be slow).
_SHAPE_ONLY_ELEMENTS = 16
_FLOATING = frozenset({types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_BFLOAT16,
                       types_pb2.DT_HALF})
#: Dtypes with no arithmetic identity element to speak of.
_NOT_ARITHMETIC = frozenset({types_pb2.DT_STRING, types_pb2.DT_BOOL, types_pb2.DT_RESOURCE,
                             types_pb2.DT_VARIANT})


def _uniform_value(node: NodeDef):
    """0 or 1 when every element of the Const is that value (None otherwise / undecodable)."""
    t = node.attr["value"].tensor
    if t.dtype in _NOT_ARITHMETIC:
        return None
    try:
        v = const_value(node)
    except Exception:  # noqa: BLE001 - an undecodable Const is simply not a candidate
        return None
    if v.size == 0 or v.dtype == object:
        return None
    if np.all(v == 0):
        return 0
    if np.all(v == 1):
        return 1
    return None


def static_shapes(graph: Graph, tensors: list[str]) -> dict[str, list[int] | None]:
    """TensorFlow's static shape of each tensor (-1 for an unknown dim, None for an unknown
    rank, missing when the graph cannot be imported). Large float Consts are stood in for by
    Placeholders of the same dtype and shape: only their shapes matter here. TensorFlow's
    shape inference runs through its C API (:func:`..model.tfc.static_shapes`)."""
    from ..model.tfc import static_shapes as inferred
    needed = graph.upstream([parse_input(t).node for t in tensors], control=False)
    sub = GraphDef()
    sub.versions.CopyFrom(graph.graph_def.versions)
    if graph.graph_def.library.function:
        sub.library.CopyFrom(graph.graph_def.library)
    for node in graph.graph_def.node:
        if node.name not in needed:
            continue
        t = node.attr["value"].tensor if node.op == "Const" else None
        if t is not None and t.dtype in _FLOATING and \
                np.prod([d.size for d in t.tensor_shape.dim]) > _SHAPE_ONLY_ELEMENTS:
            c = sub.node.add()
            c.name, c.op = node.name, "Placeholder"
            c.attr["dtype"].type = t.dtype
            c.attr["shape"].shape.CopyFrom(t.tensor_shape)
            continue
        copy_for_side_graph(sub, node)
    try:
        return inferred(sub, tensors)
    except Exception:  # noqa: BLE001 - shapes stay unknown and the candidates are refused
        return {}


def broadcast_problem(x_shape: list[int] | None, c_shape: list[int]) -> str:
    """Why broadcasting a constant of shape ``c_shape`` against ``x`` might not give ``x``'s
    shape ("" when it provably does)."""
    if not c_shape:
        return ""  # a scalar never changes a shape
    if x_shape is None:
        return (f"x's rank is unknown, and a constant of shape {c_shape} could broadcast it "
                "to a bigger shape")
    if len(c_shape) > len(x_shape):
        return (f"the constant (shape {c_shape}) has more dimensions than x (shape "
                f"{x_shape}): the result would be bigger than x")
    for i in range(1, len(c_shape) + 1):
        c, x = c_shape[-i], x_shape[-i]
        if c == 1 or (x >= 0 and c == x):
            continue
        if x < 0:
            return (f"x's dimension {len(x_shape) - i} is unknown (shape {x_shape}) while the "
                    f"constant's is {c} (shape {c_shape}): if it is 1 at run time, the result "
                    "is bigger than x")
        return (f"the constant (shape {c_shape}) broadcasts x (shape {x_shape}) to a "
                "different shape")
    return ""


def _identity_element(op: str):
    """The ``where`` of the constant operand of ``op``: it must be ``op``'s identity element
    (a near miss for ``x * 0``: it is not 0 for NaN and inf)."""
    identity = RULES[op][0]
    cache: dict[str, object] = {}

    def where(const: NodeDef, m) -> bool | str:
        if const.name not in cache:
            cache[const.name] = _uniform_value(const)
        value = cache[const.name]
        if op == "Mul" and value == 0:
            return "zeros"
        return value is not None and value == identity
    return where


def _has_readers(node, m) -> bool:
    return bool(m.graph.consumers(node.name))


def rule_patterns() -> dict[str, Op]:
    """``x op c`` per op, with ``c`` a Const holding the op's identity element (both orders
    for a commutative op, the constant on the right tried first)."""
    return {op: Op(op, Any("x"), Const("c", where=_identity_element(op)), name="op",
                   commutative=0 in positions, guard=_has_readers)
            for op, (_, positions) in RULES.items()}


@pass_body("simplify_arithmetic")
def simplify_arithmetic(ctx: PassContext) -> None:
    graph, keep = ctx.graph, ctx.keep
    patterns = rule_patterns()

    # ---------------------------------------------------------------- candidates (no TF yet)
    candidates = []  # (node, x tensor, const node, chain to the const, "x + c" text)
    for node in graph.graph_def.node:
        pattern = patterns.get(node.op)
        if pattern is None:
            continue
        found = ctx.matcher.match(pattern, node)
        if not found and not found.near:
            continue
        x, (const, chain) = found["x"], found.consts["c"]
        data = [t for t in node.input if not t.startswith("^")]
        expr = (f"{x} {_SYMBOL[node.op]} {const.name}" if data[1] == found["c"]
                else f"{const.name} {_SYMBOL[node.op]} {x}")
        if found.near:   # x * 0
            ctx.refuse(node.name, f"{node.op} {node.name} multiplies by zeros ({expr}): not "
                       "simplified, since NaN * 0 and inf * 0 are NaN, not 0",
                       [node.name, const.name])
            continue
        candidates.append((node, x, const, chain, expr))

    # ---------------------------------------------------------------- shape check
    need_shapes = [x for node, x, const, _, _ in candidates if node.op != "BiasAdd"
                   and const.attr["value"].tensor.tensor_shape.dim]
    shapes = static_shapes(graph, need_shapes) if need_shapes else {}

    sub = Substitution()
    sub.pointless = {n.name for n in graph.graph_def.node if n.op == "Const" and not n.input}
    bypassed: list[str] = []
    dead_candidates: set[str] = set()
    report = ctx.report
    for node, x, const, chain, expr in candidates:
        name = node.name
        ct = const.attr["value"].tensor
        c_shape = [d.size for d in ct.tensor_shape.dim]
        t_attr = node.attr["T"].type if "T" in node.attr else ct.dtype
        problem = ""
        if name in keep:
            problem = protection_reason(graph, name)
        elif ct.dtype != t_attr:
            problem = "the constant's dtype differs from the op's"
        elif node.op != "BiasAdd" and c_shape:
            if x not in shapes:
                problem = ("x's shape is unknown (TensorFlow could not infer shapes for this "
                           f"graph), and a constant of shape {c_shape} could broadcast it bigger")
            else:
                problem = broadcast_problem(shapes[x], c_shape)
        if problem:
            ctx.refuse(name, f"{node.op} {name} ({expr}) is kept: {problem}", [name, const.name])
            continue
        changed = sorted_names(graph, {c for c, _, _ in graph.consumers(name)})
        match = ctx.match(name, f"{node.op} {name} computes {expr}, which is {x}: readers read "
                                f"{x} directly", nodes=[name, const.name], removed=[name],
                          changed=changed)
        if not match.applied:
            continue
        own_controls = [t[1:] for t in node.input if t.startswith("^")]
        const_controls = [t[1:] for c in chain for t in graph.nodes[c].input
                          if t.startswith("^")]
        controls = list(dict.fromkeys(own_controls + const_controls))
        ref = parse_input(x)
        sub.tensor(format_input(name, 0), format_input(ref.node, ref.port), controls)
        sub.control_to(name, [ref.node] + controls)
        bypassed.append(name)
        dead_candidates.update(chain)
    _merge_biases(ctx, sub, bypassed, dead_candidates, taken={c[0].name for c in candidates})
    if bypassed:
        editor = ctx.editor
        sub.apply(editor, skip=bypassed)
        editor.remove(bypassed)
        gone = set(bypassed)
        dead = set(editor.remove_unread(dead_candidates - gone, keep))
        for m in report.matches:
            if m.applied:
                m.changed = [c for c in m.changed if c not in gone]
                first = [r for r in m.removed if r in gone] or [m.key]
                m.removed = first + sorted_names(graph, dead & set(m.nodes))


def _biased(name: str, keep: set[str], taken: set[str]) -> Op:
    """An NHWC ``BiasAdd`` of a constant, read by one data input and nothing else."""
    def where(node, m) -> str | None:
        fmt = node.attr["data_format"].s if "data_format" in node.attr else b"NHWC"
        if fmt not in (b"NHWC", b""):
            return f"{node.name} is {fmt.decode()}: its channel axis need not line up"
        if node.name in keep:
            return f"{node.name} is a named graph input or output"
        readers = m.graph.consumers(node.name)
        if len(readers) != 1:
            return f"{node.name} has {len(readers)} readers (its value would change)"
        if const_source(m.graph, m[f"{name}_bias"])[0] is None:
            return f"{node.name}'s bias is not a constant"
        return None
    return Op("BiasAdd", Any(f"{name}_in"), Any(f"{name}_bias"), name=name,
              guard=lambda node, m: node.name not in taken, where=where)


def _sum_of_biases(keep: set[str], taken: set[str]) -> Op:
    """``Add(BiasAdd(u, b1), BiasAdd(v, b2))`` of two different BiasAdds."""
    def distinct(node, m) -> bool:
        data = [t for t in node.input if not t.startswith("^")]
        return node.name not in taken and (
            len(data) != 2 or parse_input(data[0]).node != parse_input(data[1]).node)
    return Op(("Add", "AddV2"), _biased("p", keep, taken), _biased("q", keep, taken),
              name="add", guard=distinct)


def _merge_biases(ctx: PassContext, sub: Substitution, bypassed: list[str],
                  dead_candidates: set[str], taken: set[str]) -> None:
    """Rule 2: Add(BiasAdd(u, b1), BiasAdd(v, b2)) -> Add(BiasAdd(u, b1 + b2), v)."""
    graph, keep = ctx.graph, ctx.keep
    pattern = _sum_of_biases(keep, taken)
    rewritten_bias: set[str] = set()
    for node in graph.graph_def.node:
        if node.op not in ("Add", "AddV2"):
            continue
        found = ctx.matcher.match(pattern, node)
        if not found and not found.near:
            continue
        data = [t for t in node.input if not t.startswith("^")]
        p_name, q_name = parse_input(data[0]).node, parse_input(data[1]).node
        nodes = [node.name, p_name, q_name]
        problem = found.reason if found.near else ""
        if not problem:
            p, q = graph.nodes[p_name], graph.nodes[q_name]
            b1, chain1 = const_source(graph, found["p_bias"])
            b2, chain2 = const_source(graph, found["q_bias"])
            t1, t2 = b1.attr["value"].tensor, b2.attr["value"].tensor
            s1 = [d.size for d in t1.tensor_shape.dim]
            s2 = [d.size for d in t2.tensor_shape.dim]
            if t1.dtype != t2.dtype or s1 != s2 or p.attr["T"].type != q.attr["T"].type:
                problem = (f"the biases differ in dtype or shape ({s1} and {s2})")
            elif b1.name in rewritten_bias:
                problem = f"{b1.name} already takes another bias here"
        if problem:
            ctx.refuse(node.name, f"{node.op} {node.name} adds two biased tensors, kept as is: "
                                  f"{problem}", nodes)
            continue
        try:
            total = (const_value(b1) + const_value(b2)).astype(const_value(b1).dtype)
        except Exception as e:  # noqa: BLE001 - an undecodable bias is reported
            ctx.refuse(node.name, f"cannot add the biases: {e}", nodes)
            continue
        v = [t for t in q.input if not t.startswith("^")][0]
        match = ctx.match(node.name, f"{node.op} {node.name} adds {p.name} and {q.name}, two "
                                     f"biased tensors: {p.name} takes the bias {b1.name} + "
                                     f"{b2.name} and {node.name} reads {v} directly",
                          nodes=nodes + [b1.name, b2.name], removed=[q.name],
                          changed=[node.name])
        if not match.applied:
            continue
        editor = ctx.editor
        # The summed bias: in place when only p reads b1, else a new Const beside it.
        b1_readers = {c for c, _, _ in graph.consumers(b1.name)}
        if b1_readers <= set(chain1) | {p.name} and b1.name not in keep:
            live = editor.node(b1.name)
            live.attr["value"].tensor.CopyFrom(make_const("_", total).attr["value"].tensor)
            editor.mark_changed(b1.name)
            match.changed.append(b1.name)
        else:
            new = make_const(editor.fresh_name(f"{p.name}/merged_bias"), total,
                             device=b1.device)
            editor.add_node(new)
            live_p = editor.node(p.name)
            inputs = list(live_p.input)
            k = [i for i, t in enumerate(inputs) if not t.startswith("^")][1]
            inputs[k] = new.name
            del live_p.input[:]
            live_p.input.extend(inputs)
            editor.mark_changed(p.name)
            match.added = [new.name]
        rewritten_bias.add(b1.name)
        controls = list(dict.fromkeys(
            [t[1:] for t in q.input if t.startswith("^")]
            + [t[1:] for c in chain2 for t in graph.nodes[c].input if t.startswith("^")]))
        ref = parse_input(v)
        sub.tensor(format_input(q.name, 0), format_input(ref.node, ref.port), controls)
        sub.control_to(q.name, [ref.node] + controls)
        bypassed.append(q.name)
        dead_candidates.update(chain2)


PASS = Pass(
    id="simplify_arithmetic",
    title="Remove arithmetic that does nothing (x + 0, x * 1, zero bias; one bias for two)",
    explanation=EXPLANATION,
    fn=simplify_arithmetic,
    params=[],
)

__all__ = ["PASS", "simplify_arithmetic", "broadcast_problem", "static_shapes"]
