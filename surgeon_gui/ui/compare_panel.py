"""The comparison dock: prove the surgery kept the model's numbers, and see what it bought.

The panel runs a reference graph (the model as loaded, or any earlier step of the history) and
the current graph on the same sample inputs in a background :class:`Worker`, then shows per
output the errors, the allclose verdict (tolerances editable: the verdict is recomputed from the
kept values without running again), top-1/top-5 agreement and an error histogram; per graph the
latency (median, p10-p90), node/op/parameter counts and serialized size. Optionally it measures
the drift at every node both graphs share and colours the graph view by it.

All the numbers come from :func:`surgeon_gui.core.running.compare.compare_graphs`, the function
``surgeon compare`` uses, so the panel and the CLI agree by construction (a test checks it).

The Qt-free job lives in :mod:`surgeon_gui.core.running.comparison`; the result tables in
:mod:`.compare_results`, the histogram in :mod:`.error_histogram`, the sample-inputs editor in
:mod:`.samples_editor`.
"""
from __future__ import annotations

import copy
import html
import math
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QEventLoop, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.model.graph import Graph, GraphDef, GraphError, detect_inputs, node_of
from ..core.running.comparison import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    SHAPE_HINT,
    CompareRequest,
    CompareResult,
    comparison_job_isolated,
    drift_dict,
    rejudge,
    report_dict,
)
from ..core.running.report import save_outputs_npz, write_report
from ..core.running.samples import InputSpec, SampleError, input_specs
from .compare_results import (
    OutputsTable,
    StatsTable,
    drift_colors,
    fmt,
)
from .commands import hold
from .error_histogram import ErrorHistogram
from .samples_editor import SamplesEditor
from .workers import Worker

_fmt = fmt  # the name tests and older scripts use


