"""A small declarative matcher for op patterns, that says why a near miss did not match.

A pattern describes the producer of a tensor, like TensorFlow graph_transforms'
``OpTypePattern``::

    Op("Mul", Any("x"), Const("c"), commutative=True, name="mul")

matches ``x * c`` and ``c * x`` when ``c`` is a Const (read through identity ops).
:meth:`Matcher.match` returns a :class:`MatchResult`, truthy on a match, with the bound names.

Like onnxscript's rewriter (``MatchResult.fail(reason)``) a failed match carries a reason, and
it is one of two kinds:

- a **miss**: the ops are not there (wrong op, wrong number of inputs, an operand that is not
  constant, a ``guard`` that says no) — nothing to tell the user;
- a **near miss** (``result.near``): every op of the pattern is there but a condition is not
  met (a ``where`` check returned a reason, or ``single_reader`` found other readers) — the
  reason is what the pass shows as its refusal.

Leaves: :class:`Any` (any tensor; the same name twice means the same tensor), :class:`Const`
(a Const, through identity ops), :class:`Value` (a tensor whose value is known:
:meth:`Constants.value`), :class:`Foldable` (a tensor fixed by the GraphDef:
:meth:`Constants.is_const`). Checks (``guard`` and ``where``) take the node (or tensor) and the
result so far (``result.graph``, ``result.constants``); ``where`` returns None/True (fine), False (a
miss) or a reason (a near miss).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Union

import numpy as np

from ..model.consteval import Constants
from ..model.graph import Graph, NodeDef, parse_input
from ..model.ops import const_source

Check = Callable[..., Union[bool, str, None]]


@dataclass
class MatchResult:
    """What a match found: truthy when the pattern matched.

    ``bindings`` maps each pattern name to a tensor (leaves) or a node name (:class:`Op`);
    ``nodes`` are the matched nodes in match order (outermost first); ``values`` the values of
    :class:`Value` leaves; ``consts`` the Const node and identity chain of :class:`Const` leaves.
    """
    ok: bool = True
    reason: str = ""
    near: bool = False
    bindings: dict[str, str] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    consts: dict[str, tuple[NodeDef, list[str]]] = field(default_factory=dict)
    #: The matcher (for checks: ``result.graph``, ``result.constants``).
    matcher: "Matcher | None" = field(default=None, repr=False)

    def __bool__(self) -> bool:
        return self.ok

    def __getitem__(self, name: str) -> str:
        return self.bindings[name]

    def get(self, name: str, default=None):
        return self.bindings.get(name, default)

    @property
    def graph(self) -> Graph:
        return self.matcher.graph

    @property
    def constants(self) -> Constants:
        return self.matcher.constants

    @classmethod
    def fail(cls, reason: str = "") -> "MatchResult":
        """A miss: the pattern's ops are not there."""
        return cls(ok=False, reason=reason)

    @classmethod
    def refuse(cls, reason: str) -> "MatchResult":
        """A near miss: the ops are there but a condition does not hold (shown to the user)."""
        return cls(ok=False, reason=reason, near=True)

    def _copy(self) -> "MatchResult":
        return MatchResult(True, "", False, dict(self.bindings), list(self.nodes),
                           dict(self.values), dict(self.consts), self.matcher)


def _check(check: Check | None, subject, m: MatchResult) -> MatchResult | None:
    """Run a guard/where check: None when fine, else the failed result."""
    if check is None:
        return None
    verdict = check(subject, m)
    if verdict is None or verdict is True:
        return None
    if verdict is False:
        return MatchResult.fail("a check failed")
    near = m._copy()  # a near miss keeps what it bound, so the pass can name the nodes
    near.ok, near.near, near.reason = False, True, str(verdict)
    return near


def _either(failed: MatchResult | None, m: MatchResult) -> MatchResult:
    return m if failed is None else failed


class Pattern:
    name: str | None = None

    def match(self, mx: "Matcher", tensor: str, m: MatchResult) -> MatchResult:
        raise NotImplementedError

    def _bind(self, m: MatchResult, value: str) -> bool:
        """Bind ``self.name`` to ``value``; False when it is bound to something else."""
        if not self.name:
            return True
        old = m.bindings.get(self.name)
        if old is not None and parse_input(old) != parse_input(value):
            return False
        m.bindings[self.name] = value
        return True


class Any(Pattern):
    """Any tensor. A name used twice in one pattern must be the same tensor both times."""

    def __init__(self, name: str | None = None, where: Check | None = None):
        self.name, self.where = name, where

    def match(self, mx, tensor, m):
        if not self._bind(m, tensor):
            return MatchResult.fail(f"{tensor} is not {m.bindings[self.name]}")
        return _either(_check(self.where, tensor, m), m)


class Const(Pattern):
    """A tensor stored in a ``Const`` (read through identity ops). Binds the Const node and
    the chain of nodes up to it in ``result.consts[name]``."""

    def __init__(self, name: str | None = None, where: Check | None = None):
        self.name, self.where = name, where

    def match(self, mx, tensor, m):
        node, chain = mx.const_source(tensor)
        if node is None:
            return MatchResult.fail(f"{tensor} is not a Const")
        if not self._bind(m, tensor):
            return MatchResult.fail(f"{tensor} is not {m.bindings[self.name]}")
        if self.name:
            m.consts[self.name] = (node, chain)
        return _either(_check(self.where, node, m), m)


class Value(Pattern):
    """A tensor whose value is known (:meth:`Constants.value`), bound in ``result.values``."""

    def __init__(self, name: str | None = None, where: Check | None = None):
        self.name, self.where = name, where

    def match(self, mx, tensor, m):
        v = mx.constants.value(tensor)
        if v is None:
            return MatchResult.fail(f"{tensor} is not constant")
        if not self._bind(m, tensor):
            return MatchResult.fail(f"{tensor} is not {m.bindings[self.name]}")
        if self.name:
            m.values[self.name] = v
        return _either(_check(self.where, v, m), m)


