"""Constant evaluation: which tensors a GraphDef fixes by itself, and their values.

One class, :class:`Constants`, answers the two questions passes ask:

- **Is it constant?** (:meth:`Constants.is_const`, :meth:`~Constants.gates`,
  :meth:`~Constants.region`) — the node's value is fixed by the GraphDef alone, on every run:
  its op may be evaluated ahead of time (:func:`may_evaluate`) and every one of its *data*
  inputs is constant. Control inputs do not change a value, but they can gate it (a Const inside
  a v1 ``tf.cond`` branch carries ``^cond/switch_t`` and is dead when the branch is not taken),
  so for every constant node the set of non-constant nodes that gate it through control edges is
  kept; a rewrite that replaces a constant keeps those as control inputs. This is what folding
  needs.
- **What is its value when it runs?** (:meth:`Constants.value`, :meth:`~Constants.scalar`) —
  also follows the live output of a ``Switch`` whose predicate is itself known, the way
  TensorFlow's executor would. This is what deciding a cond or a dropout rate needs.

Values are computed with :meth:`Constants.evaluate`: Consts (and identity chains over them) are
decoded directly, the rest in one TensorFlow session call for many tensors.

:func:`may_evaluate` is the single place that decides whether an op may be run ahead of time.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np

from .deferred import is_deferred, resolved
from .graph import (
    INPUT_OPS,
    Graph,
    GraphDef,
    GraphError,
    NodeDef,
    const_value,
    make_const,
    node_of,
    parse_input,
    shape_size,
)
from .ops import (
    CONTROL_FLOW_OPS,
    FUNCTION_CALL_OPS,
    LOOP_OPS,
    MERGE_OPS,
    PASS_THROUGH_OPS,
    SWITCH_OPS,
    const_source,
    is_random,
    op_def,
    pure_op_refusal,
)

FLOAT_TYPES = (np.float16, np.float32, np.float64)


def may_evaluate(op: str, function_names: Iterable[str] = frozenset()) -> str | None:
    """Why ``op`` may never be evaluated ahead of time, or None when it may.

    Every constant evaluation (folding, deciding conds, dropout rates) asks here first.
    """
    if op in INPUT_OPS:
        return f"{op} is a graph input"
    if op in CONTROL_FLOW_OPS:
        return f"{op} is control flow"
    if op in FUNCTION_CALL_OPS or op in function_names:
        return f"{op} calls a function"
    if is_random(op):
        return f"{op} is random"
    d = op_def(op)
    if d is None:
        return f"{op} is not a registered TensorFlow op"
    if d.is_stateful:
        return f"{op} is stateful"
    if pure_op_refusal(op):
        return pure_op_refusal(op)
    if not d.output_arg and op != "NoOp":
        # A NoOp is the exception: it computes nothing, so one that waits only on constants
        # is itself "constant" (done as soon as the graph starts) and waiting on it is moot.
        return f"{op} has no outputs"
    return None


class Constants:
    """What is constant in ``graph``, and the values of constant tensors.

    ``analyse=True`` sorts the graph and classifies every node at once (raises
    :class:`GraphError` on a cycle); with False that happens only when a question needs it.
    ``max_elements`` bounds the tensors :meth:`value` computes.
    """

    def __init__(self, graph: Graph, analyse: bool = True, max_elements: int = 1 << 16):
        self.graph = graph
        self.max_elements = max_elements
        self._funcs = frozenset(graph.function_names())
        self._const: dict[str, bool] | None = None
        self._gates: dict[str, frozenset] = {}
        self._memo: dict[tuple[str, int], np.ndarray | None] = {}
        self._active: set[tuple[str, int]] = set()
        self._maybe: set[str] | None = None
        if analyse:
            self.analyse()

    # ------------------------------------------------------------ is it constant?
    def analyse(self) -> dict[str, bool]:
        if self._const is not None:
            return self._const
        graph = self.graph
        const: dict[str, bool] = {}
        empty: frozenset = frozenset()
        for name in graph.topological_order():
            node = graph.nodes[name]
            refs = [parse_input(t) for t in node.input]
            ok = may_evaluate(node.op, self._funcs) is None and all(
                const.get(r.node, False) for r in refs if not r.control)
            const[name] = ok
            if not ok:
                continue
            gates = empty
            for r in refs:
                if r.node not in const:
                    continue
                if const[r.node]:
                    g = self._gates[r.node]
                elif r.control:
                    g = frozenset((r.node,))
                else:
                    g = empty
                if g:
                    gates = gates | g
            self._gates[name] = gates
        self._const = const
        return const

    def is_const(self, name: str) -> bool:
        return self.analyse().get(node_of(name), False)

    def gates(self, names: Iterable[str]) -> list[str]:
        """Non-constant nodes that gate any of the given constant nodes, in graph order."""
        self.analyse()
        out: set[str] = set()
        for n in names:
            out |= self._gates.get(node_of(n), frozenset())
        return sorted(out, key=self.graph.order.get)

    def region(self, tensors: Iterable[str]) -> set[str]:
        """The constant nodes the given constant tensors are computed from (data edges)."""
        const = self.analyse()
        seen: set[str] = set()
        todo = [node_of(t) for t in tensors]
        while todo:
            n = todo.pop()
            if n in seen or not const.get(n, False):
                continue
            seen.add(n)
            for t in self.graph.nodes[n].input:
                if not t.startswith("^"):
                    todo.append(parse_input(t).node)
        return seen

    def const_root(self, tensor: str) -> NodeDef | None:
        """The Const a tensor is read from through identity ops only, else None."""
        return const_source(self.graph, tensor)[0]

    # ------------------------------------------------------------ values
    def evaluate(self, tensors: Iterable[str], max_bytes: dict[str, int] | None = None,
                 exact: bool = True) -> dict[str, object]:
        """Compute constant tensors: ``{tensor: ndarray}``, or an Exception for those that
        failed.

        Consts and identity chains over a Const are decoded directly; the rest are computed by
        importing the union of their constant regions into one ``tf.Graph`` and fetching them
        all in one session call (if that call fails, each tensor is retried alone so one bad op
        only spoils its own results). ``max_bytes`` gives a per-tensor limit checked on the
        static shape before fetching (:class:`SizeLimit` in the results).

        ``exact=False`` is for arithmetic that is done in float64 anyway (folding a batch norm):
        a tensor made of elementwise arithmetic and reshapes of Consts (:data:`NUMPY_OPS`) is
        computed in numpy, in float64, with no TensorFlow session; only the rest goes to
        TensorFlow. ``exact=True`` keeps TensorFlow's own kernels, bit for bit.
        """
        results: dict[str, object] = {}
        todo: list[str] = []
        memo: dict[str, np.ndarray | None] = {}
        for t in dict.fromkeys(tensors):
            root = self.const_root(t)
            if root is not None:
                try:
                    results[t] = const_value(root)
                except Exception as e:  # noqa: BLE001 - a corrupt tensor is reported, not raised
                    results[t] = e
            elif not self.is_const(t):
                results[t] = GraphError(f"{t} is not constant")
            elif not exact and (v := self._numpy_value(t, memo)) is not None:
                results[t] = v
            else:
                todo.append(t)
        if todo:
            results.update(_run_region(self.graph, self.region(todo), todo, max_bytes))
        return results

    def _numpy_value(self, tensor: str, memo: dict, depth: int = 0) -> np.ndarray | None:
        """The value of a constant tensor computed in numpy (float64 for floats), or None when
        an op on the way is not one of :data:`NUMPY_OPS`."""
        ref = parse_input(tensor)
        key = f"{ref.node}:{max(ref.port, 0)}"
        if key in memo:
            return memo[key]
        memo[key] = None  # a cycle or a failure below: not computable here
        node = self.graph.nodes.get(ref.node)
        if node is None or ref.port > 0 or depth > 200:
            return None
        try:
            if node.op == "Const":
                v = np.asarray(const_value(node))
                if v.dtype.kind == "f":
                    v = v.astype(np.float64)
            else:
                fn = NUMPY_OPS.get(node.op)
                data = [t for t in node.input if not t.startswith("^")]
                if fn is None:
                    return None
                args = [self._numpy_value(t, memo, depth + 1) for t in data]
                if any(a is None for a in args):
                    return None
                with np.errstate(all="ignore"):
                    v = np.asarray(fn(*args))
        except Exception:  # noqa: BLE001 - not computable here: TensorFlow will try
            return None
        memo[key] = v
        return v

    def value(self, tensor: str) -> np.ndarray | None:
        """The value ``tensor`` has whenever it is computed, or None when that is not known
        (it depends on an input, a random or stateful op, a Merge, a loop, or is too big)."""
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
        """The Python value of a one-element constant tensor, else None."""
        v = self.value(tensor)
        if v is None or np.size(v) != 1:
            return None
        return np.asarray(v).reshape(()).item()

    def _maybe_constant(self) -> set[str]:
        """Nodes whose data inputs all lead back to Consts (one sweep in topological order),
        so :meth:`value` never recurses down a long non-constant chain."""
        if self._maybe is None:
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
                if not (_structural(node.op) or may_evaluate(node.op, self._funcs) is None):
                    continue
                data = [parse_input(t).node for t in node.input if not t.startswith("^")]
                if data and all(d in maybe for d in data):
                    maybe.add(name)
            self._maybe = maybe
        return self._maybe

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
        if may_evaluate(node.op, self._funcs) is not None or not data:
            return None
        values = []
        for t in data:
            v = self.value(t)
            if v is None or np.size(v) > self.max_elements:
                return None
            values.append(v)
        return _run_node(node, values, port)


#: Ops :meth:`Constants.evaluate` computes in numpy when asked for float64 arithmetic: the
#: elementwise arithmetic and reshapes batch norms are written with.
NUMPY_OPS = {
    **{op: (lambda x: x) for op in PASS_THROUGH_OPS},
    "Add": np.add, "AddV2": np.add, "Sub": np.subtract, "Mul": np.multiply,
    "RealDiv": np.divide, "Maximum": np.maximum, "Minimum": np.minimum,
    "Neg": np.negative, "Sqrt": np.sqrt, "Rsqrt": lambda x: 1.0 / np.sqrt(x),
    "Reciprocal": lambda x: 1.0 / x, "Inv": lambda x: 1.0 / x, "Square": np.square,
    "Reshape": lambda x, shape: np.reshape(x, [int(d) for d in np.ravel(shape)]),
    "ExpandDims": lambda x, axis: np.expand_dims(x, int(np.ravel(axis)[0])),
}


def _structural(op: str) -> bool:
    """Ops :meth:`Constants.value` follows without running them."""
    return op in PASS_THROUGH_OPS or op in SWITCH_OPS or op == "IdentityN"


def _run_node(node: NodeDef, values: list, port: int):
    """Run one node on constant inputs (in a side graph, see :func:`_run_region`)."""
    sub = GraphDef()
    names = []
    for i, v in enumerate(values):
        c = make_const(f"const_eval_input_{i}", np.asarray(v))
        sub.node.append(c)
        names.append(c.name)
    n = sub.node.add()
    n.CopyFrom(node)
    n.name = "const_eval_node"
    n.device = ""
    del n.input[:]
    n.input.extend(names)
    out = _run_graph(sub, [f"const_eval_node:{port}"])[f"const_eval_node:{port}"]
    if isinstance(out, BaseException):
        raise out
    return out


def _run_region(graph: Graph, region: set[str], todo: list[str],
                max_bytes: dict[str, int] | None) -> dict[str, object]:
    """Import the ``region`` of ``graph`` into a side graph and fetch ``todo`` from it."""
    sub = GraphDef()
    sub.versions.CopyFrom(graph.graph_def.versions)
    for node in graph.graph_def.node:
        if node.name in region:
            copy_for_side_graph(sub, node)
    return _run_graph(sub, todo, max_bytes)


def _run_graph(sub: GraphDef, todo: list[str],
               max_bytes: dict[str, int] | None = None) -> dict[str, object]:
    """Fetch ``todo`` from the side graph ``sub`` with TensorFlow's kernels, in one session call
    through TensorFlow's C API (:func:`.tfc.run_graph`: no TensorFlow Python runtime)."""
    from .tfc import run_graph
    return run_graph(sub, todo, max_bytes, size_limit=SizeLimit,
                     not_holdable=lambda t, dtype: GraphError(
                         f"{t} has dtype {dtype}, which a Const cannot hold"))


