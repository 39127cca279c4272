"""Remove Switch/Merge: a v1 ``tf.cond`` whose predicate is constant keeps only the taken branch.

The pass works like TensorFlow's executor does at run time, but once, ahead of time: a
``Switch`` whose predicate is a known constant sends its input to one port and a *dead* tensor to
the other; deadness flows through every op except ``Merge``, which forwards its one live input.
Whatever is dead can never run, so it is deleted; each ``Merge`` is replaced by the input that is
live; each ``Switch`` by its data input.
"""
from __future__ import annotations

from collections import defaultdict, deque

import numpy as np

from ..model.consteval import Constants
from ..model.editor import (
    GraphEditor,
    Substitution,
    attr_dtype,
    identity_node,
    read_nodes,
)
from ..model.graph import Graph, format_input, make_const, node_of, parse_input
from ..model.ops import LOOP_OPS, MERGE_OPS, PASS_THROUGH_OPS, SWITCH_OPS, trace_source
from .base import Match, Pass, Refusal, is_selected
from .context import PassContext, pass_body

EXPLANATION = """\
**What it matches.** The v1 control flow that `tf.cond` builds in TF1 graphs (and that
`tf.compat.v1.layers.batch_normalization`, Keras 2 `Dropout` and many hand-written
`is_training` switches produce): `Switch` nodes that route each tensor entering the cond to a
*false* port (output 0) or a *true* port (output 1) according to a predicate, and a `Merge`
that forwards whichever branch actually ran.

**How it decides.** The predicate is evaluated: it must be a constant (a `Const`, possibly
behind `Identity` nodes, or a small constant subgraph such as `LogicalNot(Const)`); run
*Set training flags to inference* first to turn an `is_training` placeholder into one. The pass
then does ahead of time what TensorFlow's executor does at run time: the port a `Switch` does not
take produces a *dead* tensor, deadness propagates through every op (and through control edges)
except `Merge`, and a `Merge` outputs its one live input. So the branch that is kept is found by
tracing which `Switch` port each `Merge` input really reads — never by assuming that input 0 is
the false branch.

**What it does.** Dead nodes are deleted; each `Merge` is replaced by its live input (a reader of
its second output, `value_index`, gets a `Const` with the index); each `Switch` on the taken
side is replaced by its data input; the `Identity` *pivots* (`cond/switch_t`, `cond/switch_f`)
that branch constants depend on through `^` control edges are dropped, since after the rewrite
they only wait for a constant. Nodes that fed only the dead branch go too. Nested conds are
handled in the same sweep and reported as one match.

**Why it is safe.** With a constant predicate the dead branch can never execute and the `Merge`
can only ever forward the live input, so the rewritten graph computes exactly the same values,
bit for bit.

**What it refuses.** A cond whose predicate is not constant (still a `Placeholder`, or computed
from inputs), `Switch`/`Merge` nodes of v1 while loops (`Enter`/`Exit`/`NextIteration`/
`LoopCond`), a `Merge` that would still have more than one live input, and a cond whose dead
branch contains a named graph input or output.
"""


class _UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _data(node) -> list[str]:
    return [t for t in node.input if not t.startswith("^")]


def _controls(node) -> list[str]:
    return [t[1:] for t in node.input if t.startswith("^")]


def _is_loop_merge(graph: Graph, node) -> bool:
    return any(graph.nodes.get(node_of(t)) is not None
               and graph.nodes[node_of(t)].op in LOOP_OPS for t in _data(node))


def _reach(graph: Graph, switch: str) -> tuple[list[str], bool]:
    """Merges reachable from a Switch without passing through a Merge; and whether the walk met
    a while-loop op."""
    merges, loop = [], False
    seen = {switch}
    todo = deque([switch])
    while todo:
        n = todo.popleft()
        for c, _, _ in graph.consumers(n):
            if c in seen:
                continue
            seen.add(c)
            op = graph.nodes[c].op
            if op in LOOP_OPS:
                loop = True
            if op in MERGE_OPS:
                merges.append(c)
            else:
                todo.append(c)
    return merges, loop


class _Analysis:
    """Deadness of every node given a set of decided Switches (name → taken port)."""

    def __init__(self, graph: Graph, decided: dict[str, int]):
        self.graph = graph
        self.decided = decided
        self.dead: set[str] = set()
        self.origin: dict[str, str] = {}  # dead node → the switch whose dead port started it
        todo = deque()
        for s, port in decided.items():
            for c, _, ref in graph.consumers(s):
                if not ref.control and ref.port == 1 - port:
                    todo.append((c, s))
        while todo:
            n, why = todo.popleft()
            if n in self.dead or not self._is_dead(n):
                continue
            self.dead.add(n)
            self.origin[n] = self.origin.get(why, why)
            for c, _, _ in graph.consumers(n):
                if c not in self.dead:
                    todo.append((c, n))

    def input_dead(self, text: str) -> bool:
        ref = parse_input(text)
        if ref.node in self.dead:
            return True
        return (not ref.control and ref.node in self.decided
                and ref.port == 1 - self.decided[ref.node])

    def _is_dead(self, name: str) -> bool:
        node = self.graph.nodes[name]
        if node.op in MERGE_OPS:
            data = _data(node)
            return bool(data) and all(self.input_dead(t) for t in data)
        return any(self.input_dead(t) for t in node.input)

    def live_inputs(self, merge: str) -> list[tuple[int, str]]:
        return [(i, t) for i, t in enumerate(_data(self.graph.nodes[merge]))
                if not self.input_dead(t)]


