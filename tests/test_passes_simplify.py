"""simplify_arithmetic (x + 0, x - 0, x * 1, x / 1, zero BiasAdd; one bias for two) and
materialize_constants (splat Consts written out in full, for OpenCV).

Tiny graph factories with exact node lists and refusals, then numeric before/after checks on
real models through the ``inference`` preset.
"""
from __future__ import annotations

import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, types_pb2

from surgeon_gui.core.model.graph import Graph, GraphDef, NodeDef, const_value, make_const
from surgeon_gui.core.model.io import serialize
from surgeon_gui.core.running.opencv_check import opencv_check
from surgeon_gui.core.passes import PRESET_PASSES
from surgeon_gui.core.passes.materialize_constants import stored_count
from surgeon_gui.core.passes.simplify_arithmetic import broadcast_problem
from surgeon_gui.core.passes.pipeline import run_pipeline
from surgeon_gui.core.running.runner import make_feeds, run_graph


# ---------------------------------------------------------------------- helpers
def _pass(pass_id):
    import importlib
    return importlib.import_module(f"surgeon_gui.core.passes.{pass_id}").PASS


def apply(pass_id, gd, ins=None, outs=None, select=None, **params):
    """Run a pass; check that it left its input alone, is deterministic and gives a valid
    graph."""
    before = serialize(gd)
    res = _pass(pass_id).run(Graph(gd, ins, outs), select=select, **params)
    assert serialize(gd) == before, "the pass edited its input"
    again = _pass(pass_id).run(Graph(gd, ins, outs), select=select, **params)
    assert serialize(again.graph_def) == serialize(res.graph_def), "not deterministic"
    if res.report.modified:
        assert Graph(res.graph_def).problems() == []
    return res


def names(gd):
    return [n.name for n in gd.node]


def node(gd, name):
    return next(n for n in gd.node if n.name == name)


def placeholder(name, shape, dtype=types_pb2.DT_FLOAT):
    n = NodeDef(name=name, op="Placeholder")
    n.attr["dtype"].type = dtype
    if shape is None:
        n.attr["shape"].shape.unknown_rank = True
    else:
        for d in shape:
            n.attr["shape"].shape.dim.add().size = d
    return n


def op(name, op_type, inputs, dtype=types_pb2.DT_FLOAT, **attrs):
    n = NodeDef(name=name, op=op_type)
    n.input.extend(inputs)
    n.attr["T"].type = dtype
    for k, v in attrs.items():
        if isinstance(v, bytes):
            n.attr[k].s = v
    return n


def graph(*nodes):
    gd = GraphDef()
    gd.node.extend(nodes)
    return gd


def binary(op_type, x_shape, const_value_, const_first=False, x_dtype=np.float32):
    """x (Placeholder) op c (Const) -> out (Relu); returns the GraphDef."""
    c = make_const("c", np.asarray(const_value_, dtype=x_dtype))
    inputs = ["c", "x"] if const_first else ["x", "c"]
    return graph(placeholder("x", x_shape), c, op("y", op_type, inputs), op("out", "Relu", ["y"]))


def run(gd, feeds, outs=("out",)):
    return run_graph(gd, feeds, list(outs))


def splat(name, dtype, shape, **values):
    """A Const stored compactly: fewer values than elements (TensorFlow repeats the last)."""
    t = tensor_pb2.TensorProto(dtype=dtype)
    for d in shape:
        t.tensor_shape.dim.add().size = d
    for field, vals in values.items():
        getattr(t, field).extend(vals)
    n = NodeDef(name=name, op="Const")
    n.attr["dtype"].type = dtype
    n.attr["value"].tensor.CopyFrom(t)
    return n


X = np.array([[-1.5, 0.0, 2.0, np.inf], [np.nan, -0.25, 3.0, -np.inf]], np.float32)


