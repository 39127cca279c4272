"""The main window's panel layout: the default one, View ▸ Reset Layout, and restoring a layout
saved from a rearranged window (under a real X server when Xvfb is installed: the offscreen
platform does not show the broken restores)."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from surgeon_gui.ui import window_layout

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def temp_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPH_SURGEON_SETTINGS_DIR", str(tmp_path / "settings"))
    return tmp_path / "settings"


def make_window(qtbot, size=(1600, 1000)):
    from surgeon_gui.ui.main_window import MainWindow
    w = MainWindow()
    qtbot.addWidget(w)
    w.close_guards.clear()
    w.persist_settings = False
    w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    return w


def menu_action(window, menu_text, action_text):
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == menu_text)
    return next(a for a in menu.actions() if a.text().replace("&", "") == action_text)


def assert_default_layout(window):
    docks = {d.objectName(): d for d in window.panels()}
    assert not any(d.isFloating() for d in docks.values())
    assert window.dockWidgetArea(docks["PassesDock"]) == Qt.LeftDockWidgetArea
    assert {d.objectName() for d in window.tabifiedDockWidgets(docks["PassesDock"])} == \
        {"HistoryDock", "SearchDock"}
    assert window.dockWidgetArea(docks["DiffDock"]) == Qt.RightDockWidgetArea
    assert [d.objectName() for d in window.tabifiedDockWidgets(docks["InspectorDock"])] == \
        ["CompareDock", "WorkedDock"]
    # the canvas gets at least 60% of a 1600 px wide window
    assert window.centralWidget().width() >= 0.6 * window.width(), \
        (window.centralWidget().width(), window.width())
    # Passes and the Inspector are the tabs in front
    assert not docks["PassesDock"].visibleRegion().isEmpty()
    assert not docks["InspectorDock"].visibleRegion().isEmpty()
    assert not docks["DiffDock"].visibleRegion().isEmpty()


def test_default_layout_leaves_the_canvas_most_of_the_window(qtbot):
    w = make_window(qtbot)
    window_layout.apply_default(w)  # the offscreen screen is smaller than 1600×1000
    qtbot.wait(50)
    assert_default_layout(w)
    # the preset, the pass most users need, is first and chosen
    from PySide6.QtWidgets import QListWidget

    from surgeon_gui.ui.passes_panel import KEY_ROLE, PRESET_ID
    lst = w.findChild(QListWidget, "pass_list")
    assert lst.item(0).data(KEY_ROLE) == PRESET_ID
    assert lst.currentRow() == 0


def test_reset_layout_undoes_a_rearrangement(qtbot):
    w = make_window(qtbot)
    docks = {d.objectName(): d for d in w.panels()}
    docks["InspectorDock"].setFloating(True)
    w.addDockWidget(Qt.BottomDockWidgetArea, docks["DiffDock"])
    w.tabifyDockWidget(docks["CompareDock"], docks["PassesDock"])
    docks["HistoryDock"].hide()
    qtbot.wait(50)
    assert w.dockWidgetArea(docks["DiffDock"]) == Qt.BottomDockWidgetArea
    menu_action(w, "&View", "Reset Layout").trigger()
    qtbot.wait(50)
    assert_default_layout(w)
    assert docks["HistoryDock"].isVisibleTo(w)


def _session_state(settings_dir):
    from PySide6.QtCore import QSettings
    return QSettings(os.path.join(settings_dir, "GraphSurgeon.ini"), QSettings.IniFormat)


def test_a_state_from_another_version_or_screen_is_not_restored(qtbot, temp_settings):
    w = make_window(qtbot)
    docks = {d.objectName(): d for d in w.panels()}
    w.addDockWidget(Qt.BottomDockWidgetArea, docks["DiffDock"])
    s = _session_state(str(temp_settings))
    window_layout.save(w, s)
    s.sync()
    w.close()
    # same version, same screen: the rearrangement comes back
    w2 = make_window(qtbot)
    d2 = {d.objectName(): d for d in w2.panels()}
    assert w2.dockWidgetArea(d2["DiffDock"]) == Qt.BottomDockWidgetArea
    w2.close()
    # another screen: the default layout
    s.setValue("window/screen", "0,0,800x600@1")
    s.sync()
    w3 = make_window(qtbot)
    d3 = {d.objectName(): d for d in w3.panels()}
    assert w3.dockWidgetArea(d3["DiffDock"]) == Qt.RightDockWidgetArea
    w3.close()
    # a state written by an older layout version: the default layout
    s.setValue("window/screen", window_layout._screen_key(w))
    s.setValue("window/layout_version", window_layout.LAYOUT_VERSION - 1)
    s.sync()
    w4 = make_window(qtbot)
    d4 = {d.objectName(): d for d in w4.panels()}
    assert w4.dockWidgetArea(d4["DiffDock"]) == Qt.RightDockWidgetArea


# ------------------------------------------------------------- real X server (Xvfb)
@pytest.fixture
def xvfb():
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed")
    for n in range(180, 200):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}") and not os.path.exists(f"/tmp/.X{n}-lock"):
            break
    else:
        pytest.skip("no free X display number")
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1600x1000x24", "-nolisten",
                             "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(f"/tmp/.X11-unix/X{n}"):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.skip("Xvfb did not start")
    yield f":{n}"
    proc.terminate()
    proc.wait(timeout=10)


def _session(display, settings_dir, *args):
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb",
               GRAPH_SURGEON_SETTINGS_DIR=str(settings_dir),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "x11_layout_session.py"), *args],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _overlaps(a, b):
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.slow
def test_layout_saved_from_a_rearranged_window_restores_usable_under_x11(xvfb, tmp_path):
    settings = tmp_path / "x11settings"
    first = _session(xvfb, settings, "report")
    assert first["central"][2] >= 0.6 * first["window"][2]
    _session(xvfb, settings, "rearrange")
    got = _session(xvfb, settings, "report")
    docks = got["docks"]
    # the rearrangement came back ...
    assert docks["CompareDock"]["area"] == "BottomDockWidgetArea"
    assert docks["SearchDock"]["tabbed_with"] == ["DiffDock"]
    assert docks["HistoryDock"]["floating"]
    # ... and nothing covers the menu bar: no dock, no stray tab bar, no floating panel
    for name, d in docks.items():
        if d["floating"]:
            assert not _overlaps(d["frame"], got["menubar_global"]), name
        elif d["rect"][0] >= 0 and d["rect"][1] >= 0:  # tabs behind others sit off-screen
            assert not _overlaps(d["rect"], got["menubar"]), name
    for bar in got["tabbars"]:
        assert not _overlaps(bar, got["menubar"]), bar


def test_every_pass_title_is_readable_in_the_default_layout(qtbot):
    """The left column stays narrow (the canvas keeps ≥ 60%), so long pass titles wrap: no
    sideways scrolling, and every title's wrapped text fits inside its row."""
    from PySide6.QtGui import QFontMetrics
    from PySide6.QtWidgets import QListWidget

    w = make_window(qtbot)
    window_layout.apply_default(w)
    qtbot.wait(50)
    assert_default_layout(w)
    lst = w.findChild(QListWidget, "pass_list")
    assert not lst.horizontalScrollBar().isVisible()
    assert lst.horizontalScrollBar().maximum() == 0
    width = lst.viewport().width()
    titles = []
    for i in range(lst.count()):
        item = lst.item(i)
        lst.scrollToItem(item)  # a user scrolls down to the later passes
        qtbot.wait(5)
        rect = lst.visualItemRect(item)
        assert rect.left() >= 0 and rect.right() <= width, (item.text(), rect, width)
        fm = QFontMetrics(item.font())
        need = fm.boundingRect(0, 0, rect.width() - 8, 10_000, Qt.TextWordWrap, item.text())
        assert need.height() <= rect.height(), (item.text(), need, rect)
        titles.append(item.text())
    # the long titles really are longer than one line of this column
    assert any(lst.fontMetrics().horizontalAdvance(t) > width for t in titles)
