"""Every action of the main window that works on a model is disabled while none is open (on the
start page, and again after Close) and enabled once one is shown; its key does nothing without a
model. The sweep walks every QAction of the window (menus, sub-menus, toolbars, window-level
shortcuts), so an action added later must be placed on one side of that line."""
from pathlib import Path

import pytest
from support import make_window
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMenu, QToolBar

EXAMPLE = Path(__file__).resolve().parent.parent / "resources" / "examples" / "conv_bias_bn.pbtxt"

#: The actions that need no model (menu path, without the & accelerators).
WITHOUT_MODEL = {
    "File ▸ Open…", "File ▸ Open SavedModel Folder…", "File ▸ Open with Checkpoint…",
    "File ▸ Quit",
    # view preferences: remembered and applied to the next model opened
    "View ▸ Show Constants as Nodes", "View ▸ Left-to-Right Layout", "View ▸ Colour by Device",
    "View ▸ Show Legend", "View ▸ Show Minimap",
    "View ▸ Panels", "View ▸ Reset Layout",
    "Help ▸ Lessons…", "Help ▸ Quick Guide", "Help ▸ Keyboard Shortcuts",
    "Help ▸ About Graph Surgeon",
}
#: Enabled by their own state, model or not: Undo/Redo (something to undo), Open Recent
#: (recent files; none in a test's settings folder).
OWN_STATE = {"Edit ▸ Undo", "Edit ▸ Redo", "File ▸ Open Recent"}


def all_actions(w) -> dict[str, QAction]:
    """Every action the user can reach: by menu path, or ``key:<shortcut>`` for window-level
    shortcuts listed in no menu."""
    out: dict[str, QAction] = {}

    def walk(menu: QMenu, path: str) -> None:
        for a in menu.actions():
            if a.isSeparator():
                continue
            p = f"{path} ▸ {a.text().replace('&', '')}"
            if p.startswith("View ▸ Panels ▸ "):
                continue  # a dock's show/hide toggle
            out[p] = a
            if a.menu() is not None:
                walk(a.menu(), p)

    for top in w.menuBar().actions():
        walk(top.menu(), top.text().replace("&", ""))
    listed = set(out.values())
    for tb in w.findChildren(QToolBar):
        for a in tb.actions():
            if not a.isSeparator() and a not in listed:
                out[f"toolbar {tb.windowTitle()} ▸ {a.text()}"] = a
    for owner in (w, w.view):
        for a in owner.actions():
            if a not in listed and not a.shortcut().isEmpty():
                out[f"key:{a.shortcut().toString()}"] = a
    return out


def enabled(w) -> set[str]:
    return {p for p, a in all_actions(w).items() if a.isEnabled()}


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    w = make_window(qtbot, tmp_path, monkeypatch, size=(1200, 800))
    qtbot.waitExposed(w)
    return w


def press(qtbot, w, k, mod=Qt.NoModifier):
    w.activateWindow()
    qtbot.keyClick(w, k, mod)
    QApplication.processEvents()


def test_actions_need_a_model_exactly_when_they_work_on_one(qtbot, window):
    w = window
    actions = all_actions(w)
    paths = set(actions)
    assert WITHOUT_MODEL | OWN_STATE <= paths, (WITHOUT_MODEL | OWN_STATE) - paths
    # the ones the issue named, so a renamed menu entry cannot make the sweep vacuous
    for p in ("Edit ▸ Rename Node…", "Edit ▸ Find Next", "Edit ▸ Find Previous", "Edit ▸ Find…",
              "File ▸ Export Tutorial…", "View ▸ Trace Inputs of Selection",
              "Edit ▸ Run Comparison", "File ▸ Save As…"):
        assert p in paths, p
    needs_model = paths - WITHOUT_MODEL - OWN_STATE
    assert len(needs_model) >= 20

    # start page: only what needs no model
    assert enabled(w) - OWN_STATE == WITHOUT_MODEL
    # and their keys do nothing: F2 asks nothing, F3 does not pop up the search, Ctrl+F neither
    w.inspection.search_dock.hide()
    asked = []
    w.surgery.controller.ask.text = lambda *a, **k: asked.append(a)
    for k, mod in ((Qt.Key_F2, Qt.NoModifier), (Qt.Key_F3, Qt.NoModifier),
                   (Qt.Key_F3, Qt.ShiftModifier), (Qt.Key_F, Qt.ControlModifier)):
        press(qtbot, w, k, mod)
    assert not asked and not w.inspection.search_dock.isVisible()
    assert w.statusBar().currentMessage() == ""

    # a model open: every model action is enabled
    with qtbot.waitSignal(w.document_opened, timeout=60_000):
        w.open_model(str(EXAMPLE))
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=60_000)
    assert needs_model <= enabled(w), needs_model - enabled(w)
    press(qtbot, w, Qt.Key_F, Qt.ControlModifier)  # Ctrl+F now shows the search
    assert w.inspection.search_dock.isVisible()

    # File ▸ Close Model (its key): back to the start page's set
    press(qtbot, w, Qt.Key_F4, Qt.ControlModifier)
    assert w.document is None
    assert enabled(w) - OWN_STATE == WITHOUT_MODEL
