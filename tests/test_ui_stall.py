"""Long work and the GUI thread (issue 11.3): Cancel of the preset leaves the document as it
was while the GUI keeps turning; an undo pressed while a background job reads the graph waits
for it and then happens; a big GraphDef is parsed in pieces (same graph)."""
import threading
import time

import pytest
from support import window_with_model
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QPushButton

from surgeon_gui.core.history.document import StaleStepError
from surgeon_gui.core.model import io
from surgeon_gui.core.model.graph import GraphDef
from surgeon_gui.core.model.io import save_graph, serialize
from surgeon_gui.ui.commands import EditCommand, hold, push_step


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch, mobilenet_v2):
    return window_with_model(qtbot, tmp_path, monkeypatch, mobilenet_v2[0], size=(1300, 850),
                             exposed=False)


class Heartbeat:
    """A 10 ms timer on the GUI thread: counts the ticks it got."""

    def __init__(self):
        self.ticks = []
        self.timer = QTimer(interval=10)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self.timer.start()


def test_cancel_of_the_preset_from_its_dialog_leaves_the_document_and_the_gui_turns(
        qtbot, win, monkeypatch):
    from surgeon_gui.core.passes import PRESET_PASSES, get_pass
    w, panel = win, win.surgery.passes
    before, key = serialize(w.document.graph_def), w.document.state_key
    # the third pass of round 1 waits until Cancel is pressed (the first two ran for real)
    p = get_pass(PRESET_PASSES[2])
    release, entered = threading.Event(), threading.Event()
    real = p.fn

    def held_up(graph, select=None, **params):
        entered.set()
        release.wait(60)
        return real(graph, select=select, **params)
    monkeypatch.setattr(p, "fn", held_up)
    panel.select_pass("inference")
    beat = Heartbeat()
    with qtbot.waitSignal(panel.idle, timeout=120_000):
        qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
        qtbot.waitUntil(entered.is_set, timeout=60_000)
        qtbot.waitUntil(lambda: panel._progress is not None and panel._progress.isVisible(),
                        timeout=10_000)
        dlg = panel._progress
        assert "Round 1" in dlg.labelText() and dlg.value() > 0   # progress per pass
        n = len(beat.ticks)
        qtbot.wait(200)
        assert len(beat.ticks) > n   # the GUI thread turns while the preset runs
        qtbot.mouseClick(dlg.findChild(QPushButton), Qt.LeftButton)  # Cancel
        release.set()
    beat.timer.stop()
    assert "Cancelled" in panel.status.text()
    assert serialize(w.document.graph_def) == before and w.document.state_key == key
    assert w.undo_stack.count() == 0 and not w.document.dirty and not panel.busy


def _one_step(qtbot, w):
    panel = w.surgery.passes
    panel.select_pass("inference")
    with qtbot.waitSignal(panel.idle, timeout=120_000):
        qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
    assert w.undo_stack.count() >= 2


def test_an_undo_waits_while_a_job_reads_the_graph_then_happens(qtbot, win):
    w = win
    _one_step(qtbot, w)
    doc = w.document
    after, cursor = serialize(doc.graph_def), doc.cursor
    reading = doc.graph_def
    done = threading.Event()

    def reader():       # a background job copying the graph (as Run Comparison does)
        with hold(doc):
            done.wait(30)
    t = threading.Thread(target=reader)
    t.start()
    qtbot.waitUntil(lambda: __import__("surgeon_gui.ui.commands", fromlist=["held"]).held(doc))
    w.undo_action.trigger()                       # Ctrl+Z
    qtbot.wait(100)
    assert doc.cursor == cursor and serialize(reading) == after   # not edited under the reader
    # a new step while the undo waits is refused (the stack has moved already)
    node = next(n.name for n in doc.graph_def.node if n.op == "Relu6")
    with pytest.raises(StaleStepError):
        push_step(w.undo_stack, EditCommand.compute(doc, "rename_node",
                                                    {"node": node, "new_name": "x_renamed"}))
    done.set()
    t.join()
    qtbot.waitUntil(lambda: doc.cursor == cursor - 1, timeout=5_000)   # then it happens
    assert w.undo_stack.index() == doc.cursor
    w.redo_action.trigger()
    assert doc.cursor == cursor and serialize(doc.graph_def) == after


