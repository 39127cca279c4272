"""Issue 12.4 (memory): inside ``surgeon optimize``, the weights fold_batch_norm scales are
computed when the result is written (core/model/deferred.py), so a big model's weights are not
held twice (old ones in the parsed GraphDef's arena, new ones next to them). The written bytes
must be those of the plain path, and the result must compute what the model computes."""
import contextlib

import numpy as np
import pytest

from surgeon_gui import cli
from surgeon_gui.core.model import deferred
from surgeon_gui.core.model.deferred import MARK, deferring, is_deferred
from surgeon_gui.core.model.files import graph_def_chunks
from surgeon_gui.core.model.graph import Graph, GraphDef, const_value, make_const
from surgeon_gui.core.model.io import save_graph, serialize
from surgeon_gui.core.passes.merge_duplicates import _deferred_fingerprint, _fingerprint
from surgeon_gui.core.passes.pipeline import pipeline_steps, run_pipeline
from surgeon_gui.core.running.compare import compare_graphs
from surgeon_gui.core.running.import_guard import import_problem


def _optimize(gd, ins, outs, defer: bool):
    """The CLI's pipeline: the passes edit one working GraphDef in place."""
    work = GraphDef()
    work.CopyFrom(gd)
    with deferring() if defer else contextlib.nullcontext():
        graph, steps = run_pipeline(Graph(work, ins, outs), ["inference"], keep_graphs=False,
                                    owns_input=True)
    return graph, steps


def _weights(gd, name):
    return next(n for n in gd.node if n.name == name).attr["value"].tensor.tensor_content


def _cond_bn_twins():
    """TF1 v1 control flow: two branches, each a 3x3x64x64 conv and a batch norm that
    ``tf.cond(flag, train, infer)`` picks (as ``layers.batch_normalization(training=flag)``
    builds it). The second conv's weights are twice the first's and its gamma half: different
    weights and scales, the same scaled weights (powers of two: exactly), which
    merge_duplicates must find equal once folded."""
    import tensorflow as tf

    from surgeon_gui.core.model.examples import _bn_params
    v1 = tf.compat.v1
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.1, [3, 3, 64, 64]).astype(np.float32)
    p = _bn_params(rng, 64)
    v1.disable_control_flow_v2()
    try:
        g = tf.Graph()
        with g.as_default():
            x = v1.placeholder(tf.float32, [None, 6, 6, 64], name="x")
            flag = v1.placeholder(tf.bool, name="flag")
            outs = []
            for i in range(2):
                h = tf.nn.conv2d(x, tf.constant(w * 2 ** i, name=f"w{i}"), [1, 1, 1, 1], "SAME",
                                 name=f"conv{i}")
                gamma = p["gamma"] / 2 ** i

                def train(h=h, gamma=gamma):
                    return v1.nn.fused_batch_norm(h, gamma, p["beta"], epsilon=1e-3,
                                                  is_training=True)[0]

                def infer(h=h, gamma=gamma):
                    return v1.nn.fused_batch_norm(h, gamma, p["beta"], p["mean"], p["var"],
                                                  epsilon=1e-3, is_training=False)[0]
                outs.append(tf.nn.relu(tf.cond(flag, train, infer, name=f"bn{i}")))
            tf.add(outs[0], outs[1], name="y")
    finally:
        v1.enable_control_flow_v2()
    return g.as_graph_def(), ["x", "flag"], ["y"]


def _record_marks(monkeypatch) -> list[str]:
    """The names of the nodes ``deferred.mark`` marks from now on (it still marks them)."""
    calls: list[str] = []
    mark = deferred.mark
    monkeypatch.setattr(deferred, "mark", lambda node, *a: (calls.append(node.name),
                                                            mark(node, *a)))
    return calls


def test_folded_weights_are_written_with_the_bytes_of_the_plain_path():
    from surgeon_gui.core.model.examples import tf1_layers_flag_net
    gd, ins, outs = tf1_layers_flag_net(v1_control_flow=True, channels=64)
    plain, _ = _optimize(gd, ins, outs, defer=False)
    late, steps = _optimize(gd, ins, outs, defer=True)
    assert "fold_batch_norm" in [s.pass_id for s in steps]
    # the mechanism ran: the big kernel (3x3x64x64) is the loaded node, marked, its old bytes
    # untouched; the small conv1 kernel is scaled at once as before
    marked = [n.name for n in late.graph_def.node if is_deferred(n)]
    assert marked == ["model/conv2/kernel"]
    assert _weights(late.graph_def, "model/conv2/kernel") == _weights(gd, "model/conv2/kernel")
    assert not any(is_deferred(n) for n in plain.graph_def.node)
    # read as its new value, written as the node the plain path makes
    assert np.array_equal(const_value(late.graph_def.node[[n.name for n in late.graph_def.node]
                                                         .index("model/conv2/kernel")]),
                          const_value(next(n for n in plain.graph_def.node
                                           if n.name == "model/conv2/kernel")))
    want = plain.graph_def.SerializeToString(deterministic=True)
    assert b"".join(graph_def_chunks(late.graph_def)) == want
    assert serialize(late.graph_def) == want
    assert serialize(late.graph_def, "pbtxt") == serialize(plain.graph_def, "pbtxt")
    assert import_problem(late.graph_def) is None
    out = GraphDef.FromString(want)
    ops = {n.op for n in out.node}
    assert not ops & {"FusedBatchNorm", "FusedBatchNormV3", "Switch", "Merge"}
    cmp = compare_graphs(gd, out, None, outs, runs=1, warmup=0)   # in TensorFlow, flag=False
    assert cmp.allclose and cmp.outputs[0].max_abs_err < 1e-5


