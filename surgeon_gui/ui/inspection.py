"""Plugs the inspector and the search panel into the main window.

The main window calls :func:`install_inspection_panels` once, as it does for the surgery panels;
what the wiring uses from the window is its public API: ``view``, ``add_panel(widget, title,
area, object_name)``, ``document_changed(Document | None)``, ``needs_model(*actions)`` and the
status bar. The panels follow the open document through ``set_document`` (they read it, never
change it); the view's API used: ``focus_node``, ``selection_changed(list)``,
``set_highlight(names, kind)``, ``group_members(key)``, ``item_for(name)``, ``tree``,
``node_activated(name)`` (double-click) and ``layout_finished``.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget

from .inspector import InspectorPanel
from .search_panel import SearchPanel

#: Highlight kind the search results use in the view.
SEARCH_HIGHLIGHT = "search"
#: How a renamed node's tooltip says what it was called (one line, appended).
RENAMED_TIP = "<i>renamed from {old}</i>"
_RENAMED_MARK = "<br><i>renamed from "


@dataclass
class InspectionPanels:
    inspector: InspectorPanel
    search: SearchPanel
    inspector_dock: QDockWidget
    search_dock: QDockWidget
    find_action: QAction
    find_next: QAction
    find_previous: QAction


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
    view.layout_finished.connect(lambda: show_renames_in_tooltips(view))

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
                            find, find_next, find_prev)


def show_renames_in_tooltips(view) -> None:
    """Each drawn node renamed since the model was opened says so in its tooltip ("renamed from
    <old name>", from the document's history: ``Document.renames``). In the Before view the
    renames up to the state shown."""
    doc = view.live_document
    if doc is None:
        return
    end = view.before_step - 1 if view.showing_before else None
    renames = doc.renames(0, end)
    for key, item in view.graph_scene.items_by_key.items():
        if not key.startswith("n:"):
            continue
        tip = item.toolTip()
        base = tip.split(_RENAMED_MARK, 1)[0]
        old = renames.get(key[2:])
        want = base + "<br>" + RENAMED_TIP.format(old=old) if old else base
        if want != tip:
            item.setToolTip(want)
