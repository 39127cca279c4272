"""Remove dropout: the random mask-and-scale subgraph of dropout becomes the identity."""
from __future__ import annotations

import numpy as np

from ..model.consteval import Constants, non_constant_sources
from ..model.editor import (
    GraphEditor,
    Substitution,
    attr_dtype,
    identity_node,
    protected_names,
    read_nodes,
)
from ..model.graph import Graph, node_of, parse_input
from ..model.ops import UNIFORM_RANDOM_OPS
from .base import Match, Param, Pass, PassReport, PassResult, Refusal, fill_report, is_selected

MUL_OPS = frozenset({"Mul"})
DIV_OPS = frozenset({"RealDiv", "Div", "TrueDiv", "DivNoNan"})
ADD_OPS = frozenset({"Add", "AddV2"})
SELECT_OPS = frozenset({"Select", "SelectV2"})

EXPLANATION = """\
**What it matches.** The subgraph dropout builds, recognised from its random source outwards:

* `tf.nn.dropout` with `rate` (TF ≥ 1.13, TF2, Keras 3 via `stateless_dropout`):
  `u = RandomUniform(Shape(x))`, `keep = GreaterEqual(u, rate)`,
  `y = SelectV2(keep, x * 1/(1-rate), 0)` — or `y = (x * scale) * Cast(keep)`, or with
  `RealDiv(x, 1 - rate)` for the scaling;
* the classic TF1 `tf.nn.dropout(x, keep_prob)`: `r = Floor(keep_prob + u)`,
  `y = RealDiv(x, keep_prob) * r`;
* Keras' `Dropout` layer in training mode (the same ops). Keras 2's `Dropout` behind
  `keras_learning_phase` is a `tf.cond`: *Set training flags* and *Remove Switch/Merge* take the
  inference branch, which has no dropout at all.

`tf.random.uniform(min=0, max=1)` written out as `Mul`/`Add` around `RandomUniform` is accepted.

**The math.** With `u ~ U[0,1)` and rate `r`, each element is kept with probability `1-r` and
scaled by `1/(1-r)`, so `E[y] = (1-r)·x/(1-r) = x`. At inference dropout is the identity, and
that is what this pass writes: readers of `y` read `x`, and the random op, mask, scale and their
helpers go.

**When is it exact?** When the rate is constant 0 (keep probability 1.0) — which is what you get
after *Set training flags* and *Remove Switch/Merge* on a graph that feeds `keep_prob` from an
`is_training` cond — the mask keeps everything and the scale is 1: the subgraph already computes
`x`, and removing it only removes a random op. When the rate is a constant above 0, the graph as
given **drops at random at inference** (usually a training flag was never set): removing dropout
changes a random output into its expectation. That is almost always what you want for inference,
but it changes the numbers compared with any one run of the original; the match says so, and
`allow_random=False` refuses those instead.

**What it refuses.** A rate that is not constant (it still depends on a placeholder or a cond:
run the passes above first), a scale that does not equal `1/(1-rate)`, a rate outside `[0, 1)`, a
uniform draw that is not on `[0, 1)`, and any intermediate tensor that something outside the
dropout also reads — anything not recognised with certainty is left alone.
"""


class _NoMatch(Exception):
    pass


def _data(node) -> list[str]:
    return [t for t in node.input if not t.startswith("^")]