class ComparePanel(QWidget):
    """The comparison dock. Works against ``document`` (a core Document: its step list gives
    the references) and ``view`` (the graph view, or None: where the drift colours go)."""

    #: Emitted on the GUI thread when a run ends: (CompareResult or None, error message or "").
    finished = Signal(object, str)

    def __init__(self, document=None, view=None, parent=None):
        super().__init__(parent)
        self.setObjectName("ComparePanel")
        self.document = None
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
        self.reference_combo.setMinimumContentsLength(10)
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
        # The panel shares the ~320 px right column at 1600×1000: one thing per row where a
        # row would not fit (the progress under its buttons, the target on its own row).
        row.addWidget(self.run_btn)
        row.addWidget(self.cancel_btn)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addWidget(self.progress)
        # what the run said, under it (not below the options and an open Sample inputs)
        self.message = QLabel("Choose a reference and run the comparison.")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message.setObjectName("compareMessage")
        lay.addWidget(self.message)
        self.show_node_btn = QPushButton("Show node")
        self.show_node_btn.setVisible(False)
        lay.addWidget(self.show_node_btn, 0, Qt.AlignLeft)

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
        opts3 = QHBoxLayout()
        opts4 = QHBoxLayout()
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
        # Where the graph goes next: also run both graphs there (issue: deployment targets).
        self.target_combo = QComboBox()
        self.target_combo.addItem("TensorFlow only", "")
        self.target_combo.addItem("+ OpenCV DNN", "opencv")
        self.target_combo.addItem("+ TensorFlow Lite", "tflite")
        self.target_combo.setToolTip("Also run both graphs in this runtime on the same feeds: "
                                     "does it load, match TensorFlow's outputs, how fast")
        opts2.addStretch(1)
        opts3.addWidget(self.drift_check)
        opts3.addWidget(QLabel("max"))
        opts3.addWidget(self.drift_cap)
        opts3.addStretch(1)
        opts4.addWidget(QLabel("target"))
        opts4.addWidget(self.target_combo)
        opts4.addStretch(1)
        for box in (opts, opts2, opts3, opts4):
            lay.addLayout(box)

        self.target_label = QLabel("")
        self.target_label.setWordWrap(True)
        self.target_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.target_label.setVisible(False)
        lay.addWidget(self.target_label)

        self.outputs_table = OutputsTable()
        lay.addWidget(self.outputs_table)
        self.histogram = ErrorHistogram()
        lay.addWidget(self.histogram)
        self.stats_table = StatsTable()
        lay.addWidget(self.stats_table)

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
                if note := s.assumption(spec):  # "224×224 assumed: the graph does not fix..."
                    shape += f" ({note.partition(':')[0]})"
            except SampleError:
                shape = "?"
            parts.append(f"{spec.name} {shape}: {s.describe(spec)}")
        self.samples_summary.setText(f"<i>{s.name}</i> — " + "; ".join(parts) if parts
                                     else "no inputs")

    # ------------------------------------------------------------------ document
    def set_document(self, document) -> None:
        """Compare in ``document`` (None: no model); results, drift and a running comparison
        of the one before go."""
        if self.worker is not None:   # its result would describe the model before
            w = self.worker
            w.cancel()
            for sig, slot in ((w.signals.progress, self._progress), (w.signals.finished,
                              self._done), (w.signals.failed, self._failed),
                              (w.signals.cancelled, self._cancelled)):
                sig.disconnect(slot)
        if self.result is not None and self.result.drift is not None and self.view is not None:
            self.view.set_node_colors({}, [])
        if self.document is not None:
            self.document.changed.disconnect(self._document_changed)
        self.document = document
        self.result, self._stale, self.error, self.error_nodes = None, False, "", []
        self._clear_results("Choose a reference and run the comparison." if document is not None
                            else "No model open.")
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.run_btn.setEnabled(document is not None and self.worker is None)
        if document is None:
            self.samples.reset([])
            self.refresh_references()
            return
        document.changed.connect(self._document_changed)
        self.refresh_references()
        self.samples.reset(self._specs())

    def _specs(self) -> list[InputSpec]:
        doc = self.document
        if (doc is not None and not doc.applied
                and (self.reference_combo.currentData() or "original") == "original"):
            # Nothing applied yet: the original is the open graph; read it, do not copy it
            # (a whole-graph copy on the GUI thread at every open: 0.4 s on NASNetLarge).
            ref, graph = doc.graph_def, doc.graph
        else:
            ref = self.reference_graph_def()
            graph = Graph(ref) if ref is not None else None
        if ref is None:
            return []
        try:
            return input_specs(graph, self._inputs(ref, graph))
        except GraphError as e:
            self._show_error(str(e), e.nodes)
            return []

    def _inputs(self, ref: GraphDef, graph: Graph | None = None) -> list[str]:
        """The reference graph's inputs: the document's chosen ones it has, else its
        Placeholders (a PlaceholderWithDefault keeps its default). ``graph``: an index of
        ``ref`` when there is one (indexing a 100k-node graph again costs 0.3 s)."""
        if graph is None or graph.graph_def is not ref:
            graph = Graph(ref)
        given = self.document.graph.given_inputs if self.document is not None else None
        if given:
            kept = [i for i in given if node_of(i) in graph.nodes]
            if kept:
                return kept
        return detect_inputs(graph)

    def _outputs(self) -> list[str]:
        return list(self.document.graph.outputs) if self.document is not None else []

    def _document_changed(self, change=None) -> None:
        if self.result is not None and not self._stale:
            self._stale = True
            self.message.setText(self.message.text() + "  — the graph has changed since this "
                                 "run: run again for current numbers.")
            if self.result.drift is not None:
                # The colours describe a graph that is gone: take them off the view.
                if self.view is not None:
                    self.view.set_node_colors({}, [])
                self.drift_label.setText(self.drift_label.text() + "<br><i>(for the graph "
                                         "before the last change: run again)</i>")
        self.refresh_references()
        if change is not None and change.reset:
            self.samples.set_specs(self._specs())

    # ------------------------------------------------------------------ references
    def references(self) -> list[tuple[str, object]]:
        """(label, key) for every graph the current one can be compared against: the model
        as loaded and the state after each applied step but the last (newest first), read
        from the document's step list."""
        doc = self.document
        if doc is None:
            return []
        refs: list[tuple[str, object]] = [("Original (as loaded)", "original")]
        n = doc.cursor
        steps = doc.applied_steps
        saved = doc.saved_step
        if saved is not None and 0 < saved < n:
            refs.append((f"Last saved (after step {saved})", f"after:{saved}"))
        for m in range(n - 1, 0, -1):
            refs.append((f"After step {m}: {steps[m - 1].label}", f"after:{m}"))
        return refs

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

    def reference_state(self, key=None) -> int | None:
        """How many steps the chosen reference (or ``key``) has applied (0: as loaded)."""
        if self.document is None:
            return None
        key = key or self.reference_combo.currentData() or "original"
        return int(key.split(":")[1]) if key.startswith("after:") else 0

    def reference_graph(self, key=None) -> Graph | None:
        """The reference's graph with its inputs/outputs, rebuilt by the Document from its
        step deltas (a copy; the document is not touched)."""
        n = self.reference_state(key)
        if n is None:
            return None
        return self.document.graph_at(min(n, self.document.cursor))

    def reference_graph_def(self, key=None) -> GraphDef | None:
        g = self.reference_graph(key)
        return None if g is None else g.graph_def

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
        """The comparison's request, built here (both graphs copied on this thread)."""
        return self.request_builder()()

    def request_builder(self) -> Callable[[], CompareRequest]:
        """What the comparison needs, captured now (cheap); the returned function makes the
        request — copying both graphs, 0.3-1.3 s on NASNetLarge — on any thread. While it
        copies, undo/redo wait (:func:`.commands.hold`: they edit the graph in place)."""
        doc = self.document
        if doc is None:
            raise GraphError("no model is open")
        n = self.reference_state()
        if n is None:
            raise GraphError("the chosen reference is not available")
        rtol, atol = self.tolerances()
        outputs = self._outputs()
        given = doc.graph.given_inputs
        # An output a step renamed is compared with its old name in the reference.
        back = doc.renames(n)
        ref_outputs = [back.get(node_of(o), node_of(o)) + o[len(node_of(o)):] for o in outputs]
        fixed = dict(reference_label=self.reference_label().split(" (")[0],
                     current_label="Current", outputs=outputs,
                     reference_outputs=ref_outputs if ref_outputs != outputs else None,
                     samples=copy.deepcopy(self.samples.sample_set),
                     runs=self.runs.value(), warmup=self.warmup.value(), rtol=rtol,
                     atol=atol, drift=self.drift_check.isChecked(),
                     drift_max_tensors=self.drift_cap.value(), renames=back,
                     targets=[t for t in [self.target_combo.currentData()] if t])

        def build() -> CompareRequest:
            with hold(doc):
                for _ in range(3):
                    revision = doc.revision
                    current = doc.snapshot()
                    ref = doc.graph_at(min(n, doc.cursor)).graph_def
                    if doc.revision == revision:  # no step adopted meanwhile
                        break
            graph = Graph(ref)
            kept = [i for i in given or [] if node_of(i) in graph.nodes]
            return CompareRequest(reference=ref, current=current,
                                  inputs=kept or detect_inputs(graph), **fixed)
        return build

    def run(self) -> Worker | None:
        """Start a comparison in the background (returns the worker, None if it could not)."""
        if self.worker is not None:
            return self.worker
        try:
            build = self.request_builder()
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
        self.progress.setFormat("copying the graphs (%p%)")
        worker = Worker(_job, build)
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
        if SHAPE_HINT in message and self.document is not None:
            # an input fed 1×1 (unknown dims filled with 1): open Sample inputs at its Shape
            guessed = self.samples.sample_set.guessed_shapes(
                self.document.graph, self.document.graph.given_inputs)
            if guessed:
                self.samples_toggle.setChecked(True)
                self.samples.point_at_shape(next(iter(guessed)))

    def _cancelled(self) -> None:
        self._clear_results("Cancelled: no results.")
        self.error = "cancelled"

    def _ended(self) -> None:
        self.worker = None
        self.run_btn.setEnabled(self.document is not None)
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
        self.progress.setValue(1000)
        self.progress.setFormat("done")
        self._fill_outputs()
        self.stats_table.show_comparison(res.comparison)
        self._show_targets()
        self._show_drift()
        self.report_btn.setEnabled(True)
        self.npz_btn.setEnabled(True)

    def _show_targets(self) -> None:
        res = self.result
        lines = []
        for t, (ref, cur) in (getattr(res, "targets", None) or {}).items():
            for label, r in ((res.request.reference_label, ref), ("Current", cur)):
                color = "#1b5e20" if r.matches else "#c62828"
                lines.append(f"<span style='color:{color}'>{html.escape(label)} in "
                             f"{html.escape(r.summary())}</span>")
        self.target_label.setText("<br>".join(lines))
        self.target_label.setVisible(bool(lines))

    def _fill_outputs(self) -> None:
        cmp = self.result.comparison
        self.outputs_table.show_comparison(cmp)
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
        rejudge(self.result, rtol, atol)
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
        if d.expected:  # measured, never counted as drifting: say why
            shown = "; ".join(f"{html.escape(_short_name(n))}: {html.escape(why)}"
                              for n, why in list(d.expected.items())[:3])
            more = len(d.expected) - 3
            parts.append(f"{len(d.expected)} expected to differ — {shown}"
                         + (f"; and {more} more" if more > 0 else ""))
        if d.renamed:
            shown = ", ".join(f"{html.escape(_short_name(new))} (was "
                              f"{html.escape(_short_name(old))})"
                              for new, old in list(d.renamed.items())[:3])
            parts.append(f"{len(d.renamed)} renamed, compared with their old selves: {shown}")
        if res.origins:
            items = []
            for n in res.origins[:5]:
                e = d.errors[n]
                items.append(f"<a href='node:{html.escape(n, quote=True)}' "
                             f"title='{html.escape(n, quote=True)}'>"
                             f"{html.escape(_short_name(n))}</a> (rel {fmt(e.max_rel)})")
            parts.append("<span style='color:#c62828'>The error starts at: "
                         + ", ".join(items) + "</span>")
        self.drift_label.setText("<br>".join(parts))
        self._paint_view()

    def _paint_view(self) -> None:
        if self.view is None or self._stale:
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
        elif not on and self.view is not None:
            self.view.set_node_colors({}, [])
        self._show_drift()

    # ------------------------------------------------------------------ export
    def report_dict(self) -> dict:
        return report_dict(self.result)

    def drift_dict(self) -> dict | None:
        return drift_dict(self.result) if self.result is not None else None

    def save_report(self, path: str | Path) -> list[Path]:
        if self.result is None:
            raise GraphError("run a comparison first")
        title = "Comparison"
        if self.document is not None and self.document.path:
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


