"""The comparison's result tables and colours: per output the errors and the allclose verdict,
per graph latency, size and counts, and the colours the drift paints the graph view with."""
from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ..core.running.compare import Comparison
from ..core.running.comparison import (
    EDITED_CONST,
    NO_COUNTERPART,
    RECONVERGES,
    drift_categories,
)
from ..core.running.drift import LEVELS, Drift

#: Colours of the drift levels (exact → wrong), then "no counterpart" and "edited constant".
LEVEL_COLORS = ["#2e7d32", "#7cb342", "#c0ca33", "#fbc02d", "#fb8c00", "#d32f2f"]
NO_COUNTERPART_COLOR = "#9575cd"
EDITED_CONST_COLOR = "#ec407a"
RECONVERGES_COLOR = "#64b5f6"
_CATEGORY_COLORS = {RECONVERGES: RECONVERGES_COLOR, NO_COUNTERPART: NO_COUNTERPART_COLOR,
                    EDITED_CONST: EDITED_CONST_COLOR}


def drift_colors(drift: Drift, rtol: float, atol: float,
                 persistent: list[str] | None = None) -> tuple[dict[str, QColor], list]:
    """Node → colour for the graph view, and the legend [(text, QColor)] from exact to wrong
    (the categories of :func:`~surgeon_gui.core.running.comparison.drift_categories`)."""
    colors = {n: QColor(LEVEL_COLORS[c] if isinstance(c, int) else _CATEGORY_COLORS[c])
              for n, c in drift_categories(drift, rtol, atol, persistent).items()}
    legend = [(f"rel. error {text}", QColor(c)) for (text, _), c in zip(LEVELS, LEVEL_COLORS)]
    legend[0] = ("exact", QColor(LEVEL_COLORS[0]))
    legend += [("differs, re-converges", QColor(RECONVERGES_COLOR)),
               ("no counterpart", QColor(NO_COUNTERPART_COLOR)),
               ("changed constant", QColor(EDITED_CONST_COLOR))]
    return colors, legend


def fmt(x, spec=".3g") -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    return format(x, spec)


def fmt_bytes(n: int) -> str:
    v = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if v < 1024 or unit == "GiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return str(n)



def fmt_speed(speedup: float | None) -> str:
    if not speedup:
        return "–"
    return f"{speedup:.2f}× faster" if speedup >= 1 else f"{1 / speedup:.2f}× slower"


def fit_height(table: QTableWidget, max_rows: int = 50) -> None:
    """Size a table to its rows (up to ``max_rows``), so short tables waste no space."""
    rows = min(table.rowCount(), max_rows)
    h = table.horizontalHeader().height() + 2 * table.frameWidth()
    h += sum(table.rowHeight(r) for r in range(rows)) if rows else table.verticalHeader(
    ).defaultSectionSize()
    if table.horizontalScrollBar().isVisible():
        h += table.horizontalScrollBar().sizeHint().height()
    table.setFixedHeight(h + 2)


class OutputsTable(QTableWidget):
    """One row per compared output: shape, max abs/rel error, allclose, top-1/top-5."""

    HEADERS = ["Output", "Shape", "Max abs err", "Max rel err", "allclose", "Top-1", "Top-5",
               "A's own noise", "Error vs noise"]

    def __init__(self, parent=None):
        super().__init__(0, len(self.HEADERS), parent)
        self.setHorizontalHeaderLabels(self.HEADERS)
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)

    def show_comparison(self, cmp: Comparison) -> None:
        self.setRowCount(len(cmp.outputs))
        for r, o in enumerate(cmp.outputs):
            verdict = "yes" if o.allclose else "NO"
            name = o.name if o.name == o.name_b else f"{o.name_b} (was {o.name})"
            cells = [name, "×".join(map(str, o.shape_b)) or "scalar", fmt(o.max_abs_err),
                     fmt(o.max_rel_err), verdict,
                     "–" if o.top1_agreement is None else f"{o.top1_agreement:.0%}",
                     "–" if o.top5_agreement is None else f"{o.top5_agreement:.0%}"]
            # A's rounding noise floor: is the error what rounding alone does to A?
            noise = getattr(cmp, "noise", {}).get(o.name)
            cells += ["–" if noise is None else fmt(noise),
                      cmp.noise_verdict(o) or "–" if noise is not None else "–"]
            for c, text in enumerate(cells):
                it = QTableWidgetItem(text)
                if c == 4:
                    it.setForeground(QColor("#1b5e20" if o.allclose else "#b71c1c"))
                    f = it.font()
                    f.setBold(True)
                    it.setFont(f)
                    it.setToolTip(f"|b − a| ≤ atol + rtol·|a| with rtol={o.rtol:g}, "
                                  f"atol={o.atol:g}" + (f"; {o.note}" if o.note else ""))
                if c in (2, 3, 5, 6, 7):
                    it.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                if c == 8 and noise is not None:
                    it.setToolTip("A run again with every float weight tensor moved by a few "
                                  "ulps gives this relative error against A: an error near it "
                                  "is rounding, one far above it is a real change")
                self.setItem(r, c, it)
        if cmp.outputs and self.currentRow() < 0:
            self.selectRow(0)
        fit_height(self, max_rows=6)


class StatsTable(QTableWidget):
    """Before / after / change of latency, node and op-type counts, parameters and size."""

    def __init__(self, parent=None):
        super().__init__(0, 4, parent)
        self.setHorizontalHeaderLabels(["", "Before", "After", "Change"])
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.setToolTip("Latency: median and 10th–90th percentile of the timed runs, after the "
                        "warm-up runs, each graph in its own session, runs alternating")
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)

    def show_comparison(self, cmp: Comparison) -> None:
        a, b = cmp.a, cmp.b

        def lat(s):
            return (f"{s.latency_ms:.3f} ms" if s.latency_ms is not None else "not timed")

        def spread(s):
            if s.latency_ms is None:
                return "–"
            return f"{s.latency_percentile(10):.3f}–{s.latency_percentile(90):.3f} ms"

        def change(x, y):
            return f"{(y - x) / x:+.1%}" if x else "–"
        rows = [("Latency, median", lat(a), lat(b), fmt_speed(cmp.speedup)),
                (f"p10–p90 ({cmp.runs} runs)", spread(a), spread(b), ""),
                ("Nodes", f"{a.node_count:,}", f"{b.node_count:,}",
                 change(a.node_count, b.node_count)),
                ("Op types", str(a.op_count), str(b.op_count), change(a.op_count, b.op_count)),
                ("Parameters", f"{a.parameter_count:,}", f"{b.parameter_count:,}",
                 change(a.parameter_count, b.parameter_count)),
                ("Serialized size", fmt_bytes(a.serialized_bytes),
                 fmt_bytes(b.serialized_bytes), change(a.serialized_bytes, b.serialized_bytes))]
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                it = QTableWidgetItem(text)
                if c > 0:
                    it.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.setItem(r, c, it)
        fit_height(self)
