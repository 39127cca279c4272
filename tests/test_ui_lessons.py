"""Lessons, the Worked numbers panel and File ▸ Export Tutorial, driven as a user drives them
(pytest-qt, headless), plus the lesson files themselves (format and headless runs)."""
from __future__ import annotations

import json
import re

import pytest
from support import make_window
from PySide6.QtCore import Qt

from surgeon_gui.core.running.lessons import (
    LessonError,
    list_lessons,
    load_lesson,
    run_lesson,
)


class Answers:
    """Scripted answers for the window's questions (unsaved changes, save paths)."""

    def __init__(self):
        self.paths = []
        self.asked = []

    def question(self, title, text, choices):
        self.asked.append(text)
        return "discard"

    def save_path(self, title, start, filters):
        return self.paths.pop(0)


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    w = make_window(qtbot, tmp_path, monkeypatch, size=(1300, 850))
    w.surgery.controller.ask = Answers()
    return w


def _menu_action(menu, text):
    return next(a for a in menu.actions() if a.text().replace("&", "") == text)


def _open_lessons(win):
    _menu_action(win.help_menu, "Lessons…").trigger()
    lw = win.lessons_window
    assert lw.isVisible()
    return lw


def _walk(qtbot, win, lw, row, by_hand=None):
    """Start lesson ``row`` and press Next until it ends; ``by_hand(step_index)`` may do a step
    the way a user would instead (return True when it did)."""
    lw.list.setCurrentRow(row)
    with qtbot.waitSignal(win.document_opened, timeout=60000):
        qtbot.mouseClick(lw.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: lw.state == "step", timeout=20000)
    seen = []
    with qtbot.waitSignal(lw.finished, timeout=120000) as blocker:
        while lw.state != "finished":
            if lw.state == "step":
                i = lw.run.index
                step = lw.run.step
                seen.append(i)
                # the graph is focused on the step's nodes
                present = [n for n in step.focus if n in win.document.graph.nodes]
                if present:
                    assert set(present) <= set(win.view.highlighted())
                if by_hand and by_hand(i):
                    qtbot.waitUntil(lambda: lw.state == "done", timeout=30000)
                    assert "Done:" in lw.text.toPlainText()
                if lw.state == "step" and step.acts:
                    qtbot.mouseClick(lw.next_button, Qt.LeftButton)   # do it for me
                    qtbot.waitUntil(lambda: lw.state == "done", timeout=60000)
                if lw.state == "done" or not step.acts:
                    qtbot.mouseClick(lw.next_button, Qt.LeftButton)   # next step
            qtbot.waitUntil(lambda: lw.state in ("step", "done", "finished"), timeout=60000)
    return blocker.args[0], seen


@pytest.mark.parametrize("row", [0, 1, 2, 3])
def test_lessons_run_end_to_end(qtbot, win, row):
    lw = _open_lessons(win)
    lesson = lw.lessons[row]
    verdict, seen = _walk(qtbot, win, lw, row)
    assert verdict.startswith("outputs equal: PASS"), verdict
    assert seen == list(range(len(lesson.steps)))
    text = lw.text.toPlainText()
    assert "outputs equal: PASS" in text
    if lesson.opencv:
        assert "OpenCV DNN on the result: loads and computes the same outputs: PASS" in verdict
    # every step that did something is one undoable step in the History
    from surgeon_gui.ui.commands import applied_commands
    assert win.undo_stack.index() == sum(1 for s in lesson.steps if s.actions)
    assert applied_commands(win.undo_stack)


