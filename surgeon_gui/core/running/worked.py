"""Worked numbers: what a pass computes at one match, with the match's real values (Qt-free).

A learner clicks a match in the preview (or a step of a lesson) and sees the arithmetic the pass
does there, from the nodes of that match:

- ``fold_batch_norm``: per channel γ, β, mean, var, ε, the bias b before the batch norm,
  s = γ/√(var+ε), the new bias (b − mean)·s + β, the old and new weights' statistics, and a check
  on a sample input: the folded graph's output at the last node of the chain against the
  original's (``conv_new(x)[c]`` against ``BN(conv(x))[c]``), channel by channel;
- ``remove_switch_merge``: each Switch's predicate value and the port it takes, which Switch port
  each Merge input reads (traced through the branch), and which nodes live and which die;
- ``remove_dropout``: the keep probability, the form, and why dropout is the identity at
  inference;
- ``fold_constants``: the value computed;
- ``remove_identity``: where the Identity's readers and control dependencies go.

Every other pass gets the generic part every match has: what was removed, added and changed,
each changed node's differences (rewired inputs, attributes, weight statistics).

The numbers come from running the pass on just that match (``select={key}``) and reading the
result, plus the pass's own helpers for the per-pass tables, so they are what the pass does, not
a re-implementation of it. Nothing here imports Qt: the GUI, the lessons and the tutorial
exporter all show the same :class:`WorkedNumbers`.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

from ..history.delta import GraphDelta
from ..history.diff import GraphDiff
from ..model.graph import Graph, GraphError, const_value, node_of, parse_input
from ..passes.base import Match
from ..passes.pipeline import run_pass

#: Channels listed in the per-channel tables.
CHANNELS = 6


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]

    def to_dict(self) -> dict:
        return dict(caption=self.caption, header=self.header, rows=self.rows)


@dataclass
class Check:
    """A numeric check of the rewrite at this match on a sample input."""
    what: str
    max_abs_err: float
    tolerance: float
    table: Table | None = None

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.max_abs_err) and self.max_abs_err <= self.tolerance)

    def verdict(self) -> str:
        return (f"{'PASS' if self.passed else 'FAIL'}: max |difference| "
                f"{self.max_abs_err:.3g} (tolerance {self.tolerance:g})")


@dataclass
class WorkedNumbers:
    pass_id: str
    key: str
    title: str
    #: Markdown paragraphs, in order.
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    check: Check | None = None
    #: Switch/Merge: nodes of the branch kept and of the branch that dies (for colouring).
    live: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    #: Raw numbers for tests and scripts (name → array or scalar).
    values: dict = field(default_factory=dict)
    #: What the match changed, node by node (lines).
    changes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ rendering
    def to_markdown(self) -> str:
        out = [f"### {self.title}", ""]
        for p in self.paragraphs:
            out += [p, ""]
        for t in self.tables:
            out += _md_table(t) + [""]
        if self.check is not None:
            out += [f"**Check on a sample input.** {self.check.what}", ""]
            if self.check.table is not None:
                out += _md_table(self.check.table) + [""]
            out += [f"**{self.check.verdict()}**", ""]
        if self.changes:
            out += (["**What changed**", ""] + [f"- {_code(c)}" for c in self.changes[:40]]
                    + (["- …"] if len(self.changes) > 40 else []) + [""])
        return "\n".join(out).rstrip() + "\n"

    def to_html(self, changes: bool = True) -> str:
        """HTML for the panels and the tutorial; ``changes=False`` leaves out the node-by-node
        list (when a diff is shown beside it)."""
        out = [f"<h3>{html.escape(self.title)}</h3>"]
        for p in self.paragraphs:
            out.append(f"<p>{_inline_html(p)}</p>")
        for t in self.tables:
            out.append(_html_table(t))
        if self.check is not None:
            colour = "#2b8a3e" if self.check.passed else "#c92a2a"
            out.append(f"<p><b>Check on a sample input.</b> {_inline_html(self.check.what)}</p>")
            if self.check.table is not None:
                out.append(_html_table(self.check.table))
            out.append(f"<p style='color:{colour}'><b>{html.escape(self.check.verdict())}</b></p>")
        if self.live or self.dead:
            out.append("<p><span style='color:#2b8a3e'><b>live</b></span>: "
                       + html.escape(", ".join(self.live[:12]) + (" …" if len(self.live) > 12
                                                                   else ""))
                       + "<br><span style='color:#c92a2a'><b>dead</b></span>: "
                       + html.escape(", ".join(self.dead[:12]) + (" …" if len(self.dead) > 12
                                                                   else "")) + "</p>")
        if self.changes and changes:
            out.append("<p><b>What changed</b></p><ul>"
                       + "".join(f"<li><code>{html.escape(c)}</code></li>"
                                 for c in self.changes[:40])
                       + ("<li>…</li>" if len(self.changes) > 40 else "") + "</ul>")
        return "\n".join(out)

    def to_dict(self) -> dict:
        return dict(pass_id=self.pass_id, key=self.key, title=self.title,
                    paragraphs=self.paragraphs, tables=[t.to_dict() for t in self.tables],
                    check=None if self.check is None else dict(
                        what=self.check.what, max_abs_err=self.check.max_abs_err,
                        tolerance=self.check.tolerance, passed=self.check.passed),
                    live=self.live, dead=self.dead, changes=self.changes)


def _code(line: str) -> str:
    return line.replace("|", "\\|")


def _md_table(t: Table) -> list[str]:
    out = [f"*{t.caption}*", ""] if t.caption else []
    out.append("| " + " | ".join(t.header) + " |")
    out.append("|" + "---|" * len(t.header))
    out += ["| " + " | ".join(_code(str(c)) for c in r) + " |" for r in t.rows]
    return out


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in t.rows)
    cap = f"<caption>{html.escape(t.caption)}</caption>" if t.caption else ""
    # border/cellpadding attributes: Qt's rich text (the app's panels) ignores CSS borders
    return (f"<table class='worked' border='1' cellspacing='0' cellpadding='3'>{cap}"
            f"<tr>{head}</tr>{body}</table>")


def _inline_html(text: str) -> str:
    """Markdown's `code` and **bold** in one paragraph, as HTML (the rest escaped)."""
    import re
    s = html.escape(text)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    s = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)
    return s


