"""What the inspector and the search panel show, computed without Qt.

- :func:`render_attr` turns an ``AttrValue`` into the text a person reads: dtype names
  (``float32``), shapes (``[?, 224, 224, 3]``), lists (``[1, 2, 2, 1]``), strings without
  protobuf quoting (``SAME``), tensors as a summary (``float32 [3, 3, 3, 8], 216 values``).
- :func:`node_details` gathers one node's name, op, device, inputs (with their producers),
  consumers and rendered attributes.
- :func:`const_stats` decodes one Const and summarises it: dtype, shape, min/max/mean/std,
  NaN/Inf counts, the first values and histogram counts.
- :func:`group_summary` summarises a name scope: op histogram, parameter count, the edges
  that cross its border.
- :class:`SearchIndex` / :func:`search` find nodes by name (substring or regex), op type or
  attribute value, ranked best first.

Tensor contents are decoded only by :func:`const_stats` / :func:`const_array`, and only for
the node asked about, so everything else stays cheap on graphs of 10,000+ nodes.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from ..model.graph import (
    FLOAT_DTYPES,
    Graph,
    GraphError,
    NodeDef,
    parse_input,
    shape_size,
)
from ..model.values import ConstStats, attr_kind, const_stats, render_attr


# --------------------------------------------------------------------------- node details
@dataclass(frozen=True)
class InputInfo:
    """One input of a node: the text as written, its producer, the producer's op."""
    text: str
    producer: str
    port: int
    control: bool
    producer_op: str | None  # None when the producer is missing from the graph


@dataclass(frozen=True)
class ConsumerInfo:
    """One node reading an output of the inspected node (at input slot ``index``)."""
    name: str
    op: str
    index: int
    port: int
    control: bool


@dataclass(frozen=True)
class AttrInfo:
    name: str
    kind: str
    text: str


@dataclass
class NodeDetails:
    name: str
    op: str
    device: str
    inputs: list[InputInfo]
    consumers: list[ConsumerInfo]
    attrs: list[AttrInfo]
    #: Output tensors as far as the GraphDef tells: one text per port that is read (port 0
    #: at least), e.g. ``0: float32 [?, 16, 16, 8]`` or ``0: float32, shape unknown``.
    outputs: list[str] = field(default_factory=list)
    #: For a Const: its summary (None for other ops or until asked, see :func:`node_details`).
    const: "ConstStats | None" = None
    #: Why the Const could not be summarised, for the user.
    const_error: str | None = None

    @property
    def is_const(self) -> bool:
        return self.op == "Const"

    def attr(self, name: str) -> str | None:
        for a in self.attrs:
            if a.name == name:
                return a.text
        return None


def node_details(graph: Graph, name: str, with_const: bool = True) -> NodeDetails:
    """Everything the inspector shows about one node. Raises GraphError for an unknown name."""
    node = graph.node(name)
    inputs = []
    for text in node.input:
        ref = parse_input(text)
        prod = graph.nodes.get(ref.node)
        inputs.append(InputInfo(text, ref.node, ref.port, ref.control,
                                prod.op if prod is not None else None))
    consumers = [ConsumerInfo(c, graph.nodes[c].op, i, ref.port, ref.control)
                 for c, i, ref in graph.consumers(node.name)]
    attrs = [AttrInfo(k, attr_kind(v), render_attr(v)) for k, v in sorted(node.attr.items())]
    details = NodeDetails(node.name, node.op, node.device, inputs, consumers, attrs,
                          outputs=_output_texts(node, consumers))
    if with_const and node.op == "Const":
        try:
            details.const = const_stats(node)
        except GraphError as e:
            details.const_error = e.problem
    return details


def _output_texts(node: NodeDef, consumers: list[ConsumerInfo]) -> list[str]:
    from .grouping import output_info  # dtype/shape as the graph view labels edges
    ports = sorted({0} | {c.port for c in consumers if not c.control and c.port >= 0})
    texts = []
    for port in ports:
        dtype, shape = output_info(node, port)
        shape_text = ", shape unknown" if shape is None else \
            " [" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"
        texts.append(f"{port}: {dtype or 'dtype unknown'}{shape_text}")
    return texts


