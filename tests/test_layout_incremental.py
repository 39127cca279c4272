"""An edit, its undo and its redo lay out again only the containers the edit changed (Qt-free).

The layout engine keeps each container's layout while its children, their sizes and its edges
stay the same (``LayoutEngine(reuse=…)``); :func:`placement_diff` then tells the view which
boxes and edges differ, so that the scene updates only those. Here, on real graphs with
everything expanded, the layout an edit, an undo and a redo get is compared with a fresh layout
of the same state: the same boxes and routes (without wrapping), or, when the long top level
wraps into columns (which keep their cuts when a child changes size, see
``_kept_cuts``), a clean picture: nothing overlaps, everything sits in its frame, every edge
is routed as in a fresh layout."""
import itertools

import pytest

from surgeon_gui.core.history.document import Document
from surgeon_gui.core.history.steps import prepare_edits
from surgeon_gui.core.viewmodel import layout as layout_mod
from surgeon_gui.core.viewmodel.grouping import GroupTree
from surgeon_gui.core.viewmodel.layout import LayoutEngine, boxes_overlap, placement_diff

def size_of(tree):
    """Sizes that depend on what a box shows, as the scene's do (weight badges make a node
    taller): an edit that takes a badge away changes its container's layout."""
    def size(unit):
        if unit.startswith("n:"):
            name = unit[2:]
            return (110.0 + 6 * len(tree.op_of[name]),
                    40.0 + 18 * len(tree.badges.get(name, ())))
        return (120.0 + 5 * len(tree.groups[unit[2:]].label), 56.0)
    return size


