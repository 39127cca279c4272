"""Long node names in narrow lists (Search results, a pass's matches, the Diff panel): elided so
that rows stay distinguishable. Qt's own elision cuts the middle or the start of the whole text,
which leaves rows such as "RetinaF…esource" or "…oject/Conv2D" that all look alike; here the last
path components stay whole (the part that differs between neighbouring rows: the block and the
op), and as many more before them as fit; the scope at the start gives way to "…/". The name
column also gets the room: the column beside it (the op, what a match does) is as wide as its
text up to a share of the list (:func:`names_get_the_room`)."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QApplication,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
)


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


def beside_name(key: str, text: str) -> str:
    """``text`` (what a match does, why it was refused) as shown beside ``key`` in a narrow
    list: without a leading "<op> <key>" the name column already shows, and with ``key``'s
    scope (all but its last two components) shortened to "…/" wherever a name starts with it
    ("absorbs FusedBatchNormV3 …/bn_Conv1/FusedBatchNormV3: …"; RetinaFace's rows read
    "Conv2D RetinaFac…"). The full text stays in the tooltip."""
    first, _, rest = text.partition(" ")
    if text.startswith(key + " "):
        text = text[len(key) + 1:]
    elif rest.startswith(key + " ") and first and "/" not in first:
        text = rest[len(key) + 1:]
    parts = key.split("/")
    if len(parts) > 2:
        scope = "/".join(parts[:-2]) + "/"
        text = text.replace(" " + scope, " …/")
        if text.startswith(scope):
            text = "…/" + text[len(scope):]
    return text


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


class _NamesGetTheRoom(QObject):
    """Keeps a two-column list's second column at most ``share`` of the viewport's width (as
    wide as its text when that is less; wider when the names leave room), the name column
    taking the rest."""

    def __init__(self, view, share: float):
        super().__init__(view)
        self.view, self.share = view, share
        #: Pixels column 1 gets at least (up to ``floor_share`` of the width) when its text
        #: wants them: a list whose column 1 mixes short must-read texts (an op and its
        #: dtype/shape) with long ones that may be cut sets it to the widest short one.
        self.floor = 0
        self.floor_share = 0.4
        h = view.header()
        h.setStretchLastSection(False)
        h.setSectionResizeMode(0, QHeaderView.Stretch)
        h.setSectionResizeMode(1, QHeaderView.Fixed)
        view.viewport().installEventFilter(self)
        model = view.model()
        self._timer = QTimer(self, singleShot=True, interval=0, timeout=self.fit)
        for sig in (model.rowsInserted, model.rowsRemoved, model.modelReset,
                    model.dataChanged, model.layoutChanged):
            sig.connect(self._timer.start)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Resize:
            self.fit()
        return False

    def fit(self) -> None:
        view = self.view
        room = view.viewport().width()
        wanted = max(view.sizeHintForColumn(1), view.header().sectionSizeHint(1))
        # short names (tf2's "cond_1/input_0") leave the rest to column 1 ("FusedBatchNormV3
        # → BiasAdd"); long ones get all but ``share``
        names = view.sizeHintForColumn(0)
        view.header().resizeSection(1, max(0, min(wanted, max(int(room * self.share),
                                                              room - names,
                                                              min(self.floor, int(room * self.floor_share))))))


def names_get_the_room(view, share: float = 0.3, elide=Qt.ElideRight) -> "_NamesGetTheRoom":
    """Give a two-column list's name column (0) the room: column 1 takes at most ``share`` of
    the width (its text elided by ``elide`` when cut; RetinaFace's Search results showed
    "…onv1_pad/Pad" beside a full "DepthwiseConv2dNative"). Returns the keeper (its ``floor``:
    see there)."""
    view.setTextElideMode(elide)  # column 1's text (column 0 has its own elision)
    return _NamesGetTheRoom(view, share)
