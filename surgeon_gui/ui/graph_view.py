"""The graph view: a navigable, collapsible drawing of a :class:`~surgeon_gui.core.history.document.Document`.

The view follows the document: it subscribes to ``document.changed`` and redraws; nothing else
ever edits the scene. Layout runs on the GUI thread for small visible graphs and in a
:class:`~surgeon_gui.ui.workers.Worker` above :data:`ASYNC_UNITS` visible units, so the window
stays live.

API for the other panels (see each method):

* ``focus_node(name)``, ``selected_nodes()``, signal ``selection_changed(list)`` — node names; a
  selected group is given as ``"scope:<group key>"`` (a virtual block's key ends in ``_*``; use
  ``group_members(key)`` for its nodes).
* ``set_highlight(names, kind)``, ``set_node_colors(colors, legend)``, ``context_menu_hooks``.
* diff marks: automatic on ``document.changed``; ``show_diff_marks(change)``, ``clear_marks()``.
* ``set_document(doc)``, ``expand(key)``, ``collapse(key)``, ``expand_all()``, ``collapse_all()``,
  ``trace(name, "inputs"|"outputs")``, ``zoom_in/zoom_out/fit/zoom_to_selection``,
  ``export_image(path)`` (.png or .svg); signal ``layout_finished()`` after every relayout.
"""
from __future__ import annotations

import gc
import time
from typing import Callable

import shiboken6
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QGuiApplication,
    QImage,
    QPainter,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsView,
    QGridLayout,
    QLabel,
    QMenu,
    QToolButton,
    QWidget,
)

from ..core.history.document import Document, GraphChange
from ..core.viewmodel.grouping import GroupTree
from ..core.viewmodel.layout import LayoutEngine, Placement
from . import style
from .graph_scene import EdgeItem, FrameItem, GraphScene, GroupItem, NodeItem, UnitItem
from .workers import Worker

#: Above this many visible units, layouts run in a worker thread.
ASYNC_UNITS = 1500
#: Below this zoom the view draws the scene's batched overview (boxes, frames and edge lines
#: in a few QPainter calls) instead of painting every item (one Python call each): items are
#: flat boxes of a few pixels there anyway, and the whole 10k-node graph stays fluid.
FAR_SCALE = 0.2
SCOPE_PREFIX = "scope:"


