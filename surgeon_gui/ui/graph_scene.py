"""The graph scene: one item per visible node or group, one per visible edge.

Items paint themselves with level of detail (``QStyleOptionGraphicsItem.levelOfDetailFromTransform``):
far away a box is a filled rectangle, text appears only when it is readable. Items never hold
graph data beyond their name; the scene is rebuilt from a :class:`~surgeon_gui.core.viewmodel.layout.Placement`
(reusing items by unit key) whenever the layout changes.
"""
from __future__ import annotations

import gc
import math

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QStyleOptionGraphicsItem

from ..core.viewmodel.grouping import (
    Group,
    GroupTree,
    VisibleEdge,
    is_standout,
    op_family,
)
from ..core.viewmodel.layout import Box, Placement
from . import style

#: Edges longer than this from a producer with at least STUB_FANOUT visible consumers are drawn
#: as short stubs at both ends (TensorBoard extracts such nodes similarly): hundreds of lines
#: across the whole graph from one training flag help nobody and cost every repaint.
STUB_MIN_DISTANCE = 1500.0
STUB_FANOUT = 6
STUB_LAYERS_PX = 100.0
STUB_LENGTH = 26.0
# enum members looked up once: PySide6's enum access costs microseconds per use, which adds up
# over ten thousand items
_NO_BUTTON = Qt.NoButton
_DASH = Qt.DashLine
_SOLID = Qt.SolidLine
_NO_BRUSH = Qt.NoBrush
_EXTENDED_OPTION = QGraphicsItem.ItemUsesExtendedStyleOption
#: Edges longer than this (control-point box, width + height) are cut into pieces about this
#: long, each stroked only when exposed.
PIECE_LENGTH = 400.0
TEXT_LOD = 0.3       # below this zoom, no text at all
DETAIL_LOD = 0.5     # below this, only the title line
EDGE_LABEL_LOD = 0.8


def _lod(painter) -> float:
    return QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())


def _elide(text: str, chars: int) -> str:
    """Cut a long name in the middle (its start and its end both say something:
    ``expanded_conv_depthwise_1/depthwise`` → ``expanded_co…_1/depthwise``); the box's tooltip
    has it whole."""
    if len(text) <= chars:
        return text
    keep = max(3, chars - 1)
    head = keep * 2 // 5
    return text[:head] + "…" + text[len(text) - (keep - head):]


class UnitItem(QGraphicsItem):
    """Common part of node and group boxes: key, size, marks, highlight."""

    kind = "unit"

    def __init__(self, key: str, box: Box):
        super().__init__()
        self.key = key
        self.w, self.h = box.w, box.h
        # Qt asks for the bounding rect many times per frame: build it once per size change
        self._br = QRectF(-4, -4, self.w + 8, self.h + 8)
        self.scene_box = QRectF(box.x, box.y, box.w, box.h)  # for the far-zoom overview
        self.setPos(box.x, box.y)
        self.setFlag(QGraphicsItem.ItemIsSelectable, True)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setZValue(2)
        self.highlight: str | None = None      # highlight kind on this unit
        self.highlight_count = 0               # for collapsed groups: members highlighted
        self.mark: str | None = None           # "added" / "changed" / "removed" / "renamed"
        self.mark_counts: dict[str, int] = {}  # for groups: members marked
        self.fill_override: QColor | None = None

    def set_box(self, box: Box) -> None:
        if (box.w, box.h) != (self.w, self.h):
            self.prepareGeometryChange()
            self.w, self.h = box.w, box.h
            self._br = QRectF(-4, -4, self.w + 8, self.h + 8)
        if (box.x, box.y) != (self.x(), self.y()):
            self.setPos(box.x, box.y)
        self.scene_box = QRectF(box.x, box.y, box.w, box.h)

    def boundingRect(self) -> QRectF:
        return self._br

    def rect(self) -> QRectF:
        return QRectF(0, 0, self.w, self.h)

    # outline priority: selection > highlight > diff mark > warning
    def _outline(self) -> tuple[QColor | None, float, Qt.PenStyle]:
        if self.isSelected():
            return style.SELECTION, 3.0, Qt.SolidLine
        if self.highlight:
            return style.highlight_color(self.highlight), 3.0, Qt.SolidLine
        if self.mark:
            return style.MARK_COLORS[self.mark], 3.0, Qt.SolidLine
        return None, 0.0, Qt.SolidLine

    def _paint_corner_marks(self, painter, lod: float) -> None:
        """Small counters on the top edge: diff marks and highlighted members inside a group."""
        x = self.w - 6
        items = [(style.MARK_COLORS[k], n) for k, n in self.mark_counts.items() if n]
        if self.highlight_count and self.kind != "node":
            items.append((style.highlight_color(self.highlight or "match"), self.highlight_count))
        if not items:
            return
        painter.setFont(style.font(6.5, True))
        for color, n in items:
            text = str(n)
            wd = 8 + 5 * len(text)
            x -= wd
            r = QRectF(x, -7, wd, 13)
            painter.setPen(Qt.NoPen)
            painter.setBrush(color)
            painter.drawRoundedRect(r, 6, 6)
            if lod >= TEXT_LOD:
                painter.setPen(Qt.white)
                painter.drawText(r, Qt.AlignCenter, text)
            x -= 3


