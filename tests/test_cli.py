"""The ``surgeon`` command line, called through ``main(argv)`` as a script would."""
import json
import subprocess
import sys

import numpy as np
import pytest
from support import assert_no_traceback, our_stderr

from surgeon_gui import cli
from surgeon_gui.core.model.graph import Graph, GraphDef, const_value, make_const
from surgeon_gui.core.model.io import read_graph_def, save_graph
from surgeon_gui.core.passes import PASS_MODULES
from surgeon_gui.core.running.runner import make_feeds, run_graph


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("surgeon: ")
    return lines[0]


@pytest.fixture(scope="module")
def models(tmp_path_factory, tf1_graph):
    from surgeon_gui.core.model.examples import conv_bias_bn
    d = tmp_path_factory.mktemp("cli")
    save_graph(tf1_graph[0], d / "tf1.pb")
    gd, _, _ = conv_bias_bn()
    save_graph(gd, d / "conv.pbtxt")
    # The same conv net with its bias nudged: outputs differ by a known amount.
    nudged = GraphDef()
    nudged.CopyFrom(gd)
    for i, n in enumerate(nudged.node):
        if n.name == "b":
            nudged.node[i].CopyFrom(make_const("b", const_value(n) + 0.05))
    save_graph(nudged, d / "conv_nudged.pb")
    return d


# ---------------------------------------------------------------------- info / passes
def test_info(capsys, models):
    code, out, err = run(capsys, "info", models / "tf1.pb")
    assert code == 0 and err == ""
    assert "nodes:      157" in out
    assert "input float32[-1, 16, 16, 3]" in out
    assert "outputs:    probs" in out
    assert "with default (not required): is_training" in out
    assert "Switch" in out and "FusedBatchNormV3" in out
    code, out, _ = run(capsys, "info", models / "tf1.pb", "--json")
    d = json.loads(out)
    assert d["nodes"] == 157 and d["outputs"] == ["probs"]
    assert d["op_histogram"]["Merge"] == 5 and d["parameters"] == 659
    assert d["inputs"] == [{"name": "input", "dtype": "float32", "shape": [-1, 16, 16, 3]}]


def test_passes_lists_every_id_and_the_preset(capsys):
    code, out, _ = run(capsys, "passes")
    assert code == 0
    ids = [line.split()[0] for line in out.strip().splitlines()]
    assert ids == PASS_MODULES + ["inference"]


# ---------------------------------------------------------------------- optimize
def test_optimize_default_preset(capsys, models, tmp_path, tf1_graph):
    out_pb = tmp_path / "opt.pb"
    code, out, err = run(capsys, "optimize", models / "tf1.pb", out_pb)
    assert code == 0, err
    assert "inputs input; outputs probs" in out
    assert "remove_switch_merge" in out and "fold_batch_norm" in out
    assert f"{out_pb}: " in out.splitlines()[-1]
    gd = read_graph_def(out_pb)
    ops = Graph(gd).op_histogram()
    assert not {"Switch", "Merge", "FusedBatchNormV3", "PlaceholderWithDefault"} & set(ops)
    feeds = make_feeds(Graph(tf1_graph[0]), seed=0)
    (a,) = run_graph(tf1_graph[0], feeds, ["probs"])
    (b,) = run_graph(gd, feeds, ["probs"])
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_optimize_refuses_to_overwrite_and_keeps_the_file(capsys, models, tmp_path):
    out_pb = tmp_path / "exists.pb"
    out_pb.write_bytes(b"precious")
    code, out, err = run(capsys, "optimize", models / "tf1.pb", out_pb)
    assert code == 2 and out == ""
    assert "exists; not overwriting it (add --force" in one_error_line(err)
    assert out_pb.read_bytes() == b"precious"
    code, _, err = run(capsys, "optimize", models / "tf1.pb", out_pb, "--force",
                       "--passes", "remove_identity")
    assert code == 0, err
    assert len(read_graph_def(out_pb).node) < 157


def test_optimize_pbtxt_with_explicit_io_and_passes(capsys, models, tmp_path):
    out_txt = tmp_path / "opt.pbtxt"
    code, out, err = run(capsys, "optimize", models / "conv.pbtxt", out_txt, "--inputs", "input",
                         "--outputs", "output", "--passes", "fold_batch_norm,sort_execution_order")
    assert code == 0, err
    assert out_txt.read_text().lstrip().startswith("node")
    ops = Graph(read_graph_def(out_txt)).op_histogram()
    assert "FusedBatchNormV3" not in ops and ops["Conv2D"] == 1


