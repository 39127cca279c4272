"""The main window: the graph view in the centre, dock panels around it, menus, loading.

Extension points for the other panels:

* ``window.add_panel(widget, title, area, object_name) -> QDockWidget`` — docks are listed in
  View ▸ Panels and their placement is saved with the window state.
* ``window.document_changed`` (signal, the Document or None): after a model is opened and
  shown, and after it is closed (None). Panels follow it and let go of the old document.
* ``window.document_opened`` (signal, the new Document) after a model is opened and shown.
* ``window.undo_stack`` — Edit ▸ Undo/Redo are bound to it (cleared when a model is opened).
* ``window.file_menu`` with ``window.save_anchor``: insert Save / Save As before it
  (``file_menu.insertAction(window.save_anchor, action)``); ``window.edit_menu``,
  ``window.view_menu``.
* ``window.needs_model(*actions)``: actions that only make sense with a model open (disabled
  on the start page and after Close, enabled when a model is shown).
* ``window.close_guards``: callables ``guard(what)`` returning False to keep the model open
  (unsaved changes); asked before closing the window or the model and before opening another
  (``what`` says which, e.g. "opening another model").
* :func:`app_settings` — the QSettings every panel should use (tests point it at a temporary
  folder with the ``GRAPH_SURGEON_SETTINGS_DIR`` environment variable).
"""
from __future__ import annotations

import os
import time
from operator import itemgetter
from typing import Callable

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QWidget,
)

from ..core.history.document import Document
from ..core.viewmodel.grouping import GroupTree
from . import help_texts, style
from . import window_layout as layout
from .graph_view import GraphView
from .start_page import StartPage
from .workers import Worker

ORGANIZATION = "GraphSurgeon"
APPLICATION = "Graph Surgeon"
SETTINGS_ENV = "GRAPH_SURGEON_SETTINGS_DIR"
MAX_RECENT = 10
MODEL_FILTER = ("TensorFlow models (*.pb *.pbtxt *.keras *.h5 *.hdf5 *.meta saved_model.pb);;"
                "All files (*)")


def app_settings() -> QSettings:
    """The application's settings (an .ini in ``$GRAPH_SURGEON_SETTINGS_DIR`` when set)."""
    folder = os.environ.get(SETTINGS_ENV)
    if folder:
        os.makedirs(folder, exist_ok=True)
        return QSettings(os.path.join(folder, "GraphSurgeon.ini"), QSettings.IniFormat)
    return QSettings(QSettings.IniFormat, QSettings.UserScope, ORGANIZATION, APPLICATION)


def _imports_tensorflow(path: str, checkpoint: str | None) -> bool:
    """Whether loading ``path`` imports TensorFlow (SavedModels, Keras files, freezing from a
    checkpoint); a GraphDef file alone does not."""
    from ..core.model.io import GRAPHDEF_SUFFIXES
    return bool(checkpoint) or os.path.isdir(path) or \
        not str(path).lower().endswith(GRAPHDEF_SUFFIXES)


def _alive(obj) -> bool:
    """False once the C++ side of a Qt object is deleted (a late worker signal must not touch
    it)."""
    import shiboken6
    return shiboken6.isValid(obj)


def _load_job(path: str, show_constants: bool, state=None, signature: str | None = None,
              checkpoint: str | None = None, outputs: list[str] | None = None,
              trust_code: bool = False):
    """Worker job: load the model, build the document and its groups (all off the GUI thread).

    ``signature`` picks a SavedModel signature (None: the loader's default); the one actually
    frozen is returned last (None for other kinds of model). ``checkpoint`` and ``outputs``
    freeze a graph's variables.
    """
    import gc

    from ..core.model.io import GRAPHDEF_SUFFIXES
    # A GraphDef file: parsing and indexing it make a few hundred thousand objects that live
    # as long as the document and no reference cycles. Left to the cyclic collector, they set
    # off full collections while they are made (each walks them all, holding the GIL: the GUI
    # thread stalls 0.1 s and more). No automatic collection meanwhile; frozen after.
    # (SavedModels and Keras files go through TensorFlow, whose graphs do make cycles.)
    quiet = (not os.path.isdir(path) and str(path).lower().endswith(GRAPHDEF_SUFFIXES)
             and gc.isenabled())
    if quiet:
        gc.disable()
    try:
        return _load(path, state, show_constants, signature, checkpoint, outputs, trust_code)
    finally:
        if quiet:
            gc.freeze()
            gc.enable()