class GraphView(QGraphicsView):
    selection_changed = Signal(list)
    layout_finished = Signal()
    #: A node was double-clicked (its name).
    node_activated = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.graph_scene = GraphScene(self)
        self.setScene(self.graph_scene)
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.SmartViewportUpdate)
        # items restore what they change; boxes carry their own margin for antialiasing
        self.setOptimizationFlags(QGraphicsView.DontSavePainterState
                                  | QGraphicsView.DontAdjustForAntialiasing)
        self.setCacheMode(QGraphicsView.CacheBackground)
        self.setFocusPolicy(Qt.StrongFocus)
        self.document: Document | None = None
        self.tree: GroupTree | None = None
        self.engine: LayoutEngine | None = None
        self.placement: Placement | None = None
        self.expanded: set[str] = set()
        self.show_constants = False
        self.horizontal = False
        #: Callables ``hook(menu: QMenu, names: list[str])`` run when the node menu is built.
        self.context_menu_hooks: list[Callable[[QMenu, list[str]], None]] = []
        self._highlight: dict[str, str] = {}
        self._colors: dict[str, QColor] | None = None
        self._marks: dict[str, str] = {}            # node name → added/changed/removed
        self._ghost_boxes: dict[str, tuple] = {}    # removed name → (op, QRectF)
        self._worker: Worker | None = None
        self._generation = 0
        self._pending_focus: str | None = None
        self._pending_layout = False
        self._fit_after_layout = False
        self.last_layout_seconds = 0.0
        self.graph_scene.selectionChanged.connect(self._on_selection)
        self.minimap = Minimap(self)
        self.legend = Legend(self)
        self.legend.set_entries(style.legend_entries())

    # ================================================================== document
    def set_document(self, doc: Document | None, reset_view: bool = False,
                     tree: GroupTree | None = None) -> None:
        """Show ``doc`` (None clears). The expansion is kept where the groups still exist, unless
        ``reset_view`` (a newly opened model: default expansion, fit to window). ``tree`` may
        be a GroupTree already built for ``doc.graph`` (e.g. by the loading worker)."""
        if self.document is not None:
            self.document.changed.disconnect(self._on_document_changed)
        self.document = doc
        self._marks.clear()
        self._ghost_boxes.clear()
        self._highlight.clear()
        if doc is None:
            self.tree = self.engine = self.placement = None
            self._clear_scene()
            return
        doc.changed.connect(self._on_document_changed)
        gc.unfreeze()  # what an earlier model left behind may be collected again
        self._rebuild_tree(reset_view, tree)
        # The graph index and its group tree live as long as the document: take them out of
        # the cyclic collector's generations, or every full collection (set off by the tens of
        # thousands of scene items a big layout makes) walks them again (0.6 s of a 2 s
        # expand-all on the 10.7k-node graph).
        gc.freeze()
        self._fit_after_layout = reset_view
        self.relayout()

    def _clear_scene(self) -> None:
        self.graph_scene.clear()
        self.graph_scene._overview = self.graph_scene._overview_lines = None
        self.graph_scene.placement_rect = QRectF()
        self.graph_scene.items_by_key = {}
        self.graph_scene.edge_items = []
        self.graph_scene.ghosts = []
        self.minimap.refresh()

    def _rebuild_tree(self, reset_view: bool, tree: GroupTree | None = None) -> None:
        if tree is None or tree.graph is not self.document.graph \
                or tree.show_constants != self.show_constants:
            tree = self._cached_tree()
        else:  # a tree built elsewhere (the loader's): remember it for undo too
            key = getattr(self.document, "state_key", None)
            if key is not None:
                self._tree_cache_of(self.document)[(key, tree.show_constants)] = tree
        self.tree = tree
        if reset_view or not self.expanded:
            self.expanded = self.tree.default_expanded()
        else:
            self.expanded = {k for k in self.expanded if k in self.tree.groups}
        tree = self.tree
        self.engine = LayoutEngine(tree, lambda u: self.graph_scene.node_size(tree, u),
                                   self.horizontal, reuse=None if reset_view else self.engine)

    def _tree_cache_of(self, doc) -> dict:
        cache = self.__dict__.setdefault("_tree_cache", {})
        if self.__dict__.get("_tree_cache_doc") is not doc:  # keys are per document
            cache.clear()
            self._tree_cache_doc = doc
        return cache

    def _cached_tree(self) -> GroupTree:
        """The group tree of the document's current state; undo/redo return to states seen
        before (``Document.state_key``), whose trees are kept in a small LRU instead of being
        rebuilt (the rebuild is most of an undo's cost on a 10,000-node graph)."""
        doc = self.document
        key = getattr(doc, "state_key", None)
        cache = self._tree_cache_of(doc)
        if key is not None:
            full = (key, self.show_constants)
            tree = cache.pop(full, None)
            if tree is not None:
                tree.graph = doc.graph  # same content; the current index object
                cache[full] = tree
                return tree
        tree = GroupTree(doc.graph, show_constants=self.show_constants)
        if key is not None:
            cache[(key, self.show_constants)] = tree
            while len(cache) > 8:
                cache.pop(next(iter(cache)))
        return tree

    def _on_document_changed(self, change: GraphChange) -> None:
        """The document changed: remember where removed nodes were, redraw, then mark."""
        old_boxes: dict[str, tuple] = {}
        if self.tree is not None and self.placement is not None and not change.reset:
            for name in change.removed:
                unit = self.tree.representative(name, self.placement.expanded)
                if unit.startswith("n:") and unit[2:] == name and unit in self.placement.boxes:
                    b = self.placement.boxes[unit]
                    old_boxes[name] = (self.tree.op_of.get(name, ""),
                                       QRectF(b.x, b.y, b.w, b.h))
        self._rebuild_tree(reset_view=False)
        if change.reset:
            self._marks.clear()
            self._ghost_boxes.clear()
        elif not change.empty:
            self._set_marks(change, old_boxes)
        self.relayout()

    # ================================================================== layout
    def relayout(self) -> None:
        """Lay out the visible graph (in a worker when it is big) and redraw."""
        if self.engine is None:
            return
        self._generation += 1
        gen = self._generation
        expanded = frozenset(k for k in self.expanded if k in self.tree.groups)
        engine = self.engine
        estimate = sum(len(self.tree.children(k)) for k in expanded) + len(self.tree.root_children)
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        self._pending_layout = True
        # edges read the GraphDef: here, on the GUI thread; the worker sees plain Python data
        edges = self.tree.visible_graph(expanded)
        if estimate < ASYNC_UNITS:
            self._apply_layout(gen, engine, engine.layout(expanded, edges=edges))
            return
        QGuiApplication.setOverrideCursor(Qt.BusyCursor)

        def job(state):
            return engine.layout(expanded, check=state.check, edges=edges)

        w = Worker(job)
        alive = lambda: shiboken6.isValid(self)  # noqa: E731 - the view may be gone by then
        w.signals.finished.connect(
            lambda p, g=gen, e=engine: alive() and self._apply_layout(g, e, p))
        w.signals.failed.connect(lambda msg, exc: alive() and self._layout_failed(msg))
        w.signals.done.connect(QGuiApplication.restoreOverrideCursor)
        self._worker = w
        w.start()

    def _layout_failed(self, msg: str) -> None:
        self._pending_layout = False
        if self.window() and hasattr(self.window(), "statusBar"):
            self.window().statusBar().showMessage(f"Layout failed: {msg.splitlines()[0]}", 10000)

    def _apply_layout(self, gen: int, engine: LayoutEngine, placement: Placement) -> None:
        if gen != self._generation or engine is not self.engine:
            return  # a newer layout was requested meanwhile
        t0 = time.perf_counter()
        self._worker = None
        selected = set(self.selected_nodes())
        self.graph_scene.blockSignals(True)
        self.placement = placement
        self.graph_scene.apply_placement(self.tree, placement)
        self._refresh_decorations()
        for key, item in self.graph_scene.items_by_key.items():
            name = key[2:] if key.startswith("n:") else SCOPE_PREFIX + key[2:]
            if name in selected:
                item.setSelected(True)
        self.graph_scene.blockSignals(False)
        # apply_placement set the scene rect while signals were blocked: tell the view, or its
        # scroll range stays that of the previous layout (an expanded graph cannot be scrolled).
        self.graph_scene.sceneRectChanged.emit(self.graph_scene.sceneRect())
        self.last_layout_seconds = placement.seconds + (time.perf_counter() - t0)
        self._pending_layout = False
        if self._fit_after_layout:
            self._fit_after_layout = False
            self.show_readable_overview()
        if self._pending_focus:
            name, self._pending_focus = self._pending_focus, None
            self._finish_focus(name)
        self.minimap.refresh()
        self._on_selection()
        self.layout_finished.emit()

    @property
    def layout_pending(self) -> bool:
        """True while a layout is being computed (tests and the screenshot mode wait on it)."""
        return self._pending_layout

    # ================================================================== groups
    def expand(self, key: str) -> None:
        if self.tree and key in self.tree.groups and key not in self.expanded:
            self.expanded.add(key)
            self.relayout()

    def collapse(self, key: str) -> None:
        if key in self.expanded:
            # collapsing a group closes what is inside too (reopening starts collapsed)
            self.expanded = {k for k in self.expanded
                             if k != key and key not in self.tree.ancestors_of_group(k)}
            self.relayout()

    def toggle(self, key: str) -> None:
        (self.collapse if key in self.expanded else self.expand)(key)

    def expand_all(self) -> None:
        if self.tree:
            self.expanded = set(self.tree.groups)
            self.relayout()

    def collapse_all(self) -> None:
        if self.tree:
            self.expanded = set()
            self.relayout()

    def group_members(self, key: str) -> list[str]:
        """Every node inside group ``key`` (accepts ``scope:``-prefixed keys)."""
        if key.startswith(SCOPE_PREFIX):
            key = key[len(SCOPE_PREFIX):]
        return self.tree.members(key) if self.tree and key in self.tree.groups else []

    def set_show_constants(self, on: bool) -> None:
        """Draw every Const and weight ``/read`` as its own box (True) or as badges (False)."""
        if on != self.show_constants:
            self.show_constants = on
            if self.document is not None:
                self._rebuild_tree(reset_view=False)
                self.relayout()

    def set_horizontal(self, on: bool) -> None:
        """Lay out left-to-right (True) or top-to-bottom (False)."""
        if on != self.horizontal:
            self.horizontal = on
            if self.document is not None:
                self._rebuild_tree(reset_view=False)
                self._fit_after_layout = True
                self.relayout()

    # ================================================================== selection / focus
    def selected_nodes(self) -> list[str]:
        """Selected node names; a selected group as ``"scope:<group key>"``."""
        out = []
        for item in self.graph_scene.selectedItems():
            if isinstance(item, NodeItem):
                out.append(item.name)
            elif isinstance(item, (GroupItem, FrameItem)):
                out.append(SCOPE_PREFIX + item.scope)
        return out

    def _on_selection(self) -> None:
        self.graph_scene.invalidate_overview()
        if self.far_zoom():
            self.viewport().update()
        if not self.graph_scene.signalsBlocked():
            self.selection_changed.emit(self.selected_nodes())

    def select(self, names: list[str]) -> None:
        """Select these nodes (or ``scope:`` groups) where they are drawn."""
        self.graph_scene.blockSignals(True)
        self.graph_scene.clearSelection()
        for n in names:
            item = self.item_for(n)
            if item is not None:
                item.setSelected(True)
        self.graph_scene.blockSignals(False)
        self._on_selection()

    def item_for(self, name: str) -> UnitItem | None:
        """The item drawing a node name or a ``scope:`` group (None if not visible)."""
        if name.startswith(SCOPE_PREFIX):
            return self.graph_scene.items_by_key.get("g:" + name[len(SCOPE_PREFIX):])
        return self.graph_scene.items_by_key.get("n:" + name)

    def focus_node(self, name: str) -> bool:
        """Expand the groups around ``name``, select it and centre the view on it.

        A weight drawn as a badge focuses the op that consumes it (unless constants are shown).
        Returns False when there is no such node. With a layout in a worker, selection and
        centring happen when it finishes.
        """
        if self.tree is None:
            return False
        if name.startswith(SCOPE_PREFIX):
            key = name[len(SCOPE_PREFIX):]
            if key not in self.tree.groups:
                return False
            need = set(self.tree.ancestors_of_group(key))
        else:
            if name not in self.tree.graph.nodes:
                return False
            need = set(self.tree.ancestors(name))
        if need - self.expanded:
            self.expanded |= need
            self._pending_focus = name
            self.relayout()
            return True
        self._finish_focus(name)
        return True

    def _finish_focus(self, name: str) -> None:
        target = name
        if not name.startswith(SCOPE_PREFIX) and name in self.tree.hidden:
            owners = self.tree.badge_owner.get(name) or []
            target = owners[0] if owners else name
        item = self.item_for(target)
        if item is None:
            return
        self.select([target])
        r = item.sceneBoundingRect()
        if not self.mapToScene(self.viewport().rect()).boundingRect().contains(r) or \
                self.transform().m11() < 0.6:
            self._zoom_to(r.adjusted(-250, -200, 250, 200), max_scale=1.2)
        self.centerOn(item)

    # ================================================================== highlight / colours
    def set_highlight(self, names: set[str] | None, kind: str = "match") -> None:
        """Outline these nodes with the colour of ``kind`` (collapsed groups show how many
        inside). Kinds with a colour: match, search, preview, refused, upstream, downstream.
        None clears every highlight."""
        if names is None:
            self._highlight.clear()
        else:
            self._highlight = {n: kind for n in names}
        self._refresh_decorations()

    def highlighted(self) -> dict[str, str]:
        return dict(self._highlight)

    def set_node_colors(self, colors: dict[str, QColor] | None,
                        legend: list[tuple[str, QColor]] | None = None) -> None:
        """Override node fills (e.g. per-node drift) and show ``legend`` instead of the op
        families. None restores op-family colours."""
        self._colors = dict(colors) if colors else None
        self.legend.set_entries(legend if (colors and legend) else style.legend_entries(),
                                title="" if colors else "Op families")
        self._refresh_decorations()

    def trace(self, name: str, direction: str = "inputs") -> set[str]:
        """Highlight the upstream ("inputs") or downstream ("outputs") cone of a node."""
        if self.document is None or name not in self.document.graph.nodes:
            return set()
        g = self.document.graph
        cone = g.upstream([name]) if direction == "inputs" else g.downstream([name])
        self.set_highlight(cone, "upstream" if direction == "inputs" else "downstream")
        return cone

    # ================================================================== diff marks
    def show_diff_marks(self, change: GraphChange) -> None:
        """Mark added (green), changed (amber) and removed (red) nodes of ``change`` in the
        current document; removed nodes still drawn here are shown as removed, those no longer in
        the document are listed on their group when it exists. Marks stay until the next change
        or :meth:`clear_marks`."""
        self._set_marks(change, {})
        self._refresh_decorations()

    def _set_marks(self, change: GraphChange, old_boxes: dict) -> None:
        marks = {}
        for n in change.changed:
            marks[n] = "changed"
        for n in change.added:
            marks[n] = "added"
        for n in change.removed:
            marks[n] = "removed"
        self._marks = marks
        self._ghost_boxes = old_boxes

    def clear_marks(self) -> None:
        self._marks.clear()
        self._ghost_boxes.clear()
        self._refresh_decorations()

    def marks(self) -> dict[str, str]:
        return dict(self._marks)

    # ================================================================== decorations
    def _refresh_decorations(self) -> None:
        """Push highlight, colours and marks to the items (no relayout)."""
        if self.tree is None or self.placement is None:
            return
        items = self.graph_scene.items_by_key
        expanded = self.placement.expanded
        before = {k: (it.highlight, it.highlight_count, it.mark, tuple(it.mark_counts.items()),
                      it.fill_override) for k, it in items.items()}
        for item in items.values():
            item.highlight = None
            item.highlight_count = 0
            item.mark = None
            item.mark_counts = {}
            item.fill_override = None
        tree = self.tree

        def units_of(name: str):
            """The node's own item, or every collapsed/expanded group item around it."""
            unit = tree.representative(name, expanded)
            if not unit:
                # not in the current graph (removed): its old group, by name prefix
                key = "/".join(name.split("/")[:-1])
                while key and key not in tree.groups:
                    key = "/".join(key.split("/")[:-1])
                return [], (list(tree.ancestors_of_group(key)) + [key] if key else [])
            own = items.get(unit) if unit.startswith("n:") else None
            groups = list(tree.ancestors(name))
            if unit.startswith("g:"):
                groups = groups[:groups.index(unit[2:]) + 1] if unit[2:] in groups else groups
            return ([own] if own is not None else []), groups

        for name, kind in self._highlight.items():
            own, groups = units_of(name)
            for it in own:
                it.highlight = kind
            for key in groups:
                it = items.get("g:" + key)
                if it is not None and isinstance(it, GroupItem):
                    it.highlight = kind
                    it.highlight_count += 1
        for name, kind in self._marks.items():
            own, groups = units_of(name)
            for it in own:
                it.mark = kind
            for key in groups:
                it = items.get("g:" + key)
                if it is not None:
                    it.mark_counts[kind] = it.mark_counts.get(kind, 0) + 1
        if self._colors:
            for name, color in self._colors.items():
                it = items.get("n:" + name)
                if it is not None:
                    it.fill_override = color
        # edges between highlighted units
        lit = {k for k, it in items.items() if it.highlight}
        for e in self.graph_scene.edge_items:
            h = None
            if e.src in lit and e.dst in lit:
                h = items[e.dst].highlight
            if e.highlight != h:
                e.highlight = h
                e.update()
        self.graph_scene.clear_ghosts()
        for name, (op, rect) in self._ghost_boxes.items():
            if self._marks.get(name) == "removed":
                self.graph_scene.add_ghost(name, op, rect)
        # repaint (and re-cache) only the boxes whose decoration changed
        for k, it in items.items():
            if before[k] != (it.highlight, it.highlight_count, it.mark,
                             tuple(it.mark_counts.items()), it.fill_override):
                it.update()
        self.graph_scene.invalidate_overview()
        if self.far_zoom():
            self.viewport().update()
        self.minimap.refresh()

    # ================================================================== far zoom
    def far_zoom(self) -> bool:
        """True when the view draws the batched overview instead of the items."""
        return self.transform().m11() < FAR_SCALE and bool(self.graph_scene.items_by_key)

    def paintEvent(self, event):
        if not self.far_zoom():
            super().paintEvent(event)
            return
        p = QPainter(self.viewport())
        p.fillRect(event.rect(), style.BACKGROUND)
        p.setTransform(self.viewportTransform())
        self.graph_scene.overview().draw(p, self.transform().m11())
        for g in self.graph_scene.ghosts:  # removed nodes, faded red
            p.setPen(QPen(style.MARK_COLORS["removed"], 0))
            p.drawRect(g.sceneBoundingRect())
        p.end()

    # ================================================================== navigation
    def wheelEvent(self, event):
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta:
            self._scale_by(1.0015 ** delta)
        event.accept()

    def _scale_by(self, f: float) -> None:
        s = self.transform().m11()
        f = max(0.01 / s, min(f, 4.0 / s))
        self.scale(f, f)
        self.minimap.update()

    def zoom_in(self) -> None:
        self._scale_by(1.25)

    def zoom_out(self) -> None:
        self._scale_by(0.8)

    def fit(self) -> None:
        """Fit the whole graph in the window (not larger than 100%)."""
        r = self.graph_scene.itemsBoundingRect()
        if r.isEmpty():
            return
        self._zoom_to(r.adjusted(-20, -20, 20, 20), max_scale=1.0)

    def show_readable_overview(self, min_scale: float = 0.55) -> None:
        """Fit the graph when it stays readable; otherwise zoom to a readable scale and show
        the start of the graph (the minimap shows the rest)."""
        r = self.graph_scene.itemsBoundingRect()
        if r.isEmpty():
            return
        vp = self.viewport().rect()
        s = min(vp.width() / (r.width() + 40), vp.height() / (r.height() + 40))
        if s >= min_scale:
            self.fit()
            return
        self.setTransform(self.transform().fromScale(0.75, 0.75))
        visible = self.mapToScene(vp).boundingRect()
        # start where the data comes in: the first graph input (wide graphs are mostly edges
        # in the middle of their first layers)
        across = r.center().y() if self.horizontal else r.center().x()
        # the boxes in the first screenful: centre on them when they fit across
        band = QRectF()
        for item in self.graph_scene.items_by_key.values():
            if isinstance(item, FrameItem):
                continue
            b = item.sceneBoundingRect()
            if (b.left() if self.horizontal else b.top()) \
                    < (r.left() + visible.width() if self.horizontal else r.top() + visible.height()):
                band = band.united(b)
        fits_across = not band.isEmpty() and (band.height() if self.horizontal else band.width()) \
            <= (visible.height() if self.horizontal else visible.width()) - 20
        if fits_across:
            across = band.center().y() if self.horizontal else band.center().x()
        elif self.document is not None and self.tree is not None:
            for name in self.document.graph.inputs[:1]:
                item = self.graph_scene.items_by_key.get(
                    self.tree.representative(name, self.placement.expanded))
                if item is not None:
                    c = item.sceneBoundingRect().center()
                    across = c.y() if self.horizontal else c.x()
        if self.horizontal:
            self.centerOn(r.left() + visible.width() / 2 - 20, across)
        else:
            self.centerOn(across, r.top() + visible.height() / 2 - 20)
        self.minimap.update()

    def zoom_to_selection(self) -> None:
        items = self.graph_scene.selectedItems()
        if not items:
            return
        r = items[0].sceneBoundingRect()
        for it in items[1:]:
            r = r.united(it.sceneBoundingRect())
        self._zoom_to(r.adjusted(-60, -60, 60, 60), max_scale=1.5)

    def _zoom_to(self, r: QRectF, max_scale: float) -> None:
        self.fitInView(r, Qt.KeepAspectRatio)
        s = self.transform().m11()
        if s > max_scale:
            self.setTransform(self.transform().scale(max_scale / s, max_scale / s))
        self.centerOn(r.center())
        self.minimap.update()

    def keyPressEvent(self, event):
        key = event.key()
        if key in (Qt.Key_Plus, Qt.Key_Equal):
            self.zoom_in()
        elif key == Qt.Key_Minus:
            self.zoom_out()
        elif key in (Qt.Key_Left, Qt.Key_Right, Qt.Key_Up, Qt.Key_Down):
            step = 60
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            if key == Qt.Key_Left:
                h.setValue(h.value() - step)
            elif key == Qt.Key_Right:
                h.setValue(h.value() + step)
            elif key == Qt.Key_Up:
                v.setValue(v.value() - step)
            else:
                v.setValue(v.value() + step)
        elif key in (Qt.Key_Return, Qt.Key_Enter):
            for name in self.selected_nodes():
                if name.startswith(SCOPE_PREFIX):
                    self.toggle(name[len(SCOPE_PREFIX):])
                    break
        else:
            super().keyPressEvent(event)

    def scrollContentsBy(self, dx, dy):
        super().scrollContentsBy(dx, dy)
        self.minimap.update()

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self.minimap.place()
        self.legend.place()

    # ================================================================== mouse
    def mousePressEvent(self, event):
        item = self.itemAt(event.position().toPoint())
        if event.button() == Qt.LeftButton and isinstance(item, (GroupItem, FrameItem)):
            p = item.mapFromScene(self.mapToScene(event.position().toPoint()))
            if item.chevron_rect().adjusted(-3, -3, 3, 3).contains(p):
                self.toggle(item.scope)
                event.accept()
                return
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event):
        item = self.itemAt(event.position().toPoint())
        if isinstance(item, (GroupItem, FrameItem)):
            self.toggle(item.scope)
            event.accept()
            return
        if isinstance(item, NodeItem):
            self.node_activated.emit(item.name)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event):
        item = self.itemAt(event.pos())
        if not isinstance(item, UnitItem):
            return
        if not item.isSelected():
            self.graph_scene.clearSelection()
            item.setSelected(True)
        menu = self.build_context_menu(self.selected_nodes())
        menu.exec(event.globalPos())

    def build_context_menu(self, names: list[str]) -> QMenu:
        """The right-click menu for ``names`` (hooks from other panels are appended)."""
        menu = QMenu(self)
        groups = [n[len(SCOPE_PREFIX):] for n in names if n.startswith(SCOPE_PREFIX)]
        nodes = [n for n in names if not n.startswith(SCOPE_PREFIX)]
        for key in groups[:1]:
            if key in self.expanded:
                menu.addAction("Collapse group", lambda k=key: self.collapse(k))
            else:
                menu.addAction("Expand group", lambda k=key: self.expand(k))
        if len(nodes) == 1:
            n = nodes[0]
            menu.addAction("Trace inputs", lambda: self.trace(n, "inputs"))
            menu.addAction("Trace outputs", lambda: self.trace(n, "outputs"))
        if self._highlight:
            menu.addAction("Clear highlight", lambda: self.set_highlight(None))
        if nodes:
            menu.addAction("Copy name" + ("s" if len(nodes) > 1 else ""),
                           lambda: QGuiApplication.clipboard().setText("\n".join(nodes)))
        menu.addAction("Zoom to selection", self.zoom_to_selection)
        if self.context_menu_hooks:
            menu.addSeparator()
            for hook in self.context_menu_hooks:
                hook(menu, list(names))
        return menu

    # ================================================================== export
    def export_image(self, path: str, scale: float = 1.0) -> str:
        """Write the whole graph as drawn (expansion, marks, highlight) to a .png or .svg."""
        r = self.graph_scene.itemsBoundingRect().adjusted(-20, -20, 20, 20)
        if r.isEmpty():
            raise ValueError("nothing to export: the view is empty")
        self.graph_scene.clearSelection()
        # paint items directly (their pixmap caches would end up as bitmaps in an SVG)
        cached = [it for it in self.graph_scene.items()
                  if it.cacheMode() != QGraphicsItem.NoCache]
        for it in cached:
            it.setCacheMode(QGraphicsItem.NoCache)
        try:
            return self._export(path, r, scale)
        finally:
            for it in cached:
                it.setCacheMode(QGraphicsItem.DeviceCoordinateCache)

    def _export(self, path: str, r: QRectF, scale: float) -> str:
        if path.lower().endswith(".svg"):
            from PySide6.QtSvg import QSvgGenerator
            gen = QSvgGenerator()
            gen.setFileName(path)
            gen.setSize(QSize(int(r.width()), int(r.height())))
            gen.setViewBox(QRectF(0, 0, r.width(), r.height()))
            gen.setTitle("Graph Surgeon view")
            p = QPainter(gen)
            self.graph_scene.render(p, QRectF(0, 0, r.width(), r.height()), r)
            p.end()
            return path
        # keep bitmaps within reason: at most 16k px a side and 120 M pixels
        s = min(scale, 16000 / r.width(), 16000 / r.height(),
                (120e6 / (r.width() * r.height())) ** 0.5)
        img = QImage(max(1, int(r.width() * s)), max(1, int(r.height() * s)),
                     QImage.Format_ARGB32)
        img.fill(style.BACKGROUND)
        p = QPainter(img)
        p.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.graph_scene.render(p, QRectF(0, 0, img.width(), img.height()), r)
        p.end()
        if not img.save(path):
            raise OSError(f"{path}: could not write the image")
        return path


