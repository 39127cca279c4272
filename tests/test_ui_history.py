"""One history in the window (issue 11.2, 11.6, 11.9): marks, Diff panel, Before and the status
bar show the same step after undo, redo and History jumps; the comparison follows renames; no
state is left behind when a model is closed or another is opened. Driven like a user: buttons,
shortcuts, History clicks."""
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from surgeon_gui.core.model.io import save_graph
from tests.test_ui_surgery import (  # noqa: F401 - fixtures
    FakeAsk,
    apply_from_panel,
    click_and_wait,
    gd_bytes,
    model_path,
    press,
    wait_view,
    win,
)


def shown_step(w):
    """What each part of the window says the current step is: (marks, Diff panel's step
    number and its lists, status bar text)."""
    diff = w.surgery.diff
    marks = w.view.marks()
    return dict(
        removed={n for n, k in marks.items() if k == "removed"},
        added={n for n, k in marks.items() if k == "added"},
        changed={n for n, k in marks.items() if k == "changed"},
        diff_step=diff.selected_step_number(),
        diff_removed=set(diff.items("Removed")),
        diff_added=set(diff.items("Added")),
        status=w.info_label.text(),
    )


def assert_all_show_current_step(w):
    QApplication.processEvents()
    t = time.time()
    while w.surgery.diff.computing and time.time() - t < 30:   # the diff is read on a worker
        QApplication.processEvents()
        time.sleep(0.01)
    doc = w.document
    s = shown_step(w)
    step = doc.current_step
    if step is None:
        assert not (s["removed"] or s["added"] or s["changed"]), "marks at the opened model"
        assert s["diff_step"] is None and s["status"].startswith("Opened model")
        assert "No step yet" in w.surgery.diff.summary.text()
        return
    d = step.delta
    assert s["diff_step"] == doc.cursor
    assert s["status"].startswith(f"Step {doc.cursor} of {len(doc.steps)}: {step.label}")
    # marks and the Diff panel list the same nodes: those of the current step
    assert s["removed"] == set(d.removed) == s["diff_removed"]
    assert s["added"] == set(d.added) == s["diff_added"]
    # (renames may be shown as "renamed" instead of removed + added)
    assert s["changed"] <= set(d.changed)


def test_marks_diff_status_and_before_agree_after_undo_redo_and_jumps(qtbot, win):
    w = win
    assert_all_show_current_step(w)
    pushed = apply_from_panel(qtbot, w, "inference")
    assert pushed >= 4
    QApplication.processEvents()
    # after the preset the Diff panel shows its last step that changed nodes (not a step
    # that changed none); the selector still offers every step, and the newest shows the rest
    diff = w.surgery.diff
    steps = w.document.applied_steps
    telling = max(i for i, st in enumerate(steps, 1)
                  if st.delta.removed or st.delta.added or st.delta.changed)
    assert telling < pushed, "the preset's last step changed nodes here: the check would prove nothing"
    listed = [diff.steps.itemData(i) for i in range(diff.steps.count())]
    assert diff.selected_step_number() == telling
    assert [d for d in listed if isinstance(d, int)] == list(range(1, pushed + 1))
    qtbot.waitUntil(lambda: not diff.computing, timeout=30_000)
    assert set(diff.items("Removed")) == set(steps[telling - 1].delta.removed)
    assert diff.summary.text().startswith(f"<b>Step {telling}: ")
    diff.steps.setCurrentIndex(pushed - 1)
    assert_all_show_current_step(w)
    # three Ctrl+Z: everything shows step n-3, not the step that was undone
    for _ in range(3):
        press(qtbot, w, Qt.Key_Z, Qt.ControlModifier)
    QApplication.processEvents()
    assert w.document.cursor == pushed - 3
    assert_all_show_current_step(w)
    # Before shows the graph before that same step, and says so
    qtbot.mouseClick(diff.before_button, Qt.LeftButton)
    wait_view(qtbot, w)
    assert w.view.showing_before and w.view.before_step == w.document.cursor
    assert "Before step" in w.view.before_banner.text() and w.view.before_banner.isVisible()
    before = w.document.graph_at(w.document.cursor - 1)
    assert set(w.view.document.graph.nodes) == set(before.nodes)
    # a redo leaves the before mode and moves everything to the new step
    press(qtbot, w, Qt.Key_Y, Qt.ControlModifier)
    QApplication.processEvents()
    assert not w.view.showing_before and not diff.before_button.isChecked()
    assert_all_show_current_step(w)
    # History panel: jump to "Opened model" — no marks (nothing painted green), no step
    hv = w.surgery.history
    hv.setCurrentIndex(hv.model().index(0, 0))
    wait_view(qtbot, w)
    QApplication.processEvents()
    assert w.document.cursor == 0 and not w.view.marks()
    assert_all_show_current_step(w)
    assert not diff.before_button.isEnabled()
    # and a jump forward to step 2
    hv.setCurrentIndex(hv.model().index(2, 0))
    wait_view(qtbot, w)
    QApplication.processEvents()
    assert w.document.cursor == 2
    assert_all_show_current_step(w)


