"""The Passes panel: pick a pass, read what it does, preview its matches, apply it step by step.

- The list holds every pass of the core (and the "optimize for inference" preset).
- The explanation is the pass's own Markdown (what it matches, why it is safe, the math).
- Parameters are form fields built from the pass's :class:`~surgeon_gui.core.passes.base.Param`.
- *Preview* runs the pass without changing anything: every match is highlighted in the graph and
  listed (tick boxes choose which to apply; clicking one goes to it), every refused candidate is
  listed with the reason.
- *Apply all*, *Apply ticked*, *Step* (the next match only, then a new preview) each push one undo
  command; the preset pushes one command per pass that changed something.
- Every run (preview, apply, step, the preset) and the delta of each step are computed on a
  worker thread, with a window-modal progress dialog (progress per pass, Cancel): the window
  keeps painting, the graph cannot change underneath, and a cancelled run leaves the document
  as it was. The preset consumes :func:`~surgeon_gui.core.passes.pipeline.pipeline_steps`, the
  generator the CLI and recipes use, as they do: one working copy of the document's graph,
  edited in place by each pass (``prepare_pipeline``); its steps are adopted together at the
  end.

The window hands the panel the view and the undo stack, and the open document through
:meth:`PassesPanel.set_document` (None when closed).
"""
from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
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

from ..core.history.document import adopted_change
from ..core.history.steps import prepare_pass, prepare_pipeline, state_before_last
from ..core.model.tfenv import wait_for_tensorflow
from ..core.model.graph import GraphError
from ..core.passes import PRESET_ID, PRESET_PASSES, PRESET_TITLE, all_passes, get_pass
from ..core.passes.leftovers import leftovers
from ..core.passes.base import PassReport
from ..core.passes.pipeline import MAX_ROUNDS
from ..core.viewmodel.grouping import GroupTree
from ..core.viewmodel.viewstate import ViewState, preview_kinds
from .commands import hold, record_steps
from .graph_view import tags_of
from .name_elide import beside_name, elide_names, names_get_the_room
from .workers import Worker, build_quietly, freeze_survivors

KEY_ROLE = Qt.UserRole
NODES_ROLE = Qt.UserRole + 1


def _visible_after(tree: GroupTree, user_opened: set, user_closed: set) -> tuple:
    """(tree, open groups, visible edges) of the view of ``tree`` that a view whose user
    opened and closed these groups shows (``ViewState.follow``), for ``remember_visible``."""
    state = ViewState()
    state.user_opened, state.user_closed = user_opened, user_closed
    state.follow(tree)
    expanded = frozenset(k for k in state.expanded if k in tree.groups)
    return tree, expanded, build_quietly(lambda: tree.visible_graph(expanded))


