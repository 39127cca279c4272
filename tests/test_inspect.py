"""Inspector and search logic (Qt-free) on real graphs built the way users build them."""
import numpy as np
import pytest
from tensorflow.core.framework import attr_value_pb2, tensor_shape_pb2, types_pb2

from surgeon_gui.core.model import values
from surgeon_gui.core.viewmodel import nodeinfo as ins
from surgeon_gui.core.model.examples import conv_bias_bn
from surgeon_gui.core.model.graph import Graph, GraphError, NodeDef, const_value, make_const


@pytest.fixture(scope="module")
def tf1(tf1_graph):
    gd, inputs, outputs = tf1_graph
    return Graph(gd, inputs, outputs)


@pytest.fixture(scope="module")
def nchw():
    gd, inputs, outputs = conv_bias_bn(data_format="NCHW")
    return Graph(gd, inputs, outputs)


# --------------------------------------------------------------------------- attributes
def test_conv_attributes_render_readably(tf1):
    d = ins.node_details(tf1, "dw/depthwise_1")
    assert d.op == "DepthwiseConv2dNative"
    assert d.attr("strides") == "[1, 2, 2, 1]"
    assert d.attr("padding") == "SAME"
    assert d.attr("data_format") == "NHWC"
    assert d.attr("T") == "float32"
    kinds = {a.name: a.kind for a in d.attrs}
    assert kinds["strides"] == "list(i)" and kinds["T"] == "type"
    assert kinds["padding"] == "string"


def test_nchw_and_placeholder_shape(nchw):
    assert ins.node_details(nchw, "Conv2D").attr("data_format") == "NCHW"
    assert ins.node_details(nchw, "BiasAdd").attr("data_format") == "NCHW"
    inp = ins.node_details(nchw, "input")
    assert inp.attr("shape") == "[?, 3, 8, 8]"
    assert inp.outputs == ["0: float32 [?, 3, 8, 8]"]
    assert ins.node_details(nchw, "w").outputs == ["0: float32 [3, 3, 3, 6]"]
    assert inp.attr("dtype") == "float32"
    bn = ins.node_details(nchw, "bn")
    assert bn.attr("is_training") == "false"
    assert bn.attr("epsilon") == "0.001"


def test_render_attr_kinds():
    a = attr_value_pb2.AttrValue
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in (-1, 224, 224, 3)])
    assert values.render_attr(a(shape=shape)) == "[?, 224, 224, 3]"
    assert values.render_attr(a(shape=tensor_shape_pb2.TensorShapeProto())) == "[]"
    assert values.render_attr(a(shape=tensor_shape_pb2.TensorShapeProto(unknown_rank=True))) \
        == "<unknown rank>"
    assert values.render_attr(a(type=types_pb2.DT_INT64)) == "int64"
    assert values.render_attr(a(list=a.ListValue(type=[types_pb2.DT_FLOAT, types_pb2.DT_INT32]))) \
        == "[float32, int32]"
    assert values.render_attr(a(list=a.ListValue(shape=[shape]))) == "[[?, 224, 224, 3]]"
    assert values.render_attr(a(list=a.ListValue(s=[b"loc:@w"]))) == "['loc:@w']"
    assert values.render_attr(a(f=0.5)) == "0.5"
    assert values.render_attr(a(s=b"\xff\xfe")).startswith("<2 bytes")
    assert values.render_attr(a(list=a.ListValue(i=list(range(100))))).endswith("(100 items)]")
    assert values.render_attr(a()) == "(unset)"


def test_tensor_attribute_is_summarised_not_dumped(tf1):
    d = ins.node_details(tf1, "conv1/weights", with_const=False)
    assert d.attr("value") == "float32 [3, 3, 3, 8], 216 values"
    small = ins.node_details(tf1, "bn1/cond/Const", with_const=False).attr("value")
    assert small.startswith("float32 [0] = []") or small.startswith("float32 [")


def test_inputs_and_consumers(tf1):
    d = ins.node_details(tf1, "conv1/Conv2D")
    assert [(i.producer, i.producer_op) for i in d.inputs] == [
        ("input", "Placeholder"), ("conv1/weights/read", "Identity")]
    assert [c.name for c in d.consumers] == ["conv1/BiasAdd"]
    merge = ins.node_details(tf1, "bn1/cond/Merge")
    # Merge reads both FusedBatchNorm branches; port numbers are kept.
    assert {i.producer for i in merge.inputs} == {"bn1/cond/FusedBatchNormV3",
                                                  "bn1/cond/FusedBatchNormV3_1"}
    sw = ins.node_details(tf1, "bn1/cond/Switch")
    assert [o.split(":")[0] for o in sw.outputs] == ["0", "1"]  # both Switch outputs are read
    # switch_t reads output port 1 of the Switch.
    assert ("bn1/cond/switch_t", 1) in {(c.name, c.port) for c in sw.consumers}


