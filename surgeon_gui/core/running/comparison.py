"""The comparison job the GUI runs in the background, Qt-free.

:class:`CompareRequest` holds everything a run needs (captured on the GUI thread: copies of both
graphs, the sample set, tolerances); :func:`run_comparison` makes the feeds, compares the outputs
(keeping their values, so verdicts can be re-judged with other tolerances without running again)
and measures the per-node drift when asked. :func:`drift_categories` sorts the drift's nodes into
what the view colours them by. All the numbers come from
:func:`surgeon_gui.core.running.compare.compare_graphs`, the function ``surgeon compare`` uses.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..model.graph import Graph, GraphDef, GraphError
from .compare import Comparison, compare_graphs, compare_outputs
from .drift import Drift, compute_drift
from .runner import RunError
from .samples import ASSUMED_IMAGE_SIZE, SampleSet, input_specs

DEFAULT_RTOL, DEFAULT_ATOL = 1e-4, 1e-5

#: Drift categories besides the levels 0..5 of :data:`~surgeon_gui.core.running.drift.LEVELS`.
RECONVERGES, NO_COUNTERPART, EDITED_CONST = "reconverges", "no_counterpart", "edited_const"


@dataclass
class CompareRequest:
    """Everything the background job needs, captured on the GUI thread."""
    reference: GraphDef
    current: GraphDef
    reference_label: str
    current_label: str
    inputs: list[str]
    outputs: list[str]
    samples: SampleSet
    runs: int = 10
    warmup: int = 2
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    drift: bool = False
    drift_max_tensors: int = 5000
    #: The reference's names for ``outputs`` when a step renamed them (same order).
    reference_outputs: list[str] | None = None
    #: Nodes steps renamed since the reference: current name → reference name (the drift
    #: compares each with its old self).
    renames: dict[str, str] = field(default_factory=dict)
    #: Deployment targets to run both graphs in too (``opencv``, ``tflite``).
    targets: list[str] = field(default_factory=list)


@dataclass
class CompareResult:
    request: CompareRequest
    comparison: Comparison
    feeds: dict[str, np.ndarray]
    values_a: dict[str, np.ndarray]
    values_b: dict[str, np.ndarray]
    drift: Drift | None = None
    origins: list[str] = field(default_factory=list)
    #: Drifting nodes whose error reaches an output (the others re-converge).
    persistent: list[str] = field(default_factory=list)
    #: target → (reference's result, current's result), each against its own TF values.
    targets: dict = field(default_factory=dict)


#: Ends a failure that may come from the unknown dimensions filled in by default (the app
#: then points at the inputs' Shape cells).
SHAPE_HINT = "give the real shape under Sample inputs"


def run_comparison(req: CompareRequest, progress=None, should_stop=None) -> CompareResult:
    """Make the feeds, compare (keeping the output values), and measure the drift if asked."""
    report = progress or (lambda f, t: None)
    stop = should_stop or (lambda: False)
    ref_graph = Graph(req.reference, req.inputs or None)
    feeds = req.samples.make_feeds(ref_graph, req.inputs or None)
    span = (0.0, 0.7) if req.drift else (0.0, 0.99)

    def sub(lo, hi):
        return lambda f, t: report(lo + (hi - lo) * f, t)
    try:
        cmp = compare_graphs(req.reference, req.current, feeds,
                             req.reference_outputs or req.outputs, runs=req.runs,
                             outputs_b=req.outputs if req.reference_outputs else None,
                             warmup=req.warmup, rtol=req.rtol, atol=req.atol,
                             progress=sub(*span), should_stop=stop,
                             labels=(req.reference_label, req.current_label))
    except RunError as e:
        guessed = req.samples.guessed_shapes(ref_graph, req.inputs or None)
        if not guessed:
            raise
        fed = ", ".join(f"{n} {'×'.join(map(str, s))}" for n, s in guessed.items())
        images = any(spec.assumed_image_dims for spec in input_specs(ref_graph, list(guessed)))
        how = (f"unknown image height/width taken as {ASSUMED_IMAGE_SIZE}, other unknown "
               "dimensions 1" if images else "unknown dimensions filled with 1")
        raise RunError(f"{e.problem} (fed {fed}: {how}; {SHAPE_HINT})",
                       e.source, e.nodes) from None
    values = [dict(cmp.values_a), dict(cmp.values_b)]
    drift = None
    origins: list[str] = []
    persistent: list[str] = []
    if req.drift:
        drift = compute_drift(req.reference, req.current, feeds,
                              max_tensors=req.drift_max_tensors,
                              progress=sub(0.7, 1.0), should_stop=stop,
                              renames=req.renames)
        gb = Graph(req.current)
        origins = drift.origins(gb, req.rtol, req.atol)
        persistent = drift.persistent(gb, req.rtol, req.atol)
    targets = {}
    for t in req.targets:
        from .targets import check_target
        report(0.99, f"running in {t}")
        per_graph = []
        for gd, outs, vals in ((req.reference, req.reference_outputs or req.outputs, values[0]),
                               (req.current, req.outputs, values[1])):
            names = {n.name for n in gd.node}
            per_graph.append(check_target(gd, t, {k: v for k, v in feeds.items() if k in names},
                                          outs, [vals[o] for o in outs]))
        targets[t] = tuple(per_graph)
    report(1.0, "done")
    return CompareResult(req, cmp, feeds, values[0], values[1], drift, origins, persistent,
                         targets)


def comparison_job(req: CompareRequest, progress: Callable[[float, str], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> CompareResult:
    """:func:`run_comparison` for a background worker: a TensorFlow error of any kind becomes
    a :class:`GraphError` with its first line; a cancel stays an :class:`InterruptedError`."""
    try:
        return run_comparison(req, progress=progress, should_stop=should_stop)
    except (GraphError, ValueError, KeyError, OSError, InterruptedError):
        raise
    except Exception as e:  # noqa: BLE001 - TF errors of any kind become a message
        msg = getattr(e, "message", None) or str(e) or type(e).__name__
        traceback.print_exc()
        raise GraphError(f"{type(e).__name__}: {msg.strip().splitlines()[0]}") from None


#: Graphs whose weights hold more than this many bytes are compared in a child process
#: (:mod:`.compare_child`): TensorFlow's import of a graph holds the GIL for the whole call,
#: about 0.1 s per 16 MB, and a worker thread doing that stalls the GUI thread as long.
CHILD_ABOVE_BYTES = 16 << 20


def weight_bytes(gd: GraphDef) -> int:
    """About how many bytes the graph's Const nodes hold (from their shapes; nothing read)."""
    from ..model.graph import shape_size
    total = 0
    for n in gd.node:
        if n.op == "Const":
            t = n.attr["value"].tensor
            total += shape_size(t.tensor_shape) * 4
    return total