class NodeItem(UnitItem):
    kind = "node"

    def __init__(self, key: str, box: Box, op: str, label: str, badges: list, shape_hint: str = ""):
        super().__init__(key, box)
        self.name = key[2:]
        self.op = op
        self.label = label
        self.badges = badges
        self.family = op_family(op)
        self.standout = is_standout(op)
        tip = [f"<b>{op}</b>  {self.name}"]
        if shape_hint:
            tip.append(f"output: {shape_hint}")
        for b in badges:
            tip.append(f"◆ {b.node}: {b.dtype or ''} {b.label.split(' ', 1)[-1]}")
        self.setToolTip("<br>".join(tip))

    def paint(self, painter, option, widget=None):
        lod = _lod(painter)
        r = self.rect()
        fill = self.fill_override or style.FAMILY_FILL[self.family]
        outline, width, pstyle = self._outline()
        if lod < 0.2:  # far away: a flat box, outlined only when marked
            painter.fillRect(r, fill)
            if outline is not None:
                painter.setPen(QPen(outline, width / max(lod, 0.05) * 0.4))
                painter.setBrush(Qt.NoBrush)
                painter.drawRect(r)
            return
        border = style.FAMILY_BORDER[self.family]
        if self.mark == "removed":
            fill = QColor(fill)
            fill.setAlpha(90)
        painter.setBrush(fill)
        painter.setPen(QPen(border, 1.0))
        painter.drawRoundedRect(r, 6, 6)
        if self.standout:  # training-only / control-flow machinery: a dashed warning ring
            painter.setPen(QPen(style.WARNING, 2.2, Qt.DashLine))
            painter.setBrush(Qt.NoBrush)
            painter.drawRoundedRect(r.adjusted(-2.5, -2.5, 2.5, 2.5), 8, 8)
        if outline is not None:
            painter.setPen(QPen(outline, width, pstyle))
            painter.setBrush(Qt.NoBrush)
            painter.drawRoundedRect(r.adjusted(-1, -1, 1, 1), 7, 7)
        self._paint_corner_marks(painter, lod)
        if lod < TEXT_LOD:
            return
        m = self.scene().metrics if self.scene() is not None else style.Metrics()
        painter.setPen(style.TEXT)
        painter.setFont(m.title_font)
        title = self.op + ("  ⚠" if self.standout else "")
        painter.drawText(QRectF(8, 3, self.w - 16, m.title_h), Qt.AlignLeft | Qt.AlignVCenter,
                         title)
        if lod < DETAIL_LOD:
            return
        painter.setFont(m.body_font)
        painter.setPen(style.TEXT_DIM)
        chars = int((self.w - 16) / m.body_char)
        painter.drawText(QRectF(8, 3 + m.title_h, self.w - 16, m.body_h),
                         Qt.AlignLeft | Qt.AlignVCenter, _elide(self.label, chars))
        if self.badges:
            painter.setFont(m.badge_font)
            y = 5 + m.title_h + m.body_h
            x = 6.0
            shown = self.badges[:style.MAX_BADGES]
            for b in shown:
                text = b.label
                wd = min(self.w - x - 6, len(text) * m.badge_char + 8)
                if wd < 24:
                    break
                br = QRectF(x, y, wd, m.badge_h)
                painter.setPen(QPen(style.BADGE_BORDER, 0.8))
                painter.setBrush(style.BADGE_FILL)
                painter.drawRoundedRect(br, 3, 3)
                painter.setPen(style.TEXT_DIM)
                chars = int((wd - 6) / m.badge_char)
                shown_text = text if len(text) <= chars else text[:max(1, chars - 1)] + "…"
                painter.drawText(br.adjusted(3, 0, -2, 0), Qt.AlignLeft | Qt.AlignVCenter,
                                 shown_text)
                x += wd + 3
            if len(self.badges) > len(shown):
                painter.drawText(QRectF(x, y, self.w - x, m.badge_h),
                                 Qt.AlignLeft | Qt.AlignVCenter,
                                 f"+{len(self.badges) - len(shown)}")


