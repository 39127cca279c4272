"""The scene reduced to a few batched primitives for far-zoom drawing (the view below
``FAR_SCALE``, and the minimap)."""
from __future__ import annotations

import math
from bisect import insort

from PySide6.QtCore import QLineF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen

from ..core.viewmodel.grouping import op_family
from . import style

_NO_BRUSH = Qt.NoBrush
#: Side of the squares the overview's boxes and lines are bucketed in: a view of part of the
#: graph draws only the buckets it shows.
OV_TILE = 2048.0
#: A graph of at least this many boxes is drawn from a picture when zoomed out so far that the
#: picture (at most IMAGE_SIDE pixels a side) is at least as sharp as the view.
IMAGE_MIN_UNITS = 3000
IMAGE_SIDE = 4096
#: Boxes are at most this wide and tall (style.GROUP_MAX_W and NODE_MAX_W are less).
BOX_REACH = 256.0


class _Static:
    """What only changes with the layout: frames, boxes by fill, edge lines, tile buckets."""

    def __init__(self, scene, cached: tuple[list, list] | None):
        self.frames: list[tuple[QRectF, QColor, QColor]] = []
        self.frame_fills: list[tuple[tuple, QColor, list[QRectF]]] = []
        self.frame_borders: dict[int, tuple[QColor, list[QRectF]]] = {}
        self.fills: dict[int, tuple[QColor, list[QRectF]]] = {}
        self.rects: dict[str, QRectF] = {}
        fills, rects = self.fills, self.rects
        family_fill = style.FAMILY_FILL
        tree = scene.tree
        expanded = scene.placement.expanded if scene.placement is not None else ()
        op_of = tree.op_of if tree is not None else {}
        groups = tree.groups if tree is not None else {}
        fill_of: dict[str, QColor] = {}  # per op: its family's fill
        depth: dict[str, int] = {}
        framed: list[tuple[int, int, QColor, QRectF]] = []
        #: unit → its fill's key in ``fills`` (boxes) or what its frame looks like (frames):
        #: what :meth:`patch` compares
        self.look: dict[str, object] = {}
        look = self.look
        for key, b in scene.boxes.items():
            r = rects[key] = QRectF(b.x, b.y, b.w, b.h)
            if key[0] == "n":
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
                    self.frames.append((r, fill, base))
                    self.frame_borders.setdefault(base.rgba(), (base, []))[1].append(r)
                    solid = scene._solid_fill(gk)
                    framed.append((_depth(gk, groups, depth), solid.rgba(), solid, r))
                    look[key] = (base.rgba(), solid.rgba())
                    continue
                fill = style.signature_color(grp.signature) if grp.repeats > 1 \
                    else style.GROUP_FILL
            k = look[key] = fill.rgba()
            entry = fills.get(k)
            if entry is None:
                entry = fills[k] = (fill, [])
            entry[1].append(r)
        self.frames.sort(key=_by_area)  # outer frames first
        framed.sort(key=lambda f: (f[0], f[1]))
        for dp, rgba, solid, r in framed:
            if self.frame_fills and self.frame_fills[-1][0] == (dp, rgba):
                self.frame_fills[-1][2].append(r)
            else:
                self.frame_fills.append(((dp, rgba), solid, [r]))
        self.lines, self.control_lines = cached if cached is not None \
            else scene._edge_lines()
        self.rect = scene.placement_rect
        self._tile_lines: tuple[dict, dict] | None = None
        self._tile_fills: dict | None = None
        self._image = None
        self._frame_coords: dict[int, tuple] | None = None
        #: (the frame_coords it was made from, groups, their rects, corners, group ends)
        self._frame_index: tuple | None = None

    def patch(self, scene, units, lines: tuple[list, list] | None, shifts=()) -> bool:
        """Follow an update of the scene in place: the boxes of ``units`` (keys) moved,
        resized, recoloured, appeared or went; ``lines`` (data, control) when edges changed;
        ``shifts``: ((dx, dy), keys) of blocks that moved as a whole (the same size and look:
        see ``PlacementDiff.shifts``), in the order they moved; a key of ``units`` is not
        moved by them (it is set where its box is).
        A box or frame that only moved or was resized keeps its look: its rectangle, shared by
        every list that draws it, is moved in place (a frame's order, outer first, holds: a
        frame still contains the frames inside it, and frames side by side do not overlap).
        A frame whose colours changed (an edit changes its group's signature, and with it the
        blended fill of the frames inside it), that opened or closed, leaves its lists and
        joins others. Always True (the scene makes the whole again when False)."""
        tree = scene.tree
        expanded = scene.placement.expanded
        boxes = scene.boxes
        groups = tree.groups
        rects, look = self.rects, self.look
        changed = []  # boxes (not frames): (key, box or None, fill)
        frames_out: set[int] = set()  # ids of the rects of frames that leave their lists
        frames_in: list[tuple] = []  # (key, box, base, solid)
        recoloured: set[str] = set()  # group keys of frames whose solid fill changed
        moved = resized = False
        colours: dict = {}  # signature → its colour (made once per patch)
        resized_frames: set[int] = set()  # ids of the rects of frames that changed size
        for (dx, dy), keys in shifts:
            for key in keys:
                r = rects.get(key)
                if r is not None and key not in units:
                    r.translate(dx, dy)
                    moved = True

        def frame_look(gk: str):
            grp = groups[gk]
            if grp.repeats > 1:
                base = colours.get(grp.signature)
                if base is None:
                    base = colours[grp.signature] = style.signature_color(grp.signature)
            else:
                base = style.FRAME_BORDER
            return base, scene._solid_fill(gk)

        def frame(key: str, b, old) -> None:
            nonlocal moved, resized
            base, solid = frame_look(key[2:])
            if isinstance(old, tuple):
                if (base.rgba(), solid.rgba()) == old:
                    r = rects[key]
                    x, y, w, h = r.getRect()
                    if (x, y, w, h) != (b.x, b.y, b.w, b.h):
                        r.setRect(b.x, b.y, b.w, b.h)
                        moved = True
                        if (w, h) != (b.w, b.h):
                            resized = True
                            resized_frames.add(id(r))
                    return
                if solid.rgba() != old[1]:
                    recoloured.add(key[2:])
                frames_out.add(id(rects.pop(key)))
                look.pop(key)
            elif old is not None:  # a box before: out of its fill list
                changed.append((key, None, None))
            frames_in.append((key, b, base, solid))

        for key in units:
            b = boxes.get(key)
            old = look.get(key)
            if b is not None and key[0] == "g" and key[2:] in expanded:  # a frame now
                frame(key, b, old)
                continue
            if isinstance(old, tuple):  # a frame before, a box or nothing now
                frames_out.add(id(rects.pop(key)))
                look.pop(key)
                old = None
            if b is None:
                fill = None
            elif key[0] == "n":
                fill = style.FAMILY_FILL[op_family(tree.op_of.get(key[2:], ""))]
            else:
                grp = groups[key[2:]]
                fill = style.signature_color(grp.signature) if grp.repeats > 1 \
                    else style.GROUP_FILL
            r = rects.get(key)
            if r is not None and fill is not None and fill.rgba() == old:
                if (r.x(), r.y(), r.width(), r.height()) != (b.x, b.y, b.w, b.h):
                    r.setRect(b.x, b.y, b.w, b.h)  # same fill: moved in place
                    moved = True
                continue
            if r is not None or b is not None:
                changed.append((key, b, fill))
        if recoloured:
            # a frame's solid fill is blended over its parent's: the frames inside one whose
            # fill changed change with it, whether their own group changed or not (found
            # from it: a few groups, not every frame)
            under, todo = set(), list(recoloured)
            while todo:
                gk = todo.pop()
                if gk not in under:
                    under.add(gk)
                    todo.extend(u[2:] for u in groups[gk].children if u[0] == "g")
            for gk in under:
                key = "g:" + gk
                old = look.get(key)
                if isinstance(old, tuple) and key not in units:
                    frame(key, boxes[key], old)
        dead: dict[int, set[int]] = {}  # fill key → ids of the rects that go
        for key, _, _ in changed:
            r = rects.get(key)
            if r is not None:
                dead.setdefault(look[key], set()).add(id(r))
        for k, ids in dead.items():  # one pass per fill list, however many go
            lst = self.fills[k][1]
            lst[:] = [r for r in lst if id(r) not in ids]
        for key, b, fill in changed:
            rects.pop(key, None)
            look.pop(key, None)
            if b is not None:
                r = rects[key] = QRectF(b.x, b.y, b.w, b.h)
                k = look[key] = fill.rgba()
                entry = self.fills.get(k)
                if entry is None:
                    entry = self.fills[k] = (fill, [])
                entry[1].append(r)
        if frames_out:
            self.frames = [f for f in self.frames if id(f[0]) not in frames_out]
            self.frame_borders = {k: (c, kept) for k, (c, lst) in self.frame_borders.items()
                                  if (kept := [r for r in lst if id(r) not in frames_out])}
            for _, _, lst in self.frame_fills:
                lst[:] = [r for r in lst if id(r) not in frames_out]
            self.frame_fills = [g for g in self.frame_fills if g[2]]
        by_area = _by_area
        # a frame put in place by bisection costs ~log2(n) area reads, a sort of all n of them
        # n: below n/16 frames to place, bisection
        few = max(64, len(self.frames) // 16)
        if resized_frames and len(resized_frames) < few:
            # (a few frames changed size: they go where their new size puts them, outer
            # frames first, rather than sorting all again)
            moving = [f for f in self.frames if id(f[0]) in resized_frames]
            self.frames = [f for f in self.frames if id(f[0]) not in resized_frames]
            for f in moving:
                insort(self.frames, f, key=by_area)
            resized = False
        if frames_in:
            at = {g[0]: g for g in self.frame_fills}
            depth: dict[str, int] = {}
            for key, b, base, solid in frames_in:
                r = rects[key] = QRectF(b.x, b.y, b.w, b.h)
                look[key] = (base.rgba(), solid.rgba())
                fill = QColor(base)
                fill.setAlpha(45)
                if resized or len(frames_in) >= few:
                    self.frames.append((r, fill, base))  # (all sorted below)
                else:
                    insort(self.frames, (r, fill, base), key=by_area)
                self.frame_borders.setdefault(base.rgba(), (base, []))[1].append(r)
                k = (_depth(key[2:], groups, depth), solid.rgba())
                g = at.get(k)
                if g is None:
                    g = at[k] = (k, solid, [])
                    self.frame_fills.append(g)
                g[2].append(r)
            self.frame_fills.sort(key=lambda g: g[0])
        if changed or moved or frames_in or frames_out:
            self._tile_fills = None
            self._image = None
        if moved or frames_in or frames_out:
            self._frame_coords = None
        if resized or len(frames_in) >= few:  # (frames that only moved keep their order)
            self.frames.sort(key=by_area)
        if lines is not None:
            self.lines, self.control_lines = lines
            self._tile_lines = None
            self._image = None
        if self.rect != scene.placement_rect:
            self.rect = scene.placement_rect
            self._image = None
        return True

    def image(self, scale: float):
        """(image, its scale) of everything static, for drawing a big graph at ``scale`` or
        further out (None: draw the primitives). Made once per layout, at most IMAGE_SIDE
        pixels a side: at that zoom every box is a pixel or two, and drawing some 100,000
        rects and lines each frame cost 50-100 ms."""
        if len(self.rects) < IMAGE_MIN_UNITS or self.rect.isEmpty():
            return None
        s = min(IMAGE_SIDE / self.rect.width(), IMAGE_SIDE / self.rect.height())
        if scale > s:
            return None
        if self._image is None:
            r = self.rect
            img = QImage(max(1, math.ceil(r.width() * s)), max(1, math.ceil(r.height() * s)),
                         QImage.Format_ARGB32_Premultiplied)
            img.fill(Qt.transparent)
            p = QPainter(img)
            p.scale(s, s)
            p.translate(-r.x(), -r.y())
            self.draw(p, s, None)
            p.end()
            self._image = (img, s)
        return self._image

    def draw(self, painter, scale: float, exposed: QRectF | None) -> None:
        """Frames, edge lines and boxes (all, or those in ``exposed``)."""
        painter.setRenderHint(QPainter.Antialiasing, False)
        painter.setPen(Qt.NoPen)
        if exposed is None:
            frames = self.frame_fills
            borders = list(self.frame_borders.values())
        else:
            frames, borders = self.frames_in(exposed)
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
        if exposed is None:
            lines, control = self.lines, self.control_lines
            fill_lists = list(self.fills.values())
        else:
            # a line piece lies in its tile; a box starts in its tile and is at most
            # BOX_REACH wide and tall
            tiles = _tiles(exposed)
            data_t, control_t = self.tile_lines()
            lines = [ln for t in tiles for ln in data_t.get(t, ())]
            control = [ln for t in tiles for ln in control_t.get(t, ())]
            tile_fills = self.tile_fills()
            fill_lists = [e for t in _tiles(exposed.adjusted(-BOX_REACH, -BOX_REACH, 0, 0))
                          for e in tile_fills.get(t, {}).values()]
        # hairlines: antialiased unless they are packed (far out, they are mostly one colour)
        painter.setRenderHint(QPainter.Antialiasing, scale >= 0.05)
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

    def frame_coords(self) -> dict[int, tuple]:
        """id(frame rect) → its corners as floats."""
        if self._frame_coords is None:
            self._frame_coords = {id(r): r.getCoords() for r, _, _ in self.frames}
        return self._frame_coords

    def frames_in(self, exposed: QRectF) -> tuple[list, list]:
        """The frame fills (key, colour, rects) and borders (colour, rects) that overlap
        ``exposed``, each list in its drawing order. One vectorised comparison of every
        frame's corners: a Python test per frame (~20k fills and as many borders on the
        107k graph) cost 40 ms a frame when panning the far-zoom view."""
        import numpy as np  # (here: the first view does not need numpy)
        co = self.frame_coords()
        if self._frame_index is None or self._frame_index[0] is not co:
            fills = list(self.frame_fills)
            groups = [rects for _, _, rects in fills]
            borders = list(self.frame_borders.values())
            groups += [rects for _, rects in borders]
            flat = [r for rects in groups for r in rects]
            corners = np.array([co[id(r)] for r in flat], dtype=np.float64).reshape(-1, 4)
            ends = np.cumsum([len(rects) for rects in groups])
            self._frame_index = (co, fills, borders, flat, corners.T.copy(), ends)
        _, fills, borders, flat, (x0, y0, x1, y1), ends = self._frame_index
        ex0, ey0, ex1, ey1 = exposed.getCoords()
        hit = np.flatnonzero((x0 <= ex1) & (x1 >= ex0) & (y0 <= ey1) & (y1 >= ey0))
        cut = np.searchsorted(hit, ends).tolist()  # where each group's hits end
        picked, start = [], 0
        for end in cut:
            picked.append([flat[i] for i in hit[start:end].tolist()])
            start = end
        n = len(fills)
        return ([(k, c, rects) for (k, c, _), rects in zip(fills, picked)],
                [(c, rects) for (c, _), rects in zip(borders, picked[n:])])

    def tile_lines(self) -> tuple[dict, dict]:
        """The edge lines cut at tile borders, bucketed by tile (data, control)."""
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


class Overview:
    """Frames, boxes by fill colour, outlines by colour, and every edge as line segments along
    its route. Drawing it is a handful of QPainter calls (``drawRects``/``drawLines`` loop in
    C++), however many units there are, where painting items costs one Python ``paint`` call
    each; a view of part of the graph draws only the OV_TILE squares it shows. Built from the
    placement and the scene's decorations, not from items (a lazy scene has items only near
    the view). The part that only changes with the layout is shared by the overviews of one
    placement (``static``): a highlight or selection change redoes only the outlines and
    overridden fills."""

    def __init__(self, scene, cached: tuple[list, list] | None = None,
                 static: _Static | None = None):
        st = self.static = static if static is not None else _Static(scene, cached)
        self.frames, self.fills = st.frames, st.fills
        self.lines, self.control_lines, self.rect = st.lines, st.control_lines, st.rect
        self.outlines: dict[int, tuple[QColor, list[QRectF]]] = {}
        #: Fills that override a node's family colour (drift, device), drawn over it.
        self.overrides: dict[int, tuple[QColor, list[QRectF]]] = {}
        #: Frames outlined by a mark or the selection.
        self.frame_outlines: dict[int, tuple[QColor, list[QRectF]]] = {}
        expanded = scene.placement.expanded if scene.placement is not None else ()
        rects = st.rects
        selected = {it.key for it in scene.selectedItems() if hasattr(it, "key")}
        mark_colors = style.MARK_COLORS
        deco = scene.deco
        for key in deco.keys() | selected:
            r = rects.get(key)
            if r is None:
                continue
            d = deco.get(key)
            if d is not None and d[4] is not None and key[0] == "n":
                self.overrides.setdefault(d[4].rgba(), (d[4], []))[1].append(r)
            if key in selected:
                outline = style.SELECTION
            elif d is not None and d[0] and (key[0] == "n" or key[2:] not in expanded):
                outline = style.highlight_color(d[0])
            elif d is not None and d[2]:
                outline = mark_colors[d[2]]
            else:
                continue
            if key[0] == "g" and key[2:] in expanded:
                self.frame_outlines.setdefault(outline.rgba(), (outline, []))[1].append(r)
            else:
                self.outlines.setdefault(outline.rgba(), (outline, []))[1].append(r)

    @staticmethod
    def edge_lines(scene) -> tuple[list[QLineF], list[QLineF]]:
        """Every edge's route as straight segments: (data edges, control edges)."""
        return scene._edge_lines()

    def draw(self, painter, scale: float, exposed: QRectF | None = None) -> None:
        """Draw in scene coordinates (the painter's transform maps them); with ``exposed``,
        only what lies in that scene rectangle."""
        st = self.static
        px = 1.0 / max(scale, 1e-6)  # one device pixel in scene units
        if exposed is not None:
            exposed = exposed.intersected(self.rect.adjusted(-40, -40, 40, 40))
            if exposed.isEmpty():
                return
            # most of the graph in view: everything at once is cheaper than the buckets
            if exposed.width() * exposed.height() > 0.3 * self.rect.width() * self.rect.height():
                exposed = None
        image = st.image(scale)
        if image is not None:  # far out on a big graph: the picture drawn once, scaled
            img, s = image
            painter.setRenderHint(QPainter.SmoothPixmapTransform, True)
            painter.drawImage(QRectF(self.rect.x(), self.rect.y(), img.width() / s,
                                     img.height() / s), img)
        else:
            st.draw(painter, scale, exposed)
        painter.setRenderHint(QPainter.Antialiasing, False)
        painter.setBrush(_NO_BRUSH)
        pen = QPen(style.FRAME_BORDER, 0)  # cosmetic
        for color, rects in self.frame_outlines.values():
            pen.setColor(color)
            painter.setPen(pen)
            painter.drawRects(rects)
        painter.setPen(Qt.NoPen)
        for color, rects in self.overrides.values():
            painter.setBrush(color)
            painter.drawRects(rects)
        painter.setBrush(_NO_BRUSH)
        for color, rects in self.outlines.values():
            painter.setPen(QPen(color, 2.5 * px))
            painter.drawRects([r.adjusted(-2 * px, -2 * px, 2 * px, 2 * px) for r in rects])


def _by_area(f: tuple) -> float:
    """Frames outer first: by area, largest first (a frame holds those inside it)."""
    return -f[0].width() * f[0].height()


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
    """Lines cut where they cross tile borders, each piece in the tile it lies in."""
    out: dict[tuple, list[QLineF]] = {}
    f = math.floor
    t = OV_TILE
    for ln in lines:
        x0, y0, x1, y1 = ln.x1(), ln.y1(), ln.x2(), ln.y2()
        i0, j0, i1, j1 = f(x0 / t), f(y0 / t), f(x1 / t), f(y1 / t)
        if i0 == i1 and j0 == j1:
            lst = out.get((i0, j0))
            if lst is None:
                out[(i0, j0)] = [ln]
            else:
                lst.append(ln)
            continue
        dx, dy = x1 - x0, y1 - y0
        cuts = [0.0, 1.0]
        cuts += [(i * t - x0) / dx for i in range(min(i0, i1) + 1, max(i0, i1) + 1)]
        cuts += [(j * t - y0) / dy for j in range(min(j0, j1) + 1, max(j0, j1) + 1)]
        cuts.sort()
        for a, b in zip(cuts, cuts[1:]):  # noqa: RUF007 - pairs of a short sorted list
            if b - a < 1e-9:
                continue
            m = (a + b) / 2
            out.setdefault((f((x0 + dx * m) / t), f((y0 + dy * m) / t)), []).append(
                QLineF(x0 + dx * a, y0 + dy * a, x0 + dx * b, y0 + dy * b))
    return out
