"""Where the main window's panels go: the default layout, and saving/restoring a rearranged one.

A saved dock layout is restored only when it is valid here: written by this layout version,
on a screen of the same size, and leaving every panel reachable (a floating panel on the
screen, no panel or tab bar over the menu bar). Anything else gives the default layout, which
View ▸ Reset Layout also brings back.

The default layout keeps the canvas wide (at 1600×1000 it gets over 60% of the width): the
left column tabs Passes, History and Search (Passes in front); the right column tabs the
Inspector with the Comparison above the Diff list.
"""
from __future__ import annotations

from PySide6.QtCore import QRect, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QMainWindow, QTabBar, QTabWidget

#: Bump when the default placement or the set of built-in panels changes: states saved by an
#: older layout are then ignored.
LAYOUT_VERSION = 3

#: (area, [object names tabbed together, first in front]) — top to bottom within an area.
DEFAULT_COLUMNS: list[tuple[Qt.DockWidgetArea, list[str]]] = [
    (Qt.LeftDockWidgetArea, ["PassesDock", "HistoryDock", "SearchDock"]),
    (Qt.RightDockWidgetArea, ["InspectorDock", "CompareDock", "WorkedDock"]),
    (Qt.RightDockWidgetArea, ["DiffDock"]),
]
LEFT_WIDTH = 285
RIGHT_WIDTH = 320
#: Share of the right column's height the Inspector/Comparison tabs get (the Diff list below).
RIGHT_TOP_SHARE = 0.55


def default_size(window: QMainWindow) -> tuple[int, int]:
    """The first-launch window size: 1600×1000 (or the screen, when smaller)."""
    screen = window.screen() or None
    if screen is None:
        return 1400, 900
    avail = screen.availableGeometry()
    return min(avail.width(), 1600), min(avail.height(), 1000)


def _screen_key(window: QMainWindow) -> str:
    screen = window.screen()
    if screen is None:
        return ""
    g = screen.availableGeometry()
    return f"{g.x()},{g.y()},{g.width()}x{g.height()}@{screen.devicePixelRatio():g}"


def docks(window: QMainWindow) -> dict[str, QDockWidget]:
    return {d.objectName(): d for d in window.findChildren(QDockWidget)
            if d.parentWidget() is window or d.isFloating()}


def apply_default(window: QMainWindow) -> None:
    """Put every panel in its default place (docked, tabbed, sized)."""
    window.setTabPosition(Qt.AllDockWidgetAreas, QTabWidget.North)
    by_name = docks(window)
    placed: set[str] = set()
    firsts: dict[str, QDockWidget] = {}
    for area, names in DEFAULT_COLUMNS:
        present = [by_name[n] for n in names if n in by_name]
        if not present:
            continue
        for d in present:
            d.setFloating(False)
            window.removeDockWidget(d)
        window.addDockWidget(area, present[0], Qt.Vertical)
        for d in present[1:]:
            window.tabifyDockWidget(present[0], d)
        for d in present:
            d.show()
        present[0].raise_()
        firsts[names[0]] = present[0]
        placed.update(d.objectName() for d in present)
    for name, d in by_name.items():  # panels added by others keep their area, docked
        if name not in placed and d.isFloating():
            d.setFloating(False)
    _size_columns(window, firsts)
    # sizes only take once the window is laid out: again after the first show
    QTimer.singleShot(0, lambda: _alive(window) and _size_columns(window, firsts))


def _alive(obj) -> bool:
    import shiboken6
    return shiboken6.isValid(obj)


def _size_columns(window: QMainWindow, firsts: dict[str, QDockWidget]) -> None:
    left = firsts.get("PassesDock")
    top_right = firsts.get("InspectorDock")
    diff = firsts.get("DiffDock")
    horiz = [(d, w) for d, w in ((left, LEFT_WIDTH), (top_right or diff, RIGHT_WIDTH)) if d]
    if horiz:
        window.resizeDocks([d for d, _ in horiz], [w for _, w in horiz], Qt.Horizontal)
    if top_right and diff:
        h = max(300, window.height() - 80)
        top = int(h * RIGHT_TOP_SHARE)
        window.resizeDocks([top_right, diff], [top, h - top], Qt.Vertical)


