"""Control-flow passes: training flags, Switch/Merge, functions, dropout, identities.

Small graph factories with exact node lists, plus numeric before/after checks on the real TF1
(v1 cond) and TF2 (functional If) model factories.
"""
import numpy as np
import pytest
import tensorflow as tf

from surgeon_gui.core.model.graph import Graph, GraphDef, make_const
from surgeon_gui.core.model.ops import UNIFORM_RANDOM_OPS
from surgeon_gui.core.passes import (inline_functions, remove_dropout, remove_identity,
                                     remove_switch_merge, training_flags)
from surgeon_gui.core.running.runner import make_feeds, run_graph

v1 = tf.compat.v1


# ------------------------------------------------------------------------------- helpers
def _bytes(graph_def):
    return graph_def.SerializeToString(deterministic=True)


def run(module, graph, select=None, **params):
    """Run a pass and check it left its input GraphDef untouched and made a valid graph."""
    before = _bytes(graph.graph_def)
    result = module.PASS.run(graph, select=select, **params)
    assert _bytes(graph.graph_def) == before, "the pass edited its input"
    assert Graph(result.graph_def).problems() == []
    again = module.PASS.run(graph, select=select, **params)
    assert again.graph_def.SerializeToString() == result.graph_def.SerializeToString(), \
        "the pass is not deterministic"
    return result


def chain(graph, *steps):
    """Run passes in order (module or (module, params)); returns the last graph and reports."""
    reports = []
    for step in steps:
        module, params = step if isinstance(step, tuple) else (step, {})
        res = run(module, graph, **params)
        reports.append(res.report)
        graph = Graph(res.graph_def, graph.given_inputs, graph.given_outputs)
    return graph, reports


def assert_sorted(graph_def):
    seen = set()
    for n in graph_def.node:
        late = [i for i in n.input if i.lstrip("^").split(":")[0] not in seen]
        assert not late, f"{n.name} comes before its input(s) {late}"
        seen.add(n.name)


def names(graph_def):
    return [n.name for n in graph_def.node]


def ops(graph_def):
    return {n.op for n in graph_def.node}


def node(graph_def, name):
    return next(n for n in graph_def.node if n.name == name)


def v1_graph(build):
    """Build a tf.Graph with v1 control flow (Switch/Merge) and return its GraphDef."""
    v1.disable_control_flow_v2()
    try:
        g = tf.Graph()
        with g.as_default():
            build()
        return g.as_graph_def()
    finally:
        v1.enable_control_flow_v2()


def cond_graph(pred="const", value=False):
    """x → tf.cond(flag, x*2, x+1) → out, with the flag a Const, Placeholder or
    PlaceholderWithDefault named is_training."""
    def build():
        x = v1.placeholder(tf.float32, [2], name="x")
        if pred == "const":
            p = tf.constant(value, name="is_training")
        elif pred == "placeholder":
            p = v1.placeholder(tf.bool, [], name="is_training")
        elif pred == "default":
            p = v1.placeholder_with_default(value, [], name="is_training")
        elif pred == "not":
            p = tf.logical_not(tf.identity(tf.constant(not value), name="flag_id"), name="flag")
        y = tf.cond(p, lambda: x * 2.0, lambda: x + 1.0, name="cond")
        tf.identity(y, name="out")
    return v1_graph(build)


def assert_same_outputs(before: Graph, after_def: GraphDef, feeds, outputs, **tol):
    a = run_graph(before.graph_def, feeds, outputs)
    b = run_graph(after_def, feeds, outputs)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, **(tol or dict(rtol=1e-5, atol=1e-6)))


X2 = {"x": np.array([3.0, -1.0], np.float32)}


# ------------------------------------------------------------------------------- training_flags
def test_training_flags_placeholder_with_default_becomes_const():
    g = Graph(cond_graph("default"), ["x"], ["out"])
    res = run(training_flags, g)
    assert [m.key for m in res.report.matches] == ["is_training"]
    flag = node(res.graph_def, "is_training")
    assert flag.op == "Const" and list(flag.input) == []
    assert flag.attr["value"].tensor.bool_val == [False]
    assert "is_training/input" not in names(res.graph_def)  # the old default is gone
    assert res.report.removed == {"is_training/input"}
    assert res.report.changed == {"is_training"}


