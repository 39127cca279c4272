"""The graph scene: one item per visible node or group, one per visible edge.

Items paint themselves with level of detail (``QStyleOptionGraphicsItem.levelOfDetailFromTransform``):
far away a box is a filled rectangle, text appears only when it is readable. Items never hold
graph data beyond their name; the scene is rebuilt from a :class:`~surgeon_gui.core.viewmodel.layout.Placement`
(reusing items by unit key) whenever the layout changes.
"""
from __future__ import annotations

import gc
import html
import math

import shiboken6
from itertools import pairwise

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QPolygonF,
    QTextLayout,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QStyleOptionGraphicsItem

from ..core.model.graph import gc_paused
from ..core.viewmodel.grouping import (
    Group,
    GroupTree,
    VisibleEdge,
    is_standout,
    op_family,
    tensor_label,
)
from ..core.viewmodel.layout import Box, Placement, PlacementDiff
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
_NO_PEN = Qt.NoPen
_WHITE = Qt.white
_CENTER = Qt.AlignCenter
_LEFT_MIDDLE = Qt.AlignLeft | Qt.AlignVCenter
_TEXT_FLAGS = (_CENTER, _LEFT_MIDDLE)
_EXTENDED_OPTION = QGraphicsItem.ItemUsesExtendedStyleOption
_SELECTABLE = QGraphicsItem.ItemIsSelectable
_NO_CONTENTS = QGraphicsItem.ItemHasNoContents
_DEVICE_CACHE = QGraphicsItem.DeviceCoordinateCache
_NO_CACHE = QGraphicsItem.NoCache
#: Edges longer than this (control-point box, width + height) are cut into pieces about this
#: long, each stroked only when exposed.
PIECE_LENGTH = 400.0
TEXT_LOD = 0.3       # below this zoom, no text at all
DETAIL_LOD = 0.5     # below this, only the title line
EDGE_LABEL_LOD = 0.8


_FONTS: dict[tuple, object] = {}
_NO_SHAPE = QPainterPath()


def _font(size: float, bold: bool = False):
    """``style.font(size, bold)``, made once (a QFont per label per frame added up)."""
    f = _FONTS.get((size, bold))
    if f is None:
        f = _FONTS[size, bold] = style.font(size, bold)
    return f


def _lod(painter) -> float:
    return QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())


class _Text:
    """One line of text laid out once (a QTextLayout), drawn pixel for pixel as
    ``painter.drawText(rect, flags, text)`` draws it, in about half the time.

    drawText lays its text out anew at every call (itemize, shape, break into lines): ~7 µs,
    and a zoom frame of the 107k graph's default view draws ~1000 texts (group titles, sizes,
    ops lines and "×N" badges, the stubs' "is_training" labels — twice in the bench's frame).
    It then draws the line at (rect.x + (rect.w − advance) / 2 when centred, rect.y +
    (rect.h − (ascent + descent)) / 2); so does :meth:`draw`. Where that would not be the same
    picture — a text that does not fit its rectangle (drawText clips it), other alignments,
    tabs, line breaks, mnemonics, right-to-left scripts — it calls drawText itself."""
    __slots__ = ("text", "layout", "width", "advance", "height", "plain")

    def __init__(self, text: str, font):
        self.text = text
        #: only left-to-right text with nothing drawText rewrites (tabs, breaks, '&')
        self.plain = bool(text) and not any(c in "\t\n\r&\x9c" or ("\u0590" <= c and c != "…")
                                            for c in text)
        self.layout = None
        if self.plain:
            lay = self.layout = QTextLayout(text, font)
            lay.setCacheEnabled(True)
            lay.beginLayout()
            line = lay.createLine()
            line.setLineWidth(0x01000000)  # (as drawText: no wrapping)
            lay.endLayout()
            self.width, self.advance = line.naturalTextWidth(), line.horizontalAdvance()
            self.height = line.ascent() + line.descent()

    def offset(self, w: float, h: float, flags) -> tuple[float, float] | None:
        """Where :meth:`draw_at` puts the text in a ``w`` × ``h`` rectangle with ``flags``
        (AlignVCenter with AlignLeft or AlignHCenter); None: drawText must draw it."""
        if not self.plain or self.width > w or self.height > h or flags not in _TEXT_FLAGS:
            return None
        return ((w - self.advance) / 2 if flags == _CENTER else 0.0, (h - self.height) / 2)

    def draw(self, painter, rect: QRectF, flags) -> None:
        """``painter.drawText(rect, flags, text)``, the same picture."""
        x, y, w, h = rect.getRect()
        off = self.offset(w, h, flags)
        if off is None or not _laid_out_for(painter):
            painter.drawText(rect, flags, self.text)
        else:
            self.layout.draw(painter, QPointF(x + off[0], y + off[1]))


_DPI: list[int] = []


def _laid_out_for(painter) -> bool:
    """Whether the painter's device has the DPI a :class:`_Text` was laid out for (Qt's
    default: a window on a screen with another logical DPI gets drawText's own layout)."""
    if not _DPI:
        _DPI.append(QImage(1, 1, QImage.Format_ARGB32_Premultiplied).logicalDpiY())
    return painter.device().logicalDpiY() == _DPI[0]


_TEXTS: dict[tuple, _Text] = {}
TEXTS_KEPT = 4096  # edge labels laid out once (a bound: the cache is emptied when full)


def _text(size: float, text: str) -> _Text:
    """A :class:`_Text` in ``_font(size)`` (edge and stub labels), made once."""
    t = _TEXTS.get((size, text))
    if t is None:
        if len(_TEXTS) >= TEXTS_KEPT:
            _TEXTS.clear()
        t = _TEXTS[size, text] = _Text(text, _font(size))
    return t


BADGE_PAD = 8.0      # a badge pill is its text's width plus this
BADGE_GAP = 3.0      # between two pills
BADGE_MARGIN = 6.0   # between the pills and the box's left/right edge
BADGE_MIN_CHARS = 3  # an elided badge keeps at least this many chars before its "…"


def badge_row_width(labels: list[str], m) -> float:
    """Box width that holds the badges :func:`badge_layout` shows: up to MAX_BADGES pills
    and a "+n" for the rest (pure arithmetic: safe in a worker)."""
    shown = labels[:style.MAX_BADGES]
    w = 2 * BADGE_MARGIN + sum(m.badge_text_w(t) + BADGE_PAD for t in shown) \
        + BADGE_GAP * (len(shown) - 1)
    if len(labels) > len(shown):
        w += BADGE_GAP + m.badge_text_w(f"+{len(labels) - len(shown)}")
    return w


def _add_offset(offsets: dict, key, d: tuple[float, float], moves: dict) -> None:
    """``key`` (a box or an edge record, filed in the tiles at its drawn place shifted by its
    offset) moved by ``d`` more: its offset grows by ``d``, and goes when it comes back to zero
    (filed where it is drawn again); ``moves`` counts the (old, new) offsets."""
    off = offsets.get(key)
    new = d if off is None else (off[0] + d[0], off[1] + d[1])
    if new == (0.0, 0.0):
        offsets.pop(key, None)
    else:
        offsets[key] = new
    moves[off, new] = moves.get((off, new), 0) + 1

def badge_layout(labels: list[str], box_w: float, m):
    """Where a node box of width ``box_w`` draws its badges: ``([(x, width, text)], more)``
    with ``more`` = (x, width, "+n") for the badges left out, or None. Every pill and the
    "+n" lie inside [BADGE_MARGIN, box_w - BADGE_MARGIN]; a badge too long for the room left
    is cut at its end with "…" (the tooltip has it whole), and the ones after it are counted
    in the "+n"."""
    right = box_w - BADGE_MARGIN
    pills: list[tuple[float, float, str]] = []
    x = BADGE_MARGIN
    for i, text in enumerate(labels[:style.MAX_BADGES]):
        rest = len(labels) - i - 1
        reserve = BADGE_GAP + m.badge_text_w(f"+{rest}") if rest else 0.0
        room = right - reserve - x
        shown, wd = text, m.badge_text_w(text) + BADGE_PAD
        cut = wd > room
        if cut:   # cut it to the room left, if a few chars of it still fit
            while len(shown) > BADGE_MIN_CHARS and m.badge_text_w(shown + "…") + BADGE_PAD > room:
                shown = shown[:-1]
            shown = shown.rstrip() + "…"
            wd = m.badge_text_w(shown) + BADGE_PAD
        if wd <= room:
            pills.append((x, wd, shown))
            x += wd + BADGE_GAP
        if cut:   # (the ones after a cut badge go in the "+n")
            break
    more = None
    left = len(labels) - len(pills)
    if left:
        text = f"+{left}"
        x = pills[-1][0] + pills[-1][1] + BADGE_GAP if pills else BADGE_MARGIN
        more = (x, min(m.badge_text_w(text), max(0.0, right - x)), text)
    return pills, more


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
        self.setFlag(_SELECTABLE, True)
        self.setCacheMode(_DEVICE_CACHE)
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
            return style.SELECTION, 3.0, _SOLID
        if self.highlight:
            return style.highlight_color(self.highlight), 3.0, _SOLID
        if self.mark:
            return style.MARK_COLORS[self.mark], 3.0, _SOLID
        return None, 0.0, _SOLID

    def _paint_corner_marks(self, painter, lod: float) -> None:
        """Small counters on the top edge: diff marks and highlighted members inside a group."""
        x = self.w - 6
        items = [(style.MARK_COLORS[k], n) for k, n in self.mark_counts.items() if n]
        if self.highlight_count and self.kind != "node":
            items.append((style.highlight_color(self.highlight or "match"), self.highlight_count))
        if not items:
            return
        painter.setFont(_font(6.5, True))
        for color, n in items:
            text = str(n)
            wd = 8 + 5 * len(text)
            x -= wd
            r = QRectF(x, -7, wd, 13)
            painter.setPen(_NO_PEN)
            painter.setBrush(color)
            painter.drawRoundedRect(r, 6, 6)
            if lod >= TEXT_LOD:
                painter.setPen(_WHITE)
                painter.drawText(r, _CENTER, text)
            x -= 3


