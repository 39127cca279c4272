"""The graph view with a lazy scene: items made only around what the viewport shows.

Big graphs (more than ``graph_scene.LAZY_ITEMS`` units + edges) get a lazy scene. Here the
threshold is 0, so the bundled models get one too: the view tests of test_ui_view run again
on it (they drive selection, expand/collapse, marks, ghosts, traces, colours, export and far
zoom the way a user does), and the tests below check what only a lazy scene does."""
import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QTransform

from surgeon_gui.ui import graph_scene
from test_ui_view import (  # noqa: F401 - fixtures and tests run again here
    model_files,
    open_model,
    temp_settings,
    test_badges_colours_and_dashed_control_edges,
    test_diff_marks_follow_document_changes,
    test_every_removed_visible_node_gets_a_ghost_that_covers_nothing,
    test_expand_and_collapse_by_double_click_and_chevron,
    test_export_png_and_svg,
    test_far_zoom_draws_the_batched_overview,
    test_keyboard_zoom_pan_and_minimap,
    test_mobilenet_blocks_and_expand_all,
    test_node_colour_override_and_legend,
    test_open_tf1_collapsed_view,
    test_selection_signal_and_focus,
    test_set_document_switches_graphs_keeping_expansion,
    test_view_settings_left_to_right_and_constants,
    window,
)


@pytest.fixture(autouse=True)
def lazy_scene(monkeypatch):
    monkeypatch.setattr(graph_scene, "LAZY_ITEMS", 0)


def _paint(view):
    view.viewport().repaint()


def _expanded_at_full_size(qtbot, window, path, live_budget=None, monkeypatch=None):
    open_model(qtbot, window, path)
    view = window.view
    view.expand_all()
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=60000)
    view.setTransform(QTransform())
    return view


def _shown(view) -> QRectF:
    return view.mapToScene(view.viewport().rect()).boundingRect()


def test_items_exist_only_around_the_view_and_follow_it(qtbot, window, model_files,
                                                        monkeypatch):
    monkeypatch.setattr(graph_scene, "LIVE_BUDGET", 50)
    view = _expanded_at_full_size(qtbot, window, model_files["mnv2"])
    scene = view.graph_scene
    assert scene.lazy
    top = scene.placement_rect.top()
    view.centerOn(scene.placement_rect.center().x(), top + 300)
    _paint(view)
    shown = _shown(view)
    boxes = scene.boxes
    # every box that shows has its item; the far end of the graph has none
    in_view = {k for k, b in boxes.items() if QRectF(b.x, b.y, b.w, b.h).intersects(shown)}
    assert in_view and in_view <= set(scene.live)
    far = {k for k, b in boxes.items() if b.y > shown.bottom() + 4 * graph_scene.TILE}
    assert far and not far & set(scene.live)
    assert len(scene.live) < len(boxes) / 2
    # select a node on screen, then pan to the far end: its items are made there, the ones
    # left behind are dropped, except the selected node
    node = next(k for k in in_view if k.startswith("n:"))
    view.select([node[2:]])
    view.centerOn(scene.placement_rect.center().x(), scene.placement_rect.bottom() - 300)
    _paint(view)
    shown = _shown(view)
    in_view = {k for k, b in boxes.items() if QRectF(b.x, b.y, b.w, b.h).intersects(shown)}
    assert in_view <= set(scene.live)
    assert node in scene.live and scene.live[node].isSelected()
    assert view.selected_nodes() == [node[2:]]
    left = {k for k, b in boxes.items() if b.y + b.h < top + 1000} - {node}
    assert left and not left & set(scene.live)
    # the edges drawn are those of the units around the view
    for e in scene.edge_items:
        assert e.src in scene.live or e.dst in scene.live or e.boundingRect().intersects(
            shown.adjusted(-3000, -3000, 3000, 3000))