def test_training_flags_value_true_and_names_param():
    g = Graph(cond_graph("placeholder"), ["x"], ["out"])
    res = run(training_flags, g, value=True, names="is_training")
    assert node(res.graph_def, "is_training").attr["value"].tensor.bool_val == [True]
    res = run(training_flags, g, names="x,nosuch")
    assert res.report.matches == []
    reasons = {r.key: r.reason for r in res.report.refused}
    assert "no node named 'nosuch'" in reasons["nosuch"]
    assert "float32, not bool" in reasons["x"]  # forced by name, still refused for its dtype
    assert node(res.graph_def, "x").op == "Placeholder"


def test_training_flags_detects_bool_predicate_by_use():
    def build():
        x = v1.placeholder(tf.float32, [2], name="x")
        p = v1.placeholder(tf.bool, [], name="mode_switch")
        tf.identity(tf.cond(p, lambda: x * 2.0, lambda: x + 1.0, name="cond"), name="out")
    g = Graph(v1_graph(build), ["x"], ["out"])
    res = run(training_flags, g)
    assert [m.key for m in res.report.matches] == ["mode_switch"]
    assert "decides the cond cond/Switch" in res.report.matches[0].description


def test_training_flags_refuses_non_bool_and_non_scalar():
    gd = GraphDef()
    gd.node.append(make_const("is_training/input", np.int32(0)))
    n = gd.node.add(name="is_training", op="PlaceholderWithDefault", input=["is_training/input"])
    n.attr["dtype"].type = tf.int32.as_datatype_enum
    n.attr["shape"].shape.SetInParent()
    m = gd.node.add(name="phase_train", op="Placeholder")
    m.attr["dtype"].type = tf.bool.as_datatype_enum
    m.attr["shape"].shape.dim.add(size=4)
    res = run(training_flags, Graph(gd))
    assert res.report.matches == []
    reasons = {r.key: r.reason for r in res.report.refused}
    assert "int32, not bool" in reasons["is_training"]
    assert "[4], not a scalar" in reasons["phase_train"]
    assert _bytes(res.graph_def) == _bytes(gd)
    assert not res.report.modified


def test_training_flags_preview_and_select():
    def build():
        x = v1.placeholder(tf.float32, [2], name="x")
        a = v1.placeholder_with_default(False, [], name="is_training")
        b = v1.placeholder_with_default(False, [], name="keras_learning_phase")
        tf.identity(tf.where(tf.logical_or(a, b), x, -x), name="out")
    g = Graph(v1_graph(build), ["x"], ["out"])
    preview = run(training_flags, g, select=set())
    assert [m.key for m in preview.report.matches] == ["is_training", "keras_learning_phase"]
    assert not any(m.applied for m in preview.report.matches)
    assert _bytes(preview.graph_def) == _bytes(g.graph_def)
    one = run(training_flags, g, select={"keras_learning_phase"})
    assert node(one.graph_def, "keras_learning_phase").op == "Const"
    assert node(one.graph_def, "is_training").op == "PlaceholderWithDefault"
    assert [m.applied for m in one.report.matches] == [False, True]


# ------------------------------------------------------------------------------- Switch/Merge
def test_switch_merge_keeps_false_branch_exactly():
    g = Graph(cond_graph("const", False), ["x"], ["out"])
    res = run(remove_switch_merge, g)
    assert [m.key for m in res.report.matches] == ["cond/Merge"]
    assert names(res.graph_def) == ["x", "cond/add/y", "cond/add", "out"]
    assert list(node(res.graph_def, "cond/add").input) == ["x", "cond/add/y"]
    assert list(node(res.graph_def, "cond/add/y").input) == []  # ^cond/switch_f dropped
    assert list(node(res.graph_def, "out").input) == ["cond/add"]
    assert_same_outputs(g, res.graph_def, X2, ["out"])


def test_switch_merge_keeps_true_branch_and_traces_ports_not_order():
    gd = cond_graph("const", True)
    merge = node(gd, "cond/Merge")
    merge.input[:] = list(reversed(merge.input))  # the true branch now comes first
    g = Graph(gd, ["x"], ["out"])
    res = run(remove_switch_merge, g)
    assert "keeps the true branch" in res.report.matches[0].description
    assert names(res.graph_def) == ["x", "cond/mul/y", "cond/mul", "out"]
    out = run_graph(res.graph_def, X2, ["out"])[0]
    np.testing.assert_array_equal(out, [6.0, -2.0])


