"""The surgery workflow driven as a user drives it: panels, buttons, shortcuts, the context menu,
the History panel, Save, recipes and the CLI (pytest-qt, headless)."""
import os
import subprocess
import sys

import pytest
from support import make_window
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QPushButton

from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import read_graph_def, save_graph, serialize


class FakeAsk:
    """Scripted answers for every dialog the surgery workflow opens; records what was asked."""

    def __init__(self):
        self.answers: dict[str, list] = {}
        self.asked: list[tuple] = []
        self.warnings: list[str] = []
        self.shown: list[str] = []

    def script(self, kind, *values):
        self.answers.setdefault(kind, []).extend(values)

    def _next(self, kind, *info):
        self.asked.append((kind,) + info)
        queue = self.answers.get(kind) or []
        assert queue, f"unexpected dialog {kind}: {info}"
        return queue.pop(0)

    def question(self, title, text, choices):
        return self._next("question", text)

    def save_path(self, title, start, filters):
        return self._next("save_path", title)

    def open_path(self, title, filters, start=""):
        return self._next("open_path", title)

    def text(self, title, label, default=""):
        return self._next("text", label)

    def choose(self, title, label, items):
        return self._next("choose", label)

    def attr_edit(self, node, graph):
        return self._next("attr_edit", node.name)

    def input_edit(self, node, graph):
        return self._next("input_edit", node.name)

    def warning(self, title, text):
        self.warnings.append(text)

    def show_text(self, title, text):
        self.shown.append(text)


@pytest.fixture
def model_path(tf1_graph, tmp_path):
    gd, _, _ = tf1_graph
    p = tmp_path / "tf1.pb"
    save_graph(gd, p)
    return p


@pytest.fixture
def win(qtbot, tmp_path, model_path, monkeypatch):
    w = make_window(qtbot, tmp_path, monkeypatch, size=(1300, 850))
    ask = FakeAsk()
    w.surgery.controller.ask = ask
    w.surgery.diff.ask_open_path = lambda: ask._next("open_path", "compare")
    w.ask = ask
    with qtbot.waitSignal(w.document_opened, timeout=60_000):
        w.open_model(str(model_path))
    wait_view(qtbot, w)
    yield w


def wait_view(qtbot, w):
    QApplication.processEvents()  # deferred panel refreshes
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=30_000)
    # the Diff panel reads a step on a worker
    qtbot.waitUntil(lambda: not w.surgery.diff.computing, timeout=30_000)


def gd_bytes(w):
    return serialize(w.document.graph_def)


