"""Sort by execution order: every node after the nodes it reads (a stable topological order)."""
from __future__ import annotations

from bisect import bisect_left

from ..model.graph import Graph, GraphError, copy_without_nodes
from .base import Match, Pass, PassReport, PassResult, Refusal

EXPLANATION = """\
**What it does.** Reorders the nodes of the GraphDef so that every node comes after every node
it reads (data and control inputs): a topological order. Among nodes that could go in either
order, the original order is kept (Kahn's algorithm with ties broken by original position),
so an already sorted graph is left exactly as it is and a nearly sorted one moves few nodes.

**Why.** TensorFlow itself does not care about node order, but other importers do: OpenCV's
`cv2.dnn.readNetFromTensorflow` creates layers in file order and fails on a node that reads a
layer it has not seen yet; so do some converters and hand-written loaders. The graph computes
exactly the same thing in any order.

**The report** says how many nodes had to move: the node count minus the longest run of
nodes that stayed in the same relative order. v1 while loops (a `NextIteration` feeding back
into a `Merge`) are sorted ignoring the back edge. A graph with a real cycle is refused.
"""


def moved_count(before: list[str], after: list[str]) -> int:
    """Nodes not in the longest subsequence that keeps its relative order (O(n log n))."""
    pos = {n: i for i, n in enumerate(before)}
    tails: list[int] = []
    for n in after:
        p = pos[n]
        i = bisect_left(tails, p)
        if i == len(tails):
            tails.append(p)
        else:
            tails[i] = p
    return len(after) - len(tails)


def sort_execution_order(graph: Graph, select: set[str] | None = None, *,
                         in_place: bool = False, record: bool = False) -> PassResult:
    """In place (the pipeline's working graph) the node list is permuted where it is, which
    moves no node; otherwise the result is a sorted copy."""
    report = PassReport("sort_execution_order")
    gd = graph.graph_def
    before = [n.name for n in gd.node]
    try:
        after = graph.topological_order()
    except GraphError as e:
        report.refused.append(Refusal("graph", e.problem, e.nodes[:20]))
        return PassResult(gd, report)   # unchanged: the input itself, no copy
    if after == before:
        return PassResult(gd, report)
    new_pos = {n: i for i, n in enumerate(after)}
    # The nodes that moved: those outside the longest order-preserving run.
    out_of_place = _out_of_place(before, after)
    moved = len(out_of_place)
    m = Match("sort", f"{moved} of {len(before)} node(s) moved so every node comes after its "
                      "inputs", nodes=[n for n in after if n in out_of_place])
    m.applied = select is None or "sort" in select
    report.matches.append(m)
    if not m.applied:
        return PassResult(gd, report)
    m.changed = list(m.nodes)
    report.changed = set(m.nodes)
    if in_place:
        # only positions change: each touched node's old NodeDef is the node itself
        old = {n.name: n for n in gd.node if n.name in report.changed} if record else None
        gd.node.sort(key=lambda n: new_pos[n.name])
        return PassResult(gd, report, old_nodes=old)
    out = copy_without_nodes(gd)
    nodes = sorted(gd.node, key=lambda n: new_pos[n.name])
    for n in nodes:
        out.node.add().CopyFrom(n)
    return PassResult(out, report,
                      old_nodes={n: graph.nodes[n] for n in report.changed} if record else None)


sort_execution_order.in_place = True  # takes in_place/record (Pass.run asks)


def _out_of_place(before: list[str], after: list[str]) -> set[str]:
    """The complement of one longest increasing run of original positions in the new order."""
    pos = {n: i for i, n in enumerate(before)}
    seq = [pos[n] for n in after]
    tails: list[int] = []
    tails_idx: list[int] = []
    prev = [-1] * len(seq)
    for i, p in enumerate(seq):
        j = bisect_left(tails, p)
        if j == len(tails):
            tails.append(p)
            tails_idx.append(i)
        else:
            tails[j] = p
            tails_idx[j] = i
        prev[i] = tails_idx[j - 1] if j > 0 else -1
    keep = set()
    i = tails_idx[-1] if tails_idx else -1
    while i >= 0:
        keep.add(after[i])
        i = prev[i]
    return {n for n in after if n not in keep}


PASS = Pass(
    id="sort_execution_order",
    title="Sort by execution order",
    explanation=EXPLANATION,
    fn=sort_execution_order,
    params=[],
)

__all__ = ["PASS", "sort_execution_order", "moved_count"]
