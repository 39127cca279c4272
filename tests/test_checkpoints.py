"""Issue 9.5: freezing from checkpoints as people ship them."""
import shutil

import pytest
from support import make_window

from surgeon_gui import cli
from surgeon_gui.core.model.examples import tf1_layers_flag_net
from surgeon_gui.core.model.graph import GraphError
from surgeon_gui.core.model.io import (
    load_model,
    resolve_checkpoint,
    save_graph,
    variable_nodes,
)
from surgeon_gui.core.running.compare import compare_graphs


@pytest.fixture(scope="module", params=["ref_v1", "resource_v2"])
def shipped(request, tmp_path_factory):
    """A training graph saved with its variables, and its checkpoint in the folder-prefix
    layout (``run/.index``) whose ``checkpoint`` file names another machine's disk; plus the
    same net frozen in memory as the reference."""
    d = tmp_path_factory.mktemp(request.param)
    resource = request.param == "resource_v2"
    gd, ins, outs = tf1_layers_flag_net(v1_control_flow=not resource, resource_variables=resource,
                                        checkpoint_dir=str(d / "run"))
    save_graph(gd, d / "train.pb")
    frozen, _, _ = tf1_layers_flag_net(v1_control_flow=not resource)
    return d, ins, outs, frozen


def test_layouts_resolve_to_the_prefix(shipped):
    d = shipped[0]
    run = d / "run"
    assert sorted(p.name for p in run.iterdir()) == [".data-00000-of-00001", ".index",
                                                     "checkpoint"]
    want = str(run) + "/"
    for given in (f"{run}/", str(run), f"{run}/.index", f"{run}/.data-00000-of-00001"):
        assert resolve_checkpoint(given) == want, given
    # Without the 'checkpoint' file the folder still resolves.
    bare = d / "bare"
    shutil.copytree(run, bare, dirs_exist_ok=True)
    (bare / "checkpoint").unlink()
    assert resolve_checkpoint(bare) == str(bare) + "/"
    # A classic prefix.
    classic = d / "classic"
    classic.mkdir(exist_ok=True)
    for f in (".index", ".data-00000-of-00001"):
        shutil.copy(run / f, classic / f"model.ckpt-100{f}")
    assert resolve_checkpoint(classic / "model.ckpt-100") == str(classic / "model.ckpt-100")
    assert resolve_checkpoint(classic) == str(classic / "model.ckpt-100")
    with pytest.raises(GraphError, match="no checkpoint there"):
        resolve_checkpoint(d / "nothing")
    with pytest.raises(GraphError, match="no .index"):
        empty = d / "empty"
        empty.mkdir(exist_ok=True)
        resolve_checkpoint(empty)


def test_frozen_graph_runs_and_matches(shipped):
    d, ins, outs, frozen = shipped
    model = load_model(d / "train.pb", checkpoint=str(d / "run"), outputs=outs)
    assert not variable_nodes(model.graph_def)
    # TF2 control flow: an If branch returns a variable's value; it must run after freezing.
    cmp = compare_graphs(frozen, model.graph_def, None, outs, runs=0, warmup=0)
    assert cmp.allclose and cmp.outputs[0].max_abs_err == 0.0


def test_variables_found_from_the_group_trees_op_map_as_from_the_protos(shipped):
    """The window asks the loaded tree's op map (no pass over the protos on the GUI thread)."""
    from surgeon_gui.core.viewmodel.grouping import GroupTree
    d = shipped[0]
    model = load_model(d / "train.pb")
    names = variable_nodes(model.graph_def)
    assert names and names == variable_nodes(model.graph_def, GroupTree(model.index).op_of)


