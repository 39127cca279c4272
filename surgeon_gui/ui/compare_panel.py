"""The comparison dock: prove the surgery kept the model's numbers, and see what it bought.

The panel runs a reference graph (the model as loaded, or any earlier step of the history) and
the current graph on the same sample inputs in a background :class:`Worker`, then shows per
output the errors, the allclose verdict (tolerances editable: the verdict is recomputed from the
kept values without running again), top-1/top-5 agreement and an error histogram; per graph the
latency (median, p10-p90), node/op/parameter counts and serialized size. Optionally it measures
the drift at every node both graphs share and colours the graph view by it.

All the numbers come from :func:`surgeon_gui.core.running.compare.compare_graphs`, the function
``surgeon compare`` uses, so the panel and the CLI agree by construction (a test checks it).
"""
from __future__ import annotations

import copy
import html
import math
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEventLoop, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.model.graph import Graph, GraphDef, GraphError, node_of, tensor_name
from ..core.running.compare import (
    HIST_EDGES,
    Comparison,
    compare_graphs,
    compare_outputs,
)
from ..core.running.drift import LEVELS, Drift, compute_drift
from ..core.running.report import save_outputs_npz, write_report
from ..core.running.samples import (
    DISTRIBUTIONS,
    SCALINGS,
    InputSpec,
    SampleError,
    SampleLibrary,
    SampleSet,
    input_specs,
)
from .workers import Worker

#: Colours of the drift levels (exact → wrong), then "no counterpart" and "edited constant".
LEVEL_COLORS = ["#2e7d32", "#7cb342", "#c0ca33", "#fbc02d", "#fb8c00", "#d32f2f"]
NO_COUNTERPART_COLOR = "#9575cd"
EDITED_CONST_COLOR = "#ec407a"
RECONVERGES_COLOR = "#64b5f6"
DEFAULT_RTOL, DEFAULT_ATOL = 1e-4, 1e-5


# ---------------------------------------------------------------------- the job (Qt-free)
@dataclass
class CompareRequest:
    """Everything the background job needs, captured on the GUI thread."""
    reference: GraphDef
    current: GraphDef
    reference_label: str
    current_label: str
    inputs: list[str]
    outputs: list[str]
    samples: SampleSet
    runs: int = 10
    warmup: int = 2
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    drift: bool = False
    drift_max_tensors: int = 5000


@dataclass
class CompareResult:
    request: CompareRequest
    comparison: Comparison
    feeds: dict[str, np.ndarray]
    values_a: dict[str, np.ndarray]
    values_b: dict[str, np.ndarray]
    drift: Drift | None = None
    origins: list[str] = field(default_factory=list)
    #: Drifting nodes whose error reaches an output (the others re-converge).
    persistent: list[str] = field(default_factory=list)


def run_comparison(req: CompareRequest, progress=None, should_stop=None) -> CompareResult:
    """Make the feeds, compare (keeping the output values), and measure the drift if asked."""
    report = progress or (lambda f, t: None)
    stop = should_stop or (lambda: False)
    ref_graph = Graph(req.reference, req.inputs or None)
    feeds = req.samples.make_feeds(ref_graph, req.inputs or None)
    span = (0.0, 0.7) if req.drift else (0.0, 0.99)

    def sub(lo, hi):
        return lambda f, t: report(lo + (hi - lo) * f, t)
    cmp = compare_graphs(req.reference, req.current, feeds, req.outputs, runs=req.runs,
                         warmup=req.warmup, rtol=req.rtol, atol=req.atol,
                         progress=sub(*span), should_stop=stop,
                         labels=(req.reference_label, req.current_label))
    values = [dict(cmp.values_a), dict(cmp.values_b)]
    drift = None
    origins: list[str] = []
    persistent: list[str] = []
    if req.drift:
        drift = compute_drift(req.reference, req.current, feeds,
                              max_tensors=req.drift_max_tensors,
                              progress=sub(0.7, 1.0), should_stop=stop)
        gb = Graph(req.current)
        origins = drift.origins(gb, req.rtol, req.atol)
        persistent = drift.persistent(gb, req.rtol, req.atol)
    report(1.0, "done")
    return CompareResult(req, cmp, feeds, values[0], values[1], drift, origins, persistent)


def drift_colors(drift: Drift, rtol: float, atol: float,
                 persistent: list[str] | None = None) -> tuple[dict[str, QColor], list]:
    """Node → colour for the graph view, and the legend [(text, QColor)] from exact to wrong.

    With ``persistent`` given, nodes beyond tolerance whose error does not reach an output
    (a region a pass rewrote, which re-converges) get their own colour."""
    colors: dict[str, QColor] = {}
    keep = set(persistent) if persistent is not None else None
    for n, d in drift.errors.items():
        within = d.max_abs <= atol + rtol * (d.max_abs / d.max_rel if d.max_rel else 0.0)
        level = d.level
        if within:
            level = min(level, 2)    # never paint an allclose node orange or red
        elif level < 3:
            level = 3                # and never paint a node beyond tolerance green
        if level >= 3 and keep is not None and n not in keep:
            colors[n] = QColor(RECONVERGES_COLOR)
            continue
        colors[n] = QColor(LEVEL_COLORS[level])
    for n in drift.no_counterpart:
        colors[n] = QColor(NO_COUNTERPART_COLOR)
    for n in drift.edited_consts:
        colors[n] = QColor(EDITED_CONST_COLOR)
    legend = [(f"rel. error {text}", QColor(c)) for (text, _), c in zip(LEVELS, LEVEL_COLORS)]
    legend[0] = ("exact", QColor(LEVEL_COLORS[0]))
    legend += [("differs, re-converges", QColor(RECONVERGES_COLOR)),
               ("no counterpart", QColor(NO_COUNTERPART_COLOR)),
               ("changed constant", QColor(EDITED_CONST_COLOR))]
    return colors, legend