class Minimap(QWidget):
    """A small overview in the view's corner: the whole graph and the visible area; click or
    drag to move there. The overview is a pixmap rendered after each layout."""

    SIZE = QSize(220, 160)

    def __init__(self, view: GraphView):
        super().__init__(view)
        self.view = view
        self.setFixedSize(self.SIZE)
        self.setCursor(Qt.PointingHandCursor)
        self._pixmap: QPixmap | None = None
        self._src = QRectF()
        # debounced: a burst of highlight changes (search as you type) renders once
        self._timer = QTimer(self, singleShot=True, interval=300, timeout=self._render)
        self.enabled = True
        self.hide()

    def place(self) -> None:
        vp = self.view.viewport().geometry()
        self.move(vp.right() - self.width() - 10, vp.bottom() - self.height() - 10)

    def refresh(self) -> None:
        self._timer.start()

    def _render(self) -> None:
        """Draw the scene's batched overview (boxes, frames, edge lines) into a small cached
        pixmap: a few milliseconds even on a 10,000-node graph, where ``QGraphicsScene.render``
        called every item's Python paint (0.4-0.65 s)."""
        scene = self.view.graph_scene
        if self.view.document is None or not self.enabled or not scene.items_by_key:
            self._pixmap = None
            self.hide()
            return
        ov = scene.overview()
        r = ov.rect.adjusted(-20, -20, 20, 20)
        if r.isEmpty():
            self._pixmap = None
            self.hide()
            return
        self._src = r
        pm = QPixmap(self.size() * self.devicePixelRatioF())
        pm.setDevicePixelRatio(self.devicePixelRatioF())
        pm.fill(QColor(255, 255, 255, 235))
        p = QPainter(pm)
        target = self._target()
        s = target.width() / r.width()
        p.translate(target.x(), target.y())
        p.scale(s, s)
        p.translate(-r.x(), -r.y())
        ov.draw(p, s)
        p.end()
        self._pixmap = pm
        self.place()
        self.show()
        self.update()

    def _target(self) -> QRectF:
        r = self._src
        w, h = self.width() - 8, self.height() - 8
        s = min(w / max(r.width(), 1), h / max(r.height(), 1))
        tw, th = r.width() * s, r.height() * s
        return QRectF(4 + (w - tw) / 2, 4 + (h - th) / 2, tw, th)

    def _to_scene(self, p: QPointF) -> QPointF:
        t = self._target()
        fx = (p.x() - t.x()) / max(t.width(), 1)
        fy = (p.y() - t.y()) / max(t.height(), 1)
        return QPointF(self._src.x() + fx * self._src.width(),
                       self._src.y() + fy * self._src.height())

    def paintEvent(self, event):
        p = QPainter(self)
        p.setPen(QPen(QColor("#9aa5b4")))
        p.setBrush(QColor(255, 255, 255, 235))
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        if self._pixmap is not None:
            p.drawPixmap(0, 0, self._pixmap)
            vis = self.view.mapToScene(self.view.viewport().rect()).boundingRect()
            t = self._target()
            s = t.width() / max(self._src.width(), 1)
            vr = QRectF(t.x() + (vis.x() - self._src.x()) * s, t.y() + (vis.y() - self._src.y()) * s,
                        vis.width() * s, vis.height() * s).intersected(QRectF(self.rect()))
            p.setPen(QPen(style.SELECTION, 1.5))
            p.setBrush(QColor(26, 115, 232, 30))
            p.drawRect(vr)

    def mousePressEvent(self, event):
        self.view.centerOn(self._to_scene(event.position()))
        self.update()

    def mouseMoveEvent(self, event):
        if event.buttons() & Qt.LeftButton:
            self.view.centerOn(self._to_scene(event.position()))
            self.update()


