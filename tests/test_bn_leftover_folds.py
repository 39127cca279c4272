"""Issue 9.6: batch norms with no conv right before them: NASNet-style concat → BN folds into
each slice's conv; BN after a ReLU becomes one Mul + Add (or stays, with unfoldable=keep); the
report says per batch norm what happened and why."""
import numpy as np

from surgeon_gui.core.model.examples import _bn_params
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.passes.pipeline import run_pass, run_pipeline
from surgeon_gui.core.running.runner import make_feeds, run_graph


def _concat_bn(seed=0, bias=(True, False, True)):
    """NASNet's adjust block: three convolutions (one depthwise, two with a bias) concatenated
    on channels, then one batch norm, then ReLU."""
    import tensorflow as tf
    v1 = tf.compat.v1
    rng = np.random.default_rng(seed)
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 8, 8, 4], name="input")
        parts = []
        for i, c in enumerate((3, 5, 8)):
            if i == 2:
                w = rng.normal(0, 0.5, [3, 3, 4, 2]).astype(np.float32)
                h = tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME", name=f"adjust_dw{i}")
            else:
                w = rng.normal(0, 0.5, [1, 1, 4, c]).astype(np.float32)
                h = tf.nn.conv2d(x, w, [1, 1, 1, 1], "VALID", name=f"adjust_conv{i}")
            if bias[i]:
                h = tf.nn.bias_add(h, rng.normal(0, 0.3, [int(h.shape[-1])]).astype(np.float32))
            parts.append(h)
        h = tf.concat(parts, axis=3, name="concat")
        p = _bn_params(rng, 16)
        h = v1.nn.fused_batch_norm(h, p["gamma"], p["beta"], p["mean"], p["var"], epsilon=1e-3,
                                   is_training=False, name="adjust_bn")[0]
        tf.nn.relu(h, name="output")
    return g.as_graph_def(), ["input"], ["output"]


def _relu_bn_conv():
    """conv → ReLU → BN → conv (VALID): the BN has nothing before it to fold into."""
    import tensorflow as tf
    v1 = tf.compat.v1
    rng = np.random.default_rng(1)
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 8, 8, 3], name="input")
        h = tf.nn.relu(tf.nn.conv2d(x, rng.normal(0, .5, [3, 3, 3, 6]).astype(np.float32),
                                    [1, 1, 1, 1], "SAME"))
        p = _bn_params(rng, 6)
        h = v1.nn.fused_batch_norm(h, p["gamma"], p["beta"], p["mean"], p["var"], epsilon=1e-3,
                                   is_training=False, name="bn")[0]
        tf.nn.conv2d(h, rng.normal(0, .5, [3, 3, 6, 4]).astype(np.float32), [1, 1, 1, 1],
                     "VALID", name="output")
    return g.as_graph_def(), ["input"], ["output"]


def _relu_bn_pool():
    """conv → ReLU → BN → max pool (musicnn's blocks): nothing to fold into either way."""
    import tensorflow as tf
    v1 = tf.compat.v1
    rng = np.random.default_rng(2)
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 8, 8, 3], name="input")
        h = tf.nn.relu(tf.nn.conv2d(x, rng.normal(0, .5, [3, 3, 3, 6]).astype(np.float32),
                                    [1, 1, 1, 1], "SAME"))
        p = _bn_params(rng, 6)
        h = v1.nn.fused_batch_norm(h, p["gamma"], p["beta"], p["mean"], p["var"], epsilon=1e-3,
                                   is_training=False, name="bn")[0]
        tf.nn.max_pool2d(h, 2, 2, "VALID", name="output")
    return g.as_graph_def(), ["input"], ["output"]


def _same(gd, new, ins, outs):
    feeds = make_feeds(Graph(gd, ins, outs), seed=0, batch=2)
    (a,) = run_graph(gd, feeds, outs)
    (b,) = run_graph(new, feeds, outs)
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)


def test_concat_then_batch_norm_folds_into_each_slice():
    gd, ins, outs = _concat_bn()
    res = run_pass(Graph(gd, ins, outs), "fold_batch_norm")
    (m,) = [m for m in res.report.matches if m.key == "adjust_bn"]
    assert "each of its 3 slices folded" in m.description
    assert not [n for n in res.graph_def.node if n.op.startswith("FusedBatchNorm")]
    _same(gd, res.graph_def, ins, outs)
    opt, _ = run_pipeline(Graph(gd, ins, outs), ["inference"])
    ops = [n.op for n in opt.graph_def.node]
    assert "FusedBatchNormV3" not in ops and "Mul" not in ops and "Identity" not in ops
    _same(gd, opt.graph_def, ins, outs)


def test_batch_norm_after_relu_folds_forward_into_a_valid_conv():
    gd, ins, outs = _relu_bn_conv()
    res = run_pass(Graph(gd, ins, outs), "fold_batch_norm")
    (m,) = res.report.matches
    assert "folded forward into Conv2D output" in m.description and "Relu" in m.description
    ops = [n.op for n in res.graph_def.node]
    assert "FusedBatchNormV3" not in ops and "Mul" not in ops and ops.count("Conv2D") == 2
    _same(gd, res.graph_def, ins, outs)
    assert [n.name for n in res.graph_def.node if n.name == "output"]  # the name stays


def test_batch_norm_after_relu_before_a_pool_becomes_mul_add_or_stays():
    gd, ins, outs = _relu_bn_pool()
    res = run_pass(Graph(gd, ins, outs), "fold_batch_norm")
    (m,) = res.report.matches
    assert "made one Mul + Add" in m.description and "Relu" in m.description
    ops = [n.op for n in res.graph_def.node]
    assert "FusedBatchNormV3" not in ops and ops.count("Mul") == 1
    _same(gd, res.graph_def, ins, outs)
    kept = run_pass(Graph(gd, ins, outs), "fold_batch_norm", {"unfoldable": "keep"})
    # (the pool case: no forward fold either)
    assert not kept.report.matches
    (r,) = kept.report.refused
    assert r.key == "bn" and "Relu" in r.reason


def test_preview_selects_the_mul_add_like_any_match():
    gd, ins, outs = _relu_bn_pool()
    res = run_pass(Graph(gd, ins, outs), "fold_batch_norm", select=set())
    assert [m.applied for m in res.report.matches] == [False]
    assert "FusedBatchNormV3" in [n.op for n in res.graph_def.node]

