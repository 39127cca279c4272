"""The numeric passes: fold_constants, fold_batch_norm, strip_unused, merge_duplicates,
sort_execution_order, strip_attributes.

Small graph factories with exact expectations, plus before/after runs on the same feeds for
real model families. Every test first asserts the pass found something to do.
"""
from __future__ import annotations

import numpy as np
import pytest

from surgeon_gui.core.model import examples as examples
from surgeon_gui.core.model.graph import Graph, GraphDef, const_value
from surgeon_gui.core.model.io import serialize
from surgeon_gui.core.running.runner import make_feeds, run_graph

RTOL, ATOL = 1e-4, 1e-5


# ---------------------------------------------------------------------- helpers
def _pass(pass_id):
    import importlib
    return importlib.import_module(f"surgeon_gui.core.passes.{pass_id}").PASS


def apply(pass_id, gd, ins=None, outs=None, select=None, **params):
    """Run a pass and check the universal contract: input untouched, deterministic output.
    ``ins``/``outs`` are the graph's named inputs/outputs (protected from removal)."""
    before = serialize(gd)
    graph = Graph(gd, ins, outs)
    res = _pass(pass_id).run(graph, select=select, **params)
    assert serialize(gd) == before, "the pass edited its input"
    again = _pass(pass_id).run(Graph(gd, ins, outs), select=select, **params)
    assert serialize(again.graph_def) == serialize(res.graph_def), "not deterministic"
    if res.report.modified:
        assert Graph(res.graph_def).problems() == []
    return res


def ops(gd):
    return Graph(gd).op_histogram()


def names(gd):
    return [n.name for n in gd.node]


def assert_same_outputs(gd_a, gd_b, inputs, outputs, shapes=None):
    feeds = make_feeds(Graph(gd_a, inputs, outputs), shapes=shapes, batch=2)
    a = run_graph(gd_a, feeds, outputs)
    b = run_graph(gd_b, feeds, outputs)
    for x, y in zip(a, b):
        assert x.shape == y.shape
        np.testing.assert_allclose(y, x, rtol=RTOL, atol=ATOL)
    return a


def build(fn):
    """A GraphDef from a function that builds ops into a fresh tf.Graph (TF1 style)."""
    import tensorflow as tf
    g = tf.Graph()
    with g.as_default():
        fn(tf, tf.compat.v1)
    return g.as_graph_def()


# ---------------------------------------------------------------------- fold_constants
def test_fold_constants_folds_decomposed_batch_norm_math():
    gd, ins, outs = examples.conv_bias_bn(fused=False)
    assert ops(gd).get("Rsqrt") == 1
    res = apply("fold_constants", gd, ins, outs)
    rep = res.report
    assert rep.matches and all(m.applied for m in rep.matches)
    hist = ops(res.graph_def)
    assert "Rsqrt" not in hist
    # What remains is conv -> bias -> x*C1 + C2 -> relu: only Consts feed the affine ops.
    assert {k for k in hist if k != "Const"} == {"Placeholder", "Conv2D", "BiasAdd", "Mul",
                                                "AddV2" if "AddV2" in hist else "Add", "Relu"}
    assert hist["Mul"] == 1
    assert_same_outputs(gd, res.graph_def, ins, outs)


def test_fold_constants_keeps_names_and_folds_weight_reads(tf1_graph):
    gd, ins, outs = tf1_graph
    res = apply("fold_constants", gd, ins, outs)
    out = Graph(res.graph_def)
    # conv1/weights/read (Identity of a Const) becomes a Const under the same name and the
    # now-unread conv1/weights goes.
    assert out.node("conv1/weights/read").op == "Const"
    assert "conv1/weights" not in out.nodes
    assert any(m.key == "conv1/weights/read" for m in res.report.applied)
    assert_same_outputs(gd, res.graph_def, ins, outs)


def test_fold_constants_refuses_results_over_the_size_limit():
    def net(tf, v1):
        x = v1.placeholder(tf.float32, [None, 256], name="x")
        big = tf.fill([256, 256], 0.5, name="big")          # 256 KiB once computed
        small = tf.fill([256], 2.0, name="small")
        tf.identity(tf.matmul(x, big) + small, name="y")
    gd = build(net)
    res = apply("fold_constants", gd, ["x"], ["y"], max_bytes=64 * 1024)
    refused = {r.key: r.reason for r in res.report.refused}
    assert "big" in refused and "max_bytes=65536" in refused["big"]
    assert [m.key for m in res.report.matches] == ["small"]
    g = Graph(res.graph_def)
    assert g.node("big").op == "Fill" and g.node("small").op == "Const"
    # With the default limit both fold.
    res2 = apply("fold_constants", gd, ["x"], ["y"])
    assert {m.key for m in res2.report.applied} == {"big", "small"}
    assert Graph(res2.graph_def).node("big").op == "Const"
    assert_same_outputs(gd, res2.graph_def, ["x"], ["y"])


