"""The page shown when no model is open: recent files and the bundled examples, one click each."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

#: resources/examples next to the package (a source checkout or an editable install).
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "resources" / "examples"
MODEL_SUFFIXES = (".pb", ".pbtxt", ".keras", ".h5")


def bundled_examples(folder: Path = EXAMPLES_DIR) -> list[Path]:
    """Model files and SavedModel folders in ``resources/examples`` (whatever is there)."""
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES:
            out.append(p)
        elif p.is_dir() and (p / "saved_model.pb").exists():
            out.append(p)
    return out


def _human_size(path: Path) -> str:
    try:
        n = path.stat().st_size if path.is_file() else sum(
            f.stat().st_size for f in path.rglob("*") if f.is_file())
    except OSError:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


#: File names that say nothing about the model by themselves (the folder names it).
_UNTELLING_NAMES = {"saved_model.pb", "saved_model.pbtxt", "frozen_graph.pb", "frozen_inference_graph.pb",
                    "model.pb", "graph.pb", "model.keras", "model.h5", "graph.pbtxt", "model.pbtxt"}


#: Folder names that say nothing either: the one above them is shown too.
_UNTELLING_FOLDERS = {"src", "model", "models", "export", "exported", "saved_model", "frozen",
                      "graph", "graphs", "data", "assets", "checkpoints", "ckpt", "output"}


def recent_label(path: str) -> str:
    """The short name shown for a recent file: its name, or ``folder/name`` when the name alone says little
    (``.meta``, ``saved_model.pb``, ``frozen_graph.pb``, ``model.pb`` ...), with the folder above
    when that folder's name says little too (RetinaFace's ``retinaface/src/frozen_graph.pb``; a
    SavedModel's version folder ``1``)."""
    trimmed = path.rstrip("/\\") or path
    name = os.path.basename(trimmed)
    if not name:
        return path
    if name.startswith(".") or name.lower() in _UNTELLING_NAMES:
        folder = os.path.dirname(trimmed)
        parent = os.path.basename(folder)
        if parent:
            label = f"{parent}/{name}"
            above = os.path.basename(os.path.dirname(folder))
            if above and (parent.lower() in _UNTELLING_FOLDERS or parent.isdigit()):
                label = f"{above}/{label}"
            return label
    return name


class StartPage(QWidget):
    """Emits ``open_requested(path)`` when the user picks a recent file, an example, or Open."""

    open_requested = Signal(str)
    browse_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("StartPage")
        self.setStyleSheet(
            "#StartPage { background: #f6f7f9; }"
            "QLabel#title { font-size: 20pt; font-weight: 600; color: #1d232c; }"
            "QLabel#subtitle { color: #55606e; }"
            "QLabel.section { font-size: 11pt; font-weight: 600; color: #1d232c; }"
            "QListWidget { background: white; border: 1px solid #d5dae1; border-radius: 6px; }"
            "QListWidget::item { padding: 6px; }"
            "QListWidget::item:hover { background: #e8f0fe; }")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(48, 36, 48, 36)
        title = QLabel("Graph Surgeon")
        title.setObjectName("title")
        sub = QLabel("Open a frozen GraphDef (.pb, .pbtxt), a SavedModel folder or a Keras file — "
                     "or drop one on this window.")
        sub.setObjectName("subtitle")
        sub.setWordWrap(True)
        outer.addWidget(title)
        outer.addWidget(sub)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open model…")
        self.open_button.clicked.connect(self.browse_requested)
        row.addWidget(self.open_button)
        row.addStretch(1)
        outer.addLayout(row)
        lists = QHBoxLayout()
        self.recent_list = self._section(lists, "Recent files")
        self.examples_list = self._section(lists, "Examples")
        outer.addLayout(lists, 1)
        for lst in (self.recent_list, self.examples_list):
            lst.itemClicked.connect(self._clicked)
            lst.itemActivated.connect(self._clicked)
        self.set_examples(bundled_examples())

    def _section(self, layout, title: str) -> QListWidget:
        box = QVBoxLayout()
        label = QLabel(title)
        label.setProperty("class", "section")
        label.setStyleSheet("font-size: 11pt; font-weight: 600;")
        box.addWidget(label)
        lst = QListWidget()
        lst.setCursor(Qt.PointingHandCursor)
        # a long path keeps its start and its end (the model's folder and name) in view, no
        # sideways scrolling ("/work/…/site-packages/retinaface/src/frozen_graph.pb")
        lst.setTextElideMode(Qt.ElideMiddle)
        lst.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        box.addWidget(lst, 1)
        frame = QFrame()
        frame.setLayout(box)
        layout.addWidget(frame, 1)
        return lst

    def set_recent(self, paths: list[str]) -> None:
        self.recent_list.clear()
        for p in paths:
            item = QListWidgetItem(f"{recent_label(p)}\n{p}")
            item.setData(Qt.UserRole, p)
            item.setToolTip(p)
            if not os.path.exists(p):
                item.setForeground(Qt.gray)
                item.setToolTip(p + " (missing)")
            self.recent_list.addItem(item)
        if not paths:
            item = QListWidgetItem("No recent files yet")
            item.setFlags(Qt.NoItemFlags)
            self.recent_list.addItem(item)

    def set_examples(self, paths: list[Path]) -> None:
        self.examples_list.clear()
        for p in paths:
            item = QListWidgetItem(f"{p.name}\n{_human_size(p)}")
            item.setData(Qt.UserRole, str(p))
            item.setToolTip(str(p))
            self.examples_list.addItem(item)
        if not paths:
            item = QListWidgetItem("No bundled examples (run resources/make_examples.py)")
            item.setFlags(Qt.NoItemFlags)
            self.examples_list.addItem(item)

    def _clicked(self, item: QListWidgetItem) -> None:
        import time
        path = item.data(Qt.UserRole)
        now = time.monotonic()
        last_path, last_t = getattr(self, "_last", (None, 0.0))
        # a click can also count as an activation (platform setting): open once
        if not path or (path == last_path and now - last_t < 0.8):
            return
        self._last = (path, now)
        self.open_requested.emit(path)
