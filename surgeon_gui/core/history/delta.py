"""What one step changed in a GraphDef, stored so that it can be undone and redone exactly.

An undo history that kept a full copy of the graph per step would keep a second copy of every
weight (350 MB for NASNetLarge) for each step. A :class:`GraphDelta` keeps only

- the serialized old and new versions of the nodes whose bytes differ (changed, removed, added),
- where removed and added nodes sat in the node list (or, when a step reorders the common nodes,
  as topological sorting does, the two full orders as name lists: names only, never contents),
- the top-level fields other than ``node`` (``versions``, ``library``, ...) only when they differ.

:meth:`GraphDelta.apply` and :meth:`GraphDelta.revert` edit a GraphDef *in place*: changed nodes
are re-parsed from their stored bytes, added ones appended, and the node list is reordered with
the repeated field's own ``sort`` (which moves pointers, not weights) before removed nodes are cut
off its end. So undo costs time and memory in proportion to the change, and the result serializes
to exactly the bytes it had (``SerializeToString(deterministic=True)``).

Big node versions (weights above :data:`SPILL_THRESHOLD` bytes) are written to a session
scratch file (a :class:`SpillStore`, an unlinked temporary file) and read back on undo/redo, so
undoing a batch-norm fold on a 350 MB model keeps the old weights on disk, not in memory: RAM per
step grows with the small changes (rewired nodes, orders), disk with the weights a step replaced.

Nodes are compared with protobuf message equality first: upb compares the fields bit for bit
(``-0.0 != 0.0``, field presence counts), which is the same as comparing deterministic bytes,
and it runs at memory speed (about 25 ms for 350 MB here) where serializing every node takes
about a second. ``GraphDelta.between(..., exact=True)`` compares serialized bytes instead.
"""
from __future__ import annotations

import os
import tempfile
import threading
import operator
from contextlib import contextmanager
from itertools import compress, islice
from dataclasses import dataclass, field
from typing import Iterable, Union

from ..model.graph import Graph, GraphDef, NodeDef, copy_without_nodes
from ..model.graph import copy_graph_def as _copy_graph_def


def _ser(msg) -> bytes:
    return msg.SerializeToString(deterministic=True)


#: Up to this many nodes added plus removed, undo/redo deletes and inserts them in place;
#: more are placed by one sort of the node list.
_FEW = 32

#: Node versions at least this big go to the scratch file (weights; not wiring).
SPILL_THRESHOLD = 256 * 1024


@dataclass(frozen=True)
class Spilled:
    """Where one stored node version lives in a :class:`SpillStore`."""
    store: "SpillStore"
    offset: int
    length: int

    def __len__(self) -> int:
        return self.length


class SpillStore:
    """An append-only scratch file for big node versions (deleted when the process ends).

    Space of steps dropped from the history is not reclaimed during a session (an append-only
    file keeps writes sequential and reads a single ``pread``).
    """

    def __init__(self, threshold: int | None = SPILL_THRESHOLD, directory: str | None = None):
        self.threshold = threshold
        self.directory = directory
        self._file = None
        self._size = 0
        self._lock = threading.Lock()
        #: Why spilling stopped (the scratch file could not be written), or "".
        self.failed = ""

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def put(self, data: bytes) -> "bytes | Spilled":
        if self.threshold is None or len(data) < self.threshold or self.failed:
            return data
        with self._lock:
            try:
                if self._file is None:
                    self._file = tempfile.TemporaryFile(prefix="graph-surgeon-undo-",
                                                        dir=self.directory)
                fd = self._file.fileno()
                offset = self._size
                view = memoryview(data)
                done = 0
                while done < len(data):
                    done += os.pwrite(fd, view[done:], offset + done)
            except OSError as e:
                # A full or read-only temp folder: keep the history in memory rather than fail
                # the step (it costs RAM, never correctness).
                self.failed = str(e)
                return data
            self._size += len(data)
        return Spilled(self, offset, len(data))

    def get(self, ref: "Spilled") -> bytes:
        fd = self._file.fileno()
        parts, done = [], 0
        while done < ref.length:
            chunk = os.pread(fd, ref.length - done, ref.offset + done)
            if not chunk:
                raise OSError("the undo scratch file is shorter than expected")
            parts.append(chunk)
            done += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)