def _g(x) -> str:
    return f"{float(x):.5g}"


def _stats(a: np.ndarray) -> list[str]:
    a = np.asarray(a, dtype=np.float64)
    return [f"{list(a.shape)}", _g(a.mean()), _g(a.std()), _g(a.min()), _g(a.max())]


# ---------------------------------------------------------------------- entry point
def worked_numbers(graph: Graph, pass_id: str, match: Match | str, params: dict | None = None,
                   feeds: dict | None = None, run_check: bool = True,
                   channels: int = CHANNELS) -> WorkedNumbers:
    """The worked numbers of one match of ``pass_id`` in ``graph`` (the graph before the pass).

    ``match`` is a :class:`Match` from a preview or its key. ``feeds`` are the sample inputs for
    the numeric check (seeded random ones by default); ``run_check=False`` skips running
    TensorFlow. Raises GraphError when the key is not a match of the pass on this graph.
    """
    key = match.key if isinstance(match, Match) else str(match)
    result = run_pass(graph, pass_id, params, select={key})
    found = next((m for m in result.report.matches if m.key == key), None)
    if found is None:
        raise GraphError(f"{key} is not a match of {pass_id} in this graph", nodes=[key])
    after = Graph(result.graph_def, graph.given_inputs, graph.given_outputs)
    wn = WorkedNumbers(pass_id, key, f"{pass_id} at {key}", paragraphs=[found.description])
    fn = _BY_PASS.get(pass_id)
    if fn is not None:
        fn(wn, graph, after, found, feeds if run_check else False, channels)
    delta = GraphDelta.between(graph.graph_def, result.graph_def)
    diff = GraphDiff.from_delta(delta)
    wn.changes = ([f"removed {n.name} ({n.op})" for n in diff.removed]
                  + [f"added {n.name} ({n.op})" for n in diff.added]
                  + [f"{c.name}: {line}" for c in diff.changed for line in c.lines()])
    return wn