class _Matcher:
    def __init__(self, graph: Graph, ev: Constants):
        self.g = graph
        self.ev = ev

    def only_reader(self, name: str) -> str:
        readers = self.g.consumer_names(name)
        if len(readers) != 1:
            raise _NoMatch(f"{name} is read by {len(readers)} nodes"
                           + (f" ({', '.join(readers[:4])})" if readers else ""))
        return readers[0]

    def scalar(self, tensor: str):
        v = self.ev.value(tensor)
        if v is None or np.size(v) != 1:
            return None
        return float(np.asarray(v).reshape(()))

    def split_const(self, node) -> tuple[str, float]:
        """(non-constant operand, constant scalar operand) of a binary op."""
        a, b = _data(node)[:2]
        vb, va = self.scalar(b), self.scalar(a)
        if vb is not None and va is None:
            return a, vb
        if va is not None and vb is None and node.op in MUL_OPS:
            return b, va
        raise _NoMatch(f"{node.name} does not scale a tensor by a constant")

    def uniform(self, rnd: str) -> tuple[str, list[str]]:
        """Follow `RandomUniform [* (max-min) + min]`; the tensor must be uniform on [0, 1)."""
        nodes = [rnd]
        cur = rnd
        nxt = self.g.nodes[self.only_reader(cur)]
        if nxt.op in MUL_OPS:
            other, k = self.split_const(nxt)
            if node_of(other) != cur or abs(k - 1.0) > 1e-7:
                raise _NoMatch(f"{nxt.name} rescales the uniform draw (by {k})")
            cur = nxt.name
            nodes.append(cur)
            nxt = self.g.nodes[self.only_reader(cur)]
            if nxt.op in ADD_OPS:
                other, m = self.split_const(nxt)
                if node_of(other) == cur:
                    if abs(m) > 1e-7:
                        raise _NoMatch(f"{nxt.name} shifts the uniform draw (by {m})")
                    cur = nxt.name
                    nodes.append(cur)
        return cur, nodes

    def scaled_input(self, name: str, rate: float) -> tuple[str, str]:
        """The ``x * 1/(1-rate)`` (or ``x / (1-rate)``) node: returns (x tensor, description)."""
        node = self.g.nodes[name]
        want = 1.0 / (1.0 - rate)
        if node.op in MUL_OPS:
            x, s = self.split_const(node)
            what = f"scale {s:g}"
            problem = f"scale {s:g} does not match 1/(1-rate) = {want:g}"
        elif node.op in DIV_OPS:
            x, k = self.split_const(node)
            if k == 0:
                raise _NoMatch(f"{name} divides by 0")
            s = 1.0 / k
            what = f"divisor {k:g}"
            problem = f"divisor {k:g} does not match 1-rate = {1.0 - rate:g}"
        else:
            raise _NoMatch(f"{name} ({node.op}) is not the x * 1/(1-rate) scaling")
        if abs(s - want) > 1e-5 * max(1.0, abs(want)):
            raise _NoMatch(f"{name}: {problem} for rate {rate:g}")
        return x, what

    def rate_of(self, tensor: str, as_keep: bool = False) -> float:
        v = self.scalar(tensor)
        if v is None:
            srcs = non_constant_sources(self.g, tensor)
            what = "keep probability" if as_keep else "rate"
            raise _NoMatch(f"the dropout {what} is not constant: it depends on "
                           f"{', '.join(srcs) or node_of(tensor)}. Run 'Set training flags to "
                           "inference' and 'Remove Switch/Merge' first")
        return 1.0 - v if as_keep else v

    def match(self, rnd: str) -> dict:
        u, nodes = self.uniform(rnd)
        user = self.g.nodes[self.only_reader(u)]
        if user.op == "GreaterEqual" and parse_input(_data(user)[0]).node == u:
            rate = self.rate_of(_data(user)[1])
            self.check_rate(rate)
            nodes.append(user.name)
            mask_user = self.g.nodes[self.only_reader(user.name)]
            if mask_user.op in SELECT_OPS:
                cond, then, other = _data(mask_user)[:3]
                zero = self.ev.value(other)
                if node_of(cond) != user.name or zero is None or np.any(zero != 0):
                    raise _NoMatch(f"{mask_user.name} does not select between x and 0")
                out = mask_user
                scaled = node_of(then)
            elif mask_user.op == "Cast":
                nodes.append(mask_user.name)
                out = self.g.nodes[self.only_reader(mask_user.name)]
                if out.op not in MUL_OPS:
                    raise _NoMatch(f"the cast mask is used by {out.name} ({out.op}), not a Mul")
                a, b = _data(out)[:2]
                scaled = node_of(b) if node_of(a) == mask_user.name else node_of(a)
            else:
                raise _NoMatch(f"the keep mask is used by {mask_user.name} ({mask_user.op})")
            form = "rate form"
        elif user.op in ADD_OPS:
            a, b = _data(user)[:2]
            keep_t = b if node_of(a) == u else a
            rate = self.rate_of(keep_t, as_keep=True)
            self.check_rate(rate)
            nodes.append(user.name)
            floor = self.g.nodes[self.only_reader(user.name)]
            if floor.op != "Floor":
                raise _NoMatch(f"{user.name} is not followed by Floor")
            nodes.append(floor.name)
            out = self.g.nodes[self.only_reader(floor.name)]
            if out.op not in MUL_OPS:
                raise _NoMatch(f"the binary mask is used by {out.name} ({out.op}), not a Mul")
            a, b = _data(out)[:2]
            scaled = node_of(b) if node_of(a) == floor.name else node_of(a)
            form = "keep_prob form"
        else:
            raise _NoMatch(f"the uniform draw is used by {user.name} ({user.op})")
        if self.g.consumer_names(scaled) != [out.name]:
            raise _NoMatch(f"the scaled input {scaled} is also read outside the dropout")
        x, what = self.scaled_input(scaled, rate)
        nodes += [scaled, out.name]
        return dict(out=out.name, x=x, rate=rate, nodes=nodes, form=form, scale=what)

    @staticmethod
    def check_rate(rate: float) -> None:
        if not 0.0 <= rate < 1.0:
            raise _NoMatch(f"the rate {rate:g} is outside [0, 1)")


