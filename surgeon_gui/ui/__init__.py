"""PySide6 user interface of Graph Surgeon (Qt code lives only here)."""
# PySide6 6.12 on Python < 3.12 loses a reference to True/False on every Signal.emit() and
# crashes after a few thousand emits; patched (only if present) before any UI code runs.
from . import _pyside_refcount_fix  # noqa: F401
