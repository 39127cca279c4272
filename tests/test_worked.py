"""Worked numbers: checked against independent numpy computations on real TF graphs."""
from __future__ import annotations

import numpy as np
import pytest

from surgeon_gui.core.model.graph import Graph, const_value, node_of
from surgeon_gui.core.passes import get_pass
from surgeon_gui.core.passes.pipeline import run_pass
from surgeon_gui.core.running.worked import worked_numbers


def _const(graph: Graph, tensor: str) -> np.ndarray:
    """The value of a Const (through Identity /read nodes), decoded from the GraphDef."""
    node = graph.nodes[node_of(tensor)]
    while node.op == "Identity":
        node = graph.nodes[node_of(node.input[0])]
    assert node.op == "Const", node.op
    return np.asarray(const_value(node), dtype=np.float64)


def _conv2d_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """NHWC stride-1 SAME convolution in plain numpy (odd kernels)."""
    n, h, wd, _ = x.shape
    kh, kw, _, cout = w.shape
    ph, pw = kh // 2, kw // 2
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    out = np.zeros((n, h, wd, cout))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nhwc,co->nhwo", xp[:, i:i + h, j:j + wd, :], w[i, j])
    return out


@pytest.mark.parametrize("seed", [0, 5])
def test_fold_batch_norm_numbers_match_numpy(seed):
    from surgeon_gui.core.model.examples import conv_bias_bn
    gd, ins, outs = conv_bias_bn(seed=seed)
    graph = Graph(gd, ins, outs)
    report = get_pass("fold_batch_norm").preview(graph)
    assert [m.key for m in report.matches] == ["Conv2D"]
    rng = np.random.default_rng(seed + 100)
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    wn = worked_numbers(graph, "fold_batch_norm", report.matches[0], feeds={"input": x})

    # Independent: read the constants the graph holds and do the algebra in numpy.
    conv, bias_add, bn = graph.nodes["Conv2D"], graph.nodes["BiasAdd"], graph.nodes["bn"]
    w = _const(graph, conv.input[1])
    b = _const(graph, bias_add.input[1])
    gamma, beta, mean, var = (_const(graph, t) for t in bn.input[1:5])
    eps = bn.attr["epsilon"].f
    s = gamma / np.sqrt(var + eps)
    new_bias = (b - mean) * s + beta
    np.testing.assert_allclose(wn.values["gamma"], gamma)
    np.testing.assert_allclose(wn.values["beta"], beta)
    np.testing.assert_allclose(wn.values["mean"], mean)
    np.testing.assert_allclose(wn.values["var"], var)
    np.testing.assert_allclose(wn.values["b"], b)
    assert wn.values["eps"] == pytest.approx(eps)
    np.testing.assert_allclose(wn.values["s"], s, rtol=1e-12)
    np.testing.assert_allclose(wn.values["bias"], new_bias, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(wn.values["weights_new"], w * s.reshape(1, 1, 1, -1), rtol=1e-9)

    # The table shows those numbers (channel 0 row: c, b, γ, β, mean, var, ε, s, scale, bias).
    row0 = wn.tables[0].rows[0]
    assert float(row0[7]) == pytest.approx(s[0], rel=1e-4)
    assert float(row0[9]) == pytest.approx(new_bias[0], rel=1e-4, abs=1e-6)
    # Weight statistics: old and new.
    stats = {r[0]: r for r in wn.tables[1].rows}
    assert float(stats["old W"][2]) == pytest.approx(w.mean(), rel=1e-4, abs=1e-7)
    assert float(stats["new W·s"][3]) == pytest.approx((w * s).std(), rel=1e-4)

    # The check: BN(conv(x)) from the original, conv_new(x) from the folded graph, both
    # against numpy's own convolution.
    y = _conv2d_same(x.astype(np.float64), w) + b
    bn_ref = gamma * (y - mean) / np.sqrt(var + eps) + beta
    folded_ref = _conv2d_same(x.astype(np.float64), w * s) + new_bias
    np.testing.assert_allclose(folded_ref, bn_ref, atol=1e-9)
    np.testing.assert_allclose(wn.values["check_before"], bn_ref, atol=2e-5)
    np.testing.assert_allclose(wn.values["check_after"], folded_ref, atol=2e-5)
    assert wn.check is not None and wn.check.passed
    assert wn.check.max_abs_err == pytest.approx(
        np.abs(wn.values["check_after"] - wn.values["check_before"]).max())
    first = wn.check.table.rows[0]
    assert float(first[1]) == pytest.approx(bn_ref[0, 0, 0, 0], rel=1e-3, abs=1e-5)
    md, page = wn.to_markdown(), wn.to_html()
    assert "s = γ/√(var+ε)" in md and "PASS" in md and "<table" in page


def test_fold_batch_norm_decomposed_and_depthwise_in_tf1(tf1_graph):
    gd, ins, outs = tf1_graph
    g = Graph(gd, ins, outs)
    for pid in ("training_flags", "remove_switch_merge", "remove_identity"):
        g = Graph(run_pass(g, pid).graph_def, ins, outs)
    report = get_pass("fold_batch_norm").preview(g)
    dw = next(m for m in report.matches if g.nodes[m.key].op == "DepthwiseConv2dNative")
    wn = worked_numbers(g, "fold_batch_norm", dw)
    w = wn.values["weights_old"]
    s = wn.values["s"]
    # depthwise [H, W, C, 1]: output channel c scales W[..., c, 0]
    np.testing.assert_allclose(wn.values["weights_new"], w * s.reshape(1, 1, -1, 1), rtol=1e-9)
    assert wn.check.passed


def test_switch_merge_numbers(tf1_graph):
    gd, ins, outs = tf1_graph
    g = Graph(gd, ins, outs)
    g = Graph(run_pass(g, "training_flags").graph_def, ins, outs)
    report = get_pass("remove_switch_merge").preview(g)
    m = next(m for m in report.matches if m.key == "bn1/cond/Merge")
    wn = worked_numbers(g, "remove_switch_merge", m)
    switches = wn.tables[0].rows
    assert switches and all(r[3] == "False" and r[4].startswith("0") for r in switches)
    merge_rows = {r[1]: r for r in wn.tables[1].rows}
    # TF1's cond writes Merge([false branch, true branch]): input 0 lives (inference).
    assert merge_rows["0"][4] == "live" and merge_rows["1"][4] == "dead"
    assert ":0" in merge_rows["0"][3] and ":1" in merge_rows["1"][3]
    assert "bn1/cond/FusedBatchNormV3_1" in wn.live          # inference batch norm
    assert "bn1/cond/FusedBatchNormV3" in wn.dead            # training batch norm
    assert not set(wn.live) & set(wn.dead)
    assert g.nodes["bn1/cond/FusedBatchNormV3"].attr["is_training"].b


def test_dropout_fold_constants_identity_numbers(tf1_graph):
    gd, ins, outs = tf1_graph
    g = Graph(gd, ins, outs)
    for pid in ("training_flags", "remove_switch_merge"):
        g = Graph(run_pass(g, pid).graph_def, ins, outs)
    rep = get_pass("remove_dropout").preview(g)
    wn = worked_numbers(g, "remove_dropout", rep.matches[0])
    assert wn.values["keep_prob"] == 1.0 and wn.values["x"] == "gap"
    assert "identity" in " ".join(wn.paragraphs)

    rep = get_pass("remove_identity").preview(g)
    m = next(m for m in rep.matches if m.key == "conv1/weights/read")
    wn = worked_numbers(g, "remove_identity", m)
    assert wn.tables[0].rows == [["conv1/Conv2D", "data input 0", "conv1/weights/read",
                                  "conv1/weights"]]

    g = Graph(run_pass(g, "remove_identity").graph_def, ins, outs)
    rep = get_pass("fold_constants").preview(g)
    m = next(m for m in rep.matches if m.key.endswith("batchnorm_1/mul"))
    wn = worked_numbers(g, "fold_constants", m)
    gamma = _const(g, "fc/bn_fc/gamma")
    var = _const(g, "fc/bn_fc/moving_variance")
    np.testing.assert_allclose(wn.values["value"], gamma / np.sqrt(var + 1e-3), rtol=1e-5)


def test_not_a_match_is_an_error():
    from surgeon_gui.core.model.examples import conv_bias_bn
    from surgeon_gui.core.model.graph import GraphError
    gd, ins, outs = conv_bias_bn()
    with pytest.raises(GraphError, match="not a match"):
        worked_numbers(Graph(gd, ins, outs), "fold_batch_norm", "output")


def test_sort_numbers_name_nodes_listed_before_their_inputs(tf1_graph):
    from surgeon_gui.core.history.recipe import Recipe
    from surgeon_gui.core.running.tutorial import trace_recipe
    gd, ins, outs = tf1_graph
    recipe = Recipe()
    recipe.add_pass("inference")
    _, steps = trace_recipe(Graph(gd, ins, outs), recipe)
    st = next(s for s in steps if s.pass_id == "sort_execution_order")
    wn = worked_numbers(st.before, "sort_execution_order", st.report.applied[0])
    rows = wn.tables[0].rows
    order = [n.name for n in st.before.graph_def.node]
    late = [r for r in rows if r[3] != "–"]
    assert late
    for name, old, new, inputs in late:
        assert order.index(name) == int(old)
        assert all(order.index(i) > int(old) for i in inputs.split(", "))
