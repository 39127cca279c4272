"""Long work off the GUI thread (napari/Orange style).

Capture what the job needs on the GUI thread, run it in a :class:`Worker` on the global thread
pool, get the result back on the GUI thread through signals. The job receives a
:class:`TaskState` to report progress and to check for cancellation.

    worker = Worker(load_model, path)          # fn(*args, state=TaskState, **kwargs)
    worker.signals.finished.connect(on_done)   # result object
    worker.signals.failed.connect(on_error)    # (message, exception)
    worker.signals.progress.connect(bar.set)   # (fraction 0..1, text)
    worker.start()
    worker.cancel()                            # job sees state.cancelled / raises Cancelled
"""
from __future__ import annotations

import gc
import inspect
import queue
import sys
import threading
import time
import traceback
import warnings
from contextlib import contextmanager

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from ..core.model import tfenv


class Cancelled(Exception):
    """Raised inside a job when the user cancelled it."""


class TaskState:
    """Handed to a job: report progress, check cancellation."""

    def __init__(self, signals: "WorkerSignals"):
        self._signals = signals
        self._cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def progress(self, fraction: float, text: str = "") -> None:
        self.check()
        self._signals.progress.emit(float(fraction), text)


class WorkerSignals(QObject):
    finished = Signal(object)
    failed = Signal(str, object)
    cancelled = Signal()
    progress = Signal(float, str)
    done = Signal()  # always last, whatever happened


