"""Benchmark: our ``inference`` preset vs TensorFlow's own inference optimizers.

    python benchmarks/bench_passes.py [--runs 20] [--only mobilenet_v2] [--big] [--real]
                                      [--out benchmarks/results.md]

On the same models — a TF1 graph with v1 ``tf.cond`` batch norms and dropout, a TF2 graph with
functional ``If``, ``tf.keras.applications`` MobileNetV2 (96 px), ResNet50 (64 px) and
EfficientNetB0 (64 px, squeeze-excite blocks) with randomised batch-norm statistics, and a
conv → BiasAdd → batch-norm chain (with ``--big`` also NASNetLarge, 350 MB, and a 10,000-node
TF1 cond graph from ``make_big_models.py``; with ``--real`` the real trained models that PyPI
packages ship: musicnn's TF1 training graphs frozen from their checkpoints, RetinaFace) — run

* **ours**: ``run_pipeline(graph, ["inference"])``;
* **optimize_for_inference**: ``tensorflow.python.tools.optimize_for_inference_lib``;
* **grappler**: ``tensorflow.python.grappler.tf_optimizer.OptimizeGraph`` on a MetaGraph whose
  ``train_op`` collection holds the outputs, with the default rewriter config (constant folding,
  arithmetic, layout, remapping, dependency, loop, function and shape optimizers...);

and report per tool: time taken, node count after, max abs error vs the original on seeded
feeds, latency of the result (median of N runs after warm-up, each graph in its own session),
whether OpenCV's ``cv2.dnn.readNetFromTensorflow`` loads it, whether OpenCV's and TensorFlow
Lite's outputs then match TensorFlow's, and (ours) what training machinery the preset reports
left. A tool that raises is recorded as a failure with its message.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

OPENCV_ATOL = 1e-3


@dataclass
class Row:
    model: str
    tool: str
    ok: bool
    seconds: float | None = None
    nodes_before: int | None = None
    nodes_after: int | None = None
    max_abs_err: float | None = None
    allclose: bool | None = None
    latency_ms: float | None = None
    latency_spread: str = ""
    opencv: str = ""
    opencv_match: str = ""
    tflite: str = ""
    note: str = ""


# ---------------------------------------------------------------------- models
BIG_MODELS = {"nasnet_large": "nasnet_large", "tf1_cond_bn_big": "tf1_cond_bn_big"}


def _big(stem):
    """A model written by make_big_models.py (graph_def, inputs, outputs from its sidecar)."""
    import json
    from surgeon_gui.core.model.io import read_graph_def
    pb = HERE / "_models" / f"{stem}.pb"
    if not pb.exists():
        raise SystemExit(f"{pb} is missing: run python benchmarks/make_big_models.py first")
    meta = json.loads(pb.with_suffix(".json").read_text())
    return read_graph_def(str(pb)), meta["inputs"], meta["outputs"]


def models(only=None, big=False, real=False):
    from surgeon_gui.core.model import examples as ex
    table = {
        "tf1_layers_flag_v1": lambda: ex.tf1_layers_flag_net(v1_control_flow=True),
        "tf1_layers_flag_v2": lambda: ex.tf1_layers_flag_net(v1_control_flow=False),
        "tf1_cond_bn_dropout": lambda: ex.tf1_cond_bn_dropout(height=32),
        "tf2_if_bn_dropout": lambda: ex.tf2_if_bn_dropout(height=32),
        "mobilenet_v2_96": lambda: ex.keras_application("MobileNetV2", input_size=96),
        "resnet50_64": lambda: ex.keras_application("ResNet50", input_size=64),
        "efficientnet_b0_64": lambda: ex.keras_application("EfficientNetB0", input_size=64),
        "conv_bias_bn": lambda: ex.conv_bias_bn(),
    }
    if big:
        table.update({name: (lambda stem=stem: _big(stem)) for name, stem in BIG_MODELS.items()})
    if real:
        from surgeon_gui.core.model import real_models as rm
        table.update({name: (lambda name=name: rm.build(name)) for name in rm.REAL_MODELS})
    for name, build in table.items():
        if only and name not in only:
            continue
        yield name, build


# ---------------------------------------------------------------------- tools
def tool_ours(gd, ins, outs):
    from surgeon_gui.core.model.graph import Graph
    from surgeon_gui.core.passes.pipeline import run_pipeline
    result, _ = run_pipeline(Graph(gd, ins, outs), ["inference"])
    return result.graph_def, ""


def tool_optimize_for_inference(gd, ins, outs):
    from tensorflow.python.tools import optimize_for_inference_lib as ofi
    from surgeon_gui.core.model.graph import Graph
    g = Graph(gd)
    types = [g.node(i).attr["dtype"].type for i in ins]
    out = ofi.optimize_for_inference(gd, list(ins), list(outs), types, False)
    return out, ""


def tool_grappler(gd, ins, outs):
    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.grappler import tf_optimizer
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
        for o in outs:
            g.add_to_collection("train_op", g.get_operation_by_name(o))
        meta = tf.compat.v1.train.export_meta_graph(graph=g)
    config = config_pb2.ConfigProto()  # default rewriter config: every default optimizer on
    out = tf_optimizer.OptimizeGraph(config, meta, verbose=False, graph_id=b"bench")
    note = f"+{len(out.library.function)} functions" if out.library.function else ""
    return out, note


TOOLS = [("ours (inference preset)", tool_ours),
         ("optimize_for_inference_lib", tool_optimize_for_inference),
         ("grappler OptimizeGraph", tool_grappler)]


# ---------------------------------------------------------------------- measuring
def measure(model_name, gd, ins, outs, runs, warmup, repeat=3):
    """Run every tool (``repeat`` times in turn, median time), then check and time every result.

    Latency is measured with all graphs (original and every result) open at once, each in its
    own session, timing them round-robin so that load on a shared machine hits all alike.
    """
    from surgeon_gui.core.running.compare import compare_graphs
    from surgeon_gui.core.model.graph import Graph
    from surgeon_gui.core.running.opencv_check import opencv_check
    from surgeon_gui.core.running.runner import make_feeds, run_graph
    from surgeon_gui.core.model.real_models import FEED_SHAPES
    feeds = make_feeds(Graph(gd, ins, outs), seed=0, batch=1,
                       shapes=FEED_SHAPES.get(model_name))
    if model_name.startswith("retinaface"):
        feeds["x"] = (np.abs(feeds["x"]) * 60).astype(np.float32)  # pixel-like values
    reference = run_graph(gd, feeds, outs)
    cv = opencv_check(gd, {k: v for k, v in feeds.items() if v.dtype != bool}, outs, reference)
    rows = [Row(model_name, "original", True, None, len(gd.node), len(gd.node), 0.0, True,
                opencv=_cv_loads(cv), opencv_match=_cv_match(cv),
                tflite=_tflite(gd, feeds, outs, reference))]
    results = {"original": gd}
    # The tools take turns (ours, optimize_for_inference, Grappler, ours, ...), so a burst of
    # load on a shared machine hits them alike.
    times: dict[str, list[float]] = {name: [] for name, _ in TOOLS}
    made: dict[str, tuple] = {}
    failed: dict[str, tuple[float, Exception]] = {}
    for _ in range(repeat):
        for tool_name, tool in TOOLS:
            if tool_name in failed:
                continue
            t0 = time.perf_counter()
            try:
                made[tool_name] = tool(gd, ins, outs)
            except Exception as e:  # noqa: BLE001 - a failing tool is a result, not a crash
                failed[tool_name] = (time.perf_counter() - t0, e)
                continue
            times[tool_name].append(time.perf_counter() - t0)
    for tool_name, _ in TOOLS:
        if tool_name in failed:
            seconds, e = failed[tool_name]
            rows.append(Row(model_name, tool_name, False, seconds, len(gd.node),
                            note="FAILED: " + _first_line(e)))
            continue
        new, note = made.pop(tool_name)
        row = Row(model_name, tool_name, True, float(np.median(times[tool_name])), len(gd.node),
                  len(new.node), note=note)
        try:
            cmp = compare_graphs(gd, new, feeds, outs, runs=0, warmup=0)
            row.max_abs_err = max(o.max_abs_err for o in cmp.outputs)
            row.allclose = cmp.allclose
            results[tool_name] = new
        except Exception as e:  # noqa: BLE001
            row.note = (row.note + "; " if row.note else "") + "does not run: " + _first_line(e)
        fed = {k: v for k, v in feeds.items() if k in Graph(new)}
        cv = opencv_check(new, {k: v for k, v in fed.items() if v.dtype != bool}, outs,
                          reference)
        row.opencv, row.opencv_match = _cv_loads(cv), _cv_match(cv)
        row.tflite = _tflite(new, fed, outs, reference)
        if tool_name.startswith("ours"):
            from surgeon_gui.core.passes.leftovers import leftovers
            left = leftovers(Graph(new, [i for i in ins if i in Graph(new)], outs))
            if left:
                row.note = (row.note + "; " if row.note else "") + "left: " + ", ".join(
                    f"{len(x.nodes)} {x.what or x.kind}" for x in left)
        rows.append(row)
    lat = interleaved_latency(results, feeds, outs, runs, warmup)
    for r in rows:
        if r.tool in lat:
            r.latency_ms, r.latency_spread = lat[r.tool]
    return rows


def interleaved_latency(graphs, feeds, outs, runs, warmup):
    from surgeon_gui.core.model.graph import Graph
    from surgeon_gui.core.running.runner import GraphRunner
    runners = {k: GraphRunner(gd) for k, gd in graphs.items()}
    fds = {k: {n: v for n, v in feeds.items() if n in Graph(graphs[k])} for k in graphs}
    times = {k: [] for k in graphs}
    try:
        for _ in range(warmup):
            for k, r in runners.items():
                r.run(fds[k], outs)
        keys = list(runners)
        for i in range(runs):
            for k in (keys if i % 2 == 0 else keys[::-1]):
                t0 = time.perf_counter()
                runners[k].run(fds[k], outs)
                times[k].append((time.perf_counter() - t0) * 1e3)
    finally:
        for r in runners.values():
            r.close()
    return {k: (float(np.median(t)), f"{np.percentile(t, 10):.2f}–{np.percentile(t, 90):.2f}")
            for k, t in times.items() if t}


def _cv_loads(cv) -> str:
    if cv.loads:
        return "yes"
    return "no: " + cv.error[:90]


def _cv_match(cv) -> str:
    if not cv.loads:
        return "–"
    if cv.max_abs_err is None:
        return "not run: " + cv.error[:80]
    return ("yes" if cv.max_abs_err <= OPENCV_ATOL else "NO") + f" ({cv.max_abs_err:.1e})"


def _tflite(gd, feeds, outs, reference) -> str:
    """TensorFlow Lite converts it, and its outputs match TF's original (same tolerance)."""
    from surgeon_gui.core.running.targets import check_target
    r = check_target(gd, "tflite", feeds, outs, reference, runs=0)
    if not r.loads:
        return "no: " + r.error[:70]
    if not r.ran:
        return "converts, does not run: " + r.error[:60]
    err = max(v[0] for v in r.errors.values())
    return ("yes" if err <= OPENCV_ATOL else "NO") + f" ({err:.1e})"


