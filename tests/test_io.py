"""Loading and saving: every supported format, and every kind of bad input as a clear message.

Each bad input is checked twice: ``load_model`` raises a GraphError naming the file and the
problem, and ``surgeon info`` prints exactly one line on stderr and exits 2 (no traceback).
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from support import assert_no_traceback, our_stderr

from surgeon_gui import cli
from surgeon_gui.core.model.graph import Graph, GraphDef, GraphError
from surgeon_gui.core.model.io import load_feeds, load_model, read_graph_def, save_graph, serialize
from surgeon_gui.core.running.runner import GraphRunner, RunError, run_graph


def _graph(nodes):
    gd = GraphDef()
    for name, op, inputs in nodes:
        n = gd.node.add()
        n.name, n.op = name, op
        n.input.extend(inputs)
    return gd


def _write(path, gd):
    path.write_bytes(gd.SerializeToString())
    return path


@pytest.fixture(scope="module")
def small_graph():
    from surgeon_gui.core.model.examples import conv_bias_bn
    return conv_bias_bn()


@pytest.fixture
def small_pb(tmp_path, small_graph):
    return _write(tmp_path / "small.pb", small_graph[0])


def _cli_error(capsys, path):
    """Run ``surgeon info PATH``; return its single stderr line (asserting exit 2, no trace)."""
    code = cli.main(["info", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert str(path) in lines[0]
    return lines[0]


def _one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# ---------------------------------------------------------------------- bad files
def _random_bytes(tmp_path, small_graph):
    p = tmp_path / "random.pb"
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    return p


def _text_file(tmp_path, small_graph):
    p = tmp_path / "notes.pb"
    p.write_text("These are my notes, not a model.\nSecond line.\n")
    return p


def _png(tmp_path, small_graph):
    p = tmp_path / "picture.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + np.random.default_rng(1).bytes(800))
    return p


def _truncated(tmp_path, small_graph):
    data = small_graph[0].SerializeToString()
    p = tmp_path / "truncated.pb"
    p.write_bytes(data[: len(data) // 2])
    return p


def _empty(tmp_path, small_graph):
    p = tmp_path / "empty.pb"
    p.write_bytes(b"")
    return p


def _bad_pbtxt(tmp_path, small_graph):
    p = tmp_path / "broken.pbtxt"
    p.write_text('node { name: "a" op: "Placeholder" \n node {')
    return p


@pytest.mark.parametrize("make, words", [
    (_random_bytes, "not a graphdef"),
    (_text_file, "not a graphdef"),
    (_png, "not a graphdef"),
    (_truncated, "truncated"),
    (_empty, "empty"),
    (_bad_pbtxt, "not a text graphdef"),
], ids=["random-bytes", "text-file", "png", "truncated", "empty", "bad-pbtxt"])
def test_not_a_graph_is_a_clear_error(tmp_path, small_graph, capsys, make, words):
    path = make(tmp_path, small_graph)
    with pytest.raises(GraphError) as err:
        load_model(path)
    assert err.value.source == str(path)
    assert words in str(err.value).lower()
    line = _cli_error(capsys, path)
    assert words in line.lower()


def test_truncated_real_model_is_reported(tmp_path, tf1_graph, capsys):
    data = tf1_graph[0].SerializeToString()
    p = tmp_path / "tf1_cut.pb"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(GraphError, match="truncated|corrupt|missing node"):
        load_model(p)
    _cli_error(capsys, p)


@pytest.mark.parametrize("nodes, words", [
    ([("x", "Placeholder", []), ("y", "Relu", ["x"]), ("y", "Relu", ["x"])],
     "duplicate node names: y"),
    ([("x", "Placeholder", []), ("y", "Relu", ["ghost:0"])],
     "name a missing node: y reads 'ghost:0'"),
    ([("x", "Placeholder", []), ("y", "AddV2", ["x", "z"]), ("z", "Relu", ["y"])],
     "cycle"),
    ([("x", "Placeholder", []), ("y", "Relu", ["x", "^nowhere"])],
     "missing node"),
], ids=["duplicate", "missing-input", "cycle", "missing-control-input"])
def test_structural_problems_name_the_file_and_nodes(tmp_path, capsys, nodes, words):
    p = _write(tmp_path / "bad.pb", _graph(nodes))
    with pytest.raises(GraphError) as err:
        load_model(p)
    assert words in err.value.problem
    assert err.value.nodes, "the nodes concerned are named for the GUI"
    assert words in _cli_error(capsys, p)


def test_missing_file_and_plain_folder(tmp_path, capsys):
    with pytest.raises(GraphError, match="no such file"):
        load_model(tmp_path / "nope.pb")
    _cli_error(capsys, tmp_path / "nope.pb")
    folder = tmp_path / "just_a_folder"
    folder.mkdir()
    (folder / "readme.txt").write_text("hi")
    with pytest.raises(GraphError, match="not a SavedModel"):
        load_model(folder)
    assert "not a SavedModel" in _cli_error(capsys, folder)


# ---------------------------------------------------------------------- unregistered ops
def test_unregistered_op_loads_is_inspectable_and_fails_only_when_run(tmp_path, capsys):
    gd = _graph([("x", "Placeholder", []), ("special", "MyVendorNms", ["x"]),
                 ("out", "Relu", ["special"])])
    gd.node[0].attr["dtype"].type = 1
    p = _write(tmp_path / "vendor.pb", gd)
    model = load_model(p)
    g = model.graph()
    assert g.op_histogram()["MyVendorNms"] == 1
    assert g.outputs == ["out"]
    assert [c for c, _, _ in g.consumers("special")] == ["out"]
    with pytest.raises(RunError) as err:
        GraphRunner(model.graph_def)
    assert "MyVendorNms" in err.value.problem and "special" in err.value.nodes
    # `surgeon info` works on it and says it cannot run; `surgeon compare` names the op.
    assert cli.main(["info", str(p)]) == 0
    out = capsys.readouterr().out
    assert "MyVendorNms" in out and "cannot run" in out
    assert cli.main(["compare", str(p), str(p), "--shape", "x=1"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{p}: this TensorFlow does not register the op(s) MyVendorNms" in line


# ---------------------------------------------------------------------- SavedModel / Keras
@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory):
    import tensorflow as tf

    class Scale(tf.Module):
        def __init__(self):
            self.w = tf.Variable(np.arange(12, dtype=np.float32).reshape(4, 3))
            self.b = tf.Variable(np.ones(3, np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"y": tf.nn.relu(tf.matmul(x, self.w) + self.b)}

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def double(self, x):
            return {"z": 2.0 * x}

    m = Scale()
    path = tmp_path_factory.mktemp("sm") / "scale_model"
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.serve,
                                                  "double": m.double})
    return path


def test_saved_model_is_frozen_and_runs(saved_model_dir):
    model = load_model(saved_model_dir)
    assert model.kind == "savedmodel"
    ops = Graph(model.graph_def).op_histogram()
    assert "VarHandleOp" not in ops and "ReadVariableOp" not in ops
    x = np.array([[1, 2, 3, 4], [-1, 0, 0, 0]], np.float32)
    expected = np.maximum(x @ np.arange(12, dtype=np.float32).reshape(4, 3) + 1, 0)
    (y,) = run_graph(model.graph_def, {model.inputs[0]: x}, [model.outputs[0]])
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    # Another signature by name.
    other = load_model(saved_model_dir, signature="double")
    (z,) = run_graph(other.graph_def, {other.inputs[0]: x}, [other.outputs[0]])
    np.testing.assert_allclose(z, 2 * x)


def test_cli_optimizes_a_saved_model_folder(saved_model_dir, tmp_path, capsys):
    out = tmp_path / "scale.pb"
    assert cli.main(["optimize", str(saved_model_dir), str(out), "--signature", "double"]) == 0
    assert cli.main(["compare", str(saved_model_dir), str(out), "--signature", "double",
                     "--runs", "1", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    d = __import__("json").loads(captured.out.strip().splitlines()[-1])
    assert all(o["allclose"] for o in d["outputs"].values())
    assert d["graphs"]["b"]["node_count"] <= d["graphs"]["a"]["node_count"]


def test_saved_model_unknown_signature_and_bad_folder(saved_model_dir, tmp_path, capsys):
    with pytest.raises(GraphError, match="no signature 'nope'; it has: double, serving_default"):
        load_model(saved_model_dir, signature="nope")
    bad = tmp_path / "broken_saved_model"
    bad.mkdir()
    (bad / "saved_model.pb").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(GraphError, match="cannot load SavedModel") as err:
        load_model(bad)
    assert err.value.source == str(bad)
    _cli_error(capsys, bad)
    # Its saved_model.pb opened as a file points at the folder.
    with pytest.raises(GraphError, match="open its folder"):
        load_model(saved_model_dir / "saved_model.pb")


def test_keras_file_is_frozen_and_matches_keras(tmp_path):
    import tensorflow as tf
    tf.keras.utils.set_random_seed(3)
    inp = tf.keras.Input((6,), name="features")
    h = tf.keras.layers.Dense(5, activation="relu")(inp)
    h = tf.keras.layers.BatchNormalization()(h)
    h = tf.keras.layers.Dropout(0.5)(h)
    out = tf.keras.layers.Dense(3, activation="softmax")(h)
    km = tf.keras.Model(inp, out)
    path = tmp_path / "tiny.keras"
    km.save(path)
    model = load_model(path)
    assert model.kind == "keras"
    x = np.random.default_rng(0).normal(size=(2, 6)).astype(np.float32)
    (y,) = run_graph(model.graph_def, {model.inputs[0]: x}, [model.outputs[0]])
    np.testing.assert_allclose(y, km(x, training=False).numpy(), rtol=1e-5, atol=1e-6)


def test_bad_keras_file(tmp_path, capsys):
    p = tmp_path / "model.keras"
    p.write_bytes(b"PK\x03\x04 this is not a real zip")
    with pytest.raises(GraphError, match="cannot load Keras model"):
        load_model(p)
    _cli_error(capsys, p)


# ---------------------------------------------------------------------- checkpoint freezing
def test_graph_with_variables_and_checkpoint_is_frozen(tmp_path):
    import tensorflow as tf
    v1 = tf.compat.v1
    w_val = np.arange(6, dtype=np.float32).reshape(3, 2)
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w = v1.get_variable("w", initializer=w_val, use_resource=False)
        y = tf.identity(tf.matmul(x, w), name="y")
        saver = v1.train.Saver()
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            ckpt = saver.save(sess, str(tmp_path / "model.ckpt"))
    pb = _write(tmp_path / "graph.pb", g.as_graph_def())
    with pytest.raises(GraphError, match="needs the output node names"):
        load_model(pb, checkpoint=ckpt)
    model = load_model(pb, checkpoint=ckpt, outputs=["y"])
    assert model.kind == "checkpoint"
    ops = Graph(model.graph_def).op_histogram()
    assert "VariableV2" not in ops
    xv = np.ones((1, 3), np.float32)
    (out,) = run_graph(model.graph_def, {"x": xv}, ["y"])
    np.testing.assert_allclose(out, xv @ w_val)
    with pytest.raises(GraphError, match="cannot freeze with checkpoint"):
        load_model(pb, checkpoint=str(tmp_path / "missing.ckpt"), outputs=["y"])
    del y


# ---------------------------------------------------------------------- saving
def test_pbtxt_round_trip(tmp_path, tf1_graph):
    gd = tf1_graph[0]
    p = save_graph(gd, tmp_path / "model.pbtxt")
    assert p.read_text().lstrip().startswith("node")
    back = read_graph_def(p)
    assert serialize(back) == serialize(gd)
    # And .pb written from it is byte-identical to writing the original.
    save_graph(back, tmp_path / "a.pb")
    save_graph(gd, tmp_path / "b.pb")
    assert (tmp_path / "a.pb").read_bytes() == (tmp_path / "b.pb").read_bytes()


def test_save_refuses_to_overwrite(tmp_path, small_graph):
    p = tmp_path / "out.pb"
    p.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="not overwriting"):
        save_graph(small_graph[0], p)
    assert p.read_bytes() == b"keep me"
    save_graph(small_graph[0], p, overwrite=True)
    assert read_graph_def(p) == small_graph[0]


def test_saved_file_has_normal_permissions(tmp_path, small_graph):
    umask = os.umask(0o022)
    try:
        p = save_graph(small_graph[0], tmp_path / "shared.pb")
    finally:
        os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o644, "not the owner-only mode of a temporary file"


def test_failed_save_leaves_no_partial_file(tmp_path, small_graph, monkeypatch):
    p = tmp_path / "out.pb"
    p.write_bytes(b"old contents")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_graph(small_graph[0], p, overwrite=True)
    assert p.read_bytes() == b"old contents"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.pb"], "temporary file left"
    new = tmp_path / "new.pb"
    with pytest.raises(OSError):
        save_graph(small_graph[0], new)
    assert not new.exists()


# ---------------------------------------------------------------------- lazy tensors
@pytest.mark.slow
def test_loading_a_frozen_model_never_decodes_tensors(tmp_path, mobilenet_v2, monkeypatch):
    from tensorflow.python.framework import tensor_util
    p = _write(tmp_path / "mobilenet.pb", mobilenet_v2[0])

    def forbidden(*a, **k):
        raise AssertionError("a tensor was decoded while loading")

    monkeypatch.setattr(tensor_util, "MakeNdarray", forbidden)
    model = load_model(p)
    g = model.graph()
    assert len(g) == len(mobilenet_v2[0].node)
    assert g.parameter_count() > 100_000
    assert g.op_histogram()["Conv2D"] > 30
    g.topological_order()
    assert g.outputs


# ---------------------------------------------------------------------- feeds
def test_feeds_from_npy_and_npz(tmp_path):
    x = np.ones((1, 3), np.float32)
    np.save(tmp_path / "x.npy", x)
    assert load_feeds(tmp_path / "x.npy", ["input"])["input"].shape == (1, 3)
    with pytest.raises(GraphError, match="one array but the graph has 2 inputs"):
        load_feeds(tmp_path / "x.npy", ["a", "b"])
    np.savez(tmp_path / "f.npz", **{"a:0": x, "b": 2 * x})
    feeds = load_feeds(tmp_path / "f.npz", ["a", "b"])
    np.testing.assert_array_equal(feeds["b"], 2 * x)
    with pytest.raises(GraphError, match="no array for input"):
        load_feeds(tmp_path / "f.npz", ["a", "b", "c"])
    with pytest.raises(GraphError, match="name no input"):
        load_feeds(tmp_path / "f.npz", ["a"])
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(GraphError, match="cannot read feeds") as err:
        load_feeds(tmp_path / "junk.npz", ["a"])
    assert err.value.source == str(tmp_path / "junk.npz")


# ---------------------------------------------------------------------- the real CLI process
def test_cli_process_prints_one_line_and_no_tensorflow_noise(tmp_path):
    p = tmp_path / "cut.pb"
    p.write_bytes(b"\x0a\x05hello" + b"\xff" * 20)
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    proc = subprocess.run([sys.executable, "-m", "surgeon_gui", "info", str(p)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert_no_traceback(proc.stderr)
    lines = our_stderr(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"surgeon: {p}: "), proc.stderr


def test_nodes_without_a_name_or_op_are_refused_before_other_problems(tmp_path):
    """The loader finds them on its index (no pass of its own): a node with no op, one with no
    name, and nameless nodes that are also duplicates, all refused as corrupt (the same
    message as reading the file alone)."""
    cases = {
        "no_op": [("x", "Placeholder", []), ("y", "", ["x"])],
        "no_name": [("x", "Placeholder", []), ("", "Relu", ["x"])],
        "nameless_twice": [("x", "Placeholder", []), ("", "Relu", ["x"]), ("", "Relu", ["x"])],
        "no_op_and_duplicate": [("x", "Placeholder", []), ("x", "", [])],
    }
    for name, nodes in cases.items():
        path = _write(tmp_path / f"{name}.pb", _graph(nodes))
        with pytest.raises(GraphError, match="without a name or op") as err:
            load_model(path)
        assert err.value.source == str(path)
        with pytest.raises(GraphError, match="without a name or op"):
            read_graph_def(path)
    ok = _write(tmp_path / "ok.pb", _graph([("x", "Placeholder", []), ("y", "Relu", ["x"])]))
    assert len(read_graph_def(ok, plausible=False).node) == 2
    assert load_model(ok).index.ops == {"x": "Placeholder", "y": "Relu"}


def test_unknown_data_types_are_found_wherever_they_are(tmp_path):
    """A DataType TensorFlow does not know, as a type, in a list of types, in a tensor and in a
    list of tensors, after attributes that are valid (a list of types, of strings): each is
    named, and the loader refuses the file."""
    from surgeon_gui.core.model.checks import bad_enums
    gd = _graph([("a", "Placeholder", []), ("b", "IdentityN", ["a"]), ("c", "Const", []),
                 ("d", "Fake", []), ("e", "Relu", ["a"])])
    a, b, c, d, e = gd.node
    a.attr["dtype"].type = 1
    a.attr["_class"].list.s.append(b"loc:@x")
    b.attr["T"].list.type.extend([1, 3])          # valid list first
    b.attr["_class"].list.s.append(b"loc:@a")
    b.attr["U"].list.type.extend([1, 777])        # then a bad one in a list
    c.attr["dtype"].type = 1
    c.attr["value"].tensor.dtype = 555            # a tensor's dtype
    d.attr["shapes"].list.shape.add()
    d.attr["vals"].list.tensor.add().dtype = 444  # a tensor in a list
    e.attr["T"].type = 1
    assert bad_enums(gd) == [
        "node b: attr U holds DataType 777, which TensorFlow does not know",
        "node c: attr value tensor holds DataType 555, which TensorFlow does not know",
        "node d: attr vals tensor holds DataType 444, which TensorFlow does not know"]
    assert bad_enums(gd, limit=1) == bad_enums(gd)[:1]
    path = _write(tmp_path / "enums.pb", gd)
    with pytest.raises(GraphError, match="DataType 777") as err:
        load_model(path)
    assert set(err.value.nodes) == {"b", "c", "d"}
    for n in (b, c, d):
        del n.attr["U" if n is b else "value" if n is c else "vals"]
    assert bad_enums(gd) == []
