"""Help ▸ Lessons: guided walkthroughs on bundled models (the lessons are data, see
``docs/lessons.md``; :mod:`surgeon_gui.core.running.lessons` runs them without Qt).

The window lists the lessons. *Start* opens the lesson's model in the main window; each step
shows its text and focuses the graph on the nodes in question. The learner does the step by
hand (Passes panel, the node's context menu) or presses *Do it for me*: the step's actions are
pushed on the undo stack as one macro (Ctrl+Z undoes the whole step). A freeze step opens the
lesson's model frozen from its checkpoint (File ▸ Open with Checkpoint… by hand): the frozen
graph is the lesson's new start, and what the result is compared with. Either way the window
then shows the diff and the worked numbers, and *Next* goes on. The last step ends with the
comparison of the original and the result: "outputs equal: PASS".

The diff and the worked numbers (which runs TensorFlow for its check) and the final comparison
run on a worker thread, so the window never blocks.
"""
from __future__ import annotations

import html
import warnings
from pathlib import Path

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ..core.model.graph import Graph, GraphError
from ..core.model.io import variable_nodes
from ..core.running.lessons import (
    LESSONS_DIR,
    Lesson,
    LessonError,
    LessonRun,
    compare_result,
    list_lessons,
)
from ..core.running.tutorial import markdown_to_html
from .commands import ApplyPassCommand, EditCommand, push_step
from .workers import Worker
from .worked_view import qt_html

