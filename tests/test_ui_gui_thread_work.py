"""What the GUI thread no longer does when a big graph is opened or the preset's steps are
adopted (issue 12): the work is made beside the job on its thread, and the result is the
same as before."""
import threading

import pytest
from support import make_window, window_with_model
from PySide6.QtCore import Qt

from surgeon_gui.core.model.io import save_graph


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch, mobilenet_v2):
    return window_with_model(qtbot, tmp_path, monkeypatch, mobilenet_v2[0], size=(1300, 850),
                             exposed=False)


def _on_gui() -> bool:
    return threading.current_thread() is threading.main_thread()


def test_the_preset_works_out_what_its_adoption_changed_on_its_worker(qtbot, win, monkeypatch):
    """The names the preset's adoption announces as removed, added and changed (set operations
    over every step's delta: ~90k names on the 107k-node graph) and the visible edges of the
    result's view are worked out on the preset's worker; what the view is told is what the
    graphs before and after say, and it draws the edges made afresh for its open groups."""
    from surgeon_gui.core.history import document
    from surgeon_gui.core.viewmodel import grouping
    from surgeon_gui.ui import passes_panel
    calls, visible_calls = [], []
    real = document.adopted_change
    real_visible = grouping.GroupTree.visible_graph

    def visible_graph(self, expanded):
        visible_calls.append(_on_gui())
        return real_visible(self, expanded)
    monkeypatch.setattr(grouping.GroupTree, "visible_graph", visible_graph)

    def adopted_change(prepared):
        calls.append(_on_gui())
        return real(prepared)
    monkeypatch.setattr(document, "adopted_change", adopted_change)
    monkeypatch.setattr(passes_panel, "adopted_change", adopted_change)
    w, panel = win, win.surgery.passes
    doc = w.document
    before = {n.name: n.SerializeToString(deterministic=True) for n in doc.graph.graph_def.node}
    told = []
    doc.changed.connect(told.append)
    drawn_before = dict(w.view.placement.boxes)
    panel.select_pass("inference")
    with qtbot.waitSignal(panel.idle, timeout=120_000):
        qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=60_000)
    assert w.undo_stack.count() >= 2           # several steps: the merged change
    assert calls == [False]                    # once, on the worker
    after = {n.name: n.SerializeToString(deterministic=True) for n in doc.graph.graph_def.node}
    [change] = told
    assert change.kind == "apply" and change.cursor == doc.cursor
    assert change.removed == before.keys() - after.keys() and change.removed
    assert change.added == after.keys() - before.keys()
    assert not change.changed & (change.added | change.removed)
    rewritten = {n for n in before.keys() & after.keys() if before[n] != after[n]}
    assert rewritten and rewritten <= change.changed
    # the view drew the result (its tree is the document's graph's) with the worker's edges
    view = w.view
    assert view.tree.graph is doc.graph
    assert not any(u[2:] in change.removed for u in view.placement.boxes if u[:2] == "n:")
    assert visible_calls == [False]
    # which removed nodes had a box of their own (the ghosts' candidates): the same going over
    # the removed names or over the boxes, whichever is fewer
    from surgeon_gui.ui.graph_view import drawn_among
    boxes = dict(drawn_before)
    want = {n for n in change.removed if "n:" + n in boxes}
    assert want and len(change.removed) > len(boxes)
    assert set(drawn_among(change.removed, boxes)) == want
    few = set(list(want)[:1]) | {"not/a/node"}
    assert set(drawn_among(few, boxes)) == few & want
    expanded = frozenset(k for k in view.expanded if k in view.tree.groups)
    assert view.placement.expanded == expanded
    fresh = real_visible(view.tree, expanded)
    assert sorted((e.src, e.dst, e.control, e.count, e.label, tuple(e.pairs))
                  for e in view.placement.edges) == \
        sorted((e.src, e.dst, e.control, e.count, e.label, tuple(e.pairs)) for e in fresh)


def test_adopt_without_a_change_made_beforehand_makes_it_itself(mobilenet_v2):
    """``Document.adopt`` of prepared steps with no ``change`` works it out itself: the same
    announcement as with the one :func:`adopted_change` makes."""
    from surgeon_gui.core.history.document import Document, adopted_change
    from surgeon_gui.core.history.steps import prepare_pipeline
    from surgeon_gui.core.passes import PRESET_ID
    gd, _, _ = mobilenet_v2
    results = []
    for made_before in (False, True):
        doc = Document(gd.__class__.FromString(gd.SerializeToString()), "m.pb")
        told = []
        doc.changed.connect(told.append)
        prepared = prepare_pipeline(doc.graph, [PRESET_ID])
        assert len(prepared) >= 2
        doc.adopt(prepared, doc.revision, adopted_change(prepared) if made_before else None)
        [c] = told
        results.append((c.label, c.removed, c.added, c.changed, c.kind, c.cursor))
    assert results[0] == results[1] and results[0][1]


