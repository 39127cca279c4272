"""Benchmark: ``surgeon optimize`` as a whole process vs Grappler and TensorFlow's
``optimize_for_inference_lib`` as whole processes, and what each pass run of the preset costs
(issue 12 goal 4: passes that copy on write).

    python benchmarks/bench_optimize.py [--models nasnet_large,transformer_l12,...]
        [--before PATH] [--repeat 1] [--out benchmarks/results_optimize.md]

Models come from ``make_big_models.py`` (``benchmarks/_models``). Per model, in one run:

* **whole process**: wall time, CPU time (user + system) and peak memory (``/usr/bin/time``) of
  ``python -m surgeon_gui.cli optimize IN OUT`` (the ``inference`` preset, saving included), of
  the same command on an older checkout given with ``--before`` (e.g. a ``git worktree`` of the
  commit before copy on write), of a process that imports TensorFlow, reads the same file,
  runs Grappler's ``OptimizeGraph`` with its default optimizers and writes the result, and of
  one that does the same with ``optimize_for_inference_lib.optimize_for_inference`` (TF's own
  inference script: strip unused, fold constants and batch norms); every process is alone
  (no children), so its peak RSS is the run's;
* **where the peak is** (ours, in-process with RSS sampled every 5 ms): after parsing the file,
  during the input's import check, the passes and the save;
* **per pass** (in-process, our code): every pass run of the preset, its time and whether it
  changed the graph; the runs that changed nothing are summed (before copy on write each of
  them copied the whole GraphDef), next to the time of one ``GraphDef.CopyFrom`` of the model.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable

GRAPPLER = r"""
import os, sys, json
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.python.grappler import tf_optimizer
src, dst, meta = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
gd = tf.compat.v1.GraphDef()
gd.ParseFromString(open(src, "rb").read())
g = tf.Graph()
with g.as_default():
    tf.compat.v1.import_graph_def(gd, name="")
    for o in meta["outputs"]:
        g.add_to_collection("train_op", g.get_operation_by_name(o.split(":")[0]))
    mg = tf.compat.v1.train.export_meta_graph(graph=g)
out = tf_optimizer.OptimizeGraph(config_pb2.ConfigProto(), mg, verbose=False, graph_id=b"b")
open(dst, "wb").write(out.SerializeToString())
print(len(out.node))
"""

OFI = r"""
import os, sys, json
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf
from tensorflow.python.tools import optimize_for_inference_lib
src, dst, meta = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
gd = tf.compat.v1.GraphDef()
gd.ParseFromString(open(src, "rb").read())
ins = [i.split(":")[0] for i in meta["inputs"]]
outs = [o.split(":")[0] for o in meta["outputs"]]
nodes = {n.name: n for n in gd.node}
types = [nodes[i].attr["dtype"].type for i in ins]
out = optimize_for_inference_lib.optimize_for_inference(gd, ins, outs, types)
open(dst, "wb").write(out.SerializeToString())
print(len(out.node))
"""

PER_PASS = r"""
import os, sys, json, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, sys.argv[1])
import tensorflow  # noqa: F401
from surgeon_gui.core.model.io import read_graph_def
from surgeon_gui.core.model.graph import Graph, GraphDef
from surgeon_gui.core.passes import pipeline
pb = sys.argv[2]
meta = json.load(open(pb[:-3] + ".json"))
gd = read_graph_def(pb)
copies = []
for _ in range(3):
    s = time.perf_counter(); GraphDef().CopyFrom(gd); copies.append(time.perf_counter() - s)
runs = []
orig = pipeline.run_pass
def timed(graph, pid, params=None, select=None, check=True, **kw):
    s = time.perf_counter()
    r = orig(graph, pid, params, select, check, **kw)
    runs.append((pid, time.perf_counter() - s, bool(r.report.modified)))
    return r
pipeline.run_pass = timed
try:  # as the CLI runs it: fold_batch_norm's new weights computed when written
    from surgeon_gui.core.model.deferred import deferring
except ImportError:  # an older tree
    from contextlib import nullcontext as deferring
s = time.perf_counter()
with deferring():
    out, _ = pipeline.run_pipeline(Graph(gd, meta["inputs"], meta["outputs"]), ["inference"],
                                   keep_graphs=False)
total = time.perf_counter() - s
print(json.dumps(dict(copy=min(copies), total=total, runs=runs, nodes=len(out.graph_def.node))))
"""


PHASES = r"""
import os, sys, json, threading, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, sys.argv[1])
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
samples, marks, stop = [], [], []
def sample():
    while not stop:
        samples.append((time.perf_counter(), rss()))
        time.sleep(0.005)
threading.Thread(target=sample, daemon=True).start()
from surgeon_gui import cli
from surgeon_gui.core.history import recipe
from surgeon_gui.core.model import files
def phase(mod, name, label):
    fn = getattr(mod, name)
    def wrapped(*a, **k):
        marks.append((label, time.perf_counter(), rss()))
        try:
            return fn(*a, **k)
        finally:
            marks.append(("/" + label, time.perf_counter(), rss()))
    setattr(mod, name, wrapped)
phase(cli, "_check_imports", "import check")
phase(recipe, "replay", "passes")
phase(files, "write_files", "save")
code = cli.main(["optimize", sys.argv[2], sys.argv[3], "--force"])
time.sleep(0.02)
stop.append(1)
def peak(a, b):
    return max((r for t, r in samples if a <= t <= b), default=0)
t = {label: at for label, at, _ in marks}
out = dict(loaded=[r for label, _, r in marks if label == "import check"][0],
           **{k: peak(t[k], t["/" + k]) for k in ("import check", "passes", "save")},
           overall=max(r for _, r in samples), code=code)
