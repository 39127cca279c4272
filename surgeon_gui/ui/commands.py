"""Undo commands: every change to the graph is one QUndoCommand (Orange canvas style).

A command's ``redo``/``undo`` call :class:`~surgeon_gui.core.history.document.Document` methods and
nothing else; the view and the panels follow the document's ``changed`` signal.

The work (running a pass, checking an edit) happens *before* the command is pushed, so a pass
that fails or an edit that is refused never reaches the undo stack:

    cmd = ApplyPassCommand.compute(document, "fold_batch_norm")   # raises GraphError
    if cmd is not None:                                            # None: nothing to do
        undo_stack.push(cmd)                                       # first redo adopts the result

The first ``redo`` adopts the computed GraphDef (no copy) and keeps the step's
:class:`~surgeon_gui.core.history.delta.GraphDelta`; later undo/redo apply that delta in place. Each
command knows its recipe step, so the applied history exports as a recipe the CLI replays.
"""
from __future__ import annotations

from typing import Callable, Iterable

from PySide6.QtGui import QUndoCommand, QUndoStack

from ..core.history.delta import GraphDelta
from ..core.history.diff import GraphDiff
from ..core.history.document import Document
from ..core.history.edits import EditResult, apply_edit_io, describe
from ..core.model.graph import GraphError
from ..core.passes import PRESET_ID, PRESET_PASSES, get_pass
from ..core.passes.base import PassReport, PassResult
from ..core.passes.pipeline import MAX_ROUNDS, inputs_after, run_pass


class StaleStepError(GraphError):
    """A step computed on a state of the document that has since changed."""


class StepCommand(QUndoCommand):
    """One step on a document: adopts a computed graph on first redo, then replays its delta."""

    def __init__(self, document: Document, label: str):
        super().__init__(label)
        self.document = document
        self.delta: GraphDelta | None = None
        self.base_revision = document.revision
        self._diff: GraphDiff | None = None

    # -- to be provided by subclasses
    def _adopt(self) -> GraphDelta:
        raise NotImplementedError

    def recipe_step(self) -> dict:
        raise NotImplementedError

    # -- QUndoCommand
    def redo(self) -> None:
        if self.delta is None:
            self.delta = self._adopt()
        else:
            self.document.apply_delta(self.delta, self.text())

    def undo(self) -> None:
        self.document.revert_delta(self.delta, self.text())

    def diff(self) -> GraphDiff:
        """What this step changed (built on first request from the delta)."""
        if self._diff is None:
            self._diff = GraphDiff.from_delta(self.delta)
        return self._diff


class ApplyPassCommand(StepCommand):
    """Apply one pass (all matches, or the selected match keys)."""

    def __init__(self, document: Document, pass_id: str, params: dict | None,
                 select: Iterable[str] | None, result: PassResult):
        p = get_pass(pass_id)
        self.pass_id = pass_id
        self.params = dict(params or {})
        self.select = None if select is None else sorted(select)
        self.report: PassReport = result.report
        applied = len(result.report.applied)
        label = p.title
        if self.select is not None:
            label += f" ({applied} of {len(result.report.matches)} matches)"
        else:
            label += f" ({applied} match{'es' if applied != 1 else ''})"
        super().__init__(document, label)
        self._result: PassResult | None = result

    @classmethod
    def compute(cls, document: Document, pass_id: str, params: dict | None = None,
                select: Iterable[str] | None = None, graph=None) -> "ApplyPassCommand | None":
        """Run the pass on the document's graph; None when it changes nothing."""
        if pass_id == PRESET_ID:
            raise ValueError("apply the preset with apply_passes(), one step per pass")
        result = run_pass(graph if graph is not None else document.graph, pass_id, params,
                          select=None if select is None else set(select))
        if not result.report.modified:
            return None
        return cls(document, pass_id, params, select, result)

    def _adopt(self) -> GraphDelta:
        if self.document.revision != self.base_revision:
            raise StaleStepError("the graph changed while the pass ran; run it again")
        gd = self._result.graph_def
        self._result = None  # the document owns the graph now
        return self.document.apply_graph_def(gd, self.text(),
                                             inputs=inputs_after(self.document.graph, gd))

    def recipe_step(self) -> dict:
        return {"pass": self.pass_id, "params": dict(self.params),
                "select": None if self.select is None else list(self.select)}