def comparison_job_isolated(req: CompareRequest,
                            progress: Callable[[float, str], None] | None = None,
                            should_stop: Callable[[], bool] | None = None) -> CompareResult:
    """:func:`comparison_job` for the GUI: in a child process when the graphs are big enough
    for TensorFlow's GIL-holding calls to stall the GUI thread, else in this thread."""
    if max(weight_bytes(req.reference), weight_bytes(req.current)) > CHILD_ABOVE_BYTES:
        from .compare_child import run_in_child
        return run_in_child(req, progress, should_stop)
    return comparison_job(req, progress, should_stop)


def rejudge(res: CompareResult, rtol: float, atol: float) -> None:
    """Recompute errors, verdicts and drift origins with other tolerances, from the kept
    values (no run)."""
    new = []
    for o in res.comparison.outputs:
        if o.name in res.values_a and o.name_b in res.values_b:
            new.append(compare_outputs(o.name, res.values_a[o.name], res.values_b[o.name_b],
                                       rtol, atol, name_b=o.name_b))
        else:
            new.append(o)
    res.comparison.outputs = new
    res.comparison.rtol, res.comparison.atol = rtol, atol
    res.request.rtol, res.request.atol = rtol, atol
    if res.drift is not None:
        gb = Graph(res.request.current)
        res.origins = res.drift.origins(gb, rtol, atol)
        res.persistent = res.drift.persistent(gb, rtol, atol)


def report_dict(res: CompareResult) -> dict:
    """The comparison as the report writer takes it, with each feed's sample source."""
    d = res.comparison.to_dict()
    ref_graph = Graph(res.request.reference)
    specs = {s.name: s for s in input_specs(ref_graph, res.request.inputs or None)}
    for name, f in d["feeds"].items():
        if name in specs:
            f["source"] = res.request.samples.describe(specs[name])
    d["labels_note"] = (f"Reference: {res.request.reference_label}; compared: "
                        f"{res.request.current_label}. Sample set "
                        f"'{res.request.samples.name}'.")
    return d


def drift_dict(res: CompareResult) -> dict | None:
    if res.drift is None:
        return None
    d = res.drift.to_dict()
    d["origins"] = res.origins
    return d


def drift_categories(drift: Drift, rtol: float, atol: float,
                     persistent: list[str] | None = None) -> dict[str, int | str]:
    """Node → its drift level (0 exact … 5 wrong) or :data:`RECONVERGES`,
    :data:`NO_COUNTERPART`, :data:`EDITED_CONST`.

    A node within allclose is never above level 2 and a node beyond tolerance never below 3.
    With ``persistent`` given, nodes beyond tolerance whose error does not reach an output (a
    region a pass rewrote, which re-converges) are :data:`RECONVERGES`."""
    out: dict[str, int | str] = {}
    keep = set(persistent) if persistent is not None else None
    for n, d in drift.errors.items():
        within = d.max_abs <= atol + rtol * (d.max_abs / d.max_rel if d.max_rel else 0.0)
        level = d.level
        if within:
            level = min(level, 2)
        elif level < 3:
            level = 3
        if level >= 3 and keep is not None and n not in keep:
            out[n] = RECONVERGES
            continue
        out[n] = level
    for n in drift.no_counterpart:
        out[n] = NO_COUNTERPART
    for n in drift.edited_consts:
        out[n] = EDITED_CONST
    return out