def _edits(doc: Document) -> list[tuple[str, dict]]:
    """A weight's ``/read`` (drawn as a badge; TF1 graphs) and a visible node in the middle
    (an activation)."""
    nodes = doc.graph_def.node
    reads = [n.name for n in nodes if n.op == "Identity" and n.name.endswith("/read")]
    relus = [n.name for n in nodes if n.op in ("Relu", "Relu6")]
    return [("remove_node", {"node": n}) for n in reads[:1]] + \
        [("remove_node", {"node": relus[len(relus) // 2]})]


def _check_clean(tree: GroupTree, p) -> None:
    """Every drawn unit placed, siblings apart, children inside their frame."""
    assert {"n:" + n for n in tree.drawn_nodes()} <= set(p.boxes)
    for container in [""] + sorted(p.expanded):
        kids = [k for k in tree.children(container) if k in p.boxes]
        for a, b in itertools.combinations(kids, 2):
            assert not boxes_overlap(p.boxes[a], p.boxes[b]), (a, b)
        if container:
            f = p.boxes["g:" + container]
            for k in kids:
                b = p.boxes[k]
                assert f.x <= b.x and b.x + b.w <= f.x + f.w + 0.01, (container, k)
                assert f.y <= b.y and b.y + b.h <= f.y + f.h + 0.01, (container, k)


def _routes(p) -> dict:
    return {(e.src, e.dst): (tuple(e.route), e.unrouted) for e in p.edges}


def _boxes(p) -> dict:
    return {k: (b.x, b.y, b.w, b.h) for k, b in p.boxes.items()}


def _layout(tree, wrap, reuse=None, expanded=None):
    eng = LayoutEngine(tree, size_of(tree), reuse=reuse, wrap_in=wrap)
    return eng, eng.layout(frozenset(tree.groups) if expanded is None else expanded)


@pytest.mark.parametrize("wrap", [None, (1600, 1000)], ids=["plain", "wrapped"])
@pytest.mark.parametrize("model", ["tf1", "cond_bn", "mnv2"])
def test_edit_undo_redo_relayout_matches_a_fresh_layout(model, wrap, tf1_graph, small_cond_bn,
                                                         mobilenet_v2, monkeypatch):
    gd, ins, outs = {"tf1": tf1_graph, "cond_bn": small_cond_bn, "mnv2": mobilenet_v2}[model]
    calls = []
    real = layout_mod.layered
    monkeypatch.setattr(layout_mod, "layered", lambda *a, **k: calls.append(1) or real(*a, **k))
    for kind, args in _edits(Document(gd, None, ins, outs)):
        doc = Document(gd, None, ins, outs)
        tree_a = GroupTree(doc.graph)
        eng, before = _layout(tree_a, wrap)
        full_calls = len(calls)
        doc.adopt([prepare_edits(doc.graph, [(kind, args)])])
        trees = [GroupTree(doc.graph)]
        doc.undo()
        trees.append(GroupTree(doc.graph))
        doc.redo()
        trees.append(GroupTree(doc.graph))
        drawn, drawn_tree = before, tree_a
        for tree in trees:  # the edit, its undo, its redo
            calls.clear()
            eng, p = _layout(tree, wrap, reuse=eng)
            # only the containers around the change were laid out again (those whose children
            # changed: a block of one op left fewer siblings, and the ones around them)
            assert len(calls) * 3 <= full_calls
            _, fresh = _layout(tree, wrap)
            if wrap is None:
                assert _boxes(p) == _boxes(fresh)
                assert _routes(p) == _routes(fresh)
            else:  # the stable variant: columns keep their cuts
                _check_clean(tree, p)
                assert {k for k, (_, u) in _routes(p).items() if u} == \
                    {k for k, (_, u) in _routes(fresh).items() if u}
            # what the view is told changed: at least every box that moved or resized
            d = placement_diff(drawn, p, drawn_tree, tree)
            moved = {k for k in drawn.boxes.keys() | p.boxes.keys()
                     if _boxes(drawn).get(k) != _boxes(p).get(k)}
            assert moved <= d.units
            changed_routes = {k for k in _routes(drawn).keys() | _routes(p).keys()
                              if _routes(drawn).get(k) != _routes(p).get(k)}
            assert changed_routes <= d.edges
            if kind == "remove_node" and not args["node"].endswith("/read"):
                assert "n:" + args["node"] in d.units  # drawn before, gone after (or back)
            # and nothing else: the others show something else (a badge less, a group's size)
            for k in d.units - moved:
                old_look = layout_mod._node_look(drawn_tree, k[2:]) if k[0] == "n" \
                    else layout_mod._group_look(drawn_tree, k[2:])
                new_look = layout_mod._node_look(tree, k[2:]) if k[0] == "n" \
                    else layout_mod._group_look(tree, k[2:])
                assert old_look != new_look, k
            drawn, drawn_tree = p, tree
        # back and forth: the undo's layout is the one before the edit
        eng, again = _layout(trees[1], wrap, reuse=eng)
        if wrap is None:
            assert _boxes(again) == _boxes(before)


def test_diff_is_symmetric_and_empty_for_the_same_state(tf1_graph):
    gd, ins, outs = tf1_graph
    doc = Document(gd, None, ins, outs)
    tree_a = GroupTree(doc.graph)
    eng, pa = _layout(tree_a, None)
    assert not placement_diff(pa, pa, tree_a, tree_a).units
    relu = next(n.name for n in gd.node if n.op == "Relu")
    doc.adopt([prepare_edits(doc.graph, [("remove_node", {"node": relu})])])
    tree_b = GroupTree(doc.graph)
    _, pb = _layout(tree_b, None, reuse=eng)
    ab, ba = placement_diff(pa, pb, tree_a, tree_b), placement_diff(pb, pa, tree_b, tree_a)
    assert ab == ba and "n:" + relu in ab.units and ab.edges
    # another direction: no diff (everything differs)
    across = LayoutEngine(tree_a, size_of(tree_a), horizontal=True).layout(pa.expanded)
    assert placement_diff(pa, across, tree_a, tree_a) is None
    # a group closed: its box, and everything inside it that is no longer drawn
    closed = LayoutEngine(tree_a, size_of(tree_a)).layout(pa.expanded - {"bn1"})
    d = placement_diff(pa, closed, tree_a, tree_a)
    assert "g:bn1" in d.units and {k for k in pa.boxes if k.startswith("n:bn1/")} <= d.units


# ---------------------------------------------------------------------------- a new edit
@pytest.fixture
def incremental_always(monkeypatch):
    """Incremental layouts on these small graphs too (the engine makes them from
    INCREMENTAL_MIN_UNITS boxes drawn on)."""
    monkeypatch.setattr(layout_mod, "INCREMENTAL_MIN_UNITS", 0)


def _walk_all(tree, wrap, reuse, expanded):
    """What the engine made before the incremental layout: every container looked at (each
    one's cached layout kept while its children, sizes and edges are the same) and placed."""
    eng = LayoutEngine(tree, size_of(tree), reuse=reuse, wrap_in=wrap)
    eng._memo = None
    p = eng.layout(expanded)
    assert eng.last_mode == "full"
    return p


def _same_placement(p, q) -> None:
    assert _boxes(p) == _boxes(q)
    assert _routes(p) == _routes(q)
    assert p.ports == q.ports and p.routes == q.routes and p.unrouted == q.unrouted
    assert (p.width, p.height) == (q.width, q.height)


def _group_edit(doc) -> list[tuple[str, dict]]:
    """Every drawn node of a small group in the middle deleted (the group goes away)."""
    tree = GroupTree(doc.graph)
    keys = [k for k, g in tree.groups.items()
            if g.children and all(u.startswith("n:") for u in g.children)
            and len(g.children) <= 3 and "stage_2" in k and k.endswith("conv_a")]
    return [("remove_node", {"node": u[2:]}) for u in tree.groups[keys[0]].children]


@pytest.mark.parametrize("wrap", [None, (1600, 1000)], ids=["plain", "wrapped"])
@pytest.mark.parametrize("model", ["tf1", "cond_bn", "mnv2"])
def test_new_edits_are_laid_out_incrementally_as_a_full_walk_would(model, wrap, tf1_graph,
                                                                    small_cond_bn, mobilenet_v2,
                                                                    monkeypatch,
                                                                    incremental_always):
    """New edits one after the other (a badge's /read, a box in the middle, on cond_bn a whole
    group), then undo and redo of them, each laid out from the last layout: the engine says it
    went incrementally, looked at few units, and made exactly what a walk over every container
    makes (without wrapping: a fresh layout), nothing overlaps, and the diff it carries is
    placement_diff's."""
    gd, ins, outs = {"tf1": tf1_graph, "cond_bn": small_cond_bn, "mnv2": mobilenet_v2}[model]
    doc = Document(gd, None, ins, outs)
    edits = [[e] for e in _edits(doc)] + ([_group_edit(doc)] if model == "cond_bn" else [])
    drawn_tree = GroupTree(doc.graph)
    eng, drawn = _layout(drawn_tree, wrap)
    first = drawn
    sized = []
    real = size_of

    def counting(tree):
        f = real(tree)
        return lambda u: sized.append(u) or f(u)
    monkeypatch.setattr(__import__(__name__), "size_of", counting)
    moves = [("edit", e) for e in edits] + [("undo", None)] * len(edits) + \
        [("redo", None)] * len(edits)
    for what, edit in moves:
        if what == "edit":
            removed = {a["node"] for _, a in edit}
            doc.adopt([prepare_edits(doc.graph, edit)])
        else:
            getattr(doc, what)()
        tree = GroupTree(doc.graph)
        expanded = frozenset(tree.groups)
        sized.clear()
        new_eng = LayoutEngine(tree, counting(tree), reuse=eng, wrap_in=wrap)
        p = new_eng.layout(expanded)
        assert new_eng.last_mode == "incremental"
        if model != "tf1":  # (the TF1 example is 157 nodes in a few groups)
            assert len(sized) * 4 < len(p.boxes), (len(sized), len(p.boxes))
        _same_placement(p, _walk_all(tree, wrap, eng, expanded))
        if wrap is None:
            _same_placement(p, _layout(tree, None)[1])
        _check_clean(tree, p)
        assert p.base() is drawn
        assert p.diff == placement_diff(drawn, p, drawn_tree, tree)
        _check_shifts(drawn, p, drawn_tree, tree, p.diff)
        _check_shifts(p, drawn, tree, drawn_tree, drawn.diff_to(p))  # (turned round)
        if what == "edit" and not all(a["node"].endswith("/read") for _, a in edit):
            assert p.diff.units and p.diff.edges  # (a box went: what was around it moved)
            if model != "tf1":  # what follows the box moved as blocks, with its edges
                assert any(srcs for _, srcs in p.diff.shifts.values())
        if what == "edit":
            assert not {"n:" + n for n in removed} & set(p.boxes)
        if what == "undo" and doc.cursor == 0 and wrap is None:
            assert _boxes(p) == _boxes(first)  # all undone: the first layout again
        eng, drawn, drawn_tree = new_eng, p, tree


def _check_shifts(old, new, old_tree, new_tree, diff) -> None:
    """The blocks a diff says moved as a whole did: each unit the same size and look, moved
    by exactly the offset (and back); each producer's edges the same, into the block, routes
    moved by exactly the offset; and most of the boxes that moved by one offset are in its
    block."""
    old_e = {(e.src, e.dst): e for e in old.edges}
    new_by = new.edges_by_src()
    old_by = old.edges_by_src()
    looks = {"n": layout_mod._node_look, "g": lambda t, k: (t.groups[k].label, t.groups[k].signature,
                                                t.groups[k].repeats, t.groups[k].size)}
    for (dx, dy), (units, srcs) in diff.shifts.items():
        assert (dx, dy) != (0.0, 0.0)
        assert units <= diff.units and srcs <= units
        for u in units:
            a, b = old.boxes[u], new.boxes[u]
            assert (b.x, b.y, b.w, b.h) == (a.x + dx, a.y + dy, a.w, a.h), u
            assert (b.x - dx, b.y - dy) == (a.x, a.y), u
            assert looks[u[0]](old_tree, u[2:]) == looks[u[0]](new_tree, u[2:]), u
        for src in srcs:
            assert {e.dst for e in new_by[src]} == {e.dst for e in old_by[src]}, src
            for e in new_by[src]:
                o = old_e[(src, e.dst)]
                assert e.dst in units
                assert (o.control, o.count, o.label, o.unrouted) == \
                    (e.control, e.count, e.label, e.unrouted)
                assert [(x + dx, y + dy) for x, y in o.route] == list(e.route)
        # the producer of an edge into, out of or inside the block that did not move with it
        # has an edge in the diff's edges, or one with an end in the diff's units and in no
        # block (the scene finds the producers to redo there)
        blocks = set().union(*(u for u, _ in diff.shifts.values()))
        loose = diff.units - blocks
        redo = {k[0] for k in diff.edges} | {e.src for e in [*new.edges, *old.edges]
                                              if e.src in loose or e.dst in loose}
        for e in [*new.edges, *old.edges]:
            if (e.src in units or e.dst in units) and e.src not in srcs:
                assert e.src in redo, (e.src, e.dst)
        moved = [u for u in diff.units if u in old.boxes and u in new.boxes
                 and (new.boxes[u].x - old.boxes[u].x, new.boxes[u].y - old.boxes[u].y)
                 == (dx, dy)]
        assert len(units) >= 0.5 * len(moved), (len(units), len(moved))


def test_an_incremental_layout_follows_a_group_closed_and_opened(small_cond_bn,
                                                                 incremental_always):
    """The same tree, one group closed then opened again: laid out from the last layout each
    time, exactly as a walk over everything, and back to the first placement."""
    gd, ins, outs = small_cond_bn
    tree = GroupTree(Document(gd, None, ins, outs).graph)
    everything = frozenset(tree.groups)
    eng, first = _layout(tree, (1600, 1000))
    stage = next(k for k in tree.groups if k.endswith("stage_2"))
    closed = everything - {stage}
    for expanded in (closed, everything):
        new_eng = LayoutEngine(tree, size_of(tree), reuse=eng, wrap_in=(1600, 1000))
        p = new_eng.layout(expanded)
        assert new_eng.last_mode == "incremental"
        _same_placement(p, _walk_all(tree, (1600, 1000), eng, expanded))
        inside = {k for k in p.boxes if k[2:].startswith(stage + "/")}
        if expanded == closed:  # drawn as one box, nothing of it inside
            assert "g:" + stage in p.boxes and not inside
        else:
            _check_clean(tree, p)
            assert inside
        eng = new_eng
    assert "g:" + stage in p.diff.units
    assert _boxes(p) == _boxes(first)


def test_a_small_drawing_or_a_big_change_is_laid_out_in_full(small_cond_bn, monkeypatch):
    """Comparing the trees costs O(graph): an engine lays out in full when few boxes are drawn
    (the default view) or when the step changed much (a pass), and the result is the same."""
    gd, ins, outs = small_cond_bn
    doc = Document(gd, None, ins, outs)
    tree = GroupTree(doc.graph)
    eng, before = _layout(tree, None)
    assert len(before.boxes) < layout_mod.INCREMENTAL_MIN_UNITS
    relu = next(n.name for n in gd.node if n.op == "Relu")
    doc.adopt([prepare_edits(doc.graph, [("remove_node", {"node": relu})])])
    tree_b = GroupTree(doc.graph)
    again, p = _layout(tree_b, None, reuse=eng)
    assert again.last_mode == "full"
    _same_placement(p, _layout(tree_b, None)[1])
    monkeypatch.setattr(layout_mod, "INCREMENTAL_MIN_UNITS", 0)
    # a step that took away more than a tenth of the nodes
    names = [n.name for n in doc.graph_def.node if n.op in ("Relu", "Identity")]
    assert len(names) * 10 > len(doc.graph)
    doc.adopt([prepare_edits(doc.graph, [("remove_node", {"node": n}) for n in names])])
    tree_c = GroupTree(doc.graph)
    last, p = _layout(tree_c, None, reuse=again)
    assert last.last_mode == "full"
    _same_placement(p, _layout(tree_c, None)[1])
