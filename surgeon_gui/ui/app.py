"""``surgeon-gui``: the desktop app, and its scripted screenshot mode.

    surgeon-gui [MODEL] [--signature NAME] [--screenshot OUT.png] [--apply PASSES]
                [--expand-all] [--compare]

``--signature`` picks the signature of a SavedModel folder (without it the app asks when the
folder has several; a scripted ``--screenshot`` run takes ``serving_default``, else the first).

With ``--screenshot`` the app loads MODEL, applies PASSES (comma-separated pass ids or
``inference``) through :func:`apply_passes_for_script`, expands every group if asked, runs the
comparison if asked (``window.run_compare_for_script(done)``, provided by the comparison
panel), waits until the view is laid out, writes the window as a PNG and exits 0 — or exits
non-zero with one clear line on stderr. Works with ``QT_QPA_PLATFORM=offscreen``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

SCRIPT_TIMEOUT_S = 900


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="surgeon-gui",
        description="Graph Surgeon: look inside a TensorFlow graph and operate on it.")
    p.add_argument("model", nargs="?", help=".pb, .pbtxt, SavedModel folder or Keras file")
    p.add_argument("--signature", metavar="NAME",
                   help="SavedModel signature to open (default: ask when there are several)")
    p.add_argument("--screenshot", metavar="OUT.png",
                   help="render the window once laid out to this PNG and exit")
    p.add_argument("--apply", metavar="PASSES",
                   help="comma-separated pass ids (or 'inference') to apply after loading")
    p.add_argument("--expand-all", action="store_true", help="expand every group")
    p.add_argument("--compare", action="store_true",
                   help="run the before/after comparison (with --screenshot: wait for it)")
    p.add_argument("--force", action="store_true",
                   help="let --screenshot replace an existing file")
    p.add_argument("--trust-code", action="store_true",
                   help="open a model that runs code when loaded (a Keras Lambda or custom "
                        "object, a SavedModel initializer) without asking; only for files you "
                        "trust")
    p.add_argument("--size", default="1400x900", metavar="WxH",
                   help="window size for --screenshot (default 1400x900)")
    return p


def apply_passes_for_script(window, pass_ids: list[str]) -> list:
    """Apply passes to the open document for ``--apply`` through the undo stack, as the Passes
    panel does: one undo command per pass that changed something (``inference`` runs the preset
    until nothing changes), so the screenshot shows the last step's diff marks and the History
    panel lists every step. Returns the commands pushed.
    """
    from .commands import apply_passes
    return apply_passes(window.undo_stack, window.document, pass_ids)


class _ScriptRun:
    """Drives a MainWindow through load → passes → expand → compare → screenshot."""

    def __init__(self, args, app):
        from PySide6.QtCore import QEventLoop, QTimer

        from .main_window import MainWindow
        self.args, self.app = args, app
        self.code: int | None = None
        self.loop = QEventLoop()
        w, _, h = args.size.partition("x")
        self.win = MainWindow()
        self.win.persist_settings = False
        self.win.ask_before_running_code = False  # a script never asks: --trust-code or refuse
        self.win.resize(int(w or 1400), int(h or 900))
        self.win.show()
        self.win.document_opened.connect(self._opened)
        self.timer = QTimer(singleShot=True, interval=SCRIPT_TIMEOUT_S * 1000,
                            timeout=lambda: self.fail(f"timed out after {SCRIPT_TIMEOUT_S} s"))
        self.t0 = time.perf_counter()

    def run(self) -> int:
        from PySide6.QtCore import QTimer
        self.win.load_failed.connect(self._load_failed)
        self.win.open_model(self.args.model, signature=self.args.signature or _default_signature(
            self.args.model), trust_code=self.args.trust_code)
        self.timer.start()
        if self.code is None:
            self.loop.exec()
        self.timer.stop()
        _wait_for_workers()
        self.win.close_guards.clear()  # a scripted run never asks about unsaved changes
        self.win.close()
        self.win.deleteLater()
        return self.code or 0

    def fail(self, message: str) -> None:
        if self.code is None:
            first = message.strip().splitlines()[0] if message.strip() else "failed"
            print(f"surgeon-gui: error: {first}", file=sys.stderr)
            self.code = 1
            self.loop.quit()

    def _load_failed(self, message: str) -> None:
        self.fail(message)

    def _opened(self, doc) -> None:
        from PySide6.QtCore import QTimer
        QTimer.singleShot(0, self._after_open)

    def _after_open(self) -> None:
        view = self.win.view
        try:
            if self.args.apply:
                from ..core.passes import expand_pass_ids
                ids = [i for i in self.args.apply.split(",") if i.strip()]
                expand_pass_ids(ids)  # unknown ids: a clear error before anything runs
                module = sys.modules[__name__]
                module.apply_passes_for_script(self.win, [i.strip() for i in ids])
            if self.args.expand_all:
                view.expand_all()
        except Exception as e:  # noqa: BLE001 - one clear line, exit 1
            self.fail(f"{type(e).__name__}: {e}" if not str(e) else str(e))
            return
        self._when_laid_out(self._compare)

    def _when_laid_out(self, then) -> None:
        view = self.win.view
        if view.layout_pending:
            view.layout_finished.connect(lambda: self._when_laid_out(then), type=_single())
        else:
            then()

    def _compare(self) -> None:
        if not self.args.compare:
            self._shoot()
            return
        hook = getattr(self.win, "run_compare_for_script", None)
        if hook is None:
            self.fail("--compare needs the comparison panel, which this build does not have")
            return

        def done(error: str | None = None) -> None:
            if error:
                self.fail(f"comparison failed: {error}")
            else:
                self._when_laid_out(self._shoot)
        try:
            hook(done)
        except Exception as e:  # noqa: BLE001
            self.fail(f"comparison failed: {e}")

    def _shoot(self) -> None:
        from PySide6.QtCore import QTimer
        view = self.win.view
        view.show_readable_overview()
        # let pending paints (minimap, legend) happen before grabbing
        QTimer.singleShot(250, self._write)

    def _write(self) -> None:
        if self.code is not None:
            return
        self.app.processEvents()
        out = self.args.screenshot
        folder = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(folder):
            self.fail(f"{out}: the folder {folder} does not exist")
            return
        img = self.win.grab()
        data = _png_bytes(img)
        if data is None:
            self.fail(f"{out}: could not make the screenshot")
            return
        from ..core.model.files import write_file
        try:
            write_file(out, data, overwrite=self.args.force, inputs=[self.args.model])
        except OSError as e:
            self.fail(str(e) if isinstance(e, FileExistsError)
                      else f"{out}: cannot write: {e.strerror or e}")
            return
        except Exception as e:  # noqa: BLE001 - WriteRefused: one line
            self.fail(str(e))
            return
        t = self.win.timings
        print(f"surgeon-gui: wrote {out} ({img.width()}×{img.height()}); first view "
              f"{t.get('first_view', 0):.2f} s, total {time.perf_counter() - self.t0:.2f} s")
        self.code = 0
        self.loop.quit()


def _single():
    from PySide6.QtCore import Qt
    return Qt.SingleShotConnection


def _png_bytes(img) -> bytes | None:
    """A QImage/QPixmap as PNG bytes (written through the one write path)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    if img.isNull():
        return None
    raw = QByteArray()
    buf = QBuffer(raw)
    buf.open(QIODevice.WriteOnly)
    ok = img.save(buf, "PNG")
    buf.close()
    return bytes(raw.data()) if ok else None