class NodeItem(UnitItem):
    kind = "node"
    #: What the history says this node was (GraphScene.tags): (box tag, tooltip line) or None.
    tag: tuple[str, str] | None = None

    def __init__(self, key: str, box: Box, op: str, label: str, badges: list, shape_hint: str = ""):
        super().__init__(key, box)
        self.name = key[2:]
        self.op = op
        self.label = label
        self.badges = badges
        self.family = op_family(op)
        self.standout = is_standout(op)
        self._shape_hint = shape_hint

    def tooltip_text(self) -> str:
        """The tooltip, made when it is first asked for (see :meth:`GraphScene.helpEvent`)."""
        hint = self._shape_hint() if callable(self._shape_hint) else self._shape_hint
        tip = [f"<b>{self.op}</b>  {self.name}"]
        if hint:
            tip.append(f"output: {hint}")
        for b in self.badges:
            tip.append(f"◆ {b.node}: {b.dtype or ''} {b.label.split(' ', 1)[-1]}")
        if self.tag is not None:
            tip.append(f"<i>{html.escape(self.tag[1])}</i>")
        return "<br>".join(tip)

    def paint(self, painter, option, widget=None):
        lod = _lod(painter)
        r = self.rect()
        fill = self.fill_override or style.FAMILY_FILL[self.family]
        outline, width, pstyle = self._outline()
        if lod < 0.2:  # far away: a flat box, outlined only when marked
            painter.fillRect(r, fill)
            if outline is not None:
                painter.setPen(QPen(outline, width / max(lod, 0.05) * 0.4))
                painter.setBrush(_NO_BRUSH)
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
            painter.setPen(QPen(style.WARNING, 2.2, _DASH))
            painter.setBrush(_NO_BRUSH)
            painter.drawRoundedRect(r.adjusted(-2.5, -2.5, 2.5, 2.5), 8, 8)
        if outline is not None:
            painter.setPen(QPen(outline, width, pstyle))
            painter.setBrush(_NO_BRUSH)
            painter.drawRoundedRect(r.adjusted(-1, -1, 1, 1), 7, 7)
        self._paint_corner_marks(painter, lod)
        if lod < TEXT_LOD:
            return
        m = self.scene().metrics if self.scene() is not None else style.Metrics()
        painter.setPen(style.TEXT)
        painter.setFont(m.title_font)
        title = self.op + ("  ⚠" if self.standout else "")
        painter.drawText(QRectF(8, 3, self.w - 16, m.title_h), _LEFT_MIDDLE,
                         title)
        if self.tag is not None:
            self._paint_tag(painter, m, len(title))
        if lod < DETAIL_LOD:
            return
        painter.setFont(m.body_font)
        painter.setPen(style.TEXT_DIM)
        chars = int((self.w - 16) / m.body_char)
        painter.drawText(QRectF(8, 3 + m.title_h, self.w - 16, m.body_h),
                         _LEFT_MIDDLE, _elide(self.label, chars))
        if self.badges:
            painter.setFont(m.badge_font)
            y = 5 + m.title_h + m.body_h
            pills, more = badge_layout([b.label for b in self.badges], self.w, m)
            for x, wd, text in pills:
                br = QRectF(x, y, wd, m.badge_h)
                painter.setPen(QPen(style.BADGE_BORDER, 0.8))
                painter.setBrush(style.BADGE_FILL)
                painter.drawRoundedRect(br, 3, 3)
                painter.setPen(style.TEXT_DIM)
                painter.drawText(br.adjusted(BADGE_PAD / 2, 0, -BADGE_PAD / 2 + 1, 0),
                                 _LEFT_MIDDLE, text)
            if more is not None:
                x, wd, text = more
                painter.setPen(style.TEXT_DIM)
                painter.drawText(QRectF(x, y, wd, m.badge_h), _LEFT_MIDDLE, text)

    def _paint_tag(self, painter, m, title_chars: int) -> None:
        """The history's word on the node ("folded BN": a BiasAdd that was a batch norm), a
        small pill at the right of the title row when there is room for it."""
        text = self.tag[0]
        x0 = 8 + title_chars * m.title_char + 6
        wd = len(text) * m.badge_char + 8
        if x0 + wd > self.w - 5:
            return
        br = QRectF(self.w - 5 - wd, 3 + (m.title_h - m.badge_h) / 2, wd, m.badge_h)
        painter.setFont(m.badge_font)
        painter.setPen(QPen(style.MARK_COLORS["changed"].darker(120), 0.8))
        painter.setBrush(style.TAG_FILL)
        painter.drawRoundedRect(br, 3, 3)
        painter.setPen(style.TEXT)
        painter.drawText(br, _CENTER, text)
        painter.setFont(m.title_font)


class GroupItem(UnitItem):
    """A collapsed group: a stacked box with name, size, main ops and a chevron."""
    kind = "group"

    def __init__(self, key: str, box: Box, group: Group):
        super().__init__(key, box)
        self.group = group
        self.scope = group.key
        self.setZValue(2)

    def tooltip_text(self) -> str:
        group = self.group
        ops = ", ".join(f"{op} ×{n}" for op, n in group.ops.most_common(6))
        rep = f"<br>{group.repeats} groups share this structure" if group.repeats > 1 else ""
        return (f"<b>{group.key}</b><br>{group.size} nodes: {ops}{rep}"
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
            painter.setBrush(_NO_BRUSH)
            painter.drawRect(r)
            return
        look = self._look(fill)
        # a "stack of cards" look says: there is more inside
        painter.setPen(look.border_pen)
        painter.setBrush(look.back)
        painter.drawRoundedRect(look.back_rect, 7, 7)
        painter.setBrush(fill)
        painter.drawRoundedRect(look.front_rect, 7, 7)
        band = look.band
        if band is not None:
            painter.setPen(_NO_PEN)
            painter.setBrush(band)
            painter.drawRoundedRect(look.band_round, 3, 3)
            painter.drawRect(look.band_rect)
        if outline is not None:
            painter.setPen(QPen(outline, width))
            painter.setBrush(_NO_BRUSH)
            painter.drawRoundedRect(r.adjusted(-1, -1, -3, -3), 8, 8)
        if self.mark_counts or self.highlight_count:
            self._paint_corner_marks(painter, lod)
        if lod < TEXT_LOD:
            return
        m = look.metrics
        laid_out = _laid_out_for(painter)
        painter.setPen(style.TEXT)
        painter.setFont(m.title_font)
        look.text(0, painter, laid_out)
        _chevron(painter, look.chevron, expanded=False)
        if look.repeats_rect is not None:
            painter.setFont(m.badge_font)
            painter.setPen(look.badge_pen)
            painter.setBrush(_BADGE_FILL)
            painter.drawRoundedRect(look.repeats_rect, 5, 5)
            painter.setPen(style.TEXT_DIM)
            look.text(1, painter, laid_out)
        if lod < DETAIL_LOD:
            return
        painter.setFont(m.body_font)
        painter.setPen(style.TEXT_DIM)
        look.text(2, painter, laid_out)
        look.text(3, painter, laid_out)

    def _look(self, fill: QColor) -> _GroupLook:
        """What paint() draws that only changes with the group, the box's size or its fill:
        made once, not per frame (each zoom step paints every box anew)."""
        look = self.__dict__.get("_look_made")
        scene = self.scene()
        m = scene.metrics if scene is not None else None
        if look is None or look.group is not self.group or look.size_of != (self.w, self.h) \
                or look.metrics is not m or look.fill_rgba != fill.rgba():
            look = self._look_made = _GroupLook(self, fill, m)
        return look


class _GroupLook:
    """A collapsed group's box, what :meth:`GroupItem.paint` draws: texts, rectangles, colours."""

    def __init__(self, item: GroupItem, fill: QColor, m):
        group, w, h = item.group, item.w, item.h
        self.group, self.size_of, self.fill_rgba = group, (w, h), fill.rgba()
        self.metrics = m
        if m is None:
            m = style.Metrics()
        self.border_pen = QPen(style.GROUP_BORDER, 1.0)
        self.badge_pen = QPen(style.GROUP_BORDER, 0.8)
        self.back = fill.darker(108)
        self.back_rect = QRectF(4, 4, w - 4, h - 4)
        self.front_rect = QRectF(0, 0, w - 4, h - 4)
        self.band = item.band()
        self.band_round = QRectF(0.5, 0.5, 7, h - 5)
        self.band_rect = QRectF(3.5, 0.5, 4, h - 5)
        self.title_rect = QRectF(26, 3, w - 34, m.title_h)
        self.title = _elide(group.label, int((w - 34) / m.title_char))
        self.chevron = item.chevron_rect()
        self.repeats = f"×{group.repeats}"
        self.repeats_rect = None
        if group.repeats > 1:
            n = len(self.repeats)
            self.repeats_rect = QRectF(w - 12 - 6 * n, h - 20, 6 * n + 4, 13)
        self.size_rect = QRectF(13, 3 + m.title_h, w - 20, m.body_h)
        self.size = f"{group.size} nodes"
        ops = " · ".join(group.top_ops(3))
        room = w - 24 - (6 * len(self.repeats) + 10 if group.repeats > 1
                         else 0)  # leave the ×N badge free
        chars = int(room / m.body_char)
        if len(ops) > chars:
            ops = ops[:max(1, chars - 1)] + "…"
        self.ops = ops
        self.ops_rect = QRectF(13, 3 + m.title_h + m.body_h, w - 20, m.body_h)
        self._m = m
        self._texts: list = [None] * 4

    def text(self, i: int, painter, laid_out: bool = True) -> None:
        """Draw text ``i`` (title, "×N", size, ops) as ``painter.drawText`` would, in the
        painter's pen; the painter's font must be that text's (see :class:`_Text`). Laid out
        when first drawn (only the title and "×N" below DETAIL_LOD), then once per look;
        ``laid_out``: the painter's device has the DPI it is laid out for (else drawText).
        """
        made = self._texts[i]
        if made is None:
            m = self._m
            text, font, rect, flags = (
                (self.title, m.title_font, self.title_rect, _LEFT_MIDDLE),
                (self.repeats, m.badge_font, self.repeats_rect, _CENTER),
                (self.size, m.body_font, self.size_rect, _LEFT_MIDDLE),
                (self.ops, m.body_font, self.ops_rect, _LEFT_MIDDLE))[i]
            t = _Text(text, font)
            off = t.offset(rect.width(), rect.height(), flags)
            at = QPointF(rect.x() + off[0], rect.y() + off[1]) if off is not None else None
            made = self._texts[i] = (t.layout if off is not None else None, at,
                                     (rect, flags, text))
        layout, at, call = made
        if layout is not None and laid_out:
            layout.draw(painter, at)
        else:
            painter.drawText(*call)


class FrameItem(UnitItem):
    """An expanded group: a frame behind its contents with a header and a chevron."""
    kind = "frame"

    def __init__(self, key: str, box: Box, group: Group, depth: int):
        super().__init__(key, box)
        self.group = group
        self.scope = group.key
        self.setZValue(-50 + depth)
        # frames can be thousands of pixels tall: no pixmap cache, paint only what is exposed
        self.setCacheMode(_NO_CACHE)
        self.setFlag(_EXTENDED_OPTION, True)
        #: The fill already blended over the frames around it (set by the scene): a big frame
        #: fills its exposed part opaque, which is much cheaper than blending every frame of a
        #: deep nesting over the whole viewport each frame.
        self.solid: QColor | None = None

    def tooltip_text(self) -> str:
        return (f"<b>{self.group.key}</b> ({self.group.size} nodes)<br><i>double-click the "
                "header to collapse</i>")

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
            painter.fillRect(exposed, self.solid if self.solid is not None else fill)
            painter.setPen(QPen(outline or style.FRAME_BORDER, width or 1.0))
            painter.setBrush(_NO_BRUSH)
            painter.drawRect(r)
        if not exposed.intersects(self.header_rect().adjusted(-8, -8, 8, 8)):
            return  # a strip further down: the header and its text are not in it
        head = QColor(base)
        head.setAlpha(150)
        painter.setPen(_NO_PEN)
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
        painter.drawText(QRectF(24, 3, self.w - 30, 18), _LEFT_MIDDLE, text)


class _Pieces:
    """The pieces of a long curve: their padded bounds as floats (``coords``: left, top,
    right, bottom), and each one's path made when it is first drawn — a frame draws the few it
    exposes. The lengths (for a dash pattern that runs on from piece to piece) are measured
    when one is first asked for: a solid edge's frames never need them (measuring every piece of every long edge when its item was
    made was half of a zoom step's item making on the 107k-node graph)."""
    __slots__ = ("coords", "_cubics", "_done", "_made")

    def __init__(self, coords: list, cubics: list):
        self.coords, self._cubics, self._done, self._made = coords, cubics, None, {}

    def __len__(self) -> int:
        return len(self.coords)

    def __bool__(self) -> bool:
        return bool(self.coords)

    def done(self, i: int) -> float:
        """The curve's length before piece ``i``."""
        done = self._done
        if done is None:
            done, total = [], 0.0
            for c in self._cubics:
                done.append(total)
                total += _cubic_length(c)
            self._done = done
        return done[i]

    def __getitem__(self, i):
        """Piece ``i``: (padded bounds, path, the curve's length before it)."""
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self.coords)
        a, b, c, d = self.coords[i]
        return QRectF(a, b, c - a, d - b), self.path(i), self.done(i)

    def path(self, i: int) -> QPainterPath:
        """Piece ``i``'s path, made when first drawn."""
        path = self._made.get(i)
        if path is None:
            x0, y0, x1, y1, x2, y2, x3, y3 = self._cubics[i]
            path = self._made[i] = QPainterPath(QPointF(x0, y0))
            path.cubicTo(x1, y1, x2, y2, x3, y3)
        return path

    def __iter__(self):
        return (self[i] for i in range(len(self.coords)))


