"""The inspection panels in the main window, driven like a user: a renamed node says what it was
called (its tooltip in the view and the inspector), from the Document's history, through undo
and redo; the search panel lets go of a query when another model opens."""
import pytest
from support import TextAnswers as Answers, press_key, window_with_model
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from surgeon_gui.core.model.io import save_graph


@pytest.fixture
def win(qtbot, tmp_path, tf1_graph, monkeypatch):
    return window_with_model(qtbot, tmp_path, monkeypatch, tf1_graph[0], size=(1400, 900))




def hover_tooltip(qtbot, view, name: str) -> str:
    """What the user reads when resting the mouse on node ``name`` in the view."""
    view.focus_node(name)
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=30_000)
    item = view.item_for(name)
    assert item is not None, name
    pos = view.mapFromScene(item.sceneBoundingRect().center())
    qtbot.mouseMove(view.viewport(), pos)
    QToolTip.hideText()
    QApplication.sendEvent(view.viewport(), QHelpEvent(
        QEvent.ToolTip, pos, view.viewport().mapToGlobal(pos)))
    qtbot.waitUntil(QToolTip.isVisible, timeout=5000)
    return QToolTip.text()


def renamed_row(inspector) -> str | None:
    """The inspector's "Renamed from" row: its text when shown, else None."""
    if not inspector.form.isRowVisible(inspector.renamed_label):
        return None
    return inspector.renamed_label.text()


def test_a_renamed_node_says_what_it_was_called(qtbot, win):
    view, inspector = win.view, win.inspection.inspector
    assert "renamed from" not in hover_tooltip(qtbot, view, "Relu6")
    view.select(["Relu6"])
    assert inspector.current == ("node", "Relu6") and renamed_row(inspector) is None

    win.surgery.controller.ask = Answers("relu_renamed")
    press_key(qtbot, win, Qt.Key_F2)  # Edit ▸ Rename Node…
    assert "relu_renamed" in win.document.graph.nodes
    # the inspector (and the view's selection) follow the node to its new name
    qtbot.waitUntil(lambda: inspector.current == ("node", "relu_renamed"), timeout=5000)
    assert view.selected_nodes() == ["relu_renamed"] and renamed_row(inspector) == "Relu6"
    tip = hover_tooltip(qtbot, view, "relu_renamed")
    assert tip.startswith("<b>Relu6</b>  relu_renamed") and tip.endswith("renamed from Relu6</i>")
    view.select(["relu_renamed"])
    assert inspector.current == ("node", "relu_renamed")
    assert renamed_row(inspector) == "Relu6"

    # renamed again: still the name it had in the model as opened
    win.surgery.controller.ask = Answers("relu_final")
    press_key(qtbot, win, Qt.Key_F2)
    tip = hover_tooltip(qtbot, view, "relu_final")
    assert tip.count("renamed from") == 1 and "renamed from Relu6" in tip
    view.select(["relu_final"])
    assert renamed_row(inspector) == "Relu6"

    view.select(["relu_final"])
    press_key(qtbot, win, Qt.Key_Z, Qt.ControlModifier)   # undoing a rename follows it back too
    qtbot.waitUntil(lambda: inspector.current == ("node", "relu_renamed"), timeout=5000)
    press_key(qtbot, win, Qt.Key_Z, Qt.ControlModifier)
    qtbot.waitUntil(lambda: inspector.current == ("node", "Relu6"), timeout=5000)
    assert "Relu6" in win.document.graph.nodes
    assert "renamed from" not in hover_tooltip(qtbot, view, "Relu6")
    view.select(["Relu6"])
    assert renamed_row(inspector) is None
    # a node that was never renamed says nothing of the kind
    view.select(["Relu"])
    assert renamed_row(inspector) is None

    press_key(qtbot, win, Qt.Key_Y, Qt.ControlModifier)  # redo the first rename
    assert "renamed from Relu6" in hover_tooltip(qtbot, view, "relu_renamed")


def test_another_model_starts_with_an_empty_search(qtbot, win, tmp_path, tf2_graph):
    search = win.inspection.search
    press_key(qtbot, win, Qt.Key_F, Qt.ControlModifier)
    qtbot.keyClicks(search.query, "Relu")
    search.run_search()
    assert search.result_names()
    other = tmp_path / "tf2.pb"
    save_graph(tf2_graph[0], other)
    with qtbot.waitSignal(win.document_opened, timeout=60_000):
        win.open_model(str(other))
    assert search.query.text() == "" and not search.result_names()
    assert search.document is win.document and win.inspection.inspector.document is win.document


def origin_row(inspector) -> str | None:
    """The inspector's "History" row (what a step made of the node): its text when shown."""
    if not inspector.form.isRowVisible(inspector.origin_label):
        return None
    return inspector.origin_label.text()


def box_tag(qtbot, view, name: str) -> str | None:
    """The small tag drawn on node ``name``'s box (None: none)."""
    view.focus_node(name)
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=30_000)
    tag = view.item_for(name).tag
    return None if tag is None else tag[0]