def _wait_for_workers(timeout_ms: int = 30_000) -> None:
    """Let background jobs end before the app and its objects are torn down.

    A failed load emits ``failed`` and then, still on its pool thread, ``done``; a scripted run
    that quits on ``failed`` used to tear down the QApplication while that thread was still
    inside Qt (and Keras/h5py were still releasing the broken file): the SIGSEGV after an empty
    or truncated .keras/.h5. Waiting for the pool first gives the order Qt needs."""
    from PySide6.QtCore import QThreadPool
    QThreadPool.globalInstance().waitForDone(timeout_ms)


def install_exception_hook(window_getter=lambda: None, script: bool = False):
    """Any exception no one caught (in a slot, a timer, a thread) is shown and the app goes
    on: a dialog with the one-line message (details: the traceback), or in a scripted run one
    line on stderr and exit status 1. Returns a function that puts the previous hooks back."""
    import threading
    import traceback

    previous = sys.excepthook
    previous_thread = threading.excepthook
    showing = []

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            return previous(kind, value, tb)
        line = " ".join((str(value) or kind.__name__).split())[:300]
        text = f"{kind.__name__}: {line}" if not getattr(value, "problem", None) else line
        details = "".join(traceback.format_exception(kind, value, tb))
        try:
            win = window_getter()
            if script or win is None:
                print(f"surgeon-gui: error: {text}", file=sys.stderr)
                if script and win is not None and hasattr(win, "_script_fail"):
                    win._script_fail(text)
                return
            if showing:  # one dialog at a time; the rest go to the status bar
                win.statusBar().showMessage(f"Unexpected error: {text}", 15000)
                return
            from PySide6.QtWidgets import QMessageBox
            box = QMessageBox(QMessageBox.Critical, "Unexpected error",
                              f"{text}\n\nThe app keeps running; your model is unchanged "
                              "unless the message says otherwise.", QMessageBox.Ok, win)
            box.setDetailedText(details)
            showing.append(box)
            box.finished.connect(lambda *_: showing.clear())
            box.open()
        except Exception:  # noqa: BLE001 - the hook itself must never fail
            sys.__stderr__.write(details)

    def thread_hook(args):
        hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook

    def restore():
        sys.excepthook = previous
        threading.excepthook = previous_thread
    return restore


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.screenshot and not args.model:
        print("surgeon-gui: error: --screenshot needs a MODEL to open", file=sys.stderr)
        return 2
    if (args.apply or args.expand_all or args.compare) and not args.screenshot and not args.model:
        print("surgeon-gui: error: --apply/--expand-all/--compare need a MODEL", file=sys.stderr)
        return 2
    if args.model and not os.path.exists(args.model):
        print(f"surgeon-gui: error: {args.model}: no such file or folder", file=sys.stderr)
        return 2
    if args.signature:
        problem = _check_signature(args.model, args.signature)
        if problem:
            print(f"surgeon-gui: error: {problem}", file=sys.stderr)
            return 2
    if args.screenshot:
        # A script's stderr carries only our one-line messages: no TensorFlow start-up
        # chatter (TF is imported up front, quietly, only when the run needs it), no
        # offscreen-platform notices.
        if _needs_tensorflow(args):
            from ..core.model.tfenv import quiet_tensorflow
            quiet_tensorflow()
        _drop_platform_notices()
    from PySide6.QtWidgets import QApplication

    from .main_window import APPLICATION, ORGANIZATION
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    if args.screenshot:
        from ..core.model.files import check_destinations
        try:  # before anything loads: an existing file needs --force
            check_destinations([args.screenshot], [args.model], overwrite=args.force,
                               hint="add --force to replace it")
        except Exception as e:  # noqa: BLE001 - OverwriteRefused / WriteRefused: one line
            print(f"surgeon-gui: error: {e}", file=sys.stderr)
            return 2
        run = _ScriptRun(args, app)
        run.win._script_fail = run.fail
        restore = install_exception_hook(lambda: run.win, script=True)
        try:
            return run.run()
        finally:
            restore()
    from .main_window import MainWindow
    # the panels are made after the first frame (the model's first view, when one is opened)
    win = MainWindow(defer_panels=True)
    restore = install_exception_hook(lambda: win if _alive(win) else None)
    win.show()
    _import_tensorflow_after_first_view(win, opening=bool(args.model))
    if args.model:
        if args.apply or args.expand_all or args.compare:
            win.document_opened.connect(lambda doc: _interactive_steps(win, args),
                                        type=_single_shot())
        win.open_model(args.model, signature=args.signature, trust_code=args.trust_code)
    code = app.exec()
    _wait_for_workers()
    restore()
    from ..core.model.tfenv import wait_for_tensorflow
    wait_for_tensorflow()  # never end the interpreter in the middle of TF's import
    return code


