"""The comparison panel on a real model: preset keeps the numbers, a wrong weight edit is caught
and located, the numbers match ``surgeon compare --json``, errors show in the panel."""
import json

import numpy as np
import pytest
from support import make_window
from PySide6.QtCore import Qt
from PySide6.QtGui import QUndoStack

from surgeon_gui.core.history.document import Document
from surgeon_gui.core.model.graph import Graph, GraphDef, GraphError, const_value
from surgeon_gui.core.running.samples import InputSource, SampleError, save_feeds
from surgeon_gui.ui.commands import EditCommand, apply_passes, push_step
from surgeon_gui.ui.compare_panel import ComparePanel, _fmt
from surgeon_gui.ui.compare_results import EDITED_CONST_COLOR, LEVEL_COLORS, RECONVERGES_COLOR

TIMEOUT = 120_000


class RecordingView:
    """Stands in for the graph view: records what the panel asks it to show."""

    def __init__(self):
        self.colors, self.legend, self.focused = {}, [], []

    def set_node_colors(self, colors, legend):
        self.colors, self.legend = dict(colors), list(legend)

    def focus_node(self, name):
        self.focused.append(name)


def apply_inference(stack, doc):
    """The ``inference`` preset as undo steps (one per pass run that changed something)."""
    apply_passes(stack, doc, ["inference"])


def _copy(gd):
    out = GraphDef()
    out.CopyFrom(gd)
    return out


def run(qtbot, panel):
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(panel.run_btn, Qt.LeftButton)
    return blocker.args


@pytest.fixture
def setup(qtbot, tf1_graph):
    gd, ins, outs = tf1_graph
    doc = Document(_copy(gd), "tf1_cond_bn_dropout.pb", ins, outs)
    stack = QUndoStack()
    view = RecordingView()
    panel = ComparePanel(doc, view)
    qtbot.addWidget(panel)
    panel.runs.setValue(5)
    panel.warmup.setValue(1)
    panel.samples.batch.setValue(4)
    panel.resize(560, 900)
    return doc, stack, view, panel


def _wrong_edit(doc, stack, delta=1.0):
    """Change one weight of the Const feeding the last convolution (through the undo stack), so
    that there are convolutions upstream of the edit that must stay right."""
    g = doc.graph
    for name in reversed(g.topological_order()):
        node = g.node(name)
        if node.op in ("Conv2D", "DepthwiseConv2dNative"):
            src = g.node(node.input[1])
            if src.op == "Identity":
                src = g.node(src.input[0])
            if src.op == "Const":
                value = const_value(src).copy()
                value.flat[0] += delta
                push_step(stack, EditCommand.compute(doc, "replace_const",
                                                     {"node": src.name, "value": value}))
                return src.name
    raise AssertionError("no Const feeds a convolution")


def test_preset_keeps_the_numbers(qtbot, setup):
    doc, stack, view, panel = setup
    apply_inference(stack, doc)
    assert len(doc.applied) >= 2 and len(doc.graph_def.node) < len(doc.original.node)
    progress = []
    panel.worker_progress = progress
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(panel.run_btn, Qt.LeftButton)
        # The job runs in the background: the GUI thread is free, Cancel is offered.
        assert panel.worker is not None and panel.cancel_btn.isEnabled()
        assert not panel.run_btn.isEnabled()
    result, error = blocker.args
    assert error == "" and result is panel.result
    cmp = result.comparison
    assert cmp.allclose and [o.name for o in cmp.outputs] == ["probs"]
    t = panel.outputs_table
    assert t.item(0, 4).text() == "yes" and t.item(0, 1).text() == "4×5"
    assert t.item(0, 5).text() == "100%"       # classifier: top-1 agreement
    assert "allclose" in panel.message.text() and "MISMATCH" not in panel.message.text()
    # Before/after figures: the preset removed nodes and made it no slower to count.
    stats = {panel.stats_table.item(r, 0).text(): (panel.stats_table.item(r, 1).text(),
                                                   panel.stats_table.item(r, 2).text())
             for r in range(panel.stats_table.rowCount())}
    assert stats["Nodes"] == (f"{cmp.a.node_count:,}", f"{cmp.b.node_count:,}")
    assert cmp.b.node_count < cmp.a.node_count and cmp.a.node_count == len(doc.original.node)
    assert cmp.b.op_count < cmp.a.op_count
    assert cmp.b.serialized_bytes < cmp.a.serialized_bytes
    speed = panel.stats_table.item(0, 3).text()
    assert speed == (f"{cmp.speedup:.2f}× faster" if cmp.speedup >= 1
                     else f"{1 / cmp.speedup:.2f}× slower")
    assert len(cmp.a.latencies_ms) == 5 and len(cmp.b.latencies_ms) == 5
    assert panel.histogram.counts and sum(panel.histogram.counts) == 4 * 5
    assert panel.report_btn.isEnabled() and panel.npz_btn.isEnabled()


