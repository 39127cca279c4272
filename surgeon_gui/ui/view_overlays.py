"""The graph view's overlays: the minimap (bottom right) and the colour legend (bottom left)."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QToolButton, QWidget

from . import style


class Minimap(QWidget):
    """A small overview in the view's corner: the whole graph and the visible area; click or
    drag to move there. The overview is a pixmap rendered after each layout."""

    SIZE = QSize(170, 120)

    def __init__(self, view):
        super().__init__(view)
        self.view = view
        self.setFixedSize(self.SIZE)
        self.setCursor(Qt.PointingHandCursor)
        self._pixmap: QPixmap | None = None
        self._src = QRectF()
        # debounced: a burst of highlight changes (search as you type) renders once
        self._timer = QTimer(self, singleShot=True, interval=300, timeout=self._render)
        self.enabled = True
        self.hide()

    def place(self) -> None:
        vp = self.view.viewport().geometry()
        self.move(vp.right() - self.width() - 10, vp.bottom() - self.height() - 10)

    def refresh(self) -> None:
        self._timer.start()

    def _render(self) -> None:
        """Draw the scene's batched overview (boxes, frames, edge lines) into a small cached
        pixmap: a few milliseconds even on a 10,000-node graph, where ``QGraphicsScene.render``
        called every item's Python paint (0.4-0.65 s)."""
        scene = self.view.graph_scene
        if self.view.document is None or not self.enabled or not scene.items_by_key:
            self._pixmap = None
            self.hide()
            return
        ov = scene.overview()
        r = ov.rect.adjusted(-20, -20, 20, 20)
        if r.isEmpty():
            self._pixmap = None
            self.hide()
            return
        self._src = r
        pm = QPixmap(self.size() * self.devicePixelRatioF())
        pm.setDevicePixelRatio(self.devicePixelRatioF())
        pm.fill(QColor(255, 255, 255, 235))
        p = QPainter(pm)
        target = self._target()
        s = target.width() / r.width()
        p.translate(target.x(), target.y())
        p.scale(s, s)
        p.translate(-r.x(), -r.y())
        ov.draw(p, s)
        p.end()
        self._pixmap = pm
        self.place()
        self.show()
        self.update()

    def _target(self) -> QRectF:
        r = self._src
        w, h = self.width() - 8, self.height() - 8
        s = min(w / max(r.width(), 1), h / max(r.height(), 1))
        tw, th = r.width() * s, r.height() * s
        return QRectF(4 + (w - tw) / 2, 4 + (h - th) / 2, tw, th)

    def _to_scene(self, p: QPointF) -> QPointF:
        t = self._target()
        fx = (p.x() - t.x()) / max(t.width(), 1)
        fy = (p.y() - t.y()) / max(t.height(), 1)
        return QPointF(self._src.x() + fx * self._src.width(),
                       self._src.y() + fy * self._src.height())

    def paintEvent(self, event):
        p = QPainter(self)
        p.setPen(QPen(QColor("#9aa5b4")))
        p.setBrush(QColor(255, 255, 255, 235))
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        if self._pixmap is not None:
            p.drawPixmap(0, 0, self._pixmap)
            vis = self.view.mapToScene(self.view.viewport().rect()).boundingRect()
            t = self._target()
            s = t.width() / max(self._src.width(), 1)
            vr = QRectF(t.x() + (vis.x() - self._src.x()) * s, t.y() + (vis.y() - self._src.y()) * s,
                        vis.width() * s, vis.height() * s).intersected(QRectF(self.rect()))
            p.setPen(QPen(style.SELECTION, 1.5))
            p.setBrush(QColor(26, 115, 232, 30))
            p.drawRect(vr)

    def mousePressEvent(self, event):
        self.view.centerOn(self._to_scene(event.position()))
        self.update()

    def mouseMoveEvent(self, event):
        if event.buttons() & Qt.LeftButton:
            self.view.centerOn(self._to_scene(event.position()))
            self.update()