# ---------------------------------------------------------------------- simplify: matches
@pytest.mark.parametrize("op_type, value, const_first", [
    ("AddV2", 0.0, False), ("AddV2", 0.0, True), ("Add", 0.0, False), ("Sub", 0.0, False),
    ("Mul", 1.0, False), ("Mul", 1.0, True), ("RealDiv", 1.0, False),
    ("AddV2", [0.0] * 4, False), ("Mul", [[1.0] * 4], True), ("Sub", [[0.0]], False),
])
def test_no_op_is_removed_and_its_reader_reads_x(op_type, value, const_first):
    gd = binary(op_type, [-1, 4], value, const_first)
    res = apply("simplify_arithmetic", gd, ["x"], ["out"])
    rep = res.report
    assert [m.key for m in rep.applied] == ["y"] and not rep.refused
    assert names(res.graph_def) == ["x", "out"]
    assert list(node(res.graph_def, "out").input) == ["x"]
    assert rep.removed == {"y", "c"} and rep.changed == {"out"}
    assert rep.applied[0].removed == ["y", "c"]
    before, after = run(gd, {"x": X})[0], run(res.graph_def, {"x": X})[0]
    np.testing.assert_array_equal(after, before)   # NaN and inf included


@pytest.mark.parametrize("op_type, value", [("Sub", 0.0), ("RealDiv", 1.0)])
def test_constant_on_the_wrong_side_is_not_a_no_op(op_type, value):
    gd = binary(op_type, [-1, 4], value, const_first=True)   # 0 - x, 1 / x
    rep = apply("simplify_arithmetic", gd, ["x"], ["out"]).report
    assert not rep.matches and not rep.refused and not rep.modified


def test_other_constants_are_left_alone():
    for op_type, value in [("AddV2", 1.0), ("Mul", 2.0), ("Mul", [1.0, 1.0, 1.0, 0.5])]:
        rep = apply("simplify_arithmetic", binary(op_type, [-1, 4], value), ["x"], ["out"]).report
        assert not rep.matches and not rep.refused


def test_zero_bias_add_is_removed_nhwc_and_nchw():
    for fmt in (b"NHWC", b"NCHW"):
        gd = graph(placeholder("x", [-1, 3, 5, 5]), make_const("b", np.zeros(3, np.float32)),
                   op("bias", "BiasAdd", ["x", "b"], data_format=fmt),
                   op("out", "Relu", ["bias"]))
        res = apply("simplify_arithmetic", gd, ["x"], ["out"])
        assert names(res.graph_def) == ["x", "out"], fmt


def test_scalar_constant_needs_no_shape_even_for_unknown_rank():
    gd = binary("Mul", None, 1.0)
    res = apply("simplify_arithmetic", gd, ["x"], ["out"])
    assert names(res.graph_def) == ["x", "out"]


def test_chain_of_no_ops_and_control_inputs_are_handed_on():
    gd = graph(placeholder("x", [2, 4]), NodeDef(name="gate", op="NoOp"),
               make_const("zero", np.float32(0)), make_const("one", np.ones(4, np.float32)),
               op("add", "AddV2", ["x", "zero", "^gate"]), op("mul", "Mul", ["one", "add"]),
               op("out", "Relu", ["mul"]), op("waits", "Relu", ["x", "^mul"]))
    res = apply("simplify_arithmetic", gd, ["x"], ["out", "waits"])
    assert sorted(m.key for m in res.report.applied) == ["add", "mul"]
    assert names(res.graph_def) == ["x", "gate", "out", "waits"]
    assert list(node(res.graph_def, "out").input) == ["x", "^gate"]
    # "waits" waited on mul: now on what mul waited on (x is already a data input; the gate).
    assert list(node(res.graph_def, "waits").input) == ["x", "^gate"]


def test_preview_and_selection():
    gd = graph(placeholder("x", [2, 4]), make_const("zero", np.float32(0)),
               op("a", "AddV2", ["x", "zero"]), op("b", "Sub", ["a", "zero"]),
               op("out", "Relu", ["b"]))
    preview = _pass("simplify_arithmetic").preview(Graph(gd, ["x"], ["out"]))
    assert [m.key for m in preview.matches] == ["a", "b"] and not preview.modified
    res = apply("simplify_arithmetic", gd, ["x"], ["out"], select={"b"})
    assert names(res.graph_def) == ["x", "zero", "a", "out"]
    assert list(node(res.graph_def, "out").input) == ["a"]