# ---------------------------------------------------------------------- fold_batch_norm
def _fold_batch_norm(wn: WorkedNumbers, graph: Graph, after: Graph, m: Match, feeds,
                     channels: int) -> None:
    from ..model.consteval import Constants
    from ..model.editor import protected_names
    from ..passes import fold_batch_norm as fbn
    cn = Constants(graph)
    lin = graph.nodes[m.key]
    cand, problem = fbn._walk(graph, cn, lin, protected_names(graph))
    if cand is None or problem:
        wn.paragraphs.append(f"(no chain to show: {problem or 'nothing after the op'})")
        return
    wanted = [cand.weights] + [t for s in cand.steps for t in s.operands]
    values = cn.evaluate(wanted)
    w, scale, offset = fbn._compose(graph, lin, cand, values)
    ch = scale.size
    bias = np.zeros(ch)
    bn = None
    for s in cand.steps:
        if s.kind == "bias" and bn is None:
            bias = bias + np.asarray(values[s.operands[0]], dtype=np.float64).reshape(-1)
        if s.kind in ("fused", "global") and bn is None:
            bn = s
    w_new = w * fbn._weight_scale_shape(lin, scale, w)
    wn.values.update(scale=scale, bias=offset, weights_old=w, weights_new=w_new)
    n = min(channels, ch)
    if bn is not None:
        node = graph.nodes[bn.node]
        vals = [np.asarray(values[t], dtype=np.float64).reshape(-1) for t in bn.operands]
        if bn.kind == "fused":
            gamma, beta, mean, var = vals
            eps = node.attr["epsilon"].f
        else:
            mean, var, beta, gamma = vals
            eps = node.attr["variance_epsilon"].f
            if not node.attr["scale_after_normalization"].b:
                gamma = np.ones_like(mean)
        s = gamma / np.sqrt(var + eps)
        wn.values.update(gamma=gamma, beta=beta, mean=mean, var=var, eps=eps, s=s, b=bias)
        wn.paragraphs.append(
            f"The batch norm `{bn.node}` ({node.op}) computes `γ·(x − mean)/√(var + ε) + β` "
            f"per channel with ε = {eps:g}. With the conv's bias b before it, "
            "`BN(conv(x, W) + b) = conv(x, W·s) + (b − mean)·s + β` where `s = γ/√(var + ε)`: "
            f"the {lin.op}'s weights of output channel c are multiplied by s[c] and the chain "
            "becomes one BiasAdd.")
        rows = [[str(c), _g(bias[c]), _g(gamma[c]), _g(beta[c]), _g(mean[c]), _g(var[c]),
                 f"{eps:g}", _g(s[c]), _g(scale[c]), _g(offset[c])] for c in range(n)]
        wn.tables.append(Table(f"per channel (first {n} of {ch})",
                               ["c", "b", "γ", "β", "mean", "var", "ε", "s = γ/√(var+ε)",
                                "weight scale", "new bias"], rows))
    else:
        wn.paragraphs.append(
            "The chain is a decomposed batch norm (Mul/Add/Sub/RealDiv by per-channel "
            "constants): composed, it is `y = conv(x, W)·s + o`, so the weights of output "
            "channel c are multiplied by s[c] and o becomes the bias.")
        rows = [[str(c), _g(scale[c]), _g(offset[c])] for c in range(n)]
        wn.tables.append(Table(f"per channel (first {n} of {ch})",
                               ["c", "weight scale s", "new bias"], rows))
    per_c_old = _per_channel_absmax(lin, w)
    per_c_new = _per_channel_absmax(lin, w_new)
    wn.tables.append(Table("weights", ["", "shape", "mean", "std", "min", "max"],
                           [["old W"] + _stats(w), ["new W·s"] + _stats(w_new)]))
    wn.tables.append(Table(f"max |W| of output channel c (first {n})",
                           ["c", "old", "new", "ratio = |s|"],
                           [[str(c), _g(per_c_old[c]), _g(per_c_new[c]),
                             _g(per_c_new[c] / per_c_old[c]) if per_c_old[c] else "–"]
                            for c in range(n)]))
    if feeds is False:
        return
    last = cand.steps[-1].node
    try:
        before, after_v, used = _run_both(graph, after, last, feeds)
    except Exception as e:  # noqa: BLE001 - the numbers above stand; say why there is no check
        wn.paragraphs.append(f"(no check on a sample input: {_short(e)})")
        return
    axis = cand.axis
    bb = np.moveaxis(np.asarray(before, dtype=np.float64), axis, -1).reshape(-1, ch)
    aa = np.moveaxis(np.asarray(after_v, dtype=np.float64), axis, -1).reshape(-1, ch)
    err = np.abs(aa - bb)
    wn.values.update(check_before=before, check_after=after_v)
    rows = [[str(c), _g(bb[0, c]), _g(aa[0, c]), _g(err[:, c].max())] for c in range(n)]
    tol = 1e-4 * max(1.0, float(np.abs(bb).max()))
    wn.check = Check(
        f"`{last}` on {used}: the original computes `BN(conv(x))[c]`, the folded graph "
        f"`conv_new(x)[c]` (conv with W·s, then the new bias); first position and the largest "
        f"difference over all {bb.shape[0]} positions of each channel.",
        float(err.max()) if err.size else 0.0, tol,
        Table("", ["c", "BN(conv(x))[c]", "conv_new(x)[c]", "max |Δ| over the channel"], rows))


