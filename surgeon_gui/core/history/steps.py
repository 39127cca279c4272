"""Compute the steps the Document takes: a pass, the preset, a hand edit (Qt-free, any thread).

Each function runs the work on a graph and returns :class:`PreparedStep` s (the new indexed
graph, its delta against the graph before, the History label, the recipe step), which
:meth:`~surgeon_gui.core.history.document.Document.adopt` takes on the GUI thread at O(1) per
step. The GUI's background jobs and its synchronous helpers both call these, so a pass applied
from the Passes panel, from a script or from a test records the same step; the preset goes
through :func:`~surgeon_gui.core.passes.pipeline.pipeline_steps`, the generator the CLI and
recipes consume too.
"""
from __future__ import annotations

from typing import Callable, Iterable

from ..model.graph import Graph
from ..passes import PRESET_ID
from ..passes.pipeline import inputs_after, pipeline_steps, run_pass, step_label
from .document import PreparedStep, prepare_step
from .edits import apply_edit_io, describe


def pass_recipe_step(pass_id: str, params: dict | None, select) -> dict:
    return {"pass": pass_id, "params": dict(params or {}),
            "select": None if select is None else sorted(select)}


def prepare_pass(graph: Graph, pass_id: str, params: dict | None = None,
                 select: Iterable[str] | None = None) -> PreparedStep | None:
    """Run one pass (all matches, or the selected match keys); None when it changes nothing.
    GraphError when the pass would break the graph."""
    if pass_id == PRESET_ID:
        raise ValueError("run the preset with prepare_pipeline(), one step per pass")
    select = None if select is None else sorted(select)
    result = run_pass(graph, pass_id, params, select=None if select is None else set(select))
    if not result.report.modified:
        return None
    new = Graph(result.graph_def, inputs_after(graph, result.graph_def), graph.given_outputs,
                source=graph.source)
    return prepare_step(graph, new, step_label(pass_id, result.report, select),
                        pass_recipe_step(pass_id, params, select), result.report)


def prepare_pipeline(graph: Graph, pass_ids: Iterable[str],
                     params: dict[str, dict] | None = None,
                     should_stop: Callable[[], bool] | None = None,
                     on_pass: Callable[[str, int, int, int], None] | None = None,
                     on_step: Callable[[PreparedStep], None] | None = None
                     ) -> list[PreparedStep]:
    """Run passes (``inference``: the preset until nothing changes) as one step per pass run
    that changed something, each with its delta against the step before (see
    :func:`~surgeon_gui.core.passes.pipeline.pipeline_steps` for ``on_pass`` and
    ``should_stop``)."""
    out: list[PreparedStep] = []
    base = graph
    for step in pipeline_steps(graph, pass_ids, params, should_stop, on_pass):
        p = prepare_step(base, step.graph, step_label(step.pass_id, step.result.report),
                         pass_recipe_step(step.pass_id, step.params, None), step.result.report)
        step.result.graph_def = None  # the step's graph holds it; do not keep two references
        out.append(p)
        if on_step:
            on_step(p)
        base = step.graph
    return out


def prepare_edits(graph: Graph, edits: list[tuple[str, dict]],
                  label: str | None = None) -> PreparedStep:
    """One step made of hand edits applied in order (EditRefused, a GraphError, with the
    reason when one of them is refused; nothing is kept then). A ``remove_node`` of a node an
    earlier edit of the list already took away (a cascade) is left out."""
    g = graph
    done = []
    for kind, args in edits:
        if kind == "remove_node" and done and args.get("node") not in g.nodes:
            continue
        done.append((kind, args))
        res = apply_edit_io(g, kind, args)
        g = Graph(res.graph_def, res.inputs, res.outputs, source=graph.source)
    recipe = [{"edit": kind, "args": dict(args)} for kind, args in done]
    if label is None:
        label = describe(*done[0]) if len(done) == 1 else f"{len(done)} edits"
    return prepare_step(graph, g, label, recipe[0] if len(recipe) == 1 else recipe)
