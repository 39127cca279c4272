"""Plugs the inspector and the search panel into the main window.

The main window calls :func:`install_inspection_panels` once, as it does for the surgery panels;
what the wiring uses from the window is its public API: ``view``, ``add_panel(widget, title,
area, object_name)``, ``document_changed(Document | None)``, ``needs_model(*actions)`` and the
status bar. The panels follow the open document through ``set_document`` (they read it, never
change it); the view's API used: ``focus_node``, ``selection_changed(list)``,
``set_highlight(names, kind)``, ``group_members(key)``, ``tree``, ``node_activated(name)``
(double-click), ``items(pos)`` and its viewport's tooltip events (:class:`RenameTips`).
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget

from .graph_scene import NodeItem

from .inspector import InspectorPanel
from .search_panel import SearchPanel

#: Highlight kind the search results use in the view.
SEARCH_HIGHLIGHT = "search"
#: How a renamed node's tooltip says what it was called (one line, appended).
RENAMED_TIP = "<i>renamed from {old}</i>"


@dataclass
class InspectionPanels:
    inspector: InspectorPanel
    search: SearchPanel
    inspector_dock: QDockWidget
    search_dock: QDockWidget
    find_action: QAction
    find_next: QAction
    find_previous: QAction
    rename_tips: QObject


def install_inspection_panels(window) -> InspectionPanels:
    """Create both panels as docks on ``window``, wire them to its view, add Ctrl+F and
    F3 / Shift+F3 (enabled only with a model open)."""
    view = window.view
    inspector = InspectorPanel()
    search = SearchPanel()
    inspector_dock = window.add_panel(inspector, "Inspector", Qt.RightDockWidgetArea,
                                      "InspectorDock")
    # Search sits on the left (like an IDE's find panel) so the inspector keeps the height of
    # the right column; both can be moved and the placement is remembered.
    search_dock = window.add_panel(search, "Search", Qt.LeftDockWidgetArea, "SearchDock")
    inspector.members_of = view.group_members

    def on_selection(names: list) -> None:
        # A weight drawn as a badge is focused through the op that consumes it (the view
        # selects that op): while the inspector shows the weight and the selection is its
        # owners, it keeps showing the weight the user asked for.
        shown = inspector.current
        if shown is not None and shown[0] == "node" and view.tree is not None \
                and names and set(names) <= set(view.tree.badge_owner.get(shown[1], ())):
            return
        # The inspected node was renamed (or its rename undone): the view redrew it under its
        # new name and lost the selection; select it again, so the inspector follows it.
        new = renamed_now(window.document, shown[1]) \
            if not names and shown is not None and shown[0] == "node" else None
        if new is not None:
            QTimer.singleShot(0, lambda: view.focus_node(new))  # after the view's redraw
            return
        inspector.set_selection(names)

    def go_to(name: str) -> None:
        badge = view.tree is not None and name in view.tree.hidden
        if badge:
            inspector.show_node(name)
        view.focus_node(name)

    def inspect(name: str) -> None:
        # a double-clicked node: bring the Inspector forward (it may be a tab behind another)
        inspector_dock.show()
        inspector_dock.raise_()
        inspector.show_node(name)

    view.selection_changed.connect(on_selection)
    view.node_activated.connect(inspect)
    inspector.node_activated.connect(go_to)
    search.node_activated.connect(go_to)
    search.results_changed.connect(
        lambda names: view.set_highlight(set(names) if names else None, SEARCH_HIGHLIGHT))

    def document_changed(document) -> None:
        inspector.set_document(document)
        search.set_document(document)
    window.document_changed.connect(document_changed)
    document_changed(window.document)  # (made after a model is shown: see defer_panels)
    rename_tips = RenameTips(view)

    def show_search() -> None:
        search_dock.show()
        search_dock.raise_()
        search.focus_query()

    def step(forward: bool) -> None:
        if not search.step_hit(forward):
            show_search()
            window.statusBar().showMessage("No search results: type a search first", 4000)
            return
        n = len(search.result_names())
        i = search.results.indexOfTopLevelItem(search.results.currentItem()) + 1
        window.statusBar().showMessage(f"Search result {i} of {n}", 3000)

    def action(name: str, text: str, keys, tip: str, slot) -> QAction:
        a = QAction(text, window)
        a.setObjectName(name)
        a.setShortcut(QKeySequence(keys))
        a.setShortcutContext(Qt.WindowShortcut)
        a.setToolTip(tip)
        a.triggered.connect(lambda *_: slot())
        window.addAction(a)
        return a

    find = action("actionFind", "Find…", QKeySequence.Find,
                  "Search nodes by name, op type or attribute value (Ctrl+F)", show_search)
    find_next = action("actionFindNext", "Find &Next", "F3",
                       "Go to the next search result (F3)", lambda: step(True))
    find_prev = action("actionFindPrevious", "Find &Previous", "Shift+F3",
                       "Go to the previous search result (Shift+F3)", lambda: step(False))
    window.needs_model(find, find_next, find_prev)
    return InspectionPanels(inspector, search, inspector_dock, search_dock,
                            find, find_next, find_prev, rename_tips)


def renamed_now(doc, name: str) -> str | None:
    """The name node ``name`` has now, when the document's last move renamed it (a rename step
    applied, or undone); None when it still exists or was not renamed."""
    if doc is None or name in doc.graph.nodes:
        return None
    by_step = {old: new for new, old in doc.renames(doc.cursor - 1).items()} \
        if doc.cursor else {}
    new = by_step.get(name) or doc.renames(doc.cursor, doc.cursor + 1).get(name)
    return new if new in doc.graph.nodes else None


class RenameTips(QObject):
    """A renamed node's tooltip says what it was called: "renamed from <old name>" (its name in
    the model as opened, from the document's history: ``Document.renames``; in the Before view,
    as of the state shown).

    The view's items make their tooltips when first hovered (a big graph's scene makes items
    only near the viewport), so this watches the viewport's tooltip events and, just before the
    scene answers one, gives each node under the pointer the tooltip it should have now."""

    def __init__(self, view):
        super().__init__(view)
        self.view = view
        view.viewport().installEventFilter(self)

    def renamed_from(self) -> dict[str, str]:
        """Drawn name → name in the model as opened, for the nodes renamed since."""
        view = self.view
        doc = view.live_document
        if doc is None:
            return {}
        return doc.renames(0, view.before_step - 1 if view.showing_before else None)

    def tooltip(self, item: NodeItem, renames: dict[str, str]) -> str:
        old = renames.get(item.name)
        base = item.tooltip_text()
        return base + "<br>" + RENAMED_TIP.format(old=old) if old else base

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.ToolTip:
            renames = self.renamed_from()
            for item in self.view.items(event.pos()):
                if isinstance(item, NodeItem):
                    tip = self.tooltip(item, renames)
                    if item.toolTip() != tip:
                        item.setToolTip(tip)
        return False  # the scene shows it
