"""Long node names in narrow lists (Search results, a pass's matches, the Diff panel): elided so
that rows stay distinguishable. Qt's own elision cuts the middle or the start of the whole text,
which leaves rows such as "RetinaF…esource" or "…oject/Conv2D" that all look alike; here the last
path components stay whole (the part that differs between neighbouring rows: the block and the
op), and as many more before them as fit; the scope at the start gives way to "…/"."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem


def elide_path(text: str, fm: QFontMetrics, width: int) -> str:
    """``text`` fitted into ``width`` pixels: unchanged when it fits; a node name (a path with
    no spaces) keeps as many whole trailing components as fit (at least the last two) after "…/";
    when even those do not fit, their end stays (the start is cut). Other text: elided in the middle."""
    if width <= 0 or fm.horizontalAdvance(text) <= width:
        return text
    if "/" not in text.strip("/") or " " in text:
        return fm.elidedText(text, Qt.ElideMiddle, width)
    parts = text.split("/")
    # as many whole trailing components as fit after "…/" (at least the last two): the scope
    # at the start is mostly the same for every row (the model's name)
    keep = 2 if len(parts) > 2 else 1
    if fm.horizontalAdvance("…/" + "/".join(parts[-keep:])) > width:
        return fm.elidedText(text, Qt.ElideLeft, width)
    while keep + 1 < len(parts) and fm.horizontalAdvance("…/" + "/".join(parts[-keep - 1:])) <= width:
        keep += 1
    return "…/" + "/".join(parts[-keep:])


class PathElideDelegate(QStyledItemDelegate):
    """Paints ``column``'s text elided by :func:`elide_path` (the full name stays in the tooltip)."""

    def __init__(self, parent=None, column: int = 0):
        super().__init__(parent)
        self.column = column

    def paint(self, painter, option, index):
        if index.column() != self.column:
            return super().paint(painter, option, index)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        if opt.text:
            rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget)
            margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, widget) + 1
            opt.text = elide_path(opt.text, opt.fontMetrics, rect.width() - 2 * margin - 1)
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)


def elide_names(view, column: int = 0) -> PathElideDelegate:
    """Give ``view``'s name column the path-aware elision."""
    delegate = PathElideDelegate(view, column)
    view.setItemDelegateForColumn(column, delegate)
    return delegate
