"""GraphDiff: removed/added/changed nodes with what changed, per step and between files."""
import numpy as np
import pytest

from surgeon_gui.core.history.delta import GraphDelta
from surgeon_gui.core.history.diff import GraphDiff
from surgeon_gui.core.history.edits import apply_edit_io, value_spec
from surgeon_gui.core.model.graph import Graph


@pytest.fixture(scope="module")
def g(tf1_graph):
    gd, inputs, outputs = tf1_graph
    return Graph(gd, inputs, outputs)


def test_identical_graphs_have_an_empty_diff(g):
    d = GraphDiff.between(g.graph_def, g.graph_def)
    assert d.empty and d.summary().startswith("0 removed, 0 added, 0 changed")


def test_attr_change_old_and_new_value(g):
    res = apply_edit_io(g, "set_attr", {"node": "conv1/Conv2D", "attr": "padding",
                                        "value": "VALID"})
    d = GraphDiff.between(g.graph_def, res.graph_def)
    assert [c.name for c in d.changed] == ["conv1/Conv2D"] and not d.removed and not d.added
    assert d.changed[0].lines() == ['padding: SAME → VALID']


def test_rewired_input(g):
    res = apply_edit_io(g, "set_input", {"node": "Relu6", "index": 0, "source": "dw/depthwise_1"})
    d = GraphDiff.between(g.graph_def, res.graph_def)
    assert d.changed[0].lines() == ["input 0: bn2/cond/Merge → dw/depthwise_1"]


def test_weight_statistics_before_after(g):
    w = np.full((3, 3, 3, 8), 0.5, np.float32)
    res = apply_edit_io(g, "replace_const", {"node": "conv1/weights", "value":
                                             {"dtype": "float32", "shape": list(w.shape),
                                              "values": w.ravel().tolist()}})
    d = GraphDiff.between(g.graph_def, res.graph_def)
    ch = d.changed[0]
    assert ch.name == "conv1/weights" and ch.weights is not None
    assert ch.weights.new["mean"] == pytest.approx(0.5) and ch.weights.new["std"] == 0
    old = g.nodes["conv1/weights"]
    from surgeon_gui.core.model.graph import const_value
    expect = float(np.max(np.abs(const_value(old) - 0.5)))
    assert ch.weights.max_abs_diff == pytest.approx(expect)
    assert "max |Δ|" in ch.lines()[-1] and "float32[3, 3, 3, 8]" in ch.lines()[-1]


def test_removed_and_added_from_a_step_delta_and_its_undo(g):
    res = apply_edit_io(g, "rename_node", {"node": "Relu", "new_name": "act1"})
    delta = GraphDelta.between(g.graph_def, res.graph_def)
    d = GraphDiff.from_delta(delta)
    assert [n.name for n in d.removed] == ["Relu"] and [n.name for n in d.added] == ["act1"]
    assert d.added[0].op == "Relu"
    assert [c.name for c in d.changed] == ["dw/depthwise_1"]
    u = GraphDiff.from_delta(delta, undo=True)
    assert [n.name for n in u.removed] == ["act1"] and [n.name for n in u.added] == ["Relu"]
    assert u.changed[0].lines() == ["input 0: act1 → Relu"]


def test_cut_lists_every_removed_node_with_its_op(g):
    res = apply_edit_io(g, "cut_to_outputs", {"outputs": ["gap"]})
    d = GraphDiff.between(g.graph_def, res.graph_def)
    removed = {n.name: n for n in d.removed}
    assert set(removed) == set(g.nodes) - set(Graph(res.graph_def).nodes)
    assert removed["fc/weights"].op == "Const" and removed["fc/weights"].detail == "float32[16, 5]"
    assert d.to_dict()["removed"][0]["name"] in removed


def _doc_with_edits(g, edits):
    from surgeon_gui.core.history.document import Document
    doc = Document(g.graph_def.__deepcopy__(), "tf1.pb", g.given_inputs, g.given_outputs)
    for kind, args in edits:
        res = apply_edit_io(doc.graph, kind, args)
        doc.push(res.graph_def, kind, inputs=res.inputs, outputs=res.outputs)
    return doc


def test_across_steps_equals_the_diff_of_first_and_last_graphs(g):
    """Several steps together: a node changed and changed back is not listed, a node renamed
    twice is one removed and one added, a change then a removal is a removal."""
    doc = _doc_with_edits(g, [
        ("set_attr", {"node": "conv1/Conv2D", "attr": "padding", "value": "VALID"}),
        ("rename_node", {"node": "Relu", "new_name": "act1"}),
        ("set_attr", {"node": "conv1/Conv2D", "attr": "padding", "value": "SAME"}),
        ("rename_node", {"node": "act1", "new_name": "act2"}),
        ("cut_to_outputs", {"outputs": ["gap"]}),
    ])
    deltas = [s.delta for s in doc.applied_steps]
    for start in range(len(deltas)):
        want = GraphDiff.between(doc.graph_at(start).graph_def, doc.graph_def)
        got = GraphDiff.across(deltas[start:])
        assert got.names() == want.names()
        assert [c.lines() for c in got.changed] == [c.lines() for c in want.changed]
        assert [(n.op, n.detail, n.inputs) for n in sorted(got.removed, key=lambda n: n.name)] \
            == [(n.op, n.detail, n.inputs) for n in sorted(want.removed, key=lambda n: n.name)]
    whole = GraphDiff.across(deltas).names()
    assert "conv1/Conv2D" not in whole[2]       # changed and changed back
    assert "Relu" in whole[0] and "act2" in whole[1] and "act1" not in whole[0] | whole[1]
    assert "fc/weights" in whole[0]
    assert all(GraphDiff.from_delta(d).names() != whole for d in deltas)


def test_across_steps_with_duplicate_names_reverts_a_copy(g):
    from surgeon_gui.core.history.document import Document
    from surgeon_gui.core.model.graph import GraphDef
    gd = GraphDef()
    gd.CopyFrom(g.graph_def)
    gd.node.add(name="dup", op="NoOp")
    gd.node.add(name="dup", op="NoOp")
    doc = Document(gd, "dup.pb")
    new = GraphDef()
    new.CopyFrom(gd)
    del new.node[-1]
    doc.push(new, "drop one dup")
    new2 = GraphDef()
    new2.CopyFrom(doc.graph_def)
    new2.node[0].device = "/cpu:0"
    doc.push(new2, "device")
    deltas = [s.delta for s in doc.applied_steps]
    assert deltas[0].old_full is not None
    with pytest.raises(ValueError):
        GraphDiff.across(deltas)
    current = GraphDef()
    current.CopyFrom(doc.graph_def)
    got = GraphDiff.across(deltas, current)
    want = GraphDiff.between(doc.graph_at(0).graph_def, doc.graph_def)
    assert got.names() == want.names() and got.changed[0].name == gd.node[0].name
    assert current == doc.graph_def     # the copy given is not changed
