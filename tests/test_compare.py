"""Before/after comparison: error measures against hand-computed values, verdicts, latency."""
import json

import numpy as np
import pytest

from surgeon_gui.core.running.compare import HIST_EDGES, compare_graphs, compare_outputs
from surgeon_gui.core.model.graph import Graph, GraphDef, GraphError, const_value, make_const
from surgeon_gui.core.running.runner import RunError, make_feeds, parse_shape, run_graph


@pytest.fixture(scope="module")
def conv():
    from surgeon_gui.core.model.examples import conv_bias_bn
    return conv_bias_bn()


def _perturb_weights(gd: GraphDef, name: str, delta: float) -> GraphDef:
    out = GraphDef()
    out.CopyFrom(gd)
    for i, n in enumerate(out.node):
        if n.name == name:
            out.node[i].CopyFrom(make_const(name, const_value(n) + delta))
    return out


# ---------------------------------------------------------------------- output measures
def test_errors_match_their_definitions():
    a = np.array([[1.0, -2.0, 0.0, 1e-7]], np.float32)
    b = np.array([[1.0005, -2.0, 3e-6, 1e-7]], np.float32)
    c = compare_outputs("y", a, b, rtol=1e-4, atol=1e-5)
    diff = np.abs(b.astype(np.float64) - a)
    assert c.max_abs_err == pytest.approx(diff.max())
    # rel = |b-a| / max(|a|, atol): the zero in a is floored at atol (3e-6/1e-5 = 0.3).
    assert c.max_rel_err == pytest.approx(max(diff[0, 0] / 1.0, 3e-6 / 1e-5), rel=1e-5)
    assert c.shape_a == [1, 4] and c.dtype == "float32"
    assert not c.allclose  # 5e-4 > 1e-5 + 1e-4 * 1
    assert compare_outputs("y", a, b, rtol=1e-2, atol=1e-5).allclose
    assert c.histogram.sum() == a.size
    assert c.histogram[0] == 2  # two exact zeros
    # 5e-4 lies in the (1e-4, 1e-3] decade, 3e-6 in (1e-6, 1e-5].
    assert c.histogram[HIST_EDGES.index(1e-4)] == 1
    assert c.histogram[HIST_EDGES.index(1e-6)] == 1
    tiny_and_huge = compare_outputs("y", np.zeros(3), np.array([1e-12, 5.0, 0.0])).histogram
    assert tiny_and_huge[1] == 1 and tiny_and_huge[-1] == 1 and tiny_and_huge[0] == 1


def test_shape_mismatch_nan_and_strings():
    c = compare_outputs("y", np.zeros((2, 3)), np.zeros((3, 2)))
    assert not c.allclose and "shapes differ" in c.note and c.max_abs_err == float("inf")
    a = np.array([np.nan, 1.0])
    assert compare_outputs("y", a, a.copy()).allclose, "NaN on both sides is equal"
    c = compare_outputs("y", a, np.array([0.0, 1.0]))
    assert not c.allclose and c.max_abs_err == float("inf")
    s = np.array([b"cat", b"dog"], dtype=object)
    assert compare_outputs("labels", s, s.copy()).allclose
    assert not compare_outputs("labels", s, np.array([b"cat", b"cow"], dtype=object)).allclose


def test_top_k_agreement_for_classifier_outputs():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 10)).astype(np.float32)
    b = a.copy()
    # Row 0: swap its best and worst class -> top-1 and top-5 change.
    i, j = np.argmax(a[0]), np.argmin(a[0])
    b[0, [i, j]] = b[0, [j, i]]
    c = compare_outputs("logits", a, b)
    assert c.top1_agreement == pytest.approx(0.75)
    assert c.top5_agreement == pytest.approx(0.75)
    assert c.is_classifier
    # Not classifier-like: 1-D, or a single class, or 4-D.
    assert compare_outputs("v", a[0], b[0]).top1_agreement is None
    assert compare_outputs("v", a[:, :1], b[:, :1]).top1_agreement is None
    few = compare_outputs("p", a[:, :3], a[:, :3])
    assert few.top1_agreement == 1.0 and few.top5_agreement is None


# ---------------------------------------------------------------------- whole graphs
def test_identical_graphs_agree_exactly(conv):
    gd, ins, outs = conv
    cmp = compare_graphs(gd, gd, None, outs, runs=4, warmup=1, shapes={"input": [2, 8, 8, 3]})
    assert cmp.allclose
    (o,) = cmp.outputs
    assert o.max_abs_err == 0.0 and o.shape_a == [2, 8, 8, 6]
    assert cmp.feeds == {"input": ([2, 8, 8, 3], "float32")}
    for s in (cmp.a, cmp.b):
        assert len(s.latencies_ms) == 4 and all(t > 0 for t in s.latencies_ms)
        assert s.latency_percentile(10) <= s.latency_ms <= s.latency_percentile(90)
        assert s.node_count == len(gd.node)
        assert s.serialized_bytes == len(gd.SerializeToString())
        assert s.op_count == len({n.op for n in gd.node})
        assert s.parameter_count == Graph(gd).parameter_count() > 0