# ---------------------------------------------------------------------- simplify: refusals
@pytest.mark.parametrize("x_shape, c_shape, why", [
    ([-1, 1], [4], "broadcasts x (shape [-1, 1]) to a different shape"),
    ([-1, -1], [4], "x's dimension 1 is unknown"),
    ([4], [2, 4], "more dimensions than x"),
    (None, [1], "x's rank is unknown"),
])
def test_broadcasting_constant_is_refused(x_shape, c_shape, why):
    gd = binary("AddV2", x_shape, np.zeros(c_shape))
    res = apply("simplify_arithmetic", gd, ["x"], ["out"])
    assert not res.report.matches and not res.report.modified
    (r,) = res.report.refused
    assert r.key == "y" and why in r.reason and r.nodes == ["y", "c"]
    assert serialize(res.graph_def) == serialize(gd)


def test_broadcasting_would_really_change_the_shape():
    """The refusal above is not caution for its own sake: x [2, 1] + zeros([4]) is [2, 4]."""
    gd = binary("AddV2", [2, 1], np.zeros(4))
    assert run(gd, {"x": np.ones((2, 1), np.float32)})[0].shape == (2, 4)


def test_broadcast_rule():
    assert broadcast_problem([-1, 7, 7, 512], [512]) == ""
    assert broadcast_problem([-1, 64, 64, 3], [1, 1, 1, 3]) == ""
    assert broadcast_problem([-1, 4], [1, 1]) == ""
    assert broadcast_problem(None, []) == ""
    assert broadcast_problem([-1, 4], [1, 1, 1])      # rank would grow
    assert broadcast_problem([3, 4], [0, 4])          # empty constant: shape changes


def test_multiply_by_zero_is_refused_with_the_nan_reason():
    gd = binary("Mul", [-1, 4], np.zeros(4))
    res = apply("simplify_arithmetic", gd, ["x"], ["out"])
    assert not res.report.matches and not res.report.modified
    (r,) = res.report.refused
    assert r.key == "y" and "NaN * 0" in r.reason
    assert np.isnan(run(gd, {"x": X})[0]).any(), "x * 0 is not all zeros when x holds NaN"
    assert "NaN" in _pass("simplify_arithmetic").explanation


def test_named_output_is_kept():
    gd = graph(placeholder("x", [2, 4]), make_const("c", np.float32(0)),
               op("y", "AddV2", ["x", "c"]), op("out", "Relu", ["y"]))
    res = apply("simplify_arithmetic", gd, ["x"], ["y", "out"])
    assert not res.report.modified
    assert "named as a graph input or output" in res.report.refused[0].reason


def test_unknown_op_upstream_leaves_shapes_unknown_and_refuses():
    gd = graph(placeholder("x", [2, 4]), op("odd", "NotARealOp", ["x"]),
               make_const("c", np.zeros(4, np.float32)), op("y", "AddV2", ["odd", "c"]),
               op("out", "Relu", ["y"]))
    res = apply("simplify_arithmetic", gd, ["x"], ["out"])
    assert not res.report.modified
    assert "shape is unknown" in res.report.refused[0].reason


# ---------------------------------------------------------------------- simplify: two biases
def two_biases(fmt=b"NHWC", extra_reader=False):
    rng = np.random.default_rng(3)
    w1 = make_const("w1", rng.normal(size=(1, 1, 3, 4)).astype(np.float32))
    w2 = make_const("w2", rng.normal(size=(1, 1, 3, 4)).astype(np.float32))
    nodes = [placeholder("x", [-1, 5, 5, 3]), w1, w2,
             make_const("b1", np.array([1, 2, 3, 4], np.float32)),
             make_const("b2", np.array([10, 20, 30, 40], np.float32))]
    for i in (1, 2):
        c = op(f"conv{i}", "Conv2D", ["x", f"w{i}"], padding=b"VALID", data_format=b"NHWC")
        c.attr["strides"].list.i.extend([1, 1, 1, 1])
        nodes += [c, op(f"bias{i}", "BiasAdd", [f"conv{i}", f"b{i}"], data_format=fmt)]
    nodes += [op("sum", "AddV2", ["bias1", "bias2"]), op("out", "Relu", ["sum"])]
    if extra_reader:
        nodes.append(op("peek", "Relu", ["bias2"]))
    return graph(*nodes)


