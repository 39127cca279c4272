"""Inline functional control flow: ``If``/``StatelessIf``/``Case`` with a constant selector become
the body of the branch taken; ``PartitionedCall``/``StatefulPartitionedCall`` (and direct calls
of a library function) become the body of the function they call."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..model.consteval import Constants
from ..model.editor import GraphEditor, Substitution, read_nodes
from ..model.graph import Graph, NodeDef, format_input, node_of, parse_input
from ..model.ops import CASE_OPS, IF_OPS, PARTITIONED_CALL_OPS, WHILE_OPS, trace_source
from ..model.ops import op_def as registered_op
from .base import Match, Pass, Refusal, is_selected
from .context import PassContext, pass_body

MAX_ROUNDS = 16

EXPLANATION = """\
**What it matches.** TF2 functional control flow, where the work lives in the graph's *function
library* and a single node calls it: `If`/`StatelessIf` (a `tf.cond` in a `tf.function`),
`Case`/`StatelessCase`, and plain calls, `PartitionedCall`/`StatefulPartitionedCall` (a
`tf.function` calling another one). Most inference tools (OpenCV, TF Lite converters of old,
`optimize_for_inference_lib`) cannot look inside these nodes.

**What it does.** For an `If` whose `cond` is a constant (a `Const`, or a small constant subgraph;
run *Set training flags to inference* first when it is a `training` input) the taken branch
(`then_branch` when true, `else_branch` when false) is chosen; for a `Case` the branch at the
constant index (out of range means the last, default branch); for a call, its function. The
function's nodes are copied into the graph under the call node's name as a prefix
(`cond/…`), with FunctionDef tensor names (`node:output_arg:index`) converted to GraphDef names
(`node:flat_index`). The function's arguments become the call's inputs (for an `If`/`Case`, all
inputs after the selector), readers of the call's output *i* read the tensor the function returns
as output *i*, and readers of the call's control output (`^cond`) wait for the returned nodes
and the function's control outputs. Control inputs of the call are added to the copied nodes
that have no other input in the body, so ordering is kept. Calls nested inside an inlined body
are inlined in the same run, and functions nobody references any more are removed from the
library.

**Why it is safe.** Calling a function is, by definition, running its body on its arguments;
with a constant `cond` only the taken branch could ever run. The values are the same.

**What it refuses.** An `If`/`Case` whose selector is not constant, `While`/`StatelessWhile`
loops, functions that are polymorphic (have attributes) or use an op this TensorFlow does not
register, and calls whose function is missing from the library.
"""


class _Unconvertible(Exception):
    pass


@dataclass
class _Body:
    args: list[str]
    nodes: list[NodeDef]                 # GraphDef naming, inputs still name body nodes/args
    rets: list[str]                      # per output: a tensor of a body node, or an arg name
    control_rets: list[str] = field(default_factory=list)
    out_types: list[int] = field(default_factory=list)


def _num_outputs(out_arg, node: NodeDef, op_def) -> int:
    if out_arg.number_attr:
        if out_arg.number_attr in node.attr:
            return node.attr[out_arg.number_attr].i
        return next(a.default_value.i for a in op_def.attr if a.name == out_arg.number_attr)
    if out_arg.type_list_attr:
        if out_arg.type_list_attr in node.attr:
            return len(node.attr[out_arg.type_list_attr].list.type)
        return next(len(a.default_value.list.type) for a in op_def.attr
                    if a.name == out_arg.type_list_attr)
    return 1


def function_body(fdef, library: dict) -> _Body:
    """A FunctionDef's nodes with GraphDef tensor naming (``node:out_arg:i`` → ``node:k``)."""
    from tensorflow.python.framework import op_def_registry
    sig = fdef.signature
    if sig.attr:
        raise _Unconvertible(f"function {sig.name} is polymorphic (attrs "
                             f"{', '.join(a.name for a in sig.attr)})")
    args = [a.name for a in sig.input_arg]
    flat: dict[str, str] = {a: a for a in args}
    for nd in fdef.node_def:
        op_def = library[nd.op].signature if nd.op in library else op_def_registry.get(nd.op)
        if op_def is None:
            raise _Unconvertible(f"function {sig.name} uses the op {nd.op}, which this "
                                 "TensorFlow does not register")
        k = 0
        for out_arg in op_def.output_arg:
            for i in range(_num_outputs(out_arg, nd, op_def)):
                flat[f"{nd.name}:{out_arg.name}:{i}"] = format_input(nd.name, k)
                k += 1
            flat.setdefault(f"{nd.name}:{out_arg.name}", format_input(nd.name, k - 1))

    def convert(text: str) -> str:
        if text.startswith("^"):
            return text
        if text in flat:
            return flat[text]
        if text + ":0" in flat:
            return flat[text + ":0"]
        raise _Unconvertible(f"function {sig.name} reads {text!r}, which it does not define")

    nodes = []
    for nd in fdef.node_def:
        c = NodeDef()
        c.CopyFrom(nd)
        del c.input[:]
        c.input.extend(convert(t) for t in nd.input)
        nodes.append(c)
    rets = [convert(fdef.ret[a.name]) for a in sig.output_arg]
    control_rets = [fdef.control_ret[n] for n in sig.control_output if n in fdef.control_ret]
    return _Body(args, nodes, rets, control_rets, [a.type for a in sig.output_arg])