class PassesPanel(QWidget):
    #: A step was pushed (the StepCommand).
    step_applied = Signal(object)
    #: A preview finished (the PassReport).
    previewed = Signal(object)
    #: Everything a button started is over (success or failure).
    idle = Signal()
    #: A match of a fresh preview was clicked: (pass id, match key) — the Worked numbers panel.
    match_clicked = Signal(str, str)

    def __init__(self, view, undo_stack, parent=None):
        super().__init__(parent)
        self.view = view
        self.undo_stack = undo_stack
        self.document = None
        self.setObjectName("PassesPanel")
        self._report: PassReport | None = None
        self._report_key: tuple | None = None
        self._worker: Worker | None = None
        self._progress: QProgressDialog | None = None
        self._fields: dict[str, callable] = {}
        self._step_pending = False
        self._focus_before = None

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
        # Long titles wrap onto a second line instead of widening the list past the narrow left
        # column (no sideways scrolling, nothing cut): the canvas keeps its share of the window.
        self.list.setWordWrap(True)
        self.list.setTextElideMode(Qt.ElideNone)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.list.setResizeMode(QListWidget.Adjust)
        self.list.setUniformItemSizes(False)
        self.list.setSpacing(1)  # a wrapped title reads as one entry

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
        self.matches.setHeaderLabels(["Match", "Change"])  # short: the column is narrow
        self.matches.setRootIsDecorated(False)
        self.refused = QTreeWidget()
        self.refused.setObjectName("pass_refused")
        self.refused.setHeaderLabels(["Refused", "Reason"])
        self.refused.setRootIsDecorated(False)
        for t in (self.matches, self.refused):  # long node names: their last components stay
            elide_names(t)
        # a match's name has its check box beside it; what it does is in its tooltip and the
        # Worked numbers tab
        names_get_the_room(self.matches, 0.25)
        names_get_the_room(self.refused)
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
    def set_document(self, doc) -> None:
        """Follow ``doc`` (None: no model open); what the panel showed for another model goes."""
        if self._worker is not None:
            self._worker.cancel()
        if self.document is not None:
            self.document.changed.disconnect(self.document_changed)
        self.document = doc
        if doc is not None:
            doc.changed.connect(self.document_changed)
        self._clear_preview()
        self._update_buttons()

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

    def document_changed(self, change=None, *_) -> None:
        """The graph changed: a preview of the old graph goes; an undo takes back what the
        status said was applied."""
        if not self._alive():  # a document outliving its window, or the window being destroyed
            return
        if not self._preview_fresh():
            self._clear_preview(keep_status=True)
        if getattr(change, "kind", None) == "undo" and not self.busy:
            self.status.setText("")
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
        if "preview" in self.view.highlighted().values():
            self.view.set_highlight(None)

    def preview(self) -> None:
        pid = self.current_pass_id()
        doc = self.document
        if doc is None or pid is None or pid == PRESET_ID:
            return
        params = self.params()
        key = self._preview_key()
        graph = doc.graph

        def job(state):
            _ready(state, f"Previewing {get_pass(pid).title}…")
            with hold(doc):
                return get_pass(pid).preview(graph, **params)

        def done(report):
            step, self._step_pending = self._step_pending, False
            if self._preview_key() != key:
                self.status.setText("The graph changed during the preview; preview again.")
                return
            self._show_report(report, key)
            if step:
                self._step_now()

        self._run(job, done, f"Previewing {get_pass(pid).title}…")

    def _show_report(self, report: PassReport, key) -> None:
        self._report, self._report_key = report, key
        self.matches.clear()
        self.refused.clear()
        for m in report.matches:
            it = QTreeWidgetItem([m.key, beside_name(m.key, m.description)])
            it.setFlags(it.flags() | Qt.ItemIsUserCheckable)
            it.setCheckState(0, Qt.Checked)
            it.setData(0, KEY_ROLE, m.key)
            it.setData(0, NODES_ROLE, list(m.nodes) or [m.key])
            it.setToolTip(0, m.key)
            it.setToolTip(1, m.description)
            self.matches.addTopLevelItem(it)
        for r in report.refused:
            it = QTreeWidgetItem([r.key, beside_name(r.key, r.reason)])
            it.setData(0, KEY_ROLE, r.key)
            it.setData(0, NODES_ROLE, list(r.nodes) or [r.key])
            it.setToolTip(0, r.key)
            it.setToolTip(1, r.reason)
            self.refused.addTopLevelItem(it)
        n, k = len(report.matches), len(report.refused)
        self.status.setText(f"{n} match{'es' if n != 1 else ''}, {k} refused"
                            + ("" if n else " — nothing to apply"))
        # a cond's dead branch red, its kept branch green, other matched nodes teal; scroll
        # to a match when none is on screen
        kinds = preview_kinds(self.document.graph, report.matches) if self.document else {}
        self.view.set_highlight_kinds(kinds)
        self.view.reveal([m.key for m in report.matches] + list(kinds))
        self.previewed.emit(report)
        self._update_buttons()

    def _match_clicked(self, item, _col=0) -> None:
        if self._preview_fresh() and item.data(0, KEY_ROLE):
            self.match_clicked.emit(self.current_pass_id(), item.data(0, KEY_ROLE))

    def _go_to(self, item, _col=0) -> None:
        nodes = item.data(0, NODES_ROLE) or []
        view = self.view
        if not nodes:
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
            self._step_pending = True   # step once the preview is back
            self.preview()
            return
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

        def job(state):
            _ready(state, f"Applying {title}…")
            with hold(doc):
                p = prepare_pass(graph, pid, params, select)
            return [] if p is None else [p]

        def done(prepared):
            if not prepared:
                self.status.setText(f"{title}: nothing to change.")
                self._clear_preview(keep_status=True)
                return
            if self._record(doc, prepared, base):
                self.status.setText(f"{title}: {prepared[0].step.report.summary()}")
                if then_preview:
                    self.preview()

        base = doc.revision
        self._run(job, done, f"Applying {title}…")

    def _apply_preset(self) -> None:
        """The preset, off the GUI thread: the pipeline's generator runs every pass until
        nothing changes, each pass run that changed something is prepared as a step (with its
        delta); all of them are adopted at the end, one undo command each. Cancel: none."""
        doc = self.document
        if doc is None:
            return
        graph = doc.graph
        n = len(PRESET_PASSES)
        show_constants = bool(getattr(self.view, "show_constants", False))
        # the groups the user opened and closed (the window-modal progress dialog keeps them
        # as they are while the job runs): which groups the result will show open
        view_state = getattr(self.view, "state", None)
        user = (set(view_state.user_opened), set(view_state.user_closed)) \
            if isinstance(view_state, ViewState) else None

        def job(state):
            _ready(state, f"{PRESET_TITLE}…")

            def on_pass(pid, i, _n, rnd):
                # rounds after the first are usually short: give round r the r-th half of
                # what is left, so the bar moves on and never reaches the end early
                frac = 1.0 - 0.5 ** (rnd - 1) + 0.5 ** rnd * (i / n)
                state.progress(frac, f"Round {rnd}: {get_pass(pid).title} ({i + 1} of {n})")
                # what lives now (the steps kept so far, the graph being worked on) lives on:
                # out of the cyclic collector's walk (see freeze_survivors)
                freeze_survivors()
            with hold(doc):
                prepared = prepare_pipeline(graph, [PRESET_ID],
                                            should_stop=lambda: state.cancelled, on_pass=on_pass)
            state.progress(1.0, "Looking for training machinery left")
            left = leftovers(prepared[-1].graph if prepared else graph)
            # The group trees the view will want: the result's (drawn on adoption) and the
            # state one Ctrl+Z away. Built here, they are not built on the GUI thread (0.1-0.3 s
            # each on NASNetLarge).
            # (The steps went through one working graph: only the last keeps its graph; the
            # state before it is had by taking the last step back on it and redoing it.)
            # No cyclic collection while they are made, and what they are made of frozen
            # before it is on again (see build_quietly): else the first young-generation
            # collection after the build walks them all, holding the GIL (0.25 s on the
            # 107k-node graph: the GUI thread stalls).
            trees = {}
            if len(prepared) >= 2:
                state.progress(1.0, "Grouping the result")
                trees[len(prepared) - 2] = build_quietly(lambda: state_before_last(
                    prepared, lambda g: GroupTree(g, show_constants=show_constants)))
            if prepared:
                state.progress(1.0, "Grouping the result")
                trees[len(prepared) - 1] = build_quietly(
                    lambda: GroupTree(prepared[-1].graph, show_constants=show_constants))
            # the history tags the view draws after the adoption (what each folded node was),
            # kept by the document and the view so the GUI thread finds them made
            tags = change = visible = None
            if prepared:
                origins = doc.origins_after(prepared)
                tags = (origins, tags_of(origins))
                # what the adoption announces (set operations over the ~90k names the preset
                # removes from the 107k-node graph): made here, not on the GUI thread
                change = adopted_change(prepared)
                if user is not None:
                    # the edges the result's view will draw (their labels read the NodeDefs)
                    visible = _visible_after(trees[len(prepared) - 1], *user)
            return prepared, left, trees, tags, change, visible

        def done(result):
            prepared, left, trees, tags, change, visible = result
            if visible is not None and doc is self.document and \
                    hasattr(self.view, "remember_visible"):
                self.view.remember_visible(*visible)
            self._remember_trees(doc, prepared, trees, show_constants)
            if tags is not None and doc is self.document and hasattr(self.view, "remember_tags"):
                self.view.remember_tags(*tags)
            if not prepared or self._record(doc, prepared, base, change):
                self.status.setText(f"Preset done: {len(prepared)} step(s) changed the graph. "
                                    + (f"Left that you may expect gone: {len(left)} kind(s), "
                                       "listed under Refused." if left else
                                       "No training machinery left."))
                self.show_leftovers(left)

        base = doc.revision
        self._run(job, done, f"{PRESET_TITLE}…", determinate=True)

    def show_leftovers(self, left) -> None:
        """After the preset: what a user would expect gone, why it stays, what removes it."""
        self.matches.clear()
        self.refused.clear()
        for item in left:
            it = QTreeWidgetItem([f"{len(item.nodes)} {item.what or item.kind}", item.line()])
            it.setData(0, KEY_ROLE, item.nodes[0] if item.nodes else "")
            it.setData(0, NODES_ROLE, list(item.nodes))
            it.setToolTip(1, item.line())
            self.refused.addTopLevelItem(it)
        self.refused.resizeColumnToContents(0)

    def _remember_trees(self, doc, prepared, trees, show_constants) -> None:
        """Hand group trees built on the worker to the view's per-state cache, under the
        state keys the document will have once ``prepared`` is adopted (a key that does not
        come about is never looked up)."""
        cache_of = getattr(self.view, "_tree_cache_of", None)
        if cache_of is None or doc is not self.document or not trees:
            return
        base = tuple(doc.state_key)
        cache = cache_of(doc)
        for i, tree in trees.items():
            key = base + tuple(p.step.delta.serial for p in prepared[:i + 1])
            tree.graph = None   # (kept graphless, as every cached tree: see _cached_tree)
            cache[(key, show_constants)] = tree

    def _record(self, doc, prepared, base, change=None) -> bool:
        """Adopt prepared steps into the document, one undo command each (``change``: their
        ``adopted_change`` when the job made it)."""
        if doc is not self.document:
            return False
        try:
            cmds = record_steps(self.undo_stack, doc, prepared, base, change)
        except GraphError as e:
            self.status.setText(str(e.problem))
            return False
        freeze_survivors()  # the document's new graph and steps live on
        for cmd in cmds:
            self.step_applied.emit(cmd)
        return True

    # ------------------------------------------------------------------ running jobs
    def _run(self, job, done, text: str, determinate: bool = False) -> None:
        """Run ``job(state)`` on a worker with a window-modal progress dialog (the window keeps
        painting; input to it waits), then ``done(result)`` on the GUI thread."""
        worker = Worker(job)
        self._worker = worker
        self._begin_busy(text, determinate)

        def finished(result):
            if not self._alive() or worker is not self._worker:
                return
            self._end_busy()
            try:
                done(result)
            finally:
                self._update_buttons()
                if self._worker is None:  # done() may have started the next job (Step)
                    self.idle.emit()

        def failed(msg, e):
            if not self._alive() or worker is not self._worker:
                return
            if isinstance(e, InterruptedError):
                return cancelled()
            self._fail(getattr(e, "problem", None) or msg)

        def cancelled():
            if not self._alive() or worker is not self._worker:
                return
            self._fail("Cancelled: the graph is as it was.", error=False)

        worker.signals.progress.connect(self._progress_changed)
        worker.signals.finished.connect(finished)
        worker.signals.failed.connect(failed)
        worker.signals.cancelled.connect(cancelled)
        worker.start()

    def _begin_busy(self, text: str, determinate: bool) -> None:
        if self._progress is None:
            dlg = QProgressDialog(text, "Cancel", 0, 1000 if determinate else 0, self.window())
            dlg.setWindowTitle("Graph Surgeon")
            dlg.setWindowModality(Qt.WindowModal)
            dlg.setMinimumDuration(300)
            dlg.setAutoReset(False)
            dlg.setAutoClose(False)
            # wide enough for the longest "Round r: <pass title> (i of n)" line: the dialog
            # grows to fit its text, and a Cancel button that jumps away is hard to hit
            longest = max((f"Round {MAX_ROUNDS}: {get_pass(pid).title} "
                           f"({len(PRESET_PASSES)} of {len(PRESET_PASSES)})"
                           for pid in PRESET_PASSES), key=dlg.fontMetrics().horizontalAdvance)
            dlg.setMinimumWidth(min(dlg.fontMetrics().horizontalAdvance(longest) + 60, 900))
            dlg.canceled.connect(self.cancel)
            self._progress = dlg
            self._focus_before = QApplication.focusWidget()
        dlg = self._progress
        dlg.setLabelText(text)
        self._update_buttons()

    def _progress_changed(self, fraction: float, text: str) -> None:
        dlg = self._progress
        if dlg is None or not shiboken6.isValid(dlg):
            return
        if text:
            dlg.setLabelText(text)
        if dlg.maximum():
            # (a modal QProgressDialog processes events in setValue: the job may end in there)
            dlg.setValue(int(fraction * 1000))

    def cancel(self) -> None:
        """Stop the running job at the next pass; the document stays as it was."""
        if self._worker is not None:
            self._worker.cancel()

    def _end_busy(self) -> None:
        self._worker = None
        dlg, self._progress = self._progress, None
        if dlg is not None and shiboken6.isValid(dlg):
            shown = dlg.isVisible()
            dlg.canceled.disconnect(self.cancel)
            dlg.reset()
            # hidden now, not when the deferred delete comes: reset() does not hide it (auto-close
            # is off), and until then the window-modal dialog took the keys: a Ctrl+Z right after
            # the preset's end was now and then lost (1 run in 8 of a pytest-qt test)
            dlg.hide()
            dlg.deleteLater()
            if shown:  # give the keyboard back to where it was (Ctrl+Z must work next)
                self.window().activateWindow()
                focus, self._focus_before = self._focus_before, None
                if focus is not None and shiboken6.isValid(focus):
                    focus.setFocus()

    def _fail(self, message: str, error: bool = True) -> None:
        self._step_pending = False
        self._end_busy()
        self.status.setText(f"<span style='color:#c92a2a'>{_escape(message)}</span>"
                            if error else _escape(message))
        self._update_buttons()
        self.idle.emit()


def _ready(state, text: str) -> None:
    """A pass job's start: say what runs, and never run a pass while TensorFlow's background
    import is still under way (passes may evaluate constants with TensorFlow)."""
    state.progress(0.0, text)
    wait_for_tensorflow()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
