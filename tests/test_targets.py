"""Issue 9.10: deployment targets (OpenCV DNN, TensorFlow Lite) in compare and optimize."""
import json

import numpy as np

from surgeon_gui import cli
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import save_graph
from surgeon_gui.core.passes.pipeline import run_pipeline
from surgeon_gui.core.running.runner import make_feeds, run_graph
from surgeon_gui.core.running.targets import check_target


def test_compare_runs_both_graphs_in_each_target(tf1_flag_v1, tmp_path, capsys):
    gd, ins, outs = tf1_flag_v1
    opt, _ = run_pipeline(Graph(gd), ["inference"])
    save_graph(gd, tmp_path / "a.pb")
    save_graph(opt.graph_def, tmp_path / "b.pb")
    code = cli.main(["compare", str(tmp_path / "a.pb"), str(tmp_path / "b.pb"), "--runs", "1",
                     "--target", "opencv", "--target", "tflite", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert code == 0
    for t in ("opencv", "tflite"):
        b = d["targets"][t]["b"]
        assert b["loads"] and b["ran"] and b["matches"], b
        assert b["latency_ms"] > 0 and b["max_abs_err"]["model/probs"] < 1e-4


def test_optimize_check_reports_each_target(tmp_path, capsys):
    out = tmp_path / "o.pb"
    code = cli.main(["optimize", "resources/examples/conv_bias_bn.pbtxt", str(out),
                     "--check", "opencv", "--check", "tflite"])
    text = capsys.readouterr().out
    assert code == 0
    assert "check OpenCV DNN: loads, matches TensorFlow; latency" in text
    assert "check TensorFlow Lite: loads, matches TensorFlow; latency" in text


def _cumsum_net():
    import tensorflow as tf
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 8], name="x")
        tf.identity(tf.math.cumsum(x * 2.0, axis=1), name="y")
    return g.as_graph_def()


def test_a_graph_a_target_cannot_take_says_so():
    gd = _cumsum_net()
    feeds = make_feeds(Graph(gd, ["x"], ["y"]))
    ref = run_graph(gd, feeds, ["y"])
    cv = check_target(gd, "opencv", feeds, ["y"], ref)
    assert not cv.matches and not cv.ran
    assert cv.summary().startswith("OpenCV DNN: loads but does not run: ") and "Cumsum" in \
        cv.summary()
    lite = check_target(gd, "tflite", feeds, ["y"], ref)
    assert lite.loads and lite.matches, lite.summary()
    # A wrong reference is caught: the target's numbers are compared, not assumed.
    wrong = check_target(gd, "tflite", feeds, ["y"], [ref[0] + 1.0])
    assert not wrong.matches and "does NOT match" in wrong.summary()
    np.testing.assert_allclose(wrong.errors["y"][0], 1.0, rtol=1e-5)


def test_gui_comparison_runs_the_chosen_target(qtbot, tf1_flag_v1):
    """The Comparison panel's target choice: both graphs run in TensorFlow Lite too."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QUndoStack

    from surgeon_gui.core.history.document import Document
    from surgeon_gui.ui.commands import apply_passes
    from surgeon_gui.ui.compare_panel import ComparePanel
    gd, ins, outs = tf1_flag_v1
    doc = Document(gd, "flag.pb", None, outs)
    stack = QUndoStack()
    panel = ComparePanel(doc, stack, None)
    qtbot.addWidget(panel)
    apply_passes(stack, doc, ["inference"])
    panel.runs.setValue(2)
    panel.target_combo.setCurrentIndex(panel.target_combo.findData("tflite"))
    with qtbot.waitSignal(panel.finished, timeout=120_000) as blocker:
        qtbot.mouseClick(panel.run_btn, Qt.LeftButton)
    result, error = blocker.args
    assert error is None or error == "", error
    ref, cur = panel.result.targets["tflite"]
    assert cur.loads and cur.matches and cur.latency_ms > 0
    assert panel.target_label.isVisibleTo(panel)
    assert "Current in TensorFlow Lite: loads, matches TensorFlow" in panel.target_label.text()


def test_opencv_is_not_handed_functional_control_flow(tf1_flag_v2):
    """OpenCV 5.0's importer kills the process (SIGSEGV) on this TF2-control-flow graph: it is
    refused with the reason instead, and the process lives on."""
    gd, ins, outs = tf1_flag_v2
    feeds = make_feeds(Graph(gd, ins, outs))
    ref = run_graph(gd, feeds, outs)
    r = check_target(gd, "opencv", feeds, outs, ref)
    assert not r.loads and "functional control flow" in r.error and "If" in r.error


def test_a_graph_that_crashes_opencv_is_reported_not_fatal(tf1_flag_v2):
    """Grappler's result of the TF2-control-flow net (no If left, Switch/Merge lowered) kills an
    OpenCV 5.0 process that imports it: the import is tried in a child first."""
    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.grappler import tf_optimizer

    from surgeon_gui.core.running.opencv_check import opencv_check
    gd, ins, outs = tf1_flag_v2
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
        for o in outs:
            g.add_to_collection("train_op", g.get_operation_by_name(o))
        meta = tf.compat.v1.train.export_meta_graph(graph=g)
    out = tf_optimizer.OptimizeGraph(config_pb2.ConfigProto(), meta, verbose=False,
                                     graph_id=b"t")
    assert not {n.op for n in out.node} & {"If", "StatelessIf"}
    r = opencv_check(out)
    assert not r.loads and "crashes" in r.error, r.error