def _call_target(node: NodeDef, ev: Constants, library: dict, graph: Graph):
    """(function name, argument tensors, what was decided) or a refusal reason (str)."""
    data = [t for t in node.input if not t.startswith("^")]
    if (node.op in IF_OPS or node.op in CASE_OPS) and not data:
        return f"{node.name} has no inputs: it is malformed"
    if node.op in IF_OPS:
        value = ev.scalar(data[0])
        if value is None:
            src = node_of(trace_source(graph, data[0]))
            op = graph.nodes[src].op if src in graph.nodes else "?"
            return (f"the cond of {node.name} is not constant: it comes from {src} ({op}). "
                    "Run 'Set training flags to inference' first if it is a training flag")
        branch = "then_branch" if bool(value) else "else_branch"
        return (node.attr[branch].func.name, data[1:],
                f"cond is {bool(value)}: inlines {branch} {node.attr[branch].func.name}")
    if node.op in CASE_OPS:
        value = ev.scalar(data[0])
        if value is None:
            return f"the branch index of {node.name} is not constant"
        branches = node.attr["branches"].list.func
        i = int(value)
        i = i if 0 <= i < len(branches) else len(branches) - 1
        return (branches[i].name, data[1:],
                f"branch index {int(value)}: inlines branch {i} {branches[i].name}")
    if node.op in PARTITIONED_CALL_OPS:
        return node.attr["f"].func.name, data, f"inlines {node.attr['f'].func.name}"
    return node.op, data, f"inlines {node.op}"


def _referenced_functions(graph_def, library: dict) -> set[str]:
    used: set[str] = set()

    def scan(nodes):
        found = []
        for nd in nodes:
            if nd.op in library:
                found.append(nd.op)
            for v in nd.attr.values():
                if v.HasField("func"):
                    found.append(v.func.name)
                found.extend(f.name for f in v.list.func)
        return found

    todo = scan(graph_def.node)
    while todo:
        f = todo.pop()
        if f in used or f not in library:
            continue
        used.add(f)
        todo.extend(scan(library[f].node_def))
    return used


