"""GraphDiff: what differs between two graphs, node by node, in words a user can check.

Nodes are matched by name. For every changed node the diff says what changed: the op, each
attribute's old and new value (rendered as the inspector renders them), the inputs that were
rewired, the device, and for a Const the weight statistics before and after (and the largest
difference when the shapes agree).

A diff is built from a :class:`~surgeon_gui.core.history.delta.GraphDelta` (one undo step: only the
changed nodes are decoded, never the whole model) or from two GraphDefs (compare with another
file). Weight statistics are computed while the diff is built (decoding only the changed
Consts), which is separate from undo/redo: the diff panel builds a step's diff when it shows it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..model.graph import GraphDef, NodeDef
from .delta import GraphDelta, _load


@dataclass
class AttrChange:
    name: str
    old: str | None   # None: the attribute was not set
    new: str | None

    def text(self) -> str:
        if self.old is None:
            return f"{self.name}: (added) {self.new}"
        if self.new is None:
            return f"{self.name}: {self.old} (removed)"
        return f"{self.name}: {self.old} → {self.new}"


@dataclass
class InputChange:
    index: int
    old: str | None   # None: the input did not exist
    new: str | None

    def text(self) -> str:
        if self.old is None:
            return f"input {self.index}: (added) {self.new}"
        if self.new is None:
            return f"input {self.index}: {self.old} (removed)"
        return f"input {self.index}: {self.old} → {self.new}"


@dataclass
class WeightChange:
    """A Const's value before and after (statistics over finite values)."""
    old: dict | None
    new: dict | None
    max_abs_diff: float | None = None

    def text(self) -> str:
        def fmt(s):
            if s is None:
                return "—"
            if s.get("mean") is None:
                return f"{s['dtype']}{s['shape']}"
            return (f"{s['dtype']}{s['shape']} mean {s['mean']:.4g} std {s['std']:.4g} "
                    f"[{s['min']:.4g}, {s['max']:.4g}]")
        out = f"value: {fmt(self.old)} → {fmt(self.new)}"
        if self.max_abs_diff is not None:
            out += f"; max |Δ| {self.max_abs_diff:.4g}"
        return out


@dataclass
class NodeChange:
    name: str
    old_op: str
    new_op: str
    attrs: list[AttrChange] = field(default_factory=list)
    inputs: list[InputChange] = field(default_factory=list)
    device: tuple[str, str] | None = None
    weights: WeightChange | None = None

    def lines(self) -> list[str]:
        out = []
        if self.old_op != self.new_op:
            out.append(f"op: {self.old_op} → {self.new_op}")
        if self.device:
            out.append(f"device: {self.device[0] or '(none)'} → {self.device[1] or '(none)'}")
        out += [c.text() for c in self.inputs]
        out += [c.text() for c in self.attrs if c.name != "value" or self.weights is None]
        if self.weights:
            out.append(self.weights.text())
        return out or ["(serialization differs only)"]

    def to_dict(self) -> dict:
        return {"name": self.name, "old_op": self.old_op, "new_op": self.new_op,
                "changes": self.lines()}


@dataclass
class NodeInfo:
    """A removed or added node: enough to list it and say what it was."""
    name: str
    op: str
    inputs: list[str]
    detail: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "op": self.op, "inputs": self.inputs, "detail": self.detail}