# ---------------------------------------------------------------------- widgets
class ErrorHistogram(QWidget):
    """Counts of |b - a| per decade (0, ≤1e-9, ..., ≤1, >1), log-scaled bars, QPainter-drawn."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.counts: list[int] = []
        self.atol = DEFAULT_ATOL
        self.title = ""
        self.setMinimumHeight(130)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(360, 150)

    def set_histogram(self, counts, atol: float, title: str = "") -> None:
        self.counts = [int(c) for c in counts] if counts is not None else []
        self.atol, self.title = atol, title
        self.update()

    @staticmethod
    def bin_labels() -> list[str]:
        labels = ["0"]
        for hi in HIST_EDGES[2:-1]:
            labels.append(f"≤{hi:.0e}".replace("e-0", "e-").replace("e+00", ""))
        labels.append(">1")
        return labels

    def paintEvent(self, event):  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        fm = p.fontMetrics()
        if not self.counts:
            p.setPen(pal.placeholderText().color())
            p.drawText(self.rect(), Qt.AlignCenter, "error histogram: run a comparison")
            return
        small = QFont(p.font())
        small.setPointSizeF(max(6.5, small.pointSizeF() * 0.8))
        top, bottom, left, right = 2 * fm.height() + 6, fm.height() * 2 + 6, 8, 8
        area = QRectF(left, top, self.width() - left - right, self.height() - top - bottom)
        p.setPen(pal.text().color())
        p.drawText(QRectF(0, 2, self.width(), fm.height()), Qt.AlignCenter,
                   self.title or "|b − a| per element")
        n = len(self.counts)
        total = max(sum(self.counts), 1)
        peak = math.log10(max(self.counts) + 1) or 1.0
        w = area.width() / n
        labels = self.bin_labels()
        p.setFont(small)
        for i, c in enumerate(self.counts):
            hi = HIST_EDGES[i + 1]
            ok = i == 0 or hi <= self.atol
            color = QColor(LEVEL_COLORS[0] if i == 0 else "#7cb342" if ok else
                           "#fb8c00" if hi <= 1.0 else "#d32f2f")
            h = area.height() * math.log10(c + 1) / peak
            bar = QRectF(area.left() + i * w + 1.5, area.bottom() - h, w - 3, h)
            p.fillRect(bar, QBrush(color))
            if c:
                p.setPen(pal.text().color())
                text = f"{c / total:.0%}" if c / total >= 0.01 else str(c)
                p.drawText(QRectF(bar.left() - 4, bar.top() - fm.height(), bar.width() + 8,
                                  fm.height()), Qt.AlignCenter, text)
            p.setPen(pal.text().color())
            p.save()
            p.translate(area.left() + i * w + w / 2, area.bottom() + 3)
            p.drawText(QRectF(-w / 2 - 6, 0, w + 12, fm.height()), Qt.AlignHCenter | Qt.AlignTop,
                       labels[i])
            p.restore()
        p.setPen(QPen(pal.mid().color()))
        p.drawLine(area.bottomLeft(), area.bottomRight())
        # Where the tolerance lies between the bins (bin i >= 1 ends at HIST_EDGES[i + 1]).
        k = sum(1 for e in HIST_EDGES[1:-1] if e <= self.atol)
        x = area.left() + k * w
        p.setPen(QPen(QColor("#555"), 1, Qt.DashLine))
        p.drawLine(int(x), int(area.top()), int(x), int(area.bottom()))
        p.drawText(QRectF(x + 3, area.top(), 80, fm.height()), Qt.AlignLeft, "atol")


class SamplesEditor(QGroupBox):
    """Edit the sample sets: choose a set, its seed and batch, and each input's source."""

    changed = Signal()
    #: A problem to show the user (a bad sample-set file).
    problem = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Sample inputs", parent)
        self.library = SampleLibrary()
        self.specs: list[InputSpec] = []
        self._updating = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        row = QHBoxLayout()
        self.set_combo = QComboBox()
        self.set_combo.setToolTip("Named sample sets: several can be kept, one is used")
        self.add_btn = QToolButton(text="+", toolTip="New sample set (a copy of this one)")
        self.rename_btn = QToolButton(text="Rename", toolTip="Rename this sample set")
        self.remove_btn = QToolButton(text="−", toolTip="Remove this sample set")
        self.save_btn = QToolButton(text="Save…", toolTip="Save every sample set as JSON")
        self.load_btn = QToolButton(text="Load…", toolTip="Load sample sets from JSON")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, toolTip="Random seed")
        self.batch = QSpinBox(minimum=1, maximum=4096, toolTip="Batch size for unknown first "
                              "dimensions")
        row.addWidget(QLabel("Set"))
        row.addWidget(self.set_combo, 1)
        for w in (self.add_btn, self.rename_btn, self.remove_btn, self.save_btn, self.load_btn):
            row.addWidget(w)
        lay.addLayout(row)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("seed"))
        row2.addWidget(self.seed, 1)
        row2.addWidget(QLabel("batch"))
        row2.addWidget(self.batch)
        lay.addLayout(row2)

        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Input", "dtype", "Shape", "Values"])
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(self.table)

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        self.source = QComboBox()
        self.source.addItems(["random", "file", "image"])
        self.source.setItemData(1, ".npy, or one array of an .npz", Qt.ToolTipRole)
        self.source.setItemData(2, "an image resized to a 4-D float input", Qt.ToolTipRole)
        form.addRow("Source", self.source)
        self.stack = QStackedWidget()
        # random
        rnd = QWidget()
        rl = QHBoxLayout(rnd)
        rl.setContentsMargins(0, 0, 0, 0)
        self.distribution = QComboBox()
        self.distribution.addItems(DISTRIBUTIONS)
        self.low = QDoubleSpinBox(minimum=-1e6, maximum=1e6, decimals=3, value=0.0)
        self.high = QDoubleSpinBox(minimum=-1e6, maximum=1e6, decimals=3, value=1.0)
        rl.addWidget(self.distribution)
        rl.addWidget(QLabel("range"))
        rl.addWidget(self.low)
        rl.addWidget(self.high)
        self.stack.addWidget(rnd)
        # file
        fil = QWidget()
        fl = QHBoxLayout(fil)
        fl.setContentsMargins(0, 0, 0, 0)
        self.file_path = QLineEdit(placeholderText=".npy or .npz file")
        self.file_key = QLineEdit(placeholderText="array in .npz (default: input name)")
        self.file_browse = QToolButton(text="…")
        fl.addWidget(self.file_path, 2)
        fl.addWidget(self.file_browse)
        fl.addWidget(self.file_key, 1)
        self.stack.addWidget(fil)
        # image
        img = QWidget()
        il = QHBoxLayout(img)
        il.setContentsMargins(0, 0, 0, 0)
        self.image_path = QLineEdit(placeholderText="png / jpeg / bmp / gif")
        self.image_browse = QToolButton(text="…")
        self.scaling = QComboBox()
        self.scaling.addItems(SCALINGS)
        self.mean_std = QLineEdit(toolTip="mean / std per channel, 0..255 units")
        il.addWidget(self.image_path, 2)
        il.addWidget(self.image_browse)
        il.addWidget(self.scaling)
        il.addWidget(self.mean_std, 1)
        self.stack.addWidget(img)
        form.addRow("", self.stack)
        lay.addLayout(form)

        self.set_combo.currentIndexChanged.connect(self._set_chosen)
        self.add_btn.clicked.connect(self._add_set)
        self.rename_btn.clicked.connect(self._rename_set)
        self.remove_btn.clicked.connect(self._remove_set)
        self.save_btn.clicked.connect(self._save_dialog)
        self.load_btn.clicked.connect(self._load_dialog)
        self.seed.valueChanged.connect(self._set_params)
        self.batch.valueChanged.connect(self._set_params)
        self.table.itemSelectionChanged.connect(self._show_source)
        self.table.itemChanged.connect(self._shape_edited)
        for w in (self.source, self.distribution, self.scaling):
            w.currentIndexChanged.connect(self._source_edited)
        for w in (self.low, self.high):
            w.valueChanged.connect(self._source_edited)
        for w in (self.file_path, self.file_key, self.image_path, self.mean_std):
            w.editingFinished.connect(self._source_edited)
        self.file_browse.clicked.connect(lambda: self._browse(self.file_path,
                                                              "Arrays (*.npy *.npz)"))
        self.image_browse.clicked.connect(lambda: self._browse(
            self.image_path, "Images (*.png *.jpg *.jpeg *.bmp *.gif)"))
        self._refresh_sets()

    # -- model → widgets
    @property
    def sample_set(self) -> SampleSet:
        return self.library.get()

    def set_specs(self, specs: list[InputSpec]) -> None:
        self.specs = list(specs)
        self._fill_table()
        self.changed.emit()

    def reset(self, specs: list[InputSpec]) -> None:
        self.library = SampleLibrary()
        self._refresh_sets()
        self.set_specs(specs)

    def _refresh_sets(self) -> None:
        self._updating = True
        self.set_combo.clear()
        self.set_combo.addItems(self.library.names())
        self.set_combo.setCurrentIndex(self.library.current)
        self.seed.setValue(self.sample_set.seed)
        self.batch.setValue(self.sample_set.batch)
        self.remove_btn.setEnabled(len(self.library.sets) > 1)
        self._updating = False
        self._fill_table()

    def _fill_table(self) -> None:
        self._updating = True
        sel = self.table.currentRow()
        self.table.setRowCount(len(self.specs))
        s = self.sample_set
        for r, spec in enumerate(self.specs):
            name = QTableWidgetItem(spec.name)
            dtype = QTableWidgetItem(spec.dtype)
            try:
                shape_text = ",".join(map(str, s.resolved_shape(spec)))
            except SampleError:
                shape_text = "?"
            shape = QTableWidgetItem(shape_text)
            want = "unknown rank" if spec.shape is None else \
                "[" + ", ".join("?" if d < 0 else str(d) for d in spec.shape) + "]"
            shape.setToolTip(f"Placeholder shape {want}; edit the unknown dimensions "
                             "(comma-separated)")
            if not spec.unknown_dims and spec.shape is not None:
                shape.setFlags(shape.flags() & ~Qt.ItemIsEditable)
            values = QTableWidgetItem(s.describe(spec))
            for it in (name, dtype, values):
                it.setFlags(it.flags() & ~Qt.ItemIsEditable)
            for c, it in enumerate((name, dtype, shape, values)):
                self.table.setItem(r, c, it)
        if self.specs:
            self.table.selectRow(min(max(sel, 0), len(self.specs) - 1))
        _fit_height(self.table, max_rows=5)
        self._updating = False
        self._show_source()

    def _current_spec(self) -> InputSpec | None:
        r = self.table.currentRow()
        return self.specs[r] if 0 <= r < len(self.specs) else None

    def _show_source(self) -> None:
        spec = self._current_spec()
        self.source.setEnabled(spec is not None)
        self.stack.setEnabled(spec is not None)
        if spec is None:
            return
        was, self._updating = self._updating, True
        src = self.sample_set.source(spec.name)
        self.source.setCurrentText(src.source)
        self.source.model().item(2).setEnabled(spec.is_image_like)
        self.stack.setCurrentIndex(["random", "file", "image"].index(src.source))
        self.distribution.setCurrentText(src.distribution)
        self.low.setValue(src.low)
        self.high.setValue(src.high)
        self.low.setEnabled(src.distribution == "uniform")
        self.high.setEnabled(src.distribution == "uniform")
        self.file_path.setText(src.path if src.source == "file" else "")
        self.file_key.setText(src.key)
        self.image_path.setText(src.path if src.source == "image" else "")
        self.scaling.setCurrentText(src.scaling)
        self.mean_std.setText(",".join(f"{v:g}" for v in src.mean) + " / "
                              + ",".join(f"{v:g}" for v in src.std))
        self.mean_std.setEnabled(src.scaling == "mean/std")
        self._updating = was

    # -- widgets → model
    def _set_chosen(self, index: int) -> None:
        if self._updating or index < 0:
            return
        self.library.current = index
        self._refresh_sets()
        self.changed.emit()

    def _add_set(self) -> None:
        self.library.add()
        self._refresh_sets()
        self.changed.emit()

    def _rename_set(self) -> None:
        old = self.sample_set.name
        new, ok = QInputDialog.getText(self, "Rename sample set", "Name", text=old)
        if ok:
            self.rename_current(new)

    def rename_current(self, new: str) -> None:
        try:
            self.library.rename(self.sample_set.name, new)
        except SampleError as e:
            self.setToolTip(str(e))
            return
        self._refresh_sets()
        self.changed.emit()

    def _remove_set(self) -> None:
        try:
            self.library.remove(self.sample_set.name)
        except SampleError:
            return
        self._refresh_sets()
        self.changed.emit()

    def save_library(self, path) -> Path:
        """Write every sample set (sources, seeds, shapes, file paths) as JSON."""
        p = Path(path)
        p.write_text(self.library.to_json(), encoding="utf-8")
        return p

    def load_library(self, path) -> None:
        """Replace the sample sets with those of a JSON file; SampleError if it is not one."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise SampleError(f"cannot read {p}: {e.strerror or e}") from None
        self.library = SampleLibrary.from_json(text)
        self._refresh_sets()
        self.changed.emit()

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save sample sets", "samples.json",
                                              "Sample sets (*.json)")
        if path:
            try:
                self.save_library(path)
            except OSError as e:
                self.setToolTip(f"could not save {path}: {e}")

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load sample sets", "",
                                              "Sample sets (*.json)")
        if path:
            try:
                self.load_library(path)
            except SampleError as e:
                self.setToolTip(str(e))
                self.problem.emit(str(e))

    def _set_params(self) -> None:
        if self._updating:
            return
        self.sample_set.seed = self.seed.value()
        self.sample_set.batch = self.batch.value()
        self._fill_table()
        self.changed.emit()

    def _shape_edited(self, item: QTableWidgetItem) -> None:
        if self._updating or item.column() != 2:
            return
        spec = self.specs[item.row()]
        text = item.text().replace("[", "").replace("]", "").replace("x", ",")
        try:
            shape = [int(t) for t in text.replace(" ", ",").split(",") if t.strip()]
        except ValueError:
            shape = None
        src = self.sample_set.source(spec.name)
        old = src.shape
        src.shape = shape
        try:
            if shape is None:
                raise SampleError("a shape is integers separated by commas")
            self.sample_set.resolved_shape(spec)
            item.setToolTip("")
            item.setBackground(QBrush())
        except SampleError as e:
            src.shape = old
            item.setToolTip(str(e))
            item.setBackground(QColor("#ffcdd2"))
            return
        self.changed.emit()

    def _source_edited(self, *_) -> None:
        spec = self._current_spec()
        if self._updating or spec is None:
            return
        src = self.sample_set.source(spec.name)
        src.source = self.source.currentText()
        src.distribution = self.distribution.currentText()
        src.low, src.high = self.low.value(), self.high.value()
        if src.source == "file":
            src.path, src.key = self.file_path.text().strip(), self.file_key.text().strip()
        elif src.source == "image":
            src.path = self.image_path.text().strip()
        src.scaling = self.scaling.currentText()
        mean, _, std = self.mean_std.text().partition("/")
        try:
            m = tuple(float(v) for v in mean.split(",") if v.strip())
            s = tuple(float(v) for v in std.split(",") if v.strip())
            if m and s:
                src.mean, src.std = m, s
        except ValueError:
            pass
        row = self.table.currentRow()
        self._fill_table()
        self.table.selectRow(row)
        self.changed.emit()

    def _browse(self, line: QLineEdit, filt: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose sample values", "", filt)
        if path:
            line.setText(path)
            self._source_edited()


def _fmt(x, spec=".3g") -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    return format(x, spec)


def _bytes(n: int) -> str:
    v = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if v < 1024 or unit == "GiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return str(n)


class ComparePanel(QWidget):
    """The comparison dock. Works against ``document`` (a core Document), optionally the
    window's ``undo_stack`` (for earlier steps) and ``view`` (for the drift colours)."""

    #: Emitted on the GUI thread when a run ends: (CompareResult or None, error message or "").
    finished = Signal(object, str)

    def __init__(self, document=None, undo_stack=None, view=None, parent=None):
        super().__init__(parent)
        self.setObjectName("ComparePanel")
        self.document = None
        self.undo_stack = undo_stack
        self.view = view
        self.worker: Worker | None = None
        self.result: CompareResult | None = None
        self.error: str = ""
        self.error_nodes: list[str] = []
        self._stale = False
        self._build()
        if document is not None:
            self.set_document(document)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(6, 6, 6, 6)
        scroll.setWidget(body)
        outer.addWidget(scroll)

        top = QHBoxLayout()
        top.addWidget(QLabel("Current graph vs"))
        self.reference_combo = QComboBox()
        self.reference_combo.setToolTip("The reference: the model as loaded or any earlier "
                                        "step of the history")
        self.reference_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.reference_combo.setMinimumContentsLength(18)
        top.addWidget(self.reference_combo, 1)
        lay.addLayout(top)
        row = QHBoxLayout()
        self.run_btn = QPushButton("Run comparison")
        self.run_btn.setDefault(True)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        row.addWidget(self.run_btn)
        row.addWidget(self.cancel_btn)
        row.addWidget(self.progress, 1)
        lay.addLayout(row)

        head = QHBoxLayout()
        self.samples_toggle = QToolButton(text="Sample inputs", checkable=True)
        self.samples_toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.samples_toggle.setArrowType(Qt.RightArrow)
        self.samples_toggle.setAutoRaise(True)
        self.samples_toggle.setToolTip("Show the sample-input editor")
        self.samples_summary = QLabel()
        self.samples_summary.setWordWrap(True)
        head.addWidget(self.samples_toggle)
        head.addWidget(self.samples_summary, 1)
        lay.addLayout(head)
        self.samples = SamplesEditor()
        self.samples.setVisible(False)
        lay.addWidget(self.samples)

        opts = QHBoxLayout()
        opts2 = QHBoxLayout()
        self.runs = QSpinBox(minimum=0, maximum=10000, value=10,
                             toolTip="Timed runs per graph (0: no timing)")
        self.warmup = QSpinBox(minimum=0, maximum=1000, value=2, toolTip="Untimed runs first")
        self.rtol = QLineEdit(f"{DEFAULT_RTOL:g}", toolTip="relative tolerance of allclose")
        self.atol = QLineEdit(f"{DEFAULT_ATOL:g}", toolTip="absolute tolerance of allclose")
        for w in (self.rtol, self.atol):
            w.setMaximumWidth(70)
        self.drift_check = QCheckBox("Per-node drift")
        self.drift_check.setToolTip("Also fetch every tensor both graphs share (same name and "
                                    "shape) and colour the graph view by its error")
        for box, text, w in ((opts, "runs", self.runs), (opts, "warm-up", self.warmup),
                             (opts2, "rtol", self.rtol), (opts2, "atol", self.atol)):
            box.addWidget(QLabel(text))
            box.addWidget(w)
        opts.addStretch(1)
        self.drift_cap = QSpinBox(minimum=10, maximum=10**6, value=5000, singleStep=500,
                                  toolTip="Per-node drift fetches at most this many tensors "
                                  "(earliest first) and at most 512 MB per graph")
        self.drift_cap.setEnabled(False)
        opts2.addWidget(self.drift_check)
        opts2.addWidget(QLabel("max"))
        opts2.addWidget(self.drift_cap)
        opts2.addStretch(1)
        lay.addLayout(opts)
        lay.addLayout(opts2)

        self.message = QLabel("Choose a reference and run the comparison.")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message.setObjectName("compareMessage")
        lay.addWidget(self.message)
        self.show_node_btn = QPushButton("Show node")
        self.show_node_btn.setVisible(False)
        lay.addWidget(self.show_node_btn, 0, Qt.AlignLeft)

        self.outputs_table = QTableWidget(0, 7)
        self.outputs_table.setHorizontalHeaderLabels(
            ["Output", "Shape", "Max abs err", "Max rel err", "allclose", "Top-1", "Top-5"])
        self.outputs_table.verticalHeader().hide()
        self.outputs_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.outputs_table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.outputs_table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.outputs_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        lay.addWidget(self.outputs_table)
        self.histogram = ErrorHistogram()
        lay.addWidget(self.histogram)

        self.stats_table = QTableWidget(0, 4)
        self.stats_table.setHorizontalHeaderLabels(["", "Before", "After", "Change"])
        self.stats_table.verticalHeader().hide()
        self.stats_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.stats_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.stats_table.horizontalHeader().setStretchLastSection(True)
        self.stats_table.setToolTip("Latency: median and 10th–90th percentile of the timed "
                                    "runs, after the warm-up runs, each graph in its own "
                                    "session, runs alternating")
        lay.addWidget(self.stats_table)

        for t in (self.outputs_table, self.stats_table, self.samples.table):
            t.verticalHeader().setDefaultSectionSize(t.fontMetrics().height() + 8)
        self.drift_label = QLabel("")
        self.drift_label.setWordWrap(True)
        self.drift_label.setTextInteractionFlags(Qt.TextBrowserInteraction)
        self.drift_label.setOpenExternalLinks(False)
        self.drift_label.setToolTip("Click a node to centre the graph view on it")
        lay.addWidget(self.drift_label)

        exp = QHBoxLayout()
        self.report_btn = QPushButton("Save report…")
        self.npz_btn = QPushButton("Save outputs (.npz)…")
        self.report_btn.setEnabled(False)
        self.npz_btn.setEnabled(False)
        exp.addWidget(self.report_btn)
        exp.addWidget(self.npz_btn)
        exp.addStretch(1)
        lay.addLayout(exp)
        lay.addStretch(1)

        self.run_btn.clicked.connect(self.run)
        self.samples_toggle.toggled.connect(self._toggle_samples)
        self.samples.changed.connect(self._update_samples_summary)
        self.cancel_btn.clicked.connect(self.cancel)
        self.reference_combo.currentIndexChanged.connect(self._reference_chosen)
        self.rtol.editingFinished.connect(self.rejudge)
        self.atol.editingFinished.connect(self.rejudge)
        self.outputs_table.itemSelectionChanged.connect(self._show_histogram)
        self.drift_check.toggled.connect(self._drift_toggled)
        self.drift_check.toggled.connect(self.drift_cap.setEnabled)
        self.samples.problem.connect(self._show_problem)
        self.report_btn.clicked.connect(self._save_report_dialog)
        self.npz_btn.clicked.connect(self._save_npz_dialog)
        self.show_node_btn.clicked.connect(self._show_error_node)
        self.drift_label.linkActivated.connect(self._link_activated)

    def _toggle_samples(self, on: bool) -> None:
        self.samples.setVisible(on)
        self.samples_toggle.setArrowType(Qt.DownArrow if on else Qt.RightArrow)

    def _update_samples_summary(self) -> None:
        s = self.samples.sample_set
        parts = []
        for spec in self.samples.specs:
            try:
                shape = "×".join(map(str, s.resolved_shape(spec)))
            except SampleError:
                shape = "?"
            parts.append(f"{spec.name} {shape}: {s.describe(spec)}")
        self.samples_summary.setText(f"<i>{s.name}</i> — " + "; ".join(parts) if parts
                                     else "no inputs")

    # ------------------------------------------------------------------ document
    def set_document(self, document) -> None:
        if self.document is not None and hasattr(self.document, "changed"):
            self.document.changed.disconnect(self._document_changed)
        self.document = document
        self.result = None
        self._clear_results("Choose a reference and run the comparison.")
        if document is None:
            self.samples.reset([])
            self.refresh_references()
            return
        document.changed.connect(self._document_changed)
        self.refresh_references()
        self.samples.reset(self._specs())

    def _specs(self) -> list[InputSpec]:
        ref = self.reference_graph_def()
        if ref is None:
            return []
        try:
            return input_specs(Graph(ref), self._inputs(ref))
        except GraphError as e:
            self._show_error(str(e), e.nodes)
            return []

    def _inputs(self, ref: GraphDef) -> list[str]:
        """The reference graph's inputs: the document's chosen ones it has, else its
        Placeholders (a PlaceholderWithDefault keeps its default)."""
        given = self.document.graph.given_inputs if self.document is not None else None
        names = {n.name for n in ref.node}
        if given:
            kept = [i for i in given if node_of(i) in names]
            if kept:
                return kept
        return Graph(ref).inputs

    def _outputs(self) -> list[str]:
        return list(self.document.graph.outputs) if self.document is not None else []

    def _document_changed(self, change=None) -> None:
        if self.result is not None and not self._stale:
            self._stale = True
            self.message.setText(self.message.text() + "  — the graph has changed since this "
                                 "run: run again for current numbers.")
            if self.result.drift is not None:
                # The colours describe a graph that is gone: take them off the view.
                if self.view is not None and hasattr(self.view, "set_node_colors"):
                    self.view.set_node_colors({}, [])
                self.drift_label.setText(self.drift_label.text() + "<br><i>(for the graph "
                                         "before the last change: run again)</i>")
        self.refresh_references()
        if getattr(change, "reset", False):
            self.samples.set_specs(self._specs())

    # ------------------------------------------------------------------ references
    def references(self) -> list[tuple[str, object]]:
        """(label, key) for every graph the current one can be compared against: the model
        as loaded and the state after each applied step but the last (newest first)."""
        refs: list[tuple[str, object]] = []
        if self.document is None:
            return refs
        refs.append(("Original (as loaded)", "original"))
        n = len(getattr(self.document, "applied", []))
        labels = self._step_labels(n)
        saved = getattr(self.document, "saved_step", None)
        if saved is not None and 0 < saved < n:
            refs.append((f"Last saved (after step {saved})", f"after:{saved}"))
        for m in range(n - 1, 0, -1):
            refs.append((f"After step {m}: {labels[m - 1]}", f"after:{m}"))
        return refs

    def _step_labels(self, n: int) -> list[str]:
        """What each applied step was, from the undo stack's commands when they match."""
        stack = self.undo_stack
        if stack is not None:
            try:
                from .commands import applied_commands
                texts = [c.text() for c in applied_commands(stack)]
            except Exception:  # noqa: BLE001 - another kind of stack: plain texts
                texts = [stack.text(i) for i in range(stack.index())]
            if len(texts) == n:
                return texts
        return [f"step {i + 1}" for i in range(n)]

    def refresh_references(self) -> None:
        key = self.reference_combo.currentData()
        self.reference_combo.blockSignals(True)
        self.reference_combo.clear()
        for label, k in self.references():
            self.reference_combo.addItem(label, k)
        idx = self.reference_combo.findData(key) if key is not None else -1
        self.reference_combo.setCurrentIndex(max(idx, 0))
        self.reference_combo.blockSignals(False)

    def _reference_chosen(self, *_):
        self.samples.set_specs(self._specs())

    def reference_graph_def(self, key=None) -> GraphDef | None:
        """The GraphDef of a reference (the chosen one by default), rebuilt by the Document
        from its step deltas (a copy; the document is not touched)."""
        doc = self.document
        if doc is None:
            return None
        key = key or self.reference_combo.currentData() or "original"
        if key.startswith("after:"):
            back = len(doc.applied) - int(key.split(":")[1])
            if back <= 0:
                return _copy(doc.graph_def)
            return doc.graph_before(back).graph_def
        return doc.original

    def reference_label(self) -> str:
        return self.reference_combo.currentText() or "Original (as loaded)"

    # ------------------------------------------------------------------ running
    def tolerances(self) -> tuple[float, float]:
        def parse(line: QLineEdit, default: float) -> float:
            try:
                v = float(line.text())
                if v < 0 or not math.isfinite(v):
                    raise ValueError
                line.setStyleSheet("")
                return v
            except ValueError:
                line.setStyleSheet("background:#ffcdd2")
                line.setToolTip(f"a non-negative number; using {default:g}")
                return default
        return parse(self.rtol, DEFAULT_RTOL), parse(self.atol, DEFAULT_ATOL)

    def make_request(self) -> CompareRequest:
        if self.document is None:
            raise GraphError("no model is open")
        ref = self.reference_graph_def()
        if ref is None:
            raise GraphError("the chosen reference is not available")
        rtol, atol = self.tolerances()
        return CompareRequest(reference=ref, current=_copy(self.document.graph_def),
                              reference_label=self.reference_label().split(" (")[0],
                              current_label="Current", inputs=self._inputs(ref),
                              outputs=self._outputs(), samples=copy.deepcopy(
                                  self.samples.sample_set),
                              runs=self.runs.value(), warmup=self.warmup.value(), rtol=rtol,
                              atol=atol, drift=self.drift_check.isChecked(),
                              drift_max_tensors=self.drift_cap.value())

    def run(self) -> Worker | None:
        """Start a comparison in the background (returns the worker, None if it could not)."""
        if self.worker is not None:
            return self.worker
        try:
            req = self.make_request()
        except GraphError as e:
            self._show_error(str(e), e.nodes)
            self.finished.emit(None, self.error)
            return None
        self._clear_results("Running…")
        self.result, self.error, self.error_nodes = None, "", []
        self.run_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setFormat("starting")
        worker = Worker(_job, req)
        worker.signals.progress.connect(self._progress)
        worker.signals.finished.connect(self._done)
        worker.signals.failed.connect(self._failed)
        worker.signals.cancelled.connect(self._cancelled)
        worker.signals.done.connect(self._ended)
        self.worker = worker
        worker.start()
        return worker

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.progress.setFormat("cancelling…")

    def wait(self, timeout: float = 600.0) -> bool:
        """Run the event loop until the current run ends (for scripts and tests)."""
        if self.worker is None:
            return True
        loop = QEventLoop()
        self.finished.connect(loop.quit)
        timer = QTimer(singleShot=True)
        timer.timeout.connect(loop.quit)
        timer.start(int(timeout * 1000))
        if self.worker is not None:
            loop.exec()
        self.finished.disconnect(loop.quit)
        return self.worker is None

    def run_and_wait(self, timeout: float = 600.0) -> CompareResult:
        """Run, wait, and return the result; raise :class:`GraphError` with the message if the
        run failed, was cancelled or timed out."""
        self.run()
        if not self.wait(timeout):
            self.cancel()
            raise GraphError(f"the comparison did not finish within {timeout:.0f} s")
        if self.result is None:
            raise GraphError(self.error or "the comparison failed", nodes=self.error_nodes)
        return self.result

    def _progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(f"{text} (%p%)" if text else "%p%")

    def _done(self, result: CompareResult) -> None:
        self.result = result
        self._stale = False
        self.error, self.error_nodes = "", []
        self.show_result()

    def _failed(self, message: str, exc) -> None:
        if isinstance(exc, InterruptedError):
            self._cancelled()
            return
        nodes = list(getattr(exc, "nodes", []) or [])
        if not isinstance(exc, (GraphError, ValueError, KeyError, OSError)):
            message = f"internal error — {message}"
        self._show_error(message, nodes)

    def _cancelled(self) -> None:
        self._clear_results("Cancelled: no results.")
        self.error = "cancelled"

    def _ended(self) -> None:
        self.worker = None
        self.run_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)
        if self.result is None:
            self.progress.setValue(0)
            self.progress.setFormat("failed" if self.error_nodes or self.error else "idle")
        self.finished.emit(self.result, "" if self.result is not None else self.error)

    def _show_error(self, message: str, nodes: list[str]) -> None:
        self.error = f"Comparison failed: {message}"
        self.error_nodes = nodes
        text = self.error
        if nodes:
            text += f"\nNode: {', '.join(nodes[:5])}"
        self.message.setText(text)
        self.message.setStyleSheet("color:#c62828")
        self.show_node_btn.setVisible(bool(nodes) and self.view is not None)
        self.progress.setFormat("failed")

    def _link_activated(self, link: str) -> None:
        if link.startswith("node:"):
            _focus(self.view, link[len("node:"):])

    def _show_problem(self, text: str) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color:#c62828")

    def _show_error_node(self) -> None:
        if self.error_nodes:
            _focus(self.view, self.error_nodes[0])

    def _clear_results(self, message: str) -> None:
        self.message.setText(message)
        self.message.setStyleSheet("")
        self.show_node_btn.setVisible(False)
        self.outputs_table.setRowCount(0)
        self.stats_table.setRowCount(0)
        self.histogram.set_histogram(None, DEFAULT_ATOL)
        self.drift_label.setText("")
        self.report_btn.setEnabled(False)
        self.npz_btn.setEnabled(False)

    # ------------------------------------------------------------------ showing
    def show_result(self) -> None:
        res = self.result
        if res is None:
            return
        cmp = res.comparison
        self.progress.setValue(1000)
        self.progress.setFormat("done")
        self._fill_outputs()
        a, b = cmp.a, cmp.b
        rows = []

        def lat(s):
            return (f"{s.latency_ms:.3f} ms" if s.latency_ms is not None else "not timed")

        def spread(s):
            if s.latency_ms is None:
                return "–"
            return f"{s.latency_percentile(10):.3f}–{s.latency_percentile(90):.3f} ms"

        def change(x, y):
            return f"{(y - x) / x:+.1%}" if x else "–"
        rows.append(("Latency, median", lat(a), lat(b),
                     _speed(cmp.speedup)))
        rows.append((f"p10–p90 ({cmp.runs} runs)", spread(a), spread(b), ""))
        rows.append(("Nodes", f"{a.node_count:,}", f"{b.node_count:,}",
                     change(a.node_count, b.node_count)))
        rows.append(("Op types", str(a.op_count), str(b.op_count),
                     change(a.op_count, b.op_count)))
        rows.append(("Parameters", f"{a.parameter_count:,}", f"{b.parameter_count:,}",
                     change(a.parameter_count, b.parameter_count)))
        rows.append(("Serialized size", _bytes(a.serialized_bytes), _bytes(b.serialized_bytes),
                     change(a.serialized_bytes, b.serialized_bytes)))
        self.stats_table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                it = QTableWidgetItem(text)
                if c > 0:
                    it.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.stats_table.setItem(r, c, it)
        _fit_height(self.stats_table)
        self._show_drift()
        self.report_btn.setEnabled(True)
        self.npz_btn.setEnabled(True)

    def _fill_outputs(self) -> None:
        cmp = self.result.comparison
        t = self.outputs_table
        t.setRowCount(len(cmp.outputs))
        for r, o in enumerate(cmp.outputs):
            verdict = "yes" if o.allclose else "NO"
            cells = [o.name, "×".join(map(str, o.shape_b)) or "scalar", _fmt(o.max_abs_err),
                     _fmt(o.max_rel_err), verdict,
                     "–" if o.top1_agreement is None else f"{o.top1_agreement:.0%}",
                     "–" if o.top5_agreement is None else f"{o.top5_agreement:.0%}"]
            for c, text in enumerate(cells):
                it = QTableWidgetItem(text)
                if c == 4:
                    it.setForeground(QColor("#1b5e20" if o.allclose else "#b71c1c"))
                    f = it.font()
                    f.setBold(True)
                    it.setFont(f)
                    it.setToolTip(f"|b − a| ≤ atol + rtol·|a| with rtol={o.rtol:g}, "
                                  f"atol={o.atol:g}" + (f"; {o.note}" if o.note else ""))
                if c in (2, 3, 5, 6):
                    it.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                t.setItem(r, c, it)
        if cmp.outputs and t.currentRow() < 0:
            t.selectRow(0)
        _fit_height(t, max_rows=6)
        bad = [o.name for o in cmp.outputs if not o.allclose]
        if bad:
            self.message.setText(f"MISMATCH: {len(bad)} of {len(cmp.outputs)} output(s) are "
                                 f"not allclose to {self.result.request.reference_label} "
                                 f"(rtol={cmp.rtol:g}, atol={cmp.atol:g}): {', '.join(bad)}")
            self.message.setStyleSheet("color:#c62828; font-weight:bold")
        else:
            self.message.setText(f"All {len(cmp.outputs)} output(s) allclose to "
                                 f"{self.result.request.reference_label} "
                                 f"(rtol={cmp.rtol:g}, atol={cmp.atol:g}).")
            self.message.setStyleSheet("color:#1b5e20; font-weight:bold")
        if cmp.dropped_feeds_b:
            self.message.setText(self.message.text() + "  Not fed to the current graph (gone): "
                                 + ", ".join(cmp.dropped_feeds_b))
        self._show_histogram()

    def _show_histogram(self) -> None:
        if self.result is None:
            return
        outs = self.result.comparison.outputs
        r = self.outputs_table.currentRow()
        if 0 <= r < len(outs):
            o = outs[r]
            self.histogram.set_histogram(o.histogram, o.atol, f"|b − a| per element of {o.name}")

    def rejudge(self) -> None:
        """Recompute errors and verdicts with the edited tolerances, from the kept values."""
        if self.result is None:
            return
        rtol, atol = self.tolerances()
        res = self.result
        new = []
        for o in res.comparison.outputs:
            if o.name in res.values_a and o.name_b in res.values_b:
                new.append(compare_outputs(o.name, res.values_a[o.name], res.values_b[o.name_b],
                                           rtol, atol, name_b=o.name_b))
            else:
                new.append(o)
        res.comparison.outputs = new
        res.comparison.rtol, res.comparison.atol = rtol, atol
        res.request.rtol, res.request.atol = rtol, atol
        if res.drift is not None:
            gb = Graph(res.request.current)
            res.origins = res.drift.origins(gb, rtol, atol)
            res.persistent = res.drift.persistent(gb, rtol, atol)
        self._fill_outputs()
        self._show_drift()

    # ------------------------------------------------------------------ drift
    def _show_drift(self) -> None:
        res = self.result
        if res is None or res.drift is None:
            self.drift_label.setText("" if not self.drift_check.isChecked() else
                                     "Per-node drift: run the comparison to measure it.")
            return
        d = res.drift
        rtol, atol = res.request.rtol, res.request.atol
        drifting = d.drifting(rtol, atol)
        parts = [f"<b>Per-node drift</b>: {len(d.errors)} nodes compared, "
                 f"{len(drifting)} beyond tolerance ({len(res.persistent)} reach an output, "
                 f"{len(drifting) - len(res.persistent)} re-converge), "
                 f"{len(d.no_counterpart)} with no counterpart, {len(d.skipped)} not comparable"
                 + (" (capped)" if d.truncated else "") + "."]
        if d.edited_consts:
            shown = ", ".join(_short_name(n) for n in d.edited_consts[:2])
            more = len(d.edited_consts) - 2
            parts.append(f"{len(d.edited_consts)} changed constant(s) (folded by a pass, or "
                         f"edited): {shown}" + (f" and {more} more" if more > 0 else ""))
        if res.origins:
            items = []
            for n in res.origins[:5]:
                e = d.errors[n]
                items.append(f"<a href='node:{html.escape(n, quote=True)}' "
                             f"title='{html.escape(n, quote=True)}'>"
                             f"{html.escape(_short_name(n))}</a> (rel {_fmt(e.max_rel)})")
            parts.append("<span style='color:#c62828'>The error starts at: "
                         + ", ".join(items) + "</span>")
        self.drift_label.setText("<br>".join(parts))
        self._paint_view()

    def _paint_view(self) -> None:
        if self.view is None or not hasattr(self.view, "set_node_colors") or self._stale:
            return
        res = self.result
        if not self.drift_check.isChecked() or res is None or res.drift is None:
            self.view.set_node_colors({}, [])
            return
        colors, legend = drift_colors(res.drift, res.request.rtol, res.request.atol,
                                      res.persistent)
        self.view.set_node_colors(colors, legend)
        if res.origins:
            _focus(self.view, res.origins[0], select=False)

    def _drift_toggled(self, on: bool) -> None:
        if self.result is not None and self.result.drift is not None:
            self._paint_view()
        elif not on and self.view is not None and hasattr(self.view, "set_node_colors"):
            self.view.set_node_colors({}, [])
        self._show_drift()

    # ------------------------------------------------------------------ export
    def report_dict(self) -> dict:
        res = self.result
        d = res.comparison.to_dict()
        ref_graph = Graph(res.request.reference)
        specs = {s.name: s for s in input_specs(ref_graph, res.request.inputs or None)}
        for name, f in d["feeds"].items():
            if name in specs:
                f["source"] = res.request.samples.describe(specs[name])
        d["labels_note"] = (f"Reference: {res.request.reference_label}; compared: "
                            f"{res.request.current_label}. Sample set "
                            f"'{res.request.samples.name}'.")
        return d

    def drift_dict(self) -> dict | None:
        res = self.result
        if res is None or res.drift is None:
            return None
        d = res.drift.to_dict()
        d["origins"] = res.origins
        return d

    def save_report(self, path: str | Path) -> list[Path]:
        if self.result is None:
            raise GraphError("run a comparison first")
        title = "Comparison"
        if self.document is not None and getattr(self.document, "path", None):
            title += f": {Path(self.document.path).name}"
        return write_report(path, self.report_dict(), title, self.drift_dict())

    def save_npz(self, path: str | Path) -> Path:
        if self.result is None:
            raise GraphError("run a comparison first")
        r = self.result
        return save_outputs_npz(path, r.feeds, r.values_a, r.values_b)

    def _save_report_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save comparison report", "comparison.html",
                                              "HTML (*.html);;Markdown (*.md)")
        if path:
            self._export(self.save_report, path)

    def _save_npz_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save inputs and outputs",
                                              "comparison.npz", "NumPy archive (*.npz)")
        if path:
            self._export(self.save_npz, path)

    def _export(self, fn, path) -> None:
        try:
            out = fn(path)
        except (OSError, ValueError, GraphError) as e:
            self.message.setText(f"Could not save {path}: {e}")
            self.message.setStyleSheet("color:#c62828")
            return
        files = out if isinstance(out, list) else [out]
        self.progress.setFormat("saved " + ", ".join(Path(f).name for f in files))