def test_lesson_steps_show_their_numbers(qtbot, win, tmp_path):
    lw = _open_lessons(win)
    shown = {}
    lw.step_shown.connect(lambda i: shown.setdefault(i, lw.text.toPlainText()))
    _walk(qtbot, win, lw, 2)              # fold batch norm into the conv
    text = shown[1]
    assert "s = γ/√(var+ε)" in text and "conv_new(x)[c]" in text and "PASS: max" in text
    assert "nodes 11 → 6" in text and "removed BiasAdd (BiasAdd)" in text
    # the session exports as a tutorial that explains the step with the lesson's own text
    from surgeon_gui.ui.teaching import export_tutorial
    out = tmp_path / "lesson.html"
    done = []
    export_tutorial(win, str(out), done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=60000)
    page = out.read_text()
    assert "Fold the batch norm and the bias into the conv." in page
    assert "outputs equal: PASS" in page and page.count("data:image/png") == 2


def test_learner_does_a_step_by_hand(qtbot, win):
    """Lesson 2, step 2 done through the graph's context-menu edit (remove Merge, bypass):
    the lesson sees it, shows the diff and the Merge's ports, and goes on."""
    lw = _open_lessons(win)
    ctl = win.surgery.controller

    def by_hand(i):
        if i == 1:
            assert ctl.delete_nodes(["bn1/cond/Merge"], "bypass")
            return True
        return False

    verdict, _ = _walk(qtbot, win, lw, 1, by_hand)
    assert verdict.startswith("outputs equal: PASS")
    assert "bn1/cond/Merge" not in win.document.graph.nodes


def _start_lesson(qtbot, win, lw, row):
    lw.list.setCurrentRow(row)
    with qtbot.waitSignal(win.document_opened, timeout=60000):
        qtbot.mouseClick(lw.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: lw.state == "step", timeout=20000)


def test_lesson_4_freezes_the_training_graph_from_its_checkpoint(qtbot, win):
    """Lesson 4 starts on the graph a TF1 training script saved (variables, saver, initializer;
    not asked whether to freeze it); Do it for me freezes it from the bundled checkpoint: every
    variable becomes a Const with the checkpoint's value, and the frozen graph is exactly the
    bundled frozen example."""
    from surgeon_gui.core.model.io import read_graph_def, variable_nodes
    from surgeon_gui.core.running.compare import compare_graphs
    lw = _open_lessons(win)
    _start_lesson(qtbot, win, lw, 3)
    ask = win.surgery.controller.ask
    assert not ask.asked  # no "Open its checkpoint now?" question: the lesson does it
    variables = variable_nodes(win.document.graph.graph_def)
    assert "conv1/weights" in variables and len(variables) == 21
    assert "conv1/weights" in win.view.highlighted()  # focused
    assert lw.do_button.isEnabled()
    with qtbot.waitSignal(win.document_opened, timeout=60000):
        qtbot.mouseClick(lw.do_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: lw.state == "done", timeout=60000)
    gd = win.document.graph.graph_def
    assert not variable_nodes(gd) and win.document.graph.nodes["conv1/weights"].op == "Const"
    assert not [n for n in gd.node if n.name.startswith("save/") or n.op == "Assign"]
    text = lw.text.toPlainText()
    assert "nodes 238 → 157" in text and "conv1/weights: op: VariableV2 → Const; value: — → float32[3, 3, 3, 8]" in text
    frozen = read_graph_def(lw.run.lesson.model.parents[1] / "tf1_cond_bn_dropout.pb")
    cmp = compare_graphs(frozen, gd, None, ["probs"], runs=0, warmup=0)
    assert cmp.allclose and cmp.outputs[0].max_abs_err == 0.0
    # the frozen graph is what the lesson's check compares the result with
    qtbot.mouseClick(lw.next_button, Qt.LeftButton)
    assert lw.run.index == 1 and not variable_nodes(lw.run.original.graph_def)


def test_lesson_4_freeze_done_by_hand_with_open_with_checkpoint(qtbot, win):
    from surgeon_gui.core.model.io import variable_nodes
    lw = _open_lessons(win)
    _start_lesson(qtbot, win, lw, 3)
    lesson = lw.run.lesson
    ask = win.surgery.controller.ask
    paths = [str(lesson.model), str(lesson.checkpoint) + ".index"]   # the graph, its checkpoint
    ask.open_path = lambda title, filters, start="": paths.pop(0)
    ask.text = lambda title, label, default="": default   # the guessed output: probs
    with qtbot.waitSignal(win.document_opened, timeout=60000):
        _menu_action(win.file_menu, "Open with Checkpoint…").trigger()
    qtbot.waitUntil(lambda: lw.state == "done", timeout=60000)
    assert not variable_nodes(win.document.graph.graph_def)
    assert win.document.graph.outputs == ["probs"]
    assert "Done: Freeze" in lw.text.toPlainText()


