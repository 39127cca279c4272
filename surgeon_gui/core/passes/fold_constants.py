"""Fold constants: every subgraph computed only from constants becomes one Const per tensor
the rest of the graph reads, computed once with TensorFlow."""
from __future__ import annotations

from collections import defaultdict

from ..model.consteval import Constants, SizeLimit, error_text, tensor_nbytes
from ..model.deferred import is_deferred, resolved
from ..model.editor import _dedupe_controls
from ..model.graph import (
    Graph,
    GraphError,
    NodeDef,
    format_input,
    make_const,
    parse_input,
)
from .base import Match, Param, Pass, Refusal, sorted_names
from .context import PassContext, pass_body

DEFAULT_MAX_BYTES = 10 * 1024 * 1024

EXPLANATION = """\
**What it matches.** A node whose value depends only on constants: a `Const`, or an op
whose data inputs are all constant (recursively), such as `Rsqrt(var + eps) * gamma` in a
decomposed batch norm, a `Reshape` of a weight, or the `w/read` / `ReadVariableOp` Identity
that frozen graphs put in front of every weight. The *fold targets* are the constant nodes that
a non-constant node (or a named graph output) reads: the frontier of each constant subgraph.

**What it does.** All fold targets are computed together in one TensorFlow session call (the
constant subgraph is imported into its own `tf.Graph`), and each target becomes a `Const`
holding its value. A target with one output keeps its name, so its readers need no
rewiring; a target whose readers use several output ports (a constant `Split`) gives one
`Const` per port, named `<node>/output_<port>`. The constant nodes that only fed the targets
are then removed. An Identity chain over a `Const` is copied without decoding the tensor.

**Why it is safe.** Constant ops are pure functions of their inputs: computing them once
ahead of time gives exactly the tensor TensorFlow would compute on every run.

**Control dependencies.** A control edge between two constants orders nothing and is
dropped. A control edge from a *non*-constant node into the folded region (for example the
`^cond/switch_t` pivot that makes a constant inside a v1 `tf.cond` branch dead when the branch
is not taken) can matter, so the folded `Const` keeps it. A control edge from a constant
into a non-constant node (a Keras `NoOp` that waits on every `ReadVariableOp`) is dropped when
that constant is not itself gated by anything non-constant: waiting for a constant waits for
nothing. A `NoOp` that waits only on such constants counts as one too, so the output
`Identity` that waits on that Keras `NoOp` stops waiting and the `NoOp` goes (a `NoOp` nothing
waited on to begin with is left alone: it may be a target someone runs by name).

**What it refuses** (each listed with the reason):
- a result larger than `max_bytes`, unless it replaces at least as many bytes of constants
  that only fed it (folding `Reshape(w)` never grows the graph; folding `Fill([4096,4096])`
  would);
- an Identity of a `Const` that something else also reads: folding it would store the same
  weights twice (remove Identity instead rewires the readers to the `Const`);
- a tensor TensorFlow cannot compute here, or of a dtype a `Const` cannot hold.

**Never folded:** graph inputs (`Placeholder`, `PlaceholderWithDefault`), stateful and random
ops (`RandomUniform`, variables, `Assert`), v1 control flow (`Switch`, `Merge`, `Enter`,
`Exit`, `NextIteration`), function calls (`If`, `PartitionedCall`, …), anything inside a
function body, and ops TensorFlow does not register.
"""


