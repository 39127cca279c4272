"""Layered layout of the visible (collapsed) graph, group by group (Qt-free).

The layout is *compound*, like TensorBoard's: each expanded group (and the top level) is laid out
on its own as a small layered graph whose vertices are its direct children — nodes, collapsed
groups, and expanded groups as boxes of their already-computed size. Results are cached per group,
so expanding one group lays out only that group and re-places its ancestors, and only what is
visible is ever laid out.

Engine choice. Each level uses ``igraph.Graph.layout_sugiyama`` (C: Eades–Lin–Smyth feedback arc
set, longest-path layering, barycentre crossing reduction) for the layer of every vertex and the
order inside a layer. Measured here on flat graphs (every node one vertex, 2 shared cores):
TF1 example 157 nodes 0.009 s, MobileNetV2 1,053 nodes 0.15 s, ResNet50 1,831 nodes 0.27 s.
Pure-Python layered layouts (grandalf) are about ten times slower on a 900-node graph, and
networkx has no layered layout. igraph's coordinates assume unit-width vertices, so the final
positions are ours: layers are stacked with their tallest member's height, and inside a layer the
vertices keep igraph's order and are packed around igraph's x (scaled) with their real widths,
by a left-to-right then right-to-left sweep (averaged) that removes overlaps.

Left-to-right mode lays out with widths and heights swapped and transposes the result.

Output (:class:`Placement`): absolute top-left boxes per unit key (``n:…``/``g:…``) and the
expanded groups' frames, ready for a scene to draw.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from sys import intern
from typing import Callable

from .grouping import GroupTree, VisibleEdge

#: Spacing in scene units.
LAYER_GAP = 46.0
NODE_GAP = 22.0
FRAME_PAD = 14.0
FRAME_HEADER = 26.0
#: Containers with more isolated vertices than this get them in a grid under the rest.
ISOLATED_GRID_MIN = 8


@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass
class Placement:
    """Where everything visible goes. ``boxes`` holds nodes, collapsed and expanded groups."""
    boxes: dict[str, Box] = field(default_factory=dict)
    expanded: frozenset = frozenset()
    edges: list[VisibleEdge] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0
    horizontal: bool = False
    seconds: float = 0.0
    #: (unit a, unit b) of one container → absolute bend points of the edge between them.
    routes: dict = field(default_factory=dict)
    #: Where edges cross a group frame: "in:g:…"/"out:g:…" → absolute point.
    ports: dict = field(default_factory=dict)
    #: Container-level pairs whose long edge was left unrouted.
    unrouted: set = field(default_factory=set)
    #: What changed from the placement drawn before this one (see :func:`placement_diff`):
    #: a weak reference to that placement and the :class:`PlacementDiff`, or None. Undo and
    #: redo go back and forth between two placements: either one's diff serves both ways.
    base: object = None
    diff: "PlacementDiff | None" = None
    _by_src: dict | None = field(default=None, repr=False, compare=False)

    def edges_by_src(self) -> dict[str, list[VisibleEdge]]:
        """The visible edges by producer (made once: an update after an edit looks up the
        edges of a few producers)."""
        by = self._by_src
        if by is None:
            by = {}
            for e in self.edges:
                lst = by.get(e.src)
                if lst is None:
                    by[e.src] = [e]
                else:
                    lst.append(e)
            self._by_src = by
        return by

    def diff_to(self, other: "Placement") -> "PlacementDiff | None":
        """The recorded difference from ``other`` to this placement (either one laid out
        right after the other: then its diff, turned round when it was ``other``), or None."""
        if self.diff is not None and self.base is not None and self.base() is other:
            return self.diff
        if other.diff is not None and other.base is not None and other.base() is self:
            return other.diff.reversed()
        return None


@dataclass
class PlacementDiff:
    """Two placements of the same expansion state compared: the unit keys whose box or look
    (op, label, badges; a group's label, size, ops, signature, repeats) differ, or that only
    one of them has, and the (src, dst) keys of the visible edges that differ (ends, route,
    kind, count, label) or that only one has. The relation is symmetric."""
    units: frozenset
    edges: frozenset
    #: Blocks that moved as a whole, from the base placement to this one: (dx, dy) → (units,
    #: producers). Every unit of ``units`` (all in ``self.units``) has the same size and look
    #: and moved by exactly (dx, dy); every visible edge of a producer of ``producers`` (in
    #: both placements) goes to one of ``units``, draws the same but for its route, which
    #: moved by exactly (dx, dy). Any other producer with an edge into, out of or inside a
    #: block has an edge in ``edges`` (one into or out of a block passes a port of a frame
    #: that moved), or one with an end in ``units`` and in no block (a box that moved by not
    #: exactly the offset: float rounding). What follows a box deleted in the middle of a column is such a block (an
    #: incremental layout finds them; :func:`placement_diff` does not: empty). A scene moves
    #: those units and edges by the offset without looking at them one by one.
    shifts: dict = field(default_factory=dict, compare=False)
    _reversed: "PlacementDiff | None" = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.units) + len(self.edges)

    def reversed(self) -> "PlacementDiff":
        """The same difference seen from the other placement (the blocks moved back); made
        once (not linked back: no reference cycle, which a frozen collector would keep)."""
        r = self._reversed
        if r is None:
            r = self._reversed = PlacementDiff(
                self.units, self.edges, {(-dx + 0.0, -dy + 0.0): v
                                         for (dx, dy), v in self.shifts.items()})
        return r


@dataclass
class _Local:
    """A container's layout relative to its own origin (content area), plus its total size."""
    pos: dict[str, tuple[float, float]]
    w: float
    h: float
    subs: dict = field(default_factory=dict)   # expanded child unit → its _Local
    routes: dict = field(default_factory=dict)  # (child a, child b) → bend points
    unrouted: set = field(default_factory=set)  # long (child a, child b) left without a route
    state: tuple = ()                          # what the layout was computed for
    wrapped: bool = False                      # cut into side-by-side columns
    #: When wrapped: the units of each column, left to right, and the tallest column's height
    #: (what a later layout of the same container keeps when one child opens or closes).
    columns: tuple = ()
    column_h: float = 0.0
    #: Each child's (and port's) size in layout axes, as laid out (what placing it reads).
    sizes: dict = field(default_factory=dict)


@dataclass
class _Memo:
    """What an engine's last layout was made of, for the next one to start from (see
    :meth:`LayoutEngine.layout`): plain data, never changed once made (the next layout copies
    what it changes)."""
    tree: GroupTree
    expanded: frozenset
    placement: "Placement"
    edges: list
    #: (src, dst) → (its VisibleEdge, its segments: ((container, (unit a, unit b)), …)).
    by_key: dict
    #: container → {segment: how many visible edges run along it}.
    by: dict
    #: container → the (src, dst) keys of the visible edges with a segment in it (each once).
    edges_in: dict
    #: container → (its _Local, x, y where it was placed).
    placed: dict


SizeFn = Callable[[str], tuple[float, float]]


class LayoutEngine:
    """Compound layered layout with a per-group cache.

    ``size_of(unit_key)`` gives the (width, height) of a node or *collapsed* group box; it must be
    thread-safe (pure arithmetic), since layouts run in a worker for big graphs.
    Cached layouts are checked against the expansion state automatically; build a new engine
    when the graph, the sizes or the direction change.
    """

    def __init__(self, tree: GroupTree, size_of: SizeFn, horizontal: bool = False,
                 reuse: "LayoutEngine | None" = None,
                 wrap_in: tuple[float, float] | None = None):
        self.tree = tree
        self.size_of = size_of
        self.horizontal = horizontal
        #: The window's (width, height) at 100%: a long narrow top level wraps into columns
        #: to fit it (top-to-bottom layouts only; see :func:`layered`).
        self.wrap_in = None if horizontal or not wrap_in else \
            (float(wrap_in[0]), float(wrap_in[1]))
        # after an edit, groups whose children, sizes and inner edges did not change keep
        # their layout (checked per container), so a small change relayouts little
        self._cache: dict[str, _Local] = (dict(reuse._cache) if reuse is not None
                                          and reuse.horizontal == horizontal else {})
        #: The last layout's inputs and results: a new one after an edit starts from it and
        #: lays out and places again only what the edit changed (see _layout_incremental).
        self._memo: _Memo | None = (reuse._memo if reuse is not None
                                    and reuse.horizontal == horizontal
                                    and reuse.wrap_in == self.wrap_in else None)
        #: How the last layout was made: "full" or "incremental" (tests and benchmarks read it).
        self.last_mode = ""

    def invalidate(self, key: str | None = None) -> None:
        """Forget the layout of group ``key`` and of every group around it (None: everything)."""
        self._memo = None
        if key is None:
            self._cache.clear()
            return
        while key:
            self._cache.pop(key, None)
            grp = self.tree.groups.get(key)
            key = grp.parent if grp else ""
        self._cache.pop("", None)

    # ------------------------------------------------------------------ main entry
    def layout(self, expanded: set[str] | frozenset, check=None,
               edges: list[VisibleEdge] | None = None) -> Placement:
        """Lay out the visible graph for this expansion state (``check()`` may raise to cancel).

        ``edges`` is ``tree.visible_graph(expanded)`` when the caller computed it already (it
        reads the GraphDef, so a GUI computes it on its own thread before going to a worker).

        After an edit (this engine made with ``reuse=`` the one that laid out the state before),
        only the containers the edit changed, and those around them, are laid out again, and
        only the blocks that moved are placed again (see :meth:`_layout_incremental`): the
        placement is the one a walk over every container would make, and it carries its
        :class:`PlacementDiff` to the one laid out before (``base``/``diff``).
        """
        import time
        t0 = time.perf_counter()
        expanded = frozenset(k for k in expanded if k in self.tree.groups)
        if edges is None:
            edges = self.tree.visible_graph(expanded)
        memo, placement = self._memo, None
        if memo is not None and edges is not memo.edges \
                and len(memo.placement.boxes) >= INCREMENTAL_MIN_UNITS:
            placement = self._layout_incremental(memo, expanded, edges, check)
        self.last_mode = "incremental" if placement is not None else "full"
        if placement is None:
            placement = self._layout_full(expanded, edges, check)
        placement.seconds = time.perf_counter() - t0
        return placement

    def _layout_full(self, expanded: frozenset, edges: list[VisibleEdge], check) -> Placement:
        """Every container looked at (each one's cached layout kept while its inputs are the
        same) and placed."""
        by_key, by, edges_in, segments = self._split_edges(edges)
        root = self._container("", expanded, check, by)
        placement = Placement(expanded=expanded, edges=edges, horizontal=self.horizontal)
        placed: dict = {}
        self._place("", root, 0.0, 0.0, expanded, placement, placed)
        for e, segs in zip(edges, segments):
            self._route(e, segs, placement)
        placement.width, placement.height = self._xy(root.w, root.h)
        # (edges not keyed by their ends, never made by GroupTree.visible_graph: no memo; a
        # small drawing: laid out in full next time, see INCREMENTAL_MIN_UNITS)
        self._memo = _Memo(self.tree, expanded, placement, edges, by_key, by, edges_in,
                           placed) if len(by_key) == len(edges) \
            and len(placement.boxes) >= INCREMENTAL_MIN_UNITS else None
        return placement

    # ------------------------------------------------------------------ incremental
    def _layout_incremental(self, memo: _Memo, expanded: frozenset, edges: list[VisibleEdge],
                            check) -> Placement | None:
        """The layout of ``expanded`` on this engine's tree, made from ``memo`` (the last
        layout, of another tree or expansion): None when that is not possible (then a full one
        is made).

        What may differ is found by comparing the two trees (children lists, what each unit
        shows, where it sits in the group tree: plain dict and list comparisons) and the visible
        edges by their ends. The containers holding a difference, and those around them, are
        looked at again (each one's layout kept while its inputs are the same, as in a full
        layout); every other container keeps its layout object, which ``size_of`` never sees
        again (it must depend only on what a unit shows: ``_node_look``/``_group_look``). Then
        only the containers whose layout or place changed are placed again, with everything
        inside them (what follows a grown block moves as a block), and only the edges running
        through them are routed again."""
        old, new = memo.tree, self.tree
        if not (getattr(old, "is_complete", True) and getattr(new, "is_complete", True)):
            return None  # (a deferred tree's badges are made on first read: not here)
        if abs(len(new.op_of) - len(old.op_of)) * 10 > len(old.op_of):
            return None  # a step that changed much (a pass): comparing costs more than it saves
        looks_n, looks_g = _look_changes(old, new)
        moved = _path_changes(old, new)
        dirty: set[str] = set()
        if old.root_children != new.root_children:
            # (and the model-wide wrapper's room depends on how many sit beside it)
            dirty.add("")
            dirty.update(u[2:] for u in new.root_children if u.startswith("g:"))
        old_groups, groups = old.groups, new.groups
        for k, g in groups.items():
            o = old_groups.get(k)
            if o is None or o.children != g.children or o.parent != g.parent:
                dirty.add(k)
                dirty.add(g.parent)
        parent_of = new.parent_of
        for n in looks_n:
            c = parent_of.get(n)
            if c is not None:
                dirty.add(c)
        for k in looks_g:  # (an open group's frame is as big as its layout: not its look)
            g = groups.get(k)
            if g is not None and k not in expanded:
                dirty.add(g.parent)
        toggled = expanded ^ memo.expanded
        for k in toggled:
            g = groups.get(k)
            if g is not None:
                dirty.add(k)
                dirty.add(g.parent)

        # the visible edges: those with the same ends (whose ends sit where they sat) keep
        # their segments and, unless a container they run through is placed again, routes
        old_key = memo.by_key
        by_key: dict = {}
        fresh: list[VisibleEdge] = []
        changed_edges: set = set()
        # producers with an edge that came, went or draws otherwise (not one of a block)
        unlike: set[str] = set()
        for e in edges:
            key = (e.src, e.dst)
            o = old_key.get(key)
            if o is None or (moved and (e.src in moved or e.dst in moved)):
                fresh.append(e)
                unlike.add(e.src)
                continue
            oe = o[0]
            by_key[key] = (e, o[1])
            e.route, e.unrouted = oe.route, oe.unrouted
            if oe.control != e.control or oe.count != e.count or oe.label != e.label:
                changed_edges.add(key)
                unlike.add(e.src)
        by, edges_in = dict(memo.by), dict(memo.edges_in)
        own_by: set = set()

        def count(key, segs, sign: int) -> None:
            for c, seg in segs:
                if c not in own_by:  # copied on first write: the memo stays as it was
                    by[c] = dict(by.get(c, ()))
                    own_by.add(c)
                    edges_in[c] = list(edges_in.get(c, ()))
                d = by[c]
                n = d.get(seg, 0) + sign
                if n > 0:
                    if n == 1 and sign > 0:
                        dirty.add(c)  # a new segment in this container
                    d[seg] = n
                else:
                    d.pop(seg, None)
                    dirty.add(c)
                if sign > 0:
                    edges_in[c].append(key)  # (an edge runs through a container once)
                elif key in edges_in[c]:
                    edges_in[c].remove(key)

        gone = old_key.keys() - by_key.keys()
        for key in gone:
            count(key, old_key[key][1], -1)
            unlike.add(key[0])
        path = self._path_fn()
        rerouted: set = set()
        for e in fresh:
            key = (e.src, e.dst)
            segs = _segments_of(path(e.src), path(e.dst))
            by_key[key] = (e, segs)
            count(key, segs, 1)
            rerouted.add(key)
        if len(by_key) != len(edges):
            return None  # not keyed by their ends
        if len(dirty) > max(64, len(memo.placed) // 3):
            return None  # most of it changed: a full layout costs no more

        visit: set[str] = set()
        for c in dirty:
            while c not in visit:
                if c and c not in groups:
                    break
                visit.add(c)
                if not c:
                    break
                c = groups[c].parent
        root = self._container("", expanded, check, by, visit, memo.placed)
        if check:
            check()

        prev = memo.placement
        out = Placement(expanded=expanded, edges=edges, horizontal=self.horizontal)
        out.boxes, out.routes, out.ports = dict(prev.boxes), dict(prev.routes), dict(prev.ports)
        placed = dict(memo.placed)
        ctx = _Replacing(prev.boxes)
        self._place_again("", root, 0.0, 0.0, expanded, out, memo.placed, placed, ctx)
        # what was placed before and not now: groups taken away or closed, with all inside
        todo = [c for c in ctx.subs_before if c not in ctx.placed and c not in ctx.kept]
        while todo:
            c = todo.pop()
            if c in ctx.placed or c in ctx.kept or c not in memo.placed:
                continue
            placed.pop(c, None)
            ctx.forget(memo.placed[c][0])
            ctx.kept.add(c)  # (forgotten once)
            todo.extend(u[2:] for u in memo.placed[c][0].subs)
        for k in ctx.stale_boxes - ctx.boxes_now:
            out.boxes.pop(k, None)
            ctx.changed.add(k)
        for k in ctx.stale_routes - ctx.routes_now:
            out.routes.pop(k, None)
        for k in ctx.stale_ports - ctx.ports_now:
            out.ports.pop(k, None)
        out.unrouted = (prev.unrouted - ctx.stale_unrouted) | ctx.unrouted_now
        for c in ctx.placed:
            rerouted.update(edges_in.get(c, ()))
        for key in rerouted:
            e, segs = by_key[key]
            self._route(e, segs, out)
            o = old_key.get(key)
            if o is None or o[0].route != e.route or o[0].unrouted != e.unrouted \
                    or o[0].control != e.control or o[0].count != e.count \
                    or o[0].label != e.label:
                changed_edges.add(key)
                if o is not None and o[0].unrouted != e.unrouted:
                    unlike.add(key[0])
        changed_edges |= gone - by_key.keys()
        out.width, out.height = self._xy(root.w, root.h)

        # what differs from the placement before (as placement_diff would find it)
        units = ctx.changed
        units.update("g:" + k for k in toggled)
        both = prev.boxes.keys() & out.boxes.keys() if (looks_n or looks_g) else ()
        if both:
            units.update(u for u in ("n:" + n for n in looks_n) if u in both)
            units.update(u for u in ("g:" + k for k in looks_g) if u in both)
        import weakref
        out.diff = PlacementDiff(frozenset(units), frozenset(changed_edges),
                                 self._shifts(ctx, out, old_key, unlike, looks_n, looks_g))
        out.base = weakref.ref(prev)
        self._memo = _Memo(new, expanded, out, edges, by_key, by, edges_in, placed)
        return out

    def _place_again(self, key: str, local: _Local, ox: float, oy: float, expanded: frozenset,
                     out: Placement, before: dict, placed: dict, ctx: "_Replacing"):
        """Place container ``key`` and what is inside it again, unless it is the same layout
        at the same place as before (then everything in it is where it was). The same layout
        at another place starts a block (``ctx.shift``): returns its offset (x, y), else None."""
        old = before.get(key)
        if old is not None and old[0] is local and old[1] == ox and old[2] == oy:
            ctx.kept.add(key)
            return None
        if old is not None:
            ctx.forget(old[0])
        top = None
        if old is not None and old[0] is local and ctx.shift is None:
            # the same layout at another place: what is inside moves with it (a block)
            top = ctx.shift = self._xy(ox - old[1], oy - old[2])
            ctx.shift_units.setdefault(top, set())
        placed[key] = (local, ox, oy)
        ctx.placed.add(key)
        cx, cy = self._origin(key, ox, oy)
        horizontal = self.horizontal
        ctx.unrouted_now |= local.unrouted
        self._route_into(out.routes, local, cx, cy)
        ctx.routes_now.update(local.routes)
        boxes, old_boxes, changed = out.boxes, ctx.old_boxes, ctx.changed
        sizes, subs = local.sizes, local.subs
        shift = ctx.shift
        block = ctx.shift_units[shift] if shift is not None else None
        for unit, (a, b) in local.pos.items():
            ua, ub = cx + a, cy + b
            if _is_port(unit):
                edge = -FRAME_PAD / 2 if unit.startswith(PORT_IN) else FRAME_PAD / 2
                pa, pb = ua + DUMMY_W / 2, ub + edge
                out.ports[unit] = (pb, pa) if horizontal else (pa, pb)
                ctx.ports_now.add(unit)
                continue
            sub = None
            if unit.startswith("g:") and unit[2:] in expanded:
                sub = self._place_again(unit[2:], subs[unit], ua, ub, expanded, out, before,
                                        placed, ctx)
            w, h = sizes[unit]
            x, y, w, h = (ub, ua, h, w) if horizontal else (ua, ub, w, h)
            ob = old_boxes.get(unit)
            if ob is None or ob.x != x or ob.y != y or ob.w != w or ob.h != h:
                boxes[unit] = Box(x, y, w, h)
                changed.add(unit)
                d = shift if sub is None else sub
                if d is not None and ob is not None and ob.w == w and ob.h == h \
                        and ob.x + d[0] == x and ob.y + d[1] == y \
                        and x - d[0] == ob.x and y - d[1] == ob.y:
                    (block if sub is None else ctx.shift_units[sub]).add(unit)
            else:
                boxes[unit] = ob
            ctx.boxes_now.add(unit)
        if top is not None:
            ctx.shift = None
        return top

    @staticmethod
    def _shifts(ctx: "_Replacing", out: Placement, old_key: dict, unlike: set,
                looks_n: set, looks_g: set) -> dict:
        """The blocks of :attr:`PlacementDiff.shifts`: per offset, the units of the containers
        placed again with the same layout elsewhere that moved by exactly it (not those whose
        look changed), and the producers among them whose every edge (the same before) goes to
        one of them and whose route moved by exactly the offset. Checked here, once per new
        layout in the worker, so that undo and redo need not look at them one by one."""
        shifts: dict = {}
        if not ctx.shift_units:
            return shifts
        by_src = out.edges_by_src()
        looked = {"n:" + n for n in looks_n} | {"g:" + k for k in looks_g}
        for d, units in ctx.shift_units.items():
            units -= looked
            if not units:
                continue
            dx, dy = d
            srcs = set()
            for src in units:
                lst = by_src.get(src)
                if not lst or src in unlike:
                    continue
                for e in lst:
                    if e.dst not in units:
                        break
                    o = old_key[(src, e.dst)][0]
                    r, q = o.route, e.route
                    if o.unrouted != e.unrouted or len(r) != len(q) or not all(
                            a[0] + dx == b[0] and a[1] + dy == b[1]
                            and b[0] - dx == a[0] and b[1] - dy == a[1]  # (and back)
                            for a, b in zip(r, q)):
                        break
                else:
                    srcs.add(src)
            shifts[d] = (frozenset(units), frozenset(srcs))
        return shifts

    # ------------------------------------------------------------------ internals
    def _xy(self, a: float, b: float) -> tuple[float, float]:
        return (b, a) if self.horizontal else (a, b)

    def _origin(self, key: str, ox: float, oy: float) -> tuple[float, float]:
        """Where a container's content starts (a frame: inside its padding and header)."""
        if key and self.horizontal:
            return ox + FRAME_PAD + FRAME_HEADER, oy + FRAME_PAD
        if key:
            return ox + FRAME_PAD, oy + FRAME_PAD + FRAME_HEADER
        return ox, oy

    @staticmethod
    def _route(e: VisibleEdge, segs: tuple, placement: Placement) -> None:
        ports, routes = placement.ports, placement.routes
        route: list[tuple[float, float]] = []
        for _, (a, b) in segs:
            if a in ports:   # entering a frame at its port
                route.append(ports[a])
            route.extend(routes.get((a, b), ()))
            if b in ports:   # leaving a frame at its port
                route.append(ports[b])
        e.route = route
        unrouted = placement.unrouted
        e.unrouted = any(seg in unrouted for _, seg in segs)

    def _path_fn(self):
        """unit → the unit keys from the top level down to it (memoised for one layout)."""
        tree = self.tree
        memo: dict[str, tuple[str, ...]] = {}

        def path(unit: str) -> tuple[str, ...]:
            p = memo.get(unit)
            if p is None:
                around = (tree.ancestors(unit[2:]) if unit.startswith("n:")
                          else tree.ancestors_of_group(unit[2:]))
                p = memo[unit] = tuple("g:" + k for k in around) + (unit,)
            return p
        return path

    def _split_edges(self, edges: list[VisibleEdge]):
        """Assign every visible edge to the innermost container holding both ends, and the
        stretches inside the frames around its ends to those frames (via their ports).

        Returns (src, dst) → (edge, segments), container → {segment: count}, container →
        the keys of the edges through it, and each edge's segments in order."""
        path = self._path_fn()
        by_key: dict = {}
        by: dict[str, dict] = {}
        edges_in: dict[str, list] = {}
        segments = []
        for e in edges:
            key = (e.src, e.dst)
            segs = _segments_of(path(e.src), path(e.dst))
            segments.append(segs)
            by_key[key] = (e, segs)
            for c, seg in segs:
                d = by.get(c)
                if d is None:
                    by[c] = {seg: 1}
                    edges_in[c] = [key]
                else:
                    d[seg] = d.get(seg, 0) + 1
                    edges_in[c].append(key)
        return by_key, by, edges_in, segments

    def _container(self, key: str, expanded: frozenset, check, by_container,
                   visit: set | None = None, before: dict | None = None) -> _Local:
        """Layout of one container (top level "" or an expanded group), children first.

        A cached layout is reused while the expansion state inside it is unchanged (each expanded
        child's own layout object is the same), so toggling one group re-lays out only it and
        the containers around it. With ``visit`` (an incremental layout), a container not in it
        keeps its layout of the last placement (``before``) without being looked at.
        """
        if visit is not None and key not in visit:
            old = before.get(key)
            if old is not None:
                self._cache[key] = old[0]  # (a cancelled layout may have left another)
                return old[0]
        tree = self.tree
        kids = tree.children(key)
        subs = {}
        for unit in kids:
            if unit.startswith("g:") and unit[2:] in expanded:
                subs[unit] = self._container(unit[2:], expanded, check, by_container, visit,
                                             before)
        sizes: dict[str, tuple[float, float]] = {}
        for unit in kids:
            sub = subs.get(unit)
            if sub is not None:
                sizes[unit] = (sub.w, sub.h)
            else:
                w, h = self.size_of(unit)
                sizes[unit] = (h, w) if self.horizontal else (w, h)
        edges = sorted(by_container.get(key, ()))
        ports = sorted({u for e in edges for u in e if _is_port(u)})
        for port in ports:
            sizes[port] = (DUMMY_W, 0.0)
        kids = list(kids) + ports
        wrap_in = self.wrap_in if not key else None
        if key and self.wrap_in and tree.groups[key].parent == "" \
                and len(tree.children("")) <= WRAPPER_SIBLINGS:
            # the model-wide wrapper group (opened by default): its chain wraps inside the
            # frame, which sits below the inputs
            vw, vh = self.wrap_in
            wrap_in = (vw - 2 * FRAME_PAD, vh - FRAME_HEADER - 2 * FRAME_PAD - WRAPPER_ABOVE)
        state = (tuple(kids), tuple(sizes.values()), tuple(edges),
                 tuple((u, id(sub)) for u, sub in subs.items()), wrap_in)
        cached = self._cache.get(key)
        if cached is not None and cached.state == state:
            return cached
        if check:
            check()
        keep = None
        if cached is not None and cached.wrapped and subs and cached.state[0] == state[0] \
                and cached.state[2] == state[2] and cached.state[4] == state[4]:
            # only children's sizes changed (a group inside opened or closed): the columns keep
            # their cuts up to the changed child (see _wrap_columns). With nothing open any more
            # the columns are cut afresh, as in the first view.
            changed = {u for u, a, b in zip(kids, cached.state[1], state[1]) if a != b}
            if changed and changed <= set(subs) | set(cached.subs):  # opened/closed ones
                keep = (cached.columns, cached.column_h, changed)
        local = layered(kids, edges, sizes, wrap_in=wrap_in, keep=keep)
        for unit, sub in subs.items():
            if sub.wrapped and not self.horizontal:
                _inputs_over_first_column(local, unit, sizes)
        local.subs = subs
        local.sizes = sizes
        local.state = state
        if key:  # the frame: padding all round, a header on top (on screen)
            local.w += 2 * FRAME_PAD + (FRAME_HEADER if self.horizontal else 0.0)
            local.h += 2 * FRAME_PAD + (0.0 if self.horizontal else FRAME_HEADER)
        self._cache[key] = local
        return local

    def _route_into(self, routes: dict, local: _Local, cx: float, cy: float) -> None:
        """``local``'s edge routes, moved to its origin (cx, cy), into ``routes``."""
        if self.horizontal:
            for pair, pts in local.routes.items():
                routes[pair] = [(cy + b, cx + a) for a, b in pts]
        else:
            for pair, pts in local.routes.items():
                routes[pair] = [(cx + a, cy + b) for a, b in pts]

    def _place(self, key: str, local: _Local, ox: float, oy: float,
               expanded: frozenset, out: Placement, placed: dict) -> None:
        placed[key] = (local, ox, oy)
        cx, cy = self._origin(key, ox, oy)
        horizontal = self.horizontal
        out.unrouted |= local.unrouted
        self._route_into(out.routes, local, cx, cy)
        boxes, sizes = out.boxes, local.sizes
        for unit, (a, b) in local.pos.items():
            ua, ub = cx + a, cy + b  # layout axes: a across layers' order, b along ranks
            if _is_port(unit):
                # a frame's edge: entry ports sit on the top padding, exits on the bottom one
                edge = -FRAME_PAD / 2 if unit.startswith(PORT_IN) else FRAME_PAD / 2
                pa, pb = ua + DUMMY_W / 2, ub + edge
                out.ports[unit] = (pb, pa) if horizontal else (pa, pb)
                continue
            if unit.startswith("g:") and unit[2:] in expanded:
                self._place(unit[2:], local.subs[unit], ua, ub, expanded, out, placed)
            w, h = sizes[unit]  # (layout axes, as laid out)
            if horizontal:
                boxes[unit] = Box(ub, ua, h, w)
            else:
                boxes[unit] = Box(ua, ub, w, h)


#: Below this many boxes drawn, a full layout (which keeps every container whose inputs are the
#: same) costs less than comparing the two trees for an incremental one (the default view of a
#: 107k-node graph: 0.04 s full; the comparison 0.8 s after a pass that changed 90k nodes).
INCREMENTAL_MIN_UNITS = 3000


class _Replacing:
    """Book-keeping of an incremental placement (see LayoutEngine._place_again)."""

    def __init__(self, old_boxes: dict):
        self.old_boxes = old_boxes
        self.changed: set[str] = set()        # units whose box is new, moved, resized or gone
        self.placed: set[str] = set()         # containers placed again
        self.kept: set[str] = set()           # containers left where they were
        self.subs_before: set[str] = set()    # expanded groups inside a container placed again
        self.stale_boxes: set[str] = set()
        self.stale_routes: set = set()
        self.stale_ports: set[str] = set()
        self.stale_unrouted: set = set()
        self.boxes_now: set[str] = set()
        self.routes_now: set = set()
        self.ports_now: set[str] = set()
        self.unrouted_now: set = set()
        #: The offset of the block being placed (a container placed again with the same
        #: layout at another place), and the units of each block that moved by exactly it.
        self.shift: tuple | None = None
        self.shift_units: dict[tuple, set[str]] = {}

    def forget(self, local: _Local) -> None:
        """What ``local`` placed goes, unless placed again."""
        self.stale_routes.update(local.routes)
        self.stale_unrouted |= local.unrouted
        for unit in local.pos:
            if _is_port(unit):
                self.stale_ports.add(unit)
            else:
                self.stale_boxes.add(unit)
        self.subs_before.update(u[2:] for u in local.subs)


def _segments_of(pa: tuple, pb: tuple) -> tuple:
    """An edge's stretches, given the paths (top level down) of its two ends: from the
    producer out through the frames around it ("out:" ports), across the innermost container
    holding both ends, and in through the frames around the consumer ("in:" ports); each as
    (container, (unit a, unit b))."""
    k = 0
    m = min(len(pa), len(pb)) - 1
    while k < m and pa[k] == pb[k]:
        k += 1
    container = pa[k - 1][2:] if k else ""
    segs = []
    for j in range(len(pa) - 2, k - 1, -1):  # (port names interned: one per frame)
        segs.append((pa[j][2:], (pa[j + 1], intern(PORT_OUT + pa[j]))))
    segs.append((container, (pa[k], pb[k])))
    for j in range(k, len(pb) - 1):
        segs.append((pb[j][2:], (intern(PORT_IN + pb[j]), pb[j + 1])))
    return tuple(segs)


def _look_changes(old: GroupTree, new: GroupTree) -> tuple[set[str], set[str]]:
    """Nodes (names) and groups (keys) that show something else in ``new`` than in ``old``
    (``_node_look``/``_group_look``), or that only one of them has."""
    nodes: set[str] = set()
    if old is new:
        return nodes, set()
    if old.op_of is not new.op_of:
        nodes.update(k for k, _ in old.op_of.items() ^ new.op_of.items())
    if old.node_label is not new.node_label:
        nodes.update(k for k, _ in old.node_label.items() ^ new.node_label.items())
    ob, nb = old.badges, new.badges
    for n, bl in nb.items():
        ol = ob.get(n)
        if ol is bl:
            continue
        if not ol or len(ol) != len(bl):
            if ol or bl:
                nodes.add(n)
            continue
        for a, b in zip(ol, bl):
            if a.label != b.label:
                nodes.add(n)
                break
    for n, ol in ob.items():
        if ol and n not in nb:
            nodes.add(n)
    groups: set[str] = set()
    og, ng = old.groups, new.groups
    same_ops = dict.__eq__
    for k, g in ng.items():
        o = og.get(k)
        if o is None or o.label != g.label or o.size != g.size or o.repeats != g.repeats \
                or o.signature != g.signature or o.parent != g.parent \
                or o.virtual != g.virtual or not same_ops(o.ops, g.ops):
            groups.add(k)
    groups.update(og.keys() - ng.keys())
    return nodes, groups


def _path_changes(old: GroupTree, new: GroupTree) -> set[str]:
    """Unit keys whose place in the group tree (the groups around them) differs."""
    out: set[str] = set()
    if old is new:
        return out
    if old._ancestors is not new._ancestors:
        out.update("n:" + k for k, _ in old._ancestors.items() ^ new._ancestors.items())
    og, ng = old.groups, new.groups
    roots = {k for k, g in ng.items() if k not in og or og[k].parent != g.parent}
    if roots:
        memo: dict[str, bool] = {"": False}

        def moved(k: str) -> bool:
            m = memo.get(k)
            if m is None:
                m = memo[k] = k in roots or moved(ng[k].parent)
            return m
        out.update("g:" + k for k in ng if moved(k))
    return out


DUMMY_W = 10.0
#: Edges cross the frame of an expanded group at a port: a zero-height vertex pinned to the
#: group's first ("in:") or last ("out:") layer, so the layout routes them between the boxes
#: inside the frame instead of straight through them.
PORT_IN = "in:"
#: Long edges of a vertex feeding at least this many others are not routed (see _layering).
FANOUT_UNROUTED = 6
PORT_OUT = "out:"


def _is_port(unit: str) -> bool:
    return unit.startswith(PORT_IN) or unit.startswith(PORT_OUT)


def layered(units: list[str], edges: list[tuple[str, str]],
            sizes: dict[str, tuple[float, float]],
            wrap_in: tuple[float, float] | None = None, keep=None) -> _Local:
    """Layered placement of ``units`` with given (width, height) and directed edges.

    Returns top-left positions relative to (0, 0), the bounding size, and for each edge that
    spans several layers its bend points (one per crossed layer, in the gap kept for it).

    ``wrap_in`` (width, height of the window, scene units at 100%): a long narrow drawing that
    would not fit it at :data:`WRAP_BELOW` zoom is cut between layers into side-by-side columns
    (see :func:`_wrap_columns`); ``keep`` = (columns, column height, changed units) of the
    previous wrapped layout of the same units and edges, whose cuts are kept where they can be.
    """
    if not units:
        return _Local({}, 0.0, 0.0)
    index = {u: i for i, u in enumerate(units)}
    pairs = sorted({(index[a], index[b]) for a, b in edges if a in index and b in index and a != b})
    degree = [0] * len(units)
    for a, b in pairs:
        degree[a] += 1
        degree[b] += 1
    isolated = [i for i, d in enumerate(degree) if d == 0]
    if len(isolated) < ISOLATED_GRID_MIN or len(isolated) == len(units):
        isolated = [] if len(isolated) != len(units) or len(units) < ISOLATED_GRID_MIN else isolated
    iso_set = set(isolated)
    core = [i for i in range(len(units)) if i not in iso_set]
    pos: dict[str, tuple[float, float]] = {}
    routes: dict[tuple[str, str], list[tuple[float, float]]] = {}
    unrouted: set[tuple[str, str]] = set()
    width = height = 0.0
    wrapped = None
    columns: list = []
    if core:
        remap = {i: j for j, i in enumerate(core)}
        core_pairs = [(remap[a], remap[b]) for a, b in pairs]
        n = len(core)
        top = frozenset(j for j, i in enumerate(core) if units[i].startswith(PORT_IN))
        bottom = frozenset(j for j, i in enumerate(core) if units[i].startswith(PORT_OUT))
        layers, chains = _layering(n, core_pairs, top, bottom)
        total = n + sum(len(c) for c in chains.values())
        xs = _order(total, layers, chains, core_pairs)
        wh = [sizes[units[i]] for i in core] + [(DUMMY_W, 0.0)] * (total - n)
        # ranks: stack layers with the tallest member's height
        nlayers = max(layers) + 1
        layer_h = [0.0] * nlayers
        for j, layer in enumerate(layers):
            layer_h[layer] = max(layer_h[layer], wh[j][1])
        layer_y = [0.0] * nlayers
        y = 0.0
        for k in range(nlayers):
            layer_y[k] = y
            y += layer_h[k] + LAYER_GAP
        height = y - LAYER_GAP
        # order inside a layer: igraph's; real widths packed around igraph's x, scaled
        real_w = sorted(w for w, _ in wh[:n])
        unit_w = max(40.0, real_w[len(real_w) // 2] * 0.6 + NODE_GAP)
        by_layer: dict[int, list[int]] = {}
        for j, layer in enumerate(layers):
            by_layer.setdefault(layer, []).append(j)

        def gap(a: int, b: int) -> float:
            return NODE_GAP if a < n and b < n else NODE_GAP / 2

        left = [0.0] * total
        for layer, members in by_layer.items():
            members.sort(key=lambda j: xs[j])
            want = [xs[j] * unit_w - wh[j][0] / 2 for j in members]
            fwd = list(want)
            for t in range(1, len(members)):
                fwd[t] = max(fwd[t], fwd[t - 1] + wh[members[t - 1]][0]
                             + gap(members[t - 1], members[t]))
            bwd = list(want)
            for t in range(len(members) - 2, -1, -1):
                bwd[t] = min(bwd[t], bwd[t + 1] - wh[members[t]][0]
                             - gap(members[t], members[t + 1]))
            avg = [(f + b) / 2 for f, b in zip(fwd, bwd)]
            for t in range(1, len(members)):  # averaging can reintroduce overlaps: resweep
                avg[t] = max(avg[t], avg[t - 1] + wh[members[t - 1]][0]
                             + gap(members[t - 1], members[t]))
            for t, j in enumerate(members):
                left[j] = avg[t]
        minx = min(left)
        for j in range(total):
            width = max(width, left[j] - minx + wh[j][0])
        for j, i in enumerate(core):
            lay = layers[j]
            top = layer_y[lay] + (layer_h[lay] - wh[j][1]) / 2
            pos[units[i]] = (left[j] - minx, top)
        for a, b in core_pairs:
            if abs(layers[a] - layers[b]) > 1 and (a, b) not in chains:
                unrouted.add((units[core[a]], units[core[b]]))
        for (a, b), chain in chains.items():
            pts = [(left[d] - minx + DUMMY_W / 2, layer_y[layers[d]] + layer_h[layers[d]] / 2)
                   for d in chain]
            routes[(units[core[a]], units[core[b]])] = pts
        if wrap_in and not isolated:
            wrapped = _wrap_columns(units, core, core_pairs, layers, chains, pos, routes,
                                    unrouted, layer_y, layer_h, wh, width, height, wrap_in,
                                    keep=keep, columns_out=columns)
            if wrapped is not None:
                width, height = wrapped
    if isolated:
        # a grid of unconnected units under the connected part
        y0 = height + (LAYER_GAP if core else 0.0)
        row_w = max(width, 600.0)
        x = 0.0
        row_h = 0.0
        y = y0
        for i in isolated:
            w, h = sizes[units[i]]
            if x > 0 and x + w > row_w:
                x = 0.0
                y += row_h + NODE_GAP
                row_h = 0.0
            pos[units[i]] = (x, y)
            x += w + NODE_GAP
            row_h = max(row_h, h)
            width = max(width, x - NODE_GAP)
        height = y + row_h
    local = _Local(pos, width, height, routes=routes, unrouted=unrouted,
                   wrapped=wrapped is not None)
    if columns:
        local.column_h = columns.pop()
        local.columns = tuple(columns)
    return local


def _inputs_over_first_column(local: _Local, frame: str,
                              sizes: dict[str, tuple[float, float]]) -> None:
    """The units above a frame whose chain wraps into columns (the graph's inputs above the
    model-wide wrapper) move over its first column, where the data goes in and where the
    view starts reading, instead of sitting over the middle of the columns."""
    fx, fy = local.pos[frame]
    above = [u for u, (x, y) in local.pos.items() if u != frame and y + sizes[u][1] <= fy]
    if not above:
        return
    dx = fx + FRAME_PAD - min(local.pos[u][0] for u in above)
    if dx >= 0:
        return
    moved = set(above)
    for u in above:
        x, y = local.pos[u]
        local.pos[u] = (x + dx, y)
    for pair in [p for p in local.routes if p[0] in moved or p[1] in moved]:
        del local.routes[pair]  # short edges into the frame: drawn straight


#: A drawing the window shows below this zoom may wrap into columns; the columns must be at
#: least this much better (zoom to fit) to be used.
WRAP_BELOW = 0.55
WRAP_GAIN = 1.3
WRAP_MIN_LAYERS = 10
#: At most this many edges may cross where the drawing is cut into columns.
WRAP_MAX_CROSSING = 2
COLUMN_GAP = 70.0
#: A top-level group with at most this many siblings is a model-wide wrapper (it wraps too);
#: the room its inputs above it take.
WRAPPER_SIBLINGS = 6
WRAPPER_ABOVE = 110.0


def _wrap_columns(units, core, pairs, layers, chains, pos, routes, unrouted, layer_y, layer_h,
                  wh, width, height, window, keep=None,
                  columns_out: list | None = None) -> tuple[float, float] | None:
    """Cut a long narrow layered drawing (a chain of collapsed blocks) into columns read left
    to right, so that it fits the window at a readable zoom; changes ``pos``/``routes`` in
    place and returns the new (width, height), or None when it stays one column.

    Cuts go only between layers crossed by at most :data:`WRAP_MAX_CROSSING` edges (the data
    path and perhaps a flag), each crossing edge runs down under its column, across the gap and
    into the top of the next one; an edge crossing two cuts is left unrouted.

    ``keep`` = (columns, column height, changed units) of the previous layout when only some
    children changed size (a block opened or closed): see :func:`_kept_cuts`. The units of
    each column are appended to ``columns_out``, then the tallest column's height."""
    nlayers = len(layer_y)
    vw, vh = window
    if nlayers < WRAP_MIN_LAYERS or vw <= 0 or vh <= 0 or not height:
        return None
    fit1 = min(vw / (width + 40), vh / (height + 40))
    if fit1 >= WRAP_BELOW and keep is None:
        return None
    n = len(core)
    # long edges the layout left unrouted (a flag feeding many far consumers) are drawn as
    # stubs: they do not hold the columns together
    drawn = [(a, b) for a, b in pairs if (units[core[a]], units[core[b]]) not in unrouted]
    crossing = [0] * nlayers
    for a, b in drawn:
        for k in range(min(layers[a], layers[b]), max(layers[a], layers[b])):
            crossing[k] += 1
    cuts_ok = [k for k in range(nlayers - 1) if crossing[k] <= WRAP_MAX_CROSSING]
    if not cuts_ok:
        return None
    xs_of_layer: dict[int, list[int]] = {}
    for j, lay in enumerate(layers):
        xs_of_layer.setdefault(lay, []).append(j)
    left = {j: (pos[units[core[j]]][0] if j < n else None) for j in range(len(layers))}
    for (a, b), chain in chains.items():
        for d, (x, _y) in zip(chain, routes.get((units[core[a]], units[core[b]]), [])):
            left[d] = x - DUMMY_W / 2

    def bands_for(cuts):
        edges_ = [-1] + list(cuts) + [nlayers - 1]
        out = []
        for lo, hi in zip(edges_, edges_[1:]):
            members = [j for lay in range(lo + 1, hi + 1) for j in xs_of_layer.get(lay, [])]
            x0 = min(left[j] for j in members)
            x1 = max(left[j] + wh[j][0] for j in members)
            top = layer_y[lo + 1]
            bottom = layer_y[hi] + layer_h[hi]
            out.append((lo + 1, hi, x0, x1, top, bottom))
        return out

    def score(bands):
        w = sum(b[3] - b[2] for b in bands) + COLUMN_GAP * (len(bands) - 1)
        h = max(b[5] - b[4] for b in bands) + 2 * LAYER_GAP
        return min(vw / (w + 40), vh / (h + 40)), w, h

    best = None
    kept = _kept_cuts(keep, units, core, layers, cuts_ok, layer_y, layer_h) if keep else None
    if kept is not None:
        bands = bands_for(kept)
        best = (score(bands), bands)
        fit1 = 0.0  # the kept columns are used as they are
    for k in range(2 if kept is None else 9, 9):
        cuts: list[int] = []
        for i in range(1, k):
            target = height * i / k
            cand = [c for c in cuts_ok if not cuts or c > cuts[-1]]
            if not cand:
                break
            c = min(cand, key=lambda c: abs(layer_y[c + 1] - LAYER_GAP / 2 - target))
            cuts.append(c)
        if len(cuts) != k - 1:
            continue
        bands = bands_for(cuts)
        sc = score(bands)
        if best is None or sc[0] > best[0][0]:
            best = (sc, bands)
    if best is None or best[0][0] < fit1 * WRAP_GAIN:
        return None
    (_, total_w, total_h), bands = best
    if columns_out is not None:
        cols: list[list[str]] = [[] for _ in bands]
        for j, i in enumerate(core):
            for c, b in enumerate(bands):
                if b[0] <= layers[j] <= b[1]:
                    cols[c].append(units[i])
        columns_out.extend(frozenset(c) for c in cols)
        columns_out.append(max(b[5] - b[4] for b in bands))
    band_of_layer = {}
    shift = []
    x = 0.0
    for i, (lo, hi, x0, x1, top, bottom) in enumerate(bands):
        for lay in range(lo, hi + 1):
            band_of_layer[lay] = i
        shift.append((x - x0, LAYER_GAP - top))
        x += x1 - x0 + COLUMN_GAP
    for j, i in enumerate(core):
        dx, dy = shift[band_of_layer[layers[j]]]
        px, py = pos[units[i]]
        pos[units[i]] = (px + dx, py + dy)
    top_lane = LAYER_GAP / 2

    def detour(i: int, x_from: float, x_to: float) -> list[tuple[float, float]]:
        """From column ``i`` (at x_from) down under it, across the gap, up to the top of
        column i+1 and over to x_to."""
        lo, hi, x0, x1, top, bottom = bands[i]
        low = bottom + shift[i][1] + LAYER_GAP / 2
        gx = x1 + shift[i][0] + COLUMN_GAP / 2
        pts = [(x_from, low), (gx, low)]
        y = low - 30.0
        while y > top_lane + 15.0:  # short steps: the curve stays on the straight line
            pts.append((gx, y))
            y -= 30.0
        return pts + [(gx, top_lane), (x_to, top_lane)]

    for (a, b) in drawn:
        ba, bb = band_of_layer[layers[a]], band_of_layer[layers[b]]
        key = (units[core[a]], units[core[b]])
        chain = chains.get((a, b), [])
        if ba == bb:
            if key in routes:
                dx, dy = shift[ba]
                routes[key] = [(px + dx, py + dy) for px, py in routes[key]]
            continue
        if abs(bb - ba) != 1:
            routes.pop(key, None)
            unrouted.add(key)
            continue
        first, second = min(ba, bb), max(ba, bb)
        old = routes.get(key, [])
        pts = []
        prev_x = pos[units[core[a]]][0] + wh[a][0] / 2
        crossed = False
        for d, (px, py) in zip(chain, old):
            bd = band_of_layer[layers[d]]
            dx, dy = shift[bd]
            if not crossed and bd == second:
                pts += detour(first, prev_x, px + dx)
                crossed = True
            pts.append((px + dx, py + dy))
            prev_x = px + dx
        if not crossed:
            pts += detour(first, prev_x, pos[units[core[b]]][0] + wh[b][0] / 2)
        if ba > bb:  # drawn against the layering (a broken cycle): leave it unrouted
            routes.pop(key, None)
            unrouted.add(key)
            continue
        routes[key] = pts
    return total_w, total_h


def _kept_cuts(keep, units, core, layers, cuts_ok, layer_y, layer_h) -> list[int] | None:
    """Cuts (the last layer of each column but the last) that keep the previous columns when
    only some children changed size (a block opened or closed), or None to cut afresh.

    Units before the first changed one keep their columns; the changed one stays in its column,
    which grows. If that column then is taller than both the tallest previous column and the
    column down to the changed unit, it ends at the last cut that fits after the changed unit,
    and the units after it are packed again into columns no taller than that."""
    columns, old_h, changed = keep
    col_of = {u: c for c, members in enumerate(columns) for u in members}
    nlayers = len(layer_y)
    col_of_layer: list = [None] * nlayers
    changed_layers = []
    for j, i in enumerate(core):
        u = units[i]
        if u not in col_of:
            return None
        lay = layers[j]
        if col_of_layer[lay] is None:
            col_of_layer[lay] = col_of[u]
        elif col_of_layer[lay] != col_of[u]:
            return None  # a layer split between columns: not the same drawing
        if u in changed:
            changed_layers.append(lay)
    if None in col_of_layer or not changed_layers or any(
            a > b for a, b in zip(col_of_layer, col_of_layer[1:])):
        return None
    ok = set(cuts_ok)
    old_cuts = [k for k in range(nlayers - 1) if col_of_layer[k] != col_of_layer[k + 1]]
    if not old_cuts or any(c not in ok for c in old_cuts):
        return None

    def h(lo: int, hi: int) -> float:  # height of a column holding layers lo..hi
        return layer_y[hi] + layer_h[hi] - layer_y[lo]

    first, last = min(changed_layers), max(changed_layers)
    col = col_of_layer[first]
    start = old_cuts[col - 1] + 1 if col else 0
    end = old_cuts[col] if col < len(old_cuts) else nlayers - 1
    budget = max(old_h, h(start, min(last, end))) + 0.5
    cuts = old_cuts[:col]
    if h(start, end) <= budget:
        if last <= end:  # nothing changed further on: the later columns stay as they were
            return old_cuts
        new_end = end
    else:
        after = sorted(c for c in ok if last <= c < end)
        fits = [c for c in after if h(start, c) <= budget]
        new_end = fits[-1] if fits else (after[0] if after else end)
    if new_end >= nlayers - 1:
        return cuts
    cuts.append(new_end)
    lo, idx = new_end + 1, col + 1
    while True:  # the units pushed out go to the top of the next column, and so on
        old_end = old_cuts[idx] if idx < len(old_cuts) else nlayers - 1
        if lo <= old_end and h(lo, old_end) <= budget:
            return cuts + old_cuts[idx:]  # from here on the columns are as they were
        cand = sorted(c for c in ok if lo <= c < nlayers - 1)
        if not cand or h(lo, nlayers - 1) <= budget:
            return cuts
        fits = [c for c in cand if h(lo, c) <= budget]
        c = fits[-1] if fits else cand[0]
        cuts.append(c)
        lo, idx = c + 1, idx + 1


_IGRAPH_CORE = None


def igraph_core():
    """igraph's C core (``igraph._igraph``: ``GraphBase``, all the layout uses). When the igraph
    package is not imported already, its extension module is loaded alone: the package's
    ``__init__`` imports ~100 modules (drawing back-ends, texttable, wcwidth; 40 ms of a first
    view) that the layout never uses. The same C code either way (and the functions used here
    draw no random numbers, which the package would route to Python's ``random``); anything
    unexpected falls back to importing the package."""
    global _IGRAPH_CORE
    core = _IGRAPH_CORE
    if core is None:
        import sys
        package = sys.modules.get("igraph")
        core = getattr(package, "_igraph", None)
        if core is None:
            core = _load_igraph_core()
        _IGRAPH_CORE = core
    return core


def _load_igraph_core():
    import importlib.util
    import os
    try:
        spec = importlib.util.find_spec("igraph")
        for folder in (spec.submodule_search_locations or ()) if spec else ():
            for entry in sorted(os.listdir(folder)):
                if entry.startswith("_igraph.") and entry.endswith((".so", ".pyd")):
                    core_spec = importlib.util.spec_from_file_location(
                        "igraph._igraph", os.path.join(folder, entry))
                    core = importlib.util.module_from_spec(core_spec)
                    core_spec.loader.exec_module(core)
                    # (it stays in sys.modules as ``igraph._igraph``: its C side cannot be
                    # initialised twice, and the package, imported later, takes it from
                    # there; see igraph_package)
                    if hasattr(core.GraphBase, "_layout_sugiyama"):
                        return core
    except (ImportError, OSError, AttributeError):
        pass
    return igraph_package()._igraph


def igraph_package():
    """The igraph package (``import igraph``), also after :func:`igraph_core` loaded its core
    alone: the package found its ``igraph._igraph`` in sys.modules, and the import system sets
    the package's attribute only for a submodule it loads itself (igraph's clustering helpers
    read ``igraph._igraph``)."""
    import sys

    import igraph
    if getattr(igraph, "_igraph", None) is None and "igraph._igraph" in sys.modules:
        igraph._igraph = sys.modules["igraph._igraph"]
    return igraph


def _layering(n: int, pairs: list[tuple[int, int]], pinned_top: frozenset = frozenset(),
              pinned_bottom: frozenset = frozenset()):
    """Layer per vertex (longest path after breaking cycles; sources sit just above their first
    consumer) and, for every edge spanning more than one layer, its chain of dummy vertices
    (ids from ``n`` on), keyed by the original (src, dst) and ordered from src to dst."""
    dag = list(pairs)
    if n > 1 and pairs:
        # (igraph's C graph: the Python Graph's constructor imports numpy, 50 ms of a first
        # view that needs none)
        g = igraph_core().GraphBase(n, pairs, True)
        if not g.is_dag():
            flip = set(g.feedback_arc_set(method="eades"))
            dag = [(b, a) if k in flip else (a, b) for k, (a, b) in enumerate(pairs)]
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for a, b in dag:
        preds[b].append(a)
        succs[a].append(b)
    order = _topo(n, preds, succs)
    layer = [0] * n
    for v in order:
        if preds[v]:
            layer[v] = max(layer[u] for u in preds[v]) + 1
    for v in reversed(order):  # pull sources (inputs, flags) down next to their consumers
        if not preds[v] and succs[v] and v not in pinned_top:
            layer[v] = max(0, min(layer[w] for w in succs[v]) - 1)
    if pinned_bottom:  # exit ports: below everything else
        last = max((layer[v] for v in range(n) if v not in pinned_bottom), default=0) + 1
        for v in pinned_bottom:
            layer[v] = last
    chains: dict[tuple[int, int], list[int]] = {}
    next_id = n
    layers = list(layer)
    for (a, b), (u, v) in zip(pairs, dag):
        span = layer[v] - layer[u]
        if span <= 1:
            continue
        if span > 3 and len(succs[u]) >= FANOUT_UNROUTED:
            # a flag or shared tensor feeding many far consumers: routing each of its edges
            # through every layer costs O(edges × layers) dummies and the view draws them as
            # stubs anyway
            continue
        chain = []
        for k in range(1, span):
            chain.append(next_id)
            layers.append(layer[u] + k)
            next_id += 1
        if (u, v) != (a, b):
            chain.reverse()
        chains[(a, b)] = chain
    return layers, chains


def _topo(n: int, preds, succs) -> list[int]:
    indeg = [len(p) for p in preds]
    todo = [v for v in range(n) if indeg[v] == 0]
    out = []
    while todo:
        v = todo.pop()
        out.append(v)
        for w in succs[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                todo.append(w)
    if len(out) < n:  # should not happen after cycle breaking; keep every vertex anyway
        seen = set(out)
        out += [v for v in range(n) if v not in seen]
    return out


def _order(total: int, layers: list[int], chains, pairs) -> list[float]:
    """x per vertex (dummies included) from igraph's Sugiyama crossing reduction."""
    if total == 1:
        return [0.0]
    edges = []
    for a, b in pairs:
        chain = chains.get((a, b))
        if chain:
            path = [a] + chain + [b]
            edges.extend(zip(path, path[1:]))
        elif abs(layers[a] - layers[b]) <= 1:
            edges.append((a, b))
        # else: an unrouted long edge (a flag feeding many): it must not pull every consumer
        # sideways towards its producer, so it takes no part in the ordering
    try:
        # the C entry point without the Python Layout wrapper (whose per-row copy costs more
        # than the layout itself on many small groups), on the C graph (see _layering)
        graph_base = igraph_core().GraphBase
        coords, _ = graph_base._layout_sugiyama(graph_base(total, edges, True), layers, None,
                                                1, 1, 100)
    except (AttributeError, TypeError):
        g = igraph_package().Graph(n=total, edges=edges, directed=True)
        coords = g.layout_sugiyama(layers=layers).coords
    return [c[0] for c in coords[:total]]


def _node_look(tree: GroupTree, name: str, badges=None) -> tuple:
    """What a node's box shows (``badges``: ``tree.badges``, looked up once by a caller that
    asks for many nodes)."""
    badges = tree.badges if badges is None else badges
    return (tree.op_of.get(name), tree.node_label.get(name, name),
            [b.label for b in badges.get(name, ())])


def _group_look(tree: GroupTree, key: str) -> tuple | None:
    g = tree.groups.get(key)
    return None if g is None else (g.label, g.size, g.repeats, g.signature, g.parent,
                                   g.virtual, dict(g.ops))


def placement_diff(old: Placement, new: Placement, old_tree: GroupTree,
                   new_tree: GroupTree, limit: float | None = None) -> PlacementDiff | None:
    """What differs between two placements in the same direction (None when that differs:
    then everything does). A group opened in one and closed in the other counts as changed
    (an edit can take a block away, and its undo bring it back closed). Reads both trees,
    never Qt: a layout worker runs it, so that the view updates only what changed (an undo of
    a one-node edit: a few boxes). ``limit``: None as well when more than this share of the
    new placement's units and edges differ (the view then redraws everything anyway)."""
    if old.horizontal != new.horizontal:
        return None
    ob, nb = old.boxes, new.boxes
    most = None if limit is None else limit * (len(nb) + len(new.edges))
    if most is not None and abs(len(ob) - len(nb)) > most:
        return None
    units = set(ob.keys() ^ nb.keys())
    if old.expanded != new.expanded:
        units |= {"g:" + k for k in old.expanded ^ new.expanded}
    same_tree = old_tree is new_tree
    old_badges, new_badges = old_tree.badges, new_tree.badges
    for key, b in nb.items():
        a = ob.get(key)
        if a is None:
            continue
        if a.x != b.x or a.y != b.y or a.w != b.w or a.h != b.h:
            units.add(key)
        elif same_tree:
            continue
        elif key[0] == "n":
            name = key[2:]
            if _node_look(old_tree, name, old_badges) != _node_look(new_tree, name, new_badges):
                units.add(key)
        elif _group_look(old_tree, key[2:]) != _group_look(new_tree, key[2:]):
            units.add(key)
    oe = {(e.src, e.dst): e for e in old.edges}
    ne = {(e.src, e.dst): e for e in new.edges}
    if len(oe) != len(old.edges) or len(ne) != len(new.edges):
        return None  # not keyed by their ends (never made by GroupTree.visible_graph)
    edges = set(oe.keys() ^ ne.keys())
    for k, e in ne.items():
        o = oe.get(k)
        if o is not None and (o.control != e.control or o.count != e.count
                              or o.label != e.label or o.unrouted != e.unrouted
                              or o.route != e.route):
            edges.add(k)
    if most is not None and len(units) + len(edges) > most:
        return None
    return PlacementDiff(frozenset(units), frozenset(edges))


def boxes_overlap(a: Box, b: Box, eps: float = 0.5) -> bool:
    return (a.x + eps < b.x + b.w and b.x + eps < a.x + a.w
            and a.y + eps < b.y + b.h and b.y + eps < a.y + a.h)
