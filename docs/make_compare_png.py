"""Remake docs/compare_panel.png and docs/drift.png: the comparison panel at work.

    QT_QPA_PLATFORM=offscreen python docs/make_compare_png.py [MODEL]

Opens MODEL (default: the bundled MobileNetV2 example), applies the ``inference`` preset as undo
steps, and runs the comparison against the model as loaded: ``compare_panel.png`` is the panel
(all allclose, latency and size before/after). Then it changes one weight of the Const feeding
a convolution in the middle of the network (a deliberately wrong manual edit), ticks
"Per-node drift" and runs again: ``drift.png`` is the window with the graph view coloured by the
error at each node, centred on where the error starts.
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


def main(model: str, out_dir: Path) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from surgeon_gui.core.model.graph import const_value
    from surgeon_gui.ui.commands import EditCommand, apply_passes, push_step
    from surgeon_gui.ui.main_window import MainWindow
    app = QApplication.instance() or QApplication([])
    w = MainWindow()
    w.persist_settings = False
    w.resize(1400, 900)
    w.show()
    opened = []
    w.document_opened.connect(opened.append)
    w.open_model(model)

    def settle(timeout: float = 300.0) -> None:
        end = time.perf_counter() + timeout
        while not opened or w.view.layout_pending or w.compare_panel.worker is not None:
            if w.last_error:
                raise SystemExit(f"make_compare_png: {w.last_error}")
            if time.perf_counter() > end:
                raise SystemExit("make_compare_png: timed out")
            app.processEvents()
            time.sleep(0.01)
        for _ in range(5):
            app.processEvents()
    settle()
    doc, panel = w.document, w.compare_panel
    apply_passes(w.undo_stack, doc, ["inference"])
    settle()
    for dock in w.panels():
        if dock.objectName() not in ("CompareDock",):
            dock.hide()
    w.compare_dock.show()
    w.resizeDocks([w.compare_dock], [520], Qt.Horizontal)
    panel.runs.setValue(20)
    panel.run()
    settle()
    if panel.result is None:
        raise SystemExit(f"make_compare_png: {panel.error}")
    out_dir.mkdir(parents=True, exist_ok=True)
    img = panel.grab()
    img.save(str(out_dir / "compare_panel.png"))
    print("wrote compare_panel.png:", panel.message.text())

    # A wrong manual edit: one weight (the largest, sign flipped and ×10) of a convolution, the
    # earliest from the middle on whose edit the outputs notice (the bundled MobileNetV2 has
    # random batch-norm statistics that saturate many channels).
    import numpy as np

    from surgeon_gui.core.running.compare import compare_graphs
    from surgeon_gui.core.history.delta import copy_graph_def
    from surgeon_gui.core.model.graph import make_const
    g = doc.graph
    convs = [n for n in g.topological_order() if g.nodes[n].op in ("Conv2D",)
             and g.node(g.nodes[n].input[1]).op == "Const"]
    feeds = panel.result.feeds
    for target in convs[len(convs) // 2:]:
        const = g.node(g.nodes[target].input[1])
        value = const_value(const).copy()
        i = int(np.argmax(np.abs(value)))
        value.flat[i] *= -10.0
        trial = copy_graph_def(doc.graph_def)
        for n in trial.node:
            if n.name == const.name:
                n.CopyFrom(make_const(n.name, value))
        if not compare_graphs(doc.graph_def, trial, feeds, g.outputs, runs=0).allclose:
            break
    push_step(w.undo_stack, EditCommand.compute(doc, "replace_const",
                                                {"node": const.name, "value": value}))
    settle()
    panel.drift_check.setChecked(True)
    panel.run()
    settle()
    if panel.result is None:
        raise SystemExit(f"make_compare_png: {panel.error}")
    origin = panel.result.origins[0]
    w.view.focus_node(origin)
    settle()
    w.grab().toImage().scaledToWidth(1100, Qt.SmoothTransformation).save(
        str(out_dir / "drift.png"))
    print(f"wrote drift.png: edited {const.name}; the error starts at "
          f"{', '.join(panel.result.origins)}")
    w.close_guards.clear()
    w.close()
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    model = args[0] if args else str(ROOT / "resources" / "examples" / "mobilenet_v2_96.pb")
    sys.exit(main(model, ROOT / "docs"))