@pytest.mark.parametrize("extra, words", [
    (["--passes", "fold_everything"], "--passes: unknown pass 'fold_everything'"),
    (["--passes", ","], "--passes is empty"),
    (["--outputs", "nope"], "--outputs names node(s) not in the graph: nope"),
    (["--inputs", "ghost"], "--inputs names node(s) not in the graph: ghost"),
], ids=["unknown-pass", "empty-passes", "bad-output", "bad-input"])
def test_optimize_bad_options(capsys, models, tmp_path, extra, words):
    code, out, err = run(capsys, "optimize", models / "tf1.pb", tmp_path / "o.pb", *extra)
    assert code == 2
    assert words in one_error_line(err)
    assert not (tmp_path / "o.pb").exists()


def test_optimize_bad_output_suffix_and_missing_input(capsys, models, tmp_path):
    code, _, err = run(capsys, "optimize", models / "tf1.pb", tmp_path / "o.onnx")
    assert code == 2 and "must end in .pb" in one_error_line(err)
    code, _, err = run(capsys, "optimize", tmp_path / "missing.pb", tmp_path / "o.pb")
    assert code == 2 and f"{tmp_path / 'missing.pb'}: no such file" in one_error_line(err)
    code, _, err = run(capsys, "optimize", models / "tf1.pb", models / "tf1.pb", "--force")
    assert code == 2 and "is the input file" in one_error_line(err)


# ---------------------------------------------------------------------- compare
def test_compare_same_model_json(capsys, models):
    code, out, err = run(capsys, "compare", models / "conv.pbtxt", models / "conv.pbtxt",
                         "--json", "--runs", "3")
    assert code == 0, err
    d = json.loads(out)  # exactly one JSON object: json.loads fails on trailing text
    o = d["outputs"]["output"]
    assert o["max_abs_err"] == 0.0 and o["max_rel_err"] == 0.0 and o["allclose"] is True
    assert d["graphs"]["a"]["latency_ms"] > 0 and d["graphs"]["b"]["runs"] == 3


def test_compare_detects_a_difference_and_exits_1(capsys, models):
    code, out, _ = run(capsys, "compare", models / "conv.pbtxt", models / "conv_nudged.pb",
                       "--json", "--runs", "1", "--shape", "input=2,8,8,3")
    assert code == 1
    d = json.loads(out)
    assert d["outputs"]["output"]["allclose"] is False
    assert d["outputs"]["output"]["max_abs_err"] > 1e-3
    assert d["feeds"]["input"]["shape"] == [2, 8, 8, 3]
    # Looser tolerances accept it.
    code, out, _ = run(capsys, "compare", models / "conv.pbtxt", models / "conv_nudged.pb",
                       "--runs", "0", "--atol", "10")
    assert code == 0 and "all outputs allclose" in out


def test_compare_with_feeds_file(capsys, models, tmp_path):
    x = np.random.default_rng(5).normal(size=(3, 8, 8, 3)).astype(np.float32)
    np.savez(tmp_path / "feeds.npz", input=x)
    code, out, err = run(capsys, "compare", models / "conv.pbtxt", models / "conv.pbtxt",
                         "--feeds", tmp_path / "feeds.npz", "--json", "--runs", "0")
    assert code == 0, err
    assert json.loads(out)["outputs"]["output"]["shape_a"] == [3, 8, 8, 6]
    np.savez(tmp_path / "wrong.npz", image=x)
    code, _, err = run(capsys, "compare", models / "conv.pbtxt", models / "conv.pbtxt",
                       "--feeds", tmp_path / "wrong.npz")
    assert code == 2 and "image name no input" in one_error_line(err)


@pytest.mark.parametrize("extra, words", [
    (["--shape", "input=1,x,8,3"], "--shape: bad shape"),
    (["--shape", "nothere=1"], "--shape names node(s) not in the graph"),
    (["--shape", "input=1,9,9,3"], "expects shape"),
    (["--outputs", "w"], None),  # a Const output is fine
    (["--runs", "-1"], "--runs and --warmup must be 0 or more"),
], ids=["bad-dim", "bad-name", "wrong-shape", "const-output", "negative-runs"])
def test_compare_bad_options(capsys, models, extra, words):
    code, out, err = run(capsys, "compare", models / "conv.pbtxt", models / "conv.pbtxt",
                         "--runs", "0", *extra)
    if words is None:
        assert code == 0, err
        return
    assert code == 2, out
    assert words in one_error_line(err)


def test_compare_graphs_without_common_outputs(capsys, models):
    code, _, err = run(capsys, "compare", models / "tf1.pb", models / "conv.pbtxt")
    assert code == 2 and "has no output node(s) probs" in one_error_line(err)


# ---------------------------------------------------------------------- errors in general
def test_usage_errors_are_one_line(capsys):
    code, _, err = run(capsys, "optimize", "only-one-arg.pb")
    assert code == 2 and "required" in one_error_line(err)
    code, _, err = run(capsys, "frobnicate")
    assert code == 2 and "invalid choice" in one_error_line(err)