def _alive(obj) -> bool:
    import shiboken6
    return shiboken6.isValid(obj)


def _needs_tensorflow(args) -> bool:
    """Whether a scripted run needs TensorFlow's runtime: passes and comparisons do, and so
    does loading anything but a GraphDef file (SavedModel folders and Keras files are frozen
    by TF). Showing a .pb/.pbtxt does not."""
    from ..core.model.io import GRAPHDEF_SUFFIXES
    return bool(args.apply or args.compare or not args.model
                or os.path.isdir(args.model)
                or not args.model.lower().endswith(GRAPHDEF_SUFFIXES))


def _import_tensorflow_after_first_view(win, opening: bool) -> None:
    """Import TensorFlow in a background thread once the first view is up (the window, or
    the model the command line opens), so that what needs it later rarely waits and the
    window never waits for it (core/model/tfenv.py)."""
    from PySide6.QtCore import QTimer

    from ..core.model.tfenv import import_in_background
    started = []
    opened = [not opening]

    def start(*_):
        # after the window's panels are made (MainWindow's defer_panels): their first reads
        # of Qt enums must not overlap the import (see main_window._PAINT)
        if not started and opened[0] and not win.panels_pending:
            started.append(True)
            # after the next paint: the view's first frame goes first
            QTimer.singleShot(50, import_in_background)

    def ended(*_):
        opened[0] = True
        start()
    win.panels_ready.connect(start)
    if opening:
        win.document_opened.connect(ended, type=_single_shot())
        win.load_failed.connect(ended, type=_single_shot())
    else:
        QTimer.singleShot(200, start)