def test_switch_merge_evaluates_constant_predicate_subgraph():
    g = Graph(cond_graph("not", False), ["x"], ["out"])  # LogicalNot(Identity(Const True))
    res = run(remove_switch_merge, g)
    assert "predicate flag = False" in res.report.matches[0].description
    np.testing.assert_array_equal(run_graph(res.graph_def, X2, ["out"])[0], [4.0, 0.0])
    assert "Switch" not in ops(res.graph_def) and "Merge" not in ops(res.graph_def)
    assert_same_outputs(g, res.graph_def, X2, ["out"])


def test_switch_merge_refuses_placeholder_predicate():
    g = Graph(cond_graph("placeholder"), ["x", "is_training"], ["out"])
    res = run(remove_switch_merge, g)
    assert res.report.matches == []
    (refusal,) = res.report.refused
    assert refusal.key == "cond/Merge"
    assert "not constant" in refusal.reason and "is_training (Placeholder)" in refusal.reason
    assert not res.report.modified


def test_switch_merge_value_index_and_protected_merge():
    gd = cond_graph("const", False)
    idx = gd.node.add(name="which", op="Identity", input=["cond/Merge:1"])
    idx.attr["T"].type = tf.int32.as_datatype_enum
    g = Graph(gd, ["x"], ["cond/Merge", "which"])
    res = run(remove_switch_merge, g)
    merge = node(res.graph_def, "cond/Merge")  # a named output keeps its name
    assert merge.op == "Identity" and list(merge.input) == ["cond/add"]
    assert list(node(res.graph_def, "which").input) == ["cond/Merge/value_index"]
    before = run_graph(gd, X2, ["cond/Merge", "which"])
    after = run_graph(res.graph_def, X2, ["cond/Merge", "which"])
    np.testing.assert_array_equal(before[0], after[0])
    assert before[1] == after[1] == 0


def test_switch_merge_nested_cond():
    def build():
        x = v1.placeholder(tf.float32, [2], name="x")
        p = tf.constant(True, name="outer_flag")
        q = tf.constant(False, name="inner_flag")
        y = tf.cond(p, lambda: tf.cond(q, lambda: x * 3.0, lambda: x - 5.0, name="inner"),
                    lambda: x + 1.0, name="outer")
        tf.identity(y, name="out")
    g = Graph(v1_graph(build), ["x"], ["out"])
    res = run(remove_switch_merge, g)
    assert res.report.matches
    assert not ops(res.graph_def) & {"Switch", "Merge"}
    np.testing.assert_array_equal(run_graph(res.graph_def, X2, ["out"])[0], [-2.0, -6.0])
    assert_same_outputs(g, res.graph_def, X2, ["out"])


def test_switch_merge_refuses_while_loop():
    def build():
        i = tf.constant(0, name="start")
        r = tf.while_loop(lambda i: i < 3, lambda i: i + 1, [i], name="loop")
        tf.identity(r, name="out")
    g = Graph(v1_graph(build), [], ["out"])
    res = run(remove_switch_merge, g)
    assert res.report.matches == []
    assert any("while loop" in r.reason for r in res.report.refused)
    assert not res.report.modified


def test_switch_merge_preview_and_select(tf1_graph):
    gd, ins, outs = tf1_graph
    g, _ = chain(Graph(gd, ins, outs), training_flags)
    preview = run(remove_switch_merge, g, select=set())
    keys = [m.key for m in preview.report.matches]
    assert len(keys) == 5 and "bn1/cond/Merge" in keys
    assert _bytes(preview.graph_def) == _bytes(g.graph_def)
    one = run(remove_switch_merge, g, select={"bn1/cond/Merge"})
    left = Graph(one.graph_def)
    assert "bn1/cond/Merge" not in left.nodes and "bn2/cond/Merge" in left.nodes
    assert [m.key for m in one.report.matches if m.applied] == ["bn1/cond/Merge"]
    feeds = make_feeds(Graph(gd, ins, outs))
    assert_same_outputs(Graph(gd), one.graph_def, feeds, outs)


