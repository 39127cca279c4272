"""Strip unused nodes: keep only what the chosen outputs need, starting from the chosen inputs
(which become Placeholders), and drop function-library entries nothing calls."""
from __future__ import annotations

from ..model.graph import GraphError, NodeDef, node_of, parse_input, shape_list
from .base import Match, Param, Pass, sorted_names
from .context import PassContext, pass_body

EXPLANATION = """\
**What it does.** Cuts the graph down to the part the chosen outputs need, like TensorFlow's
`strip_unused_lib`:

1. Each chosen input that is not already a `Placeholder` (an intermediate tensor you want to
   feed, a `PlaceholderWithDefault`, a preprocessing op) becomes a `Placeholder` with the same
   name, so everything before it is no longer needed. Its dtype and shape come from the
   `input_dtype`/`input_shape` parameters, or else from the node's own attributes (`dtype`,
   `T`, `shape`, `_output_shapes`).
2. Every node the outputs do not reach (through data or control inputs) is removed.
3. Functions in the library that no remaining node calls (directly or through another
   function) are removed, with their gradient entries.

**Why it is safe.** A node no output depends on can not change any output. Turning an input
into a Placeholder changes the graph's interface on purpose: you must now feed that tensor.

**Parameters.** `inputs`/`outputs` are comma-separated node names (default: the graph's named
inputs and outputs; without named inputs, the Placeholders the outputs need are kept and
the others removed).
`input_dtype` is one dtype name for all inputs or a comma list (e.g. `float32,int32`).
`input_shape` is a comma list of dims per input, inputs separated by `;` (`1,224,224,3;1,10`);
`?` or `-1` is an unknown dim, `[]` a scalar.

The graph's own named inputs and outputs are always kept.
"""


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def _parse_dtypes(text: str, n: int) -> list[int | None]:
    items = _as_list(text)
    if not items:
        return [None] * n
    if len(items) == 1:
        items = items * n
    if len(items) != n:
        raise ValueError(f"input_dtype lists {len(items)} dtypes for {n} inputs")
    from tensorflow.python.framework import dtypes
    out = []
    for it in items:
        try:
            out.append(dtypes.as_dtype(it).as_datatype_enum)
        except TypeError:
            raise ValueError(f"input_dtype: unknown dtype {it!r} (try float32, int32, uint8, "
                             "bool)") from None
    return out


def _parse_shapes(text: str, n: int) -> list[list[int] | None]:
    text = (text or "").strip()
    if not text:
        return [None] * n
    parts = [p.strip() for p in text.split(";")]
    if len(parts) == 1 and n > 1:
        parts = parts * n
    if len(parts) != n:
        raise ValueError(f"input_shape gives {len(parts)} shapes for {n} inputs "
                         "(separate them with ';')")
    out: list[list[int] | None] = []
    for p in parts:
        body = p.strip().strip("[]()").strip()
        if not body:
            out.append([] if p.strip() else None)
            continue
        dims = []
        for d in body.split(","):
            d = d.strip()
            if d in ("?", "-1", "None", "none"):
                dims.append(-1)
            elif d.isdigit():
                dims.append(int(d))
            else:
                raise ValueError(f"input_shape: {d!r} is not a dimension (use a number, ? or -1)")
        out.append(dims)
    return out


def _infer_dtype(node: NodeDef) -> int | None:
    for key in ("dtype", "T", "out_type", "DstT"):
        if key in node.attr and node.attr[key].type:
            return node.attr[key].type
    if "output_types" in node.attr and node.attr["output_types"].list.type:
        return node.attr["output_types"].list.type[0]
    return None


def _infer_shape(node: NodeDef) -> list[int] | None:
    if "shape" in node.attr and node.attr["shape"].HasField("shape"):
        return shape_list(node.attr["shape"].shape)
    if "_output_shapes" in node.attr and node.attr["_output_shapes"].list.shape:
        return shape_list(node.attr["_output_shapes"].list.shape[0])
    return None


