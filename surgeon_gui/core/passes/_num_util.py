"""What the numeric passes share: which nodes are constant, evaluating constant tensors in
TensorFlow (one session call for many tensors), and removing what a rewrite left dead.

"Constant" here means: the node's value is fixed by the GraphDef alone. A node is constant when
its op may be evaluated ahead of time (not an input, not stateful or random, not control flow,
not a function call, has outputs, is registered) and every one of its *data* inputs is constant.
Control inputs do not change a value, but they can gate it (a Const inside a v1 ``tf.cond``
branch carries ``^cond/switch_t`` and is dead when the branch is not taken). So for every
constant node we also keep the set of non-constant nodes that gate it through control edges
(:meth:`Constness.gates`); a rewrite that replaces a constant keeps those as control inputs.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np

from ..model.editor import GraphEditor
from ..model.graph import (
    INPUT_OPS,
    Graph,
    GraphDef,
    GraphError,
    NodeDef,
    node_of,
    parse_input,
)

#: v1 control flow: never evaluated ahead of time (their values depend on which branch runs).
CONTROL_FLOW_OPS = frozenset({
    "Switch", "RefSwitch", "Merge", "RefMerge", "Enter", "RefEnter", "Exit", "RefExit",
    "NextIteration", "RefNextIteration", "LoopCond", "ControlTrigger", "_SwitchN"})
#: Function calls and functional control flow: their bodies live in the library.
CALL_OPS = frozenset({
    "If", "StatelessIf", "While", "StatelessWhile", "Case", "StatelessCase", "PartitionedCall",
    "StatefulPartitionedCall", "SymbolicGradient", "RemoteCall"})
#: Identity-like ops: reading through them gives the same tensor.
IDENTITY_OPS = frozenset({"Identity", "Snapshot", "StopGradient", "PreventGradient"})
FLOAT_TYPES = (np.float16, np.float32, np.float64)


def op_def(op: str):
    """The registered OpDef of ``op``, or None (an unregistered op or a library function)."""
    from tensorflow.python.framework import op_def_registry
    try:
        return op_def_registry.get(op)
    except Exception:  # noqa: BLE001 - a malformed name is simply unknown
        return None


def is_random_op(op: str) -> bool:
    """Random number generators, stateful or not (a seeded stateless one is still "random" to
    a user reading the graph, and dropout masks are made of them)."""
    return "Random" in op or op in ("Multinomial", "TruncatedNormal",
                                    "ParameterizedTruncatedNormal", "StatelessMultinomial",
                                    "StatelessTruncatedNormal", "RandomShuffle")


def unfoldable_reason(node: NodeDef, function_names: set[str] | frozenset = frozenset()) -> str:
    """Why this node's op may never be evaluated ahead of time ("" when it may)."""
    op = node.op
    if op in INPUT_OPS:
        return f"{op} is a graph input"
    if op in CONTROL_FLOW_OPS:
        return f"{op} is control flow"
    if op in CALL_OPS or op in function_names:
        return f"{op} calls a function"
    if is_random_op(op):
        return f"{op} is random"
    d = op_def(op)
    if d is None:
        return f"{op} is not a registered TensorFlow op"
    if d.is_stateful:
        return f"{op} is stateful"
    if not d.output_arg and op != "NoOp":
        # A NoOp is the exception: it computes nothing, so one that waits only on constants
        # is itself "constant" (done as soon as the graph starts) and waiting on it is moot.
        return f"{op} has no outputs"
    return ""