def _job(req: CompareRequest, state=None) -> CompareResult:
    try:
        return run_comparison(req, progress=state.progress if state else None,
                              should_stop=(lambda: state.cancelled) if state else None)
    except InterruptedError:
        if state is not None:
            state.cancel()
            state.check()
        raise
    except (GraphError, ValueError, KeyError, OSError, InterruptedError):
        raise
    except Exception as e:  # noqa: BLE001 - TF errors of any kind become a message
        msg = getattr(e, "message", None) or str(e) or type(e).__name__
        traceback.print_exc()
        raise GraphError(f"{type(e).__name__}: {msg.strip().splitlines()[0]}") from None


def _speed(speedup: float | None) -> str:
    if not speedup:
        return "–"
    return f"{speedup:.2f}× faster" if speedup >= 1 else f"{1 / speedup:.2f}× slower"


def _short_name(name: str, keep: int = 3) -> str:
    """The last ``keep`` scopes of a long node name (the full name is in the tooltip)."""
    parts = name.split("/")
    return name if len(parts) <= keep else "…/" + "/".join(parts[-keep:])


def _fit_height(table: QTableWidget, max_rows: int = 50) -> None:
    """Size a table to its rows (up to ``max_rows``), so short tables waste no space."""
    rows = min(table.rowCount(), max_rows)
    h = table.horizontalHeader().height() + 2 * table.frameWidth()
    h += sum(table.rowHeight(r) for r in range(rows)) if rows else table.verticalHeader(
    ).defaultSectionSize()
    if table.horizontalScrollBar().isVisible():
        h += table.horizontalScrollBar().sizeHint().height()
    table.setFixedHeight(h + 2)