def test_equal_deferred_weights_still_merge():
    gd, ins, outs = _cond_bn_twins()
    plain, _ = _optimize(gd, ins, outs, defer=False)
    late, steps = _optimize(gd, ins, outs, defer=True)
    assert [s.pass_id for s in steps].count("merge_duplicates") >= 1
    for g in (plain, late):
        assert [n.op for n in g.graph_def.node].count("Conv2D") == 1   # the twins merged
    assert [n.name for n in late.graph_def.node if is_deferred(n)] == ["w0"]
    want = plain.graph_def.SerializeToString(deterministic=True)
    assert b"".join(graph_def_chunks(late.graph_def)) == want
    cmp = compare_graphs(gd, GraphDef.FromString(want), None, outs, runs=1, warmup=0)
    assert cmp.allclose and cmp.outputs[0].max_abs_err < 1e-4


def test_the_cli_defers_and_writes_what_the_text_path_writes(tmp_path, monkeypatch):
    from surgeon_gui.core.model.examples import tf1_layers_flag_net
    gd, _, _ = tf1_layers_flag_net(v1_control_flow=True, channels=64)
    src = tmp_path / "in.pb"
    save_graph(gd, src)
    calls = _record_marks(monkeypatch)
    assert cli.main(["optimize", str(src), str(tmp_path / "out.pb")]) == 0
    assert calls == ["model/conv2/kernel"]
    calls.clear()
    # a text result is not streamed: nothing is deferred, and it is the same graph
    assert cli.main(["optimize", str(src), str(tmp_path / "out.pbtxt")]) == 0
    assert calls == []
    from google.protobuf import text_format
    text = text_format.Parse((tmp_path / "out.pbtxt").read_text(), GraphDef())
    assert (tmp_path / "out.pb").read_bytes() == text.SerializeToString(deterministic=True)


def test_the_gui_pipeline_keeping_old_nodes_never_defers():
    gd, ins, outs = _cond_bn_twins()
    work = GraphDef()
    work.CopyFrom(gd)
    with deferring():
        for step in pipeline_steps(Graph(work, ins, outs), ["inference"], in_place=True,
                                   owns_input=True, record=True):
            assert not any(is_deferred(n) for n in step.graph.graph_def.node)
        kept, _ = run_pipeline(Graph(gd, ins, outs), ["inference"])   # copies (the GUI)
    assert not any(is_deferred(n) for n in kept.graph_def.node)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("shape,scale_shape", [((3, 3, 64, 129), (1, 1, 1, 129)),
                                               ((5, 5, 33, 20), (1, 1, 33, 20)),
                                               ((1000, 77), (1, 77)), ((77, 1000), (77, 1))])
def test_a_marked_weight_reads_fingerprints_and_resolves_as_its_value(dtype, shape,
                                                                      scale_shape):
    rng = np.random.default_rng(0)
    w = rng.standard_normal(shape).astype(dtype)
    scale = rng.standard_normal(scale_shape)
    node = make_const("w", w)
    node.attr["_output_shapes"].list.shape.add()   # dropped, as a new Const has none
    node.input.append("^old_gate")
    assert deferred.can_defer(node) == (w.nbytes >= deferred.MIN_BYTES)
    deferred.mark(node, scale, ["gate"])
    want = make_const("w", (w * scale).astype(dtype))
    want.input.append("^gate")
    assert node.attr["value"].tensor.tensor_content == w.tobytes()    # old bytes, in place
    assert np.array_equal(const_value(node), (w * scale).astype(dtype))
    assert deferred.resolved(node).SerializeToString(deterministic=True) == \
        want.SerializeToString(deterministic=True)
    assert _deferred_fingerprint(node) == _fingerprint(((w * scale).astype(dtype)).tobytes())
    assert MARK in node.attr