def test_wrong_weight_edit_is_reported_and_located(qtbot, setup, tmp_path):
    doc, stack, view, panel = setup
    apply_inference(stack, doc)
    edited = _wrong_edit(doc, stack)
    consumers = set(doc.graph.consumer_names(edited))
    panel.drift_check.setChecked(True)
    result, error = run(qtbot, panel)
    assert error == ""
    o = result.comparison.outputs[0]
    assert not o.allclose and o.max_abs_err > 1e-3
    assert panel.outputs_table.item(0, 4).text() == "NO"
    assert panel.message.text().startswith("MISMATCH: 1 of 1 output(s)")
    # Drift: the edited Const is marked, and the error starts at its consumers.
    d = result.drift
    assert edited in d.edited_consts
    persistent = d.persistent(Graph(result.request.current), result.request.rtol,
                              result.request.atol)
    assert persistent == result.persistent and persistent[0] in consumers
    assert result.origins and set(result.origins) <= consumers
    assert "The error starts at: " in panel.drift_label.text()
    assert f"title='{result.origins[0]}'" in panel.drift_label.text()
    # The names are links: clicking one centres the view on that node.
    panel.drift_label.linkActivated.emit(f"node:{result.origins[-1]}")
    assert view.focused[-1] == result.origins[-1]
    # The view is coloured: the edit pink, its consumers beyond tolerance, upstream exact.
    assert view.colors[edited].name() == EDITED_CONST_COLOR
    for c in result.origins:
        assert view.colors[c].name() in [x.lower() for x in LEVEL_COLORS[3:]]
    # Nothing the edit cannot reach is flagged wrong (a region a pass rewrote re-converges).
    gb = Graph(result.request.current)
    reach = gb.downstream([edited])
    upstream = [n for n in d.errors if n not in reach]
    assert len(upstream) >= 3
    # Upstream: the folded convolutions differ but re-converge (blue), their activations are
    # within tolerance (green).
    assert any(view.colors[n].name() == RECONVERGES_COLOR for n in upstream)
    assert any(view.colors[n].name() in LEVEL_COLORS[:3] for n in upstream)
    wrong = {c.lower() for c in LEVEL_COLORS[3:]}
    assert not [n for n in upstream if view.colors[n].name() in wrong]
    assert all(view.colors[n].name() in wrong for n in persistent)
    assert [t for t, _ in view.legend][0] == "exact"
    assert "no counterpart" in [t for t, _ in view.legend]
    assert view.focused[0] == result.origins[0]
    assert "(capped)" not in panel.drift_label.text()
    # Unticking the box takes the colours off the view.
    panel.drift_check.setChecked(False)
    assert view.colors == {}
    # Tolerances are editable: a loose atol makes the same values pass, without a new run.
    panel.atol.clear()
    qtbot.keyClicks(panel.atol, "10")
    qtbot.keyClick(panel.atol, Qt.Key_Return)
    assert panel.outputs_table.item(0, 4).text() == "yes"
    assert panel.result.comparison.atol == 10.0

    # Export: report (Markdown + chart, HTML) and the values as .npz.
    files = panel.save_report(tmp_path / "r.md")
    md = (tmp_path / "r.md").read_text()
    assert "| probs |" in md and "Per-node drift" in md and edited in md
    assert files[1].name == "r_latency.svg" and "<svg" in files[1].read_text()
    panel.save_report(tmp_path / "r.html")
    assert "<svg" in (tmp_path / "r.html").read_text()
    panel.save_npz(tmp_path / "v.npz")
    with np.load(tmp_path / "v.npz") as z:
        assert set(z.files) == {"input/input", "reference/probs", "current/probs"}
        assert np.abs(z["reference/probs"] - z["current/probs"]).max() == pytest.approx(
            panel.result.comparison.outputs[0].max_abs_err)