def _copy(gd: GraphDef) -> GraphDef:
    out = GraphDef()
    out.CopyFrom(gd)
    return out


def _focus(view, node: str, select: bool = True) -> None:
    for name in (("select_node", "focus_node", "center_on") if select else
                 ("focus_node", "center_on")):
        fn = getattr(view, name, None)
        if callable(fn):
            try:
                fn(node)
            except Exception:  # noqa: BLE001 - the view may not show this node (collapsed)
                pass
            return


# ---------------------------------------------------------------------- main window wiring
def install_compare_panel(window):
    """Dock a :class:`ComparePanel` on ``window`` (uses its ``document``, ``undo_stack``,
    ``view``, ``add_panel`` and ``document_opened``); adds Edit ▸ Run Comparison (Ctrl+R).
    Returns ``(panel, dock)``."""
    from PySide6.QtGui import QAction, QKeySequence
    panel = ComparePanel(None, window.undo_stack, window.view)
    dock = window.add_panel(panel, "Comparison", Qt.RightDockWidgetArea, "CompareDock")
    window.document_opened.connect(panel.set_document)
    if getattr(window, "document", None) is not None:
        panel.set_document(window.document)

    def maybe_closed(*_):
        # The window has no "closed" signal: when it shows its start page again, the model
        # is gone and the panel lets go of it (no comparison of a closed model).
        if getattr(window, "document", None) is None and panel.document is not None:
            if panel.worker is not None:
                panel.cancel()
            panel.set_document(None)
    stack = getattr(window, "stack", None)
    if stack is not None and hasattr(stack, "currentChanged"):
        stack.currentChanged.connect(maybe_closed)
    action = QAction("Run &Comparison", window)
    action.setObjectName("actionRunComparison")
    action.setShortcut(QKeySequence("Ctrl+R"))
    action.setToolTip("Compare the current graph with the original (or an earlier step) on "
                      "the sample inputs")

    def run_now():
        dock.show()
        dock.raise_()
        panel.run()
    action.triggered.connect(run_now)
    menu = getattr(window, "edit_menu", None)
    if menu is not None:
        menu.addAction(action)
    panel.run_action = action
    return panel, dock


def run_compare_for_script(panel: ComparePanel, dock, done) -> None:
    """For ``surgeon-gui MODEL --apply ... --compare --screenshot``: show the panel, run with
    the default sample inputs, then call ``done(None)`` or ``done(message)``."""
    dock.show()
    dock.raise_()
    window = dock.parentWidget()
    if window is not None and hasattr(window, "resizeDocks"):
        # Give the results most of the dock column's height and a readable width.
        window.resizeDocks([dock], [int(window.height() * 0.7)], Qt.Vertical)
        window.resizeDocks([dock], [max(dock.width(), 470)], Qt.Horizontal)
    if panel.document is None:
        done("no model is open")
        return

    def finished(result, error):
        panel.finished.disconnect(finished)
        message = (error or "the comparison failed").removeprefix("Comparison failed: ")
        done(None if result is not None else message.replace("\n", "; "))
    panel.finished.connect(finished)
    panel.run()   # a request that cannot be made emits finished(None, message) at once
