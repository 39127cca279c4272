"""Undo commands: each step of the Document's history is one QUndoCommand (Orange canvas style).

The Document owns the history (:attr:`Document.steps` and its cursor); the QUndoStack is how
the GUI moves through it (Edit ▸ Undo/Redo, the History panel). A command's ``undo``/``redo``
only call :meth:`Document.go_to`; the view and the panels follow the document's ``changed``
signal and read its step list.

The work (running a pass, checking an edit, computing the delta) happens *before* the command
is pushed, so a pass that fails or an edit that is refused never reaches the history:

    cmd = ApplyPassCommand.compute(document, "fold_batch_norm")   # raises GraphError
    push_step(undo_stack, cmd)          # the document adopts the step, the stack records it

Background jobs prepare steps with :mod:`surgeon_gui.core.history.steps` on a worker thread and
hand them to :func:`record_steps` on the GUI thread.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterable

from PySide6.QtCore import QTimer
from PySide6.QtGui import QUndoCommand, QUndoStack

from ..core.history.delta import GraphDelta
from ..core.history.diff import GraphDiff
from ..core.history.document import Document, PreparedStep, StaleStepError, Step
from ..core.history.recipe import Recipe, recipe_of
from ..core.history.steps import prepare_edits, prepare_pass, prepare_pipeline
from .workers import release_later

__all__ = ["hold", "held", "StepCommand", "ApplyPassCommand", "EditCommand", "StaleStepError", "push_step",
           "record_steps", "apply_passes", "applied_commands", "recipe_for", "recipe_of"]


class StepCommand(QUndoCommand):
    """One step of the document's history on the undo stack.

    Created with the step prepared but not yet taken; :func:`push_step` has the document adopt
    it and then pushes the command, whose first ``redo`` (QUndoStack.push calls it) finds the
    step already applied. From then on undo and redo move the document's cursor."""

    def __init__(self, document: Document, prepared: PreparedStep):
        super().__init__(prepared.step.label)
        self.document = document
        self.prepared: PreparedStep | None = prepared
        self.step: Step = prepared.step
        self.base_revision = document.revision
        #: The step's place in the document's history (set when it is adopted).
        self.position = -1
        #: Adopted before QUndoStack.push, whose first redo must then do nothing.
        self._pushed_applied = False
        self._diff: GraphDiff | None = None

    @property
    def delta(self) -> GraphDelta:
        return self.step.delta

    @property
    def report(self):
        return self.step.report

    def recipe_step(self):
        return self.step.recipe_step

    def adopt(self) -> None:
        doc = self.document
        doc.adopt([self.prepared], self.base_revision)
        self.prepared = None  # the document owns the graph now
        self.position = doc.cursor - 1
        self._pushed_applied = True

    # -- QUndoCommand
    def redo(self) -> None:
        if self._pushed_applied:   # QUndoStack.push: the document has the step already
            self._pushed_applied = False
        elif self.position < 0:
            self.adopt()
            self._pushed_applied = False
        else:
            _move_later(self.document, self.position + 1)

    def undo(self) -> None:
        _move_later(self.document, self.position)

    def diff(self) -> GraphDiff:
        """What this step changed (built on first request from the delta)."""
        if self._diff is None:
            self._diff = GraphDiff.from_delta(self.delta)
        return self._diff


class ApplyPassCommand(StepCommand):
    """Apply one pass (all matches, or the selected match keys)."""

    @property
    def pass_id(self) -> str:
        return self.step.recipe_step["pass"]

    @property
    def params(self) -> dict:
        return self.step.recipe_step["params"]

    @property
    def select(self) -> list[str] | None:
        return self.step.recipe_step["select"]

    @classmethod
    def compute(cls, document: Document, pass_id: str, params: dict | None = None,
                select: Iterable[str] | None = None, graph=None) -> "ApplyPassCommand | None":
        """Run the pass on the document's graph; None when it changes nothing."""
        p = prepare_pass(graph if graph is not None else document.graph, pass_id, params,
                         select)
        return None if p is None else cls(document, p)