def apply_from_panel(qtbot, w, pass_id, button="apply_all_button"):
    panel = w.surgery.passes
    panel.select_pass(pass_id)
    before = w.undo_stack.count()
    qtbot.mouseClick(getattr(panel, button), Qt.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    wait_view(qtbot, w)
    return w.undo_stack.count() - before


def click_and_wait(qtbot, panel, button):
    """Click a Passes-panel button and wait until the work it started (on a worker) is over."""
    with qtbot.waitSignal(panel.idle, timeout=120_000):
        qtbot.mouseClick(button, Qt.LeftButton)


def press(qtbot, w, key, mod=Qt.NoModifier):
    w.activateWindow()
    w.view.setFocus()
    qtbot.keyClick(w.view, key, mod)
    QApplication.processEvents()
    wait_view(qtbot, w)


# ---------------------------------------------------------------------- passes, marks, diff
def test_preview_apply_marks_and_diff_panel(qtbot, win):
    w = win
    panel = w.surgery.passes
    from surgeon_gui.core.passes import all_passes
    assert panel.list.count() == len(all_passes()) + 1  # every pass + the preset
    panel.select_pass("training_flags")
    assert "What it matches" in panel.explanation.toPlainText()
    click_and_wait(qtbot, panel, panel.preview_button)
    assert panel.matches.topLevelItemCount() == 1
    assert set(w.view.highlighted()) >= {"is_training"}
    assert w.undo_stack.count() == 0  # a preview changes nothing

    assert apply_from_panel(qtbot, w, "training_flags") == 1
    assert apply_from_panel(qtbot, w, "remove_switch_merge") == 1
    marks = w.view.marks()
    cmd = w.undo_stack.command(1)
    assert {n for n, k in marks.items() if k == "removed"} == cmd.delta.removed
    assert {n for n, k in marks.items() if k == "changed"} == cmd.delta.changed
    assert "bn1/cond/Switch" in cmd.delta.removed and "bn1/cond/Merge" in cmd.delta.removed
    diff = w.surgery.diff
    assert "bn1/cond/Merge" in diff.items("Removed")
    assert set(diff.items("Changed")) == cmd.delta.changed
    assert diff.summary.text().startswith("<b>Step 2: Remove Switch/Merge")
    # clicking a changed node in the diff goes to it in the view
    top = diff.tree.topLevelItem(2)
    child = top.child(0)
    diff.tree.itemClicked.emit(child, 0)
    wait_view(qtbot, w)
    assert w.view.selected_nodes() == [child.data(0, Qt.UserRole)] or \
        w.view.selected_nodes()  # a badge focuses its owner
    # the History panel lists both steps by name
    hv = w.surgery.history
    assert hv.model().rowCount() == 3  # "Opened model" + 2 steps
    assert "Remove Switch/Merge" in hv.model().index(2, 0).data()


def test_refused_candidates_are_listed_with_reasons(qtbot, win):
    w = win
    panel = w.surgery.passes
    # before the conds are gone, fold_batch_norm must refuse (inputs come through Switch)
    panel.select_pass("fold_batch_norm")
    click_and_wait(qtbot, panel, panel.preview_button)
    assert panel.refused.topLevelItemCount() > 0
    reason = panel.refused.topLevelItem(0).text(1)
    assert reason
    panel.refused.itemClicked.emit(panel.refused.topLevelItem(0), 0)  # goes there, no crash


def test_apply_ticked_and_step_mode(qtbot, win):
    w = win
    apply_from_panel(qtbot, w, "training_flags")
    apply_from_panel(qtbot, w, "remove_switch_merge")
    apply_from_panel(qtbot, w, "remove_identity")
    panel = w.surgery.passes
    panel.select_pass("fold_batch_norm")
    click_and_wait(qtbot, panel, panel.preview_button)
    n = panel.matches.topLevelItemCount()
    assert n >= 3
    keys = [panel.matches.topLevelItem(i).data(0, Qt.UserRole) for i in range(n)]
    panel.set_ticked(keys[1:2])
    click_and_wait(qtbot, panel, panel.apply_ticked_button)
    cmd = w.undo_stack.command(w.undo_stack.count() - 1)
    assert cmd.select == [keys[1]] and len(cmd.report.applied) == 1
    # Step: one match at a time, then a fresh preview of what is left
    click_and_wait(qtbot, panel, panel.step_button)
    step = w.undo_stack.command(w.undo_stack.count() - 1)
    assert len(step.report.applied) == 1
    assert panel.matches.topLevelItemCount() == n - 2


def test_preset_is_separate_undo_steps_and_ctrl_z_walks_back_bytes(qtbot, win):
    w = win
    from surgeon_gui.core.passes.pipeline import run_pipeline
    original = gd_bytes(w)
    g = w.document.graph
    # the CLI's pipeline on the same graph: the panel consumes the same generator
    _, piped = run_pipeline(Graph(w.document.snapshot(), g.given_inputs, g.given_outputs),
                            ["inference"])
    states = [original] + [serialize(s.result.graph_def) for s in piped]
    applied = []
    w.surgery.passes.step_applied.connect(applied.append)
    pushed = apply_from_panel(qtbot, w, "inference")
    assert pushed >= 4 and len(states) == pushed + 1 and len(applied) == pushed
    assert [c.text() for c in applied] == [w.undo_stack.command(i).text() for i in range(pushed)]
    assert "Switch" not in Graph(w.document.graph_def).op_histogram()
    labels = [w.undo_stack.command(i).text() for i in range(w.undo_stack.count())]
    assert any(t.startswith("Fold batch norm") for t in labels)
    # Ctrl+Z through every step: each time the exact bytes of the state before it
    for i in range(pushed, 0, -1):
        press(qtbot, w, Qt.Key_Z, Qt.ControlModifier)
        assert w.undo_stack.index() == i - 1
        assert gd_bytes(w) == states[i - 1]
    assert not w.document.dirty and not w.isWindowModified()
    # Ctrl+Shift+Z and Ctrl+Y redo
    for i in range(1, pushed + 1):
        if i % 2:
            press(qtbot, w, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
        else:
            press(qtbot, w, Qt.Key_Y, Qt.ControlModifier)
        assert gd_bytes(w) == states[i]
    assert w.document.dirty and w.isWindowModified()
    assert w.windowTitle().startswith("tf1.pb")
    # a click in the History panel jumps back to the opened model
    hv = w.surgery.history
    hv.setCurrentIndex(hv.model().index(0, 0))
    wait_view(qtbot, w)
    assert gd_bytes(w) == original


def test_background_apply_with_progress(qtbot, win):
    w = win
    panel = w.surgery.passes
    panel.select_pass("training_flags")
    with qtbot.waitSignal(panel.idle, timeout=60_000):
        qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
        assert panel.busy and not panel.apply_all_button.isEnabled()
    assert w.undo_stack.count() == 1 and not panel.busy
    progress = []
    with qtbot.waitSignal(panel.idle, timeout=120_000):
        panel.select_pass("inference")
        qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
        panel._worker.signals.progress.connect(lambda f, t: progress.append(t))
    assert w.undo_stack.count() >= 4
    assert "Preset done" in panel.status.text()
    assert any(t.startswith("Round 1: ") for t in progress)   # progress names each pass


def test_cancelling_the_preset_leaves_the_document_as_it_was(qtbot, win, monkeypatch):
    import threading
    from surgeon_gui.core.passes import PRESET_PASSES, get_pass
    w = win
    panel = w.surgery.passes
    before, key = gd_bytes(w), w.document.state_key
    # hold the preset in its second pass until the user has pressed Cancel
    p = get_pass(PRESET_PASSES[1])
    release, entered = threading.Event(), threading.Event()
    real = p.fn

    def slow(graph, select=None, **params):
        entered.set()
        release.wait(30)
        return real(graph, select=select, **params)
    monkeypatch.setattr(p, "fn", slow)
    panel.select_pass("inference")
    with qtbot.waitSignal(panel.idle, timeout=120_000):
        qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
        qtbot.waitUntil(entered.is_set, timeout=30_000)
        assert panel.busy
        qtbot.waitUntil(lambda: panel._progress is not None and panel._progress.isVisible(),
                        timeout=5_000)
        qtbot.mouseClick(panel._progress.findChild(QPushButton), Qt.LeftButton)  # Cancel
        release.set()
    assert "Cancelled" in panel.status.text()
    assert gd_bytes(w) == before and w.document.state_key == key
    assert w.undo_stack.count() == 0 and not w.document.dirty and not panel.busy


# ---------------------------------------------------------------------- manual edits
def menu_action(menu, text):
    for a in menu.actions():
        if a.menu() is not None:
            found = menu_action(a.menu(), text)
            if found is not None:
                return found
        elif a.text().split("\t")[0] == text:
            return a
    return None


def test_manual_edits_from_the_context_menu_and_delete_key(qtbot, win):
    w = win
    ask = w.ask
    view = w.view
    # Rename (all references follow)
    ask.script("text", "activation_1")
    menu = view.build_context_menu(["Relu"])
    menu_action(menu, "Rename…").trigger()
    g = w.document.graph
    assert "activation_1" in g.nodes and g.nodes["dw/depthwise_1"].input[0] == "activation_1"
    assert w.undo_stack.count() == 1 and w.undo_stack.command(0).text().startswith("Rename")
    # Set attribute (typed)
    ask.script("attr_edit", {"node": "conv2/Conv2D", "attr": "padding", "type": "s",
                             "value": "VALID"})
    menu_action(view.build_context_menu(["conv2/Conv2D"]), "Set attribute…").trigger()
    assert w.document.graph.nodes["conv2/Conv2D"].attr["padding"].s == b"VALID"
    # Set input: a cycle is refused with the reason, nothing changes
    before = gd_bytes(w)
    ask.script("input_edit", {"node": "conv1/Conv2D", "index": 0, "source": "Relu6"})
    menu_action(view.build_context_menu(["conv1/Conv2D"]), "Set input…").trigger()
    assert "cycle" in ask.warnings[-1] and gd_bytes(w) == before
    assert w.undo_stack.count() == 2
    # dtype mismatch refused
    ask.script("attr_edit", {"node": "conv2/Conv2D", "attr": "T", "type": "type",
                             "value": "int32"})
    menu_action(view.build_context_menu(["conv2/Conv2D"]), "Set attribute…").trigger()
    assert "dtype mismatch" in ask.warnings[-1] and gd_bytes(w) == before
    # Delete on a Const with no input: refused (nothing to bypass to)
    menu_action(view.build_context_menu(["conv1/weights"]), "Delete (readers take its input)") \
        .trigger()
    assert "no data input" in ask.warnings[-1]
    # the Delete key bypasses the selected node
    view.focus_node("conv1/weights/read")
    view.select(["conv1/Conv2D"])
    press(qtbot, w, Qt.Key_Delete)
    assert "conv1/Conv2D" not in w.document.graph.nodes
    assert w.document.graph.nodes["conv1/BiasAdd"].input[0] == "input"
    assert w.view.marks().get("conv1/Conv2D") == "removed"
    # Make output, then Placeholder -> Const with a typed value
    menu_action(view.build_context_menu(["gap"]), "Make graph output").trigger()
    assert w.document.outputs[-1] == "gap"
    ask.script("choose", "Type a value…")
    ask.script("text", "false")
    menu_action(view.build_context_menu(["is_training"]), "Turn into Const…").trigger()
    assert w.document.graph.nodes["is_training"].op == "Const"
    n = w.undo_stack.count()
    for _ in range(n):
        w.undo_stack.undo()
    assert "Relu" in w.document.graph.nodes and w.document.outputs is None


def test_replace_const_from_npy_and_refused_shape(qtbot, win, tmp_path):
    import numpy as np
    w = win
    ask = w.ask
    good = tmp_path / "w.npy"
    np.save(good, np.zeros((3, 3, 3, 8), np.float32))
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 2), np.float32))
    ask.script("open_path", str(bad))
    menu_action(w.view.build_context_menu(["conv1/weights"]), "Replace value from .npy…").trigger()
    assert "shape mismatch" in ask.warnings[-1] and w.undo_stack.count() == 0
    ask.script("open_path", str(good))
    menu_action(w.view.build_context_menu(["conv1/weights"]), "Replace value from .npy…").trigger()
    assert w.undo_stack.count() == 1
    wait_view(qtbot, w)
    diff = w.surgery.diff
    assert diff.items("Changed") == ["conv1/weights"]
    lines = [diff.tree.topLevelItem(2).child(0).child(i).text(1)
             for i in range(diff.tree.topLevelItem(2).child(0).childCount())]
    assert any("mean 0" in ln and "max |Δ|" in ln for ln in lines), lines


