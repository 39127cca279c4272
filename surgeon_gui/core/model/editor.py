"""Editing helpers every pass and manual edit shares.

A :class:`GraphEditor` owns a private copy of a GraphDef and offers the few rewiring operations
graph surgery is made of: bypass a node, rewire every reader of a tensor (one at a time, or many
at once with a :class:`Substitution`), replace or remove nodes, remove what a rewrite left unread
(:meth:`GraphEditor.remove_unread`), drop what the outputs do not need
(:meth:`GraphEditor.prune`), sort topologically, and hand out fresh node names. It records which
nodes were removed, added and changed so a pass can report exactly what it did. The input
GraphDef is never touched.

:func:`protected_names` says which nodes a pass must not remove or rename.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from .graph import (
    INPUT_OPS,
    Graph,
    GraphDef,
    GraphError,
    NodeDef,
    copy_graph_def,
    format_input,
    node_of,
    parse_input,
)


class GraphEditor:
    """A mutable working copy of a GraphDef with change tracking.

    Copy on write: the copy is made by the first change (or the first access to
    :attr:`graph_def` or a writable node). Until then the editor reads the input, and
    :meth:`result` of an editor that changed nothing is the input itself: a pass that finds
    nothing costs no copy. (A protobuf message cannot share its nodes with another, so the first
    change copies the whole GraphDef once; see benchmarks/results.md.)
    """

    def __init__(self, graph: Graph | GraphDef, copy: bool = True):
        gd = graph.graph_def if isinstance(graph, Graph) else graph
        self._base = gd
        self._work: GraphDef | None = None if copy else gd
        self.removed: set[str] = set()
        self.added: set[str] = set()
        self.changed: set[str] = set()
        self._index_cache: dict[str, NodeDef] | None = None  # built on first use
        self._pending_removal: set[str] = set()
        self._handed_out: set[str] = set()

    @property
    def graph_def(self) -> GraphDef:
        """The working copy (made now if it was not yet): write to it freely."""
        if self._work is None:
            # node by node: a worker copying a big graph must not hold the GIL for it
            self._work = copy_graph_def(self._base)
            self._index_cache = None
        return self._work

    @property
    def copied(self) -> bool:
        """Whether the working copy exists (the input was not copied while it did not)."""
        return self._work is not None and self._work is not self._base

    @property
    def _current(self) -> GraphDef:
        """What the editor holds now, for reading only (the input until the first change)."""
        return self._work if self._work is not None else self._base

    @property
    def _index(self) -> dict[str, NodeDef]:
        if self._index_cache is None:
            self._index_cache = {n.name: n for n in self._current.node}
        return self._index_cache

    @_index.setter
    def _index(self, value: dict[str, NodeDef]) -> None:
        self._index_cache = value

    # ------------------------------------------------------------------ access
    def __contains__(self, name: str) -> bool:
        n = node_of(name)
        return n in self._index and n not in self._pending_removal

    def node(self, name: str) -> NodeDef:
        """The node ``name``, to change (call :meth:`mark_changed` after changing it)."""
        n = node_of(name)
        if n not in self._index or n in self._pending_removal:
            raise GraphError(f"no node named {n!r}")
        self.graph_def  # noqa: B018 - writable from here on: make the copy
        return self._index[n]

    def nodes(self, read_only: bool = False) -> Iterable[NodeDef]:
        """The current nodes in order, to change (or, with ``read_only``, only to read: that
        makes no copy)."""
        gd = self._current if read_only else self.graph_def
        return (n for n in gd.node if n.name not in self._pending_removal)

    def graph(self, inputs=None, outputs=None) -> Graph:
        """A fresh index over the current state (flushes pending removals); read only."""
        self.flush()
        return Graph(self._current, inputs, outputs)

    def consumers(self, name: str) -> list[tuple[NodeDef, int]]:
        """(consumer node, input index) pairs reading any output of ``name`` (O(graph))."""
        target = node_of(name)
        out = []
        for node in self.nodes(read_only=True):
            for i, text in enumerate(node.input):
                if parse_input(text).node == target:
                    out.append((node, i))
        return out

    # ------------------------------------------------------------------ changes
    def mark_changed(self, name: str) -> None:
        if name not in self.added:
            self.changed.add(name)

    def add_node(self, node: NodeDef) -> NodeDef:
        if node.name in self:
            raise GraphError(f"a node named {node.name!r} already exists")
        new = self.graph_def.node.add()
        new.CopyFrom(node)
        self._index[new.name] = new
        self._pending_removal.discard(new.name)
        if new.name in self.removed:
            self.removed.discard(new.name)
            self.changed.add(new.name)
        else:
            self.added.add(new.name)
        return new

    def fresh_name(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``, …: a name no node has and that was not handed
        out before (so a pass can plan several new nodes before adding any)."""
        new, i = base, 1
        while new in self._index or new in self._handed_out:
            new, i = f"{base}_{i}", i + 1
        self._handed_out.add(new)
        return new

    def replace_node(self, name: str, node: NodeDef) -> NodeDef:
        """Put ``node`` in place of the node ``name`` (same position in the node list)."""
        old = self.node(name)
        keep_name = old.name
        old.CopyFrom(node)
        if old.name != keep_name:
            del self._index[keep_name]
            self._index[old.name] = old
        self.mark_changed(old.name)
        return old

    def remove(self, names: Iterable[str]) -> None:
        """Remove nodes (readers are not rewired: call :meth:`rewire` or :meth:`bypass` first)."""
        for n in names:
            n = node_of(n)
            if n in self._index and n not in self._pending_removal:
                self._pending_removal.add(n)
                if n in self.added:
                    self.added.discard(n)
                else:
                    self.removed.add(n)
                self.changed.discard(n)

    def remove_unread(self, candidates: Iterable[str], keep: Iterable[str] = ()) -> list[str]:
        """Remove the candidates nothing reads any more, repeatedly (a removed node's inputs
        may become unread in turn); returns the removed names in node order.

        The cleanup after a rewrite: only candidates go (typically what the rewritten nodes
        read, or every node that had readers before the pass: see :func:`read_nodes`), never
        ``keep``, and never a node something still reads.
        """
        self.flush()
        keep = set(keep)
        cand = {c for c in candidates if c in self._index and c not in keep}
        if not cand:
            return []
        readers: dict[str, int] = defaultdict(int)
        for node in self._current.node:
            for t in node.input:
                src = parse_input(t).node
                if src in cand:
                    readers[src] += 1
        todo = [c for c in cand if not readers[c]]
        dead: set[str] = set()
        while todo:
            name = todo.pop()
            if name in dead:
                continue
            dead.add(name)
            for t in self._index[name].input:
                src = parse_input(t).node
                if src in cand and src not in dead:
                    readers[src] -= 1
                    if not readers[src]:
                        todo.append(src)
        order = {n.name: i for i, n in enumerate(self._current.node)}
        removed = sorted(dead, key=order.get)
        self.remove(removed)
        self.flush()
        return removed

    def drop_stale_colocation(self) -> list[str]:
        """Remove ``_class: loc:@X`` entries naming nodes that no longer exist (TensorFlow
        refuses to import a node colocated with a missing node); returns the nodes changed."""
        self.flush()
        present = self._index
        fixed = []
        for n in list(self.nodes(read_only=True)):
            kept = _kept_locations(n, lambda x: x not in present)
            if kept is not None:
                _set_locations(self.node(n.name), kept)
                self.mark_changed(n.name)
                fixed.append(n.name)
        return fixed

    def flush(self) -> None:
        if not self._pending_removal:
            return
        self.graph_def  # noqa: B018 - removing is a change: make the copy
        # Delete in place, back to front: no node (nor its weights) is copied, and the
        # GraphDef keeps its versions/library.
        nodes = self.graph_def.node
        for i in range(len(nodes) - 1, -1, -1):
            if nodes[i].name in self._pending_removal:
                del nodes[i]
        self._index = {n.name: n for n in nodes}
        _drop_stale_colocation(self.graph_def.node, self._pending_removal, self)
        self._pending_removal.clear()

    def rewire(self, old: str, new: str, only: Iterable[str] | None = None,
               keep_control: bool = True) -> int:
        """Make every data reader of tensor ``old`` read tensor ``new`` instead.

        ``old``/``new`` are tensor names (``a`` or ``a:1``). Control readers of the old node
        (``^a``) are moved to ``^node_of(new)`` when ``keep_control`` (and dropped otherwise).
        Returns the number of inputs changed. ``only`` restricts to some consumers.
        """
        o = parse_input(old)
        n = parse_input(new)
        only_set = set(only) if only is not None else None
        count = 0
        for node in self.nodes():
            if only_set is not None and node.name not in only_set:
                continue
            changed = False
            new_inputs = []
            for text in node.input:
                ref = parse_input(text)
                if ref.node == o.node and not ref.control and ref.port == max(o.port, 0):
                    new_inputs.append(format_input(n.node, max(n.port, 0)))
                    changed = True
                elif ref.node == o.node and ref.control and o.port <= 0:
                    if keep_control:
                        new_inputs.append(format_input(n.node, control=True))
                    changed = True
                else:
                    new_inputs.append(text)
            if changed:
                _set_inputs(node, _dedupe_controls(new_inputs, node.name))
                self.mark_changed(node.name)
                count += 1
        return count

    def bypass(self, name: str, input_index: int = 0) -> None:
        """Remove ``name``; its readers read its ``input_index``-th data input instead.

        The node's own control inputs are handed to each of its readers, so ordering constraints
        survive; readers of its control output (``^name``) depend on the producer instead.
        Only output port 0 can be bypassed (it maps to the chosen input).
        """
        node = self.node(name)
        data = [parse_input(t) for t in node.input if not t.startswith("^")]
        controls = [parse_input(t).node for t in node.input if t.startswith("^")]
        if input_index >= len(data):
            raise GraphError(f"cannot bypass {name}: it has no data input {input_index}")
        src = data[input_index]
        for reader in self.nodes():
            if reader.name == name:
                continue
            new_inputs, changed = [], False
            for text in reader.input:
                ref = parse_input(text)
                if ref.node != node.name:
                    new_inputs.append(text)
                    continue
                changed = True
                if ref.control:
                    new_inputs.append(format_input(src.node, control=True))
                elif ref.port == 0:
                    new_inputs.append(format_input(src.node, src.port))
                else:
                    raise GraphError(f"cannot bypass {name}: {reader.name} reads its output "
                                     f"{ref.port}", nodes=[name, reader.name])
            if changed:
                new_inputs += ["^" + c for c in controls]
                _set_inputs(reader, _dedupe_controls(new_inputs, reader.name))
                self.mark_changed(reader.name)
        self.remove([name])

    def unneeded(self, keep: Iterable[str], outputs: Iterable[str]) -> list[str]:
        """Nodes the outputs do not need (through data or control inputs), in node order.
        Nodes in ``keep`` are needed too (with what they need)."""
        g = self.graph()
        roots = [node_of(o) for o in outputs] + [node_of(k) for k in keep]
        needed = g.upstream([r for r in roots if r in g.nodes])
        return [n.name for n in g.graph_def.node if n.name not in needed]

    def prune(self, keep: Iterable[str], outputs: Iterable[str]) -> set[str]:
        """Remove every node the outputs do not need (:meth:`unneeded`); returns their names."""
        dead = set(self.unneeded(keep, outputs))
        self.remove(dead)
        self.flush()
        return dead

    def sort(self) -> None:
        """Reorder nodes topologically (stable)."""
        self.flush()
        order = Graph(self.graph_def).topological_order()
        pos = {n: i for i, n in enumerate(order)}
        nodes = sorted(self.graph_def.node, key=lambda n: pos[n.name])
        copies = []
        for n in nodes:
            c = NodeDef()
            c.CopyFrom(n)
            copies.append(c)
        del self.graph_def.node[:]
        self.graph_def.node.extend(copies)
        self._index = {n.name: n for n in self.graph_def.node}

    def result(self) -> GraphDef:
        """The edited GraphDef; the input itself when nothing was changed (read it only)."""
        self.flush()
        return self._current