def remove_dropout(graph: Graph, select: set[str] | None = None,
                   allow_random: bool = True) -> PassResult:
    report = PassReport("remove_dropout")
    editor = GraphEditor(graph)
    keep = protected_names(graph, detected_outputs=True)
    matcher = _Matcher(graph, Constants(graph, analyse=False))
    sub = Substitution()
    remove: list[str] = []
    randoms: dict[str, str] = {}
    for node in graph.graph_def.node:
        if node.op not in UNIFORM_RANDOM_OPS:
            continue
        try:
            m = matcher.match(node.name)
        except _NoMatch as e:
            report.refused.append(Refusal(node.name, f"random op {node.name} is not removed: "
                                          f"not recognised as dropout ({e})", [node.name]))
            continue
        except (IndexError, ValueError):  # an op with fewer inputs than its kind needs
            report.refused.append(Refusal(node.name, f"random op {node.name} is not removed: "
                                          "the ops around it are malformed", [node.name]))
            continue
        out, x, rate = m["out"], m["x"], m["rate"]
        if rate == 0.0:
            desc = (f"dropout {out} ({m['form']}, {m['scale']}): rate 0, so it already computes "
                    f"x exactly; readers now read {x} and the random op {node.name} goes")
        else:
            desc = (f"dropout {out} ({m['form']}, {m['scale']}): the graph drops at random at "
                    f"inference (rate {rate:g}); removing it replaces the random output by its "
                    f"expectation {x} (inference behaviour), so outputs change compared with any "
                    "single run of the original")
            if not allow_random:
                report.refused.append(Refusal(out, desc.split(";")[0] + "; refused because "
                                              "allow_random is off", m["nodes"]))
                continue
        if any(n in keep for n in m["nodes"] if n != out):
            report.refused.append(Refusal(out, f"dropout {out} contains a named graph input or "
                                          "output", m["nodes"]))
            continue
        match = Match(key=out, description=desc, nodes=m["nodes"])
        report.matches.append(match)
        if not is_selected(out, select):
            match.applied = False
            continue
        randoms[node.name] = out
        out_node = graph.nodes[out]
        if out in keep:
            editor.replace_node(out, identity_node(out, x, attr_dtype(out_node), out_node.device))
            match.changed.append(out)
        else:
            controls = [t[1:] for t in out_node.input if t.startswith("^")]
            sub.tensor(out, x, controls)
            sub.control_to(out, [node_of(x)] + controls)
            remove.append(out)
    if randoms:
        sub.apply(editor, skip=remove)
        editor.remove(remove)
        dropped = set(editor.remove_unread(read_nodes(graph), keep)) | set(remove)
        by_key = {m.key: m for m in report.matches}
        for rnd, out in randoms.items():
            m = by_key[out]
            m.removed = [n for n in graph.topological_order() if n in dropped
                         and n in graph.upstream([out])]
            if rnd in editor:
                report.notes.append(f"{rnd} is still read by another node and was kept")
    fill_report(report, editor)
    return PassResult(editor.result(), report)


PASS = Pass(
    id="remove_dropout",
    title="Remove dropout",
    explanation=EXPLANATION,
    fn=remove_dropout,
    params=[
        Param("allow_random", bool, True,
              "Also remove dropout whose constant rate is above 0 (the graph drops at random at "
              "inference; the result is its expectation). Off: refuse those."),
    ],
)
