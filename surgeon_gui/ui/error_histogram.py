"""The error histogram of one compared output: counts of |b − a| per decade, drawn with QPainter."""
from __future__ import annotations

import math

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..core.running.compare import HIST_EDGES
from ..core.running.comparison import DEFAULT_ATOL
from .compare_results import LEVEL_COLORS


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

    @staticmethod
    def labelled_bins(widths: list[float], w: float, gap: float = 4.0) -> list[int]:
        """The bins whose labels (``widths`` wide, centred under bins ``w`` apart) are drawn
        without overlapping: the last, then every one that fits going left, and the first
        ("0") in place of the one nearest it when they would touch (at ~300 px, the dock's
        width at 1600×1000, "≤1e-8≤1e-7…" ran together)."""
        n = len(widths)
        if n == 0:
            return []

        def apart(i, j):  # labels i < j do not touch
            return (j - i) * w >= (widths[i] + widths[j]) / 2 + gap
        shown = [n - 1]
        for i in range(n - 2, 0, -1):
            if apart(i, shown[-1]):
                shown.append(i)
        if n > 1:
            while len(shown) > 1 and not apart(0, shown[-1]):
                shown.pop()
            shown.append(0)
        return sorted(shown)

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
        sfm = p.fontMetrics()
        shown = set(self.labelled_bins([sfm.horizontalAdvance(t) for t in labels[:n]], w))
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
            if i not in shown:
                continue
            p.setPen(pal.text().color())
            half = sfm.horizontalAdvance(labels[i]) / 2 + 2
            p.drawText(QRectF(area.left() + i * w + w / 2 - half, area.bottom() + 3, 2 * half,
                              fm.height()), Qt.AlignHCenter | Qt.AlignTop, labels[i])
        p.setPen(QPen(pal.mid().color()))
        p.drawLine(area.bottomLeft(), area.bottomRight())
        # Where the tolerance lies between the bins (bin i >= 1 ends at HIST_EDGES[i + 1]).
        k = sum(1 for e in HIST_EDGES[1:-1] if e <= self.atol)
        x = area.left() + k * w
        p.setPen(QPen(QColor("#555"), 1, Qt.DashLine))
        p.drawLine(int(x), int(area.top()), int(x), int(area.bottom()))
        p.drawText(QRectF(x + 3, area.top(), 80, fm.height()), Qt.AlignLeft, "atol")