#: The store deltas use unless given another.
DEFAULT_STORE = SpillStore()

Stored = Union[bytes, Spilled]


#: Per thread: spilled node versions already read (:func:`preloaded`), used once each.
_local = threading.local()


def _load(v: Stored) -> bytes:
    if not isinstance(v, Spilled):
        return v
    ready = getattr(_local, "ready", None)
    if ready:
        data = ready.pop(v, None)
        if data is not None:
            return data
    return v.store.get(v)


def read_spilled(refs: Iterable[Spilled]) -> dict[Spilled, bytes]:
    """Read spilled node versions from their scratch files (any thread: the reads release the
    GIL), for :func:`preloaded`."""
    return {r: r.store.get(r) for r in refs}


@contextmanager
def preloaded(ready: dict[Spilled, bytes] | None):
    """While the block runs on this thread, node versions found in ``ready`` (from
    :func:`read_spilled`) are taken from it instead of the scratch file; each is used once and
    dropped from ``ready``."""
    before = getattr(_local, "ready", None)
    _local.ready = ready
    try:
        yield
    finally:
        _local.ready = before


def _top_fields(gd: GraphDef) -> dict[str, object]:
    """Every set top-level field except ``node``: message fields as bytes, scalars as values."""
    return {fd.name: value for fd, value in gd.ListFields() if fd.name != "node"}