# --------------------------------------------------------------------------- groups
@dataclass
class GroupSummary:
    """A name scope (group) at a glance."""
    scope: str
    node_count: int
    op_histogram: dict[str, int]
    parameter_count: int
    parameter_bytes: int
    #: Edges from outside into the group / from the group to outside (data and control).
    inputs_from_outside: int
    outputs_to_outside: int
    #: Direct child scopes and how many nodes each holds.
    children: dict[str, int]

    def main_ops(self, n: int = 3) -> list[str]:
        """The most frequent ops, Const/Identity last (they are mostly weights)."""
        ops = sorted(self.op_histogram.items(),
                     key=lambda kv: (kv[0] in ("Const", "Identity"), -kv[1], kv[0]))
        return [k for k, _ in ops[:n]]


def scope_members(graph: Graph, scope: str) -> list[str]:
    """Nodes under ``scope/`` (and a node named exactly ``scope``), in graph order."""
    scope = scope.rstrip("/")
    prefix = scope + "/"
    return [n.name for n in graph.graph_def.node
            if n.name.startswith(prefix) or n.name == scope]


def group_summary(graph: Graph, scope: str, members: Iterable[str] | None = None) -> GroupSummary:
    """Summarise a group: by default the nodes under ``scope``; or exactly ``members``."""
    scope = scope.rstrip("/")
    names = list(members) if members is not None else scope_members(graph, scope)
    inside = set(names)
    hist: Counter[str] = Counter()
    params = param_bytes = 0
    n_in = n_out = 0
    children: Counter[str] = Counter()
    depth = scope.count("/") + 1 if scope else 0
    for name in names:
        node = graph.nodes.get(name)
        if node is None:
            continue
        hist[node.op] += 1
        if node.op == "Const":
            t = node.attr["value"].tensor
            if t.dtype in FLOAT_DTYPES:
                n = shape_size(t.tensor_shape)
                params += n
                param_bytes += n * _dtype_size(t.dtype)
        parts = name.split("/")
        if len(parts) > depth + 1 and (not scope or name.startswith(scope + "/")):
            children[parts[depth]] += 1
        for text in node.input:
            if parse_input(text).node not in inside:
                n_in += 1
        for c, _, _ in graph.consumers(name):
            if c not in inside:
                n_out += 1
    ordered = dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0])))
    return GroupSummary(scope, len([n for n in names if n in graph.nodes]), ordered, params,
                        param_bytes, n_in, n_out, dict(sorted(children.items())))


def _dtype_size(dtype_enum: int) -> int:
    from tensorflow.core.framework import types_pb2
    return {types_pb2.DT_HALF: 2, types_pb2.DT_BFLOAT16: 2, types_pb2.DT_DOUBLE: 8}.get(
        dtype_enum, 4)


# --------------------------------------------------------------------------- search
SEARCH_MODES = ("name", "op", "attr")


@dataclass(frozen=True, order=True)
class SearchHit:
    """One match; lower ``rank`` is better. ``detail`` says what matched, for the list."""
    rank: tuple
    name: str = field(compare=False)
    op: str = field(compare=False)
    detail: str = field(compare=False, default="")