class Legend(QFrame):
    """Colour legend in the view's bottom-left corner (op families, or a panel's own legend).

    Its title folds it to one line (the minimap sits bottom-right), so it never has to hide the
    top of a graph, where a model starts.
    """

    def __init__(self, view: GraphView):
        super().__init__(view)
        self.view = view
        self.setStyleSheet("Legend { background: rgba(255,255,255,225); border: 1px solid #c5ccd6;"
                           " border-radius: 5px; } QLabel { font-size: 8pt; color: #333; }"
                           " QToolButton { font-size: 8pt; font-weight: bold; border: none; }")
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(8, 6, 8, 6)
        self._grid.setHorizontalSpacing(6)
        self._grid.setVerticalSpacing(2)
        self.entries: list[tuple[str, QColor]] = []
        self.collapsed = False
        self._user_folded = False  # once the user folds/unfolds, the size rule stops deciding
        self._full_size = QSize()
        self._title = "Op families"

    def set_entries(self, entries: list[tuple[str, QColor]], title: str = "Op families") -> None:
        while self._grid.count():
            w = self._grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.entries = list(entries)
        self._title = title or "Legend"
        toggle = QToolButton()
        toggle.setObjectName("legend_toggle")
        toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        toggle.setArrowType(Qt.RightArrow if self.collapsed else Qt.DownArrow)
        toggle.setText(self._title)
        toggle.setToolTip("Fold or unfold the legend")
        toggle.clicked.connect(self.toggle)
        self._grid.addWidget(toggle, 0, 0, 1, 2)
        row = 1
        for text, color in entries:
            sw = QLabel()
            sw.setFixedSize(14, 10)
            sw.setStyleSheet(f"background: {QColor(color).name()}; border: 1px solid "
                             f"{QColor(color).darker(150).name()}; border-radius: 2px;")
            self._grid.addWidget(sw, row, 0)
            self._grid.addWidget(QLabel(text), row, 1)
            row += 1
        warn = QLabel("⚠ dashed orange: training-only / control flow")
        warn.setStyleSheet(f"color: {style.WARNING.name()}; font-size: 7.5pt;")
        self._grid.addWidget(warn, row, 0, 1, 2)
        self._show_rows()
        # The replaced labels are only deleted later: size again once they are gone, or a
        # panel's legend (per-node drift) shows as an empty 24x14 box.
        QTimer.singleShot(0, self._fit)

    def toggle(self) -> None:
        self._user_folded = True
        self._set_collapsed(not self.collapsed)

    def _set_collapsed(self, collapsed: bool) -> None:
        if collapsed == self.collapsed:
            return
        self.collapsed = collapsed
        btn = self.findChild(QToolButton, "legend_toggle")
        if btn is not None:
            btn.setArrowType(Qt.RightArrow if collapsed else Qt.DownArrow)
        self._show_rows()

    def _show_rows(self) -> None:
        for i in range(self._grid.count()):
            w = self._grid.itemAt(i).widget()
            if w is not None and w.objectName() != "legend_toggle":
                w.setVisible(not self.collapsed)
        self._fit()

    def _fit(self) -> None:
        self.adjustSize()
        if not self.collapsed:
            self._full_size = self.size()
        self.place()

    def place(self) -> None:
        """Bottom-left; folded while the view is too small for it (until the user decides)."""
        vp = self.view.viewport().geometry()
        if not self._user_folded and self._full_size.isValid():
            cramped = (vp.height() < 3 * self._full_size.height()
                       or vp.width() < 3 * self._full_size.width())
            if cramped != self.collapsed:
                self._set_collapsed(cramped)
                return  # _set_collapsed placed it
        self.move(10, max(10, vp.bottom() - self.height() - 8))