def test_fold_constants_never_folds_random_or_stateful_ops():
    def net(tf, v1):
        x = v1.placeholder(tf.float32, [None, 4], name="x")
        noise = v1.random_uniform([4], seed=1, name="noise")
        scaled = tf.multiply(noise, 2.0, name="scaled")
        k = tf.add(tf.constant(1.0, name="one"), tf.constant(2.0, name="two"), name="k")
        tf.identity(x * k + scaled, name="y")
    gd = build(net)
    res = apply("fold_constants", gd, ["x"], ["y"])
    g = Graph(res.graph_def)
    assert [m.key for m in res.report.applied] == ["k"]
    assert g.node("k").op == "Const" and float(const_value(g.node("k"))) == 3.0
    assert g.node("noise/RandomUniform").op == "RandomUniform"
    assert g.node("scaled").op == "Mul"
    assert "one" not in g.nodes and "two" not in g.nodes


def test_fold_constants_keeps_control_gates_and_multi_output_ports():
    def net(tf, v1):
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        gate = tf.identity(x, name="gate")
        with tf.control_dependencies([gate]):
            c = tf.constant([1.0, 2.0, 3.0, 4.0], name="c")
        a, b = tf.split(tf.multiply(c, 10.0, name="c10"), 2, name="split")
        tf.identity(x * a + b, name="y")
    gd = build(net)
    res = apply("fold_constants", gd, ["x"], ["y"])
    g = Graph(res.graph_def)
    m = [m for m in res.report.applied if m.key == "split"][0]
    assert m.added == ["split/output_0", "split/output_1"]
    assert "gate" in m.description
    np.testing.assert_array_equal(const_value(g.node("split/output_0")), [10.0, 20.0])
    np.testing.assert_array_equal(const_value(g.node("split/output_1")), [30.0, 40.0])
    # The gate is a non-constant control input of the region, so the folded Consts keep it.
    assert list(g.node("split/output_1").input) == ["^gate"]
    assert "split" not in g.nodes and "c" not in g.nodes
    assert_same_outputs(gd, res.graph_def, ["x"], ["y"])


def test_fold_constants_refuses_to_duplicate_a_shared_weight_and_honours_select():
    def net(tf, v1):
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w = tf.constant(np.arange(9, dtype=np.float32).reshape(3, 3), name="w")
        r = tf.identity(w, name="w/read")
        sq = tf.square(tf.constant(3.0, name="three"), name="nine")
        tf.identity(tf.matmul(x, r) + tf.matmul(x, w) * sq, name="y")
    gd = build(net)
    res = apply("fold_constants", gd, ["x"], ["y"])
    assert [r.key for r in res.report.refused] == ["w/read"]
    assert "twice" in res.report.refused[0].reason
    assert [m.key for m in res.report.matches] == ["nine"]
    preview = apply("fold_constants", gd, ["x"], ["y"], select=set())
    assert [m.key for m in preview.report.matches] == ["nine"]
    assert not preview.report.matches[0].applied and not preview.report.modified
    assert serialize(preview.graph_def) == serialize(gd)


def test_fold_constants_isolates_a_failing_op():
    def net(tf, v1):
        x = v1.placeholder(tf.int32, [None], name="x")
        bad = tf.math.floordiv(tf.constant(7, name="seven"), tf.constant(0, name="zero"),
                               name="bad")
        good = tf.add(tf.constant(2, name="two"), 3, name="good")
        tf.identity(x * good + bad, name="y")
    gd = build(net)
    res = apply("fold_constants", gd, ["x"], ["y"])
    assert [m.key for m in res.report.applied] == ["good"]
    [r] = res.report.refused
    assert r.key == "bad" and r.reason == "TensorFlow cannot compute bad: Integer division by zero"
    assert Graph(res.graph_def).node("bad").op == "FloorDiv"


def test_fold_constants_on_mobilenet_v2(mobilenet_v2):
    gd, ins, outs = mobilenet_v2
    res = apply("fold_constants", gd, ins, outs)
    hist = ops(res.graph_def)
    assert len(res.report.applied) > 100
    assert "Rsqrt" not in hist and "Sub" not in hist
    assert hist["Identity"] == 1            # only the named output is left
    g = Graph(res.graph_def)
    # The Keras NoOp waited on every ReadVariableOp and the output waited on the NoOp: those
    # control edges order nothing, so they and the NoOp are gone.
    assert "NoOp" not in g.nodes and list(g.node(outs[0]).input) == [
        n for n in Graph(gd).node(outs[0]).input if not n.startswith("^")]
    assert any(m.key == f"controls:{outs[0]}" for m in res.report.applied)
    assert_same_outputs(gd, res.graph_def, ins, outs)


# ---------------------------------------------------------------------- fold_batch_norm
BN_LEFTOVERS = ("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "Rsqrt", "Mul", "Sub",
                "BatchNormWithGlobalNormalization", "RealDiv")