def test_debug_shows_the_exception(models, tmp_path):
    from surgeon_gui.core.model.graph import GraphError
    with pytest.raises(GraphError):
        cli.main(["info", str(tmp_path / "missing.pb"), "--debug"])


def test_checkpoint_option(capsys, tmp_path):
    import tensorflow as tf
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        w = v1.get_variable("w", initializer=np.eye(2, dtype=np.float32), use_resource=False)
        tf.matmul(x, w, name="y")
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            ckpt = v1.train.Saver().save(sess, str(tmp_path / "m.ckpt"))
    save_graph(g.as_graph_def(), tmp_path / "g.pb")
    code, out, err = run(capsys, "info", tmp_path / "g.pb", "--checkpoint", ckpt,
                         "--outputs", "y", "--json")
    assert code == 0, err
    ops = json.loads(out)["op_histogram"]
    assert "VariableV2" not in ops and "Const" in ops
    code, _, err = run(capsys, "info", tmp_path / "g.pb", "--checkpoint", ckpt)
    assert code == 2 and "needs the output node names" in one_error_line(err)


@pytest.mark.slow
def test_python_dash_m_entry_point(models):
    proc = subprocess.run([sys.executable, "-m", "surgeon_gui", "info", str(models / "tf1.pb")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "nodes:      157" in proc.stdout


def test_optimize_and_compare_a_keras_file(capsys, tmp_path):
    import tensorflow as tf
    from surgeon_gui.core.model.examples import randomize_batch_norms
    tf.keras.utils.set_random_seed(1)
    inp = tf.keras.Input((12, 12, 3), name="image")
    h = tf.keras.layers.Conv2D(4, 3, use_bias=False)(inp)
    h = tf.keras.layers.BatchNormalization()(h)
    h = tf.keras.layers.ReLU()(h)
    h = tf.keras.layers.GlobalAveragePooling2D()(h)
    h = tf.keras.layers.Dropout(0.3)(h)
    out = tf.keras.layers.Dense(3, activation="softmax")(h)
    km = tf.keras.Model(inp, out)
    assert randomize_batch_norms(km) == 1
    src = tmp_path / "small.keras"
    km.save(src)
    opt = tmp_path / "small_opt.pb"
    code, out, err = run(capsys, "optimize", src, opt)
    assert code == 0, err
    assert "fold_batch_norm" in out
    ops = Graph(read_graph_def(opt)).op_histogram()
    assert "Rsqrt" not in ops and "Mul" not in ops and ops["Conv2D"] == 1
    code, out, err = run(capsys, "compare", src, opt, "--json", "--runs", "2",
                         "--shape", "image=4,-1,-1,-1")
    assert code == 0, err
    d = json.loads(out)
    (o,) = d["outputs"].values()
    assert o["allclose"] and o["shape_a"] == [4, 3] and o["top1_agreement"] == 1.0


def test_optimize_process_prints_no_tensorflow_noise(models, tmp_path):
    import os
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    proc = subprocess.run([sys.executable, "-m", "surgeon_gui", "optimize", str(models / "tf1.pb"),
                           str(tmp_path / "o.pb")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert_no_traceback(proc.stderr)
    assert our_stderr(proc.stderr) == [], proc.stderr
    assert "remove_switch_merge" in proc.stdout


def test_pass_parameters_from_the_command_line(tmp_path, capsys):
    """--param PASS.NAME=VALUE reaches the pass (typed), is recorded in the saved recipe, and
    mistakes are one clear line before anything is loaded."""
    from surgeon_gui.core.model.examples import tf1_cond_bn_dropout
    from surgeon_gui.core.model.io import save_graph
    from surgeon_gui.core.history.recipe import Recipe
    gd, _, _ = tf1_cond_bn_dropout()
    src = tmp_path / "m.pb"
    save_graph(gd, src)
    out, rec = tmp_path / "o.pb", tmp_path / "r.json"
    code = cli.main(["optimize", str(src), str(out), "--passes",
                     "training_flags,remove_switch_merge,remove_dropout",
                     "--param", "remove_dropout.allow_random=false",
                     "--save-recipe", str(rec)])
    assert code == 0
    steps = Recipe.load(rec).steps
    assert steps[2].pass_id == "remove_dropout"
    assert steps[2].params == {"allow_random": False}
    capsys.readouterr()
    for spec, words in [("remove_dropout.allow_random=maybe", "true or false"),
                        ("remove_dropout.nope=1", "has no parameter 'nope'"),
                        ("fold_constants.max_bytes=1", "not in --passes"),
                        ("allow_random=1", "PASS.NAME=VALUE")]:
        code = cli.main(["optimize", str(tmp_path / "missing.pb"), str(tmp_path / "x.pb"),
                         "--passes", "remove_dropout", "--param", spec])
        err = capsys.readouterr().err.strip()
        assert code == 2 and words in err and len(err.splitlines()) == 1, err
