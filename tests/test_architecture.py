"""The architecture, checked: core stays free of Qt (napari-style boundary), and core's layers
import only downwards (see ARCHITECTURE.md).

Layers, bottom to top: ``model`` < ``passes`` < ``history`` < ``running`` < ``viewmodel``.
A module may import from its own layer and the layers below it, never above. ``ui`` and ``cli``
sit on top and may import any of core; core never imports ``ui`` or ``cli``.
"""
import ast
import pathlib
import subprocess
import sys

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "surgeon_gui"
CORE = PKG / "core"
LAYERS = ["model", "passes", "history", "running", "viewmodel"]
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "shiboken6")


def _imports(path: pathlib.Path):
    """(line, absolute module name) for every import in ``path``, relative ones resolved."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
                if not node.module:  # from . import x → the submodules named
                    for a in node.names:
                        yield node.lineno, f"{mod}.{a.name}"
                    continue
                yield node.lineno, mod
            elif node.module:
                yield node.lineno, node.module


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] == ["surgeon_gui", "core"] and len(parts) > 2:
        return parts[2]
    return None


def test_core_is_only_layer_folders():
    loose = sorted(p.name for p in CORE.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules outside a layer folder: {loose}"
    folders = sorted(p.name for p in CORE.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert folders == sorted(LAYERS)


def test_core_sources_never_import_qt_ui_or_cli():
    offenders = []
    for path in CORE.rglob("*.py"):
        for line, mod in _imports(path):
            if mod.split(".")[0] in QT_MODULES or mod.startswith(("surgeon_gui.ui", "surgeon_gui.cli")):
                offenders.append(f"{path.relative_to(PKG)}:{line} imports {mod}")
    assert not offenders, offenders


def test_core_layers_import_only_downwards():
    offenders = []
    for path in CORE.rglob("*.py"):
        own = _layer_of(".".join(path.relative_to(PKG.parent).with_suffix("").parts))
        if own is None:
            continue
        for line, mod in _imports(path):
            target = _layer_of(mod)
            if target in LAYERS and LAYERS.index(target) > LAYERS.index(own):
                offenders.append(f"{path.relative_to(PKG)}:{line}: {own} imports {target} ({mod})")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("rule_breaker,expected", [
    ("from ..history.document import Document", "passes imports history"),
    ("from PySide6.QtCore import QObject", "PySide6"),
])
def test_the_layer_check_catches_a_violation(tmp_path, monkeypatch, rule_breaker, expected):
    """The checks above can fail: a planted upward or Qt import is reported."""
    fake_pkg = tmp_path / "surgeon_gui"
    (fake_pkg / "core" / "passes").mkdir(parents=True)
    bad = fake_pkg / "core" / "passes" / "bad.py"
    bad.write_text(rule_breaker + "\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", fake_pkg)
    monkeypatch.setattr(sys.modules[__name__], "CORE", fake_pkg / "core")
    check = (test_core_layers_import_only_downwards if "history" in rule_breaker
             else test_core_sources_never_import_qt_ui_or_cli)
    with pytest.raises(AssertionError, match=expected):
        check()


def test_importing_core_loads_no_qt():
    code = ("import sys, surgeon_gui.core.model.graph, surgeon_gui.core.model.io, "
            "surgeon_gui.core.passes.pipeline, surgeon_gui.core.history.document, "
            "surgeon_gui.core.viewmodel.layout; "
            "print([m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
