"""A hand edit computed from the document's indexes (the bypass's readers from its consumer
index, the editor's name index from its node index, one index of the result for the checks
and the step) gives exactly what the whole-graph path gave: the same refusals, GraphDef bytes,
step delta, and an index of the result equal to a fresh one."""
from pathlib import Path

import pytest

import tensorflow as tf

from surgeon_gui.core.history import edits as edits_mod
from surgeon_gui.core.history import steps
from surgeon_gui.core.history.delta import _load
from surgeon_gui.core.history.document import Document
from surgeon_gui.core.history.edits import EditRefused
from surgeon_gui.core.model.editor import GraphEditor
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import load_model

ROOT = Path(__file__).resolve().parent.parent


def _old_path(monkeypatch, graph, edits):
    """prepare_edits as it was: the editor reads every node, the result indexed afresh."""
    bypass = GraphEditor.bypass
    apply = steps.apply_edit_io

    def apply_fresh(*a, **k):
        res = apply(*a, **k)
        res.graph = None
        return res
    with monkeypatch.context() as m:
        m.setattr(GraphEditor, "index_from", lambda self, g: None)
        m.setattr(GraphEditor, "bypass", lambda self, name, input_index=0, readers=None:
                  bypass(self, name, input_index))
        m.setattr(steps, "apply_edit_io", apply_fresh)
        m.setattr(edits_mod, "_result_index", lambda graph, ed, gd, in_order:
                  Graph(gd, source=graph.source))
        m.setattr(edits_mod, "_bypass_keeps_structure", lambda *a: False)
        return _outcome(graph, edits)


def _outcome(graph, edits):
    try:
        return steps.prepare_edits(graph, edits)
    except EditRefused as e:
        return ("refused", e.problem, list(e.nodes))


def _delta(d):
    return (d.removed, d.added, d.changed, d.removed_at, d.added_at, d.op_changes,
            d.old_order, d.new_order, d.old_fields, d.new_fields, d.old_io, d.new_io,
            {k: _load(v) for k, v in d.old_nodes.items()},
            {k: _load(v) for k, v in d.new_nodes.items()})


def _index(g: Graph):
    cons = {k: list(v) for k, v in g._build_consumers().items()}
    return (list(g.nodes), g.order, cons, g.topological_order(),
            [p.problem for p in g.problems()], g.given_inputs, g.given_outputs, g.source)


def _check_same(monkeypatch, graph, names):
    # (the document's index was checked on loading: what lets a bypass skip the full sort)
    assert graph.problems() == []
    made = refused = 0
    for name in names:
        for edits in ([("remove_node", {"node": name})],
                      [("remove_node", {"node": name, "mode": "cascade"})]):
            old = _old_path(monkeypatch, graph, edits)
            new = _outcome(graph, edits)
            if isinstance(old, tuple):
                assert new == old, name
                refused += 1
                continue
            assert not isinstance(new, tuple), (name, new)
            assert new.graph.graph_def.SerializeToString(deterministic=True) == \
                old.graph.graph_def.SerializeToString(deterministic=True), name
            assert (new.step.label, new.step.recipe_step) == (old.step.label, old.step.recipe_step)
            assert _delta(new.step.delta) == _delta(old.step.delta), name
            fresh = Graph(new.graph.graph_def, new.graph.given_inputs,
                          new.graph.given_outputs, source=new.graph.source)
            assert _index(new.graph) == _index(fresh) == _index(old.graph), name
            made += 1
    # (both kinds of outcome were compared)
    assert made and refused
    return made, refused


@pytest.mark.parametrize("example", ["tf1_cond_bn_dropout.pb", "tf2_if_bn_dropout.pb",
                                     "mobilenet_v2_96.pb"])