def test_decorations_reach_items_made_later(qtbot, window, model_files, monkeypatch):
    """A highlight, a trace and a colour set while a unit has no item show on the item made
    when the view gets there."""
    monkeypatch.setattr(graph_scene, "LIVE_BUDGET", 50)
    view = _expanded_at_full_size(qtbot, window, model_files["mnv2"])
    scene = view.graph_scene
    view.centerOn(scene.placement_rect.center().x(), scene.placement_rect.top() + 300)
    _paint(view)
    g = view.document.graph
    # a node far from the view whose outputs' cone is small
    key = next(k for k in sorted((k for k in scene.boxes if k.startswith("n:")),
                                 key=lambda k: -scene.boxes[k].y)
               if 2 <= len(g.downstream([k[2:]])) < 10)
    assert key not in scene.live
    down = view.trace(key[2:], "outputs")
    assert 2 <= len(down) < 10
    view.centerOn(scene.boxes[key].x + scene.boxes[key].w / 2, scene.boxes[key].y)
    _paint(view)
    item = scene.live[key]
    assert item.highlight == "downstream" and item.opacity() == 1.0
    lit = [e for e in scene.edge_items if e.highlight]
    assert lit and all(e.dst[2:] in down and e.opacity() == 1.0 for e in lit)
    off = [it for k, it in scene.live.items() if k.startswith("n:") and k[2:] not in down]
    assert off and all(it.opacity() < 0.5 for it in off)  # dimmed off the path
    view.set_highlight(None)
    assert item.highlight is None and all(it.opacity() == 1.0 for it in off)
    assert not [e for e in scene.edge_items if e.highlight]


def test_trace_lights_the_edges_on_its_path(qtbot, window, model_files):
    open_model(qtbot, window, model_files["tf1"])
    view = window.view
    _paint(view)
    up = view.trace("Relu6", "inputs")
    _paint(view)
    items_ = view.graph_scene.items_by_key
    assert items_["n:input"].highlight == "upstream"
    assert items_["n:probs"].highlight is None
    lit = [e for e in view.graph_scene.edge_items if e.highlight]
    assert lit and all(items_[e.src].highlight and items_[e.dst].highlight for e in lit)
    assert "Relu6" in up


def test_tooltips_are_made_when_asked_for(qtbot, window, model_files):
    from PySide6.QtCore import QEvent, QPoint
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication
    open_model(qtbot, window, model_files["tf1"])
    view = window.view
    _paint(view)
    item = view.item_for("Relu6")
    assert not item.toolTip()
    pos = view.mapFromScene(item.sceneBoundingRect().center())
    QApplication.sendEvent(view.viewport(), QHelpEvent(QEvent.ToolTip, pos,
                                                       view.viewport().mapToGlobal(pos)))
    assert "Relu6" in item.toolTip() and item.op in item.toolTip()
    del QPoint


def test_an_edit_keeps_the_items_of_what_it_did_not_move(qtbot, window, model_files):
    """After a step (and its undo) the units and edges drawn where they were keep their items:
    only what the step moved or changed is made again."""
    from surgeon_gui.core.model.graph import GraphDef, NodeDef
    doc = open_model(qtbot, window, model_files["tf1"])
    view = window.view
    view.expand_all()
    qtbot.waitUntil(lambda: not view.layout_pending)
    scene = view.graph_scene
    view.setTransform(QTransform.fromScale(0.5, 0.5))
    _paint(view)
    units = dict(scene.live)
    assert scene.edge_items
    edges = {(e.src, e.dst, e.stub): e for e in scene.edge_items}
    boxes = {k: (b.x, b.y, b.w, b.h) for k, b in scene.boxes.items()}
    gd = GraphDef()
    gd.CopyFrom(doc.graph_def)
    extra = NodeDef(name="extra", op="Identity", input=["probs"])
    extra.attr["T"].type = 1
    gd.node.append(extra)
    doc.push(gd, "add a node after the output")
    qtbot.waitUntil(lambda: not view.layout_pending)
    _paint(view)
    assert "n:extra" in scene.boxes
    kept = [k for k, b in scene.boxes.items() if boxes.get(k) == (b.x, b.y, b.w, b.h)]
    assert len(kept) > len(boxes) / 2
    assert all(scene.live[k] is units[k] for k in kept if k in units)
    same_edges = [e for e in scene.edge_items if edges.get((e.src, e.dst, e.stub)) is e]
    assert len(same_edges) > len(edges) / 2
    # every edge item still draws its edge between the boxes where they are now
    for e in scene.edge_items:
        a, b = scene.boxes[e.src], scene.boxes[e.dst]
        if e.stub != "in":  # a stub is drawn at one end only
            assert e.boundingRect().intersects(QRectF(a.x, a.y, a.w, a.h + 10))
        if e.stub != "out":
            assert e.boundingRect().intersects(QRectF(b.x, b.y - 10, b.w, b.h))


