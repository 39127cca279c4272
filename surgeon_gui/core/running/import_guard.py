"""Does TensorFlow import this graph, and if a pipeline broke that, which pass did it?

``surgeon optimize`` checks the input before any pass (a graph TensorFlow refuses is not one to
optimize silently) and the result after the last: a result that no longer imports when its input
did is a bug, so nothing is written and the pass is named. Finding it replays the steps one pass
at a time, only on that failure path, so the usual run costs two imports.
"""
from __future__ import annotations

from ..history.recipe import Recipe, preset_params
from ..model.graph import Graph, GraphDef
from ..passes import PRESET_ID, PRESET_PASSES
from ..passes.pipeline import MAX_ROUNDS, inputs_after, run_pass
from .runner import _short


def import_problem(gd: GraphDef) -> str | None:
    """None when ``tf.compat.v1.import_graph_def`` takes ``gd`` into a fresh graph, else what
    TensorFlow objects to (one line)."""
    import tensorflow as tf
    try:
        with tf.Graph().as_default():
            tf.compat.v1.import_graph_def(gd, name="")
    except Exception as e:  # noqa: BLE001 - TF raises ValueError, InvalidArgumentError, ...
        return _short(e)
    return None


def first_breaking_pass(graph: Graph, recipe: Recipe) -> tuple[str, str] | None:
    """Replay ``recipe`` pass by pass (the preset's passes one at a time, round after round);
    return ``(label, problem)`` of the first pass whose result does not import, or None."""
    from ..history.recipe import apply_step
    for i, step in enumerate(recipe.steps, 1):
        if step.is_pass and step.pass_id == PRESET_ID:
            params = preset_params(step.params, f"step {i}")
            for _ in range(MAX_ROUNDS):
                changed = False
                for pid in PRESET_PASSES:
                    res = run_pass(graph, pid, params.get(pid), check=False)
                    if not res.report.modified:
                        continue
                    problem = import_problem(res.graph_def)
                    if problem:
                        return f"{pid} (in the {PRESET_ID} preset)", problem
                    graph = Graph(res.graph_def, inputs_after(graph, res.graph_def),
                                  graph.given_outputs, source=graph.source)
                    changed = True
                if not changed:
                    break
            continue
        graph, _ = apply_step(graph, step, f"step {i}")
        problem = import_problem(graph.graph_def)
        if problem:
            return step.label, problem
    return None
