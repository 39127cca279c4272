"""Recipes: the file format, exact replay of interactive steps, the CLI equivalent, bad files."""
import json
import shlex

import pytest

from surgeon_gui import cli
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import read_graph_def, save_graph, serialize
from surgeon_gui.core.passes.pipeline import inputs_after, run_pass, run_pipeline
from surgeon_gui.core.history.recipe import FORMAT, Recipe, RecipeError, replay


def _interactive(graph, steps):
    """Apply steps the way the GUI does: one run_pass / apply_edit_io at a time."""
    from surgeon_gui.core.history.edits import apply_edit_io
    for kind, a, b in steps:
        if kind == "pass":
            res = run_pass(graph, a, b.get("params"), select=b.get("select"))
            graph = Graph(res.graph_def, inputs_after(graph, res.graph_def),
                          graph.given_outputs)
        else:
            res = apply_edit_io(graph, a, b)
            graph = Graph(res.graph_def, res.inputs, res.outputs)
    return graph


@pytest.fixture(scope="module")
def tf1(tf1_graph):
    gd, ins, outs = tf1_graph
    return Graph(gd, ins, outs)


def test_replay_gives_the_same_bytes_as_interactive_steps(tf1, tmp_path):
    from surgeon_gui.core.passes import get_pass
    g = _interactive(tf1, [("pass", "training_flags", {})])
    keys = sorted(m.key for m in get_pass("remove_switch_merge").preview(g).matches)
    assert len(keys) >= 4, "the TF1 graph has several conds"
    chosen = set(keys[:2])  # the user ticks only two matches
    steps = [
        ("pass", "training_flags", {}),
        ("pass", "remove_switch_merge", {"select": chosen}),
        ("edit", "rename_node", {"node": "probs", "new_name": "scores"}),
        ("pass", "fold_constants", {"params": {"max_bytes": 1 << 20}}),
    ]
    expected = _interactive(tf1, steps)
    assert expected.outputs == ["scores"], "the rename followed the output"
    # Only the two selected conds went: other Switch nodes remain.
    assert Graph(expected.graph_def).op_histogram().get("Switch", 0) > 0

    recipe = Recipe(inputs=list(tf1.given_inputs), outputs=list(tf1.given_outputs),
                    source="tf1.pb")
    recipe.add_pass("training_flags")
    recipe.add_pass("remove_switch_merge", select=chosen)
    recipe.add_edit("rename_node", {"node": "probs", "new_name": "scores"})
    recipe.add_pass("fold_constants", {"max_bytes": 1 << 20})
    path = recipe.save(tmp_path / "r.json")

    loaded = Recipe.load(path)
    assert loaded.to_dict() == recipe.to_dict()
    result, done = replay(Graph(tf1.graph_def), loaded)
    assert serialize(result.graph_def) == serialize(expected.graph_def)
    assert result.outputs == ["scores"]
    assert [d.step.label for d in done] == ["training_flags", "remove_switch_merge (2 selected)",
                                            "edit rename_node", "fold_constants"]
    assert all(d.modified for d in done)
    # The recipe cannot be written as --passes (selection, params, edit): it points at the file.
    assert recipe.cli_command("in.pb", "out.pb", str(path)) == \
        f"surgeon optimize in.pb out.pb --recipe {path}"


def test_file_format(tmp_path):
    r = Recipe(inputs=["input"], outputs=None)
    r.add_pass("fold_batch_norm", {"min_size": 1}, select=["b", "a"])
    r.add_edit("remove_node", {"node": "x", "mode": "bypass"})
    d = json.loads(r.save(tmp_path / "x.json").read_text())
    assert d == {"format": FORMAT, "version": 1, "inputs": ["input"], "outputs": None,
                 "steps": [{"pass": "fold_batch_norm", "params": {"min_size": 1},
                            "select": ["a", "b"]},
                           {"edit": "remove_node", "args": {"node": "x", "mode": "bypass"}}]}


def test_preset_step_replays_the_pipeline(tf1, tmp_path):
    expected, _ = run_pipeline(tf1, ["inference"])
    r = Recipe(inputs=tf1.given_inputs, outputs=tf1.given_outputs)
    r.add_pass("inference")
    got, done = replay(Graph(tf1.graph_def), Recipe.load(r.save(tmp_path / "p.json")))
    assert serialize(got.graph_def) == serialize(expected.graph_def)
    assert len(done) == 1 and len(done[0].reports) >= 5
    assert len(got) < len(tf1) / 2


def test_replay_without_keeping_intermediate_graphs(tf1):
    r = Recipe()
    r.add_pass("training_flags")
    r.add_pass("inference")
    kept, steps_kept = replay(tf1, r)
    lean, steps_lean = replay(tf1, r, keep_graphs=False)
    assert serialize(lean.graph_def) == serialize(kept.graph_def)
    assert all(s.graph_def is not None for s in steps_kept)
    assert all(s.graph_def is None for s in steps_lean)
    assert [len(s.reports) for s in steps_lean] == [len(s.reports) for s in steps_kept]
    _, inner = run_pipeline(tf1, ["inference"], keep_graphs=False)
    assert inner and all(s.result.graph_def is None for s in inner)


