"""Undo and redo with everything expanded update the lazy scene in place.

After an edit the view's layout says which boxes and edges differ from the drawn placement
(``Placement.diff``); the scene then moves, makes or drops only those items and moves only
their entries in the tile index, and undo and redo come back to placements kept from before.
These tests check the result against a scene built from scratch for the same placement and
against a fresh layout of the same state, and that every box in view is found through the
tile index afterwards. The threshold for a lazy scene is 0 here, so that the bundled graphs
get one."""
import pytest
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QTransform, QUndoStack

from surgeon_gui.core.history.document import Document
from surgeon_gui.core.viewmodel import layout
from surgeon_gui.core.viewmodel.layout import Box, LayoutEngine
from surgeon_gui.ui import graph_scene
from surgeon_gui.ui.commands import EditCommand, push_step
from surgeon_gui.ui.graph_scene import GraphScene, _edge_key, edge_polyline
from surgeon_gui.ui.graph_view import GraphView


@pytest.fixture(autouse=True)
def lazy_scene(monkeypatch):
    monkeypatch.setattr(graph_scene, "LAZY_ITEMS", 0)
    # in place however much changed (a Relu taken out of the small TF1 graph moves most of it)
    monkeypatch.setattr(graph_scene, "UPDATE_MAX", 1.0)
    # what follows the Relu in its column moves as a block (a few boxes in these graphs)
    monkeypatch.setattr(graph_scene, "BLOCK_MIN", 3)


@pytest.fixture
def updates(monkeypatch):
    """How many placements the scene took in place (not rebuilt)."""
    done = []
    real = GraphScene._apply_diff
    monkeypatch.setattr(GraphScene, "_apply_diff",
                        lambda self, *a: done.append(1) or real(self, *a))
    return done


def _view(qtbot, gd, ins, outs):
    doc = Document(gd, None, ins, outs)
    view = GraphView()
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    view.set_document(doc, reset_view=True)
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=60000)
    view.expand_all()
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=60000)
    view.setTransform(QTransform())
    return doc, view


def _filed(index: dict) -> dict:
    """tile → entries, turned round: entry → sorted tiles."""
    out: dict = {}
    for t, entries in index.items():
        for x in entries:
            out.setdefault(x, []).append(t)
    return {x: sorted(ts) for x, ts in out.items()}


def _check_index(scene, fresh) -> None:
    """The tile index as updated equals the fresh scene's, but for the blocks that moved:
    those are filed where they were, and their offset takes them to where they are."""
    h = scene.placement.horizontal
    units, f_units = _filed(scene._tile_units), _filed(fresh._tile_units)
    assert units.keys() == f_units.keys() == scene.boxes.keys()
    for k, tiles in units.items():
        dx, dy = scene._unit_off.get(k, (0.0, 0.0))
        if (dx, dy) == (0.0, 0.0):
            assert tiles == f_units[k], k
        else:
            b = scene.boxes[k]
            assert tiles == sorted(GraphScene._box_tiles(Box(b.x - dx, b.y - dy, b.w, b.h))), k
    edges = _filed(scene._tile_edges)
    f_edges = {str(_edge_key(fresh.edge_recs[i], h)): ts
               for i, ts in _filed(fresh._tile_edges).items()}
    assert edges.keys() == {i for i, r in enumerate(scene.edge_recs) if r is not None}
    for i, tiles in edges.items():
        rec = scene.edge_recs[i]
        dx, dy = scene._edge_off.get(i, (0.0, 0.0))
        pl = [(x - dx, y - dy) for x, y in edge_polyline(rec[1], rec[2], rec[6], h, rec[3])]
        assert tiles == sorted(GraphScene._edge_tiles(rec[0], rec[3], pl)), rec[0]
        if (dx, dy) == (0.0, 0.0):
            assert tiles == f_edges[str(_edge_key(rec, h))]
    assert set(scene._offsets) == set(scene._unit_off.values()) | set(scene._edge_off.values())