class EditCommand(StepCommand):
    """One manual edit, or several as one step (see :mod:`surgeon_gui.core.history.edits`)."""

    @property
    def kind(self) -> str:
        """The edit's kind (of the first edit, for a step of several)."""
        return self.step.recipe_steps[0]["edit"]

    @property
    def args(self) -> dict:
        return self.step.recipe_steps[0]["args"]

    @classmethod
    def compute(cls, document: Document, kind: str, args: dict) -> "EditCommand":
        """Check and compute the edit; raises EditRefused (a GraphError) with the reason."""
        return cls(document, prepare_edits(document.graph, [(kind, args)]))

    @classmethod
    def compute_many(cls, document: Document, edits: list[tuple[str, dict]],
                     label: str | None = None) -> "EditCommand":
        return cls(document, prepare_edits(document.graph, edits, label))


# ---------------------------------------------------------------------- cursor moves
#: Where each document's cursor is to go once the undo stack has finished moving: a History
#: click from step 7 to "Opened model" undoes seven commands in a row, and the document then
#: moves once (one graph index, one redraw) instead of seven times.
_pending: dict[int, tuple[Document, int]] = {}


def _move_later(document: Document, n: int) -> None:
    _pending[id(document)] = (document, n)


_retry = []

#: A move over at least this many bytes of stored node versions (old weights, in the scratch
#: file or in memory) has its target state built on a worker thread
#: (:meth:`Document.prepare_move`): the GUI thread then only swaps it in. In place, a History
#: jump back over the preset on NASNetLarge parses ~300 MB of old weights into the live graph
#: on the GUI thread (0.2–0.4 s); smaller moves stay in place (a few ms).
READ_AHEAD_BYTES = 16 << 20

#: id(document) → [target n, the worker thread, spilled versions read (when the state could
#: not be built apart), the built state (a PreparedMove) or None]
_reading: dict[int, list] = {}


def _read_ahead(key: int, document: Document, n: int) -> bool:
    """Whether the move of ``document`` to ``n`` must wait for its target state to be built on a
    worker (started here when needed). The document is not touched meanwhile: the move stays
    pending, like a move waiting for a background reader."""
    r = _reading.get(key)
    if r is not None:
        if r[1].is_alive():
            return True
        if r[0] == n:
            return False      # built: _flush_moves moves with it
        del _reading[key]     # built for another target (the user moved again): build anew
    if document.move_bytes(n) < READ_AHEAD_BYTES:
        return False
    entry = [n, None, None, None]

    def work():
        try:
            entry[3] = document.prepare_move(n)
            if entry[3] is None:      # (duplicated names...): the move is made in place,
                entry[2] = document.read_move(document.move_reads(n))   # with these read
        except Exception:   # noqa: BLE001 — the move then happens in place (and reports)
            entry[2], entry[3] = {}, None
    entry[1] = threading.Thread(target=work, name="undo-build-ahead", daemon=True)
    _reading[key] = entry
    entry[1].start()
    return True


def _flush_moves(*_) -> None:
    later = {}
    while _pending:
        key, (document, n) = _pending.popitem()
        if held(document) or _read_ahead(key, document, n):
            later[key] = (document, n)
        else:
            r = _reading.pop(key, None)
            if r is not None and r[0] == n:
                old = document.graph
                document.go_to(n, r[2], r[3])
                release_later(old)   # (swapped out: freed off the GUI thread)
            else:
                document.go_to(n)
    if later:
        _pending.update(later)
        if not _retry:
            _retry.append(True)
            QTimer.singleShot(20, _retry_moves)


def moves_waiting() -> bool:
    """Whether an undo, redo or History jump is still waiting to move a document (a
    background reader held it, or its target state is being built)."""
    return bool(_pending)


def _settle(document) -> None:
    """Before a new step: a move that waited for a reader happens now; if it still has to
    wait, the step is refused (the stack has moved already and would no longer match)."""
    _flush_moves()
    if id(document) in _pending:
        raise StaleStepError("the graph is being read in the background (a comparison or a "
                             "pass): try again in a moment")


def _retry_moves() -> None:
    _retry.clear()
    _flush_moves()