def test_cli_command_for_plain_passes_runs_to_the_same_bytes(tf1, tmp_path, capsys):
    src = tmp_path / "in model.pb"
    save_graph(tf1.graph_def, src)
    r = Recipe(inputs=["input"], outputs=["probs"])
    r.add_pass("training_flags")
    r.add_pass("remove_switch_merge")
    r.add_pass("remove_identity")
    out = tmp_path / "out.pb"
    cmd = r.cli_command(str(src), str(out))
    assert "--passes training_flags,remove_switch_merge,remove_identity" in cmd
    assert "--inputs input --outputs probs" in cmd
    argv = shlex.split(cmd)
    assert argv[:2] == ["surgeon", "optimize"]
    assert cli.main(argv[1:]) == 0
    capsys.readouterr()
    expected, _ = replay(Graph(tf1.graph_def), r)
    assert out.read_bytes() == serialize(expected.graph_def)


@pytest.mark.parametrize("content, words", [
    ("{not json", "invalid JSON at line 1"),
    ('{"format": "something-else", "version": 1, "steps": []}', "not a recipe"),
    ('{"format": "graph-surgeon-recipe", "version": 7, "steps": []}', "version 7"),
    ('{"format": "graph-surgeon-recipe", "version": 1, "steps": {}}', "\"steps\" must be a list"),
    ('{"format": "graph-surgeon-recipe", "version": 1, "steps": [{"pass": "a", "edit": "b"}]}',
     "step 1 needs exactly one"),
    ('{"format": "graph-surgeon-recipe", "version": 1, "steps": [{"pass": "a", "select": 3}]}',
     "\"select\" must be a list"),
    ('{"format": "graph-surgeon-recipe", "version": 1, "outputs": "y", "steps": []}',
     "\"outputs\" must be a list"),
], ids=["json", "format", "version", "steps", "both", "select", "outputs"])
def test_bad_recipe_files_are_clear(tmp_path, content, words, capsys):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(RecipeError) as err:
        Recipe.load(p)
    assert words in str(err.value) and err.value.source == str(p)
    model = tmp_path / "m.pbtxt"
    model.write_text('node { name: "x" op: "Placeholder" attr { key: "dtype" '
                     'value { type: DT_FLOAT } } }\n'
                     'node { name: "y" op: "Relu" input: "x" }\n')
    assert cli.main(["optimize", str(model), str(tmp_path / "o.pb"), "--recipe", str(p)]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and str(p) in err_lines[0]
    with pytest.raises(RecipeError, match="no such recipe file"):
        Recipe.load(tmp_path / "missing.json")


@pytest.mark.parametrize("step, words", [
    ({"pass": "no_such_pass"}, "step 2: unknown pass 'no_such_pass'"),
    ({"pass": "fold_constants", "params": {"bogus": 1}}, "step 2: pass 'fold_constants' has no "
                                                         "parameter(s) bogus"),
    ({"edit": "teleport", "args": {}}, "step 2: unknown edit kind 'teleport'"),
    ({"edit": "remove_node", "args": {"node": "ghost"}}, "step 2 (edit remove_node)"),
    ({"pass": "inference", "select": ["x"]}, "cannot take a selection"),
], ids=["pass", "param", "edit-kind", "edit-args", "preset-select"])
def test_steps_that_cannot_replay_name_the_step(tf1, step, words):
    r = Recipe.from_dict({"format": FORMAT, "version": 1,
                          "steps": [{"pass": "training_flags"}, step]})
    with pytest.raises(RecipeError) as err:
        replay(tf1, r)
    assert words in str(err.value)


def test_recipe_naming_missing_nodes(tf1):
    r = Recipe(outputs=["not_there"])
    with pytest.raises(RecipeError, match="does not have: not_there"):
        replay(tf1, r)


def test_save_recipe_from_cli_then_replay(tf1, tmp_path, capsys):
    src = tmp_path / "m.pb"
    save_graph(tf1.graph_def, src)
    out1, rec = tmp_path / "a.pb", tmp_path / "steps.json"
    assert cli.main(["optimize", str(src), str(out1), "--passes", "training_flags,inference",
                     "--save-recipe", str(rec)]) == 0
    d = json.loads(rec.read_text())
    assert [s["pass"] for s in d["steps"]] == ["training_flags", "inference"]
    out2 = tmp_path / "b.pb"
    assert cli.main(["optimize", str(src), str(out2), "--recipe", str(rec)]) == 0
    assert out1.read_bytes() == out2.read_bytes()
    assert len(read_graph_def(out2).node) < len(tf1)
    capsys.readouterr()


def test_training_flag_input_is_dropped_the_same_way_everywhere(tf2_graph):
    """The TF2 model lists its ``training`` flag as an input. Once training_flags makes it a
    Const it is no longer an input: the pipeline (CLI), a recipe of single passes and the GUI's
    one-pass-at-a-time steps must agree, and give the same bytes."""
    from surgeon_gui.core.passes import PRESET_PASSES
    gd, ins, outs = tf2_graph
    assert "training" in ins
    graph = Graph(gd, ins, outs)
    piped, steps = run_pipeline(graph, ["inference"])
    assert piped.given_inputs == ["input"]
    assert "training" not in piped.nodes  # nothing protects it any more: it is gone
    recipe = Recipe()
    for s in steps:
        recipe.add_pass(s.pass_id)
    replayed, _ = replay(graph, recipe)
    assert replayed.given_inputs == ["input"]
    assert serialize(replayed.graph_def) == serialize(piped.graph_def)
    one_by_one = _interactive(graph, [("pass", s.pass_id, {}) for s in steps])
    assert serialize(one_by_one.graph_def) == serialize(piped.graph_def)
    assert steps[0].pass_id == "training_flags" and PRESET_PASSES[0] == "training_flags"
