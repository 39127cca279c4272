"""The scene reduced to a few batched primitives for far-zoom drawing (the view below
``FAR_SCALE``, and the minimap)."""
from __future__ import annotations

from PySide6.QtCore import QLineF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

from ..core.viewmodel.grouping import op_family
from . import style

_NO_BRUSH = Qt.NoBrush


class Overview:
    """Frames, boxes by fill colour, outlines by colour, and every edge as line segments along
    its route. Drawing it is a handful of QPainter calls (``drawRects``/``drawLines`` loop in
    C++), however many units there are, where painting items costs one Python ``paint`` call
    each. Built from the placement and the scene's decorations, not from items (a lazy scene
    has items only near the view)."""

    def __init__(self, scene, cached: tuple[list, list] | None = None):
        self.frames: list[tuple[QRectF, QColor, QColor]] = []
        self.fills: dict[int, tuple[QColor, list[QRectF]]] = {}
        self.outlines: dict[int, tuple[QColor, list[QRectF]]] = {}
        selected = {it.key for it in scene.selectedItems() if hasattr(it, "key")}
        fills, outlines = self.fills, self.outlines
        family_fill = style.FAMILY_FILL
        deco = scene.deco
        tree = scene.tree
        expanded = scene.placement.expanded if scene.placement is not None else ()
        op_of = tree.op_of if tree is not None else {}
        groups = tree.groups if tree is not None else {}
        mark_colors = style.MARK_COLORS
        fill_of: dict[str, QColor] = {}  # per op: its family's fill
        for key, b in scene.boxes.items():
            r = QRectF(b.x, b.y, b.w, b.h)
            d = deco.get(key)
            if key in selected:
                outline = style.SELECTION
            elif d is not None and d[0] and (key[0] == "n" or key[2:] not in expanded):
                outline = style.highlight_color(d[0])
            elif d is not None and d[2]:
                outline = mark_colors[d[2]]
            else:
                outline = None
            if key[0] == "n":
                fill = d[4] if d is not None and d[4] is not None else None
                if fill is None:
                    op = op_of.get(key[2:], "")
                    fill = fill_of.get(op)
                    if fill is None:
                        fill = fill_of[op] = family_fill[op_family(op)]
            else:
                grp = groups[key[2:]]
                if key[2:] in expanded:
                    base = (style.signature_color(grp.signature) if grp.repeats > 1
                            else style.FRAME_BORDER)
                    fill = QColor(base)
                    fill.setAlpha(45)
                    self.frames.append((r, fill, outline or base))
                    continue
                fill = style.signature_color(grp.signature) if grp.repeats > 1 \
                    else style.GROUP_FILL
            k = fill.rgba()
            entry = fills.get(k)
            if entry is None:
                entry = fills[k] = (fill, [])
            entry[1].append(r)
            if outline is not None:
                outlines.setdefault(outline.rgba(), (outline, []))[1].append(r)
        self.frames.sort(key=lambda f: -f[0].width() * f[0].height())  # outer frames first
        self.lines, self.control_lines = cached if cached is not None \
            else scene._edge_lines()
        self.rect = scene.placement_rect

    @staticmethod
    def edge_lines(scene) -> tuple[list[QLineF], list[QLineF]]:
        """Every edge's route as straight segments: (data edges, control edges)."""
        return scene._edge_lines()

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
