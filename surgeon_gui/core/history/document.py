"""The open model as an observable document (Qt-free).

The GUI's views subscribe to :attr:`Document.changed`; undo commands call the document's methods
(:meth:`Document.apply_graph_def` the first time a step runs, then :meth:`Document.revert_delta`
and :meth:`Document.apply_delta` for undo and redo) and nothing else, so the scene always follows
the document (Orange canvas style).

Memory: the document holds one GraphDef. Each step is kept as a :class:`GraphDelta` (only the
nodes that changed), and undo/redo edit the GraphDef in place, so a 350 MB model with twenty
steps costs 350 MB plus the changed nodes, never a copy per step. :attr:`Document.original` is
rebuilt on demand by reverting every applied step on a copy.

Every change is announced with a :class:`GraphChange` naming the removed, added and changed
nodes, which drives the view's diff marks. After an undo, ``removed`` are the nodes the undo took
away (the step's added nodes) and ``added`` the nodes it brought back.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from ..model.graph import Graph, GraphDef
from .delta import GraphDelta, copy_graph_def
from .events import Signal

_KEEP = object()
_serials = itertools.count(1)


@dataclass
class GraphChange:
    """What one change did, by node name (drives diff highlighting and incremental redraw)."""
    label: str = ""
    removed: set[str] = field(default_factory=set)
    added: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    #: True when everything should be redrawn (a new model was loaded).
    reset: bool = False
    #: "apply" (a step ran or was redone), "undo", "io" (inputs/outputs) or "" (other).
    kind: str = ""
    #: The step's delta (old and new versions of the changed nodes), when there is one.
    delta: GraphDelta | None = None

    @property
    def empty(self) -> bool:
        return not (self.removed or self.added or self.changed or self.reset)


class Document:
    """The current graph of one open model, the steps applied to it, and where it came from."""

    def __init__(self, graph_def: GraphDef, path: str | None = None,
                 inputs: list[str] | None = None, outputs: list[str] | None = None,
                 graph: Graph | None = None):
        self.path = path
        #: The file the model was opened from (``path`` follows Save As; this does not): the
        #: undo history and recipes start from it.
        self.source_path = path
        # ``graph``: an index of ``graph_def`` already built (by the loader's check)
        self._graph = graph if graph is not None and graph.graph_def is graph_def \
            else Graph(graph_def, inputs, outputs, source=path)
        #: The inputs/outputs chosen when the model was opened (a recipe starts from these).
        self.initial_inputs = self._graph.given_inputs
        self.initial_outputs = self._graph.given_outputs
        self.changed = Signal()        # (GraphChange)
        self.dirty_changed = Signal()  # (bool)
        self._applied: list[GraphDelta] = []
        self._saved: list[GraphDelta] = []
        self._dirty = False
        #: Increases with every change (apply, undo, redo, io): a background job computed on
        #: revision r is stale when the document has moved on.
        self.revision = 0
        self._io_serial = 0

    @classmethod
    def from_loaded(cls, loaded) -> "Document":
        return cls(loaded.graph_def, loaded.path, loaded.inputs, loaded.outputs,
                   graph=loaded.graph())

    # ------------------------------------------------------------------ state
    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def graph_def(self) -> GraphDef:
        return self._graph.graph_def

    @property
    def inputs(self) -> list[str] | None:
        return self._graph.given_inputs

    @property
    def outputs(self) -> list[str] | None:
        return self._graph.given_outputs

    @property
    def state_key(self) -> tuple:
        """Identifies the current content: equal keys, identical graphs (and chosen
        inputs/outputs). Undo back to a state gives its key again, so views can cache what
        they derived from it (a group tree) instead of rebuilding it."""
        return (id(self), self._io_serial) + tuple(d.serial for d in self._applied)

    @property
    def applied(self) -> list[GraphDelta]:
        """The steps applied since loading, oldest first (undone steps are not listed)."""
        return list(self._applied)

    @property
    def dirty(self) -> bool:
        return self._dirty

    def set_dirty(self, value: bool) -> None:
        if value != self._dirty:
            self._dirty = value
            self.dirty_changed.emit(value)

    def mark_saved(self, path: str | None = None) -> None:
        """The current state is what is on disk (at ``path`` when given)."""
        if path is not None:
            self.path = path
            self._graph.source = path
        self._saved = list(self._applied)
        self.set_dirty(False)

    @property
    def saved_step(self) -> int | None:
        """How many of :attr:`applied` the file last saved (or opened) holds; None when that
        state is not on the current history (undone past it and changed since)."""
        n = len(self._saved)
        if n <= len(self._applied) and all(a is b for a, b in zip(self._saved, self._applied)):
            return n
        return None

    def _update_dirty(self) -> None:
        same = (len(self._saved) == len(self._applied)
                and all(a is b for a, b in zip(self._saved, self._applied)))
        self.set_dirty(not same)

    def snapshot(self) -> GraphDef:
        """A private copy of the current GraphDef (for background jobs; costs a full copy)."""
        return copy_graph_def(self.graph_def)

    @property
    def original(self) -> GraphDef:
        """The graph as loaded, rebuilt by reverting every applied step on a copy (costly)."""
        gd = self.snapshot()
        for delta in reversed(self._applied):
            delta.revert(gd)
        return gd

    def graph_before(self, steps: int = 1) -> Graph:
        """The graph as it was ``steps`` applied steps ago (a copy; for the before/after view)."""
        gd = self.snapshot()
        inputs, outputs = self.inputs, self.outputs
        for delta in list(reversed(self._applied))[:steps]:
            delta.revert(gd)
            if delta.old_io is not None:
                inputs, outputs = delta.old_io
        return Graph(gd, inputs, outputs, source=self.path)

    # ------------------------------------------------------------------ changes
    def apply_graph_def(self, graph_def: GraphDef, label: str = "", inputs=_KEEP,
                        outputs=_KEEP) -> GraphDelta:
        """Make ``graph_def`` (adopted, not copied) the current graph as one step.

        Returns the step's delta, which :meth:`revert_delta` undoes and :meth:`apply_delta`
        redoes. ``inputs``/``outputs`` change the chosen graph inputs/outputs with the step.
        """
        old_io = (self.inputs, self.outputs)
        new_io = (old_io[0] if inputs is _KEEP else _opt_list(inputs),
                  old_io[1] if outputs is _KEEP else _opt_list(outputs))
        delta = GraphDelta.between(self.graph_def, graph_def)
        delta.serial = next(_serials)
        if new_io != old_io:
            delta.old_io, delta.new_io = old_io, new_io
        self._graph = Graph(graph_def, new_io[0], new_io[1], source=self.path)
        self._applied.append(delta)
        self._announce(delta, label, undo=False)
        return delta

    def apply_delta(self, delta: GraphDelta, label: str = "") -> None:
        """Redo a step: the current graph must be the one the delta starts from."""
        gd = self.graph_def
        delta.apply(gd)
        inputs, outputs = delta.new_io if delta.new_io is not None else (self.inputs,
                                                                          self.outputs)
        self._graph = Graph(gd, inputs, outputs, source=self.path)
        self._applied.append(delta)
        self._announce(delta, label, undo=False)

    def revert_delta(self, delta: GraphDelta, label: str = "") -> None:
        """Undo a step: the current graph must be the one the delta ends with."""
        gd = self.graph_def
        delta.revert(gd)
        inputs, outputs = delta.old_io if delta.old_io is not None else (self.inputs,
                                                                          self.outputs)
        self._graph = Graph(gd, inputs, outputs, source=self.path)
        if self._applied and self._applied[-1] is delta:
            self._applied.pop()
        elif delta in self._applied:
            self._applied.remove(delta)
        self._announce(delta, label, undo=True)

    def set_graph_def(self, graph_def: GraphDef, change: GraphChange | None = None) -> None:
        """Replace the current graph (keeping the given inputs/outputs) and tell observers.

        Outside the undo stack; still recorded as an applied step so :attr:`original` holds.
        """
        delta = GraphDelta.between(self.graph_def, graph_def)
        delta.serial = next(_serials)
        g = self._graph
        self._graph = Graph(graph_def, g.given_inputs, g.given_outputs, source=self.path)
        self._applied.append(delta)
        self.revision += 1
        self._update_dirty()
        if change is None:
            change = GraphChange(removed=set(delta.removed), added=set(delta.added),
                                 changed=set(delta.changed), kind="apply", delta=delta)
        self.changed.emit(change)

    def set_io(self, inputs=None, outputs=None) -> None:
        """Choose the graph's inputs/outputs (outside the undo stack)."""
        self._graph = self._graph.with_io(inputs, outputs)
        self.revision += 1
        self._io_serial += 1
        self.changed.emit(GraphChange(label="inputs/outputs", kind="io"))

    def _announce(self, delta: GraphDelta, label: str, undo: bool) -> None:
        self.revision += 1
        self._update_dirty()
        if undo:
            change = GraphChange(label, removed=set(delta.added), added=set(delta.removed),
                                 changed=set(delta.changed), kind="undo", delta=delta)
        else:
            change = GraphChange(label, removed=set(delta.removed), added=set(delta.added),
                                 changed=set(delta.changed), kind="apply", delta=delta)
        self.changed.emit(change)


def _opt_list(v):
    return None if v is None else list(v)
