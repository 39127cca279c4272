"""Remove dropout: the random mask-and-scale subgraph of dropout becomes the identity."""
from __future__ import annotations

import numpy as np

from ..model.consteval import Constants, non_constant_sources
from ..model.editor import Substitution, attr_dtype, identity_node, read_nodes
from ..model.graph import Graph, node_of
from ..model.ops import UNIFORM_RANDOM_OPS
from .base import Param, Pass
from .context import PassContext, pass_body
from .pattern import Any, Matcher, Op, Value

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


def _scalar(name: str, check=None) -> Value:
    """A one-element constant operand; ``check(value, node_name)`` may return a reason."""
    def where(v, m):
        if np.size(v) != 1:
            return False
        m.values[name] = float(np.asarray(v).reshape(()))
        return None
    return Value(name, where=where)


def _selects_x_or_0(node, m) -> str | None:
    zero = m.constants.value(m["zero"])
    if node_of(m["cond"]) != node_of(m["cur"]) or zero is None or np.any(zero != 0):
        return f"{node.name} does not select between x and 0"
    return None


#: The uniform draw rescaled by 1 (``tf.random.uniform`` writes ``rnd * (max - min) + min``).
UNIT_SCALE = Op("Mul", Any("cur"), _scalar("k"), commutative=True, where=(
    lambda n, m: None if abs(m.values["k"] - 1.0) <= 1e-7
    else f"{n.name} rescales the uniform draw (by {m.values['k']})"))
#: ... and shifted by 0.
ZERO_SHIFT = Op(ADD_OPS, Any("cur"), _scalar("m"), where=(
    lambda n, m: None if abs(m.values["m"]) <= 1e-7
    else f"{n.name} shifts the uniform draw (by {m.values['m']})"))
#: What reads the draw: ``u >= rate`` (rate form) or ``keep_prob + u`` (keep_prob form).
DRAW_USERS = [
    ("rate", Op("GreaterEqual", Any("cur"), Any("rate"))),
    ("keep", Op(ADD_OPS, Any("cur"), Any("keep"), commutative=True)),
]
#: What reads the rate form's mask: ``Select(mask, x * scale, 0)``, or a Cast to multiply.
MASK_USERS = [
    ("select", Op(SELECT_OPS, Any("cond"), Any("scaled"), Any("zero"), where=_selects_x_or_0)),
    ("cast", Op("Cast", Any("cur"))),
]
#: The floor of ``keep_prob + u``, and the product of a mask with the scaled input.
FLOOR = Op("Floor", Any("cur"))
MASKED = Op(MUL_OPS, Any("cur"), Any("scaled"), commutative=True)
#: The scaled input: ``x * 1/(1-rate)`` or ``x / (1-rate)``.
SCALINGS = [
    ("mul", Op(MUL_OPS, Any("x"), _scalar("s"), commutative=True)),
    ("div", Op(DIV_OPS, Any("x"), _scalar("s"))),
]


