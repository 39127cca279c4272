"""Remove Identity-like nodes and control-only NoOps, keeping control dependencies correct."""
from __future__ import annotations

from ..model.editor import GraphEditor, Substitution
from ..model.graph import Graph, format_input, node_of, parse_input
from ..model.ops import REF_VARIABLE_OPS, REMOVABLE_PASS_THROUGH_OPS, SWITCH_OPS
from .base import Pass
from .context import PassContext, pass_body
from .pattern import Op

EXPLANATION = """\
**What it matches.** Nodes that pass their input through unchanged at inference:
`Identity` (the `/read` of every TF1 variable, the outputs of `tf.function`s), `IdentityN`,
`Snapshot`, `StopGradient` and `PreventGradient` (they only matter to gradients),
`CheckNumerics` (it only raises on NaN/Inf, computing nothing), and control-only `NoOp`s (the
`tf.group` and "wait for these" nodes).

**What it does.** Readers of the node's output *i* read its input *i* instead. Its own control
inputs are handed to every reader, so nothing that had to run first is forgotten; readers of
its control output (`^node`) now wait for its inputs instead. For a `NoOp`, nodes that waited on
it wait for what the `NoOp` waited on. Rewritten control edges that would only wait for an
input-less `Const` are dropped, since a constant is always ready.

**Why it is safe.** These ops return their input unchanged, so every value in the graph stays
bit for bit the same; only the node count and the latency go down. (The price of removing
`CheckNumerics` is that a NaN is no longer reported by name.)

**What it refuses.** A node named as a graph input or output (the output of a TF2 graph is
often an `Identity` called `Identity`: it stays so callers can still fetch it; when no outputs
were given, the detected outputs count as named), an `Identity` that reads a `Switch` and has
control readers (the *pivot* of a v1 `tf.cond`: its control readers must run only in one
branch — run *Remove Switch/Merge* first), an `Identity` that reads a reference variable (it *is*
the read), and `NoOp`s nothing depends on (they may be run targets such as `init`; *Strip unused
nodes* removes them when the outputs do not need them).
"""


def _not_at_inference(node, m) -> str | None:
    """Why an identity-like node that has inputs and readers must stay (None: it may go)."""
    graph: Graph = m.graph
    name = node.name
    data = [t for t in node.input if not t.startswith("^")]
    src_ops = {graph.nodes[s].op for s in (parse_input(t).node for t in data) if s in graph.nodes}
    if src_ops & SWITCH_OPS and graph.consumers(name, control=True):
        return (f"{node.op} {name} reads a Switch and has control readers: it is the pivot of a "
                "v1 cond, so its control readers run in one branch only. Run 'Remove "
                "Switch/Merge' first")
    if src_ops & REF_VARIABLE_OPS:
        return (f"{node.op} {name} reads a reference variable: it is the variable's read "
                "(freeze the graph first)")
    if node.op == "IdentityN" and any(not r.control and r.port >= len(data)
                                      for _, _, r in graph.consumers(name)):
        return f"IdentityN {name} is read at a port it does not have"
    return None


def _has_data_and_readers(node, m) -> bool:
    # A sink that is not an output is dead code, for strip_unused.
    return any(not t.startswith("^") for t in node.input) and bool(m.graph.consumers(node.name))


def _waited_on(node, m) -> str | None:
    if m.graph.consumers(node.name):
        return None
    return (f"NoOp {node.name} is kept: nothing depends on it, so it may be a run target (an "
            "init or train op); 'Strip unused nodes' removes it if the outputs do not need it")


#: What this pass removes: an identity-like op with inputs and readers, or a control-only NoOp.
RULES = [
    ("identity", Op(REMOVABLE_PASS_THROUGH_OPS, more_inputs=True, guard=_has_data_and_readers,
                    where=_not_at_inference)),
    ("noop", Op("NoOp", more_inputs=True, where=_waited_on,
                guard=lambda node, m: not any(not t.startswith("^") for t in node.input))),
]


@pass_body("remove_identity")
def remove_identity(ctx: PassContext) -> None:
    graph, report = ctx.graph, ctx.report
    sub = Substitution()
    sub.pointless = {n.name for n in graph.graph_def.node if n.op == "Const" and not n.input}
    bypassed: list[str] = []
    for node in graph.graph_def.node:
        if node.op not in REMOVABLE_PASS_THROUGH_OPS and node.op != "NoOp":
            continue
        name = node.name
        if name in ctx.keep:
            ctx.refuse(name, f"{node.op} {name} is kept: {ctx.why_kept(name)}", [name])
            continue
        kind, found = ctx.matcher.first(RULES, node)
        if found.near:
            ctx.refuse(name, found.reason, [name])
        if not found:
            continue
        data = [t for t in node.input if not t.startswith("^")]
        controls = [t[1:] for t in node.input if t.startswith("^")]
        readers = graph.consumers(name)
        if kind == "noop":
            desc = (f"NoOp {name}: its {len(readers)} control reader(s) wait for its "
                    f"{len(controls)} control input(s) instead")
        else:
            desc = f"{node.op} {name}: readers read {', '.join(data)} directly"
            if controls:
                desc += f" (and inherit its control input(s) {', '.join(controls)})"
        changed = sorted({c for c, _, _ in readers}, key=graph.order.get)
        match = ctx.match(name, desc, nodes=[name], removed=[name], changed=changed)
        if not match.applied:
            continue
        if kind == "noop":
            sub.control_to(name, controls)
        else:
            for i, t in enumerate(data):
                ref = parse_input(t)
                sub.tensor(format_input(name, i), format_input(ref.node, ref.port), controls)
            sub.control_to(name, [node_of(t) for t in data] + controls)
        bypassed.append(name)
    if bypassed:
        editor = ctx.editor
        changed = sub.apply(editor, skip=bypassed)
        editor.remove(bypassed)
        dropped = _drop_implied_controls(editor, graph, changed)
        if dropped:
            ctx.note(f"dropped {dropped} handed-on control input(s) already implied by a data "
                     "path")
        # A reader that was itself bypassed is not "changed" in the result.
        gone = set(bypassed)
        for m in report.matches:
            m.changed = [c for c in m.changed if c not in gone]


def _drop_implied_controls(editor: GraphEditor, graph: Graph, changed: list[str],
                           limit: int = 20000) -> int:
    """Remove control inputs this pass handed to a node when the node already depends on them
    through its data inputs (a data path orders them as well, and carries their deadness)."""
    editor.flush()
    nodes = {n.name: n for n in editor.nodes(read_only=True)}
    count = 0
    for name in changed:
        node = nodes.get(name)
        if node is None:
            continue
        before = {t[1:] for t in graph.nodes[name].input if t.startswith("^")} \
            if name in graph.nodes else set()
        new = [t[1:] for t in node.input if t.startswith("^") and t[1:] not in before]
        if not new:
            continue
        want, seen = set(new), set()
        todo = [parse_input(t).node for t in node.input if not t.startswith("^")]
        while todo and want - seen and len(seen) < limit:
            n = todo.pop()
            if n in seen or n not in nodes:
                continue
            seen.add(n)
            todo.extend(parse_input(t).node for t in nodes[n].input)
        implied = want & seen
        if implied:
            kept = [t for t in node.input if not (t.startswith("^") and t[1:] in implied)]
            node = nodes[name] = editor.node(name)
            del node.input[:]
            node.input.extend(kept)
            count += len(implied)
    return count


PASS = Pass(
    id="remove_identity",
    title="Remove Identity, CheckNumerics, StopGradient and control-only NoOps",
    explanation=EXPLANATION,
    fn=remove_identity,
    params=[],
)
