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

from typing import Callable, Iterable, TypeVar

from ..model.graph import Graph, copy_graph_def
from ..passes import PRESET_ID
from ..passes.pipeline import inputs_after, pipeline_steps, run_pass, step_label
from .document import PreparedStep, prepare_recorded_step, prepare_step
from .edits import apply_edit_io, describe

T = TypeVar("T")


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
                     on_step: Callable[[PreparedStep], None] | None = None,
                     in_place: bool = True) -> list[PreparedStep]:
    """Run passes (``inference``: the preset until nothing changes) as one step per pass run
    that changed something, each with its delta against the step before (see
    :func:`~surgeon_gui.core.passes.pipeline.pipeline_steps` for ``on_pass`` and
    ``should_stop``). ``graph`` is never changed.

    ``in_place`` (the default), as the CLI runs the preset: the first pass that changes
    something makes the one copy of ``graph``, and every later pass edits that copy in place,
    so a pass that changes k nodes costs O(k) plus the new index; each step's delta is built
    from the pass's recorded old nodes (:func:`prepare_recorded_step`), not by comparing two
    whole graphs. Only the last step keeps its graph (``PreparedStep.graph``; the others'
    is None: :meth:`Document.adopt` takes the last one's). ``on_step`` gets each step as it
    is prepared, to adopt at once: the first with a copy of its graph (one more copy, so that
    neither the working graph nor the graph given in is ever the adopter's), the others
    without (adopting one applies its delta to the graph before, O(change)).
    ``in_place=False``: the copying path (each changing pass makes a whole new graph, and
    its delta is a whole-graph comparison; every step keeps its graph)."""
    if not in_place or graph._duplicates:
        return _prepare_pipeline_copying(graph, pass_ids, params, should_stop, on_pass,
                                         on_step)
    out: list[PreparedStep] = []
    base = graph
    for step in pipeline_steps(graph, pass_ids, params, should_stop, on_pass, in_place=True,
                               record=True):
        res = step.result
        p = prepare_recorded_step(base, step.graph, res.old_nodes or {},
                                  step_label(step.pass_id, res.report),
                                  pass_recipe_step(step.pass_id, step.params, None), res.report)
        # what the step held of the old graph is in the delta now (weights in the scratch
        # file): let it go; the graph before is the working graph, changed from now on
        res.graph_def = res.old_nodes = None
        if out:
            out[-1].graph = None
        if on_step:
            # adopted as it comes: the first step with a copy of its own (the working graph
            # goes on changing; the adopter's graph given in must not), the others without
            p.graph = None if out else Graph(copy_graph_def(step.graph.graph_def),
                                             step.graph.given_inputs,
                                             step.graph.given_outputs, source=graph.source)
            on_step(p)
        p.graph = step.graph
        out.append(p)
        base = step.graph
    return out


def _prepare_pipeline_copying(graph, pass_ids, params, should_stop, on_pass,
                              on_step) -> list[PreparedStep]:
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


def state_before_last(prepared: list[PreparedStep], fn: Callable[[Graph], T]) -> T:
    """``fn`` of the graph one step before the last of ``prepared`` (the state one Ctrl+Z
    away once they are adopted; at least two steps), without a copy: the last step's delta is
    reverted on the last graph in place, ``fn`` runs, and the delta is applied again, each in
    proportion to the change. ``prepared[-1].graph`` is then a new index of the same
    GraphDef (equal to the old); the graph ``fn`` saw is stale once it returns."""
    last = prepared[-1]
    d, g = last.step.delta, last.graph
    inputs, outputs = g.given_inputs, g.given_outputs
    old_in, old_out = d.old_io if d.old_io is not None else (inputs, outputs)
    back = d.revert_indexed(g, old_in, old_out)
    try:
        return fn(back)
    finally:
        last.graph = d.apply_indexed(back, inputs, outputs)


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
        if res.graph is not None and res.graph.graph_def is res.graph_def:
            # the checks' index of the result (its consumers, topological order, problems)
            g = res.graph.sharing_index(res.inputs, res.outputs, source=graph.source)
        else:
            g = Graph(res.graph_def, res.inputs, res.outputs, source=graph.source)
    recipe = [{"edit": kind, "args": dict(args)} for kind, args in done]
    if label is None:
        label = describe(*done[0]) if len(done) == 1 else f"{len(done)} edits"
    return prepare_step(graph, g, label, recipe[0] if len(recipe) == 1 else recipe)