def test_a_straight_run_of_bend_points_draws_the_same_curve():
    from PySide6.QtGui import QPainterPath
    from surgeon_gui.ui.graph_scene import simplify_route
    route = [(10.0, y) for y in range(100, 3000, 60)] + [(80.0, 3050.0), (80.0, 3100.0)]
    short = simplify_route(route, horizontal=False)
    assert short == [(10.0, 100), (10.0, 2980), (80.0, 3050.0), (80.0, 3100.0)]
    # a route turning back along the same line keeps its turn
    assert simplify_route([(0, 0), (0, 10), (0, 5), (0, 20)], False) == \
        [(0, 0), (0, 10), (0, 5), (0, 20)]
    assert simplify_route([(0, 5), (10, 5), (20, 5), (20, 9)], True) == \
        [(0, 5), (20, 5), (20, 9)]
    a, b = QRectF(0, 0, 20, 40), QRectF(70, 3200, 20, 40)
    from surgeon_gui.core.viewmodel.grouping import VisibleEdge
    e = VisibleEdge("n:a", "n:b", False, 1, "", route=route)
    whole = graph_scene.EdgeItem(e, a, b, False, route=route)
    simple = graph_scene.EdgeItem(e, a, b, False)
    for t in [i / 50 for i in range(51)]:
        p, q = whole.path.pointAtPercent(t), simple.path.pointAtPercent(t)
        # both are the same line: each point of one lies on the other (arc-length differs a bit)
        assert abs(p.x() - q.x()) < 1.0 or abs(p.y() - q.y()) < 60
    assert whole.path.boundingRect() == simple.path.boundingRect()
    assert simple.path.elementCount() < whole.path.elementCount() / 5
    del QPainterPath


def test_far_zoom_draws_a_part_of_the_graph_like_the_whole(qtbot, window, model_files,
                                                           monkeypatch):
    """The overview of part of the graph (only the tiles in view) looks the same there as the
    whole overview; a selection redoes the outlines, not the layout's part."""
    from PySide6.QtGui import QColor, QImage, QPainter
    from surgeon_gui.ui import scene_overview
    monkeypatch.setattr(scene_overview, "OV_TILE", 128.0)  # many tiles on a small graph
    view = _expanded_at_full_size(qtbot, window, model_files["mnv2"])
    scene = view.graph_scene
    ov = scene.overview()
    r = scene.placement_rect
    part = QRectF(r.x() + r.width() * 0.3, r.y() + r.height() * 0.4, r.width() * 0.25,
                  r.height() * 0.2)

    def render(exposed):
        img = QImage(400, 400, QImage.Format_ARGB32)
        img.fill(QColor("white"))
        p = QPainter(img)
        s = 400 / max(part.width(), part.height())
        p.scale(s, s)
        p.translate(-part.x(), -part.y())
        p.setClipRect(part)
        ov.draw(p, s, exposed)
        p.end()
        return img
    whole, partial = render(None), render(part)
    ink = differ = 0
    for x in range(400):
        for y in range(400):
            a, b = whole.pixel(x, y), partial.pixel(x, y)
            ink += a & 0xFFFFFF != 0xFFFFFF
            # lines cut at tile borders may differ by a shade where the pieces meet
            differ += max(abs((a >> k & 255) - (b >> k & 255)) for k in (0, 8, 16)) > 60
    assert ink > 5000 and differ < 0.002 * ink
    node = next(k for k, b in scene.boxes.items() if k.startswith("n:"))
    view.select([node[2:]])
    ov2 = scene.overview()
    assert ov2 is not ov and ov2.static is ov.static
    assert [len(rs) for _, rs in ov2.outlines.values()] == [1]