def test_the_first_views_visible_edges_are_made_by_the_loader(qtbot, tmp_path, monkeypatch,
                                                              mobilenet_v2):
    """Opening a model: the visible edges of its default view (whose labels read the NodeDefs)
    are made on the loader's worker, not on the GUI thread, and they are the ones the view
    lays out: the same as made afresh for the view's open groups."""
    from surgeon_gui.core.viewmodel import grouping
    gd, _, _ = mobilenet_v2
    path = tmp_path / "m.pb"
    save_graph(gd, path)
    calls = []
    real = grouping.GroupTree.visible_graph

    def visible_graph(self, expanded):
        calls.append(_on_gui())
        return real(self, expanded)
    monkeypatch.setattr(grouping.GroupTree, "visible_graph", visible_graph)
    w = make_window(qtbot, tmp_path, monkeypatch, size=(1300, 850))
    with qtbot.waitSignal(w.document_opened, timeout=60_000):
        w.open_model(str(path))
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=60_000)
    assert calls == [False]
    view = w.view
    expanded = frozenset(k for k in view.expanded if k in view.tree.groups)
    assert expanded and view.placement.expanded == expanded
    fresh = real(view.tree, expanded)

    def key(edges):
        return sorted((e.src, e.dst, e.control, e.count, e.label, tuple(e.pairs)) for e in edges)
    assert key(view._visible_graph(expanded)) == key(fresh)
    assert {(e.src, e.dst) for e in view.placement.edges} == {(e.src, e.dst) for e in fresh}
    # another expansion is made as before, on the GUI thread
    view.expand_all()
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=60_000)
    assert calls[1:] == [True]


def test_the_loader_finds_the_variables_the_window_offers_to_freeze(qtbot, tmp_path,
                                                                    monkeypatch):
    """A graph saved with its variables: the loader's worker finds them (a pass over every
    node's op), and the window's offer to freeze them names the same variables as a look
    from scratch."""
    from pathlib import Path
    from surgeon_gui.core.model import io
    from surgeon_gui.core.model.io import read_graph_def
    path = Path(__file__).resolve().parent.parent / "resources" / "examples" / "tf1_training" \
        / "graph.pb"
    want = io.variable_nodes(read_graph_def(path))
    assert want
    calls = []
    real = io.variable_nodes

    def variable_nodes(*a, **k):
        calls.append(_on_gui())
        return real(*a, **k)
    monkeypatch.setattr(io, "variable_nodes", variable_nodes)
    w = make_window(qtbot, tmp_path, monkeypatch)
    asked = []

    class Ask:
        def question(self, title, text, choices):
            asked.append((title, text))
            return "no"
    w.surgery.controller.ask = Ask()
    with qtbot.waitSignal(w.document_opened, timeout=60_000):
        w.open_model(str(path))
    qtbot.waitUntil(lambda: bool(asked), timeout=60_000)
    assert calls == [False]
    [(title, text)] = asked
    assert title == "Graph with variables"
    assert f"holds {len(want)} variable(s) ({', '.join(want[:3])}" in text


def test_a_big_model_just_opened_is_laid_out_in_a_worker_with_the_same_placement(
        qtbot, tmp_path, monkeypatch, mobilenet_v2):
    """A model of at least ``ASYNC_OPEN_NODES`` nodes, just opened: its first layout is made on
    a worker (however few units its first view has), so the GUI thread switches to the
    document in one event and builds the scene in a later one; the placement is the one a
    layout on the GUI thread gives, and later layouts of a small view are made in place
    again."""
    from surgeon_gui.core.viewmodel import layout
    from surgeon_gui.ui import graph_view
    gd, _, _ = mobilenet_v2
    path = tmp_path / "m.pb"
    save_graph(gd, path)
    monkeypatch.setattr(graph_view, "ASYNC_OPEN_NODES", len(gd.node))   # "big" from here
    threads = []
    real = layout.LayoutEngine.layout

    def lay_out(self, *a, **k):
        threads.append(_on_gui())
        return real(self, *a, **k)
    monkeypatch.setattr(layout.LayoutEngine, "layout", lay_out)
    w = make_window(qtbot, tmp_path, monkeypatch, size=(1300, 850))
    pending_when_shown = []
    w.document_opened.connect(lambda doc: pending_when_shown.append(w.view.layout_pending))
    with qtbot.waitSignal(w.document_opened, timeout=60_000):
        w.open_model(str(path))
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=60_000)
    assert pending_when_shown == [True] and threads == [False]
    view = w.view
    first = view.placement
    assert first is not None and first.boxes and view.graph_scene.items()
    # the same placement laid out on the GUI thread (a small view, no model just opened)
    view._placements = {}
    view.relayout()
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=60_000)
    assert threads == [False, True]
    again = view.placement
    assert again is not first
    assert {k: (b.x, b.y, b.w, b.h) for k, b in again.boxes.items()} == \
        {k: (b.x, b.y, b.w, b.h) for k, b in first.boxes.items()}
    assert again.routes == first.routes and again.width == first.width