class SizeLimit(Exception):
    """A constant would be larger than the limit (raised into the results, not thrown)."""

    def __init__(self, nbytes: int, shape):
        self.nbytes = nbytes
        self.shape = shape
        super().__init__(f"{nbytes} bytes")


def tensor_nbytes(node: NodeDef) -> int:
    """Bytes a Const's tensor holds, from its shape and dtype (no decoding)."""
    t = node.attr["value"].tensor
    if t.tensor_content:
        return len(t.tensor_content)
    n = 1
    for d in t.tensor_shape.dim:
        n *= max(d.size, 0)
    from .tensors import itemsize
    size = itemsize(t.dtype)
    if size is None:
        try:
            from .tfc import modules
            size = modules()["dtypes"].as_dtype(t.dtype).size
        except Exception:  # noqa: BLE001
            size = 4
    return n * size


_NOISE = ("Graph execution error", "Detected at node", "File ", "Node:", "[[",
          "Original stack trace")


def error_text(e: BaseException) -> str:
    """The line of a TensorFlow error that says what went wrong (not where it was built)."""
    msg = getattr(e, "message", None) or str(e)
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_NOISE)]
    text = (useful or lines or [type(e).__name__])[0]
    return text[:300]


def copy_for_side_graph(sub: GraphDef, node: NodeDef) -> NodeDef:
    """Add a copy of ``node`` to ``sub``, a side graph built to compute values or shapes:
    without control inputs (values do not depend on ordering), device or ``_`` attributes
    (colocation and devices name nodes the side graph does not hold)."""
    c = sub.node.add()
    if is_deferred(node):  # a weight computed when written
        node = resolved(node)
    c.CopyFrom(node)
    keep = [i for i in c.input if not i.startswith("^")]
    del c.input[:]
    c.input.extend(keep)
    c.device = ""
    for attr in [k for k in c.attr if k.startswith("_")]:
        del c.attr[attr]
    return c


def non_constant_sources(graph: Graph, tensor: str, limit: int = 3) -> list[str]:
    """What keeps a tensor from being constant: the placeholders, Merges, Switches, loop ops and
    stateful ops upstream of it (as ``name (Op)``), nearest first."""
    found: list[str] = []
    seen: set[str] = set()
    todo = deque([parse_input(tensor).node])
    while todo and len(found) < limit:
        n = todo.popleft()
        if n in seen or n not in graph.nodes:
            continue
        seen.add(n)
        node = graph.nodes[n]
        d = op_def(node.op) if node.op != "Const" else None
        if (node.op in INPUT_OPS or node.op in MERGE_OPS or node.op in SWITCH_OPS
                or node.op in LOOP_OPS or (d is not None and d.is_stateful)):
            found.append(f"{n} ({node.op})")
            continue
        todo.extend(parse_input(t).node for t in node.input if not t.startswith("^"))
    return found
