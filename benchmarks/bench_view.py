"""Graph-view benchmark on big models (issue 3): how fast the real main window shows them.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_view.py [MODEL.pb ...]

Without arguments it opens the models written by ``benchmarks/make_big_models.py`` (NASNetLarge,
the 10,000+ node TF1 cond/batch-norm CNN; it builds them first if missing). Each model is measured
in a fresh process (peak memory is per process) and the figures go to
``benchmarks/results_view.md``:

- **first view**: from the moment the file is chosen (the window's open call) until the view
  has laid out and drawn the model: reading, indexing, grouping, layout, scene items, one
  paint. Python, TensorFlow and the app's modules are imported beforehand and not counted.
- **expand all**: every group expanded (the whole graph laid out) until drawn.
- **expand ~500-node group**: the group closest to 500 nodes, expanded one level (what a
  double-click does) and fully (it and every group inside it), from the default view.
- **pan / zoom frame**: mean and worst time to repaint the viewport after a scroll step at
  100 % and at 25 % zoom, after a zoom step, and with the whole graph fitted, on the fully
  expanded graph (the offscreen paint is a proxy for stutter; 16-40 ms is fluid).
- **overview + minimap rebuild**: what a highlight/selection change costs at far zoom: the
  batched overview's boxes rebuilt and the minimap pixmap rendered from it (the view draws that
  overview instead of the items below 20 % zoom, so the "whole graph frame" paints it).
- **inspector / search**: selecting the biggest Const (statistics + histogram); a name search
  ("conv": the ranked result list) and then the view highlighting every match.
- **peak memory**: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = HERE / "_models"
DEFAULT = [MODELS / "mobilenet_v2.pb", MODELS / "nasnet_large.pb", MODELS / "tf1_cond_bn_big.pb"]
RESULTS = HERE / "results_view.md"
TARGET_FIRST_VIEW = 3.0
TARGET_GROUP = 1.0


# ---------------------------------------------------------------------------- one model
def _wait(app, predicate, timeout: float = 600.0) -> None:
    end = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > end:
            raise TimeoutError("timed out waiting for the window")
        app.processEvents()
        time.sleep(0.002)


def _paint(app, view) -> None:
    """Force one synchronous paint of the view (what the user sees next frame)."""
    app.processEvents()
    view.viewport().repaint()


def _set_zoom(app, view, scale: float) -> None:
    """Zoom to ``scale`` so that the scroll range follows. (Setting the transform the view
    already has is a no-op in Qt, and after a relayout the range can be stale, so go through
    another scale first.)"""
    from PySide6.QtGui import QTransform
    view.setTransform(QTransform.fromScale(scale * 0.5, scale * 0.5))
    view.setTransform(QTransform.fromScale(scale, scale))
    app.processEvents()


def measure(path: Path, profile: Path | None = None) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    # Imports are not part of any figure.
    import tensorflow  # noqa: F401
    from PySide6.QtWidgets import QApplication

    from surgeon_gui.ui.main_window import MainWindow
    from surgeon_gui.core.viewmodel.nodeinfo import shape_size
    app = QApplication.instance() or QApplication(["bench_view"])
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    app.processEvents()
    view = window.view
    out: dict = {"model": path.name, "file_mb": round(path.stat().st_size / 1e6, 1)}

    # ------------------------------------------------------------ first view
    prof = None
    if profile is not None:
        import cProfile
        prof = cProfile.Profile()
    opened = []
    window.document_opened.connect(lambda doc: opened.append(doc))
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    open_model(window, path)
    _wait(app, lambda: opened and view.document is opened[-1] and view.placement is not None
          and not view.layout_pending)
    _paint(app, view)
    t_first = time.perf_counter() - t0
    if prof:
        prof.disable()
        prof.dump_stats(str(profile))
    doc = window.document
    # The window's own split: reading + indexing + grouping in the loader thread.
    if "load" in getattr(window, "timings", {}):
        out["load_job_s"] = round(window.timings["load"], 3)
    out["nodes"] = len(doc.graph)
    out["first_view_s"] = round(t_first, 3)
    out["units_first_view"] = len(view.graph_scene.items_by_key)
    out["groups"] = len(view.tree.groups)

    # ------------------------------------------------------------ one ~500-node group
    tree = view.tree
    # (a group's size counts what members() lists; members() of every group is quadratic)
    sizes = {k: g.size for k, g in tree.groups.items()}
    key = min(sizes, key=lambda k: (abs(sizes[k] - 500), k))
    out["group"] = key
    out["group_nodes"] = sizes[key]
    # Make the group visible first (not timed): its ancestors open, itself collapsed.
    view.expanded = set(view.tree.default_expanded()) | set(tree.ancestors_of_group(key))
    view.expanded.discard(key)
    view.relayout()
    _wait(app, lambda: not view.layout_pending)
    t0 = time.perf_counter()
    view.expand(key)
    _wait(app, lambda: not view.layout_pending)
    _paint(app, view)
    out["expand_group_s"] = round(time.perf_counter() - t0, 3)
    inner = {g for g in tree.groups if key in tree.ancestors_of_group(g)}
    view.collapse(key)
    _wait(app, lambda: not view.layout_pending)
    t0 = time.perf_counter()
    view.expanded |= {key} | inner
    view.relayout()
    _wait(app, lambda: not view.layout_pending)
    _paint(app, view)
    out["expand_group_fully_s"] = round(time.perf_counter() - t0, 3)
    out["group_units_fully"] = len(view.graph_scene.items_by_key)

    # ------------------------------------------------------------ expand everything
    view.collapse_all()
    _wait(app, lambda: not view.layout_pending)
    t0 = time.perf_counter()
    view.expand_all()
    _wait(app, lambda: not view.layout_pending)
    _paint(app, view)
    out["expand_all_s"] = round(time.perf_counter() - t0, 3)
    out["units_expanded"] = len(view.graph_scene.items_by_key)

    # ------------------------------------------------------------ pan / zoom frames
    # Pan at two zoom levels on the fully expanded graph: 100 % (text readable) and 25 %
    # (an overview of a few hundred boxes); zoom steps out from 100 % and back.
    # Centre on the median node box (the bounding rectangle's centre can be empty space).
    nodes = sorted((it.sceneBoundingRect().center() for key, it in
                    view.graph_scene.items_by_key.items() if key.startswith("n:")),
                   key=lambda p: (p.y(), p.x()))
    middle = nodes[len(nodes) // 2]
    for label, scale in (("pan100", 1.0), ("pan25", 0.25)):
        _set_zoom(app, view, scale)
        view.centerOn(middle)
        _paint(app, view)
        if label == "pan100":
            # What a frame has to stroke: edges in view, and how many of them are long curves
            # (more than two viewport heights/widths) of which only a sliver is visible.
            seen = view.mapToScene(view.viewport().rect()).boundingRect()
            edges = [e for e in view.graph_scene.edge_items
                     if e.boundingRect().intersects(seen)]
            out["pan100_edges"] = len(edges)
            out["pan100_long_edges"] = sum(
                1 for e in edges if e.boundingRect().height() > 2 * seen.height()
                or e.boundingRect().width() > 2 * seen.width())
        frames = []
        bar = view.verticalScrollBar()
        for i in range(30):
            bar.setValue(bar.value() + (80 if i % 10 < 5 else -80))
            t0 = time.perf_counter()
            _paint(app, view)
            frames.append(time.perf_counter() - t0)
        out[f"{label}_frame_ms_mean"] = round(1000 * statistics.mean(frames), 1)
        out[f"{label}_frame_ms_max"] = round(1000 * max(frames), 1)
    _set_zoom(app, view, 1.0)
    view.centerOn(middle)
    _paint(app, view)
    zooms = []
    for i in range(12):
        t0 = time.perf_counter()
        (view.zoom_out if i < 6 else view.zoom_in)()
        _paint(app, view)
        zooms.append(time.perf_counter() - t0)
    out["zoom_frame_ms_mean"] = round(1000 * statistics.mean(zooms), 1)
    out["zoom_frame_ms_max"] = round(1000 * max(zooms), 1)
    view.fit()
    t0 = time.perf_counter()
    _paint(app, view)
    out["fit_all_frame_ms"] = round(1000 * (time.perf_counter() - t0), 1)
    # what a highlight change costs the far-zoom view and the minimap: rebuilding the batched
    # overview and rendering the minimap pixmap from it
    t0 = time.perf_counter()
    view.graph_scene.invalidate_overview()
    view.minimap._render()
    _paint(app, view)
    out["minimap_ms"] = round(1000 * (time.perf_counter() - t0), 1)

    # ------------------------------------------------------------ inspector and search
    panels = getattr(window, "inspection", None)
    if panels is not None:
        consts = [n for n in doc.graph if n.op == "Const"]
        big = max(consts, key=lambda n: shape_size(n.attr["value"].tensor.tensor_shape))
        t0 = time.perf_counter()
        panels.inspector.set_selection([big.name])
        app.processEvents()
        panels.inspector.repaint()
        out["inspect_biggest_const_s"] = round(time.perf_counter() - t0, 3)
        out["biggest_const_values"] = shape_size(big.attr["value"].tensor.tensor_shape)
        panels.search.query.setText("conv")
        t0 = time.perf_counter()
        hits = panels.search.run_search(announce_now=False)  # ranked result list only
        out["search_name_s"] = round(time.perf_counter() - t0, 3)
        out["search_hits"] = len(hits)
        t0 = time.perf_counter()
        panels.search._flush_announce()  # the view highlights every match
        app.processEvents()
        _paint(app, view)
        out["search_highlight_s"] = round(time.perf_counter() - t0, 3)

    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    window.close()
    return out


def open_model(window, path: Path) -> None:
    """What File ▸ Open does once the user picked ``path``."""
    window.open_model(str(path))


# ---------------------------------------------------------------------------- driver
def write_results(rows: list[dict], path: Path = RESULTS) -> None:
    lines = [
        "# Graph view on big models",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; offscreen Qt. Made by `benchmarks/bench_view.py` "
        "(models from `benchmarks/make_big_models.py`).",
        "",
        f"Targets (issue 3): first view within {TARGET_FIRST_VIEW:g} s of the file being chosen; "
        f"expanding a 500-node group within {TARGET_GROUP:g} s; fluid panning and zooming.",
        "",
        "| model | nodes | file | first view (of which loader thread) | expand all | ~500-node group: one level / fully "
        "| pan frame at 100 % / 25 % (mean, max) | zoom step (mean, max) | whole graph frame "
        "(overview + minimap rebuild) "
        "| inspect biggest Const | search | peak RSS |",
        "|---|---:|---:|---:|---:|---|---|---|---:|---|---|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | — | — | failed: {r['error']} | | | | | | | | |")
            continue
        lines.append(
            f"| {r['model']} | {r['nodes']:,} | {r['file_mb']} MB | {r['first_view_s']:.2f} s "
            f"({r.get('load_job_s', float('nan')):.2f} s; {r['units_first_view']} items) | "
            f"{r['expand_all_s']:.2f} s "
            f"({r['units_expanded']:,} items) | `{r['group']}` ({r['group_nodes']} nodes): "
            f"{r['expand_group_s']:.2f} s / {r['expand_group_fully_s']:.2f} s | "
            f"{r['pan100_frame_ms_mean']}, {r['pan100_frame_ms_max']} ms / "
            f"{r['pan25_frame_ms_mean']}, {r['pan25_frame_ms_max']} ms | "
            f"{r['zoom_frame_ms_mean']}, {r['zoom_frame_ms_max']} ms | "
            f"{r['fit_all_frame_ms']} ms ({r.get('minimap_ms', float('nan'))} ms) | "
            f"{r.get('inspect_biggest_const_s', float('nan')):.2f} s "
            f"({r.get('biggest_const_values', 0):,} values) | "
            f"{r.get('search_name_s', float('nan')):.2f} s ({r.get('search_hits', 0):,} hits; "
            f"highlighting them {r.get('search_highlight_s', float('nan')):.2f} s) | "
            f"{r['peak_rss_mb']:.0f} MB |")
    lines += ["", "Edges a frame strokes at 100 % zoom (expanded graph): " + "; ".join(
        f"{r['model']}: {r['pan100_edges']} in view, {r['pan100_long_edges']} of them longer "
        "than two viewport heights" for r in rows if "pan100_edges" in r) + "."]
    lines += ["", "Each model runs in a fresh process; times are wall-clock on the GUI thread "
              "including waiting for background layout. Re-run: "
              "`QT_QPA_PLATFORM=offscreen python benchmarks/bench_view.py`.", ""]
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # child process: one model
    ap.add_argument("--profile", type=Path, help="write a cProfile of the first view here "
                    "(with one model)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.profile)))
        return 0
    models = args.models or DEFAULT
    missing = [m for m in models if not m.exists()]
    if missing and not args.models:
        subprocess.run([sys.executable, str(HERE / "make_big_models.py")], check=True)
    elif missing:
        print(f"bench_view: no such model: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    rows = []
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               TF_CPP_MIN_LOG_LEVEL="2")
    for m in models:
        cmd = [sys.executable, __file__, "--one", str(m)]
        if args.profile and len(models) == 1:
            cmd += ["--profile", str(args.profile)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
        try:
            row = json.loads(last[0])
        except (IndexError, json.JSONDecodeError):
            err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            row = {"model": m.name, "error": err}
        rows.append(row)
        print(json.dumps(row))
    write_results(rows, args.out)
    print(f"wrote {args.out}")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