class Constness:
    """Which nodes of a graph are constant, and which non-constant nodes gate each of them."""

    def __init__(self, graph: Graph):
        self.graph = graph
        funcs = frozenset(graph.function_names())
        self.order = graph.topological_order()
        self._const: dict[str, bool] = {}
        self._gates: dict[str, frozenset] = {}
        empty: frozenset = frozenset()
        for name in self.order:
            node = graph.nodes[name]
            refs = [parse_input(t) for t in node.input]
            const = not unfoldable_reason(node, funcs) and all(
                self._const.get(r.node, False) for r in refs if not r.control)
            self._const[name] = const
            if not const:
                continue
            gates = empty
            for r in refs:
                if r.node not in self._const:
                    continue
                if self._const[r.node]:
                    g = self._gates[r.node]
                elif r.control:
                    g = frozenset((r.node,))
                else:
                    g = empty
                if g:
                    gates = gates | g
            self._gates[name] = gates

    def is_const(self, name: str) -> bool:
        return self._const.get(node_of(name), False)

    def gates(self, names: Iterable[str]) -> list[str]:
        """Non-constant nodes that gate any of the given constant nodes, in graph order."""
        out: set[str] = set()
        for n in names:
            out |= self._gates.get(node_of(n), frozenset())
        return sorted(out, key=self.graph.order.get)

    def region(self, tensors: Iterable[str]) -> set[str]:
        """The constant nodes the given constant tensors are computed from (data edges)."""
        seen: set[str] = set()
        todo = [node_of(t) for t in tensors]
        while todo:
            n = todo.pop()
            if n in seen or not self._const.get(n, False):
                continue
            seen.add(n)
            for t in self.graph.nodes[n].input:
                if not t.startswith("^"):
                    todo.append(parse_input(t).node)
        return seen

    def const_root(self, tensor: str) -> NodeDef | None:
        """The Const a tensor is read from through Identity-like ops only, else None."""
        ref = parse_input(tensor)
        node = self.graph.nodes.get(ref.node)
        while node is not None and ref.port == 0:
            if node.op == "Const":
                return node
            if node.op not in IDENTITY_OPS or not node.input:
                return None
            ref = parse_input(node.input[0])
            node = self.graph.nodes.get(ref.node)
        return None


def tensor_nbytes(node: NodeDef) -> int:
    """Bytes a Const's tensor holds, from its shape and dtype (no decoding)."""
    t = node.attr["value"].tensor
    if t.tensor_content:
        return len(t.tensor_content)
    n = 1
    for d in t.tensor_shape.dim:
        n *= max(d.size, 0)
    try:
        from tensorflow.python.framework import dtypes
        size = dtypes.as_dtype(t.dtype).size
    except Exception:  # noqa: BLE001
        size = 4
    return n * size


class SizeLimit(Exception):
    """A constant would be larger than the limit (raised into the results, not thrown)."""

    def __init__(self, nbytes: int, shape):
        self.nbytes = nbytes
        self.shape = shape
        super().__init__(f"{nbytes} bytes")


def evaluate(graph: Graph, constness: Constness, tensors: Iterable[str],
             max_bytes: dict[str, int] | None = None) -> dict[str, object]:
    """Compute constant tensors: ``{tensor: ndarray}``, or an Exception for those that failed.

    Consts and Identity chains over a Const are decoded directly; the rest are computed by
    importing the union of their constant regions into one ``tf.Graph`` and fetching them all
    in one session call (if that call fails, each tensor is retried alone so one bad op only
    spoils its own results). ``max_bytes`` gives a per-tensor limit checked on the static shape
    before fetching (:class:`SizeLimit` in the results).
    """
    from ..model.graph import const_value
    results: dict[str, object] = {}
    todo: list[str] = []
    for t in dict.fromkeys(tensors):
        root = constness.const_root(t)
        if root is not None:
            try:
                results[t] = const_value(root)
            except Exception as e:  # noqa: BLE001 - a corrupt tensor is reported, not raised
                results[t] = e
        elif not constness.is_const(t):
            results[t] = GraphError(f"{t} is not constant")
        else:
            todo.append(t)
    if not todo:
        return results
    import tensorflow as tf
    region = constness.region(todo)
    sub = GraphDef()
    sub.versions.CopyFrom(graph.graph_def.versions)
    for node in graph.graph_def.node:
        if node.name not in region:
            continue
        copy_for_side_graph(sub, node)
    g = tf.Graph()
    try:
        with g.as_default():
            tf.compat.v1.import_graph_def(sub, name="")
    except Exception as e:  # noqa: BLE001
        for t in todo:
            results[t] = e
        return results
    fetch = []
    for t in todo:
        ref = parse_input(t)
        try:
            tensor = g.get_tensor_by_name(f"{ref.node}:{max(ref.port, 0)}")
        except (KeyError, ValueError) as e:
            results[t] = e
            continue
        if tensor.dtype in (tf.resource, tf.variant) or tensor.dtype._is_ref_dtype:
            results[t] = GraphError(f"{t} has dtype {tensor.dtype.name}, which a Const cannot hold")
            continue
        limit = (max_bytes or {}).get(t)
        if limit is not None and tensor.shape.is_fully_defined():
            n = int(np.prod(tensor.shape.as_list(), dtype=np.int64)) * max(tensor.dtype.size, 1)
            if n > limit:
                results[t] = SizeLimit(n, tensor.shape.as_list())
                continue
        fetch.append((t, tensor))
    if not fetch:
        return results
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=2,
                                      inter_op_parallelism_threads=2)
    with tf.compat.v1.Session(graph=g, config=config) as sess:
        try:
            values = sess.run([f for _, f in fetch])
            for (t, _), v in zip(fetch, values):
                results[t] = np.asarray(v)
        except Exception:  # noqa: BLE001 - isolate the failing tensor(s)
            for t, f in fetch:
                try:
                    results[t] = np.asarray(sess.run(f))
                except Exception as e:  # noqa: BLE001
                    results[t] = e
    return results