def test_tf1_training_flags_then_switch_merge(tf1_graph):
    gd, ins, outs = tf1_graph
    g = Graph(gd, ins, outs)
    after, (flags, sm) = chain(g, training_flags, remove_switch_merge)
    assert [m.key for m in flags.matches] == ["is_training"]
    assert len(sm.matches) == 5 and not sm.refused
    assert not ops(after.graph_def) & {"Switch", "Merge", "PlaceholderWithDefault"}
    # The training branches are gone: no batch norm in training mode, no moments.
    fbn = [n for n in after.graph_def.node if n.op == "FusedBatchNormV3"]
    assert len(fbn) == 3 and not any(n.attr["is_training"].b for n in fbn)
    feeds = make_feeds(g)
    assert_same_outputs(g, after.graph_def, feeds, outs)
    with_flag = dict(feeds, is_training=np.array(False))
    np.testing.assert_allclose(run_graph(gd, with_flag, outs)[0],
                               run_graph(after.graph_def, feeds, outs)[0], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------- inline_functions
@tf.function(autograph=False)
def _inner(x):
    return x * 2.0 + 1.0, x - 1.0


@tf.function(autograph=False)
def _outer(x):
    a, b = _inner(x)
    i = tf.while_loop(lambda i: i < 3, lambda i: i + 1, [tf.constant(0)])
    return tf.identity(a * b, name="out"), i


def call_graph():
    """x → PartitionedCall(inner, 2 outputs) → mul → out; plus a StatelessWhile."""
    cf = _outer.get_concrete_function(tf.TensorSpec([2], tf.float32, name="x"))
    return cf.graph.as_graph_def()


def test_inline_partitioned_call_two_outputs_and_refuse_while():
    gd = call_graph()
    g = Graph(gd, ["x"], ["Identity", "Identity_1"])
    res = run(inline_functions, g)
    assert [m.key for m in res.report.matches] == ["PartitionedCall"]
    (refusal,) = res.report.refused
    assert refusal.key == "while" and "loops are not inlined" in refusal.reason
    out = Graph(res.graph_def)
    assert "PartitionedCall" not in ops(res.graph_def)
    assert out.nodes["while"].op == "StatelessWhile"
    mul = node(res.graph_def, "mul")
    assert all(i.startswith("PartitionedCall/") for i in mul.input)
    assert_sorted(res.graph_def)
    # the inlined function is dropped from the library; the loop's functions stay
    lib = sorted(f.signature.name for f in res.graph_def.library.function)
    assert lib == sorted(f.signature.name for f in gd.library.function
                         if not f.signature.name.startswith("__inference__inner"))
    assert_same_outputs(g, res.graph_def, X2, ["Identity", "Identity_1"])


def test_inline_refuses_function_it_cannot_convert():
    gd = call_graph()
    fn = next(f for f in gd.library.function if f.signature.name.startswith("__inference__inner"))
    fn.node_def[-1].op = "NoSuchOp"
    res = run(inline_functions, Graph(gd, ["x"], ["Identity"]))
    assert res.report.matches == [] and not res.report.modified
    reasons = {r.key: r.reason for r in res.report.refused}
    assert "uses the op NoSuchOp, which this TensorFlow does not register" in \
        reasons["PartitionedCall"]
    assert "loops are not inlined" in reasons["while"]

def test_inline_keeps_a_named_call_output():
    g = Graph(call_graph(), ["x"], ["PartitionedCall"])
    res = run(inline_functions, g)
    assert_sorted(res.graph_def)
    kept = node(res.graph_def, "PartitionedCall")
    assert kept.op == "IdentityN" and len([i for i in kept.input if i[0] != "^"]) == 2
    a = run_graph(g.graph_def, X2, ["PartitionedCall:0", "PartitionedCall:1"])
    b = run_graph(res.graph_def, X2, ["PartitionedCall:0", "PartitionedCall:1"])
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y)


def test_inline_refuses_non_constant_cond(tf2_graph):
    gd, ins, outs = tf2_graph
    res = run(inline_functions, Graph(gd, ins, outs))
    assert res.report.matches == []
    assert sorted(r.key for r in res.report.refused) == ["cond", "cond_1", "cond_2"]
    assert all("training (Placeholder)" in r.reason for r in res.report.refused)
    assert not res.report.modified


