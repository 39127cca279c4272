"""Drawing widgets of the inspector: the value histogram, the op-count bars and a table
delegate that wraps long values anywhere (shapes, lists, names without spaces)."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QFont,
    QFontMetrics,
    QPainter,
    QPalette,
    QPen,
    QTextLayout,
    QTextOption,
)
from PySide6.QtWidgets import (
    QApplication,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QWidget,
)


class HistogramWidget(QWidget):
    """A small bar histogram of a Const's values, drawn with QPainter."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.counts: list[int] = []
        self.edges: list[float] = []
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMouseTracking(True)

    def set_histogram(self, counts: list[int], edges: list[float]) -> None:
        self.counts, self.edges = list(counts), list(edges)
        self.setToolTip("")
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(240, 90)

    def _plot_rect(self) -> QRectF:
        fm = QFontMetrics(self.font())
        return QRectF(4, 4, self.width() - 8, self.height() - fm.height() - 10)

    def bar_at(self, x: float) -> int | None:
        r = self._plot_rect()
        if not self.counts or not (r.left() <= x < r.right()):
            return None
        return min(int((x - r.left()) / r.width() * len(self.counts)), len(self.counts) - 1)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        i = self.bar_at(event.position().x())
        if i is None:
            self.setToolTip("")
        else:
            self.setToolTip(f"{self.counts[i]:,} values in "
                            f"[{self.edges[i]:.4g}, {self.edges[i + 1]:.4g})")
        super().mouseMoveEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, False)
        pal = self.palette()
        r = self._plot_rect()
        p.fillRect(r, pal.color(QPalette.Base))
        p.setPen(pal.color(QPalette.Mid))
        p.drawRect(r.adjusted(0, 0, -1, -1))
        if not self.counts:
            p.setPen(pal.color(QPalette.PlaceholderText))
            p.drawText(r, Qt.AlignCenter, "no numeric values")
            return
        top = max(self.counts) or 1
        n = len(self.counts)
        w = r.width() / n
        bar = pal.color(QPalette.Highlight)
        inner = r.adjusted(1, 3, -1, -1)
        for i, c in enumerate(self.counts):
            if not c:
                continue
            # Keep tiny non-zero bins visible: at least 1 px.
            h = max(1.0, inner.height() * c / top)
            p.fillRect(QRectF(inner.left() + i * w + 0.5, inner.bottom() - h,
                              max(w - 1.0, 1.0), h), bar)
        # Zero line when the range straddles 0.
        lo, hi = self.edges[0], self.edges[-1]
        if lo < 0 < hi:
            x = r.left() + (0 - lo) / (hi - lo) * r.width()
            pen = QPen(pal.color(QPalette.Text), 1, Qt.DashLine)
            p.setPen(pen)
            p.drawLine(int(x), int(r.top()) + 1, int(x), int(r.bottom()) - 1)
        p.setPen(pal.color(QPalette.Text))
        text_rect = QRectF(r.left(), r.bottom() + 3, r.width(), self.height() - r.bottom() - 3)
        p.drawText(text_rect, Qt.AlignLeft | Qt.AlignTop, f"{lo:.4g}")
        p.drawText(text_rect, Qt.AlignRight | Qt.AlignTop, f"{hi:.4g}")
        p.drawText(text_rect, Qt.AlignHCenter | Qt.AlignTop, f"peak {top:,}")


class BarList(QWidget):
    """Labelled horizontal bars (op → count), drawn with QPainter; long tails are summed."""

    MAX_ROWS = 14

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[tuple[str, int]] = []
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

    def set_rows(self, items: dict[str, int]) -> None:
        rows = list(items.items())
        if len(rows) > self.MAX_ROWS:
            rest = rows[self.MAX_ROWS - 1:]
            rows = rows[:self.MAX_ROWS - 1] + [(f"{len(rest)} other ops",
                                                sum(c for _, c in rest))]
        self.rows = rows
        self.setToolTip("\n".join(f"{k}: {v:,}" for k, v in items.items()))
        self.updateGeometry()
        self.update()

    def _row_h(self) -> int:
        return QFontMetrics(self.font()).height() + 4

    def sizeHint(self) -> QSize:
        return QSize(240, max(len(self.rows), 1) * self._row_h() + 4)

    def minimumSizeHint(self) -> QSize:
        return QSize(120, self.sizeHint().height())

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        pal = self.palette()
        fm = QFontMetrics(self.font())
        rh = self._row_h()
        label_w = min(max((fm.horizontalAdvance(k) for k, _ in self.rows), default=0) + 8,
                      int(self.width() * 0.5))
        count_w = max((fm.horizontalAdvance(f"{v:,}") for _, v in self.rows), default=0) + 8
        bar_w = max(self.width() - label_w - count_w - 4, 10)
        top = max((v for _, v in self.rows), default=1) or 1
        for i, (k, v) in enumerate(self.rows):
            y = 2 + i * rh
            p.setPen(pal.color(QPalette.Text))
            p.drawText(QRectF(0, y, label_w - 6, rh), Qt.AlignRight | Qt.AlignVCenter,
                       fm.elidedText(k, Qt.ElideMiddle, label_w - 6))
            w = bar_w * v / top
            p.fillRect(QRectF(label_w, y + 3, max(w, 1.0), rh - 6), pal.color(QPalette.Highlight))
            p.drawText(QRectF(label_w + w + 4, y, count_w, rh), Qt.AlignLeft | Qt.AlignVCenter,
                       f"{v:,}")


class WrapAnywhereDelegate(QStyledItemDelegate):
    """Table cells that wrap at spaces, or anywhere when a word is too long (function names,
    long node names), so every attribute is readable in full in a narrow dock."""

    PAD = 4

    def _layout(self, text: str, font: QFont, width: float) -> tuple[QTextLayout, float]:
        layout = QTextLayout(text, font)
        opt = QTextOption()
        opt.setWrapMode(QTextOption.WrapAtWordBoundaryOrAnywhere)
        layout.setTextOption(opt)
        layout.beginLayout()
        height = 0.0
        while True:
            line = layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(max(width, 10.0))
            line.setPosition(QPointF(0, height))
            height += line.height()
        layout.endLayout()
        return layout, height

    def _font(self, index, option) -> QFont:
        font = index.data(Qt.FontRole)
        return font if font is not None else option.font

    def paint(self, painter, option, index) -> None:
        self.initStyleOption(option, index)
        text, option.text = option.text, ""
        style = option.widget.style() if option.widget else QApplication.style()
        style.drawControl(QStyle.CE_ItemViewItem, option, painter, option.widget)
        r = option.rect.adjusted(self.PAD, 2, -self.PAD, -2)
        layout, _ = self._layout(text, self._font(index, option), r.width())
        painter.save()
        selected = option.state & QStyle.State_Selected
        painter.setPen(option.palette.color(QPalette.HighlightedText if selected
                                            else QPalette.Text))
        painter.setClipRect(option.rect)
        layout.draw(painter, QPointF(r.left(), r.top()))
        painter.restore()

    def sizeHint(self, option, index) -> QSize:
        view = self.parent()
        width = view.columnWidth(index.column()) if view is not None else 200
        _, h = self._layout(str(index.data(Qt.DisplayRole) or ""), self._font(index, option),
                            width - 2 * self.PAD)
        return QSize(width, int(h) + 5)
