"""Plugs the inspector and the search panel into the main window.

The main window calls :func:`install_inspection_panels` once; everything the panels need from
the window is its public API: ``document``, ``view``, ``add_panel(widget, title, area,
object_name)`` and the ``document_opened(object)`` signal. The view's API used: ``focus_node``,
``selection_changed(list)``, ``set_highlight(names, kind)``, ``group_members(key)``.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from .inspector import InspectorPanel
from .search_panel import SearchPanel

#: Highlight kind the search results use in the view.
SEARCH_HIGHLIGHT = "search"


@dataclass
class InspectionPanels:
    inspector: InspectorPanel
    search: SearchPanel
    find_action: QAction
    inspector_dock: object = None
    search_dock: object = None


def install_inspection_panels(window) -> InspectionPanels:
    """Create both panels as docks on ``window``, wire them to its view, add Ctrl+F."""
    doc = getattr(window, "document", None)
    view = window.view
    inspector = InspectorPanel(doc)
    search = SearchPanel(doc)
    inspector_dock = window.add_panel(inspector, "Inspector", Qt.RightDockWidgetArea,
                                      "InspectorDock")
    # Search sits on the left (like an IDE's find panel) so the inspector keeps the height of
    # the right column; both can be moved and the placement is remembered.
    search_dock = window.add_panel(search, "Search", Qt.LeftDockWidgetArea, "SearchDock")

    inspector.members_of = view.group_members
    # A weight drawn as a badge is focused through the op that consumes it (the view selects
    # that op); the inspector still shows the weight the user asked for.
    asked: dict[str, str | None] = {"badge": None}

    def on_selection(names: list) -> None:
        badge = asked["badge"]
        if badge is not None:
            owners = set(getattr(view.tree, "badge_owner", {}).get(badge) or ())
            if names and set(names) <= owners:
                return
            asked["badge"] = None
        inspector.set_selection(names)

    def go_to(name: str) -> None:
        tree = view.tree
        hidden = tree is not None and name in getattr(tree, "hidden", ())
        asked["badge"] = name if hidden else None
        view.focus_node(name)
        if hidden:
            inspector.show_node(name)

    view.selection_changed.connect(on_selection)
    inspector.node_activated.connect(go_to)
    search.node_activated.connect(go_to)

    def highlight(names: list[str]) -> None:
        view.set_highlight(set(names) if names else None, SEARCH_HIGHLIGHT)
    search.results_changed.connect(highlight)

    def document_changed(document) -> None:
        # A query and its results belong to the model they were typed for.
        search.query.clear()
        inspector.set_document(document)
        search.set_document(document)
    window.document_changed.connect(document_changed)

    find = QAction("Find…", window)
    find.setObjectName("actionFind")
    find.setShortcut(QKeySequence.Find)
    find.setShortcutContext(Qt.WindowShortcut)
    find.setToolTip("Search nodes by name, op type or attribute value (Ctrl+F)")

    def show_search() -> None:
        dock = search_dock if search_dock is not None else search.parentWidget()
        if dock is not None:
            dock.show()
            dock.raise_()
        search.focus_query()
    find.triggered.connect(show_search)
    window.addAction(find)

    def step(forward: bool) -> None:
        if not search.step_hit(forward):
            show_search()
            window.statusBar().showMessage("No search results: type a search first", 4000)
            return
        n = len(search.result_names())
        i = search.results.indexOfTopLevelItem(search.results.currentItem()) + 1
        window.statusBar().showMessage(f"Search result {i} of {n}", 3000)

    find_next = QAction("Find &Next", window)
    find_next.setObjectName("actionFindNext")
    find_next.setShortcut(QKeySequence("F3"))
    find_next.setToolTip("Go to the next search result (F3)")
    find_next.triggered.connect(lambda: step(True))
    find_prev = QAction("Find &Previous", window)
    find_prev.setObjectName("actionFindPrevious")
    find_prev.setShortcut(QKeySequence("Shift+F3"))
    find_prev.setToolTip("Go to the previous search result (Shift+F3)")
    find_prev.triggered.connect(lambda: step(False))
    for a in (find_next, find_prev):
        a.setShortcutContext(Qt.WindowShortcut)
        window.addAction(a)
    panels = InspectionPanels(inspector, search, find, inspector_dock, search_dock)
    panels.find_next, panels.find_previous = find_next, find_prev
    return panels