def save(window: QMainWindow, settings) -> None:
    settings.setValue("window/geometry", window.saveGeometry())
    settings.setValue("window/state", window.saveState(LAYOUT_VERSION))
    settings.setValue("window/layout_version", LAYOUT_VERSION)
    settings.setValue("window/screen", _screen_key(window))


def restore(window: QMainWindow, settings) -> bool:
    """Restore the saved geometry and panel layout when valid here, else lay out the default.
    Returns True when the saved layout was used."""
    geo = settings.value("window/geometry")
    state = settings.value("window/state")
    version = settings.value("window/layout_version")
    same_screen = settings.value("window/screen") == _screen_key(window)
    try:
        version = int(version)
    except (TypeError, ValueError):
        version = -1
    if (geo is not None and state is not None and version == LAYOUT_VERSION and same_screen
            and window.restoreGeometry(geo) and _fits_screen(window, window.geometry())
            and window.restoreState(state, LAYOUT_VERSION) and reachable(window)):
        window.setTabPosition(Qt.AllDockWidgetAreas, QTabWidget.North)
        _repair_floating(window)
        # Some breakage only shows once the window is laid out: check again then.
        QTimer.singleShot(0, lambda: _alive(window) and (reachable(window, shown=True)
                                                         or apply_default(window)))
        return True
    w, h = default_size(window)
    window.resize(w, h)
    apply_default(window)
    return False


def _repair_floating(window: QMainWindow) -> None:
    """A floating panel that would cover the window's menu bar, or that is too small to use,
    moves below the menu bar at a usable size (the user floated it; it stays floating)."""
    top = window.geometry().top() + window.menuBar().sizeHint().height()
    for d in docks(window).values():
        if not d.isFloating():
            continue
        g = d.geometry()
        hint = d.widget().sizeHint() if d.widget() is not None else g.size()
        if g.width() < 160 or g.height() < 120:
            g.setSize(g.size().expandedTo(hint.boundedTo(window.size())))
        if g.top() < top + 4 and g.right() > window.geometry().left() \
                and g.left() < window.geometry().right():
            g.moveTop(top + 40)
        if g != d.geometry():
            d.setGeometry(g)


def _fits_screen(window: QMainWindow, rect: QRect, min_share: float = 0.8) -> bool:
    screen = window.screen()
    if screen is None:
        return True
    avail = screen.virtualGeometry() if hasattr(screen, "virtualGeometry") else \
        screen.availableGeometry()
    inter = rect.intersected(avail)
    area = max(1, rect.width() * rect.height())
    return inter.width() * inter.height() >= min_share * area


def reachable(window: QMainWindow, shown: bool = False) -> bool:
    """Every panel can be reached: a floating panel lies (mostly) on the screen; once shown,
    no docked panel and no dock tab bar sits over the menu bar."""
    for d in docks(window).values():
        if d.isFloating():
            if not _fits_screen(window, d.frameGeometry(), 0.5):
                return False
        elif window.dockWidgetArea(d) == Qt.NoDockWidgetArea:
            return False
    if not shown or not window.isVisible():
        return True
    bar = window.menuBar()
    bar_rect = bar.geometry() if bar is not None and bar.isVisible() else QRect()
    if bar_rect.isEmpty():
        return True
    for d in docks(window).values():
        if d.isVisible() and not d.isFloating() and d.geometry().intersects(bar_rect):
            return False
    for tabs in window.findChildren(QTabBar):
        if tabs.parentWidget() is window and tabs.isVisible() \
                and tabs.geometry().intersects(bar_rect):
            return False
    return True