def _pieces(cubics: list[tuple]) -> _Pieces:
    """Short paths (with their padded bounds and the curve length before them, which keeps a
    dash pattern continuous) that together draw the curve ``cubics``.

    Cut by de Casteljau at t = 0.5 until a piece's control box is at most PIECE_LENGTH, in plain
    floats, and each piece's path made only when drawn (the edges of a wrapped 100k-node graph
    run to thousands of pieces, cut when the item is made: QPointF arithmetic through the
    bindings and a path per piece cost 0.1-0.2 s in one zoom step). A piece's length is
    from :func:`_cubic_length`, measured when first needed (:meth:`_Pieces.done`)."""
    coords, flat = [], []
    todo = [tuple(v for p in c for v in (p.x(), p.y())) for c in reversed(cubics)]
    while todo:
        c = todo.pop()
        x0, y0, x1, y1, x2, y2, x3, y3 = c
        dx, dy = x3 - x0, y3 - y0
        extent = abs(dx) + abs(dy)
        if extent > PIECE_LENGTH and _is_straight(c):
            # a straight run (control points at a third and two thirds: the curve is
            # p0 + t (p3 - p0)), thousands of units up a column of a wrapped graph: the 2^k
            # pieces halving would give, in one go
            n = 2
            while extent / n > PIECE_LENGTH:
                n *= 2
            xs = [x0 + dx * (i / n) for i in range(n + 1)]
            ys = [y0 + dy * (i / n) for i in range(n + 1)]
            ux, uy = dx / n / 3, dy / n / 3
            flat += [(sx, sy, sx + ux, sy + uy, ex - ux, ey - uy, ex, ey)
                     for sx, sy, ex, ey in zip(xs, ys, xs[1:], ys[1:])]
            lo_x, hi_x = (xs, xs[1:]) if dx >= 0 else (xs[1:], xs)
            lo_y, hi_y = (ys, ys[1:]) if dy >= 0 else (ys[1:], ys)
            coords += [(a - 6, b - 6, c + 6, d + 6)
                       for a, b, c, d in zip(lo_x, lo_y, hi_x, hi_y)]
            continue
        lx, hx = min(x0, x1, x2, x3), max(x0, x1, x2, x3)
        ly, hy = min(y0, y1, y2, y3), max(y0, y1, y2, y3)
        if (hx - lx) + (hy - ly) > PIECE_LENGTH:
            ax, ay, bx, by = (x0 + x1) * 0.5, (y0 + y1) * 0.5, (x1 + x2) * 0.5, (y1 + y2) * 0.5
            dx, dy = (x2 + x3) * 0.5, (y2 + y3) * 0.5
            ex, ey, fx, fy = (ax + bx) * 0.5, (ay + by) * 0.5, (bx + dx) * 0.5, (by + dy) * 0.5
            mx, my = (ex + fx) * 0.5, (ey + fy) * 0.5
            todo.append((mx, my, fx, fy, dx, dy, x3, y3))
            todo.append((x0, y0, ax, ay, ex, ey, mx, my))
            continue
        coords.append((lx - 6, ly - 6, hx + 6, hy + 6))
        flat.append(c)
    return _Pieces(coords, flat)


def _is_straight(c: tuple) -> bool:
    """A cubic (x0, y0, …, x3, y3) whose control points lie a third and two thirds along
    its chord (what :class:`EdgeItem` draws a straight run with)."""
    x0, y0, x1, y1, x2, y2, x3, y3 = c
    tol = 1e-6 * (1.0 + abs(x3 - x0) + abs(y3 - y0))
    return (abs(x1 - (x0 + (x3 - x0) / 3)) <= tol and abs(y1 - (y0 + (y3 - y0) / 3)) <= tol
            and abs(x2 - (x0 + (x3 - x0) * 2 / 3)) <= tol
            and abs(y2 - (y0 + (y3 - y0) * 2 / 3)) <= tol)


def _cubic_length(c: tuple, depth: int = 0) -> float:
    """A cubic's (x0, y0, …, x3, y3) arc length: Gravesen's estimate (the mean of the chord and
    the control polygon), halved by de Casteljau until the two agree within 0.1 %."""
    x0, y0, x1, y1, x2, y2, x3, y3 = c
    hypot = math.hypot
    chord = hypot(x3 - x0, y3 - y0)
    net = hypot(x1 - x0, y1 - y0) + hypot(x2 - x1, y2 - y1) + hypot(x3 - x2, y3 - y2)
    if net - chord <= 0.001 * net or depth >= 8:
        return (chord + net) * 0.5
    ax, ay, bx, by = (x0 + x1) * 0.5, (y0 + y1) * 0.5, (x1 + x2) * 0.5, (y1 + y2) * 0.5
    dx, dy = (x2 + x3) * 0.5, (y2 + y3) * 0.5
    ex, ey, fx, fy = (ax + bx) * 0.5, (ay + by) * 0.5, (bx + dx) * 0.5, (by + dy) * 0.5
    mx, my = (ex + fx) * 0.5, (ey + fy) * 0.5
    return (_cubic_length((x0, y0, ax, ay, ex, ey, mx, my), depth + 1)
            + _cubic_length((mx, my, fx, fy, dx, dy, x3, y3), depth + 1))


_CHEVRONS: dict[tuple, QPolygonF] = {}
_CHEVRON_FILL = QColor(60, 70, 85, 200)
#: The white under a group's ×N badge.
_BADGE_FILL = QColor(255, 255, 255, 200)


def _chevron(painter, rect: QRectF, expanded: bool) -> None:
    painter.setPen(_NO_PEN)
    painter.setBrush(_CHEVRON_FILL)
    key = (*rect.getRect(), expanded)
    poly = _CHEVRONS.get(key)
    if poly is None:
        c = rect.center()
        if expanded:
            pts = [QPointF(c.x() - 4.5, c.y() - 2.5), QPointF(c.x() + 4.5, c.y() - 2.5),
                   QPointF(c.x(), c.y() + 3.5)]
        else:
            pts = [QPointF(c.x() - 2.5, c.y() - 4.5), QPointF(c.x() - 2.5, c.y() + 4.5),
                   QPointF(c.x() + 3.5, c.y())]
        poly = _CHEVRONS[key] = QPolygonF(pts)
    painter.drawPolygon(poly)


class GhostItem(QGraphicsItem):
    """A removed node, drawn faded red where it used to be (not selectable)."""

    def __init__(self, name: str, op: str, rect: QRectF):
        super().__init__()
        self.name = name
        self.op = op
        self.r = QRectF(0, 0, rect.width(), rect.height())
        self.setPos(rect.topLeft())
        self.setZValue(1.5)
        self.setAcceptedMouseButtons(_NO_BUTTON)

    def tooltip_text(self) -> str:
        return f"removed: {self.op} {self.name}"

    def boundingRect(self) -> QRectF:
        return self.r.adjusted(-2, -2, 2, 2)

    def paint(self, painter, option, widget=None):
        c = QColor(style.MARK_COLORS["removed"])
        fill = QColor(c)
        fill.setAlpha(40)
        painter.setBrush(fill)
        painter.setPen(QPen(c, 1.5, _DASH))
        painter.drawRoundedRect(self.r, 6, 6)
        if _lod(painter) >= DETAIL_LOD:
            painter.setPen(c)
            painter.setFont(_font(7.5))
            painter.drawText(self.r.adjusted(6, 2, -4, -2), _LEFT_MIDDLE,
                             f"✕ {self.op}\n{self.name.rsplit('/', 1)[-1]}")


class EdgeItem(QGraphicsItem):
    """A visible edge: a curve from the producer to the consumer, dashed for control edges."""

    def __init__(self, edge: VisibleEdge, a: QRectF, b: QRectF, horizontal: bool,
                 stub: str = "", stub_text: str = "", route=None):
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
        # drawn by the scene's EdgeLayer with all the others (one Python call per frame, not one
        # per edge); still an item of its own for tooltips, hit tests and the index
        self.setFlag(_NO_CONTENTS, True)
        #: The opacity the layer draws it with (dimmed off a trace).
        self.alpha = 1.0
        pts = [] if stub else [QPointF(x, y) for x, y in
                               (simplify_route(edge.route, horizontal) if route is None
                                else route)]
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
            if (q.y() == prev.y()) if horizontal else (q.x() == prev.x()):
                # a straight run (up a column gap, or along the flow): a straight line, with
                # no overshoot however long (see simplify_route)
                c1, c2 = prev + (q - prev) / 3, prev + (q - prev) * (2 / 3)
            elif horizontal:
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
        self.width = 1.0 + min(2.5, math.log2(edge.count)) if edge.count > 1 else 1.0
        # the control points too: a route that turns back up (to the next column of a wrapped
        # chain) has them beyond the curve, and the pieces' control points lie in their hull
        self._bounds = path.boundingRect().united(path.controlPointRect()).adjusted(-6, -6, 6, 6)
        if edge.label or edge.count > 1 or stub:
            self._bounds = self._bounds.united(QRectF(self.mid.x() - 4, self.mid.y() - 8, 150, 16))
        if stub:
            self._bounds = self._bounds.united(QRectF(p0.x() - 150, p0.y() - 14, 300, 16))
        #: The bounds as floats (left, top, right, bottom): what the layer culls with.
        self.box = self._bounds.getCoords()
        #: Set for an "out" stub: the far consumers it stands for.
        self.tooltip_extra = ""

    def tooltip_text(self) -> str:
        if self.tooltip_extra:
            return self.tooltip_extra
        edge = self.edge
        return (("(drawn short: a far-away producer with many consumers)\n" if self.stub else "")
                + f"{edge.src[2:]} → {edge.dst[2:]}" + (f"\n{edge.label}" if edge.label else "")
                + (f"\n{edge.count} edges" if edge.count > 1 else "")
                + ("\ncontrol dependency" if edge.control else ""))

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
        """The pen the edge is drawn with (made again only when its highlight changes: a
        frame draws hundreds of edges)."""
        pen = self.__dict__.get("_pen")
        if pen is None or self._pen_for != self.highlight:
            if self.highlight:
                pen = QPen(style.highlight_color(self.highlight), self.width + 1.5)
            elif self.edge.control:
                pen = QPen(style.EDGE_CONTROL, self.width, _DASH)
            else:
                pen = QPen(style.EDGE, self.width)
            self._pen, self._pen_for, self._color = pen, self.highlight, pen.color()
        return pen

    def arrow(self) -> QPainterPath:
        """The arrow head at the consumer (item coordinates), made once."""
        head = self.__dict__.get("_arrow")
        if head is None:
            t, e = self.tangent, self.end
            tx, ty, ex, ey = t.x(), t.y(), e.x(), e.y()
            nx, ny = -ty, tx
            x, y = ex + tx * 3, ey + ty * 3          # the tip
            bx, by = x - tx * 7, y - ty * 7          # the middle of its base
            head = self._arrow = QPainterPath()
            head.addPolygon(QPolygonF([QPointF(x, y), QPointF(bx + nx * 3.5, by + ny * 3.5),
                                       QPointF(bx - nx * 3.5, by - ny * 3.5)]))
            head.closeSubpath()
        return head

    def paint(self, painter, option, widget=None):
        """Not called by a view (see :class:`EdgeLayer`); paints the edge alone when asked."""
        painter.setBrush(_NO_BRUSH)
        self.draw(painter, _lod(painter), *option.exposedRect.getCoords())

    def draw(self, painter, lod: float, x0: float, y0: float, x1: float, y1: float) -> bool:
        """Stroke what of the edge lies in (x0, y0)–(x1, y1) (scene coordinates) with its pen,
        and its ends at ``lod`` ≥ 0.3. The painter's brush must be NoBrush. Returns True when
        the painter's pen or brush was changed from the edge's pen and NoBrush."""
        pen = self.pen()
        painter.setPen(pen)
        pieces = self.pieces
        a, b, c, d = self.box
        if pieces is None or (a >= x0 and b >= y0 and c <= x1 and d <= y1):
            painter.drawPath(self.path)
        else:
            # plain float comparisons: a long edge has hundreds of pieces, and a QRectF call
            # per piece per frame (through the bindings) cost more than the strokes themselves
            hit = [i for i, (a, b, c, d) in enumerate(pieces.coords)
                   if a < x1 and c > x0 and b < y1 and d > y0]
            if not self.edge.control or self.highlight:  # a solid pen
                path_of = pieces.path
                for i in hit:
                    painter.drawPath(path_of(i))
            else:  # dashed: each piece continues the pattern where the previous one ended
                w = pen.widthF() or 1.0
                for i in hit:
                    pen.setDashOffset(pieces.done(i) / w)
                    painter.setPen(pen)
                    painter.drawPath(pieces.path(i))
                pen.setDashOffset(0)
                painter.setPen(pen)
        if lod >= 0.3:
            return self._paint_ends(painter, lod)
        return False

    def _paint_ends(self, painter, lod: float) -> bool:
        """Arrow head, stub dot and label, edge label (at lod ≥ 0.3); True when it changed the
        painter's pen or brush."""
        color = self._color
        painter.fillPath(self.arrow(), color)
        if self.stub:
            painter.setPen(_NO_PEN)
            painter.setBrush(color)
            painter.drawEllipse(self.start, 2.5, 2.5)
            if lod >= TEXT_LOD:
                painter.setPen(style.EDGE_LABEL)
                painter.setFont(_font(6.5))
                s0 = self.start
                _text(6.5, self.stub_text).draw(
                    painter, QRectF(s0.x() - 150, s0.y() - 14, 300, 13), _CENTER)
            return True
        if lod >= EDGE_LABEL_LOD and (self.edge.label or self.edge.count > 1):
            text = self.edge.label
            if self.edge.count > 1:
                text = f"{text}  ×{self.edge.count}" if text else f"×{self.edge.count}"
            painter.setPen(style.EDGE_LABEL)
            painter.setFont(_font(6.5))
            _text(6.5, text).draw(painter, QRectF(self.mid.x() + 4, self.mid.y() - 8, 126, 16),
                                  _LEFT_MIDDLE)
            return True
        return False


