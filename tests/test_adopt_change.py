"""The change a Document announces when it adopts several steps at once (the preset's): the net
change from the graph before to the graph after, worked out with set operations (a preset step
on a big graph removes ~100k names)."""
from surgeon_gui.core.history.document import Document
from surgeon_gui.core.history.steps import prepare_edits


def test_adopting_steps_at_once_announces_their_net_change(tf1_graph):
    gd, inputs, outputs = tf1_graph
    work = gd.__class__()
    work.CopyFrom(gd)
    doc = Document(work, None, inputs, outputs)
    before = set(doc.graph.nodes)
    seen = []
    doc.changed.connect(seen.append)
    p1 = prepare_edits(doc.graph, [("rename_node", {"node": "Relu", "new_name": "act"})])
    p2 = prepare_edits(p1.graph, [("rename_node", {"node": "act", "new_name": "act2"})])
    p3 = prepare_edits(p2.graph, [("rename_node", {"node": "act2", "new_name": "Relu"})])
    doc.adopt([p1, p2])
    (change,) = seen
    assert change.kind == "apply"
    assert change.removed == {"Relu"} and change.added == {"act2"}   # "act" came and went
    assert change.removed == before - set(doc.graph.nodes)
    assert change.added == set(doc.graph.nodes) - before
    doc.undo()
    doc.undo()
    seen.clear()
    doc.adopt([p1, p2, p3])               # back to its own name: removed and added again
    (change,) = seen
    assert change.removed == {"Relu"} and change.added == {"Relu"}
    assert set(doc.graph.nodes) == before
    assert not change.changed & (change.added | change.removed)


def test_a_move_over_several_steps_announces_their_net_change(tf1_graph):
    """Undo/redo/History jumps over several steps: a name that came and went is in no set, one
    that went and came back is changed (Document.go_to, set operations)."""
    gd, inputs, outputs = tf1_graph
    work = gd.__class__()
    work.CopyFrom(gd)
    doc = Document(work, None, inputs, outputs)
    before = set(doc.graph.nodes)
    for old, new in (("Relu", "act"), ("act", "act2"), ("act2", "Relu")):
        doc.adopt([prepare_edits(doc.graph, [("rename_node", {"node": old, "new_name": new})])])
    seen = []
    doc.changed.connect(seen.append)
    doc.go_to(2)
    assert seen[-1].kind == "undo"
    assert (seen[-1].removed, seen[-1].added) == ({"Relu"}, {"act2"})
    doc.go_to(0)                        # act2 went, act came and went, Relu came back
    assert seen[-1].removed == {"act2"} and seen[-1].added == {"Relu"}
    assert set(doc.graph.nodes) == before
    doc.go_to(3)                        # Relu went and came back: changed, not removed/added
    assert seen[-1].kind == "apply" and not seen[-1].removed and not seen[-1].added
    assert "Relu" in seen[-1].changed
    assert doc.move_bytes(0) == sum(len(v) for s in doc.steps for v in s.delta.old_nodes.values())