@pass_body("inline_functions")
def inline_functions(ctx: PassContext) -> None:
    graph, report, keep, select = ctx.graph, ctx.report, ctx.keep, ctx.select
    library = {f.signature.name: f for f in graph.graph_def.library.function}
    if not library:
        return
    editor = ctx.editor
    current = graph
    position: dict[str, tuple] = {}  # sort keys of inlined nodes (see _place)
    new_names: set[str] | None = None  # after round 1: only look at nodes inlining added
    for _ in range(MAX_ROUNDS):
        ev = Constants(current, analyse=False)
        sub = Substitution()
        to_remove: list[str] = []
        did = False
        for node in list(current.graph_def.node):
            if new_names is not None and node.name not in new_names:
                continue
            if node.op in WHILE_OPS:
                report.refused.append(Refusal(node.name, f"{node.name} is a {node.op} loop: "
                                              "loops are not inlined", [node.name]))
                continue
            if not (node.op in IF_OPS or node.op in CASE_OPS or node.op in PARTITIONED_CALL_OPS
                    or node.op in library):
                continue
            target = _call_target(node, ev, library, current)
            if isinstance(target, str):
                report.refused.append(Refusal(node.name, target, [node.name]))
                continue
            fname, args, decided = target
            if fname not in library:
                report.refused.append(Refusal(node.name, f"{node.name} calls {fname}, which is "
                                              "not in the graph's function library",
                                              [node.name]))
                continue
            try:
                body = function_body(library[fname], library)
            except _Unconvertible as e:
                report.refused.append(Refusal(node.name, f"{node.name} was not inlined: {e}",
                                              [node.name]))
                continue
            if len(args) != len(body.args):
                report.refused.append(Refusal(
                    node.name, f"{node.name} passes {len(args)} inputs but {fname} takes "
                    f"{len(body.args)}", [node.name]))
                continue
            match = Match(key=node.name, description=f"{node.op} {node.name}: {decided} "
                          f"({len(body.nodes)} nodes)", nodes=[node.name])
            report.matches.append(match)
            if not is_selected(node.name, select):
                match.applied = False
                continue
            if _inline(editor, current, node, body, args, sub, keep, match, position):
                to_remove.append(node.name)
            did = True
        if not did:
            break
        sub.apply(editor, skip=to_remove)
        editor.remove(to_remove)
        for m in report.matches:
            if m.applied and m.key in to_remove and m.key not in m.removed:
                m.removed.append(m.key)
        new_names = set(editor.added)
        current = editor.graph()
        if select is not None:
            break  # nested calls appear as new matches on the next run
    if editor.removed or editor.changed:
        # Besides what only the calls read: inlined nodes nothing reads, such as the
        # OptionalFromValue/OptionalNone a TF2 cond returns for its gradient only. Stateful
        # ones (an Assert, a variable update) stay.
        unread_inlined = [n for n in editor.added if not _is_stateful(editor, n)]
        dropped = editor.remove_unread(read_nodes(graph) + unread_inlined, keep)
        if dropped:
            report.notes.append(f"removed {len(dropped)} node(s) only the inlined calls read: "
                                + ", ".join(dropped[:10]))
        used = _referenced_functions(editor.graph_def, library)
        gone = [f for f in library if f not in used]
        if gone:
            lib = editor.graph_def.library
            kept = [f for f in lib.function if f.signature.name in used]
            del lib.function[:]
            lib.function.extend(kept)
            grads = [g for g in lib.gradient if g.function_name in used]
            del lib.gradient[:]
            lib.gradient.extend(grads)
            report.notes.append(f"removed {len(gone)} function(s) no longer referenced: "
                                + ", ".join(gone))
    if position:
        ctx.finish_with(lambda result: _place(result, graph, position))


def _is_stateful(editor: GraphEditor, name: str) -> bool:
    node = editor._index.get(name)  # noqa: SLF001 - read-only use of the index
    if node is None:
        return False
    od = registered_op(node.op)
    return od is None or od.is_stateful


def _place(graph_def, graph: Graph, position: dict[str, tuple]) -> None:
    """Put inlined nodes where their call was, in dependency order, so a graph that was sorted
    stays sorted (OpenCV's importer and people reading the node list both like that)."""
    far = (len(graph.order) + 1,)
    nodes = list(graph_def.node)
    keyed = sorted(range(len(nodes)), key=lambda i: (
        position.get(nodes[i].name) or ((graph.order[nodes[i].name],)
                                        if nodes[i].name in graph.order else far), i))
    copies = []
    for i in keyed:
        c = NodeDef()
        c.CopyFrom(nodes[i])
        copies.append(c)
    del graph_def.node[:]
    graph_def.node.extend(copies)