@pass_body("remove_switch_merge")
def remove_switch_merge(ctx: PassContext) -> None:
    graph, report, select, ev = ctx.graph, ctx.report, ctx.select, ctx.constants
    keep = ctx.keep
    named = ctx.protected  # a dead branch may hold detected sinks, never named nodes
    order = graph.order

    # 1. Every Switch: decided (constant predicate), undecided, or a while-loop switch.
    decided: dict[str, int] = {}
    pred_text: dict[str, str] = {}
    loop_nodes: set[str] = set()
    switches = [n.name for n in graph.graph_def.node if n.op in SWITCH_OPS]
    for s in switches:
        data = _data(graph.nodes[s])
        if len(data) < 2:
            continue
        src = trace_source(graph, data[1])
        src_node = graph.nodes.get(node_of(src))
        if src_node is not None and src_node.op == "LoopCond":
            loop_nodes.add(s)
            continue
        value = ev.scalar(data[1])
        if value is None:
            op = src_node.op if src_node is not None else "?"
            pred_text[s] = f"{node_of(src)} ({op})"
        else:
            decided[s] = 1 if bool(value) else 0
            pred_text[s] = f"{node_of(src)} = {bool(value)}"

    # 2. Group Switches and Merges into conds: a Switch belongs with the Merges it reaches.
    uf = _UnionFind()
    for s in switches:
        uf.find(s)
        merges, loop = _reach(graph, s)
        if loop:
            loop_nodes.add(s)
        for m in merges:
            uf.union(s, m)
            if _is_loop_merge(graph, graph.nodes[m]):
                loop_nodes.add(m)
    groups: dict[str, list[str]] = defaultdict(list)
    for n in sorted(uf.parent, key=order.get):
        groups[uf.find(n)].append(n)

    conds = []  # (key, switches, merges)
    for members in sorted(groups.values(), key=lambda m: order[m[0]]):
        sw = [n for n in members if graph.nodes[n].op in SWITCH_OPS]
        mg = [n for n in members if graph.nodes[n].op in MERGE_OPS]
        key = mg[0] if mg else sw[0]
        if any(n in loop_nodes for n in members):
            report.refused.append(Refusal(
                key, f"{key} is part of a v1 while loop (Enter/Exit/NextIteration/LoopCond); "
                "loops are not unrolled or removed", members))
            continue
        undecided = [s for s in sw if s not in decided]
        if undecided:
            preds = sorted({pred_text.get(s, "?") for s in undecided})
            report.refused.append(Refusal(
                key, f"the predicate of cond {key} is not constant: it comes from "
                f"{', '.join(preds)}. Run 'Set training flags to inference' first if it is a "
                "training flag, or fold it to a constant", members))
            continue
        conds.append((key, sw, mg))

    # 3. Deadness for the conds that can be resolved; drop conds that cannot, and recompute.
    def analyse(active):
        active_decided = {s: decided[s] for _, sw, _ in active for s in sw}
        return _Analysis(graph, active_decided)

    candidates = list(conds)
    problems: dict[str, str] = {}
    for _ in range(len(candidates) + 1):
        an = analyse(candidates)
        cond_of = {}
        for key, sw, mg in candidates:
            for n in sw + mg:
                cond_of[n] = key
        new_problems = {}
        for key, sw, mg in candidates:
            for s in sw:
                if s in named:
                    # Resolving the cond deletes its Switches; a named one must stay.
                    new_problems[key] = (f"its Switch {s} is a named graph output or input "
                                         "(remove it from --outputs to resolve the cond)")
            for m in mg:
                if m not in an.dead and len(an.live_inputs(m)) != 1:
                    new_problems[key] = (f"Merge {m} would still have "
                                         f"{len(an.live_inputs(m))} live inputs")
        for d in sorted(an.dead, key=order.get):
            key = cond_of.get(an.origin.get(d))
            if key is None:
                continue
            if d in named:
                new_problems.setdefault(key, f"its dead branch contains {d}, a named graph "
                                             "input or output")
            elif graph.nodes[d].op in LOOP_OPS:
                new_problems.setdefault(key, f"its dead branch reaches the while-loop node {d}")
        if not new_problems:
            break
        problems.update(new_problems)
        candidates = [c for c in candidates if c[0] not in problems]
    for key, sw, mg in conds:
        if key in problems:
            report.refused.append(Refusal(key, f"cond {key} was not resolved: {problems[key]}",
                                          sw + mg))

    # 4. Describe each resolvable cond (matches), then apply the selected ones.
    an = analyse(candidates)
    dead_by_cond: dict[str, list[str]] = defaultdict(list)
    cond_of = {n: key for key, sw, mg in candidates for n in sw + mg}
    for d in sorted(an.dead, key=order.get):
        dead_by_cond[cond_of.get(an.origin.get(d), "")].append(d)
    matches = {}
    for key, sw, mg in candidates:
        taken = sorted({decided[s] for s in sw})
        preds = sorted({pred_text[s] for s in sw})
        branch = "/".join("true" if t else "false" for t in taken)
        dead = dead_by_cond.get(key, [])
        desc = (f"cond {key}: predicate {', '.join(preds)}; keeps the {branch} branch, removes "
                f"{len(dead)} dead node(s), {len(sw)} Switch and {len(mg)} Merge node(s)")
        m = Match(key=key, description=desc, nodes=sw + mg + dead)
        matches[key] = m
        report.matches.append(m)
        if not is_selected(key, select):
            m.applied = False

    chosen = [c for c in candidates if matches[c[0]].applied]
    if chosen and len(chosen) != len(candidates):
        # A selection must still resolve every Merge it touches on its own.
        for _ in range(len(chosen) + 1):
            an = analyse(chosen)
            bad = [key for key, _, mg in chosen
                   if any(m not in an.dead and len(an.live_inputs(m)) != 1 for m in mg)]
            if not bad:
                break
            for key in bad:
                matches[key].applied = False
                report.notes.append(f"cond {key} was not applied: it cannot be resolved "
                                    "without conds that were not selected")
            chosen = [c for c in chosen if c[0] not in bad]
    if chosen:
        _apply(graph, ctx.editor, an, chosen, ev, keep, matches)


