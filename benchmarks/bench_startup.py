"""Whole-process start-up benchmark (issue 12): the app and ``surgeon info`` against the floor.

    python benchmarks/bench_startup.py [--repeat 5] [--before PATH] [--out FILE]
                                       [--models nasnet_large.pb,tf1_cond_bn_100k.pb]
                                       [--only nasnet|cond100k|cond50k|cond|mobilenet]
                                       [--cold-bytecode]

Every figure is a fresh process, timed by this script from spawn to exit, with its peak
memory (``ru_maxrss`` from ``wait4``); the rows of one repetition run one after the other,
so ratios compare processes that saw the same machine load. Medians over ``--repeat`` runs.

- **floor**: a Python process that imports Qt's widgets and parses the file with protobuf
  (the least any viewer of this file in Python must do).
- **first view**: the app's window (offscreen, made as ``surgeon-gui`` makes it: its dock
  panels come after the first frame), the model opened as ``surgeon-gui MODEL`` opens it,
  until the view is laid out and painted once; the process then exits at once
  (``os._exit``: tearing down a 357 MB protobuf is not something a user waits for). It also
  reports the in-process time from the open call to the painted view, and whether TensorFlow
  was imported.
- **launch to usable window**: no model; the main window shown and painted (the start page).
- **surgeon info**: ``surgeon_gui.cli.main(["info", MODEL])`` in a fresh process, which then
  says whether it imported TensorFlow (with the registered-op cache in place, which the first
  run on a machine writes).

CPU is the process's user + system time (``wait4``): on a machine shared with other work the
wall time stretches with the load, CPU time much less, so both are given.

``--before PATH`` runs the same app rows with the code of another checkout (``git worktree add
PATH COMMIT``) beside ours.

Bytecode: an installed app runs from Python's cached bytecode (``__pycache__``, written on the
first run), so every process here reads its modules' bytecode from a cache in a temporary
folder (``PYTHONPYCACHEPREFIX``), warmed by one untimed run of each process first; an
environment with ``PYTHONDONTWRITEBYTECODE`` set would otherwise compile our ~90 modules from
source in every process (0.1-0.2 s, what a user sees only on the very first launch).
``--cold-bytecode`` measures that way instead (no cache: every module compiled every time).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = HERE / "_models"
RESULTS = HERE / "results_startup.md"
#: ``--only`` names (as ``make_big_models.py --only`` calls them) → files.
SHORT_NAMES = {"nasnet": "nasnet_large.pb", "cond100k": "tf1_cond_bn_100k.pb",
               "cond50k": "tf1_cond_bn_50k.pb", "cond": "tf1_cond_bn_big.pb",
               "mobilenet": "mobilenet_v2.pb"}
#: Where the processes keep their bytecode (None: no cache, compiled in every process).
PYCACHE: str | None = None

FLOOR = """
import sys
from PySide6.QtWidgets import QApplication
from surgeon_gui.core.model.protos import GraphDef
app = QApplication([])
gd = GraphDef()
with open(sys.argv[1], "rb") as f:
    gd.ParseFromString(f.read())
print("nodes", len(gd.node))
"""

FIRST_VIEW = """
import os, sys, time
t_start = time.perf_counter()
from PySide6.QtWidgets import QApplication
from surgeon_gui.ui.main_window import APPLICATION, ORGANIZATION, MainWindow
app = QApplication(sys.argv[:1])
app.setOrganizationName(ORGANIZATION); app.setApplicationName(APPLICATION)
try:  # as surgeon-gui makes it: the panels after the first frame
    win = MainWindow(defer_panels=True)
except TypeError:  # (a checkout from before that option)
    win = MainWindow()
win.persist_settings = False
win.resize(1400, 900)
win.show()
# wait as the app does, in Qt's event loop (a polling loop would compete with the loader
# thread for the GIL and add its own CPU time)
from PySide6.QtCore import QEventLoop, QTimer
loop = QEventLoop()
opened = []
def check(*_):
    if opened and not win.view.layout_pending:
        loop.quit()