_NOISE = ("Graph execution error", "Detected at node", "File ", "Node:", "[[",
          "Original stack trace")


def error_text(e: BaseException) -> str:
    """The line of a TensorFlow error that says what went wrong (not where it was built)."""
    msg = getattr(e, "message", None) or str(e)
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_NOISE)]
    text = (useful or lines or [type(e).__name__])[0]
    return text[:300]


def remove_dead(editor: GraphEditor, candidates: Iterable[str], protected: set[str]) -> set[str]:
    """Remove candidate nodes nothing reads any more (repeatedly); returns the removed names.

    Only candidates can go: this is cleanup after a rewrite, not a prune of the whole graph.
    """
    cand = {c for c in candidates if c in editor and c not in protected}
    if not cand:
        return set()
    g = editor.graph()
    readers: dict[str, set[str]] = defaultdict(set)
    for node in g.graph_def.node:
        for t in node.input:
            src = parse_input(t).node
            if src in cand:
                readers[src].add(node.name)
    dead: set[str] = set()
    todo = [c for c in sorted(cand) if not readers[c]]
    while todo:
        n = todo.pop()
        if n in dead:
            continue
        dead.add(n)
        for t in g.nodes[n].input:
            src = parse_input(t).node
            if src in cand and src not in dead:
                readers[src].discard(n)
                if not readers[src]:
                    todo.append(src)
    editor.remove(dead)
    editor.flush()
    return dead


def sorted_names(graph: Graph, names: Iterable[str]) -> list[str]:
    """Names in the graph's node order (unknown names last, alphabetically)."""
    big = len(graph.order)
    return sorted(set(names), key=lambda n: (graph.order.get(n, big), n))


def name_allocator(graph: Graph):
    """A ``fresh(base)`` function giving names free in ``graph`` and not yet handed out, for
    passes that plan several new nodes before adding any."""
    used: set[str] = set()

    def fresh(base: str) -> str:
        new, i = base, 1
        while new in graph.nodes or new in used:
            new, i = f"{base}_{i}", i + 1
        used.add(new)
        return new
    return fresh


def copy_for_side_graph(sub: GraphDef, node: NodeDef) -> NodeDef:
    """Add a copy of ``node`` to ``sub``, a side graph built to compute values or shapes:
    without control inputs (values do not depend on ordering), device or ``_`` attributes
    (colocation and devices name nodes the side graph does not hold)."""
    c = sub.node.add()
    c.CopyFrom(node)
    keep = [i for i in c.input if not i.startswith("^")]
    del c.input[:]
    c.input.extend(keep)
    c.device = ""
    for attr in [k for k in c.attr if k.startswith("_")]:
        del c.attr[attr]
    return c
