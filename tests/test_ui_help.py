"""Help ▸ Quick Guide and Help ▸ Keyboard Shortcuts say only what is true: every key the guide
names is a shortcut of the window (or a key the view or a panel handles, listed in the shortcut
dialog), every menu entry it names exists, no key is bound to two actions (Qt then runs
neither), and the keys listed "in the graph" and "in the panels" do what the list says."""
import re

import pytest
from support import window_with_model
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QDialog, QTextBrowser

from surgeon_gui.ui import help_texts

#: A key as the guide writes it: Ctrl+Shift+E, F3, Shift+F3, Esc, Del, Enter.
KEY = re.compile(r"(?<![\w+])(?:(?:Ctrl|Shift|Alt)\+)+[A-Z0-9]\b"
                 r"|(?<![\w+])(?:(?:Ctrl|Shift|Alt)\+)*(?:F\d{1,2}|Esc|Del|Enter)\b")
#: "File ▸ Export Recipe writes…": a top menu and the words after it.
MENU_PATH = re.compile(r"\b(File|Edit|View|Help) ▸ ((?:[\w…]+ ?){1,4})")


@pytest.fixture
def win(qtbot, tmp_path, tf1_graph, monkeypatch):
    return window_with_model(qtbot, tmp_path, monkeypatch, tf1_graph[0], size=(1400, 900))


def press(qtbot, widget, k, mod=Qt.NoModifier):
    widget.window().activateWindow()
    qtbot.keyClick(widget, k, mod)
    QApplication.processEvents()


def menu_actions(w) -> dict[str, list]:
    """Top menu title → every action under it (sub-menus included)."""
    out: dict[str, list] = {}

    def walk(menu, top):
        for a in menu.actions():
            out.setdefault(top, []).append(a)
            if a.menu() is not None:
                walk(a.menu(), top)
    for top in w.menuBar().actions():
        walk(top.menu(), top.text().replace("&", ""))
    return out


def window_shortcuts(w, enabled_only=True) -> dict[str, list]:
    """Key (portable text) → the (enabled) actions it triggers anywhere in the window."""
    keys: dict[str, list] = {}
    actions = {a for acts in menu_actions(w).values() for a in acts} | set(w.actions()) \
        | set(w.view.actions())
    for a in actions:
        if (a.isEnabled() or not enabled_only) and not a.isSeparator():
            for k in a.shortcuts():
                if not k.isEmpty():
                    keys.setdefault(k.toString(QKeySequence.PortableText), []).append(a)
    return keys


def dialog_text(qtbot, w, name) -> str:
    qtbot.waitUntil(lambda: w.findChild(QDialog, name) is not None, timeout=5000)
    dlg = w.findChild(QDialog, name)
    assert dlg.isVisible()
    return dlg.findChild(QTextBrowser).toPlainText()


def test_the_guide_names_only_keys_and_menus_that_exist(qtbot, win):
    press(qtbot, win, Qt.Key_F1)  # Help ▸ Quick Guide
    guide = dialog_text(qtbot, win, "help_guide")
    named = set(KEY.findall(guide))
    assert {"Ctrl+F", "F3", "Shift+F3", "F2", "Del", "Ctrl+Z", "Ctrl+R", "Esc"} <= named, named
    shortcuts = window_shortcuts(win, enabled_only=False)
    handled_elsewhere = " ".join(k for k, _ in help_texts.VIEW_KEYS + help_texts.PANEL_KEYS)
    for k in named:
        assert k in shortcuts or k in handled_elsewhere, f"the guide names {k}: no such key"

    menus = menu_actions(win)
    paths = MENU_PATH.findall(guide)
    assert len(paths) >= 4, paths
    for top, words in paths:
        texts = [a.text().replace("&", "").rstrip("…") for a in menus[top]]
        assert any(words.startswith(t) for t in texts if t), f"{top} ▸ {words}: no such entry"


def test_no_key_is_bound_to_two_actions(qtbot, win):
    # with a model open every action is enabled: a key on two of them would do nothing
    twice = {k: [a.text() for a in acts] for k, acts in window_shortcuts(win).items()
             if len(acts) > 1}
    assert not twice, twice


def test_the_shortcut_list_matches_the_keys(qtbot, win):
    menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Help")
    next(a for a in menu.actions() if a.text() == "&Keyboard Shortcuts").trigger()
    text = dialog_text(qtbot, win, "help_shortcuts")
    for key, acts in window_shortcuts(win).items():
        native = QKeySequence(key).toString(QKeySequence.NativeText)
        for a in acts:
            if a.text():
                assert native in text and a.text().replace("&", "") in text, (key, a.text())
    for keys, what in help_texts.VIEW_KEYS + help_texts.PANEL_KEYS:
        assert keys in text and what in text


def test_the_keys_in_the_graph_and_panels_do_what_the_list_says(qtbot, win):
    view, inspector = win.view, win.inspection.inspector
    view.setFocus()
    scale = view.transform().m11()
    press(qtbot, view, Qt.Key_Plus)
    assert view.transform().m11() > scale
    press(qtbot, view, Qt.Key_Minus)
    assert view.transform().m11() == pytest.approx(scale)
    for _ in range(4):
        press(qtbot, view, Qt.Key_Plus)
    bar = view.horizontalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(0)
    press(qtbot, view, Qt.Key_Right)
    assert bar.value() > 0

    # Enter opens/closes the selected group; a double-click on a group does the same
    group = next(k for k in view.tree.groups if k not in view.expanded
                 and view.item_for("scope:" + k) is not None)
    view.select(["scope:" + group])
    view.setFocus()
    press(qtbot, view, Qt.Key_Return)
    qtbot.waitUntil(lambda: not view.layout_pending)
    assert group in view.expanded
    press(qtbot, view, Qt.Key_Return)
    qtbot.waitUntil(lambda: not view.layout_pending)
    assert group not in view.expanded
    item = view.item_for("scope:" + group)
    view.centerOn(item)
    pos = view.mapFromScene(item.sceneBoundingRect().center())
    qtbot.mouseDClick(view.viewport(), Qt.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: not view.layout_pending)
    assert group in view.expanded

    # a double-clicked node is shown in the Inspector, brought to the front
    win.compare_dock.show()
    win.compare_dock.raise_()  # the tab in front of the Inspector
    assert inspector.visibleRegion().isEmpty()
    view.focus_node("Relu6")
    qtbot.waitUntil(lambda: not view.layout_pending)
    item = view.item_for("Relu6")
    view.centerOn(item)
    pos = view.mapFromScene(item.sceneBoundingRect().center())
    qtbot.mouseDClick(view.viewport(), Qt.LeftButton, pos=pos)
    assert inspector.current == ("node", "Relu6")
    qtbot.waitUntil(lambda: not inspector.visibleRegion().isEmpty(), timeout=5000)

    # Alt+Left in the inspector goes back to what it showed before a followed link
    target = inspector.inputs_list.names()[0]
    inspector._follow(target)  # what a click on the input's link does
    qtbot.waitUntil(lambda: inspector.current == ("node", target), timeout=10_000)
    assert inspector.back_button.isEnabled() and inspector.back_button.isVisible()
    press(qtbot, inspector, Qt.Key_Left, Qt.AltModifier)  # the button's animated click
    qtbot.waitUntil(lambda: inspector.current == ("node", "Relu6"), timeout=5000)
