"""Issue 9.2: comparisons run on TF1 graphs whose training flag is a bool placeholder of
unknown rank (``tf.compat.v1.placeholder(tf.bool)``)."""
import pytest

from surgeon_gui import cli
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import save_graph
from surgeon_gui.core.passes.pipeline import run_pass, run_pipeline
from surgeon_gui.core.running.compare import compare_graphs
from surgeon_gui.core.running.runner import make_feeds
from surgeon_gui.core.running.samples import SampleError, SampleSet, input_specs


def test_unknown_rank_bool_gets_scalar_inference_value(tf1_flag_v1):
    gd, ins, outs = tf1_flag_v1
    g = Graph(gd, ins, outs)
    assert "shape" not in g.node("model/Placeholder_1").attr or \
        g.node("model/Placeholder_1").attr["shape"].shape.unknown_rank
    feeds = make_feeds(g)
    assert feeds["model/Placeholder_1"].shape == () and feeds["model/Placeholder_1"] == False
    assert feeds["model/Placeholder"].shape == (1, 8, 8, 3)
    # The sample sets of the GUI agree.
    spec = {s.name: s for s in input_specs(g)}
    assert SampleSet().resolved_shape(spec["model/Placeholder_1"]) == []


def test_compare_runs_on_tf1_flag_graph(tf1_flag_v1, tmp_path, capsys):
    gd, ins, outs = tf1_flag_v1
    g = Graph(gd, ins, outs)
    opt, _ = run_pipeline(g, ["inference"])
    assert not {"Switch", "Merge"} & {n.op for n in opt.graph_def.node}
    cmp = compare_graphs(gd, opt.graph_def, None, outs, runs=1, warmup=0)
    assert cmp.allclose and cmp.outputs[0].max_abs_err < 1e-5
    save_graph(gd, tmp_path / "a.pb")
    save_graph(opt.graph_def, tmp_path / "b.pb")
    code = cli.main(["compare", str(tmp_path / "a.pb"), str(tmp_path / "b.pb"), "--runs", "1"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "unknown rank" not in out.err


def _cond_on_flag():
    """y = cond(flag, 2x, 3x): which value A's flag gets decides the comparison."""
    import tensorflow as tf
    v1 = tf.compat.v1
    v1.disable_control_flow_v2()
    try:
        g = tf.Graph()
        with g.as_default():
            x = v1.placeholder(tf.float32, [None, 4], name="x")
            flag = v1.placeholder(tf.bool, name="flag")
            tf.identity(tf.cond(flag, lambda: x * 2.0, lambda: x * 3.0), name="y")
    finally:
        v1.enable_control_flow_v2()
    return g.as_graph_def()


def test_flag_made_constant_in_b_is_fed_to_a():
    gd = _cond_on_flag()
    g = Graph(gd, ["x", "flag"], ["y"])
    b = run_pass(g, "training_flags", {"value": True}).graph_def
    assert next(n for n in b.node if n.name == "flag").op == "Const"
    cmp = compare_graphs(gd, b, None, ["y"], runs=0, warmup=0)
    # Fed False (the default), A would compute 3x and B 2x.
    assert cmp.allclose, cmp.summary_lines()
    assert any("flag" in n and "True" in n for n in cmp.notes), cmp.notes
    assert cmp.feeds["flag"] == ([], "bool")


def test_float_of_unknown_rank_asks_for_its_shape():
    import tensorflow as tf
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, name="x")
        tf.identity(x * 2.0, name="y")
    graph = Graph(g.as_graph_def(), ["x"], ["y"])
    (spec,) = input_specs(graph)
    samples = SampleSet()
    with pytest.raises(SampleError, match="unknown rank: type its shape"):
        samples.resolved_shape(spec)
    samples.source("x").shape = [2, 3]
    assert samples.make_feeds(graph)["x"].shape == (2, 3)


def test_sample_editor_prompts_for_the_shape_of_a_float_of_unknown_rank(qtbot, tf1_flag_v1):
    import tensorflow as tf

    from surgeon_gui.ui.samples_editor import SamplesEditor
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, name="x")
        flag = tf.compat.v1.placeholder(tf.bool, name="flag")
        tf.identity(tf.where(flag, x, x * 2.0), name="y")
    graph = Graph(g.as_graph_def(), ["x", "flag"], ["y"])
    ed = SamplesEditor()
    qtbot.addWidget(ed)
    ed.set_specs(input_specs(graph))
    rows = {ed.table.item(r, 0).text(): r for r in range(ed.table.rowCount())}
    assert ed.table.item(rows["flag"], 2).text() == "scalar"
    prompt = ed.table.item(rows["x"], 2)
    assert prompt.text().startswith("type a shape")
    assert "rank" in prompt.toolTip()
    prompt.setText("2,3")  # the user types the shape
    feeds = ed.sample_set.make_feeds(graph)
    assert feeds["x"].shape == (2, 3) and feeds["flag"].shape == ()