print(json.dumps(out))
"""


def timed_process(cmd, cwd=None, env=None) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak MB, stdout) of one process; NaNs when it failed."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", tf.name] + cmd
        p = subprocess.run(full, cwd=cwd, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{' '.join(cmd[:4])} failed: {p.stderr.strip()[-300:]}", file=sys.stderr)
            nan = float("nan")
            return nan, nan, nan, ""
        wall, user, system, kb = tf.read().split()[-4:]
    return float(wall), float(user) + float(system), int(kb) / 1024, p.stdout


def whole_process(tree: Path, pb: Path, out: Path) -> tuple[float, float, float]:
    env = dict(os.environ, PYTHONPATH=str(tree), TF_CPP_MIN_LOG_LEVEL="2")
    wall, cpu, mb, _ = timed_process([PY, "-m", "surgeon_gui.cli", "optimize", str(pb),
                                      str(out), "--force"], cwd=str(tree), env=env)
    return wall, cpu, mb


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models",
                    default="nasnet_large,transformer_l12,tf1_cond_bn_big,mobilenet_v2")
    ap.add_argument("--before", help="an older checkout to compare with (a git worktree)")
    ap.add_argument("--repeat", type=int, default=1, help="whole-process runs each (median)")
    ap.add_argument("--out", default=str(HERE / "results_optimize.md"))
    args = ap.parse_args(argv)
    trees = [("ours", ROOT)] + ([("ours before", Path(args.before))] if args.before else [])
    lines = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_optimize_"))
    script = tmp / "grappler.py"
    script.write_text(GRAPPLER)
    ofi = tmp / "ofi.py"
    ofi.write_text(OFI)
    for stem in args.models.split(","):
        pb = HERE / "_models" / f"{stem}.pb"
        if not pb.exists():
            raise SystemExit(f"{pb} is missing: run python benchmarks/make_big_models.py first")
        meta = json.loads(pb.with_suffix(".json").read_text())
        size = pb.stat().st_size / 2**20
        print(f"{stem} ...", file=sys.stderr, flush=True)
        rows = []
        results: dict[str, list[tuple[float, float, float]]] = {}
        loads = [load_average()]
        for _ in range(args.repeat):   # interleaved, so load changes hit every tool alike
            for label, tree in trees:
                results.setdefault(label, []).append(
                    whole_process(tree, pb, tmp / f"{stem}.{label.replace(' ', '_')}.pb"))
            meta_file = str(pb.with_suffix(".json"))
            for label, code in (("grappler", script), ("optimize_for_inference", ofi)):
                wall, cpu, mb, _ = timed_process([PY, str(code), str(pb),
                                                  str(tmp / f"{stem}.{label}.pb"), meta_file])
                results.setdefault(label, []).append((wall, cpu, mb))
            loads.append(load_average())
        med = {k: sorted(v)[len(v) // 2] for k, v in results.items()}
        g_wall, g_cpu = med["grappler"][0], med["grappler"][1]
        for label, (wall, cpu, mb) in med.items():
            rows.append(f"| {label} | {wall:.1f} | {wall / g_wall:.2f} | {cpu:.1f} | "
                        f"{cpu / g_cpu:.2f} | {mb:.0f} | {mb / size:.1f} |")
        lines += [f"### {stem} ({meta['nodes']} nodes, {size:.0f} MB)", "",
                  "| whole process | wall (s) | wall vs Grappler | CPU (s) | CPU vs Grappler "
                  "| peak MB | peak / file size |",
                  "|---|---|---|---|---|---|---|", *rows, "",
                  f"Load average (1, 5, 15 min) before and after each repetition: "
                  f"{'; '.join(loads)}.", ""]
        for label, tree in trees:
            p = subprocess.run([PY, "-c", PHASES, str(tree), str(pb), str(tmp / "phases.pb")],
                               capture_output=True, text=True, cwd=str(tree),
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
            if p.returncode == 0:
                d = json.loads(p.stdout.strip().splitlines()[-1])
                lines += [f"Where the peak is, {label} (RSS sampled every 5 ms in one process): "
                          f"{d['loaded']:.0f} MB once the file is parsed, peak "
                          f"{d['import check']:.0f} MB in the input's import check "
                          "(TensorFlow's C API loaded), "
                          f"{d['passes']:.0f} MB in the passes, {d['save']:.0f} MB in the "
                          f"save; {d['overall']:.0f} MB in all.", ""]
            p = subprocess.run([PY, "-c", PER_PASS, str(tree), str(pb)], capture_output=True,
                               text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
            if p.returncode != 0:
                lines += [f"per pass ({label}): failed: {p.stderr.strip()[-200:]}", ""]
                continue
            d = json.loads(p.stdout.strip().splitlines()[-1])
            idle = [t for _, t, m in d["runs"] if not m]
            busy = [(pid, t) for pid, t, m in d["runs"] if m]
            lines += [f"Per pass, {label}: preset {d['total']:.2f} s in-process; "
                      f"{len(idle)} pass runs changed nothing and took {sum(idle):.2f} s in all "
                      f"(max {max(idle, default=0):.3f} s; one GraphDef copy of this model: "
                      f"{d['copy']:.3f} s); {len(busy)} changed it: "
                      + ", ".join(f"{pid} {t:.2f}" for pid, t in busy) + ".", ""]
        print("\n".join(lines[-8:]), flush=True)
    env = (f"Python {platform.python_version()}, {os.cpu_count()} CPUs ({platform.machine()}), "
           f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, median of "
           f"{args.repeat} whole-process run(s) each, tools interleaved")
    text = ("# `surgeon optimize` vs Grappler, whole process; cost of each pass run\n\n"
            f"Written by `python benchmarks/bench_optimize.py`. {env}.\n\n" + "\n".join(lines))
    Path(args.out).write_text(text)
    print(f"written: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