def _body_order(body: _Body) -> list[int]:
    """Indices of the body's nodes in a stable topological order (a FunctionDef's node list
    need not be sorted)."""
    import heapq
    index = {nd.name: i for i, nd in enumerate(body.nodes)}
    deps = [{index[parse_input(t).node] for t in nd.input if parse_input(t).node in index}
            for nd in body.nodes]
    users: dict[int, list[int]] = {i: [] for i in range(len(body.nodes))}
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    count = [len(d) for d in deps]
    heap = [i for i, c in enumerate(count) if c == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        i = heapq.heappop(heap)
        out.append(i)
        for u in users[i]:
            count[u] -= 1
            if count[u] == 0:
                heapq.heappush(heap, u)
    done = set(out)
    return out + [i for i in range(len(body.nodes)) if i not in done]  # a cycle: keep order


def _inline(editor: GraphEditor, graph: Graph, call: NodeDef, body: _Body, args: list[str],
            sub: Substitution, keep: set[str], match: Match,
            position: dict[str, tuple]) -> bool:
    """Copy the body in; returns False when the call node was kept (as an Identity).
    ``position`` gets a sort key for each new node: the call's, refined by body order."""
    prefix = call.name
    rename: dict[str, str] = {}
    natural = {f"{prefix}/{nd.name}" for nd in body.nodes}
    for nd in body.nodes:
        name, i = f"{prefix}/{nd.name}", 0
        while name in editor._index or (i and name in natural) \
                or name in rename.values():  # noqa: SLF001 - read-only use of the index
            i += 1
            name = f"{prefix}/{nd.name}_{i}"
        rename[nd.name] = name
    base = position.get(call.name) or (graph.order.get(call.name, len(graph.order)),)
    for k, i in enumerate(_body_order(body)):
        position[rename[body.nodes[i].name]] = base + (k,)
    arg_of = dict(zip(body.args, args))
    call_controls = [t for t in call.input if t.startswith("^")]

    def outer(text: str) -> str:
        ref = parse_input(text)
        if ref.node in arg_of:
            a = parse_input(arg_of[ref.node])
            return format_input(a.node, control=True) if ref.control else str(a)
        return format_input(rename[ref.node], ref.port, ref.control)

    for nd in body.nodes:
        c = NodeDef()
        c.CopyFrom(nd)
        c.name = rename[nd.name]
        if not c.device and call.device:
            c.device = call.device
        inputs = [outer(t) for t in nd.input]
        internal = any(parse_input(t).node in rename for t in nd.input if not t.startswith("^"))
        if not internal:
            inputs += [t for t in call_controls if t not in inputs]
        del c.input[:]
        c.input.extend(inputs)
        editor.add_node(c)
        match.added.append(c.name)
    rets = [outer(r) for r in body.rets]
    waits = list(dict.fromkeys([node_of(r) for r in rets]
                               + [rename[n] for n in body.control_rets if n in rename]))
    if call.name in keep:
        # A named output keeps its name: an Identity (one output) or IdentityN over the rets.
        keeper = NodeDef(name=call.name, op="Identity" if len(rets) == 1 else "IdentityN")
        keeper.input.extend(rets + ["^" + w for w in waits if w not in {node_of(r) for r in rets}])
        types = body.out_types
        if len(rets) == 1 and types:
            keeper.attr["T"].type = types[0]
        elif types:
            keeper.attr["T"].list.type.extend(types)
        keeper.device = call.device
        editor.replace_node(call.name, keeper)
        position[call.name] = base + (len(body.nodes),)
        match.changed.append(call.name)
        return False
    for i, r in enumerate(rets):
        sub.tensor(format_input(call.name, i), r)
    sub.control_to(call.name, waits or [parse_input(t).node for t in call.input])
    return True


PASS = Pass(
    id="inline_functions",
    title="Inline functional control flow (If, Case, PartitionedCall)",
    explanation=EXPLANATION,
    fn=inline_functions,
    params=[],
)