def _load(path, state, show_constants, signature, checkpoint, outputs, trust_code):
    from ..core.model.io import load_model
    t0 = time.perf_counter()
    # The first layout loads igraph's C core (core/viewmodel/layout.py); here it happens on the
    # worker instead of stalling the GUI thread when the first view is drawn.
    from ..core.viewmodel.layout import igraph_core
    try:
        igraph_core()
    except ImportError:
        pass
    from ..core.model.checks import graph_problems
    loaded = load_model(path, signature=signature, checkpoint=checkpoint, outputs=outputs,
                        progress=lambda f, t: state.progress(0.8 * f, t) if state else None,
                        trust_code=trust_code)
    # what TensorFlow would reject, shown after the model opens (TF's own checks only when
    # it is imported already: the first view never waits for it)
    # (the loader has validated its index and refused unknown enums: not done again)
    loaded.notes.extend(PROBLEM_NOTE + p for p in graph_problems(
        loaded.graph_def, graph=loaded.index, enums_checked=True))
    if state:
        state.progress(0.85, "indexing groups")
    doc = Document.from_loaded(loaded)
    # what the first view does not draw (badge labels, hidden nodes' groups) is made after it
    # (MainWindow._complete_tree_later)
    tree = GroupTree(doc.graph, show_constants=show_constants, defer=True)
    if state:
        state.progress(0.95, "laying out")
    # the edges of the default view (their labels read the NodeDefs): made here, while nothing
    # else reads the graph, instead of on the GUI thread (50-60 ms on the 107k-node graph)
    from ..core.model.graph import gc_paused
    with gc_paused():
        expanded = frozenset(k for k in tree.default_expanded() if k in tree.groups)
        visible = (expanded, tree.visible_graph(expanded))
    # (the window offers to freeze these: looked for here, not on the GUI thread)
    from ..core.model.io import variable_nodes
    variables = variable_nodes(doc.graph.graph_def, tree.op_of)
    return (doc, tree, time.perf_counter() - t0, loaded.notes, loaded.signature, visible,
            variables)


#: The built-in panels' docks, in the order the panels add them: (object name, title, area).
#: With ``defer_panels`` the window lays them out empty, so the window looks the same before
#: and after their panels are made (ui/window_layout.py places them by these names).
_PANEL_DOCKS = (
    ("InspectorDock", "Inspector", Qt.RightDockWidgetArea),
    ("SearchDock", "Search", Qt.LeftDockWidgetArea),
    ("CompareDock", "Comparison", Qt.RightDockWidgetArea),
    ("PassesDock", "Passes", Qt.LeftDockWidgetArea),
    ("DiffDock", "Diff", Qt.RightDockWidgetArea),
    ("HistoryDock", "History", Qt.LeftDockWidgetArea),
    ("WorkedDock", "Worked numbers", Qt.RightDockWidgetArea),
)
#: What the deferred panels set on the window (reading one makes them).
_PANEL_ATTRIBUTES = frozenset({"inspection", "compare_panel", "compare_dock", "surgery",
                               "rename_action", "teaching"})
#: The panels are made at the latest this long after a model is shown (ms; a window that
#: paints nothing: on a busy machine the first frame itself can take a second or more).
PANELS_LATEST_MS = 3000

PROBLEM_NOTE = "problem: "
#: The loader's tree is completed this long after the view's first painted frame of the
#: model (ms), and at the latest this long after the model is shown.
TREE_COMPLETION_DELAY_MS = 50
TREE_COMPLETION_LATEST_MS = 400


#: (looked up once: an enum read in the event filter imports on first use, see tfenv)
_PAINT = QEvent.Type.Paint


class _AfterPaint(QObject):
    """Calls ``then()`` once, after the first paint of ``widget`` for which ``ready()`` holds
    (an event filter: the paint itself goes first)."""

    def __init__(self, widget, ready: Callable[[], bool], then: Callable[[], None]):
        super().__init__(widget)
        self.ready, self.then = ready, then
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if self.then is not None and event.type() == _PAINT and self.ready():
            then, self.then = self.then, None
            obj.removeEventFilter(self)
            self.deleteLater()
            then()
        return False