def test_tf2_training_flags_then_inline(tf2_graph):
    gd, ins, outs = tf2_graph
    g = Graph(gd, ins, outs)
    after, (flags, inl) = chain(g, training_flags, inline_functions)
    assert [m.key for m in flags.matches] == ["training"]
    assert node(after.graph_def, "training").op == "Const"  # a given input keeps its name
    assert sorted(m.key for m in inl.matches) == ["cond", "cond_1", "cond_2"]
    assert all("else_branch" in m.description for m in inl.matches)
    assert not ops(after.graph_def) & {"If", "StatelessIf", "PartitionedCall"}
    assert len(after.graph_def.library.function) == 0
    assert_sorted(gd)
    assert_sorted(after.graph_def)  # inlined bodies sit where their If was
    fbn = [n for n in after.graph_def.node if n.op == "FusedBatchNormV3"]
    assert len(fbn) == 2 and not any(n.attr["is_training"].b for n in fbn)
    feeds = make_feeds(g)
    assert feeds["training"] == np.array(False)
    np.testing.assert_allclose(run_graph(gd, feeds, outs)[0],
                               run_graph(after.graph_def, {"input": feeds["input"]}, outs)[0],
                               rtol=1e-5, atol=1e-6)
    # feeding the old input still works: TensorFlow lets you feed a Const
    assert_same_outputs(g, after.graph_def, feeds, outs)


def test_inline_preview_and_select(tf2_graph):
    gd, ins, outs = tf2_graph
    g, _ = chain(Graph(gd, ins, outs), training_flags)
    preview = run(inline_functions, g, select=set())
    assert len(preview.report.matches) == 3 and not preview.report.modified
    assert _bytes(preview.graph_def) == _bytes(g.graph_def)
    one = run(inline_functions, g, select={"cond_1"})
    left = {n.name: n.op for n in one.graph_def.node}
    assert "cond_1" not in left and left["cond"] == "If" and left["cond_2"] == "If"
    assert len(one.graph_def.library.function) == 4  # cond_1's two branches are gone
    feeds = make_feeds(Graph(gd, ins, outs))
    assert_same_outputs(Graph(gd), one.graph_def, feeds, outs)



@tf.function(autograph=False)
def _nested(x, training, k):
    y = tf.cond(training,
                lambda: tf.cond(x[0] > 0, lambda: x * 2.0, lambda: x * 3.0),
                lambda: tf.cond(training, lambda: x - 1.0, lambda: x + 7.0))
    return tf.switch_case(k, [lambda: y * 10.0, lambda: y * 100.0])


def nested_if_case_graph(k=1):
    """StatelessIf on `training` whose branches hold another If, then a StatelessCase on `k`
    (made a Const here, as strip_unused or a user would)."""
    cf = _nested.get_concrete_function(tf.TensorSpec([2], tf.float32, name="x"),
                                       tf.TensorSpec([], tf.bool, name="training"),
                                       tf.TensorSpec([], tf.int32, name="k"))
    gd = cf.graph.as_graph_def()
    node(gd, "k").CopyFrom(make_const("k", np.int32(k)))
    return gd


@pytest.mark.parametrize("training", [False, True])
def test_inline_nested_if_and_case(training):
    g = Graph(nested_if_case_graph(k=1), ["x", "training"], ["Identity"])
    after, (flags, inl) = chain(g, (training_flags, {"value": training}), inline_functions)
    keys = [m.key for m in inl.matches]
    assert keys[:2] == ["cond", "switch_case/indexed_case"]
    assert "branch index 1" in inl.matches[1].description
    left = {n.op for n in after.graph_def.node}
    if training:  # the inner cond tests x[0] > 0: data-dependent, refused and kept
        (refusal,) = inl.refused
        assert refusal.key == "cond/cond/cond" and "not constant" in refusal.reason
        assert "StatelessIf" in left and len(after.graph_def.library.function) == 2
    else:  # the inner cond is on `training` again: inlined in the same run
        assert keys[2] == "cond/cond/cond" and not inl.refused
        assert not left & {"If", "StatelessIf", "StatelessCase", "Case"}
        assert len(after.graph_def.library.function) == 0
    assert_sorted(after.graph_def)
    feeds = {"x": np.array([1.5, -2.0], np.float32), "training": np.array(training)}
    expected = (feeds["x"] * 2.0 if training else feeds["x"] + 7.0) * 100.0
    np.testing.assert_allclose(run_graph(after.graph_def, feeds, ["Identity"])[0], expected)
    np.testing.assert_allclose(run_graph(g.graph_def, feeds, ["Identity"])[0], expected)


# ------------------------------------------------------------------------------- remove_dropout
X24 = {"x": np.arange(8, dtype=np.float32).reshape(2, 4) - 3.0}


