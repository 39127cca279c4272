"""The comparison report: Markdown (+ SVG chart) and HTML from Comparison.to_dict(), also from a
saved ``surgeon compare --json``; outputs as .npz."""
import json

import numpy as np
import pytest

from surgeon_gui.core.running.compare import compare_graphs
from surgeon_gui.core.model.graph import Graph, GraphDef, const_value, make_const
from surgeon_gui.core.running.report import (html_report, latency_svg, markdown_report,
                                     save_outputs_npz, write_report)
from surgeon_gui.core.running.samples import SampleSet


@pytest.fixture(scope="module")
def comparison(tf1_graph):
    gd, ins, outs = tf1_graph
    b = GraphDef()
    b.CopyFrom(gd)
    for n in b.node:
        if n.name == "fc/weights":
            v = const_value(n).copy()
            v.flat[0] += 1.0
            n.CopyFrom(make_const(n.name, v))
    feeds = SampleSet(batch=3).make_feeds(Graph(gd, ins, outs))
    return compare_graphs(gd, b, feeds, outs, runs=4, warmup=1), feeds


def test_markdown_and_html_carry_the_numbers(comparison, tmp_path):
    cmp, _ = comparison
    d = json.loads(json.dumps(cmp.to_dict()))        # what `surgeon compare --json` prints
    o = d["outputs"]["probs"]
    md = markdown_report(d, "T", svg_name="t_latency.svg")
    assert "**1 of 1 output(s) NOT allclose (rtol=0.0001, atol=1e-05): probs.**" in md
    assert f"| probs | 3×5 | {o['max_abs_err']:.3g} | {o['max_rel_err']:.3g} | **NO** |" in md
    assert f"| nodes | {d['graphs']['a']['node_count']:,} |" in md
    assert "![latency](t_latency.svg)" in md and "median of 4 runs after 1 warm-up" in md
    page = html_report(d, "T")
    assert "<svg" in page and "NOT allclose" in page and "<td>probs</td>" in page
    svg = latency_svg(d)
    assert svg.count("<rect") == 2 and f"{d['graphs']['b']['latency_ms']:.2f}" in svg
    files = write_report(tmp_path / "r.md", d, "T")
    assert [f.name for f in files] == ["r.md", "r_latency.svg"]
    with pytest.raises(ValueError, match="a report is .md or .html"):
        write_report(tmp_path / "r.txt", d)
    with pytest.raises(FileExistsError):
        write_report(tmp_path / "r.md", d, overwrite=False)


def test_untimed_comparison_has_no_chart(tf1_graph):
    gd, ins, outs = tf1_graph
    feeds = SampleSet().make_feeds(Graph(gd, ins, outs))
    d = compare_graphs(gd, gd, feeds, outs, runs=0).to_dict()
    assert latency_svg(d) == ""
    md = markdown_report(d)
    assert "All 1 output(s) allclose" in md and "not timed" in md and "![latency]" not in md


def test_outputs_npz(comparison, tmp_path):
    cmp, feeds = comparison
    p = save_outputs_npz(tmp_path / "o.npz", feeds, cmp.values_a, cmp.values_b)
    with np.load(p) as z:
        assert sorted(z.files) == ["current/probs", "input/input", "reference/probs"]
        assert np.abs(z["current/probs"] - z["reference/probs"]).max() == pytest.approx(
            cmp.outputs[0].max_abs_err)
    with pytest.raises(ValueError, match=".npz"):
        save_outputs_npz(tmp_path / "o.npy", feeds, cmp.values_a, cmp.values_b)
