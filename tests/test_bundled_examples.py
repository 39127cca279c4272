"""The bundled examples: committed files match what resources/make_examples.py writes, every one
loads, and ``surgeon optimize`` on it keeps the numbers."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from surgeon_gui import cli
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import load_model, read_graph_def

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "resources" / "examples"
FILES = ["tf1_cond_bn_dropout.pb", "tf2_if_bn_dropout.pb", "mobilenet_v2_96.pb",
         "conv_bias_bn.pbtxt"]


def test_examples_are_committed_and_small():
    present = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".pb", ".pbtxt"))
    assert present == sorted(FILES)
    total = sum((EXAMPLES / f).stat().st_size for f in FILES)
    assert total < 12 * 1024 * 1024
    readme = (EXAMPLES / "README.md").read_text()
    assert all(f"`{f}`" in readme for f in FILES)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("examples")
    proc = subprocess.run([sys.executable, str(ROOT / "resources" / "make_examples.py"),
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", FILES)
def test_script_output_matches_the_committed_file(regenerated, name):
    committed = read_graph_def(EXAMPLES / name)
    fresh = read_graph_def(regenerated / name)
    assert [(n.name, n.op, list(n.input)) for n in fresh.node] == \
        [(n.name, n.op, list(n.input)) for n in committed.node]
    assert len(fresh.library.function) == len(committed.library.function)
    assert Graph(fresh).parameter_count() == Graph(committed).parameter_count()


@pytest.mark.parametrize("name", FILES)
def test_example_loads_and_optimizes_without_changing_outputs(name, tmp_path, capsys):
    model = load_model(EXAMPLES / name)
    assert len(model.graph_def.node) > 5
    out = tmp_path / ("opt" + Path(name).suffix)
    assert cli.main(["optimize", str(EXAMPLES / name), str(out)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    before, after = len(model.graph_def.node), len(read_graph_def(out).node)
    assert after < before
    code = cli.main(["compare", str(EXAMPLES / name), str(out), "--json", "--runs", "1",
                     "--shape", "input=2,-1,-1,-1"])
    d = json.loads(capsys.readouterr().out)
    assert code == 0, d["outputs"]
    assert all(o["allclose"] for o in d["outputs"].values())


def test_training_example_freezes_from_its_checkpoint_to_the_frozen_example(tmp_path, capsys):
    """``tf1_training/`` is ``tf1_cond_bn_dropout.pb`` as its training script saved it: frozen
    from the bundled checkpoint (``surgeon optimize --checkpoint``) it computes the same."""
    from surgeon_gui.core.model.io import variable_nodes
    graph = EXAMPLES / "tf1_training" / "graph.pb"
    assert len(variable_nodes(read_graph_def(graph))) == 21
    out = tmp_path / "opt.pb"
    assert cli.main(["optimize", str(graph), str(out), "--checkpoint",
                     str(EXAMPLES / "tf1_training"), "--outputs", "probs"]) == 0, \
        capsys.readouterr().err
    capsys.readouterr()
    assert not variable_nodes(read_graph_def(out))
    code = cli.main(["compare", str(EXAMPLES / "tf1_cond_bn_dropout.pb"), str(out), "--json",
                     "--runs", "1"])
    d = json.loads(capsys.readouterr().out)
    assert code == 0 and all(o["allclose"] for o in d["outputs"].values()), d["outputs"]