def test_numbers_agree_with_the_cli(qtbot, setup, tmp_path, capsys):
    from surgeon_gui import cli
    from surgeon_gui.core.model.io import save_graph
    doc, stack, view, panel = setup
    apply_inference(stack, doc)
    _wrong_edit(doc, stack, delta=0.05)
    result, error = run(qtbot, panel)
    assert error == ""
    a = save_graph(result.request.reference, tmp_path / "a.pb")
    b = save_graph(result.request.current, tmp_path / "b.pb")
    feeds = save_feeds(result.feeds, tmp_path / "feeds.npz")
    capsys.readouterr()
    code = cli.main(["compare", str(a), str(b), "--feeds", str(feeds), "--json",
                     "--outputs", ",".join(result.request.outputs), "--runs", "2"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["allclose"] is False
    mine = result.comparison.to_dict()
    for name, o in data["outputs"].items():
        p = mine["outputs"][name]
        for key in ("max_abs_err", "max_rel_err", "mean_abs_err"):
            assert p[key] == pytest.approx(o[key], rel=1e-6), key
        for key in ("allclose", "shape_a", "shape_b", "top1_agreement", "top5_agreement"):
            assert p[key] == o[key], key
        assert p["error_histogram"]["counts"] == o["error_histogram"]["counts"]
        row = [panel.outputs_table.item(0, c).text() for c in range(7)]
        assert row[2] == _fmt(o["max_abs_err"]) and row[3] == _fmt(o["max_rel_err"])
    for g in ("a", "b"):
        for key in ("node_count", "op_count", "parameter_count", "serialized_bytes"):
            assert mine["graphs"][g][key] == data["graphs"][g][key], (g, key)
    stats = {panel.stats_table.item(r, 0).text(): panel.stats_table.item(r, 2).text()
             for r in range(panel.stats_table.rowCount())}
    assert stats["Parameters"] == f"{data['graphs']['b']['parameter_count']:,}"


def test_compare_against_an_earlier_step(qtbot, setup):
    doc, stack, view, panel = setup
    apply_inference(stack, doc)
    n = len(doc.applied)
    labels = [panel.reference_combo.itemText(i) for i in range(panel.reference_combo.count())]
    assert labels[0] == "Original (as loaded)" and len(labels) == n
    assert labels[1].startswith(f"After step {n - 1}: ")
    doc.mark_saved()
    _wrong_edit(doc, stack)
    # The step before the edit is the optimized graph (saved): only the edit differs.
    idx = panel.reference_combo.findData(f"after:{n}")
    assert panel.reference_combo.itemText(idx) == f"Last saved (after step {n})"
    panel.reference_combo.setCurrentIndex(idx)
    panel.drift_check.setChecked(True)
    result, error = run(qtbot, panel)
    assert error == ""
    assert result.comparison.a.node_count == result.comparison.b.node_count
    assert not result.comparison.allclose
    assert result.drift.no_counterpart == [] and len(result.drift.edited_consts) == 1
    # Against the step before the edit, the earliest nodes with any error at all (topological
    # order) are the edited Const's consumers, and everything upstream is exact.
    edited = result.drift.edited_consts[0]
    consumers = set(Graph(result.request.current).consumer_names(edited))
    d = result.drift
    first = d.drifting(0.0, 0.0)
    assert first[0] in consumers and set(d.origins(Graph(result.request.current))) <= consumers
    reach = Graph(result.request.current).downstream([edited])
    assert all(e.max_abs == 0 for n, e in d.errors.items() if n not in reach)
    # Undo the edit: identical graphs, exact.
    stack.undo()
    panel.reference_combo.setCurrentIndex(panel.reference_combo.findData(f"after:{n - 1}"))
    result, error = run(qtbot, panel)
    assert result.comparison.allclose and result.comparison.outputs[0].max_abs_err >= 0


def test_errors_show_in_the_panel_and_nothing_crashes(qtbot, setup, tmp_path):
    doc, stack, view, panel = setup
    # Wrong shape from a file.
    np.save(tmp_path / "bad.npy", np.zeros((1, 5, 5, 3), np.float32))
    panel.samples.sample_set.inputs["input"] = InputSource(source="file",
                                                           path=str(tmp_path / "bad.npy"))
    result, error = run(qtbot, panel)
    assert result is None and "expects shape" in error
    assert "Node: input" in panel.message.text()
    assert panel.show_node_btn.isVisible() is False or panel.show_node_btn.isVisibleTo(panel)
    qtbot.mouseClick(panel.show_node_btn, Qt.LeftButton)
    assert view.focused[-1] == "input"
    panel.samples.sample_set.inputs["input"] = InputSource()
    # An op this TensorFlow does not register.
    gd = _copy(doc.graph_def)
    for n in gd.node:
        if n.name == "gap":
            n.op = "NoSuchOp"
    doc.apply_graph_def(gd, "break it")
    result, error = run(qtbot, panel)
    assert result is None and "NoSuchOp" in error and "Node: gap" in panel.message.text()
    # A graph the surgery broke: an input naming a node that is gone.
    gd = _copy(doc.original)
    for n in gd.node:
        if n.name == "gap":
            n.input[0] = "no_such_node"
    doc.apply_graph_def(gd, "break it differently")
    result, error = run(qtbot, panel)
    assert result is None and "Comparison failed" in panel.message.text()
    assert "no_such_node" in error
    # The panel recovers: a good graph runs again.
    doc.apply_graph_def(_copy(doc.original), "restore")
    result, error = run(qtbot, panel)
    assert result is not None and result.comparison.allclose


def test_missing_feed(qtbot, tf2_graph):
    gd, ins, outs = tf2_graph
    doc = Document(_copy(gd), "tf2.pb", ["input"], outs)   # 'training' is left unfed
    panel = ComparePanel(doc)
    qtbot.addWidget(panel)
    panel.runs.setValue(0)
    result, error = run(qtbot, panel)
    assert result is None and "training" in error
    assert "must feed" in error.lower() or "placeholder" in error.lower()


def test_cancel_keeps_the_gui_live(qtbot, setup):
    doc, stack, view, panel = setup
    panel.runs.setValue(100000)
    texts = []
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(panel.run_btn, Qt.LeftButton)
        worker = panel.worker
        worker.signals.progress.connect(lambda f, t: texts.append(t))
        qtbot.waitUntil(lambda: any(t.startswith("timing run") for t in texts), timeout=TIMEOUT)
        qtbot.mouseClick(panel.cancel_btn, Qt.LeftButton)
    assert blocker.args == [None, "cancelled"]
    assert panel.message.text().startswith("Cancelled") and panel.run_btn.isEnabled()
    assert panel.worker is None


def test_sample_sets_from_the_editor(qtbot, setup, tmp_path):
    doc, stack, view, panel = setup
    ed = panel.samples
    assert not ed.isVisibleTo(panel)
    qtbot.mouseClick(panel.samples_toggle, Qt.LeftButton)
    assert ed.isVisibleTo(panel)
    assert "input 4×16×16×3: normal, seed 0" in panel.samples_summary.text()
    assert ed.table.rowCount() == 1 and ed.table.item(0, 2).text() == "4,16,16,3"
    qtbot.mouseClick(ed.add_btn, Qt.LeftButton)
    assert ed.set_combo.count() == 2 and ed.sample_set.name == "samples"
    ed.source.setCurrentText("random")
    ed.distribution.setCurrentText("uniform")
    ed.low.setValue(-1.0)
    ed.high.setValue(-0.5)
    ed.table.item(0, 2).setText("2,16,16,3")
    panel.runs.setValue(0)
    result, _ = run(qtbot, panel)
    x = result.feeds["input"]
    assert x.shape == (2, 16, 16, 3) and x.min() >= -1 and x.max() < -0.5
    assert "input 2×16×16×3: uniform -1..-0.5" in panel.samples_summary.text()
    # An impossible shape is refused in the editor, the previous one kept.
    ed.table.item(0, 2).setText("2,15,16,3")
    assert ed.sample_set.inputs["input"].shape == [2, 16, 16, 3]
    assert "fixes dimension 1" in ed.table.item(0, 2).toolTip()
    # The first set is untouched.
    ed.set_combo.setCurrentIndex(0)
    assert ed.sample_set.name == "default" and ed.table.item(0, 3).text() == "normal, seed 0"
    # Sets are saved and loaded as JSON; a bad file is a message, the sets stay.
    ed.save_library(tmp_path / "sets.json")
    qtbot.mouseClick(ed.add_btn, Qt.LeftButton)
    assert ed.set_combo.count() == 3
    ed.load_library(tmp_path / "sets.json")
    assert [ed.set_combo.itemText(i) for i in range(2)] == ["default", "samples"]
    assert ed.library.get("samples").inputs["input"].distribution == "uniform"
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(SampleError, match="not a sample library"):
        ed.load_library(tmp_path / "bad.json")
    assert ed.set_combo.count() == 2


# --------------------------------------------------------------------------- in the main window
@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, tf1_graph):
    from surgeon_gui.core.model.io import save_graph
    path = tmp_path / "tf1.pb"
    save_graph(tf1_graph[0], path)
    w = make_window(qtbot, tmp_path, monkeypatch, size=(1400, 900))
    with qtbot.waitSignal(w.document_opened, timeout=30000):
        w.open_model(path)
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=30000)
    return w