def test_a_graph_def_is_parsed_in_pieces_to_the_same_graph(tmp_path, mobilenet_v2, monkeypatch):
    gd = mobilenet_v2[0]
    path = tmp_path / "m.pb"
    save_graph(gd, path)
    calls = []
    real = GraphDef.MergeFromString

    def merge(self, data):
        calls.append(len(data))
        return real(self, data)
    monkeypatch.setattr(io, "PARSE_PIECE_BYTES", 1 << 20)
    monkeypatch.setattr(GraphDef, "MergeFromString", merge)
    back = io.read_graph_def(path)
    assert back == gd and len(calls) > 3 and max(calls) < 3 << 20
    bad = tmp_path / "bad.pb"
    data = path.read_bytes()
    bad.write_bytes(data[:len(data) // 2])   # cut inside a node
    with pytest.raises(io.GraphError, match="truncated or corrupt"):
        io.read_graph_def(bad)


def test_the_preset_groups_its_result_and_the_state_before_on_its_worker(qtbot, win, monkeypatch):
    """Adopting the preset's steps and one Ctrl+Z after it build no group tree on the GUI
    thread (the worker built them); redo then finds the result's tree again."""
    from surgeon_gui.core.viewmodel import grouping
    w, panel = win, win.surgery.passes
    built = []
    real_init = grouping.GroupTree.__init__

    def init(self, *a, **k):
        built.append(threading.current_thread() is threading.main_thread())
        return real_init(self, *a, **k)
    monkeypatch.setattr(grouping.GroupTree, "__init__", init)
    panel.select_pass("inference")
    with qtbot.waitSignal(panel.idle, timeout=120_000):
        qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=60_000)
    assert w.undo_stack.count() >= 2
    assert built and not any(built)            # all on the worker
    result_tree = w.view.tree
    assert result_tree.graph is w.document.graph
    w.undo_action.trigger()
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=60_000)
    assert not any(built)                      # the state before was grouped by the worker too
    assert w.view.tree is not result_tree and w.view.tree.graph is w.document.graph
    w.redo_action.trigger()
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=60_000)
    assert w.view.tree is result_tree and not any(built)


