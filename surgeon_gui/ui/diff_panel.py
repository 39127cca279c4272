"""The Diff panel: what a step changed, node by node, and the diff against another model file.

- *Step* lists the applied steps (newest selected); the tree below shows the removed, added and
  changed nodes of the chosen step, each changed node with what changed (an attribute's old and
  new value, rewired inputs, weight statistics before/after). Clicking a node goes to it.
- *Compare with file…* opens a second model and shows the diff of the open graph against it the
  same way (and marks the open graph: nodes only here red, nodes that differ amber).
- *Before* flips the view to the graph as it was before the chosen step (a copy rebuilt from the
  step's delta) and back; any change to the document flips back to *after*.
"""
from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.history.diff import GraphDiff
from ..core.history.document import Document, GraphChange
from ..core.model.graph import GraphError
from .commands import StepCommand, applied_commands

NAME_ROLE = Qt.UserRole
#: Longest list shown per category (the summary gives the full counts).
MAX_ROWS = 3000
COMPARE_KEY = "__compare__"


class DiffPanel(QWidget):
    #: The diff on show changed (the GraphDiff, or None).
    diff_shown = Signal(object)

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.window = window
        self.setObjectName("DiffPanel")
        #: Injectable for tests: returns a path or "" (cancelled).
        self.ask_open_path = self._ask_open_path
        self.diff: GraphDiff | None = None
        self.compare_path: str | None = None
        self._compare_diff: GraphDiff | None = None
        self._before_doc: Document | None = None
        self._refresh_pending = False

        self.steps = QComboBox()
        self.steps.setObjectName("diff_steps")
        self.steps.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.compare_button = QPushButton("Compare with file…")
        self.before_button = QPushButton("Before")
        self.before_button.setCheckable(True)
        self.before_button.setToolTip("Show the graph as it was before the chosen step")
        self.clear_button = QPushButton("Clear marks")
        top = QHBoxLayout()
        top.addWidget(QLabel("Step"))
        top.addWidget(self.steps, 1)
        buttons = QHBoxLayout()
        for b in (self.compare_button, self.before_button, self.clear_button):
            buttons.addWidget(b)
        self.summary = QLabel("No step yet.")
        self.summary.setObjectName("diff_summary")
        self.summary.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setObjectName("diff_tree")
        self.tree.setHeaderLabels(["Node", "Op / change"])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addLayout(buttons)
        lay.addWidget(self.summary)
        lay.addWidget(self.tree, 1)

        self.steps.currentIndexChanged.connect(self._show_selected)
        self.tree.itemClicked.connect(self._go_to)
        self.compare_button.clicked.connect(lambda: self.compare_with_file())
        self.before_button.toggled.connect(self.show_before)
        self.clear_button.clicked.connect(self._clear_marks)
        stack = getattr(window, "undo_stack", None)
        if stack is not None:
            stack.indexChanged.connect(self._history_moved)
        self.refresh()

    @property
    def document(self) -> Document | None:
        return getattr(self.window, "document", None)

    @property
    def view(self):
        return getattr(self.window, "view", None)

    # ------------------------------------------------------------------ step list
    def _history_moved(self, *_) -> None:
        if not shiboken6.isValid(self) or not shiboken6.isValid(self.before_button):
            return
        if self.before_button.isChecked():
            self.before_button.setChecked(False)
        # Built after the view has redrawn, and only once per burst of undo/redo.
        if not self._refresh_pending:
            self._refresh_pending = True
            QTimer.singleShot(0, self.refresh)

    def document_opened(self, *_) -> None:
        self._compare_diff = None
        self.compare_path = None
        self.before_button.setChecked(False)
        self.refresh()

    def commands(self) -> list[StepCommand]:
        stack = getattr(self.window, "undo_stack", None)
        return applied_commands(stack) if stack is not None else []

    def refresh(self) -> None:
        """Rebuild the step list from the history and show the newest step."""
        self._refresh_pending = False
        if not shiboken6.isValid(self) or not shiboken6.isValid(self.steps):
            return
        cmds = self.commands()
        self.steps.blockSignals(True)
        self.steps.clear()
        # item data: the step's position (never the command: the undo stack owns commands)
        for i, c in enumerate(cmds, 1):
            self.steps.addItem(f"{i}. {c.text()}", i - 1)
        if self._compare_diff is not None:
            self.steps.addItem(f"Compared with {self.compare_path}", COMPARE_KEY)
        self.steps.blockSignals(False)
        if self.steps.count():
            self.steps.setCurrentIndex(len(cmds) - 1 if cmds else self.steps.count() - 1)
        self._show_selected()
        self.before_button.setEnabled(bool(cmds))

    def selected_command(self) -> StepCommand | None:
        data = self.steps.currentData()
        if isinstance(data, int):
            cmds = self.commands()
            return cmds[data] if 0 <= data < len(cmds) else None
        return None

    def _show_selected(self, *_) -> None:
        if not shiboken6.isValid(self) or not shiboken6.isValid(self.tree):
            return
        data = self.steps.currentData()
        if isinstance(data, int):
            data = self.selected_command()
        if data == COMPARE_KEY:
            self.show_diff(self._compare_diff, f"Open graph → {self.compare_path}")
        elif isinstance(data, StepCommand):
            try:
                diff = data.diff()
            except Exception as e:  # noqa: BLE001 - a step whose delta cannot be read
                self.summary.setText(f"Cannot show this step: {e}")
                return
            self.show_diff(diff, data.text())
        else:
            self.show_diff(None, "")

    # ------------------------------------------------------------------ the tree
    def show_diff(self, diff: GraphDiff | None, title: str) -> None:
        self.diff = diff
        self.tree.clear()
        if diff is None:
            self.summary.setText("No step yet: apply a pass or edit the graph." if
                                 self.document is not None else "No model open.")
            self.diff_shown.emit(None)
            return
        self.summary.setText(f"<b>{_esc(title)}</b>: {_esc(diff.summary())}")
        if diff.io:
            (oi, oo), (ni, no) = diff.io
            self.summary.setText(self.summary.text() + f"<br>outputs: {_esc(str(oo))} → "
                                 f"{_esc(str(no))}; inputs: {_esc(str(oi))} → {_esc(str(ni))}")
        groups = [("Removed", diff.removed, "#c92a2a"), ("Added", diff.added, "#2b8a3e"),
                  ("Changed", diff.changed, "#e67700")]
        for label, entries, colour in groups:
            top = QTreeWidgetItem([f"{label} ({len(entries)})", ""])
            top.setForeground(0, _brush(colour))
            top.setData(0, NAME_ROLE, None)
            self.tree.addTopLevelItem(top)
            for e in entries[:MAX_ROWS]:
                if label == "Changed":
                    op = e.new_op if e.old_op == e.new_op else f"{e.old_op} → {e.new_op}"
                    it = QTreeWidgetItem([e.name, op])
                    for line in e.lines():
                        sub = QTreeWidgetItem(["", line])
                        sub.setToolTip(1, line)
                        sub.setData(0, NAME_ROLE, e.name)
                        it.addChild(sub)
                else:
                    it = QTreeWidgetItem([e.name, e.op + (f"  {e.detail}" if e.detail else "")])
                    it.setToolTip(1, "inputs: " + ", ".join(e.inputs) if e.inputs else "")
                it.setData(0, NAME_ROLE, e.name)
                top.addChild(it)
            if len(entries) > MAX_ROWS:
                top.addChild(QTreeWidgetItem([f"… and {len(entries) - MAX_ROWS} more", ""]))
            top.setExpanded(len(entries) <= 200)
        self.tree.resizeColumnToContents(0)
        cap = max(160, int(self.tree.viewport().width() * 0.5))
        if self.tree.columnWidth(0) > cap:  # leave room for what changed
            self.tree.setColumnWidth(0, cap)
        self.diff_shown.emit(diff)

    def items(self, category: str) -> list[str]:
        """Names listed under "Removed", "Added" or "Changed" (for tests and scripts)."""
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top.text(0).startswith(category):
                return [top.child(j).data(0, NAME_ROLE) for j in range(top.childCount())
                        if top.child(j).data(0, NAME_ROLE)]
        return []

    def _go_to(self, item, _col=0) -> None:
        name = item.data(0, NAME_ROLE)
        view = self.view
        if not name or view is None:
            return
        ok = view.focus_node(name)
        cmd = self.selected_command()
        if not ok and cmd is not None and cmd.delta is not None and name in cmd.delta.removed \
                and not self.before_button.isChecked():
            # a removed node lives in the graph before the step: show that graph, go there
            self.before_button.setChecked(True)
            ok = view.focus_node(name)
        if not ok:
            where = "before the step (press Before)" if not self.before_button.isChecked() \
                else "after the step"
            self.summary.setToolTip(f"{name} is not in this graph; it exists {where}")
            self.window.statusBar().showMessage(
                f"{name} is not in the graph shown; it exists {where}", 5000) \
                if hasattr(self.window, "statusBar") else None

    def _clear_marks(self) -> None:
        if self.view is not None:
            self.view.clear_marks()

    # ------------------------------------------------------------------ before / after
    def show_before(self, on: bool) -> None:
        view, doc = self.view, self.document
        if view is None or doc is None:
            return
        cmd = self.selected_command()
        cmds = self.commands()
        if on:
            if cmd is None or cmd.delta is None:
                self.before_button.setChecked(False)
                return
            steps_back = len(cmds) - cmds.index(cmd) if cmd in cmds else 1
            graph = doc.graph_before(steps_back)
            before = Document(graph.graph_def, doc.path, graph.given_inputs,
                              graph.given_outputs)
            self._before_doc = before
            view.set_document(before)
            d = cmd.delta
            view.show_diff_marks(GraphChange(cmd.text(), removed=set(d.removed),
                                             changed=set(d.changed)))
            self.before_button.setText("After")
            self.before_button.setToolTip("Show the graph as it is now")
        else:
            self.before_button.setText("Before")
            self.before_button.setToolTip("Show the graph as it was before the chosen step")
            if self._before_doc is not None:
                self._before_doc = None
                view.set_document(doc)
                if cmd is not None and cmd.delta is not None and cmds and cmd is cmds[-1]:
                    d = cmd.delta
                    view.show_diff_marks(GraphChange(cmd.text(), removed=set(d.removed),
                                                     added=set(d.added),
                                                     changed=set(d.changed)))

    @property
    def showing_before(self) -> bool:
        return self._before_doc is not None

    # ------------------------------------------------------------------ compare with a file
    def _ask_open_path(self) -> str:
        path, _ = QFileDialog.getOpenFileName(
            self, "Compare with model", "",
            "Models (*.pb *.pbtxt *.txt *.keras *.h5);;All files (*)")
        return path

    def compare_with_file(self, path: str | None = None) -> GraphDiff | None:
        doc = self.document
        if doc is None:
            self.summary.setText("Open a model first.")
            return None
        path = path if path is not None else self.ask_open_path()
        if not path:
            return None
        from ..core.model.io import load_model
        try:
            other = load_model(path, validate=False)
        except GraphError as e:
            self.summary.setText(f"<span style='color:#c92a2a'>{_esc(str(e))}</span>")
            return None
        diff = GraphDiff.between(doc.graph_def, other.graph_def)
        self._compare_diff, self.compare_path = diff, path
        self.refresh()
        self.steps.setCurrentIndex(self.steps.count() - 1)
        removed, added, changed = diff.names()
        if self.view is not None:
            self.view.show_diff_marks(GraphChange(f"compare with {path}", removed=removed,
                                                  changed=changed))
        return diff


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _brush(colour: str):
    from PySide6.QtGui import QBrush, QColor
    return QBrush(QColor(colour))