def test_opening_another_model_stops_the_lesson(qtbot, win):
    lw = _open_lessons(win)
    _start_lesson(qtbot, win, lw, 0)
    other = load_lesson_model("03_fold_batch_norm")
    with qtbot.waitSignal(win.document_opened, timeout=60000):
        win.open_model(str(other))
    assert lw.state == "idle" and lw.run is None
    assert "the lesson stopped" in lw.text.toPlainText()
    assert lw.start_button.isEnabled() and not lw.next_button.isEnabled()


def test_undo_in_a_lesson_makes_the_step_to_do_again(qtbot, win):
    lw = _open_lessons(win)
    lw.list.setCurrentRow(2)
    with qtbot.waitSignal(win.document_opened, timeout=60000):
        qtbot.mouseClick(lw.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: lw.state == "step", timeout=20000)
    qtbot.mouseClick(lw.next_button, Qt.LeftButton)        # explanation-only step
    qtbot.waitUntil(lambda: lw.state == "step" and lw.run.index == 1)
    qtbot.mouseClick(lw.do_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: lw.state == "done", timeout=30000)
    assert "bn" in win.document.graph.nodes and win.document.graph.nodes["bn"].op == "BiasAdd"
    win.undo_action.trigger()
    assert lw.state == "step"
    assert win.document.graph.nodes["bn"].op.startswith("FusedBatchNorm")


def test_worked_numbers_panel_follows_a_clicked_match(qtbot, win):
    win.open_model(str(load_lesson_model("03_fold_batch_norm")))
    qtbot.waitUntil(lambda: win.document is not None, timeout=60000)
    passes = win.surgery.passes
    passes.select_pass("fold_batch_norm")
    qtbot.mouseClick(passes.preview_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: passes.matches.topLevelItemCount() == 1, timeout=30000)
    item = passes.matches.topLevelItem(0)
    rect = passes.matches.visualItemRect(item)
    view = win.teaching.worked
    qtbot.mouseClick(passes.matches.viewport(), Qt.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: view.current is not None, timeout=30000)
    assert view.current.key == "Conv2D" and view.current.check.passed
    assert "γ" in view.text.toPlainText()
    # Switch/Merge: live and dead branches coloured differently in the view
    win.open_model(str(load_lesson_model("02_remove_switch_merge")))
    qtbot.waitUntil(lambda: win.document is not None
                    and "bn1/cond/Merge" in win.document.graph.nodes, timeout=60000)
    passes.select_pass("training_flags")
    with qtbot.waitSignal(passes.idle, timeout=60000):   # passes run on a worker
        qtbot.mouseClick(passes.apply_all_button, Qt.LeftButton)
    passes.select_pass("remove_switch_merge")
    qtbot.mouseClick(passes.preview_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: passes.matches.topLevelItemCount() > 0, timeout=30000)
    view.current = None
    passes.match_clicked.emit("remove_switch_merge", "bn1/cond/Merge")
    qtbot.waitUntil(lambda: view.current is not None, timeout=30000)
    colors = win.view._colors or {}
    assert colors.get("bn1/cond/FusedBatchNormV3_1") != colors.get("bn1/cond/FusedBatchNormV3")
    assert "bn1/cond/FusedBatchNormV3" in colors


def load_lesson_model(lesson_id):
    from surgeon_gui.core.running.lessons import LESSONS_DIR
    return load_lesson(LESSONS_DIR / f"{lesson_id}.md").model


