"""Plugs the surgery workflow into the main window: passes, diff and history panels, manual edits
from the view (context menu, Delete key), Save / Save As, recipe export and the CLI command, and
the "unsaved changes" questions.

The main window calls :func:`install_surgery_panels` once. What it uses from the window is its
public API: ``document``, ``undo_stack``, ``view``, ``add_panel(...)``, ``document_changed``,
``close_guards``, ``file_menu``/``save_anchor``/``edit_menu``, ``add_recent``.

Every question and file dialog goes through :class:`Asker` (``controller.ask``), so tests replace
it with scripted answers instead of clicking through modal dialogs.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QInputDialog,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QUndoView,
    QVBoxLayout,
)

from ..core.history.recipe import recipe_of
from ..core.history.edits import (
    INLINE_LIMIT,
    EditRefused,
    attr_kind,
    load_value,
    value_spec,
)
from ..core.model.graph import GraphError
from ..core.model.io import save_graph
from . import style
from .commands import EditCommand, applied_commands, push_step
from .diff_panel import DiffPanel
from .passes_panel import PassesPanel

SCOPE_PREFIX = "scope:"
ATTR_TYPES = ["s", "i", "f", "b", "type", "shape", "list_i", "list_f", "list_s", "list_b",
              "list_type", "list_shape", "tensor"]


# ---------------------------------------------------------------------- dialogs
class Asker:
    """Every question the surgery workflow asks the user (replace in tests)."""

    def __init__(self, parent=None):
        self.parent = parent

    def question(self, title: str, text: str, choices: list[str]) -> str:
        """One of ``choices`` ("save", "discard", "cancel", "overwrite", "yes", "no")."""
        box = QMessageBox(self.parent)
        box.setWindowTitle(title)
        box.setText(text)
        buttons = {}
        roles = {"save": QMessageBox.Save, "discard": QMessageBox.Discard,
                 "cancel": QMessageBox.Cancel, "yes": QMessageBox.Yes, "no": QMessageBox.No,
                 "overwrite": QMessageBox.Yes}
        for c in choices:
            b = box.addButton(roles[c])
            if c == "overwrite":
                b.setText("Overwrite")
            buttons[b] = c
        # Enter gives the answer that neither loses work nor risks anything: "save", else
        # "cancel", else "no" (not Qt's pick, the first accepting button: "Overwrite", or "Yes"
        # to running code from a file)
        safe = next((c for c in ("save", "cancel", "no") if c in choices), None)
        if safe is not None:
            box.setDefaultButton(next(b for b, c in buttons.items() if c == safe))
        box.exec()
        return buttons.get(box.clickedButton(), "cancel")

    def save_path(self, title: str, start: str, filters: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self.parent, title, start, filters,
                                              options=QFileDialog.DontConfirmOverwrite)
        return path

    def open_path(self, title: str, filters: str, start: str = "") -> str:
        path, _ = QFileDialog.getOpenFileName(self.parent, title, start, filters)
        return path

    def text(self, title: str, label: str, default: str = "") -> str | None:
        text, ok = QInputDialog.getText(self.parent, title, label, QLineEdit.Normal, default)
        return text if ok else None

    def choose(self, title: str, label: str, items: list[str]) -> str | None:
        item, ok = QInputDialog.getItem(self.parent, title, label, items, 0, False)
        return item if ok else None

    def attr_edit(self, node, graph) -> dict | None:
        dlg = AttrDialog(node, self.parent)
        return dlg.result_args() if dlg.exec() == QDialog.Accepted else None

    def input_edit(self, node, graph) -> dict | None:
        dlg = InputDialog(node, graph, self.parent)
        return dlg.result_args() if dlg.exec() == QDialog.Accepted else None

    def warning(self, title: str, text: str) -> None:
        QMessageBox.warning(self.parent, title, text)

    def show_text(self, title: str, text: str) -> None:
        TextDialog(title, text, self.parent).exec()


class AttrDialog(QDialog):
    """Choose an attribute (or name a new one), its type, and a value (JSON or plain text)."""

    def __init__(self, node, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Set attribute of {node.name}")
        self.node = node
        self.attr = QComboBox()
        self.attr.setEditable(True)
        self.attr.addItems(sorted(node.attr))
        self.kind = QComboBox()
        self.kind.addItems(ATTR_TYPES)
        self.value = QLineEdit()
        self.value.setPlaceholderText('e.g. 3, 0.5, true, "VALID", [1, 2, 2, 1], float32')
        form = QFormLayout(self)
        form.addRow("Attribute", self.attr)
        form.addRow("Type", self.kind)
        form.addRow("Value", self.value)
        bb = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        form.addRow(bb)
        self.attr.currentTextChanged.connect(self._attr_chosen)
        self._attr_chosen(self.attr.currentText())

    def _attr_chosen(self, name: str) -> None:
        if name in self.node.attr:
            k = attr_kind(self.node.attr[name])
            if k in ATTR_TYPES:
                self.kind.setCurrentText(k)
            from ..core.model.values import render_attr
            self.value.setText(render_attr(self.node.attr[name]))

    def result_args(self) -> dict:
        return {"node": self.node.name, "attr": self.attr.currentText().strip(),
                "type": self.kind.currentText(),
                "value": parse_attr_text(self.kind.currentText(), self.value.text())}


def parse_attr_text(kind: str, text: str):
    """A typed value from what the user typed (JSON where it parses; strings and dtype names
    as typed)."""
    text = text.strip()
    if kind in ("s", "type"):
        return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text
    if kind == "list_type" and not text.startswith("["):
        return [t.strip() for t in text.split(",") if t.strip()]
    try:
        return json.loads(text.replace("'", '"')) if kind != "b" else \
            {"true": True, "false": False}.get(text.lower(), text)
    except json.JSONDecodeError:
        if kind in ("shape", "list_shape", "list_i", "list_f"):
            try:
                return json.loads("[" + text.strip("()[]") + "]")
            except json.JSONDecodeError:
                pass
        return text


class InputDialog(QDialog):
    """Choose which data input of a node to change, and the producer and port it reads."""

    def __init__(self, node, graph, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Set input of {node.name}")
        self.node = node
        data = [t for t in node.input if not t.startswith("^")]
        self.index = QSpinBox()
        self.index.setRange(0, max(0, len(data) - 1))
        self.producer = QLineEdit()
        from PySide6.QtWidgets import QCompleter
        comp = QCompleter(sorted(graph.nodes), self)
        comp.setCaseSensitivity(Qt.CaseInsensitive)
        comp.setFilterMode(Qt.MatchContains)
        self.producer.setCompleter(comp)
        self.port = QSpinBox()
        self.port.setRange(0, 999)
        form = QFormLayout(self)
        form.addRow("Input index", self.index)
        form.addRow("Producer", self.producer)
        form.addRow("Output port", self.port)
        bb = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        form.addRow(bb)
        self.index.valueChanged.connect(lambda i: self._show(i, data))
        self._show(0, data)

    def _show(self, i, data):
        from ..core.model.graph import parse_input
        if i < len(data):
            ref = parse_input(data[i])
            self.producer.setText(ref.node)
            self.port.setValue(ref.port)

    def result_args(self) -> dict:
        p, port = self.producer.text().strip(), self.port.value()
        return {"node": self.node.name, "index": self.index.value(),
                "source": p if port == 0 else f"{p}:{port}"}


class TextDialog(QDialog):
    def __init__(self, title, text, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        lay = QVBoxLayout(self)
        edit = QPlainTextEdit(text)
        edit.setObjectName("text")
        edit.setReadOnly(True)
        edit.setMinimumWidth(640)
        # a command in a monospace font, never wrapped (Unicode line breaking would cut paths
        # after each "/"): it scrolls sideways and copies as one line
        edit.setFont(style.monospace_font())
        edit.setLineWrapMode(QPlainTextEdit.NoWrap)
        lay.addWidget(edit)
        copy = QPushButton("Copy")
        copy.clicked.connect(lambda: QApplication.clipboard().setText(text))
        bb = QDialogButtonBox(QDialogButtonBox.Close)
        bb.addButton(copy, QDialogButtonBox.ActionRole)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)


# ---------------------------------------------------------------------- controller
@dataclass
class SurgeryPanels:
    controller: "SurgeryController"
    passes: PassesPanel
    diff: DiffPanel
    history: QUndoView


class SurgeryController(QObject):
    """Owns the surgery actions of one main window."""

    MODEL_FILTERS = "Frozen graph (*.pb);;Text graph (*.pbtxt)"

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.ask = Asker(window)
        #: Paths the user already agreed to overwrite (or saved to) in this session.
        self._confirmed: set[str] = set()
        self.last_message = ""
        self.actions: dict[str, QAction] = {}
        #: The recipe file last exported for this model (the CLI command names it).
        self.last_recipe_path: str | None = None

    # ------------------------------------------------------------------ basics
    @property
    def document(self):
        return self.window.document

    @property
    def stack(self) -> QUndoStack:
        return self.window.undo_stack

    def message(self, text: str, warn: bool = False) -> None:
        self.last_message = text
        self.window.statusBar().showMessage(text, 8000)
        if warn:
            self.ask.warning("Graph Surgeon", text)

    def document_changed(self, doc) -> None:
        self._confirmed.clear()
        self.last_recipe_path = None
        self._update_actions()

    def _update_actions(self) -> None:
        has = self.document is not None
        for key in ("save", "save_as", "export_recipe", "show_cli", "delete"):
            if key in self.actions:
                self.actions[key].setEnabled(has)

    # ------------------------------------------------------------------ edits
    def edit(self, kind: str, args: dict) -> EditCommand | None:
        """Check and apply one manual edit as an undo step; a refusal is reported, not raised."""
        doc = self.document
        if doc is None:
            return None
        try:
            cmd = EditCommand.compute(doc, kind, args)
            push_step(self.stack, cmd)
        except GraphError as e:
            self.message(f"Refused: {e.problem}", warn=True)
            return None
        except Exception as e:  # noqa: BLE001 - never a traceback for a bad edit
            self.message(f"Refused: {type(e).__name__}: {e}", warn=True)
            return None
        self.message(cmd.text())
        return cmd

    def delete_nodes(self, names: list[str], mode: str = "bypass") -> bool:
        """Delete several nodes as one step of the history (all checked first; nothing on a
        refusal); the recipe records one edit per node."""
        doc = self.document
        names = [n for n in names if not n.startswith(SCOPE_PREFIX)]
        if doc is None or not names:
            return False
        if len(names) == 1:
            return self.edit("remove_node", {"node": names[0], "mode": mode}) is not None
        try:
            cmd = EditCommand.compute_many(
                doc, [("remove_node", {"node": n, "mode": mode}) for n in names],
                f"Delete {len(names)} nodes")
            push_step(self.stack, cmd)
        except GraphError as e:
            self.message(f"Refused: {e.problem}", warn=True)
            return False
        self.message(cmd.text())
        return True

    def delete_selected(self) -> None:
        view = self.window.view
        names = [n for n in view.selected_nodes() if not n.startswith(SCOPE_PREFIX)]
        if not names:
            self.message("Select a node to delete.")
            return
        self.delete_nodes(names, "bypass")

    def context_menu(self, menu: QMenu, names: list[str]) -> None:
        """View hook: manual edits for the clicked nodes."""
        doc = self.document
        nodes = [n for n in names if not n.startswith(SCOPE_PREFIX) and doc is not None
                 and n in doc.graph.nodes]
        if not nodes:
            return
        sub = menu.addMenu("Edit graph")
        sub.setObjectName("edit_graph_menu")
        sub.addAction("Delete (readers take its input)\tDel",
                      lambda: self.delete_nodes(nodes, "bypass"))
        sub.addAction("Delete with its dependents", lambda: self.delete_nodes(nodes, "cascade"))
        if len(nodes) == 1:
            n = nodes[0]
            node = doc.graph.nodes[n]
            sub.addAction("Rename…", lambda: self.rename(n))
            sub.addAction("Set attribute…", lambda: self.set_attr(n))
            if any(not t.startswith("^") for t in node.input):
                sub.addAction("Set input…", lambda: self.set_input(n))
            sub.addAction("Make graph output", lambda: self.edit("make_output", {"node": n}))
            if node.op in ("Placeholder", "PlaceholderV2", "PlaceholderWithDefault"):
                sub.addAction("Turn into Const…", lambda: self.placeholder_to_const(n))
            if node.op == "Const":
                sub.addAction("Replace value from .npy…", lambda: self.replace_const(n))
        sub.addAction("Cut graph to " + ("this output" if len(nodes) == 1 else
                                         f"these {len(nodes)} outputs"),
                      lambda: self.edit("cut_to_outputs", {"outputs": list(nodes)}))

    def rename(self, name: str) -> None:
        new = self.ask.text("Rename node", f"New name for {name}:", name)
        if new and new != name:
            self.edit("rename_node", {"node": name, "new_name": new.strip()})

    def set_attr(self, name: str) -> None:
        doc = self.document
        args = self.ask.attr_edit(doc.graph.nodes[name], doc.graph)
        if args:
            self.edit("set_attr", args)

    def set_input(self, name: str) -> None:
        doc = self.document
        args = self.ask.input_edit(doc.graph.nodes[name], doc.graph)
        if args:
            self.edit("set_input", args)

    def _ask_value(self, title: str, allow_typed: bool = True) -> dict | None:
        src = "Load from .npy…"
        if allow_typed:
            src = self.ask.choose(title, "Value from:", ["Type a value…", "Load from .npy…"])
        if src is None:
            return None
        if src.startswith("Load"):
            path = self.ask.open_path(title, "NumPy array (*.npy)")
            if not path:
                return None
            try:
                load_value({"npy": path})
                return value_spec(None, path)
            except (EditRefused, OSError) as e:
                self.message(f"Refused: {getattr(e, 'problem', e)}", warn=True)
                return None
        text = self.ask.text(title, "Value (a number or a nested list, e.g. [[1, 2], [3, 4]]):")
        if text is None:
            return None
        try:
            arr = load_value(json.loads(text))
        except (json.JSONDecodeError, EditRefused) as e:
            self.message(f"Refused: not a value: {getattr(e, 'problem', e)}", warn=True)
            return None
        if arr.size > INLINE_LIMIT:
            self.message(f"Refused: {arr.size} values are too many to type; use a .npy file",
                         warn=True)
            return None
        return value_spec(np.asarray(arr))

    def placeholder_to_const(self, name: str) -> None:
        spec = self._ask_value(f"Turn {name} into a Const")
        if spec is not None:
            self.edit("placeholder_to_const", {"node": name, "value": spec})

    def replace_const(self, name: str) -> None:
        spec = self._ask_value(f"Replace the value of {name}", allow_typed=False)
        if spec is not None:
            self.edit("replace_const", {"node": name, "value": spec})

    # ------------------------------------------------------------------ saving
    def _confirm_overwrite(self, path: str) -> bool:
        p = str(Path(path).resolve())
        if not Path(p).exists() or p in self._confirmed:
            return True
        answer = self.ask.question("Overwrite?", f"{path} exists. Overwrite it?",
                                   ["overwrite", "cancel"])
        if answer == "overwrite":
            self._confirmed.add(p)
            return True
        return False

    def save(self) -> bool:
        """Save to the document's file when it is a .pb/.pbtxt, else ask for one."""
        doc = self.document
        if doc is None:
            return False
        path = doc.path
        if not path or Path(path).is_dir() or Path(path).suffix.lower() not in (
                ".pb", ".pbtxt", ".txt"):
            return self.save_as()
        return self._write(path)

    def save_as(self, path: str | None = None) -> bool:
        doc = self.document
        if doc is None:
            return False
        if path is None:
            path = self.ask.save_path("Save graph as", self.default_save_path(),
                                      self.MODEL_FILTERS)
            if not path:
                return False
        if Path(path).suffix.lower() not in (".pb", ".pbtxt", ".txt"):
            path += ".pb"
        return self._write(path)

    def default_save_path(self) -> str:
        """Where Save As starts: the file last saved to; else ``<model>_optimized.pb`` next
        to the model opened (never the opened file itself, nor inside a SavedModel folder)."""
        doc = self.document
        if doc.path and doc.path != doc.source_path:
            return doc.path
        src = Path((doc.source_path or "model").rstrip("/\\"))
        return str(src.parent / f"{model_stem(src)}_optimized.pb")

    def _write(self, path: str) -> bool:
        doc = self.document
        if not self._confirm_overwrite(path):
            self.message("Not saved.")
            return False
        try:
            save_graph(doc.graph_def, path, overwrite=True)
        except (GraphError, OSError) as e:
            self.message(f"Cannot save {path}: {getattr(e, 'problem', None) or e}", warn=True)
            return False
        self._confirmed.add(str(Path(path).resolve()))
        doc.mark_saved(str(path))
        self.window.add_recent(str(path))
        self.message(f"Saved {path}")
        return True

    def maybe_save(self, what: str = "closing") -> bool:
        """Ask about unsaved changes; True when it is fine to go on."""
        doc = self.document
        if doc is None or not doc.dirty:
            return True
        name = Path(doc.path).name if doc.path else "the graph"
        answer = self.ask.question("Unsaved changes",
                                   f"{name} has unsaved changes. Save them before {what}?",
                                   ["save", "discard", "cancel"])
        if answer == "save":
            return self.save()
        return answer == "discard"

    def close_guard(self, what: str = "closing") -> bool:
        """For ``window.close_guards``: False keeps the window (and the model) open."""
        return self.maybe_save(what)

    # ------------------------------------------------------------------ recipe
    def recipe(self):
        doc = self.document
        return recipe_of(doc) if doc is not None else None

    def export_recipe(self, path: str | None = None) -> str | None:
        rec = self.recipe()
        if rec is None:
            return None
        if not rec.steps:
            self.message("Nothing to export: no step applied yet.")
            return None
        if path is None:
            # next to the result when it was saved elsewhere, else next to the model opened
            doc = self.document
            base = doc.path if doc.path and doc.path != doc.source_path else doc.source_path
            base = Path(base or "model")
            start = str(base.parent / f"{model_stem(base)}.recipe.json")
            path = self.ask.save_path("Export recipe", start, "Recipe (*.json)")
            if not path:
                return None
        if not self._confirm_overwrite(path):
            return None
        try:
            rec.save(path, overwrite=True)
        except OSError as e:
            self.message(f"Cannot write {path}: {e}", warn=True)
            return None
        self._confirmed.add(str(Path(path).resolve()))
        self.last_recipe_path = path
        self.message(f"Recipe written to {path}")
        return path

    def cli_command(self) -> str:
        """``surgeon optimize`` replaying this session on the file the model was opened from
        (into the file it was last saved to, or ``<model>_optimized.pb``)."""
        rec = self.recipe()
        doc = self.document
        if rec is None:
            return ""
        src = doc.source_path or "MODEL.pb"
        if doc.path and doc.path != doc.source_path:
            out = doc.path
        elif doc.source_path:
            src = Path(doc.source_path.rstrip("/"))
            out = str(src.parent / f"{model_stem(src)}_optimized.pb")
        else:
            out = "OUT.pb"
        return rec.cli_command(src, out, self.last_recipe_path,
                               getattr(doc, "checkpoint", None))

    def show_cli(self) -> None:
        cmd = self.cli_command()
        if not cmd:
            self.message("Open a model first.")
            return
        note = ""
        if "--recipe" in cmd and not self.last_recipe_path:
            note = ("\n\n# The steps need a recipe file (parameters, selected matches or hand "
                    "edits):\n# use File ▸ Export Recipe… and put its path in place of "
                    "RECIPE.json.")
        self.ask.show_text("Equivalent command line", one_option_a_line(cmd) + note)