def _per_channel_absmax(lin, w: np.ndarray) -> np.ndarray:
    a = np.abs(np.asarray(w, dtype=np.float64))
    if lin.op == "MatMul":
        return a.max(axis=1) if lin.attr["transpose_b"].b else a.max(axis=0)
    if lin.op == "DepthwiseConv2dNative":
        return a.max(axis=(0, 1)).reshape(-1)
    return a.max(axis=(0, 1, 2))


def _run_both(before: Graph, after: Graph, tensor: str, feeds):
    """The value of ``tensor`` in both graphs on the same sample feeds."""
    from .runner import make_feeds, run_graph
    if feeds is None:
        feeds = make_feeds(before, seed=0)
    used = ", ".join(f"{k} {list(np.shape(v))}" for k, v in feeds.items()) or "no inputs"
    used = f"a seeded random input ({used})"
    a = run_graph(before.graph_def, feeds, [tensor])[0]
    b = run_graph(after.graph_def, {k: v for k, v in feeds.items() if k in after},
                  [tensor])[0]
    return a, b, used


def _short(e: Exception) -> str:
    text = getattr(e, "problem", None) or str(e) or type(e).__name__
    return text.strip().splitlines()[0][:200]


# ---------------------------------------------------------------------- remove_switch_merge
def _switch_merge(wn: WorkedNumbers, graph: Graph, after: Graph, m: Match, feeds,
                  channels: int) -> None:
    from ..model.consteval import Constants
    from ..model.ops import MERGE_OPS, SWITCH_OPS, trace_source
    from ..passes import remove_switch_merge as rsm
    ev = Constants(graph, analyse=False)
    switches = [n for n in m.nodes if graph.nodes[n].op in SWITCH_OPS]
    merges = [n for n in m.nodes if graph.nodes[n].op in MERGE_OPS]
    decided = {}
    rows = []
    for s in switches:
        data = [t for t in graph.nodes[s].input if not t.startswith("^")]
        pred = trace_source(graph, data[1])
        value = ev.scalar(data[1])
        if value is None:
            continue
        decided[s] = 1 if bool(value) else 0
        rows.append([s, data[0], node_of(pred), str(bool(value)),
                     f"{decided[s]} ({'true' if decided[s] else 'false'})",
                     f"{1 - decided[s]} ({'true' if not decided[s] else 'false'})"])
    an = rsm._Analysis(graph, decided)
    wn.tables.append(Table("Switches: the predicate decides which output port carries the data",
                           ["Switch", "data in", "predicate", "value", "live port",
                            "dead port"], rows[:20]))
    mrows = []
    for mg in merges:
        data = [t for t in graph.nodes[mg].input if not t.startswith("^")]
        for i, t in enumerate(data):
            src = _switch_port(graph, t, set(switches))
            state = "dead" if an.input_dead(t) else "live"
            mrows.append([mg, str(i), t, src or "(no Switch: a constant branch)", state])
    wn.tables.append(Table("Merge inputs: which Switch port each one reads",
                           ["Merge", "input", "tensor", "reads Switch port", "state"], mrows))
    values = {s: v for s, v in decided.items()}
    wn.values.update(taken=values)
    dead = sorted(an.dead & set(m.nodes), key=graph.order.get)
    # The live branch: what the kept Merge inputs compute inside the cond.
    members = set(switches) | set(merges)
    live = set()
    for mg in merges:
        for i, t in an.live_inputs(mg):
            stack = [node_of(t)]
            while stack:
                n = stack.pop()
                if n in live or n in members or n not in graph.nodes:
                    continue
                if not _inside(graph, n, switches):
                    continue
                live.add(n)
                stack += [node_of(x) for x in graph.nodes[n].input]
    wn.live = sorted(live, key=graph.order.get)
    wn.dead = dead
    preds = sorted({r[2] + " = " + r[3] for r in rows})
    wn.paragraphs.append(
        f"Predicate {', '.join(preds) or '?'}: a Switch sends its data to output 0 when the "
        "predicate is false and to output 1 when it is true; the other port yields a *dead* "
        "tensor, and every node reading a dead tensor is dead too, except a Merge, which "
        f"forwards its one live input. So the kept branch is the one whose Switch port is live: "
        f"{len(wn.live)} node(s) live, {len(dead)} dead.")