class Foldable(Pattern):
    """A tensor the GraphDef alone fixes (:meth:`Constants.is_const`); not evaluated."""

    def __init__(self, name: str | None = None):
        self.name = name

    def match(self, mx, tensor, m):
        if not mx.constants.is_const(tensor):
            return MatchResult.fail(f"{tensor} is not constant")
        if not self._bind(m, tensor):
            return MatchResult.fail(f"{tensor} is not {m.bindings[self.name]}")
        return m


class Op(Pattern):
    """A node with one of ``ops`` producing the tensor (at output ``port``), whose data inputs
    match ``inputs`` (exactly that many, or with ``more_inputs`` the first ones of more).

    - ``commutative``: a two-input op also matches with its inputs swapped (the given order is
      tried first);
    - ``guard(node, result)``: checked before the inputs; False is a miss;
    - ``single_reader``: the node's output must have exactly one reader (else a near miss):
      changing it would change what another reader sees;
    - ``where(node, result)``: checked once the inputs matched; a reason is a near miss.
    """

    def __init__(self, ops: str | Iterable[str], *inputs: Pattern, name: str | None = None,
                 commutative: bool = False, port: int = 0, single_reader: bool = False,
                 guard: Check | None = None, where: Check | None = None,
                 more_inputs: bool = False):
        self.ops = frozenset([ops] if isinstance(ops, str) else ops)
        self.inputs = list(inputs)
        self.name = name
        self.commutative = commutative
        self.port = port
        self.single_reader = single_reader
        self.guard, self.where = guard, where
        self.more_inputs = more_inputs
        if commutative and len(inputs) != 2:
            raise ValueError("a commutative pattern has two inputs")

    def match(self, mx, tensor, m):
        ref = parse_input(tensor)
        node = mx.graph.nodes.get(ref.node)
        if node is None or node.op not in self.ops or max(ref.port, 0) != self.port:
            return MatchResult.fail(f"{tensor} is not the output of {'/'.join(sorted(self.ops))}")
        if not self._bind(m, node.name):
            return MatchResult.fail(f"{node.name} is not {m.bindings[self.name]}")
        failed = _check(self.guard, node, m)
        if failed is not None:
            return MatchResult.fail(failed.reason)
        data = [t for t in node.input if not t.startswith("^")]
        if len(data) < len(self.inputs) or (len(data) > len(self.inputs)
                                             and not self.more_inputs):
            return MatchResult.fail(f"{node.name} has {len(data)} data inputs, not "
                                    f"{len(self.inputs)}")
        m.nodes.append(node.name)
        orders = [list(range(len(self.inputs)))]
        if self.commutative:
            orders.append([1, 0])
        best: MatchResult | None = None
        for order in orders:
            result = self._inputs(mx, data, order, m._copy())
            if result.ok:
                result = self._checks(mx, node, result)
                if result.ok:
                    return result
            if best is None or (result.near and not best.near):
                best = result
        return best

    def _inputs(self, mx, data, order, state: MatchResult) -> MatchResult:
        """Match the inputs in ``order``: the result with every binding, the first near miss
        (when no input is a plain miss), or the first plain miss."""
        first_near = None
        for pat, i in zip(self.inputs, order):
            r = pat.match(mx, data[i], state)
            if r.ok:
                state = r
            elif not r.near:
                return r
            elif first_near is None:
                first_near = r
        return first_near if first_near is not None else state

    def _checks(self, mx, node, trial) -> MatchResult:
        if self.single_reader:
            readers = mx.graph.consumer_names(node.name)
            if len(readers) != 1:
                return MatchResult.refuse(
                    f"{node.name} is read by {len(readers)} nodes"
                    + (f" ({', '.join(readers[:4])})" if readers else ""))
        return _either(_check(self.where, node, trial), trial)


class Matcher:
    """Matches patterns against one graph (and its constants: :class:`Constants`)."""

    def __init__(self, graph: Graph, constants: Constants | None = None):
        self.graph = graph
        self._constants = constants
        self._const_sources: dict[str, tuple[NodeDef | None, list[str]]] = {}

    @property
    def constants(self) -> Constants:
        if self._constants is None:
            self._constants = Constants(self.graph, analyse=False)
        return self._constants

    def const_source(self, tensor: str):
        hit = self._const_sources.get(tensor)
        if hit is None:
            hit = self._const_sources[tensor] = const_source(self.graph, tensor)
        return hit

    def match(self, pattern: Pattern, target: str | NodeDef, **bound: str) -> MatchResult:
        """Match ``pattern`` against a tensor (or a node's output 0). ``bound`` pre-binds names
        (``cur="conv1"``: an :class:`Any` named ``cur`` matches only that tensor)."""
        tensor = target.name if isinstance(target, NodeDef) else target
        return pattern.match(self, tensor, MatchResult(bindings=dict(bound), matcher=self))

    def first(self, rules: Iterable[tuple[object, Pattern]], target: str | NodeDef,
              **bound: str) -> tuple[object, MatchResult]:
        """The first of ``(tag, pattern)`` rules that matches: (tag, result); when none does,
        (None, the first near miss, or the last miss)."""
        best: MatchResult | None = None
        for tag, pattern in rules:
            r = self.match(pattern, target, **bound)
            if r.ok:
                return tag, r
            if best is None or (r.near and not best.near):
                best = r
        return None, best if best is not None else MatchResult.fail("no rule")
