"""The groups the app opened by default follow the state shown; the user's stay open (driven like
a user: Apply all, double-clicks on group boxes, History clicks, Ctrl+Z, Before)."""
from PySide6.QtCore import Qt

from surgeon_gui.ui.graph_scene import FrameItem, GroupItem
from tests.test_ui_surgery import (  # noqa: F401 - fixtures
    FakeAsk,
    apply_from_panel,
    model_path,
    press,
    wait_view,
    win,
)
from tests.test_ui_view import click_pos


def jump(qtbot, w, row):
    hv = w.surgery.history
    hv.setCurrentIndex(hv.model().index(row, 0))
    wait_view(qtbot, w)
    assert w.document.cursor == row


def drawn(w, key):
    return type(w.view.graph_scene.items_by_key.get(key)).__name__


def double_click(qtbot, w, key):
    view = w.view
    item = view.graph_scene.items_by_key[key]
    view.centerOn(item)
    qtbot.mouseDClick(view.viewport(), Qt.LeftButton, pos=click_pos(view, item))
    wait_view(qtbot, w)


def test_history_jump_closes_a_group_the_app_opened_and_keeps_the_users(qtbot, win):
    w = win
    assert drawn(w, "g:fc") == "GroupItem"                 # 48 nodes: closed as opened
    pushed = apply_from_panel(qtbot, w, "inference")
    assert pushed >= 4
    assert drawn(w, "g:fc") == "FrameItem"                 # small now: opened by default
    jump(qtbot, w, 0)                                      # History: "Opened model"
    assert drawn(w, "g:fc") == "GroupItem"
    assert "n:fc/MatMul" not in w.view.graph_scene.items_by_key
    jump(qtbot, w, pushed)
    assert drawn(w, "g:fc") == "FrameItem"
    # the user closes fc after the preset, and opens bn2 before it: both are their choices
    frame = w.view.graph_scene.items_by_key["g:fc"]
    w.view.centerOn(frame)
    qtbot.mouseClick(w.view.viewport(), Qt.LeftButton,
                     pos=click_pos(w.view, frame, frame.chevron_rect().center()))
    wait_view(qtbot, w)
    assert drawn(w, "g:fc") == "GroupItem"
    jump(qtbot, w, 0)
    double_click(qtbot, w, "g:bn2")
    double_click(qtbot, w, "g:fc")                         # opened by the user here
    assert drawn(w, "g:bn2") == drawn(w, "g:fc") == "FrameItem"
    press(qtbot, w, Qt.Key_Y, Qt.ControlModifier)          # redo one step: still theirs
    assert w.document.cursor == 1
    assert drawn(w, "g:bn2") == drawn(w, "g:fc") == "FrameItem"
    # Before of step 1 shows the model as opened: fc and bn2 stay open there too
    qtbot.mouseClick(w.surgery.diff.before_button, Qt.LeftButton)
    wait_view(qtbot, w)
    assert w.view.showing_before
    assert drawn(w, "g:bn2") == drawn(w, "g:fc") == "FrameItem"
    assert isinstance(w.view.graph_scene.items_by_key["g:fc"], FrameItem)
    assert isinstance(w.view.graph_scene.items_by_key["g:bn3"], GroupItem)
