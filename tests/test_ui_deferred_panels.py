"""The app's window makes its dock panels after the first frame (``MainWindow(defer_panels=
True)``, issue 12: a 107k-node graph's first view): the docks are laid out empty first, so the
window does not change shape when the panels come, and everything works once they are there."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "resources" / "examples" / "tf1_cond_bn_dropout.pb"
PANEL_CLASSES = {"InspectorDock": "InspectorPanel", "SearchDock": "SearchPanel",
                 "CompareDock": "ComparePanel", "PassesDock": "PassesPanel",
                 "DiffDock": "DiffPanel", "HistoryDock": "QUndoView",
                 "WorkedDock": "WorkedNumbersView"}


def _python(code: str, tmp_path, timeout=180) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), QT_QPA_PLATFORM="offscreen",
               PYTHONFAULTHANDLER="1",
               PYTHONPATH=str(ROOT), GRAPH_SURGEON_SETTINGS_DIR=str(tmp_path / "settings"))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=str(tmp_path))


def test_first_view_comes_before_the_panels_and_numpy_then_they_work(tmp_path):
    """A fresh process as surgeon-gui starts: at the model's first painted frame the panels
    are not made yet and numpy is not imported; then the panels fill the same docks (no dock
    moves), follow the document (the inspector shows the selected node, Find is enabled, the
    Passes panel lists the passes) and the keyboard focus stays on the view."""
    proc = _python(f"""
        import sys, time
        from PySide6.QtCore import QEvent, QObject
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from surgeon_gui.ui.main_window import MainWindow
        win = MainWindow(defer_panels=True); win.persist_settings = False
        win.resize(1400, 900); win.show()
        docks = {{d.objectName(): d for d in win.panels()}}
        assert sorted(docks) == {sorted(PANEL_CLASSES)!r}, sorted(docks)
        assert win.panels_pending
        PAINT = QEvent.Type.Paint
        seen = {{}}
        class Watch(QObject):
            def eventFilter(self, obj, ev):
                if ev.type() == PAINT and win.document is not None and not seen:
                    seen.update(numpy="numpy" in sys.modules, pending=win.panels_pending,
                                geometry={{n: d.geometry().getRect() for n, d in docks.items()
                                              if not d.visibleRegion().isEmpty()}})
                return False
        watch = Watch(); win.view.viewport().installEventFilter(watch)
        ready = []
        win.panels_ready.connect(lambda: ready.append(True))
        win.open_model({str(EXAMPLE)!r})
        end = time.time() + 60
        while not ready and time.time() < end:
            app.processEvents(); time.sleep(0.005)
        assert seen, "the model's first view was never painted"
        assert not seen["numpy"], "numpy was imported before the first view"
        assert seen["pending"], "the panels were made before the first view"
        assert ready and not win.panels_pending
        app.processEvents()
        # (the tabs behind others are off screen: their geometry means nothing)
        after = {{n: d.geometry().getRect() for n, d in docks.items()
                 if not d.visibleRegion().isEmpty()}}
        assert sorted(after) == ["DiffDock", "InspectorDock", "PassesDock"], after
        assert after == seen["geometry"], (seen["geometry"], after)
        got = {{n: type(d.widget()).__name__ for n, d in docks.items()}}
        assert got == {PANEL_CLASSES!r}, got
        assert [d.objectName() for d in win.panels()] == list(docks)  # no second set of docks
        # the panels follow the document shown before they were made
        assert win.inspection.find_action.isEnabled()
        assert win.inspection.find_action in win.edit_menu.actions()
        assert win.surgery.controller.actions["save"].isEnabled()
        assert win.surgery.passes.document is win.document
        assert win.compare_panel.document is win.document
        name = next(n for n in win.view.tree.parent_of if n.endswith("Conv2D"))
        win.view.focus_node(name)
        app.processEvents()
        assert win.inspection.inspector.current == ("node", name), win.inspection.inspector.current
        print("ok", flush=True)
        # (the inspector's op page has started TensorFlow's import: no interpreter teardown
        # in the middle of it)
        import os; os._exit(0)
        """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "ok"


def test_tensorflow_import_starts_after_the_panels(tmp_path):
    """The app's background TensorFlow import starts only once the panels are made (their
    first reads of Qt enums must not overlap it) and the model is shown."""
    proc = _python(f"""
        import sys, time
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from surgeon_gui.core.model import tfenv
        from surgeon_gui.ui import app as gui_app
        from surgeon_gui.ui.main_window import MainWindow
        calls = []
        win = MainWindow(defer_panels=True); win.persist_settings = False; win.show()
        tfenv.import_in_background = lambda: calls.append(
            (win.panels_pending, win.document is not None))
        gui_app._import_tensorflow_after_first_view(win, opening=True)
        win.open_model({str(EXAMPLE)!r})
        end = time.time() + 60
        while not calls and time.time() < end:
            app.processEvents(); time.sleep(0.005)
        assert calls == [(False, True)], calls
        assert "tensorflow" not in sys.modules
        print("ok")
        """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "ok"


def test_panels_come_after_the_first_paint_without_a_model(qtbot):
    from surgeon_gui.ui.main_window import MainWindow
    win = MainWindow(defer_panels=True)
    qtbot.addWidget(win)
    win.persist_settings = False
    assert win.panels_pending
    with qtbot.waitSignal(win.panels_ready, timeout=10000):
        win.show()
    got = {d.objectName(): type(d.widget()).__name__ for d in win.panels()}
    assert got == PANEL_CLASSES
    assert not win.inspection.find_action.isEnabled()  # no model open


def test_reading_a_panel_makes_them_at_once(qtbot):
    """A window that is not shown makes its panels when one is read (``surgery`` here); the
    surgery panel's unsaved-changes guard is then in place, and a menu about to open fills
    it first."""
    from surgeon_gui.ui.main_window import MainWindow
    win = MainWindow(defer_panels=True)
    qtbot.addWidget(win)
    assert win.panels_pending and not win.close_guards
    assert win.surgery.passes is not None
    assert not win.panels_pending
    assert win.close_guards == [win.surgery.controller.close_guard]
    assert type(win.findChild(type(win.surgery.passes))).__name__ == "PassesPanel"
    with pytest.raises(AttributeError):
        win.no_such_attribute  # noqa: B018

    other = MainWindow(defer_panels=True)
    qtbot.addWidget(other)
    file_menu = other.file_menu
    assert "Save" not in [a.text().replace("&", "") for a in file_menu.actions()]
    file_menu.aboutToShow.emit()
    assert not other.panels_pending
    assert "Save" in [a.text().replace("&", "") for a in file_menu.actions()]


def test_saved_layout_puts_the_deferred_panels_where_they_were(qtbot, tmp_path, monkeypatch):
    """A rearranged layout saved by a window restores into the empty docks, and the panels
    made later are in those places."""
    from PySide6.QtCore import Qt

    from surgeon_gui.ui.main_window import SETTINGS_ENV, MainWindow
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "settings"))
    first = MainWindow()
    qtbot.addWidget(first)
    first.show()
    docks = {d.objectName(): d for d in first.panels()}
    first.addDockWidget(Qt.RightDockWidgetArea, docks["SearchDock"])
    qtbot.wait(50)
    assert first.dockWidgetArea(docks["SearchDock"]) == Qt.RightDockWidgetArea
    first.save_settings()
    first.close()

    again = MainWindow(defer_panels=True)
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.panels_ready, timeout=10000):
        again.show()
    docks = {d.objectName(): d for d in again.panels()}
    assert again.dockWidgetArea(docks["SearchDock"]) == Qt.RightDockWidgetArea
    assert type(docks["SearchDock"].widget()).__name__ == "SearchPanel"
    assert again.inspection.search_dock is docks["SearchDock"]


def test_layout_on_igraphs_core_alone_is_the_same_and_the_package_still_works(tmp_path):
    """The first view loads igraph's C core without its package (core/viewmodel/layout.py's
    igraph_core: ~100 modules fewer): the layout of a real model, everything expanded, is the
    same as with the package imported first, and the package imported afterwards works."""
    code = f"""
        import hashlib, sys
        if sys.argv[1] == "package":
            import igraph
        from surgeon_gui.core.model.io import load_model
        from surgeon_gui.core.viewmodel.grouping import GroupTree
        from surgeon_gui.core.viewmodel.layout import LayoutEngine, igraph_package
        tree = GroupTree(load_model({str(EXAMPLE)!r}).graph())
        size = lambda u: (150.0, 40.0) if u.startswith("n:") else (170.0, 56.0)
        p = LayoutEngine(tree, size).layout(set(tree.groups))
        print(hashlib.sha256(repr((sorted(p.boxes.items()), sorted(p.routes.items()),
                                   sorted(p.ports.items()))).encode()).hexdigest())
        print(sorted(m for m in sys.modules if m.split(".")[0] == "igraph")[:3])
        ig = igraph_package()
        g = ig.Graph(n=3, edges=[(0, 1), (1, 2)], directed=True)
        assert g.is_dag() and len(g.layout_sugiyama().coords) == 3
        assert ig._igraph.GraphBase is ig.GraphBase
        print("ok")
        """
    runs = {}
    for mode in ("core", "package"):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), mode],
                              capture_output=True, text=True, timeout=180, env=env,
                              cwd=str(tmp_path))
        assert proc.returncode == 0, proc.stderr
        runs[mode] = proc.stdout.split("\n")
        assert runs[mode][2] == "ok"
    assert runs["core"][0] == runs["package"][0]
    assert runs["core"][1] == "['igraph._igraph']"  # the package was not imported for it
    assert runs["package"][1].startswith("['igraph', 'igraph._igraph', ")