def _first_line(e: Exception) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:160]


# ---------------------------------------------------------------------- output
HEADER = ("| tool | time (s) | nodes after | max abs err | allclose | latency ms (p10–p90) "
          "| OpenCV loads | OpenCV matches | TFLite matches | note |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


def table(rows) -> str:
    out = []
    for model in dict.fromkeys(r.model for r in rows):
        mr = [r for r in rows if r.model == model]
        out.append(f"\n### {model} ({mr[0].nodes_before} nodes)\n")
        out.append(HEADER)
        for r in mr:
            if not r.ok:
                out.append(f"| {r.tool} | {r.seconds:.3f} | – | – | – | – | – | – | – | {r.note} |")
                continue
            out.append("| " + " | ".join([
                r.tool,
                "–" if r.seconds is None else f"{r.seconds:.3f}",
                str(r.nodes_after),
                "–" if r.max_abs_err is None else f"{r.max_abs_err:.1e}",
                "–" if r.allclose is None else ("yes" if r.allclose else "NO"),
                "–" if r.latency_ms is None else f"{r.latency_ms:.2f} ({r.latency_spread})",
                r.opencv, r.opencv_match, r.tflite or "–", r.note.replace("|", "/")]) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each tool (median time)")
    ap.add_argument("--only", action="append")
    ap.add_argument("--big", action="store_true",
                    help="also the big models of make_big_models.py (NASNetLarge 350 MB, a "
                         "10,000-node TF1 cond graph)")
    ap.add_argument("--real", action="store_true",
                    help="also the real trained models of core/model/real_models.py (musicnn, "
                         "RetinaFace: pip install --no-deps musicnn==0.1.0 retinaface==1.1.1)")
    ap.add_argument("--out", default=str(HERE / "results.md"))
    args = ap.parse_args(argv)
    import cv2
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    # Warm every tool up on a tiny graph first, so no tool's time includes one-off imports.
    from surgeon_gui.core.model.examples import conv_bias_bn
    tiny = conv_bias_bn()
    for _, tool in TOOLS:
        try:
            tool(*tiny)
        except Exception:  # noqa: BLE001 - its failure shows up in the table
            pass
    rows = []
    for name, build in models(args.only, args.big, args.real):
        print(f"building {name} ...", file=sys.stderr, flush=True)
        gd, ins, outs = build()
        try:
            rows.extend(measure(name, gd, ins, outs, args.runs, args.warmup, args.repeat))
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            rows.append(Row(name, "original", False, 0.0, len(gd.node),
                            note="benchmark failed on the original"))
        print(table([r for r in rows if r.model == name]), flush=True)
    env = (f"TensorFlow {tf.__version__}, OpenCV {cv2.__version__}, Python "
           f"{platform.python_version()}, {os.cpu_count()} CPUs ({platform.machine()}), "
           f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
           f"time: median of {args.repeat} runs of the tool after a warm-up on a tiny graph; "
           f"latency: median of {args.runs} runs after {args.warmup} warm-up, batch 1, all "
           f"graphs of a model timed round-robin; "
           f"OpenCV/TFLite matches = max |runtime − TF original| ≤ {OPENCV_ATOL:g}; "
           f"'left' = training machinery ours reports left after the preset")
    text = ("# Pass benchmark: our `inference` preset vs optimize_for_inference_lib and "
            "Grappler\n\nWritten by `python benchmarks/bench_passes.py`. " + env + "\n"
            + table(rows) + "\n")
    Path(args.out).write_text(text)
    print(f"\nwritten: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