@dataclass
class GraphDiff:
    removed: list[NodeInfo] = field(default_factory=list)
    added: list[NodeInfo] = field(default_factory=list)
    changed: list[NodeChange] = field(default_factory=list)
    reordered: bool = False
    #: Top-level fields (``library``, ``versions``) that differ.
    fields: list[str] = field(default_factory=list)
    #: Inputs/outputs chosen before and after, when they changed.
    io: tuple | None = None

    @property
    def empty(self) -> bool:
        return not (self.removed or self.added or self.changed or self.reordered or self.fields
                    or self.io)

    def summary(self) -> str:
        parts = [f"{len(self.removed)} removed", f"{len(self.added)} added",
                 f"{len(self.changed)} changed"]
        if self.reordered:
            parts.append("node order changed")
        if self.fields:
            parts.append(", ".join(self.fields) + " changed")
        if self.io:
            parts.append("inputs/outputs changed")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {"removed": [n.to_dict() for n in self.removed],
                "added": [n.to_dict() for n in self.added],
                "changed": [c.to_dict() for c in self.changed],
                "reordered": self.reordered, "fields": self.fields}

    def names(self) -> tuple[set[str], set[str], set[str]]:
        return ({n.name for n in self.removed}, {n.name for n in self.added},
                {c.name for c in self.changed})

    # ------------------------------------------------------------------ building
    @classmethod
    def from_delta(cls, delta: GraphDelta, undo: bool = False) -> "GraphDiff":
        """The diff of one step (``undo``: of undoing it)."""
        if delta.old_full is not None:
            a, b = GraphDef(), GraphDef()
            a.ParseFromString(delta.old_full)
            b.ParseFromString(delta.new_full)
            if undo:
                a, b = b, a
            return cls.between(a, b)
        d = delta.inverse() if undo else delta
        diff = cls()
        order_old = {n: i for i, n in d.removed_at}
        order_new = {n: i for i, n in d.added_at}
        for name in sorted(d.removed, key=lambda n: (order_old.get(n, 0), n)):
            diff.removed.append(_info(_parse(d.old_nodes[name])))
        for name in sorted(d.added, key=lambda n: (order_new.get(n, 0), n)):
            diff.added.append(_info(_parse(d.new_nodes[name])))
        for name in sorted(d.changed):
            diff.changed.append(node_change(_parse(d.old_nodes[name]), _parse(d.new_nodes[name])))
        diff.reordered = d.old_order is not None
        diff.fields = sorted(d.new_fields)
        if d.old_io != d.new_io:
            diff.io = (d.old_io, d.new_io)
        return diff

    @classmethod
    def across(cls, deltas: list[GraphDelta], current: GraphDef | None = None) -> "GraphDiff":
        """The diff of several consecutive steps together (their ``deltas``, oldest first): the
        state before the first against the state after the last, as :meth:`between` of those
        two graphs gives it, but read from the steps' changed nodes only (any thread; the
        deltas are only read). A node changed and changed back, or added and removed again
        within the span, is not listed. ``reordered``: some step reordered nodes.

        A step that stored whole graphs (duplicate node names) cannot be composed by name:
        then ``current`` (a private copy of the graph after the last step) is reverted to the
        first state and the two are compared; without it, ValueError."""
        if any(d.old_full is not None for d in deltas):
            if current is None:
                raise ValueError("a step stored whole graphs: the current graph is needed")
            old = GraphDef()
            old.CopyFrom(current)
            for d in reversed(deltas):
                d.revert(old)
            return cls.between(old, current)
        first: dict[str, tuple] = {}   # name -> (step index, position, version before the span)
        last: dict[str, tuple] = {}    # name -> (step index, position, version after the span)
        start_io = end_io = None
        old_fields: dict[str, object] = {}
        new_fields: dict[str, object] = {}
        diff = cls()
        for k, d in enumerate(deltas):
            removed_pos = dict((n, i) for i, n in d.removed_at)
            added_pos = dict((n, i) for i, n in d.added_at)
            for n in d.removed:
                first.setdefault(n, (k, removed_pos.get(n, 0), d.old_nodes[n]))
                last[n] = (k, removed_pos.get(n, 0), None)
            for n in d.changed:
                first.setdefault(n, (k, 0, d.old_nodes[n]))
                last[n] = (k, 0, d.new_nodes[n])
            for n in d.added:
                first.setdefault(n, (k, added_pos.get(n, 0), None))
                last[n] = (k, added_pos.get(n, 0), d.new_nodes[n])
            diff.reordered = diff.reordered or d.old_order is not None
            for key in d.old_fields:
                old_fields.setdefault(key, d.old_fields[key])
                new_fields[key] = d.new_fields.get(key)
            if d.old_io is not None or d.new_io is not None:
                if start_io is None:
                    start_io = d.old_io
                end_io = d.new_io
        removed, added, changed = [], [], []
        for name, (k, i, before) in first.items():
            k2, j, after = last[name]
            if before is None and after is None:
                continue                        # came and went within the span
            if before is None:
                added.append(((k2, j, name), _parse(after)))
            elif after is None:
                removed.append(((k, i, name), _parse(before)))
            else:
                a, b = _load(before), _load(after)
                if a == b:
                    continue
                na, nb = _parse(a), _parse(b)
                if na != nb:
                    changed.append((name, na, nb))
        diff.removed = [_info(n) for _, n in sorted(removed, key=lambda t: t[0])]
        diff.added = [_info(n) for _, n in sorted(added, key=lambda t: t[0])]
        diff.changed = [node_change(a, b) for _, a, b in sorted(changed, key=lambda t: t[0])]
        diff.fields = sorted(k for k in old_fields if old_fields[k] != new_fields.get(k))
        if start_io != end_io:
            diff.io = (start_io, end_io)
        return diff

    @classmethod
    def between(cls, old: GraphDef, new: GraphDef) -> "GraphDiff":
        """The diff of two whole graphs (e.g. the open model and another file)."""
        delta = GraphDelta.between(old, new)
        if delta.old_full is not None:
            # duplicate names: match what can be matched, by first occurrence
            diff = cls()
            a = {n.name: n for n in reversed(list(old.node))}
            b = {n.name: n for n in reversed(list(new.node))}
            diff.removed = [_info(a[n]) for n in sorted(set(a) - set(b))]
            diff.added = [_info(b[n]) for n in sorted(set(b) - set(a))]
            diff.changed = [node_change(a[n], b[n]) for n in sorted(set(a) & set(b))
                            if a[n] != b[n]]
            return diff
        return cls.from_delta(delta)


