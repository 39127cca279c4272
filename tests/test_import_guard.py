"""Issue 9.7: ``optimize`` never writes a graph TensorFlow cannot import, and never silently."""
import numpy as np

from surgeon_gui import cli
from surgeon_gui.core.model.graph import GraphDef, make_const
from surgeon_gui.core.model.io import read_graph_def, save_graph
from surgeon_gui.core.passes import get_pass
from surgeon_gui.core.running.import_guard import import_problem


def _mismatched_add() -> GraphDef:
    """A graph our structural checks accept but TensorFlow refuses: Add(float, int32)."""
    import tensorflow as tf
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        tf.identity(x + 1.0, name="y")
    gd = g.as_graph_def()
    for i, n in enumerate(gd.node):
        if n.op == "Const":
            gd.node[i].CopyFrom(make_const(n.name, np.int32(1)))
    return gd


def test_input_that_does_not_import_stops_unless_told(tmp_path, capsys):
    gd = _mismatched_add()
    assert "int32" in import_problem(gd)
    src, out = tmp_path / "bad.pb", tmp_path / "o.pb"
    save_graph(gd, src)
    code = cli.main(["optimize", str(src), str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert "TensorFlow cannot import" in err and "--skip-import-check" in err
    assert len(err.splitlines()) == 1
    code = cli.main(["optimize", str(src), str(out), "--skip-import-check"])
    res = capsys.readouterr()
    assert code == 0 and out.exists() and "warning" in res.err


def test_a_pass_that_breaks_the_graph_is_named_and_nothing_written(tf1_graph, tmp_path, capsys,
                                                                    monkeypatch):
    gd, _, _ = tf1_graph
    src, out = tmp_path / "tf1.pb", tmp_path / "o.pb"
    save_graph(gd, src)
    p = get_pass("fold_batch_norm")
    real_run = p.run

    def buggy_run(graph, select=None, **params):
        # A stand-in bug: the pass's result gives a Conv2D a kernel of the wrong dtype.
        res = real_run(graph, select=select, **params)
        if res.report.modified:
            for n in res.graph_def.node:
                if n.op == "Conv2D":
                    n.attr["T"].type = 3  # int32, while its inputs are float
                    break
        return res
    monkeypatch.setattr(p, "run", buggy_run)
    code = cli.main(["optimize", str(src), str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists(), err
    assert "pass fold_batch_norm (in the inference preset)" in err and "nothing written" in err
    monkeypatch.undo()
    assert cli.main(["optimize", str(src), str(out)]) == 0
    assert import_problem(read_graph_def(out)) is None


def test_a_named_switch_output_survives_the_preset(tmp_path, capsys):
    src, out = "resources/examples/tf1_cond_bn_dropout.pb", tmp_path / "o.pb"
    switch = "bn1/cond/FusedBatchNormV3_1/Switch"
    code = cli.main(["optimize", src, str(out), "--outputs", f"probs,{switch}"])
    res = capsys.readouterr()
    assert code == 0, res.err
    names = {n.name for n in read_graph_def(out).node}
    assert switch in names and "probs" in names
    from surgeon_gui.core.model.graph import Graph
    from surgeon_gui.core.passes.pipeline import run_pass
    g = Graph(read_graph_def(src), outputs=["probs", switch])
    flagged = run_pass(g, "training_flags").graph_def
    rep = run_pass(Graph(flagged, outputs=["probs", switch]), "remove_switch_merge").report
    assert any(switch in r.reason and "named graph output" in r.reason for r in rep.refused)


def test_fold_batch_norm_refuses_parameters_of_the_wrong_size():
    from surgeon_gui.core.model.examples import conv_bias_bn
    from surgeon_gui.core.model.graph import Graph
    from surgeon_gui.core.passes.pipeline import run_pass
    gd, ins, outs = conv_bias_bn()
    # A malformed batch norm: a 5-element moving mean after a 6-channel conv.
    bad = GraphDef()
    bad.CopyFrom(gd)
    bn = next(n for n in bad.node if n.op.startswith("FusedBatchNorm"))
    mean = next(n for n in bad.node if n.name == bn.input[3].split(":")[0])
    mean.CopyFrom(make_const(mean.name, np.zeros(5, np.float32)))
    res = run_pass(Graph(bad, ins, outs), "fold_batch_norm")
    assert not [m for m in res.report.matches if m.applied]
    assert any("expected [6]" in r.reason for r in res.report.refused), res.report.refused
