"""The scene's edges are drawn by one EdgeLayer (not one Qt paint call per edge): what a
frame shows still follows highlight, trace dimming and edits, and the layer is never under
the pointer nor part of what is drawn's bounds. Boxes keep the look they had."""
import pytest
from support import window_with_file
from PySide6.QtCore import QEvent, QObject, QPoint, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QTransform
from PySide6.QtWidgets import QGraphicsItem

from surgeon_gui.ui import style
from surgeon_gui.ui.graph_scene import EdgeItem, EdgeLayer, FrameItem, GroupItem


@pytest.fixture(scope="module")
def mnv2_file(tmp_path_factory, mobilenet_v2):
    p = tmp_path_factory.mktemp("models") / "mnv2.pb"
    p.write_bytes(mobilenet_v2[0].SerializeToString())
    return str(p)


@pytest.fixture
def view(qtbot, tmp_path, monkeypatch, mnv2_file):
    w = window_with_file(qtbot, tmp_path, monkeypatch, mnv2_file, size=(1200, 800),
                         exposed=False)
    v = w.view
    v.expand_all()
    qtbot.waitUntil(lambda: not v.layout_pending, timeout=60000)
    v.minimap.enabled = False
    v.minimap.hide()
    v.legend.hide()
    v.setTransform(QTransform())
    v.window_ = w
    return v


class Paints(QObject):
    """The regions of the paint events a widget gets."""

    def __init__(self):
        super().__init__()
        self.regions = []

    def eventFilter(self, obj, event):  # noqa: N802 - Qt API
        if event.type() == QEvent.Paint:
            self.regions.append(event.region())
        return False


def _matching(img: QImage, center: QPoint, color: QColor, r: int = 5, tol: int = 40) -> int:
    """Pixels within ``r`` of ``center`` whose colour is within ``tol`` of ``color``."""
    n = 0
    for x in range(center.x() - r, center.x() + r + 1):
        for y in range(center.y() - r, center.y() + r + 1):
            c = QColor(img.pixel(x, y))
            if max(abs(c.red() - color.red()), abs(c.green() - color.green()),
                   abs(c.blue() - color.blue())) <= tol:
                n += 1
    return n


def _an_edge(view) -> EdgeItem:
    """A plain node-to-node edge long enough to see its middle between the boxes."""
    scene = view.graph_scene
    for e in scene.edge_items:
        if e.stub or e.edge.control or e.edge.count > 1 or e.edge.label:
            continue
        if not (e.src.startswith("n:") and e.dst.startswith("n:")):
            continue
        if e.path.length() < 40:
            continue
        mid = e.path.pointAtPercent(0.5)
        if not any(isinstance(it, (GroupItem,)) or getattr(it, "kind", "") == "node"
                   for it in scene.items(QRectF(mid.x() - 8, mid.y() - 8, 16, 16))):
            return e
    raise AssertionError("no free edge")


def _settle(qtbot, view, paints=None):
    if paints is not None:
        paints.regions.clear()
    qtbot.wait(60)


def test_edges_are_drawn_by_the_layer_and_repainted_when_they_change(qtbot, view):
    scene = view.graph_scene
    edges = scene.edge_items
    assert edges and all(e.flags() & QGraphicsItem.ItemHasNoContents for e in edges)
    e = _an_edge(view)
    mid = e.path.pointAtPercent(0.5)
    view.centerOn(mid)
    _settle(qtbot, view)
    at = view.mapFromScene(mid)
    plain = view.viewport().grab().toImage()
    assert _matching(plain, at, style.EDGE) >= 2
    lit = style.highlight_color("match")
    assert _matching(plain, at, lit) == 0

    paints = Paints()
    view.viewport().installEventFilter(paints)
    try:
        # both ends highlighted: the edge is drawn in the highlight colour, and the view is
        # asked to paint it again (its items do not paint themselves)
        _settle(qtbot, view, paints)
        view.set_highlight({e.src[2:], e.dst[2:]}, "match")
        _settle(qtbot, view)
        assert e.highlight == "match"
        assert any(r.contains(at) for r in paints.regions)
        shown = view.viewport().grab().toImage()
        assert _matching(shown, at, lit) >= 2

        paints.regions.clear()
        view.set_highlight(None)
        _settle(qtbot, view)
        assert any(r.contains(at) for r in paints.regions)
        assert _matching(view.viewport().grab().toImage(), at, lit) == 0

        # a trace that leaves the edge out dims it (drawn with the dim opacity)
        source = view.document.graph.inputs[0]
        assert source not in (e.src[2:], e.dst[2:])
        paints.regions.clear()
        assert view.trace(source, "inputs") == {source}
        _settle(qtbot, view)
        assert e.alpha < 1 and e.opacity() == e.alpha
        assert any(r.contains(at) for r in paints.regions)
        dimmed = view.viewport().grab().toImage()
        assert _matching(dimmed, at, style.EDGE) < _matching(plain, at, style.EDGE)
        view.set_highlight(None)
        _settle(qtbot, view)
        assert e.alpha == 1.0 and e.opacity() == 1.0

        # the edge's item taken out of the scene (as an edit or eviction does): its place
        # is painted again, without it
        paints.regions.clear()
        idx = next(i for i, it in scene.live_edges.items() if it is e)
        scene.removeItem(scene.live_edges.pop(idx))
        _settle(qtbot, view)
        assert any(r.contains(at) for r in paints.regions)
        assert _matching(view.viewport().grab().toImage(), at, style.EDGE) == 0
    finally:
        view.viewport().removeEventFilter(paints)