def _apply(graph: Graph, editor: GraphEditor, an: _Analysis, chosen, ev: Constants,
           keep: set[str], matches: dict[str, Match]) -> None:
    sub = Substitution()
    remove: list[str] = []
    owner: dict[str, str] = {}  # removed/rewired node → cond key
    kept_as_identity: list[tuple[str, str, str]] = []
    pivots_cut: list[str] = []
    for key, sw, mg in chosen:
        for s in sw:
            owner[s] = key
            if s in an.dead:
                continue
            node = graph.nodes[s]
            data = _data(node)
            port = an.decided[s]
            sub.tensor(format_input(s, port), data[0])
            sub.control_to(s, [node_of(data[0])] + _controls(node))
            remove.append(s)
            # Pivots: Identity readers of the taken port whose value is the constant predicate.
            if ev.value(data[0]) is not None and np.size(ev.value(data[0])) == 1:
                for c, _, ref in graph.consumers(s, port=port, control=False):
                    cn = graph.nodes[c]
                    if (cn.op in PASS_THROUGH_OPS and c not in an.dead and c not in keep
                            and graph.consumers(c, control=True)):
                        sub.control_to(c, _controls(cn))
                        pivots_cut.append(c)
                        owner[c] = key
        for m in mg:
            owner[m] = key
            if m in an.dead:
                continue
            node = graph.nodes[m]
            (index, live), = an.live_inputs(m)
            if graph.consumers(m, port=1, control=False):
                vi = editor.fresh_name(f"{m}/value_index")
                editor.add_node(make_const(vi, np.int32(index), device=node.device))
                sub.tensor(format_input(m, 1), vi)
                matches[key].added.append(vi)
            if m in keep:
                kept_as_identity.append((m, live, node.device))
                continue
            sub.tensor(m, live, _controls(node))
            sub.control_to(m, [node_of(live)] + _controls(node))
            remove.append(m)
    dead = sorted(an.dead, key=graph.order.get)
    for d in dead:
        owner.setdefault(d, owner.get(an.origin.get(d), ""))
    for m, live, device in kept_as_identity:
        editor.replace_node(m, identity_node(m, live, attr_dtype(graph.nodes[m]), device))
    changed = sub.apply(editor, skip=set(dead) | set(remove))
    editor.remove(dead + remove)
    unused = editor.remove_unread(read_nodes(graph), keep)

    # Attribute what happened to the cond that caused it.
    for n in dead + remove:
        if owner.get(n) in matches:
            matches[owner[n]].removed.append(n)
    for m, _, _ in kept_as_identity:
        matches[owner[m]].changed.append(m)
    removed_owner = {n: owner[n] for n in dead + remove if n in owner}
    pending = list(unused)
    for _ in range(len(pending) + 1):
        rest = []
        for u in pending:
            users = [c for c, _, _ in graph.consumers(u) if c in removed_owner]
            if users:
                removed_owner[u] = removed_owner[users[0]]
                matches[removed_owner[u]].removed.append(u)
            else:
                rest.append(u)
        if len(rest) == len(pending):
            break
        pending = rest
    for c in changed:
        if c in editor:
            srcs = [removed_owner.get(parse_input(t).node) or owner.get(parse_input(t).node)
                    for t in graph.nodes[c].input] if c in graph.nodes else []
            for k in dict.fromkeys(s for s in srcs if s in matches):
                matches[k].changed.append(c)


PASS = Pass(
    id="remove_switch_merge",
    title="Remove Switch/Merge (constant tf.cond)",
    explanation=EXPLANATION,
    fn=remove_switch_merge,
    params=[],
)
