"""What TensorBoard and Netron users expect, driven like a user: F3 through search hits, a trace
that dims everything off its path, colour by device, expand-all that fits the view, F2 to
rename, and Help ▸ Keyboard Shortcuts / Quick Guide."""
import pytest
from support import TextAnswers as Answers, press_key, window_with_model
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QTextBrowser


@pytest.fixture
def win(qtbot, tmp_path, tf1_graph, monkeypatch):
    gd, _, _ = tf1_graph
    gd = type(gd).FromString(gd.SerializeToString())
    for n in gd.node:  # placed the way a multi-device TF1 graph is
        n.device = "/device:GPU:0" if n.name.startswith("bn") else "/device:CPU:0"
    return window_with_model(qtbot, tmp_path, monkeypatch, gd, size=(1600, 1000))




def test_f3_and_shift_f3_step_through_search_hits(qtbot, win):
    search = win.inspection.search
    press_key(qtbot, win, Qt.Key_F, Qt.ControlModifier)
    qtbot.keyClicks(search.query, "Relu")
    search.run_search()
    hits = search.result_names()
    assert len(hits) >= 3
    press_key(qtbot, win, Qt.Key_F3)
    assert win.view.selected_nodes() == [hits[0]]
    press_key(qtbot, win, Qt.Key_F3)
    assert win.view.selected_nodes() == [hits[1]]
    press_key(qtbot, win, Qt.Key_F3, Qt.ShiftModifier)
    assert win.view.selected_nodes() == [hits[0]]
    press_key(qtbot, win, Qt.Key_F3, Qt.ShiftModifier)  # wraps around to the last
    assert win.view.selected_nodes() == [hits[-1]]
    assert "of" in win.statusBar().currentMessage()


def test_trace_dims_everything_off_the_path(qtbot, win):
    view = win.view
    view.focus_node("Relu6")
    qtbot.waitUntil(lambda: not view.layout_pending)
    view.select(["Relu6"])
    press_key(qtbot, win, Qt.Key_I, Qt.ControlModifier)  # View ▸ Trace Inputs of Selection
    items = view.graph_scene.items_by_key
    cone = set(win.document.graph.upstream(["Relu6"]))
    on = [it for k, it in items.items() if k.startswith("n:") and k[2:] in cone]
    off = [it for k, it in items.items() if k.startswith("n:") and k[2:] not in cone]
    assert on and off
    assert all(it.opacity() == 1.0 for it in on)
    assert all(it.opacity() < 0.5 for it in off)
    press_key(qtbot, win, Qt.Key_Escape)  # Clear Highlight
    assert all(it.opacity() == 1.0 for it in items.values())


def test_colour_by_device(qtbot, win):
    view = win.view
    view.expand_all()
    qtbot.waitUntil(lambda: not view.layout_pending)
    win.device_colors_action.trigger()
    items = view.graph_scene.items_by_key
    gpu = {it.fill_override.name() for k, it in items.items()
           if k.startswith("n:bn") and it.fill_override is not None}
    cpu = {it.fill_override.name() for k, it in items.items()
           if k.startswith("n:") and not k.startswith("n:bn") and it.fill_override is not None}
    assert len(gpu) == 1 and len(cpu) == 1 and gpu != cpu
    legend = [t for t, _ in view.legend.entries]
    assert any(t.startswith("/device:GPU:0") for t in legend)
    assert any(t.startswith("/device:CPU:0") for t in legend)
    win.device_colors_action.trigger()
    assert all(it.fill_override is None for it in items.values())


def test_expand_all_fits_the_view(qtbot, win):
    view = win.view
    press_key(qtbot, win, Qt.Key_E, Qt.ControlModifier | Qt.ShiftModifier)
    assert set(view.expanded) == set(view.tree.groups)
    shown = view.mapToScene(view.viewport().rect()).boundingRect()
    assert shown.contains(view.graph_scene.itemsBoundingRect())


def f2_rename(qtbot, win, old: str, new: str):
    """Select ``old`` in the view and press F2, answering ``new``; returns the view."""
    win.surgery.controller.ask = Answers(new)
    view = win.view
    view.focus_node(old)
    qtbot.waitUntil(lambda: not view.layout_pending)
    view.select([old])
    press_key(qtbot, win, Qt.Key_F2)
    return view


def test_f2_renames_the_selected_node(qtbot, win):
    f2_rename(qtbot, win, "Relu6", "relu_renamed")
    assert "relu_renamed" in win.document.graph.nodes
    assert "Relu6" not in win.document.graph.nodes
    # the Diff panel shows a rename, not one removed and one added node
    diff = win.surgery.diff
    QApplication.processEvents()
    qtbot.waitUntil(lambda: diff.items("Renamed") == ["relu_renamed"])
    assert "relu_renamed" not in diff.items("Added")
    assert "Relu6" not in diff.items("Removed")
    assert diff.tree.textElideMode() == Qt.ElideMiddle


