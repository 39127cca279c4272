"""Signals can be emitted any number of times without eating references to True/False
(PySide6 6.12 on Python 3.11 crashed after a few thousand emits; see ui/_pyside_refcount_fix)."""
import sys
import threading

import surgeon_gui.ui  # noqa: F401 - installs the workaround
from PySide6.QtCore import QObject, Signal


class Emitter(QObject):
    progress = Signal(float, str)
    done = Signal()


def test_emit_and_disconnect_keep_bool_refcounts(qapp):
    e = Emitter()
    seen = []
    e.progress.connect(lambda f, t: seen.append(f))
    before = (sys.getrefcount(True), sys.getrefcount(False))
    for i in range(20000):
        e.progress.emit(i / 20000, "x")
        e.done.emit()

    def slot():
        pass
    for _ in range(500):
        e.done.connect(slot)
        e.done.disconnect(slot)
    assert len(seen) == 20000
    assert (sys.getrefcount(True), sys.getrefcount(False)) == before


def test_emits_from_a_worker_thread(qapp, qtbot):
    e = Emitter()
    got = []
    e.progress.connect(lambda f, t: got.append(f))
    before = sys.getrefcount(True)

    def work():
        for i in range(5000):
            e.progress.emit(float(i), "")
    t = threading.Thread(target=work)
    t.start()
    t.join()
    qtbot.waitUntil(lambda: len(got) == 5000, timeout=10000)
    assert abs(sys.getrefcount(True) - before) < 50   # without the fix: -5000
