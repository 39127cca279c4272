"""The Passes panel: pick a pass, read what it does, preview its matches, apply it step by step.

- The list holds every pass of the core (and the "optimize for inference" preset).
- The explanation is the pass's own Markdown (what it matches, why it is safe, the math).
- Parameters are form fields built from the pass's :class:`~surgeon_gui.core.passes.base.Param`.
- *Preview* runs the pass without changing anything: every match is highlighted in the graph and
  listed (tick boxes choose which to apply; clicking one goes to it), every refused candidate is
  listed with the reason.
- *Apply all*, *Apply ticked*, *Step* (the next match only, then a new preview) each push one undo
  command; the preset pushes one command per pass that changed something.
- Graphs larger than :attr:`PassesPanel.background_nodes` are processed on a worker thread with a
  window-modal progress dialog (the window keeps painting; the graph cannot change underneath).
"""
from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressDialog,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.model.graph import GraphError
from ..core.passes import PRESET_ID, PRESET_PASSES, PRESET_TITLE, all_passes, get_pass
from ..core.passes.base import PassReport
from ..core.passes.pipeline import MAX_ROUNDS, run_pass
from .commands import ApplyPassCommand, StepCommand, push_step
from .workers import Worker

KEY_ROLE = Qt.UserRole
NODES_ROLE = Qt.UserRole + 1


