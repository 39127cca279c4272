"""Before/after comparison: do two graphs compute the same numbers, and how fast?

:func:`compare_graphs` runs two GraphDefs on the same feeds, each in its own session
(:class:`~surgeon_gui.core.running.runner.GraphRunner`), and reports per output the shape, the maximum
absolute and relative error, an allclose verdict with the stated tolerances, top-1/top-5
agreement for a classifier-like output and an error histogram; per graph the latency (median and
spread of N timed runs after warm-up), node count, op-type count, parameter count and serialized
size.

Definitions (stated once, shown in every report):

* ``abs_err = |b - a|`` elementwise, with ``a`` the reference (first graph);
* ``rel_err = |b - a| / max(|a|, atol)`` — the ``atol`` floor keeps outputs that are near zero
  (a ReLU's zeros) from reporting huge relative errors for tiny absolute ones;
* ``allclose`` is numpy's ``|b - a| <= atol + rtol * |a|`` for every element, NaNs equal when
  both sides are NaN, and the shapes must match;
* top-k agreement (for 2-D ``[batch, classes]`` float outputs with ``classes > 1``): the share of
  rows whose top-1 class (or set of top-5 classes) is the same in both graphs.

Timed runs alternate between the two sessions so that load on a shared machine hits both alike.
Usable from a worker thread: ``progress(fraction, text)`` reports, ``should_stop()`` cancels
(raises :class:`InterruptedError`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..model.graph import Graph, GraphDef, GraphError, node_of, tensor_name
from .runner import GraphRunner, RunError, make_feeds

#: Decade edges of the absolute-error histogram (an exact 0 has its own bin).
HIST_EDGES = [0.0] + [10.0 ** e for e in range(-9, 1)] + [math.inf]


@dataclass
class OutputComparison:
    """How one output of graph B matches the same output of graph A."""
    name: str
    name_b: str
    shape_a: list[int]
    shape_b: list[int]
    dtype: str
    max_abs_err: float
    max_rel_err: float
    mean_abs_err: float
    allclose: bool
    rtol: float
    atol: float
    top1_agreement: float | None = None
    top5_agreement: float | None = None
    #: Counts of ``abs_err`` per bin: bin 0 is exactly 0, bin k >= 1 is
    #: ``(HIST_EDGES[k], HIST_EDGES[k+1]]`` (bin 1 also takes non-zeros below 1e-9).
    histogram: np.ndarray | None = None
    note: str = ""

    @property
    def is_classifier(self) -> bool:
        return self.top1_agreement is not None

    def to_dict(self) -> dict:
        d = dict(name=self.name, name_b=self.name_b, shape_a=list(self.shape_a),
                 shape_b=list(self.shape_b), dtype=self.dtype,
                 max_abs_err=_num(self.max_abs_err), max_rel_err=_num(self.max_rel_err),
                 mean_abs_err=_num(self.mean_abs_err), allclose=bool(self.allclose),
                 rtol=self.rtol, atol=self.atol, top1_agreement=self.top1_agreement,
                 top5_agreement=self.top5_agreement, note=self.note)
        if self.histogram is not None:
            d["error_histogram"] = dict(
                edges=[_num(e) for e in HIST_EDGES],
                counts=[int(c) for c in self.histogram])
        return d


@dataclass
class GraphStats:
    """Size and speed of one of the two graphs."""
    label: str
    node_count: int
    op_count: int
    parameter_count: int
    serialized_bytes: int
    #: Every timed run, milliseconds.
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def latency_ms(self) -> float | None:
        return float(np.median(self.latencies_ms)) if self.latencies_ms else None

    def latency_percentile(self, q: float) -> float | None:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else None

    def to_dict(self) -> dict:
        return dict(label=self.label, node_count=self.node_count, op_count=self.op_count,
                    parameter_count=self.parameter_count,
                    serialized_bytes=self.serialized_bytes,
                    latency_ms=self.latency_ms,
                    latency_p10_ms=self.latency_percentile(10),
                    latency_p90_ms=self.latency_percentile(90),
                    runs=len(self.latencies_ms))


@dataclass
class Comparison:
    """The whole before/after comparison."""
    outputs: list[OutputComparison]
    a: GraphStats
    b: GraphStats
    feeds: dict[str, tuple[list[int], str]]
    rtol: float
    atol: float
    runs: int
    warmup: int
    #: Feeds given for A that B does not have (e.g. a training flag a pass made constant).
    dropped_feeds_b: list[str] = field(default_factory=list)
    #: The fetched output values (output name → array), for re-judging with other
    #: tolerances or saving; not part of :meth:`to_dict`.
    values_a: dict = field(default_factory=dict, repr=False)
    values_b: dict = field(default_factory=dict, repr=False)
    #: What the comparison decided on the user's behalf (e.g. a flag fed B's constant value).
    notes: list[str] = field(default_factory=list)
    #: A's own rounding noise per output: max rel err of A against A with its float weights
    #: moved by a few ulps (see :func:`perturb_weights`); empty when not measured.
    noise: dict = field(default_factory=dict)

    def noise_verdict(self, o: "OutputComparison") -> str | None:
        """How ``o``'s error compares with A's rounding noise (None when not measured)."""
        if o.name not in self.noise:
            return None
        return noise_verdict(o.max_rel_err, self.noise[o.name], self.rtol)

    @property
    def allclose(self) -> bool:
        return all(o.allclose for o in self.outputs)

    @property
    def speedup(self) -> float | None:
        if self.a.latency_ms and self.b.latency_ms:
            return self.a.latency_ms / self.b.latency_ms
        return None

    def to_dict(self) -> dict:
        return dict(
            allclose=self.allclose, rtol=self.rtol, atol=self.atol, runs=self.runs,
            warmup=self.warmup,
            definitions=dict(
                abs_err="|b - a|", rel_err="|b - a| / max(|a|, atol)",
                allclose="|b - a| <= atol + rtol * |a| for every element"),
            feeds={k: dict(shape=s, dtype=d) for k, (s, d) in self.feeds.items()},
            dropped_feeds_b=list(self.dropped_feeds_b), notes=list(self.notes),
            outputs={o.name: dict(o.to_dict(), **({} if o.name not in self.noise else dict(
                noise_rel=_num(self.noise[o.name]), noise_verdict=self.noise_verdict(o))))
                for o in self.outputs},
            noise_definition=NOISE_DEFINITION,
            graphs=dict(a=self.a.to_dict(), b=self.b.to_dict()),
            speedup=self.speedup)

    def summary_lines(self) -> list[str]:
        """A human-readable report (the CLI prints it)."""
        lines = [f"tolerances: rtol={self.rtol:g} atol={self.atol:g}; "
                 f"latency: median of {self.runs} runs after {self.warmup} warm-up"]
        for o in self.outputs:
            verdict = "allclose" if o.allclose else "NOT allclose"
            head = o.name if o.name == o.name_b else f"{o.name} vs {o.name_b}"
            line = (f"output {head} {o.shape_a}: max abs err {o.max_abs_err:.3g}, "
                    f"max rel err {o.max_rel_err:.3g} — {verdict}")
            if o.top1_agreement is not None:
                line += f"; top-1 agreement {o.top1_agreement:.1%}"
            if o.top5_agreement is not None:
                line += f", top-5 {o.top5_agreement:.1%}"
            if o.note:
                line += f" ({o.note})"
            if o.name in self.noise:
                line += f"; A's own rounding noise {self.noise[o.name]:.2g}: " \
                        f"{self.noise_verdict(o)}"
            lines.append(line)
        for s in (self.a, self.b):
            lat = (f"{s.latency_ms:.3f} ms (p10 {s.latency_percentile(10):.3f}, "
                   f"p90 {s.latency_percentile(90):.3f})" if s.latencies_ms else "not timed")
            lines.append(f"{s.label}: {s.node_count} nodes, {s.op_count} op types, "
                         f"{s.parameter_count:,} parameters, {s.serialized_bytes:,} bytes; "
                         f"latency {lat}")
        if self.speedup:
            lines.append(f"speed-up: {self.speedup:.2f}x")
        if self.dropped_feeds_b:
            lines.append("not fed to B (no such node there): " + ", ".join(self.dropped_feeds_b))
        lines.extend(f"note: {n}" for n in self.notes)
        return lines


NOISE_ULPS = 4
#: A's noise floor above which its outputs are chaotic in its weights.
NOISE_CHAOTIC = 0.1
#: An error within this many times A's noise floor is rounding.
NOISE_MARGIN = 10.0
NOISE_DEFINITION = (f"noise_rel: max rel err of A against A with every float weight tensor moved "
                    f"by up to {NOISE_ULPS} ulps (a rounding-sized change)")


def noise_verdict(max_rel_err: float, noise: float, rtol: float) -> str:
    """Is an error what rounding alone does to A, or more?"""
    if not math.isfinite(noise) or noise >= NOISE_CHAOTIC:
        return (f"noise floor {noise:.2g}: on these inputs this model cannot tell a fold from "
                "a bug")
    if max_rel_err <= max(NOISE_MARGIN * noise, rtol):
        return "consistent"
    return f"beyond rounding noise ({max_rel_err / max(noise, 1e-300):.3g}x A's own)"


def perturb_weights(gd: GraphDef, ulps: int = NOISE_ULPS, seed: int = 0) -> tuple[GraphDef, int]:
    """A copy of ``gd`` whose float weight tensors (Consts of 2+ elements) each move by a random
    whole number of ulps in ``[-ulps, ulps]``: what a reordered sum or a fold does to them.
    Scalars (epsilons, keep probabilities, thresholds) stay. Returns the copy and how many
    tensors moved."""
    from ..model.graph import const_value, make_const
    rng = np.random.default_rng(seed)
    out = GraphDef()
    out.CopyFrom(gd)
    moved = 0
    for i, n in enumerate(out.node):
        if n.op != "Const" or n.attr["dtype"].type not in (1, 2, 19):  # float, double, half
            continue
        dims = n.attr["value"].tensor.tensor_shape.dim
        if sum(1 for _ in dims) == 0 or int(np.prod([d.size for d in dims])) < 2:
            continue
        try:
            v = np.asarray(const_value(n))
        except Exception:  # noqa: BLE001 - a tensor we cannot decode stays as it is
            continue
        step = rng.integers(-ulps, ulps + 1, size=v.shape).astype(v.dtype)
        new = (v + step * np.spacing(v)).astype(v.dtype)
        node = make_const(n.name, new, device=n.device)
        for key in n.attr:
            if key not in ("value", "dtype"):
                node.attr[key].CopyFrom(n.attr[key])
        out.node[i].CopyFrom(node)
        moved += 1
    return out, moved


def _num(x: float):
    """JSON has no inf/nan: write them as strings."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def graph_stats(gd: GraphDef, label: str) -> GraphStats:
    g = Graph(gd)
    return GraphStats(label=label, node_count=len(gd.node), op_count=len(g.op_histogram()),
                      parameter_count=g.parameter_count(), serialized_bytes=gd.ByteSize())