@dataclass
class GraphDelta:
    """The difference between two GraphDefs, by node, enough to go either way exactly."""
    #: name -> serialized NodeDef before the step (for changed and removed nodes), in memory
    #: or, when big, in the scratch file (:class:`Spilled`)
    old_nodes: dict[str, Stored] = field(default_factory=dict)
    #: name -> serialized NodeDef after the step (for changed and added nodes)
    new_nodes: dict[str, Stored] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    added: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    #: (index in the old node list, name) of removed nodes, ascending
    removed_at: list[tuple[int, str]] = field(default_factory=list)
    #: (index in the new node list, name) of added nodes, ascending
    added_at: list[tuple[int, str]] = field(default_factory=list)
    #: Full orders, only when the step reordered nodes both graphs have.
    old_order: list[str] | None = None
    new_order: list[str] | None = None
    #: Top-level fields that differ: name -> serialized message / scalar, None = unset.
    old_fields: dict[str, object] = field(default_factory=dict)
    new_fields: dict[str, object] = field(default_factory=dict)
    #: Set when the graphs cannot be matched by name (duplicate names): whole graphs stored.
    old_full: bytes | None = None
    new_full: bytes | None = None
    #: The document's chosen (inputs, outputs) before/after, when the step changed them
    #: (a GraphDef has no notion of them; :class:`~surgeon_gui.core.history.document.Document` sets these).
    old_io: tuple | None = None
    new_io: tuple | None = None
    #: Unique per step (set by the Document): names the state this delta leads to.
    serial: int = 0
    #: Changed nodes whose op type changed: name -> (old op, new op) (a folded batch norm
    #: that became a BiasAdd of the same name); what :meth:`Document.origins` reads.
    op_changes: dict[str, tuple[str, str]] = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    @classmethod
    def between(cls, old: GraphDef, new: GraphDef, exact: bool = False,
                store: SpillStore | None = None, old_names: list[str] | None = None,
                new_names: list[str] | None = None) -> "GraphDelta":
        """The delta taking ``old`` to ``new`` (neither is modified); big node versions go to
        ``store`` (default :data:`DEFAULT_STORE`). ``old_names``/``new_names``: the node names
        in order when already known (a Graph index's ``order``), saving a read of each.

        The nodes both graphs have are paired and compared in C (``map`` over the aligned
        node lists): no Python-level step per unchanged node."""
        put = (store or DEFAULT_STORE).put
        d = cls()
        old_list, new_list = list(old.node), list(new.node)
        if old_names is None or len(old_names) != len(old_list):
            old_names = [n.name for n in old_list]
        if new_names is None or len(new_names) != len(new_list):
            new_names = [n.name for n in new_list]
        old_index = dict(zip(old_names, range(len(old_names))))
        new_index = dict(zip(new_names, range(len(new_names))))
        if len(old_index) != len(old_names) or len(new_index) != len(new_names):
            d.old_full, d.new_full = _ser(old), _ser(new)
            d.removed = set(old_index) - set(new_index)
            d.added = set(new_index) - set(old_index)
            d.changed = set(old_index) & set(new_index)
            return d
        removed = old_index.keys() - new_index.keys()
        added = new_index.keys() - old_index.keys()
        common = [n for n in old_names if n not in removed] if removed else old_names
        a_nodes = list(map(old_list.__getitem__, map(old_index.__getitem__, common))) \
            if removed else old_list
        b_nodes = list(map(new_list.__getitem__, map(new_index.__getitem__, common)))
        if exact:
            differ = [_ser(a) != _ser(b) for a, b in zip(a_nodes, b_nodes)]
        else:
            differ = map(operator.ne, a_nodes, b_nodes)
        for name in compress(common, differ):
            a, b = old_list[old_index[name]], new_list[new_index[name]]
            d.changed.add(name)
            d.old_nodes[name] = put(_ser(a))
            d.new_nodes[name] = put(_ser(b))
            if a.op != b.op:
                d.op_changes[name] = (a.op, b.op)
        for i, name in sorted((old_index[n], n) for n in removed):
            d.removed.add(name)
            d.old_nodes[name] = put(_ser(old_list[i]))
            d.removed_at.append((i, name))
        for j, name in sorted((new_index[n], n) for n in added):
            d.added.add(name)
            d.new_nodes[name] = put(_ser(new_list[j]))
            d.added_at.append((j, name))
        d.added_at.sort()
        common_old = [n for n in old_names if n not in d.removed] if d.removed else old_names
        common_new = [n for n in new_names if n not in d.added] if d.added else new_names
        if common_old != common_new:
            d.old_order, d.new_order = list(old_names), list(new_names)
        of, nf = _top_fields(old), _top_fields(new)
        for key in set(of) | set(nf):
            a, b = of.get(key), nf.get(key)
            if a is None or b is None or a != b:
                d.old_fields[key] = _field_bytes(a)
                d.new_fields[key] = _field_bytes(b)
        return d

    @classmethod
    def from_record(cls, old: Graph, new: Graph, old_nodes: dict,
                    store: SpillStore | None = None) -> "GraphDelta":
        """The delta of a step that edited ``old``'s GraphDef *in place* into ``new`` (the
        pipeline's working graph), from the old NodeDefs of the nodes it touched
        (``PassResult.old_nodes`` of a pass run with ``record=True``; None for an added node).

        Equal to :meth:`between` on an intact copy of the old graph, at the cost of the
        touched nodes plus one comparison of the two name orders, not a comparison of every
        node. ``old`` is the index of the graph as it was: its node order is still the old one
        (its NodeDefs may have changed since; they are not read). Top-level fields are not
        compared: a pass edits them only on a copy (then call :meth:`between`)."""
        put = (store or DEFAULT_STORE).put
        d = cls()
        old_pos, new_pos, new_nodes = old.order, new.order, new.nodes
        for name, before in old_nodes.items():
            after = new_nodes.get(name)
            if before is None:
                if after is None:
                    continue            # added and removed again within the step
                if name in old_pos:
                    raise ValueError(f"{name!r} was recorded as added but the graph had it")
                d.added.add(name)
                d.new_nodes[name] = put(_ser(after))
            elif after is None:
                d.removed.add(name)
                d.old_nodes[name] = put(_ser(before))
            elif before is not after and before != after:
                d.changed.add(name)
                d.old_nodes[name] = put(_ser(before))
                d.new_nodes[name] = put(_ser(after))
                if before.op != after.op:
                    d.op_changes[name] = (before.op, after.op)
        if len(old_pos) - len(d.removed) + len(d.added) != len(new_pos) \
                or not all(n in old_pos for n in d.removed):
            raise ValueError("the recorded nodes do not account for the step's change")
        d.removed_at = sorted((old_pos[n], n) for n in d.removed)
        d.added_at = sorted((new_pos[n], n) for n in d.added)
        common_old = [n for n in old_pos if n not in d.removed] if d.removed else list(old_pos)
        common_new = [n for n in new_pos if n not in d.added] if d.added else list(new_pos)
        if common_old != common_new:
            d.old_order, d.new_order = list(old_pos), list(new_pos)
        return d

    # ------------------------------------------------------------------ properties
    @property
    def empty(self) -> bool:
        return (self.old_full is None and not self.removed and not self.added
                and not self.changed and self.old_order is None and not self.old_fields
                and self.old_io == self.new_io)

    @property
    def spilled_bytes(self) -> int:
        """Bytes of node versions this delta keeps in the scratch file (not in memory)."""
        return sum(v.length for v in list(self.old_nodes.values()) + list(self.new_nodes.values())
                   if isinstance(v, Spilled))

    @property
    def nbytes(self) -> int:
        """Approximate memory held by this delta (spilled node versions not counted)."""
        total = sum(len(b) for b in self.old_nodes.values() if not isinstance(b, Spilled))
        total += sum(len(b) for b in self.new_nodes.values() if not isinstance(b, Spilled))
        total += sum(len(n) + 8 for n in (self.old_order or ())) + sum(
            len(n) + 8 for n in (self.new_order or ()))
        total += sum(len(n) + 16 for _, n in self.removed_at + self.added_at)
        for v in list(self.old_fields.values()) + list(self.new_fields.values()):
            total += len(v) if isinstance(v, (bytes, str)) else 8
        total += len(self.old_full or b"") + len(self.new_full or b"")
        return total

    def spilled_reads(self, forward: bool) -> list[Spilled]:
        """The spilled node versions :meth:`apply` (``forward``) or :meth:`revert` reads."""
        target = self.new_nodes if forward else self.old_nodes
        return [v for v in target.values() if isinstance(v, Spilled)]

    def summary(self) -> str:
        return f"-{len(self.removed)} +{len(self.added)} ~{len(self.changed)} nodes"

    # ------------------------------------------------------------------ applying
    def apply(self, gd: GraphDef) -> None:
        """Turn ``gd`` (equal to the old graph) into the new graph, in place."""
        self._go(gd, forward=True)

    def revert(self, gd: GraphDef) -> None:
        """Turn ``gd`` (equal to the new graph) back into the old graph, in place."""
        self._go(gd, forward=False)

    def apply_indexed(self, graph: Graph, inputs=None, outputs=None) -> Graph:
        """:meth:`apply` to ``graph.graph_def`` in place, returning its index updated in
        proportion to the change (:meth:`Graph.updated`) instead of rebuilt; ``inputs`` and
        ``outputs`` are the new given ones."""
        return self._go_indexed(graph, True, inputs, outputs)

    def revert_indexed(self, graph: Graph, inputs=None, outputs=None) -> Graph:
        """:meth:`revert` with the index updated (see :meth:`apply_indexed`)."""
        return self._go_indexed(graph, False, inputs, outputs)

    def _go_indexed(self, graph: Graph, forward: bool, inputs, outputs) -> Graph:
        gd = graph.graph_def
        if self.old_full is not None or graph._duplicates:
            self._go(gd, forward)
            return Graph(gd, inputs, outputs, source=graph.source)
        gone, come = (self.removed, self.added) if forward else (self.added, self.removed)
        nodes = graph.nodes
        old = {}
        if not graph.big_change(len(gone) + len(come) + len(self.changed)):
            for n in gone:
                node = nodes[n]
                old[n] = (node.op, list(node.input))
            for n in self.changed:
                node = nodes[n]
                old[n] = (node.op, list(node.input))
        names = self._go(gd, forward, graph)
        g = graph.updated(gone, come, self.changed, old, names,
                          reordered=self.old_order is not None, inputs=inputs, outputs=outputs)
        if len(g.nodes) != len(gd.node):   # (a safety net: never an index of another graph)
            return Graph(gd, inputs, outputs, source=graph.source)
        return g

    def _go(self, gd: GraphDef, forward: bool, index: Graph | None = None) -> list[str] | None:
        """Edit ``gd`` in place; with ``index`` (a Graph of ``gd`` as it is, no duplicate
        names) its node map and order are used instead of reading every node's name. Returns
        the new node order when nodes were added, removed or reordered (else None)."""
        if self.old_full is not None:
            gd.Clear()
            gd.ParseFromString(self.new_full if forward else self.old_full)
            return None
        if forward:
            target, gone, come, come_at = (self.new_nodes, self.removed, self.added,
                                           self.added_at)
            dst_order, fields = self.new_order, self.new_fields
        else:
            target, gone, come, come_at = (self.old_nodes, self.added, self.removed,
                                           self.removed_at)
            dst_order, fields = self.old_order, self.old_fields
        nodes = gd.node
        if self.changed:
            if index is not None:
                by_name = index.nodes
                for name in self.changed:
                    by_name[name].ParseFromString(_load(target[name]))
            else:
                for node in nodes:
                    if node.name in self.changed:
                        node.ParseFromString(_load(target[node.name]))
        order = None
        if gone or come or dst_order is not None:
            current = list(index.order) if index is not None else [n.name for n in nodes]
            if dst_order is None:
                # Common nodes keep their relative order: drop the gone ones, put the new ones
                # back at their recorded indices (ascending, so each index is final).
                kept = [n for n in current if n not in gone] if gone else current
                order = _merge_at(kept, come_at)
            else:
                order = dst_order
            if index is None:
                for name in (n for n in order if n in come):
                    nodes.add().ParseFromString(_load(target[name]))
                pos = {n: i for i, n in enumerate(order)}
                last = len(order)
                nodes.sort(key=lambda n: pos.get(n.name, last))
            elif dst_order is None and len(gone) + len(come) <= _FEW:
                # A few nodes: delete and insert them where they go (each a memmove of the
                # node pointers in C), no pass over the other nodes.
                pos = index.order
                for p in sorted((pos[n] for n in gone), reverse=True):
                    del nodes[p]
                insert, empty = nodes.insert, NodeDef()
                for i, name in come_at:
                    insert(i, empty)
                    nodes[i].ParseFromString(_load(target[name]))
                gone = ()
            else:
                # Positions by wrapper identity (the index holds every node's wrapper, and
                # protobuf hands out the same one while it lives): no name read per node.
                by_name = index.nodes
                made = {}
                add = nodes.add
                for _, name in come_at:   # ascending positions: appending them in this
                    w = made[name] = add()  # order is the final order when all go last
                    w.ParseFromString(_load(target[name]))
                if gone or dst_order is not None or not _appended_in_order(come_at,
                                                                           len(current)):
                    ws = list(map(by_name.get, order))   # (added ones: None, then made)
                    for i, name in come_at:
                        if i < len(ws) and order[i] == name:
                            ws[i] = made[name]
                    if None in ws:
                        ws = [made[n] if n in made else by_name[n] for n in order]
                    ids = dict(zip(map(id, ws), range(len(ws))))
                    last = len(order)
                    nodes.sort(key=lambda n: ids.get(id(n), last))
            if gone:
                del nodes[len(order):]
        for key, value in fields.items():
            _set_field(gd, key, value)
        return order

    def inverse(self) -> "GraphDelta":
        """The delta that undoes this one."""
        return GraphDelta(
            old_nodes=self.new_nodes, new_nodes=self.old_nodes, removed=set(self.added),
            added=set(self.removed), changed=set(self.changed), removed_at=list(self.added_at),
            added_at=list(self.removed_at), old_order=self.new_order, new_order=self.old_order,
            old_fields=self.new_fields, new_fields=self.old_fields, old_full=self.new_full,
            new_full=self.old_full, old_io=self.new_io, new_io=self.old_io,
            op_changes={n: (b, a) for n, (a, b) in self.op_changes.items()})