def _check_scene(view) -> None:
    """The scene as updated equals one built from scratch for the same placement, and every
    box is found through the tile index where it is."""
    scene = view.graph_scene
    fresh = GraphScene()
    fresh.apply_placement(view.tree, view.placement)
    assert fresh.lazy and scene.lazy
    _check_index(scene, fresh)
    h = view.placement.horizontal
    assert sorted(map(str, (_edge_key(r, h) for r in scene.edge_recs if r is not None))) == \
        sorted(map(str, (_edge_key(r, h) for r in fresh.edge_recs)))
    for key, i in ((k, i) for k, lst in scene.edges_of.items() for i in lst):
        assert key in (scene.edge_recs[i][0].src, scene.edge_recs[i][0].dst)
    lines, control = scene._overview_lines
    f_lines, f_control = fresh._overview_lines
    assert sorted((ln.x1(), ln.y1(), ln.x2(), ln.y2()) for ln in lines) == \
        sorted((ln.x1(), ln.y1(), ln.x2(), ln.y2()) for ln in f_lines)
    assert len(control) == len(f_control)
    # the overview (minimap, far zoom) draws every box where it is, in its colour
    ov, f_ov = scene.overview(), fresh.overview()
    assert {k: r.getRect() for k, r in ov.static.rects.items()} == \
        {k: r.getRect() for k, r in f_ov.static.rects.items()}
    assert {k: sorted(r.getRect() for r in rects) for k, (_, rects) in ov.fills.items()
            if rects} == {k: sorted(r.getRect() for r in rects)
                          for k, (_, rects) in f_ov.fills.items() if rects}
    # and every frame (an expanded group) where it is, in its colours, outer frames first
    assert sorted((r.getRect(), f.rgba(), b.rgba()) for r, f, b in ov.frames) == \
        sorted((r.getRect(), f.rgba(), b.rgba()) for r, f, b in f_ov.frames)
    for outer, inner in zip(ov.frames, ov.frames[1:]):
        assert outer[0].width() * outer[0].height() >= inner[0].width() * inner[0].height()
    assert {k: sorted(r.getRect() for r in rects) for k, _, rects in ov.static.frame_fills} \
        == {k: sorted(r.getRect() for r in rects) for k, _, rects in f_ov.static.frame_fills}
    assert {k: sorted(r.getRect() for r in rects)
            for k, (_, rects) in ov.static.frame_borders.items()} == \
        {k: sorted(r.getRect() for r in rects)
         for k, (_, rects) in f_ov.static.frame_borders.items()}
    assert ov.static._frame_coords is None or ov.static._frame_coords == \
        {id(r): r.getCoords() for r, _, _ in ov.static.frames}
    # items alive sit on their boxes and draw what the tree says
    for key, item in scene.live.items():
        b = scene.boxes[key]
        assert (item.x(), item.y(), item.w, item.h) == (b.x, b.y, b.w, b.h)
        assert scene._still_draws(item, key, view.tree)
        if item.kind == "frame":  # its fill blended over the frames around it, as drawn now
            assert item.solid.rgba() == fresh._solid_fill(key[2:]).rgba(), key
    # every box in view is found: sweep the drawing a viewport at a time
    r = scene.content_rect()
    step = view.mapToScene(view.viewport().rect()).boundingRect()
    y = r.top()
    while y < r.bottom():
        x = r.left()
        while x < r.right():
            seen = QRectF(x, y, step.width(), step.height())
            scene.ensure_rect(seen)
            found = {it.key for it in scene.items(seen, Qt.IntersectsItemBoundingRect)
                     if hasattr(it, "key")}
            inside = {k for k, b in scene.boxes.items()
                      if seen.intersects(QRectF(b.x, b.y, b.w, b.h))}
            assert inside <= found, sorted(inside - found)[:5]
            x += step.width()
        y += step.height()


def _same_as_fresh_layout(view) -> None:
    tree = view.tree
    eng = LayoutEngine(tree, lambda u: view.graph_scene.node_size(tree, u), view.horizontal,
                       wrap_in=view.engine.wrap_in)
    fresh = eng.layout(view.placement.expanded)
    assert {k: (b.x, b.y, b.w, b.h) for k, b in view.placement.boxes.items()} == \
        {k: (b.x, b.y, b.w, b.h) for k, b in fresh.boxes.items()}


