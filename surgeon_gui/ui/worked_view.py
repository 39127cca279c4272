"""The Worked numbers panel: what the pass computes at the match the learner clicked.

It follows the Passes panel: a click on a match of a fresh preview shows that match's
:class:`~surgeon_gui.core.running.worked.WorkedNumbers` (computed on a worker thread: the fold
check runs TensorFlow), and a *Step* shows the numbers of the match it just applied, computed on
the graph before the step. For Switch/Merge the live branch is coloured green and the dead one
red in the graph view until another match is shown.
"""
from __future__ import annotations

import html

import shiboken6
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from ..core.model.graph import Graph
from ..core.running.worked import worked_numbers
from .workers import Worker

LIVE, DEAD = QColor("#b2f2bb"), QColor("#ffc9c9")
CSS = ("<style>table{border-collapse:collapse} td,th{border:1px solid #c5ccd6;"
       "padding:1px 4px} code{background:#f1f3f5}</style>")


def qt_html(page: str) -> str:
    """Numbers stay on one line in Qt's narrow panels (the panel scrolls sideways instead)."""
    return (page.replace("<td>", "<td style='white-space:nowrap'>")
            .replace("<th>", "<th style='white-space:nowrap'>"))


class WorkedNumbersView(QWidget):
    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.window = window
        self.setObjectName("WorkedNumbersView")
        self.status = QLabel("Preview a pass and click a match to see what it computes there.")
        self.status.setWordWrap(True)
        self.text = QTextBrowser()
        self.text.setObjectName("worked_text")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.status)
        lay.addWidget(self.text, 1)
        self.current = None          # the WorkedNumbers shown
        self._serial = 0
        self._colored = False

    def attach(self, passes) -> None:
        """Follow a PassesPanel: clicked matches and applied single-match steps."""
        passes.match_clicked.connect(self.show_match)
        passes.step_applied.connect(self._step_applied)

    # ------------------------------------------------------------------ showing
    def show_match(self, pass_id: str, key: str, params: dict | None = None,
                   graph: Graph | None = None) -> Worker | None:
        """Compute and show the numbers of match ``key`` of ``pass_id`` on ``graph`` (default:
        the open document's graph, copied so undo cannot change it underneath)."""
        doc = self.window.document
        if graph is None:
            if doc is None:
                return None
            graph = Graph(doc.snapshot(), doc.inputs, doc.outputs)
        self._serial += 1
        serial = self._serial
        self.status.setText(f"Computing the worked numbers of {key}…")

        def done(wn):
            if not shiboken6.isValid(self) or serial != self._serial:
                return
            dock = getattr(self, "dock", None)
            if dock is not None:
                dock.show()
                dock.raise_()
            self.current = wn
            self.status.setText(f"{pass_id} at {key}")
            self.text.setHtml(CSS + qt_html(wn.to_html()))
            self._color(wn)

        def failed(msg, exc):
            if shiboken6.isValid(self) and serial == self._serial:
                self.current = None
                self.status.setText(f"No worked numbers for {key}: "
                                    f"{html.escape(msg.splitlines()[0])}")

        w = Worker(worked_numbers, graph, pass_id, key, params)
        w.signals.finished.connect(done)
        w.signals.failed.connect(failed)
        w.start()
        self._worker = w
        return w

    def _step_applied(self, cmd) -> None:
        select = getattr(cmd, "select", None)
        doc = self.window.document
        if doc is None or not select or len(select) != 1:
            return
        before = doc.graph_before(1)
        self.show_match(cmd.pass_id, select[0], getattr(cmd, "params", None), before)

    def _color(self, wn) -> None:
        view = getattr(self.window, "view", None)
        if view is None:
            return
        if wn.live or wn.dead:
            colors = {n: LIVE for n in wn.live}
            colors.update({n: DEAD for n in wn.dead})
            view.set_node_colors(colors, [("live branch (kept)", LIVE),
                                          ("dead branch (removed)", DEAD)])
            self._colored = True
        elif self._colored:
            view.set_node_colors(None)
            self._colored = False
