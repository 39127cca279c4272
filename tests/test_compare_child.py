"""A comparison of big graphs runs in a child process (TensorFlow's graph import holds the GIL
for the whole call, so in a worker thread it froze the GUI): same numbers as in-process, errors
come back as the same messages, and Cancel ends the child."""
import subprocess

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QUndoStack

from surgeon_gui.core.history.document import Document
from surgeon_gui.core.model.graph import GraphDef
from surgeon_gui.core.running import comparison
from surgeon_gui.core.running.compare_child import graph_pieces
from surgeon_gui.ui.commands import apply_passes
from surgeon_gui.ui.compare_panel import ComparePanel

TIMEOUT = 180_000


class _View:
    def set_node_colors(self, colors, legend):
        pass

    def focus_node(self, name):
        pass


@pytest.fixture
def panel(qtbot, tf1_graph):
    gd, ins, outs = tf1_graph
    copy = GraphDef()
    copy.CopyFrom(gd)
    doc = Document(copy, "tf1_cond_bn_dropout.pb", ins, outs)
    stack = QUndoStack()
    apply_passes(stack, doc, ["inference"])
    assert len(doc.applied) >= 2
    p = ComparePanel(doc, _View())
    qtbot.addWidget(p)
    p.runs.setValue(2)
    p.warmup.setValue(0)
    p.samples.batch.setValue(3)
    p.drift_check.setChecked(True)
    return p


def _run(qtbot, panel):
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(panel.run_btn, Qt.LeftButton)
    return blocker.args


def test_graph_pieces_join_to_the_same_graph(tf1_graph):
    gd = tf1_graph[0]
    back = GraphDef()
    back.ParseFromString(b"".join(graph_pieces(gd)))
    assert back == gd and len(back.node) == len(gd.node)


@pytest.fixture
def started(monkeypatch) -> list:
    """Every child process the test starts (subprocess.Popen recorded)."""
    procs = []
    real_popen = subprocess.Popen

    def popen(*a, **k):
        procs.append(real_popen(*a, **k))
        return procs[-1]
    monkeypatch.setattr(subprocess, "Popen", popen)
    return procs


def test_big_graphs_are_compared_in_a_child_with_the_same_numbers(qtbot, panel, monkeypatch,
                                                                  started):
    here, _ = _run(qtbot, panel)
    assert here is not None and here.comparison.allclose
    monkeypatch.setattr(comparison, "CHILD_ABOVE_BYTES", 0)
    there, error = _run(qtbot, panel)
    assert error == "" and there is not None and len(started) == 1
    qtbot.waitUntil(lambda: started[0].poll() is not None, timeout=30_000)
    assert started[0].returncode == 0
    assert there.request.reference is not None        # the parent's request, graphs and all
    assert there.comparison.allclose
    assert [o.name for o in there.comparison.outputs] == [o.name for o in here.comparison.outputs]
    assert there.feeds.keys() == here.feeds.keys()
    for k in here.feeds:
        np.testing.assert_array_equal(there.feeds[k], here.feeds[k])
    for k in here.values_a:
        np.testing.assert_allclose(there.values_a[k], here.values_a[k], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(there.values_b[k], here.values_b[k], rtol=1e-5, atol=1e-6)
    assert there.drift is not None and set(there.drift.errors) == set(here.drift.errors)
    assert there.comparison.a.node_count == here.comparison.a.node_count
    assert "allclose" in panel.message.text()


def test_an_error_in_the_child_reads_as_in_process(qtbot, panel, monkeypatch):
    panel.samples.batch.setValue(3)
    panel.outputs_override = None
    monkeypatch.setattr(comparison, "CHILD_ABOVE_BYTES", 0)
    monkeypatch.setattr(panel, "_outputs", lambda: ["no_such_node"])
    result, error = _run(qtbot, panel)
    assert result is None and "no_such_node" in error


def test_cancel_ends_the_child(qtbot, panel, monkeypatch, started):
    monkeypatch.setattr(comparison, "CHILD_ABOVE_BYTES", 0)
    panel.runs.setValue(100000)
    panel.drift_check.setChecked(False)
    texts = []
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(panel.run_btn, Qt.LeftButton)
        panel.worker.signals.progress.connect(lambda f, t: texts.append(t))
        qtbot.waitUntil(lambda: any(t.startswith("timing run") for t in texts), timeout=TIMEOUT)
        qtbot.mouseClick(panel.cancel_btn, Qt.LeftButton)
    assert blocker.args == [None, "cancelled"]
    assert len(started) == 1 and started[0].poll() is not None   # the child is gone
    assert panel.run_btn.isEnabled() and panel.worker is None


def test_the_child_ends_without_interpreter_teardown_once_it_has_answered(
        qtbot, panel, monkeypatch, tmp_path):
    """After sending its result the child ends at once (os._exit): its teardown (collections
    over two NASNetLarge graphs and TensorFlow's objects) took 2-3 s of CPU while the user went
    on. An atexit hook in the child shows whether the interpreter was torn down."""
    import sys
    marker = tmp_path / "torn-down"
    hook = f"import atexit; atexit.register(open, {str(marker)!r}, 'w'); "
    # (the hook notices a teardown: a plain child run with it leaves the marker)
    subprocess.run([sys.executable, "-c", hook + "pass"], check=True)
    assert marker.exists()
    marker.unlink()
    procs = []
    real_popen = subprocess.Popen

    def popen(args, *a, **k):
        args = list(args)
        args[2] = hook + args[2]                  # [python, "-c", code]
        procs.append(real_popen(args, *a, **k))
        return procs[-1]
    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(comparison, "CHILD_ABOVE_BYTES", 0)
    result, error = _run(qtbot, panel)
    assert error == "" and result is not None and result.comparison.allclose
    assert len(procs) == 1
    qtbot.waitUntil(lambda: procs[0].poll() is not None, timeout=30_000)
    assert procs[0].returncode == 0 and not marker.exists()
