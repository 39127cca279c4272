"""Remake docs/inspector.png: the main window with the search and inspector panels in use.

    QT_QPA_PLATFORM=offscreen python docs/make_inspector_png.py [MODEL] [QUERY] [OUT.png]

Opens MODEL (default: the bundled MobileNetV2 example), searches QUERY by name, goes to the first
result, then follows its weight input twice in the inspector (as a user clicking the links),
so the inspector shows a Const with its statistics and histogram. A QUERY ``scope:GROUP``
selects that group instead (the inspector shows its op histogram and parameter count).
Comparison and Diff docks are hidden to give the inspector the column's height.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GRAPH_SURGEON_SETTINGS_DIR", tempfile.mkdtemp())
sys.path.insert(0, str(ROOT))


def main(model: str, query: str, out: Path, width: int = 1050) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from surgeon_gui.ui.main_window import MainWindow
    app = QApplication.instance() or QApplication([])
    w = MainWindow()
    w.resize(1400, 860)
    w.show()
    opened = []
    w.document_opened.connect(opened.append)
    w.open_model(model)

    def settle(timeout: float = 120.0) -> None:
        end = time.perf_counter() + timeout
        while not opened or w.view.layout_pending:
            if w.last_error:
                raise SystemExit(f"make_inspector_png: {w.last_error}")
            if time.perf_counter() > end:
                raise SystemExit("make_inspector_png: timed out")
            app.processEvents()
            time.sleep(0.01)
        for _ in range(5):
            app.processEvents()
    settle()
    # the app imports TensorFlow in the background after the first view; the picture shows
    # a Const's statistics and the op's documentation, which need it
    from surgeon_gui.core.model.tfenv import wait_for_tensorflow
    while not wait_for_tensorflow(0.05):
        app.processEvents()
    panels = w.inspection
    inspector = panels.inspector
    graph = w.document.graph
    if query.startswith("scope:"):
        if not w.view.focus_node(query):
            raise SystemExit(f"make_inspector_png: no group {query[6:]!r}")
        settle()
        weights_steps = 0
    else:
        panels.search.query.setText(query)
        if not panels.search.run_search():
            raise SystemExit(f"make_inspector_png: nothing matches {query!r}")
        panels.search.activate_current()
        settle()
        weights_steps = 2
    for _ in range(weights_steps):
        weights = [n for n in inspector.inputs_list.names()
                   if graph.nodes[n].op in ("Const", "Identity", "ReadVariableOp")]
        if not weights:
            break
        inspector.node_activated.emit(weights[-1])
        settle()
    for dock in w.panels():
        if dock.objectName() in ("CompareDock", "DiffDock"):
            dock.hide()
    settle()
    image = w.grab().toImage()
    image = image.scaledToWidth(width, Qt.SmoothTransformation)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out)):
        raise SystemExit(f"make_inspector_png: could not write {out}")
    print(f"wrote {out} ({inspector.current[1]})")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    model = args[0] if args else str(ROOT / "resources" / "examples" / "mobilenet_v2_96.pb")
    query = args[1] if len(args) > 1 else "block_3_project"
    out = Path(args[2]) if len(args) > 2 else ROOT / "docs" / "inspector.png"
    sys.exit(main(model, query, out))
