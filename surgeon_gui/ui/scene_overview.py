"""The scene reduced to a few batched primitives for far-zoom drawing (the view below
``FAR_SCALE``, and the minimap)."""
from __future__ import annotations

import math

from PySide6.QtCore import QLineF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

from ..core.viewmodel.grouping import op_family
from . import style

_NO_BRUSH = Qt.NoBrush
#: Side of the squares the overview's boxes and lines are bucketed in: a view of part of the
#: graph draws only the buckets it shows.
OV_TILE = 2048.0


class Overview:
    """Frames, boxes by fill colour, outlines by colour, and every edge as line segments along
    its route. Drawing it is a handful of QPainter calls (``drawRects``/``drawLines`` loop in
    C++), however many units there are, where painting items costs one Python ``paint`` call
    each; a view of part of the graph draws only the OV_TILE squares it shows. Built from the
    placement and the scene's decorations, not from items (a lazy scene has items only near
    the view)."""

    def __init__(self, scene, cached: tuple[list, list] | None = None):
        #: (rect, fill with alpha, border) per frame, outer frames first
        self.frames: list[tuple[QRectF, QColor, QColor]] = []
        #: frame fills blended over what is around them, by depth then colour
        self.frame_fills: list[tuple[QColor, list[QRectF]]] = []
        self.frame_borders: dict[int, tuple[QColor, list[QRectF]]] = {}
        self.fills: dict[int, tuple[QColor, list[QRectF]]] = {}
        self.outlines: dict[int, tuple[QColor, list[QRectF]]] = {}
        #: tile → rgba → (fill, rects whose top-left is in the tile); made on a partial draw
        self._tile_fills: dict[tuple, dict[int, tuple[QColor, list[QRectF]]]] | None = None
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
        depth: dict[str, int] = {}
        framed: list[tuple[int, int, QColor, QRectF]] = []
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
                gk = key[2:]
                grp = groups[gk]
                if gk in expanded:
                    base = (style.signature_color(grp.signature) if grp.repeats > 1
                            else style.FRAME_BORDER)
                    fill = QColor(base)
                    fill.setAlpha(45)
                    border = outline or base
                    self.frames.append((r, fill, border))
                    self.frame_borders.setdefault(border.rgba(), (border, []))[1].append(r)
                    solid = scene._solid_fill(gk)
                    framed.append((_depth(gk, groups, depth), solid.rgba(), solid, r))
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
        framed.sort(key=lambda f: (f[0], f[1]))
        for dp, rgba, solid, r in framed:
            if self.frame_fills and self.frame_fills[-1][0] == (dp, rgba):
                self.frame_fills[-1][2].append(r)
            else:
                self.frame_fills.append(((dp, rgba), solid, [r]))
        self.lines, self.control_lines = cached if cached is not None \
            else scene._edge_lines()
        self._tile_lines: tuple[dict, dict] | None = None
        self.rect = scene.placement_rect

    @staticmethod
    def edge_lines(scene) -> tuple[list[QLineF], list[QLineF]]:
        """Every edge's route as straight segments: (data edges, control edges)."""
        return scene._edge_lines()

    def tile_lines(self) -> tuple[dict, dict]:
        """The edge lines cut at tile borders, bucketed by tile (data, control); made on the
        first partial draw."""
        if self._tile_lines is None:
            self._tile_lines = (_bucket_lines(self.lines), _bucket_lines(self.control_lines))
        return self._tile_lines

    def tile_fills(self) -> dict[tuple, dict[int, tuple[QColor, list[QRectF]]]]:
        """The boxes by tile of their top-left corner, then by fill."""
        if self._tile_fills is None:
            out: dict[tuple, dict] = {}
            f = math.floor
            for k, (color, rects) in self.fills.items():
                for r in rects:
                    t = (f(r.x() / OV_TILE), f(r.y() / OV_TILE))
                    bucket = out.get(t)
                    if bucket is None:
                        bucket = out[t] = {}
                    entry = bucket.get(k)
                    if entry is None:
                        entry = bucket[k] = (color, [])
                    entry[1].append(r)
            self._tile_fills = out
        return self._tile_fills

    def draw(self, painter, scale: float, exposed: QRectF | None = None) -> None:
        """Draw in scene coordinates (the painter's transform maps them); with ``exposed``,
        only what lies in that scene rectangle."""
        px = 1.0 / max(scale, 1e-6)  # one device pixel in scene units
        if exposed is not None and exposed.contains(self.rect):
            exposed = None
        painter.setRenderHint(QPainter.Antialiasing, False)
        painter.setPen(Qt.NoPen)
        if exposed is None:
            frames = self.frame_fills
            borders = self.frame_borders.values()
        else:
            frames = [(k, c, [r for r in rects if r.intersects(exposed)])
                      for k, c, rects in self.frame_fills]
            borders = [(c, [r for r in rects if r.intersects(exposed)])
                       for c, rects in self.frame_borders.values()]
        for _, color, rects in frames:
            if rects:
                painter.setBrush(color)
                painter.drawRects(rects)
        painter.setBrush(_NO_BRUSH)
        pen = QPen(style.FRAME_BORDER, 0)  # cosmetic
        for color, rects in borders:
            if rects:
                pen.setColor(color)
                painter.setPen(pen)
                painter.drawRects(rects)
        # hairlines: antialiased only when there are few of them on screen
        if exposed is None:
            lines, control = self.lines, self.control_lines
            fill_lists = self.fills.values()
        else:
            tiles = _tiles(exposed.adjusted(-OV_TILE, -OV_TILE, OV_TILE, OV_TILE))
            data_t, control_t = self.tile_lines()
            lines = [ln for t in tiles for ln in data_t.get(t, ())]
            control = [ln for t in tiles for ln in control_t.get(t, ())]
            tile_fills = self.tile_fills()
            fill_lists = [e for t in tiles for e in tile_fills.get(t, {}).values()]
        painter.setRenderHint(QPainter.Antialiasing, len(lines) < 4000)
        painter.setPen(QPen(style.EDGE, 0))
        painter.drawLines(lines)
        if control:
            painter.setPen(QPen(style.EDGE_CONTROL, 0))
            painter.drawLines(control)
        painter.setRenderHint(QPainter.Antialiasing, False)
        painter.setPen(Qt.NoPen)
        for color, rects in fill_lists:
            painter.setBrush(color)
            painter.drawRects(rects)
        painter.setBrush(_NO_BRUSH)
        for color, rects in self.outlines.values():
            painter.setPen(QPen(color, 2.5 * px))
            painter.drawRects([r.adjusted(-2 * px, -2 * px, 2 * px, 2 * px) for r in rects])


