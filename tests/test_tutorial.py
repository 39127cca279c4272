"""The tutorial exporter: ``surgeon optimize --report`` and the Qt-free core behind it."""
from __future__ import annotations

import base64
import re
from pathlib import Path

from surgeon_gui import cli
from surgeon_gui.core.history.recipe import Recipe
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import load_model, save_graph
from surgeon_gui.core.running.tutorial import (
    build_tutorial,
    to_html,
    trace_recipe,
    write_tutorial,
)

ROOT = Path(__file__).resolve().parents[1]
TF1 = ROOT / "resources" / "examples" / "tf1_cond_bn_dropout.pb"


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_report_html_for_bundled_tf1(tmp_path, capsys, qapp):
    out_pb, report = tmp_path / "opt.pb", tmp_path / "tutorial.html"
    code, out, err = run(capsys, "optimize", TF1, out_pb, "--report", report)
    assert code == 0, err
    assert f"tutorial: {report}" in out and "outputs equal: PASS" in out
    page = report.read_text()
    # one step per pass that changed something, in the preset's order
    steps = re.findall(r"<h2 id='step\d+'>Step \d+: ([^<(]+)", page)
    assert [s.strip() for s in steps][:3] == ["Set training flags to inference",
                                              "Remove Switch/Merge", "Remove dropout"]
    assert any(s.startswith("Fold batch norm") for s in steps)
    # self-contained: every picture embedded, nothing loaded from elsewhere
    imgs = re.findall(r"<img [^>]*src='([^']+)'", page)
    assert len(imgs) >= 2 * (len(steps) - 1)
    assert all(src.startswith("data:image/png;base64,") for src in imgs)
    png = base64.b64decode(imgs[0].split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in page and "https://" not in page
    # worked numbers of the fold, with its check, and the comparison verdict at the end
    assert "s = γ/√(var+ε)" in page and "conv_new(x)[c]" in page
    assert page.rstrip().endswith("</html>")
    assert page.index("Comparison: original against the result") < page.rindex(
        "outputs equal: PASS")
    # the optimized model is byte-identical to a run without --report
    plain = tmp_path / "plain.pb"
    assert run(capsys, "optimize", TF1, plain)[0] == 0
    assert plain.read_bytes() == out_pb.read_bytes()


def test_cli_report_markdown_writes_pngs(tmp_path, capsys, qapp):
    from surgeon_gui.core.model.examples import conv_bias_bn
    gd, _, _ = conv_bias_bn(seed=1)
    src = tmp_path / "conv.pbtxt"
    save_graph(gd, src)
    report = tmp_path / "t.md"
    code, out, err = run(capsys, "optimize", src, tmp_path / "o.pb", "--report", report)
    assert code == 0, err
    text = report.read_text()
    pics = re.findall(r"!\[(before|after)\]\(([^)]+)\)", text)
    assert pics and all((tmp_path / p).read_bytes()[:4] == b"\x89PNG" for _, p in pics)
    assert "**outputs equal: PASS**" in text and "| c | b | γ |" in text


def test_cli_report_refuses_bad_paths(tmp_path, capsys):
    from surgeon_gui.core.model.examples import conv_bias_bn
    gd, _, _ = conv_bias_bn()
    src = tmp_path / "conv.pbtxt"
    save_graph(gd, src)
    code, _, err = run(capsys, "optimize", src, tmp_path / "o.pb", "--report", tmp_path / "t.pdf")
    assert code == 2 and "written as .html or .md" in err
    existing = tmp_path / "t.html"
    existing.write_text("keep me")
    code, _, err = run(capsys, "optimize", src, tmp_path / "o2.pb", "--report", existing)
    assert code == 2 and "not overwriting" in err
    assert existing.read_text() == "keep me" and not (tmp_path / "o2.pb").exists()


def test_tutorial_without_pictures_says_so(tmp_path):
    from surgeon_gui.core.model.examples import conv_bias_bn
    gd, ins, outs = conv_bias_bn()
    g = Graph(gd, ins, outs)
    recipe = Recipe()
    recipe.add_pass("fold_batch_norm")
    final, steps = trace_recipe(g, recipe)
    assert len(steps) == 1 and steps[0].report.applied
    tut = build_tutorial("t", "conv", steps, compare=None, render=None)
    page = to_html(tut)
    assert "<img" not in page and "no pictures" in page
    assert "outputs equal: not compared" in page
    assert tut.steps[0].nodes_before == len(g) and tut.steps[0].nodes_after == len(final)
    assert "bn" in tut.steps[0].changed and "BiasAdd" in tut.steps[0].removed
    written = write_tutorial(tut, tmp_path / "t.md")
    assert written == [tmp_path / "t.md"]


def test_trace_recipe_gives_the_replayed_graph():
    from surgeon_gui.core.history.recipe import replay
    m = load_model(TF1)
    g = m.graph()
    recipe = Recipe()
    recipe.add_pass("inference")
    a, steps = trace_recipe(g, recipe)
    b, _ = replay(g, recipe, keep_graphs=False)
    assert a.graph_def.SerializeToString(deterministic=True) == \
        b.graph_def.SerializeToString(deterministic=True)
    assert [s.before for s in steps[1:]] == [s.after for s in steps[:-1]]