win.document_opened.connect(lambda doc: (opened.append(doc), QTimer.singleShot(0, check)))
win.view.layout_finished.connect(check)
win.load_failed.connect(lambda msg: (print("failed", msg), os._exit(3)))
t0 = time.perf_counter()
win.open_model(sys.argv[1])
loop.exec()
win.view.viewport().repaint()
t1 = time.perf_counter()
print(f"in_process {t1 - t0:.3f} imports_and_window {t0 - t_start:.3f} "
      f"tensorflow {'tensorflow' in sys.modules}", flush=True)
os._exit(0)
"""

INFO = """
import sys
from surgeon_gui.cli import main
rc = main(["info", sys.argv[1]])
print(f"tf_imported {'tensorflow' in sys.modules}", flush=True)
sys.exit(rc)
"""

WINDOW = """
import os, sys, time
from PySide6.QtWidgets import QApplication
from surgeon_gui.ui.main_window import APPLICATION, ORGANIZATION, MainWindow
app = QApplication(sys.argv[:1])
app.setOrganizationName(ORGANIZATION); app.setApplicationName(APPLICATION)
try:  # as surgeon-gui makes it: the panels after the first frame
    win = MainWindow(defer_panels=True)
except TypeError:  # (a checkout from before that option)
    win = MainWindow()
win.persist_settings = False
win.show()
while not win.windowHandle() or not win.windowHandle().isExposed():
    app.processEvents()