def test_a_history_jump_over_big_steps_is_built_on_a_worker_and_swapped_in(
        qtbot, win, monkeypatch):
    """A History jump, undo or redo over big stored node versions (spilled weights) builds its
    target state on a worker thread (Document.prepare_move); the document waits untouched and
    then swaps the built graph in: the same bytes, nothing parsed or read from the scratch file
    on the GUI thread. The view's tree cache keeps no old state's graph alive."""
    import gc
    import sys
    import weakref
    from support import assert_index_fresh
    from surgeon_gui.core.history import delta as delta_mod
    from surgeon_gui.core.history.document import Document
    from surgeon_gui.ui import commands
    w = win
    original = serialize(w.document.graph_def)
    opened = weakref.ref(w.document.graph)
    monkeypatch.setattr(delta_mod.DEFAULT_STORE, "threshold", 4096)   # MobileNet's weights
    monkeypatch.setattr(commands, "READ_AHEAD_BYTES", 1)
    _one_step(qtbot, w)
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=60_000)
    doc = w.document
    final, cursor = serialize(doc.graph_def), doc.cursor
    assert sum(d.spilled_bytes for d in doc.applied) > 100_000   # the preset spilled weights
    cache = w.view._tree_cache_of(doc)
    assert len(cache) >= 2 and all(t.graph is None for t in cache.values() if t is not w.view.tree)
    # the graph as opened is freed (its tree, still cached, let it go)
    qtbot.waitUntil(lambda: gc.collect() is not None and opened() is None, timeout=5_000)

    gui = threading.get_ident()
    on_gui, gate, built = [], threading.Event(), []
    real_get, real_go, real_prepare = (delta_mod.SpillStore.get, delta_mod.GraphDelta._go,
                                       Document.prepare_move)

    def get(self, ref):
        if threading.get_ident() == gui:
            on_gui.append("scratch read")
        return real_get(self, ref)

    def go(self, gd, forward, *a, **k):
        if threading.get_ident() == gui and (self.new_nodes if forward else self.old_nodes):
            on_gui.append("node versions parsed in place")   # (a move that only drops nodes
        return real_go(self, gd, forward, *a, **k)           # parses nothing: it may stay)

    def prepare_move(self, n):
        gate.wait(30)
        p = real_prepare(self, n)
        built.append((threading.get_ident() != gui, p))
        return p
    monkeypatch.setattr(delta_mod.SpillStore, "get", get)
    monkeypatch.setattr(delta_mod.GraphDelta, "_go", go)
    monkeypatch.setattr(Document, "prepare_move", prepare_move)

    last, last_gd = weakref.ref(doc.graph), doc.graph_def
    history = w.surgery.history
    history.setCurrentIndex(history.model().index(0, 0))        # jump to "Opened model"
    qtbot.wait(100)
    assert doc.cursor == cursor and serialize(doc.graph_def) == final   # waits, untouched
    assert commands._pending
    gate.set()
    qtbot.waitUntil(lambda: doc.cursor == 0, timeout=10_000)
    assert built and built[-1][0] and doc.graph is built[-1][1].graph    # built apart, swapped
    assert w.undo_stack.index() == 0 and serialize(doc.graph_def) == original
    assert_index_fresh(doc.graph)
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=60_000)
    assert w.view.tree.graph is doc.graph and w.view.marks() == {}
    # the old state's graph is freed (by a background thread: freeing 357 MB takes 25-50 ms)
    qtbot.waitUntil(lambda: gc.collect() is not None and last() is None, timeout=5_000)
    qtbot.waitUntil(lambda: sys.getrefcount(last_gd) == 2, timeout=5_000)

    history.setCurrentIndex(history.model().index(cursor, 0))   # back to the last step
    qtbot.waitUntil(lambda: doc.cursor == cursor, timeout=10_000)
    assert serialize(doc.graph_def) == final
    for _ in range(cursor):                                     # Ctrl+Z all the way
        w.undo_action.trigger()
        qtbot.waitUntil(lambda: doc.cursor == w.undo_stack.index(), timeout=10_000)
    assert serialize(doc.graph_def) == original
    assert len(built) >= 3 and all(t for t, _ in built) and on_gui == []
    assert commands._reading == {} and not commands._pending
    assert_index_fresh(doc.graph)


def test_release_later_frees_graphs_on_its_own_thread_and_spares_shared_maps(mobilenet_v2,
                                                                            monkeypatch):
    """What a finished worker or a swapped-out state leaves is freed by workers.release_later
    on a background thread, each graph by itself; an index sharing maps with another
    (Graph.sharing_index) leaves that other one whole."""
    import weakref
    from surgeon_gui.core.model.graph import Graph
    from surgeon_gui.ui import workers
    gd = mobilenet_v2[0]
    monkeypatch.setattr(workers, "EMPTIED_MAP_SIZE", 1)   # (MobileNetV2's maps are small)
    emptied = []
    real_empty = workers._empty_index
    monkeypatch.setattr(workers, "_empty_index", lambda g: emptied.append(
        {k: len(v) for k, v in vars(g).items() if isinstance(v, dict)}) or real_empty(g))
    big = Graph(gd)
    big.ops, big._build_consumers()
    kept = big.sharing_index()            # shares _consumers and _ops with ``big``
    lone = Graph(gd.__class__.FromString(gd.SerializeToString()))
    freed_on = []
    weakref.finalize(lone, lambda: freed_on.append(threading.current_thread().name))
    refs = [weakref.ref(big), weakref.ref(lone)]
    workers.release_later(([big, lone], {"x": None}))
    del big, lone
    deadline = time.time() + 10
    while any(r() is not None for r in refs) and time.time() < deadline:
        time.sleep(0.01)
    assert all(r() is None for r in refs) and freed_on == ["release-later"]
    assert len(emptied) == 2      # (each index emptied map by map before it went)
    assert kept._consumers and kept._ops and len(kept.nodes) == len(gd.node)
    assert kept.consumers(gd.node[0].name) == Graph(gd).consumers(gd.node[0].name)


