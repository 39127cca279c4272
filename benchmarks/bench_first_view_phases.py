"""Where a big graph's first view goes, phase by phase (issue 12, goal 3): CPU and wall time of
each step the window's loader and view take, in one thread, in a fresh process per run.

    python benchmarks/bench_first_view_phases.py [MODEL.pb] [--before OTHER_CHECKOUT] [--repeat 3]

Phases (what ``MainWindow._load_job`` and ``GraphView.set_document``/``relayout`` do, minus
the Qt items):

- ``load_model``: read and parse the file, refuse bad enums, build and validate the one
  ``Graph`` index;
- ``graph_problems``: the checks shown after opening (without TensorFlow);
- ``Document``: the document around the loaded index;
- ``GroupTree``: groups, badges, edges between drawn nodes, signatures (as the window builds
  it: ``defer=True`` leaves the badge labels and hidden nodes' groups for later);
- ``visible graph + layout``: the default expansion's visible graph and its layered layout;
- ``total``: the above, the first view's work; then, outside the total, what the window
  completes on a worker after the first view (``GroupTree.complete``).

Each run is a fresh process (the rows alternate between checkouts, so both see the same load);
the table gives medians and the load average. Scene items and painting are not included: see
``bench_startup.py`` (whole process) and ``bench_view.py`` (in the window).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT = HERE / "_models" / "tf1_cond_bn_100k.pb"

CHILD = r"""
import gc, json, os, sys, time, resource
from surgeon_gui.core.model.io import load_model
from surgeon_gui.core.model.checks import graph_problems
from surgeon_gui.core.history.document import Document
from surgeon_gui.core.viewmodel.grouping import GroupTree
from surgeon_gui.core.viewmodel.layout import LayoutEngine
out = {}
def tick(label, t):
    w, c = time.perf_counter(), time.process_time()
    if label:
        out[label] = (w - t[0], c - t[1])
    return (w, c)
import contextlib
try:  # as the window's loader job does (where the checkout has it)
    from surgeon_gui.core.model.graph import gc_paused as paused_gc
    freeze = gc.freeze
except ImportError:
    paused_gc, freeze = contextlib.nullcontext, lambda: None
t = t0 = tick(None, None)
with paused_gc():
    loaded = load_model(sys.argv[1]); t = tick("load_model", t)
    try:  # as the window asks (reusing the loader's index) where the checkout can
        graph_problems(loaded.graph_def, graph=loaded.index, enums_checked=True)
    except TypeError:
        graph_problems(loaded.graph_def)
    t = tick("graph_problems", t)
    doc = Document.from_loaded(loaded); t = tick("Document", t)
    try:  # as the window's loader builds it (where the checkout defers part of it)
        tree = GroupTree(doc.graph, defer=True)
    except TypeError:
        tree = GroupTree(doc.graph)
    t = tick("GroupTree", t)
    freeze()
expanded = frozenset(k for k in tree.default_expanded() if k in tree.groups)
engine = LayoutEngine(tree, lambda u: (150.0, 44.0), False, wrap_in=(1400.0, 900.0))
engine.layout(expanded, edges=tree.visible_graph(expanded)); t = tick("visible graph + layout", t)
out["total"] = tuple(b - a for a, b in zip(t0, t))
if hasattr(tree, "complete"):  # what the window makes on a worker after the first view
    tree.complete()
t = tick("after the first view: tree completion", t)
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""

PHASES = ["load_model", "graph_problems", "Document", "GroupTree", "visible graph + layout",
          "total", "after the first view: tree completion"]


def run(root: Path, model: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(root), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-P", "-c", CHILD, str(model)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--before", type=Path, help="another checkout, run alternately")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    roots = {"ours": ROOT}
    if args.before:
        roots = {"before": args.before.resolve(), "ours": ROOT}
    runs: dict[str, list[dict]] = {who: [] for who in roots}
    loads = [os.getloadavg()[0]]
    for _ in range(args.repeat):
        for who, root in roots.items():
            runs[who].append(run(root, args.model))
        loads.append(os.getloadavg()[0])
    print(f"{args.model.name}, median of {args.repeat}, load average "
          f"{min(loads):.1f}-{max(loads):.1f} (1 min); seconds, CPU / wall")
    print()
    print("| phase | " + " | ".join(roots) + " |")
    print("|---|" + "---:|" * len(roots))
    for ph in PHASES:
        cells = []
        for who in roots:
            cpu = statistics.median(r[ph][1] for r in runs[who])
            wall = statistics.median(r[ph][0] for r in runs[who])
            cells.append(f"{cpu:.2f} / {wall:.2f}")
        print(f"| {ph} | " + " | ".join(cells) + " |")
    print("| peak RSS (MB) | " + " | ".join(
        f"{statistics.median(r['rss_mb'] for r in runs[w]):.0f}" for w in roots) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