def test_a_folded_batch_norm_says_what_it_was(qtbot, win):
    """After the preset, the BiasAdd that keeps a batch norm's name says it was folded from
    FusedBatchNormV3 (box tag, tooltip, Inspector) and the conv says a batch norm was folded
    in; after undoing the fold nothing says so, after redo it does again."""
    view, inspector, panel = win.view, win.inspection.inspector, win.surgery.passes
    bn, conv = "bn1/cond/FusedBatchNormV3_1", "conv1/Conv2D"
    assert "folded from" not in hover_tooltip(qtbot, view, bn)
    panel.select_pass("inference")
    with qtbot.waitSignal(panel.idle, timeout=120_000):
        qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=30_000)
    doc = win.document
    assert doc.graph.nodes[bn].op == "BiasAdd"
    fold = next(i for i, s in enumerate(doc.steps, 1) if s.label.startswith("Fold batch norm"))

    tip = hover_tooltip(qtbot, view, bn)
    assert tip.startswith(f"<b>BiasAdd</b>  {bn}")
    assert f"folded from FusedBatchNormV3 into {conv} (step {fold}, Fold batch norm" in tip
    assert box_tag(qtbot, view, bn) == "folded BN"
    view.select([bn])
    assert origin_row(inspector).startswith(f"folded from FusedBatchNormV3 into {conv}")
    assert "batch norm folded in: " + bn in hover_tooltip(qtbot, view, conv)
    assert box_tag(qtbot, view, conv) == "+BN"
    view.select([conv])
    assert origin_row(inspector).startswith("batch norm folded in: " + bn)
    # a node no step changed in place says nothing of the kind
    view.select(["Relu"])
    assert origin_row(inspector) is None and box_tag(qtbot, view, "Relu") is None

    while doc.cursor >= fold:   # undo back to before the fold
        press_key(qtbot, win, Qt.Key_Z, Qt.ControlModifier)
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=30_000)
    assert doc.graph.nodes[bn].op == "FusedBatchNormV3"
    assert "folded" not in hover_tooltip(qtbot, view, bn)
    assert box_tag(qtbot, view, bn) is None and box_tag(qtbot, view, conv) is None
    view.select([bn])
    assert origin_row(inspector) is None

    press_key(qtbot, win, Qt.Key_Y, Qt.ControlModifier)   # redo the fold
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=30_000)
    assert doc.cursor == fold
    assert "folded from FusedBatchNormV3" in hover_tooltip(qtbot, view, bn)
    # the Before view of the fold step shows the graph before it: no tag there
    view.show_before(fold)
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=30_000)
    assert "folded" not in hover_tooltip(qtbot, view, bn)
    view.show_before(None)
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=30_000)
    assert "folded from FusedBatchNormV3" in hover_tooltip(qtbot, view, bn)


def test_redo_finds_the_tags_of_the_state_it_returns_to(qtbot, win):
    """The view's history tags are worked out once per state: Ctrl+Z then Ctrl+Shift+Z after the
    preset gives back the very tags drawn before (the document kept that span's origins, the
    view the tags made of them), and they still say the right thing."""
    view, panel = win.view, win.surgery.passes
    bn = "bn1/cond/FusedBatchNormV3_1"
    panel.select_pass("inference")
    with qtbot.waitSignal(panel.idle, timeout=120_000):
        qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
    # the preset's window-modal progress dialog is gone once the job is over (it stayed until
    # its deferred delete and took the keys: the Ctrl+Z below was now and then lost)
    assert QApplication.activeModalWidget() is None
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=30_000)
    after = view.history_tags()
    assert after[bn][0] == "folded BN" and view.graph_scene.tags == after
    press_key(qtbot, win, Qt.Key_Z, Qt.ControlModifier)
    assert view.history_tags() is not after        # another state: its own tags
    assert view.graph_scene.tags == view.history_tags()
    press_key(qtbot, win, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert view.history_tags() is after and view.graph_scene.tags == after
    assert box_tag(qtbot, view, bn) == "folded BN"


def test_ctrl_z_right_after_the_preset_is_taken(qtbot, win, monkeypatch):
    """The preset's window-modal progress dialog is hidden when the job ends, not when its
    deferred delete comes: until then it took the keys, and a Ctrl+Z pressed at once was lost."""
    from PySide6.QtWidgets import QProgressDialog
    from surgeon_gui.ui import passes_panel as pp

    class ShownAtOnce(QProgressDialog):   # (shown from the start, whatever the job's length)
        def setMinimumDuration(self, ms):
            super().setMinimumDuration(0)
    monkeypatch.setattr(pp, "QProgressDialog", ShownAtOnce)
    panel = win.surgery.passes
    panel.select_pass("inference")
    seen = []
    with qtbot.waitSignal(panel.idle, timeout=120_000):
        qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: panel._progress is not None and panel._progress.isVisible()
                        or panel._worker is None, timeout=60_000)
        seen.append(panel._progress is not None)
    assert seen == [True]                # the dialog was up while the preset ran
    assert QApplication.activeModalWidget() is None
    top = win.undo_stack.index()
    qtbot.keyClick(win, Qt.Key_Z, Qt.ControlModifier)
    assert win.undo_stack.index() == top - 1
