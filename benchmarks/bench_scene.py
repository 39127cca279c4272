"""The graph view's scene on big graphs (issue 12, goal 3): expand-all, frames, undo/redo.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_scene.py [MODEL.pb ...] [--out FILE]

Defaults: the 53k- and 107k-node TF1 graphs of ``make_big_models.py --only cond50k --only
cond100k``. Each model runs in a fresh process with a bare :class:`GraphView` (1600×1000) and
reports wall-clock **and CPU** time (``time.process_time``: every thread of the process, so the
layout worker and Qt's paint threads count; the machine is shared, so CPU is the steadier
figure). Loading and grouping are not timed here (see bench_view / bench_startup).

- **expand all**: ``expand_all()`` until the view is laid out and painted once (it fits the
  whole graph: the far-zoom overview). Split: the layout (worker thread, ``Placement.seconds``),
  the scene (``apply_placement`` + decorations, GUI thread) and the first paint.
- **frames** on the expanded graph, each a full synchronous repaint of the viewport (the worst
  case: a real scroll repaints only the exposed strip): 30 scroll steps of 80 px at 100 % and at
  25 % zoom around the median node, 12 zoom steps (×0.8 out, ×1.25 back) from 100 %, and the
  whole graph fitted. Mean and max. Before expanding: the same 12 zoom steps on the default
  view (collapsed stages), centred on its middle box.
- **undo / redo**: a one-node edit (delete a weight's ``/read``), undone and redone 3×, with the
  default view and with everything expanded, and with everything expanded the deletion of a
  Relu in the middle (a box: its block's layout changes); the time until the view is laid out
  and painted
  again (and, apart, the minimap's redraw that follows 300 ms later), and the view's own
  part: the GUI-thread time in the view's reaction
  (``_on_document_changed`` + ``_apply_layout`` + paint), the rest being the document's undo and
  the layout worker.

``--box-undo ROUNDS [--code OTHER_CHECKOUT]``: only the undo/redo of the Relu deleted mid-graph
with everything expanded, each checkout in its own process, alternating (side by side, in one
run); prints a table (``measure_box_undo``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = HERE / "_models"
DEFAULT = [MODELS / "tf1_cond_bn_50k.pb", MODELS / "tf1_cond_bn_100k.pb"]
RESULTS = HERE / "results_scene.md"



def _settle(app, view) -> None:
    """Until the view is laid out (its layout worker done), then one painted frame."""
    app.processEvents()
    while view.layout_pending:
        app.processEvents()
        time.sleep(0.001)
    app.processEvents()
    view.viewport().repaint()

def live_items(scene) -> int:
    """Scene items that exist (a lazy scene's; every item of an older, eager one)."""
    if hasattr(scene, "live_edges"):
        return len(scene.live) + len(scene.live_edges)
    return len(scene.items())


class Clock:
    def __init__(self):
        self.w, self.c = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.w, time.process_time() - self.c


def measure(path: Path) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QTransform, QUndoStack
    from PySide6.QtWidgets import QApplication

    from surgeon_gui.core.history.document import Document
    from surgeon_gui.core.model.io import load_model
    from surgeon_gui.core.viewmodel.grouping import GroupTree
    from surgeon_gui.ui import graph_view as gv
    from surgeon_gui.ui.commands import EditCommand, push_step
    app = QApplication.instance() or QApplication(["bench_scene"])

    def settle(view):
        _settle(app, view)

    doc = Document.from_loaded(load_model(str(path)))
    tree = GroupTree(doc.graph)
    view = gv.GraphView()
    view.resize(1600, 1000)
    view.show()
    app.processEvents()
    view.set_document(doc, reset_view=True, tree=tree)
    settle(view)
    out: dict = {"model": path.name, "nodes": len(doc.graph)}

    # the view's own GUI-thread time, per phase
    spent = {"scene": 0.0, "view": 0.0}
    orig_apply = view.graph_scene.apply_placement
    orig_changed, orig_layout = view._on_document_changed, view._apply_layout

    depth = {"scene": 0, "view": 0}

    def timed(key, fn):
        def run(*a):
            depth[key] += 1  # nested (a layout kept from before is applied at once): once
            t0 = time.perf_counter()
            try:
                return fn(*a)
            finally:
                depth[key] -= 1
                if not depth[key]:
                    spent[key] += time.perf_counter() - t0
        return run
    view.graph_scene.apply_placement = timed("scene", orig_apply)
    doc.changed.disconnect(view._on_document_changed)
    view._on_document_changed = timed("view", orig_changed)
    doc.changed.connect(view._on_document_changed)
    view._apply_layout = timed("view", orig_layout)

    # ------------------------------------------------------------ undo/redo, default view
    stack = QUndoStack()
    read = next(n.name for n in doc.graph_def.node if n.op == "Identity"
                and n.name.endswith("/read"))
    relus = [n.name for n in doc.graph_def.node if n.op == "Relu"]
    relu = relus[len(relus) // 2]

    def undo_redo(label, node=read):
        push_step(stack, EditCommand.compute(doc, "remove_node", {"node": node}))
        settle(view)
        rows = []
        for _ in range(3):
            for op in (stack.undo, stack.redo):
                spent["view"] = 0.0
                clock = Clock()
                op()
                settle(view)
                paint = Clock()
                view.viewport().repaint()
                pw, _ = paint.stop()
                w, c = clock.stop()
                # the minimap is drawn again 300 ms after the layout (a timer, GUI thread):
                # not in the step's time, but the GUI is busy with it then
                mini = Clock()
                view.minimap._timer.stop()
                view.minimap._render()
                rows.append((w, c, spent["view"] + pw, mini.stop()[0]))
        stack.undo()
        settle(view)
        out[f"undo_{label}_wall_s"] = round(statistics.median(r[0] for r in rows), 3)
        out[f"undo_{label}_max_s"] = round(max(r[0] for r in rows), 3)
        out[f"undo_{label}_cpu_s"] = round(statistics.median(r[1] for r in rows), 3)
        out[f"undo_{label}_view_s"] = round(statistics.median(r[2] for r in rows), 3)
        out[f"undo_{label}_view_max_s"] = round(max(r[2] for r in rows), 3)
        out[f"undo_{label}_minimap_s"] = round(statistics.median(r[3] for r in rows), 3)

    undo_redo("default")

    def frame(step) -> tuple[float, float]:
        clock = Clock()
        step()
        app.processEvents()
        view.viewport().repaint()
        return clock.stop()

    def record(label, frames):
        out[f"{label}_ms"] = round(1000 * statistics.mean(f[0] for f in frames), 1)
        out[f"{label}_max_ms"] = round(1000 * max(f[0] for f in frames), 1)
        out[f"{label}_cpu_ms"] = round(1000 * statistics.mean(f[1] for f in frames), 1)
        out[f"{label}_cpu_max_ms"] = round(1000 * max(f[1] for f in frames), 1)

    # ------------------------------------------------------------ zoom, default view
    # (the collapsed stages of a wrapped top level: every box drawn anew at each scale)
    boxes = view.placement.boxes
    centre = sorted((QPointF(b.x + b.w / 2, b.y + b.h / 2) for b in boxes.values()),
                    key=lambda p: (p.y(), p.x()))[len(boxes) // 2]
    view.setTransform(QTransform())
    view.centerOn(centre)
    app.processEvents()
    view.viewport().repaint()
    record("zoom_default", [frame(view.zoom_out if i < 6 else view.zoom_in) for i in range(12)])

    # ------------------------------------------------------------ expand all
    spent["scene"] = 0.0
    clock = Clock()
    view.expand_all()
    while view.layout_pending:
        app.processEvents()
        time.sleep(0.001)
    app.processEvents()
    before_paint = Clock()
    view.viewport().repaint()
    out["expand_paint_s"] = round(before_paint.stop()[0], 3)
    w, c = clock.stop()
    out["expand_all_s"], out["expand_all_cpu_s"] = round(w, 3), round(c, 3)
    out["expand_layout_s"] = round(view.placement.seconds, 3)
    out["expand_scene_s"] = round(spent["scene"], 3)
    out["units"] = len(view.placement.boxes)
    out["edges"] = len(view.placement.edges)
    out["fit_scale"] = round(view.transform().m11(), 4)

    # ------------------------------------------------------------ frames
    boxes = view.placement.boxes
    nodes = sorted((QPointF(b.x + b.w / 2, b.y + b.h / 2) for k, b in boxes.items()
                    if k.startswith("n:")), key=lambda p: (p.y(), p.x()))
    middle = nodes[len(nodes) // 2]

    for label, scale in (("pan100", 1.0), ("pan25", 0.25)):
        view.setTransform(QTransform.fromScale(scale * 0.5, scale * 0.5))
        view.setTransform(QTransform.fromScale(scale, scale))
        view.centerOn(middle)
        app.processEvents()
        view.viewport().repaint()
        bar = view.verticalScrollBar()
        record(label, [frame(lambda i=i, bar=bar: bar.setValue(
            bar.value() + (80 if i % 10 < 5 else -80))) for i in range(30)])
        out[f"{label}_live"] = live_items(view.graph_scene)
    view.setTransform(QTransform())
    view.centerOn(middle)
    app.processEvents()
    view.viewport().repaint()
    record("zoom", [frame(view.zoom_out if i < 6 else view.zoom_in) for i in range(12)])
    view.fit()
    app.processEvents()
    view.viewport().repaint()
    record("fit", [frame(lambda: None) for _ in range(5)])
    view.setTransform(QTransform.fromScale(0.1, 0.1))
    view.centerOn(middle)
    app.processEvents()
    view.viewport().repaint()
    bar = view.verticalScrollBar()
    record("pan10", [frame(lambda i=i: bar.setValue(bar.value() + (80 if i % 10 < 5 else -80)))
                     for i in range(30)])

    # ------------------------------------------------------------ undo/redo, all expanded
    view.setTransform(QTransform())
    view.centerOn(middle)
    settle(view)
    undo_redo("expanded")
    # a node drawn as a box (a Relu in the middle): its container is laid out again and
    # everything after it in the column moves
    view.centerOn(view.graph_scene.boxes["n:" + relu].x, view.graph_scene.boxes["n:" + relu].y)
    settle(view)
    undo_redo("expanded_box", relu)
    view.close()
    return out


# ---------------------------------------------------------------------------- driver
def write_results(rows: list[dict], load: str, path: Path = RESULTS) -> None:
    lines = [
        "# The graph view's scene on big graphs (issue 12, goal 3)",
        "",
        (f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with the team's other "
         f"work (load average {load} during the run: wall-clock is stretched, CPU time is the "
         "steadier figure). Offscreen Qt, bare GraphView 1600×1000. Made by "
         "`benchmarks/bench_scene.py` (see its docstring for what each column times)."),
        "",
        ("Targets: expand-all of a 50k-node graph ≤ 5 s; pan and zoom frames ≤ 33 ms; undo and "
         "redo of a step ≤ 0.3 s."),
        "",
        ("| model | nodes | expand all: wall (CPU) | of which layout / scene / paint | units + "
         "edges | pan 100 % | pan 25 % | zoom step | pan 10 % (overview) | whole graph frame | "
         "zoom step, default view |"),
        "|---|---:|---:|---|---:|---|---|---|---|---|---|",
    ]

    def fr(r, k):
        cpu_max = f", max {r[k + '_cpu_max_ms']}" if k + "_cpu_max_ms" in r else ""
        return f"{r[k + '_ms']} ms (max {r[k + '_max_ms']}; CPU {r[k + '_cpu_ms']}{cpu_max})"
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | failed: {r['error']} | | | | | | | | | |")
            continue
        lines.append(
            f"| {r['model']} | {r['nodes']:,} | {r['expand_all_s']:.2f} s "
            f"({r['expand_all_cpu_s']:.2f} s) | {r['expand_layout_s']:.2f} / "
            f"{r['expand_scene_s']:.2f} / {r['expand_paint_s']:.2f} s | "
            f"{r['units']:,} + {r['edges']:,} | {fr(r, 'pan100')}, {r['pan100_live']} items "
            f"alive | {fr(r, 'pan25')}, {r['pan25_live']} alive | {fr(r, 'zoom')} | "
            f"{fr(r, 'pan10')} | {fr(r, 'fit')} | "
            + (f"{fr(r, 'zoom_default')} |" if "zoom_default_ms" in r else " |"))
    lines += ["", "Undo and redo of a one-node edit (median of 6, max), until the view is laid "
              "out and painted again; \"view\" is the GUI-thread time of the view's reaction "
              "(the rest: the document's undo and the layout worker).", "",
              "The edit deletes a weight's `/read` (drawn as a badge on its consumer: no box "
              "moves); \"a box\" deletes a Relu in the middle of the graph (its block is laid "
              "out again and what follows it in its column moves).", "",
              "| model | default view: wall (CPU) | its view part (max) | all expanded: wall "
              "(CPU) | its view part (max) | all expanded, a box: wall (CPU) | its view part "
              "(max) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            continue
        lines.append(
            f"| {r['model']} | {r['undo_default_wall_s']:.3f} s ({r['undo_default_cpu_s']:.3f} s)"
            f", max {r['undo_default_max_s']:.3f} | {r['undo_default_view_s']:.3f} s "
            f"({r['undo_default_view_max_s']:.3f}) | {r['undo_expanded_wall_s']:.3f} s "
            f"({r['undo_expanded_cpu_s']:.3f} s), max {r['undo_expanded_max_s']:.3f} | "
            f"{r['undo_expanded_view_s']:.3f} s ({r['undo_expanded_view_max_s']:.3f}) | "
            + (f"{r['undo_expanded_box_wall_s']:.3f} s ({r['undo_expanded_box_cpu_s']:.3f} s), "
               f"max {r['undo_expanded_box_max_s']:.3f} | {r['undo_expanded_box_view_s']:.3f} s "
               f"({r['undo_expanded_box_view_max_s']:.3f}) |" if "undo_expanded_box_wall_s" in r
               else " | |"))
    if any("undo_expanded_box_minimap_s" in r for r in rows):
        lines += ["", "The minimap is drawn again 300 ms after each undo/redo (GUI thread, not in "
                  "the times above), median: " + "; ".join(
                      f"{r['model']}: default {r['undo_default_minimap_s']:.3f} s, all expanded "
                      f"{r['undo_expanded_minimap_s']:.3f} s, a box "
                      f"{r['undo_expanded_box_minimap_s']:.3f} s"
                      for r in rows if "undo_expanded_box_minimap_s" in r) + "."]
    lines += ["", "Re-run: `QT_QPA_PLATFORM=offscreen python benchmarks/bench_scene.py`.", ""]
    path.write_text("\n".join(lines))


def _expanded_view(path: Path, code: Path):
    """``code``'s GraphView (1600x1000, offscreen) on the model at ``path``, everything
    expanded and laid out, painted once: (app, document, view)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(code))
    from PySide6.QtWidgets import QApplication

    from surgeon_gui.core.history.document import Document
    from surgeon_gui.core.model.io import load_model
    from surgeon_gui.core.viewmodel.grouping import GroupTree
    from surgeon_gui.ui import graph_view as gv
    assert Path(gv.__file__).resolve().is_relative_to(code.resolve()), gv.__file__
    app = QApplication.instance() or QApplication(["bench_scene"])
    doc = Document.from_loaded(load_model(str(path)))
    view = gv.GraphView()
    view.resize(1600, 1000)
    view.show()
    app.processEvents()
    view.set_document(doc, reset_view=True, tree=GroupTree(doc.graph))
    _settle(app, view)
    view.expand_all()
    _settle(app, view)
    return app, doc, view


# ---------------------------------------------------------------------------- a box's undo
def measure_box_undo(path: Path, code: Path = ROOT, steps: int = 8) -> dict:
    """Undo and redo of a Relu deleted in the middle of the graph with everything expanded
    (``--box-undo``: the last column of the undo table alone, so that checkouts can be run
    side by side, alternating): ``code`` is the tree whose surgeon_gui is timed. Per step,
    until the view is laid out and painted: wall, the process's CPU and the GUI thread's CPU
    (``time.thread_time``); then the minimap's redraw (300 ms later in the app), wall and
    CPU."""
    app, doc, view = _expanded_view(path, code)
    from PySide6.QtGui import QTransform, QUndoStack

    from surgeon_gui.ui.commands import EditCommand, push_step
    relus = [n.name for n in doc.graph_def.node if n.op == "Relu"]
    relu = relus[len(relus) // 2]
    b = view.graph_scene.boxes["n:" + relu]
    view.setTransform(QTransform())
    view.centerOn(b.x, b.y)
    _settle(app, view)
    stack = QUndoStack()
    push_step(stack, EditCommand.compute(doc, "remove_node", {"node": relu}))
    _settle(app, view)
    view.minimap._timer.stop()
    view.minimap._render()
    rows = []
    for i in range(steps):
        w0, c0, t0 = time.perf_counter(), time.process_time(), time.thread_time()
        (stack.undo if i % 2 == 0 else stack.redo)()
        _settle(app, view)
        view.viewport().repaint()
        row = [time.perf_counter() - w0, time.process_time() - c0, time.thread_time() - t0]
        w0, t0 = time.perf_counter(), time.thread_time()
        view.minimap._timer.stop()
        view.minimap._render()
        rows.append(row + [time.perf_counter() - w0, time.thread_time() - t0])
    view.close()
    med = [round(statistics.median(r[k] for r in rows), 3) for k in range(5)]
    return {"model": path.name, "code": str(code), "units": len(view.placement.boxes),
            "step_wall": med[0], "step_cpu": med[1], "step_gui_cpu": med[2],
            "step_max": round(max(r[0] for r in rows), 3),
            "minimap_wall": med[3], "minimap_cpu": med[4]}


def _alternate(flag: str, models: list[Path], codes: list[Path], rounds: int, header: list[str],
               row, cells: int) -> int:
    """Each checkout in its own process (``flag`` MODEL --code CODE, one JSON line out),
    alternating, ``rounds`` times; a table on stdout: model, code, round, load, then ``row(r)``
    (``cells`` columns)."""
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               TF_CPP_MIN_LOG_LEVEL="2")
    out = list(header)
    ok = True
    for m in models:
        for rnd in range(1, rounds + 1):
            for code in codes:
                load = os.getloadavg()[0]
                proc = subprocess.run([sys.executable, __file__, flag, str(m),
                                       "--code", str(code)], capture_output=True, text=True,
                                      env=env)
                load = f"{load:.1f}–{os.getloadavg()[0]:.1f}"
                try:
                    r = json.loads(proc.stdout.strip().splitlines()[-1])
                except (IndexError, json.JSONDecodeError):
                    ok = False
                    err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                    out.append(f"| {m.name} | {code} | {rnd} | {load} | failed: {err} |"
                               + " |" * (cells - 1))
                    continue
                print(json.dumps(r), flush=True)
                out.append(f"| {m.name} | {Path(code).name} | {rnd} | {load} | {row(r)} |")
    print("\n".join(out))
    return 0 if ok else 1


def run_box_undo(models: list[Path], codes: list[Path], rounds: int) -> int:
    """Each checkout in its own process, alternating, ``rounds`` times; a table on stdout."""
    return _alternate(
        "--one-box-undo", models, codes, rounds,
        ["| model | code | round | load | step: wall (CPU; GUI thread CPU), median | step max "
         "| minimap redraw: wall (CPU) |", "|---|---|---:|---|---|---:|---|"],
        lambda r: (f"{r['step_wall']:.3f} s ({r['step_cpu']:.3f}; {r['step_gui_cpu']:.3f}) | "
                   f"{r['step_max']:.3f} | {r['minimap_wall']:.3f} s ({r['minimap_cpu']:.3f})"),
        3)

def measure_pan10(path: Path, code: Path = ROOT, frames: int = 60) -> dict:
    """The far-zoom overview pan alone (``--pan10``: the "pan 10 %" column, so that checkouts
    can be run side by side, alternating): everything expanded, the view at 10 % centred on
    the middle node, ``frames`` scroll steps of 80 px (as in the full run), each a full
    synchronous repaint; wall and CPU per frame, mean and max (first 5 frames: warm-up)."""
    app, doc, view = _expanded_view(path, code)
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QTransform
    boxes = view.placement.boxes
    nodes = sorted((QPointF(b.x + b.w / 2, b.y + b.h / 2) for k, b in boxes.items()
                    if k.startswith("n:")), key=lambda p: (p.y(), p.x()))
    view.setTransform(QTransform.fromScale(0.1, 0.1))
    view.centerOn(nodes[len(nodes) // 2])
    app.processEvents()
    view.viewport().repaint()
    bar = view.verticalScrollBar()
    rows = []
    for i in range(frames + 5):
        clock = Clock()
        bar.setValue(bar.value() + (80 if i % 10 < 5 else -80))
        app.processEvents()
        view.viewport().repaint()
        rows.append(clock.stop())
    rows = rows[5:]
    return {"model": path.name, "wall_ms": round(1000 * statistics.mean(r[0] for r in rows), 1),
            "wall_max_ms": round(1000 * max(r[0] for r in rows), 1),
            "cpu_ms": round(1000 * statistics.mean(r[1] for r in rows), 1),
            "cpu_max_ms": round(1000 * max(r[1] for r in rows), 1)}


def run_pan10(models: list[Path], codes: list[Path], rounds: int) -> int:
    """Each checkout in its own process, alternating, ``rounds`` times; a table on stdout."""
    return _alternate(
        "--one-pan10", models, codes, rounds,
        ["| model | code | round | load | pan 10 % frame: wall mean (max) | CPU mean (max) |",
         "|---|---|---:|---|---|---|"],
        lambda r: (f"{r['wall_ms']:.1f} ms ({r['wall_max_ms']:.1f}) | "
                   f"{r['cpu_ms']:.1f} ms ({r['cpu_max_ms']:.1f})"),
        2)


# ---------------------------------------------------------------------------- new edits
NEW_EDIT_RESULTS = HERE / "results_newedit.md"


def measure_new_edits(path: Path, code: Path = ROOT) -> dict:
    """A new edit with everything expanded (``--new-edits``): a Relu deleted in the middle of
    the graph, three times at different places (each a step never seen before, so no kept
    placement serves it), then a weight's ``/read`` (a badge). ``code``: the tree whose
    surgeon_gui is timed (another checkout, for a side-by-side run). Per edit: from the push
    until laid out and painted, wall and CPU; the GUI thread's part (the view's reaction:
    ``_on_document_changed``, ``_apply_layout``, the paint), and the phases: the group tree
    and the visible edges (GUI thread), the layout with its diff (worker: ``LayoutEngine.layout``
    + ``placement_diff``), the scene's update (GUI thread)."""
    app, doc, view = _expanded_view(path, code)
    import tensorflow  # noqa: F401  (an edit's first TF use is not what is timed here)
    from PySide6.QtGui import QUndoStack

    from surgeon_gui.core.viewmodel import grouping, layout
    from surgeon_gui.ui import graph_view as gv
    from surgeon_gui.ui.commands import EditCommand, push_step

    def settle():
        _settle(app, view)
    spent: dict[str, float] = {}

    def timed(owner, name, label):
        fn = getattr(owner, name)

        def run(*a, **k):  # wall, and the CPU time of the thread that runs it
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - t0
                spent[label + "_cpu"] = spent.get(label + "_cpu", 0.0) + time.thread_time() - c0
        setattr(owner, name, run)
    timed(grouping.GroupTree, "__init__", "tree")
    timed(grouping.GroupTree, "visible_graph", "visible")
    if hasattr(gv, "derive_for_change"):   # (a new edit's tree and edges from the old ones)
        timed(gv, "derive_for_change", "tree")
        timed(gv, "derive_visible", "visible")
    timed(layout.LayoutEngine, "layout", "layout")
    timed(gv, "placement_diff", "layout")
    timed(view.graph_scene, "apply_placement", "scene")
    doc.changed.disconnect(view._on_document_changed)
    timed(view, "_on_document_changed", "gui")
    doc.changed.connect(view._on_document_changed)
    timed(view, "_apply_layout", "gui")
    stack = QUndoStack()
    relus = [n.name for n in doc.graph_def.node if n.op == "Relu"]
    read = next(n.name for n in doc.graph_def.node if n.op == "Identity"
                and n.name.endswith("/read"))
    rows = []
    for node in [relus[len(relus) * i // 8] for i in (3, 4, 5)] + [read]:
        c0 = time.thread_time()
        cmd = EditCommand.compute(doc, "remove_node", {"node": node})  # (the edit itself)
        compute_cpu = time.thread_time() - c0
        spent.clear()
        clock = Clock()
        push_step(stack, cmd)
        settle()
        paint, p0 = Clock(), time.thread_time()
        view.viewport().repaint()
        paint_cpu = time.thread_time() - p0
        w, c = clock.stop()
        rows.append({"node": node, "wall": w, "cpu": c, "gui": spent.get("gui", 0.0)
                     + paint.stop()[0], "gui_cpu": spent.get("gui_cpu", 0.0) + paint_cpu,
                     "compute_cpu": compute_cpu,
                     "made": getattr(view, "last_tree_made", "") or "built",
                     "mode": getattr(view.engine, "last_mode", "full"),
                     **{k + c: spent.get(k + c, 0.0) for k in ("tree", "visible", "layout", "scene")
                        for c in ("", "_cpu")}})
    view.close()
    return {"model": path.name, "nodes": len(doc.graph), "units": len(view.placement.boxes),
            "code": str(code), "edits": rows}


def write_new_edits(runs: list[dict], load: str, path: Path = NEW_EDIT_RESULTS) -> None:
    lines = [
        "# A new edit with everything expanded (issue 12, goal 3)", "",
        (f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with the team's other "
         f"work (load average {load} during the run). Offscreen Qt, bare GraphView 1600×1000, "
         "everything expanded. Made by `benchmarks/bench_scene.py --new-edits` (see "
         "`measure_new_edits`): each checkout in its own process, one after the other in one "
         "run."), "",
        ("Edits 1-3 delete a Relu in the middle of the graph (a box: its block is laid out "
         "again and what follows it moves), edit 4 a weight's `/read` (a badge). Each is a new "
         "step (no placement kept for it). Times in seconds: until the view is laid out and "
         "painted, wall (CPU of the process); \"GUI\" is the GUI thread's part, wall (CPU) "
         "(the window does not respond meanwhile: the view's reaction to the step, the scene, "
         "the paint); \"edit\" the CPU of computing the edit itself (`EditCommand.compute`, "
         "GUI thread, before the step is pushed); the phases, wall (CPU of the thread that "
         "runs it): the group tree and the visible edges (GUI thread; \"derived\" from the "
         "state before, or \"built\" afresh), the layout and its diff (worker), the scene "
         "(GUI thread)."), "",
        "| model | code | edit | wall (CPU) | GUI thread | edit | tree | visible edges "
        "| layout + diff | scene | tree made | layout made |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['code']} | failed: {r['error']} | | | | | | | "
                         "| | |")
            continue
        for i, e in enumerate(r["edits"], 1):
            lines.append(
                f"| {r['model']} | {Path(r['code']).name} | {i} | {e['wall']:.2f} "
                f"({e['cpu']:.2f}) | {e['gui']:.2f} ({e.get('gui_cpu', float('nan')):.2f}) | "
                f"{e.get('compute_cpu', float('nan')):.2f} | "
                + " | ".join(f"{e[k]:.2f} ({e.get(k + '_cpu', float('nan')):.2f})"
                             for k in ("tree", "visible", "layout", "scene"))
                + f" | {e.get('made', '')} | {e['mode']} |")
    lines += ["", "Re-run: `QT_QPA_PLATFORM=offscreen python benchmarks/bench_scene.py "
              "--new-edits --code /path/to/other/checkout`.", ""]
    path.write_text("\n".join(lines))


def run_new_edits(models: list[Path], codes: list[Path], out: Path) -> int:
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               TF_CPP_MIN_LOG_LEVEL="2")
    runs, loads = [], []
    for m in models:
        for code in codes:
            loads.append(os.getloadavg()[0])
            proc = subprocess.run([sys.executable, __file__, "--one-new-edit", str(m),
                                   "--code", str(code)], capture_output=True, text=True,
                                  env=env)
            loads.append(os.getloadavg()[0])
            try:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                row = {"model": m.name, "code": str(code),
                       "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
            runs.append(row)
            print(json.dumps(row), flush=True)
    write_new_edits(runs, f"{min(loads):.1f}–{max(loads):.1f}", out)
    print(f"wrote {out}")
    return 0 if all("error" not in r for r in runs) else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--new-edits", action="store_true",
                    help="time new edits with everything expanded (results_newedit.md)")
    ap.add_argument("--code", type=Path, action="append",
                    help="with --new-edits, --box-undo or --pan10: also time this checkout's "
                         "surgeon_gui (repeatable)")
    ap.add_argument("--box-undo", type=int, metavar="ROUNDS", default=0,
                    help="only undo/redo of a box deleted mid-graph, everything expanded, each "
                         "checkout (--code, then this one) in turn, ROUNDS times; a table on "
                         "stdout")
    ap.add_argument("--pan10", type=int, metavar="ROUNDS", default=0,
                    help="only the far-zoom (10 %%) pan, everything expanded, each checkout "
                         "(--code, then this one) in turn, ROUNDS times; a table on stdout")
    ap.add_argument("--one-pan10", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--one-new-edit", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--one-box-undo", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one_box_undo:
        print(json.dumps(measure_box_undo(args.one_box_undo, (args.code or [ROOT])[0])))
        return 0
    if args.one_pan10:
        print(json.dumps(measure_pan10(args.one_pan10, (args.code or [ROOT])[0])))
        return 0
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0
    if args.one_new_edit:
        print(json.dumps(measure_new_edits(args.one_new_edit, (args.code or [ROOT])[0])))
        return 0
    models = args.models or DEFAULT
    missing = [m for m in models if not m.exists()]
    if missing:
        print(f"bench_scene: no such model: {', '.join(map(str, missing))} "
              "(make them with benchmarks/make_big_models.py --only cond50k --only cond100k)",
              file=sys.stderr)
        return 2
    if args.new_edits:
        return run_new_edits(models, (args.code or []) + [ROOT],
                             args.out or NEW_EDIT_RESULTS)
    if args.pan10:
        return run_pan10(models, (args.code or []) + [ROOT], args.pan10)
    if args.box_undo:
        return run_box_undo(models, (args.code or []) + [ROOT], args.box_undo)
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               TF_CPP_MIN_LOG_LEVEL="2")
    rows, loads = [], []
    for m in models:
        loads.append(os.getloadavg()[0])
        proc = subprocess.run([sys.executable, __file__, "--one", str(m)], capture_output=True,
                              text=True, env=env)
        loads.append(os.getloadavg()[0])
        last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
        try:
            row = json.loads(last[0])
        except (IndexError, json.JSONDecodeError):
            row = {"model": m.name,
                   "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_results(rows, f"{min(loads):.1f}–{max(loads):.1f}", args.out or RESULTS)
    print(f"wrote {args.out or RESULTS}")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