win.repaint()
app.processEvents()
print(f"tensorflow {'tensorflow' in sys.modules}", flush=True)
os._exit(0)
"""


def run_measured(args: list[str], code_root: Path) -> dict:
    """Run one process: wall time from spawn to exit, its own peak RSS (MB, from wait4),
    its stdout and stderr."""
    env = dict(os.environ, PYTHONPATH=str(code_root), QT_QPA_PLATFORM="offscreen",
               TF_CPP_MIN_LOG_LEVEL="2")
    if PYCACHE is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        # one cache folder per checkout: the same module path in two checkouts is two files
        env["PYTHONPYCACHEPREFIX"] = os.path.join(PYCACHE, str(code_root).strip("/").replace("/", "_"))
    with tempfile.TemporaryDirectory() as tmp:
        out_path, err_path = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        t0 = time.perf_counter()
        pid = os.posix_spawn(sys.executable, [sys.executable, "-P", *args], env,
                             file_actions=[(os.POSIX_SPAWN_OPEN, 1, out_path, flags, 0o644),
                                           (os.POSIX_SPAWN_OPEN, 2, err_path, flags, 0o644)])
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - t0
        out, err = Path(out_path).read_text(), Path(err_path).read_text()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{args[:3]} exited {code}: {err.strip()[-500:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024,
            "out": out, "err": err}


def load_average() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--models", default="nasnet_large.pb,tf1_cond_bn_100k.pb")
    ap.add_argument("--before", type=Path, help="another checkout to run the app rows with")
    ap.add_argument("--only", action="append", choices=sorted(SHORT_NAMES),
                    help="models by short name (instead of --models; may be repeated)")
    ap.add_argument("--cold-bytecode", action="store_true",
                    help="no bytecode cache: every process compiles our modules from source")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    names = [SHORT_NAMES[o] for o in args.only] if args.only else args.models.split(",")
    models = [MODELS / m for m in names]
    missing = [m for m in models if not m.exists()]
    if missing:
        print(f"missing {', '.join(map(str, missing))}: run benchmarks/make_big_models.py "
              "--only nasnet --only cond100k", file=sys.stderr)
        return 2
    roots = {"ours": ROOT}
    if args.before:
        roots["before"] = args.before.resolve()
    global PYCACHE
    cache = None if args.cold_bytecode else tempfile.TemporaryDirectory(prefix="bench_pyc_")
    PYCACHE = cache.name if cache else None
    try:
        return _run(args, models, roots)
    finally:
        if cache:
            cache.cleanup()


def _run(args, models, roots) -> int:
    # warm the file cache and the registered-op cache (the first info on a machine asks TF),
    # and the bytecode caches (one untimed run of each process with each checkout's code)
    for m in models:
        run_measured(["-c", INFO, str(m)], ROOT)
        run_measured(["-c", FLOOR, str(m)], ROOT)
        for root in roots.values():
            run_measured(["-c", FIRST_VIEW, str(m)], root)
            run_measured(["-c", INFO, str(m)], root)
    for root in roots.values():
        run_measured(["-c", WINDOW], root)
    rows: dict[tuple, list[dict]] = {}
    loads = [load_average()]
    for rep in range(args.repeat):
        for m in models:
            rows.setdefault(("floor", m.name, "ours"), []).append(
                run_measured(["-c", FLOOR, str(m)], ROOT))
            for who, root in roots.items():
                rows.setdefault(("first view", m.name, who), []).append(
                    run_measured(["-c", FIRST_VIEW, str(m)], root))
            rows.setdefault(("surgeon info", m.name, "ours"), []).append(
                run_measured(["-c", INFO, str(m)], ROOT))
            if "before" in roots:
                rows.setdefault(("surgeon info", m.name, "before"), []).append(
                    run_measured(["-c", INFO, str(m)], roots["before"]))
        for who, root in roots.items():
            rows.setdefault(("usable window", "-", who), []).append(
                run_measured(["-c", WINDOW], root))
        loads.append(load_average())
        print(f"repetition {rep + 1}/{args.repeat} done (load {loads[-1]})", file=sys.stderr)
    write(rows, models, roots, args, loads)
    return 0


def _med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _field(runs: list[dict], name: str) -> str:
    vals = []
    for r in runs:
        parts = r["out"].split()
        if name in parts:
            vals.append(parts[parts.index(name) + 1])
    if not vals:
        return ""
    try:
        return f"{statistics.median(float(v) for v in vals):.2f} s"
    except ValueError:
        return ", ".join(sorted(set(vals)))


def write(rows, models, roots, args, loads) -> None:
    lines = ["# Start-up: whole processes against the floor (issue 12)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with the rest of "
             f"the team's work; Python {platform.python_version()}; offscreen Qt. Load average "
             f"(1/5/15 min) during the run: {loads[0]} at the start, then "
             f"{', '.join(loads[1:])} after each repetition.", "",
             f"Made by `benchmarks/bench_startup.py --repeat {args.repeat}"
             f"{' --cold-bytecode' if args.cold_bytecode else ''}` (models from "
             "`benchmarks/make_big_models.py`). Each figure is the median of "
             f"{args.repeat} fresh processes; one repetition runs every row one after the other, "
             "so the ratios compare processes that saw the same load. "
             + ("No bytecode cache: every process compiled our modules from source."
                if args.cold_bytecode else
                "Modules' bytecode cached as an installed app has it (warmed by one untimed run "
                "of each process)."), ""]
    for m in models:
        floor = rows[("floor", m.name, "ours")]
        ft, fm, fc = _med(floor, "wall"), _med(floor, "rss"), _med(floor, "cpu")
        size = m.stat().st_size / 1e6
        lines += [f"## {m.name} ({size:.1f} MB)", "",
                  "| process | whole process | × floor | CPU | × floor | peak RSS | × floor | "
                  "in-process first view | TensorFlow imported |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|",
                  f"| floor: import QtWidgets + protobuf parse | {ft:.2f} s | 1.00 | {fc:.2f} s | "
                  f"1.00 | {fm:.0f} MB | 1.00 | | |"]
        for what in ("first view", "surgeon info"):
            for who in roots:
                runs = rows.get((what, m.name, who))
                if not runs:
                    continue
                t, r, c = _med(runs, "wall"), _med(runs, "rss"), _med(runs, "cpu")
                label = f"{what} ({who})" if len(roots) > 1 else what
                inproc = _field(runs, "in_process") if what == "first view" else ""
                tf = _field(runs, "tensorflow" if what == "first view" else "tf_imported")
                lines.append(f"| {label} | {t:.2f} s | {t / ft:.2f} | {c:.2f} s | {c / fc:.2f} | "
                             f"{r:.0f} MB | {r / fm:.2f} | {inproc} | {tf} |")
        lines.append("")
    lines += ["## Launch to a usable window (no model)", "",
              "| process | whole process | CPU | peak RSS | TensorFlow imported |",
              "|---|---:|---:|---:|---|"]
    for who in roots:
        runs = rows[("usable window", "-", who)]
        lines.append(f"| main window shown and painted ({who}) | {_med(runs, 'wall'):.2f} s | "
                     f"{_med(runs, 'cpu'):.2f} s | {_med(runs, 'rss'):.0f} MB | "
                     f"{_field(runs, 'tensorflow')} |")
    lines.append("")
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