def test_cli_refuses_variables_without_checkpoint(shipped, tmp_path, capsys):
    d, ins, outs, frozen = shipped
    out = tmp_path / "o.pb"
    code = cli.main(["optimize", str(d / "train.pb"), str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert "variable(s)" in err and "--checkpoint" in err and len(err.splitlines()) == 1
    code = cli.main(["optimize", str(d / "train.pb"), str(out), "--keep-variables"])
    res = capsys.readouterr()
    assert code == 0 and out.exists() and "keeping" in res.err
    out2 = tmp_path / "o2.pb"
    code = cli.main(["optimize", str(d / "train.pb"), str(out2), "--checkpoint",
                     str(d / "run") + "/", "--outputs", ",".join(outs)])
    assert code == 0, capsys.readouterr().err
    from surgeon_gui.core.model.io import read_graph_def
    cmp = compare_graphs(frozen, read_graph_def(out2), None, outs, runs=0, warmup=0)
    assert cmp.allclose
    assert not {"VarHandleOp", "VariableV2", "ReadVariableOp"} & \
        {n.op for n in read_graph_def(out2).node}


# ---------------------------------------------------------------------- GUI
class ScriptedAsk:
    """Stands in for the window's Asker: records each question, gives scripted answers."""

    def __init__(self, **answers):
        self.answers = answers
        self.asked = []
        self.starts = []

    def question(self, title, text, choices):
        self.asked.append(("question", text))
        return self.answers["question"]

    def open_path(self, title, filters, start=""):
        self.asked.append(("open_path", title))
        self.starts.append(start)
        return self.answers["open_path"].pop(0)

    def text(self, title, label, default=""):
        self.asked.append(("text", default))
        return default


def test_gui_offers_the_checkpoint_and_freezes(qtbot, tmp_path, monkeypatch, shipped):
    d, ins, outs, frozen = shipped
    from PySide6.QtWidgets import QApplication
    w = make_window(qtbot, tmp_path, monkeypatch)
    ask = w.surgery.controller.ask = ScriptedAsk(question="yes",
                                                 open_path=[str(d / "run" / ".index")])
    assert "Open with &Checkpoint…" in [a.text() for a in w.file_menu.actions()]
    w.open_model(str(d / "train.pb"))
    qtbot.waitUntil(lambda: w.document is not None and w._load_worker is None
                    and not variable_nodes(w.document.graph.graph_def), timeout=60_000)
    QApplication.processEvents()
    kinds = [k for k, _ in ask.asked]
    assert kinds == ["question", "open_path", "text"], ask.asked
    assert ask.starts == [str(d)]      # the checkpoint is looked for next to the graph
    assert "variable(s)" in ask.asked[0][1]
    assert ask.asked[2][1] == "model/probs"  # the guessed inference output, for confirming
    assert w.document.graph.outputs == outs
    cmp = compare_graphs(frozen, w.document.graph.graph_def, None, outs, runs=0, warmup=0)
    assert cmp.allclose
    # File ▸ Show CLI Command… names the checkpoint: the command replays on the same input
    assert w.document.checkpoint == str(d / "run" / ".index")
    assert f"--checkpoint {d / 'run' / '.index'}" in w.surgery.controller.cli_command()


def test_cli_command_of_a_session_frozen_from_a_checkpoint_replays(shipped, tmp_path, capsys):
    import shlex
    from surgeon_gui.core.history.document import Document
    from surgeon_gui.core.history.recipe import recipe_of
    from surgeon_gui.core.history.steps import prepare_pipeline
    from surgeon_gui.core.model.io import read_graph_def, serialize
    d, ins, outs, frozen = shipped
    doc = Document.from_loaded(load_model(d / "train.pb", checkpoint=str(d / "run"),
                                          outputs=outs))
    assert doc.checkpoint == str(d / "run")
    doc.adopt(prepare_pipeline(doc.graph, ["inference"]))
    assert doc.cursor > 0
    out = tmp_path / "replayed.pb"
    cmd = recipe_of(doc).cli_command(doc.source_path, str(out), None, doc.checkpoint)
    args = shlex.split(cmd)
    assert args[:2] == ["surgeon", "optimize"] and "--checkpoint" in args
    assert cli.main(args[1:]) == 0, capsys.readouterr().err
    assert serialize(read_graph_def(out)) == serialize(doc.graph_def)
    # File ▸ Export Recipe's file alone replays it too: it records the checkpoint
    recipe_of(doc).save(tmp_path / "session.recipe.json")
    out2 = tmp_path / "from_recipe.pb"
    assert cli.main(["optimize", doc.source_path, str(out2), "--recipe",
                     str(tmp_path / "session.recipe.json")]) == 0, capsys.readouterr().err
    assert serialize(read_graph_def(out2)) == serialize(doc.graph_def)


# ---------------------------------------------------------------------- TF1 Saver's .meta
@pytest.fixture(scope="module")
def saver_files(tmp_path_factory):
    """A TF1 training net saved the way ``tf.compat.v1.train.Saver().save`` saves by default:
    ``model.ckpt.meta`` (the MetaGraph) beside ``model.ckpt.index``/``.data-…``; and what the
    training session computes for one input, with the flag at inference."""
    import numpy as np
    import tensorflow as tf
    v1 = tf.compat.v1
    d = tmp_path_factory.mktemp("saver")
    g = tf.Graph()
    x_val = np.random.default_rng(1).standard_normal((2, 5)).astype(np.float32)
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 5], name="x")
        training = v1.placeholder_with_default(False, [], name="is_training")
        w = v1.get_variable("w", [5, 3], initializer=v1.random_normal_initializer(seed=2))
        b = v1.get_variable("b", [3], initializer=v1.constant_initializer(0.5))
        h = tf.matmul(x, w) + b
        h = v1.cond(training, lambda: tf.nn.dropout(h, rate=0.5), lambda: h)
        probs = tf.nn.softmax(h, name="probs")
        loss = tf.reduce_mean(probs)
        v1.train.GradientDescentOptimizer(0.1).minimize(loss)
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            want = sess.run(probs, {x: x_val})
            v1.train.Saver().save(sess, str(d / "model.ckpt"))
    assert (d / "model.ckpt.meta").exists()
    return d, x_val, want


