"""Per-node drift: where do two graphs' numbers start to differ?

Every intermediate tensor that exists in both graphs under the same name, with the same dtype
and a compatible shape, is fetched in one ``session.run`` per graph on the same feeds; the error
of each node is the worst over its outputs:

- ``max_abs``: ``max |a - b|``;
- ``max_rel``: ``max_abs / max |a|`` (relative to the reference's largest magnitude, so a
  tensor of near-zero values does not make every tiny difference look huge).

Constants are not fetched (they are the weights, not activations): a Const whose value differs
from its counterpart is listed in :attr:`Drift.edited_consts` (by comparing the stored tensors,
or, when a pass folded a computed tensor into a Const of the same name, the reference's value of
that tensor), which is how a manual weight edit shows up as the *origin* of the drift rather than
as a drifting node.

Tensors that cannot be fetched from outside (inside a v1 ``cond`` branch or a ``while`` frame,
non-numeric dtypes such as string, resource or variant) are skipped with a reason; if a fetch
still fails at run time the fetch list is split to find and drop the offenders. ``max_tensors``
and ``max_bytes`` cap the work on big graphs (earliest tensors in topological order first, since
the start of the drift is what matters).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..model.graph import Graph, GraphDef, GraphError, const_value, node_of
from ..model.ops import (
    FRAME_ENTER_OPS,
    FRAME_EXIT_OPS,
    MERGE_OPS,
    RANDOM_OPS,
    SWITCH_OPS,
)

#: Levels for colouring, from exact to wrong (relative error thresholds).
LEVELS = [
    ("exact", 0.0),
    ("< 1e-6", 1e-6),
    ("< 1e-4", 1e-4),
    ("< 1e-2", 1e-2),
    ("< 1", 1.0),
    ("wrong (>= 1)", float("inf")),
]

_SKIP_OPS = frozenset({"Const", "NoOp", "Assert", "Placeholder", "PlaceholderV2",
                       "VarHandleOp", "VariableV2", "Variable", "ReadVariableOp"})


@dataclass
class NodeDrift:
    node: str
    tensor: str          # the output with the worst error
    shape: list[int]
    max_abs: float
    max_rel: float

    @property
    def level(self) -> int:
        return drift_level(self.max_rel, self.max_abs)


@dataclass
class Drift:
    """Per-node errors of graph ``b`` (the one shown) against reference graph ``a``."""
    errors: dict[str, NodeDrift] = field(default_factory=dict)
    #: Nodes of ``b`` with no node of the same name in ``a``.
    no_counterpart: list[str] = field(default_factory=list)
    #: Nodes of ``a`` that ``b`` no longer has.
    removed: list[str] = field(default_factory=list)
    #: Nodes of ``b`` present in ``a`` but not compared, with the reason.
    skipped: dict[str, str] = field(default_factory=dict)
    #: Const nodes present in both whose values differ.
    edited_consts: list[str] = field(default_factory=list)
    #: Nodes (and weights) expected to differ, with why — measured but never counted as
    #: drifting: a convolution whose weights a batch-norm fold rescaled (one factor per output
    #: channel, checked) equals BN(original conv) only at the node that took the batch norm's
    #: place, which is compared as usual.
    expected: dict[str, str] = field(default_factory=dict)
    #: Nodes of both graphs whose data inputs come from other nodes in ``b`` (a bypass, a manual
    #: rewiring), fold outputs aside: where a drift seen only further down is blamed.
    rewired: set[str] = field(default_factory=set)
    #: Nodes of ``b`` in topological order (for "where does it start").
    order: list[str] = field(default_factory=list)
    truncated: bool = False
    fetched_bytes: int = 0
    #: Nodes a step renamed: name in ``b`` → name in ``a``. They are compared with their old
    #: selves (every other field names them by their name in ``b``).
    renamed: dict[str, str] = field(default_factory=dict)

    def drifting(self, rtol: float = 1e-5, atol: float = 1e-6) -> list[str]:
        """Nodes whose error exceeds the tolerance, in topological order.

        Per tensor: ``max|b - a| > atol + rtol * max|a|`` (the tensor's scale, not each
        element's, so a ReLU's zeros do not make a tiny difference count)."""
        pos = {n: i for i, n in enumerate(self.order)}
        bad = [n for n, d in self.errors.items() if d.max_abs > atol + rtol * _ref_scale(d)
               and n not in self.expected]
        return sorted(bad, key=lambda n: pos.get(n, len(pos)))

    def persistent(self, graph_b: Graph, rtol: float = 1e-5, atol: float = 1e-6) -> list[str]:
        """Drifting nodes whose error reaches a graph output (a sink), in topological order.

        A pass that rewrites a region (batch norm folded into a convolution's weights) makes
        the intermediate tensors differ and the region's output agree again: those nodes drift
        but *re-converge*, and are not listed here.
        """
        bad = set(self.drifting(rtol, atol))
        live: dict[str, bool] = {}
        for n in reversed(self.order):
            if n not in graph_b.nodes:
                continue
            data_consumers = [c for c, _, ref in graph_b.consumers(n) if not ref.control]
            if not data_consumers:
                live[n] = n in bad
                continue
            live[n] = any(live.get(c, False) and (c in bad or c not in self.errors
                                                  or c in self.expected)
                          for c in data_consumers)
        return [n for n in self.order if n in bad and live.get(n, False)]

    def origins(self, graph_b: Graph, rtol: float = 1e-5, atol: float = 1e-6) -> list[str]:
        """Where the error that reaches the outputs starts: persistently drifting nodes with no
        persistently drifting node upstream (followed through data inputs, across nodes that
        were not compared, such as cond branches or skipped tensors)."""
        bad = set(self.persistent(graph_b, rtol, atol))
        reach: dict[str, bool] = {}
        out = []
        for n in self.order:
            if n not in graph_b.nodes:
                continue
            tainted = False
            for r in graph_b.producers(n, control=False):
                p = r.node
                if p in bad or ((p not in self.errors or p in self.expected)
                                and reach.get(p, False)):
                    tainted = True
                    break
            reach[n] = tainted or n in bad
            if n in bad and not tainted:
                out.append(self._blame(graph_b, n))
        return list(dict.fromkeys(out))

    def _blame(self, graph_b: Graph, n: str) -> str:
        """``n`` is the first drifting node that was compared; when a node just upstream that
        could not be compared (expected to differ, or not fetchable) was rewired, that node is
        where the change is."""
        if n in self.rewired:
            return n
        frontier, seen = [n], {n}
        for _ in range(6):
            nxt = []
            for m in frontier:
                for r in graph_b.producers(m, control=False):
                    p = r.node
                    if p in seen or (p in self.errors and p not in self.expected):
                        continue
                    seen.add(p)
                    if p in self.rewired:
                        return p
                    nxt.append(p)
            frontier = nxt
        return n

    def to_dict(self) -> dict:
        return {
            "errors": {n: {"tensor": d.tensor, "shape": d.shape, "max_abs_err": d.max_abs,
                           "max_rel_err": d.max_rel} for n, d in self.errors.items()},
            "no_counterpart": self.no_counterpart,
            "removed": self.removed,
            "skipped": self.skipped,
            "edited_consts": self.edited_consts,
            "expected": self.expected,
            "renamed": self.renamed,
            "truncated": self.truncated,
        }


def _ref_scale(d: NodeDrift) -> float:
    # max_rel = max_abs / scale  →  scale = max_abs / max_rel
    return d.max_abs / d.max_rel if d.max_rel > 0 else 0.0


def drift_level(max_rel: float, max_abs: float = 0.0) -> int:
    """Index into :data:`LEVELS` for an error."""
    if max_abs == 0.0 and max_rel == 0.0:
        return 0
    if not np.isfinite(max_rel):
        return len(LEVELS) - 1
    for i, (_, bound) in enumerate(LEVELS[1:], start=1):
        if max_rel < bound:
            return i
    return len(LEVELS) - 1


def conditional_nodes(graph: Graph) -> dict[str, str]:
    """Nodes whose outputs may be dead or live in a loop frame, with the reason.

    Inside a v1 ``cond``: reachable from a Switch without passing a Merge. Inside a ``while``:
    reachable from an Enter without passing an Exit.
    """
    reasons: dict[str, str] = {}
    for starts, stops, why in ((SWITCH_OPS, MERGE_OPS, "inside a v1 cond branch"),
                               (FRAME_ENTER_OPS, FRAME_EXIT_OPS, "inside a while loop")):
        todo = deque(n.name for n in graph.graph_def.node if n.op in starts)
        seen: set[str] = set()
        while todo:
            n = todo.popleft()
            if n in seen:
                continue
            seen.add(n)
            reasons.setdefault(n, why)
            for c, _, ref in graph.consumers(n):
                if not ref.control and graph.nodes[c].op not in stops:
                    todo.append(c)
    return reasons


def _const_differs(na, nb) -> bool:
    return (na.attr["value"].SerializeToString(deterministic=True)
            != nb.attr["value"].SerializeToString(deterministic=True))


def compute_drift(gd_a: GraphDef, gd_b: GraphDef, feeds: dict[str, np.ndarray],
                  max_tensors: int = 5000, max_bytes: int = 512 * 2**20,
                  progress: Callable[[float, str], None] | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  renames: dict[str, str] | None = None) -> Drift:
    """Per-node drift of ``gd_b`` against ``gd_a`` (see the module docstring).

    ``feeds`` are keyed by input node name (of ``gd_a``) and fed to both graphs (each graph
    gets the feeds it has placeholders for). ``renames`` (name in ``gd_b`` → name in ``gd_a``,
    as :meth:`Document.renames` gives them): a renamed node is compared with its old self, not
    counted as removed plus one with no counterpart. Raises :class:`GraphError` (a
    ``RunError``) if a graph cannot be imported or run at all.
    """
    from .runner import GraphRunner

    report = progress or (lambda f, t: None)

    def check():
        if should_stop and should_stop():
            raise InterruptedError("cancelled")

    names_a = {n.name for n in gd_a.node}
    names_b = {n.name for n in gd_b.node}
    forward = {old: new for new, old in (renames or {}).items()
               if new != old and old in names_a and new in names_b}
    if forward:  # the reference under the current names: everything below matches by name
        gd_a = rename_nodes(gd_a, forward)
        feeds = {_renamed(k, forward): v for k, v in feeds.items()}
    ga, gb = Graph(gd_a), Graph(gd_b)
    result = Drift()
    result.renamed = {new: old for old, new in forward.items()}
    try:
        result.order = gb.topological_order()
    except GraphError:
        result.order = [n.name for n in gd_b.node]
    result.no_counterpart = [n for n in result.order if n not in ga.nodes]
    result.removed = [n.name for n in gd_a.node if n.name not in gb.nodes]
    result.edited_consts = [n for n in result.order if n in ga.nodes
                            and gb.nodes[n].op == "Const" and ga.nodes[n].op == "Const"
                            and _const_differs(ga.nodes[n], gb.nodes[n])]

    result.expected = folded_convolutions(ga, gb, set(result.edited_consts))
    fold_outputs = {r.split("folding the batch norm ")[1].split(" ")[0]
                    for r in result.expected.values() if "folding the batch norm " in r}
    for name in result.order:
        if name in ga.nodes and name not in fold_outputs and gb.nodes[name].op != "Const":
            da = [node_of(i) for i in ga.nodes[name].input if not i.startswith("^")]
            db = [node_of(i) for i in gb.nodes[name].input if not i.startswith("^")]
            # reading past a removed pass-through (Identity, a cond's Merge, a folded batch
            # norm) keeps the value; reading past anything else changes it
            if any(x != y and not (x not in gb.nodes and ga.nodes[x].op in _PASS_THROUGH)
                   for x, y in zip(da, db)) or len(da) != len(db):
                result.rewired.add(name)
    result.edited_consts = [n for n in result.edited_consts if n not in result.expected]

    report(0.05, "importing graphs")
    runner_a, runner_b = GraphRunner(gd_a), GraphRunner(gd_b)
    try:
        check()
        cond_a, cond_b = conditional_nodes(ga), conditional_nodes(gb)
        batch = max((int(np.shape(v)[0]) for v in feeds.values() if np.ndim(v) > 0), default=1)
        fetch: list[str] = []
        folded: list[str] = []
        total = 0
        for name in result.order:
            if name not in ga.nodes:
                continue
            na, nb = ga.nodes[name], gb.nodes[name]
            if nb.op == "Const" and na.op not in _SKIP_OPS and name not in cond_a:
                # A computed tensor that a pass folded into a Const of the same name: compare
                # the reference's value with the stored one (is it an edited weight?).
                folded.append(f"{name}:0")
                continue
            if nb.op in _SKIP_OPS or na.op in _SKIP_OPS:
                continue
            why = cond_b.get(name) or cond_a.get(name) or (
                "random values differ on every run" if nb.op in RANDOM_OPS else None)
            if why:
                result.skipped[name] = why
                continue
            try:
                oa = runner_a.tf_graph.get_operation_by_name(name)
                ob = runner_b.tf_graph.get_operation_by_name(name)
            except (KeyError, ValueError):
                result.skipped[name] = "not in the imported graph"
                continue
            added = False
            for i in range(min(len(oa.outputs), len(ob.outputs))):
                ta, tb = oa.outputs[i], ob.outputs[i]
                if ta.dtype != tb.dtype:
                    result.skipped.setdefault(name, f"dtype differs ({ta.dtype.name} vs "
                                              f"{tb.dtype.name})")
                    continue
                dt = tb.dtype.base_dtype
                if not (dt.is_floating or dt.is_integer or dt.is_bool or dt.is_complex):
                    result.skipped.setdefault(name, f"{dt.name} is not numeric")
                    continue
                if not ta.shape.is_compatible_with(tb.shape):
                    result.skipped.setdefault(name, f"shape differs ({ta.shape} vs {tb.shape})")
                    continue
                if len(fetch) >= max_tensors:
                    result.truncated = True
                    break
                est = _estimate_bytes(tb, batch)
                if total + est > max_bytes:
                    result.truncated = True
                    break
                total += est
                fetch.append(f"{name}:{i}")
                added = True
            if result.truncated:
                break
            if not added and name not in result.skipped:
                result.skipped[name] = "no output to compare"
        check()
        feeds_a = {k: v for k, v in feeds.items() if node_of(k) in ga.nodes}
        feeds_b = {k: v for k, v in feeds.items() if node_of(k) in gb.nodes}
        report(0.2, f"running reference graph ({len(fetch)} tensors)")
        vals_a = _run_tolerant(runner_a, feeds_a, fetch + folded, result.skipped)
        changed_folds = set()
        for t in folded:
            if t in vals_a:
                a = np.asarray(vals_a.pop(t))
                b = np.asarray(const_value(gb.nodes[node_of(t)]))
                if a.shape != b.shape or a.dtype != b.dtype or tensor_error(a, b)[1] > 1e-6:
                    changed_folds.add(node_of(t))
            result.skipped.pop(node_of(t), None)
        if changed_folds:
            result.edited_consts = [n for n in result.order
                                    if (n in changed_folds or n in set(result.edited_consts))
                                    and n not in result.expected]
        check()
        fetch_b = [t for t in fetch if t in vals_a]
        report(0.55, "running current graph")
        vals_b = _run_tolerant(runner_b, feeds_b, fetch_b, result.skipped)
        check()
        report(0.85, "measuring errors")
        for t in fetch_b:
            if t not in vals_b:
                continue
            a, b = np.asarray(vals_a[t]), np.asarray(vals_b[t])
            node = node_of(t)
            if a.shape != b.shape:
                result.skipped.setdefault(node, f"shape differs at run time ({list(a.shape)} "
                                          f"vs {list(b.shape)})")
                continue
            result.fetched_bytes += a.nbytes + b.nbytes
            max_abs, max_rel = tensor_error(a, b)
            prev = result.errors.get(node)
            if prev is None or (max_rel, max_abs) > (prev.max_rel, prev.max_abs):
                result.errors[node] = NodeDrift(node, t, list(b.shape), max_abs, max_rel)
        for n in list(result.skipped):
            if n in result.errors:
                del result.skipped[n]
        report(1.0, f"{len(result.errors)} nodes compared")
    finally:
        runner_a.close()
        runner_b.close()
    return result


def _renamed(ref: str, forward: dict[str, str]) -> str:
    """``ref`` (``name``, ``name:k`` or ``^name``) with its node renamed by ``forward``."""
    hat = "^" if ref.startswith("^") else ""
    name = node_of(ref)
    return hat + forward.get(name, name) + ref[len(hat) + len(name):]


def rename_nodes(gd: GraphDef, forward: dict[str, str]) -> GraphDef:
    """A copy of ``gd`` with nodes renamed by ``forward`` (old → new, all at once), and every
    input and colocation reference to them."""
    out = type(gd)()
    out.CopyFrom(gd)
    for n in out.node:
        n.name = forward.get(n.name, n.name)
        new_inputs = [_renamed(i, forward) for i in n.input]
        del n.input[:]
        n.input.extend(new_inputs)
        if "_class" in n.attr:
            locs = [loc.decode() if isinstance(loc, bytes) else loc
                    for loc in n.attr["_class"].list.s]
            fixed = ["loc:@" + forward.get(x[5:], x[5:]) if x.startswith("loc:@") else x
                     for x in locs]
            del n.attr["_class"].list.s[:]
            n.attr["_class"].list.s.extend(x.encode() for x in fixed)
    return out


#: Ops whose removal keeps the value their readers see (identities, a cond's Switch/Merge,
#: what a fold or a dropout removal takes out).
_PASS_THROUGH = frozenset({"Identity", "IdentityN", "Snapshot", "StopGradient",
                           "CheckNumerics", "Merge", "RefMerge", "Switch", "RefSwitch",
                           "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3",
                           "PlaceholderWithDefault", "SelectV2", "Select"})
#: Ops whose weights a batch-norm fold rescales, and the ops a fold leaves after them.
_FOLD_TARGETS = frozenset({"Conv2D", "Conv3D", "DepthwiseConv2dNative", "MatMul",
                           "Conv2DBackpropInput"})
_FOLD_TAIL = frozenset({"BiasAdd", "Add", "AddV2", "Identity"})
_NORM_OPS = frozenset({"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3",
                       "BatchNormWithGlobalNormalization", "Mul", "Add", "AddV2", "Sub", "Merge"})


def folded_convolutions(ga: Graph, gb: Graph, edited: set[str]) -> dict[str, str]:
    """Convolutions (and their weights) a batch-norm fold changed on purpose: node → why.

    In ``gb`` the convolution reads different weights than in ``ga`` (an edited Const, or
    another node), and within a few BiasAdd/Add steps downstream it feeds a node that in ``ga``
    was the batch norm (same name, another op — the fold gives the BiasAdd the batch norm's
    name so readers and outputs keep theirs). There the two graphs must agree again, so that
    node is compared; the convolution in between differs by the fold's scale."""
    out: dict[str, str] = {}
    for x, nb in gb.nodes.items():
        if nb.op not in _FOLD_TARGETS or x not in ga.nodes or len(nb.input) < 2:
            continue
        na = ga.nodes[x]
        wb, wa = node_of(nb.input[1]), node_of(na.input[1]) if len(na.input) > 1 else None
        if wb == wa and wb not in edited and not (
                wb in ga.nodes and wb in gb.nodes and ga.nodes[wb].op != gb.nodes[wb].op):
            continue
        frontier, seen, found = [x], {x}, None
        for _ in range(3):
            nxt = []
            for n in frontier:
                for c, _, ref in gb.consumers(n):
                    if ref.control or c in seen:
                        continue
                    seen.add(c)
                    if c in ga.nodes and (ga.nodes[c].op in _NORM_OPS - {"Add", "AddV2"}
                                          or ga.nodes[c].op != gb.nodes[c].op):
                        found = found or c
                    elif gb.nodes[c].op in _FOLD_TAIL:
                        nxt.append(c)
            if found:
                break
            frontier = nxt
        if found and _rescaled_per_channel(_weight_value(ga, wa), _weight_value(gb, wb), nb.op):
            out[x] = f"weights rescaled by folding the batch norm {found} (compared there)"
            if wb in gb.nodes and gb.nodes[wb].op == "Const":
                out.setdefault(wb, f"weights of {x}, rescaled by folding {found}")
    return out


def _weight_value(g: Graph, name: str | None):
    """The value behind a weight input (through Identity reads), or None."""
    for _ in range(4):
        if name is None or name not in g.nodes:
            return None
        n = g.nodes[name]
        if n.op == "Const":
            try:
                return np.asarray(const_value(n))
            except Exception:  # noqa: BLE001 - an undecodable weight: no claim about it
                return None
        if n.op not in ("Identity", "ReadVariableOp", "Snapshot") or not n.input:
            return None
        name = node_of(n.input[0])
    return None


def _rescaled_per_channel(wa, wb, op: str) -> bool:
    """``wb`` is ``wa`` times one factor per output channel — what folding a batch norm does,
    and what a hand edit of a weight does not."""
    if wa is None or wb is None or wa.shape != wb.shape or wa.ndim < 2 \
            or not np.issubdtype(wa.dtype, np.floating):
        return False
    cols = wa.shape[-2] * wa.shape[-1] if op == "DepthwiseConv2dNative" else wa.shape[-1]
    a = wa.reshape(-1, cols).astype(np.float64)
    b = wb.reshape(-1, cols).astype(np.float64)
    big = np.abs(a) > 1e-6 * max(float(np.abs(a).max()), 1e-30)
    for j in range(cols):
        m = big[:, j]
        if not m.any():
            continue
        r = b[m, j] / a[m, j]
        if not np.allclose(r, r[0], rtol=1e-4, atol=0.0):
            return False
        if np.any(np.abs(b[~m, j]) > 1e-6 * max(float(np.abs(b[:, j]).max()), 1e-30)):
            return False
    return True


def tensor_error(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(max abs error, max abs error / max |a|) of two same-shaped arrays; NaN-aware."""
    if a.size == 0:
        return 0.0, 0.0
    if a.dtype == np.bool_:
        a, b = a.astype(np.int8), b.astype(np.int8)
    a64, b64 = a.astype(np.float64) if not np.iscomplexobj(a) else a, \
        b.astype(np.float64) if not np.iscomplexobj(b) else b
    nan_a, nan_b = np.isnan(a64), np.isnan(b64)
    if np.any(nan_a != nan_b):
        return float("inf"), float("inf")
    diff = np.abs(np.where(nan_a, 0, a64) - np.where(nan_b, 0, b64))
    with np.errstate(invalid="ignore"):
        max_abs = float(np.nanmax(diff)) if diff.size else 0.0
    if np.isnan(max_abs):
        max_abs = float("inf")
    scale = float(np.max(np.abs(np.where(nan_a, 0, a64))))
    if max_abs == 0.0:
        return 0.0, 0.0
    max_rel = max_abs / scale if scale > 0 else float("inf")
    return max_abs, max_rel


def _estimate_bytes(t, batch: int) -> int:
    if t.shape.rank is None:
        return 4 * batch
    n = 1
    for i, d in enumerate(t.shape.as_list()):
        n *= d if d is not None else (batch if i == 0 else 1)
    return n * max(t.dtype.size, 1)


def _run_tolerant(runner, feeds, fetch: list[str], skipped: dict[str, str],
                  max_failures: int = 64) -> dict[str, np.ndarray]:
    """Fetch all in one run; if that fails, split the list to find and drop the offenders."""
    from .runner import RunError
    out: dict[str, np.ndarray] = {}
    failures = 0
    todo = [fetch] if fetch else []
    while todo:
        chunk = todo.pop()
        try:
            vals = runner.run(feeds, chunk)
        except RunError as e:
            if len(chunk) == 1 or failures >= max_failures:
                for t in chunk:
                    skipped.setdefault(node_of(t), f"cannot be fetched: {e.problem}")
                continue
            if len(chunk) == len(fetch) and not _is_fetch_specific(e):
                raise
            failures += 1
            mid = len(chunk) // 2
            todo += [chunk[:mid], chunk[mid:]]
            continue
        out.update(zip(chunk, vals))
    return out


def _is_fetch_specific(e) -> bool:
    """Whether a run error may come from one fetched tensor (not a missing feed/broken graph)."""
    text = e.problem.lower()
    return not any(s in text for s in ("expects shape", "names no tensor", "must feed",
                                       "placeholder"))