# ---------------------------------------------------------------------- background readers
#: Documents a background job is reading (id → count). An undo, redo or History jump edits
#: the document's graph in place (:meth:`Document.go_to`); while a job reads that graph (a
#: pass on it, a copy of it for a comparison) the move waits, then happens by itself. A new
#: step does not wait: adopting one swaps the graph object, the one being read stays whole.
_readers: dict[int, int] = {}
_readers_lock = threading.Lock()


def held(document) -> bool:
    with _readers_lock:
        return _readers.get(id(document), 0) > 0


@contextmanager
def hold(document):
    """While the block runs (on any thread), the document's graph is not edited in place:
    undo/redo/History moves wait for the block to end."""
    key = id(document)
    with _readers_lock:
        _readers[key] = _readers.get(key, 0) + 1
    try:
        yield document
    finally:
        with _readers_lock:
            _readers[key] -= 1
            if not _readers[key]:
                del _readers[key]


def follow(stack: QUndoStack) -> None:
    """Move the documents when ``stack`` has moved (its indexChanged comes after the last
    command's undo/redo of an undo, redo or History jump, still inside that call)."""
    if not stack.property("surgeon_follows"):
        stack.setProperty("surgeon_follows", True)
        stack.indexChanged.connect(_flush_moves)


# ---------------------------------------------------------------------- helpers
def push_step(stack: QUndoStack, cmd: StepCommand | None) -> StepCommand | None:
    """Have the document adopt a computed step, and record it on the stack (None: nothing;
    StaleStepError when the document moved since the step was computed)."""
    if cmd is None:
        return None
    _settle(cmd.document)
    cmd.adopt()   # raises before anything is on the stack
    follow(stack)
    stack.push(cmd)
    return cmd


def record_steps(stack: QUndoStack, document: Document, prepared: list[PreparedStep],
                 base_revision: int | None = None, change=None) -> list[StepCommand]:
    """Adopt steps prepared in the background (one announcement for all of them) and record
    each as its own command (StaleStepError when the document moved meanwhile). ``change``:
    their ``adopted_change``, made in the background too (None: made here)."""
    if not prepared:
        return []
    _settle(document)
    old = document.graph
    document.adopt(prepared, base_revision, change)
    release_later(old)   # the graph before, when nothing keeps it: freed off the GUI thread
    follow(stack)
    first = document.cursor - len(prepared)
    cmds = []
    for i, p in enumerate(prepared):
        cls = ApplyPassCommand if isinstance(p.step.recipe_step, dict) and \
            "pass" in p.step.recipe_step else EditCommand
        cmd = cls(document, p)
        cmd.prepared, cmd.position, cmd._pushed_applied = None, first + i, True
        stack.push(cmd)
        cmds.append(cmd)
    return cmds


def apply_passes(stack: QUndoStack, document: Document, pass_ids: Iterable[str],
                 params: dict[str, dict] | None = None,
                 on_step: Callable[[StepCommand], None] | None = None) -> list[StepCommand]:
    """Apply passes as separate undo steps, synchronously; ``inference`` runs the preset until
    nothing changes (one step per pass run that changed something, from the same generator
    as the CLI)."""
    done: list[StepCommand] = []

    def one(p: PreparedStep) -> None:
        cmd = ApplyPassCommand(document, p)
        push_step(stack, cmd)
        done.append(cmd)
        if on_step:
            on_step(cmd)
    prepare_pipeline(document.graph, [p.strip() for p in pass_ids if p.strip()], params,
                     on_step=one)
    return done


def applied_commands(stack: QUndoStack) -> list[StepCommand]:
    """The step commands currently applied (up to the stack's index), oldest first (a macro
    gives its children)."""
    out = []
    for i in range(stack.index()):
        cmd = stack.command(i)
        if isinstance(cmd, StepCommand):
            out.append(cmd)
        else:
            out += [c for c in (cmd.child(j) for j in range(cmd.childCount()))
                    if isinstance(c, StepCommand)]
    return out


def recipe_for(stack: QUndoStack | None, document: Document) -> Recipe:
    """:func:`recipe_of` (``stack`` is ignored: the document owns the history)."""
    return recipe_of(document)
