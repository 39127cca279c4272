"""Importing TensorFlow: quietly, only when needed, and in the background for the app.

TensorFlow's C++ side prints absl/oneDNN lines straight to file descriptor 2 while it is
imported, before any Python logging setting can act; a user of ``surgeon`` or of
``surgeon-gui --screenshot`` should see only our one-line messages (:func:`quiet_tensorflow`).

Nothing up to the first view needs TensorFlow's runtime (the protos come from :mod:`.protos`),
and importing it takes 2-4 s, so the app imports it in a background thread once the window is
up (:func:`import_in_background`). Whatever needs TensorFlow then waits for that import to end:
while it runs, an ``import tensorflow...`` (or ``keras``) statement in any other thread first
waits for the background import to finish, then imports as usual. Without that wait two
threads would take Python's per-module import locks in opposite orders (``tensorflow`` and
``tensorflow.python.framework.tensor_util``, say) and one of them would fail with a
``_DeadlockError``.

TensorFlow must never be imported for the first time in a Qt pool thread (:func:`gate_imports`).
Its pybind11 modules, when the first of them loads, remember the loading thread's Python thread
state in a thread-local slot (pybind11's ``get_internals``). A ``QThreadPool`` thread gets a
fresh thread state for every job (PySide's ``PyGILState_Ensure``/``Release`` around ``run``),
so once that job ends the slot points at freed memory, and the next job on the same pool thread
that makes pybind11 take the GIL (a TensorFlow call that raises: ``import_graph_def`` asking
for a missing ``_class`` attribute, say) hangs or segfaults. A Python thread keeps one thread
state for its whole life, so the import runs in :func:`import_in_background`'s thread (or the
main thread), and a pool thread that wants TensorFlow waits for it.
"""
from __future__ import annotations

import builtins
import gc
import os
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def quiet_tensorflow(debug: bool = False) -> None:
    """Import TensorFlow with its start-up chatter (absl/oneDNN lines on fd 2) silenced."""
    if "tensorflow" in sys.modules:
        quiet_python_logs()
        return
    if debug:
        import tensorflow  # noqa: F401
        quiet_python_logs()
        return
    from .startup_lines import restore_fd2, silence_fd2
    saved = silence_fd2()
    try:
        import tensorflow  # noqa: F401
    finally:
        restore_fd2(saved)
    quiet_python_logs()


def quiet_python_logs() -> None:
    import logging
    import warnings
    warnings.filterwarnings("ignore")
    try:
        import absl.logging
        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


# ---------------------------------------------------------------------- background import
_WAIT_FOR = ("tensorflow", "keras", "tf_keras", "tensorboard")
_state = threading.Lock()
_done = threading.Event()
_thread: threading.Thread | None = None
_error: BaseException | None = None
#: what ``builtins.__import__`` was when the waiting hook went in (PySide6 installs its own)
_next_import = builtins.__import__


def _needs_runtime(name: str) -> bool:
    if not name.startswith(_WAIT_FOR):
        return False
    root, _, rest = name.partition(".")
    if root not in _WAIT_FOR:  # tensorflow_io, kerastuner ...: not ours to wait for
        return False
    # TensorFlow's protos are already imported without the runtime (model/protos.py)
    return not (root == "tensorflow" and rest.startswith("core"))