def test_two_biases_become_one():
    gd = two_biases()
    res = apply("simplify_arithmetic", gd, ["x"], ["out"])
    (m,) = res.report.applied
    assert m.key == "sum" and m.removed == ["bias2", "b2"]
    assert names(res.graph_def) == ["x", "w1", "w2", "b1", "conv1", "bias1", "conv2", "sum",
                                    "out"]
    assert list(node(res.graph_def, "sum").input) == ["bias1", "conv2"]
    np.testing.assert_array_equal(const_value(node(res.graph_def, "b1")), [11, 22, 33, 44])
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(run(res.graph_def, {"x": x})[0], run(gd, {"x": x})[0],
                               rtol=1e-6, atol=1e-5)


def test_two_biases_refused_when_a_bias_add_has_another_reader_or_is_nchw():
    res = apply("simplify_arithmetic", two_biases(extra_reader=True), ["x"], ["out", "peek"])
    assert not res.report.modified
    assert "bias2 has 2 readers" in res.report.refused[0].reason
    res = apply("simplify_arithmetic", two_biases(fmt=b"NCHW"), ["x"], ["out"])
    assert not res.report.modified and "NCHW" in res.report.refused[0].reason


# ---------------------------------------------------------------------- simplify: real model
@pytest.mark.slow
def test_preset_on_resnet50_drops_zero_classifier_bias_and_merges_block_biases(resnet50):
    assert PRESET_PASSES.index("fold_batch_norm") < PRESET_PASSES.index(
        "simplify_arithmetic") < PRESET_PASSES.index("merge_duplicates")
    gd, ins, outs = resnet50
    result, steps = run_pipeline(Graph(gd, ins, outs), ["inference"])
    simplify = [s for s in steps if s.pass_id == "simplify_arithmetic"]
    assert simplify, "simplify_arithmetic found nothing on ResNet50"
    new = Graph(result.graph_def)
    (matmul,) = [n for n in result.graph_def.node if n.op == "MatMul"]
    # The classifier's bias is all zeros (weights=None): MatMul now feeds the Softmax.
    assert [new.nodes[c].op for c in new.consumer_names(matmul.name)] == ["Softmax"]
    # Four projection blocks: one BiasAdd instead of two before each residual AddV2.
    for n in result.graph_def.node:
        if n.op == "AddV2":
            assert sum(new.nodes[i].op == "BiasAdd" for i in n.input) <= 1, n.name
    merged = [m for s in simplify for m in s.result.report.applied if "two biased" in
              m.description]
    assert len(merged) == 4
    feeds = make_feeds(Graph(gd, ins, outs), seed=5, batch=2)
    for a, b in zip(run_graph(gd, feeds, outs), run_graph(result.graph_def, feeds, outs)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------- materialize
@pytest.mark.parametrize("dtype, field, stored, shape, expected", [
    (types_pb2.DT_INT32, "int_val", [7], [4], np.full(4, 7, np.int32)),
    (types_pb2.DT_INT32, "int_val", [], [2, 3], np.zeros((2, 3), np.int32)),
    (types_pb2.DT_FLOAT, "float_val", [1.0, 0.5], [1, 1, 1, 3],
     np.array([1.0, 0.5, 0.5], np.float32).reshape(1, 1, 1, 3)),
    (types_pb2.DT_INT64, "int64_val", [-3], [3], np.full(3, -3, np.int64)),
    (types_pb2.DT_BOOL, "bool_val", [True], [2], np.array([True, True])),
    (types_pb2.DT_HALF, "half_val", [np.float16(1.5).view(np.uint16)], [2],
     np.full(2, 1.5, np.float16)),
    (types_pb2.DT_FLOAT, "float_val", [], [], np.float32(0)),
    (types_pb2.DT_STRING, "string_val", [b"a"], [3], np.array([b"a"] * 3, object)),
])
def test_splat_constant_is_written_out_with_the_same_value(dtype, field, stored, shape,
                                                           expected):
    c = splat("c", dtype, shape, **{field: stored})
    gd = graph(c, NodeDef(name="out", op="Identity", input=["c"]))
    gd.node[1].attr["T"].type = dtype
    assert stored_count(c.attr["value"].tensor) < max(1, int(np.prod(shape)))
    res = apply("materialize_constants", gd, None, ["out"])
    (m,) = res.report.applied
    assert m.key == "c" and m.changed == ["c"] and res.report.changed == {"c"}
    t = node(res.graph_def, "c").attr["value"].tensor
    assert stored_count(t) is None or stored_count(t) == max(1, int(np.prod(shape)))
    assert t.dtype == dtype and [d.size for d in t.tensor_shape.dim] == shape
    got = const_value(node(res.graph_def, "c"))
    assert got.dtype == expected.dtype or dtype == types_pb2.DT_STRING
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, const_value(c))
    np.testing.assert_array_equal(run(res.graph_def, {})[0], run(gd, {})[0])