class PassesPanel(QWidget):
    #: A step was pushed (the StepCommand).
    step_applied = Signal(object)
    #: A preview finished (the PassReport).
    previewed = Signal(object)
    #: Everything a button started is over (success or failure).
    idle = Signal()
    #: A match of a fresh preview was clicked: (pass id, match key) — the Worked numbers panel.
    match_clicked = Signal(str, str)

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.window = window
        self.setObjectName("PassesPanel")
        #: Graphs with more nodes than this run on a worker thread.
        self.background_nodes = 3000
        self._report: PassReport | None = None
        self._report_key: tuple | None = None
        self._worker: Worker | None = None
        self._progress: QProgressDialog | None = None
        self._fields: dict[str, callable] = {}

        self.list = QListWidget()
        self.list.setObjectName("pass_list")
        # The preset first: it is the pass most users need.
        preset = QListWidgetItem(PRESET_TITLE)
        preset.setData(KEY_ROLE, PRESET_ID)
        preset.setToolTip(", ".join(PRESET_PASSES))
        font = preset.font()
        font.setBold(True)
        preset.setFont(font)
        self.list.addItem(preset)
        for p in all_passes().values():
            item = QListWidgetItem(p.title)
            item.setData(KEY_ROLE, p.id)
            item.setToolTip(f"{p.title} ({p.id})")
            self.list.addItem(item)

        self.explanation = QTextBrowser()
        self.explanation.setObjectName("pass_explanation")
        self.explanation.setOpenExternalLinks(True)
        self.form_box = QWidget()
        self.form = QFormLayout(self.form_box)
        self.form.setContentsMargins(0, 0, 0, 0)

        self.preview_button = QPushButton("Preview")
        self.apply_all_button = QPushButton("Apply all")
        self.apply_ticked_button = QPushButton("Apply ticked")
        self.step_button = QPushButton("Step")
        self.preview_button.setToolTip("Show every match and every refused candidate; changes "
                                       "nothing")
        self.apply_ticked_button.setToolTip("Apply only the ticked matches of the preview")
        self.step_button.setToolTip("Apply the next match only, then preview again")
        # two rows of two: the column stays narrow and the canvas wide
        buttons = QGridLayout()
        for i, b in enumerate((self.preview_button, self.apply_all_button,
                               self.apply_ticked_button, self.step_button)):
            buttons.addWidget(b, i // 2, i % 2)

        self.matches = QTreeWidget()
        self.matches.setObjectName("pass_matches")
        self.matches.setHeaderLabels(["Match", "What it does"])
        self.matches.setRootIsDecorated(False)
        self.refused = QTreeWidget()
        self.refused.setObjectName("pass_refused")
        self.refused.setHeaderLabels(["Refused", "Reason"])
        self.refused.setRootIsDecorated(False)
        self.status = QLabel("")
        self.status.setObjectName("pass_status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.explanation, 3)
        rl.addWidget(self.form_box)
        rl.addLayout(buttons)
        rl.addWidget(self.status)
        rl.addWidget(self.matches, 2)
        rl.addWidget(self.refused, 1)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.list)
        split.addWidget(right)
        split.setStretchFactor(1, 3)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(split)

        self.list.currentItemChanged.connect(lambda *_: self._show_pass())
        self.preview_button.clicked.connect(self.preview)
        self.apply_all_button.clicked.connect(self.apply_all)
        self.apply_ticked_button.clicked.connect(self.apply_ticked)
        self.step_button.clicked.connect(self.step)
        self.matches.itemClicked.connect(self._go_to)
        self.matches.itemClicked.connect(self._match_clicked)
        self.refused.itemClicked.connect(self._go_to)
        self.list.setCurrentRow(0)
        self._update_buttons()

    # ------------------------------------------------------------------ state
    @property
    def document(self):
        return getattr(self.window, "document", None)

    @property
    def view(self):
        return getattr(self.window, "view", None)

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def current_pass_id(self) -> str | None:
        item = self.list.currentItem()
        return item.data(KEY_ROLE) if item else None

    def select_pass(self, pass_id: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(KEY_ROLE) == pass_id:
                self.list.setCurrentRow(i)
                return
        raise KeyError(pass_id)

    def params(self) -> dict:
        return {name: get() for name, get in self._fields.items()}

    def ticked_keys(self) -> list[str]:
        out = []
        for i in range(self.matches.topLevelItemCount()):
            it = self.matches.topLevelItem(i)
            if it.checkState(0) == Qt.Checked:
                out.append(it.data(0, KEY_ROLE))
        return out

    def set_ticked(self, keys) -> None:
        keys = set(keys)
        for i in range(self.matches.topLevelItemCount()):
            it = self.matches.topLevelItem(i)
            it.setCheckState(0, Qt.Checked if it.data(0, KEY_ROLE) in keys else Qt.Unchecked)

    def _alive(self) -> bool:
        return all(shiboken6.isValid(w) for w in (
            self, self.list, self.preview_button, self.apply_all_button,
            self.apply_ticked_button, self.step_button, self.matches, self.refused, self.status))

    def _update_buttons(self) -> None:
        if not self._alive():
            return
        has_doc = self.document is not None
        pid = self.current_pass_id()
        preset = pid == PRESET_ID
        fresh = self._preview_fresh()
        self.preview_button.setEnabled(has_doc and not preset and not self.busy)
        self.apply_all_button.setEnabled(has_doc and not self.busy)
        self.apply_ticked_button.setEnabled(has_doc and not preset and fresh and not self.busy
                                            and bool(self._report and self._report.matches))
        self.step_button.setEnabled(has_doc and not preset and not self.busy)

    def _preview_key(self) -> tuple | None:
        doc = self.document
        if doc is None:
            return None
        return (id(doc), doc.revision, self.current_pass_id(), repr(sorted(self.params().items())))

    def _preview_fresh(self) -> bool:
        return self._report is not None and self._report_key == self._preview_key()

    def document_changed(self, *_) -> None:
        """Call when the window opens another document or the graph changes."""
        if not self._alive():  # a document outliving its window, or the window being destroyed
            return
        if not self._preview_fresh():
            self._clear_preview(keep_status=True)
        self._update_buttons()

    # ------------------------------------------------------------------ pass details
    def _show_pass(self) -> None:
        pid = self.current_pass_id()
        while self.form.rowCount():
            self.form.removeRow(0)
        self._fields.clear()
        if pid is None:
            return
        if pid == PRESET_ID:
            steps = "\n".join(f"{i}. **{get_pass(p).title}** (`{p}`)"
                              for i, p in enumerate(PRESET_PASSES, 1))
            self.explanation.setMarkdown(
                f"## {PRESET_TITLE}\n\nRuns these passes in order, again and again until none of "
                f"them changes anything (at most {MAX_ROUNDS} rounds). Each pass that changes "
                f"the graph becomes its own step in the History, so each can be undone on its "
                f"own and the Diff panel shows what each did.\n\n{steps}\n")
        else:
            p = get_pass(pid)
            self.explanation.setMarkdown(f"## {p.title}\n\n`{p.id}`\n\n{p.explanation}")
            for prm in p.params:
                self._add_field(prm)
        self._clear_preview()
        self._update_buttons()

    def _add_field(self, prm) -> None:
        if prm.choices:
            w = QComboBox()
            w.addItems([str(c) for c in prm.choices])
            w.setCurrentText(str(prm.default))
            choices = list(prm.choices)
            get = (lambda w=w, c=choices: c[w.currentIndex()])
            w.currentIndexChanged.connect(self._params_edited)
        elif prm.type is bool:
            w = QCheckBox()
            w.setChecked(bool(prm.default))
            get = w.isChecked
            w.toggled.connect(self._params_edited)
        elif prm.type is int:
            w = QSpinBox()
            w.setRange(-2**31 + 1, 2**31 - 1)
            w.setValue(int(prm.default))
            get = w.value
            w.valueChanged.connect(self._params_edited)
        elif prm.type is float:
            w = QDoubleSpinBox()
            w.setDecimals(6)
            w.setRange(-1e12, 1e12)
            w.setValue(float(prm.default))
            get = w.value
            w.valueChanged.connect(self._params_edited)
        else:
            w = QLineEdit(",".join(prm.default) if isinstance(prm.default, list)
                          else str(prm.default))
            if prm.type is list:
                get = (lambda w=w: [s.strip() for s in w.text().split(",") if s.strip()])
            else:
                get = w.text
            w.textChanged.connect(self._params_edited)
        w.setObjectName(f"param_{prm.name}")
        w.setToolTip(prm.help)
        label = QLabel(prm.name)
        label.setToolTip(prm.help)
        self.form.addRow(label, w)
        self._fields[prm.name] = get

    def _params_edited(self, *_) -> None:
        self._clear_preview()
        self._update_buttons()

    # ------------------------------------------------------------------ preview
    def _clear_preview(self, keep_status: bool = False) -> None:
        self._report = None
        self._report_key = None
        self.matches.clear()
        self.refused.clear()
        if not keep_status:
            self.status.setText("")
        view = self.view
        if view is not None and getattr(view, "highlighted", None) is not None:
            try:
                if "preview" in view.highlighted().values():
                    view.set_highlight(None)
            except Exception:  # noqa: BLE001 - a view without a model yet
                pass

    def preview(self) -> None:
        pid = self.current_pass_id()
        doc = self.document
        if doc is None or pid is None or pid == PRESET_ID:
            return
        params = self.params()
        key = self._preview_key()
        graph = doc.graph

        def job():
            return get_pass(pid).preview(graph, **params)

        def done(report):
            if self._preview_key() != key:
                self.status.setText("The graph changed during the preview; preview again.")
                return
            self._show_report(report, key)

        self._run(job, done, f"Previewing {get_pass(pid).title}…")

    def _show_report(self, report: PassReport, key) -> None:
        self._report, self._report_key = report, key
        self.matches.clear()
        self.refused.clear()
        for m in report.matches:
            it = QTreeWidgetItem([m.key, m.description])
            it.setFlags(it.flags() | Qt.ItemIsUserCheckable)
            it.setCheckState(0, Qt.Checked)
            it.setData(0, KEY_ROLE, m.key)
            it.setData(0, NODES_ROLE, list(m.nodes) or [m.key])
            it.setToolTip(1, m.description)
            self.matches.addTopLevelItem(it)
        for r in report.refused:
            it = QTreeWidgetItem([r.key, r.reason])
            it.setData(0, KEY_ROLE, r.key)
            it.setData(0, NODES_ROLE, list(r.nodes) or [r.key])
            it.setToolTip(1, r.reason)
            self.refused.addTopLevelItem(it)
        for t in (self.matches, self.refused):
            t.resizeColumnToContents(0)
        n, k = len(report.matches), len(report.refused)
        self.status.setText(f"{n} match{'es' if n != 1 else ''}, {k} refused"
                            + ("" if n else " — nothing to apply"))
        view = self.view
        if view is not None and hasattr(view, "set_highlight"):
            names = {x for m in report.matches for x in (m.nodes or [m.key])}
            try:
                view.set_highlight(names, "preview")
            except Exception as e:  # noqa: BLE001
                self.status.setText(self.status.text() + f" (cannot highlight: {e})")
        self.previewed.emit(report)
        self._update_buttons()

    def _match_clicked(self, item, _col=0) -> None:
        if self._preview_fresh() and item.data(0, KEY_ROLE):
            self.match_clicked.emit(self.current_pass_id(), item.data(0, KEY_ROLE))

    def _go_to(self, item, _col=0) -> None:
        nodes = item.data(0, NODES_ROLE) or []
        view = self.view
        if view is None or not nodes:
            return
        doc = self.document
        target = next((n for n in nodes if doc is not None and n in doc.graph.nodes), nodes[0])
        try:
            view.focus_node(target)
        except Exception as e:  # noqa: BLE001 - a node the view cannot show
            self.status.setText(f"Cannot go to {target}: {e}")

    # ------------------------------------------------------------------ apply
    def apply_all(self) -> None:
        pid = self.current_pass_id()
        if pid == PRESET_ID:
            self._apply_preset()
        elif pid:
            self._apply(pid, None)

    def apply_ticked(self) -> None:
        pid = self.current_pass_id()
        if not pid or pid == PRESET_ID:
            return
        if not self._preview_fresh():
            self.status.setText("The preview is out of date: preview again, then tick matches.")
            return
        keys = self.ticked_keys()
        if not keys:
            self.status.setText("No match is ticked.")
            return
        self._apply(pid, keys)

    def step(self) -> None:
        """Apply the first match of a fresh preview, then preview again (learning mode)."""
        pid = self.current_pass_id()
        if not pid or pid == PRESET_ID:
            return
        if not self._preview_fresh():
            self.preview()
            if not self._preview_fresh():  # background preview: step once it is back
                self.previewed.connect(self._step_after_preview)
                return
        self._step_now()

    def _step_after_preview(self, _report) -> None:
        self.previewed.disconnect(self._step_after_preview)
        self._step_now()

    def _step_now(self) -> None:
        pid = self.current_pass_id()
        if not self._report or not self._report.matches:
            self.status.setText("Nothing left to apply: no match.")
            return
        first = self._report.matches[0].key
        self._apply(pid, [first], then_preview=True)

    def _apply(self, pid: str, select, then_preview: bool = False) -> None:
        doc = self.document
        if doc is None:
            return
        params = self.params()
        graph = doc.graph
        title = get_pass(pid).title

        def job():
            return run_pass(graph, pid, params, select=None if select is None else set(select))

        def done(result):
            if not result.report.modified:
                self.status.setText(f"{title}: nothing to change "
                                    f"({len(result.report.refused)} refused).")
                self._clear_preview(keep_status=True)
                self._update_buttons()
                return
            cmd = ApplyPassCommand(doc, pid, params, select, result)
            cmd.base_revision = base
            self._push(cmd)
            self.status.setText(f"{title}: {result.report.summary()}")
            if then_preview:
                self.preview()

        base = doc.revision
        self._run(job, done, f"Applying {title}…")

    def _apply_preset(self) -> None:
        """One command per pass that changed something; rounds until nothing changes."""
        doc = self.document
        if doc is None:
            return
        queue = [p for _ in range(MAX_ROUNDS) for p in PRESET_PASSES]
        state = {"changed_in_round": False, "i": 0, "steps": 0}
        n = len(PRESET_PASSES)

        def next_pass():
            i = state["i"]
            if i and i % n == 0:
                if not state["changed_in_round"]:
                    return finish()
                state["changed_in_round"] = False
            if i >= len(queue):
                return finish()
            pid = queue[i]
            state["i"] = i + 1
            graph = doc.graph
            base = doc.revision

            def job():
                return run_pass(graph, pid, {}, select=None)

            def done(result):
                if result.report.modified:
                    cmd = ApplyPassCommand(doc, pid, {}, None, result)
                    cmd.base_revision = base
                    self._push(cmd)
                    state["changed_in_round"] = True
                    state["steps"] += 1
                next_pass()

            self._run(job, done, f"Preset: {get_pass(pid).title} (round {i // n + 1})",
                      chained=True)

        def finish():
            self.status.setText(f"Preset done: {state['steps']} step(s) changed the graph.")
            self._end_busy()

        next_pass()

    def _push(self, cmd: StepCommand) -> None:
        stack = self.window.undo_stack
        try:
            push_step(stack, cmd)
        except GraphError as e:
            self.status.setText(str(e.problem))
            return
        self.step_applied.emit(cmd)

    # ------------------------------------------------------------------ running jobs
    def _run(self, job, done, text: str, chained: bool = False) -> None:
        """Run ``job`` now (small graphs) or on a worker with a progress dialog (big ones)."""
        doc = self.document
        big = doc is not None and len(doc.graph) > self.background_nodes
        if not big:
            try:
                result = job()
            except GraphError as e:
                self._fail(e.problem)
                return
            except (ValueError, KeyError) as e:
                self._fail(str(e.args[0] if e.args else e))
                return
            except Exception as e:  # noqa: BLE001 - a pass's own bug: say so, keep the app
                self._fail(f"{type(e).__name__} in the pass: {e}")
                return
            done(result)
            if not chained:
                self._end_busy()
            return
        worker = Worker(job)
        self._worker = worker
        self._begin_busy(text)

        def finished(result):
            self._worker = None
            done(result)
            if not chained:  # a chain ends itself (the preset's finish)
                self._end_busy()

        worker.signals.finished.connect(finished)
        worker.signals.failed.connect(lambda msg, e: self._fail(
            getattr(e, "problem", None) or msg))
        worker.signals.cancelled.connect(lambda: self._fail("Cancelled."))
        worker.start()

    def _begin_busy(self, text: str) -> None:
        if self._progress is None:
            dlg = QProgressDialog(text, "Cancel", 0, 0, self.window if isinstance(
                self.window, QWidget) else None)
            dlg.setWindowTitle("Graph Surgeon")
            dlg.setWindowModality(Qt.WindowModal)
            dlg.setMinimumDuration(300)
            dlg.canceled.connect(self._cancel)
            self._progress = dlg
        self._progress.setLabelText(text)
        self._update_buttons()

    def _cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def _end_busy(self) -> None:
        self._worker = None
        if self._progress is not None:
            self._progress.reset()
            self._progress.deleteLater()
            self._progress = None
        self._update_buttons()
        self.idle.emit()

    def _fail(self, message: str) -> None:
        self.status.setText(f"<span style='color:#c92a2a'>{_escape(message)}</span>")
        self._end_busy()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