def _job(build: Callable[[], CompareRequest], state=None) -> CompareResult:
    try:
        req = build()
        if state is not None:
            state.check()
        return comparison_job_isolated(req, progress=state.progress if state else None,
                              should_stop=(lambda: state.cancelled) if state else None)
    except InterruptedError:
        if state is not None:   # a cancel: the worker reports "cancelled", not a failure
            state.cancel()
            state.check()
        raise


def _short_name(name: str, keep: int = 3) -> str:
    """The last ``keep`` scopes of a long node name (the full name is in the tooltip)."""
    parts = name.split("/")
    return name if len(parts) <= keep else "…/" + "/".join(parts[-keep:])


def _focus(view, node: str, select: bool = True) -> None:
    """Centre the view on ``node`` (it may be gone from the graph shown: then nothing)."""
    if view is not None:
        view.focus_node(node)


# ---------------------------------------------------------------------- main window wiring
def install_compare_panel(window):
    """Dock a :class:`ComparePanel` on ``window`` (uses its ``view``, ``add_panel``,
    ``edit_menu`` and ``document_changed``); adds Edit ▸ Run Comparison (Ctrl+R), enabled
    while a model is open. Returns ``(panel, dock)``."""
    from PySide6.QtGui import QAction, QKeySequence
    panel = ComparePanel(None, window.view)
    dock = window.add_panel(panel, "Comparison", Qt.RightDockWidgetArea, "CompareDock")
    action = QAction("Run &Comparison", window)
    action.setObjectName("actionRunComparison")
    action.setShortcut(QKeySequence("Ctrl+R"))
    action.setToolTip("Compare the current graph with the original (or an earlier step) on "
                      "the sample inputs")

    def document_changed(doc):
        panel.set_document(doc)   # a closed or replaced model takes its results with it
        action.setEnabled(doc is not None)
    window.document_changed.connect(document_changed)
    document_changed(window.document)

    def run_now():
        dock.show()
        dock.raise_()
        panel.run()
    action.triggered.connect(run_now)
    window.edit_menu.addAction(action)
    panel.run_action = action
    return panel, dock


def run_compare_for_script(panel: ComparePanel, dock, done) -> None:
    """For ``surgeon-gui MODEL --apply ... --compare --screenshot``: show the panel, run with
    the default sample inputs, then call ``done(None)`` or ``done(message)``."""
    dock.show()
    dock.raise_()
    window = dock.parentWidget()
    if window is not None:
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