def build_state(graph: Graph, moves: list[tuple["GraphDelta", bool]]) -> GraphDef | None:
    """A new GraphDef equal to ``graph.graph_def`` after ``moves`` (each a delta and whether it
    is applied (True) or reverted), built apart: ``graph`` is only read. Each node is written
    once, either copied from ``graph`` (unchanged by the moves) or parsed from its stored
    version (spilled ones are read from the scratch file here), node by node so that no call
    holds the GIL for long. None when a move stores whole graphs or ``graph`` has duplicated
    names (then the in-place path is the one that knows how).

    This is how a History jump on a big model moves off the GUI thread: the GUI thread only
    swaps the built graph in (see :meth:`Document.prepare_move`). Serializes to the same bytes
    as :meth:`GraphDelta.apply`/:meth:`GraphDelta.revert` in place."""
    if graph._duplicates or any(d.old_full is not None for d, _ in moves):
        return None
    order = list(graph.order)
    src: dict[str, Stored] = {}       # name -> stored version; absent: as in ``graph``
    fields: dict[str, object] = {}
    for d, forward in moves:
        if forward:
            target, gone, come, come_at, dst_order, f = (d.new_nodes, d.removed, d.added,
                                                         d.added_at, d.new_order, d.new_fields)
        else:
            target, gone, come, come_at, dst_order, f = (d.old_nodes, d.added, d.removed,
                                                         d.removed_at, d.old_order, d.old_fields)
        for name in d.changed:
            src[name] = target[name]
        if gone or come or dst_order is not None:
            if dst_order is None:
                order = _merge_at([n for n in order if n not in gone] if gone else order,
                                  come_at)
            else:
                order = list(dst_order)
            for name in gone:
                src.pop(name, None)
            for name in come:
                src[name] = target[name]
        fields.update(f)
    gd = copy_without_nodes(graph.graph_def)
    for key, value in fields.items():
        _set_field(gd, key, value)
    add, live, get = gd.node.add, graph.nodes, src.get
    for name in order:
        v = get(name)
        if v is None:
            add().CopyFrom(live[name])
        else:
            add().ParseFromString(_load(v))
    return gd