def dropout_graph(kind, keep=1.0):
    """x → dropout → out (Identity) in one of the forms dropout has been written in."""
    def build():
        x = v1.placeholder(tf.float32, [2, 4], name="x")
        # the rate as a tensor: TF skips dropout for a python rate of 0
        rate = tf.constant(1.0 - keep, name="rate") if kind in (
            "rate", "noise_shape", "stateless") else None
        if kind == "v1_floor":  # TF 1.x tf.nn.dropout(x, keep_prob), op for op
            with tf.name_scope("dropout"):
                kp = tf.constant(keep, name="keep_prob")
                u = v1.random_uniform(tf.shape(x), dtype=tf.float32)
                binary = tf.floor(kp + u)
                y = tf.multiply(tf.math.divide(x, kp), binary, name="mul")
        elif kind == "cast":  # TF 1.14: x * (1/keep) * cast(u >= rate)
            with tf.name_scope("dropout"):
                u = v1.random_uniform(tf.shape(x))
                mask = tf.cast(u >= 1.0 - keep, tf.float32)
                y = tf.multiply(x * tf.constant(1.0 / keep), mask, name="mul")
        elif kind == "rate":
            y = tf.nn.dropout(x, rate=rate, name="dropout")
        elif kind == "noise_shape":
            y = tf.nn.dropout(x, rate=rate, noise_shape=[1, 4], name="dropout")
        elif kind == "stateless":  # what Keras 3's Dropout layer builds in training mode
            y = tf.nn.experimental.stateless_dropout(x, rate=rate, seed=[1, 2],
                                                     name="dropout")
        elif kind == "fed_keep_prob":
            kp = v1.placeholder_with_default(keep, [], name="keep_prob")
            y = v1.nn.dropout(x, keep_prob=kp, name="dropout")
        tf.identity(y, name="out")
    return v1_graph(build)


@pytest.mark.parametrize("kind", ["v1_floor", "cast", "rate", "noise_shape", "stateless"])
def test_dropout_with_keep_prob_one_is_removed_exactly(kind):
    g = Graph(dropout_graph(kind, keep=1.0), ["x"], ["out"])
    res = run(remove_dropout, g)
    (m,) = res.report.matches
    assert "rate 0, so it already computes x exactly" in m.description
    assert names(res.graph_def) == ["x", "out"]  # the rate constant went too
    assert list(node(res.graph_def, "out").input) == ["x"]
    np.testing.assert_array_equal(run_graph(g.graph_def, X24, ["out"])[0],
                                  run_graph(res.graph_def, X24, ["out"])[0])


@pytest.mark.parametrize("kind", ["v1_floor", "rate", "stateless"])
def test_dropout_that_still_drops_becomes_its_expectation(kind):
    g = Graph(dropout_graph(kind, keep=0.5), ["x"], ["out"])
    before = run_graph(g.graph_def, X24, ["out"])[0]
    assert np.any(before == 0) or np.any(before == 2 * X24["x"])  # really random
    res = run(remove_dropout, g)
    (m,) = res.report.matches
    assert "drops at random at inference (rate 0.5)" in m.description
    assert "expectation" in m.description
    assert not ops(res.graph_def) & UNIFORM_RANDOM_OPS
    np.testing.assert_array_equal(run_graph(res.graph_def, X24, ["out"])[0], X24["x"])
    refused = run(remove_dropout, g, allow_random=False)
    assert refused.report.matches == [] and not refused.report.modified
    assert "allow_random is off" in refused.report.refused[0].reason


def test_dropout_refuses_fed_rate_and_wrong_scale():
    g = Graph(dropout_graph("fed_keep_prob", keep=1.0), ["x"], ["out"])
    res = run(remove_dropout, g)
    assert res.report.matches == [] and not res.report.modified
    assert "keep_prob (PlaceholderWithDefault)" in res.report.refused[0].reason
    gd = dropout_graph("rate", keep=0.5)
    scale = node(gd, "dropout/Const")
    scale.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.float32(3.0)))
    res = run(remove_dropout, Graph(gd, ["x"], ["out"]))
    assert res.report.matches == []
    assert "divisor 2.5 does not match 1-rate = 0.5" in res.report.refused[0].reason
    gd = dropout_graph("cast", keep=0.5)
    scale = node(gd, "dropout/Const")
    scale.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.float32(3.0)))
    res = run(remove_dropout, Graph(gd, ["x"], ["out"]))
    assert "scale 3 does not match 1/(1-rate) = 2" in res.report.refused[0].reason