class Legend(QFrame):
    """Colour legend in the view's bottom-left corner (op families, or a panel's own legend).

    Its title folds it to one line (the minimap sits bottom-right), so it never has to hide the
    top of a graph, where a model starts.
    """

    def __init__(self, view):
        super().__init__(view)
        self.view = view
        self.setStyleSheet("Legend { background: rgba(255,255,255,225); border: 1px solid #c5ccd6;"
                           " border-radius: 5px; } QLabel { font-size: 8pt; color: #333; }"
                           " QToolButton { font-size: 8pt; font-weight: bold; border: none; }")
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(8, 6, 8, 6)
        self._grid.setHorizontalSpacing(6)
        self._grid.setVerticalSpacing(2)
        self.entries: list[tuple[str, QColor]] = []
        self.collapsed = False
        self._user_folded = False  # once the user folds/unfolds, the size rule stops deciding
        self._full_size = QSize()
        self._title = "Op families"

    def set_entries(self, entries: list[tuple[str, QColor]], title: str = "Op families") -> None:
        while self._grid.count():
            w = self._grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.entries = list(entries)
        self._title = title or "Legend"
        toggle = QToolButton()
        toggle.setObjectName("legend_toggle")
        toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        toggle.setArrowType(Qt.RightArrow if self.collapsed else Qt.DownArrow)
        toggle.setText(self._title)
        toggle.setToolTip("Fold or unfold the legend")
        toggle.clicked.connect(self.toggle)
        self._grid.addWidget(toggle, 0, 0, 1, 4)
        # two columns of entries: half the height over the graph
        rows = (len(entries) + 1) // 2
        for i, (text, color) in enumerate(entries):
            sw = QLabel()
            sw.setFixedSize(12, 9)
            sw.setStyleSheet(f"background: {QColor(color).name()}; border: 1px solid "
                             f"{QColor(color).darker(150).name()}; border-radius: 2px;")
            row, col = 1 + i % rows, 2 * (i // rows)
            self._grid.addWidget(sw, row, col)
            self._grid.addWidget(QLabel(text), row, col + 1)
        warn = QLabel("⚠ dashed orange: training-only / control flow")
        warn.setStyleSheet(f"color: {style.WARNING.name()}; font-size: 7.5pt;")
        self._grid.addWidget(warn, rows + 1, 0, 1, 4)
        self._show_rows()
        # The replaced labels are only deleted later: size again once they are gone, or a
        # panel's legend (per-node drift) shows as an empty 24x14 box.
        QTimer.singleShot(0, self._fit)

    def toggle(self) -> None:
        self._user_folded = True
        self._set_collapsed(not self.collapsed)

    def _set_collapsed(self, collapsed: bool) -> None:
        if collapsed == self.collapsed:
            return
        self.collapsed = collapsed
        btn = self.findChild(QToolButton, "legend_toggle")
        if btn is not None:
            btn.setArrowType(Qt.RightArrow if collapsed else Qt.DownArrow)
        self._show_rows()

    def _show_rows(self) -> None:
        for i in range(self._grid.count()):
            w = self._grid.itemAt(i).widget()
            if w is not None and w.objectName() != "legend_toggle":
                w.setVisible(not self.collapsed)
        self._fit()

    def _fit(self) -> None:
        self.adjustSize()
        if not self.collapsed:
            self._full_size = self.size()
        self.place()

    def place(self) -> None:
        """Bottom-left; folded while the view is too small for it (until the user decides)."""
        vp = self.view.viewport().geometry()
        if not self._user_folded and self._full_size.isValid():
            cramped = (vp.height() < 3 * self._full_size.height()
                       or vp.width() < 3 * self._full_size.width())
            if cramped != self.collapsed:
                self._set_collapsed(cramped)
                return  # _set_collapsed placed it
        self.move(10, max(10, vp.bottom() - self.height() - 8))
