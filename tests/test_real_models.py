"""Real trained models shipped in PyPI packages (see core/model/real_models.py): the preset
leaves no training machinery silently, comparisons run, the shipped checkpoint freezes."""
import numpy as np
import pytest

from surgeon_gui.core.model import real_models as rm
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import resolve_checkpoint
from surgeon_gui.core.model.ops import is_random
from surgeon_gui.core.passes.leftovers import leftovers
from surgeon_gui.core.passes.pipeline import run_pipeline
from surgeon_gui.core.running.compare import compare_graphs
from surgeon_gui.core.running.runner import make_feeds


@pytest.fixture(scope="module")
def musicnn_vgg():
    return rm.musicnn("MTT_vgg")


def test_shipped_checkpoint_layout_resolves():
    folder = rm.package_dir("musicnn") / "MTT_vgg"
    # Files named '.index' and '.data-…' (empty basename); 'checkpoint' names the authors' disk.
    assert (folder / ".index").is_file()
    assert "/home/" in (folder / "checkpoint").read_text()
    assert resolve_checkpoint(folder) == str(folder) + "/"


def test_musicnn_preset_removes_training_machinery_and_keeps_the_tags(musicnn_vgg):
    gd, ins, outs = musicnn_vgg
    g = Graph(gd)
    assert g.node("model/Placeholder_2").attr["dtype"].type == 10  # bool, unknown rank
    before = {n.op for n in gd.node}
    assert {"Switch", "Merge"} <= before and any(is_random(op) for op in before)
    opt, steps = run_pipeline(g, ["inference"])
    left_ops = {n.op for n in opt.graph_def.node}
    assert not left_ops & {"Switch", "Merge", "If", "StatelessIf"}
    assert not any(is_random(op) for op in left_ops)
    assert "model/Placeholder_2" not in opt.nodes
    feeds = make_feeds(g, shapes=rm.FEED_SHAPES["musicnn_MTT_vgg"], seed=0)
    cmp = compare_graphs(gd, opt.graph_def, feeds, outs, runs=0, warmup=0)
    assert cmp.allclose and cmp.noise_verdict(cmp.outputs[0]) == "consistent"
    # What stays is said, with a reason each.
    for item in leftovers(opt):
        assert item.kind in ("batch norm",) and item.reason, item.line()


def test_musicnn_flag_matters(musicnn_vgg):
    """Feeding is_training=True changes the tags: the comparison's False feed is meaningful."""
    gd, ins, outs = musicnn_vgg
    g = Graph(gd)
    feeds = make_feeds(g, shapes=rm.FEED_SHAPES["musicnn_MTT_vgg"], seed=0)
    from surgeon_gui.core.running.runner import run_graph
    (a,) = run_graph(gd, feeds, outs)
    (b,) = run_graph(gd, dict(feeds, **{"model/Placeholder_2": np.bool_(True)}), outs)
    assert np.abs(a - b).max() > 1e-3


def test_retinaface_preset_folds_its_batch_norms():
    gd, ins, outs = rm.retinaface()
    bn = sum(n.op.startswith("FusedBatchNorm") for n in gd.node)
    assert bn == 68
    opt, _ = run_pipeline(Graph(gd, ins, outs), ["inference"])
    assert not [n for n in opt.graph_def.node if n.op.startswith("FusedBatchNorm")]
    feeds = make_feeds(Graph(gd, ins, outs), shapes=rm.FEED_SHAPES["retinaface_mnv2"], seed=0)
    feeds["x"] = (np.abs(feeds["x"]) * 60).astype(np.float32)  # pixel-like values
    cmp = compare_graphs(gd, opt.graph_def, feeds, outs, runs=0, warmup=0)
    assert cmp.allclose


def test_musicnn_recipe_replays_with_its_checkpoint(tmp_path, capsys):
    """musicnn ships a TF1 Saver's ``.meta`` + checkpoint: a recipe saved from
    ``optimize --checkpoint`` replays from ``--recipe`` alone, the same bytes, and the result
    computes what the model frozen from the checkpoint computes."""
    from surgeon_gui import cli
    from surgeon_gui.core.model.io import read_graph_def
    folder = rm.package_dir("musicnn") / "MTT_musicnn"
    first, again = tmp_path / "first.pb", tmp_path / "again.pb"
    assert cli.main(["optimize", str(folder / ".meta"), str(first), "--checkpoint", str(folder),
                     "--outputs", "model/Sigmoid", "--save-recipe",
                     str(tmp_path / "r.json")]) == 0, capsys.readouterr().err
    assert cli.main(["optimize", str(folder / ".meta"), str(again), "--recipe",
                     str(tmp_path / "r.json")]) == 0, capsys.readouterr().err
    assert again.read_bytes() == first.read_bytes()
    gd, ins, outs = rm.musicnn("MTT_musicnn")
    opt = read_graph_def(again)
    assert len(opt.node) < len(gd.node) and not {n.op for n in opt.node} & {"Switch", "Merge"}
    feeds = make_feeds(Graph(gd), shapes=rm.FEED_SHAPES["musicnn_MTT_musicnn"], seed=0)
    cmp = compare_graphs(gd, opt, feeds, outs, runs=0, warmup=0)
    assert cmp.allclose