def test_a_savers_meta_opens_and_freezes(saver_files, tmp_path, capsys):
    import numpy as np
    from surgeon_gui.core.model.io import read_graph_def
    from surgeon_gui.core.running.runner import run_graph
    d, x_val, want = saver_files
    gd = read_graph_def(d / "model.ckpt.meta")
    assert "probs" in {n.name for n in gd.node} and variable_nodes(gd)
    assert not any("_output_shapes" in n.attr for n in gd.node)
    model = load_model(d / "model.ckpt.meta", checkpoint=str(d), outputs=["probs"])
    assert not variable_nodes(model.graph_def)
    got = run_graph(model.graph_def, {"x": x_val}, ["probs"])[0]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    out = tmp_path / "o.pb"
    code = cli.main(["optimize", str(d / "model.ckpt.meta"), str(out), "--checkpoint", str(d),
                     "--outputs", "probs"])
    assert code == 0, capsys.readouterr().err
    opt = read_graph_def(out)
    assert not {n.op for n in opt.node} & {"VariableV2", "VarHandleOp", "ApplyGradientDescent"}
    np.testing.assert_allclose(run_graph(opt, {"x": x_val}, ["probs"])[0], want,
                               rtol=1e-6)


def test_a_broken_meta_is_one_clear_line(saver_files, tmp_path):
    d = saver_files[0]
    cut = tmp_path / "cut.meta"
    cut.write_bytes((d / "model.ckpt.meta").read_bytes()[:3000])
    with pytest.raises(GraphError, match=r"not a MetaGraph \(\.meta\), or the file is truncated"):
        load_model(cut)


# ---------------------------------------------------------------------- the recipe records it
def test_a_recipe_replays_a_session_frozen_from_a_checkpoint_alone(saver_files, tmp_path, capsys):
    """``--save-recipe`` records the checkpoint; ``--recipe`` alone then freezes the graph the
    same way (no "give --checkpoint"), the same bytes and the training session's numbers. The
    checkpoint lies in the recipe's folder: written relative, so the folder can move."""
    import json

    import numpy as np
    from surgeon_gui.core.model.io import read_graph_def
    from surgeon_gui.core.running.runner import run_graph
    src, x_val, want = saver_files
    d = tmp_path / "work"
    shutil.copytree(src, d)
    first = tmp_path / "first.pb"
    assert cli.main(["optimize", str(d / "model.ckpt.meta"), str(first), "--checkpoint", str(d),
                     "--outputs", "probs", "--save-recipe", str(d / "r.json")]) == 0
    assert json.loads((d / "r.json").read_text())["checkpoint"] == "."
    moved = tmp_path / "moved"
    d.rename(moved)
    capsys.readouterr()
    again = tmp_path / "again.pb"
    assert cli.main(["optimize", str(moved / "model.ckpt.meta"), str(again),
                     "--recipe", str(moved / "r.json")]) == 0, capsys.readouterr().err
    assert f"checkpoint: {moved} (from the recipe" in capsys.readouterr().out
    assert again.read_bytes() == first.read_bytes()
    np.testing.assert_allclose(run_graph(read_graph_def(again), {"x": x_val}, ["probs"])[0],
                               want, rtol=1e-6)


def test_recipe_checkpoint_paths(tmp_path):
    """Relative when the checkpoint lies in the recipe's folder or below, absolute elsewhere;
    read back as an absolute path; a recipe without one is written as before (no key)."""
    import json

    from surgeon_gui.core.history.recipe import Recipe
    (tmp_path / "r" / "run").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    inside = Recipe(outputs=["y"], checkpoint=str(tmp_path / "r" / "run" / "model.ckpt"))
    inside.save(tmp_path / "r" / "a.json")
    assert json.loads((tmp_path / "r" / "a.json").read_text())["checkpoint"] == "run/model.ckpt"
    assert Recipe.load(tmp_path / "r" / "a.json").checkpoint == inside.checkpoint
    outside = Recipe(outputs=["y"], checkpoint=str(tmp_path / "elsewhere"))
    outside.save(tmp_path / "r" / "b.json")
    assert json.loads((tmp_path / "r" / "b.json").read_text())["checkpoint"] == \
        str(tmp_path / "elsewhere")
    assert Recipe.load(tmp_path / "r" / "b.json").checkpoint == str(tmp_path / "elsewhere")
    Recipe(outputs=["y"]).save(tmp_path / "r" / "c.json")
    assert "checkpoint" not in json.loads((tmp_path / "r" / "c.json").read_text())
    (tmp_path / "bad.json").write_text(json.dumps(
        {"format": "graph-surgeon-recipe", "version": 1, "checkpoint": 3, "steps": []}))
    with pytest.raises(GraphError, match='"checkpoint" must be a path'):
        Recipe.load(tmp_path / "bad.json")