def _check_signature(model: str | None, signature: str) -> str | None:
    """Why ``--signature`` cannot apply to ``model`` (None when it can)."""
    from ..core.model.graph import GraphError
    from ..core.model.io import is_saved_model_dir, saved_model_signatures
    if not model:
        return "--signature needs a MODEL (a SavedModel folder)"
    if not is_saved_model_dir(model):
        return f"--signature applies to a SavedModel folder; {model} is not one"
    try:
        sigs = saved_model_signatures(model)
    except GraphError as e:
        return str(e)
    if signature not in sigs:
        return f"{model}: no signature {signature!r}; it has: {', '.join(sigs) or 'none'}"
    return None


def _default_signature(model: str) -> str | None:
    """A scripted run never asks: None lets the loader take its default signature, but the
    window would ask first, so name the loader's choice here."""
    from ..core.model.graph import GraphError
    from ..core.model.io import is_saved_model_dir, saved_model_signatures
    if not is_saved_model_dir(model):
        return None
    try:
        sigs = saved_model_signatures(model)
    except GraphError:
        return None
    if not sigs:
        return None
    return "serving_default" if "serving_default" in sigs else sigs[0]


def _drop_platform_notices() -> None:
    from PySide6.QtCore import qInstallMessageHandler
    previous = None

    def handler(mode, context, message):
        if "propagateSizeHints" in message:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            sys.stderr.write(message + "\n")
    previous = qInstallMessageHandler(handler)


def _single_shot():
    from PySide6.QtCore import Qt
    return Qt.SingleShotConnection


def _interactive_steps(win, args) -> None:
    """--apply / --expand-all / --compare without --screenshot: do them, report problems in
    the window (the app stays open)."""
    try:
        if args.apply:
            from ..core.passes import expand_pass_ids
            ids = [i.strip() for i in args.apply.split(",") if i.strip()]
            expand_pass_ids(ids)
            sys.modules[__name__].apply_passes_for_script(win, ids)
        if args.expand_all:
            win.view.expand_all()
        if args.compare:
            hook = getattr(win, "run_compare_for_script", None)
            if hook is not None:
                hook(lambda error=None: error and win.show_error("Comparison failed", error))
    except Exception as e:  # noqa: BLE001 - shown, never a crash
        win.show_error("Could not apply the steps", str(e) or type(e).__name__)


if __name__ == "__main__":
    sys.exit(main())