def compare_outputs(name: str, a: np.ndarray, b: np.ndarray, rtol: float = 1e-4,
                    atol: float = 1e-5, name_b: str | None = None) -> OutputComparison:
    """Compare two fetched values (``a`` is the reference)."""
    a = np.asarray(a)
    b = np.asarray(b)
    shape_a, shape_b = list(a.shape), list(b.shape)
    dtype = str(a.dtype)
    kw = dict(name=name, name_b=name_b or name, shape_a=shape_a, shape_b=shape_b, dtype=dtype,
              rtol=rtol, atol=atol)
    if a.shape != b.shape:
        return OutputComparison(max_abs_err=math.inf, max_rel_err=math.inf,
                                mean_abs_err=math.inf, allclose=False,
                                note=f"shapes differ: {shape_a} vs {shape_b}", **kw)
    if a.dtype.kind in "OSUV" or b.dtype.kind in "OSUV":
        equal = bool(np.array_equal(a, b))
        return OutputComparison(max_abs_err=0.0 if equal else math.inf,
                                max_rel_err=0.0 if equal else math.inf,
                                mean_abs_err=0.0 if equal else math.inf, allclose=equal,
                                note="compared for equality (not numeric)", **kw)
    af = a.astype(np.float64)
    bf = b.astype(np.float64)
    both_nan = np.isnan(af) & np.isnan(bf)
    diff = np.abs(bf - af)
    diff[both_nan] = 0.0
    diff[np.isnan(diff)] = math.inf  # NaN on one side only
    rel = diff / np.maximum(np.abs(af), atol) if atol > 0 else \
        np.divide(diff, np.abs(af), out=np.where(diff > 0, math.inf, 0.0), where=af != 0)
    rel[both_nan] = 0.0
    size = diff.size
    max_abs = float(diff.max()) if size else 0.0
    max_rel = float(np.nanmax(rel)) if size else 0.0
    mean_abs = float(diff.mean()) if size else 0.0
    close = bool(np.allclose(bf, af, rtol=rtol, atol=atol, equal_nan=True))
    hist = _histogram(diff)
    top1 = top5 = None
    if a.ndim == 2 and a.shape[1] > 1 and a.dtype.kind == "f" and a.shape[0] > 0:
        top1 = float(np.mean(np.argmax(af, axis=1) == np.argmax(bf, axis=1)))
        if a.shape[1] > 5:
            ka = np.sort(np.argsort(-af, axis=1, kind="stable")[:, :5], axis=1)
            kb = np.sort(np.argsort(-bf, axis=1, kind="stable")[:, :5], axis=1)
            top5 = float(np.mean(np.all(ka == kb, axis=1)))
    return OutputComparison(max_abs_err=max_abs, max_rel_err=max_rel, mean_abs_err=mean_abs,
                            allclose=close, top1_agreement=top1, top5_agreement=top5,
                            histogram=hist, **kw)