def test_in_the_main_window_drift_colours_the_view(qtbot, window):
    panel = window.compare_panel
    assert panel.document is window.document and panel.view is window.view
    assert window.compare_dock.objectName() == "CompareDock"
    apply_inference(window.undo_stack, window.document)
    edited = _wrong_edit(window.document, window.undo_stack)
    panel.runs.setValue(3)
    panel.drift_check.setChecked(True)
    # Edit ▸ Run Comparison (Ctrl+R) shows the dock and runs.
    assert panel.run_action in window.edit_menu.actions()
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as blocker:
        panel.run_action.trigger()
    result, error = blocker.args
    assert error == "" and not result.comparison.allclose
    assert window.compare_dock.isVisible()
    texts = [t for t, _ in window.view.legend.entries]
    assert texts[0] == "exact" and "changed constant" in texts
    consumers = set(window.document.graph.consumer_names(edited))
    assert result.origins and set(result.origins) <= consumers
    # Undo the edit: the colours described the edited graph, they leave the view.
    window.undo_stack.undo()
    assert [t for t, _ in window.view.legend.entries] != texts
    assert "run again" in panel.drift_label.text()
    panel.drift_check.setChecked(False)
    panel.drift_check.setChecked(True)      # re-ticking does not paint stale colours
    assert [t for t, _ in window.view.legend.entries] != texts


