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

import inspect
import threading
import traceback

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
            self._finished.set()

    def start(self, pool: QThreadPool | None = None) -> "Worker":
        # a job never imports TensorFlow in the pool thread itself: that import runs in a
        # Python thread and the job waits for it (core/model/tfenv.py says why: a crash)
        tfenv.gate_imports()
        _live.add(self)
        self.signals.done.connect(lambda: _live.discard(self))
        (pool or QThreadPool.globalInstance()).start(self)
        return self

    def cancel(self) -> None:
        self.state.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended and sent its last signal (for tests and the screenshot
        mode). Its pool thread may still be returning: call ``QThreadPool.waitForDone`` before
        the process exits."""
        return self._finished.wait(timeout)


_live: set[Worker] = set()  # keep workers alive until they end


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


def _is_user_error(e: BaseException) -> bool:
    from ..core.model.graph import GraphError
    return isinstance(e, (GraphError, FileExistsError, FileNotFoundError, ValueError, KeyError))