def test_unknown_node_is_a_clear_error(tf1):
    with pytest.raises(GraphError, match="no node named 'nope'"):
        ins.node_details(tf1, "nope")


# --------------------------------------------------------------------------- Const values
def test_const_stats_equal_numpy(tf1):
    node = tf1.node("conv1/weights")
    arr = const_value(node)
    s = values.const_stats(node, first=5, bins=10)
    assert s.dtype == "float32" and s.shape == [3, 3, 3, 8] and s.size == 216
    assert s.nbytes == arr.nbytes
    assert s.min == pytest.approx(float(arr.min()))
    assert s.max == pytest.approx(float(arr.max()))
    assert s.mean == pytest.approx(float(arr.astype(np.float64).mean()))
    assert s.std == pytest.approx(float(arr.astype(np.float64).std()))
    counts, edges = np.histogram(arr.astype(np.float64), bins=10)
    assert s.hist_counts == counts.tolist()
    assert s.hist_edges == pytest.approx(edges.tolist())
    assert sum(s.hist_counts) == 216
    first = arr.reshape(-1)[:5]
    assert s.first_values.startswith("[" + ", ".join(f"{v:.6g}" for v in first) + ", …")


def test_const_stats_nan_inf_int_bool_string_scalar():
    s = values.const_stats(make_const("f", np.array([1.0, np.nan, np.inf, -2.0, 0.0], np.float32)))
    assert (s.nan_count, s.inf_count, s.zero_count) == (1, 1, 1)
    assert (s.min, s.max) == (-2.0, 1.0)
    assert sum(s.hist_counts) == 3
    s = values.const_stats(make_const("i", np.array([0, 1, 1, 3], np.int32)))
    assert s.hist_counts == [1, 2, 0, 1]  # one bin per integer
    s = values.const_stats(make_const("b", np.array([True, False, True])))
    assert s.hist_counts == [1, 2]
    s = values.const_stats(make_const("s", np.array([b"abc", b"de"])))
    assert not s.numeric and s.first_values == "['abc', 'de']"
    s = values.const_stats(make_const("x", np.float32(2.5)))
    assert s.shape == [] and s.first_values == "2.5" and s.std == 0.0


def test_const_of_non_const_and_corrupt():
    with pytest.raises(GraphError, match="not a Const"):
        values.const_array(NodeDef(name="r", op="Relu"))
    bad = make_const("bad", np.zeros([4], np.float32))
    bad.attr["value"].tensor.tensor_content = b"\x00\x01\x02"  # not 16 bytes
    with pytest.raises(GraphError, match="cannot decode the value of bad"):
        values.const_stats(bad)


def test_save_const_npy(tmp_path, tf1):
    node = tf1.node("fc/weights")
    path = values.save_const_npy(node, tmp_path / "w.npy")
    np.testing.assert_array_equal(np.load(path), const_value(node))
    with pytest.raises(FileExistsError):
        values.save_const_npy(tf1.node("conv1/weights"), path)
    values.save_const_npy(tf1.node("conv1/weights"), path, overwrite=True)
    assert np.load(path).shape == (3, 3, 3, 8)


# --------------------------------------------------------------------------- groups
def test_group_summary(tf1):
    s = ins.group_summary(tf1, "bn1")
    assert s.node_count == 24
    assert s.op_histogram == {"Switch": 9, "Const": 6, "Identity": 6, "FusedBatchNormV3": 2,
                              "Merge": 1}
    assert s.parameter_count == 4 * 8 + 2 * 0  # gamma/beta/mean/var of 8 channels
    assert s.children["cond"] == 16
    assert s.outputs_to_outside == 1  # only the Merge leaves the group (into Relu)
    assert s.main_ops(2) == ["Switch", "FusedBatchNormV3"]
    conv = ins.group_summary(tf1, "conv1")
    assert conv.parameter_count == 3 * 3 * 3 * 8 + 8
    assert conv.parameter_bytes == 4 * conv.parameter_count
    whole = ins.group_summary(tf1, "", members=list(tf1.nodes))
    assert whole.node_count == len(tf1) and whole.parameter_count == tf1.parameter_count()
    assert whole.inputs_from_outside == 0 and whole.outputs_to_outside == 0


# --------------------------------------------------------------------------- search
def names(hits):
    return [h.name for h in hits]


