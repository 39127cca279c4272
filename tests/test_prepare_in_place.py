"""The GUI's preset edits one working copy in place (``prepare_pipeline``'s default, as the CLI
runs it): each step's delta is built from the pass's recorded old nodes instead of a
whole-graph comparison. On real models (a TF1 cond-BN CNN, a TF2 If model, a frozen Keras
MobileNetV2) it must give the very deltas the copying path gives, step by step, and the same
bytes after adoption, after every undo and every redo; the input graph is never touched, and a
cancelled run leaves it as it was."""
import pytest

from surgeon_gui.core.history import delta as delta_mod
from surgeon_gui.core.history.delta import _load
from surgeon_gui.core.history.document import Document
from surgeon_gui.core.history.steps import prepare_pipeline, state_before_last
from surgeon_gui.core.model.graph import Graph, copy_graph_def
from surgeon_gui.core.model.io import serialize
from support import assert_index_fresh


def _graph(model) -> Graph:
    gd, ins, outs = model
    return Graph(copy_graph_def(gd), ins, outs)


def _stored(d: dict) -> dict:
    return {k: _load(v) for k, v in d.items()}


def _same_delta(a, b) -> None:
    assert (a.removed, a.added, a.changed) == (b.removed, b.added, b.changed)
    assert (a.removed_at, a.added_at) == (b.removed_at, b.added_at)
    assert (a.old_order, a.new_order) == (b.old_order, b.new_order)
    assert (a.old_fields, a.new_fields) == (b.old_fields, b.new_fields)
    assert (a.old_io, a.new_io) == (b.old_io, b.new_io)
    assert a.op_changes == b.op_changes
    assert _stored(a.old_nodes) == _stored(b.old_nodes)
    assert _stored(a.new_nodes) == _stored(b.new_nodes)


@pytest.fixture(params=["tf1_graph", "tf2_graph", "mobilenet_v2"])
def model(request):
    return request.getfixturevalue(request.param)


def test_in_place_preset_gives_the_copying_paths_steps_and_bytes(model, monkeypatch):
    calls = {"between": 0, "from_record": 0}
    for name in calls:
        real = getattr(delta_mod.GraphDelta, name).__func__

        def counted(cls, *a, _real=real, _name=name, **k):
            calls[_name] += 1
            return _real(cls, *a, **k)
        monkeypatch.setattr(delta_mod.GraphDelta, name, classmethod(counted))

    copying = prepare_pipeline(_graph(model), ["inference"], in_place=False)
    calls.update(between=0, from_record=0)
    g = _graph(model)
    original = serialize(g.graph_def)
    in_place = prepare_pipeline(g, ["inference"])
    assert serialize(g.graph_def) == original          # the input is never edited
    assert len(in_place) == len(copying) >= 4
    # most steps were recorded in place, not compared whole (the first copies the input)
    assert calls["from_record"] >= len(in_place) - 2 and calls["between"] <= 2
    assert all(p.graph is None for p in in_place[:-1]) and in_place[-1].graph is not None
    for a, b in zip(in_place, copying):
        assert a.step.label == b.step.label and a.step.recipe_step == b.step.recipe_step
        _same_delta(a.step.delta, b.step.delta)
    assert serialize(in_place[-1].graph.graph_def) == serialize(copying[-1].graph.graph_def)
    assert_index_fresh(in_place[-1].graph)

    # adopted, then every undo and every redo: the same bytes as the copying path's states
    states = [original] + [serialize(p.graph.graph_def) for p in copying]
    doc = Document(g.graph_def, "m.pb", g.given_inputs, g.given_outputs, graph=g)
    doc.adopt(in_place)
    assert serialize(doc.graph_def) == states[-1]
    for i in range(len(states) - 2, -1, -1):
        doc.undo()
        assert serialize(doc.graph_def) == states[i]
    assert_index_fresh(doc.graph)
    for i in range(1, len(states)):
        doc.redo()
        assert serialize(doc.graph_def) == states[i]
    assert_index_fresh(doc.graph)
    assert (doc.inputs, doc.outputs) == (copying[-1].graph.given_inputs,
                                         copying[-1].graph.given_outputs)


def test_steps_adopted_one_at_a_time_and_the_state_before_the_last(tf1_graph):
    g = _graph(tf1_graph)
    gd_in, original = g.graph_def, serialize(g.graph_def)
    doc = Document(g.graph_def, "m.pb", g.given_inputs, g.given_outputs, graph=g)
    copying = prepare_pipeline(_graph(tf1_graph), ["inference"], in_place=False)
    states = [serialize(p.graph.graph_def) for p in copying]
    seen = []

    def adopt(p):   # as apply_passes does: each step adopted as soon as it is prepared
        # the first comes with a graph of its own, the others apply their delta to it
        assert (p.graph is None) == bool(seen)
        doc.adopt([p])
        seen.append(serialize(doc.graph_def))
    prepared = prepare_pipeline(doc.graph, ["inference"], on_step=adopt)
    assert seen == states and len(doc.steps) == len(prepared)
    assert serialize(gd_in) == original     # the graph given in was never edited
    assert_index_fresh(doc.graph)
    # the state one undo away, made on the last graph by taking its step back and again
    last = prepared[-1].graph
    before = state_before_last(prepared, lambda gr: (serialize(gr.graph_def),
                                                     assert_index_fresh(gr)))[0]
    assert before == states[-2]
    assert prepared[-1].graph is not last and prepared[-1].graph.graph_def is last.graph_def
    assert serialize(prepared[-1].graph.graph_def) == states[-1]
    assert_index_fresh(prepared[-1].graph)


def test_a_cancelled_in_place_preset_leaves_its_input_as_it_was(tf1_graph):
    g = _graph(tf1_graph)
    original = serialize(g.graph_def)
    asked = []

    def stop():
        asked.append(1)
        return len(asked) > 4      # cancelled in the first round, after changes were made
    with pytest.raises(InterruptedError):
        prepare_pipeline(g, ["inference"], should_stop=stop)
    assert serialize(g.graph_def) == original
    assert_index_fresh(g)


def test_big_replaced_weights_are_recorded_by_moving_them_out(mobilenet_v2):
    """In place with record=True, a replaced node over MOVE_BYTES (a conv's weights the fold
    scales) is moved out of the node list, not copied: its recorded old version still has
    the old bytes, and the list holds the new one where the old one was."""
    from surgeon_gui.core.model.editor import MOVE_BYTES
    from surgeon_gui.core.passes.pipeline import run_pass
    g = _graph(mobilenet_v2)
    # (frozen Keras reads its weights through Identity nodes: those go first, as in the preset)
    res = run_pass(g, "remove_identity")
    g = Graph(res.graph_def, g.given_inputs, g.given_outputs)
    before = {n.name: n.SerializeToString(deterministic=True) for n in g.graph_def.node}
    order = [n.name for n in g.graph_def.node]
    res = run_pass(g, "fold_batch_norm", in_place=True, record=True)
    assert res.graph_def is g.graph_def and res.report.modified
    big = [n for n in res.report.changed if len(before[n]) >= MOVE_BYTES]
    assert big, "no big weights replaced: the test would not see the move"
    for name in res.report.changed | res.report.removed:
        assert res.old_nodes[name].SerializeToString(deterministic=True) == before[name]
    now = {n.name: n for n in res.graph_def.node}
    for name in big:
        assert now[name].SerializeToString(deterministic=True) != before[name]
    # every kept node where it was (the new weights took the old ones' places)
    kept = [n for n in order if n not in res.report.removed]
    assert [n.name for n in res.graph_def.node][:len(kept)] == kept
