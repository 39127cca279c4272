"""Undo, redo and History jumps update the Graph index in proportion to the change
(``Graph.updated`` via ``GraphDelta.apply_indexed``/``revert_indexed``) instead of rebuilding it:
after every move, on real passes and hand edits over the bundled examples, the updated index
must equal one built from scratch field by field, and the bytes must be the state's bytes."""
import random
from pathlib import Path

import pytest

from surgeon_gui.core.history.document import Document
from surgeon_gui.core.history.steps import prepare_edits, prepare_pass, prepare_pipeline
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import load_model, serialize
from surgeon_gui.core.passes import PASS_MODULES
from support import assert_index_fresh, random_edit

EXAMPLES = Path(__file__).resolve().parents[1] / "resources" / "examples"


def _warm(graph: Graph, rng: random.Random) -> None:
    """Build the lazy parts of the index (as the view and the passes do), so that undo has
    them to update rather than to drop."""
    if rng.random() < 0.8:
        graph._build_consumers()
    if rng.random() < 0.7:
        graph.ops
    if rng.random() < 0.5:
        try:
            graph.topological_order()
        except Exception:  # noqa: BLE001 - a hand edit may make a cycle; problems() says so
            pass
    if rng.random() < 0.5:
        graph.problems()


def _session(doc: Document, rng: random.Random, tmp_path, steps: int) -> list[bytes]:
    """Real steps on ``doc`` (passes, the preset, hand edits); the bytes after each state."""
    states = [serialize(doc.graph_def)]
    if "training_flags" in PASS_MODULES:
        p = prepare_pass(doc.graph, "training_flags")
        if p is not None:
            doc.adopt([p])
            states.append(serialize(doc.graph_def))
    preset_at = rng.randrange(steps)   # the preset once at least (many steps, big ones)
    for k in range(steps):
        _warm(doc.graph, rng)
        r = rng.random()
        if r < 0.15 or k == preset_at:
            prepared = prepare_pipeline(doc.graph, ["inference"])
            for p in prepared:  # one at a time, to record each state's bytes
                doc.adopt([p])
                states.append(serialize(doc.graph_def))
            continue
        if r < 0.5:
            p = prepare_pass(doc.graph, rng.choice(PASS_MODULES))
        else:
            kind, args = random_edit(rng, doc.graph, tmp_path)
            try:
                p = prepare_edits(doc.graph, [(kind, args)])
            except Exception as e:  # noqa: BLE001 - refused edits change nothing
                from surgeon_gui.core.history.edits import EditRefused
                assert isinstance(e, EditRefused), e
                continue
        if p is not None:
            doc.adopt([p])
            states.append(serialize(doc.graph_def))
    return states


@pytest.mark.parametrize("example,seed", [
    ("tf1_cond_bn_dropout.pb", 0), ("tf1_cond_bn_dropout.pb", 1), ("tf1_cond_bn_dropout.pb", 2),
    ("tf2_if_bn_dropout.pb", 0), ("conv_bias_bn.pbtxt", 0), ("mobilenet_v2_96.pb", 0)])
def test_undo_redo_and_jumps_keep_the_index_equal_to_a_fresh_one(example, seed, tmp_path):
    rng = random.Random(seed)
    loaded = load_model(EXAMPLES / example)
    doc = Document.from_loaded(loaded)
    states = _session(doc, rng, tmp_path, steps=6 if example.startswith("mobilenet") else 10)
    n = len(doc.steps)
    assert n == len(states) - 1 and n >= 3, f"only {n} steps: the session did too little"
    assert_index_fresh(doc.graph)

    def move(target: int) -> None:
        _warm(doc.graph, rng)
        doc.go_to(target)
        assert doc.cursor == target
        assert serialize(doc.graph_def) == states[target], f"bytes at state {target}"
        assert_index_fresh(doc.graph)

    for k in range(n - 1, -1, -1):       # undo all, one by one
        move(k)
    assert serialize(doc.graph_def) == states[0]
    for k in range(1, n + 1):            # redo all
        move(k)
    assert serialize(doc.graph_def) == states[-1]
    for _ in range(12):                  # History jumps, several steps at once
        move(rng.randrange(n + 1))
    move(0)
    move(n)


def test_incremental_path_really_updates_rather_than_rebuilds(tf1_graph):
    """The consumer index survives a small undo (patched, not dropped) and is right."""
    gd, inputs, outputs = tf1_graph
    work = gd.__class__()
    work.CopyFrom(gd)
    doc = Document(work, None, inputs, outputs)
    doc.adopt([prepare_edits(doc.graph, [("rename_node", {"node": "Relu",
                                                           "new_name": "act"})])])
    cons = doc.graph._build_consumers()
    assert "act" in cons and "Relu" not in cons
    doc.undo()
    assert doc.graph._consumers is not None and doc.graph._consumers is not cons
    assert "Relu" in doc.graph._consumers and "act" not in doc.graph._consumers
    assert_index_fresh(doc.graph)
    doc.redo()
    assert doc.graph._consumers is not None
    assert_index_fresh(doc.graph)


def test_graph_updated_by_hand_matches_fresh(tf1_graph):
    """``Graph.updated`` on an edit made outside a delta: a changed input, a removed node."""
    gd, inputs, outputs = tf1_graph
    work = gd.__class__()
    work.CopyFrom(gd)
    g = Graph(work, inputs, outputs)
    g._build_consumers()
    g.topological_order()
    victim = next(n for n in work.node if n.name.endswith("/read"))
    reader = g.consumers(victim.name)[0][0]
    src = victim.input[0]
    old = {victim.name: (victim.op, list(victim.input)),
           reader: (g.nodes[reader].op, list(g.nodes[reader].input))}
    node = g.nodes[reader]
    node.input[list(node.input).index(victim.name)] = src
    pos = g.order[victim.name]
    del work.node[pos]
    names = [n for n in g.order if n != victim.name]
    g2 = g.updated({victim.name}, (), {reader}, old, names, inputs=inputs, outputs=outputs)
    assert g2._consumers is not None and not g2._topo  # patched; the order is found again
    assert_index_fresh(g2)
    assert victim.name not in g2.nodes and victim.name in g.nodes  # the old index as it was