def test_a_rename_is_marked_as_a_rename_in_the_view(qtbot, win):
    """The view marks the renamed node as renamed — not as an added node beside a ghost of the
    old one — and Before marks the old name the same way."""
    view = f2_rename(qtbot, win, "Relu6", "relu_renamed")
    assert "relu_renamed" in win.document.graph.nodes
    marks = view.marks()
    assert marks["relu_renamed"] == "renamed"
    assert "Relu6" not in marks and "added" not in marks.values()
    assert "removed" not in marks.values()
    # its consumer now reads the new name: changed
    consumers = [n.name for n in win.document.graph_def.node
                 if any(i.split(":")[0].lstrip("^") == "relu_renamed" for i in n.input)]
    assert consumers and all(marks.get(c) == "changed" for c in consumers)
    assert not view.graph_scene.ghosts
    item = view.graph_scene.items_by_key.get("n:relu_renamed")
    if item is None:  # inside a closed group: counted on the group
        view.focus_node("relu_renamed")
        qtbot.waitUntil(lambda: not view.layout_pending)
        item = view.graph_scene.items_by_key["n:relu_renamed"]
    assert item.mark == "renamed"
    # Before: the old graph, the old name marked renamed (not removed)
    diff = win.surgery.diff
    qtbot.mouseClick(diff.before_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=60_000)
    assert view.showing_before
    assert view.marks().get("Relu6") == "renamed"
    assert "removed" not in view.marks().values()


def test_help_lists_the_shortcuts_and_a_guide(qtbot, win):
    press_key(qtbot, win, Qt.Key_F1)
    guide = win.findChild(QDialog, "help_guide")
    assert guide is not None and guide.isVisible()
    assert "Passes" in guide.findChild(QTextBrowser).toPlainText()
    menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Help")
    next(a for a in menu.actions() if a.text() == "&Keyboard Shortcuts").trigger()
    text = win.findChild(QDialog, "help_shortcuts").findChild(QTextBrowser).toPlainText()
    for keys, what in (("F3", "Find Next"), ("Ctrl+F", "Find"), ("F2", "Rename Node"),
                       ("Ctrl+Z", "Undo")):
        assert keys in text and what in text, (keys, what)


def test_preview_colours_the_dying_and_the_kept_branch_and_scrolls_to_them(qtbot, win):
    view, panel = win.view, win.surgery.passes
    panel.select_pass("training_flags")
    qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    qtbot.waitUntil(lambda: not view.layout_pending)
    view.expand_all()
    qtbot.waitUntil(lambda: not view.layout_pending)
    view.resetTransform()
    r = view.graph_scene.itemsBoundingRect()
    view.centerOn(r.right() + 2000, r.bottom() + 2000)  # looking at nothing
    panel.select_pass("remove_switch_merge")
    qtbot.mouseClick(panel.preview_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    kinds = view.highlighted()
    dead = {n for n, k in kinds.items() if k == "dead"}
    kept = {n for n, k in kinds.items() if k == "kept"}
    assert dead and kept and not dead & kept
    items = view.graph_scene.items_by_key
    assert {items["n:" + n].highlight for n in dead if "n:" + n in items} == {"dead"}
    assert {items["n:" + n].highlight for n in kept if "n:" + n in items} == {"kept"}
    # the preview scrolled to the matches
    shown = view.mapToScene(view.viewport().rect()).boundingRect()
    assert any(shown.intersects(items[k].sceneBoundingRect()) for k in items
               if items[k].highlight in ("dead", "kept", "preview"))
    # applying removes exactly the dead branch; the kept one stays
    qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    nodes = set(win.document.graph.nodes)
    assert not dead & nodes and kept <= nodes


def test_cli_command_dialog_is_monospace_and_never_cuts_a_path(qtbot):
    from PySide6.QtGui import QFontInfo
    from PySide6.QtWidgets import QPlainTextEdit

    from surgeon_gui.ui.surgery import TextDialog
    cmd = ("surgeon optimize /very/long/folder/name/model_with_a_long_name.pb -o "
           "/very/long/folder/name/model_with_a_long_name.optimized.pb "
           "--passes training_flags,remove_switch_merge,fold_batch_norm,remove_identity")
    dlg = TextDialog("Equivalent command line", cmd + "\n\n(a note)")
    qtbot.addWidget(dlg)
    dlg.resize(500, 300)
    dlg.show()
    edit = dlg.findChild(QPlainTextEdit, "text")
    assert QFontInfo(edit.font()).fixedPitch()
    block = edit.document().firstBlock()
    assert block.text() == cmd
    qtbot.waitUntil(lambda: block.layout().lineCount() >= 1)
    assert block.layout().lineCount() == 1  # one line, scrolled sideways
    assert edit.horizontalScrollBar().maximum() > 0


def test_a_job_ending_after_its_signals_are_gone_is_quiet(qtbot, capfd):
    """Quitting while a background job runs (an op-doc look-up waiting for TensorFlow) must not
    print a traceback when the job ends."""
    import threading

    import shiboken6

    from surgeon_gui.ui.workers import Worker
    go = threading.Event()
    w = Worker(lambda: go.wait(10) and 42)
    w.start()
    shiboken6.delete(w.signals)  # what tearing the app down does to it
    go.set()
    assert w.wait(10) and w.result == 42
    assert "Traceback" not in capfd.readouterr().err