class GroupItem(UnitItem):
    """A collapsed group: a stacked box with name, size, main ops and a chevron."""
    kind = "group"

    def __init__(self, key: str, box: Box, group: Group):
        super().__init__(key, box)
        self.group = group
        self.scope = group.key
        self.setZValue(2)
        ops = ", ".join(f"{op} ×{n}" for op, n in group.ops.most_common(6))
        rep = f"<br>{group.repeats} groups share this structure" if group.repeats > 1 else ""
        self.setToolTip(f"<b>{group.key}</b><br>{group.size} nodes: {ops}{rep}"
                        "<br><i>double-click to expand</i>")

    def chevron_rect(self) -> QRectF:
        return QRectF(9, 4, 16, 16)

    def fill(self) -> QColor:
        return self.fill_override if self.fill_override is not None else style.GROUP_FILL

    def band(self) -> QColor | None:
        """Repeated structure: the same colour band on every group with this signature."""
        return style.signature_color(self.group.signature) if self.group.repeats > 1 else None

    def paint(self, painter, option, widget=None):
        lod = _lod(painter)
        r = self.rect()
        fill = self.fill()
        outline, width, _ = self._outline()
        if lod < 0.2:
            painter.fillRect(r, self.band() or fill)
            painter.setPen(QPen(outline or style.GROUP_BORDER, 1.0 / max(lod, 0.05)))
            painter.setBrush(Qt.NoBrush)
            painter.drawRect(r)
            return
        # a "stack of cards" look says: there is more inside
        painter.setPen(QPen(style.GROUP_BORDER, 1.0))
        painter.setBrush(fill.darker(108))
        painter.drawRoundedRect(r.adjusted(4, 4, 0, 0), 7, 7)
        painter.setBrush(fill)
        painter.drawRoundedRect(r.adjusted(0, 0, -4, -4), 7, 7)
        band = self.band()
        if band is not None:
            painter.setPen(Qt.NoPen)
            painter.setBrush(band)
            painter.drawRoundedRect(QRectF(0.5, 0.5, 7, self.h - 5), 3, 3)
            painter.drawRect(QRectF(3.5, 0.5, 4, self.h - 5))
        if outline is not None:
            painter.setPen(QPen(outline, width))
            painter.setBrush(Qt.NoBrush)
            painter.drawRoundedRect(r.adjusted(-1, -1, -3, -3), 8, 8)
        self._paint_corner_marks(painter, lod)
        if lod < TEXT_LOD:
            return
        m = self.scene().metrics if self.scene() is not None else style.Metrics()
        painter.setPen(style.TEXT)
        painter.setFont(m.title_font)
        chars = int((self.w - 34) / m.title_char)
        painter.drawText(QRectF(26, 3, self.w - 34, m.title_h), Qt.AlignLeft | Qt.AlignVCenter,
                         _elide(self.group.label, chars))
        _chevron(painter, self.chevron_rect(), expanded=False)
        if self.group.repeats > 1:
            text = f"×{self.group.repeats}"
            br = QRectF(self.w - 12 - 6 * len(text), self.h - 20, 6 * len(text) + 4, 13)
            painter.setFont(m.badge_font)
            painter.setPen(QPen(style.GROUP_BORDER, 0.8))
            painter.setBrush(QColor(255, 255, 255, 200))
            painter.drawRoundedRect(br, 5, 5)
            painter.setPen(style.TEXT_DIM)
            painter.drawText(br, Qt.AlignCenter, text)
        if lod < DETAIL_LOD:
            return
        painter.setFont(m.body_font)
        painter.setPen(style.TEXT_DIM)
        painter.drawText(QRectF(13, 3 + m.title_h, self.w - 20, m.body_h),
                         Qt.AlignLeft | Qt.AlignVCenter, f"{self.group.size} nodes")
        ops = " · ".join(self.group.top_ops(3))
        room = self.w - 24 - (6 * len(f"×{self.group.repeats}") + 10 if self.group.repeats > 1
                              else 0)  # leave the ×N badge free
        chars = int(room / m.body_char)
        if len(ops) > chars:
            ops = ops[:max(1, chars - 1)] + "…"
        painter.drawText(QRectF(13, 3 + m.title_h + m.body_h, self.w - 20, m.body_h),
                         Qt.AlignLeft | Qt.AlignVCenter, ops)