def test_full_constants_are_left_alone():
    gd = graph(make_const("a", np.arange(6, dtype=np.float32).reshape(2, 3)),
               make_const("s", np.int32(3)), splat("e", types_pb2.DT_FLOAT, [0]))
    res = apply("materialize_constants", gd)
    assert not res.report.matches and not res.report.refused and not res.report.modified


def test_big_splat_is_refused_unless_the_limit_is_raised():
    gd = graph(splat("big", types_pb2.DT_FLOAT, [100, 100], float_val=[0.0]))
    res = apply("materialize_constants", gd)
    assert not res.report.modified
    (r,) = res.report.refused
    assert r.key == "big" and "10000 elements, over max_elements=4096" in r.reason
    res = apply("materialize_constants", gd, max_elements=10000)
    assert len(node(res.graph_def, "big").attr["value"].tensor.tensor_content) == 40000
    with pytest.raises(ValueError, match="max_elements"):
        _pass("materialize_constants").run(Graph(gd), max_elements=-1)


def test_opencv_loads_a_conv_with_splat_bias_only_once_written_out():
    rng = np.random.default_rng(1)
    w = make_const("w", rng.normal(size=(3, 3, 3, 4)).astype(np.float32))
    conv = op("conv", "Conv2D", ["x", "w"], padding=b"SAME", data_format=b"NHWC")
    conv.attr["strides"].list.i.extend([1, 1, 1, 1])
    gd = graph(placeholder("x", [1, 8, 8, 3]), w, conv,
               splat("b", types_pb2.DT_FLOAT, [4], float_val=[0.25]),
               op("bias", "BiasAdd", ["conv", "b"], data_format=b"NHWC"),
               op("out", "Relu", ["bias"]))
    feeds = {"x": rng.normal(size=(1, 8, 8, 3)).astype(np.float32)}
    ref = run(gd, feeds)
    before = opencv_check(gd, feeds, ["out"], ref)
    # OpenCV 5.0: "size == (int)dstBlob.total() in function 'parseTensor'"
    assert not before.loads and "parseTensor" in before.error, before
    res = apply("materialize_constants", gd, ["x"], ["out"])
    np.testing.assert_array_equal(run(res.graph_def, feeds)[0], ref[0])
    after = opencv_check(res.graph_def, feeds, ["out"], ref)
    assert after.loads and after.max_abs_err is not None and after.max_abs_err < 1e-4, after


@pytest.fixture(scope="module")
def efficientnet():
    from surgeon_gui.core.model.examples import keras_application
    return keras_application("EfficientNetB0", input_size=64)


@pytest.mark.slow
def test_efficientnet_splats_written_out_with_identical_outputs(efficientnet):
    gd, ins, outs = efficientnet
    splats = _splats(gd)
    assert splats, "EfficientNetB0 should hold compact Consts"
    res = apply("materialize_constants", gd, ins, outs)
    assert sorted(m.key for m in res.report.applied) == sorted(splats)
    assert not _splats(res.graph_def)
    for name in splats:
        np.testing.assert_array_equal(const_value(node(res.graph_def, name)),
                                      const_value(node(gd, name)))
    feeds = make_feeds(Graph(gd, ins, outs), seed=2, batch=1)
    for a, b in zip(run_graph(gd, feeds, outs), run_graph(res.graph_def, feeds, outs)):
        np.testing.assert_array_equal(b, a)


