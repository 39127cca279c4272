"""A new edit with everything expanded is laid out incrementally and the scene updated in place.

The layout engine starts from its last layout (see ``LayoutEngine._layout_incremental``) and
says itself what differs from the drawn placement; the view then skips ``placement_diff``. Two
new edits in a row (no kept placement serves them), each checked against a scene built from
scratch and a fresh layout, then undone back to the first picture."""
from PySide6.QtGui import QUndoStack

from surgeon_gui.core.viewmodel import layout
from surgeon_gui.core.viewmodel.grouping import GroupTree
from surgeon_gui.ui import graph_view
from surgeon_gui.ui.commands import EditCommand, push_step
from tests.support import assert_same_tree
from tests.test_ui_view_undo_in_place import (  # noqa: F401 - fixtures
    _check_scene,
    _same_as_fresh_layout,
    _view,
    lazy_scene,
    updates,
)


def test_new_edits_expanded_are_incremental_and_update_the_scene_in_place(
        qtbot, small_cond_bn, updates, monkeypatch):
    monkeypatch.setattr(layout, "INCREMENTAL_MIN_UNITS", 0)  # (a small graph)
    gd, ins, outs = small_cond_bn
    doc, view = _view(qtbot, gd, ins, outs)
    walked = []
    real = graph_view.placement_diff
    monkeypatch.setattr(graph_view, "placement_diff",
                        lambda *a, **k: walked.append(1) or real(*a, **k))
    first = {k: (b.x, b.y, b.w, b.h) for k, b in view.placement.boxes.items()}
    relus = [n.name for n in gd.node if n.op == "Relu"]
    stack = QUndoStack()
    for victim in (relus[len(relus) // 3], relus[2 * len(relus) // 3]):
        view.centerOn(view.graph_scene.item("n:" + victim))
        view.viewport().repaint()
        drawn = view.placement
        updates.clear()
        walked.clear()
        push_step(stack, EditCommand.compute(doc, "remove_node", {"node": victim}))
        qtbot.waitUntil(lambda: not view.layout_pending, timeout=60000)
        view.viewport().repaint()
        assert view.engine.last_mode == "incremental"
        # the new state's group tree and visible edges came from the old ones and the step,
        # and equal what a fresh build gives
        assert view.last_tree_made == "derived" and view.last_edges_made == "derived"
        fresh = GroupTree(doc.graph)
        assert_same_tree(view.tree, fresh)
        key = lambda e: (e.src, e.dst, e.control, e.count, e.label, e.pairs)
        assert [key(e) for e in view.placement.edges] == \
            [key(e) for e in fresh.visible_graph(view.placement.expanded)]
        assert view.placement.base() is drawn and not walked  # the engine's own diff
        assert updates, "the scene was rebuilt, not updated"
        assert "n:" + victim not in view.placement.boxes
        assert "n:" + victim in view.placement.diff.units
        _check_scene(view)
        _same_as_fresh_layout(view)
    stack.undo()
    stack.undo()
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=60000)
    _check_scene(view)
    # all undone: the first picture again
    assert {k: (b.x, b.y, b.w, b.h) for k, b in view.placement.boxes.items()} == first
