"""Pictures for the tutorial: a small graph drawn by the app's own graph view, offscreen, with the
diff marks (removed red, added green, changed amber), as PNG bytes.

:func:`render_png` is the ``render`` function :func:`surgeon_gui.core.running.tutorial.build_tutorial`
takes. It runs on the GUI thread (Qt widgets). The CLI calls :func:`cli_renderer`, which starts
a headless ``QApplication`` (``QT_QPA_PLATFORM=offscreen`` unless a platform is set) when none
runs, or returns None with the reason when Qt cannot be used.
"""
from __future__ import annotations

import os
import tempfile

from ..core.history.document import Document, GraphChange
from ..core.model.graph import GraphDef

#: Pixel scale of the exported scene (1.0 = the scene's own units).
SCALE = 0.9


def render_png(graph_def: GraphDef, marks: dict[str, str], scale: float = SCALE) -> bytes:
    """Draw ``graph_def`` (every group expanded, constants as their own boxes) with ``marks``
    (node → "added" | "changed" | "removed" | "") and return the PNG."""
    from .graph_view import GraphView
    view = GraphView()
    try:
        view.resize(1000, 800)
        view.show_constants = True
        view.set_document(Document(graph_def), reset_view=True)
        view.expand_all()
        if view.layout_pending:  # a big picture laid out in a worker: wait for it
            from PySide6.QtCore import QEventLoop, QTimer
            loop = QEventLoop()
            view.layout_finished.connect(loop.quit)
            QTimer.singleShot(20000, loop.quit)
            loop.exec()
        view.show_diff_marks(GraphChange(
            removed={n for n, k in marks.items() if k == "removed"},
            added={n for n, k in marks.items() if k == "added"},
            changed={n for n, k in marks.items() if k == "changed"}))
        fd, path = tempfile.mkstemp(suffix=".png", prefix="surgeon_tutorial_")
        os.close(fd)
        try:
            view.export_image(path, scale=scale)
            with open(path, "rb") as f:
                return f.read()
        finally:
            os.unlink(path)
    finally:
        view.set_document(None)
        view.deleteLater()


def cli_renderer():
    """``(render, note)``: :func:`render_png` with a QApplication ready, or ``(None, why)``."""
    try:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtWidgets import QApplication
        app = QApplication.instance() or QApplication(["surgeon"])
        app.setProperty("surgeon_tutorial", True)
    except Exception as e:  # noqa: BLE001 - no Qt: the tutorial is written without pictures
        return None, f"no pictures: Qt could not start ({type(e).__name__}: {e})"
    return render_png, ""
