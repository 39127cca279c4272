"""Work around a reference-count bug in PySide6 6.12: ``SignalInstance.emit()`` and
``SignalInstance.disconnect()`` return ``True``/``False`` without a new reference.

On Python < 3.12 (where ``True`` and ``False`` are not immortal) every emit from Python takes
one reference away from ``True``; after a few thousand emits (a background job reports
progress, the view emits selection changes...) the interpreter aborts with
"bool_dealloc: deallocating True or False" or crashes at a random place. Found while
stress-testing the comparison panel's worker (pure PySide6 reproduction: emit a Signal 10,000
times in a loop).

The bug is measured at import, and only if it is present the two methods are wrapped to add the
missing reference, so a fixed PySide6 is left alone (no leak either way).
"""
from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


class _Probe(QObject):
    fired = Signal()


def _bool_refs() -> int:
    return sys.getrefcount(True) + sys.getrefcount(False)


def _loses_refs(call, n: int = 16) -> bool:
    before = _bool_refs()
    for _ in range(n):
        call()
    return _bool_refs() <= before - n


def _slot() -> None:
    pass


def _add_missing_bool_ref(cls, name: str) -> None:
    """Wrap ``cls.name`` so the True/False it returns gets the reference it lacks."""
    original = getattr(cls, name)

    def wrapper(self, *args):
        result = original(self, *args)
        if result is True or result is False:
            _incref(result)
        return result
    wrapper.__doc__ = original.__doc__
    wrapper.__name__ = name
    setattr(cls, name, wrapper)


def install() -> list[str]:
    """Patch what leaks; returns the names of the patched methods (empty when none leaks)."""
    if sys.version_info >= (3, 12):
        return []  # immortal True/False: the missing reference cannot hurt
    probe = _Probe()
    patched = []
    if _loses_refs(probe.fired.emit):
        _add_missing_bool_ref(SignalInstance, "emit")
        patched.append("emit")

    def connect_disconnect():
        probe.fired.connect(_slot)
        probe.fired.disconnect(_slot)
    if _loses_refs(connect_disconnect):
        _add_missing_bool_ref(SignalInstance, "disconnect")
        patched.append("disconnect")
    return patched


def _none_refs_lost(n: int = 64) -> bool:
    from PySide6.QtGui import QColor
    color = QColor(0, 0, 0)
    before = sys.getrefcount(None)
    for _ in range(n):
        color.setAlpha(1)  # any method returning void
    return sys.getrefcount(None) <= before - n


def pin_none() -> bool:
    """The same bug for ``None``: every call of a Qt method that returns ``void`` (setPen,
    drawRect, setAlpha...) takes one reference away from ``None``. ``None`` starts with some
    100,000 references, so a window painting a big graph aborted within seconds ("none_dealloc:
    deallocating None"). No wrapper can cover every void method, so when the loss is measured,
    ``None`` gets 2**60 extra references once: it can then never reach zero, as on Python 3.12+
    where it is immortal. Returns True when applied."""
    if sys.version_info >= (3, 12) or not _none_refs_lost():
        return False
    # ob_refcnt is the first field of every PyObject (a Py_ssize_t) in release builds.
    refcnt = ctypes.c_ssize_t.from_address(id(None))
    refcnt.value += 1 << 60
    return True


PATCHED = install()
if pin_none():
    PATCHED.append("None")