def _merge_at(kept: list[str], come_at: list[tuple[int, str]]) -> list[str]:
    """``kept`` with each name of ``come_at`` (ascending final indices) inserted at its index,
    in one pass."""
    if not come_at:
        return list(kept)
    out: list[str] = []
    it = iter(kept)
    for i, name in come_at:
        if len(out) < i:
            out.extend(islice(it, i - len(out)))
        out.append(name)
    out.extend(it)
    return out


def _appended_in_order(come_at: list[tuple[int, str]], before: int) -> bool:
    """True when nodes put back at ``come_at`` all go after the ``before`` existing ones, in
    order: appending them is already the final order (no sort)."""
    return all(i == before + k for k, (i, _) in enumerate(come_at))


def _field_bytes(value):
    if value is None:
        return None
    if hasattr(value, "SerializeToString"):
        return value.SerializeToString(deterministic=True)
    return value


def _set_field(gd: GraphDef, key: str, value) -> None:
    gd.ClearField(key)
    if value is None:
        return
    fd = gd.DESCRIPTOR.fields_by_name[key]
    if fd.message_type is not None:
        sub = getattr(gd, key)
        sub.SetInParent()
        sub.MergeFromString(value)
    else:
        setattr(gd, key, value)


def copy_graph_def(gd: GraphDef) -> GraphDef:
    """A deep copy, node by node (see :func:`surgeon_gui.core.model.graph.copy_graph_def`)."""
    return _copy_graph_def(gd)


def node_names(nodes: Iterable[NodeDef]) -> list[str]:
    return [n.name for n in nodes]