def _switch_port(graph: Graph, tensor: str, switches: set[str], limit: int = 2000) -> str:
    """The Switch outputs (``name:port``) that ``tensor`` depends on, found upstream."""
    seen = set()
    found: list[str] = []
    stack = [tensor]
    while stack and len(seen) < limit:
        t = stack.pop()
        ref = parse_input(t)
        if ref.node in switches:
            port = f"{ref.node}:{max(ref.port, 0)}" + (" (control)" if ref.control else "")
            if port not in found:
                found.append(port)
            continue
        if ref.node in seen or ref.node not in graph.nodes:
            continue
        seen.add(ref.node)
        stack += list(graph.nodes[ref.node].input)
    found.sort()
    return ", ".join(found[:3]) + (f" (+{len(found) - 3} more)" if len(found) > 3 else "")


def _inside(graph: Graph, name: str, switches: list[str]) -> bool:
    """Is ``name`` downstream of one of the cond's Switches (inside a branch)?"""
    ups = graph.upstream([name])
    return any(s in ups for s in switches)


# ---------------------------------------------------------------------- remove_dropout
def _dropout(wn: WorkedNumbers, graph: Graph, after: Graph, m: Match, feeds,
             channels: int) -> None:
    from ..model.consteval import Constants
    from ..model.ops import UNIFORM_RANDOM_OPS
    from ..passes import remove_dropout as rd
    rnd = next((n for n in m.nodes if graph.nodes[n].op in UNIFORM_RANDOM_OPS), None)
    if rnd is None:
        return
    info = rd._Matcher(graph, Constants(graph, analyse=False)).match(rnd)
    rate = float(info["rate"])
    keep = 1.0 - rate
    wn.values.update(rate=rate, keep_prob=keep, x=info["x"])
    wn.tables.append(Table("dropout", ["", "value"], [
        ["form", info["form"]], ["random op", rnd], ["input x", info["x"]],
        ["rate r", _g(rate)], ["keep probability 1 − r", _g(keep)],
        ["scale", info["scale"]]]))
    wn.paragraphs.append(
        "In training each element is kept with probability 1 − r and scaled by 1/(1 − r), so "
        "`E[y] = (1 − r)·x/(1 − r) = x`: on average dropout changes nothing, and at inference "
        "it is the identity. "
        + ("Here the keep probability is 1: the mask keeps everything and the scale is 1, so "
           "the subgraph already computes x exactly and removing it only removes a random op."
           if rate == 0 else
           f"Here the keep probability is {keep:g}: the graph as given still drops at random "
           "at inference (a training flag was not set), so removing dropout replaces a random "
           "output by its expectation x."))