class Worker(QRunnable):
    def __init__(self, fn, *args, **kwargs):
        super().__init__()
        self.setAutoDelete(False)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.signals = WorkerSignals()
        self.state = TaskState(self.signals)
        try:
            self._wants_state = "state" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            self._wants_state = False
        self.result = None
        self.error: BaseException | None = None
        self._finished = threading.Event()

    def run(self) -> None:  # noqa: D401 - runs on a pool thread
        try:
            kwargs = dict(self.kwargs)
            if self._wants_state:
                kwargs["state"] = self.state
            with full_collections_deferred():
                self.result = self.fn(*self.args, **kwargs)
            if self.state.cancelled:
                _emit(self.signals.cancelled)
            else:
                _emit(self.signals.finished, self.result)
        except Cancelled:
            _emit(self.signals.cancelled)
        except BaseException as e:  # noqa: BLE001 - report every failure to the GUI
            self.error = e
            msg = str(e) or type(e).__name__
            if not _is_user_error(e):
                msg = f"{type(e).__name__}: {msg}\n\n{traceback.format_exc(limit=6)}"
            _emit(self.signals.failed, msg, e)
        finally:
            # `done` first: whoever waits on _finished may tear the app down at once (the
            # screenshot mode, a script), and an emit racing that teardown crashed (SIGSEGV in
            # QMetaObject::metacall while the interpreter finalized)
            _emit(self.signals.done)
            # The job's inputs (a closure over the graph it worked on) are not needed any more
            # (see _ended: the pool keeps its Worker).
            self.fn = self.args = self.kwargs = None
            self._finished.set()

    def start(self, pool: QThreadPool | None = None) -> "Worker":
        # a job never imports TensorFlow in the pool thread itself: that import runs in a
        # Python thread and the job waits for it (core/model/tfenv.py says why: a crash)
        tfenv.gate_imports()
        _live.add(self)
        self.signals.done.connect(self._ended)
        (pool or QThreadPool.globalInstance()).start(self)
        return self

    def _ended(self) -> None:
        """(GUI thread, after every other signal of the job was delivered.) Let go of what the
        job used and made. The pool keeps every Worker it ran (PySide takes ownership of a
        started QRunnable), and the slots connected to it refer to the caller's objects: its
        result (the preset's intermediate graphs, hundreds of MB on NASNetLarge) and those
        slots' closures (the document) lived on for good."""
        _live.discard(self)
        release_later(self.result, self.error)
        self.result = self.error = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # (a signal nobody connected)
            for s in (self.signals.finished, self.signals.failed, self.signals.cancelled,
                      self.signals.progress, self.signals.done):
                try:
                    s.disconnect()
                except (RuntimeError, TypeError):
                    pass

    def cancel(self) -> None:
        self.state.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended and sent its last signal (for tests and the screenshot
        mode). Its pool thread may still be returning: call ``QThreadPool.waitForDone`` before
        the process exits."""
        return self._finished.wait(timeout)


_live: set[Worker] = set()  # keep workers alive until they end


_graveyard: queue.SimpleQueue = queue.SimpleQueue()
_reaper: list[threading.Thread] = []
_reaper_lock = threading.Lock()


def release_later(*objs) -> None:
    """Drop these references on a background thread, the graphs among them one at a time.

    Freeing a graph (NASNetLarge's 357 MB GraphDef) holds the GIL for 25–50 ms whichever
    thread drops the last reference, and dropping a container frees all it holds in one go:
    the preset's result (a graph per step) freed on the GUI thread stalled it 0.3 s. Here each
    graph found in ``objs`` (in lists, tuples, dicts and objects' attributes, a few levels
    down) is let go of by itself, with a pause after it for the other threads. Nothing is
    changed in the objects but the frames of an exception's traceback, which are cleared (as
    ``traceback.clear_frames`` does); the caller must drop its own references to them."""
    with _reaper_lock:
        if not _reaper or not _reaper[0].is_alive():
            t = threading.Thread(target=_reap, name="release-later", daemon=True)
            _reaper[:] = [t]
            t.start()
    _graveyard.put(objs)


def _reap() -> None:
    while True:
        objs = _graveyard.get()
        frames: list = []
        try:
            parts = _heavy_parts(objs, frames=frames)
        except Exception:   # noqa: BLE001 — (a container changed meanwhile): drop it whole
            parts = []
        # A failed or cancelled job's traceback holds its frames, and they its locals: let go
        # of them a frame at a time (the graphs among them stay in parts, freed below; the
        # cancelled preset's frames freed with its exception in one go held the GIL 157 ms on
        # the 107k-node graph)
        for f in frames:
            try:
                f.clear()
                # (the locals' snapshot that reading f_locals cached on the frame lets go of
                # the cleared ones when read again)
                f.f_locals  # noqa: B018
            except RuntimeError:    # (a frame still running: a generator's; left as it is)
                pass
            time.sleep(0.002)
        del objs, frames    # the light rest goes now; each graph when its part is popped
        while parts:
            last = sys.getrefcount(parts[-1]) <= 2     # (the list's and the call's)
            if last:
                _empty_index(parts[-1])
            parts.pop()
            if last:
                time.sleep(0.03)    # (the GUI thread gets the GIL between two frees)
        if _graveyard.empty():
            _trim_heap()


def _trim_heap() -> None:
    """Give freed heap back to the system (glibc's ``malloc_trim``; nothing elsewhere). glibc
    keeps what a freed graph used (upb's big blocks come from the heap once its mmap threshold
    has grown) and only reuses it: without this, RSS stays 340–650 MB higher per big graph let
    go of. ctypes releases the GIL for the call. Not while TensorFlow's libraries are being
    loaded in the background: trimming then would compete with that import for the heap."""
    if _malloc_trim is not None and not tfenv.background_import_running():
        _malloc_trim(0)


def _find_malloc_trim():
    """libc's ``malloc_trim``, looked up once when this module is imported (on the main
    thread, before any background import: a lookup is a ``dlopen``, which waits for the loader
    lock another thread's ``dlopen`` holds); None where there is none."""
    try:
        import ctypes
        fn = ctypes.CDLL(None).malloc_trim
        fn.argtypes = [ctypes.c_size_t]
        fn.restype = ctypes.c_int
        return fn
    except (OSError, AttributeError):
        return None


_malloc_trim = _find_malloc_trim()


#: Maps of a freed graph index at least this big are emptied entry by entry (_empty_index).
EMPTIED_MAP_SIZE = 4096
#: Long lists of a freed graph index are cut this many items at a time (_empty_index).
EMPTIED_SLICE = 2048


def _empty_index(part) -> None:
    """Empty a graph index nobody else holds map by map, entry by entry: in Python bytecode
    the GIL goes to other threads every few ms, where freeing a 107k-node index's maps (node
    wrappers, consumer lists) in one go held it for tens of ms. Maps it shares with another
    index (:meth:`Graph.sharing_index`) are left alone."""
    state = getattr(part, "__dict__", None)
    if not isinstance(state, dict):
        return
    for name in ("inputs_in_order", "_consumers", "nodes", "order", "_ops"):
        v = state.get(name)
        if isinstance(v, tuple) and len(v) == 2:          # (consumers, entries in order)
            state[name] = None
            entries = v[1]
            del v
            # its list of a tuple per input (300k on the 107k-node graph) freed in one go held
            # the GIL 60-100 ms: a slice at a time, the GIL changes hands in between
            if isinstance(entries, list) and sys.getrefcount(entries) <= 2:
                while entries:
                    del entries[-EMPTIED_SLICE:]
            del entries
            continue
        if not isinstance(v, dict) or len(v) < EMPTIED_MAP_SIZE or sys.getrefcount(v) > 3:
            continue                                       # (the state's, v's, the call's)
        state[name] = None
        popitem = v.popitem
        while v:
            popitem()
        del v, popitem


def _heavy_parts(obj, depth: int = 4, most: int = 64, frames: list | None = None) -> list:
    """Graphs (indexes and GraphDefs) reachable from ``obj`` through containers and object
    attributes (``depth`` levels; containers of at most ``most`` items: a result's graphs sit
    in small tuples, lists and step objects, while walking a group tree's or a delta's big maps
    would keep this thread busy and slow the GUI thread down), and through an exception's
    traceback to its frames' locals, in the order found (each once). The traceback frames
    passed through are appended to ``frames``."""
    from ..core.model.graph import Graph, GraphDef
    out, seen = [], set()
    frames = [] if frames is None else frames

    def walk(o, d):
        if o is None or id(o) in seen:
            return
        seen.add(id(o))
        if isinstance(o, (Graph, GraphDef)):
            out.append(o)
            return
        if d == 0 or isinstance(o, (str, bytes, int, float, type)):
            return
        if isinstance(o, BaseException):
            # a failed or cancelled job's exception: its traceback's frames hold the job's
            # locals (the working copy of the graph, a pass's maps), each walked as deep as
            # the exception; the frames are cleared by the caller before the rest goes
            walk(o.__cause__, d)
            walk(o.__context__, d)
            tb = o.__traceback__
            while tb is not None:
                frames.append(tb.tb_frame)
                walk(tb.tb_frame.f_locals, d)
                tb = tb.tb_next
            return
        if isinstance(o, (list, tuple, set, frozenset)):
            items = list(o) if len(o) <= most else ()
        elif isinstance(o, dict):
            items = list(o.values()) if len(o) <= most else ()
        elif isinstance(getattr(o, "__dict__", None), dict):
            items = list(vars(o).values())
        else:
            return
        for x in items:
            walk(x, d - 1)
    walk(obj, depth)
    return out


def _emit(signal, *args) -> None:
    """Emit from the pool thread; a job that ends after the app tore its objects down (the
    window closed while it ran) has nobody to tell — not an error."""
    try:
        signal.emit(*args)
    except RuntimeError:  # "Signal source has been deleted"
        pass


def freeze_survivors() -> None:
    """Move every object alive now to the cyclic collector's permanent generation.

    A full collection walks every tracked object and holds the GIL meanwhile: with a big
    model open (its graph index, the steps of its history, TensorFlow's modules) that was
    0.1-0.3 s, a stall of the GUI thread whichever thread set it off. Objects alive after a
    model is opened, a step adopted, a pass run, are there to stay; frozen, they are never
    walked again. (Freezing is O(1). A frozen object is still freed when its last reference
    goes; only a reference cycle among frozen objects waits — until the view unfreezes when
    another model is opened. Graphs, deltas and pass results make no cycles.)"""
    import gc
    gc.freeze()


#: gc's third threshold while a job runs (see full_collections_deferred): none automatically
DEFERRED_FULL_THRESHOLD = 1 << 30
_deferring = [0, None]          # (jobs running, the thresholds before the first)
_deferring_lock = threading.Lock()


@contextmanager
def full_collections_deferred():
    """No automatic full (generation-2) collection while the block runs, on any thread: the
    young generations are still collected (short-lived cycles go as before).

    A full collection walks every tracked object not frozen and holds the GIL meanwhile. While
    a job makes a big graph's worth of objects (a pass over the 107k-node graph, its working
    maps), CPython starts one whenever the objects that survived young collections reach a
    quarter of those the last full collection kept — few, since what lives is frozen (see
    :func:`freeze_survivors`): 6-7 per run of the preset there, each walking the pass's
    objects for 50-150 ms in which the GUI thread could not run (the long gaps of
    ``bench_gui_stall.py`` in "passes running", the worker in ``gc_collect_main`` by perf).
    The thresholds come back when the last block running ends (jobs may overlap); the
    collection that was due then finds what the job left, frozen where it lives on."""
    with _deferring_lock:
        if _deferring[0] == 0:
            t = gc.get_threshold()
            _deferring[1] = t
            gc.set_threshold(t[0], t[1], DEFERRED_FULL_THRESHOLD)
        _deferring[0] += 1
    try:
        yield
    finally:
        with _deferring_lock:
            _deferring[0] -= 1
            if _deferring[0] == 0:
                t0, t1, t2 = gc.get_threshold()
                if t2 == DEFERRED_FULL_THRESHOLD:      # (nobody set other thresholds since)
                    gc.set_threshold(t0, t1, _deferring[1][2])
                _deferring[1] = None


def build_quietly(make):
    """``make()`` with the cyclic collector off, then what lives (its result among it) frozen
    before the collector is on again; returns what ``make`` returned.

    For big builds of long-lived objects with no reference cycles (a group tree, an index) on
    a worker: with the collector on, they set off collections that walk them; merely paused
    (``gc_paused``), they are all young when it comes back on, and the first young-generation
    collection walks every one of them in one C call, holding the GIL — on the 107k-node
    graph 0.25 s in which the GUI thread could not run. Frozen (see :func:`freeze_survivors`),
    no collection walks them."""
    import gc

    from ..core.model.graph import gc_paused
    collecting = gc.isenabled()
    with gc_paused():
        try:
            return make()
        finally:
            if collecting:
                freeze_survivors()


def _is_user_error(e: BaseException) -> bool:
    from ..core.model.graph import GraphError
    return isinstance(e, (GraphError, FileExistsError, FileNotFoundError, ValueError, KeyError))