def _import_waiting(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and not _done.is_set() and _needs_runtime(name):
        wait_if_gated()  # the first to want TensorFlow starts the one import
    return _next_import(name, globals, locals, fromlist, level)


def wait_if_gated() -> None:
    """What an ``import tensorflow`` statement does once :func:`gate_imports` ran, for code that
    imports TensorFlow's modules with ``importlib.import_module`` (which does not go through
    ``builtins.__import__``, so the hook never sees it): start the one background import if
    none runs and wait for it, unless this is that import's thread. Without it, constant
    evaluation's first use of TensorFlow's C API (:mod:`.tfc`) in a pass job imported TensorFlow
    in the Qt pool thread, and a later job on that thread segfaulted in ``import_graph_def``."""
    if _gated and not _done.is_set() and threading.current_thread() is not _thread:
        import_in_background()
        _done.wait()


#: gate_imports() or import_in_background() has put the waiting hook in
_gated = False


def _install_hook() -> None:
    global _next_import, _gated
    _gated = True
    if builtins.__import__ is not _import_waiting:
        _next_import = builtins.__import__
        builtins.__import__ = _import_waiting


def _remove_hook() -> None:
    # only when nobody hooked in after us; otherwise ours stays, passing every import on
    if builtins.__import__ is _import_waiting:
        builtins.__import__ = _next_import


#: TensorFlow's big extension module; its dlopen (relocations, static op registration) is
#: most of the import's longest C call.
_BIG_EXTENSIONS = ("python/_pywrap_tensorflow_internal.so",)


def _preload_libraries() -> None:
    """dlopen TensorFlow's big shared library with the GIL released.

    Python's import of an extension module calls dlopen holding the GIL: for
    ``_pywrap_tensorflow_internal.so`` (which pulls in libtensorflow_cc) that is 0.3-1 s
    during which no other Python thread — the GUI thread included — can run. Loaded first
    through libc's ``dlopen`` called via ctypes (a foreign call releases the GIL), with the
    flags the import will use, the import's own dlopen then finds the library loaded and
    only runs the module's init. Nothing happens when anything is missing."""
    try:
        import ctypes
        import importlib.util
        spec = importlib.util.find_spec("tensorflow")
        if spec is None or not spec.submodule_search_locations:
            return
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
        dlopen.restype = ctypes.c_void_p
        dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
        for root in spec.submodule_search_locations:
            for rel in _BIG_EXTENSIONS:
                path = os.path.join(root, rel)
                if os.path.exists(path):
                    dlopen(os.fsencode(path), sys.getdlopenflags())
    except (OSError, AttributeError, ImportError, ValueError):
        pass


def _run_import() -> None:
    global _error
    # The import makes about a million Python objects that live as long as the process. Left
    # to the cyclic collector, they set off full collections while they are made and every
    # full collection after walks them again: 0.1-0.3 s each, holding the GIL, so the GUI
    # thread stalls that long. No automatic collection during the import, and its objects
    # go to the permanent generation after it (gc.freeze: moved, never walked again).
    collecting = gc.isenabled()
    gc.disable()
    from .startup_lines import hold_tf_startup_lines
    try:
        # TF_CPP_MIN_LOG_LEVEL does not reach its start-up notices (TF 2.21): held and dropped
        with hold_tf_startup_lines():
            _preload_libraries()
            import tensorflow  # noqa: F401
        quiet_python_logs()
    except BaseException as e:  # noqa: BLE001 - kept; the next import says it again
        _error = e
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
        _remove_hook()
        _done.set()


def import_in_background() -> threading.Thread | None:
    """Start importing TensorFlow in a daemon thread, once; None when it is imported already.

    Its C++ start-up notices are held back and dropped (:mod:`.startup_lines`: what other
    threads print meanwhile is delayed, not lost); ``TF_CPP_MIN_LOG_LEVEL=2``, set on import of
    this module, keeps TensorFlow's later info and warning lines out.
    """
    global _thread
    with _state:
        if _thread is not None:
            return _thread
        if "tensorflow" in sys.modules:
            _done.set()
            _remove_hook()
            return None
        _install_hook()
        _thread = threading.Thread(target=_run_import, name="import-tensorflow", daemon=True)
        _thread.start()
        return _thread


def gate_imports() -> None:
    """From now on until TensorFlow is imported, an ``import tensorflow...`` in any thread
    starts (once) the import in :func:`import_in_background`'s Python thread and waits for it.

    The app calls this before its first worker job: a job (loading a SavedModel, a pass
    preview's constant evaluation...) must not import TensorFlow in a Qt pool thread (see the
    module's docstring: a later job on that thread would crash).
    """
    with _state:
        if _thread is not None or "tensorflow" in sys.modules:
            return  # importing or imported already: the hook is (or was) in place
        _install_hook()


def background_import_running() -> bool:
    return _thread is not None and not _done.is_set()


def wait_for_tensorflow(timeout: float | None = None) -> bool:
    """Wait for a background import (if one was started); True when none is running."""
    if _thread is None:
        return True
    return _done.wait(timeout)