def test_search_by_name_ranked(tf1):
    hits = names(ins.search(tf1, "weights"))
    assert set(hits) == {"conv1/weights", "conv2/weights", "fc/weights", "conv1/weights/read",
                         "conv2/weights/read", "fc/weights/read"}
    # Nodes whose own name is "weights" come before the /read Identities.
    assert set(hits[:3]) == {"conv1/weights", "conv2/weights", "fc/weights"}
    assert names(ins.search(tf1, "probs")) == ["probs"]
    assert names(ins.search(tf1, "bn1/cond/.*merge$", regex=True)) == ["bn1/cond/Merge"]
    assert ins.search(tf1, "   ") == []
    assert ins.search(tf1, "no_such_thing") == []
    with pytest.raises(ValueError, match="regular expression"):
        ins.search(tf1, "([", regex=True)


def test_search_by_op(tf1):
    merges = names(ins.search(tf1, "merge", mode="op"))
    assert merges == [n for n in tf1.nodes if tf1.nodes[n].op == "Merge"]
    assert len(merges) == 5  # four batch-norm conds and the keep_prob cond
    # Exact op first (case-insensitive), then ops that merely contain the query.
    conv = ins.search(tf1, "conv2d", mode="op")
    assert [h.op for h in conv] == ["Conv2D", "Conv2D", "DepthwiseConv2dNative"]
    fb = ins.search(tf1, "FusedBatchNorm", mode="op")
    assert {h.op for h in fb} == {"FusedBatchNormV3"} and len(fb) == 6


def test_search_by_attribute_value(tf1, nchw):
    assert names(ins.search(tf1, "strides=[1, 2, 2, 1]", mode="attr")) == ["dw/depthwise_1"]
    assert names(ins.search(nchw, "data_format=NCHW", mode="attr")) == ["Conv2D", "BiasAdd",
                                                                        "bn"]
    valid = names(ins.search(tf1, "padding=VALID", mode="attr"))
    assert valid == ["conv2/Conv2D"]
    # A bare value searches every attribute; exact values rank before partial ones.
    hits = ins.search(nchw, "[?, 3, 8, 8]", mode="attr")
    assert names(hits) == ["input"] and hits[0].detail == "shape = [?, 3, 8, 8]"
    # "key=" lists every node carrying the attribute.
    assert names(ins.search(tf1, "is_training=", mode="attr")) == [
        n for n in tf1.nodes if "is_training" in tf1.nodes[n].attr]
    with pytest.raises(ValueError, match="unknown search mode"):
        ins.search(tf1, "x", mode="colour")


def test_search_by_device(tf1):
    gd = type(tf1.graph_def)()
    gd.CopyFrom(tf1.graph_def)
    for n in gd.node:
        if n.name in ("conv1/Conv2D", "probs"):
            n.device = "/device:GPU:0"
    g = Graph(gd)
    assert names(ins.search(g, "device=gpu", mode="attr")) == ["conv1/Conv2D", "probs"]
    assert ins.search(tf1, "device=gpu", mode="attr") == []


def test_const_stats_of_half_and_bfloat16_and_empty():
    import tensorflow as tf
    half = np.array([0.5, -1.0, 2.0, np.nan], np.float16)
    s = values.const_stats(make_const("h", half))
    assert s.dtype == "float16" and (s.min, s.max, s.nan_count) == (-1.0, 2.0, 1)
    assert s.mean == pytest.approx(0.5)
    bf = np.array([1.5, 2.0, 3.0], dtype=tf.bfloat16.as_numpy_dtype)
    s = values.const_stats(make_const("bf", bf))
    assert s.dtype == "bfloat16" and (s.min, s.max) == (1.5, 3.0)
    assert sum(s.hist_counts) == 3
    s = values.const_stats(make_const("e", np.zeros([0, 3], np.float32)))
    assert s.shape == [0, 3] and s.size == 0 and not s.numeric and s.first_values == "[]"


def test_const_stats_match_numpy_on_a_large_tensor():
    rng = np.random.default_rng(1)
    big = rng.normal(3.0, 2.0, [512, 1024]).astype(np.float32)
    big[0, :7] = np.inf
    s = values.const_stats(make_const("big", big))
    fin = big[np.isfinite(big)].astype(np.float64)
    assert s.inf_count == 7 and s.nan_count == 0 and s.size == big.size
    assert s.mean == pytest.approx(fin.mean(), rel=1e-9)
    assert s.std == pytest.approx(fin.std(), rel=1e-9)
    assert (s.min, s.max) == (float(fin.min()), float(fin.max()))
    assert sum(s.hist_counts) == fin.size