def test_far_out_a_big_graph_is_drawn_from_one_picture(qtbot, window, model_files, monkeypatch):
    """Zoomed out past the picture's own scale, the overview draws the picture made once per
    layout; it shows the same graph as the primitives (block by block)."""
    from PySide6.QtGui import QColor, QImage, QPainter
    from surgeon_gui.ui import scene_overview
    monkeypatch.setattr(scene_overview, "IMAGE_MIN_UNITS", 0)
    monkeypatch.setattr(scene_overview, "IMAGE_SIDE", 512)
    view = _expanded_at_full_size(qtbot, window, model_files["mnv2"])
    scene = view.graph_scene
    ov = scene.overview()
    r = scene.placement_rect
    s = 0.5 * 512 / max(r.width(), r.height())

    def render(use_image):
        img = QImage(int(r.width() * s) + 2, int(r.height() * s) + 2, QImage.Format_ARGB32)
        img.fill(QColor("white"))
        p = QPainter(img)
        p.scale(s, s)
        p.translate(-r.x(), -r.y())
        if use_image:
            ov.draw(p, s)
        else:
            ov.static.draw(p, s, None)
        p.end()
        return img
    picture, drawn = render(True), render(False)
    assert ov.static._image is not None and ov.static.image(s * 3) is None
    made = ov.static._image
    render(True)
    assert ov.static._image is made  # made once

    def blocks(img):
        return {(x // 6, y // 6) for x in range(img.width()) for y in range(img.height())
                if img.pixel(x, y) & 0xFFFFFF != 0xFFFFFF}
    a, b = blocks(picture), blocks(drawn)
    assert len(a) > 100 and len(a & b) > 0.9 * len(a | b)


def test_far_zoom_picks_the_frames_in_view_at_once_and_draws_the_same(qtbot, window,
                                                                       model_files):
    """Panning the far-zoom view: the frames overlapping the part in view are picked by one
    vectorised comparison (``frames_in``), the same frames in the same order as a test of each
    frame's corners, and the part drawn is pixel for pixel what that test's frames draw; after
    frames move (what ``patch`` does: the frame coordinates are dropped) the pick follows."""
    from PySide6.QtGui import QColor, QImage, QPainter
    view = _expanded_at_full_size(qtbot, window, model_files["mnv2"])
    st = view.graph_scene.overview().static
    r = st.rect
    assert len(st.frames) > 20

    def each_frame(exposed):  # the plain per-frame test (what draw did before)
        ex0, ey0, ex1, ey1 = exposed.getCoords()

        def inside(rects):
            out = []
            for q in rects:
                x0, y0, x1, y1 = q.getCoords()
                if x0 <= ex1 and x1 >= ex0 and y0 <= ey1 and y1 >= ey0:
                    out.append(q)
            return out
        return ([(k, c, inside(rects)) for k, c, rects in st.frame_fills],
                [(c, inside(rects)) for c, rects in st.frame_borders.values()])

    def ids(picked):
        frames, borders = picked
        return ([(k, c.rgba(), [id(q) for q in rects]) for k, c, rects in frames],
                [(c.rgba(), [id(q) for q in rects]) for c, rects in borders])

    def render(part, pick):
        img = QImage(300, 300, QImage.Format_ARGB32)
        img.fill(QColor("white"))
        p = QPainter(img)
        s = 300 / max(part.width(), part.height())
        p.scale(s, s)
        p.translate(-part.x(), -part.y())
        st.frames_in = pick  # (an instance attribute: draw looks it up on the instance)
        try:
            st.draw(p, s, part)
        finally:
            del st.frames_in
            p.end()
        return img

    calls = []

    def counted(exposed):
        calls.append(exposed)
        return type(st).frames_in(st, exposed)
    parts = [QRectF(r.x() + r.width() * fx, r.y() + r.height() * fy, r.width() * 0.3,
                    r.height() * 0.15) for fx, fy in ((0.0, 0.0), (0.4, 0.3), (0.6, 0.8))]
    for part in parts:
        fast, slow = st.frames_in(part), each_frame(part)
        assert ids(fast) == ids(slow)
        shown = sum(len(rects) for _, _, rects in fast[0])
        assert 0 < shown < len(st.frames)  # some frames in view, not all
        assert render(part, counted) == render(part, each_frame)
    assert len(calls) == len(parts)  # draw took the vectorised pick
    # frames move (a block shifted, as patch does it): the pick follows the new places
    moved = [f[0] for f in st.frames[len(st.frames) // 2:]]
    for q in moved:
        q.translate(r.width() * 0.5, 0)
    st._frame_coords = None
    for part in parts:
        assert ids(st.frames_in(part)) == ids(each_frame(part))
