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
    """Records the gaps between 10 ms timer ticks on the GUI thread, per named phase.

    With ``beacon`` (a file path), each tick also writes its time and the phase name there, for
    :func:`watch` (``--why``) to notice a stall from outside the process."""

    def __init__(self, beacon: str | None = None, dump: str | None = None,
                 dump_ms: float = 100):
        from PySide6.QtCore import QTimer
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.phase = "idle"
        self.last = time.perf_counter()
        self.gaps: dict[str, list[float]] = {}
        #: per phase, (resident MB when it ended, peak resident MB during it)
        self.memory: dict[str, tuple[float, float]] = {}
        #: per phase, the longest full (generation 2) garbage collection, in ms, and how many
        self.gc_pauses: dict[str, list[float]] = {}
        import gc
        import threading
        self._gc_start = 0.0
        #: every collection (any generation) over 10 ms: (time, generation, ms, thread)
        self.collections: list[tuple[float, int, float, str]] = []
        #: every gap over dump_ms: (time it ended, ms, phase)
        self.late: list[tuple[float, float, str]] = []
        self._gc_any = 0.0
        self._threading = threading
        gc.callbacks.append(self._gc)
        # --dump: faulthandler's watchdog (a C thread: it needs no GIL) writes every Python
        # thread's stack into the file whenever the heartbeat is dump_ms late, again every
        # dump_ms until it ticks; re-armed at each tick (costs ~0.1 ms), no process stopped
        self._dump = None
        self._dump_s = dump_ms / 1000
        if dump:
            self._dump = open(dump, "w", encoding="utf-8")
        self._beacon = None
        if beacon:
            import mmap
            with open(beacon, "wb") as f:
                f.write(b"\0" * 256)
            self._beacon_file = open(beacon, "r+b")
            self._beacon = mmap.mmap(self._beacon_file.fileno(), 256)

    def _gc(self, event, info):
        gen = info.get("generation")
        if event == "start":
            self._gc_any = time.perf_counter()
        else:
            ms = (time.perf_counter() - self._gc_any) * 1000
            if ms > 10:
                self.collections.append((time.perf_counter(), gen, ms,
                                         self._threading.current_thread().name))
        if gen != 2:
            return
        if event == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_pauses.setdefault(self.phase, []).append(
                (time.perf_counter() - self._gc_start) * 1000)

    def start(self):
        self.last = time.perf_counter()
        self.timer.start()

    #: (phase, file): cProfile the GUI thread during that phase (--profile)
    profile: tuple[str, str] | None = None
    _prof = None

    def set_phase(self, name: str) -> None:
        self._tick()
        if self._prof is not None:
            self._prof.disable()
            self._prof.dump_stats(self.profile[1])
            self._prof = None
        if self.profile and name == self.profile[0]:
            import cProfile
            self._prof = cProfile.Profile()
            self._prof.enable()
        self.memory[self.phase] = memory()   # (what the phase left, its peak)
        reset_peak()
        self.phase = name
        self._tick()
        self.gaps[name].pop()  # (that tick only told the watcher the new phase)

    def _tick(self):
        now = time.perf_counter()
        gap = (now - self.last) * 1000
        self.gaps.setdefault(self.phase, []).append(gap)
        self.last = now
        if gap > self._dump_s * 1000:
            self.late.append((now, gap, self.phase))
            if self._dump is not None:
                self._dump.write(f"==== the heartbeat came back after {gap:.0f} ms "
                                 f"(phase {self.phase!r}, t={now:.3f})\n")
                self._dump.flush()
        if self._dump is not None:
            import faulthandler
            faulthandler.dump_traceback_later(self._dump_s, repeat=True, file=self._dump)
        if self._beacon is not None:
            import struct
            name = self.phase.encode()[:200]
            self._beacon[:256] = struct.pack("dH", time.monotonic(), len(name)) + \
                name.ljust(246, b" ")

    def longest(self, phase: str) -> float:
        return max(self.gaps.get(phase) or [0.0])