@pass_body("fold_constants")
def fold_constants(ctx: PassContext, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    graph, report, select = ctx.graph, ctx.report, ctx.select
    try:
        cn = ctx.constants
        cn.analyse()
    except GraphError as e:
        ctx.refuse("graph", f"cannot analyse the graph: {e.problem}", e.nodes)
        return
    if max_bytes is None or int(max_bytes) < 0:
        raise ValueError("max_bytes must be a non-negative number of bytes")
    max_bytes = int(max_bytes)
    protected = ctx.protected
    editor = ctx.editor

    # ---------------------------------------------------------------- find the fold targets
    outside_ports: dict[str, set[int]] = defaultdict(set)
    for node in graph.graph_def.node:
        if cn.is_const(node.name):
            continue
        for t in node.input:
            r = parse_input(t)
            if not r.control and cn.is_const(r.node):
                outside_ports[r.node].add(r.port)
    for out in graph.given_outputs or []:
        r = parse_input(out)
        if cn.is_const(r.node):
            outside_ports[r.node].add(max(r.port, 0))
    targets = [n.name for n in graph.graph_def.node
               if n.name in outside_ports and n.op != "Const"]

    refusals: list[Refusal] = []
    plans: list[tuple[str, list[int]]] = []   # (target, ports), in graph order
    fetch: dict[str, int] = {}                # tensor -> size limit
    identity_targets: dict[str, NodeDef] = {}
    for name in targets:
        ports = sorted(outside_ports[name])
        if (ports != [0]) and name in protected:
            refusals.append(Refusal(name, "a named input/output with several output ports "
                                          "read: folding would rename it", [name]))
            continue
        root = cn.const_root(name) if ports == [0] else None
        if root is not None:
            chain = cn.region([name])
            other = [c for c, _, _ in graph.consumers(root.name) if c not in chain]
            if other:
                refusals.append(Refusal(
                    name, f"an Identity of {root.name}, which {other[0]} also reads: folding "
                          f"would store its {tensor_nbytes(root)} bytes twice (remove_identity "
                          f"rewires readers to the Const instead)", [name, root.name]))
                continue
            identity_targets[name] = root
        else:
            allowance = max(max_bytes, _exclusive_bytes(graph, cn, name))
            for p in ports:
                fetch[format_input(name, p)] = allowance
        plans.append((name, ports))

    values = cn.evaluate(list(fetch), max_bytes=fetch) if fetch else {}

    # ---------------------------------------------------------------- decide and apply
    fresh = editor.fresh_name

    region_all: set[str] = set()
    for name, ports in plans:
        node = graph.nodes[name]
        if name in identity_targets:
            root = identity_targets[name]
            new_nodes = [_const_like(name, root, node)]
            desc = f"{name} ({node.op} of Const {root.name}) becomes a Const"
        else:
            vals, problem = {}, ""
            for p in ports:
                t = format_input(name, p)
                v = values.get(t)
                if isinstance(v, SizeLimit):
                    problem = (f"the result {t} would hold {v.nbytes} bytes (shape {v.shape}), "
                               f"over max_bytes={max_bytes}")
                elif isinstance(v, BaseException) or v is None:
                    problem = f"TensorFlow cannot compute {t}: {error_text(v) if v else '?'}"
                elif v.nbytes > fetch[t]:
                    problem = (f"the result {t} would hold {v.nbytes} bytes (shape "
                               f"{list(v.shape)}), over max_bytes={max_bytes}")
                if problem:
                    break
                vals[p] = v
            if problem:
                refusals.append(Refusal(name, problem, [name]))
                continue
            new_nodes = [_const_from_value(name if ports == [0] else fresh(f"{name}/output_{p}"),
                                           vals[p], node) for p in ports]
            shapes = ", ".join(str(list(vals[p].shape)) for p in ports)
            desc = (f"{name} ({node.op}) is constant: folded to "
                    f"{'a Const' if ports == [0] else f'{len(ports)} Consts'} of shape {shapes}")
        region = cn.region([name])
        gates = cn.gates(region)
        for c in new_nodes:
            c.input.extend("^" + g for g in gates)
        if gates:
            desc += f"; keeps control input(s) {', '.join(gates)}"
        m = Match(name, desc, nodes=sorted_names(graph, region))
        m.applied = select is None or name in select
        report.matches.append(m)
        if not m.applied:
            continue
        region_all |= region
        if ports == [0]:
            editor.replace_node(name, new_nodes[0])
            m.changed = [name]
        else:
            for p, c in zip(ports, new_nodes):
                editor.add_node(c)
                editor.rewire(format_input(name, p), c.name)
            m.added = [c.name for c in new_nodes]

    # Control edges from ungated constants into non-constant nodes order nothing.
    for node in graph.graph_def.node:
        if cn.is_const(node.name) or node.name not in editor:
            continue
        drop = [t for t in node.input if t.startswith("^") and cn.is_const(t[1:])
                and not cn.gates([t[1:]])]
        if not drop:
            continue
        key = f"controls:{node.name}"
        m = Match(key, f"{node.name} drops {len(drop)} control input(s) on constants "
                       f"({', '.join(t[1:] for t in drop[:3])}{', …' if len(drop) > 3 else ''}): "
                       "waiting for a constant waits for nothing",
                  nodes=[node.name] + [t[1:] for t in drop])
        m.applied = select is None or key in select
        report.matches.append(m)
        if m.applied:
            live = editor.node(node.name)
            keep = [t for t in live.input if t not in set(drop)]
            del live.input[:]
            live.input.extend(_dedupe_controls(keep, node.name))
            editor.mark_changed(node.name)
            m.changed = [node.name]
            region_all |= cn.region(t[1:] for t in drop)

    dead = set(editor.remove_unread(region_all, protected))
    for m in report.matches:
        if m.applied:
            m.removed = sorted_names(graph, dead & set(m.nodes))
    report.refused = refusals
    if report.matches:
        report.notes.append(f"{sum(m.applied for m in report.matches)} of "
                            f"{len(report.matches)} match(es) applied; {len(dead)} constant "
                            "node(s) no longer needed were removed")


def _exclusive_bytes(graph: Graph, cn: Constants, target: str) -> int:
    """Bytes of the Consts only this target's region reads (they die when it is folded)."""
    region = cn.region([target])
    total = 0
    for n in region:
        node = graph.nodes[n]
        if node.op == "Const" and n != target and all(
                c in region for c, _, _ in graph.consumers(n)):
            total += tensor_nbytes(node)
    return total


def _const_like(name: str, root: NodeDef, original: NodeDef) -> NodeDef:
    if is_deferred(root):  # a weight computed when written: its value, not its old bytes
        root = resolved(root)
    c = NodeDef(name=name, op="Const", device=original.device)
    c.attr["dtype"].CopyFrom(root.attr["dtype"])
    c.attr["value"].CopyFrom(root.attr["value"])
    return c


def _const_from_value(name: str, value, original: NodeDef) -> NodeDef:
    c = make_const(name, value)
    c.device = original.device
    return c


PASS = Pass(
    id="fold_constants",
    title="Fold constants",
    explanation=EXPLANATION,
    fn=fold_constants,
    params=[Param("max_bytes", int, DEFAULT_MAX_BYTES,
                  "largest folded tensor in bytes (results that grow the graph beyond this "
                  "are refused)")],
)

__all__ = ["PASS", "fold_constants"]