def _disconnect(signal, slot) -> None:
    """Disconnect if connected (PySide warns about a slot that is not connected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            signal.disconnect(slot)
        except (RuntimeError, TypeError):
            pass


CSS = ("<style>table{border-collapse:collapse} td,th{border:1px solid #c5ccd6;"
       "padding:1px 4px} code{background:#f1f3f5}</style>")


class LessonsWindow(QWidget):
    """The lessons window. ``state`` is "idle", "opening", "step" (to do), "busy", "done"
    (step done, results shown), "comparing" or "finished"."""

    #: The lesson ended (its verdict line).
    finished = Signal(str)
    #: A step's results (diff and numbers) are shown.
    step_shown = Signal(int)

    def __init__(self, window, folder=LESSONS_DIR, parent=None):
        super().__init__(parent or window, Qt.Window)
        self.window = window
        self.setObjectName("LessonsWindow")
        self.setWindowTitle("Lessons — Graph Surgeon")
        self.resize(520, 760)
        self.folder = folder
        self.run: LessonRun | None = None
        self.state = "idle"
        self.verdict = ""
        self._worker: Worker | None = None
        self._doc = None

        self.list = QListWidget()
        self.list.setObjectName("lesson_list")
        self.text = QTextBrowser()
        self.text.setObjectName("lesson_text")
        self.text.setOpenExternalLinks(True)
        self.progress = QLabel("")
        self.progress.setObjectName("lesson_progress")
        self.start_button = QPushButton("Start lesson")
        self.do_button = QPushButton("Do it for me")
        self.do_button.setToolTip("Let the app do this step (one undoable step)")
        self.next_button = QPushButton("Next ▸")
        for b, name in ((self.start_button, "lesson_start"), (self.do_button, "lesson_do"),
                        (self.next_button, "lesson_next")):
            b.setObjectName(name)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.do_button)
        buttons.addWidget(self.next_button)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.text, 1)
        rl.addLayout(buttons)
        # the list of lessons above, the lesson below: the window stays narrow enough to sit
        # beside the graph it talks about
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.list)
        split.addWidget(right)
        split.setStretchFactor(1, 6)
        split.setSizes([90, 640])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split)

        self.lessons: list[Lesson] = []
        try:
            self.lessons = list_lessons(folder)
        except LessonError as e:
            self.text.setPlainText(f"Cannot read the lessons: {e.problem}")
        for les in self.lessons:
            it = QListWidgetItem(les.title)
            it.setToolTip(les.id)
            self.list.addItem(it)
        self.list.currentRowChanged.connect(self._preview)
        self.start_button.clicked.connect(self.start)
        self.do_button.clicked.connect(self.do_step)
        self.next_button.clicked.connect(self.next)
        if self.lessons:
            self.list.setCurrentRow(0)
        self._update()

    # ------------------------------------------------------------------ helpers
    @property
    def lesson(self) -> Lesson | None:
        row = self.list.currentRow()
        return self.lessons[row] if 0 <= row < len(self.lessons) else None

    def _alive(self) -> bool:
        return shiboken6.isValid(self)

    def _update(self) -> None:
        s = self.state
        self.start_button.setEnabled(self.lesson is not None and s in ("idle", "step", "done",
                                                                         "finished"))
        self.start_button.setText("Restart lesson" if s not in ("idle", "finished")
                                  else "Start lesson")
        self.do_button.setEnabled(s == "step" and bool(self.run and self.run.step
                                                       and self.run.step.acts))
        self.next_button.setEnabled(s in ("step", "done"))
        if self.run is not None and not self.run.finished:
            self.progress.setText(f"Step {self.run.index + 1} of {len(self.run.lesson.steps)}")
        elif s == "finished":
            self.progress.setText(self.verdict)
        else:
            self.progress.setText("")

    def _preview(self, *_) -> None:
        if self.state not in ("idle", "finished"):
            return
        les = self.lesson
        if les is not None:
            self.text.setHtml(CSS + f"<h2>{html.escape(les.title)}</h2>"
                              + markdown_to_html(les.intro)
                              + "<p><i>" + str(len(les.steps)) + " steps on "
                              + html.escape(les.model.name) + ". Press Start.</i></p>")
        self._update()

    def _graph(self) -> Graph | None:
        doc = self.window.document
        return doc.graph if doc is not None else None

    def _snapshot(self) -> Graph | None:
        """A copy of the current graph: undo edits the document's GraphDef in place, and a
        step's start (or a background job) must not change with it."""
        doc = self.window.document
        if doc is None:
            return None
        return Graph(doc.snapshot(), doc.inputs, doc.outputs, source=doc.path)

    # ------------------------------------------------------------------ starting
    def start(self) -> None:
        """Open the lesson's model in the main window; step 1 starts once it is shown."""
        les = self.lesson
        if les is None:
            return
        if not les.model.exists():
            self.text.setPlainText(f"The lesson's model {les.model} is missing "
                                   "(run resources/make_examples.py).")
            return
        self._detach()
        self.state = "opening"
        self.run = None
        self._update()
        self.window.document_opened.connect(self._opened)
        self.window.load_failed.connect(self._open_failed)
        # a model with variables: the lesson's freeze step freezes it, nothing to ask
        if self.window.open_model(str(les.model), offer_freeze=False) is None:
            self._open_failed("opening was cancelled")

    def _disconnect_open(self) -> None:
        _disconnect(self.window.document_opened, self._opened)
        _disconnect(self.window.load_failed, self._open_failed)

    def _open_failed(self, message: str) -> None:
        self._disconnect_open()
        self.state = "idle"
        self.text.setPlainText(f"Could not open the lesson's model: {message}")
        self._update()

    def _opened(self, doc) -> None:
        self._disconnect_open()
        if not self._alive():
            return
        self._attach(doc)
        self.window.document_opened.connect(self._other_model_opened)
        self.run = LessonRun(self.lesson, self._snapshot())
        self._show_step()

    def _attach(self, doc) -> None:
        les = self.run.lesson if self.run is not None else self.lesson
        if les.inputs or les.outputs:
            doc.set_io(les.inputs or doc.inputs, les.outputs or doc.outputs)
        self._doc = doc
        doc.changed.connect(self._document_changed)

    def _detach(self) -> None:
        _disconnect(self.window.document_opened, self._other_model_opened)
        _disconnect(self.window.load_failed, self._freeze_failed)
        if self._doc is not None:
            _disconnect(self._doc.changed, self._document_changed)
            self._doc = None

    def _other_model_opened(self, doc) -> None:
        """A model was opened while the lesson runs: the lesson's model frozen (a freeze step,
        done by the app or by hand with File ▸ Open with Checkpoint…), or something else (the
        lesson stops)."""
        if not self._alive() or self.run is None or doc is self._doc:
            return
        _disconnect(self.window.load_failed, self._freeze_failed)
        step = self.run.step
        frozen = (step is not None and step.freeze and doc.path is not None
                  and Path(doc.path).resolve() == self.run.lesson.model
                  and not variable_nodes(doc.graph.graph_def))
        if self._doc is not None:
            _disconnect(self._doc.changed, self._document_changed)
        self._doc = None
        if not frozen:
            self._detach()
            self.run = None
            self.state = "idle"
            self.text.append("<p><i>Another model was opened: the lesson stopped. Press "
                             "Start to begin it again.</i></p>")
            self._update()
            return
        self._attach(doc)
        self.state = "step"
        self._step_done()

    def _freeze(self) -> None:
        """A freeze step's "Do it for me": open the lesson's model frozen from its
        checkpoint (what File ▸ Open with Checkpoint… does)."""
        les = self.run.lesson
        self.state = "busy"
        self._update()
        self.window.load_failed.connect(self._freeze_failed)
        if self.window.open_model(str(les.model), checkpoint=str(les.checkpoint),
                                  outputs=list(les.outputs or []), offer_freeze=False) is None:
            self._freeze_failed("opening was cancelled")

    def _freeze_failed(self, message: str) -> None:
        _disconnect(self.window.load_failed, self._freeze_failed)
        if not self._alive() or self.state != "busy":
            return
        self.state = "step"
        self.text.append(f"<p style='color:#c92a2a'>Could not freeze: "
                         f"{html.escape(message)}</p>")
        self._update()

    # ------------------------------------------------------------------ steps
    def _show_step(self) -> None:
        run = self.run
        step = run.step
        self.state = "step"
        intro = (CSS + f"<h2>{html.escape(run.lesson.title)}</h2>"
                 + (markdown_to_html(run.lesson.intro) if run.index == 0 else ""))
        self.text.setHtml(intro + f"<h3>Step {run.index + 1}: {html.escape(step.title)}</h3>"
                          + markdown_to_html(step.text))
        self._focus(step.focus)
        self._update()
        if step.acts and run.is_done(self._graph()):
            self._step_done()  # already done (e.g. the learner was ahead)

    def _focus(self, names) -> None:
        view = self.window.view
        graph = self._graph()
        present = [n for n in names if graph is not None and n in graph.nodes]
        try:
            view.set_highlight(set(present) or None, "match")
            if present:
                view.focus_node(present[0])
        except Exception:  # noqa: BLE001 - focusing is a help, never a failure
            pass

    def do_step(self) -> None:
        """Apply the step's actions as one undoable macro (what Next does when not done)."""
        run, doc = self.run, self.window.document
        if run is None or doc is None or self.state != "step":
            return
        if run.step.freeze:
            self._freeze()
            return
        stack = self.window.undo_stack
        self._applying = True
        stack.beginMacro(f"Lesson step {run.index + 1}: {run.step.title}")
        try:
            for a in run.step.actions:
                from ..core.running.lessons import action_done
                if action_done(doc.graph, a):
                    continue
                if a.is_pass:
                    cmd = ApplyPassCommand.compute(doc, a.pass_id, a.params, a.select)
                else:
                    cmd = EditCommand.compute(doc, a.edit, dict(a.args))
                if cmd is not None:
                    # the exported tutorial explains this step with the lesson's own text
                    cmd.lesson_text = f"**{run.step.title}.** {run.step.text}"
                push_step(stack, cmd)
        except GraphError as e:
            self.text.append(f"<p style='color:#c92a2a'>Could not do this step: "
                             f"{html.escape(e.problem)}</p>")
        finally:
            stack.endMacro()
            self._applying = False
        if run.is_done(doc.graph):
            self._step_done()

    def _document_changed(self, change) -> None:
        if not self._alive() or self.run is None or self.run.finished or \
                getattr(self, "_applying", False):
            return
        if self.state == "step" and self.run.step.acts and self.run.is_done(self._graph()):
            self._step_done()
        elif self.state == "done" and change.kind == "undo" and \
                not self.run.is_done(self._graph()):
            self.state = "step"  # undone: the step is to do again
            self.text.append("<p><i>Undone: do the step again, or press Next.</i></p>")
            self._update()

    def _step_done(self) -> None:
        """Compute the diff and the worked numbers off the GUI thread, then show them."""
        run = self.run
        if self.state != "step":
            return
        self.state = "busy"
        self._update()
        graph = self._snapshot()
        index = run.index

        def job():
            return run.outcome(graph)

        def shown(outcome):
            if not self._alive() or self.run is not run or run.index != index:
                return
            self._outcome, self._outcome_graph = outcome, graph
            parts = [f"<h3>Done: {html.escape(run.step.title)}</h3>",
                     f"<p><b>{html.escape(outcome.summary())}</b></p>"]
            lines = outcome.diff_lines(20)
            if lines:
                parts.append("<p><b>Diff</b></p><ul>" + "".join(
                    f"<li><code>{html.escape(x)}</code></li>" for x in lines) + "</ul>")
            if outcome.worked is not None:
                parts.append("<p><b>Worked numbers</b></p>"
                             + qt_html(outcome.worked.to_html(changes=False)))
                self._color_branches(outcome.worked)
            elif outcome.worked_error:
                parts.append(f"<p><i>{html.escape(outcome.worked_error)}</i></p>")
            self.text.append("".join(parts))
            self.state = "done"
            self._update()
            self.step_shown.emit(run.index)

        self._start(job, shown)

    def _color_branches(self, wn) -> None:
        if not (wn.live or wn.dead):
            return
        try:
            self.window.view.set_highlight(set(wn.live), "preview")
        except Exception:  # noqa: BLE001
            pass

    def next(self) -> None:
        """Next: do the step when it is not done yet, else go to the next step."""
        if self.state == "step":
            if self.run.step.acts:
                self.do_step()
            else:  # an explanation-only step
                self._advance(None)
            return
        if self.state == "done":
            self._advance(getattr(self, "_outcome", None))

    def _advance(self, outcome) -> None:
        run = self.run
        run.advance(self._snapshot(), outcome)
        if run.finished:
            self._compare()
        else:
            self._show_step()

    # ------------------------------------------------------------------ the end
    def _compare(self) -> None:
        run = self.run
        self.state = "comparing"
        self._update()
        self.text.append("<p><i>Comparing the original with the result…</i></p>")
        original, final = run.original, self._snapshot()

        def job():
            return compare_result(run.lesson, original, final)

        def shown(result):
            cmp, verdict, cv_line = result
            from ..core.running.report import report_tables
            rows = report_tables(cmp)["outputs"]
            table = ("<table border='1' cellspacing='0' cellpadding='3'><tr>"
                     + "".join(f"<th>{html.escape(h)}</th>" for h in rows[0])
                     + "</tr>" + "".join("<tr>" + "".join(
                         f"<td>{html.escape(c.replace('**', ''))}</td>" for c in r) + "</tr>"
                         for r in rows[1:]) + "</table>")
            colour = "#2b8a3e" if verdict.endswith("PASS") else "#c92a2a"
            self.text.append(f"<h3>The lesson's check</h3>{table}"
                             f"<p style='color:{colour};font-size:large'><b>"
                             f"{html.escape(verdict)}</b></p>"
                             + (f"<p>{html.escape(cv_line)}</p>" if cv_line else ""))
            self.verdict = verdict
            self.state = "finished"
            self._detach()
            self._update()
            self.finished.emit(verdict + (f"; {cv_line}" if cv_line else ""))

        self._start(job, shown)

    def _start(self, job, done) -> None:
        w = Worker(job)
        self._worker = w

        def failed(msg, exc):
            if not self._alive():
                return
            self.text.append(f"<p style='color:#c92a2a'>{html.escape(msg.splitlines()[0])}</p>")
            self.state = "step" if self.state == "busy" else "finished"
            self._update()

        w.signals.finished.connect(lambda r: self._alive() and done(r))
        w.signals.failed.connect(failed)
        w.start()

    def closeEvent(self, event):
        self._detach()
        self._disconnect_open()
        super().closeEvent(event)


def show_lessons(window) -> LessonsWindow:
    """Help ▸ Lessons: one lessons window per main window, raised when open."""
    w = getattr(window, "lessons_window", None)
    if w is None or not shiboken6.isValid(w):
        w = LessonsWindow(window)
        window.lessons_window = w
    if not w.isVisible():  # beside the graph: over the right-hand panels of the window
        g = window.frameGeometry()
        w.resize(min(520, max(360, g.width() // 3)), max(480, g.height() - 80))
        w.move(g.right() - w.width() - 10, g.top() + 60)
    w.show()
    w.raise_()
    w.activateWindow()
    return w