def memory() -> tuple[float, float]:
    """(resident MB now, peak resident MB since :func:`reset_peak`) of this process."""
    vals = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    vals[line[:5]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


def reset_peak() -> None:
    """Start the peak resident size (VmHWM) again from the current size (Linux)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass


def watch(pid: int, beacon: str, out: str, stall_ms: float, pyspy: str,
          native: bool = False) -> None:
    """Runs in a child process: while ``pid`` lives, when its heartbeat (``beacon``) is older
    than ``stall_ms``, dump every thread's stack with py-spy (which marks the thread holding
    the GIL) into ``out`` — again and again until the heartbeat comes back."""
    import mmap
    import struct
    import subprocess
    with open(beacon, "r+b") as f, open(out, "a", encoding="utf-8") as log:
        m = mmap.mmap(f.fileno(), 256)
        while os.path.exists(f"/proc/{pid}"):
            t, n = struct.unpack_from("dH", m, 0)
            phase = bytes(m[10:10 + n]).decode(errors="replace")
            age = (time.monotonic() - t) * 1000
            if t and age > stall_ms:
                r = subprocess.run([pyspy, "dump", "--pid", str(pid)]
                                   + (["--native"] if native else []), capture_output=True,
                                   text=True)
                log.write(f"==== phase {phase!r}: heartbeat {age:.0f} ms old\n{r.stdout}\n")
                log.flush()
            else:
                time.sleep(0.004)


def spin_until(app, cond, timeout: float) -> float:
    """Run the Qt event loop (as ``app.exec()`` would) until ``cond()``; checked every 5 ms."""
    from PySide6.QtCore import QEventLoop, QTimer
    t0 = time.perf_counter()
    if cond():
        return 0.0
    loop = QEventLoop()
    timed_out = []

    def check():
        if cond():
            loop.quit()
        elif time.perf_counter() - t0 > timeout:
            timed_out.append(True)
            loop.quit()
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(check)
    timer.start()
    loop.exec()
    timer.stop()
    if timed_out:
        raise TimeoutError("timed out")
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(HERE / "_models" / "nasnet_large.pb"))
    ap.add_argument("--out", default=str(HERE / "results_gui_stall.md"))
    ap.add_argument("--why", metavar="LOG",
                    help="dump every thread's stack (py-spy, marks the GIL holder) into LOG "
                         "whenever the GUI thread stalls > --stall-ms")
    ap.add_argument("--no-compare", action="store_true", help="skip Run Comparison")
    ap.add_argument("--stall-ms", type=float, default=60)
    ap.add_argument("--cold-scratch", action="store_true",
                    help="before each undo/redo/History phase, drop the undo scratch file's "
                         "pages from the page cache (as after a while of other work)")
    ap.add_argument("--pyspy", default="py-spy")
    ap.add_argument("--dump", metavar="LOG",
                    help="faulthandler's watchdog writes every thread's Python stack into LOG "
                         "whenever the GUI thread is --stall-ms late (no process stopped, "
                         "unlike --why); collections over 10 ms are listed at the end")
    ap.add_argument("--switch-interval", type=float, metavar="MS",
                    help="sys.setswitchinterval for the run (how long a thread waits for the "
                         "GIL before it asks the holder to let go)")
    ap.add_argument("--profile", nargs=2, metavar=("PHASE", "FILE"),
                    help="cProfile the GUI thread during the phase named PHASE (as printed in "
                         "the JSON line) into FILE (pstats)")
    ap.add_argument("--native", action="store_true",
                    help="with --why: the stacks' C frames too (py-spy --native)")
    ap.add_argument("--watch", nargs=3, help=argparse.SUPPRESS)  # pid beacon log (child)
    args = ap.parse_args(argv)
    if args.watch:
        watch(int(args.watch[0]), args.watch[1], args.watch[2], args.stall_ms, args.pyspy,
              args.native)
        return 0
    model = Path(args.model)
    if not model.exists():
        print(f"no {model}: run  python benchmarks/make_big_models.py --only nasnet",
              file=sys.stderr)
        return 2
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval / 1000)
    from PySide6.QtWidgets import QApplication, QPushButton

    app = QApplication.instance() or QApplication(sys.argv[:1])
    os.environ.setdefault("GRAPH_SURGEON_SETTINGS_DIR", str(HERE / "_settings"))
    from surgeon_gui.ui.main_window import MainWindow
    w = MainWindow()
    w.persist_settings = False
    w.close_guards.clear()
    w.resize(1600, 1000)
    w.show()
    beacon = None
    if args.why:
        import subprocess
        import tempfile
        beacon = tempfile.mktemp(prefix="stall-beacon-")
    hb = Heartbeat(beacon, args.dump, args.stall_ms)
    if args.profile:
        hb.profile = tuple(args.profile)
    if args.why:
        Path(args.why).write_text("", encoding="utf-8")
        watcher = subprocess.Popen([sys.executable, __file__, "--watch", str(os.getpid()),
                                    beacon, args.why, "--stall-ms", str(args.stall_ms),
                                    "--pyspy", args.pyspy]
                                   + (["--native"] if args.native else []))
    from surgeon_gui.core.model import tfenv
    from surgeon_gui.ui.app import _import_tensorflow_after_first_view
    opened = []
    w.document_opened.connect(opened.append)
    hb.start()
    rows = []

    def settle(seconds=1.0):
        spin_until(app, lambda: not w.view.layout_pending, 600)
        t = time.perf_counter()
        spin_until(app, lambda: time.perf_counter() - t > seconds, seconds + 1)

    # opening the model as the app does (TensorFlow's import starts after the first view)
    hb.set_phase("open")
    t_open = time.perf_counter()
    _import_tensorflow_after_first_view(w, opening=True)
    w.open_model(str(model))
    spin_until(app, lambda: opened and not w.view.layout_pending, 600)
    t_open = time.perf_counter() - t_open
    nodes = len(w.document.graph)
    rows.append(("open: load + first view", "open", f"{t_open:.1f} s"))
    hb.set_phase("open: TensorFlow imported in the background")
    t_tf = time.perf_counter()
    spin_until(app, lambda: tfenv._thread is not None and tfenv.wait_for_tensorflow(0), 600)
    t_tf = time.perf_counter() - t_tf
    settle()
    rows.append(("open: TensorFlow imported in the background",
                 "open: TensorFlow imported in the background", f"{t_tf:.1f} s after the view"))
    doc = w.document
    panel = w.surgery.passes
    panel.select_pass("inference")
    idle = []
    panel.idle.connect(lambda: idle.append(1))

    # the preset, cancelled half-way by the progress dialog's Cancel button
    revision, cursor = doc.revision, doc.cursor
    hb.set_phase("preset: running, then Cancel")
    t0 = time.perf_counter()
    panel.apply_all_button.click()
    spin_until(app, lambda: panel._progress is not None and panel._progress.value() >= 250
               or idle, 1800)
    t_cancel = time.perf_counter()
    if not idle:
        panel._progress.findChild(QPushButton).click()
    spin_until(app, lambda: idle, 1800)
    t_cancel = time.perf_counter() - t_cancel
    settle()
    unchanged = doc.revision == revision and doc.cursor == cursor and len(doc.steps) == 0
    rows.append(("preset: running, then Cancel", "preset: running, then Cancel",
                 f"cancelled {t_cancel:.1f} s after the click; document "
                 f"{'unchanged' if unchanged else 'CHANGED'}"))

    # the preset, from the Passes panel; the adoption of its steps (on the GUI thread, when the
    # worker is done) is a phase of its own
    real_record = panel._record

    def record(*a, **k):
        hb.set_phase("preset (steps adopted, view redrawn)")
        return real_record(*a, **k)
    panel._record = record
    idle.clear()
    hb.set_phase("preset (passes running)")
    t0 = time.perf_counter()
    panel.apply_all_button.click()
    spin_until(app, lambda: idle, 1800)
    t_preset = time.perf_counter() - t0
    settle()
    panel._record = real_record
    steps = w.undo_stack.count()
    rows.append(("preset: passes running (worker)", "preset (passes running)",
                 f"{t_preset:.1f} s, {steps} steps"))
    rows.append(("preset: steps adopted, view redrawn", "preset (steps adopted, view redrawn)",
                 f"{len(w.document.graph)} nodes after"))

    # Run Comparison (original vs current, the panel's defaults)
    if not args.no_compare:
        cp = w.compare_panel
        cp.runs.setValue(1)
        cp.warmup.setValue(0)
        ended = []
        cp.finished.connect(lambda *a: ended.append(a))
        name = "Run Comparison (original vs current)"
        hb.set_phase(name)
        t0 = time.perf_counter()
        cp.run()
        spin_until(app, lambda: ended, 1800)
        t_cmp = time.perf_counter() - t0
        settle()
        res = ended[0][0]
        rows.append((name, name, f"{t_cmp:.1f} s, "
                     + ("error: " + ended[0][1][:60] if res is None else "done")))
    def cold():
        if args.cold_scratch:
            hb.set_phase("scratch file dropped")   # (the fsync is not the GUI's stall)
            from surgeon_gui.core.history.delta import DEFAULT_STORE
            f = DEFAULT_STORE._file
            if f is not None:
                os.fsync(f.fileno())
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    for name, action in (("Ctrl+Z (undo one step)", w.undo_action),
                         ("Ctrl+Shift+Z (redo it)", w.redo_action)):
        cold()
        hb.set_phase(name)
        action.trigger()
        settle()
        rows.append((name, name, ""))
    name = "History: jump to Opened model"
    cold()
    import gc
    import weakref
    before_jump = weakref.ref(w.document.graph)
    hb.set_phase(name)
    w.surgery.history.setCurrentIndex(w.surgery.history.model().index(0, 0))
    settle()
    hb.set_phase("end")
    gc.collect()   # (not in the jump's phase: a full collection is the bench's, not the app's)
    rows.append((name, name, f"{steps} steps undone; the graph before "
                 + ("freed" if before_jump() is None else "STILL ALIVE")))
    hb.timer.stop()
    if args.dump:
        import faulthandler
        faulthandler.cancel_dump_traceback_later()
        with open(args.dump, "a", encoding="utf-8") as f:
            f.write("\n==== late heartbeats (time, ms, phase)\n")
            for t, ms, phase in hb.late:
                f.write(f"t={t:.3f} {ms:.0f} ms {phase}\n")
            f.write("==== collections over 10 ms (time it ended, generation, ms, thread)\n")
            for t, gen, ms, th in hb.collections:
                f.write(f"t={t:.3f} gen {gen} {ms:.0f} ms {th}\n")
    if args.why:
        watcher.terminate()
        os.unlink(beacon)

    lines = [f"# GUI-thread stalls on {model.name} ({nodes:,} nodes, opened in {t_open:.1f} s)",
             "",
             f"`python benchmarks/bench_gui_stall.py` — a {TICK_MS} ms QTimer heartbeat on the "
             "GUI thread; longest gap between two ticks per phase (the GUI thread was busy for "
             f"about that minus {TICK_MS} ms). Platform: "
             f"{os.environ.get('QT_QPA_PLATFORM') or 'xcb'}, {os.cpu_count()} cores shared.",
             f"Load (uptime) at the end: {os.getloadavg()[0]:.1f}. Full GCs: the number of "
             "generation-2 collections in the phase and the longest (any thread).",
             "RSS: the process's resident size when the phase ended, and its peak during the "
             "phase (MB).",
             "", "| phase | longest gap | ticks | full GCs | RSS after / peak | notes |",
             "|---|---:|---:|---:|---:|---|"]
    for label, phase, note in rows:
        gcs = hb.gc_pauses.get(phase, [])
        gcs = f"{len(gcs)}, longest {max(gcs):.0f} ms" if gcs else "0"
        rss, peak = hb.memory.get(phase, (0.0, 0.0))
        lines.append(f"| {label} | {hb.longest(phase):.0f} ms | {len(hb.gaps.get(phase, []))} "
                     f"| {gcs} | {rss:.0f} / {peak:.0f} | {note} |")
    text = "\n".join(lines) + "\n"
    print(text)
    print(json.dumps({phase: round(hb.longest(phase)) for _, phase, _ in rows}))
    print(json.dumps({phase: [round(x) for x in hb.memory.get(phase, (0, 0))]
                      for _, phase, _ in rows}))
    # when each late tick came (time.perf_counter(), CLOCK_MONOTONIC: `perf record -k mono`)
    print("late:", json.dumps([(round(t, 4), round(ms), ph) for t, ms, ph in hb.late]))
    print("collections over 10 ms (time, generation, ms, thread):",
          json.dumps([(round(t, 4), g, round(ms), th) for t, g, ms, th in hb.collections]))
    Path(args.out).write_text(text, encoding="utf-8")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