def test_every_delete_of_an_example_same_as_before(monkeypatch, example):
    doc = Document.from_loaded(load_model(str(ROOT / "resources" / "examples" / example)))
    names = [n.name for n in doc.graph_def.node]
    _check_same(monkeypatch, doc.graph, names[::max(1, len(names) // 150)])


def test_deletes_on_the_cond_bn_cnn_same_as_before(monkeypatch, small_cond_bn):
    gd, ins, outs = small_cond_bn
    graph = Graph(gd, ins, outs)
    nodes = list(gd.node)
    relus = [n.name for n in nodes if n.op == "Relu"]
    reads = [n.name for n in nodes if n.name.endswith("/read")]
    others = [n.name for n in nodes[::40]]
    _check_same(monkeypatch, graph, relus[::3] + reads[::10] + others)


@pytest.mark.slow
def test_deletes_on_the_big_model_same_as_before(monkeypatch, cond_bn_10k_path):
    doc = Document.from_loaded(load_model(str(cond_bn_10k_path)))
    nodes = list(doc.graph_def.node)
    relus = [n.name for n in nodes if n.op == "Relu"]
    _check_same(monkeypatch, doc.graph, relus[::len(relus) // 6] + [n.name for n in nodes[::800]])


def _tf1_loop_graph():
    """x (placeholder) -> a TF1 while loop (v1 control flow: Enter/Merge/Switch/NextIteration/
    Exit) that multiplies and adds for a fed number of steps -> out."""
    v1 = tf.compat.v1
    v1.disable_control_flow_v2()
    try:
        g = tf.Graph()
        with g.as_default():
            x = v1.placeholder(tf.float32, [2], name="x")
            n = v1.placeholder_with_default(tf.constant(3), [], name="steps")
            _, acc = v1.while_loop(lambda i, a: i < n,
                                   lambda i, a: (i + 1, tf.nn.relu(a * 0.5 + x)),
                                   [tf.constant(0), tf.zeros([2])], name="loop")
            tf.identity(acc * 2.0, name="out")
        return g.as_graph_def()
    finally:
        v1.enable_control_flow_v2()


def test_deletes_in_a_tf1_while_loop_same_as_before(monkeypatch):
    """Bypassing a NextIteration makes the loop's back edge an ordinary edge into its Merge: a
    cycle the old graph did not have, refused by both paths; every other node too."""
    graph = Graph(_tf1_loop_graph(), ["x"], ["out"])
    assert graph.problems() == []
    nexts = [n.name for n in graph.graph_def.node if n.op == "NextIteration"]
    assert len(nexts) == 2
    for name in nexts:
        new = _outcome(graph, [("remove_node", {"node": name})])
        assert isinstance(new, tuple) and "cycle" in new[1], new
    _check_same(monkeypatch, graph, list(graph.nodes))


def test_a_bypass_outside_loops_of_a_checked_graph_sorts_nothing(monkeypatch, small_cond_bn):
    """The structure check's sort is left out only where it cannot find anything (and the
    result is the same as with it, above): a Relu of a checked graph; not a loop's
    NextIteration, nor a reader of a Merge."""
    gd, ins, outs = small_cond_bn
    sorts = []
    sort = Graph._sort
    monkeypatch.setattr(Graph, "_sort", lambda self, ignore_loops: sorts.append(1) or
                        sort(self, ignore_loops))
    graph = Graph(gd, ins, outs)
    graph.problems()
    relu = next(n.name for n in gd.node if n.op == "Relu")
    sorts.clear()
    _outcome(graph, [("remove_node", {"node": relu})])
    assert sorts == []
    loop = Graph(_tf1_loop_graph(), ["x"], ["out"])
    loop.problems()
    # the back edge, and the Enter a Merge reads: sorted; the body's Relu: not
    for name, sorted_ in (("loop/NextIteration", True), ("loop/Enter", True),
                          ("loop/Relu", False)):
        assert loop.nodes[name].op in ("NextIteration", "Enter", "Relu")
        sorts.clear()
        _outcome(loop, [("remove_node", {"node": name})])
        assert bool(sorts) == sorted_, name