def test_the_layer_is_not_under_the_pointer_nor_in_the_bounds(qtbot, view):
    scene = view.graph_scene
    layer = scene.edge_layer
    assert isinstance(layer, EdgeLayer) and layer.scene() is scene
    assert layer.boundingRect() == scene.sceneRect()
    others = QRectF()
    for it in scene.items():
        if it is not layer:
            others = others.united(it.sceneBoundingRect())
    assert scene.itemsBoundingRect() == others
    assert layer.boundingRect() == scene.sceneRect()  # put back
    # a click on a frame's header finds the frame, not the layer above it
    frame = next(it for it in scene.items_by_key.values() if isinstance(it, FrameItem))
    view.centerOn(frame.sceneBoundingRect().topLeft())
    qtbot.wait(20)
    pos = view.mapFromScene(frame.mapToScene(frame.chevron_rect().center()))
    assert view.itemAt(pos) is not layer
    assert layer not in view.items(pos)
    # the scene cleared (another document): it gets a layer again
    scene.clear()
    scene.reset()
    assert scene.edge_layer.scene() is scene


def test_a_group_box_is_drawn_from_what_it_shows_now(qtbot, mnv2_file, qapp):
    """The collapsed group's texts and rectangles are made once, and again when its size,
    group or fill changes."""
    from surgeon_gui.core.history.document import Document
    from surgeon_gui.core.model.io import load_model
    from surgeon_gui.core.viewmodel.grouping import GroupTree
    from surgeon_gui.core.viewmodel.layout import Box
    from surgeon_gui.ui.graph_scene import GraphScene

    tree = GroupTree(Document.from_loaded(load_model(mnv2_file)).graph)
    group = max(tree.groups.values(), key=lambda g: len(g.label))
    item = GroupItem("g:" + group.key, Box(0, 0, 240, 48), group)
    scene = GraphScene()
    scene.addItem(item)

    def drawn(it) -> QImage:
        img = QImage(300, 80, QImage.Format_ARGB32_Premultiplied)
        img.fill(0xFFFFFFFF)
        p = QPainter(img)
        it.paint(p, None)
        p.end()
        return img

    wide = item._look(item.fill())
    assert item._look(item.fill()) is wide  # made once
    first = drawn(item)
    item.set_box(Box(0, 0, 120, 48))
    narrow = item._look(item.fill())
    assert narrow is not wide and len(narrow.title) < len(wide.title)
    assert drawn(item) != first
    item.fill_override = QColor("#ff0000")
    red = item._look(item.fill())
    assert red is not narrow and red.back == QColor("#ff0000").darker(108)
    img = drawn(item)
    assert QColor(img.pixel(60, 20)).red() > 200 and QColor(img.pixel(60, 20)).green() < 60


def test_a_long_straight_run_is_cut_like_the_halving_of_the_curve(qapp):
    """A straight run up a column of a wrapped graph (hundreds of thousands of units) is cut
    in one go into the 2^k pieces that halving the curve until each is short gives."""
    from PySide6.QtCore import QPointF

    from surgeon_gui.ui.graph_scene import PIECE_LENGTH, _cubic_length, _pieces

    def halved(c, out):
        x0, y0, x1, y1, x2, y2, x3, y3 = c
        if max(x0, x1, x2, x3) - min(x0, x1, x2, x3) + max(y0, y1, y2, y3) \
                - min(y0, y1, y2, y3) <= PIECE_LENGTH:
            out.append(c)
            return out
        ax, ay, bx, by = (x0 + x1) / 2, (y0 + y1) / 2, (x1 + x2) / 2, (y1 + y2) / 2
        dx, dy = (x2 + x3) / 2, (y2 + y3) / 2
        ex, ey, fx, fy = (ax + bx) / 2, (ay + by) / 2, (bx + dx) / 2, (by + dy) / 2
        mx, my = (ex + fx) / 2, (ey + fy) / 2
        halved((x0, y0, ax, ay, ex, ey, mx, my), out)
        return halved((mx, my, fx, fy, dx, dy, x3, y3), out)

    for a, b in (((10, 400000), (10, 20)), ((5, 5), (3000, 9000)), ((3000, 5), (5, 9000))):
        p0, p3 = QPointF(*a), QPointF(*b)
        run = (p0, p0 + (p3 - p0) / 3, p0 + (p3 - p0) * (2 / 3), p3)
        bend = (p3, p3 + QPointF(0, 60), QPointF(p3.x() + 300, p3.y() + 60),
                QPointF(p3.x() + 300, p3.y() + 200))  # a curve after it: halved as before
        pieces = _pieces([run, bend])
        want = halved(tuple(v for p in run for v in (p.x(), p.y())), []) \
            + halved(tuple(v for p in bend for v in (p.x(), p.y())), [])
        assert len(pieces) == len(want) > 16
        for i, c in enumerate(want):
            assert max(abs(u - v) for u, v in zip(pieces._cubics[i], c)) < 1e-6
            xs, ys = c[0::2], c[1::2]
            assert max(abs(u - v) for u, v in zip(
                pieces.coords[i], (min(xs) - 6, min(ys) - 6, max(xs) + 6, max(ys) + 6))) < 1e-6
        # the dash offsets run on along the whole curve
        assert abs(pieces.done(len(pieces) - 1) + _cubic_length(want[-1])
                   - sum(_cubic_length(c) for c in want)) < 1e-3
