"""How long does the GUI thread stall while the window works on a big model? (issue 11.3)

    python benchmarks/bench_gui_stall.py [--model benchmarks/_models/nasnet_large.pb]

Opens the model in the real main window, then drives it as a user would: Passes ▸ preset ▸
Apply all, then Ctrl+Z, Ctrl+Shift+Z and a History jump back to "Opened model". A QTimer
heartbeat fires every 10 ms on the GUI thread and records the gap between its ticks: a gap of
g ms means the GUI thread could not run anything (paint, react to Cancel) for about g − 10 ms.
Prints the longest gap per phase and writes them to ``benchmarks/results_gui_stall.md``.

The model comes from ``benchmarks/make_big_models.py --only nasnet`` (NASNetLarge, 350 MB).
Runs offscreen unless ``QT_QPA_PLATFORM``/``DISPLAY`` say otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

TICK_MS = 10


class Heartbeat:
    """Records the gaps between 10 ms timer ticks on the GUI thread, per named phase."""

    def __init__(self):
        from PySide6.QtCore import QTimer
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.phase = "idle"
        self.last = time.perf_counter()
        self.gaps: dict[str, list[float]] = {}

    def start(self):
        self.last = time.perf_counter()
        self.timer.start()

    def set_phase(self, name: str) -> None:
        self._tick()
        self.phase = name

    def _tick(self):
        now = time.perf_counter()
        self.gaps.setdefault(self.phase, []).append((now - self.last) * 1000)
        self.last = now

    def longest(self, phase: str) -> float:
        return max(self.gaps.get(phase) or [0.0])


def spin_until(app, cond, timeout: float) -> float:
    t0 = time.perf_counter()
    while not cond():
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("timed out")
        app.processEvents()
        time.sleep(0.002)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(HERE / "_models" / "nasnet_large.pb"))
    ap.add_argument("--out", default=str(HERE / "results_gui_stall.md"))
    args = ap.parse_args(argv)
    model = Path(args.model)
    if not model.exists():
        print(f"no {model}: run  python benchmarks/make_big_models.py --only nasnet",
              file=sys.stderr)
        return 2
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    os.environ.setdefault("GRAPH_SURGEON_SETTINGS_DIR", str(HERE / "_settings"))
    from surgeon_gui.ui.main_window import MainWindow
    w = MainWindow()
    w.persist_settings = False
    w.close_guards.clear()
    w.resize(1600, 1000)
    w.show()
    hb = Heartbeat()
    opened = []
    w.document_opened.connect(opened.append)
    hb.start()
    hb.set_phase("open")
    t_open = time.perf_counter()
    w.open_model(str(model))
    spin_until(app, lambda: opened and not w.view.layout_pending, 600)
    t_open = time.perf_counter() - t_open
    nodes = len(w.document.graph)

    def settle(seconds=1.0):
        spin_until(app, lambda: not w.view.layout_pending, 600)
        t = time.perf_counter()
        spin_until(app, lambda: time.perf_counter() - t > seconds, seconds + 1)

    settle()
    rows = []
    # the preset, from the Passes panel
    panel = w.surgery.passes
    panel.select_pass("inference")
    idle = []
    panel.idle.connect(lambda: idle.append(1))
    hb.set_phase("preset (passes running)")
    t0 = time.perf_counter()
    panel.apply_all_button.click()
    spin_until(app, lambda: idle, 1800)
    t_preset = time.perf_counter() - t0
    hb.set_phase("preset (steps adopted, view redrawn)")
    settle()
    steps = w.undo_stack.count()
    rows.append(("preset: passes running (worker)", "preset (passes running)",
                 f"{t_preset:.1f} s, {steps} steps"))
    rows.append(("preset: steps adopted, view redrawn", "preset (steps adopted, view redrawn)",
                 f"{len(w.document.graph)} nodes after"))
    for name, action in (("Ctrl+Z (undo one step)", w.undo_action),
                         ("Ctrl+Shift+Z (redo it)", w.redo_action)):
        hb.set_phase(name)
        action.trigger()
        settle()
        rows.append((name, name, ""))
    name = "History: jump to Opened model"
    hb.set_phase(name)
    w.surgery.history.setCurrentIndex(w.surgery.history.model().index(0, 0))
    settle()
    rows.append((name, name, f"{steps} steps undone"))
    hb.set_phase("end")
    hb.timer.stop()

    lines = [f"# GUI-thread stalls on {model.name} ({nodes:,} nodes, opened in {t_open:.1f} s)",
             "",
             f"`python benchmarks/bench_gui_stall.py` — a {TICK_MS} ms QTimer heartbeat on the "
             "GUI thread; longest gap between two ticks per phase (the GUI thread was busy for "
             f"about that minus {TICK_MS} ms). Platform: "
             f"{os.environ.get('QT_QPA_PLATFORM') or 'xcb'}, {os.cpu_count()} cores shared.",
             "", "| phase | longest gap | ticks | notes |", "|---|---:|---:|---|"]
    for label, phase, note in rows:
        lines.append(f"| {label} | {hb.longest(phase):.0f} ms | {len(hb.gaps.get(phase, []))} "
                     f"| {note} |")
    text = "\n".join(lines) + "\n"
    print(text)
    print(json.dumps({phase: round(hb.longest(phase)) for _, phase, _ in rows}))
    Path(args.out).write_text(text, encoding="utf-8")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
