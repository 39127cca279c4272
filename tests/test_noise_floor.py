"""Issue 9.9: each comparison measures A's own rounding noise and judges the error against it."""
import json

import numpy as np

from surgeon_gui import cli
from surgeon_gui.core.model.graph import Graph, GraphDef, const_value, make_const
from surgeon_gui.core.model.io import save_graph
from surgeon_gui.core.passes.pipeline import run_pipeline
from surgeon_gui.core.running.compare import compare_graphs, perturb_weights


def chaotic_net(depth=40, width=64, gain=4.0, seed=0) -> GraphDef:
    """A deep tanh net with large random weights: past the edge of chaos, so a rounding-sized
    change of one weight moves the output by order one (as some random-weight nets do)."""
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    g = tf.Graph()
    with g.as_default():
        h = x = tf.compat.v1.placeholder(tf.float32, [None, width], name="x")
        for i in range(depth):
            w = rng.normal(0, gain / np.sqrt(width), [width, width]).astype(np.float32)
            h = tf.tanh(tf.matmul(h, tf.constant(w, name=f"w{i}")))
        tf.identity(h, name="y")
    del x
    return g.as_graph_def()


def test_perturb_weights_moves_tensors_by_ulps_only():
    gd = chaotic_net(depth=2)
    moved_gd, moved = perturb_weights(gd)
    assert moved == 2
    for a, b in zip(gd.node, moved_gd.node):
        if a.op == "Const" and a.name.startswith("w"):
            va, vb = const_value(a), const_value(b)
            ulps = np.abs(vb.astype(np.float64) - va) / np.spacing(np.abs(va))
            assert 0 < ulps.max() <= 4.0 + 1e-6 and not np.array_equal(va, vb)


def test_chaotic_model_cannot_tell_a_fold_from_a_bug(tmp_path, capsys):
    gd = chaotic_net()
    # B is A exactly: even so, A's own rounding noise is of order one.
    cmp = compare_graphs(gd, gd, None, ["y"], runs=0, warmup=0)
    assert cmp.noise["y"] > 0.1, cmp.noise
    assert "cannot tell a fold from a bug" in cmp.noise_verdict(cmp.outputs[0])
    save_graph(gd, tmp_path / "a.pb")
    code = cli.main(["compare", str(tmp_path / "a.pb"), str(tmp_path / "a.pb"), "--runs", "0",
                     "--json"])
    d = json.loads(capsys.readouterr().out)
    assert code == 0 and d["outputs"]["y"]["noise_rel"] > 0.1
    assert "cannot tell" in d["outputs"]["y"]["noise_verdict"]


def test_fold_is_consistent_and_a_real_bug_is_not(tf1_graph):
    gd, ins, outs = tf1_graph
    opt, _ = run_pipeline(Graph(gd, ins, outs), ["inference"])
    cmp = compare_graphs(gd, opt.graph_def, None, outs, runs=0, warmup=0)
    noise = cmp.noise[outs[0]]
    assert 0 < noise < 1e-4
    assert cmp.noise_verdict(cmp.outputs[0]) == "consistent"
    assert "A's own rounding noise" in "\n".join(cmp.summary_lines())
    # A bug: one folded weight off by 1e-3 relative. The error is well above the noise floor.
    bad = GraphDef()
    bad.CopyFrom(opt.graph_def)
    i, node = max(((i, n) for i, n in enumerate(bad.node) if n.op == "Const"),
                  key=lambda t: t[1].ByteSize())
    v = const_value(node)
    bad.node[i].CopyFrom(make_const(node.name, (v * (1 + 1e-3)).astype(v.dtype)))
    cmp_bad = compare_graphs(gd, bad, None, outs, runs=0, warmup=0)
    assert cmp_bad.noise_verdict(cmp_bad.outputs[0]).startswith("beyond rounding noise")


def test_comparison_table_shows_the_noise_floor(qtbot, tf1_graph):
    from surgeon_gui.ui.compare_results import OutputsTable
    gd, ins, outs = tf1_graph
    opt, _ = run_pipeline(Graph(gd, ins, outs), ["inference"])
    cmp = compare_graphs(gd, opt.graph_def, None, outs, runs=0, warmup=0)
    table = OutputsTable()
    qtbot.addWidget(table)
    table.show_comparison(cmp)
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    col = headers.index("Error vs noise")
    assert table.item(0, col).text() == "consistent"
    assert float(table.item(0, headers.index("A's own noise")).text()) == \
        float(f"{cmp.noise[outs[0]]:.3g}")
