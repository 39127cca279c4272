"""The sample-inputs editor of the comparison: named sample sets, their seed and batch, and each
input's source (random, an array file, an image)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QSpinBox,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.running.samples import (
    DISTRIBUTIONS,
    SCALINGS,
    InputSpec,
    SampleError,
    SampleLibrary,
    SampleSet,
)
from .compare_results import fit_height


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
        # Two rows, as the sample sets share the Comparison's narrow dock (~300 px at 1600×1000).
        row.addWidget(QLabel("Set"))
        row.addWidget(self.set_combo, 1)
        lay.addLayout(row)
        buttons = QHBoxLayout()
        for w in (self.add_btn, self.rename_btn, self.remove_btn, self.save_btn, self.load_btn):
            buttons.addWidget(w)
        buttons.addStretch(1)
        lay.addLayout(buttons)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("seed"))
        row2.addWidget(self.seed, 1)
        row2.addWidget(QLabel("batch"))
        row2.addWidget(self.batch)
        lay.addLayout(row2)

        self.table = QTableWidget(0, 4)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.setHorizontalHeaderLabels(["Input", "dtype", "Shape", "Values"])
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(self.table)
        #: What a default shape assumes (an image input's 224×224), under the table.
        self.assumed = QLabel(wordWrap=True)
        self.assumed.setVisible(False)
        lay.addWidget(self.assumed)

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
        rl = QGridLayout(rnd)
        rl.setContentsMargins(0, 0, 0, 0)
        self.distribution = QComboBox()
        self.distribution.addItems(DISTRIBUTIONS)
        self.low = QDoubleSpinBox(minimum=-1e6, maximum=1e6, decimals=3, value=0.0)
        self.high = QDoubleSpinBox(minimum=-1e6, maximum=1e6, decimals=3, value=1.0)
        for w in (self.low, self.high):  # sized for ±1e6, mostly 0 to 1: narrow is enough
            w.setMinimumWidth(w.fontMetrics().horizontalAdvance("-10000.000") + 30)
        rl.addWidget(self.distribution, 0, 0, 1, 3, Qt.AlignLeft)
        rl.addWidget(QLabel("range"), 1, 0)
        rl.addWidget(self.low, 1, 1)
        rl.addWidget(self.high, 1, 2)
        self.stack.addWidget(rnd)
        # file
        fil = QWidget()
        fl = QGridLayout(fil)
        fl.setContentsMargins(0, 0, 0, 0)
        self.file_path = QLineEdit(placeholderText=".npy or .npz file")
        self.file_key = QLineEdit(placeholderText="array in .npz (default: input name)")
        self.file_browse = QToolButton(text="…")
        fl.addWidget(self.file_path, 0, 0)
        fl.addWidget(self.file_browse, 0, 1)
        fl.addWidget(self.file_key, 1, 0, 1, 2)
        self.stack.addWidget(fil)
        # image
        img = QWidget()
        il = QGridLayout(img)
        il.setContentsMargins(0, 0, 0, 0)
        self.image_path = QLineEdit(placeholderText="png / jpeg / bmp / gif")
        self.image_browse = QToolButton(text="…")
        self.scaling = QComboBox()
        self.scaling.addItems(SCALINGS)
        self.mean_std = QLineEdit(toolTip="mean / std per channel, 0..255 units")
        il.addWidget(self.image_path, 0, 0, 1, 2)
        il.addWidget(self.image_browse, 0, 2)
        il.addWidget(self.scaling, 1, 0)
        il.addWidget(self.mean_std, 1, 1, 1, 2)
        self.stack.addWidget(img)
        lay.addLayout(form)
        lay.addWidget(self.stack)  # under "Source", not beside it: the full width

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
            needs_shape = False
            try:
                shape_text = ",".join(map(str, s.resolved_shape(spec))) or "scalar"
            except SampleError:
                # A float input of unknown rank: ask for the whole shape here.
                needs_shape = spec.shape is None
                shape_text = "type a shape, e.g. 1,224,224,3" if needs_shape else "?"
            shape = QTableWidgetItem(shape_text)
            want = "unknown rank" if spec.shape is None else \
                "[" + ", ".join("?" if d < 0 else str(d) for d in spec.shape) + "]"
            shape.setToolTip(f"Placeholder shape {want}; edit the unknown dimensions "
                             "(comma-separated)" if not needs_shape else
                             "The graph does not say this input's rank: type its whole shape "
                             "(comma-separated dimensions) to run the comparison")
            if needs_shape:
                shape.setForeground(QColor("#b71c1c"))
            note = s.assumption(spec)
            if note:
                shape.setToolTip(f"{note}; type the real size here "
                                 f"(Placeholder shape {want})")
            if not spec.unknown_dims and spec.shape is not None:
                shape.setFlags(shape.flags() & ~Qt.ItemIsEditable)
            values = QTableWidgetItem(s.describe(spec))
            for it in (name, dtype, values):
                it.setFlags(it.flags() & ~Qt.ItemIsEditable)
            for c, it in enumerate((name, dtype, shape, values)):
                self.table.setItem(r, c, it)
        if self.specs:
            self.table.selectRow(min(max(sel, 0), len(self.specs) - 1))
        fit_height(self.table, max_rows=5)
        self._update_assumed()
        self._updating = False
        self._show_source()

    def _update_assumed(self) -> None:
        """Say under the table what the default shapes assume (RetinaFace: 224×224)."""
        notes = [(f"{spec.name}: {note}" if len(self.specs) > 1 else note)
                 for spec in self.specs if (note := self.sample_set.assumption(spec))]
        self.assumed.setText("; ".join(notes) + " (type the real size under Shape)"
                             if notes else "")
        self.assumed.setVisible(bool(notes))

    def point_at_shape(self, name: str) -> bool:
        """Select input ``name``'s Shape cell and give the table the focus (a run failed on
        the shape filled in by default: the user types the real one there)."""
        row = next((r for r, spec in enumerate(self.specs) if spec.name == name), None)
        if row is None:
            return False
        self.table.setCurrentCell(row, 2)
        self.table.setFocus()
        return True

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
        from ..core.model.files import write_file
        return write_file(path, self.library.to_json().encode("utf-8"), overwrite=True)

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
            self._update_assumed()
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
