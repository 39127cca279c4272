"""PySide6 user interface of Graph Surgeon (Qt code lives only here)."""
