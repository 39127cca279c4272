"""The inspector panel: everything about the selected node, or a summary of the selected group.

For a node: name, op, device, its inputs and consumers (click one to go to it), every attribute
in readable form. For a Const also its value: dtype, shape, statistics, the first values, a
small histogram, and "Save as .npy…". For a group (name scope): node count, parameter count,
edges crossing its border, an op histogram and its sub-scopes.

The panel reads a core :class:`~surgeon_gui.core.history.document.Document` and knows nothing about the
graph view; it emits :attr:`InspectorPanel.node_activated` with a node name when the user clicks
an input or a consumer, and the main window connects that to ``view.focus_node``.
"""
from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Callable, Iterable

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import (
    QFont,
    QFontMetrics,
    QGuiApplication,
    QKeySequence,
    QPalette,
)
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.history.document import absorbed, absorbed_text
from ..core.model.graph import GraphError, node_of, shape_size
from ..core.model.values import ConstStats, const_stats, save_const_npy
from ..core.viewmodel.nodeinfo import (
    GroupSummary,
    NodeDetails,
    group_summary,
    node_details,
)
from .inspector_widgets import BarList, HistogramWidget, WrapAnywhereDelegate
from .op_doc_view import OpDocView
from .workers import Worker

#: Prefix the graph view uses for a selected group in ``selection_changed`` (see set_selection).
SCOPE_PREFIX = "scope:"
GROUP_PREFIXES = (SCOPE_PREFIX, "group:")


def _fmt_num(x: float | None) -> str:
    if x is None:
        return "—"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:.6g}"


def _fmt_bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def _monospace() -> QFont:
    # Same size as the interface font (a bare QFont("monospace") comes out larger).
    font = QFont(QApplication.font())
    font.setFamilies(["DejaVu Sans Mono", "Menlo", "Consolas", "monospace"])
    font.setStyleHint(QFont.TypeWriter)
    return font


# --------------------------------------------------------------------------- small widgets
class Section(QWidget):
    """A titled block with a chevron to fold it (state kept while the panel lives)."""

    def __init__(self, title: str, body: QWidget, parent=None):
        super().__init__(parent)
        self._title = title
        self.body = body
        self.button = QToolButton(self)
        self.button.setCheckable(True)
        self.button.setChecked(True)
        self.button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.button.setArrowType(Qt.DownArrow)
        self.button.setAutoRaise(True)
        self.button.setStyleSheet("QToolButton { border: none; font-weight: bold; "
                                  "padding: 1px 0px; }")
        self.button.toggled.connect(self._toggle)
        rule = QFrame(self)
        rule.setFrameShape(QFrame.HLine)
        rule.setFrameShadow(QFrame.Sunken)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 6, 0, 0)
        lay.setSpacing(2)
        head = QHBoxLayout()
        head.setSpacing(4)
        head.addWidget(self.button)
        head.addWidget(rule, 1)
        lay.addLayout(head)
        lay.addWidget(body)
        self._empty = False
        self.set_title(title)

    def set_title(self, title: str) -> None:
        self._title = title
        self.button.setText(title)

    def title(self) -> str:
        return self._title

    def set_empty(self, empty: bool) -> None:
        """An empty section shows only its title (e.g. "Inputs (0)")."""
        self._empty = empty
        self.button.setEnabled(not empty)
        self.body.setVisible(self.button.isChecked() and not empty)

    def _toggle(self, on: bool) -> None:
        self.button.setArrowType(Qt.DownArrow if on else Qt.RightArrow)
        self.body.setVisible(on and not self._empty)


