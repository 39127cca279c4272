"""Issue 9.3: the preset takes parameters of its passes and records them in the recipe."""
import json

import pytest

from surgeon_gui import cli
from surgeon_gui.core.history.recipe import Recipe, RecipeError, replay
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import read_graph_def, save_graph
from surgeon_gui.core.running.compare import compare_graphs


def test_preset_param_on_the_command_line_and_in_the_recipe(tf1_flag_v2, tmp_path, capsys):
    gd, ins, outs = tf1_flag_v2
    src, out, rec = tmp_path / "m.pb", tmp_path / "o.pb", tmp_path / "r.json"
    save_graph(gd, src)
    code = cli.main(["optimize", str(src), str(out), "--param",
                     "training_flags.names=model/Placeholder_1", "--save-recipe", str(rec)])
    res = capsys.readouterr()
    assert code == 0, res.err
    assert "training_flags" in res.out
    step = json.loads(rec.read_text())["steps"][0]
    assert step["pass"] == "inference"
    assert step["params"] == {"training_flags": {"names": "model/Placeholder_1"}}
    opt = read_graph_def(out)
    ops = {n.op for n in opt.node}
    assert "model/Placeholder_1" not in {n.name for n in opt.node}
    assert not ops & {"If", "StatelessIf"}, ops
    cmp = compare_graphs(gd, opt, None, outs, runs=0, warmup=0)
    assert cmp.allclose
    # Replaying the recipe gives the same bytes.
    assert cli.main(["optimize", str(src), str(tmp_path / "o2.pb"), "--recipe", str(rec)]) == 0
    assert (tmp_path / "o2.pb").read_bytes() == out.read_bytes()


def test_preset_param_errors_are_one_line(tf1_flag_v2, tmp_path, capsys):
    src = tmp_path / "m.pb"
    save_graph(tf1_flag_v2[0], src)
    code = cli.main(["optimize", str(src), str(tmp_path / "o.pb"), "--param",
                     "training_flags.nmes=x"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "has no parameter 'nmes'" in err and len(err.splitlines()) == 1
    code = cli.main(["optimize", str(src), str(tmp_path / "o.pb"), "--passes",
                     "remove_identity", "--param", "training_flags.names=x"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "not in --passes" in err
    bad = Recipe.from_dict({"format": "graph-surgeon-recipe", "version": 1,
                            "steps": [{"pass": "inference", "params": {"nope": {}}}]})
    with pytest.raises(RecipeError, match="runs no pass 'nope'"):
        replay(Graph(tf1_flag_v2[0]), bad)