class FrameItem(UnitItem):
    """An expanded group: a frame behind its contents with a header and a chevron."""
    kind = "frame"

    def __init__(self, key: str, box: Box, group: Group, depth: int):
        super().__init__(key, box)
        self.group = group
        self.scope = group.key
        self.setZValue(-50 + depth)
        # frames can be thousands of pixels tall: no pixmap cache, paint only what is exposed
        self.setCacheMode(QGraphicsItem.NoCache)
        self.setFlag(QGraphicsItem.ItemUsesExtendedStyleOption, True)
        self.setToolTip(f"<b>{group.key}</b> ({group.size} nodes)<br><i>double-click the header"
                        " to collapse</i>")

    def chevron_rect(self) -> QRectF:
        return QRectF(4, 4, 16, 16)

    def header_rect(self) -> QRectF:
        return QRectF(0, 0, self.w, 24)

    def shape(self) -> QPainterPath:
        # only the header and the border take clicks, so the contents stay reachable
        p = QPainterPath()
        p.addRect(self.header_rect())
        return p

    def paint(self, painter, option, widget=None):
        lod = _lod(painter)
        r = self.rect()
        outline, width, _ = self._outline()
        base = (style.signature_color(self.group.signature) if self.group.repeats > 1
                else style.FRAME_BORDER)
        fill = QColor(base)
        fill.setAlpha(45)
        exposed = option.exposedRect.intersected(r) if option is not None else r
        small = r.width() * r.height() < 3e5
        if small:  # rounded and dashed: cheap enough on a small frame
            painter.setBrush(fill)
            painter.setPen(QPen(outline or style.FRAME_BORDER, width or 1.0,
                                _SOLID if outline else _DASH))
            painter.drawRoundedRect(r, 9, 9)
        else:  # a big frame: fill the exposed part, square solid border (clipped lines)
            painter.fillRect(exposed, fill)
            painter.setPen(QPen(outline or style.FRAME_BORDER, width or 1.0))
            painter.setBrush(Qt.NoBrush)
            painter.drawRect(r)
        if not exposed.intersects(self.header_rect().adjusted(-8, -8, 8, 8)):
            return  # a strip further down: the header and its text are not in it
        head = QColor(base)
        head.setAlpha(150)
        painter.setPen(Qt.NoPen)
        painter.setBrush(head)
        painter.drawRoundedRect(self.header_rect(), 9, 9)
        self._paint_corner_marks(painter, lod)
        if lod < TEXT_LOD * 0.8:
            return
        m = self.scene().metrics if self.scene() is not None else style.Metrics()
        _chevron(painter, self.chevron_rect(), expanded=True)
        painter.setPen(style.TEXT)
        painter.setFont(m.title_font)
        chars = int((self.w - 30) / m.title_char)
        text = f"{self.group.label}   ({self.group.size} nodes)"
        if len(text) > chars:  # a narrow frame: the name first, the count if it fits
            text = _elide(self.group.label, chars)
        painter.drawText(QRectF(24, 3, self.w - 30, 18), Qt.AlignLeft | Qt.AlignVCenter, text)


def _split(c: tuple) -> tuple[tuple, tuple]:
    """De Casteljau: a cubic (p0, c1, c2, p1) cut in two halves at t = 0.5."""
    p0, c1, c2, p1 = c
    a, b, d = (p0 + c1) * 0.5, (c1 + c2) * 0.5, (c2 + p1) * 0.5
    e, f = (a + b) * 0.5, (b + d) * 0.5
    m = (e + f) * 0.5
    return (p0, a, e, m), (m, f, d, p1)


def _pieces(cubics: list[tuple]) -> list[tuple[QRectF, QPainterPath, float]]:
    """Short paths (with their padded bounds and the curve length before them, which keeps a
    dash pattern continuous) that together draw the curve ``cubics``."""
    out = []
    done = 0.0
    todo = list(reversed(cubics))
    while todo:
        c = todo.pop()
        xs = [p.x() for p in c]
        ys = [p.y() for p in c]
        w, h = max(xs) - min(xs), max(ys) - min(ys)
        if w + h > PIECE_LENGTH:
            first, second = _split(c)
            todo.append(second)
            todo.append(first)
            continue
        path = QPainterPath(c[0])
        path.cubicTo(c[1], c[2], c[3])
        out.append((QRectF(min(xs) - 6, min(ys) - 6, w + 12, h + 12), path, done))
        done += path.length()
    return out


def _chevron(painter, rect: QRectF, expanded: bool) -> None:
    painter.setPen(Qt.NoPen)
    painter.setBrush(QColor(60, 70, 85, 200))
    c = rect.center()
    if expanded:
        pts = [QPointF(c.x() - 4.5, c.y() - 2.5), QPointF(c.x() + 4.5, c.y() - 2.5),
               QPointF(c.x(), c.y() + 3.5)]
    else:
        pts = [QPointF(c.x() - 2.5, c.y() - 4.5), QPointF(c.x() - 2.5, c.y() + 4.5),
               QPointF(c.x() + 3.5, c.y())]
    painter.drawPolygon(QPolygonF(pts))


class GhostItem(QGraphicsItem):
    """A removed node, drawn faded red where it used to be (not selectable)."""

    def __init__(self, name: str, op: str, rect: QRectF):
        super().__init__()
        self.name = name
        self.op = op
        self.r = QRectF(0, 0, rect.width(), rect.height())
        self.setPos(rect.topLeft())
        self.setZValue(1.5)
        self.setAcceptedMouseButtons(Qt.NoButton)
        self.setToolTip(f"removed: {op} {name}")

    def boundingRect(self) -> QRectF:
        return self.r.adjusted(-2, -2, 2, 2)

    def paint(self, painter, option, widget=None):
        c = QColor(style.MARK_COLORS["removed"])
        fill = QColor(c)
        fill.setAlpha(40)
        painter.setBrush(fill)
        painter.setPen(QPen(c, 1.5, Qt.DashLine))
        painter.drawRoundedRect(self.r, 6, 6)
        if _lod(painter) >= DETAIL_LOD:
            painter.setPen(c)
            painter.setFont(style.font(7.5))
            painter.drawText(self.r.adjusted(6, 2, -4, -2), Qt.AlignLeft | Qt.AlignVCenter,
                             f"✕ {self.op}\n{self.name.rsplit('/', 1)[-1]}")


