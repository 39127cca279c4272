"""The open model as an observable document (Qt-free).

The GUI's views subscribe to :attr:`Document.changed`; undo commands call
:meth:`Document.set_graph_def` (or higher-level methods built on it) and nothing else, so the
scene always follows the document.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .events import Signal
from .graph import Graph, GraphDef


@dataclass
class GraphChange:
    """What one change did, by node name (drives diff highlighting and incremental redraw)."""
    label: str = ""
    removed: set[str] = field(default_factory=set)
    added: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    #: True when everything should be redrawn (a new model was loaded).
    reset: bool = False


class Document:
    """The current graph of one open model, its original, and where it came from."""

    def __init__(self, graph_def: GraphDef, path: str | None = None,
                 inputs: list[str] | None = None, outputs: list[str] | None = None):
        self.path = path
        self.original = GraphDef()
        self.original.CopyFrom(graph_def)
        self._graph = Graph(graph_def, inputs, outputs, source=path)
        self.changed = Signal()        # (GraphChange)
        self.dirty_changed = Signal()  # (bool)
        self._dirty = False

    @classmethod
    def from_loaded(cls, loaded) -> "Document":
        return cls(loaded.graph_def, loaded.path, loaded.inputs, loaded.outputs)

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def graph_def(self) -> GraphDef:
        return self._graph.graph_def

    @property
    def dirty(self) -> bool:
        return self._dirty

    def set_dirty(self, value: bool) -> None:
        if value != self._dirty:
            self._dirty = value
            self.dirty_changed.emit(value)

    def set_io(self, inputs=None, outputs=None) -> None:
        self._graph = self._graph.with_io(inputs, outputs)
        self.changed.emit(GraphChange(label="inputs/outputs"))

    def set_graph_def(self, graph_def: GraphDef, change: GraphChange | None = None) -> None:
        """Replace the current graph (keeping the given inputs/outputs) and tell observers."""
        g = self._graph
        self._graph = Graph(graph_def, g.given_inputs, g.given_outputs, source=self.path)
        self.set_dirty(True)
        self.changed.emit(change or GraphChange(reset=True))
