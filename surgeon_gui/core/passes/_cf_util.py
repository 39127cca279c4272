"""Helpers the control-flow passes share (training flags, Switch/Merge, functions, dropout,
identities): constant evaluation of small subgraphs, batch rewiring of tensors, and removal of
what a rewrite left unused.

Everything here works on a :class:`~surgeon_gui.core.model.editor.GraphEditor` (a private copy), so
the caller's GraphDef is never touched, and visits nodes in graph order so results are
deterministic.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np

from ..model.editor import GraphEditor, protected_names
from ..model.graph import Graph, NodeDef, const_value, format_input, parse_input

#: v1 while-loop ops: a Switch/Merge touching these belongs to a loop, not a cond.
LOOP_OPS = frozenset({"Enter", "RefEnter", "Exit", "RefExit", "NextIteration",
                      "RefNextIteration", "LoopCond"})
#: Ops whose output 0 is their input 0, value for value.
PASS_THROUGH_OPS = frozenset({"Identity", "Snapshot", "StopGradient", "PreventGradient",
                              "CheckNumerics", "RefIdentity"})
SWITCH_OPS = frozenset({"Switch", "RefSwitch"})
MERGE_OPS = frozenset({"Merge", "RefMerge"})
_RANDOM_OPS = frozenset({"RandomUniform", "RandomStandardNormal", "TruncatedNormal",
                         "RandomUniformInt", "Multinomial", "RandomShuffle"})
_NEVER_FOLD = frozenset({"Placeholder", "PlaceholderV2", "PlaceholderWithDefault",
                         "VariableV2", "Variable", "VarHandleOp", "ReadVariableOp"})


def is_selected(key: str, select: set[str] | None) -> bool:
    return select is None or key in select


def keep_names(graph: Graph) -> set[str]:
    """Nodes a pass must not remove: given inputs/outputs, or (when no outputs were given) the
    detected outputs, since removing one would change what the graph computes for the user."""
    keep = protected_names(graph)
    if graph.given_outputs is None:
        keep.update(parse_input(o).node for o in graph.outputs)
    return keep


def attr_dtype(node: NodeDef, *names: str) -> int | None:
    for n in names or ("T", "dtype"):
        if n in node.attr and node.attr[n].type:
            return node.attr[n].type
    return None


# ---------------------------------------------------------------------------- constants
class ConstEvaluator:
    """Values of tensors that depend on constants only, or None when they do not.

    Const, pass-through ops (Identity, Snapshot, ...) and the live output of a Switch whose
    predicate is itself constant are followed structurally; any other registered, stateless op
    whose inputs are all constant is run once in TensorFlow. A ``PlaceholderWithDefault`` is
    *not* constant: it can be fed. Inputs larger than ``max_elements`` are not evaluated.
    """

    def __init__(self, graph: Graph, max_elements: int = 1 << 16):
        self.graph = graph
        self.max_elements = max_elements
        self._memo: dict[tuple[str, int], np.ndarray | None] = {}
        self._active: set[tuple[str, int]] = set()
        self._maybe: set[str] | None = None

    def _maybe_constant(self) -> set[str]:
        """Nodes whose data inputs all lead back to Consts (one sweep in topological order), so
        ``value`` never recurses down a long non-constant chain."""
        if self._maybe is None:
            from ..model.graph import GraphError, shape_size
            try:
                order = self.graph.topological_order()
            except GraphError:
                order = [n.name for n in self.graph.graph_def.node]
            maybe: set[str] = set()
            for name in order:
                node = self.graph.nodes[name]
                if node.op == "Const":
                    if shape_size(node.attr["value"].tensor.tensor_shape) <= self.max_elements:
                        maybe.add(name)
                    continue
                if (node.op in MERGE_OPS or node.op in LOOP_OPS or node.op in _NEVER_FOLD
                        or node.op in _RANDOM_OPS):
                    continue
                data = [parse_input(t).node for t in node.input if not t.startswith("^")]
                if data and all(d in maybe for d in data):
                    maybe.add(name)
            self._maybe = maybe
        return self._maybe

    def value(self, tensor: str) -> np.ndarray | None:
        ref = parse_input(tensor)
        key = (ref.node, max(ref.port, 0))
        if key in self._memo:
            return self._memo[key]
        if key in self._active or ref.node not in self._maybe_constant():
            return None
        self._active.add(key)
        try:
            val = self._compute(self.graph.nodes[ref.node], key[1])
        except Exception:  # noqa: BLE001 - any failure simply means "not known to be constant"
            val = None
        finally:
            self._active.discard(key)
        self._memo[key] = val
        return val

    def scalar(self, tensor: str):
        v = self.value(tensor)
        if v is None or np.size(v) != 1:
            return None
        return np.asarray(v).reshape(()).item()

    def _compute(self, node: NodeDef, port: int):
        data = [t for t in node.input if not t.startswith("^")]
        if node.op == "Const":
            return const_value(node) if port == 0 else None
        if node.op in PASS_THROUGH_OPS:
            return self.value(data[0]) if port == 0 and data else None
        if node.op == "IdentityN":
            return self.value(data[port]) if port < len(data) else None
        if node.op in SWITCH_OPS:
            pred = self.scalar(data[1])
            if pred is None or bool(pred) != (port == 1):
                return None
            return self.value(data[0])
        if node.op in MERGE_OPS or node.op in LOOP_OPS or node.op in _NEVER_FOLD:
            return None
        op_def = _op_def(node.op)
        if op_def is None or op_def.is_stateful or not data:
            return None
        values = []
        for t in data:
            v = self.value(t)
            if v is None or np.size(v) > self.max_elements:
                return None
            values.append(v)
        return _run_node(node, values, port)


def _op_def(op: str):
    from tensorflow.python.framework import op_def_registry
    return op_def_registry.get(op)


def _run_node(node: NodeDef, values: list, port: int):
    """Run one node on constant inputs in a throw-away TensorFlow graph."""
    import tensorflow as tf

    from ..model.graph import GraphDef, make_const
    gd = GraphDef()
    names = []
    for i, v in enumerate(values):
        c = make_const(f"const_eval_input_{i}", np.asarray(v))
        gd.node.append(c)
        names.append(c.name)
    n = gd.node.add()
    n.CopyFrom(node)
    n.name = "const_eval_node"
    n.device = ""
    del n.input[:]
    n.input.extend(names)
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    with tf.compat.v1.Session(graph=g) as sess:
        out = sess.run(f"const_eval_node:{port}")
    return np.asarray(out)


# ---------------------------------------------------------------------------- rewiring
class Substitution:
    """Batch rewiring: tensor → tensor (with extra control inputs) and ^node → ^nodes.

    Chains are followed (a → b, b → c gives a → c) so bypassing many nodes at once costs one
    pass over the graph instead of one per node.
    """

    def __init__(self):
        #: (node, port) → ((node, port), [control nodes to add to the reader])
        self.data: dict[tuple[str, int], tuple[tuple[str, int], list[str]]] = {}
        #: node → nodes a control reader (^node) should depend on instead (may be empty)
        self.control: dict[str, list[str]] = {}
        #: nodes a *rewritten* control edge may skip (e.g. input-less Consts: nothing to wait for)
        self.pointless: set[str] = set()

    def tensor(self, src: str, dst: str, controls: Iterable[str] = ()) -> None:
        s, d = parse_input(src), parse_input(dst)
        self.data[(s.node, max(s.port, 0))] = ((d.node, max(d.port, 0)), list(controls))

    def control_to(self, node: str, replacements: Iterable[str]) -> None:
        self.control[node] = list(replacements)

    def __bool__(self) -> bool:
        return bool(self.data or self.control)

    def resolve_data(self, key: tuple[str, int]) -> tuple[tuple[str, int], list[str]]:
        controls: list[str] = []
        seen = set()
        while key in self.data and key not in seen:
            seen.add(key)
            key, extra = self.data[key]
            controls.extend(extra)
        return key, self.resolve_controls(controls, originals=False)

    def resolve_controls(self, nodes: Iterable[str], originals: bool = True) -> list[str]:
        """Follow control replacements; an input that was not replaced is kept as it is
        (``originals``), a replacement that is ``pointless`` is skipped."""
        nodes = list(nodes)
        out: list[str] = []
        stack = list(reversed(nodes))
        seen = set()
        originals = set(nodes) if originals else set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if n in self.control:
                stack.extend(reversed(self.control[n]))
            elif n in originals or n not in self.pointless:
                out.append(n)
        return out

    def apply(self, editor: GraphEditor, skip: Iterable[str] = ()) -> list[str]:
        """Rewrite every node's inputs; returns the names of the nodes changed."""
        skip = set(skip)
        changed = []
        for node in editor.nodes():
            if node.name in skip:
                continue
            new_data: list[str] = []
            new_ctrl: list[str] = []
            for text in node.input:
                ref = parse_input(text)
                if ref.control:
                    new_ctrl.extend(self.resolve_controls([ref.node]))
                else:
                    (n, p), extra = self.resolve_data((ref.node, ref.port))
                    new_data.append(format_input(n, p))
                    new_ctrl.extend(extra)
            data_nodes = {parse_input(t).node for t in new_data}
            ctrl, seen = [], set()
            for c in new_ctrl:
                if c in seen or c == node.name or c in data_nodes:
                    continue
                seen.add(c)
                ctrl.append("^" + c)
            new_inputs = new_data + ctrl
            if new_inputs != list(node.input):
                del node.input[:]
                node.input.extend(new_inputs)
                editor.mark_changed(node.name)
                changed.append(node.name)
        return changed