def _parse(data) -> NodeDef:
    n = NodeDef()
    n.ParseFromString(_load(data))
    return n


def _info(node: NodeDef) -> NodeInfo:
    detail = ""
    if node.op == "Const":
        s = weight_stats(node)
        if s:
            detail = f"{s['dtype']}{s['shape']}"
    return NodeInfo(node.name, node.op, list(node.input), detail)


def weight_stats(node: NodeDef) -> dict | None:
    """dtype, shape and (numeric) min/max/mean/std of a Const, or None if not decodable."""
    try:
        from ..model.values import const_stats
        s = const_stats(node, first=4, bins=1)
    except Exception:  # noqa: BLE001 - not a Const, or an undecodable one
        return None
    return {"dtype": s.dtype, "shape": list(s.shape), "min": s.min, "max": s.max,
            "mean": s.mean, "std": s.std}


def node_change(old: NodeDef, new: NodeDef) -> NodeChange:
    """What differs between two versions of one node."""
    from ..model.values import render_attr
    ch = NodeChange(new.name, old.op, new.op)
    if old.device != new.device:
        ch.device = (old.device, new.device)
    for i in range(max(len(old.input), len(new.input))):
        a = old.input[i] if i < len(old.input) else None
        b = new.input[i] if i < len(new.input) else None
        if a != b:
            ch.inputs.append(InputChange(i, a, b))
    for key in sorted(set(old.attr) | set(new.attr)):
        a = old.attr[key] if key in old.attr else None
        b = new.attr[key] if key in new.attr else None
        if a is not None and b is not None and a == b:
            continue
        ch.attrs.append(AttrChange(key, None if a is None else render_attr(a),
                                   None if b is None else render_attr(b)))
    if (old.op == "Const" or new.op == "Const") and any(c.name == "value" for c in ch.attrs):
        ws = WeightChange(weight_stats(old) if old.op == "Const" else None,
                          weight_stats(new) if new.op == "Const" else None)
        if ws.old and ws.new and ws.old["shape"] == ws.new["shape"]:
            try:
                from ..model.graph import const_value
                a, b = const_value(old), const_value(new)
                if a.dtype.kind in "biuf" and b.dtype.kind in "biuf" and a.size:
                    ws.max_abs_diff = float(np.max(np.abs(a.astype(np.float64)
                                                          - b.astype(np.float64))))
            except Exception:  # noqa: BLE001
                pass
        ch.weights = ws
    return ch