def _drop_stale_colocation(nodes, removed: set[str], editor: "GraphEditor") -> None:
    """Drop ``_class: loc:@x`` entries naming removed nodes: TensorFlow refuses to import a
    node that asks to be colocated with a node that does not exist."""
    for node in nodes:
        kept = _kept_locations(node, removed.__contains__)
        if kept is not None:
            _set_locations(node, kept)
            editor.mark_changed(node.name)


def _kept_locations(node: NodeDef, stale) -> list[bytes] | None:
    """The node's ``_class`` entries without the ``loc:@X`` whose X is ``stale`` (None when
    none is)."""
    if "_class" not in node.attr:
        return None
    locs = list(node.attr["_class"].list.s)
    kept = [s for s in locs
            if not (s.startswith(b"loc:@") and stale(s[5:].decode("utf-8", "replace")))]
    return None if len(kept) == len(locs) else kept


def _set_locations(node: NodeDef, kept: list[bytes]) -> None:
    if kept:
        del node.attr["_class"].list.s[:]
        node.attr["_class"].list.s.extend(kept)
    else:
        del node.attr["_class"]


def _set_inputs(node: NodeDef, inputs: list[str]) -> None:
    del node.input[:]
    node.input.extend(inputs)


def _dedupe_controls(inputs: list[str], self_name: str) -> list[str]:
    """Data inputs first in order, then control inputs without duplicates, self-loops, or
    control inputs on nodes already read as data (those are implied)."""
    data = [t for t in inputs if not t.startswith("^")]
    data_nodes = {parse_input(t).node for t in data}
    seen = set()
    controls = []
    for t in inputs:
        if not t.startswith("^"):
            continue
        n = t[1:]
        if n in seen or n == self_name or n in data_nodes:
            continue
        seen.add(n)
        controls.append(t)
    return data + controls