@pass_body("strip_unused")
def strip_unused(ctx: PassContext, inputs="", outputs="", input_dtype: str = "",
                 input_shape: str = "") -> None:
    graph, report = ctx.graph, ctx.report
    # Without named inputs, the Placeholders the outputs need stay and unused ones go.
    in_names = _as_list(inputs) or list(graph.given_inputs or [])
    out_names = _as_list(outputs) or list(graph.outputs)
    if not out_names:
        raise GraphError("strip_unused: the graph has no outputs; name them with outputs=...")
    missing = [n for n in in_names + out_names if node_of(n) not in graph.nodes]
    if missing:
        raise GraphError(f"strip_unused: no node named {', '.join(map(repr, missing))}",
                         nodes=missing)
    ported = [n for n in in_names if parse_input(n).port > 0]
    if ported:
        raise GraphError(f"strip_unused: an input must be a node's first output; {ported[0]!r} "
                         "is output port > 0 (feed it by adding an Identity first)", nodes=ported)
    dtypes_ = _parse_dtypes(input_dtype, len(in_names))
    shapes = _parse_shapes(input_shape, len(in_names))
    editor = ctx.editor
    protected = ctx.protected
    chosen = ctx.selected

    for name, dt, shape in zip(in_names, dtypes_, shapes):
        name = node_of(name)
        node = graph.nodes[name]
        is_ph = node.op in ("Placeholder", "PlaceholderV2")
        dtype = dt if dt is not None else _infer_dtype(node)
        if dtype is None:
            raise GraphError(f"strip_unused: cannot tell the dtype of input {name!r} "
                             f"({node.op}); give input_dtype", nodes=[name])
        if shape is None:
            shape = _infer_shape(node)
        if is_ph:
            old_shape = _infer_shape(node)
            if node.attr["dtype"].type == dtype and (shape is None or shape == old_shape):
                continue
            what = "is a Placeholder whose dtype/shape change to the given ones"
        else:
            what = f"({node.op}) becomes a Placeholder"
        from ..model.graph import dtype_name
        key = f"input:{name}"
        m = Match(key, f"input {name} {what}: {dtype_name(dtype)}, shape "
                       f"{'unknown' if shape is None else shape}", nodes=[name])
        m.applied = chosen(key)
        report.matches.append(m)
        if not m.applied:
            continue
        ph = NodeDef(name=name, op="Placeholder", device=node.device)
        ph.attr["dtype"].type = dtype
        if shape is None:
            ph.attr["shape"].shape.unknown_rank = True
        else:
            for d in shape:
                ph.attr["shape"].shape.dim.add().size = d
        editor.replace_node(name, ph)
        m.changed = [name]

    # Prune what the outputs (and the inputs and named nodes we keep) do not reach.
    dead = editor.unneeded(in_names + sorted(protected), out_names)
    g = editor.graph()
    if dead:
        m = Match("unused_nodes", f"{len(dead)} node(s) the outputs do not need",
                  nodes=sorted_names(graph, dead))
        m.applied = chosen(m.key)
        report.matches.append(m)
        if m.applied:
            editor.remove(dead)
            editor.flush()
            m.removed = list(m.nodes)
    unneeded_inputs = [node_of(n) for n in in_names if node_of(n) not in g.upstream(
        [node_of(o) for o in out_names])]
    if unneeded_inputs:
        report.notes.append("the outputs do not use input(s) " + ", ".join(unneeded_inputs)
                            + "; kept because they were named as inputs")
    unlisted = [n.name for n in editor.nodes(read_only=True)
                if n.op in ("Placeholder", "PlaceholderV2")
                and n.name not in {node_of(i) for i in in_names}]
    if unlisted and in_names:
        report.notes.append("the outputs still need Placeholder(s) not listed as inputs: "
                            + ", ".join(unlisted))

    # Function library entries nothing calls any more.
    lib = editor.graph().graph_def.library
    removed_functions: list[str] = []
    if lib.function:
        used = _called_functions(editor.nodes(read_only=True), lib)
        unused = [f.signature.name for f in lib.function if f.signature.name not in used]
        if unused:
            m = Match("unused_functions", f"{len(unused)} library function(s) nothing calls: "
                      + ", ".join(unused[:5]) + (" …" if len(unused) > 5 else ""),
                      nodes=[])
            m.applied = chosen(m.key)
            report.matches.append(m)
            if m.applied:
                lib = editor.graph_def.library   # a change: the editor's own copy
                keep = [f for f in lib.function if f.signature.name in used]
                del lib.function[:]
                lib.function.extend(keep)
                grads = [gr for gr in lib.gradient if gr.function_name in used]
                del lib.gradient[:]
                lib.gradient.extend(grads)
                removed_functions = unused

    report.functions = set(removed_functions)


def _called_functions(nodes, lib) -> set[str]:
    """Names of library functions reachable from the given nodes (through bodies too)."""
    by_name = {f.signature.name: f for f in lib.function}
    grad_of = {g.function_name: g.gradient_func for g in lib.gradient}
    used: set[str] = set()
    todo: list[str] = []

    def visit(node_def) -> None:
        if node_def.op in by_name:
            todo.append(node_def.op)
        for v in node_def.attr.values():
            if v.HasField("func"):
                todo.append(v.func.name)
            elif v.HasField("list"):
                todo.extend(f.name for f in v.list.func)

    for n in nodes:
        visit(n)
    while todo:
        f = todo.pop()
        if f in used or f not in by_name:
            continue
        used.add(f)
        if f in grad_of:
            todo.append(grad_of[f])
        for n in by_name[f].node_def:
            visit(n)
    return used


PASS = Pass(
    id="strip_unused",
    title="Strip unused nodes",
    explanation=EXPLANATION,
    fn=strip_unused,
    params=[
        Param("inputs", list, [], "input node names (default: the graph's inputs)"),
        Param("outputs", list, [], "output node names (default: the graph's outputs)"),
        Param("input_dtype", str, "", "dtype of the inputs made into Placeholders "
                                      "(one for all, or a comma list); default: inferred"),
        Param("input_shape", str, "", "shape per input, e.g. 1,224,224,3;1,10 (? = unknown); "
                                      "default: inferred"),
    ],
)

__all__ = ["PASS", "strip_unused"]