class _Matcher:
    """Recognises dropout from its random op forwards: at each step the one reader of the
    tensor so far must match one of the patterns above (``cur`` bound to that tensor)."""

    def __init__(self, graph: Graph, ev: Constants):
        self.g = graph
        self.ev = ev
        self.mx = Matcher(graph, ev)

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

    def step(self, rules, cur: str, what: str):
        """The reader of ``cur`` and the rule it matches; a miss raises with ``what``."""
        node = self.g.nodes[self.only_reader(cur)]
        tag, r = self.mx.first(rules, node, cur=cur)
        if tag is None:
            raise _NoMatch(r.reason if r.near else what.format(name=node.name, op=node.op))
        return node, tag, r

    def uniform(self, rnd: str) -> tuple[str, list[str]]:
        """Follow `RandomUniform [* (max-min) + min]`; the tensor must be uniform on [0, 1)."""
        nodes = [rnd]
        cur = rnd
        # An op of these kinds right after the draw must be its rescaling by 1, then its shift
        # by 0; anything else reads the draw (the mask below).
        for ops, pattern in ((MUL_OPS, UNIT_SCALE), (ADD_OPS, ZERO_SHIFT)):
            nxt = self.g.nodes[self.only_reader(cur)]
            if nxt.op not in ops:
                break
            r = self.mx.match(pattern, nxt, cur=cur)
            if not r:
                raise _NoMatch(r.reason if r.near else
                               f"{nxt.name} does not scale a tensor by a constant")
            cur = nxt.name
            nodes.append(cur)
        return cur, nodes

    def scaled_input(self, name: str, rate: float) -> tuple[str, str]:
        """The ``x * 1/(1-rate)`` (or ``x / (1-rate)``) node: returns (x tensor, description)."""
        node = self.g.nodes[name]
        want = 1.0 / (1.0 - rate)
        tag, r = self.mx.first(SCALINGS, node)
        if tag is None:
            if node.op in MUL_OPS or node.op in DIV_OPS:
                raise _NoMatch(f"{name} does not scale a tensor by a constant")
            raise _NoMatch(f"{name} ({node.op}) is not the x * 1/(1-rate) scaling")
        x, k = r["x"], r.values["s"]
        if tag == "mul":
            s, what = k, f"scale {k:g}"
            problem = f"scale {k:g} does not match 1/(1-rate) = {want:g}"
        else:
            if k == 0:
                raise _NoMatch(f"{name} divides by 0")
            s, what = 1.0 / k, f"divisor {k:g}"
            problem = f"divisor {k:g} does not match 1-rate = {1.0 - rate:g}"
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
        user, form, r = self.step(DRAW_USERS, u, "the uniform draw is used by {name} ({op})")
        if form == "rate":
            rate = self.rate_of(r["rate"])
            self.check_rate(rate)
            nodes.append(user.name)
            mask_user, how, r = self.step(MASK_USERS, user.name,
                                          "the keep mask is used by {name} ({op})")
            if how == "select":
                out, scaled = mask_user, node_of(r["scaled"])
            else:
                nodes.append(mask_user.name)
                out, _, r = self.step([("mul", MASKED)], mask_user.name,
                                      "the cast mask is used by {name} ({op}), not a Mul")
                scaled = node_of(r["scaled"])
            form = "rate form"
        else:
            rate = self.rate_of(r["keep"], as_keep=True)
            self.check_rate(rate)
            nodes.append(user.name)
            floor, _, _ = self.step([("floor", FLOOR)], user.name,
                                    f"{user.name} is not followed by Floor")
            nodes.append(floor.name)
            out, _, r = self.step([("mul", MASKED)], floor.name,
                                  "the binary mask is used by {name} ({op}), not a Mul")
            scaled = node_of(r["scaled"])
            form = "keep_prob form"
        if self.g.consumer_names(scaled) != [out.name]:
            raise _NoMatch(f"the scaled input {scaled} is also read outside the dropout")
        x, what = self.scaled_input(scaled, rate)
        nodes += [scaled, out.name]
        return dict(out=out.name, x=x, rate=rate, nodes=nodes, form=form, scale=what)

    @staticmethod
    def check_rate(rate: float) -> None:
        if not 0.0 <= rate < 1.0:
            raise _NoMatch(f"the rate {rate:g} is outside [0, 1)")


@pass_body("remove_dropout")
def remove_dropout(ctx: PassContext, allow_random: bool = True) -> None:
    graph, report, keep = ctx.graph, ctx.report, ctx.keep
    matcher = _Matcher(graph, ctx.constants)
    sub = Substitution()
    remove: list[str] = []
    randoms: dict[str, str] = {}
    for node in graph.graph_def.node:
        if node.op not in UNIFORM_RANDOM_OPS:
            continue
        try:
            m = matcher.match(node.name)
        except _NoMatch as e:
            ctx.refuse(node.name, f"random op {node.name} is not removed: not recognised as "
                                  f"dropout ({e})", [node.name])
            continue
        except (IndexError, ValueError):  # an op with fewer inputs than its kind needs
            ctx.refuse(node.name, f"random op {node.name} is not removed: the ops around it "
                                  "are malformed", [node.name])
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
                ctx.refuse(out, desc.split(";")[0] + "; refused because allow_random is off",
                           m["nodes"])
                continue
        if any(n in keep for n in m["nodes"] if n != out):
            ctx.refuse(out, f"dropout {out} contains a named graph input or output", m["nodes"])
            continue
        match = ctx.match(out, desc, nodes=m["nodes"])
        if not match.applied:
            continue
        editor = ctx.editor
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
        editor = ctx.editor
        sub.apply(editor, skip=remove)
        editor.remove(remove)
        dropped = set(editor.remove_unread(read_nodes(graph), keep)) | set(remove)
        by_key = {m.key: m for m in report.matches}
        for rnd, out in randoms.items():
            m = by_key[out]
            m.removed = [n for n in graph.topological_order() if n in dropped
                         and n in graph.upstream([out])]
            if rnd in editor:
                ctx.note(f"{rnd} is still read by another node and was kept")


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
