"""Apply / undo / redo cost per step on big models (issue 4, "What must be shown").

    python benchmarks/bench_undo.py [--model benchmarks/_models/nasnet_large.pb]
                                    [--view-model benchmarks/_models/tf1_cond_bn_50k.pb ...]
                                    [--out benchmarks/results_undo.md] [--skip-big]

Part 1 (NASNetLarge, ~350 MB): runs the "inference" preset one pass at a time through the same
undo commands the GUI pushes, and reports per step: the pass's own run time, the time to adopt
its result (computing the GraphDelta), the delta's size, the process RSS, then the time of undo
and redo of each step, and checks that undo-all gives back the original bytes and redo-all the
final bytes (SHA-256 of the deterministic serialization).

Part 2 (the 53k-node TF1 graph with two passes, a delete and a rename; NASNetLarge with the
preset): undo and redo of every step, median and max over three rounds, wall and CPU time,
with the graph view attached (offscreen Qt; until the view is laid out again) and with the view
detached (the document alone): the issue's "≤ 0.3 s including the view update".

Big models come from ``benchmarks/make_big_models.py`` (run it first).
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

HERE = Path(__file__).resolve().parent


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def digest(gd) -> str:
    return hashlib.sha256(gd.SerializeToString(deterministic=True)).hexdigest()[:16]


def load(path: Path):
    import json
    from surgeon_gui.core.model.io import read_graph_def
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text()) if side.exists() else {}
    return read_graph_def(path), meta.get("inputs"), meta.get("outputs")


def preset_steps(stack, doc, log):
    """The preset, one pass at a time, timing compute and adopt separately."""
    from surgeon_gui.core.passes import PRESET_PASSES
    from surgeon_gui.core.passes.pipeline import MAX_ROUNDS
    from surgeon_gui.ui.commands import ApplyPassCommand, push_step
    rows = []
    for rnd in range(MAX_ROUNDS):
        changed = False
        for pid in PRESET_PASSES:
            t0 = time.perf_counter()
            cmd = ApplyPassCommand.compute(doc, pid)
            t1 = time.perf_counter()
            if cmd is None:
                log(f"  round {rnd + 1} {pid}: no change ({t1 - t0:.2f} s)")
                continue
            push_step(stack, cmd)
            t2 = time.perf_counter()
            gc.collect()
            d = cmd.delta
            rows.append(dict(step=len(rows) + 1, pass_id=pid, run=t1 - t0, adopt=t2 - t1,
                             removed=len(d.removed), added=len(d.added),
                             changed=len(d.changed), delta_mb=d.nbytes / 1e6,
                             spill_mb=d.spilled_bytes / 1e6, rss=rss_mb(),
                             nodes=len(doc.graph)))
            log(f"  round {rnd + 1} {pid}: {d.summary()}, run {t1 - t0:.2f} s, adopt "
                f"{t2 - t1:.3f} s, delta {d.nbytes / 1e6:.2f} MB in RAM + "
                f"{d.spilled_bytes / 1e6:.1f} MB on disk, RSS {rss_mb():.0f} MB")
            changed = True
        if not changed:
            break
    return rows


NO_HISTORY = """
import ctypes, gc, sys
sys.path.insert(0, {here!r})
from bench_undo import load, rss_mb
from pathlib import Path
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.passes import PRESET_PASSES
from surgeon_gui.core.passes.pipeline import run_pass
gd, i, o = load(Path({path!r}))
g = Graph(gd, i, o)
start = rss_mb()
for pid in PRESET_PASSES:
    r = run_pass(g, pid)
    if r.report.modified:
        g = Graph(r.graph_def, i, o)
    del r
    gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)
