"""Issue 9.8: the preset ends by saying what training machinery is left, why, and how to remove
it; the GUI's Passes panel shows the same."""
import numpy as np
from support import make_window

from surgeon_gui import cli
from surgeon_gui.core.history.recipe import Recipe, replay
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import read_graph_def, save_graph
from surgeon_gui.core.passes.leftovers import leftovers
from surgeon_gui.core.passes.pipeline import run_pipeline


def _int_phase_net():
    """A Keras-1-style int32 learning phase (0/1) decides two TF2 conds: not a bool flag, so
    training_flags leaves it (an int phase is ambiguous) and the conds stay."""
    import tensorflow as tf
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name="x")
        phase = v1.placeholder(tf.int32, [], name="learning_phase_int")
        training = tf.cast(phase, tf.bool)
        h = tf.cond(training, lambda: tf.nn.dropout(x, rate=0.5), lambda: x * 1.0)
        tf.identity(tf.cond(training, lambda: h * 2.0, lambda: h * 3.0), name="y")
    return g.as_graph_def()


def test_cli_lists_what_is_left_with_reason_and_fix(tmp_path, capsys):
    src = tmp_path / "m.pb"
    save_graph(_int_phase_net(), src)
    code = cli.main(["optimize", str(src), str(tmp_path / "o.pb")])
    out = capsys.readouterr().out
    assert code == 0
    assert "left after the preset:" in out
    line = next(ln for ln in out.splitlines() if "If remain" in ln)
    assert "learning_phase_int is a int32 Placeholder, not a bool flag" in line
    assert "make learning_phase_int a Const" not in line  # inputs get the input edit
    assert "placeholder_to_const" in line
    # The fix it names works: make the phase a constant 0, run the preset again.
    recipe = Recipe.from_dict({
        "format": "graph-surgeon-recipe", "version": 1, "steps": [
            {"edit": "placeholder_to_const", "args": {"node": "learning_phase_int",
                                                      "value": 0}},
            {"pass": "inference"}]})
    g, _ = replay(Graph(read_graph_def(src)), recipe)
    assert not leftovers(g), [x.line() for x in leftovers(g)]
    from surgeon_gui.core.running.runner import run_graph
    x = np.ones((2, 4), np.float32)
    (y,) = run_graph(g.graph_def, {"x": x}, ["y"])
    np.testing.assert_allclose(y, 3 * x)


def test_nothing_left_on_the_tf1_flag_graphs(tf1_flag_v1, tf1_flag_v2):
    for gd, _, _ in (tf1_flag_v1, tf1_flag_v2):
        g, _ = run_pipeline(Graph(gd), ["inference"])
        assert leftovers(g) == []


def test_batch_norm_leftovers_say_why(tf1_flag_v1):
    gd, _, _ = tf1_flag_v1
    left = leftovers(Graph(gd))  # before the preset: conds, dropout and batch norms
    kinds = {x.kind for x in left}
    assert {"control flow", "dropout", "batch norm"} <= kinds
    cond = next(x for x in left if x.kind == "control flow")
    assert "model/Placeholder_1 is a bool Placeholder" in cond.reason
    assert cond.fix == "pass --param training_flags.names=model/Placeholder_1"
    bn = [x for x in left if x.kind == "batch norm"]
    assert any("is_training=True" in x.reason for x in bn)


def test_passes_panel_lists_the_leftovers(qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import Qt
    src = tmp_path / "m.pb"
    save_graph(_int_phase_net(), src)
    w = make_window(qtbot, tmp_path, monkeypatch)
    with qtbot.waitSignal(w.document_opened, timeout=60_000):
        w.open_model(str(src))
    panel = w.surgery.passes
    with qtbot.waitSignal(panel.idle, timeout=120_000):
        panel.select_pass("inference")
        qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
    assert "Left that you may expect gone" in panel.status.text()
    rows = [panel.refused.topLevelItem(i).text(1) for i in range(panel.refused.topLevelItemCount())]
    assert any("If remain" in r and "learning_phase_int" in r for r in rows), rows