def one_option_a_line(cmd: str) -> str:
    """A ``surgeon optimize IN OUT --flag value ...`` command with each option on its own
    line (shell continuations): the whole command shows in the dialog, no path is cut (musicnn's
    one line ran off the dialog's edge after the .meta path)."""
    parts = shlex.split(cmd)
    lines = [" ".join(map(shlex.quote, parts[:4]))]
    i = 4
    while i < len(parts):
        takes_value = parts[i].startswith("--") and i + 1 < len(parts) \
            and not parts[i + 1].startswith("--")
        lines.append(" ".join(map(shlex.quote, parts[i:i + 1 + takes_value])))
        i += 1 + takes_value
    return " \\\n    ".join(lines)


def model_stem(path: Path) -> str:
    """The name files made from the model at ``path`` start with: its stem, or its folder's
    name when the file name is only a suffix (a TF1 Saver's ``.meta``: "MTT_musicnn", not
    ".meta", which made the suggested files hidden ones)."""
    if path.name.startswith(".") and path.suffix == "":
        return path.parent.name or "model"
    return path.stem if path.suffix else path.name


# ---------------------------------------------------------------------- installation
def install_surgery_panels(window) -> SurgeryPanels:
    """Create the surgery panels and actions on ``window`` (see the module docstring)."""
    ctl = SurgeryController(window)
    passes = PassesPanel(window.view, window.undo_stack)
    diff = DiffPanel(window.view)
    history = QUndoView(window.undo_stack)
    history.setObjectName("history_view")
    window.add_panel(passes, "Passes", Qt.LeftDockWidgetArea, "PassesDock")
    window.add_panel(diff, "Diff", Qt.RightDockWidgetArea, "DiffDock")
    window.add_panel(history, "History", Qt.LeftDockWidgetArea, "HistoryDock")
    diff.message.connect(lambda text: window.statusBar().showMessage(text, 5000))

    def act(key, text, slot, shortcut=None, tip=""):
        a = QAction(text, window)
        a.setObjectName("action_" + key)
        if shortcut is not None:
            a.setShortcut(shortcut)
        a.setToolTip(tip or text)
        a.triggered.connect(lambda *_: slot())
        ctl.actions[key] = a
        return a

    save = act("save", "&Save", ctl.save, QKeySequence.Save, "Save the graph (.pb or .pbtxt)")
    save_as = act("save_as", "Save &As…", ctl.save_as, QKeySequence.SaveAs)
    export = act("export_recipe", "Export &Recipe…", ctl.export_recipe, None,
                 "Write the steps taken as a recipe that `surgeon optimize --recipe` replays")
    cli = act("show_cli", "Show CLI Command…", ctl.show_cli)
    file_menu, anchor = window.file_menu, window.save_anchor
    for a in (save, save_as, None, export, cli):
        if a is None:
            file_menu.insertSeparator(anchor)
        else:
            file_menu.insertAction(anchor, a)

    delete = act("delete", "Delete Node", ctl.delete_selected, QKeySequence.Delete,
                 "Delete the selected nodes; their readers take their first input")
    delete.setShortcutContext(Qt.WidgetWithChildrenShortcut)
    window.view.addAction(delete)
    window.edit_menu.addSeparator()
    window.edit_menu.addAction(delete)

    window.view.context_menu_hooks.append(ctl.context_menu)
    # Closing the window or the model, and opening another one, over unsaved changes asks
    # first (the window asks its guards).
    window.close_guards.append(ctl.close_guard)

    def document_changed(doc):
        ctl.document_changed(doc)
        passes.set_document(doc)
        diff.set_document(doc)
        history.setEmptyLabel("Opened model" if doc is not None else "No model open")
    window.document_changed.connect(document_changed)
    document_changed(window.document)
    panels = SurgeryPanels(ctl, passes, diff, history)
    window.surgery = panels
    return panels


__all__ = ["install_surgery_panels", "SurgeryController", "Asker", "parse_attr_text",
           "applied_commands"]