def test_build_quietly_leaves_what_it_built_out_of_the_collectors_generations():
    """A big build on a worker (the preset's group trees) runs with the collector off and what
    it made is frozen before the collector is back: no young-generation collection walks it
    afterwards (that walk held the GIL 0.25 s on the 107k-node graph). The collector's state
    is as it was, on or off, and what the build returned comes back."""
    import gc
    from surgeon_gui.ui.workers import build_quietly
    assert gc.isenabled()
    seen = []

    def make():
        seen.append(gc.isenabled())
        return [[i] for i in range(50_000)]    # many small containers, no cycles
    try:
        out = build_quietly(make)
        assert seen == [False] and gc.isenabled()
        assert len(out) == 50_000 and out[-1] == [49_999]
        # frozen: in none of the collector's generations (get_objects leaves the frozen out;
        # the freeze count alone moves with frozen objects freed meanwhile)
        assert not any(o is out or o is out[-1] for o in gc.get_objects())
        assert gc.get_count()[0] < 1_000           # nothing of it left in the young generation
        gc.disable()
        try:
            build_quietly(make)
            assert not gc.isenabled()           # (the caller's pause is left to the caller)
        finally:
            gc.enable()
    finally:
        gc.unfreeze()


def test_a_freed_index_lets_go_of_its_inputs_in_order_unless_someone_holds_them(mobilenet_v2):
    """release_later's _empty_index drops an index's ``inputs_in_order`` (cut a slice at a time
    when nobody else has its list) and leaves a list someone else still holds whole."""
    from surgeon_gui.core.model.graph import Graph
    from surgeon_gui.ui import workers
    gd = mobilenet_v2[0]
    g = Graph(gd)
    g._build_consumers()
    assert isinstance(g.inputs_in_order, tuple) and g.inputs_in_order[1]
    workers._empty_index(g)
    assert vars(g)["inputs_in_order"] is None
    h = Graph(gd)
    h._build_consumers()
    held = h.inputs_in_order[1]
    n = len(held)
    workers._empty_index(h)
    assert vars(h)["inputs_in_order"] is None and len(held) == n    # not ours to empty


def test_the_preset_makes_the_history_tags_of_its_result_on_its_worker(qtbot, win, monkeypatch):
    """What each folded node was (Document.origins and the view's tags made of it) is worked out
    by the preset's worker for the state its steps lead to: adopting them walks no history on
    the GUI thread, and the boxes still say "folded BN"."""
    from surgeon_gui.core.history.document import Document
    from surgeon_gui.ui import graph_view, passes_panel
    on_gui = {"origins": 0, "tags": 0}
    real_of, real_tags = Document._origins_of, graph_view.tags_of

    def origins_of(self, *a, **k):
        # (a walk, not a look-up: only count the ones that make something new)
        memo_before = list(self.__dict__.get("_origins_memo", []))
        out = real_of(self, *a, **k)
        if threading.current_thread() is threading.main_thread() and \
                not any(m[3] is out for m in memo_before):
            on_gui["origins"] += 1
        return out

    def tags_of(origins):
        if threading.current_thread() is threading.main_thread():
            on_gui["tags"] += 1
        return real_tags(origins)
    monkeypatch.setattr(Document, "_origins_of", origins_of)
    monkeypatch.setattr(graph_view, "tags_of", tags_of)
    monkeypatch.setattr(passes_panel, "tags_of", tags_of)
    w, panel = win, win.surgery.passes
    panel.select_pass("inference")
    with qtbot.waitSignal(panel.idle, timeout=120_000):
        qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=60_000)
    assert w.undo_stack.count() >= 2
    assert on_gui == {"origins": 0, "tags": 0}
    tags = w.view.graph_scene.tags
    assert tags and tags == real_tags(w.document.origins())
    assert any(t[0] == "folded BN" for t in tags.values())