class LinkList(QTreeWidget):
    """Rows naming a node (and its op, in a second column); a click or Enter on a row emits
    ``activated_name``. Long names are elided on the left: the end of a name is the telling part.
    """

    activated_name = Signal(str)
    MAX_ROWS = 10

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setColumnCount(2)
        self.setHeaderHidden(True)
        self.setRootIsDecorated(False)
        self.setIndentation(0)
        self.setFrameShape(QFrame.NoFrame)
        self.setUniformRowHeights(True)
        self.setAllColumnsShowFocus(True)
        self.viewport().setCursor(Qt.PointingHandCursor)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
        self.setTextElideMode(Qt.ElideLeft)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeToContents)
        self.itemClicked.connect(self._emit)
        self.itemActivated.connect(self._emit)
        pal = self.palette()
        pal.setColor(QPalette.Base, pal.color(QPalette.Window))
        self.setPalette(pal)

    def set_rows(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """``rows`` of (node to go to, text, op, tooltip). A row with no node is inert."""
        self.clear()
        link = self.palette().color(QPalette.Link)
        dim = self.palette().color(QPalette.PlaceholderText)
        for node, text, op, tip in rows:
            item = QTreeWidgetItem([text, op])
            item.setData(0, Qt.UserRole, node)
            item.setToolTip(0, tip)
            item.setToolTip(1, tip)
            item.setForeground(1, dim)
            if node:
                item.setForeground(0, link)
            else:
                item.setFlags(Qt.ItemIsEnabled)
            self.addTopLevelItem(item)
        self.updateGeometry()

    def count(self) -> int:
        return self.topLevelItemCount()

    def item(self, row: int) -> QTreeWidgetItem:
        return self.topLevelItem(row)

    def names(self) -> list[str]:
        return [self.item(r).data(0, Qt.UserRole) for r in range(self.count())]

    def _emit(self, item: QTreeWidgetItem, column: int = 0) -> None:
        node = item.data(0, Qt.UserRole)
        if node:
            self.activated_name.emit(node)

    def sizeHint(self) -> QSize:
        rows = min(self.count(), self.MAX_ROWS)
        h = self.sizeHintForRow(0) if self.count() else 0
        return QSize(200, max(rows * h + 2 * self.frameWidth() + 2, 4))

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()


class ValueLabel(QLabel):
    """Selectable text (users copy names and values)."""

    def __init__(self, text: str = "", parent=None, mono: bool = False):
        super().__init__(text, parent)
        self.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.setWordWrap(True)
        self.setTextFormat(Qt.PlainText)
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        if mono:
            self.setFont(_monospace())


# --------------------------------------------------------------------------- the panel
def ask_overwrite(parent: QWidget, path: Path) -> bool:
    """The default overwrite confirmation (a Yes/No question, No by default)."""
    answer = QMessageBox.question(parent, "Overwrite file?",
                                  f"{path.name} already exists in {path.parent}.\n"
                                  "Replace it?", QMessageBox.Yes | QMessageBox.No,
                                  QMessageBox.No)
    return answer == QMessageBox.Yes


def ask_npy_path(parent: QWidget, suggested: str) -> str | None:
    """The default "Save as .npy" file dialog (overwrite is confirmed separately)."""
    path, _ = QFileDialog.getSaveFileName(parent, "Save Const value as .npy", suggested,
                                          "NumPy array (*.npy)", options=QFileDialog.DontConfirmOverwrite)
    return path or None


class InspectorPanel(QWidget):
    """Details of the selected node or group.

    ``choose_path(parent, suggested) -> str | None`` and ``confirm_overwrite(parent, path) ->
    bool`` can be replaced (tests answer them; a headless run must never block on a dialog).
    """

    node_activated = Signal(str)
    #: Emitted after a Const was written: (node name, path).
    saved = Signal(str, str)
    #: Consts with more values than this are summarised in a background job.
    ASYNC_VALUES = 1_000_000

    def __init__(self, document=None, parent: QWidget | None = None,
                 choose_path: Callable[[QWidget, str], str | None] = ask_npy_path,
                 confirm_overwrite: Callable[[QWidget, Path], bool] = ask_overwrite):
        super().__init__(parent)
        self.setObjectName("InspectorPanel")
        self.choose_path = choose_path
        self.confirm_overwrite = confirm_overwrite
        self.document = None
        self._doc_slot = None
        #: What is shown: ("node", name) / ("group", scope) / None.
        self.current: tuple[str, str] | None = None
        self.details: NodeDetails | None = None
        self.group: GroupSummary | None = None
        self._group_members: list[str] | None = None
        #: ``members_of(group key) -> list[str]``: the graph view's exact group membership
        #: (virtual blocks such as ``a/block_1_*`` are not name prefixes). None: by prefix.
        self.members_of: Callable[[str], list[str]] | None = None
        self._last_dir = ""
        self._stats_job = 0
        self._stats_worker: Worker | None = None
        self._history: list[tuple[str, str]] = []
        self._build()
        self.set_document(document)

    def sizeHint(self) -> QSize:
        # Docks share a column by size hints: ask for room for the fields and a histogram.
        return QSize(340, 620)

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        outer.addWidget(scroll)
        content = QWidget()
        scroll.setWidget(content)
        lay = QVBoxLayout(content)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(4)

        self.placeholder = QLabel("Select a node or a group in the graph to inspect it.")
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignCenter)
        self.placeholder.setForegroundRole(QPalette.PlaceholderText)
        lay.addWidget(self.placeholder)

        # Header: name and op.
        self.name_label = ValueLabel()
        f = self.name_label.font()
        f.setBold(True)
        f.setPointSizeF(f.pointSizeF() * 1.15)
        self.name_label.setFont(f)
        self.name_label.setWordWrap(True)
        self.back_button = QToolButton()
        self.back_button.setArrowType(Qt.LeftArrow)
        self.back_button.setAutoRaise(True)
        self.back_button.setToolTip("Back to the previously inspected node (Alt+Left)")
        self.back_button.setShortcut(QKeySequence("Alt+Left"))
        self.back_button.clicked.connect(self.go_back)
        self.back_button.setEnabled(False)
        head = QHBoxLayout()
        head.setSpacing(2)
        head.addWidget(self.back_button, 0, Qt.AlignTop)
        head.addWidget(self.name_label, 1)
        lay.addLayout(head)

        form_box = QWidget()
        self.form = QFormLayout(form_box)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.form.setLabelAlignment(Qt.AlignRight)
        self.op_label = ValueLabel()
        self.device_label = ValueLabel()
        self.form.addRow("Op", self.op_label)
        self.form.addRow("Device", self.device_label)
        # a node renamed since the model was opened: its name in the opened model
        self.renamed_label = ValueLabel(mono=True)
        self.renamed_label.setToolTip("This node was renamed (Edit ▸ Rename Node); its name "
                                      "in the model as opened")
        self.form.addRow("Renamed from", self.renamed_label)
        # a node a step changed in place (a batch norm folded into the conv before it keeps
        # its name as a BiasAdd), or one others were folded into: what the history says
        self.origin_label = ValueLabel()
        self.origin_label.setToolTip("What this node was before a step of the history "
                                     "changed its op type and kept its name")
        self.form.addRow("History", self.origin_label)
        self.outputs_label = ValueLabel(mono=True)
        self.outputs_label.setToolTip("Output tensors (port: dtype shape) as far as the "
                                      "GraphDef records them; ? where unknown")
        self.form.addRow("Outputs", self.outputs_label)
        lay.addWidget(form_box)
        self.node_form = form_box

        # What the op does (TensorFlow's own documentation, as Netron shows it).
        self.op_doc = OpDocView()
        self.op_doc.shown.connect(lambda _op: self._describe_attrs())
        self.op_doc_section = Section("What the op does", self.op_doc)
        lay.addWidget(self.op_doc_section)

        # Node: inputs, consumers, attributes.
        self.inputs_list = LinkList()
        self.inputs_list.activated_name.connect(self._follow)
        self.inputs_section = Section("Inputs", self.inputs_list)
        lay.addWidget(self.inputs_section)
        self.consumers_list = LinkList()
        self.consumers_list.activated_name.connect(self._follow)
        self.consumers_section = Section("Consumers", self.consumers_list)
        lay.addWidget(self.consumers_section)

        self.attr_table = QTableWidget(0, 2)
        self.attr_table.setHorizontalHeaderLabels(["Attribute", "Value"])
        self.attr_table.verticalHeader().setVisible(False)
        self.attr_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Interactive)
        self.attr_table.horizontalHeader().setStretchLastSection(True)
        self.attr_table.setItemDelegate(WrapAnywhereDelegate(self.attr_table))
        # Row heights follow the column widths (values wrap).
        self.attr_table.horizontalHeader().sectionResized.connect(
            lambda *_: self._fit_row_heights())
        self.attr_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.attr_table.setWordWrap(True)
        self.attr_table.setSelectionBehavior(QTableWidget.SelectRows)
        self.attr_table.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
        self.attr_table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.attr_table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.attrs_section = Section("Attributes", self.attr_table)
        lay.addWidget(self.attrs_section)

        # Const value.
        value_box = QWidget()
        vl = QVBoxLayout(value_box)
        vl.setContentsMargins(0, 0, 0, 0)
        stats_box = QWidget()
        self.stats_form = QFormLayout(stats_box)
        self.stats_form.setContentsMargins(0, 0, 0, 0)
        self.stats_form.setLabelAlignment(Qt.AlignRight)
        self.stat_labels: dict[str, ValueLabel] = {}
        for key in ("dtype", "shape", "elements", "size", "min", "max", "mean", "std",
                    "special"):
            lab = ValueLabel()
            self.stat_labels[key] = lab
            self.stats_form.addRow({"special": "NaN / Inf / zeros"}.get(key, key.capitalize()),
                                   lab)
        vl.addWidget(stats_box)
        self.first_values = ValueLabel(mono=True)
        vl.addWidget(QLabel("First values"))
        vl.addWidget(self.first_values)
        self.histogram = HistogramWidget()
        vl.addWidget(self.histogram)
        row = QHBoxLayout()
        self.save_button = QPushButton("Save as .npy…")
        self.save_button.setToolTip("Write this Const's value to a NumPy .npy file")
        self.save_button.clicked.connect(self.save_current_const)
        row.addWidget(self.save_button)
        row.addStretch(1)
        vl.addLayout(row)
        self.value_error = ValueLabel()
        self.value_error.setStyleSheet("color: #b00020;")
        vl.addWidget(self.value_error)
        self.value_section = Section("Value", value_box)
        lay.addWidget(self.value_section)

        # Group.
        group_box = QWidget()
        gl = QVBoxLayout(group_box)
        gl.setContentsMargins(0, 0, 0, 0)
        gform_box = QWidget()
        self.group_form = QFormLayout(gform_box)
        self.group_form.setContentsMargins(0, 0, 0, 0)
        self.group_form.setLabelAlignment(Qt.AlignRight)
        self.group_labels: dict[str, ValueLabel] = {}
        for key, label in (("nodes", "Nodes"), ("params", "Parameters"),
                           ("edges", "Edges in / out")):
            lab = ValueLabel()
            self.group_labels[key] = lab
            self.group_form.addRow(label, lab)
        gl.addWidget(gform_box)
        gl.addWidget(QLabel("Op types"))
        self.op_bars = BarList()
        gl.addWidget(self.op_bars)
        self.group_section = Section("Group", group_box)
        lay.addWidget(self.group_section)
        self.children_list = LinkList()
        self.children_list.activated_name.connect(self._open_sub_scope)
        self.children_section = Section("Sub-scopes", self.children_list)
        lay.addWidget(self.children_section)

        self.status = ValueLabel()
        self.status.setForegroundRole(QPalette.PlaceholderText)
        lay.addWidget(self.status)
        lay.addStretch(1)
        self._show_parts(None)

    def _show_parts(self, kind: str | None) -> None:
        node, group = kind == "node", kind == "group"
        self.placeholder.setVisible(kind is None)
        self.name_label.setVisible(kind is not None)
        self.back_button.setVisible(kind is not None)
        self.node_form.setVisible(node)
        for w in (self.inputs_section, self.consumers_section, self.attrs_section,
                  self.op_doc_section):
            w.setVisible(node)
        self.value_section.setVisible(node and self.details is not None
                                      and self.details.is_const)
        self.group_section.setVisible(group)
        self.children_section.setVisible(group and bool(self.group and self.group.children))

    # ------------------------------------------------------------------ document
    def set_document(self, document) -> None:
        """Follow ``document`` (a core Document, or None to show nothing)."""
        if self.document is not None and self._doc_slot is not None:
            self.document.changed.disconnect(self._doc_slot)
        self.document = document
        self._doc_slot = None
        self._history.clear()
        self.back_button.setEnabled(False)
        if document is not None:
            # A weak slot: the core Signal must not keep a closed panel alive or call into it.
            ref = weakref.ref(self)

            def slot(change, _ref=ref):
                panel = _ref()
                if panel is not None:
                    panel._on_document_changed(change)
            self._doc_slot = slot
            document.changed.connect(slot)
        self.clear()

    def _on_document_changed(self, change) -> None:
        if self.current is None or self.document is None:
            return
        kind, name = self.current
        if kind == "node":
            if name in self.document.graph.nodes:
                self.show_node(name)
            else:
                self.clear(f"{name} is no longer in the graph.")
        else:
            self.show_group(name, None)

    # ------------------------------------------------------------------ showing things
    # ------------------------------------------------------------------ link history
    MAX_HISTORY = 100

    def _follow(self, name: str) -> None:
        """A link was clicked: remember where we were, then go (the view follows)."""
        if self.current is not None and self.current != ("node", name):
            self._history.append(self.current)
            del self._history[:-self.MAX_HISTORY]
        self.back_button.setEnabled(bool(self._history))
        self.node_activated.emit(name)

    def _open_sub_scope(self, scope: str) -> None:
        if self.current is not None:
            self._history.append(self.current)
            del self._history[:-self.MAX_HISTORY]
        self.back_button.setEnabled(True)
        self.show_group(scope)

    def go_back(self) -> None:
        """Return to what was inspected before the last followed link."""
        graph = self.document.graph if self.document is not None else None
        while self._history:
            kind, name = self._history.pop()
            if graph is None or (kind == "node" and name not in graph.nodes):
                continue  # gone since (an edit removed it)
            if kind == "node":
                self.show_node(name)
                self.node_activated.emit(name)
            else:
                self.show_group(name)
                self.node_activated.emit(SCOPE_PREFIX + name)
            break
        self.back_button.setEnabled(bool(self._history))

    def clear(self, message: str = "") -> None:
        self.current = None
        self.details = None
        self.group = None
        self.placeholder.setText(message or "Select a node or a group in the graph to "
                                 "inspect it.")
        self.status.clear()
        self._show_parts(None)

    def set_selection(self, selection: list) -> None:
        """Slot for the view's ``selection_changed(list)``: inspect the first selected item.

        Items are node names; a group arrives as its key with a prefix (``scope:``).
        """
        if not selection:
            self.clear()
            return
        item = str(selection[0])
        for prefix in GROUP_PREFIXES:
            if item.startswith(prefix):
                key = item[len(prefix):]
                members = self.members_of(key) if self.members_of is not None else None
                self.show_group(key, members or None)
                return
        self.show_node(item)

    def show_node(self, name: str) -> None:
        if self.document is None:
            return
        graph = self.document.graph
        try:
            details = node_details(graph, name, with_const=False)
        except GraphError as e:
            self.clear(e.problem)
            return
        self._stats_job += 1
        pending = False
        self.op_doc.show_op(details.op)  # first: it starts the one TensorFlow import
        if details.is_const:
            node = graph.node(name)
            values = shape_size(node.attr["value"].tensor.tensor_shape)
            if values <= self.ASYNC_VALUES:
                try:
                    details.const = const_stats(node)
                except GraphError as e:
                    details.const_error = e.problem
            else:
                pending = True
                self._start_stats_job(node)
        self.current = ("node", details.name)
        self.details = details
        self.group = None
        self.name_label.setText(details.name)
        self.op_label.setText(details.op)
        self.device_label.setText(details.device or "(any)")
        old = self.document.renames(0).get(details.name)
        self.renamed_label.setText(old or "")
        self.form.setRowVisible(self.renamed_label, old is not None)
        origin = self._origin_text(details.name)
        self.origin_label.setText(origin)
        self.form.setRowVisible(self.origin_label, bool(origin))
        self.outputs_label.setText("\n".join(details.outputs))
        self.inputs_list.set_rows(self._input_rows(details))
        self.inputs_section.set_title(f"Inputs ({len(details.inputs)})")
        self.inputs_section.set_empty(not details.inputs)
        self.consumers_list.set_rows(self._consumer_rows(details))
        # a sink: say whether it is what the graph serves (musicnn's model/Sigmoid showed a
        # greyed "Consumers (0)" and nothing else)
        served = not details.consumers and details.name in {node_of(o) for o in graph.outputs}
        self.consumers_section.set_title(f"Consumers ({len(details.consumers)})"
                                         + (" — a graph output" if served else ""))
        self.consumers_section.set_empty(not details.consumers)
        self._fill_attrs(details)
        self._fill_value(details, pending)
        self.status.clear()
        self._show_parts("node")
        self._relayout()
        # Now the table has its real width: wrap the values for it.
        self._fit_table_height()
        self._relayout()

    def _origin_text(self, name: str) -> str:
        """"folded from FusedBatchNormV3 into conv1/Conv2D (step 6, …)", or for the conv
        "batch norm folded in: …" (``Document.origins``); "" for other nodes."""
        doc = self.document
        if doc is None or not hasattr(doc, "origins"):
            return ""
        origins = doc.origins()
        o = origins.get(name)
        if o is not None:
            return o.describe()
        items = absorbed(origins).get(name)
        return absorbed_text(items) if items else ""

    def _start_stats_job(self, node) -> None:
        """Decode and summarise a big Const off the GUI thread (its own copy of the node, since
        the document edits its GraphDef in place)."""
        from tensorflow.core.framework import node_def_pb2
        copy = node_def_pb2.NodeDef()
        copy.CopyFrom(node)
        job, name = self._stats_job, node.name
        worker = Worker(const_stats, copy)
        ref = weakref.ref(self)

        def done(stats=None, error=None):
            panel = ref()
            if panel is None or job != panel._stats_job or panel.current != ("node", name):
                return  # the user moved on
            panel.details.const, panel.details.const_error = stats, error
            panel._fill_value(panel.details)
            panel._relayout()
        worker.signals.finished.connect(lambda stats: done(stats))
        worker.signals.failed.connect(lambda msg, exc: done(None, getattr(exc, "problem", msg)))
        self._stats_worker = worker
        worker.start()

    @property
    def stats_pending(self) -> bool:
        """True while a big Const's statistics are computed in the background."""
        w = self._stats_worker
        return bool(w is not None and self.details is not None and self.details.is_const
                    and self.details.const is None and self.details.const_error is None
                    and not w._finished.is_set())

    @staticmethod
    def _input_rows(d: NodeDetails):
        for i, inp in enumerate(d.inputs):
            if inp.producer_op is None:
                yield ("", f"{i}: {inp.text}", "missing", f"{inp.producer} is not in the graph")
                continue
            what = ("control dependency on " if inp.control
                    else f"input {i} reads output {max(inp.port, 0)} of ")
            yield (inp.producer, inp.text, inp.producer_op,
                   f"{what}{inp.producer} ({inp.producer_op}); click to go there")

    @staticmethod
    def _consumer_rows(d: NodeDetails):
        for c in d.consumers:
            # Which output it reads, when that is not the obvious one: "^" control, ":1" port 1.
            via = "^ " if c.control else (f":{c.port} → " if c.port else "")
            what = ("has a control dependency on it" if c.control
                    else f"reads output {c.port} at its input {c.index}")
            yield (c.name, f"{via}{c.name}", c.op,
                   f"{c.name} ({c.op}) {what}; click to go there")

    def _fill_attrs(self, d: NodeDetails) -> None:
        t = self.attr_table
        t.setRowCount(len(d.attrs))
        mono = _monospace()
        for row, a in enumerate(d.attrs):
            key = QTableWidgetItem(a.name)
            key.setToolTip(a.kind)
            val = QTableWidgetItem(a.text)
            val.setToolTip(f"{a.name} ({a.kind}) = {a.text}")
            val.setFont(mono)
            t.setItem(row, 0, key)
            t.setItem(row, 1, val)
        self.attrs_section.set_title(f"Attributes ({len(d.attrs)})")
        self.attrs_section.set_empty(not d.attrs)
        self._describe_attrs()
        t.resizeRowsToContents()
        self._fit_table_height()

    def _describe_attrs(self) -> None:
        """Each attribute's tooltip says what it means (from the op's documentation)."""
        t = self.attr_table
        for row in range(t.rowCount()):
            key = t.item(row, 0)
            if key is not None:
                meaning = self.op_doc.attr_text(key.text())
                key.setToolTip(f"{key.text()}: {meaning}" if meaning else key.toolTip())

    def _fit_table_height(self) -> None:
        t = self.attr_table
        # Names get what they need up to 40 % of the width; values wrap in the rest. The
        # table's own width is not settled yet when a node is shown: use the panel's.
        fm = QFontMetrics(t.font())
        need = max((fm.horizontalAdvance(t.item(r, 0).text()) for r in range(t.rowCount())),
                   default=60) + 2 * WrapAnywhereDelegate.PAD + 6
        header = fm.horizontalAdvance("Attribute") + 16
        avail = max(self.width() - 40, 160)
        t.setColumnWidth(0, max(header, min(need, int(avail * 0.4))))
        self._fit_row_heights()

    def _fit_row_heights(self) -> None:
        t = self.attr_table
        if getattr(self, "_fitting", False):
            return
        self._fitting = True
        try:
            t.resizeRowsToContents()
        finally:
            self._fitting = False
        h = t.horizontalHeader().height() + 2 * t.frameWidth()
        for r in range(t.rowCount()):
            h += t.rowHeight(r)
        t.setFixedHeight(h + 2)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if self.current and self.current[0] == "node":
            self.attr_table.resizeRowsToContents()
            self._fit_table_height()

    def _fill_value(self, d: NodeDetails, pending: bool = False) -> None:
        s: ConstStats | None = d.const
        self.value_error.setVisible(bool(d.const_error))
        self.value_error.setText(d.const_error or "")
        self.save_button.setEnabled(s is not None or pending)
        if s is None:
            for lab in self.stat_labels.values():
                lab.setText("—")
            self.first_values.setText("Computing statistics…" if pending else "")
            self.histogram.set_histogram([], [])
            self.histogram.setVisible(not pending)
            return
        L = self.stat_labels
        L["dtype"].setText(s.dtype)
        L["shape"].setText(s.shape_text())
        L["elements"].setText(f"{s.size:,}")
        L["size"].setText(_fmt_bytes(s.nbytes))
        for key in ("min", "max", "mean", "std"):
            L[key].setText(_fmt_num(getattr(s, key)) if s.numeric else "—")
        L["special"].setText(f"{s.nan_count:,} / {s.inf_count:,} / {s.zero_count:,}"
                             if s.numeric or s.nan_count else "—")
        self.first_values.setText(s.first_values)
        self.histogram.set_histogram(s.hist_counts, s.hist_edges)
        self.histogram.setVisible(bool(s.hist_counts))

    def show_group(self, scope: str, members: Iterable[str] | None = None) -> None:
        """Summarise a group; ``members`` are its nodes if the view knows them exactly."""
        if self.document is None:
            return
        if members is not None:
            self._group_members = list(members)
        elif self.current != ("group", scope):
            self._group_members = None
        g = group_summary(self.document.graph, scope, self._group_members)
        if g.node_count == 0:
            self.clear(f"The group {scope} has no nodes in the current graph.")
            return
        self.current = ("group", g.scope)
        self.group = g
        self.details = None
        self.name_label.setText(f"{g.scope or '(top level)'}  (group)")
        L = self.group_labels
        L["nodes"].setText(f"{g.node_count:,}")
        L["params"].setText(f"{g.parameter_count:,}  ({_fmt_bytes(g.parameter_bytes)})")
        L["edges"].setText(f"{g.inputs_from_outside:,} / {g.outputs_to_outside:,}")
        self.op_bars.set_rows(g.op_histogram)
        self.children_list.set_rows(
            (f"{g.scope}/{k}" if g.scope else k, k, f"{v:,} node{'s' if v != 1 else ''}",
             f"{g.scope}/{k}: click to summarise it") for k, v in g.children.items())
        self.children_section.set_title(f"Sub-scopes ({len(g.children)})")
        self.status.clear()
        self._show_parts("group")
        self._relayout()

    def _relayout(self) -> None:
        # Sizes of the fixed-height lists changed: lay out now, not one frame late.
        for section in self.findChildren(Section):
            section.layout().invalidate()
            section.layout().activate()
        content = self.findChild(QScrollArea).widget()
        content.layout().invalidate()
        content.layout().activate()

    # ------------------------------------------------------------------ saving
    def save_current_const(self) -> Path | None:
        """Ask for a file and write the shown Const's value as .npy; returns the path written."""
        if self.document is None or self.details is None or not self.details.is_const:
            return None
        name = self.details.name
        suggested = os.path.join(self._last_dir or os.getcwd(),
                                 name.replace("/", "_") + ".npy")
        chosen = self.choose_path(self, suggested)
        if not chosen:
            return None
        path = Path(chosen)
        if path.suffix.lower() != ".npy":
            path = path.with_name(path.name + ".npy")
        overwrite = False
        if path.exists():
            if path.is_dir():
                self._say(f"Not saved: {path} is a folder.", error=True)
                return None
            if not self.confirm_overwrite(self, path):
                self._say(f"Not saved: {path.name} exists and was kept.")
                return None
            overwrite = True
        try:
            save_const_npy(self.document.graph.node(name), path, overwrite=overwrite)
        except (GraphError, OSError) as e:
            self._say(f"Could not save {path.name}: {e}", error=True)
            return None
        self._last_dir = str(path.parent)
        self._say(f"Saved {name} to {path} ({_fmt_bytes(path.stat().st_size)}).")
        self.saved.emit(name, str(path))
        return path

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b00020;" if error else "")

    def copy_name(self) -> None:
        if self.current:
            QGuiApplication.clipboard().setText(self.current[1])