def test_folding_again_into_a_deferred_weight_scales_its_value():
    """A second fold_batch_norm run that folds into weights the first one deferred must scale
    their value (old * first scale), not the old bytes."""
    import tensorflow as tf

    from surgeon_gui.core.model.examples import _bn_params
    from surgeon_gui.core.passes.pipeline import run_pass
    v1 = tf.compat.v1
    rng = np.random.default_rng(5)
    p = _bn_params(rng, 64)
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 6, 6, 64], name="x")
        h = tf.nn.conv2d(x, tf.constant(rng.normal(0, .1, [3, 3, 64, 64]).astype(np.float32),
                                        name="w"), [1, 1, 1, 1], "SAME", name="conv")
        h = v1.nn.fused_batch_norm(h, p["gamma"], p["beta"], p["mean"], p["var"],
                                   epsilon=1e-3, is_training=False, name="bn")[0]
        tf.nn.relu(h, name="y")
    gd = g.as_graph_def()
    k = make_const("k", rng.uniform(0.5, 2.0, [64]).astype(np.float32))

    def add_mul(graph_def):   # bn (now a BiasAdd) -> Mul by k -> y
        graph_def.node.append(k)
        mul = graph_def.node.add(name="scale2", op="Mul")
        mul.input.extend(["bn", "k"])
        mul.attr["T"].type = 1
        next(n for n in graph_def.node if n.name == "y").input[0] = "scale2"

    results = []
    for defer in (False, True):
        work = GraphDef()
        work.CopyFrom(gd)
        with deferring() if defer else contextlib.nullcontext():
            r = run_pass(Graph(work, ["x"], ["y"]), "fold_batch_norm", in_place=True)
            assert is_deferred(next(n for n in r.graph_def.node if n.name == "w")) == defer
            add_mul(r.graph_def)
            r = run_pass(Graph(r.graph_def, ["x"], ["y"]), "fold_batch_norm", in_place=True)
        ops = {n.name: n.op for n in r.graph_def.node}
        assert "bn" not in ops and ops["scale2"] == "BiasAdd" and "w" in r.report.changed
        results.append(b"".join(graph_def_chunks(r.graph_def)))
    assert results[1] == results[0]
    want = GraphDef()
    want.CopyFrom(gd)
    add_mul(want)
    cmp = compare_graphs(want, GraphDef.FromString(results[1]), None, ["y"], runs=1, warmup=0)
    assert cmp.allclose and cmp.outputs[0].max_abs_err < 1e-4


@pytest.mark.parametrize("consts_first", [False, True])
def test_weights_read_through_an_identity_are_moved_not_copied(tmp_path, monkeypatch,
                                                                consts_first):
    """``w/read`` (an Identity of the weight Const, as frozen TF1 variables come) without
    remove_identity before: the plain path makes ``w/read`` a new Const and drops ``w``; here
    ``w`` itself is renamed, marked and sorted into ``w/read``'s place, its bytes untouched
    (``consts_first``: every Const first in the file, far from its reader)."""
    from surgeon_gui.core.model.examples import tf1_layers_flag_net
    gd, ins, outs = tf1_layers_flag_net(v1_control_flow=True, channels=64)
    if consts_first:
        nodes = sorted(gd.node, key=lambda n: n.op != "Const")
        reordered = GraphDef()
        reordered.versions.CopyFrom(gd.versions)
        for n in nodes:
            reordered.node.add().CopyFrom(n)
        gd = reordered
    passes = ["training_flags", "remove_switch_merge", "fold_batch_norm", "merge_duplicates"]
    runs = []
    for defer in (False, True):
        work = GraphDef()
        work.CopyFrom(gd)
        with deferring() if defer else contextlib.nullcontext():
            graph, _ = run_pipeline(Graph(work, ins, outs), passes, keep_graphs=False,
                                    owns_input=True)
        runs.append(graph.graph_def)
    plain, late = runs
    names = [n.name for n in late.node]
    assert names == [n.name for n in plain.node]
    assert "model/conv2/kernel" not in names
    moved = next(n for n in late.node if n.name == "model/conv2/kernel/read")
    assert is_deferred(moved)
    assert moved.attr["value"].tensor.tensor_content == _weights(gd, "model/conv2/kernel")
    want = plain.SerializeToString(deterministic=True)
    assert b"".join(graph_def_chunks(late)) == want
    cmp = compare_graphs(gd, GraphDef.FromString(want), None, outs, runs=1, warmup=0)
    assert cmp.allclose and cmp.outputs[0].max_abs_err < 1e-5
    # the CLI, passes one by one (each edits the loaded graph in place): the same bytes
    src = tmp_path / "in.pb"
    save_graph(gd, src)
    calls = _record_marks(monkeypatch)
    assert cli.main(["optimize", str(src), str(tmp_path / "out.pb"), "--passes",
                     ",".join(passes)]) == 0
    assert calls == ["model/conv2/kernel/read"]
    assert (tmp_path / "out.pb").read_bytes() == want