class EdgeLayer(QGraphicsItem):
    """Every edge of a :class:`GraphScene`, drawn in one paint call.

    An :class:`EdgeItem` has no contents of its own (``ItemHasNoContents``): Qt's call into
    Python per item (``boundingRect``, ``paint``) cost ~15 µs an edge whatever it drew, 7 of
    a zoom frame's ms on the 107k-node graph's default view, where drawing all its ~400 edges
    in one loop takes under 1 ms. The layer sits at the edges' z value (above frames, below
    boxes), covers the scene rect, and draws the live edges that meet the exposed rect, in
    the order they were made (as Qt drew the items), each with its own pen and opacity."""

    def __init__(self, scene: GraphScene):
        super().__init__()
        self._edges_of = scene
        self._rect = QRectF()
        self.setZValue(1)
        self.setAcceptedMouseButtons(_NO_BUTTON)
        self.setFlag(_EXTENDED_OPTION, True)  # exposedRect: draw only what a frame exposes

    def set_rect(self, rect: QRectF) -> None:
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = QRectF(rect)

    def boundingRect(self) -> QRectF:
        return self._rect

    def shape(self) -> QPainterPath:
        return _NO_SHAPE  # never under the pointer: clicks and tooltips go to the items

    def paint(self, painter, option, widget=None):
        lod = _lod(painter)
        x0, y0, x1, y1 = option.exposedRect.getCoords()
        base = painter.opacity()
        alpha = 1.0
        painter.setBrush(_NO_BRUSH)
        for e in self._edges_of.live_edges.values():
            a, b, c, d = e.box
            if a >= x1 or c <= x0 or b >= y1 or d <= y0:
                continue
            if e.alpha != alpha:
                alpha = e.alpha
                painter.setOpacity(base * alpha)
            if e.draw(painter, lod, x0, y0, x1, y1):
                painter.setBrush(_NO_BRUSH)
        if alpha != 1.0:
            painter.setOpacity(base)


# ---------------------------------------------------------------------------- the scene
#: Scenes with more units + edges than this make items only where a view looks (tiles of
#: TILE scene units around the viewport) and drop the ones far away again: a fully expanded
#: 50,000-node graph is ~100,000 items, and making them all costs seconds while a frame shows
#: a few hundred. Smaller scenes make every item at once.
LAZY_ITEMS = 4000
TILE = 1024.0
#: A new placement differing from the drawn one in at most this share of its units and edges
#: updates the scene in place (the items, tiles and overview of what changed) instead of
#: rebuilding it.
UPDATE_MAX = 0.2
#: At least this many boxes moved by the same offset are moved as a block (see _apply_diff),
#: and at most MAX_OFFSETS blocks keep an offset (every lookup of the tile index looks once
#: per offset).
BLOCK_MIN = 32
MAX_OFFSETS = 6
#: Above this many live items, tiles away from the view are dropped.
LIVE_BUDGET = 6000
#: A tile build that made at least this many items freezes what lives (``gc.freeze``; see
#: ensure_rect).
FREEZE_MADE = 200
#: Opacity of what a trace leaves off its path.
DIM_OPACITY = 0.18


def simplify_route(route, horizontal: bool) -> list:
    """The bend points without those in the middle of a straight run along the flow axis
    (:class:`EdgeItem` draws a straight run as a straight line): the layout gives a long edge a
    point per layer it passes, thousands on a 50,000-node graph, and each costs a path
    element."""
    if len(route) < 3:
        return route
    out = [route[0]]
    k = 0 if horizontal else 1  # the flow's axis; the other must stay the same
    o = 1 - k
    for i in range(1, len(route) - 1):
        a, b, c = out[-1], route[i], route[i + 1]
        if a[o] == b[o] == c[o] and (a[k] <= b[k] <= c[k] or a[k] >= b[k] >= c[k]):
            continue
        out.append(b)
    out.append(route[-1])
    return out


def edge_polyline(a: tuple, b: tuple, route, horizontal: bool, stub: str = "") -> list:
    """The edge's route from box ``a`` to box ``b`` (x, y, w, h) as (x, y) points, the way
    :class:`EdgeItem` draws it (Qt-free floats: the overview and the tile index use it for every
    edge, the items only for those in view)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    if horizontal:
        p0, p1, t = (ax + aw, ay + ah / 2), (bx - 3, by + bh / 2), (1.0, 0.0)
    else:
        p0, p1, t = (ax + aw / 2, ay + ah), (bx + bw / 2, by - 3), (0.0, 1.0)
    if stub == "in":
        p1 = (p1[0], by + bh * 0.25) if horizontal else (bx + bw * 0.25, p1[1])
        return [(p1[0] - t[0] * STUB_LENGTH, p1[1] - t[1] * STUB_LENGTH), p1]
    if stub == "out":
        return [p0, (p0[0] + t[0] * STUB_LENGTH, p0[1] + t[1] * STUB_LENGTH)]
    if not route and ((p1[0] < p0[0] - 10) if horizontal else (p1[1] < p0[1] - 10)):
        # backward: a loop round the side (see EdgeItem)
        if horizontal:
            p0, p1 = (ax + aw / 2, ay + ah), (bx + bw / 2, by + bh + 3)
            bulge = 40 + abs(p0[0] - p1[0]) * 0.15
            return [p0, (p0[0], p0[1] + bulge), (p1[0], p1[1] + bulge), p1]
        p0, p1 = (ax + aw, ay + ah / 2), (bx + bw + 3, by + bh / 2)
        bulge = 40 + abs(p0[1] - p1[1]) * 0.15
        return [p0, (p0[0] + bulge, p0[1]), (p1[0] + bulge, p1[1]), p1]
    return [p0, *route, p1]


def _group_look(g: Group) -> tuple:
    """What a group's box or frame shows (and its tooltip)."""
    return (g.key, g.label, g.size, g.repeats, g.signature, g.parent, tuple(g.top_ops(3)),
            tuple(g.ops.most_common(6)))


def _edge_key(rec: tuple, horizontal: bool) -> tuple:
    """What an edge item draws: equal keys, the same picture."""
    e = rec[0]
    return (*rec[1:], e.control, e.count, e.label, e.unrouted, horizontal)


def _far(a: Box, b: Box, e: VisibleEdge) -> bool:
    """Whether the edge ``e`` from box ``a`` to box ``b`` is drawn as stubs when its producer
    has many consumers (far apart, or left unrouted by the layout and not close)."""
    dist = abs(a.x + a.w / 2 - b.x - b.w / 2) + abs(a.y + a.h / 2 - b.y - b.h / 2)
    return dist > STUB_MIN_DISTANCE or (e.unrouted and dist > 3 * STUB_LAYERS_PX)


def _recoloured(units, old_tree: GroupTree, tree: GroupTree, old_expanded, expanded):
    """A test of group keys: is the group one whose frame's colour, or whose blended fill
    (:meth:`GraphScene._solid_fill`), may differ between the two states, because it or a
    group around it changed colour, opened, closed, came or went; None when none did (a block
    that only moved keeps its frames' fills)."""
    hit: dict[str, bool] = {}
    groups, old_groups = tree.groups, old_tree.groups
    for key in units:
        if key[0] != "g":
            continue
        gk = key[2:]
        g, o = groups.get(gk), old_groups.get(gk)
        if g is None or o is None or (gk in expanded) != (gk in old_expanded) \
                or g.parent != o.parent or (g.repeats > 1) != (o.repeats > 1) \
                or (g.repeats > 1 and g.signature != o.signature):
            hit[gk] = True
    if not hit:
        return None
    roots = list(hit)

    def inside(gk: str) -> bool:
        h = hit.get(gk)
        if h is None:
            grp = groups.get(gk)
            parent = grp.parent if grp is not None else None
            h = hit[gk] = bool(parent) and inside(parent)
        return h

    def under() -> set[str]:
        """The groups ``inside`` says yes to (in ``tree``): those hit and every group in them."""
        out, todo = set(), list(roots)
        while todo:
            gk = todo.pop()
            if gk in out:
                continue
            out.add(gk)
            g = groups.get(gk)
            if g is not None:
                todo.extend(u[2:] for u in g.children if u[0] == "g")
        return out
    inside.under = under
    return inside


def _stub_moved(old: tuple, new: tuple, d: tuple) -> bool:
    """Whether the edge record ``new`` draws the stub ``old`` moved by ``d``: a stub into a
    consumer (drawn at the consumer only) whose consumer moved by ``d``, with the same label."""
    if old[3] != "in" or new[3] != "in" or old[4:6] != new[4:6]:
        return False
    x, y, w, h = old[2]
    return new[2] == (x + d[0], y + d[1], w, h)


