"""Editing helpers every pass and manual edit shares.

A :class:`GraphEditor` edits a GraphDef, copying only the nodes it changes, and offers the few
rewiring operations graph surgery is made of: bypass a node, rewire every reader of a tensor (one at a time, or many
at once with a :class:`Substitution`), replace or remove nodes, remove what a rewrite left unread
(:meth:`GraphEditor.remove_unread`), drop what the outputs do not need
(:meth:`GraphEditor.prune`), sort topologically, and hand out fresh node names. It records which
nodes were removed, added and changed so a pass can report exactly what it did. The input
GraphDef is never touched, unless the caller gives it up (``in_place=True``: the pipeline).

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
    copy_without_nodes,
    format_input,
    node_of,
    parse_input,
)


#: Recording in place, a replaced node at least this big (serialized) is moved out of the node
#: list rather than copied (:meth:`GraphEditor._apply_overlay`); smaller ones are copied (a
#: move shifts the list's pointers, which for thousands of small nodes costs more).
MOVE_BYTES = 64 * 1024


class GraphEditor:
    """A mutable view of a GraphDef with change tracking, copying only what it changes.

    Until a pass changes something, the editor reads its input. A change to a node edits a
    private copy of that one node (an overlay); added nodes are private too, removals are
    names. :meth:`result` then builds the edited GraphDef:

    - by default a copy of the input with the overlay applied (the input is never touched), or
      the input itself when nothing changed (a pass that finds nothing costs no copy);
    - with ``in_place=True`` (the caller gave the input GraphDef up, as the pipeline does with
      its working graph) the overlay is written into the input itself: a pass that changes k
      nodes costs O(k) copies of nodes, not a copy of the graph. With ``record=True`` the old
      NodeDef of every touched node is kept in :attr:`old_nodes` (None for an added node), so
      a caller can still undo the step.

    The pass body keeps reading the unchanged input (``ctx.graph`` and its index) while it
    edits: the overlay is applied only in :meth:`result`, after the body is done.

    Whole-graph operations (:attr:`graph_def`, writable :meth:`nodes`, :meth:`sort`) switch the
    editor to a full working GraphDef (a copy, or the input itself in place) and edit that.
    """

    def __init__(self, graph: Graph | GraphDef, copy: bool = True, in_place: bool = False,
                 record: bool = False):
        gd = graph.graph_def if isinstance(graph, Graph) else graph
        self._base = gd
        self._in_place = in_place or not copy
        self._record = record
        #: Full working GraphDef once the editor left overlay mode (None: overlay mode).
        self._work: GraphDef | None = None if copy else gd
        self.removed: set[str] = set()
        self.added: set[str] = set()
        self.changed: set[str] = set()
        #: The old NodeDef of each touched node (None: added), when ``record`` (in place).
        self.old_nodes: dict[str, NodeDef | None] = {}
        self._index_cache: dict[str, NodeDef] | None = None  # built on first use
        self._pending_removal: set[str] = set()
        self._handed_out: set[str] = set()
        # overlay mode
        self._pos: dict[str, int] | None = None         # base name -> position
        self._overlay: dict[int, NodeDef] = {}          # base position -> private copy
        self._gone: set[int] = set()                    # base positions removed
        self._new: list[NodeDef] = []                   # added nodes, in order
        self._private: dict[int, int] = {}              # id(private node) -> position, -1 new
        #: Weights scaled when written (:meth:`defer_scale`): name -> (scale, control inputs).
        self._deferred: dict[str, tuple] = {}
        #: ... and read through an identity (:meth:`defer_scale_moved`): name -> (root, scale).
        self._moved: dict[str, tuple] = {}

    # ------------------------------------------------------------------ storage
    @property
    def graph_def(self) -> GraphDef:
        """The whole working GraphDef (a copy of the input with the changes so far, or the
        input itself in place): write to it freely. Leaves overlay mode."""
        if self._work is None:
            self._materialize()
        return self._work

    @property
    def copied(self) -> bool:
        """Whether the result will be a GraphDef other than the input (something changed and
        the editor does not work in place)."""
        if self._work is not None:
            return self._work is not self._base
        return self._dirty and not self._in_place

    @property
    def _dirty(self) -> bool:
        return bool(self._overlay or self._gone or self._new or self._pending_removal)

    @property
    def keeps_order(self) -> bool:
        """Whether :meth:`result` will list the input's nodes in their order (the removed ones
        left out, the changed ones in their place, the added ones at the end): an editor still
        in overlay mode that copies, with no deferred scale nor moved weight. Ask before
        :meth:`result`."""
        return (self._work is None and not self._in_place and not self._deferred
                and not self._moved)

    def index_from(self, graph: Graph) -> None:
        """Take the editor's name index and positions from ``graph``, an up-to-date index of
        the input (a fresh editor in overlay mode; no duplicate names), instead of reading
        every node's name again (a hand edit of a 100k-node graph). Does nothing otherwise."""
        if (self._work is not None or self._dirty or self._index_cache is not None
                or graph.graph_def is not self._base or graph._duplicates
                or len(graph.nodes) != len(self._base.node)):
            return
        self._index_cache = dict(graph.nodes)   # (changed in place by the editor: a copy)
        self._pos = graph.order                 # (only read)

    def _base_pos(self) -> dict[str, int]:
        if self._pos is None:
            self._pos = {n.name: i for i, n in enumerate(self._base.node)}
        return self._pos

    def _materialize(self) -> None:
        """Leave overlay mode for a whole working GraphDef: a copy of the input with the changes
        so far, even in place (the pass body may still read its input; only :meth:`result`
        writes into it). Pending removals stay pending."""
        self._work = self._build_copy()
        self._index_cache = None

    def _apply_overlay(self, target: GraphDef) -> None:
        nodes = target.node
        record = self._record and target is self._base
        base = self._base.node
        overlay = self._overlay
        self._index_cache = None  # holds the private copies: let each go once written
        for i in sorted(overlay):
            c = overlay.pop(i)
            if i in self._gone:
                continue
            if record and c.ByteSize() >= MOVE_BYTES and base[i].name not in self.old_nodes:
                # a big node (weights): its old version is moved out of the list (the wrapper
                # keeps it readable) and the new one put in its place, instead of copying the
                # old one for the record and the new one over it (a third copy of the weights
                # while upb's arena keeps the overwritten ones anyway)
                old = base[i]
                del nodes[i]
                nodes.insert(i, c)
                self.old_nodes[old.name] = old
            else:
                if record:
                    self._remember(base[i].name, base[i], copy=True)
                nodes[i].CopyFrom(c)
            del c  # its weights are freed now, not after the last node is written
        for c in self._new:
            if record:
                self.old_nodes.setdefault(c.name, None)
            nodes.add().CopyFrom(c)
        if self._gone:
            if record:
                for i in self._gone:
                    self._remember(base[i].name, base[i], copy=False)
            # back to front, contiguous runs at once: no other node (nor its weights) moves
            runs: list[list[int]] = []
            for i in sorted(self._gone, reverse=True):
                if runs and runs[-1][0] == i + 1:
                    runs[-1][0] = i
                else:
                    runs.append([i, i + 1])
            for lo, hi in runs:
                del nodes[lo:hi]
        self._overlay, self._gone, self._new, self._private = {}, set(), [], {}

    def _remember(self, name: str, node: NodeDef, copy: bool) -> None:
        if name in self.old_nodes:
            return
        if copy:
            c = NodeDef()
            c.CopyFrom(node)
            node = c
        self.old_nodes[name] = node  # a removed node stays readable once out of the list

    def _iter_current(self) -> Iterable[NodeDef]:
        """Every node the editor holds now (pending removals included), in order."""
        if self._work is not None:
            yield from self._work.node
            return
        ov, gone = self._overlay, self._gone
        for i, n in enumerate(self._base.node):
            if i in gone:
                continue
            yield ov.get(i, n)
        yield from self._new

    @property
    def _index(self) -> dict[str, NodeDef]:
        if self._index_cache is None:
            self._index_cache = {n.name: n for n in self._iter_current()}
        return self._index_cache

    @_index.setter
    def _index(self, value: dict[str, NodeDef]) -> None:
        self._index_cache = value

    def _writable(self, n: str) -> NodeDef:
        """The node ``n`` (present), as a node the editor may change."""
        node = self._index[n]
        if self._work is not None or id(node) in self._private:
            return node  # a whole working GraphDef, or already private (changed or added)
        i = self._base_pos()[n]
        c = NodeDef()
        c.CopyFrom(node)
        self._overlay[i] = c
        self._private[id(c)] = i
        self._index[n] = c
        return c

    # ------------------------------------------------------------------ access
    def __contains__(self, name: str) -> bool:
        n = node_of(name)
        return n in self._index and n not in self._pending_removal

    def node(self, name: str) -> NodeDef:
        """The node ``name``, to change (call :meth:`mark_changed` after changing it)."""
        n = node_of(name)
        if n not in self._index or n in self._pending_removal:
            raise GraphError(f"no node named {n!r}")
        return self._writable(n)

    def nodes(self, read_only: bool = False) -> Iterable[NodeDef]:
        """The current nodes in order, to change (this leaves overlay mode: a whole copy unless
        in place), or, with ``read_only``, only to read (no copy; change a node through
        :meth:`node`)."""
        if not read_only:
            self.graph_def  # noqa: B018 - every node writable: the whole working GraphDef
        pending = self._pending_removal
        return (n for n in self._iter_current() if n.name not in pending)

    def graph(self, inputs=None, outputs=None) -> Graph:
        """A fresh index over the current state (flushes pending removals); read only."""
        self.flush()
        if self._work is None and self._dirty:
            self._materialize()
        return Graph(self._current, inputs, outputs)

    @property
    def _current(self) -> GraphDef:
        """The GraphDef the editor holds (the input while nothing changed); read only."""
        return self._work if self._work is not None else self._base

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
        if self._work is not None:
            new = self._work.node.add()
            new.CopyFrom(node)
        else:
            new = NodeDef()
            new.CopyFrom(node)
            self._new.append(new)
            self._private[id(new)] = -1
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
        n = node_of(name)
        if n not in self._index or n in self._pending_removal:
            raise GraphError(f"no node named {n!r}")
        if self._work is None and id(self._index[n]) not in self._private:
            i = self._base_pos()[n]
            old = NodeDef()               # a private node: no copy of the one it replaces
            self._overlay[i] = old
            self._private[id(old)] = i
        else:
            old = self._writable(n)
        old.CopyFrom(node)
        if old.name != n:
            del self._index[n]
        self._index[old.name] = old
        self.mark_changed(old.name)
        return old

    def defer_scale(self, name: str, scale, controls: Iterable[str] = ()) -> bool:
        """Replace the big weight Const ``name`` by ``make_const(name, (value *
        scale).astype(dtype))`` with ``controls`` as its inputs, without writing the new weights
        now: the node is marked (:mod:`.deferred`) and its value computed when it is read or
        written. Only inside :func:`.deferred.deferring`, in place and without ``record`` (the
        old node is not kept); returns False when the caller must replace the node itself."""
        from . import deferred
        n = node_of(name)
        if not (self._in_place and not self._record and deferred.enabled()):
            return False
        node = self._index.get(n)
        if (node is None or n in self._pending_removal or n in self._deferred
                or id(node) in self._private or not deferred.can_defer(node)):
            return False
        self._deferred[n] = (scale, list(controls))
        self.mark_changed(n)
        return True

    def defer_scale_moved(self, name: str, root: str, scale, controls: Iterable[str] = ()
                          ) -> bool:
        """Like :meth:`defer_scale` for weights read through an identity: replace the node
        ``name`` (an Identity of the Const ``root``) by ``make_const(name, (value(root) *
        scale).astype(dtype))`` with ``controls`` as its inputs. When the pass leaves ``root``
        unread (removed), the root Const itself is renamed, marked and moved to ``name``'s place
        (its bytes are not copied); otherwise the new node is written now."""
        from . import deferred
        n, r = node_of(name), node_of(root)
        if not (self._in_place and not self._record and deferred.enabled()
                and self._work is None):
            return False
        node, rnode = self._index.get(n), self._index.get(r)
        if (node is None or rnode is None or n in self._pending_removal
                or r in self._pending_removal or n in self._deferred or r in self._deferred
                or n in self._moved or id(node) in self._private or id(rnode) in self._private
                or not deferred.can_defer(rnode)):
            return False
        stub = NodeDef(name=n, op="Const", device=node.device)   # what the index shows meanwhile
        stub.input.extend("^" + c for c in controls)
        stub.attr["dtype"].type = rnode.attr["value"].tensor.dtype
        self.replace_node(n, stub)
        self._moved[n] = (r, scale)
        return True

    def _apply_moved(self) -> dict[str, int] | None:
        """Carry out :meth:`defer_scale_moved` (overlay mode, before the overlay is applied);
        returns the node order to sort the result into when a root was moved."""
        from . import deferred
        from .graph import make_const
        pos = self._base_pos()
        base = self._base.node
        moved_to: dict[int, int] = {}   # root position -> the position it takes
        for n, (r, scale) in self._moved.items():
            i, j = pos.get(n), pos.get(r)
            stub = self._overlay.get(i) if i is not None else None
            if stub is None or stub.name != n or i in self._gone or j is None:
                continue  # the pass changed or removed it since: nothing deferred is left
            root = base[j]
            if j in self._gone and j not in self._overlay and j not in moved_to:
                # the root is unread: rename and mark it where it is, then sort it into place
                root.name = n
                root.device = stub.device
                deferred.mark(root, scale, [c[1:] for c in stub.input])
                del self._overlay[i]
                self._gone.discard(j)
                self._gone.add(i)
                moved_to[j] = i
            else:  # the root stays (something else reads it): the new node is written now
                t = root.attr["value"].tensor
                made = make_const(n, deferred.scaled(t, scale))
                made.device = stub.device
                made.input.extend(stub.input)
                stub.CopyFrom(made)
        self._moved = {}
        if not moved_to:
            return None
        ov, gone = self._overlay, self._gone
        order: dict[str, int] = {}
        for p, node in enumerate(base):
            if p not in gone:
                order[(ov[p] if p in ov else node).name] = moved_to.get(p, p)
        for k, c in enumerate(self._new):
            order[c.name] = len(base) + k
        return order

    def _apply_deferred(self) -> None:
        """Mark the deferred weights where they are (no copy of their bytes)."""
        from . import deferred
        for n, (scale, controls) in self._deferred.items():
            if n in self._index and n not in self._pending_removal:
                deferred.mark(self._index[n], scale, controls)
        self._deferred = {}

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
        order: dict[str, int] = {}
        for i, node in enumerate(self.nodes(read_only=True)):
            order[node.name] = i
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
        """Carry out pending removals (and drop colocation hints naming the removed nodes)."""
        pending = self._pending_removal
        if not pending:
            return
        if self._work is None:
            index = self._index
            new_ids = set()
            for name in pending:
                node = index.pop(name, None)
                if node is None:
                    continue
                i = self._private.get(id(node))
                if i is None:
                    self._gone.add(self._base_pos()[name])
                elif i < 0:
                    new_ids.add(id(node))
                else:
                    self._gone.add(i)
                    del self._overlay[i]
                    del self._private[id(node)]
            if new_ids:
                self._new = [c for c in self._new if id(c) not in new_ids]
                for k in new_ids:
                    del self._private[k]
        else:
            # Delete in place, back to front: no node (nor its weights) is copied, and the
            # GraphDef keeps its versions/library.
            nodes = self._work.node
            for i in range(len(nodes) - 1, -1, -1):
                if nodes[i].name in pending:
                    del nodes[i]
            self._index = {n.name: n for n in nodes}
        removed = set(pending)
        pending.clear()
        for node in list(self.nodes(read_only=True)):
            kept = _kept_locations(node, removed.__contains__)
            if kept is not None:
                _set_locations(self._writable(node.name), kept)
                self.mark_changed(node.name)

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
        for node in list(self.nodes(read_only=True)):
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
                _set_inputs(self.node(node.name), _dedupe_controls(new_inputs, node.name))
                self.mark_changed(node.name)
                count += 1
        return count

    def bypass(self, name: str, input_index: int = 0,
               readers: Iterable[str] | None = None) -> None:
        """Remove ``name``; its readers read its ``input_index``-th data input instead.

        The node's own control inputs are handed to each of its readers, so ordering constraints
        survive; readers of its control output (``^name``) depend on the producer instead.
        Only output port 0 can be bypassed (it maps to the chosen input). ``readers``: every
        node that reads ``name`` now, in node order, when the caller knows them (an up-to-date
        consumer index), instead of looking at every node.
        """
        if node_of(name) not in self:
            raise GraphError(f"no node named {node_of(name)!r}")
        node = self._index[node_of(name)]
        data = [parse_input(t) for t in node.input if not t.startswith("^")]
        controls = [parse_input(t).node for t in node.input if t.startswith("^")]
        if input_index >= len(data):
            raise GraphError(f"cannot bypass {name}: it has no data input {input_index}")
        src = data[input_index]
        if readers is None:
            candidates = list(self.nodes(read_only=True))
        else:
            index, pending = self._index, self._pending_removal
            candidates = [index[r] for r in readers if r in index and r not in pending]
        for reader in candidates:
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
                _set_inputs(self.node(reader.name),
                            _dedupe_controls(new_inputs, reader.name))
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
        gd = self.graph_def
        order = Graph(gd).topological_order()
        pos = {n: i for i, n in enumerate(order)}
        nodes = sorted(gd.node, key=lambda n: pos[n.name])
        copies = []
        for n in nodes:
            c = NodeDef()
            c.CopyFrom(n)
            copies.append(c)
        del gd.node[:]
        gd.node.extend(copies)
        self._index = {n.name: n for n in gd.node}

    def result(self) -> GraphDef:
        """The edited GraphDef: the input itself when nothing was changed (read it only), the
        input edited in place when the editor works in place, else a new GraphDef."""
        self.flush()
        if self._deferred:
            self._apply_deferred()
        order = self._apply_moved() if self._moved and self._work is None else None
        if self._work is None and self._dirty:
            if self._in_place:
                self._apply_overlay(self._base)
                if order is not None:   # moved roots: no node is copied, only the list sorted
                    self._base.node.sort(key=lambda node: order[node.name])
                self._work = self._base
            else:
                self._work = self._build_copy()
            self._index_cache = None
        if self._record and self._work is not self._base:
            # the input is intact: its nodes are the old ones
            for name in self.removed | self.changed:
                i = self._base_pos().get(name)
                self.old_nodes.setdefault(name, self._base.node[i] if i is not None else None)
            for name in self.added:
                self.old_nodes.setdefault(name, None)
        return self._current

    def _build_copy(self) -> GraphDef:
        """A new GraphDef: the input with the overlay applied, copied node by node once."""
        out = copy_without_nodes(self._base)
        add = out.node.add
        ov, gone = self._overlay, self._gone
        for i, n in enumerate(self._base.node):
            if i not in gone:
                add().CopyFrom(ov.get(i, n))
        for c in self._new:
            add().CopyFrom(c)
        self._overlay, self._gone, self._new, self._private = {}, set(), [], {}
        return out


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
        for node in list(editor.nodes(read_only=True)):
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
                _set_inputs(editor.node(node.name), new_inputs)
                editor.mark_changed(node.name)
                changed.append(node.name)
        return changed


def is_input_op(node: NodeDef) -> bool:
    return node.op in INPUT_OPS
