"""The Diff panel: what a step changed, node by node, and the diff against another model file.

- *Step* lists the applied steps of the Document's history (newest selected: the step the
  view's marks and the status bar show; after several steps at once, as the preset's Apply all,
  the last of them that changed nodes); the tree below shows the removed, added and
  changed nodes of the chosen step, each changed node with what changed (an attribute's old and
  new value, rewired inputs, weight statistics before/after). Clicking a node goes to it.
- Below the steps the same list offers *Since opening* (the model as opened → now: what all
  the applied steps changed together, as the preset's Apply all did) and *Since step k* (the
  state after step k → now); such a span is listed and marked in the view as a step is, and
  *Before* shows the graph at the span's start.
- *Compare with file…* opens a second model and shows the diff of the open graph against it the
  same way (and marks the open graph: nodes only here red, nodes that differ amber).
- *Before* flips the view to the graph as it was before the chosen step (the view's before
  mode) and back; any change to the document flips back to *after*.

The window gives the panel the view and, through :meth:`DiffPanel.set_document`, the open
document (None when closed); the panel reads the document's step list and follows its
``changed`` signal.
"""
from __future__ import annotations

import weakref

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
from ..core.history.document import Document, GraphChange, Step
from ..core.model.graph import GraphError
from .name_elide import elide_names, names_get_the_room
from .workers import Worker

NAME_ROLE = Qt.UserRole
#: Longest list shown per category (the summary gives the full counts).
MAX_ROWS = 3000
COMPARE_KEY = "__compare__"
#: Item data of a span entry: SPAN_PREFIX + the number of steps before it (0: since opening).
SPAN_PREFIX = "__since__:"
#: Span diffs kept: each holds the nodes its span changed (since opening after the preset on
#: the 107k-node graph: ~92k removed, 14k changed, 64 MB).
SPANS_KEPT = 2