def _histogram(diff: np.ndarray) -> np.ndarray:
    flat = diff.ravel()
    counts = np.zeros(len(HIST_EDGES) - 1, dtype=np.int64)
    if not flat.size:
        return counts
    counts[0] = int(np.count_nonzero(flat == 0))
    nz = flat[flat > 0]
    # Bin k >= 1 holds (edges[k], edges[k+1]]; bin 1 also takes the non-zeros below 1e-9.
    idx = np.searchsorted(np.asarray(HIST_EDGES[1:-1]), nz, side="left")
    idx = np.clip(idx, 1, len(counts) - 1)
    np.add.at(counts, idx, 1)
    return counts


def compare_graphs(gd_a: GraphDef, gd_b: GraphDef, feeds: dict[str, np.ndarray] | None,
                   outputs: list[str], runs: int = 10, warmup: int = 2, rtol: float = 1e-4,
                   atol: float = 1e-5, outputs_b: list[str] | None = None,
                   progress: Callable[[float, str], None] | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   shapes: dict[str, list[int]] | None = None, seed: int = 0,
                   labels: tuple[str, str] = ("graph A", "graph B"),
                   noise: bool = True) -> Comparison:
    """Run both graphs on the same feeds and compare outputs and latency.

    ``feeds`` maps input names to arrays; None generates seeded feeds for A's Placeholders
    (``shapes`` gives unknown dims). Feeds naming a node B does not have are not fed to B (a
    pass may have turned a training flag into a constant and removed it). ``outputs_b`` names
    B's outputs when they differ from A's (same order). ``runs=0`` skips timing. ``noise``
    also runs A with its weights moved by a few ulps to measure its own rounding noise.
    """
    report = progress or (lambda f, t: None)
    outputs = list(outputs)
    if not outputs:
        raise GraphError("no outputs to compare")
    outputs_b = list(outputs_b) if outputs_b else outputs
    if len(outputs_b) != len(outputs):
        raise GraphError(f"{len(outputs)} outputs for A but {len(outputs_b)} for B")
    runs = max(int(runs), 0)
    warmup = max(int(warmup), 0)

    def check_stop():
        if should_stop and should_stop():
            raise InterruptedError("cancelled")

    ga, gb = Graph(gd_a), Graph(gd_b)
    for label, g, outs in ((labels[0], ga, outputs), (labels[1], gb, outputs_b)):
        missing = [o for o in outs if node_of(o) not in g]
        if missing:
            raise GraphError(f"{label} has no output node(s) {', '.join(missing)}")
    if feeds is None:
        feeds = make_feeds(ga, shapes=shapes, seed=seed)
    feeds = {node_of(k) if k.endswith(":0") else k: np.asarray(v) for k, v in feeds.items()}
    feeds, notes = align_flag_feeds(ga, gb, feeds)
    feeds_b = {k: v for k, v in feeds.items() if node_of(k) in gb}
    dropped = [k for k in feeds if k not in feeds_b]

    report(0.0, "importing graph A")
    check_stop()
    total = 2 * (1 + warmup + runs) + 2
    done = 0
    with _open(gd_a, labels[0]) as ra:
        report(0.02, "importing graph B")
        check_stop()
        with _open(gd_b, labels[1]) as rb:
            fa = [tensor_name(o) for o in outputs]
            fb = [tensor_name(o) for o in outputs_b]
            # The first run of each graph gives the values; it also warms up.
            report(0.05, "running A")
            vals_a = _run(ra, feeds, fa, labels[0])
            noise_floor = {}
            if noise:
                check_stop()
                report(0.06, "measuring A's rounding noise")
                noise_floor = _noise_floor(gd_a, feeds, outputs, vals_a, atol, labels[0])
            done += 1
            check_stop()
            report(done / total, "running B")
            vals_b = _run(rb, feeds_b, fb, labels[1])
            done += 1
            for i in range(warmup):
                check_stop()
                report(done / total, f"warm-up {i + 1}/{warmup}")
                ra.run(feeds, fa)
                rb.run(feeds_b, fb)
                done += 2
            stats_a = graph_stats(gd_a, labels[0])
            stats_b = graph_stats(gd_b, labels[1])
            for i in range(runs):
                check_stop()
                report(done / total, f"timing run {i + 1}/{runs}")
                # Alternate the order so neither graph always runs right after the other.
                order = ((ra, feeds, fa, stats_a), (rb, feeds_b, fb, stats_b))
                for r, f, fetch, st in (order if i % 2 == 0 else order[::-1]):
                    t0 = time.perf_counter()
                    r.run(f, fetch)
                    st.latencies_ms.append((time.perf_counter() - t0) * 1e3)
                done += 2
    report(0.98, "comparing outputs")
    results = [compare_outputs(o, va, vb, rtol, atol, name_b=ob)
               for o, ob, va, vb in zip(outputs, outputs_b, vals_a, vals_b)]
    report(1.0, "done")
    return Comparison(outputs=results, a=stats_a, b=stats_b,
                      feeds={k: (list(v.shape), str(v.dtype)) for k, v in feeds.items()},
                      rtol=rtol, atol=atol, runs=runs, warmup=warmup, dropped_feeds_b=dropped,
                      values_a=dict(zip(outputs, vals_a)), values_b=dict(zip(outputs_b, vals_b)),
                      notes=notes, noise=noise_floor)