# ---------------------------------------------------------------------- fold_constants
def _fold_constants(wn: WorkedNumbers, graph: Graph, after: Graph, m: Match, feeds,
                    channels: int) -> None:
    node = after.nodes.get(m.key)
    if node is None or node.op != "Const":
        return
    try:
        value = const_value(node)
    except Exception as e:  # noqa: BLE001
        wn.paragraphs.append(f"(cannot decode the value: {_short(e)})")
        return
    v = np.asarray(value)
    wn.values["value"] = v
    flat = v.reshape(-1)
    shown = ", ".join(_g(x) if v.dtype.kind in "fiu" else str(x) for x in flat[:8])
    rows = [["dtype", str(v.dtype)], ["shape", str(list(v.shape))],
            ["first values", shown + (" …" if flat.size > 8 else "")]]
    if v.dtype.kind in "fiu" and flat.size:
        rows += [["mean", _g(flat.mean())], ["min", _g(flat.min())], ["max", _g(flat.max())]]
    wn.tables.append(Table(f"the computed value of {m.key}", ["", "value"], rows))
    wn.paragraphs.append(
        f"Every input of `{m.key}` is constant, so its value is the same on every run: it is "
        "computed once now and stored as a Const, and the nodes only it needed go.")


# ---------------------------------------------------------------------- remove_identity
def _identity(wn: WorkedNumbers, graph: Graph, after: Graph, m: Match, feeds,
              channels: int) -> None:
    node = graph.nodes.get(m.key)
    if node is None:
        return
    data = [t for t in node.input if not t.startswith("^")]
    controls = [t[1:] for t in node.input if t.startswith("^")]
    rows = []
    for reader, _, ref in graph.consumers(m.key):
        new = after.nodes.get(reader)
        if new is None:
            continue
        old_in = list(graph.nodes[reader].input)
        new_in = list(new.input)
        gone = [t for t in old_in if t not in new_in]
        came = [t for t in new_in if t not in old_in]
        rows.append([reader, "control (^)" if ref.control else f"data input {ref.port}",
                     ", ".join(gone) or "–", ", ".join(came) or "–"])
    wn.tables.append(Table(f"readers of {m.key}", ["reader", "read as", "no longer reads",
                                                    "now reads"], rows[:30]))
    wn.paragraphs.append(
        f"`{m.key}` only forwards {', '.join(data) or 'its input'}"
        + (f" and waits for {', '.join(controls)} (control dependencies)" if controls else "")
        + ". Its data readers read its input directly; "
        + ("its control dependencies move onto its readers, so they still wait for "
           f"{', '.join(controls)}." if controls else
           "it has no control dependencies of its own to move.")
        + " A reader that waited for it (`^`) waits for its inputs instead, except constants "
          "(always ready), which need no waiting.")


# ---------------------------------------------------------------------- sort_execution_order
def _sort(wn: WorkedNumbers, graph: Graph, after: Graph, m: Match, feeds,
          channels: int) -> None:
    old = {n.name: i for i, n in enumerate(graph.graph_def.node)}
    new = {n.name: i for i, n in enumerate(after.graph_def.node)}
    moved = [n for n in new if old.get(n) != new[n]]
    rows = []
    for n in sorted(moved, key=new.get)[:20]:
        late = [node_of(t) for t in graph.nodes[n].input
                if node_of(t) in old and old[node_of(t)] > old[n]]
        rows.append([n, str(old[n]), str(new[n]), ", ".join(late[:3]) or "–"])
    wn.tables.append(Table("nodes that moved (position in the GraphDef)",
                           ["node", "before", "after", "was listed before its input"], rows))
    wn.paragraphs.append(
        "TensorFlow runs a graph in whatever order its dependencies allow, but importers that "
        "read the GraphDef from top to bottom (OpenCV's DNN module) need every node after its "
        "inputs. The nodes keep their names and contents; only their place in the list moves.")


_BY_PASS = {
    "sort_execution_order": _sort,
    "fold_batch_norm": _fold_batch_norm,
    "remove_switch_merge": _switch_merge,
    "remove_dropout": _dropout,
    "fold_constants": _fold_constants,
    "remove_identity": _identity,
}

__all__ = ["Check", "Table", "WorkedNumbers", "worked_numbers"]
