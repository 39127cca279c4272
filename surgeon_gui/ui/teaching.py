"""Plugs the teaching features into the main window: Help ▸ Lessons, File ▸ Export Tutorial…,
and the Worked numbers panel that follows the Passes panel.

The main window calls :func:`install_teaching` once, after the surgery panels exist.

Export Tutorial writes the current session (the applied undo history: one step per command) as
the page ``surgeon optimize --report`` writes: the worked numbers and the comparison are
computed on a worker thread, the pictures are then drawn on the GUI thread with the app's graph
view (offscreen), and the file is written atomically.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction

from ..core.history.delta import copy_graph_def
from ..core.model.graph import Graph
from .commands import ApplyPassCommand, EditCommand, applied_commands
from .workers import Worker


@dataclass
class Teaching:
    lessons_action: QAction
    export_action: QAction
    worked: object
    worked_dock: object


def install_teaching(window) -> Teaching:
    from .lessons import show_lessons
    from .worked_view import WorkedNumbersView
    lessons = QAction("&Lessons…", window)
    lessons.setObjectName("action_lessons")
    lessons.setStatusTip("Guided walkthroughs: remove dropout, remove Switch/Merge, fold batch "
                         "norm, optimize for OpenCV")
    lessons.triggered.connect(lambda *_: show_lessons(window))
    help_menu = window.help_menu
    first = help_menu.actions()[0] if help_menu.actions() else None
    help_menu.insertAction(first, lessons) if first else help_menu.addAction(lessons)
    export = QAction("Export &Tutorial…", window)
    export.setObjectName("action_export_tutorial")
    export.setStatusTip("Write this session as a tutorial: one HTML page (or Markdown + PNGs) "
                        "with each step's explanation, pictures, worked numbers and the "
                        "comparison")
    export.triggered.connect(lambda *_: export_tutorial(window))
    window.needs_model(export)  # it writes the open model's history
    fm = window.file_menu
    acts = fm.actions()
    after = acts.index(window.export_svg_action)
    if after + 1 < len(acts):
        fm.insertAction(acts[after + 1], export)
    else:
        fm.addAction(export)
    worked = WorkedNumbersView(window)
    dock = window.add_panel(worked, "Worked numbers", Qt.RightDockWidgetArea, "WorkedDock")
    # placed by ui/window_layout.py's default layout: a tab beside the Inspector
    worked.dock = dock
    worked.attach(window.surgery.passes)
    return Teaching(lessons, export, worked, dock)


def session_steps(window):
    """The applied history as tutorial steps (graph before/after each command)."""
    from ..core.passes import get_pass
    from ..core.running.tutorial import TraceStep
    doc = window.document
    cmds = applied_commands(window.undo_stack)
    # Rebuild the original, then replay each step's delta on a copy.
    gd = doc.original
    inputs, outputs = doc.initial_inputs, doc.initial_outputs
    cur = Graph(gd, inputs, outputs, source=doc.source_path)
    steps = []
    for cmd in cmds:
        nxt_gd = copy_graph_def(cur.graph_def)
        cmd.delta.apply(nxt_gd)
        ins, outs = cmd.delta.new_io if cmd.delta.new_io is not None else (cur.given_inputs,
                                                                           cur.given_outputs)
        nxt = Graph(nxt_gd, ins, outs, source=doc.source_path)
        if isinstance(cmd, ApplyPassCommand):
            steps.append(TraceStep(cmd.text(), cur, nxt, cmd.pass_id, dict(cmd.params),
                                   cmd.report, text=getattr(cmd, "lesson_text", "")))
            _ = get_pass(cmd.pass_id)
        elif isinstance(cmd, EditCommand):
            steps.append(TraceStep(cmd.text(), cur, nxt, edit=cmd.kind, args=dict(cmd.args),
                                   text=getattr(cmd, "lesson_text", "")))
        cur = nxt
    return cur, steps


def export_tutorial(window, path: str | None = None, done=None) -> Worker | None:
    """File ▸ Export Tutorial…: ask where (unless ``path``), then write it in the background.

    ``done(message)`` is called at the end (the path written, or the problem)."""
    from ..core.running.tutorial import add_pictures, build_tutorial, write_tutorial
    from .tutorial_pictures import render_png
    doc = window.document
    if doc is None:
        window.statusBar().showMessage("Open a model first", 4000)
        return None
    final, steps = session_steps(window)
    if not steps:
        window.statusBar().showMessage("Nothing to export yet: apply a pass or an edit first",
                                       6000)
        return None
    if path is None:
        base = os.path.splitext(os.path.basename((doc.source_path or "model").rstrip("/")))[0]
        path = window.asker().save_path("Export tutorial", f"{base}_tutorial.html",
                                        "Tutorial page (*.html);;Markdown + PNGs (*.md)")
        if not path:
            return None
        if not os.path.splitext(path)[1]:
            path += ".html"
        if os.path.exists(path) and window.asker().question(
                "Export tutorial", f"{path} exists. Replace it?",
                ["overwrite", "cancel"]) != "overwrite":
            return None
    original = steps[0].before
    title = f"{os.path.basename((doc.source_path or 'model').rstrip('/'))}: what was done"

    def job(state):
        from ..core.running.compare import compare_graphs
        from ..core.running.runner import make_feeds
        cmp, err, feeds = None, "", None
        try:
            feeds = make_feeds(original, seed=0)
            cmp = compare_graphs(original.graph_def, final.graph_def, feeds, original.outputs,
                                 runs=5, warmup=1, labels=("original", "result"),
                                 should_stop=lambda: state.cancelled).to_dict()
        except InterruptedError:
            raise
        except Exception as e:  # noqa: BLE001 - the page says why there is no comparison
            err = " ".join(str(getattr(e, "problem", None) or e).split())[:200]
        return build_tutorial(title, doc.source_path or "", steps, cmp, err, feeds=feeds,
                              should_stop=lambda: state.cancelled)

    def finished(tut):
        try:
            tut.picture_note = ""
            add_pictures(tut, steps, render_png)
            write_tutorial(tut, path, overwrite=True)
            msg = f"Tutorial written: {path} ({tut.verdict})"
            window.statusBar().showMessage(msg, 10000)
        except (OSError, ValueError) as e:
            msg = f"Could not write the tutorial: {e}"
            window.show_error("Export tutorial failed", str(e))
        if done:
            done(msg)

    def failed(msg, exc):
        window.show_error("Export tutorial failed", msg)
        if done:
            done(msg)

    window.statusBar().showMessage("Writing the tutorial (worked numbers, comparison)…")
    w = Worker(job)
    w.signals.finished.connect(finished)
    w.signals.failed.connect(failed)
    w.start()
    window._tutorial_worker = w
    return w
