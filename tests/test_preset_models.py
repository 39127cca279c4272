"""The ``inference`` preset on real model families: the numbers stay, the training-only and
redundant ops go, and the conv nets then load and run in OpenCV's DNN importer.

Each case asserts both: allclose before/after on seeded feeds, AND that no Switch, Merge, If,
StatelessIf, batch-norm op, dropout RandomUniform, PlaceholderWithDefault, or Identity (except a
protected output) is left — and for batch norms written as Mul/Rsqrt/Add/Sub, that the Rsqrt is
gone too (it was folded into the weights).
"""
import itertools

import numpy as np
import pytest

from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.running.opencv_check import opencv_check
from surgeon_gui.core.passes.pipeline import run_pipeline
from surgeon_gui.core.running.runner import make_feeds, run_graph

FORBIDDEN = {"Switch", "Merge", "If", "StatelessIf", "FusedBatchNorm", "FusedBatchNormV2",
             "FusedBatchNormV3", "BatchNormWithGlobalNormalization", "PlaceholderWithDefault",
             "RandomUniform", "RandomStandardNormal", "Rsqrt", "CheckNumerics", "StopGradient"}


def optimize(case):
    gd, ins, outs = case
    g = Graph(gd, ins, outs)
    result, steps = run_pipeline(g, ["inference"])
    return result, steps


def check_preset(case, rtol=1e-4, atol=1e-5, shapes=None, batch=2):
    """Run the preset; assert allclose and that the targeted ops are gone. Returns the result."""
    gd, ins, outs = case
    result, steps = optimize(case)
    assert steps, "the preset changed nothing"
    new = result.graph_def
    ops = Graph(new).op_histogram()
    left = FORBIDDEN & set(ops)
    assert not left, f"left after the preset: {sorted(left)}"
    identities = [n.name for n in new.node if n.op == "Identity" and n.name not in outs]
    assert not identities, f"Identity nodes left that are not outputs: {identities[:5]}"
    assert len(new.node) < len(gd.node)
    assert not new.library.function, "function library should be gone once inlined"
    feeds = make_feeds(Graph(gd, ins, outs), shapes=shapes, seed=7, batch=batch)
    before = run_graph(gd, feeds, outs)
    feeds_after = {k: v for k, v in feeds.items() if k in Graph(new)}
    after = run_graph(new, feeds_after, outs)
    for name, a, b in zip(outs, before, after):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=name)
    # Nodes sorted in execution order (OpenCV's importer needs it).
    seen = set()
    for n in new.node:
        late = [i for i in n.input if i.lstrip("^").split(":")[0] not in seen]
        assert not late, f"{n.name} comes before its input(s) {late}"
        seen.add(n.name)
    return new, feeds_after, before


def check_opencv(new, feeds, outs, before, atol):
    res = opencv_check(new, feeds, outs, before)
    assert res.loads, res.error
    assert not res.error, res.error
    assert res.max_abs_err is not None and res.max_abs_err <= atol, res.max_abs_err


# ---------------------------------------------------------------------- model families
def test_tf1_v1_cond_batch_norm_dropout(tf1_graph):
    gd, ins, outs = tf1_graph
    assert {"Switch", "Merge", "PlaceholderWithDefault"} <= set(Graph(gd).op_histogram())
    new, feeds, before = check_preset(tf1_graph)
    ops = Graph(new).op_histogram()
    assert ops.get("Conv2D") == 2 and ops.get("DepthwiseConv2dNative") == 1
    check_opencv(new, feeds, outs, before, atol=1e-4)


def test_tf2_functional_if(tf2_graph):
    gd, ins, outs = tf2_graph
    assert {"If", "StatelessIf"} & set(Graph(gd).op_histogram()) or gd.library.function
    new, feeds, before = check_preset(tf2_graph)
    assert "training" not in Graph(new), "the training flag became a constant and went"
    check_opencv(new, feeds, outs, before, atol=1e-4)


