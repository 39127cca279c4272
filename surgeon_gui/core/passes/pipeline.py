"""Run a list of passes over a graph, as the CLI, recipes and the GUI's preset do.

Like torch.fx's pass manager: run in order, check the graph after each pass, and for the
``inference`` preset repeat until no pass changes anything.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from ..model.graph import INPUT_OPS, Graph, GraphError, node_of
from . import PRESET_ID, PRESET_PASSES, get_pass
from .base import PassResult

MAX_ROUNDS = 6


@dataclass
class Step:
    """One pass run that changed the graph."""
    pass_id: str
    params: dict
    result: PassResult
    #: The checked graph after this step (what the next pass runs on).
    graph: Graph | None = None
    #: The preset's round (1 for a plain pass).
    round: int = 1


def run_pass(graph: Graph, pass_id: str, params: dict | None = None,
             select: set[str] | None = None, check: bool = True, in_place: bool = False,
             record: bool = False) -> PassResult:
    """Run one pass; the result keeps the graph's given inputs/outputs; checked when asked.
    ``in_place``/``record``: see :meth:`~.base.Pass.run`."""
    p = get_pass(pass_id)
    result = p.run(graph, select=select, in_place=in_place, record=record, **(params or {}))
    if check and result.report.modified:
        problems = Graph(result.graph_def).problems()
        if problems:
            raise GraphError(f"pass {pass_id!r} produced a broken graph: {problems[0].problem}",
                             nodes=problems[0].nodes)
    return result


def inputs_after(before: Graph, graph_def, before_ops: dict[str, str] | None = None
                 ) -> list[str] | None:
    """The given inputs of ``before`` that are still inputs once a pass made ``graph_def``.

    An input a pass turned from a placeholder into something else (a training flag made a
    Const) no longer needs feeding and must not keep later passes from removing it. An input
    naming an inner node (a cut point for strip_unused) stays. The CLI pipeline, recipe replay
    and the GUI's undoable steps all follow this one rule, so they give the same bytes.
    """
    inputs = before.given_inputs
    if not inputs:
        return inputs
    if before_ops is None:  # ``before`` is intact (the pass did not edit it in place)
        before_ops = input_ops(before)
    ops = {n.name: n.op for n in graph_def.node}
    return [i for i in inputs if not (before_ops.get(node_of(i)) in INPUT_OPS
                                      and ops.get(node_of(i)) not in INPUT_OPS)]


def input_ops(graph: Graph) -> dict[str, str]:
    """The ops of the graph's given inputs (what :func:`inputs_after` needs of the graph before
    a pass that edits it in place)."""
    return {node_of(i): graph.nodes[node_of(i)].op for i in graph.given_inputs or []
            if node_of(i) in graph.nodes}


def pipeline_steps(graph: Graph, pass_ids: Iterable[str],
                   params: dict[str, dict] | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   on_pass: Callable[[str, int, int, int], None] | None = None,
                   in_place: bool = False, owns_input: bool = False, record: bool = False
                   ) -> Iterator[Step]:
    """Run the passes in order and yield each run that changed something; ``inference`` runs
    the preset until nothing changes (at most :data:`MAX_ROUNDS` rounds).

    This generator is the one preset loop: the CLI, recipes, tests and the GUI's worker all
    consume it. Each step carries the checked, indexed graph after it (``step.graph``: the
    given inputs still fed, the same outputs), which the next pass runs on. ``on_pass(pass_id,
    i, n, round)`` is called before each pass runs (the i-th of n in this round), and
    ``should_stop()`` is asked there too (InterruptedError when it says so). The input graph
    is never changed.

    ``in_place``: the pipeline owns one working GraphDef and each pass edits it in place, so a
    step that changes k nodes costs O(k) (plus the new index), not a copy of the graph. Then
    every step's ``graph`` is that same GraphDef, which the next step changes: a step's graph
    is only good until the next step is taken (use it, or ``result.old_nodes`` with
    ``record=True``, before asking for the next). The working GraphDef is the first changing
    pass's result (the one copy of the input, none when nothing changes), or the input itself
    when ``owns_input`` (the caller gives its input graph up too).
    """
    params = params or {}
    owned = owns_input
    # Detected outputs are those of the graph as given: a pass that leaves a node nothing reads
    # (the gradient plumbing of an inlined cond) must not make it an output for the next passes
    # to keep. The steps' graphs keep their given outputs (None: detected) unchanged.
    pinned = graph.outputs if graph.given_outputs is None else None

    def run_list(g: Graph, ids: list[str], rnd: int):
        nonlocal owned
        for i, pid in enumerate(ids):
            if should_stop and should_stop():
                raise InterruptedError("cancelled")
            if on_pass:
                on_pass(pid, i, len(ids), rnd)
            g_run = g.with_io(g.given_inputs, pinned) if pinned and g.given_outputs is None \
                else g
            here = in_place and owned
            ops = input_ops(g) if here else None
            res = run_pass(g_run, pid, params.get(pid), check=False, in_place=here,
                           record=record)
            if not res.report.modified:
                continue
            owned = in_place  # from now on the working GraphDef is the pipeline's own
            # Checked here rather than in run_pass so the next passes reuse this index
            # (and its cached topological order) instead of building it again.
            new_g = Graph(res.graph_def, inputs_after(g, res.graph_def, ops), g.given_outputs,
                          source=g.source)
            problems = new_g.problems()
            gone = [o for o in (g.given_outputs or []) if node_of(o) not in new_g.nodes]
            # (an in-place step cannot be taken back here: the error stops the whole run)
            if gone:
                raise GraphError(f"pass {pid!r} removed the named output(s) "
                                 f"{', '.join(gone)}: a pass never may; nothing was kept",
                                 nodes=gone)
            if problems:
                raise GraphError(f"pass {pid!r} produced a broken graph: "
                                 f"{problems[0].problem}", nodes=problems[0].nodes)
            yield Step(pid, dict(params.get(pid) or {}), res, new_g, rnd)
            g = new_g

    for pid in (p.strip() for p in pass_ids):
        if pid == PRESET_ID:
            for rnd in range(1, MAX_ROUNDS + 1):
                changed = False
                for step in run_list(graph, PRESET_PASSES, rnd):
                    graph, changed = step.graph, True
                    yield step
                if not changed:
                    break
        else:
            for step in run_list(graph, [pid], 1):
                graph = step.graph
                yield step


def run_pipeline(graph: Graph, pass_ids: Iterable[str], params: dict[str, dict] | None = None,
                 on_step: Callable[[Step], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 keep_graphs: bool = True, owns_input: bool = False
                 ) -> tuple[Graph, list[Step]]:
    """Consume :func:`pipeline_steps`: the final graph (with the same given outputs) and every
    step that changed something. ``keep_graphs=False`` drops each step's GraphDef (its
    ``result.graph_def`` and ``graph`` are None) so a big model is not held once per step, and
    then the passes edit one working GraphDef in place: a copy of the input, or the input
    itself when ``owns_input`` (the caller gives it up)."""
    steps: list[Step] = []
    for step in pipeline_steps(graph, pass_ids, params, should_stop,
                               in_place=not keep_graphs, owns_input=owns_input):
        graph = step.graph
        if not keep_graphs:
            step = Step(step.pass_id, step.params, PassResult(None, step.result.report),
                        None, step.round)
        steps.append(step)
        if on_step:
            on_step(step)
    return graph, steps


def step_label(pass_id: str, report, select=None) -> str:
    """How a pass step is named in the History: its title and how many matches it applied."""
    applied = len(report.applied)
    label = get_pass(pass_id).title
    if select is not None:
        return label + f" ({applied} of {len(report.matches)} matches)"
    return label + f" ({applied} match{'es' if applied != 1 else ''})"