class SearchIndex:
    """Searches one Graph. Attribute texts are rendered once, on the first attribute search."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._attr_texts: list[tuple[str, str, list[tuple[str, str]]]] | None = None

    # The public entry point.
    def search(self, query: str, mode: str = "name", regex: bool = False,
               limit: int | None = 1000) -> list[SearchHit]:
        """Nodes matching ``query``, best first (at most ``limit``).

        - ``name``: case-insensitive substring (or regex with ``regex=True``) of the node name.
          Exact name, then exact last path component, then a match at the start of a path
          component, then anywhere; within a tier, shallower names first, then graph order.
        - ``op``: op type; exact (case-insensitive) first, then prefix, then substring.
        - ``attr``: attribute values (and the device, as ``device``). ``key=value`` restricts to
          attribute ``key`` (itself a substring match); a bare ``value`` searches every
          attribute. Exact value first.

        An empty query finds nothing; an invalid regex raises ``ValueError`` with a clear message.
        """
        query = query.strip()
        if not query:
            return []
        if mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(SEARCH_MODES)}")
        if mode == "name":
            hits = self._by_name(query, regex)
        elif mode == "op":
            hits = self._by_op(query, regex)
        else:
            hits = self._by_attr(query, regex)
        hits.sort()
        return hits[:limit] if limit else hits

    def _pattern(self, text: str, regex: bool) -> re.Pattern:
        if regex:
            try:
                return re.compile(text, re.IGNORECASE)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {e}") from None
        return re.compile(re.escape(text), re.IGNORECASE)

    def _by_name(self, query: str, regex: bool) -> list[SearchHit]:
        pat = self._pattern(query, regex)
        q = query.lower()
        order = self.graph.order
        hits = []
        for node in self.graph.graph_def.node:
            name = node.name
            m = pat.search(name)
            if not m:
                continue
            low = name.lower()
            last = low.rsplit("/", 1)[-1]
            if low == q or (regex and m.group(0) == name):
                tier = 0
            elif last == q:
                tier = 1
            elif m.start() == 0 or name[m.start() - 1] in "/_":
                tier = 2
            else:
                tier = 3
            hits.append(SearchHit((tier, name.count("/"), order[name]),
                                  name, node.op, ""))
        return hits

    def _by_op(self, query: str, regex: bool) -> list[SearchHit]:
        pat = self._pattern(query, regex)
        q = query.lower()
        order = self.graph.order
        hits = []
        for node in self.graph.graph_def.node:
            m = pat.search(node.op)
            if not m:
                continue
            low = node.op.lower()
            tier = 0 if (low == q or (regex and m.group(0) == node.op)) else (
                1 if m.start() == 0 else 2)
            hits.append(SearchHit((tier, order[node.name]), node.name, node.op, node.op))
        return hits

    def _attr_index(self):
        if self._attr_texts is None:
            index = []
            for node in self.graph.graph_def.node:
                attrs = [(k, render_attr(v)) for k, v in sorted(node.attr.items())]
                if node.device:  # searchable like an attribute: device=GPU
                    attrs.append(("device", node.device))
                index.append((node.name, node.op, attrs))
            self._attr_texts = index
        return self._attr_texts

    def _by_attr(self, query: str, regex: bool) -> list[SearchHit]:
        key_pat = None
        key, sep, value = query.partition("=")
        if sep and key.strip() and re.fullmatch(r"[A-Za-z_][\w.]*", key.strip()):
            key_pat = key.strip().lower()
            query = value.strip()
            if not query:
                query = ""
        pat = self._pattern(query, regex) if query else None
        q = query.lower()
        order = self.graph.order
        hits = []
        for name, op, attrs in self._attr_index():
            best = None
            for k, text in attrs:
                if key_pat is not None and key_pat not in k.lower():
                    continue
                if pat is None:  # "key=" lists every node that has the attribute
                    tier = 0 if k.lower() == key_pat else 1
                else:
                    m = pat.search(text)
                    if not m:
                        continue
                    low = text.lower()
                    exact = low == q or low.strip("'[]") == q or (regex and m.group(0) == text)
                    tier = (0 if exact else 2) + (0 if key_pat is None or k.lower() == key_pat
                                                  else 1)
                if best is None or tier < best[0]:
                    best = (tier, f"{k} = {text}")
            if best is not None:
                hits.append(SearchHit((best[0], order[name]), name, op, best[1]))
        return hits


def search(graph: Graph, query: str, mode: str = "name", regex: bool = False,
           limit: int | None = 1000) -> list[SearchHit]:
    """One-off search (build a :class:`SearchIndex` to search one graph repeatedly)."""
    return SearchIndex(graph).search(query, mode, regex, limit)