@pytest.mark.parametrize("prefold", [False, True], ids=["raw", "after_fold_constants"])
@pytest.mark.parametrize("kw", [
    dict(), dict(fused=False), dict(data_format="NCHW"), dict(data_format="NCHW", fused=False),
    dict(depthwise=True), dict(depthwise=True, data_format="NCHW", fused=False),
    dict(bias=False), dict(bias=False, fused=False, depthwise=True),
], ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_fold_batch_norm_conv_bias_bn(kw, prefold):
    gd, ins, outs = examples.conv_bias_bn(**kw)
    src = apply("fold_constants", gd, ins, outs).graph_def if prefold else gd
    res = apply("fold_batch_norm", src, ins, outs)
    assert len(res.report.matches) == 1 and res.report.matches[0].applied
    assert not res.report.refused
    hist = ops(res.graph_def)
    assert not set(hist) & set(BN_LEFTOVERS), hist
    assert hist["BiasAdd"] == 1 and hist.get("Add", 0) + hist.get("AddV2", 0) == 0
    conv = "depthwise" if kw.get("depthwise") else "Conv2D"
    g = Graph(res.graph_def)
    bias_add = [n for n in res.graph_def.node if n.op == "BiasAdd"][0]
    assert bias_add.input[0] == conv
    assert bias_add.attr["data_format"].s.decode() == kw.get("data_format", "NHWC")
    assert g.node("output").input[0] == bias_add.name
    # NCHW convolutions run on this CPU build (oneDNN); if they did not, the numpy check of
    # the folded weights below would still pin the arithmetic down.
    assert_same_outputs(gd, res.graph_def, ins, outs)


def test_fold_batch_norm_computes_decomposed_operands_in_numpy_without_tensorflow(monkeypatch):
    """A decomposed batch norm whose scale is still computed (Rsqrt(var + eps) * gamma): the
    operands are evaluated in float64 numpy, no TensorFlow session at all."""
    from surgeon_gui.core.model import consteval
    gd, ins, outs = examples.conv_bias_bn(fused=False)
    assert "Rsqrt" in ops(gd)

    def no_session(*args, **kw):
        raise AssertionError("a TensorFlow session was started")
    monkeypatch.setattr(consteval, "_run_graph", no_session)
    res = apply("fold_batch_norm", gd, ins, outs)
    assert len(res.report.applied) == 1 and not res.report.refused
    assert not set(ops(res.graph_def)) & set(BN_LEFTOVERS)
    monkeypatch.undo()
    assert_same_outputs(gd, res.graph_def, ins, outs)


def test_fold_batch_norm_weights_match_numpy_nchw():
    """W*s and (b-mean)*s+beta, computed independently with numpy from the BN constants."""
    gd, ins, outs = examples.conv_bias_bn(data_format="NCHW", fused=True)
    g0 = Graph(gd)
    bn = [n for n in gd.node if n.op.startswith("FusedBatchNorm")][0]
    gamma, beta, mean, var = (const_value(g0.node(t)).astype(np.float64) for t in bn.input[1:5])
    eps = bn.attr["epsilon"].f
    w = const_value(g0.node("w")).astype(np.float64)
    b = const_value(g0.node("b")).astype(np.float64)
    s = gamma / np.sqrt(var + eps)
    res = apply("fold_batch_norm", gd, ins, outs)
    g = Graph(res.graph_def)
    np.testing.assert_allclose(const_value(g.node("w")), w * s, rtol=1e-6, atol=1e-7)
    bias_add = g.node(bn.name)
    assert bias_add.op == "BiasAdd"
    np.testing.assert_allclose(const_value(g.node(bias_add.input[1])), (b - mean) * s + beta,
                               rtol=1e-6, atol=1e-7)


def test_fold_batch_norm_depthwise_channel_order_matches_numpy():
    gd, ins, outs = examples.conv_bias_bn(depthwise=True, bias=False)
    g0 = Graph(gd)
    bn = [n for n in gd.node if n.op.startswith("FusedBatchNorm")][0]
    gamma, _, _, var = (const_value(g0.node(t)).astype(np.float64) for t in bn.input[1:5])
    s = gamma / np.sqrt(var + bn.attr["epsilon"].f)
    w = const_value(g0.node("w")).astype(np.float64)           # [3, 3, C=3, M=2]
    res = apply("fold_batch_norm", gd, ins, outs)
    expect = w * s.reshape(1, 1, 3, 2)                          # output channel c*M + m
    np.testing.assert_allclose(const_value(Graph(res.graph_def).node("w")), expect, rtol=1e-6)


@pytest.mark.parametrize("prefold", [False, True])
def test_fold_batch_norm_matmul_hand_written(prefold):
    gd, ins, outs = examples.matmul_bn()
    src = apply("fold_constants", gd, ins, outs).graph_def if prefold else gd
    res = apply("fold_batch_norm", src, ins, outs)
    assert [m.key for m in res.report.applied] == ["matmul"]
    steps = res.report.matches[0].nodes
    assert steps == ["matmul", "mul_1", "sub", "add_1"]
    hist = ops(res.graph_def)
    assert not set(hist) & set(BN_LEFTOVERS) and "AddV2" not in hist
    assert Graph(res.graph_def).node("add_1").op == "BiasAdd"
    assert_same_outputs(gd, res.graph_def, ins, outs)


def _keras_fold(model):
    gd, ins, outs = model
    folded = apply("fold_constants", gd, ins, outs).graph_def
    res = apply("fold_batch_norm", folded, ins, outs)
    return gd, ins, outs, res


def test_fold_batch_norm_mobilenet_v2(mobilenet_v2):
    gd, ins, outs, res = _keras_fold(mobilenet_v2)
    before, after = ops(gd), ops(res.graph_def)
    n_bn = before["Rsqrt"]
    assert n_bn == 52 and len(res.report.applied) == n_bn and not res.report.refused
    assert "Rsqrt" not in after and "Sub" not in after and "Mul" not in after
    assert before["Mul"] == 3 * n_bn and before["Sub"] == n_bn
    assert after["BiasAdd"] == before["BiasAdd"] + n_bn
    # Only the residual additions are left.
    assert after["AddV2"] == before["AddV2"] - 2 * n_bn
    assert_same_outputs(gd, res.graph_def, ins, outs)


@pytest.mark.slow
def test_fold_batch_norm_resnet50_conv_bias_then_bn(resnet50):
    gd, ins, outs, res = _keras_fold(resnet50)
    before, after = ops(gd), ops(res.graph_def)
    assert len(res.report.applied) == before["Rsqrt"] == 53
    assert not {"Rsqrt", "Sub", "Mul", "FusedBatchNormV3"} & set(after)
    # Keras' conv BiasAdd and the batch norm became one BiasAdd per conv.
    assert after["BiasAdd"] == before["BiasAdd"]
    assert after["AddV2"] == before["AddV2"] - 2 * 53
    assert_same_outputs(gd, res.graph_def, ins, outs)


def test_fold_batch_norm_global_normalization_legacy_op():
    """BatchNormWithGlobalNormalization (removed at GraphDef version 9, still found in old
    frozen graphs): built by hand in a version-8 graph, which TensorFlow still runs."""
    from surgeon_gui.core.model.graph import NodeDef

    def net(tf, v1):
        x = v1.placeholder(tf.float32, [None, 5, 5, 3], name="x")
        rng = np.random.default_rng(0)
        w = tf.constant(rng.normal(size=(3, 3, 3, 4)).astype(np.float32), name="w")
        tf.nn.conv2d(x, w, 1, "SAME", name="conv")
        for i in range(4):
            tf.constant(rng.uniform(0.5, 1.5, 4).astype(np.float32), name=f"p{i}")
        tf.identity(x, name="y")
    gd = build(net)
    bn = NodeDef(name="bn", op="BatchNormWithGlobalNormalization",
                 input=["conv", "p0", "p1", "p2", "p3"])
    bn.attr["T"].type = 1
    bn.attr["variance_epsilon"].f = 1e-3
    bn.attr["scale_after_normalization"].b = True
    gd.node.add().CopyFrom(bn)
    Graph(gd).node("y").input[0] = "bn"
    gd.versions.producer = 8
    res = apply("fold_batch_norm", gd, ["x"], ["y"])
    assert [m.key for m in res.report.applied] == ["conv"]
    assert "BatchNormWithGlobalNormalization" not in ops(res.graph_def)
    assert Graph(res.graph_def).node("bn").op == "BiasAdd"
    assert_same_outputs(gd, res.graph_def, ["x"], ["y"])


def test_fold_batch_norm_matmul_transpose_b_with_bias():
    def net(tf, v1):
        rng = np.random.default_rng(4)
        x = v1.placeholder(tf.float32, [None, 5], name="x")
        w = tf.constant(rng.normal(size=(3, 5)).astype(np.float32), name="w")   # [out, in]
        h = tf.matmul(x, w, transpose_b=True, name="fc")
        h = tf.nn.bias_add(h, tf.constant([0.1, -0.2, 0.3], name="b"), name="fc_bias")
        gamma = tf.constant([1.5, 0.5, 2.0], name="gamma")
        h = tf.add(tf.multiply(h, gamma, name="scale"), tf.constant([1.0, 2.0, 3.0]),
                   name="shift")
        tf.identity(h, name="y")
    gd = build(net)
    res = apply("fold_batch_norm", gd, ["x"], ["y"])
    [m] = res.report.applied
    assert m.nodes == ["fc", "fc_bias", "scale", "shift"]
    w = const_value(Graph(res.graph_def).node("w"))
    np.testing.assert_allclose(w, const_value(Graph(gd).node("w")) * [[1.5], [0.5], [2.0]],
                               rtol=1e-6)
    assert_same_outputs(gd, res.graph_def, ["x"], ["y"])


def test_fold_batch_norm_moves_control_readers_of_removed_steps():
    def net(tf, v1):
        x = v1.placeholder(tf.float32, [None, 6, 6, 3], name="x")
        h, _ = _conv_graph(tf, v1, x, "conv")
        h = tf.nn.bias_add(h, tf.constant([0.1, 0.2, 0.3, 0.4]), name="bias")
        y = tf.add(tf.multiply(h, tf.constant([2.0, 1.0, 0.5, 3.0]), name="scale"),
                   tf.constant(1.0), name="shift")
        with tf.control_dependencies([h]):                  # waits on the BiasAdd
            side = tf.identity(x, name="side")
        tf.identity(tf.reduce_sum(y) + tf.reduce_sum(side), name="y")
    gd = build(net)
    res = apply("fold_batch_norm", gd, ["x"], ["y"])
    [m] = res.report.applied
    assert {"bias", "scale"} <= set(m.removed) and "shift" not in m.removed
    g = Graph(res.graph_def)
    assert list(g.node("side").input) == ["x", "^shift"]
    assert g.node("shift").op == "BiasAdd"
    assert_same_outputs(gd, res.graph_def, ["x"], ["y"])


def _conv_graph(tf, v1, x, name="conv", w=None):
    w = tf.constant(np.random.default_rng(1).normal(0, 0.5, [3, 3, 3, 4]).astype(np.float32),
                    name=f"{name}_w") if w is None else w
    return tf.nn.conv2d(x, w, 1, "SAME", name=name), w


def _fbn(tf, v1, h, name, is_training=False):
    c = 4
    rng = np.random.default_rng(2)
    p = [rng.uniform(0.5, 1.5, c).astype(np.float32) for _ in range(4)]
    if is_training:
        return v1.nn.fused_batch_norm(h, p[0], p[1], epsilon=1e-3, is_training=True,
                                      name=name)[0]
    return v1.nn.fused_batch_norm(h, p[0], p[1], p[2], p[3], epsilon=1e-3, is_training=False,
                                  name=name)[0]


def _shared_weights_graph():
    def net(tf, v1):
        x = v1.placeholder(tf.float32, [None, 6, 6, 3], name="x")
        h1, w = _conv_graph(tf, v1, x, "conv1")
        h2, _ = _conv_graph(tf, v1, x, "conv2", w=w)        # the same weights
        tf.identity(_fbn(tf, v1, h1, "bn1") + h2, name="y")
    return build(net)


def test_fold_batch_norm_shared_weights_refused_on_request():
    gd = _shared_weights_graph()
    res = apply("fold_batch_norm", gd, ["x"], ["y"], shared_weights="refuse")
    assert not res.report.matches and not res.report.modified
    [r] = res.report.refused
    assert r.key == "conv1" and "also read by conv2" in r.reason


def test_fold_batch_norm_shared_weights_copied_by_default():
    gd = _shared_weights_graph()
    res = apply("fold_batch_norm", gd, ["x"], ["y"])
    [m] = res.report.applied
    assert m.key == "conv1" and "shared" in m.description
    assert m.added == ["conv1/folded_weights", "bn1/bias"]
    g = Graph(res.graph_def)
    assert g.node("conv1").input[1] == "conv1/folded_weights"
    assert g.node("conv2").input[1] == "conv1_w"                # untouched for conv2
    np.testing.assert_array_equal(const_value(g.node("conv1_w")),
                                  const_value(Graph(gd).node("conv1_w")))
    assert_same_outputs(gd, res.graph_def, ["x"], ["y"])


def test_fold_batch_norm_refuses_training_mode_and_shared_intermediate():
    def net(tf, v1):
        x = v1.placeholder(tf.float32, [None, 6, 6, 3], name="x")
        h1, _ = _conv_graph(tf, v1, x, "conv1")
        a = _fbn(tf, v1, h1, "bn_train", is_training=True)
        h2, _ = _conv_graph(tf, v1, x, "conv2")
        b = _fbn(tf, v1, h2, "bn2") + tf.nn.relu(h2, name="side")   # conv2 also feeds side
        h3, _ = _conv_graph(tf, v1, x, "conv3")
        c = _fbn(tf, v1, tf.nn.relu(h3, name="act3"), "bn_after_relu")
        tf.identity(a + b + c, name="y")
    gd = build(net)
    res = apply("fold_batch_norm", gd, ["x"], ["y"], unfoldable="keep")
    assert not res.report.matches and not res.report.modified
    reasons = {r.key: r.reason for r in res.report.refused}
    assert "is_training=True" in reasons["conv1"]
    assert "also read by side" in reasons["conv2"]
    assert "comes from Relu act3" in reasons["bn_after_relu"]
    # By default the batch norm after the ReLU becomes one Mul + Add (issue 9.6); the others
    # are still refused.
    res = apply("fold_batch_norm", gd, ["x"], ["y"])
    assert [m.key for m in res.report.applied] == ["bn_after_relu"]
    assert_same_outputs(gd, res.graph_def, ["x"], ["y"])


def test_fold_batch_norm_refuses_non_per_channel_operand_and_preview_changes_nothing():
    def net(tf, v1):
        x = v1.placeholder(tf.float32, [None, 6, 6, 3], name="x")
        h, _ = _conv_graph(tf, v1, x, "conv1")
        spatial = tf.constant(np.linspace(0.5, 1.5, 6 * 6 * 4).reshape(6, 6, 4)
                              .astype(np.float32), name="spatial")
        y1 = tf.multiply(h, spatial, name="scale_map")
        h2, _ = _conv_graph(tf, v1, x, "conv2")
        y2 = _fbn(tf, v1, h2, "bn2")
        tf.identity(y1 + y2, name="y")
    gd = build(net)
    res = apply("fold_batch_norm", gd, ["x"], ["y"])
    reasons = {r.key: r.reason for r in res.report.refused}
    assert "not per-output-channel" in reasons["conv1"]
    assert [m.key for m in res.report.applied] == ["conv2"]
    preview = apply("fold_batch_norm", gd, ["x"], ["y"], select=set())
    assert [m.key for m in preview.report.matches] == ["conv2"]
    assert not preview.report.modified and serialize(preview.graph_def) == serialize(gd)
    assert_same_outputs(gd, res.graph_def, ["x"], ["y"])


# ---------------------------------------------------------------------- strip_unused
def _branchy_graph():
    def net(tf, v1):
        raw = v1.placeholder(tf.uint8, [None, 4, 4, 3], name="raw")
        scaled = tf.multiply(tf.cast(raw, tf.float32, name="to_float"), 1 / 255.0, name="scaled")
        v1.placeholder(tf.float32, [2], name="unused_input")
        h = tf.reduce_mean(scaled, axis=[1, 2], name="pool")
        tf.nn.softmax(h, name="probs")
        tf.identity(h * 2.0, name="debug_out")
        tf.constant(1.0, name="orphan")
    return build(net)


def test_strip_unused_keeps_only_what_the_output_needs():
    gd = _branchy_graph()
    res = apply("strip_unused", gd, outputs="probs")
    assert names(res.graph_def) == ["raw", "to_float", "scaled/y", "scaled",
                                    "pool/reduction_indices", "pool", "probs"]
    [m] = res.report.matches
    assert m.key == "unused_nodes"
    assert m.removed == ["unused_input", "mul/y", "mul", "debug_out", "orphan"]
    assert_same_outputs(gd, res.graph_def, ["raw"], ["probs"])


def test_strip_unused_makes_an_inner_tensor_a_placeholder():
    gd = _branchy_graph()
    res = apply("strip_unused", gd, inputs="scaled", outputs="probs")
    assert names(res.graph_def) == ["scaled", "pool/reduction_indices", "pool", "probs"]
    ph = Graph(res.graph_def).node("scaled")
    assert ph.op == "Placeholder" and ph.attr["dtype"].type == 1          # float32, from T
    assert res.report.matches[0].key == "input:scaled"
    # Explicit dtype and shape win over what the node says.
    res2 = apply("strip_unused", gd, inputs="scaled", outputs="probs", input_dtype="float64",
                 input_shape="1,4,?,3")
    ph2 = Graph(res2.graph_def).node("scaled")
    assert ph2.attr["dtype"].type == 2
    assert [d.size for d in ph2.attr["shape"].shape.dim] == [1, 4, -1, 3]
    x = np.random.default_rng(0).random((1, 4, 4, 3)).astype(np.float32)
    full = run_graph(gd, {"raw": (x * 255).astype(np.uint8)}, ["probs", "scaled"])
    cut = run_graph(res.graph_def, {"scaled": full[1]}, ["probs"])
    np.testing.assert_allclose(cut[0], full[0], rtol=RTOL, atol=ATOL)


def test_strip_unused_never_removes_named_nodes_and_reports_bad_names():
    from surgeon_gui.core.model.graph import GraphError
    gd = _branchy_graph()
    res = apply("strip_unused", gd, ["raw"], ["probs", "debug_out"], outputs="probs")
    assert "debug_out" in names(res.graph_def)             # a named output stays
    assert "orphan" not in names(res.graph_def)
    with pytest.raises(GraphError, match="no node named 'nope'"):
        _pass("strip_unused").run(Graph(gd), outputs="nope")
    with pytest.raises(ValueError, match="not a dimension"):
        _pass("strip_unused").run(Graph(gd), inputs="scaled", outputs="probs",
                                  input_shape="1,x")


def test_strip_unused_drops_unused_library_functions(tf2_graph):
    gd, ins, outs = tf2_graph
    extra = GraphDef()
    extra.CopyFrom(gd)
    dead = extra.library.function.add()
    dead.CopyFrom(extra.library.function[0])
    dead.signature.name = "never_called_fn"
    res = apply("strip_unused", extra, ins, outs)
    assert "never_called_fn" in res.report.functions and res.report.modified
    kept = {f.signature.name for f in res.graph_def.library.function}
    assert kept == {f.signature.name for f in gd.library.function}
    assert_same_outputs(gd, res.graph_def, ins, outs)


# ---------------------------------------------------------------------- merge_duplicates
def _duplicates_graph():
    from surgeon_gui.core.model.graph import make_const

    def net(tf, v1):
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        v1.placeholder(tf.float32, [None, 3], name="x_twin")       # alike, but another input
        c1 = tf.constant([1.0, 2.0, 3.0], name="c1")
        c2 = tf.constant([1.0, 2.0, 3.0], name="c2")
        a1 = tf.add(x, c1, name="a1")
        a2 = tf.add(x, c2, name="a2")
        s1 = tf.sigmoid(a1, name="s1")
        s2 = tf.sigmoid(a2, name="s2")
        swapped = tf.add(c1, x, name="swapped")                     # input order matters
        shape = tf.constant([3], name="shape")
        n1 = tf.raw_ops.RandomUniform(shape=shape, dtype=tf.float32, seed=3, seed2=4, name="n1")
        n2 = tf.raw_ops.RandomUniform(shape=shape, dtype=tf.float32, seed=3, seed2=4, name="n2")
        tf.identity(s1 + s2 + swapped + n1 + n2, name="y")
    gd = build(net)
    # The same values encoded differently (float_val instead of tensor_content) still match.
    c3 = make_const("c3", np.array([1.0, 2.0, 3.0], np.float32))
    c3.attr["value"].tensor.ClearField("tensor_content")
    c3.attr["value"].tensor.float_val.extend([1.0, 2.0, 3.0])
    gd.node.add().CopyFrom(c3)
    y2 = gd.node.add()
    y2.CopyFrom(Graph(gd).node("a1"))
    y2.name, y2.input[1] = "a3", "c3"
    out = gd.node.add()
    out.CopyFrom(Graph(gd).node("y"))
    out.name = "z"
    del out.input[:]
    out.op = "AddN"
    out.input.extend(["y", "a3"])
    out.attr["N"].i = 2
    return gd


def test_merge_duplicates_to_a_fixed_point():
    gd = _duplicates_graph()
    res = apply("merge_duplicates", gd, ["x"], ["z"])
    assert [(m.key, m.nodes[0]) for m in res.report.applied] == [
        ("c2", "c1"), ("a2", "a1"), ("s2", "s1"), ("c3", "c1"), ("a3", "a1")]
    kept = names(res.graph_def)
    assert {"c2", "a2", "s2", "c3", "a3"}.isdisjoint(kept)
    for n in ("x", "x_twin", "swapped", "c1", "a1", "s1"):
        assert n in kept
    # Random ops are never merged.
    assert sum(1 for n in res.graph_def.node if n.op == "RandomUniform") == 2
    g = Graph(res.graph_def)
    assert list(g.node("z").input) == ["y", "a1"]
    feeds = {"x": np.ones((2, 3), np.float32), "x_twin": np.zeros((2, 3), np.float32)}
    a = run_graph(gd, feeds, ["z", "a3", "s2"])
    b = run_graph(res.graph_def, feeds, ["z", "a1", "s1"])
    # z holds random draws (the same seeds in both graphs); the deterministic parts agree.
    np.testing.assert_allclose(b[1], a[1])
    np.testing.assert_allclose(b[2], a[2])


def test_merge_duplicates_respects_selection_dependencies_and_protected_names():
    gd = _duplicates_graph()
    res = apply("merge_duplicates", gd, ["x"], ["z"], select={"a2"})
    # a2 only duplicates a1 once c2 is merged, which was not selected.
    assert not res.report.modified
    assert [r.key for r in res.report.refused] == ["a2"] and "c2" in res.report.refused[0].reason
    res2 = apply("merge_duplicates", gd, ["x"], ["z"], select={"c2", "a2"})
    assert sorted(res2.report.removed) == ["a2", "c2"]
    # Named outputs are never merged away.
    res3 = apply("merge_duplicates", gd, ["x"], ["s1", "s2", "z"])
    assert "s2" in names(res3.graph_def) and "a2" not in names(res3.graph_def)


# ---------------------------------------------------------------------- sort_execution_order
def _chain_graph():
    def net(tf, v1):
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        a = tf.add(x, tf.constant(1.0, name="one"), name="a")
        b = tf.multiply(a, tf.constant(2.0, name="two"), name="b")
        tf.nn.relu(b, name="y")
    return build(net)


def test_sort_execution_order_exact_order_and_moved_count():
    gd = _chain_graph()
    assert names(gd) == ["x", "one", "a", "two", "b", "y"]
    shuffled = GraphDef()
    shuffled.CopyFrom(gd)
    del shuffled.node[:]
    order = ["y", "b", "x", "two", "a", "one"]
    for n in order:
        shuffled.node.add().CopyFrom(Graph(gd).node(n))
    res = apply("sort_execution_order", shuffled, ["x"], ["y"])
    [m] = res.report.applied
    assert names(res.graph_def) == ["x", "two", "one", "a", "b", "y"]
    # x, two, a stay in relative order; one, b, y had to move.
    assert m.description.startswith("3 of 6 node(s) moved")
    assert sorted(m.nodes) == ["b", "one", "y"] and res.report.changed == {"b", "one", "y"}
    assert_same_outputs(gd, res.graph_def, ["x"], ["y"])
    again = apply("sort_execution_order", res.graph_def, ["x"], ["y"])
    assert not again.report.matches and not again.report.modified


def test_sort_execution_order_refuses_a_cycle():
    gd = _chain_graph()
    cyc = GraphDef()
    cyc.CopyFrom(gd)
    Graph(cyc).node("a").input[0] = "b"
    res = apply("sort_execution_order", cyc)
    assert not res.report.matches and "cycle" in res.report.refused[0].reason


# ---------------------------------------------------------------------- strip_attributes
def _placed_graph():
    def net(tf, v1):
        with tf.device("/device:CPU:0"):
            x = v1.placeholder(tf.float32, [None, 2], name="x")
            w = tf.constant([[1.0, 2.0], [3.0, 4.0]], name="w")
        with v1.colocate_with(w):
            r = tf.identity(w, name="w_read")
        tf.matmul(x, r, name="y")
    import tensorflow as tf
    g = tf.Graph()
    with g.as_default():
        net(tf, tf.compat.v1)
    return g.as_graph_def(add_shapes=True)


def test_strip_attributes_devices_and_colocation_by_default():
    gd = _placed_graph()
    g0 = Graph(gd)
    assert g0.node("x").device and "_class" in g0.node("w_read").attr
    res = apply("strip_attributes", gd, ["x"], ["y"])
    assert [m.key for m in res.report.applied] == ["devices", "colocation"]
    assert res.report.applied[0].nodes == ["x", "w", "w_read"]   # colocation copies devices
    assert res.report.changed == {"x", "w", "w_read"}
    for n in res.graph_def.node:
        assert n.device == "" and "_class" not in n.attr
        assert "_output_shapes" in n.attr                     # kept unless asked
    assert_same_outputs(gd, res.graph_def, ["x"], ["y"])


def test_strip_attributes_output_shapes_on_request():
    gd = _placed_graph()
    res = apply("strip_attributes", gd, ["x"], ["y"], output_shapes=True, devices=False)
    assert [m.key for m in res.report.applied] == ["colocation", "output_shapes"]
    g = Graph(res.graph_def)
    assert g.node("x").device == "/device:CPU:0"
    assert sorted(g.node("w_read").attr) == ["T"]
    assert sorted(g.node("y").attr) == ["T", "grad_a", "grad_b", "transpose_a", "transpose_b"]
    preview = apply("strip_attributes", gd, ["x"], ["y"], select=set(), output_shapes=True)
    assert len(preview.report.matches) == 3 and not preview.report.modified


# ---------------------------------------------------------------------- the pipeline + OpenCV
@pytest.mark.slow
@pytest.mark.parametrize("model", ["mobilenet_v2", "resnet50"])
def test_pipeline_result_loads_in_opencv(model, request):
    import cv2
    from surgeon_gui.core.passes.pipeline import run_pipeline
    gd, ins, outs = request.getfixturevalue(model)
    graph, steps = run_pipeline(Graph(gd, ins, outs), ["fold_constants", "fold_batch_norm",
                                                       "strip_unused", "sort_execution_order"])
    assert [s.pass_id for s in steps][:2] == ["fold_constants", "fold_batch_norm"]
    out = graph.graph_def
    hist = ops(out)
    assert not {"Rsqrt", "Mul", "Sub", "NoOp"} & set(hist) and hist["Identity"] == 1
    assert len(out.node) < len(gd.node) // 3
    expected = assert_same_outputs(gd, out, ins, outs)
    net = cv2.dnn.readNetFromTensorflow(np.frombuffer(serialize(out), np.uint8))
    feeds = make_feeds(Graph(gd, ins, outs), batch=2)
    x = feeds[ins[0]]
    net.setInput(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))   # OpenCV takes NCHW blobs
    got = net.forward()
    np.testing.assert_allclose(got.reshape(expected[0].shape), expected[0], rtol=1e-3, atol=1e-5)