def test_export_tutorial_from_the_session(qtbot, win, tmp_path):
    win.open_model(str(load_lesson_model("01_remove_dropout")))
    qtbot.waitUntil(lambda: win.document is not None, timeout=60000)
    passes = win.surgery.passes
    for pass_id, button in (("training_flags", passes.apply_all_button),
                            ("fold_batch_norm", passes.apply_all_button),  # refused: in conds
                            ("remove_switch_merge", passes.apply_all_button),
                            ("remove_dropout", passes.step_button)):
        passes.select_pass(pass_id)
        with qtbot.waitSignal(passes.idle, timeout=60000):   # passes run on a worker
            qtbot.mouseClick(button, Qt.LeftButton)
    assert win.undo_stack.index() == 3
    out = tmp_path / "session.html"
    win.surgery.controller.ask.paths.append(str(out))
    _menu_action(win.file_menu, "Export Tutorial…").trigger()
    qtbot.waitUntil(lambda: out.exists(), timeout=60000)
    page = out.read_text()
    assert len(re.findall(r"<h2 id='step\d+'>", page)) == 3
    assert page.count("data:image/png;base64,") == 6
    assert "outputs equal: PASS" in page and "keep probability 1 − r" in page
    # an existing file is only replaced when the user says so
    out.write_text("keep me")
    ask = win.surgery.controller.ask
    ask.question = lambda title, text, choices: "cancel"
    ask.paths.append(str(out))
    _menu_action(win.file_menu, "Export Tutorial…").trigger()
    qtbot.wait(300)
    assert out.read_text() == "keep me"


# ---------------------------------------------------------------------- lesson files
def test_bundled_lessons_run_headless():
    lessons = list_lessons()
    assert [les.id for les in lessons] == ["01_remove_dropout", "02_remove_switch_merge",
                                           "03_fold_batch_norm", "04_opencv"]
    for les in lessons:
        outcomes, verdict = run_lesson(les, run_check=False)
        assert verdict.startswith("outputs equal: PASS"), (les.id, verdict)
        for step, out in zip(les.steps, outcomes):
            if step.actions:
                assert out.nodes_after != out.nodes_before or out.diff.changed \
                    or out.diff.reordered, (les.id, step.title)


def test_lesson_format_errors_are_one_line(tmp_path):
    (tmp_path / "x.md").write_text("# T\n\nintro\n\n## One\n\ntext\n")
    (tmp_path / "x.json").write_text(json.dumps({"model": "m.pb", "steps": [{}, {}]}))
    with pytest.raises(LessonError, match="has 1 '## ' step sections but x.json lists 2"):
        load_lesson(tmp_path / "x.md")
    (tmp_path / "x.json").write_text(json.dumps({"model": "m.pb",
                                                 "steps": [{"do": {"pass": "nope"}}]}))
    with pytest.raises(LessonError, match="unknown pass"):
        load_lesson(tmp_path / "x.md")
    (tmp_path / "x.json").write_text(json.dumps({"model": "m.pb",
                                                 "steps": [{"freeze": True}, {}]}))
    (tmp_path / "x.md").write_text("# T\n\nintro\n\n## One\n\ntext\n\n## Two\n\ntext\n")
    with pytest.raises(LessonError, match="needs the lesson's \"checkpoint\""):
        load_lesson(tmp_path / "x.md")
    (tmp_path / "x.json").write_text(json.dumps({"model": "m.pb",
                                                 "steps": [{"do": {"pass": "remove_dropout"}},
                                                           {"freeze": True}],
                                                 "checkpoint": "c", "outputs": ["y"]}))
    with pytest.raises(LessonError, match="comes before any"):
        load_lesson(tmp_path / "x.md")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(LessonError, match="not JSON"):
        load_lesson(tmp_path / "x.md")
    (tmp_path / "x.json").write_text(json.dumps({"model": "m.pb", "steps": []}))
    (tmp_path / "x.md").write_text("no title\n")
    with pytest.raises(LessonError, match="first line"):
        load_lesson(tmp_path / "x.md")