# ---------------------------------------------------------------------- save, close, recipe
def test_save_as_reload_and_overwrite_question(qtbot, win, tmp_path):
    w = win
    ask = w.ask
    apply_from_panel(qtbot, w, "training_flags")
    assert w.isWindowModified()
    out = tmp_path / "out.pbtxt"
    ask.script("save_path", str(out))
    w.surgery.controller.actions["save_as"].trigger()
    assert out.exists() and not w.isWindowModified() and not w.document.dirty
    assert serialize(read_graph_def(out)) == gd_bytes(w)
    assert w.document.path == str(out)
    # Ctrl+S after another change: the file is ours now, no question
    apply_from_panel(qtbot, w, "remove_switch_merge")
    press(qtbot, w, Qt.Key_S, Qt.ControlModifier)
    assert serialize(read_graph_def(out)) == gd_bytes(w)
    # Save As onto an existing other file asks; "cancel" keeps it
    other = tmp_path / "other.pb"
    other.write_bytes(b"keep me")
    apply_from_panel(qtbot, w, "remove_dropout")
    ask.script("save_path", str(other))
    ask.script("question", "cancel")
    w.surgery.controller.actions["save_as"].trigger()
    assert other.read_bytes() == b"keep me" and w.document.dirty
    assert "exists" in ask.asked[-1][1]
    ask.script("save_path", str(other))
    ask.script("question", "overwrite")
    w.surgery.controller.actions["save_as"].trigger()
    assert serialize(read_graph_def(other)) == gd_bytes(w)
    # undoing after a save makes the document dirty again; redoing back is clean
    w.undo_stack.undo()
    assert w.document.dirty
    w.undo_stack.redo()
    assert not w.document.dirty