def _depth(key: str, groups, memo: dict[str, int]) -> int:
    d = memo.get(key)
    if d is None:
        parent = groups[key].parent
        d = memo[key] = 0 if not parent or parent not in groups else \
            _depth(parent, groups, memo) + 1
    return d


def _tiles(rect: QRectF) -> list[tuple]:
    x0, y0, x1, y1 = rect.getCoords()
    f = math.floor
    return [(i, j) for i in range(f(x0 / OV_TILE), f(x1 / OV_TILE) + 1)
            for j in range(f(y0 / OV_TILE), f(y1 / OV_TILE) + 1)]


def _bucket_lines(lines: list[QLineF]) -> dict[tuple, list[QLineF]]:
    """Lines cut into pieces no longer than a tile, each in the tile of its start."""
    out: dict[tuple, list[QLineF]] = {}
    f = math.floor
    for ln in lines:
        x0, y0, x1, y1 = ln.x1(), ln.y1(), ln.x2(), ln.y2()
        n = max(1, math.ceil(max(abs(x1 - x0), abs(y1 - y0)) / OV_TILE))
        if n == 1:
            out.setdefault((f(x0 / OV_TILE), f(y0 / OV_TILE)), []).append(ln)
            continue
        dx, dy = (x1 - x0) / n, (y1 - y0) / n
        for k in range(n):
            ax, ay = x0 + dx * k, y0 + dy * k
            out.setdefault((f(ax / OV_TILE), f(ay / OV_TILE)), []).append(
                QLineF(ax, ay, ax + dx, ay + dy))
    return out
