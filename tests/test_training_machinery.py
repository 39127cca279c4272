"""Issue 9.1 and 9.4: a training flag is found by its role, and inlining TF2 conds leaves no
gradient plumbing (nor makes it an output)."""
import numpy as np

from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.ops import is_random
from surgeon_gui.core.passes.pipeline import run_pass, run_pipeline
from surgeon_gui.core.running.compare import compare_graphs
from surgeon_gui.core.running.runner import run_graph

TRAINING_OPS = {"If", "StatelessIf", "Switch", "Merge", "OptionalFromValue", "OptionalNone"}


def test_flag_of_unknown_rank_found_through_squeeze(tf1_flag_v2):
    gd, ins, outs = tf1_flag_v2
    ops = {n.op for n in gd.node}
    assert {"If", "StatelessIf", "Squeeze"} <= ops  # the predicate reaches the If squeezed
    rep = run_pass(Graph(gd, ins, outs), "training_flags").report
    assert [m.key for m in rep.matches] == ["model/Placeholder_1"]
    assert "decides the cond" in rep.matches[0].description


def test_preset_leaves_no_training_machinery_on_tf2_flag_graph(tf1_flag_v2, tf1_flag_v1):
    for gd, ins, outs in (tf1_flag_v2, tf1_flag_v1):
        g = Graph(gd)  # inputs and outputs detected, as `surgeon optimize` does
        opt, steps = run_pipeline(g, ["inference"])
        left = [n for n in opt.graph_def.node if n.op in TRAINING_OPS or is_random(n.op)
                or n.op.startswith("FusedBatchNorm")]
        assert not left, [(n.name, n.op) for n in left]
        assert opt.outputs == ["model/probs"]
        cmp = compare_graphs(gd, opt.graph_def, None, outs, runs=0, warmup=0)
        assert cmp.allclose, cmp.summary_lines()


def test_inlining_drops_gradient_optionals_and_promotes_nothing(tf1_flag_v2):
    gd, ins, outs = tf1_flag_v2
    flagged = run_pass(Graph(gd), "training_flags").graph_def
    # Each TF2 cond also returns its branch's intermediates as Optionals, for the gradient.
    inlined = run_pass(Graph(flagged), "inline_functions").graph_def
    assert not [n.name for n in inlined.node if n.op in ("OptionalFromValue", "OptionalNone")]
    assert Graph(inlined).outputs == ["model/probs"]
    x = np.random.default_rng(0).standard_normal([2, 8, 8, 3]).astype(np.float32)
    (want,) = run_graph(gd, {"model/Placeholder": x, "model/Placeholder_1": False},
                        ["model/probs"])
    (got,) = run_graph(inlined, {"model/Placeholder": x}, ["model/probs"])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _negated_cast_flag():
    """cond(logical_not(reshape(cast(flag)))) in TF2 control flow, flag of unknown rank."""
    import tensorflow as tf
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name="x")
        flag = v1.placeholder(tf.bool, name="Placeholder_1")
        inference = tf.logical_not(tf.reshape(tf.cast(tf.cast(flag, tf.int32), tf.bool), []))
        tf.identity(tf.cond(inference, lambda: x * 3.0, lambda: tf.nn.dropout(x, rate=0.5)),
                    name="y")
    return g.as_graph_def()


def test_flag_found_through_cast_logical_not_and_reshape():
    gd = _negated_cast_flag()
    opt, steps = run_pipeline(Graph(gd), ["inference"])
    assert "training_flags" in [s.pass_id for s in steps]
    assert not [n for n in opt.graph_def.node if n.op in TRAINING_OPS or is_random(n.op)]
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    (got,) = run_graph(opt.graph_def, {"x": x}, ["y"])
    np.testing.assert_allclose(got, 3 * x)