class EditCommand(StepCommand):
    """One manual edit (see :mod:`surgeon_gui.core.history.edits`)."""

    def __init__(self, document: Document, kind: str, args: dict, result: EditResult):
        super().__init__(document, describe(kind, args))
        self.kind = kind
        self.args = dict(args)
        self._result: EditResult | None = result

    @classmethod
    def compute(cls, document: Document, kind: str, args: dict) -> "EditCommand":
        """Check and compute the edit; raises EditRefused (a GraphError) with the reason."""
        return cls(document, kind, args, apply_edit_io(document.graph, kind, args))

    def _adopt(self) -> GraphDelta:
        if self.document.revision != self.base_revision:
            raise StaleStepError("the graph changed before the edit was applied")
        res = self._result
        self._result = None
        return self.document.apply_graph_def(res.graph_def, self.text(), inputs=res.inputs,
                                             outputs=res.outputs)

    def recipe_step(self) -> dict:
        return {"edit": self.kind, "args": dict(self.args)}


# ---------------------------------------------------------------------- helpers
def push_step(stack: QUndoStack, cmd: StepCommand | None) -> StepCommand | None:
    """Push a computed step unless it is None or stale (then StaleStepError)."""
    if cmd is None:
        return None
    if cmd.document.revision != cmd.base_revision:
        raise StaleStepError("the graph changed since this step was computed; compute it again")
    stack.push(cmd)
    return cmd


def expand_passes(pass_ids: Iterable[str]) -> list[str]:
    return [p.strip() for p in pass_ids if p.strip()]


def apply_passes(stack: QUndoStack, document: Document, pass_ids: Iterable[str],
                 params: dict[str, dict] | None = None,
                 on_step: Callable[[StepCommand], None] | None = None) -> list[StepCommand]:
    """Apply passes as separate undo steps; ``inference`` runs the preset until nothing changes
    (each pass that changed something is its own step, as the CLI's pipeline runs them)."""
    params = params or {}
    done: list[StepCommand] = []

    def one(pid: str) -> bool:
        cmd = push_step(stack, ApplyPassCommand.compute(document, pid, params.get(pid)))
        if cmd is not None:
            done.append(cmd)
            if on_step:
                on_step(cmd)
        return cmd is not None

    for pid in expand_passes(pass_ids):
        if pid == PRESET_ID:
            for _ in range(MAX_ROUNDS):
                changed = False
                for sub in PRESET_PASSES:
                    changed |= one(sub)
                if not changed:
                    break
        else:
            get_pass(pid)
            one(pid)
    return done


def applied_commands(stack: QUndoStack) -> list[StepCommand]:
    """The step commands currently applied (up to the stack's index), oldest first."""
    out = []
    for i in range(stack.index()):
        cmd = stack.command(i)
        if isinstance(cmd, StepCommand):
            out.append(cmd)
        else:  # a macro: its children
            for j in range(cmd.childCount()):
                child = cmd.child(j)
                if isinstance(child, StepCommand):
                    out.append(child)
    return out


def recipe_for(stack: QUndoStack, document: Document):
    """The applied history as a :class:`~surgeon_gui.core.history.recipe.Recipe`."""
    from ..core.history.recipe import Recipe, RecipeStep
    steps = [RecipeStep.from_dict(c.recipe_step()) for c in applied_commands(stack)]
    return Recipe(steps=steps, inputs=document.initial_inputs, outputs=document.initial_outputs,
                  source=document.source_path)