@pytest.mark.slow
def test_preset_on_efficientnet_leaves_no_splats_and_no_shape_arithmetic(efficientnet):
    gd, ins, outs = efficientnet
    result, steps = run_pipeline(Graph(gd, ins, outs), ["inference"])
    assert not _splats(result.graph_def)
    hist = Graph(result.graph_def).op_histogram()
    assert not {"Shape", "StridedSlice", "Pack"} & set(hist), hist
    assert hist["Reshape"] == 16 and hist["Mean"] == 17
    feeds = make_feeds(Graph(gd, ins, outs), seed=2, batch=2)
    for a, b in zip(run_graph(gd, feeds, outs), run_graph(result.graph_def, feeds, outs)):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)


# ---------------------------------------------------------------------- static_reshape
def se_reshape(entries=(1, 1, 4), begin=0, extra_dynamic=False, reader_of_shape=False):
    """Keras' Reshape layer: Reshape(x, Pack(tf.shape(x)[begin], *entries))."""
    nodes = [placeholder("x", [-1, 4]),
             NodeDef(name="shape", op="Shape", input=["x"]),
             make_const("b", np.array([begin], np.int32)),
             make_const("e", np.array([begin + 1], np.int32)),
             make_const("s", np.array([1], np.int32))]
    nodes[1].attr["T"].type = types_pb2.DT_FLOAT
    nodes[1].attr["out_type"].type = types_pb2.DT_INT32
    ss = NodeDef(name="ss", op="StridedSlice", input=["shape", "b", "e", "s"])
    ss.attr["T"].type = types_pb2.DT_INT32
    ss.attr["Index"].type = types_pb2.DT_INT32
    ss.attr["shrink_axis_mask"].i = 1
    nodes.append(ss)
    pack_in = ["ss"]
    for i, v in enumerate(entries):
        nodes.append(make_const(f"d{i}", np.int32(v)))
        pack_in.append(f"d{i}")
    if extra_dynamic:
        pack_in.append("ss")
    pack = NodeDef(name="pack", op="Pack", input=pack_in)
    pack.attr["T"].type = types_pb2.DT_INT32
    pack.attr["N"].i = len(pack_in)
    pack.attr["axis"].i = 0
    r = op("reshape", "Reshape", ["x", "pack"])
    r.attr["Tshape"].type = types_pb2.DT_INT32
    nodes += [pack, r, op("out", "Relu", ["reshape"])]
    if reader_of_shape:
        nodes.append(NodeDef(name="peek", op="Identity", input=["pack"]))
        nodes[-1].attr["T"].type = types_pb2.DT_INT32
    return graph(*nodes)


def test_static_reshape_replaces_the_run_time_shape():
    gd = se_reshape()
    res = apply("static_reshape", gd, ["x"], ["out"])
    (m,) = res.report.applied
    assert m.key == "reshape" and m.added == ["reshape/static_shape"]
    assert names(res.graph_def) == ["x", "reshape", "out", "reshape/static_shape"]
    np.testing.assert_array_equal(const_value(node(res.graph_def, "reshape/static_shape")),
                                  [-1, 1, 1, 4])
    for batch in (1, 3):
        x = np.arange(batch * 4, dtype=np.float32).reshape(batch, 4)
        np.testing.assert_array_equal(run(res.graph_def, {"x": x})[0], run(gd, {"x": x})[0])


def test_static_reshape_keeps_a_shape_someone_else_reads():
    res = apply("static_reshape", se_reshape(reader_of_shape=True), ["x"], ["out", "peek"])
    assert [m.key for m in res.report.applied] == ["reshape"]
    assert {"shape", "ss", "pack"} <= set(names(res.graph_def))


@pytest.mark.parametrize("kwargs, why", [
    (dict(entries=(0, 4)), "entry 1 of the target shape is 0"),
    (dict(entries=(-1,)), "entry 1 of the target shape is -1"),
    (dict(extra_dynamic=True), "2 entries are read from x's shape"),
])
def test_static_reshape_refusals(kwargs, why):
    res = apply("static_reshape", se_reshape(**kwargs), ["x"], ["out"])
    assert not res.report.modified
    (r,) = res.report.refused
    assert r.key == "reshape" and why in r.reason