def test_dropout_refuses_shared_mask():
    gd = dropout_graph("rate", keep=0.5)
    spy = gd.node.add(name="spy", op="Cast", input=["dropout/GreaterEqual"])
    spy.attr["SrcT"].type = tf.bool.as_datatype_enum
    spy.attr["DstT"].type = tf.float32.as_datatype_enum
    res = run(remove_dropout, Graph(gd, ["x"], ["out", "spy"]))
    assert res.report.matches == []
    assert "dropout/GreaterEqual is read by 2 nodes" in res.report.refused[0].reason


def test_dropout_named_output_keeps_its_name_and_select():
    g = Graph(dropout_graph("rate", keep=1.0), ["x"], ["dropout/SelectV2"])
    preview = run(remove_dropout, g, select=set())
    assert [m.key for m in preview.report.matches] == ["dropout/SelectV2"]
    assert not preview.report.modified
    res = run(remove_dropout, g, select={"dropout/SelectV2"})
    kept = node(res.graph_def, "dropout/SelectV2")
    assert kept.op == "Identity" and list(kept.input) == ["x"]
    assert "RandomUniform" not in ops(res.graph_def)


def test_keras2_style_dropout_behind_learning_phase_goes_with_its_cond():
    """Keras 2 in a TF1 graph: K.in_train_phase = tf.cond(keras_learning_phase, dropped, x)."""
    def build():
        x = v1.placeholder(tf.float32, [2, 4], name="x")
        phase = v1.placeholder_with_default(False, [], name="keras_learning_phase")
        y = tf.cond(phase, lambda: tf.nn.dropout(x, rate=0.5), lambda: tf.identity(x),
                    name="dropout/cond")
        tf.identity(y * 2.0, name="out")
    g = Graph(v1_graph(build), ["x"], ["out"])
    assert "RandomUniform" in ops(g.graph_def)
    after, (flags, sm) = chain(g, training_flags, remove_switch_merge)
    assert [m.key for m in flags.matches] == ["keras_learning_phase"]
    assert [m.key for m in sm.matches] == ["dropout/cond/Merge"]
    assert not ops(after.graph_def) & {"RandomUniform", "Switch", "Merge"}
    np.testing.assert_array_equal(run_graph(after.graph_def, X24, ["out"])[0], X24["x"] * 2)
    assert_same_outputs(g, after.graph_def, X24, ["out"])

def test_tf1_dropout_after_flags_and_switch_merge(tf1_graph):
    gd, ins, outs = tf1_graph
    g = Graph(gd, ins, outs)
    direct = run(remove_dropout, g)
    assert direct.report.matches == [] and not direct.report.modified
    assert "keep_prob/Merge (Merge)" in direct.report.refused[0].reason
    after, reports = chain(g, training_flags, remove_switch_merge, remove_dropout)
    (m,) = reports[-1].matches
    assert m.key == "dropout/SelectV2" and "rate 0" in m.description
    assert not ops(after.graph_def) & {"RandomUniform", "SelectV2", "GreaterEqual", "Merge"}
    assert list(node(after.graph_def, "fc/MatMul").input)[0] == "gap"
    feeds = make_feeds(g)
    assert_same_outputs(g, after.graph_def, feeds, outs)


# ------------------------------------------------------------------------------- remove_identity
def _n(gd, name, op, inputs=(), **attrs):
    n = gd.node.add(name=name, op=op, input=list(inputs))
    for k, v in attrs.items():
        if isinstance(v, bytes):
            n.attr[k].s = v
        else:
            n.attr[k].type = v
    return n


def identity_graph():
    """x → CheckNumerics → StopGradient ┐
       k → Identity (k_read, ^p) ────────┴ add → out (Identity, ^done);
       done = NoOp(^add); init = NoOp(^k) reads nothing and nothing reads it."""
    f32 = tf.float32.as_datatype_enum
    gd = GraphDef()
    for name in ("x", "p"):
        ph = _n(gd, name, "Placeholder", dtype=f32)
        ph.attr["shape"].shape.dim.add(size=2)
    gd.node.append(make_const("k", np.array([1.0, 2.0], np.float32)))
    _n(gd, "k_read", "Identity", ["k", "^p"], T=f32)
    _n(gd, "check", "CheckNumerics", ["x"], T=f32, message=b"bad x")
    _n(gd, "sg", "StopGradient", ["check"], T=f32)
    _n(gd, "add", "AddV2", ["sg", "k_read"], T=f32)
    _n(gd, "done", "NoOp", ["^add"])
    _n(gd, "out", "Identity", ["add", "^done"], T=f32)
    _n(gd, "init", "NoOp", ["^k"])
    return gd