def test_comparison_follows_a_renamed_output(qtbot, win):
    w = win
    ctl = w.surgery.controller
    out = w.document.graph.outputs[0]
    assert ctl.edit("rename_node", {"node": out, "new_name": out + "_out"}) is not None
    assert w.document.graph.outputs == [out + "_out"]
    panel = w.compare_panel
    panel.runs.setValue(0)
    panel.reference_combo.setCurrentIndex(panel.reference_combo.findData("original"))
    with qtbot.waitSignal(panel.finished, timeout=120_000) as blocker:
        w.compare_panel.run_action.trigger()   # Edit ▸ Run Comparison (Ctrl+R)
    result, error = blocker.args
    assert error == "" and result is not None, error
    (o,) = result.comparison.outputs
    assert (o.name, o.name_b) == (out, out + "_out") and o.allclose
    assert panel.outputs_table.item(0, 0).text() == f"{out}_out (was {out})"


def test_closing_and_reopening_leaves_nothing_behind(qtbot, win, tmp_path, model_path):
    w = win
    w.persist_settings = True
    search = w.inspection.search
    search.query.setText("conv")
    apply_from_panel(qtbot, w, "inference")
    assert "Preset done" in w.surgery.passes.status.text()
    panel = w.compare_panel
    panel.runs.setValue(0)
    with qtbot.waitSignal(panel.finished, timeout=120_000):
        panel.run_action.trigger()
    assert panel.result is not None
    w.ask.script("question", "discard")
    w.close_model_action.trigger()
    QApplication.processEvents()
    assert w.document is None
    assert search.query.text() == "" and w.surgery.passes.status.text() == ""
    assert panel.result is None and panel.outputs_table.rowCount() == 0
    assert w.surgery.history.emptyLabel() == "No model open"
    assert w.surgery.history.model().rowCount() == 1 and w.undo_stack.count() == 0
    assert w.surgery.diff.summary.text() == "No model open."
    for action in (panel.run_action, w.surgery.controller.actions["export_recipe"],
                   w.surgery.controller.actions["save_as"], w.close_model_action,
                   w.export_png_action):
        assert not action.isEnabled(), action.text()
    # open it again: a clean slate; Save As starts at <model>_optimized.pb, and the file
    # saved is added to the recent files
    with qtbot.waitSignal(w.document_opened, timeout=60_000):
        w.open_model(str(model_path))
    wait_view(qtbot, w)
    assert panel.run_action.isEnabled() and w.surgery.history.emptyLabel() == "Opened model"
    ctl = w.surgery.controller
    assert ctl.default_save_path() == str(model_path.parent / "tf1_optimized.pb")
    target = tmp_path / "saved.pb"
    w.ask.script("save_path", str(target))
    ctl.actions["save_as"].trigger()
    assert target.exists() and w.recent_files()[0] == str(target)
    assert ctl.default_save_path() == str(target)


def test_opening_another_model_asks_first_and_resets(qtbot, win, tmp_path, tf2_graph):
    w = win
    apply_from_panel(qtbot, w, "training_flags")
    other = tmp_path / "tf2.pb"
    save_graph(tf2_graph[0], other)
    w.ask.script("question", "cancel")
    assert w.open_model(str(other)) is None   # kept: the unsaved step is still there
    assert "opening another model" in w.ask.asked[-1][1] and w.document.cursor == 1
    w.ask.script("question", "discard")
    with qtbot.waitSignal(w.document_changed, timeout=60_000) as blocker:
        w.open_model(str(other))
    assert blocker.args[0] is w.document and w.document.cursor == 0
    assert w.surgery.diff.selected_step_number() is None
    assert w.info_label.text().startswith("Opened model")


def test_the_preset_is_adopted_in_one_change(qtbot, win):
    """The preset's steps reach the document at once: one announcement, no replay of the
    steps one by one on the GUI thread."""
    w = win
    changes = []
    w.document.changed.connect(changes.append)
    pushed = apply_from_panel(qtbot, w, "inference")
    assert pushed >= 4 and len(changes) == 1 and changes[0].cursor == pushed