def _noise_floor(gd_a: GraphDef, feeds, outputs, vals_a, atol: float, label: str) -> dict:
    perturbed, moved = perturb_weights(gd_a)
    if not moved:
        return {}
    with _open(perturbed, label + " (weights moved by a few ulps)") as rn:
        vals_n = _run(rn, feeds, [tensor_name(o) for o in outputs], label)
    out = {}
    for o, va, vn in zip(outputs, vals_a, vals_n):
        c = compare_outputs(o, va, vn, atol=atol)
        if c.note.startswith("compared for equality"):
            continue  # strings: no rounding
        out[o] = c.max_rel_err
    return out


def align_flag_feeds(ga: Graph, gb: Graph, feeds: dict[str, np.ndarray]
                     ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Feed A's placeholders that B has made constants (a training flag) B's value.

    After ``training_flags`` B computes with the flag fixed; comparing it to A run with any other
    value compares two different models. So A gets B's constant (broadcast to the feed's shape)
    and a note says so when that changed the feed.
    """
    from ..model.values import const_array
    out = dict(feeds)
    notes = []
    for k, v in feeds.items():
        name = node_of(k)
        if ":" in k and not k.endswith(":0"):
            continue
        na, nb = ga.nodes.get(name), gb.nodes.get(name)
        if na is None or nb is None or nb.op != "Const" or na.op == "Const":
            continue
        try:
            value = np.asarray(const_array(nb))
            fed = np.broadcast_to(value, np.shape(v)).astype(np.asarray(v).dtype)
        except (GraphError, ValueError, TypeError):
            continue
        if not np.array_equal(fed, v):
            notes.append(f"{name} fed {value.tolist()!r} to A too: B holds it as a constant")
        out[k] = fed
    return out, notes


def _open(gd: GraphDef, label: str) -> GraphRunner:
    try:
        return GraphRunner(gd)
    except RunError as e:
        raise RunError(f"{label}: {e.problem}", e.source, e.nodes) from None


def _run(runner: GraphRunner, feeds, fetches, label: str) -> list[np.ndarray]:
    try:
        return runner.run(feeds, fetches)
    except RunError as e:
        raise RunError(f"{label}: {e.problem}", e.source, e.nodes) from None
