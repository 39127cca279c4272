"""The numeric passes: fold_constants, fold_batch_norm, strip_unused, merge_duplicates,
sort_execution_order, strip_attributes.

Small graph factories with exact expectations, plus before/after runs on the same feeds for
real model families. Every test first asserts the pass found something to do.
"""
from __future__ import annotations

import numpy as np
import pytest

from surgeon_gui.core import examples
from surgeon_gui.core.graph import Graph, GraphDef, const_value
from surgeon_gui.core.io import serialize
from surgeon_gui.core.runner import make_feeds, run_graph

RTOL, ATOL = 1e-4, 1e-5


# ---------------------------------------------------------------------- helpers
def _pass(pass_id):
    import importlib
    return importlib.import_module(f"surgeon_gui.core.passes.{pass_id}").PASS


def apply(pass_id, gd, inputs=None, outputs=None, select=None, **params):
    """Run a pass and check the universal contract: input untouched, deterministic output."""
    before = serialize(gd)
    graph = Graph(gd, inputs, outputs)
    res = _pass(pass_id).run(graph, select=select, **params)
    assert serialize(gd) == before, "the pass edited its input"
    again = _pass(pass_id).run(Graph(gd, inputs, outputs), select=select, **params)
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


def test_fold_constants_on_mobilenet_v2(mobilenet_v2):
    gd, ins, outs = mobilenet_v2
    res = apply("fold_constants", gd, ins, outs)
    hist = ops(res.graph_def)
    assert len(res.report.applied) > 100
    assert "Rsqrt" not in hist and "Sub" not in hist
    assert hist["Identity"] == 1            # only the named output is left
    g = Graph(res.graph_def)
    # The Keras NoOp waited on every ReadVariableOp: those control edges order nothing.
    assert list(g.node("NoOp").input) == []
    assert_same_outputs(gd, res.graph_def, ins, outs)