def test_identity_bypass_exact():
    g = Graph(identity_graph(), ["x", "p"], ["out"])
    res = run(remove_identity, g)
    assert [m.key for m in res.report.matches] == ["k_read", "check", "sg", "done"]
    assert names(res.graph_def) == ["x", "p", "k", "add", "out", "init"]
    assert list(node(res.graph_def, "add").input) == ["x", "k", "^p"]  # k_read's ^p kept
    assert list(node(res.graph_def, "out").input) == ["add"]  # ^done → ^add, implied by data
    reasons = {r.key: r.reason for r in res.report.refused}
    assert "named as a graph input or output" in reasons["out"]
    assert "nothing depends on it" in reasons["init"]
    assert res.report.removed == {"k_read", "check", "sg", "done"}
    feeds = {"x": np.array([1.0, -2.0], np.float32), "p": np.zeros(2, np.float32)}
    assert_same_outputs(g, res.graph_def, feeds, ["out"])


def test_identity_preview_and_select():
    g = Graph(identity_graph(), ["x", "p"], ["out"])
    preview = run(remove_identity, g, select=set())
    assert len(preview.report.matches) == 4 and not preview.report.modified
    one = run(remove_identity, g, select={"sg"})
    assert names(one.graph_def) == ["x", "p", "k", "k_read", "check", "add", "done", "out", "init"]
    assert list(node(one.graph_def, "add").input) == ["check", "k_read"]


def test_identity_keeps_cond_pivots_and_both_branches_still_work():
    g = Graph(cond_graph("placeholder"), ["x", "is_training"], ["out"])
    res = run(remove_identity, g)
    assert {"cond/pred_id"} <= {m.key for m in res.report.matches}
    pivots = sorted(r.key for r in res.report.refused if "pivot" in r.reason)
    assert pivots == ["cond/switch_f", "cond/switch_t"]
    for flag in (True, False):
        feeds = dict(X2, is_training=np.array(flag))
        assert_same_outputs(g, res.graph_def, feeds, ["out"])


def test_tf1_all_control_flow_passes(tf1_graph):
    gd, ins, outs = tf1_graph
    g = Graph(gd, ins, outs)
    after, reports = chain(g, training_flags, remove_switch_merge, remove_dropout,
                           remove_identity)
    assert all(r.matches for r in reports)
    assert not ops(after.graph_def) & {"Switch", "Merge", "PlaceholderWithDefault",
                                       "RandomUniform", "Identity", "NoOp"}
    assert len(after.graph_def.node) < len(gd.node) / 3
    feeds = make_feeds(g)
    assert_same_outputs(g, after.graph_def, feeds, outs)


def test_tf2_all_control_flow_passes(tf2_graph):
    gd, ins, outs = tf2_graph
    g = Graph(gd, ins, outs)
    after, reports = chain(g, training_flags, inline_functions, remove_dropout, remove_identity)
    assert reports[-1].matches and not reports[2].matches  # the dropout branch was never taken
    left = [n.name for n in after.graph_def.node if n.op == "Identity"]
    assert left == ["Identity"] == outs  # only the protected output survives
    # its ^NoOp became control inputs on nodes it already reads through `probs`: dropped
    assert list(node(after.graph_def, "Identity").input) == ["probs"]
    assert "named as a graph input or output" in reports[-1].refused[0].reason
    assert not ops(after.graph_def) & {"If", "StatelessIf", "NoOp", "RandomUniform"}
    feeds = make_feeds(g)
    np.testing.assert_allclose(run_graph(gd, feeds, outs)[0],
                               run_graph(after.graph_def, {"input": feeds["input"]}, outs)[0],
                               rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------- in a pipeline
def test_pipeline_drops_an_input_that_became_a_const(tf2_graph):
    from surgeon_gui.core.passes.pipeline import run_pipeline
    gd, ins, outs = tf2_graph
    result, steps = run_pipeline(Graph(gd, ins, outs), ["training_flags", "inline_functions"])
    assert [s.pass_id for s in steps] == ["training_flags", "inline_functions"]
    assert result.given_inputs == ["input"]  # `training` is a Const now: nothing to feed
    assert "training" not in result.nodes  # once the Ifs were inlined nothing read it
    # an input that names an inner node (a cut point) is not a converted placeholder: it stays
    cut = Graph(gd, ["input", "training", "Relu"], outs)
    result, _ = run_pipeline(cut, ["training_flags"])
    assert result.given_inputs == ["input", "Relu"]
