"""One session of the app under a real X server, for tests/test_ui_layout.py.

``python tests/x11_layout_session.py rearrange``: open the window, rearrange the panels the way a
user does by dragging (float one, tab two together, move one to the bottom, float another),
then quit (which saves the layout). ``... report``: open the window again and print, as JSON,
where everything ended up.
"""
import json
import sys
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QTabBar

app = QApplication([])
from surgeon_gui.ui.main_window import MainWindow  # noqa: E402


def settle(n=25):
    for _ in range(n):
        app.processEvents()
        time.sleep(0.02)


def rect(widget, global_=False):
    r = widget.frameGeometry() if global_ else widget.geometry()
    return [r.x(), r.y(), r.width(), r.height()]


w = MainWindow()
w.close_guards.clear()
w.show()
settle()
docks = {d.objectName(): d for d in w.panels()}
if sys.argv[1] == "rearrange":
    docks["InspectorDock"].setFloating(True)
    settle()
    docks["InspectorDock"].move(300, 300)
    settle()
    docks["InspectorDock"].setFloating(False)
    w.addDockWidget(Qt.RightDockWidgetArea, docks["InspectorDock"])
    settle()
    w.tabifyDockWidget(docks["DiffDock"], docks["SearchDock"])
    docks["HistoryDock"].setFloating(True)  # lands at the screen's corner, over the menu bar
    w.addDockWidget(Qt.BottomDockWidgetArea, docks["CompareDock"])
    settle()
    w.close()
    settle()
    print(json.dumps({"saved": True}))
else:
    settle(40)
    bar = w.menuBar()
    out = {"window": rect(w), "menubar_global": [bar.mapToGlobal(bar.rect().topLeft()).x(),
                                                  bar.mapToGlobal(bar.rect().topLeft()).y(),
                                                  bar.width(), bar.height()],
           "menubar": rect(bar), "central": rect(w.centralWidget()),
           "tabbars": [rect(t) for t in w.findChildren(QTabBar)
                       if t.parentWidget() is w and t.isVisible()],
           "docks": {}}
    for name, d in docks.items():
        out["docks"][name] = {
            "rect": rect(d), "frame": rect(d, True), "floating": d.isFloating(),
            "area": w.dockWidgetArea(d).name,
            "tabbed_with": sorted(o.objectName() for o in w.tabifiedDockWidgets(d))}
    print(json.dumps(out))
    if len(sys.argv) > 2:
        w.grab().save(sys.argv[2])
    w.close()
    settle()