def test_closing_the_model_empties_the_panel(qtbot, window):
    panel = window.compare_panel
    assert panel.reference_combo.count() == 1 and panel.samples.table.rowCount() == 1
    window.close_model()
    assert window.document is None and panel.document is None
    assert panel.reference_combo.count() == 0 and panel.samples.table.rowCount() == 0
    # nothing to run: the button and Edit ▸ Run Comparison are off; a script is told why
    assert not panel.run_btn.isEnabled() and not panel.run_action.isEnabled()
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as blocker:
        panel.run()
    assert blocker.args == [None, "Comparison failed: no model is open"]


def test_script_mode_fails_clearly(qtbot, window):
    """run_compare_for_script reports a failed run to its caller (surgeon-gui exits 1)."""
    gd = _copy(window.document.graph_def)
    for n in gd.node:
        if n.name == "gap":
            n.op = "NoSuchOp"
    window.document.apply_graph_def(gd, "break it")
    outcome = []
    window.compare_panel.runs.setValue(0)
    with qtbot.waitSignal(window.compare_panel.finished, timeout=TIMEOUT):
        window.run_compare_for_script(outcome.append)
    assert len(outcome) == 1 and "NoSuchOp" in outcome[0]
    assert window.compare_dock.isVisible()
    window.document.apply_graph_def(_copy(window.document.original), "restore")
    outcome.clear()
    with qtbot.waitSignal(window.compare_panel.finished, timeout=TIMEOUT):
        window.run_compare_for_script(outcome.append)
    assert outcome == [None]