class MainWindow(QMainWindow):
    """Graph Surgeon's main window. ``document`` is the open model (None on the start page)."""

    document_opened = Signal(object)
    #: The open document changed: the new Document, or None when the model was closed.
    document_changed = Signal(object)
    #: Opening a model failed or was cancelled (the message shown to the user).
    load_failed = Signal(str)

    #: The panels are installed (after the first paint when built with ``defer_panels``).
    panels_ready = Signal()

    def __init__(self, parent=None, defer_panels: bool = False):
        """``defer_panels`` (the app's window): the docks are laid out empty and their panels
        (inspector, search, passes, diff, history, comparison, worked numbers, and the menu
        actions that come with them) are made once the first frame is painted: the window's
        or, while a model is loading, its first view's (:meth:`finish_panels`). Reading one
        of the panels' attributes (``surgery``, ``inspection`` ...) makes them at once."""
        super().__init__(parent)
        self._panels_pending = False
        self.setWindowTitle(APPLICATION)
        self.setAcceptDrops(True)
        self.document: Document | None = None
        #: The SavedModel signature the open document was frozen from (None for other kinds).
        self.signature: str | None = None
        self.undo_stack = QUndoStack(self)
        self.close_guards: list[Callable[[str], bool]] = []
        #: False for scripted runs: no recent-file or geometry writes.
        self.persist_settings = True
        #: A file that would run code when opened: ask (False: refuse, as scripted runs do).
        self.ask_before_running_code = True
        self.last_error: str | None = None
        self.timings: dict[str, float] = {}
        self._load_worker: Worker | None = None
        self._load_started = 0.0
        self._docks: list[QDockWidget] = []
        self._layout_restored = False

        self.view = GraphView(self)
        self.start_page = StartPage(self)
        self.start_page.open_requested.connect(self.open_model)
        self.start_page.browse_requested.connect(self.open_dialog)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.start_page)
        self.stack.addWidget(self.view)
        self.setCentralWidget(self.stack)

        self._build_status_bar()
        self._build_menus()
        self._refresh_recent()
        #: object name → an empty dock a deferred panel goes into (see ``add_panel``)
        self._shells: dict[str, QDockWidget] = {}
        if defer_panels:
            for name, title, area in _PANEL_DOCKS:
                self._shells[name] = self.add_panel(QWidget(), title, area, name)
            self._panels_pending = True
            # a menu shows its panels' actions (Save, Find ...) even when opened meanwhile
            for menu in (self.file_menu, self.edit_menu, self.view_menu, self.help_menu):
                menu.aboutToShow.connect(self.finish_panels)
            _AfterPaint(self, lambda: True, self._panels_after_first_paint)
        else:
            self._install_panels()
        # geometry and dock placement last, once every built-in panel's dock exists: a state
        # restored before some docks exist leaves them (and the tab bars of tabbed docks)
        # misplaced
        self._restore_settings()

    # ---- the panels: made in __init__, or after the first frame (``defer_panels``)
    def _install_panels(self) -> None:
        self._install_inspection_panels()
        self._install_compare_panel()
        self._install_surgery_panels()
        self._install_teaching()

    @property
    def panels_pending(self) -> bool:
        """Whether the panels are still to be made (``defer_panels``)."""
        return self._panels_pending

    def finish_panels(self) -> None:
        """Make the deferred panels now (nothing when they are made already). The focus
        stays where it is; :attr:`panels_ready` is emitted."""
        if not self._panels_pending:
            return
        self._panels_pending = False
        focus = QApplication.focusWidget()
        self.setUpdatesEnabled(False)  # one repaint of the filled docks, not one per panel
        try:
            self._install_panels()
        finally:
            self.setUpdatesEnabled(True)
        for shell in self._shells.values():  # (a panel that did not come: an empty dock)
            shell.widget().setEnabled(False)
        self._shells.clear()
        if focus is not None and _alive(focus) and QApplication.focusWidget() is not focus:
            focus.setFocus()
        self.panels_ready.emit()

    def _panels_after_first_paint(self) -> None:
        # while a model loads, its first view goes first (then ``_on_loaded`` calls again)
        if self._panels_pending and self._load_worker is None:
            QTimer.singleShot(0, self.finish_panels)

    def _panels_after_view(self) -> None:
        """After the first painted frame of the model just shown (or a second at the latest:
        a window that paints nothing)."""
        if not self._panels_pending:
            return
        _AfterPaint(self.view.viewport(), lambda: not self.view.layout_pending,
                    lambda: QTimer.singleShot(0, self.finish_panels))
        QTimer.singleShot(PANELS_LATEST_MS, self.finish_panels)

    def __getattr__(self, name: str):
        # (only called when the attribute is missing: a deferred panel read before it is made)
        if name in _PANEL_ATTRIBUTES and self.__dict__.get("_panels_pending"):
            self.finish_panels()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ---- inspection panels (inspector, search, Ctrl+F) — wiring lives in ui/inspection.py
    def _install_inspection_panels(self) -> None:
        from .inspection import install_inspection_panels
        self.inspection = install_inspection_panels(self)
        self.edit_menu.addAction(self.inspection.find_action)
        self.edit_menu.addAction(self.inspection.find_next)
        self.edit_menu.addAction(self.inspection.find_previous)
    # ---- end of inspection panels

    # ---- comparison panel (before/after numbers, latency, per-node drift) — compare_panel.py
    def _install_compare_panel(self) -> None:
        from .compare_panel import install_compare_panel
        self.compare_panel, self.compare_dock = install_compare_panel(self)

    def run_compare_for_script(self, done) -> None:
        """``--compare``: run with the default samples, then ``done(None | error message)``."""
        from .compare_panel import run_compare_for_script
        run_compare_for_script(self.compare_panel, self.compare_dock, done)
    # ---- end of comparison panel

    # ---- surgery panels (passes, diff, history, save, recipe, manual edits) — ui/surgery.py
    def _install_surgery_panels(self) -> None:
        from .surgery import install_surgery_panels
        self.surgery = install_surgery_panels(self)
        self.rename_action = QAction("Re&name Node…", self)
        self.rename_action.setObjectName("actionRenameNode")
        self.rename_action.setShortcut(QKeySequence("F2"))
        self.rename_action.setStatusTip("Rename the selected node")
        self.rename_action.triggered.connect(self._rename_selected)
        self.edit_menu.addAction(self.rename_action)
        self.needs_model(self.rename_action)

    def _rename_selected(self) -> None:
        nodes = [n for n in self.view.selected_nodes() if not n.startswith("scope:")]
        if self.document is None or len(nodes) != 1:
            self.statusBar().showMessage("Select one node to rename (F2)", 4000)
            return
        self.surgery.controller.rename(nodes[0])
    # ---- end of surgery panels

    # ---- teaching (Help ▸ Lessons, File ▸ Export Tutorial, Worked numbers) — ui/teaching.py
    def _install_teaching(self) -> None:
        from .teaching import install_teaching
        self.teaching = install_teaching(self)
    # ---- end of teaching

    # ================================================================== building
    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_loading)
        self.info_label = QLabel()
        sb.addPermanentWidget(self.info_label)
        sb.addPermanentWidget(self.progress_bar)
        sb.addPermanentWidget(self.cancel_button)
        self.progress_bar.hide()
        self.cancel_button.hide()

    def _action(self, menu, text, slot=None, shortcut=None, checkable=False, checked=False,
                tip=None) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                a.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                a.setShortcut(QKeySequence(shortcut))
        if checkable:
            a.setCheckable(True)
            a.setChecked(checked)
            if slot:
                a.toggled.connect(slot)
        elif slot:
            a.triggered.connect(slot)
        if tip:
            a.setStatusTip(tip)
        menu.addAction(a)
        return a

    def _build_menus(self) -> None:
        mb = self.menuBar()
        # ---- File
        self.file_menu = fm = mb.addMenu("&File")
        self.open_action = self._action(fm, "&Open…", self.open_dialog, QKeySequence.Open)
        self.open_folder_action = self._action(
            fm, "Open &SavedModel Folder…", self.open_folder_dialog, "Ctrl+Shift+O",
            tip="Open a SavedModel folder (asks which signature when it has several)")
        self.open_checkpoint_action = self._action(
            fm, "Open with &Checkpoint…", self.open_with_checkpoint_dialog,
            tip="Open a graph saved with its variables and freeze them from a checkpoint")
        self.recent_menu = fm.addMenu("Open &Recent")
        fm.addSeparator()
        #: Save / Save As go before this separator (surgery panel).
        self.save_anchor = fm.addSeparator()
        self.export_png_action = self._action(fm, "Export View as &PNG…",
                                              lambda: self.export_dialog("png"))
        self.export_svg_action = self._action(fm, "Export View as &SVG…",
                                              lambda: self.export_dialog("svg"))
        fm.addSeparator()
        self.close_model_action = self._action(fm, "&Close Model", self.close_model,
                                               QKeySequence.Close)
        #: Enabled only while a model is open (see :meth:`needs_model`).
        self._model_actions: list[QAction] = []
        self.needs_model(self.export_png_action, self.export_svg_action,
                         self.close_model_action)
        self.quit_action = self._action(fm, "&Quit", self.close, QKeySequence.Quit)
        # ---- Edit
        self.edit_menu = em = mb.addMenu("&Edit")
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts([QKeySequence(QKeySequence.Undo)])
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        # No duplicates: the platform's Redo may already be Ctrl+Y, and a key listed twice on
        # one action is an "ambiguous shortcut" that does nothing.
        redo_keys = []
        for k in (QKeySequence(QKeySequence.Redo), QKeySequence("Ctrl+Y"),
                  QKeySequence("Ctrl+Shift+Z")):
            if k not in redo_keys:
                redo_keys.append(k)
        self.redo_action.setShortcuts(redo_keys)
        em.addAction(self.undo_action)
        em.addAction(self.redo_action)
        em.addSeparator()
        # ---- View
        v = self.view
        self.view_menu = vm = mb.addMenu("&View")
        self.needs_model(
            self._action(vm, "Zoom &In", v.zoom_in, [QKeySequence.ZoomIn, "Ctrl+="]),
            self._action(vm, "Zoom &Out", v.zoom_out, QKeySequence.ZoomOut),
            self._action(vm, "&Fit to Window", v.fit, "Ctrl+0"),
            self._action(vm, "Zoom to &Selection", v.zoom_to_selection, "Ctrl+Shift+0"))
        vm.addSeparator()
        self.needs_model(
            self._action(vm, "&Expand All Groups", v.expand_all, "Ctrl+Shift+E"),
            self._action(vm, "&Collapse All Groups", v.collapse_all, "Ctrl+Shift+C"),
            self._action(vm, "Trace &Inputs of Selection", lambda: self._trace("inputs"),
                         "Ctrl+I"),
            self._action(vm, "Trace O&utputs of Selection", lambda: self._trace("outputs"),
                         "Ctrl+Shift+I"),
            self._action(vm, "Clear &Highlight", lambda: v.set_highlight(None), "Esc"),
            self._action(vm, "Clear Diff &Marks", v.clear_marks))
        vm.addSeparator()
        self.show_constants_action = self._action(
            vm, "Show &Constants as Nodes", v.set_show_constants, checkable=True,
            tip="Draw every Const and weight /read as its own box instead of a badge")
        self.horizontal_action = self._action(vm, "&Left-to-Right Layout", v.set_horizontal,
                                              checkable=True)
        self.device_colors_action = self._action(
            vm, "Colour by &Device", self._set_device_colors, checkable=True,
            tip="Fill each node with the colour of the device it is placed on")
        self._action(vm, "Show Le&gend", v.legend.setVisible, checkable=True, checked=True)
        self._action(vm, "Show &Minimap", self._set_minimap, checkable=True, checked=True)
        vm.addSeparator()
        self.panels_menu = vm.addMenu("&Panels")
        self.panels_menu.setEnabled(False)
        self.reset_layout_action = self._action(
            vm, "&Reset Layout", self.reset_layout,
            tip="Put every panel back in its default place and size")
        # ---- Help
        self.help_menu = hm = mb.addMenu("&Help")
        self._action(hm, "&Quick Guide", lambda: help_texts.show_guide(self), "F1")
        self._action(hm, "&Keyboard Shortcuts", lambda: help_texts.show_shortcuts(self))
        hm.addSeparator()
        self._action(hm, "&About Graph Surgeon", self._about)

    def needs_model(self, *actions: QAction) -> None:
        """These actions work on the open model: enabled only while one is shown."""
        for a in actions:
            self._model_actions.append(a)
            a.setEnabled(self.document is not None)

    def _set_device_colors(self, on: bool) -> None:
        """View ▸ Colour by Device: one colour per device string (frozen graphs often have
        none: then every node says so)."""
        if not on or self.document is None:
            self.view.set_node_colors(None)
            return
        colors, legend = style.device_colors(self.document.graph)
        self.view.set_node_colors(colors, legend)

    def _set_minimap(self, on: bool) -> None:
        self.view.minimap.enabled = on
        self.view.minimap.setVisible(on and self.document is not None)

    def _about(self) -> None:
        QMessageBox.about(self, APPLICATION,
                          "<b>Graph Surgeon</b><br>Look inside TensorFlow graphs and operate on "
                          "them for inference, step by step, with undo.")

    def _trace(self, direction: str) -> None:
        nodes = [n for n in self.view.selected_nodes() if not n.startswith("scope:")]
        if nodes:
            self.view.trace(nodes[0], direction)
        else:
            self.statusBar().showMessage("Select a node to trace first", 4000)

    # ================================================================== panels
    def add_panel(self, widget, title: str, area=Qt.RightDockWidgetArea,
                  object_name: str | None = None) -> QDockWidget:
        """Dock ``widget`` with ``title`` (listed in View ▸ Panels; placement is persisted,
        which needs a stable ``object_name`` — derived from the title when not given)."""
        shell = self._shells.pop(object_name, None) if object_name else None
        if shell is not None:  # its empty dock, already in place (``defer_panels``)
            placeholder = shell.widget()
            shell.setWidget(widget)
            placeholder.deleteLater()
            return shell
        dock = QDockWidget(title, self)
        dock.setObjectName(object_name or "dock_" + "".join(c if c.isalnum() else "_"
                                                            for c in title.lower()))
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.panels_menu.addAction(dock.toggleViewAction())
        self.panels_menu.setEnabled(True)
        self._docks.append(dock)
        if self._layout_restored:  # a panel added later goes where it was last time, if valid
            self.restoreDockWidget(dock)
        return dock

    def panels(self) -> list[QDockWidget]:
        return list(self._docks)

    # ================================================================== opening
    def open_dialog(self) -> None:
        start = os.path.dirname(self.recent_files()[0]) if self.recent_files() else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open model", start, MODEL_FILTER)
        if path:
            if os.path.basename(path) == "saved_model.pb":
                path = os.path.dirname(path)
            self.open_model(path)

    def open_folder_dialog(self) -> None:
        start = os.path.dirname(self.recent_files()[0]) if self.recent_files() else ""
        path = QFileDialog.getExistingDirectory(self, "Open SavedModel folder", start)
        if path:
            self.open_model(path)

    def open_with_checkpoint_dialog(self, path: str | None = None) -> Worker | None:
        """Ask for a graph (unless given), its checkpoint and the outputs to keep; open it
        frozen. Returns the loading worker, or None when the user cancelled."""
        from ..core.model.graph import GraphError
        from ..core.model.io import guess_inference_outputs, read_graph_def, resolve_checkpoint
        ask = self.asker()
        path = path or ask.open_path("Open graph with variables",
                                     "Graph (*.pb *.pbtxt *.meta);;All files (*)")
        if not path:
            return None
        # the checkpoint sits next to its graph, as TF1's Saver writes them
        ckpt = ask.open_path("Its checkpoint: the .index file (or the 'checkpoint' file)",
                             "Checkpoint (*.index checkpoint);;All files (*)",
                             os.path.dirname(os.path.abspath(path)))
        if not ckpt:
            return None
        if os.path.basename(ckpt) == "checkpoint":
            ckpt = os.path.dirname(ckpt)
        try:
            resolve_checkpoint(ckpt)
            guess = guess_inference_outputs(read_graph_def(path))
        except GraphError as e:
            self.show_error("Could not open with checkpoint", str(e))
            return None
        text = ask.text("Outputs to keep", f"{guess.message()}\n\nOutput node names "
                        "(comma-separated); everything else (training, saving) is dropped:",
                        ", ".join(guess.outputs))
        outputs = [t.strip() for t in (text or "").split(",") if t.strip()]
        if not outputs:
            return None
        return self.open_model(path, checkpoint=ckpt, outputs=outputs)

    def asker(self):
        """The object every question goes through: the surgery controller's ``ask`` (tests
        replace ``window.surgery.controller.ask`` with scripted answers)."""
        return self.surgery.controller.ask

    def ask_signature(self, path: str) -> tuple[bool, str | None]:
        """For a SavedModel folder with several signatures, ask which one to open.

        Returns ``(go_on, signature)``: ``(True, None)`` when there is nothing to ask (not a
        SavedModel, one signature, or an unreadable one the loader will report), ``(False,
        None)`` when the user cancelled. ``serving_default`` (if present) is offered first.
        """
        from ..core.model.graph import GraphError
        from ..core.model.io import is_saved_model_dir, saved_model_signatures
        if not is_saved_model_dir(path):
            return True, None
        try:
            sigs = saved_model_signatures(path)
        except GraphError:
            return True, None  # the loader says what is wrong, with its usual message
        if len(sigs) < 2:
            return True, None
        if "serving_default" in sigs:
            sigs = ["serving_default"] + [s for s in sigs if s != "serving_default"]
        name = os.path.basename(path.rstrip("/\\")) or path
        choice = self.asker().choose(f"Open {name}",
                                     f"{name} has {len(sigs)} signatures. Signature to open:",
                                     sigs)
        if not choice:
            return False, None
        if choice not in sigs:  # a scripted answer that is not a signature: say so
            self.show_error(f"Could not open {name}",
                            f"no signature {choice!r}; it has: {', '.join(sigs)}")
            return False, None
        return True, choice

    def open_model(self, path, signature: str | None = None, checkpoint: str | None = None,
                   outputs: list[str] | None = None, trust_code: bool = False,
                   offer_freeze: bool = True) -> Worker | None:
        """Load ``path`` in the background (progress and Cancel in the status bar).

        ``signature`` picks a SavedModel signature; without one, a SavedModel folder with
        several signatures asks which (:meth:`ask_signature`); cancelling that question
        cancels the open (returns None, the open model stays). A graph that still holds
        variables is offered to be frozen from its checkpoint unless ``offer_freeze`` is False
        (a lesson freezes it as one of its steps).

        On success the model is shown and :attr:`document_opened` is emitted; on failure the
        problem is shown (message box and status bar) and kept in :attr:`last_error`.
        Returns the worker; to learn the outcome connect to ``document_opened`` /
        ``load_failed`` beforehand (a fast failure can end before the caller connects).
        """
        path = str(path)
        if self.document is not None and not self._guards_allow("opening another model"):
            return None
        if signature is None:
            go_on, signature = self.ask_signature(path)
            if not go_on:
                self.statusBar().showMessage("Opening cancelled", 5000)
                return None
        if self._panels_pending and _imports_tensorflow(path, checkpoint):
            # made before TensorFlow's import starts: a Qt enum read for the first time swaps
            # the import function while it runs (see _PAINT), and the panels read many
            self.finish_panels()
        if self._load_worker is not None:
            self._load_worker.cancel()
        self.last_error = None
        self._load_started = time.perf_counter()
        w = Worker(_load_job, path, self.view.show_constants, signature=signature,
                   checkpoint=checkpoint, outputs=outputs, trust_code=trust_code)
        w.signals.progress.connect(self._on_progress)
        # the job may end after the window is gone (closed while loading): check first
        w.signals.finished.connect(
            lambda result, p=path, w=w: _alive(self) and self._on_loaded(w, p, result,
                                                                         offer_freeze))
        w.signals.failed.connect(
            lambda msg, exc, p=path, w=w, again=dict(signature=signature, checkpoint=checkpoint,
                                                      outputs=outputs):
            _alive(self) and self._on_load_failed(w, p, msg, exc, again))
        w.signals.cancelled.connect(lambda w=w: _alive(self) and self._on_load_cancelled(w))
        self._load_worker = w
        self.progress_bar.setValue(0)
        self.progress_bar.show()
        self.cancel_button.show()
        self.statusBar().showMessage(f"Opening {path} …")
        w.start()
        return w

    def cancel_loading(self) -> None:
        if self._load_worker is not None:
            self._load_worker.cancel()
            self.statusBar().showMessage("Cancelling…")

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress_bar.setValue(int(fraction * 1000))
        if text:
            self.statusBar().showMessage(text)

    def _end_loading(self, w: Worker) -> bool:
        if w is not self._load_worker:
            return False  # an older load the user replaced
        self._load_worker = None
        self.progress_bar.hide()
        self.cancel_button.hide()
        return True

    def _on_loaded(self, w: Worker, path: str, result, offer_freeze: bool = True) -> None:
        if not self._end_loading(w):
            return
        doc, tree, seconds, notes, signature, visible, variables = result
        # the window keeps what the job made: nothing for the worker to let go of on its
        # reaper thread (walking a 107k-node tree's containers for graphs there held the GIL
        # ~0.5 s right after the first frame)
        w.result = None
        self.timings["load"] = seconds
        self.signature = signature
        self.view.remember_visible(tree, *visible)
        self.set_document(doc, tree=tree)
        self.timings["first_view"] = time.perf_counter() - self._load_started
        self._panels_after_view()
        if tree is not None and not tree.is_complete:
            self._complete_tree_later(doc, tree)
        self.add_recent(path)
        problems = [n[len(PROBLEM_NOTE):] for n in notes if n.startswith(PROBLEM_NOTE)]
        notes = [n for n in notes if not n.startswith(PROBLEM_NOTE)]
        note = f" — {notes[0]}" if notes else ""
        self.statusBar().showMessage(
            f"Opened {os.path.basename(path.rstrip('/'))} in {self.timings['first_view']:.2f} s"
            f"{note}", 8000)
        if problems:
            name = os.path.basename(path.rstrip("/")) or path
            self.show_error(f"Problems in {name}",
                            f"TensorFlow would reject {name} as it is ({len(problems)} "
                            "problem(s)); it is open for inspection.\n"
                            + "\n".join(f"• {p}" for p in problems))
        if offer_freeze:
            self._offer_checkpoint(path, doc, variables)

    def _complete_tree_later(self, doc: Document, tree: GroupTree) -> None:
        """The loader's tree left out what the first view does not draw (``GroupTree(defer=
        True)``): make it on a worker once the view has painted its first frame of the model
        (so it does not compete with that frame), or soon after anyway (a window that paints
        nothing). The document is held while it runs, so no undo or redo edits its graph in
        place meanwhile; before, a document just opened has no step to undo (and a new step
        swaps the graph object: the tree's stays whole). Whatever needs those parts sooner
        makes them itself (the tree completes on first use)."""
        def job(hold):
            with hold(doc):
                tree.complete()

        started = []

        def start(force: bool = False):
            if started:
                return
            if not force and _alive(self) and self.view.layout_pending:
                watch()  # laid out again meanwhile (a resize): after that frame
                return
            started.append(True)
            # (imported here, on the GUI thread, after the first frame: commands imports the
            # history's modules and numpy, which the first view does not need)
            from .commands import hold
            Worker(job, hold).start()

        def watch():
            _AfterPaint(self.view.viewport(), lambda: not self.view.layout_pending,
                        lambda: QTimer.singleShot(TREE_COMPLETION_DELAY_MS, start))
        watch()
        QTimer.singleShot(TREE_COMPLETION_LATEST_MS, lambda: start(force=True))

    def _offer_checkpoint(self, path: str, doc, names: list[str]) -> None:
        """A graph that still holds variables is not ready for inference: offer to freeze it
        (``names``: its variables, as the loader found them)."""
        from .start_page import recent_label
        if not names:
            return
        answer = self.asker().question(
            "Graph with variables",
            f"{recent_label(path)} holds {len(names)} variable(s) ({', '.join(names[:3])}"
            f"{', …' if len(names) > 3 else ''}): their values are in a checkpoint, and their "
            "reads and training updates stay until they are frozen.\n\nOpen its checkpoint "
            "now to freeze them?", ["yes", "no"])
        if answer == "yes":
            self.open_with_checkpoint_dialog(path)

    def _on_load_failed(self, w: Worker, path: str, msg: str, exc=None,
                        again: dict | None = None) -> None:
        if not self._end_loading(w):
            return
        QTimer.singleShot(0, self.finish_panels)
        from ..core.model.trust import UntrustedCode
        if isinstance(exc, UntrustedCode) and self.ask_before_running_code:
            name = os.path.basename(path.rstrip("/")) or path
            risks = "\n".join(f"• {r}" for r in exc.risks[:8])
            answer = self.asker().question(
                "Run code from this file?",
                f"Opening {name} would run code stored in the file:\n\n{risks}\n\nThat code "
                "can do anything your user account can (read, change or delete files, use the "
                "network). Open it only if you trust where the file came from.",
                ["yes", "no"])
            if answer == "yes":
                self.open_model(path, trust_code=True, **(again or {}))
                return
            # the user answered No: say it in the GUI's terms (the CLI's message ends "(--trust-code)")
            msg = (f"Not opened: this {exc.what} would run code from the file when loaded: {exc.shown}. "
                   "To open it anyway, open it again and answer Yes to \u201cRun code from this file?\u201d.")
        self.show_error(f"Could not open {os.path.basename(path.rstrip('/')) or path}", msg)
        self.load_failed.emit(self.last_error or msg)

    def _on_load_cancelled(self, w: Worker) -> None:
        if self._end_loading(w):
            QTimer.singleShot(0, self.finish_panels)
            self.statusBar().showMessage("Loading cancelled", 5000)
            self.load_failed.emit("loading was cancelled")

    def show_error(self, title: str, message: str) -> None:
        """Tell the user (status bar and a non-blocking message box); never raises."""
        self.last_error = message
        first = message.strip().splitlines()[0] if message.strip() else title
        self.statusBar().showMessage(f"{title}: {first}", 15000)
        box = QMessageBox(QMessageBox.Warning, title, first, QMessageBox.Ok, self)
        if "\n" in message.strip():
            box.setDetailedText(message)
        box.setAttribute(Qt.WA_DeleteOnClose)
        self._error_box = box
        box.open()

    def set_document(self, doc: Document | None, tree: GroupTree | None = None) -> None:
        """Show ``doc`` (a newly opened model: undo history cleared, view reset)."""
        if self.document is not None:
            self.document.dirty_changed.disconnect(self._update_title)
            self.document.changed.disconnect(self._on_changed)
        if doc is None:
            self.signature = None  # _on_loaded sets it just before showing a loaded model
        self.document = doc
        self.undo_stack.clear()
        for a in self._model_actions:
            a.setEnabled(doc is not None)
        if doc is None:
            self.view.set_document(None)
            self.stack.setCurrentWidget(self.start_page)
            self._refresh_recent()
            self.info_label.clear()
            self._update_title()
            self.document_changed.emit(None)
            return
        doc.dirty_changed.connect(self._update_title)
        doc.changed.connect(self._on_changed)
        self.stack.setCurrentWidget(self.view)
        self.view.set_document(doc, reset_view=True, tree=tree)
        # the colours are the new model's devices (the old model's must not stay)
        self._set_device_colors(self.device_colors_action.isChecked())
        self.view.setFocus()
        self._update_title()
        self._update_info()
        self.document_changed.emit(doc)
        self.document_opened.emit(doc)

    def close_model(self) -> None:
        if self.document is not None and self._guards_allow("closing the model"):
            self.set_document(None)

    def _on_changed(self, change) -> None:
        self._update_info()

    def step_text(self) -> str:
        """Where the history is: the step the view's marks and the Diff panel show."""
        doc = self.document
        if doc is None:
            return ""
        step = doc.current_step
        n = len(doc.steps)
        if step is None:
            return "Opened model" + (f" (of {n} steps)" if n else "")
        return f"Step {doc.cursor} of {n}: {step.label}"

    def _update_info(self) -> None:
        if self.document is None:
            self.info_label.clear()
            return
        g = self.document.graph
        # (the distinct ops, counted in C: a histogram of 107k nodes took 30 ms of the first
        # view, and this runs on every change)
        self.info_label.setText(f"{self.step_text()} · {len(g)} nodes · "
                                f"{len(set(map(itemgetter(1), g.node_ops())))} op types")

    def _update_title(self, *_) -> None:
        if self.document is None:
            self.setWindowTitle(APPLICATION)
            return
        from .start_page import recent_label
        # "MTT_musicnn/.meta", "retinaface/src/frozen_graph.pb": the name alone says little
        name = recent_label(self.document.path) if self.document.path else "untitled"
        if self.signature:
            name += f" ({self.signature})"
        self.setWindowModified(self.document.dirty)
        self.setWindowTitle(f"{name}[*] — {APPLICATION}")

    # ================================================================== export
    def export_dialog(self, fmt: str) -> None:
        from ..core.model.graph import GraphError
        if self.document is None:
            self.statusBar().showMessage("Open a model first", 4000)
            return
        base = os.path.splitext(os.path.basename((self.document.path or "graph").rstrip("/")))[0]
        path, _ = QFileDialog.getSaveFileName(self, f"Export view as {fmt.upper()}",
                                              f"{base}.{fmt}", f"{fmt.upper()} (*.{fmt})")
        if not path:
            return
        if not path.lower().endswith("." + fmt):
            path += "." + fmt
        try:
            self.view.export_image(path)
            self.statusBar().showMessage(f"Exported {path}", 6000)
        except (OSError, ValueError, GraphError) as e:  # GraphError: the write path refused
            self.show_error("Export failed", str(e))

    # ================================================================== recent files
    def recent_files(self) -> list[str]:
        value = app_settings().value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def add_recent(self, path: str) -> None:
        if not self.persist_settings:
            return
        path = os.path.abspath(path)
        files = [p for p in self.recent_files() if p != path]
        files.insert(0, path)
        s = app_settings()
        s.setValue("recent_files", files[:MAX_RECENT])
        s.sync()
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        files = self.recent_files()
        self.recent_menu.clear()
        for p in files:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, p=p: self.open_model(p))
        self.recent_menu.setEnabled(bool(files))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear Recent Files", self._clear_recent)
        self.start_page.set_recent(files)

    def _clear_recent(self) -> None:
        s = app_settings()
        s.setValue("recent_files", [])
        s.sync()
        self._refresh_recent()

    # ================================================================== settings / close
    def _restore_settings(self) -> None:
        s = app_settings()
        layout.restore(self, s)
        self._layout_restored = True
        for key, action, setter in (("view/show_constants", self.show_constants_action, None),
                                    ("view/horizontal", self.horizontal_action, None)):
            v = s.value(key)
            if v is not None:
                action.setChecked(str(v).lower() in ("true", "1"))

    def reset_layout(self) -> None:
        """View ▸ Reset Layout: every panel back in its default place and size."""
        layout.apply_default(self)
        self.statusBar().showMessage("Panels back in their default places", 4000)

    def save_settings(self) -> None:
        s = app_settings()
        layout.save(self, s)
        s.setValue("view/show_constants", self.view.show_constants)
        s.setValue("view/horizontal", self.view.horizontal)
        s.sync()

    def _guards_allow(self, what: str = "closing") -> bool:
        return all(guard(what) is not False for guard in self.close_guards)

    def closeEvent(self, event):
        if not self._guards_allow("closing"):
            event.ignore()
            return
        if self._load_worker is not None:
            self._load_worker.cancel()
        if self.persist_settings:
            self.save_settings()
        event.accept()

    # ================================================================== drag and drop
    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event):
        for url in event.mimeData().urls():
            if url.isLocalFile():
                path = url.toLocalFile()
                if os.path.basename(path) == "saved_model.pb":
                    path = os.path.dirname(path)
                self.open_model(path)
                event.acceptProposedAction()
                return