print(start, rss_mb())
"""


def rss_without_history(path: Path) -> str:
    """The same passes in a fresh process with no document and no undo history at all."""
    import subprocess
    code = NO_HISTORY.format(here=str(HERE), path=str(path))
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=1200, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        start, end = (float(x) for x in out.stdout.split()[-2:])
    except Exception as e:  # noqa: BLE001
        return f"(the no-history comparison failed: {e})"
    return (f"the same passes with no undo history at all (fresh process, trimmed): "
            f"{start:.0f} → {end:.0f} MB, so the growth comes from the passes' working memory, "
            f"not from the history")


def part1(path: Path, log) -> list[str]:
    from PySide6.QtGui import QUndoStack
    from PySide6.QtWidgets import QApplication
    from surgeon_gui.core.history.document import Document
    from surgeon_gui.core.model.io import serialize
    app = QApplication.instance() or QApplication([])  # noqa: F841
    t = time.perf_counter()
    gd, inputs, outputs = load(path)
    size_mb = path.stat().st_size / 1e6
    log(f"loaded {path.name}: {len(gd.node)} nodes, {size_mb:.0f} MB in "
        f"{time.perf_counter() - t:.1f} s; RSS {rss_mb():.0f} MB")
    doc = Document(gd, str(path), inputs, outputs)
    stack = QUndoStack()
    original = digest(doc.graph_def)
    rss0 = rss_mb()
    rows = preset_steps(stack, doc, log)
    final = digest(doc.graph_def)
    rss_after = rss_mb()
    gc.collect()
    try:  # give freed protobuf arenas back to the OS: what remains is really held
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    rss_trimmed = rss_mb()
    cmds = [stack.command(i) for i in range(stack.count())]
    total_delta = sum(c.delta.nbytes for c in cmds)
    total_spill = sum(c.delta.spilled_bytes for c in cmds)
    no_history = rss_without_history(path)
    undo_t, redo_t = [], []
    for i in range(stack.count()):
        t0 = time.perf_counter()
        stack.undo()
        undo_t.append(time.perf_counter() - t0)
    back = digest(doc.graph_def)
    for i in range(stack.count()):
        t0 = time.perf_counter()
        stack.redo()
        redo_t.append(time.perf_counter() - t0)
    again = digest(doc.graph_def)
    undo_t.reverse()  # undo_t[i] is the undo of step i+1
    # the cost a second full copy would have
    t0 = time.perf_counter()
    copy_len = len(serialize(doc.graph_def))
    t_ser = time.perf_counter() - t0
    lines = [f"### {path.name}: {len(gd.node)} nodes, {size_mb:.0f} MB, "
             f"preset `inference` one pass per step", "",
             "| step | pass | −/+/~ nodes | pass run (s) | adopt = delta (s) | delta in RAM (MB) "
             "| delta on disk (MB) | undo (s) | redo (s) | RSS after (MB) |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r, u, rd in zip(rows, undo_t, redo_t):
        lines.append(f"| {r['step']} | {r['pass_id']} | −{r['removed']}/+{r['added']}/"
                     f"~{r['changed']} | {r['run']:.2f} | {r['adopt']:.3f} | "
                     f"{r['delta_mb']:.2f} | {r['spill_mb']:.1f} | {u:.3f} | {rd:.3f} | "
                     f"{r['rss']:.0f} |")
    lines += ["",
              f"- undo all → original bytes: **{'yes' if back == original else 'NO'}** "
              f"(sha256 {original}); redo all → final bytes: "
              f"**{'yes' if again == final else 'NO'}** (sha256 {final})",
              f"- all {len(rows)} deltas together hold {total_delta / 1e6:.1f} MB in memory and "
              f"{total_spill / 1e6:.0f} MB in the scratch file, against "
              f"{copy_len / 1e6:.0f} MB for one more copy of the final graph "
              f"(serializing it once takes {t_ser:.2f} s)",
              f"- RSS: {rss0:.0f} MB with the model open, {rss_after:.0f} MB after all steps, "
              f"{rss_trimmed:.0f} MB once freed memory is returned to the OS (malloc_trim); "
              f"{no_history}",
              f"- slowest undo {max(undo_t):.3f} s, slowest redo {max(redo_t):.3f} s "
              f"(model only, no view)", ""]
    return lines


def load_avg() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def _spec_steps(spec: str, stack, doc, log, timed) -> None:
    """The steps applied before timing undo/redo: ``cond`` (the TF1 cond-BN graphs: two
    passes, a delete and a rename, as a user would) or ``preset`` (the inference preset, one
    step per pass that changed something)."""
    from surgeon_gui.ui.commands import EditCommand, apply_passes, push_step
    if spec == "preset":
        timed("preset (all steps)", lambda: apply_passes(stack, doc, ["inference"]))
        return
    timed("training_flags", lambda: apply_passes(stack, doc, ["training_flags"]))
    timed("remove_switch_merge", lambda: apply_passes(stack, doc, ["remove_switch_merge"]))
    first = next(n for n in doc.graph_def.node if n.op == "Identity"
                 and n.name.endswith("/read"))
    timed("delete " + first.name, lambda: push_step(stack, EditCommand.compute(
        doc, "remove_node", {"node": first.name})))
    out0 = doc.graph.outputs[0]
    timed("rename " + out0, lambda: push_step(stack, EditCommand.compute(
        doc, "rename_node", {"node": out0, "new_name": "renamed_output"})))


def part2(path: Path, log, spec: str = "cond", reps: int = 3) -> list[str]:
    """Undo/redo of every step, with the graph view attached (timed to the end of its
    relayout) and then with the view detached (the document alone: delta, index, GraphChange),
    median and max per step over ``reps`` rounds, wall and CPU time."""
    import statistics
    from PySide6.QtGui import QUndoStack
    from PySide6.QtWidgets import QApplication
    from surgeon_gui.core.history.document import Document
    from surgeon_gui.ui.graph_view import GraphView
    app = QApplication.instance() or QApplication([])
    gd, inputs, outputs = load(path)
    doc = Document(gd, str(path), inputs, outputs)
    view = GraphView()
    view.resize(1400, 900)
    view.show()

    def settle(timeout=120.0):
        t_end = time.perf_counter() + timeout
        app.processEvents()
        while view.layout_pending and time.perf_counter() < t_end:
            app.processEvents()
            time.sleep(0.002)
        app.processEvents()

    t0 = time.perf_counter()
    view.set_document(doc, reset_view=True)
    settle()
    first_view = time.perf_counter() - t0
    stack = QUndoStack()
    log(f"{path.name}: {len(gd.node)} nodes in the view ({first_view:.1f} s)")
    applied = []

    def timed(label, fn):
        t0 = time.perf_counter()
        fn()
        settle()
        applied.append((label, time.perf_counter() - t0))
        log(f"  applied {label}: {applied[-1][1]:.2f} s")

    _spec_steps(spec, stack, doc, log, timed)
    n_steps = stack.count()
    labels = [stack.command(i).text() for i in range(n_steps)]
    gc.collect()
    gc.freeze()   # as the app does after a layout: the collector no longer walks the model

    def rounds(with_view: bool) -> list[tuple[str, int, float, float]]:
        rows = []
        for rep in range(reps):
            for i in range(n_steps - 1, -1, -1):
                w, c = time.perf_counter(), time.process_time()
                stack.undo()
                if with_view:
                    settle()
                rows.append(("undo", i, time.perf_counter() - w, time.process_time() - c))
            for i in range(n_steps):
                w, c = time.perf_counter(), time.process_time()
                stack.redo()
                if with_view:
                    settle()
                rows.append(("redo", i, time.perf_counter() - w, time.process_time() - c))
        return rows

    load0 = load_avg()
    viewed = rounds(True)
    view.set_document(None)
    settle()
    alone = rounds(False)
    load1 = load_avg()

    def cell(rows, kind, i, k):
        v = [r[k] for r in rows if r[0] == kind and r[1] == i]
        return f"{statistics.median(v):.3f} / {max(v):.3f}"

    lines = [f"### {path.name}: {len(gd.node)} nodes, undo/redo of each step, {reps} rounds "
             f"(load {load0} → {load1})", "",
             f"First view {first_view:.1f} s. Applying each step (run + adopt + view for a "
             "state never seen): " + "; ".join(f"{label} {t:.2f} s" for label, t in applied)
             + ".", "",
             "Median / max in seconds. *With view*: from `undo()`/`redo()` to the view laid out "
             "again (offscreen). *Model only*: the view detached (document: delta applied in "
             "place, index updated, GraphChange).", "",
             "| step | undo with view: wall | cpu | redo with view: wall | cpu "
             "| undo model only: wall | cpu | redo model only: wall | cpu |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for i, label in enumerate(labels):
        lines.append(f"| {label} | {cell(viewed, 'undo', i, 2)} | {cell(viewed, 'undo', i, 3)}"
                     f" | {cell(viewed, 'redo', i, 2)} | {cell(viewed, 'redo', i, 3)}"
                     f" | {cell(alone, 'undo', i, 2)} | {cell(alone, 'undo', i, 3)}"
                     f" | {cell(alone, 'redo', i, 2)} | {cell(alone, 'redo', i, 3)} |")
    worst_v = max(r[2] for r in viewed)
    worst_a = max(r[2] for r in alone)
    med_v = statistics.median(r[2] for r in viewed)
    med_a = statistics.median(r[2] for r in alone)
    lines += ["", f"- with the view: median **{med_v:.3f} s**, worst **{worst_v:.3f} s** over "
              f"{len(viewed)} undo/redo operations (target ≤ 0.3 s)",
              f"- model only: median {med_a * 1000:.0f} ms, worst {worst_a * 1000:.0f} ms; the "
              f"view's share of the median is {max(med_v - med_a, 0) * 1000:.0f} ms", ""]
    view.deleteLater()
    app.processEvents()
    gc.unfreeze()
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=HERE / "_models" / "nasnet_large.pb",
                    help="the big model of the memory table (part 1) and of part 2's preset")
    ap.add_argument("--view-model", type=Path, action="append",
                    help="a TF1 cond-BN graph for part 2 (repeatable; default: the 53k-node "
                         "graph)")
    ap.add_argument("--out", type=Path, default=HERE / "results_undo.md")
    ap.add_argument("--skip-big", action="store_true", help="no NASNetLarge (parts 1 and 2)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-memory", action="store_true",
                    help="skip part 1 (the NASNetLarge memory/spill table)")
    args = ap.parse_args(argv)
    views = args.view_model or [HERE / "_models" / "tf1_cond_bn_50k.pb"]
    for p in ([] if args.skip_big else [args.model]) + views:
        if not p.exists():
            print(f"bench_undo: {p} is missing; run benchmarks/make_big_models.py first",
                  file=sys.stderr)
            return 2

    def log(msg):
        print(msg, flush=True)

    out = ["# Undo/redo benchmark", "",
           f"Machine: {os.cpu_count()} cores, shared with other jobs (load average given per "
           f"table); `python benchmarks/bench_undo.py`.", ""]
    if not args.skip_big and not args.no_memory:   # first: RSS figures of a fresh process
        out += part1(args.model, log)
    for v in views:
        out += part2(v, log, "cond", args.reps)
    if not args.skip_big:
        out += part2(args.model, log, "preset", args.reps)
    args.out.write_text("\n".join(out) + "\n")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