def _blocks(units, old: dict, new: dict) -> dict[str, tuple]:
    """Of the changed ``units``, those that moved as a block: same size, moved by the same
    (dx, dy) as at least BLOCK_MIN others → that offset."""
    moved: dict[str, tuple] = {}
    n: dict[tuple, int] = {}
    for key in units:
        a, b = old.get(key), new.get(key)
        if a is None or b is None or a.w != b.w or a.h != b.h:
            continue
        d = (b.x - a.x, b.y - a.y)
        if d != (0.0, 0.0):
            moved[key] = d
            n[d] = n.get(d, 0) + 1
    return {k: d for k, d in moved.items() if n[d] >= BLOCK_MIN}


class ItemMap:
    """``GraphScene.items_by_key``: every drawn unit key, its item made on first access.

    ``in``, ``len`` and iteration see every unit of the placement; ``get``/``[]`` make the item
    when it is not alive (a lazy scene makes items only near the view: see
    :meth:`GraphScene.ensure_rect`); ``values()``/``items()`` make all of them (small scenes and
    tests — the view itself loops over :attr:`GraphScene.live`)."""

    def __init__(self, scene: GraphScene):
        self._scene = scene

    def __contains__(self, key) -> bool:
        return key in self._scene.boxes

    def __len__(self) -> int:
        return len(self._scene.boxes)

    def __iter__(self):
        return iter(self._scene.boxes)

    def keys(self):
        return self._scene.boxes.keys()

    def get(self, key, default=None):
        item = self._scene.item(key)
        return default if item is None else item

    def __getitem__(self, key):
        item = self._scene.item(key)
        if item is None:
            raise KeyError(key)
        return item

    def values(self) -> list:
        return [self._scene.item(k) for k in self._scene.boxes]

    def items(self) -> list:
        return [(k, self._scene.item(k)) for k in self._scene.boxes]


