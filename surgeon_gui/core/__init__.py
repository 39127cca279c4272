"""Qt-free core of Graph Surgeon: graph model, loading/saving, passes, diff, runner, recipes.

Nothing under this package may import PySide6 (tests/test_architecture.py checks it).
"""