class DiffPanel(QWidget):
    #: The diff on show changed (the GraphDiff, or None).
    diff_shown = Signal(object)
    #: Something to tell the user in the status bar.
    message = Signal(str)

    def __init__(self, view, parent=None):
        super().__init__(parent)
        self.view = view
        self.document: Document | None = None
        self.setObjectName("DiffPanel")
        #: Injectable for tests: returns a path or "" (cancelled).
        self.ask_open_path = self._ask_open_path
        self.diff: GraphDiff | None = None
        self.compare_path: str | None = None
        self._compare_diff: GraphDiff | None = None
        self._diffs: weakref.WeakKeyDictionary[Step, GraphDiff] = weakref.WeakKeyDictionary()
        #: Span diffs: (start, the span's delta serials) -> GraphDiff, the newest last.
        self._span_diffs: dict[tuple, GraphDiff] = {}
        #: The view's marks are a span's (set by this panel), not the current step's.
        self._span_marked = False
        #: The steps already listed (to tell several new steps at once: the preset's Apply all).
        self._listed: weakref.WeakSet[Step] = weakref.WeakSet()
        self._refresh_pending = False
        self._diff_worker: Worker | None = None

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
        self.summary = QLabel("No model open.")
        self.summary.setObjectName("diff_summary")
        self.summary.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setObjectName("diff_tree")
        self.tree.setHeaderLabels(["Node", "Op / change"])
        elide_names(self.tree)  # long node names: their last components stay
        # a change's both ends; a removed/added node's "Const int32[8]" read whole (up to
        # 40% of the width: the floor set in show_diff), long change lines cut
        self._room = names_get_the_room(self.tree, elide=Qt.ElideMiddle)
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
        view.before_changed.connect(self._before_changed)
        self.refresh()

    # ------------------------------------------------------------------ document
    def set_document(self, doc: Document | None) -> None:
        """Follow ``doc`` (None: no model open)."""
        if self.document is not None:
            self.document.changed.disconnect(self._history_moved)
        self.document = doc
        self._compare_diff = None
        self.compare_path = None
        self._diffs.clear()
        self._span_diffs.clear()
        self._span_marked = False
        self._listed = weakref.WeakSet(doc.applied_steps if doc is not None else ())
        self._diff_worker = None
        if doc is not None:
            doc.changed.connect(self._history_moved)
        self.before_button.setChecked(False)
        self.refresh()

    def _history_moved(self, *_) -> None:
        if not shiboken6.isValid(self) or not shiboken6.isValid(self.before_button):
            return
        # Built after the view has redrawn, and only once per burst of changes.
        if not self._refresh_pending:
            self._refresh_pending = True
            QTimer.singleShot(0, self.refresh)

    def applied_steps(self) -> list[Step]:
        return self.document.applied_steps if self.document is not None else []

    def refresh(self) -> None:
        """Rebuild the step list from the document's history and show its current step."""
        self._refresh_pending = False
        if not shiboken6.isValid(self) or not shiboken6.isValid(self.steps):
            return
        steps = self.applied_steps()
        kept_span = self.selected_span_start()
        self.steps.blockSignals(True)
        self.steps.clear()
        # item data: the step's number (1-based, as in the History and the status bar)
        for i, st in enumerate(steps, 1):
            self.steps.addItem(f"{i}. {st.label}", i)
        if steps:
            # spans ending now: since opening, since step k (k < n - 1; step n alone is above)
            self.steps.insertSeparator(self.steps.count())
            n = len(steps)
            self.steps.addItem(f"Since opening: all {n} step{'s' if n > 1 else ''}"
                               if n > 1 else "Since opening: step 1", SPAN_PREFIX + "0")
            for k in range(1, n - 1):
                self.steps.addItem(f"Since step {k}: steps {k + 1}–{n}", f"{SPAN_PREFIX}{k}")
        if self._compare_diff is not None:
            self.steps.addItem(f"Compared with {self.compare_path}", COMPARE_KEY)
        self.steps.blockSignals(False)
        if self.steps.count():
            at = self.steps.findData(f"{SPAN_PREFIX}{kept_span}") if kept_span is not None \
                else -1
            if at < 0:  # (a span chosen stays chosen while it still has steps)
                at = self._telling_step(steps) if steps else self.steps.count() - 1
            self.steps.setCurrentIndex(at)
        self._listed.update(steps)
        self._show_selected()

    def _telling_step(self, steps: list[Step]) -> int:
        """The index of the step to show: the newest; but when several steps came at once (the
        preset's Apply all), the last of them that changed nodes (the preset ends with steps
        such as "Sort by execution order" that change none). The selector still offers every step."""
        new = [i for i, st in enumerate(steps) if st not in self._listed]
        if len(new) > 1 and new[-1] == len(steps) - 1:
            for i in reversed(new):
                d = steps[i].delta
                if d.removed or d.added or d.changed:
                    return i
        return len(steps) - 1

    def selected_step_number(self) -> int | None:
        data = self.steps.currentData()
        return data if isinstance(data, int) else None

    def selected_step(self) -> Step | None:
        n = self.selected_step_number()
        steps = self.applied_steps()
        return steps[n - 1] if n is not None and 0 < n <= len(steps) else None

    def selected_span_start(self) -> int | None:
        """The number of steps before the chosen span (0: since opening), or None when the
        choice is no span."""
        data = self.steps.currentData()
        if isinstance(data, str) and data.startswith(SPAN_PREFIX):
            return int(data[len(SPAN_PREFIX):])
        return None

    def show_since(self, start: int = 0) -> None:
        """Choose the span from the state after ``start`` steps (0: as opened) to now."""
        at = self.steps.findData(f"{SPAN_PREFIX}{start}")
        if at < 0:
            raise IndexError(f"no span since step {start} (applied: {len(self.applied_steps())})")
        self.steps.setCurrentIndex(at)

    def _span_key(self, start: int) -> tuple:
        return (start,) + tuple(s.delta.serial for s in self.applied_steps()[start:])

    def step_diff(self, step: Step) -> GraphDiff:
        """The step's diff (computed here when not cached; the panel computes it on a worker)."""
        d = self._diffs.get(step)
        if d is None:
            d = self._diffs[step] = GraphDiff.from_delta(step.delta)
        return d

    @property
    def computing(self) -> bool:
        """The panel is still catching up: a refresh is queued or a step's diff is being
        computed on a worker."""
        return self._diff_worker is not None or self._refresh_pending

    def _show_selected(self, *_) -> None:
        if not shiboken6.isValid(self) or not shiboken6.isValid(self.tree):
            return
        data = self.steps.currentData()
        step = self.selected_step()
        start = self.selected_span_start()
        self.before_button.setEnabled(step is not None or start is not None)
        if data == COMPARE_KEY:
            self.show_diff(self._compare_diff, f"Open graph → {self.compare_path}")
        elif start is not None:
            diff = self._span_diffs.get(self._span_key(start))
            if diff is None:
                self._compute_span(start)  # (off the GUI thread, as a step's diff)
                return
            n = len(self.applied_steps())
            title = f"Since opening (steps 1–{n})" if start == 0 else \
                f"Since step {start} (steps {start + 1}–{n})"
            renames = self.document.renames(start) if self.document else {}
            self.show_diff(diff, title, renames)
            self._mark_span(diff)
        elif step is not None:
            if self._span_marked:  # back from a span: the view marks this step again
                self._span_marked = False
                d = step.delta
                self.view.show_diff_marks(GraphChange(step.label, removed=set(d.removed),
                                                      added=set(d.added),
                                                      changed=set(d.changed)))
            diff = self._diffs.get(step)
            if diff is None:
                # Reading a step's node versions (weights and their statistics) takes long on
                # a big model: off the GUI thread.
                self._compute_diff(step)
                return
            renames = self.document.renames(data - 1, data) if self.document else {}
            self.show_diff(diff, f"Step {data}: {step.label}", renames)
        else:
            self.show_diff(None, "")

    def _mark_span(self, diff: GraphDiff) -> None:
        """Mark the span's change in the view (in before mode: what it removed and changed)."""
        removed, added, changed = diff.names()
        if self.view.showing_before:
            added = set()
        self.view.show_diff_marks(GraphChange("span", removed=removed, added=added,
                                              changed=changed))
        self._span_marked = True

    def _compute_span(self, start: int) -> None:
        doc = self.document
        steps = self.applied_steps()[start:]
        key = self._span_key(start)
        deltas = [s.delta for s in steps]
        # whole-graph steps (duplicate names) need the graph itself: a private copy
        current = doc.snapshot() if any(d.old_full is not None for d in deltas) else None

        def keep(diff):
            self._span_diffs[key] = diff
            while len(self._span_diffs) > SPANS_KEPT:
                del self._span_diffs[next(iter(self._span_diffs))]
            if self.selected_span_start() == start and self._span_key(start) == key:
                self._show_selected()
        self._diff_on_worker(f"Reading {len(steps)} step{'s' if len(steps) > 1 else ''}…",
                             "Cannot show these steps", keep, GraphDiff.across, deltas, current)

    def _compute_diff(self, step: Step) -> None:
        def keep(diff):
            self._diffs[step] = diff
            if self.selected_step() is step:
                self._show_selected()
        self._diff_on_worker(f"Reading step: {step.label}…", "Cannot show this step", keep,
                             GraphDiff.from_delta, step.delta)

    def _diff_on_worker(self, reading: str, cannot: str, keep, job, *args) -> None:
        """Run ``job(*args)`` (a diff) on a worker, ``reading`` in the summary meanwhile; its
        diff goes to ``keep`` unless a newer one was asked for since."""
        self.tree.clear()
        self.summary.setText(f"<i>{_esc(reading)}</i>")
        worker = Worker(job, *args)
        self._diff_worker = worker

        def finished(diff):
            if not shiboken6.isValid(self) or worker is not self._diff_worker:
                return
            self._diff_worker = None
            keep(diff)

        def failed(msg, _e):
            if not shiboken6.isValid(self) or worker is not self._diff_worker:
                return
            self._diff_worker = None
            self.summary.setText(f"{cannot}: {_esc(msg.splitlines()[0])}")
            self.diff_shown.emit(None)

        worker.signals.finished.connect(finished)
        worker.signals.failed.connect(failed)
        worker.start()

    # ------------------------------------------------------------------ the tree
    def show_diff(self, diff: GraphDiff | None, title: str,
                  renames: dict[str, str] | None = None) -> None:
        """``renames`` (new name → old name): listed as renamed, not as removed + added."""
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
        renames = {new: old for new, old in (renames or {}).items()
                   if any(e.name == new for e in diff.added)
                   and any(e.name == old for e in diff.removed)}
        gone = set(renames.values())
        groups = [("Removed", [e for e in diff.removed if e.name not in gone], "#c92a2a"),
                  ("Added", [e for e in diff.added if e.name not in renames], "#2b8a3e"),
                  ("Changed", diff.changed, "#e67700")]
        if renames:
            top = QTreeWidgetItem([f"Renamed ({len(renames)})", ""])
            top.setForeground(0, _brush("#1864ab"))
            self.tree.addTopLevelItem(top)
            for new, old in renames.items():
                it = QTreeWidgetItem([new, f"renamed from {old}"])
                it.setToolTip(0, new)
                it.setToolTip(1, f"{old} → {new}")
                it.setData(0, NAME_ROLE, new)
                top.addChild(it)
            top.setExpanded(True)
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
                it.setToolTip(0, e.name)  # the column elides long names in the middle
                top.addChild(it)
            if len(entries) > MAX_ROWS:
                top.addChild(QTreeWidgetItem([f"… and {len(entries) - MAX_ROWS} more", ""]))
            top.setExpanded(len(entries) <= 200)
        fm = self.tree.fontMetrics()
        ops = [e.op + (f"  {e.detail}" if e.detail else "")
               for e in (diff.removed[:MAX_ROWS] + diff.added[:MAX_ROWS])]
        ops += [e.new_op if e.old_op == e.new_op else f"{e.old_op} → {e.new_op}"
                for e in diff.changed[:MAX_ROWS]]
        self._room.floor = max(map(fm.horizontalAdvance, ops), default=0) + 16  # (+ margins)
        self._room.fit()  # (column 0 stretches: it takes the rest)
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
        if not name:
            return
        ok = self.view.focus_node(name)
        step = self.selected_step()
        span = self.selected_span_start()
        if not ok and not self.before_button.isChecked() and (
                step is not None and name in step.delta.removed or span is not None
                and self.diff is not None and any(e.name == name for e in self.diff.removed)):
            # a removed node lives in the graph before the step: show that graph, go there
            self.before_button.setChecked(True)
            ok = self.view.focus_node(name)
        if not ok:
            where = "before the step (press Before)" if not self.before_button.isChecked() \
                else "after the step"
            self.summary.setToolTip(f"{name} is not in this graph; it exists {where}")
            self.message.emit(f"{name} is not in the graph shown; it exists {where}")

    def _clear_marks(self) -> None:
        self.view.clear_marks()

    # ------------------------------------------------------------------ before / after
    def show_before(self, on: bool) -> None:
        """Flip the view to the graph before the chosen step (on) or back to now (off)."""
        if self.document is None:
            return
        n = self.selected_step_number()
        start = self.selected_span_start()
        if on and start is not None:
            # the state at the span's start is the one before its first step
            self.view.show_before(start + 1)
            if self.diff is not None:
                self._mark_span(self.diff)
                last = len(self.applied_steps())
                self.view.before_banner.setText(
                    ("As opened" if start == 0 else f"After step {start}") +
                    f" — the graph before steps {start + 1}–{last} (read-only; marks: what "
                    "they removed and changed)")
                self.view.before_banner.adjustSize()
        elif on and n is not None:
            self.view.show_before(n)
        elif self.view.showing_before:
            self.view.show_before(None)
        else:
            self._before_changed(None)

    def _before_changed(self, step) -> None:
        """The view entered or left before mode (also on its own, when the document changed)."""
        if not shiboken6.isValid(self) or not shiboken6.isValid(self.before_button):
            return
        on = step is not None
        self.before_button.blockSignals(True)
        self.before_button.setChecked(on)
        self.before_button.blockSignals(False)
        self.before_button.setText("After" if on else "Before")
        self.before_button.setToolTip("Show the graph as it is now" if on else
                                      "Show the graph as it was before the chosen step")
        if not on and self.selected_span_start() is not None and self.diff is not None \
                and not self._refresh_pending:
            self._mark_span(self.diff)  # (leaving before mode marked the current step)

    @property
    def showing_before(self) -> bool:
        return self.view.showing_before

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
        self.view.show_diff_marks(GraphChange(f"compare with {path}", removed=removed,
                                              changed=changed))
        return diff


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _brush(colour: str):
    from PySide6.QtGui import QBrush, QColor
    return QBrush(QColor(colour))