def remove_unused(editor: GraphEditor, original: Graph, keep: set[str]) -> list[str]:
    """Remove nodes that had readers in ``original`` but have none now (repeatedly).

    Nodes that were sinks to begin with are outputs or run targets and stay; so do ``keep``.
    """
    editor.flush()
    readers: dict[str, int] = defaultdict(int)
    nodes = {n.name: n for n in editor.graph_def.node}
    for n in editor.graph_def.node:
        for t in n.input:
            readers[parse_input(t).node] += 1
    had_readers = original._build_consumers()  # noqa: SLF001 - the index is ours to read

    def candidate(name: str) -> bool:
        return (name in nodes and readers[name] == 0 and name not in keep
                and bool(had_readers.get(name)))

    order = {n.name: i for i, n in enumerate(editor.graph_def.node)}
    todo = sorted((n for n in nodes if candidate(n)), key=order.get)
    removed: list[str] = []
    gone: set[str] = set()
    while todo:
        name = todo.pop()
        if name in gone or not candidate(name):
            continue
        gone.add(name)
        removed.append(name)
        for t in nodes[name].input:
            src = parse_input(t).node
            readers[src] -= 1
            if candidate(src) and src not in gone:
                todo.append(src)
    editor.remove(removed)
    editor.flush()
    return sorted(removed, key=order.get)