def test_a_job_runs_with_no_full_collection_and_the_thresholds_come_back(qtbot):
    """While a Worker's job runs, no automatic full (generation-2) collection starts, on any
    thread: each walked a pass's objects on the 107k-node graph for 50-150 ms holding the GIL
    (the GUI thread's long gaps while the preset ran). Young collections go on, and the
    collector's thresholds are as before once the job is done. The same allocations outside a
    job do start full collections (the check can fail)."""
    import gc
    from surgeon_gui.ui.workers import Worker
    gens: list[tuple[int, bool]] = []

    def seen(phase, info):
        if phase == "start":
            gens.append((info["generation"], threading.current_thread() is not main))
    main = threading.main_thread()
    gc.collect()
    n = max(200_000, len(gc.get_objects()))    # survivors: over a quarter of the long-lived

    def job():
        return [[i] for i in range(n)]         # tracked containers that live on
    before = gc.get_threshold()
    gc.callbacks.append(seen)
    try:
        kept = job()                           # outside a job: full collections start
        assert any(g == 2 for g, _ in gens)
        del kept
        gc.collect()
        gens.clear()
        w = Worker(job)
        with qtbot.waitSignal(w.signals.done, timeout=60_000):
            w.start()
        assert any(g == 0 and on_worker for g, on_worker in gens)   # young ones went on
        assert not any(g == 2 for g, _ in gens)
        assert w.wait(10) and gc.get_threshold() == before
    finally:
        gc.callbacks.remove(seen)


def test_release_later_frees_a_failed_jobs_graph_from_its_traceback(mobilenet_v2, monkeypatch):
    """A cancelled or failed job's exception holds, through its traceback's frames, the job's
    locals (the preset's working copy of the graph): release_later finds the graph there and
    frees it by itself, map by map, after clearing the frames one at a time (the cancelled
    preset's exception freed in one go held the GIL 157 ms on the 107k-node graph)."""
    import weakref
    from surgeon_gui.core.model.graph import Graph
    from surgeon_gui.ui import workers
    monkeypatch.setattr(workers, "EMPTIED_MAP_SIZE", 1)   # (MobileNetV2's maps are small)
    emptied = []
    real_empty = workers._empty_index
    monkeypatch.setattr(workers, "_empty_index", lambda g: emptied.append(type(g).__name__)
                        or real_empty(g))

    def job():
        working = Graph(mobilenet_v2[0].__class__.FromString(
            mobilenet_v2[0].SerializeToString()))
        working._build_consumers()
        refs.append(weakref.ref(working))
        raise InterruptedError("cancelled")
    refs: list = []
    try:
        job()
    except InterruptedError as e:
        err = e
    frame = err.__traceback__.tb_next.tb_frame   # job's frame
    assert "working" in frame.f_locals
    workers.release_later(None, err)
    del err
    deadline = time.time() + 10
    while refs[0]() is not None and time.time() < deadline:
        time.sleep(0.01)
    assert refs[0]() is None and emptied == ["Graph"]
    assert not frame.f_locals                    # (the frame was cleared)


def test_what_a_paused_collector_block_made_is_out_of_the_young_generation():
    """graph.gc_paused (index builds, Document.adopt, group trees) freezes what lives when it
    ends: the 300k containers of the 107k-node graph's consumer map, left young, were walked by
    the next young collection in one C call holding the GIL (40-145 ms on the preset's
    worker). Frozen objects still go when their last reference does."""
    import gc
    import weakref
    from surgeon_gui.core.model.graph import gc_paused

    class Box(list):
        pass
    assert gc.isenabled()
    try:
        with gc_paused():
            assert not gc.isenabled()
            made = [Box([i]) for i in range(100_000)]
        assert gc.isenabled()
        assert len(gc.get_objects(generation=0)) < 2_000      # none of the 100k is young
        assert gc.get_freeze_count() >= 100_000 and made[-1] == [99_999]
        last = weakref.ref(made[-1])
        del made
        assert last() is None                                 # freed by its reference count
        gc.disable()
        with gc_paused():
            pass
        assert not gc.isenabled()                            # (a caller's pause stays)
        gc.enable()
    finally:
        gc.enable()
        gc.unfreeze()