class EdgeItem(QGraphicsItem):
    """A visible edge: a curve from the producer to the consumer, dashed for control edges."""

    def __init__(self, edge: VisibleEdge, a: QRectF, b: QRectF, horizontal: bool,
                 stub: str = "", stub_text: str = ""):
        """``stub`` "in": only a short arrow into the consumer labelled with the producer
        (a far-away, high fan-out producer such as a training flag); "out": a short arrow out of
        the producer labelled with how many consumers it feeds that way."""
        super().__init__()
        self.edge = edge
        self.src, self.dst = edge.src, edge.dst
        self.stub = stub
        self.stub_text = stub_text
        self.highlight: str | None = None
        self.setZValue(1)
        self.setAcceptedMouseButtons(_NO_BUTTON)
        # exposedRect in item coordinates: paint strokes only the exposed pieces of a long curve
        self.setFlag(_EXTENDED_OPTION, True)
        pts = [] if stub else [QPointF(x, y) for x, y in edge.route]
        if horizontal:
            p0 = QPointF(a.right(), a.center().y())
            p1 = QPointF(b.left() - 3, b.center().y())
            self.tangent = QPointF(1, 0)
        else:
            p0 = QPointF(a.center().x(), a.bottom())
            p1 = QPointF(b.center().x(), b.top() - 3)
            self.tangent = QPointF(0, 1)
        if stub == "in":
            # beside the main input (at the box centre), so the two do not overlap
            if horizontal:
                p1 = QPointF(p1.x(), b.top() + b.height() * 0.25)
            else:
                p1 = QPointF(b.left() + b.width() * 0.25, p1.y())
            p0 = p1 - self.tangent * STUB_LENGTH
        elif stub == "out":
            p1 = p0 + self.tangent * STUB_LENGTH
        backward = not stub and not pts and (
            (p1.x() < p0.x() - 10) if horizontal else (p1.y() < p0.y() - 10))
        if backward:
            # against the flow (a cycle between groups): loop round the side, not through boxes
            if horizontal:
                p0 = QPointF(a.center().x(), a.bottom())
                p1 = QPointF(b.center().x(), b.bottom() + 3)
                self.tangent = QPointF(0, -1)
                bulge = QPointF(0, 40 + abs(p0.x() - p1.x()) * 0.15)
            else:
                p0 = QPointF(a.right(), a.center().y())
                p1 = QPointF(b.right() + 3, b.center().y())
                self.tangent = QPointF(-1, 0)
                bulge = QPointF(40 + abs(p0.y() - p1.y()) * 0.15, 0)
            path = QPainterPath(p0)
            path.cubicTo(p0 + bulge, p1 + bulge, p1)
            cubics = [(p0, p0 + bulge, p1 + bulge, p1)]
            pts = None
        # a smooth curve through the layout's bend points, leaving and entering along the flow
        if pts is None:
            pts = []
        else:
            path = QPainterPath(p0)
            cubics = []
        prev = p0
        for q in ([] if backward else pts + [p1]):
            if horizontal:
                d = max(12.0, abs(q.x() - prev.x()) * 0.5)
                c1, c2 = QPointF(prev.x() + d, prev.y()), QPointF(q.x() - d, q.y())
            else:
                d = max(12.0, abs(q.y() - prev.y()) * 0.5)
                c1, c2 = QPointF(prev.x(), prev.y() + d), QPointF(q.x(), q.y() - d)
            path.cubicTo(c1, c2, q)
            cubics.append((prev, c1, c2, q))
            prev = q
        self.path = path
        #: The curve cut into short pieces (bounds, path): a frame strokes only the pieces it
        #: exposes, not a whole curve thousands of pixels long of which a sliver is visible.
        self.pieces = _pieces(cubics) if path.controlPointRect().width() \
            + path.controlPointRect().height() > PIECE_LENGTH else None
        self.end = p1
        self.start = p0
        #: The route as a polyline (drawn with straight segments at far zoom).
        self.polyline = [p0] + ([] if stub or backward else pts) + [p1]
        self.mid = pts[len(pts) // 2] if pts else path.pointAtPercent(0.5)
        self.width = 1.1 + min(2.5, math.log2(edge.count)) if edge.count > 1 else 1.1
        # the control points too: a route that turns back up (to the next column of a wrapped
        # chain) has them beyond the curve, and the pieces' control points lie in their hull
        self._bounds = path.boundingRect().united(path.controlPointRect()).adjusted(-6, -6, 6, 6)
        if edge.label or edge.count > 1 or stub:
            self._bounds = self._bounds.united(QRectF(self.mid.x() - 4, self.mid.y() - 8, 150, 16))
        if stub:
            self._bounds = self._bounds.united(QRectF(p0.x() - 150, p0.y() - 14, 300, 16))
        tip = (("(drawn short: a far-away producer with many consumers)\n" if stub else "")
               + f"{edge.src[2:]} → {edge.dst[2:]}" + (f"\n{edge.label}" if edge.label else "")
               + (f"\n{edge.count} edges" if edge.count > 1 else "")
               + ("\ncontrol dependency" if edge.control else ""))
        self.setToolTip(tip)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        # the stroke, not the region the open curve encloses (that would catch clicks meant
        # for a frame's chevron and tooltips far from the line); built on the first hover/click
        shape = self.__dict__.get("_shape")
        if shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(max(6.0, self.width + 4))
            shape = self._shape = stroker.createStroke(self.path)
        return shape

    def pen(self) -> QPen:
        if self.highlight:
            return QPen(style.highlight_color(self.highlight), self.width + 1.5)
        if self.edge.control:
            return QPen(style.EDGE_CONTROL, self.width, Qt.DashLine)
        return QPen(style.EDGE, self.width)

    def paint(self, painter, option, widget=None):
        lod = _lod(painter)
        pen = self.pen()
        painter.setPen(pen)
        painter.setBrush(_NO_BRUSH)
        pieces = self.pieces
        if pieces is None:
            painter.drawPath(self.path)
        else:
            exposed = option.exposedRect
            if exposed.contains(self._bounds):
                painter.drawPath(self.path)
            elif pen.style() == _SOLID:
                for bounds, piece, _ in pieces:
                    if bounds.intersects(exposed):
                        painter.drawPath(piece)
            else:  # dashed: each piece continues the pattern where the previous one ended
                w = pen.widthF() or 1.0
                for bounds, piece, before in pieces:
                    if bounds.intersects(exposed):
                        pen.setDashOffset(before / w)
                        painter.setPen(pen)
                        painter.drawPath(piece)
                pen.setDashOffset(0)
        if lod < 0.3:
            return
        # arrow head
        t = self.tangent
        e = self.end
        n = QPointF(-t.y(), t.x())
        tip = e + t * 3
        pts = [tip, tip - t * 7 + n * 3.5, tip - t * 7 - n * 3.5]
        painter.setPen(Qt.NoPen)
        painter.setBrush(pen.color())
        painter.drawPolygon(QPolygonF(pts))
        if self.stub:
            painter.setBrush(pen.color())
            painter.drawEllipse(self.start, 2.5, 2.5)
            if lod >= TEXT_LOD:
                painter.setPen(style.EDGE_LABEL)
                painter.setFont(style.font(6.5))
                s0 = self.start
                painter.drawText(QRectF(s0.x() - 150, s0.y() - 14, 300, 13), Qt.AlignCenter,
                                 self.stub_text)
            return
        if lod >= EDGE_LABEL_LOD and (self.edge.label or self.edge.count > 1):
            text = self.edge.label
            if self.edge.count > 1:
                text = f"{text}  ×{self.edge.count}" if text else f"×{self.edge.count}"
            painter.setPen(style.EDGE_LABEL)
            painter.setFont(style.font(6.5))
            painter.drawText(QRectF(self.mid.x() + 4, self.mid.y() - 8, 126, 16),
                             Qt.AlignLeft | Qt.AlignVCenter, text)


class GraphScene(QGraphicsScene):
    """Scene of one placement. ``items_by_key`` maps unit keys to their item."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.metrics = style.Metrics()
        self.setBackgroundBrush(QBrush(style.BACKGROUND))
        self.items_by_key: dict[str, UnitItem] = {}
        self.edge_items: list[EdgeItem] = []
        self.ghosts: list[GhostItem] = []
        self._overview: Overview | None = None
        self._overview_lines: tuple[list, list] | None = None
        self.placement_rect = QRectF()

    # ------------------------------------------------------------------ far-zoom overview
    def overview(self) -> "Overview":
        """Every box and edge as a few batched primitives (built once per change): what the
        view and the minimap draw when items would be a few pixels big."""
        if self._overview is None:
            enabled = gc.isenabled()
            gc.disable()  # thousands of small objects at once (see apply_placement)
            try:
                self._overview = Overview(self, self._overview_lines)
            finally:
                if enabled:
                    gc.enable()
            self._overview_lines = (self._overview.lines, self._overview.control_lines)
        return self._overview

    def invalidate_overview(self) -> None:
        """Colours or outlines changed (highlight, selection, marks): rebuild the boxes; the
        edge lines only change with the layout."""
        self._overview = None

    def node_size(self, tree: GroupTree, unit: str) -> tuple[float, float]:
        """Box size of a node or collapsed group (pure arithmetic: safe in a worker)."""
        m = self.metrics
        if unit.startswith("n:"):
            name = unit[2:]
            op = tree.op_of[name]
            label = tree.node_label.get(name, name)
            chars = max(len(op) + 3, min(len(label), 30))
            w = min(style.NODE_MAX_W, max(style.NODE_MIN_W, chars * m.body_char + 22,
                                          (len(op) + 3) * m.title_char + 18))
            h = 8 + m.title_h + m.body_h
            if tree.badges.get(name):
                h += m.badge_h + 3
            return (round(w), round(h))
        grp = tree.groups[unit[2:]]
        badge = 6 * len(f"×{grp.repeats}") + 14 if grp.repeats > 1 else 0
        w = min(style.GROUP_MAX_W, max(style.GROUP_MIN_W, len(grp.label) * m.title_char + 60,
                                       len(" · ".join(grp.top_ops(3))) * m.body_char + 30
                                       + badge))
        return (round(w), round(12 + m.title_h + 2 * m.body_h))

    # ------------------------------------------------------------------ rebuild
    def apply_placement(self, tree: GroupTree, placement: Placement) -> None:
        """Make the items match the placement (items are reused by key; edges are rebuilt)."""
        # Tens of thousands of small objects in one go: without this, Python's cyclic garbage
        # collector runs full passes over the whole (large) heap again and again meanwhile.
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._apply_placement(tree, placement)
        finally:
            if enabled:
                gc.enable()

    def _apply_placement(self, tree: GroupTree, placement: Placement) -> None:
        self.setItemIndexMethod(QGraphicsScene.NoIndex)  # bulk changes: index once at the end
        old = self.items_by_key
        new: dict[str, UnitItem] = {}
        depth_cache: dict[str, int] = {}
        for key, box in placement.boxes.items():
            item = old.pop(key, None)
            if key.startswith("n:"):
                want = NodeItem
            else:
                want = FrameItem if key[2:] in placement.expanded else GroupItem
            if item is not None and type(item) is not want:
                self.removeItem(item)
                item = None
            if item is not None and want is NodeItem:
                # a step may change a node in place (a folded batch norm becomes a BiasAdd of
                # the same name, new weight badges): reuse the item only if it still draws it
                name = key[2:]
                if (item.op != tree.graph.nodes[name].op
                        or item.label != tree.node_label.get(name, name)
                        or [b.label for b in item.badges]
                        != [b.label for b in tree.badges.get(name, [])]):
                    self.removeItem(item)
                    item = None
            elif item is not None and item.group is not tree.groups[key[2:]]:
                # same group key, new tree (after an edit): size, ops and signature may differ
                self.removeItem(item)
                item = None
            if item is None:
                if want is NodeItem:
                    name = key[2:]
                    node = tree.graph.nodes[name]
                    from ..core.viewmodel.grouping import tensor_label
                    item = NodeItem(key, box, node.op, tree.node_label.get(name, name),
                                    tree.badges.get(name, []), tensor_label(node))
                elif want is GroupItem:
                    item = GroupItem(key, box, tree.groups[key[2:]])
                else:
                    d = depth_cache.setdefault(key, len(tree.ancestors_of_group(key[2:])))
                    item = FrameItem(key, box, tree.groups[key[2:]], d)
                self.addItem(item)
            else:
                item.set_box(box)
            new[key] = item
        for item in old.values():
            self.removeItem(item)
        self.items_by_key = new
        for e in self.edge_items:
            self.removeItem(e)
        self.edge_items = []
        fanout: dict[str, int] = {}
        for e in placement.edges:
            fanout[e.src] = fanout.get(e.src, 0) + 1
        stubbed: dict[str, list] = {}
        for e in placement.edges:
            a, b = new.get(e.src), new.get(e.dst)
            if a is None or b is None:
                continue
            ra = a.sceneBoundingRect().adjusted(4, 4, -4, -4)
            rb = b.sceneBoundingRect().adjusted(4, 4, -4, -4)
            dist = (ra.center() - rb.center()).manhattanLength()
            # far, or not routed by the layout (a long edge of a high fan-out producer)
            far = dist > STUB_MIN_DISTANCE or (e.unrouted and dist > 3 * STUB_LAYERS_PX)
            if far and fanout[e.src] >= STUB_FANOUT:
                label = tree.node_label.get(e.src[2:], e.src[2:]) if e.src.startswith("n:") \
                    else tree.groups[e.src[2:]].label
                item = EdgeItem(e, ra, rb, placement.horizontal, stub="in",
                                stub_text=_elide(label, 28))
                stubbed.setdefault(e.src, []).append((e, ra, rb))
            else:
                item = EdgeItem(e, ra, rb, placement.horizontal)
            self.addItem(item)
            self.edge_items.append(item)
        for src, lst in stubbed.items():
            e, ra, rb = lst[0]
            item = EdgeItem(e, ra, rb, placement.horizontal, stub="out",
                            stub_text=f"→ {len(lst)} far consumers")
            item.setToolTip(f"{src[2:]} also feeds (drawn short):\n"
                            + "\n".join(x.dst[2:] for x, _, _ in lst[:30])
                            + ("\n…" if len(lst) > 30 else ""))
            self.addItem(item)
            self.edge_items.append(item)
        self.clear_ghosts()
        self._overview = None
        # part of laying out: the far-zoom view and the minimap draw the edges from these
        self._overview_lines = Overview.edge_lines(self)
        self.setItemIndexMethod(QGraphicsScene.BspTreeIndex)
        # room to pan past the edges (the legend and minimap float over the corners)
        self.setSceneRect(QRectF(-300, -200, placement.width + 600, placement.height + 400))
        self.placement_rect = QRectF(0, 0, placement.width, placement.height)

    def clear_ghosts(self) -> None:
        for g in self.ghosts:
            self.removeItem(g)
        self.ghosts = []

    def add_ghost(self, name: str, op: str, rect: QRectF) -> GhostItem:
        g = GhostItem(name, op, rect)
        self.addItem(g)
        self.ghosts.append(g)
        return g


class Overview:
    """The scene reduced to batches for far-zoom drawing: frames, boxes by fill colour, outlines
    by colour, and every edge as line segments along its route. Drawing it is a handful of
    QPainter calls (``drawRects``/``drawLines`` loop in C++), however many items there are,
    where painting the items costs one Python ``paint`` call each."""

    def __init__(self, scene: GraphScene, cached: tuple[list, list] | None = None):
        self.frames: list[tuple[QRectF, QColor, QColor]] = []
        self.fills: dict[int, tuple[QColor, list[QRectF]]] = {}
        self.outlines: dict[int, tuple[QColor, list[QRectF]]] = {}
        selected = set(scene.selectedItems())
        fills, outlines = self.fills, self.outlines
        family_fill = style.FAMILY_FILL
        for item in scene.items_by_key.values():
            r = item.scene_box
            if item in selected:
                outline = style.SELECTION
            elif item.highlight:
                outline = style.highlight_color(item.highlight)
            elif item.mark:
                outline = style.MARK_COLORS[item.mark]
            else:
                outline = None
            kind = item.kind
            if kind == "frame":
                base = (style.signature_color(item.group.signature) if item.group.repeats > 1
                        else style.FRAME_BORDER)
                fill = QColor(base)
                fill.setAlpha(45)
                self.frames.append((r, fill, outline or base))
                continue
            if kind == "node":
                fill = item.fill_override or family_fill[item.family]
            else:
                fill = item.band() or item.fill()
            key = fill.rgba()
            entry = fills.get(key)
            if entry is None:
                entry = fills[key] = (fill, [])
            entry[1].append(r)
            if outline is not None:
                outlines.setdefault(outline.rgba(), (outline, []))[1].append(r)
        self.frames.sort(key=lambda f: -f[0].width() * f[0].height())  # outer frames first
        self.lines, self.control_lines = cached if cached is not None \
            else Overview.edge_lines(scene)
        self.rect = scene.placement_rect

    @staticmethod
    def edge_lines(scene: GraphScene) -> tuple[list[QLineF], list[QLineF]]:
        """Every edge's route as straight segments: (data edges, control edges)."""
        lines: list[QLineF] = []
        control: list[QLineF] = []
        # made here, one after another: drawLines converts the whole list every frame, and
        # reading 20,000 wrappers scattered over the heap (kept by each edge) costs 4x more
        for e in scene.edge_items:
            pl = e.polyline
            (control if e.edge.control else lines).extend(
                QLineF(a, b) for a, b in zip(pl, pl[1:]))
        return lines, control

    def draw(self, painter, scale: float) -> None:
        """Draw in scene coordinates (the painter's transform maps them)."""
        px = 1.0 / max(scale, 1e-6)  # one device pixel in scene units
        painter.setRenderHint(QPainter.Antialiasing, False)
        for r, fill, border in self.frames:
            painter.fillRect(r, fill)
        pen = QPen(style.FRAME_BORDER, 0)  # cosmetic
        painter.setBrush(_NO_BRUSH)
        if self.frames:
            for r, _, border in self.frames:
                pen.setColor(border)
                painter.setPen(pen)
                painter.drawRect(r)
        painter.setRenderHint(QPainter.Antialiasing, True)
        pen = QPen(style.EDGE, 0)
        painter.setPen(pen)
        painter.drawLines(self.lines)
        if self.control_lines:
            painter.setPen(QPen(style.EDGE_CONTROL, 0))
            painter.drawLines(self.control_lines)
        painter.setRenderHint(QPainter.Antialiasing, False)
        painter.setPen(Qt.NoPen)
        for color, rects in self.fills.values():
            painter.setBrush(color)
            painter.drawRects(rects)
        painter.setBrush(_NO_BRUSH)
        for color, rects in self.outlines.values():
            painter.setPen(QPen(color, 2.5 * px))
            painter.drawRects([r.adjusted(-2 * px, -2 * px, 2 * px, 2 * px) for r in rects])
