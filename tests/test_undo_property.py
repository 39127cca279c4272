"""Property-style: random sequences of passes and manual edits on a real model, pushed as undo
commands. At every step the document's GraphChange is exact; undo walks back through the very
same bytes, redo forward again; undo-all gives the original bytes, redo-all the final ones; and
the exported recipe replayed by the core (what `surgeon optimize --recipe` runs) gives the same
bytes as the session."""
import random

import pytest
from PySide6.QtGui import QUndoStack

from surgeon_gui.core.history.document import Document
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import serialize
from surgeon_gui.core.passes import PASS_MODULES
from surgeon_gui.core.history.recipe import replay
from surgeon_gui.ui.commands import (ApplyPassCommand, EditCommand, apply_passes, push_step,
                                     recipe_for)
from support import assert_index_fresh, random_edit


def node_bytes(gd):
    return {n.name: n.SerializeToString(deterministic=True) for n in gd.node}


class Recorder:
    """Checks every GraphChange the document emits against the real before/after graphs."""

    def __init__(self, doc):
        self.doc = doc
        self.before = node_bytes(doc.graph_def)
        self.count = 0
        doc.changed.connect(self.check)

    def check(self, change):
        after = node_bytes(self.doc.graph_def)
        assert change.removed == set(self.before) - set(after)
        assert change.added == set(after) - set(self.before)
        assert change.changed == {n for n in set(after) & set(self.before)
                                  if after[n] != self.before[n]}
        # the index follows the graph
        assert set(self.doc.graph.nodes) == set(after)
        assert_index_fresh(self.doc.graph)
        self.before = after
        self.count += 1


PASS_IDS = PASS_MODULES + ["inference"]


@pytest.mark.parametrize("model,seed", [("tf1_graph", s) for s in range(10)]
                         + [("tf2_graph", s) for s in range(4)])
def test_random_session_undo_redo_and_recipe(qapp, request, tmp_path, model, seed):
    rng = random.Random(seed)
    gd, inputs, outputs = request.getfixturevalue(model)
    work = gd.__class__()
    work.CopyFrom(gd)
    doc = Document(work, "model.pb", inputs, outputs)
    stack = QUndoStack()
    rec = Recorder(doc)
    states = [serialize(doc.graph_def)]
    refused = applied_edits = 0
    for k in range(rng.randint(6, 12)):
        if rng.random() < 0.5 or (k == 0 and rng.random() < 0.6):
            # the flag first, most of the time: most passes only bite once it is constant
            pid = "training_flags" if k == 0 else rng.choice(PASS_IDS)
            if pid == "inference":
                # each preset pass that changes something is its own step
                apply_passes(stack, doc, ["inference"],
                             on_step=lambda c: states.append(serialize(doc.graph_def)))
                continue
            select = None
            if rng.random() < 0.4:  # "apply ticked": a random subset of the preview's matches
                from surgeon_gui.core.passes import get_pass
                keys = [m.key for m in get_pass(pid).preview(doc.graph).matches]
                select = rng.sample(keys, rng.randint(0, len(keys))) if keys else None
            cmd = push_step(stack, ApplyPassCommand.compute(doc, pid, select=select))
        else:
            kind, args = random_edit(rng, doc.graph, tmp_path)
            before = serialize(doc.graph_def)
            try:
                cmd = push_step(stack, EditCommand.compute(doc, kind, args))
                applied_edits += 1
            except Exception as e:  # refused: nothing changed
                from surgeon_gui.core.history.edits import EditRefused
                assert isinstance(e, EditRefused), e
                assert serialize(doc.graph_def) == before
                refused += 1
                continue
        if cmd is not None:
            states.append(serialize(doc.graph_def))
    assert stack.count() == stack.index() == len(states) - 1
    final = serialize(doc.graph_def)

    walk = [final]
    for i in range(stack.count()):
        stack.undo()
        walk.append(serialize(doc.graph_def))
    walk.reverse()  # walk[i] = bytes after i steps
    assert walk[0] == states[0]  # undo all: the original bytes
    assert walk == states  # every undo gives the bytes that step started from
    for i in range(1, stack.count() + 1):
        stack.redo()
        assert serialize(doc.graph_def) == walk[i], f"redo step {i}"
    assert serialize(doc.graph_def) == final  # redo all: the final bytes
    assert not doc.applied or len(doc.applied) == stack.count()

    # jump through the history (a History-panel click) both ways
    stack.setIndex(0)
    assert serialize(doc.graph_def) == states[0]
    assert serialize(doc.original) == states[0]
    stack.setIndex(stack.count())
    assert serialize(doc.graph_def) == final
    assert serialize(doc.original) == states[0]

    # the recipe replays to the same bytes, from the original model
    recipe = recipe_for(stack, doc)
    replayed, _ = replay(Graph(gd, inputs, outputs), recipe)
    assert serialize(replayed.graph_def) == final
    assert rec.count >= 3 * stack.count()
    print(f"{model} seed {seed}: {stack.count()} steps, {applied_edits} edits applied, {refused} refused")


def test_branching_history_drops_the_redo_branch(qapp, tf1_graph):
    gd, inputs, outputs = tf1_graph
    work = gd.__class__()
    work.CopyFrom(gd)
    doc = Document(work, None, inputs, outputs)
    stack = QUndoStack()
    Recorder(doc)
    original = serialize(doc.graph_def)
    key0 = doc.state_key
    push_step(stack, EditCommand.compute(doc, "rename_node", {"node": "Relu",
                                                               "new_name": "act"}))
    a = serialize(doc.graph_def)
    key_a = doc.state_key
    push_step(stack, EditCommand.compute(doc, "remove_node", {"node": "conv1/weights/read"}))
    key_b = doc.state_key
    stack.undo()
    assert serialize(doc.graph_def) == a and doc.state_key == key_a
    push_step(stack, EditCommand.compute(doc, "make_output", {"node": "gap"}))
    assert doc.outputs == ["probs", "gap"] and stack.count() == 2
    assert doc.state_key not in (key0, key_a, key_b)  # a new branch is a new state
    stack.undo()
    assert doc.outputs == ["probs"]
    stack.undo()
    assert serialize(doc.graph_def) == original and not doc.dirty and doc.state_key == key0
    stack.redo()
    assert doc.dirty and "act" in doc.graph.nodes