def identity_node(name: str, tensor: str, dtype: int | None, device: str = "") -> NodeDef:
    """An Identity named ``name`` reading ``tensor``: keeps a protected name alive."""
    node = NodeDef(name=name, op="Identity")
    node.input.append(tensor)
    if dtype is not None:
        node.attr["T"].type = dtype
    if device:
        node.device = device
    return node


def drop_stale_colocation(editor: GraphEditor) -> list[str]:
    """Remove ``_class: loc:@X`` entries naming nodes that no longer exist: TensorFlow refuses to
    import a node colocated with a missing node."""
    editor.flush()
    present = {n.name for n in editor.graph_def.node}
    fixed = []
    for n in editor.graph_def.node:
        if "_class" not in n.attr:
            continue
        vals = list(n.attr["_class"].list.s)
        kept = [v for v in vals
                if not v.startswith(b"loc:@") or v[5:].decode("utf-8", "replace") in present]
        if len(kept) != len(vals):
            if kept:
                del n.attr["_class"].list.s[:]
                n.attr["_class"].list.s.extend(kept)
            else:
                del n.attr["_class"]
            editor.mark_changed(n.name)
            fixed.append(n.name)
    return fixed


def fill_report(report, editor: GraphEditor) -> None:
    """Finish an edit (stale colocation hints dropped) and copy the overall changes."""
    if editor.removed:
        drop_stale_colocation(editor)
    report.removed = set(editor.removed)
    report.added = set(editor.added)
    report.changed = set(editor.changed) - set(editor.removed)


def trace_source(graph: Graph, tensor: str) -> str:
    """Follow pass-through ops (Identity, Snapshot, ...) up to the tensor that feeds them."""
    seen = set()
    ref = parse_input(tensor)
    while ref.node in graph.nodes and ref.node not in seen:
        seen.add(ref.node)
        node = graph.nodes[ref.node]
        data = [t for t in node.input if not t.startswith("^")]
        if node.op in PASS_THROUGH_OPS and ref.port == 0 and data:
            ref = parse_input(data[0])
        else:
            break
    return format_input(ref.node, ref.port)


def non_constant_sources(graph: Graph, tensor: str, limit: int = 3) -> list[str]:
    """What keeps a tensor from being constant: the placeholders, Merges, Switches, loop ops and
    stateful ops upstream of it (as ``name (Op)``), nearest first."""
    from collections import deque

    from ..model.graph import INPUT_OPS
    found: list[str] = []
    seen: set[str] = set()
    todo = deque([parse_input(tensor).node])
    while todo and len(found) < limit:
        n = todo.popleft()
        if n in seen or n not in graph.nodes:
            continue
        seen.add(n)
        node = graph.nodes[n]
        op_def = _op_def(node.op) if node.op != "Const" else None
        if (node.op in INPUT_OPS or node.op in MERGE_OPS or node.op in SWITCH_OPS
                or node.op in LOOP_OPS or (op_def is not None and op_def.is_stateful)):
            found.append(f"{n} ({node.op})")
            continue
        todo.extend(parse_input(t).node for t in node.input if not t.startswith("^"))
    return found