def _splats(gd):
    out = []
    for n in gd.node:
        if n.op != "Const":
            continue
        t = n.attr["value"].tensor
        stored = stored_count(t)
        if stored is not None and stored < int(np.prod([d.size for d in t.tensor_shape.dim])):
            out.append(n.name)
    return out


# ---------------------------------------------------------------------- merge_duplicates: Consts
def test_merge_compares_const_values_not_encodings_nor_samples():
    """Consts are compared by a sampled fingerprint first and in full only on a clash: equal
    values merge however they are stored; a difference outside the sample still keeps two
    big Consts apart; the same bytes in another shape are not the same tensor."""
    big = np.random.default_rng(0).normal(size=(64, 1024)).astype(np.float32)   # 256 KiB
    off = big.copy()
    off.reshape(-1)[12345] += 1.0    # not at the ends, not on the sampling stride
    full_ones = make_const("full", np.ones(4, np.float32))
    assert full_ones.attr["value"].tensor.tensor_content
    nodes = [make_const("big_a", big), make_const("big_b", big.copy()), make_const("big_c", off),
             full_ones, splat("splat", types_pb2.DT_FLOAT, [4], float_val=[1.0]),
             make_const("m23", np.arange(6, dtype=np.float32).reshape(2, 3)),
             make_const("m32", np.arange(6, dtype=np.float32).reshape(3, 2))]
    readers = [NodeDef(name=f"use_{n.name}", op="Identity", input=[n.name]) for n in nodes]
    for r in readers:
        r.attr["T"].type = types_pb2.DT_FLOAT
    gd = graph(*nodes, *readers)
    outs = [r.name for r in readers]
    res = apply("merge_duplicates", gd, None, outs)
    assert sorted((m.key, m.nodes[0]) for m in res.report.applied) == [
        ("big_b", "big_a"), ("splat", "full")]
    assert {"big_c", "m23", "m32"} <= set(names(res.graph_def))
    got = run_graph(res.graph_def, {}, outs)
    for want, have in zip(run_graph(gd, {}, outs), got):
        np.testing.assert_array_equal(have, want)


def test_merge_keeps_duplicate_pads_feeding_convolutions_apart_for_opencv():
    rng = np.random.default_rng(4)
    nodes = [placeholder("x", [1, 6, 6, 3]),
             make_const("pads", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32))]
    for i in (1, 2):
        pad = op(f"pad{i}", "Pad", ["x", "pads"])
        pad.attr["Tpaddings"].type = types_pb2.DT_INT32
        conv = op(f"conv{i}", "Conv2D", [f"pad{i}", f"w{i}"], padding=b"VALID",
                  data_format=b"NHWC")
        conv.attr["strides"].list.i.extend([1, 1, 1, 1])
        nodes += [pad, make_const(f"w{i}", rng.normal(size=(3, 3, 3, 2)).astype(np.float32)),
                  conv]
    nodes.append(op("sum", "AddV2", ["conv1", "conv2"]))
    gd = graph(*nodes)
    feeds = {"x": rng.normal(size=(1, 6, 6, 3)).astype(np.float32)}
    ref = run_graph(gd, feeds, ["sum"])
    res = apply("merge_duplicates", gd, ["x"], ["sum"])
    assert not res.report.modified
    (r,) = res.report.refused
    assert r.key == "pad2" and r.nodes == ["pad2", "pad1"] and "OpenCV" in r.reason
    assert opencv_check(res.graph_def, feeds, ["sum"], ref).max_abs_err < 1e-4
    merged = apply("merge_duplicates", gd, ["x"], ["sum"], keep_conv_pads=False)
    assert [m.key for m in merged.report.applied] == ["pad2"]
    np.testing.assert_allclose(run_graph(merged.graph_def, feeds, ["sum"])[0], ref[0],
                               rtol=1e-5, atol=1e-5)
    bad = opencv_check(merged.graph_def, feeds, ["sum"], ref)
    assert not bad.loads and "next_layers.size() == 1" in bad.error, bad