def test_mobilenet_v2(mobilenet_v2):
    gd, ins, outs = mobilenet_v2
    new, feeds, before = check_preset(mobilenet_v2, rtol=1e-3, atol=1e-5)
    ops = Graph(new).op_histogram()
    # Every Keras batch norm (Mul/Rsqrt/AddV2/Sub) folded into the conv before it.
    assert "Mul" not in ops and "Sub" not in ops
    assert len(new.node) < len(gd.node) / 3
    check_opencv(new, feeds, outs, before, atol=1e-4)


@pytest.mark.slow
def test_resnet50(resnet50):
    gd, ins, outs = resnet50
    new, feeds, before = check_preset(resnet50, rtol=1e-3, atol=1e-5)
    ops = Graph(new).op_histogram()
    assert "Mul" not in ops and "Sub" not in ops
    check_opencv(new, feeds, outs, before, atol=1e-4)


CONV_CASES = list(itertools.product(["NHWC", "NCHW"], [False, True], [True, False],
                                    [True, False]))


@pytest.mark.parametrize("data_format, depthwise, bias, fused", CONV_CASES,
                         ids=[f"{f}-{'dw' if d else 'conv'}-{'bias' if b else 'nobias'}-"
                              f"{'fused' if u else 'decomposed'}"
                              for f, d, b, u in CONV_CASES])
def test_conv_bias_batch_norm(data_format, depthwise, bias, fused):
    from surgeon_gui.core.model.examples import conv_bias_bn
    case = conv_bias_bn(data_format=data_format, depthwise=depthwise, bias=bias, fused=fused)
    new, feeds, before = check_preset(case)
    ops = Graph(new).op_histogram()
    conv = "DepthwiseConv2dNative" if depthwise else "Conv2D"
    # conv -> one bias add -> relu: the batch norm is gone into the weights and bias.
    adds = {k: v for k, v in ops.items() if k in ("BiasAdd", "Add", "AddV2")}
    assert sum(adds.values()) == 1, ops
    assert {k: v for k, v in ops.items() if k not in adds} == \
        {"Const": 2, "Placeholder": 1, conv: 1, "Relu": 1}, ops
    check_opencv(new, feeds, case[2], before, atol=1e-4)


def test_matmul_batch_norm():
    from surgeon_gui.core.model.examples import matmul_bn
    case = matmul_bn()
    new, feeds, before = check_preset(case)
    ops = Graph(new).op_histogram()
    assert "Mul" not in ops and "Sub" not in ops and ops.get("MatMul") == 1, ops
    check_opencv(new, feeds, case[2], before, atol=1e-4)


def test_preset_is_a_fixed_point(tf1_graph):
    result, _ = optimize(tf1_graph)
    again, steps = run_pipeline(result, ["inference"])
    assert not steps, [s.pass_id for s in steps]
    assert again.graph_def == result.graph_def


@pytest.mark.slow
@pytest.mark.parametrize("name, opencv", [("DenseNet121", True), ("EfficientNetB0", True)])
def test_more_keras_families(name, opencv):
    """Pre-activation batch norms and concatenations (DenseNet), squeeze-excite blocks with
    Sigmoid gates and dynamic Reshape (EfficientNet). EfficientNet loads in OpenCV only once
    its compact "splat" Consts are gone (materialize_constants, simplify_arithmetic) and its
    Reshape shapes are constant (static_reshape: OpenCV cannot run the shared Shape/
    StridedSlice/Pack chains, "Duplicate of inferred dim")."""
    from surgeon_gui.core.model.examples import keras_application
    case = keras_application(name, input_size=64)
    new, feeds, before = check_preset(case, rtol=1e-3, atol=1e-5)
    assert len(new.node) < len(case[0].node) / 3
    if opencv:
        check_opencv(new, feeds, case[2], before, atol=1e-4)