@pytest.mark.slow
def test_surgeon_gui_compare_exits_1_with_the_reason(tmp_path, tf1_graph):
    """``surgeon-gui MODEL --compare --screenshot OUT`` on a graph that cannot run."""
    import os
    import subprocess
    import sys
    from surgeon_gui.core.model.io import save_graph
    gd = _copy(tf1_graph[0])
    for n in gd.node:
        if n.name == "gap":
            n.op = "NoSuchOp"
    save_graph(gd, tmp_path / "broken.pb")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TF_CPP_MIN_LOG_LEVEL="2",
               GRAPH_SURGEON_SETTINGS_DIR=str(tmp_path / "settings"))
    out = subprocess.run([sys.executable, "-m", "surgeon_gui.ui.app", str(tmp_path / "broken.pb"),
                          "--compare", "--screenshot", str(tmp_path / "shot.png")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 1
    line = [ln for ln in out.stderr.splitlines() if ln.startswith("surgeon-gui: error:")]
    assert line and "comparison failed: Original: this TensorFlow does not register the op(s) " \
        "NoSuchOp (used by gap)" in line[0]
    assert not (tmp_path / "shot.png").exists()


def test_mobilenet_v2_preset_allclose_with_top5(qtbot):
    """A real Keras application (the bundled frozen MobileNetV2, 96 px): the preset keeps the
    classifier's answers (top-1 and top-5 agree) and shrinks the graph."""
    from pathlib import Path
    from surgeon_gui.core.model.io import load_model
    path = Path(__file__).resolve().parents[1] / "resources" / "examples" / "mobilenet_v2_96.pb"
    doc = Document.from_loaded(load_model(path))
    stack = QUndoStack()
    panel = ComparePanel(doc)
    qtbot.addWidget(panel)
    panel.runs.setValue(3)
    panel.samples.batch.setValue(4)
    apply_inference(stack, doc)
    result, error = run(qtbot, panel)
    assert error == ""
    cmp = result.comparison
    assert cmp.allclose, panel.message.text()
    o = cmp.outputs[0]
    assert o.shape_b[0] == 4 and o.top1_agreement == 1.0 and o.top5_agreement == 1.0
    assert cmp.b.node_count < cmp.a.node_count / 2
    assert panel.outputs_table.item(0, 6).text() == "100%"


def test_drift_cap(qtbot, setup):
    doc, stack, view, panel = setup
    panel.drift_check.setChecked(True)
    assert panel.drift_cap.isEnabled()
    panel.drift_cap.setValue(10)
    panel.runs.setValue(0)
    result, error = run(qtbot, panel)
    assert result.drift.truncated and len(result.drift.errors) <= 10
    assert "(capped)" in panel.drift_label.text()
    # The blocking form (scripts): returns the result, or raises with the panel's message.
    panel.drift_cap.setValue(5000)
    again = panel.run_and_wait(timeout=120)
    assert again is panel.result and not again.drift.truncated
    panel.samples.sample_set.source("input").shape = [1, 16, 16, 4]
    with pytest.raises(GraphError, match="fixes dimension 3 to 3"):
        panel.run_and_wait(timeout=120)


def test_image_sample_from_the_editor(qtbot, setup, tmp_path):
    import tensorflow as tf
    doc, stack, view, panel = setup
    img = np.zeros((40, 30, 3), np.uint8)
    img[..., 2] = 255
    tf.io.write_file(str(tmp_path / "blue.png"), tf.io.encode_png(img))
    ed = panel.samples
    qtbot.mouseClick(panel.samples_toggle, Qt.LeftButton)
    ed.source.setCurrentText("image")
    assert ed.stack.currentIndex() == 2
    ed.image_path.setText(str(tmp_path / "blue.png"))
    ed.image_path.editingFinished.emit()
    ed.scaling.setCurrentText("-1..1")
    assert ed.table.item(0, 3).text() == "image blue.png, -1..1"
    panel.runs.setValue(0)
    result, error = run(qtbot, panel)
    x = result.feeds["input"]
    assert x.shape == (4, 16, 16, 3)
    assert np.allclose(x[..., 2], 1.0, atol=1e-3) and np.allclose(x[..., 0], -1.0, atol=1e-3)
    # A file that is not an image: the panel says so.
    (tmp_path / "junk.png").write_bytes(b"nope")
    ed.image_path.setText(str(tmp_path / "junk.png"))
    ed.image_path.editingFinished.emit()
    result, error = run(qtbot, panel)
    assert result is None and "not an image TensorFlow can decode" in error


def test_gui_stays_live_during_a_run(qtbot, setup):
    """The event loop keeps turning while the comparison runs: a 10 ms timer never waits long."""
    import time
    from PySide6.QtCore import QTimer
    doc, stack, view, panel = setup
    panel.runs.setValue(300)
    panel.drift_check.setChecked(True)
    ticks = []
    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    t0 = time.perf_counter()
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(panel.run_btn, Qt.LeftButton)
    timer.stop()
    took = time.perf_counter() - t0
    assert blocker.args[0] is not None
    gaps = np.diff(ticks)
    assert took > 0.3 and len(ticks) > 10
    print(f"run {took:.2f} s, {len(ticks)} ticks, longest gap {gaps.max() * 1e3:.0f} ms")
    assert gaps.max() < min(1.0, took / 2), f"the GUI thread was blocked for {gaps.max():.2f} s"


def test_drift_text_says_what_is_expected_and_follows_a_rename(qtbot, setup):
    """Preset (folds the batch norms), then a rename: the drift text gives the reasons the
    folded convolutions differ, and the renamed node is compared with its old self."""
    doc, stack, view, panel = setup
    apply_inference(stack, doc)
    push_step(stack, EditCommand.compute(doc, "rename_node",
                                         {"node": "Relu6", "new_name": "act/relu6"}))
    assert "act/relu6" in doc.graph.nodes
    panel.drift_check.setChecked(True)
    result, error = run(qtbot, panel)
    assert error == "" and result.comparison.allclose
    d = result.drift
    assert d.expected and "act/relu6" in d.errors and "act/relu6" not in d.no_counterpart
    text = panel.drift_label.text()
    assert f"{len(d.expected)} expected to differ" in text
    assert "folding the batch norm" in text
    assert "renamed, compared with their old selves" in text and "act/relu6" in text
    assert "The error starts at" not in text