def test_closing_with_unsaved_changes_asks(qtbot, win):
    w = win
    ask = w.ask
    apply_from_panel(qtbot, w, "training_flags")
    ask.script("question", "cancel")
    w.close()
    assert w.isVisible() and "unsaved changes" in ask.asked[-1][1]
    ask.script("question", "discard")
    w.close()
    assert not w.isVisible()


@pytest.mark.slow
def test_recipe_replayed_by_the_cli_gives_the_same_bytes(qtbot, win, tmp_path, model_path):
    w = win
    ask = w.ask
    apply_from_panel(qtbot, w, "training_flags")
    apply_from_panel(qtbot, w, "remove_switch_merge")
    panel = w.surgery.passes
    panel.select_pass("fold_batch_norm")
    click_and_wait(qtbot, panel, panel.preview_button)
    first = panel.matches.topLevelItem(0).data(0, Qt.UserRole)
    panel.set_ticked([first])
    click_and_wait(qtbot, panel, panel.apply_ticked_button)
    ask.script("text", "head")
    menu_action(w.view.build_context_menu(["fc/MatMul"]), "Rename…").trigger()
    w.surgery.controller.edit("make_output", {"node": "gap"})
    apply_from_panel(qtbot, w, "inference")
    gui = tmp_path / "gui.pb"
    ask.script("save_path", str(gui))
    w.surgery.controller.save_as()
    recipe = tmp_path / "steps.json"
    ask.script("save_path", str(recipe))
    starts, save_path = [], ask.save_path
    ask.save_path = lambda title, start, filters: (starts.append(start),
                                                   save_path(title, start, filters))[1]
    w.surgery.controller.actions["export_recipe"].trigger()
    assert recipe.exists()
    assert starts == [str(tmp_path / "gui.recipe.json")]   # next to the result just saved
    import json
    steps = json.loads(recipe.read_text())["steps"]
    from surgeon_gui.core.passes import get_pass
    assert {"pass": "fold_batch_norm", "params": get_pass("fold_batch_norm").defaults(),
            "select": [first]} in steps
    assert {"edit": "rename_node", "args": {"node": "fc/MatMul", "new_name": "head"}} in steps
    w.surgery.controller.actions["show_cli"].trigger()
    assert f"--recipe {recipe}" in ask.shown[-1] and str(model_path) in ask.shown[-1]
    out = tmp_path / "cli.pb"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run([sys.executable, "-m", "surgeon_gui.cli", "optimize", str(model_path),
                        str(out), "--recipe", str(recipe)], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == gui.read_bytes()


# ---------------------------------------------------------------------- compare, before/after
def test_compare_with_file_and_before_after_toggle(qtbot, win, tmp_path, model_path):
    w = win
    apply_from_panel(qtbot, w, "training_flags")
    apply_from_panel(qtbot, w, "remove_switch_merge")
    diff = w.surgery.diff
    # Before: the view shows the graph before the last step, with what it removed
    qtbot.mouseClick(diff.before_button, Qt.LeftButton)
    wait_view(qtbot, w)
    assert diff.showing_before and w.view.document is not w.document
    assert "bn1/cond/Switch" in w.view.document.graph.nodes
    assert w.view.marks().get("bn1/cond/Merge") == "removed"
    qtbot.mouseClick(diff.before_button, Qt.LeftButton)
    wait_view(qtbot, w)
    assert w.view.document is w.document and "bn1/cond/Switch" not in w.view.document.graph.nodes
    # clicking a removed node in the diff flips to the graph before the step and goes there
    top = diff.tree.topLevelItem(0)
    item = next(top.child(i) for i in range(top.childCount())
                if top.child(i).data(0, Qt.UserRole) == "bn1/cond/Merge")
    diff.tree.itemClicked.emit(item, 0)
    wait_view(qtbot, w)
    assert diff.showing_before and "bn1/cond/Merge" in w.view.selected_nodes()
    qtbot.mouseClick(diff.before_button, Qt.LeftButton)
    wait_view(qtbot, w)
    assert w.view.document is w.document
    # Compare with the original file
    w.ask.script("open_path", str(model_path))
    qtbot.mouseClick(diff.compare_button, Qt.LeftButton)
    assert "bn1/cond/Switch" in diff.items("Added")  # in the other file, not here
    assert "is_training" in diff.items("Added")
    assert diff.steps.currentText().startswith("Compared with")
    # a file that is not a model: a clear message, no crash
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\x00\x01garbage")
    w.ask.script("open_path", str(junk))
    qtbot.mouseClick(diff.compare_button, Qt.LeftButton)
    assert "not a GraphDef" in diff.summary.text()


def test_screenshot_mode_applies_through_the_undo_stack(tmp_path, model_path):
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TF_CPP_MIN_LOG_LEVEL="2",
               GRAPH_SURGEON_SETTINGS_DIR=str(tmp_path / "s"))
    code = ("import sys; from surgeon_gui.ui import app; "
            "orig = app.apply_passes_for_script\n"
            "def spy(win, ids):\n"
            "    cmds = orig(win, ids)\n"
            "    print('STEPS', win.undo_stack.count(), len(win.view.marks()))\n"
            "    return cmds\n"
            "app.apply_passes_for_script = spy\n"
            f"sys.exit(app.main([{str(model_path)!r}, '--apply', "
            f"'training_flags,remove_switch_merge', '--screenshot', {str(out)!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("STEPS"))
    _, steps, marks = line.split()
    assert int(steps) == 2 and int(marks) > 10
    assert out.stat().st_size > 10_000


def test_undo_and_redo_reuse_the_views_group_trees(qtbot, win):
    w = win
    before_tree, before_key = w.view.tree, w.document.state_key
    apply_from_panel(qtbot, w, "training_flags")
    after_tree = w.view.tree
    assert after_tree is not before_tree and w.document.state_key != before_key
    press(qtbot, w, Qt.Key_Z, Qt.ControlModifier)
    assert w.document.state_key == before_key
    assert w.view.tree is before_tree and w.view.tree.graph is w.document.graph
    press(qtbot, w, Qt.Key_Y, Qt.ControlModifier)
    assert w.view.tree is after_tree
    assert "is_training" not in {n for n in w.view.tree.op_of if w.view.tree.op_of[n] ==
                                 "PlaceholderWithDefault"}


def test_opening_another_model_over_unsaved_changes_asks(qtbot, win, model_path):
    w = win
    apply_from_panel(qtbot, w, "training_flags")
    doc = w.document
    w.ask.script("question", "cancel")
    assert w.open_model(str(model_path)) is None
    assert w.document is doc and "opening another model" in w.ask.asked[-1][1]
    w.ask.script("question", "discard")
    with qtbot.waitSignal(w.document_opened, timeout=60_000):
        w.open_model(str(model_path))
    assert w.document is not doc and w.undo_stack.count() == 0 and not w.document.dirty


def test_a_failing_pass_is_reported_not_raised(qtbot, win, monkeypatch):
    w = win
    panel = w.surgery.passes
    from surgeon_gui.core.passes import get_pass
    p = get_pass("remove_dropout")

    def broken(graph, select=None, **params):
        raise RuntimeError("boom")
    monkeypatch.setattr(p, "fn", broken)
    panel.select_pass("remove_dropout")
    click_and_wait(qtbot, panel, panel.apply_all_button)
    assert "boom" in panel.status.text() and w.undo_stack.count() == 0
    assert not panel.busy and panel.apply_all_button.isEnabled()
    # and a malformed edit from a script is a message too
    assert w.surgery.controller.edit("set_input", {"node": "Relu", "index": None}) is None
    assert w.ask.warnings and w.undo_stack.count() == 0


def test_gui_preset_drops_a_converted_training_input_like_the_cli(qtbot, tf2_graph):
    """The GUI's preset (one undo step per pass) ends with the same bytes and inputs as the
    CLI's pipeline on a model that lists its training flag as an input; undo brings it back."""
    from PySide6.QtGui import QUndoStack

    from surgeon_gui.core.history.document import Document
    from surgeon_gui.core.model.io import serialize
    from surgeon_gui.core.passes.pipeline import run_pipeline
    from surgeon_gui.ui.commands import apply_passes
    gd, ins, outs = tf2_graph
    doc = Document(gd, "tf2.pb", ins, outs)
    stack = QUndoStack()
    steps = apply_passes(stack, doc, ["inference"])
    piped, _ = run_pipeline(Graph(gd, ins, outs), ["inference"])
    assert len(steps) >= 3
    assert doc.inputs == ["input"] == piped.given_inputs
    assert serialize(doc.graph_def) == serialize(piped.graph_def)
    while stack.canUndo():
        stack.undo()
    assert doc.inputs == ins
    assert serialize(doc.graph_def) == serialize(gd)


def test_undo_takes_back_the_applied_status(qtbot, win):
    """After Ctrl+Z the Passes panel no longer says the undone pass is applied."""
    w = win
    panel = w.surgery.passes
    apply_from_panel(qtbot, w, "fold_constants")
    assert "applied" in panel.status.text()
    press(qtbot, w, Qt.Key_Z, Qt.ControlModifier)
    assert w.document.cursor == 0 and panel.status.text() == ""
