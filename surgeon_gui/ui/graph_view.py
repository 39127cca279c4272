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
* diff marks: automatic on ``document.changed``: always the document's current step (the one
  the Diff panel and the status bar show; none at the model as opened); ``show_diff_marks
  (change)``, ``clear_marks()``.
* before mode: ``show_before(step)`` draws the graph as it was before step ``step`` of the
  history (read-only, a banner says so), ``show_before(None)`` goes back; any change to the
  document goes back too; signal ``before_changed(step | None)``.
* ``set_document(doc)``, ``expand(key)``, ``collapse(key)``, ``expand_all()``, ``collapse_all()``,
  ``trace(name, "inputs"|"outputs")``, ``zoom_in/zoom_out/fit/zoom_to_selection``,
  ``export_image(path)`` (.png or .svg); signal ``layout_finished()`` after every relayout.
"""
from __future__ import annotations

import gc
import os
import time
import weakref
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import QEvent, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QImage,
    QPainter,
    QPen,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsView,
    QLabel,
    QMenu,
)

from ..core.history.document import Document, GraphChange, absorbed, absorbed_text
from ..core.viewmodel.grouping import GroupTree
from ..core.viewmodel.grouping_delta import derive_for_change, derive_visible
from ..core.viewmodel.layout import LayoutEngine, Placement, placement_diff
from ..core.viewmodel.viewstate import ViewState, step_marks
from . import style
from . import graph_scene
from .graph_scene import (
    EdgeItem,
    FrameItem,
    GraphScene,
    GroupItem,
    NodeItem,
    UnitItem,
)
from .view_overlays import Legend, Minimap
from .workers import Worker, build_quietly

#: Above this many visible units, layouts run in a worker thread.
ASYNC_UNITS = 1500
#: A model just opened with at least this many nodes has its first layout made in a worker
#: too, however small its first view: the GUI thread then switches to the document in one
#: event and builds the scene in a later one, instead of both in one (41 ms of GUI-thread CPU
#: on the 107k-node graph, 0.2 s and more of wall time on a busy machine).
ASYNC_OPEN_NODES = 20_000
#: Placements kept for undo and redo (a state and the one before it, with and without
#: everything expanded).
PLACEMENTS_KEPT = 4
#: Below this zoom the view draws the scene's batched overview (boxes, frames and edge lines
#: in a few QPainter calls) instead of painting every item (one Python call each): items are
#: flat boxes of a few pixels there anyway, and the whole 10k-node graph stays fluid.
FAR_SCALE = 0.2
SCOPE_PREFIX = "scope:"
#: Highlight kinds of a trace (inputs / outputs of a node): everything else is dimmed.
TRACE_KINDS = ("upstream", "downstream")

#: Qt's raster engine hands each blend or fill of more than 64 lines to QGuiApplication's
#: thread pool. A frame of this view is ~200 small cached box pictures and a few hundred
#: strokes: the hand-offs (a semaphore, thread wake-ups) cost more than they share out. A zoom
#: frame of the 107k-node graph's default view took 22 ms CPU with the pool and 16.5 ms
#: without, and on a busy machine the GUI thread waited for the pool's threads (wall about 2×
#: CPU). Qt reads this when it first paints, so it is set when the view's module is imported
#: (before any window shows); a user's own setting wins. Pictures are the same.
os.environ.setdefault("QT_NO_GUI_THREADPOOL", "1")



def tags_of(origins: dict) -> dict[str, tuple[str, str]]:
    """History tags (node name -> (box tag, tooltip line)) from ``Document.origins``: any
    thread."""
    tags = {n: (o.tag, o.describe()) for n, o in origins.items()}
    for into, items in absorbed(origins).items():
        if into not in tags:
            bn = any(o.folded_batch_norm for o in items)
            tags[into] = ("+BN" if bn else "+folded", absorbed_text(items))
    return tags

def drawn_among(names, placed) -> list[str]:
    """The nodes of ``names`` (a set) drawn as boxes of their own in ``placed`` (unit key →
    box), going over the fewer of the two."""
    if len(names) <= len(placed):
        return [n for n in names if "n:" + n in placed]
    return [u[2:] for u in placed if u.startswith("n:") and u[2:] in names]


class GraphView(QGraphicsView):
    selection_changed = Signal(list)
    layout_finished = Signal()
    #: A node was double-clicked (its name).
    node_activated = Signal(str)
    #: The before mode changed: the step whose "before" is shown (1-based), or None.
    before_changed = Signal(object)

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
        #: The document revision ``tree`` is of, and (while a change is handled) the tree
        #: before it with the change: a new edit's tree is derived from them.
        self._tree_revision: int | None = None
        self._derive_hint: tuple | None = None
        #: How the last new state's tree and visible edges were made: "derived" from the
        #: state before (in proportion to the change) or "built" (tests, benchmarks).
        self.last_tree_made = self.last_edges_made = ""
        self.engine: LayoutEngine | None = None
        self.placement: Placement | None = None
        #: Open groups, highlight, marks, ghosts, search hits: Qt-free (core/viewmodel).
        self.state = ViewState()
        self.show_constants = False
        self.horizontal = False
        #: A long narrow top level (a chain of collapsed blocks) wraps into columns that fit
        #: the window (see core.viewmodel.layout.layered).
        self.wrap_long_chains = True
        #: Callables ``hook(menu: QMenu, names: list[str])`` run when the node menu is built.
        self.context_menu_hooks: list[Callable[[QMenu, list[str]], None]] = []
        self._colors: dict[str, QColor] | None = None
        #: In before mode: the live document (``document`` is then a read-only copy of an
        #: earlier state) and the step whose "before" is shown.
        self._live_document: Document | None = None
        self.before_step: int | None = None
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
        self.before_banner = QLabel(self)
        self.before_banner.setObjectName("before_banner")
        self.before_banner.setStyleSheet("background:#fff3bf; color:#5c3c00; border:1px solid "
                                         "#e8b100; border-radius:3px; padding:3px 8px;")
        self.before_banner.hide()

    @property
    def expanded(self) -> set[str]:
        return self.state.expanded

    @expanded.setter
    def expanded(self, keys: set[str]) -> None:
        self.state.set_expanded(keys)

    # ================================================================== document
    def set_document(self, doc: Document | None, reset_view: bool = False,
                     tree: GroupTree | None = None) -> None:
        """Show ``doc`` (None clears). The expansion is kept where the groups still exist, unless
        ``reset_view`` (a newly opened model: default expansion, fit to window). ``tree`` may
        be a GroupTree already built for ``doc.graph`` (e.g. by the loading worker)."""
        self._leave_before()
        if self.document is not None:
            self.document.changed.disconnect(self._on_document_changed)
        self.document = doc
        self.state.clear()
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
        self._layout_in_worker_once = reset_view and len(doc.graph) >= ASYNC_OPEN_NODES
        self.relayout()

    def _clear_scene(self) -> None:
        self.graph_scene.clear()
        self.graph_scene.reset()
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
        # the document's revision this tree is of (an edit's tree is derived from it)
        self._tree_revision = getattr(self.document, "revision", None) \
            if self._live_document is None else None
        self.graph_scene.set_tags(self.history_tags())
        if self._live_document is None:
            self._detach_cached_trees()
        if reset_view:
            self.state.open_by_default(self.tree)
        else:  # the user's groups stay open, the app's follow this state's default rule
            self.state.follow(self.tree)
        tree = self.tree
        # the viewport without scroll bars: they come and go with the drawing's size (an
        # expand-all shows them), and a wrap that followed them would lay out everything anew
        vp = self.maximumViewportSize()
        self.engine = LayoutEngine(tree, lambda u: self.graph_scene.node_size(tree, u),
                                   self.horizontal, reuse=None if reset_view else self.engine,
                                   wrap_in=(vp.width(), vp.height()) if self.wrap_long_chains
                                   else None)

    def history_tags(self) -> dict[str, tuple[str, str]]:
        """What the history says the drawn nodes were (node name → (box tag, tooltip line)):
        a BiasAdd that keeps a folded batch norm's name says "folded BN", the conv it was
        folded into "+BN" (``Document.origins`` up to the state shown)."""
        live = self.live_document
        if live is None or not hasattr(live, "origins"):
            return {}
        origins = live.origins(0, self.before_step - 1 if self.showing_before else None)
        memo = self.__dict__.setdefault("_tags_memo", [])
        for kept, tags in memo:    # (the document kept that span's origins: undo, redo back
            if kept is origins:    # to a state, Before toggled)
                return tags
        tags = tags_of(origins)
        self.remember_tags(origins, tags)
        return tags

    def remember_tags(self, origins: dict, tags: dict) -> None:
        """Keep ``tags`` (:func:`tags_of`, made on a worker) for the origins dict they were made
        of (one the document keeps: see ``Document.origins_after``)."""
        memo = self.__dict__.setdefault("_tags_memo", [])
        memo.append((origins, tags))
        del memo[:-4]

    def _tree_cache_of(self, doc) -> dict:
        cache = self.__dict__.setdefault("_tree_cache", {})
        if self.__dict__.get("_tree_cache_doc") is not doc:  # keys are per document
            cache.clear()
            self._tree_cache_doc = doc
        return cache

    def _detach_cached_trees(self) -> None:
        """Cached trees of other states keep no graph: a tree is plain Python data (names, ops,
        edges) but for its ``graph``, which ``_cached_tree`` sets again when the state comes
        back. Else each would keep its state's whole GraphDef alive (a History jump swaps in
        another graph; the preset's adoption too), up to 8 × 357 MB on NASNetLarge."""
        for t in self.__dict__.get("_tree_cache", {}).values():
            if t is not self.tree and getattr(t, "is_complete", True):
                t.graph = None   # (a deferred tree still being completed keeps it meanwhile)

    def _cached_tree(self) -> GroupTree:
        """The group tree of the document's current state; undo/redo return to states seen
        before (``Document.state_key``), whose trees are kept in a small LRU instead of being
        rebuilt (the rebuild is most of an undo's cost on a 10,000-node graph)."""
        doc = self.document
        if self._live_document is not None:  # an old state shown for a moment: not cached
            return GroupTree(doc.graph, show_constants=self.show_constants)
        key = getattr(doc, "state_key", None)
        cache = self._tree_cache_of(doc)
        if key is not None:
            full = (key, self.show_constants)
            tree = cache.pop(full, None)
            if tree is not None:
                tree.graph = doc.graph  # same content; the current index object
                cache[full] = tree
                return tree
        # a new edit's state: derived from the tree before it where the change allows (a few
        # groups change of thousands: see grouping_delta), else built
        hint, self._derive_hint = self._derive_hint, None
        tree = None
        if hint is not None and hint[0].show_constants == self.show_constants:
            tree = derive_for_change(hint[0], doc.graph, hint[1])
        self.last_tree_made = "derived" if tree is not None else "built"
        if tree is None:
            # (tens of thousands of long-lived objects; left young, the collections they set
            # off walked the whole heap twice per edit on the 53k graph, 0.3-0.9 s each, on
            # the GUI thread)
            tree = build_quietly(lambda: GroupTree(doc.graph,
                                                   show_constants=self.show_constants))
        if key is not None:
            cache[(key, self.show_constants)] = tree
            while len(cache) > 8:
                cache.pop(next(iter(cache)))
        return tree

    def _on_document_changed(self, change: GraphChange) -> None:
        """The document changed: remember where removed nodes were, redraw, then mark the
        document's current step."""
        was_before = self._leave_before()
        if was_before:
            self.before_changed.emit(None)
        # the tree shown is of the state just before this change: the new one may be derived
        # from it (see _cached_tree)
        revision = getattr(self.document, "revision", None)
        self._derive_hint = (self.tree, change) if (
            not was_before and self.tree is not None and not change.reset
            and revision is not None and self._tree_revision == revision - 1
            and self.tree.graph is not None) else None
        old_boxes: dict[str, tuple] = {}
        if self.tree is not None and self.placement is not None and not change.reset \
                and change.kind == "apply":  # only a step just applied leaves ghosts
            placed = self.placement.boxes
            removed = {}
            # only a node drawn as its own box gets a ghost: look up just those (a step that
            # removes 90k nodes of the 107k-node graph: 0.15 s on the GUI thread otherwise),
            # going over the fewer of the removed names (one edit on an expanded graph of 66k
            # boxes) and the drawn boxes (the preset's 90k names on a view of hundreds: 10-20 ms)
            for name in drawn_among(change.removed, placed):
                unit = self.tree.representative(name, self.placement.expanded)
                if unit.startswith("n:") and unit[2:] == name and unit in placed:
                    b = placed[unit]
                    removed[name] = (b.x, b.y, b.w, b.h)
            if removed:
                enabled = gc.isenabled()
                gc.disable()  # a tuple per box of a big graph: no collector passes meanwhile
                try:
                    anchors = ViewState.ghost_anchors(removed, self._boxes_near(removed),
                                                      {"n:" + n for n in removed})
                finally:
                    if enabled:
                        gc.enable()
                for name, box in removed.items():
                    old_boxes[name] = (self.tree.op_of.get(name, ""), box, anchors.get(name))
        try:
            self._rebuild_tree(reset_view=False)
        finally:
            self._derive_hint = None
        if change.reset:
            self.state.clear_marks()
        else:
            self._mark_current_step(old_boxes if change.kind == "apply" else {})
        self.relayout()

    def _boxes_near(self, removed: dict[str, tuple]) -> dict[str, tuple]:
        """The drawn boxes (x, y, w, h) a removed node's ghost may be anchored to: in a lazy
        scene those of the tiles around the removed boxes (all of them when those hold no
        other box), else all: a tuple per box of a 100k-node graph cost 0.2 s per redo."""
        placed = self.placement.boxes
        scene = self.graph_scene
        if scene.lazy and scene.placement is self.placement and len(removed) <= 500:
            t = graph_scene.TILE   # (the removed box and the tiles all around it)
            keys: set[str] = set()
            for x, y, w, h in removed.values():
                keys |= scene.units_in(QRectF(x - t, y - t, w + 2 * t, h + 2 * t))
            keys -= {"n:" + n for n in removed}
            if keys:
                return {k: (placed[k].x, placed[k].y, placed[k].w, placed[k].h)
                        for k in keys if k in placed}
        return {k: (b.x, b.y, b.w, b.h) for k, b in placed.items()}

    def _mark_current_step(self, old_boxes: dict | None = None) -> None:
        """Marks = what the document's current step did (nothing at the model as opened);
        ghosts where its removed nodes were drawn, when that is known."""
        step = getattr(self.document, "current_step", None)
        if step is None:
            self.state.clear_marks()
            return
        d = step.delta
        cursor = self.document.cursor
        m = step_marks(d.added, d.changed, d.removed, self.document.renames(cursor - 1, cursor))
        self.state.set_marks(m["added"], m["changed"], m["removed"], m["renamed"],
                             old_boxes={n: b for n, b in (old_boxes or {}).items()
                                        if n in m["removed"]})

    # ================================================================== before mode
    @property
    def showing_before(self) -> bool:
        return self._live_document is not None

    @property
    def live_document(self) -> Document | None:
        """The open document (in before mode :attr:`document` is a copy of an old state)."""
        return self._live_document or self.document

    def show_before(self, step: int | None) -> None:
        """Show the graph as it was before ``step`` (1-based) of the live document's
        history, read-only, with what the step removed and changed marked; None: back."""
        live = self.live_document
        if step is None or live is None:
            if self._leave_before():
                self._rebuild_tree(reset_view=False)
                self._mark_current_step()
                self.relayout()
                self.before_changed.emit(None)
            return
        if not 1 <= step <= live.cursor:
            raise IndexError(f"no applied step {step}")
        s = live.steps[step - 1]
        g = live.graph_at(step - 1)
        self._live_document = live
        self.before_step = step
        self.document = Document(g.graph_def, live.path, g.given_inputs, g.given_outputs)
        self._rebuild_tree(reset_view=False)
        d = s.delta
        m = step_marks(d.added, d.changed, d.removed, live.renames(step - 1, step), before=True)
        self.state.set_marks((), m["changed"], m["removed"], m["renamed"])
        self.before_banner.setText(f"Before step {step}: {s.label} — the graph as it was "
                                   "(read-only; marks: what the step removed and changed)")
        self.before_banner.setWordWrap(True)
        self.before_banner.setFixedWidth(max(200, self.viewport().width() - 16))
        self.before_banner.adjustSize()
        self.before_banner.move(8, 8)
        self.before_banner.show()
        self.before_banner.raise_()
        self.relayout()
        self.before_changed.emit(step)

    def _leave_before(self) -> bool:
        """Back to the live document (no redraw); True when the view was in before mode."""
        if self._live_document is None:
            return False
        self.document = self._live_document
        self._live_document = None
        self.before_step = None
        self.before_banner.hide()
        return True

    # ================================================================== layout
    def relayout(self) -> None:
        """Lay out the visible graph (in a worker when it is big) and redraw."""
        if self.engine is None:
            return
        self._generation += 1
        gen = self._generation
        # (a big model just opened: see ASYNC_OPEN_NODES)
        in_worker, self._layout_in_worker_once = \
            self.__dict__.get("_layout_in_worker_once", False), False
        expanded = frozenset(k for k in self.expanded if k in self.tree.groups)
        engine = self.engine
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        self._pending_layout = True
        hit = self._cached_placement(expanded)
        if hit is not None:  # undo/redo back to a state laid out a moment ago
            self._apply_layout(gen, engine, hit)
            return
        estimate = sum(len(self.tree.children(k)) for k in expanded) + len(self.tree.root_children)
        # edges read the GraphDef: here, on the GUI thread; the worker sees plain Python data
        edges = self._visible_graph(expanded)
        drawn, drawn_tree, tree = self.placement, self.graph_scene.tree, self.tree

        def diffed(p: Placement) -> Placement:
            """What the scene will have to change (in the worker, for a big graph): an edit
            moves a few boxes of thousands, and the scene then updates only those."""
            if p.diff is not None and p.base is not None and p.base() is drawn:
                # laid out from the drawn one (an edit's incremental layout): the engine
                # found what differs while it went (placement_diff's answer, without its
                # walk over every box and edge)
                if len(p.diff) > graph_scene.UPDATE_MAX * (len(p.boxes) + len(p.edges)):
                    p.diff = p.base = None
            elif drawn is not None and drawn_tree is not None:
                p.diff = placement_diff(drawn, p, drawn_tree, tree,
                                        limit=graph_scene.UPDATE_MAX)
                p.base = weakref.ref(drawn) if p.diff is not None else None
            else:
                p.diff = p.base = None
            p.edges_by_src()  # what the scene looks edges up in
            return p

        if estimate < ASYNC_UNITS and not in_worker:
            self._apply_layout(gen, engine, build_quietly(
                lambda: diffed(engine.layout(expanded, edges=edges))))
            return
        QGuiApplication.setOverrideCursor(Qt.BusyCursor)

        def job(state):
            def make():
                p = engine.layout(expanded, check=state.check, edges=edges)
                state.check()
                return diffed(p)
            return build_quietly(make)  # (the placement is kept: see _cached_tree)

        w = Worker(job)
        alive = lambda: shiboken6.isValid(self)
        w.signals.finished.connect(
            lambda p, g=gen, e=engine: alive() and self._apply_layout(g, e, p))
        w.signals.failed.connect(lambda msg, exc: alive() and self._layout_failed(msg))
        w.signals.done.connect(QGuiApplication.restoreOverrideCursor)
        self._worker = w
        w.start()

    def _visible_graph(self, expanded: frozenset) -> list:
        """The tree's visible edges for ``expanded``; undo and redo come back to trees (kept by
        ``_cached_tree``) and expansions seen before, so the last few are kept."""
        cache = self.__dict__.setdefault("_visible_cache", {})
        key = (id(self.tree), expanded)
        hit = cache.pop(key, None)
        if hit is not None and hit[0] is self.tree:
            cache[key] = hit
            return hit[1]
        edges = None
        came = getattr(self.tree, "_came_from", None)
        if came is not None:   # an edit's derived tree: its edges from the tree before it
            old = came[0]()
            groups = self.tree.groups
            for (_, was), (t, old_edges) in list(cache.items()):
                # (groups the edit dissolved were open: the same expansion otherwise)
                if t is old and old is not None and \
                        frozenset(k for k in was if k in groups) == expanded:
                    edges = build_quietly(lambda: derive_visible(old, self.tree, old_edges,
                                                                 expanded, was))
                    break
        self.last_edges_made = "derived" if edges is not None else "built"
        if edges is None:
            edges = build_quietly(lambda: self.tree.visible_graph(expanded))  # (kept: see above)
        self.remember_visible(self.tree, expanded, edges)
        return edges

    def remember_visible(self, tree: GroupTree, expanded: frozenset, edges: list) -> None:
        """Visible edges of ``tree`` with the groups ``expanded`` open, made elsewhere (the
        loader's worker makes the default view's): a layout of that tree with those groups
        open takes them instead of making them on the GUI thread."""
        cache = self.__dict__.setdefault("_visible_cache", {})
        cache[(id(tree), frozenset(expanded))] = (tree, edges)
        while len(cache) > 4:
            cache.pop(next(iter(cache)))

    def _placement_key(self, expanded: frozenset) -> tuple:
        e = self.engine
        return (id(self.tree), expanded, e.horizontal, e.wrap_in)

    def _cached_placement(self, expanded: frozenset) -> Placement | None:
        """The placement of this tree and expansion laid out before (undo and redo come back
        to trees kept by ``_cached_tree``), or None."""
        cache = self.__dict__.get("_placements")
        if not cache:
            return None
        key = self._placement_key(expanded)
        hit = cache.pop(key, None)
        if hit is None or hit[0] is not self.tree:
            return None
        cache[key] = hit
        return hit[1]

    def _remember_placement(self, placement: Placement) -> None:
        """Keep the last few placements (with their trees, so that an id is never reused)."""
        cache = self.__dict__.setdefault("_placements", {})
        if self.__dict__.get("_placements_doc") is not self.document:
            cache.clear()
            self._placements_doc = self.document
        if self._live_document is not None:
            return  # an old state shown for a moment (its tree is not kept either)
        for k in [k for k, (_, p) in cache.items() if p.edges is placement.edges]:
            # the same edge objects laid out again (another window size): their routes are
            # this placement's now
            del cache[k]
        cache[self._placement_key(placement.expanded)] = (self.tree, placement)
        while len(cache) > PLACEMENTS_KEPT:
            cache.pop(next(iter(cache)))

    def _layout_failed(self, msg: str) -> None:
        self._pending_layout = False
        if self.window() and hasattr(self.window(), "statusBar"):
            self.window().statusBar().showMessage(f"Layout failed: {msg.splitlines()[0]}", 10000)

    def _apply_layout(self, gen: int, engine: LayoutEngine, placement: Placement) -> None:
        if gen != self._generation or engine is not self.engine:
            return  # a newer layout was requested meanwhile
        t0 = time.perf_counter()
        self._worker = None
        self._remember_placement(placement)
        selected = set(self.selected_nodes())
        self.graph_scene.blockSignals(True)
        self.placement = placement
        self.graph_scene.apply_placement(self.tree, placement)
        self._refresh_decorations()
        for name in selected:
            item = self.item_for(name)
            if item is not None:
                item.setSelected(True)
        self.graph_scene.blockSignals(False)
        # apply_placement set the scene rect while signals were blocked: tell the view, or its
        # scroll range stays that of the previous layout (an expanded graph cannot be scrolled).
        self.graph_scene.sceneRectChanged.emit(self.graph_scene.sceneRect())
        self.last_layout_seconds = placement.seconds + (time.perf_counter() - t0)
        self._pending_layout = False
        if self._fit_after_layout:
            whole = self._fit_after_layout == "all"
            self._fit_after_layout = False
            self.fit() if whole else self.show_readable_overview()
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
        if self.tree and self.state.expand(self.tree, key):
            self.relayout()

    def collapse(self, key: str) -> None:
        if self.tree and self.state.collapse(self.tree, key):
            self.relayout()

    def toggle(self, key: str) -> None:
        (self.collapse if key in self.expanded else self.expand)(key)

    def expand_all(self) -> None:
        """Open every group and fit the whole graph in the window (far zoom draws it as an
        overview; zoom in where it matters)."""
        if self.tree:
            self.state.expand_all(self.tree)
            self._fit_after_layout = "all"
            self.relayout()

    def collapse_all(self) -> None:
        if self.tree:
            self.state.collapse_all()
            self.relayout()

    def group_members(self, key: str) -> list[str]:
        """Every node inside group ``key`` (accepts ``scope:``-prefixed keys)."""
        key = key.removeprefix(SCOPE_PREFIX)
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
        if self.state.expand_path(self.tree, need):
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
        self.state.set_highlight(names, kind)
        self._refresh_decorations()

    def set_highlight_kinds(self, kinds: dict[str, str] | None) -> None:
        """Outline each node with the colour of its own kind (None clears)."""
        self.state.set_highlight_kinds(kinds)
        self._refresh_decorations()

    def reveal(self, names) -> bool:
        """Scroll to the first of ``names`` unless one of them is already on screen (a
        preview's matches off-screen). Returns True when the view moved."""
        if self.tree is None or self.placement is None:
            return False
        shown = self.mapToScene(self.viewport().rect()).boundingRect()
        first = None
        boxes = self.graph_scene.boxes
        for name in names:
            unit = self.tree.representative(name, self.placement.expanded)
            b = boxes.get(unit)
            if b is None or (unit.startswith("g:") and unit[2:] in self.placement.expanded):
                continue  # not drawn, or a frame
            r = QRectF(b.x, b.y, b.w, b.h)
            if shown.intersects(r):
                return False
            if first is None:
                first = r
        if first is None:
            return False
        self.centerOn(first.center())
        self.minimap.update()
        return True

    def highlighted(self) -> dict[str, str]:
        return dict(self.state.highlight)

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
        self.state.set_marks(change.added, change.changed, change.removed,
                             old_boxes=old_boxes)

    def clear_marks(self) -> None:
        self.state.clear_marks()
        self._refresh_decorations()

    def marks(self) -> dict[str, str]:
        return dict(self.state.marks)

    # ================================================================== decorations
    def _refresh_decorations(self) -> None:
        """Push highlight, colours and marks to the scene (no relayout); only the items whose
        decoration changes are touched."""
        if self.tree is None or self.placement is None:
            return
        scene = self.graph_scene
        expanded = self.placement.expanded
        deco: dict[str, tuple] = {}
        for key, d in self.state.decorations(self.tree, expanded, scene.boxes).items():
            lights = key.startswith("n:") or key[2:] not in expanded  # not a frame
            deco[key] = (d.highlight if lights else None, d.highlight_count if lights else 0,
                         d.mark, tuple(d.mark_counts.items()), None)
        if self._colors:
            for name, color in self._colors.items():
                key = "n:" + name
                if key in scene.boxes:
                    deco[key] = deco.get(key, (None, 0, None, (), None))[:4] + (color,)
        # a trace dims everything off its path
        tracing = any(k in TRACE_KINDS for k in self.state.highlight.values())
        scene.set_decorations(deco, tracing)
        scene.clear_ghosts()
        if self.state.ghost_boxes:
            new_boxes = _BoxTuples(self.placement.boxes)
            for name, (op, box) in self.state.place_ghosts(new_boxes, self._is_free).items():
                scene.add_ghost(name, op, QRectF(*box))
        scene.invalidate_overview()
        if self.far_zoom():
            self.viewport().update()
        self.minimap.refresh()

    def _is_free(self, box) -> bool:
        """No live box, group header or edge under ``box`` (x, y, w, h) — a ghost may go
        there."""
        r = QRectF(*box).adjusted(-4, -4, 4, 4)
        self.graph_scene.ensure_rect(r)
        return not any(isinstance(it, (NodeItem, GroupItem, FrameItem, EdgeItem))
                       for it in self.graph_scene.items(r, Qt.IntersectsItemShape))

    # ================================================================== far zoom
    def far_zoom(self) -> bool:
        """True when the view draws the batched overview instead of the items."""
        return self.transform().m11() < FAR_SCALE and bool(self.graph_scene.items_by_key)

    def _sync_items(self) -> None:
        """A lazy scene: make the items around what the viewport shows (a quarter viewport of
        margin, so panning rarely has to wait for them; tiles are 1024 units) and drop those
        far away."""
        scene = self.graph_scene
        if not scene.lazy:
            return
        seen = self.mapToScene(self.viewport().rect()).boundingRect()
        m = max(seen.width(), seen.height()) * 0.25
        scene.painting = True  # the frame being painted draws what is made now
        try:
            scene.ensure_rect(seen.adjusted(-m, -m, m, m))
        finally:
            scene.painting = False
        scene.evict(seen.adjusted(-6 * m, -6 * m, 6 * m, 6 * m))

    def paintEvent(self, event):
        if not self.far_zoom():
            self._sync_items()
            super().paintEvent(event)
            return
        p = QPainter(self.viewport())
        p.fillRect(event.rect(), style.BACKGROUND)
        p.setTransform(self.viewportTransform())
        exposed = self.mapToScene(event.rect()).boundingRect().adjusted(-2, -2, 2, 2)
        self.graph_scene.overview().draw(p, self.transform().m11(), exposed)
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
        r = self.graph_scene.content_rect()
        if r.isEmpty():
            return
        self._zoom_to(r.adjusted(-20, -20, 20, 20), max_scale=1.0)

    def show_readable_overview(self, min_scale: float = 0.55) -> None:
        """Fit the graph when it stays readable; otherwise zoom to a readable scale and show
        the start of the graph (the minimap shows the rest)."""
        r = self.graph_scene.content_rect()
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
        scene = self.graph_scene
        limit = r.left() + visible.width() if self.horizontal else r.top() + visible.height()
        for key, bx in scene.boxes.items():
            if key[2:] in self.placement.expanded and key.startswith("g:"):
                continue  # a frame
            if (bx.x if self.horizontal else bx.y) < limit:
                band = band.united(QRectF(bx.x - 4, bx.y - 4, bx.w + 8, bx.h + 8))
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
    def _ensure_at(self, pos) -> None:
        """A lazy scene at far zoom has no items: make those under the pointer first."""
        if self.graph_scene.lazy:
            c = self.mapToScene(pos)
            self.graph_scene.ensure_rect(QRectF(c.x() - 8, c.y() - 8, 16, 16))

    def viewportEvent(self, event):
        if event.type() == QEvent.ToolTip:
            self._ensure_at(event.pos())
        return super().viewportEvent(event)

    def mousePressEvent(self, event):
        self._ensure_at(event.position().toPoint())
        item = self.itemAt(event.position().toPoint())
        if event.button() == Qt.LeftButton and isinstance(item, (GroupItem, FrameItem)):
            p = item.mapFromScene(self.mapToScene(event.position().toPoint()))
            if item.chevron_rect().adjusted(-3, -3, 3, 3).contains(p):
                self.toggle(item.scope)
                event.accept()
                return
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event):
        self._ensure_at(event.position().toPoint())
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
        self._ensure_at(event.pos())
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
        if self.state.highlight:
            menu.addAction("Clear highlight", lambda: self.set_highlight(None))
        if nodes:
            menu.addAction("Copy name" + ("s" if len(nodes) > 1 else ""),
                           lambda: QGuiApplication.clipboard().setText("\n".join(nodes)))
        menu.addAction("Zoom to selection", self.zoom_to_selection)
        if self.context_menu_hooks and not self.showing_before:  # the old graph is read-only
            menu.addSeparator()
            for hook in self.context_menu_hooks:
                hook(menu, list(names))
        return menu

    # ================================================================== export
    def export_image(self, path: str, scale: float = 1.0) -> str:
        """Write the whole graph as drawn (expansion, marks, highlight) to a .png or .svg."""
        self.graph_scene.ensure_rect(self.graph_scene.content_rect())  # every item, if lazy
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
            from PySide6.QtCore import QBuffer, QByteArray, QIODevice
            from PySide6.QtSvg import QSvgGenerator
            raw = QByteArray()
            buf = QBuffer(raw)
            buf.open(QIODevice.WriteOnly)
            gen = QSvgGenerator()
            gen.setOutputDevice(buf)
            gen.setSize(QSize(int(r.width()), int(r.height())))
            gen.setViewBox(QRectF(0, 0, r.width(), r.height()))
            gen.setTitle("Graph Surgeon view")
            p = QPainter(gen)
            self.graph_scene.render(p, QRectF(0, 0, r.width(), r.height()), r)
            p.end()
            buf.close()
            _write(path, bytes(raw.data()))  # the file dialog asked before overwriting
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
        from .app import _png_bytes
        data = _png_bytes(img)
        if data is None:
            raise OSError(f"{path}: could not make the image")
        _write(path, data)  # the file dialog asked before overwriting
        return path


class _BoxTuples:
    """A placement's boxes read as (x, y, w, h) tuples, without copying them all."""

    def __init__(self, boxes):
        self._boxes = boxes

    def __contains__(self, key) -> bool:
        return key in self._boxes

    def __getitem__(self, key) -> tuple:
        b = self._boxes[key]
        return (b.x, b.y, b.w, b.h)


def _write(path: str, data: bytes) -> None:
    """Through the one write path (atomic, links kept); the caller has asked about overwriting."""
    from ..core.model.files import write_file
    write_file(path, data, overwrite=True)