class GraphScene(QGraphicsScene):
    """Scene of one placement. ``items_by_key`` maps unit keys to their item (made on demand);
    :attr:`live` holds the items that exist; :attr:`deco` what each unit shows (highlight,
    marks, fill), kept here so an item made later shows it too."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.metrics = style.Metrics()
        self.setBackgroundBrush(QBrush(style.BACKGROUND))
        self.tree: GroupTree | None = None
        self.placement: Placement | None = None
        self.boxes: dict[str, Box] = {}
        self.live: dict[str, UnitItem] = {}
        self.items_by_key = ItemMap(self)
        #: Every visible edge as drawn: (edge, box a, box b, stub, stub text, tooltip, route).
        self.edge_recs: list[tuple] = []
        self._holes = 0  # records dropped (None) in edge_recs
        self.live_edges: dict[int, EdgeItem] = {}
        self.edges_of: dict[str, list[int]] = {}
        #: unit key → (highlight, highlight count, mark, mark counts, fill override)
        self.deco: dict[str, tuple] = {}
        #: node name → (box tag, tooltip line): what the history says a node was
        #: (:meth:`set_tags`; "folded BN" on the BiasAdd a batch norm became)
        self.tags: dict[str, tuple[str, str]] = {}
        self.tracing = False
        self.lit: set[str] = set()
        self.lazy = False
        self._tile_units: dict[tuple, list[str]] = {}
        self._tile_edges: dict[tuple, list[int]] = {}
        #: Each edge record's lines for the overview (None where a record was dropped).
        self._lines_of: list = []
        self._live_tiles: set[tuple] = set()
        #: Blocks that moved as a whole (what follows a deleted box in its column): their
        #: units and edge records stay filed in the tiles where they were and carry the offset
        #: (dx, dy) from there (no entry: none), which a lookup applies (:meth:`_entries_of`).
        #: ``_unit_filed``/``_edge_filed`` hold the tiles such an entry is filed in.
        self._unit_off: dict[str, tuple] = {}
        self._edge_off: dict[int, tuple] = {}
        self._unit_filed: dict[str, list] = {}
        self._edge_filed: dict[int, list] = {}
        #: offset → how many units and edge records carry it
        self._offsets: dict[tuple, int] = {}
        self._edge_moves: dict[tuple, int] = {}
        #: How many producers' edges the last update moved with their block as the layout
        #: said (``PlacementDiff.shifts``), without looking at them (tests read it).
        self.block_moves = 0
        self._solid: dict[str, QColor] = {}
        self.ghosts: list[GhostItem] = []
        self._overview = None
        self._overview_static = None
        #: Units changed since the overview's static part was made or patched, and whether
        #: edges did: it is patched when next drawn (the minimap draws it 300 ms after a
        #: layout; an undo/redo that only looks at a part of the graph need not wait for it).
        self._static_todo: set[str] = set()
        self._static_lines_todo = False
        #: Blocks moved since then, as the layout said ((dx, dy), unit keys): their boxes
        #: and frames are moved by the offset when it is patched, without looking at them.
        self._static_shifts: list[tuple] = []
        self._overview_lines: tuple[list, list] | None = None
        #: (data lines, control lines, id(line) → its index in its list): see _patch_lines
        self._line_pos: tuple | None = None
        self.placement_rect = QRectF()
        #: Set by the view while it makes items for the frame it is about to paint (that
        #: frame draws them: no repaint needed).
        self.painting = False
        self.edge_layer = EdgeLayer(self)
        self.addItem(self.edge_layer)

    # ------------------------------------------------------------------ the edge layer
    def setSceneRect(self, rect: QRectF) -> None:  # noqa: N802 - Qt API
        super().setSceneRect(rect)
        self.edge_layer.set_rect(self.sceneRect())

    def itemsBoundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        """Every item's bounds but the edge layer's (the scene rect: not something drawn)."""
        layer = self.edge_layer
        rect = layer.boundingRect()
        layer.set_rect(QRectF())
        try:
            return super().itemsBoundingRect()
        finally:
            layer.set_rect(rect)

    def removeItem(self, item) -> None:  # noqa: N802 - Qt API
        if type(item) is EdgeItem:  # drawn by the layer: its place is drawn again
            self.edge_layer.update(item.boundingRect())
        super().removeItem(item)

    @property
    def edge_items(self) -> list[EdgeItem]:
        """The edge items alive (every edge in a small scene)."""
        return list(self.live_edges.values())

    def reset(self) -> None:
        """Nothing drawn (after ``clear()`` deleted the items)."""
        self.tree = self.placement = None
        self.boxes, self.live, self.edge_recs, self.live_edges = {}, {}, [], {}
        self._holes = 0
        self.edges_of, self.deco, self.lit, self.tracing = {}, {}, set(), False
        self._tile_units, self._tile_edges, self._live_tiles = {}, {}, set()
        self._solid = {}
        self._clear_offsets()
        self._lines_of = []
        self.ghosts = []
        self._overview = self._overview_lines = self._overview_static = None
        self.placement_rect = QRectF()
        if not shiboken6.isValid(self.edge_layer) or self.edge_layer.scene() is not self:
            self.edge_layer = EdgeLayer(self)  # clear() deleted it
            self.addItem(self.edge_layer)
        self.edge_layer.set_rect(self.sceneRect())

    # ------------------------------------------------------------------ far-zoom overview
    def overview(self):
        """Every box and edge as a few batched primitives (built once per change): what the
        view and the minimap draw when items would be a few pixels big."""
        from .scene_overview import Overview
        if self._overview is None:
            with gc_paused():  # thousands of small objects at once (see apply_placement)
                st = self._overview_static
                if st is not None and (self._static_todo or self._static_lines_todo
                                       or self._static_shifts) and \
                        not st.patch(self, self._static_todo, self._overview_lines
                                     if self._static_lines_todo else None,
                                     self._static_shifts):
                    self._overview_static = None
                self._static_todo, self._static_lines_todo = set(), False
                self._static_shifts = []
                self._overview = Overview(self, self._overview_lines, self._overview_static)
                self._overview_static = self._overview.static
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
            badges = tree.badges.get(name)
            if badges:
                h += m.badge_h + 3
                # wide enough for its badges (up to the max: beyond it they are cut)
                row = badge_row_width([b.label for b in badges], m)
                if row > w:  # rounded up: a box rounded down would cut its last badge
                    w = min(style.NODE_MAX_W, float(math.ceil(row)))
            return (round(w), round(h))
        grp = tree.groups[unit[2:]]
        badge = 6 * len(f"×{grp.repeats}") + 14 if grp.repeats > 1 else 0
        w = min(style.GROUP_MAX_W, max(style.GROUP_MIN_W, len(grp.label) * m.title_char + 60,
                                       len(" · ".join(grp.top_ops(3))) * m.body_char + 30
                                       + badge))
        return (round(w), round(12 + m.title_h + 2 * m.body_h))

    def content_rect(self) -> QRectF:
        """What a fit shows: every item's bounds (the placement's, in a lazy scene)."""
        if not self.lazy:
            return self.itemsBoundingRect()
        r = self.placement_rect.adjusted(-6, -6, 6, 6)
        for g in self.ghosts:
            r = r.united(g.sceneBoundingRect())
        return r

    def kind_of(self, key: str) -> str:
        """"node", "frame" (an expanded group) or "group" (a collapsed one)."""
        if key.startswith("n:"):
            return "node"
        return "frame" if key[2:] in self.placement.expanded else "group"

    # ------------------------------------------------------------------ rebuild
    def apply_placement(self, tree: GroupTree, placement: Placement) -> None:
        """Make the scene match the placement: items of unchanged units are kept (moved),
        edges are rebuilt; a lazy scene makes the rest when a view looks at them."""
        # Tens of thousands of small objects in one go: without pausing it, Python's cyclic
        # garbage collector runs full passes over the whole (large) heap again and again
        # meanwhile. What lives after is frozen (gc_paused): left young, the first
        # collections after an expand-all walked all of it — on the 53k-node graph a young
        # collection of ~130 ms, then the middle generation's ~130 ms, then a full one of
        # ~100 ms, each in whatever frame came then (a zoom or pan step); after an undo on
        # the 107k-node graph a young collection of 40-70 ms.
        with gc_paused():
            self._apply_placement(tree, placement)

    def _still_draws(self, item: UnitItem, key: str, tree: GroupTree) -> bool:
        want = NodeItem if key.startswith("n:") else (
            FrameItem if key[2:] in self.placement.expanded else GroupItem)
        if type(item) is not want:
            return False
        if want is NodeItem:
            # a step may change a node in place (a folded batch norm becomes a BiasAdd of the
            # same name, new weight badges): reuse the item only if it still draws it
            name = key[2:]
            return (item.op == tree.op_of.get(name)
                    and item.label == tree.node_label.get(name, name)
                    and [b.label for b in item.badges]
                    == [b.label for b in tree.badges.get(name, [])])
        # same group key, new tree (after an edit): size, ops and signature may differ
        group = tree.groups[key[2:]]
        if item.group is not group:
            if _group_look(item.group) != _group_look(group):
                return False
            item.group = group
        return True

    def _apply_placement(self, tree: GroupTree, placement: Placement) -> None:
        diff = self._diff_to(tree, placement)
        if diff is not None:
            self._apply_diff(tree, placement, diff)
            return
        self.setItemIndexMethod(QGraphicsScene.NoIndex)  # bulk changes: index once at the end
        self.tree, self.placement = tree, placement
        boxes = self.boxes = placement.boxes
        self._solid = {}
        old, self.live = self.live, {}
        for key, item in old.items():
            box = boxes.get(key)
            if box is None or not self._still_draws(item, key, tree):
                self.removeItem(item)
                continue
            item.set_box(box)
            self.live[key] = item
        old_edges = {(e.src, e.dst, e.stub): e for e in self.live_edges.values()}
        self.live_edges = {}
        self._make_edge_recs(tree, placement)
        # an edge drawn the same way keeps its item (an undo moves a few boxes of thousands)
        for idx, rec in enumerate(self.edge_recs):
            e = rec[0]
            item = old_edges.pop((e.src, e.dst, rec[3]), None)
            if item is None:
                continue
            if item.rec == _edge_key(rec, placement.horizontal):
                item.edge, item.index = e, idx
                self.live_edges[idx] = item
            else:
                self.removeItem(item)
        for item in old_edges.values():
            self.removeItem(item)
        self.lazy = len(boxes) + len(self.edge_recs) > LAZY_ITEMS
        self._live_tiles = set()
        self._clear_offsets()
        if self.lazy:
            self._index_tiles()
        else:
            self._tile_units, self._tile_edges = {}, {}
            for key in boxes:
                self.item(key)
            for i in range(len(self.edge_recs)):
                if i not in self.live_edges:
                    self._edge_item(i)
        self.clear_ghosts()
        self._overview = self._overview_static = None
        # part of laying out: the far-zoom view and the minimap draw the edges from these
        self._overview_lines = self._edge_lines()
        self.setItemIndexMethod(QGraphicsScene.BspTreeIndex)
        # room to pan past the edges (the legend and minimap float over the corners)
        self.setSceneRect(QRectF(-300, -200, placement.width + 600, placement.height + 400))
        self.placement_rect = QRectF(0, 0, placement.width, placement.height)

    def _diff_to(self, tree: GroupTree, placement: Placement) -> PlacementDiff | None:
        """What differs from the placement drawn now, when it is known and small enough for an
        update in place (a lazy scene only; a small one is rebuilt in no time)."""
        old = self.placement
        if not self.lazy or old is None or self.tree is None:
            return None
        if placement is old and tree is self.tree:
            return PlacementDiff(frozenset(), frozenset())
        diff = placement.diff_to(old)
        if diff is None or len(diff) > UPDATE_MAX * (len(placement.boxes) + len(self.edge_recs)):
            return None
        return diff

    def _apply_diff(self, tree: GroupTree, placement: Placement, diff: PlacementDiff) -> None:
        """Change only what ``diff`` says differs (an undo of a one-node edit: a few boxes and
        edges of a hundred thousand): the items alive, the tile index, the edge records and the
        overview's boxes and lines. A block of boxes that moved together (everything after a
        deleted box in its column: 12,000 boxes and 10,000 edges of the 107k-node graph) and
        the edges between them keep their tile entries and take the block's offset
        (:meth:`_entries_of`); their records and overview lines are moved in place."""
        old_tree, old_boxes = self.tree, self.boxes
        old_expanded = self.placement.expanded
        horizontal = placement.horizontal
        self.tree, self.placement = tree, placement
        boxes = self.boxes = placement.boxes
        units = diff.units
        # a group's colour may have changed, and the blended fill of the frames inside it
        inside = _recoloured(units, old_tree, tree, old_expanded, placement.expanded)
        if inside is not None:
            solid = self._solid
            for k in inside.under():  # (a few groups around the edit: not every frame)
                solid.pop(k, None)
        live = self.live
        if tree is not old_tree or units:
            groups = tree.groups
            for key, item in list(live.items()):
                if key not in units:
                    # drawn as before (the diff holds every unit whose look changed): a group
                    # item takes the new tree's group
                    if key[0] == "g":
                        item.group = groups[key[2:]]
                elif key not in boxes or not self._still_draws(item, key, tree):
                    self.removeItem(live.pop(key))
                    continue
                else:
                    item.set_box(boxes[key])
                if inside is not None and isinstance(item, FrameItem) and inside(key[2:]):
                    item.solid = self._solid_fill(key[2:])
                    item.update()
        # blocks: those the layout found (``diff.shifts``: checked once, when it was laid out),
        # or else the boxes that moved by the same offset (their edges are checked here)
        shifts = {d: v for d, v in diff.shifts.items() if len(v[0]) >= BLOCK_MIN}
        if shifts:
            shifted = {}
            for d, (block, _) in shifts.items():
                shifted.update(dict.fromkeys(block, d))
            block_srcs = {s: d for d, (_, srcs) in shifts.items() for s in srcs}
            in_block = shifted
        else:
            shifted, block_srcs = _blocks(units, old_boxes, boxes), {}
            in_block = {}
        self.block_moves = len(block_srcs)
        # the tile index: a unit of a moved block takes the block's offset; another changed
        # unit leaves the tiles of its old box for those of its new
        tu, uo, uf = self._tile_units, self._unit_off, self._unit_filed
        box_tiles = self._box_tiles
        moves: dict[tuple, int] = {}  # (offset before, after) → how many units
        for key in units:
            d = shifted.get(key)
            if d is not None:
                if key not in uo and key not in uf:  # filed where it was drawn
                    uf[key] = box_tiles(old_boxes[key])
                _add_offset(uo, key, d, moves)
                continue
            a, b = old_boxes.get(key), boxes.get(key)
            if a is not None and b is not None and (a.x, a.y, a.w, a.h) == (b.x, b.y, b.w, b.h):
                continue  # it looks different where it was (a group's count of repeats)
            self._unfile_unit(key, a)
            if b is not None:
                for t in box_tiles(b):
                    lst = tu.get(t)
                    if lst is None:
                        tu[t] = [key]
                    else:
                        lst.append(key)
        for (off, new), n in moves.items():
            self._count_offset(off, -n)
            if new != (0.0, 0.0):
                self._count_offset(new, n)
        # edges: every record of a producer whose edges, or whose edges' ends, changed
        srcs = {k[0] for k in diff.edges}  # added, removed or routed anew
        srcs.update(block_srcs)  # (an edge without bends moved with its ends: not in edges)
        recs = self.edge_recs
        for key in units:  # edges from or into a unit that moved or changed
            if key in in_block:
                # its edges moved with it (its producer's), or their producer has an edge in
                # diff.edges or one with an end that is a changed unit in no block, which adds
                # it here (see PlacementDiff.shifts)
                continue
            srcs.add(key)
            for i in self.edges_of.get(key, ()):
                srcs.add(recs[i][0].src)
        by_src = placement.edges_by_src()
        dead: list = []    # overview lines of the records dropped
        added: list = []   # and of those made
        moved_lines = False
        edges_of = self.edges_of
        for src in srcs:
            lst = by_src.get(src, ()) if src in boxes else ()
            if not lst and not edges_of.get(src):
                continue  # no edges (a frame)
            d = block_srcs.get(src)
            if d is not None:  # every edge of it moved with its block
                self._move_src(src, d)
                moved_lines = True
                continue
            d = shifted.get(src)
            if d is not None and self._shift_src(src, lst, d, shifted):
                moved_lines = True
                continue
            new = self._recs_of_src(tree, src, lst, horizontal) if lst else []
            old_idx = [i for i in self.edges_of.get(src, ()) if recs[i][0].src == src]
            old_by_key = {(recs[i][0].dst, recs[i][3]): i for i in old_idx}
            for rec in new:
                k = (rec[0].dst, rec[3])
                i = old_by_key.get(k)
                if i is not None:
                    old = recs[i]
                    if _edge_key(old, horizontal) == _edge_key(rec, horizontal):
                        del old_by_key[k]
                        recs[i] = rec  # drawn the same: only the edge object is the new tree's
                        item = self.live_edges.get(i)
                        if item is not None:
                            item.edge = rec[0]
                        continue
                    d = shifted.get(rec[0].dst)
                    if d is not None and _stub_moved(old, rec, d):
                        del old_by_key[k]
                        self._shift_rec(i, rec, d)
                        moved_lines = True
                        continue
                added.append(self._add_rec(rec))
            for i in old_by_key.values():
                dead.extend(self._lines_of[i])
                self._drop_rec(i)
        for (off, new), n in self._edge_moves.items():
            self._count_offset(off, -n)
            if new != (0.0, 0.0):
                self._count_offset(new, n)
        self._edge_moves = {}
        if dead or added:
            self._patch_lines(dead, added)
        self._make_alive()
        self.clear_ghosts()
        self._overview = None
        if (placement.width, placement.height) != (self.placement_rect.width(),
                                                   self.placement_rect.height()):
            self.setSceneRect(QRectF(-300, -200, placement.width + 600, placement.height + 400))
            self.placement_rect = QRectF(0, 0, placement.width, placement.height)
        if self._overview_static is not None:  # patched when next drawn
            if shifts:  # (the units the layout said moved as a block: moved by the offset)
                self._static_todo.update(k for k in units if k not in in_block)
                self._static_shifts.extend((d, v[0]) for d, v in shifts.items())
            else:
                self._static_todo |= units
            self._static_lines_todo |= bool(dead or added or moved_lines)
        if self._holes > len(recs) // 2:  # mostly holes: index afresh
            self._reindex_edges()
        if len(self._offsets) > MAX_OFFSETS:
            self._fold_offsets()

    def _shift_src(self, src: str, lst: list, d: tuple, shifted: dict) -> bool:
        """The records of ``src``'s edges moved as a block by ``d``, when every one of them
        (none a stub) goes to a box of the same block and its route moved with it; else
        False (nothing done)."""
        recs = self.edge_recs
        mine: dict[str, int] = {}
        for i in self.edges_of.get(src, ()):
            r = recs[i]
            if r[0].src == src:
                if r[3] or r[0].dst in mine:
                    return False  # a stub: drawn so by how far its ends are
                mine[r[0].dst] = i
        if not lst or len(mine) != len(lst):
            return False
        dx, dy = d
        boxes = self.boxes
        a = boxes[src]
        many = len(lst) >= STUB_FANOUT
        todo = []
        for e in lst:
            i = mine.get(e.dst)
            if i is None or shifted.get(e.dst) != d:
                return False
            o = recs[i][0]
            if o.control != e.control or o.count != e.count or o.label != e.label \
                    or o.unrouted != e.unrouted or len(o.route) != len(e.route):
                return False
            for p, q in zip(o.route, e.route):
                if q[0] - p[0] != dx or q[1] - p[1] != dy:
                    return False
            b = boxes[e.dst]
            if many and _far(a, b, e):
                return False
            todo.append((i, e, b))
        horizontal = self.placement.horizontal
        ra = (a.x, a.y, a.w, a.h)
        for i, e, b in todo:
            self._shift_rec(i, (e, ra, (b.x, b.y, b.w, b.h), "", "", "",
                                simplify_route(e.route, horizontal)), d)
        return True

    def _move_src(self, src: str, d: tuple) -> None:
        """The records of ``src``'s edges moved by ``d`` (the layout says that they did: see
        ``PlacementDiff.shifts``)."""
        recs = self.edge_recs
        dx, dy = d
        for i in self.edges_of.get(src, ()):
            r = recs[i]
            e = r[0]
            if e.src != src:
                continue
            _, (ax, ay, aw, ah), (bx, by, bw, bh), stub, text, tip, route = r
            self._shift_rec(i, (e, (ax + dx, ay + dy, aw, ah), (bx + dx, by + dy, bw, bh),
                                stub, text, tip,
                                [(x + dx, y + dy) for x, y in route] if route else route), d)

    def _shift_rec(self, i: int, rec: tuple, d: tuple) -> None:
        """Edge record ``i`` becomes ``rec``, which draws it moved by ``d``: it stays filed
        where it is, with its offset grown by ``d``."""
        recs, horizontal = self.edge_recs, self.placement.horizontal
        eo, ef = self._edge_off, self._edge_filed
        old = recs[i]
        if i not in eo and i not in ef:  # filed where it was drawn
            ef[i] = list(self._edge_tiles(old[0], old[3], edge_polyline(
                old[1], old[2], old[6], horizontal, old[3])))
        _add_offset(eo, i, d, self._edge_moves)  # (counted in _offsets once per update)
        recs[i] = rec
        item = self.live_edges.pop(i, None)
        if item is not None:  # made again if it is in view (_make_alive)
            self.removeItem(item)
        # the overview's lines are moved in place (the flat lists hold the same objects)
        pl = edge_polyline(rec[1], rec[2], rec[6], horizontal, rec[3])
        lines = self._lines_of[i]
        if len(lines) == len(pl) - 1:
            for ln, ((x0, y0), (x1, y1)) in zip(lines, pairwise(pl)):
                ln.setLine(x0, y0, x1, y1)
        else:  # (a curve that turned into a loop, or back)
            self._patch_lines(lines, [])
            self._lines_of[i] = self._rec_lines(rec)
            self._patch_lines([], [i])

    def _patch_lines(self, dead: list, added: list[int]) -> None:
        """The overview's flat line lists without the lines ``dead`` and with those of the
        records ``added`` (in place: the overview's static part shares them)."""
        if self._overview_lines is None:
            return
        lines, control = self._overview_lines
        pos = self._line_pos
        if pos is None or pos[0] is not lines or pos[1] is not control:
            # where each line is in its list (the order does not matter: one pen each)
            at = {id(ln): i for i, ln in enumerate(lines)}
            at.update((id(ln), i) for i, ln in enumerate(control))
            pos = self._line_pos = (lines, control, at)
        at = pos[2]
        for ln in dead:  # the last line takes its place
            i = at.pop(id(ln))
            lst = lines if i < len(lines) and lines[i] is ln else control
            last = lst.pop()
            if last is not ln:
                lst[i] = last
                at[id(last)] = i
        for i in added:
            rec = self.edge_recs[i]
            if rec is not None:
                lst = control if rec[0].control else lines
                for ln in self._lines_of[i]:
                    at[id(ln)] = len(lst)
                    lst.append(ln)

    def _unfile_unit(self, key: str, box) -> None:
        """Take unit ``key`` (drawn at ``box``) out of the tile index."""
        tiles = self._unit_filed.pop(key, None)
        if tiles is None:
            if box is None:
                return
            tiles = self._box_tiles(box)
        self._count_offset(self._unit_off.pop(key, None), -1)
        tu = self._tile_units
        for t in tiles:
            lst = tu.get(t)
            if lst is not None and key in lst:
                lst.remove(key)

    def _fold_offsets(self) -> None:
        """Too many blocks with offsets (each costs every lookup a pass): file the entries of
        the smallest ones again where they are drawn."""
        by_size = sorted(self._offsets, key=self._offsets.get)
        keep = set(by_size[len(by_size) - MAX_OFFSETS // 2:])
        horizontal = self.placement.horizontal
        tu, te = self._tile_units, self._tile_edges
        for key, off in list(self._unit_off.items()):
            if off in keep:
                continue
            self._unfile_unit(key, None)
            for t in self._box_tiles(self.boxes[key]):
                tu.setdefault(t, []).append(key)
        for i, off in list(self._edge_off.items()):
            if off in keep:
                continue
            self._unfile_edge(i)
            rec = self.edge_recs[i]
            for t in self._edge_tiles(rec[0], rec[3], edge_polyline(
                    rec[1], rec[2], rec[6], horizontal, rec[3])):
                te.setdefault(t, []).append(i)

    def _unfile_edge(self, idx: int) -> None:
        """Take edge record ``idx`` out of the tile index."""
        tiles = self._edge_filed.pop(idx, None)
        if tiles is None:
            rec = self.edge_recs[idx]
            tiles = self._edge_tiles(rec[0], rec[3], edge_polyline(
                rec[1], rec[2], rec[6], self.placement.horizontal, rec[3]))
        self._count_offset(self._edge_off.pop(idx, None), -1)
        te = self._tile_edges
        for t in tiles:
            lst = te.get(t)
            if lst is not None and idx in lst:
                lst.remove(idx)

    def _add_rec(self, rec: tuple) -> int:
        """A new edge record, indexed in its tiles (its item is made by :meth:`_make_alive`
        if one of them is alive)."""
        recs = self.edge_recs
        idx = len(recs)
        recs.append(rec)
        self._lines_of.append(self._rec_lines(rec))
        e = rec[0]
        self.edges_of.setdefault(e.src, []).append(idx)
        self.edges_of.setdefault(e.dst, []).append(idx)
        pl = edge_polyline(rec[1], rec[2], rec[6], self.placement.horizontal, rec[3])
        te = self._tile_edges
        for t in self._edge_tiles(e, rec[3], pl):
            lst = te.get(t)
            if lst is None:
                te[t] = [idx]
            else:
                lst.append(idx)
        return idx

    def _drop_rec(self, idx: int) -> None:
        """Take edge record ``idx`` out of the index (its slot stays, empty)."""
        self._unfile_edge(idx)
        e = self.edge_recs[idx][0]
        for k in (e.src, e.dst):
            lst = self.edges_of.get(k)
            if lst is not None and idx in lst:
                lst.remove(idx)
        item = self.live_edges.pop(idx, None)
        if item is not None:
            self.removeItem(item)
        self.edge_recs[idx] = None
        self._lines_of[idx] = None
        self._holes += 1

    def _reindex_edges(self) -> None:
        """Edge records without the empty slots, their tiles and items re-numbered."""
        keep = [i for i, r in enumerate(self.edge_recs) if r is not None]
        new_of = {old: new for new, old in enumerate(keep)}
        self._holes = 0
        self.edge_recs = [self.edge_recs[i] for i in keep]
        self._lines_of = [self._lines_of[i] for i in keep]
        self.edges_of = {k: [new_of[i] for i in v] for k, v in self.edges_of.items()}
        self._tile_edges = {t: [new_of[i] for i in v] for t, v in self._tile_edges.items()}
        self._edge_off = {new_of[i]: o for i, o in self._edge_off.items()}
        self._edge_filed = {new_of[i]: t for i, t in self._edge_filed.items()}
        live = {}
        for i, item in self.live_edges.items():
            item.index = new_of[i]
            live[new_of[i]] = item
        self.live_edges = live

    def _make_edge_recs(self, tree: GroupTree, placement: Placement) -> None:
        """Which edges are drawn whole and which as stubs, with their end boxes."""
        recs: list[tuple | None] = []
        for src, lst in placement.edges_by_src().items():
            recs.extend(self._recs_of_src(tree, src, lst, placement.horizontal))
        self.edge_recs = recs
        self._holes = 0
        edges_of: dict[str, list[int]] = {}
        for i, r in enumerate(recs):
            e = r[0]
            edges_of.setdefault(e.src, []).append(i)
            edges_of.setdefault(e.dst, []).append(i)
        self.edges_of = edges_of

    def _recs_of_src(self, tree: GroupTree, src: str, lst: list, horizontal: bool) -> list:
        """The records of the visible edges ``lst`` leaving ``src`` (all of them: whether one
        is a stub depends on how many there are): far edges of a high fan-out producer are
        stubs, with one "out" record for all of them."""
        boxes = self.boxes
        a = boxes.get(src)
        if a is None:
            return []
        ra = (a.x, a.y, a.w, a.h)
        many = len(lst) >= STUB_FANOUT
        recs: list[tuple] = []
        stubbed: list = []
        text = None
        for e in lst:
            b = boxes.get(e.dst)
            if b is None:
                continue
            rb = (b.x, b.y, b.w, b.h)
            # far, or not routed by the layout (a long edge of a high fan-out producer)
            if many and _far(a, b, e):
                if text is None:
                    label = tree.node_label.get(src[2:], src[2:]) if src.startswith("n:") \
                        else tree.groups[src[2:]].label
                    text = _elide(label, 28)
                recs.append((e, ra, rb, "in", text, "", ()))
                stubbed.append(e)
            else:
                recs.append((e, ra, rb, "", "", "", simplify_route(e.route, horizontal)))
        if stubbed:
            e = stubbed[0]
            b = boxes[e.dst]
            tip = (f"{src[2:]} also feeds (drawn short):\n"
                   + "\n".join(x.dst[2:] for x in stubbed[:30])
                   + ("\n…" if len(stubbed) > 30 else ""))
            recs.append((e, ra, (b.x, b.y, b.w, b.h), "out", f"→ {len(stubbed)} far consumers",
                         tip, ()))
        return recs

    def _polylines(self):
        horizontal = self.placement.horizontal
        for rec in self.edge_recs:
            if rec is None:
                continue
            e, ra, rb, stub, _, _, route = rec
            yield e, stub, edge_polyline(ra, rb, route, horizontal, stub)

    def _rec_lines(self, rec: tuple) -> list[QLineF]:
        e, ra, rb, stub, _, _, route = rec
        pl = edge_polyline(ra, rb, route, self.placement.horizontal, stub)
        return [QLineF(a[0], a[1], b[0], b[1]) for a, b in pairwise(pl)]

    def _edge_lines(self) -> tuple[list[QLineF], list[QLineF]]:
        """Every edge's route as straight segments: (data edges, control edges). Each
        record's own lines are kept (``_lines_of``), so that an update redoes only its own."""
        self._lines_of = [None if rec is None else self._rec_lines(rec)
                                for rec in self.edge_recs]
        return self._flat_lines()

    def _flat_lines(self) -> tuple[list[QLineF], list[QLineF]]:
        lines: list[QLineF] = []
        control: list[QLineF] = []
        for rec, ls in zip(self.edge_recs, self._lines_of):
            if rec is not None:
                (control if rec[0].control else lines).extend(ls)
        return lines, control

    # ------------------------------------------------------------------ tiles
    @staticmethod
    def _box_tiles(b) -> list[tuple]:
        floor = math.floor
        i0, i1 = floor(b.x / TILE), floor((b.x + b.w) / TILE)
        j0, j1 = floor(b.y / TILE), floor((b.y + b.h) / TILE)
        if i0 == i1 and j0 == j1:
            return [(i0, j0)]
        return [(i, j) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)]

    @staticmethod
    def _edge_tiles(e, stub: str, pl: list) -> set[tuple]:
        """The tiles an edge drawn along polyline ``pl`` may paint in."""
        floor = math.floor
        pad = 24.0  # arrow heads, curve bulges, the start of a label
        seen: set[tuple] = set()
        if stub:  # the label reaches 150 either side of the stub's start
            xs = [p[0] for p in pl] + [pl[0][0] - 150, pl[0][0] + 150]
            ys = [p[1] for p in pl] + [pl[0][1] - 16]
            segs = [(min(xs), min(ys), max(xs), max(ys))]
        else:
            segs = []
            for (x0, y0), (x1, y1) in pairwise(pl):
                # the cubic's control points bulge up to half the step beyond each end
                dy, dx = abs(y1 - y0) / 2 + 12, abs(x1 - x0) / 2 + 12
                segs.append((min(x0, x1) - dx, min(y0, y1) - dy,
                             max(x0, x1) + dx, max(y0, y1) + dy))
            if e.label or e.count > 1:
                mx, my = pl[len(pl) // 2]
                segs.append((mx - 4, my - 8, mx + 150, my + 8))
        for x0, y0, x1, y1 in segs:
            for i in range(floor((x0 - pad) / TILE), floor((x1 + pad) / TILE) + 1):
                for j in range(floor((y0 - pad) / TILE), floor((y1 + pad) / TILE) + 1):
                    seen.add((i, j))
        return seen

    def _index_tiles(self) -> None:
        """Which units and edges touch each TILE × TILE square."""
        tu: dict[tuple, list[str]] = {}
        te: dict[tuple, list[int]] = {}
        floor = math.floor
        for key, b in self.boxes.items():
            i0, i1 = floor(b.x / TILE), floor((b.x + b.w) / TILE)
            j0, j1 = floor(b.y / TILE), floor((b.y + b.h) / TILE)
            if i0 == i1 and j0 == j1:  # most boxes: one tile
                lst = tu.get((i0, j0))
                if lst is None:
                    tu[(i0, j0)] = [key]
                else:
                    lst.append(key)
                continue
            for i in range(i0, i1 + 1):
                for j in range(j0, j1 + 1):
                    lst = tu.get((i, j))
                    if lst is None:
                        tu[(i, j)] = [key]
                    else:
                        lst.append(key)
        edge_tiles = self._edge_tiles
        horizontal = self.placement.horizontal
        for idx, rec in enumerate(self.edge_recs):
            if rec is None:
                continue
            e, ra, rb, stub, _, _, route = rec
            for t in edge_tiles(e, stub, edge_polyline(ra, rb, route, horizontal, stub)):
                lst = te.get(t)
                if lst is None:
                    te[t] = [idx]
                else:
                    lst.append(idx)
        self._tile_units, self._tile_edges = tu, te

    def _tiles_in(self, rect: QRectF):
        x0, y0, x1, y1 = rect.getCoords()
        floor = math.floor
        for i in range(floor(x0 / TILE), floor(x1 / TILE) + 1):
            for j in range(floor(y0 / TILE), floor(y1 / TILE) + 1):
                yield (i, j)

    # ------------------------------------------------------------------ blocks moved
    def _clear_offsets(self) -> None:
        self._unit_off, self._edge_off, self._unit_filed, self._edge_filed = {}, {}, {}, {}
        self._offsets = {}

    def _count_offset(self, off: tuple | None, n: int) -> None:
        if off is not None:
            left = self._offsets.get(off, 0) + n
            if left > 0:
                self._offsets[off] = left
            else:
                self._offsets.pop(off, None)

    def _entries_of(self, tiles) -> tuple[set[str], set[int]]:
        """The units and edge records that may draw in the scene tiles ``tiles``: those filed
        there without an offset, and those of a moved block filed where the tiles were before
        the block moved (the tiles ``tiles`` overlap, shifted back by its offset)."""
        tu, te = self._tile_units, self._tile_edges
        uo, eo = self._unit_off, self._edge_off
        units: set[str] = set()
        edges: set[int] = set()
        for t in tiles:
            for k in tu.get(t, ()):
                if k not in uo:
                    units.add(k)
            for i in te.get(t, ()):
                if i not in eo:
                    edges.add(i)
        if self._offsets:
            floor = math.floor
            for off in self._offsets:
                dx, dy = off
                back: set[tuple] = set()
                for i, j in tiles:
                    x0, y0 = i * TILE - dx, j * TILE - dy
                    for a in range(floor(x0 / TILE), floor((x0 + TILE) / TILE) + 1):
                        for b in range(floor(y0 / TILE), floor((y0 + TILE) / TILE) + 1):
                            back.add((a, b))
                for t in back:
                    for k in tu.get(t, ()):
                        if uo.get(k) == off:
                            units.add(k)
                    for i in te.get(t, ()):
                        if eo.get(i) == off:
                            edges.add(i)
        return units, edges

    def units_in(self, rect: QRectF) -> set[str]:
        """The units of the tiles ``rect`` (scene coordinates) touches (a lazy scene's index:
        those boxes may reach into ``rect``)."""
        return self._entries_of(list(self._tiles_in(rect)))[0]

    def _make_alive(self) -> int:
        """Make the items of everything in the tiles a view has looked at (after an update:
        what moved into them)."""
        if not self._live_tiles:
            return 0
        units, edges = self._entries_of(self._live_tiles)
        made = 0
        for key in units:
            if key not in self.live:
                self.item(key)
                made += 1
        for idx in edges:
            if idx not in self.live_edges and self.edge_recs[idx] is not None:
                self._edge_item(idx)
                made += 1
        return made

    def ensure_rect(self, rect: QRectF) -> int:
        """Make the items of everything that may show in ``rect`` (scene coordinates);
        returns how many were made."""
        if not self.lazy:
            return 0
        new = [t for t in self._tiles_in(rect) if t not in self._live_tiles]
        if not new:
            return 0
        self._live_tiles.update(new)
        units, edges = self._entries_of(new)
        made = 0
        live, live_edges = self.live, self.live_edges
        for key in units:
            if key not in live:
                self.item(key)
                made += 1
        for idx in edges:
            if idx not in live_edges:
                self._edge_item(idx)
                made += 1
        if made >= FREEZE_MADE:
            # Items (and their rectangles, pieces, looks) make no reference cycles: an evicted
            # one is freed when dropped, frozen or not. Left young, the thousands a zoom-out
            # or a long pan makes soon set off a full collection, which walks all of them in
            # whatever frame comes then (45 ms in a zoom step of the expanded 107k graph).
            gc.freeze()
        return made

    def evict(self, keep: QRectF) -> int:
        """Above :data:`LIVE_BUDGET` live items, drop those of tiles outside ``keep`` (never a
        selected item); returns how many were dropped."""
        if not self.lazy or len(self.live) + len(self.live_edges) <= LIVE_BUDGET:
            return 0
        self._live_tiles &= set(self._tiles_in(keep))
        units, edges = self._entries_of(self._live_tiles)
        dropped = 0
        for key in [k for k, it in self.live.items()
                    if k not in units and not it.isSelected()]:
            self.removeItem(self.live.pop(key))
            dropped += 1
        for idx in [i for i in self.live_edges if i not in edges]:
            self.removeItem(self.live_edges.pop(idx))
            dropped += 1
        return dropped

    # ------------------------------------------------------------------ items
    def item(self, key: str) -> UnitItem | None:
        """The item drawing unit ``key`` (made now if needed); None if the key is not drawn."""
        item = self.live.get(key)
        if item is not None:
            return item
        box = self.boxes.get(key)
        if box is None:
            return None
        tree = self.tree
        if key.startswith("n:"):
            name = key[2:]
            node = tree.graph.nodes[name]
            item = NodeItem(key, box, node.op, tree.node_label.get(name, name),
                            tree.badges.get(name, []), lambda n=node: tensor_label(n))
            item.tag = self.tags.get(name)
        elif key[2:] in self.placement.expanded:
            group = tree.groups[key[2:]]
            item = FrameItem(key, box, group, len(tree.ancestors_of_group(key[2:])))
            item.solid = self._solid_fill(key[2:])
        else:
            item = GroupItem(key, box, tree.groups[key[2:]])
        self._decorate(item)
        self.addItem(item)
        self.live[key] = item
        return item

    def _solid_fill(self, group_key: str) -> QColor:
        """A frame's fill blended over the frames around it (and the background)."""
        c = self._solid.get(group_key)
        if c is None:
            grp = self.tree.groups[group_key]
            parent = grp.parent
            under = self._solid_fill(parent) if parent and parent in self.placement.expanded \
                and "g:" + parent in self.boxes else style.BACKGROUND
            base = style.signature_color(grp.signature) if grp.repeats > 1 \
                else style.FRAME_BORDER
            a = 45 / 255
            c = QColor.fromRgbF(under.redF() * (1 - a) + base.redF() * a,
                                under.greenF() * (1 - a) + base.greenF() * a,
                                under.blueF() * (1 - a) + base.blueF() * a)
            self._solid[group_key] = c
        return c

    def _edge_item(self, idx: int) -> EdgeItem:
        e, ra, rb, stub, text, tip, route = self.edge_recs[idx]
        item = EdgeItem(e, QRectF(*ra), QRectF(*rb), self.placement.horizontal, stub=stub,
                        stub_text=text, route=route)
        item.index = idx
        item.rec = _edge_key(self.edge_recs[idx], self.placement.horizontal)
        item.tooltip_extra = tip
        self._decorate_edge(item)
        self.addItem(item)
        self.live_edges[idx] = item
        if not self.painting:  # the layer draws it: show it
            self.edge_layer.update(item.boundingRect())
        return item

    # ------------------------------------------------------------------ decorations
    def _decorate(self, item: UnitItem) -> None:
        d = self.deco.get(item.key)
        if d is None:
            item.highlight, item.highlight_count, item.mark = None, 0, None
            item.mark_counts, item.fill_override = {}, None
        else:
            item.highlight, item.highlight_count, item.mark, counts, item.fill_override = d
            item.mark_counts = dict(counts)
        dim = self.tracing and item.key not in self.lit and item.kind != "frame"
        if dim or item.opacity() != 1.0:
            item.setOpacity(DIM_OPACITY if dim else 1.0)

    def _decorate_edge(self, e: EdgeItem) -> bool:
        lit = self.lit
        both = e.src in lit and e.dst in lit
        h = self.deco[e.dst][0] if both else None
        alpha = DIM_OPACITY if self.tracing and not both else 1.0
        changed = alpha != e.alpha
        if changed:
            e.alpha = alpha
            e.setOpacity(alpha)
        if e.highlight != h:
            e.highlight = h
            return True
        return changed

    def set_decorations(self, deco: dict[str, tuple], tracing: bool) -> None:
        """What every unit shows (unit key → (highlight, highlight count, mark, mark counts,
        fill override); keys not given show nothing). Repaints only the items that change."""
        old, self.deco = self.deco, deco
        lit = {k for k, d in deco.items() if d[0]}
        retrace = tracing != self.tracing or (tracing and lit != self.lit)
        old_lit, self.tracing, self.lit = self.lit, tracing, lit
        live = self.live
        for key in old.keys() | deco.keys():
            if old.get(key) != deco.get(key):
                item = live.get(key)
                if item is not None:
                    self._decorate(item)
                    item.update()
        if retrace:
            for item in live.values():
                self._decorate(item)
        # edges between lit units are drawn in the highlight colour
        if retrace:
            todo = list(self.live_edges.values())
        else:
            idx = {i for k in lit | old_lit for i in self.edges_of.get(k, ())}
            todo = [self.live_edges[i] for i in idx if i in self.live_edges]
        layer = self.edge_layer
        for e in todo:
            if self._decorate_edge(e):
                layer.update(e.boundingRect())

    def set_tags(self, tags: dict[str, tuple[str, str]]) -> None:
        """Node name → (box tag, tooltip line), for the nodes the history changed the op type
        of (and those others were folded into); items made later show them too."""
        if tags == self.tags:
            return
        self.tags = tags
        for item in self.live.values():
            if isinstance(item, NodeItem):
                t = tags.get(item.name)
                if t != item.tag:
                    item.tag = t
                    item.setToolTip("")   # made again from tooltip_text when next asked
                    item.update()

    def helpEvent(self, event):
        """Tooltips are made when asked for (making one per item up front costs seconds on a
        big graph)."""
        for it in self.items(event.scenePos(), Qt.IntersectsItemShape, Qt.DescendingOrder):
            if not it.toolTip() and hasattr(it, "tooltip_text"):
                it.setToolTip(it.tooltip_text())
        super().helpEvent(event)

    # ------------------------------------------------------------------ ghosts
    def clear_ghosts(self) -> None:
        for g in self.ghosts:
            self.removeItem(g)
        self.ghosts = []

    def add_ghost(self, name: str, op: str, rect: QRectF) -> GhostItem:
        g = GhostItem(name, op, rect)
        self.addItem(g)
        self.ghosts.append(g)
        return g