@pytest.mark.parametrize("laid_out", ["incremental", "in-full"])
@pytest.mark.parametrize("blocks", [6, 0], ids=["blocks", "every-block-filed-again"])
@pytest.mark.parametrize("model", ["tf1", "cond_bn"])
def test_undo_redo_expanded_updates_the_scene_in_place(qtbot, model, blocks, laid_out,
                                                       tf1_graph, small_cond_bn, updates,
                                                       monkeypatch):
    """``blocks``: how many moved blocks keep an offset (MAX_OFFSETS; 0: each is filed again
    where it is right after it moved). ``laid_out``: the edit laid out incrementally (as on a
    big graph: the layout says which blocks moved as a whole, ``PlacementDiff.shifts``, and
    the scene moves their edges without looking at them) or in full (the scene finds the
    blocks by comparing boxes and checks each edge)."""
    monkeypatch.setattr(graph_scene, "MAX_OFFSETS", blocks)
    if laid_out == "incremental":
        monkeypatch.setattr(layout, "INCREMENTAL_MIN_UNITS", 0)  # (a small graph)
    gd, ins, outs = {"tf1": tf1_graph, "cond_bn": small_cond_bn}[model]
    doc, view = _view(qtbot, gd, ins, outs)
    relus = [n.name for n in gd.node if n.op == "Relu"]
    victim = relus[len(relus) // 2]
    # look at the edit's place, so that its items are alive when it changes
    view.centerOn(view.graph_scene.item("n:" + victim))
    view.viewport().repaint()
    before = {k: (b.x, b.y, b.w, b.h) for k, b in view.placement.boxes.items()}
    opened = view.placement.expanded
    stack = QUndoStack()
    push_step(stack, EditCommand.compute(doc, "remove_node", {"node": victim}))
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=60000)
    assert "n:" + victim not in view.placement.boxes
    _check_scene(view)
    _same_as_fresh_layout(view)
    block_moves = [view.graph_scene.block_moves]
    frames_moved_in_place = 0
    # the boxes after the Relu moved as a block: filed where they were, with an offset
    assert bool(view.graph_scene._unit_off) == bool(blocks)
    assert bool(view.graph_scene._edge_off) == bool(blocks)
    for op in (stack.undo, stack.redo, stack.undo):
        updates.clear()
        static = view.graph_scene.overview().static
        frames = {k: r.getRect() for k, r in static.rects.items()
                  if k[0] == "g" and k[2:] in view.placement.expanded}
        op()
        qtbot.waitUntil(lambda: not view.layout_pending, timeout=60000)
        view.viewport().repaint()
        assert updates, "the scene was rebuilt, not updated"
        block_moves.append(view.graph_scene.block_moves)
        # the overview (far zoom, minimap) is patched when next drawn, not made again
        assert view.graph_scene.overview().static is static
        frames_moved_in_place += any(frames[k] != (b.x, b.y, b.w, b.h)
                                     for k, b in view.placement.boxes.items() if k in frames)
        _check_scene(view)
        _same_as_fresh_layout(view)
    # back where it started: the same picture, but for a block the edit dissolved (fewer
    # siblings than make blocks), which comes back closed
    gone = opened - view.placement.expanded
    assert all("_*" in k for k in gone), sorted(gone)  # the block and what is inside it
    # frames moved or changed size (the edit's block and what follows it in the column)
    assert frames_moved_in_place
    if not gone:
        assert {k: (b.x, b.y, b.w, b.h) for k, b in view.placement.boxes.items()} == before
    assert view.graph_scene.item("n:" + victim) is not None
    # the edges of the blocks moved as the layout said, every time (and only then)
    if laid_out == "in-full":
        assert not any(block_moves)
    elif model == "cond_bn":
        assert all(block_moves), block_moves


def test_a_weight_read_removed_and_restored_keeps_every_item(qtbot, small_cond_bn, updates):
    """A ``/read`` is drawn as a badge on its consumer: its removal changes no box, so undo and
    redo keep every item alive as it is."""
    gd, ins, outs = small_cond_bn
    doc, view = _view(qtbot, gd, ins, outs)
    read = next(n.name for n in gd.node if n.op == "Identity" and n.name.endswith("/read"))
    consumer = view.tree.badge_owner[read][0]
    view.centerOn(view.graph_scene.item("n:" + consumer))
    view.viewport().repaint()
    stack = QUndoStack()
    push_step(stack, EditCommand.compute(doc, "remove_node", {"node": read}))
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=60000)
    view.viewport().repaint()
    alive = dict(view.graph_scene.live)
    for op in (stack.undo, stack.redo):
        op()
        qtbot.waitUntil(lambda: not view.layout_pending, timeout=60000)
        view.viewport().repaint()
        _check_scene(view)
    assert updates
    kept = [k for k, it in view.graph_scene.live.items() if alive.get(k) is it]
    assert len(kept) >= 0.9 * len(alive)


def test_a_frame_closed_and_opened_again_patches_the_overview(qtbot, small_cond_bn, updates):
    """Closing a frame in the middle (it becomes a box, what is inside it goes, what follows
    it moves) and opening it again update the scene and its overview in place: frames leave
    and join the overview's lists, and the result equals a scene built from scratch."""
    gd, ins, outs = small_cond_bn
    _, view = _view(qtbot, gd, ins, outs)
    frames = sorted(k for k in view.placement.expanded if k.count("/") == 2)
    key = frames[len(frames) // 2]
    view.centerOn(view.graph_scene.item("g:" + key))
    view.viewport().repaint()
    static = view.graph_scene.overview().static
    for op in (view.collapse, view.expand):
        updates.clear()
        op(key)
        qtbot.waitUntil(lambda: not view.layout_pending, timeout=60000)
        view.viewport().repaint()
        assert updates, "the scene was rebuilt, not updated"
        assert view.graph_scene.overview().static is static
        assert (key in view.placement.expanded) == (op == view.expand)
        _check_scene(view)