def protected_names(graph: Graph, detected_outputs: bool = False) -> set[str]:
    """Nodes a pass must never remove or rename: the graph's given inputs and outputs.

    With ``detected_outputs``, also the detected outputs when no outputs were given (the sinks:
    removing one would change what the graph computes for the user).
    """
    names = set()
    for n in (graph.given_inputs or []) + (graph.given_outputs or []):
        names.add(node_of(n))
    if detected_outputs and graph.given_outputs is None:
        names.update(parse_input(o).node for o in graph.outputs)
    return names


def protection_reason(graph: Graph, name: str) -> str:
    """Why :func:`protected_names` (with detected outputs) keeps ``name``, for a refusal."""
    if name in protected_names(graph):
        return "it is named as a graph input or output"
    return "it is a graph output (nothing reads it; give outputs to change this)"


def read_nodes(graph: Graph) -> list[str]:
    """Nodes something reads in ``graph``: after a rewrite, those of them nothing reads any more
    are what the rewrite left dead (sinks are outputs or run targets and stay)."""
    return [n.name for n in graph.graph_def.node if graph.consumers(n.name)]


def identity_node(name: str, tensor: str, dtype: int | None, device: str = "") -> NodeDef:
    """An Identity named ``name`` reading ``tensor``: keeps a protected name alive."""
    node = NodeDef(name=name, op="Identity")
    node.input.append(tensor)
    if dtype is not None:
        node.attr["T"].type = dtype
    if device:
        node.device = device
    return node