def test_changed_weights_are_detected_with_the_right_error(conv):
    gd, ins, outs = conv
    gd_b = _perturb_weights(gd, "b", 0.01)  # the conv bias, before BN and ReLU
    feeds = make_feeds(Graph(gd), shapes={"input": [1, 8, 8, 3]}, seed=3)
    (ya,) = run_graph(gd, feeds, outs)
    (yb,) = run_graph(gd_b, feeds, outs)
    expected = float(np.abs(yb.astype(np.float64) - ya).max())
    assert expected > 1e-3
    cmp = compare_graphs(gd, gd_b, feeds, outs, runs=0)
    assert not cmp.allclose
    assert cmp.outputs[0].max_abs_err == pytest.approx(expected)
    assert cmp.a.latency_ms is None  # runs=0: not timed
    loose = compare_graphs(gd, gd_b, feeds, outs, runs=0, rtol=0.0, atol=0.1)
    assert loose.allclose
    d = json.loads(json.dumps(cmp.to_dict(), allow_nan=False))
    assert d["allclose"] is False
    assert d["outputs"]["output"]["max_abs_err"] == pytest.approx(expected)
    assert set(d["graphs"]) == {"a", "b"} and "latency_ms" in d["graphs"]["a"]


def test_feeds_for_nodes_b_lacks_are_dropped(tf1_graph):
    gd, ins, outs = tf1_graph
    # B: the same graph with the training flag made a constant under another name.
    gd_b = GraphDef()
    gd_b.CopyFrom(gd)
    for n in gd_b.node:
        if n.name == "is_training":
            n.name = "is_training_const"
        for i, text in enumerate(n.input):
            if text == "is_training":
                n.input[i] = "is_training_const"
    feeds = make_feeds(Graph(gd), seed=1)
    feeds["is_training"] = np.array(False)
    cmp = compare_graphs(gd, gd_b, feeds, outs, runs=2, warmup=0)
    assert cmp.allclose
    assert cmp.dropped_feeds_b == ["is_training"]
    assert cmp.outputs[0].top1_agreement == 1.0


def test_different_output_names_in_b(conv):
    gd, ins, outs = conv
    gd_b = GraphDef()
    gd_b.CopyFrom(gd)
    relu = next(n for n in gd_b.node if n.name == "output")
    relu.name = "result"
    cmp = compare_graphs(gd, gd_b, None, outs, outputs_b=["result"], runs=0)
    assert cmp.allclose and cmp.outputs[0].name_b == "result"
    with pytest.raises(GraphError, match="graph B has no output node"):
        compare_graphs(gd, gd_b, None, outs, runs=0)


def test_progress_and_cancel(conv):
    gd, ins, outs = conv
    seen = []
    compare_graphs(gd, gd, None, outs, runs=3, warmup=1,
                   progress=lambda f, text: seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) >= 6
    calls = []

    def stop_after_some():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(InterruptedError):
        compare_graphs(gd, gd, None, outs, runs=50, warmup=0, should_stop=stop_after_some)
    assert len(calls) == 4, "stops at the first check that says so"


def test_graph_that_cannot_run_is_named(conv):
    gd, ins, outs = conv
    gd_b = GraphDef()
    gd_b.CopyFrom(gd)
    next(n for n in gd_b.node if n.name == "output").op = "NotARealOp"
    with pytest.raises(RunError, match="graph B: .*NotARealOp"):
        compare_graphs(gd, gd_b, None, outs, runs=0)


def test_user_shapes_fill_unknown_dims_only(conv):
    g = Graph(conv[0])
    assert make_feeds(g, shapes={"input": [4, -1, -1, -1]})["input"].shape == (4, 8, 8, 3)
    assert make_feeds(g)["input"].shape == (1, 8, 8, 3)
    with pytest.raises(RunError, match="has rank 4"):
        make_feeds(g, shapes={"input": [4, 8]})


def test_parse_shape():
    assert parse_shape("input=1,224,224,3") == ("input", [1, 224, 224, 3])
    assert parse_shape("x:0=?,3") == ("x", [-1, 3])
    with pytest.raises(ValueError, match="NAME="):
        parse_shape("1,2,3")
    with pytest.raises(ValueError, match="not a dimension"):
        parse_shape("x=1,a")
