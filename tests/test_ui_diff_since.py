"""The Diff panel's "Since opening" / "Since step k" entries: after the preset's Apply all on a
real-shaped TF1 graph (the bundled example's: tf.cond batch norms, dropout), what all the steps
changed together, the same as the core's diff of the graph as opened and the graph now, listed,
marked in the view, with "go to node" and Before on the state the span starts from; undo
follows. And the list's "Op / change" column reads a removed Const's dtype and shape whole."""
from support import window_with_model
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from surgeon_gui.core.history.diff import GraphDiff


def wait(qtbot, w):
    QApplication.processEvents()
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=30_000)
    qtbot.waitUntil(lambda: not w.surgery.diff.computing, timeout=30_000)


def choose(qtbot, w, prefix):
    """Choose the Diff list's entry whose text starts with ``prefix``, as a user does."""
    box = w.surgery.diff.steps
    texts = [box.itemText(i) for i in range(box.count())]
    at = next(i for i, t in enumerate(texts) if t.startswith(prefix))
    box.setCurrentIndex(at)
    wait(qtbot, w)


def shown(diff) -> tuple[set, set, set]:
    return set(diff.items("Removed")), set(diff.items("Added")), set(diff.items("Changed"))


def expected(doc, start=0) -> GraphDiff:
    return GraphDiff.between(doc.graph_at(start).graph_def, doc.graph_def)


def test_since_opening_lists_the_whole_preset_and_follows_undo(qtbot, tmp_path, monkeypatch,
                                                              tf1_graph):
    # the bundled example's graph (resources/examples/tf1_cond_bn_dropout.pb: the same builder,
    # the same 157 nodes and names), saved and opened as a user opens it. (Opening the bundled
    # file's own bytes here makes the NEXT test's model load crash in TF's import_graph_def on
    # its worker, on main's code too: see /work/notes/diffall.md.)
    gd, _, _ = tf1_graph
    w = window_with_model(qtbot, tmp_path, monkeypatch, gd, size=(1600, 1000))
    doc = w.document
    opened = set(doc.graph.nodes)
    panel = w.surgery.passes
    panel.select_pass("inference")
    qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    wait(qtbot, w)
    n = doc.cursor
    assert n >= 5
    diff = w.surgery.diff
    step_shown = shown(diff)

    choose(qtbot, w, "Since opening")
    assert diff.selected_span_start() == 0
    want = expected(doc)
    removed, added, changed = shown(diff)
    assert (removed, added, changed) == want.names()
    # the training machinery really gone: every cond's Switch/Merge, dropout, the BN ops
    now = set(doc.graph.nodes)
    assert removed == opened - now and added == now - opened
    for name in ("bn1/cond/Merge", "bn1/cond/Switch", "bn2/cond/FusedBatchNormV3",
                 "bn1/moving_mean"):
        assert name in removed
    assert any(r.startswith("dropout/") for r in removed)
    assert {o for o in ("Switch", "Merge", "FusedBatchNormV3")
            if any(doc.graph_at(0).nodes[r].op == o for r in removed)} == \
        {"Switch", "Merge", "FusedBatchNormV3"}
    # a changed node says what changed across the span (a batch norm folded into a BiasAdd)
    assert "bn1/cond/FusedBatchNormV3_1" in changed
    assert [c.lines() for c in diff.diff.changed] == [c.lines() for c in want.changed]
    assert diff.summary.text().startswith(f"<b>Since opening (steps 1–{n})</b>")
    # no single step is the whole change (the step shown after Apply all among them)
    for s in doc.applied_steps:
        assert GraphDiff.from_delta(s.delta).names() != want.names()
    assert step_shown != want.names()
    check_op_column(w)
    # the view marks the span's change
    marks = w.view.marks()
    assert all(marks.get(c) == "changed" for c in changed)
    assert all(marks.get(a) == "added" for a in added)

    # go to a removed node: the view shows the graph as opened, the node selected
    top = diff.tree.topLevelItem(0)
    assert top.text(0).startswith("Removed")
    item = next(top.child(i) for i in range(top.childCount())
                if top.child(i).data(0, Qt.UserRole) == "bn1/cond/Merge")
    diff.tree.itemClicked.emit(item, 0)
    wait(qtbot, w)
    assert diff.showing_before and "bn1/cond/Merge" in w.view.selected_nodes()
    assert set(w.view.document.graph.nodes) == opened
    assert w.view.marks().get("bn1/cond/Merge") == "removed"
    qtbot.mouseClick(diff.before_button, Qt.LeftButton)
    wait(qtbot, w)
    assert w.view.document is doc and w.view.marks().get("bn1/cond/FusedBatchNormV3_1") == \
        "changed"

    # a later start: since step 1
    choose(qtbot, w, "Since step 1:")
    assert shown(diff) == expected(doc, 1).names() != want.names()

    # undo: "Since opening" stays chosen and covers one step fewer, each time
    choose(qtbot, w, "Since opening")
    for k in range(n - 1, 0, -1):
        w.undo_stack.undo()
        wait(qtbot, w)
        assert doc.cursor == k and diff.selected_span_start() == 0
        assert shown(diff) == expected(doc).names()
        assert diff.summary.text().startswith(f"<b>Since opening (steps 1–{k})</b>")
    assert shown(diff) == GraphDiff.from_delta(doc.applied_steps[0].delta).names()
    w.undo_stack.undo()
    wait(qtbot, w)
    assert diff.steps.count() == 0 and "No step yet" in diff.summary.text()
    # redo all: back to the whole preset's change
    for _ in range(n):
        w.undo_stack.redo()
    wait(qtbot, w)
    choose(qtbot, w, "Since opening")
    assert shown(diff) == want.names()


def check_op_column(w):
    """The Diff list's "Op / change" column at 1600x1000: "Const float32[8]" beside long BN
    names was cut to "Const…32[8]" (30% of a ~300 px dock); it gets the room it needs (up to
    40% of the list), the names the rest; the long change lines may still be cut."""
    tree = w.surgery.diff.tree
    QApplication.processEvents()
    room = tree.viewport().width()
    assert room < 500, "a wide dock would prove nothing"
    fm = tree.fontMetrics()
    rows = [tree.topLevelItem(i).child(j) for i in range(tree.topLevelItemCount())
            for j in range(tree.topLevelItem(i).childCount())]
    consts = [it.text(1) for it in rows if it.text(1).startswith("Const ")]
    assert "Const  float32[8]" in consts
    widest = max(fm.horizontalAdvance(t) for t in consts)
    assert widest + 8 <= int(room * 0.4)
    assert tree.columnWidth(1) >= widest + 8      # (the cell's margins)
    assert tree.columnWidth(0) >= room * 0.6 - 1  # the names keep the larger part
