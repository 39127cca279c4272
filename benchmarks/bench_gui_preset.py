"""The GUI preset's worker job, copying path vs in-place path, side by side (issue 12, goal 4).

    python benchmarks/bench_gui_preset.py [--model benchmarks/_models/nasnet_large.pb]
                                          [--rounds 2] [--out benchmarks/results_gui_preset.md]

What the Passes panel's preset job does, without the window: ``prepare_pipeline`` over the
document's graph (every pass until nothing changes, one step each with its delta), the group
trees of the result and of the state one Ctrl+Z away (the view's per-state cache), then
``Document.adopt``. Each run is its own child process (the model loaded, then the job timed),
alternating copying (``in_place=False``: each changing pass copies the whole graph and its
delta is a whole-graph comparison) and in place (the default: one working copy, each pass edits
it, each delta is built from the pass's recorded old nodes). Reported per run: wall and CPU
time of the job, the process's RSS after loading, its peak RSS during the job (sampled every
5 ms), the job's growth (peak minus the RSS before it; TensorFlow is imported before) over
the file size; the final bytes of both paths are compared.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """The highest RSS seen while the block runs (sampled by a thread)."""

    def __enter__(self):
        self.peak, self._stop = rss_mb(), threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_mb())


def child(model: str, in_place: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    from surgeon_gui.core.history.document import Document
    from surgeon_gui.core.history.steps import prepare_pipeline, state_before_last
    from surgeon_gui.core.model.io import load_model
    from surgeon_gui.core.viewmodel.grouping import GroupTree
    doc = Document.from_loaded(load_model(model))
    # what the passes import (TensorFlow, for constant evaluation) is imported in the
    # background after the app's first view: here before the job, so that its memory is not
    # counted as the job's
    from surgeon_gui.core.model.tfenv import quiet_tensorflow
    quiet_tensorflow()
    import tensorflow  # noqa: F401
    from surgeon_gui.core.passes import all_passes
    all_passes()
    import gc
    gc.collect()
    after_load = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    with PeakRss() as peak:
        prepared = prepare_pipeline(doc.graph, ["inference"], in_place=in_place)
        trees = {}
        if len(prepared) >= 2:
            if in_place:
                trees[len(prepared) - 2] = state_before_last(prepared, GroupTree)
            else:
                trees[len(prepared) - 2] = GroupTree(prepared[-2].graph)
        trees[len(prepared) - 1] = GroupTree(prepared[-1].graph)
        doc.adopt(prepared)
        del prepared, trees
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    digest = hashlib.sha256(doc.graph_def.SerializeToString(deterministic=True)).hexdigest()
    return dict(in_place=in_place, wall=wall, cpu=cpu, after_load=after_load, peak=peak.peak,
                steps=len(doc.steps), nodes=len(doc.graph_def.node), digest=digest[:16])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(HERE / "_models" / "nasnet_large.pb"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", choices=["copy", "in_place"])
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.model, a.child == "in_place")))
        return
    size = os.path.getsize(a.model) / 2**20
    rows = []
    for r in range(a.rounds):
        for mode in ("copy", "in_place"):
            out = subprocess.run([sys.executable, __file__, "--model", a.model, "--child", mode],
                                 capture_output=True, text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            res["load"] = os.getloadavg()[0]
            rows.append(res)
            print(f"{mode:8s} wall {res['wall']:6.1f} s  cpu {res['cpu']:6.1f} s  "
                  f"after load {res['after_load']:6.0f} MB  peak {res['peak']:6.0f} MB "
                  f"(+{res['peak'] - res['after_load']:.0f} MB = "
                  f"{(res['peak'] - res['after_load']) / size:.2f}x file)  {res['steps']} steps  "
                  f"{res['digest']}  load {res['load']:.1f}", flush=True)
    assert len({r["digest"] for r in rows}) == 1, "the two paths gave different bytes"
    lines = [f"{Path(a.model).name} ({size:.0f} MB), {rows[0]['steps']} steps, "
             f"{rows[0]['nodes']} nodes after; same bytes on both paths ({rows[0]['digest']})",
             "", "| run | path | wall | CPU | RSS before the job | peak RSS in the job | "
             "job's growth (peak - before) | growth / file | load |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for i, r in enumerate(rows):
        lines.append(f"| {i // 2 + 1} | {'in place' if r['in_place'] else 'copying'} | "
                     f"{r['wall']:.1f} s | {r['cpu']:.1f} s | {r['after_load']:.0f} MB | "
                     f"{r['peak']:.0f} MB | {r['peak'] - r['after_load']:.0f} MB | "
                     f"{(r['peak'] - r['after_load']) / size:.2f}x | {r['load']:.1f} |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