def attr_dtype(node: NodeDef, *names: str) -> int | None:
    """The node's dtype attribute (the first of ``names`` set, default ``T`` then ``dtype``)."""
    for n in names or ("T", "dtype"):
        if n in node.attr and node.attr[n].type:
            return node.attr[n].type
    return None


class Substitution:
    """Batch rewiring: tensor → tensor (with extra control inputs) and ^node → ^nodes.

    Chains are followed (a → b, b → c gives a → c) so bypassing many nodes at once costs one
    pass over the graph instead of one per node.
    """

    def __init__(self):
        #: (node, port) → ((node, port), [control nodes to add to the reader])
        self.data: dict[tuple[str, int], tuple[tuple[str, int], list[str]]] = {}
        #: node → nodes a control reader (^node) should depend on instead (may be empty)
        self.control: dict[str, list[str]] = {}
        #: nodes a *rewritten* control edge may skip (e.g. input-less Consts: nothing to wait for)
        self.pointless: set[str] = set()

    def tensor(self, src: str, dst: str, controls: Iterable[str] = ()) -> None:
        s, d = parse_input(src), parse_input(dst)
        self.data[(s.node, max(s.port, 0))] = ((d.node, max(d.port, 0)), list(controls))

    def control_to(self, node: str, replacements: Iterable[str]) -> None:
        self.control[node] = list(replacements)

    def __bool__(self) -> bool:
        return bool(self.data or self.control)

    def resolve_data(self, key: tuple[str, int]) -> tuple[tuple[str, int], list[str]]:
        controls: list[str] = []
        seen = set()
        while key in self.data and key not in seen:
            seen.add(key)
            key, extra = self.data[key]
            controls.extend(extra)
        return key, self.resolve_controls(controls, originals=False)

    def resolve_controls(self, nodes: Iterable[str], originals: bool = True) -> list[str]:
        """Follow control replacements; an input that was not replaced is kept as it is
        (``originals``), a replacement that is ``pointless`` is skipped."""
        nodes = list(nodes)
        out: list[str] = []
        stack = list(reversed(nodes))
        seen = set()
        originals = set(nodes) if originals else set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if n in self.control:
                stack.extend(reversed(self.control[n]))
            elif n in originals or n not in self.pointless:
                out.append(n)
        return out

    def apply(self, editor: GraphEditor, skip: Iterable[str] = ()) -> list[str]:
        """Rewrite every node's inputs; returns the names of the nodes changed."""
        skip = set(skip)
        changed = []
        for node in editor.nodes():
            if node.name in skip:
                continue
            new_data: list[str] = []
            new_ctrl: list[str] = []
            for text in node.input:
                ref = parse_input(text)
                if ref.control:
                    new_ctrl.extend(self.resolve_controls([ref.node]))
                else:
                    (n, p), extra = self.resolve_data((ref.node, ref.port))
                    new_data.append(format_input(n, p))
                    new_ctrl.extend(extra)
            data_nodes = {parse_input(t).node for t in new_data}
            ctrl, seen = [], set()
            for c in new_ctrl:
                if c in seen or c == node.name or c in data_nodes:
                    continue
                seen.add(c)
                ctrl.append("^" + c)
            new_inputs = new_data + ctrl
            if new_inputs != list(node.input):
                del node.input[:]
                node.input.extend(new_inputs)
                editor.mark_changed(node.name)
                changed.append(node.name)
        return changed


def is_input_op(node: NodeDef) -> bool:
    return node.op in INPUT_OPS
