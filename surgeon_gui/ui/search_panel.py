"""The search panel (Ctrl+F): find nodes by name, op type or attribute value.

Type in the box; results update as you type (debounced) and are ranked best first (see
:class:`~surgeon_gui.core.viewmodel.nodeinfo.SearchIndex`). Enter goes to the first (or selected) result,
Up/Down move through the list, a click or Enter on a result goes to it: the panel emits
:attr:`SearchPanel.node_activated` (the main window connects it to ``view.focus_node``) and
:attr:`SearchPanel.results_changed` with every match (for ``view.set_highlight``).
"""
from __future__ import annotations

import weakref

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.viewmodel.nodeinfo import SearchHit, SearchIndex
from .name_elide import elide_names, names_get_the_room

MODES = (("name", "Name", "Node name contains the text (Regex: a regular expression)"),
         ("op", "Op type", "Op type, e.g. Conv2D, Switch, FusedBatchNorm"),
         ("attr", "Attribute", "Attribute value, e.g. NCHW, or key=value: strides=[1, 2, 2, 1]"))
PLACEHOLDERS = {"name": "Node name…", "op": "Op type…",
                "attr": "key=value…"}


class SearchPanel(QWidget):
    """A query box, a mode, a regex switch and a ranked result list."""

    node_activated = Signal(str)
    #: Every matching node name after each search (empty when the query is cleared).
    results_changed = Signal(list)

    #: Results listed at most (the count label still says how many matched).
    MAX_LISTED = 2000
    DEBOUNCE_MS = 150
    #: Matches are announced (highlighted in the view) only once typing pauses this long:
    #: re-highlighting a 10,000-node view costs a noticeable fraction of a second.
    ANNOUNCE_MS = 400

    def __init__(self, document=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("SearchPanel")
        self.document = None
        self._doc_slot = None
        #: The index of the document's graph at revision ``_indexed_revision`` (built lazily).
        self._index: SearchIndex | None = None
        self._indexed_revision = -1
        self._stepped = False  # F3 has moved through the current results
        self.hits: list[SearchHit] = []
        self._announced = False  # whether the last results_changed carried names
        self._announce_now = True
        self._build()
        self.set_document(document)

    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(4)
        row = QHBoxLayout()
        self.query = QLineEdit()
        self.query.setClearButtonEnabled(True)
        self.query.setPlaceholderText(PLACEHOLDERS["name"])
        self.query.textChanged.connect(self._schedule)
        self.query.returnPressed.connect(self.activate_current)
        self.query.installEventFilter(self)
        row.addWidget(self.query, 1)
        self.mode = QComboBox()
        for key, label, tip in MODES:
            self.mode.addItem(label, key)
            self.mode.setItemData(self.mode.count() - 1, tip, Qt.ToolTipRole)
        self.mode.setToolTip("What to search: node names, op types or attribute values")
        self.mode.currentIndexChanged.connect(self._mode_changed)
        row.addWidget(self.mode)
        self.regex = QCheckBox("Regex")
        self.regex.setToolTip("Treat the text as a regular expression (case-insensitive)")
        self.regex.toggled.connect(lambda _: self.run_search())
        row.addWidget(self.regex)
        lay.addLayout(row)

        self.count_label = QLabel("")
        self.count_label.setWordWrap(True)
        self.count_label.setForegroundRole(QPalette.PlaceholderText)
        lay.addWidget(self.count_label)

        self.results = QTreeWidget()
        self.results.setColumnCount(2)
        self.results.setHeaderLabels(["Node", "Op"])
        self.results.setRootIsDecorated(False)
        elide_names(self.results)  # rows stay distinguishable; the full name is in the tooltip
        names_get_the_room(self.results)
        self.results.setUniformRowHeights(True)
        self.results.setAlternatingRowColors(True)
        self.results.itemActivated.connect(lambda item, _col: self._go(item))
        self.results.itemClicked.connect(lambda item, _col: self._go(item))
        lay.addWidget(self.results, 1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(self.DEBOUNCE_MS)
        self._timer.timeout.connect(lambda: self.run_search(announce_now=False))
        self._announce_timer = QTimer(self)
        self._announce_timer.setSingleShot(True)
        self._announce_timer.setInterval(self.ANNOUNCE_MS)
        self._announce_timer.timeout.connect(self._flush_announce)
        self._pending_names: list[str] | None = None

    # ------------------------------------------------------------------ document
    def set_document(self, document) -> None:
        """Search ``document`` (a core Document, or None); results follow its edits. A query
        belongs to the model it was typed for: another document starts with an empty box."""
        if self.document is not None and self._doc_slot is not None:
            self.document.changed.disconnect(self._doc_slot)
        if document is not self.document:
            self.query.clear()
        self.document = document
        self._doc_slot = None
        self._index = None
        if document is not None:
            # Weak: the core Signal must not keep a closed panel alive.
            ref = weakref.ref(self)

            def slot(change, _ref=ref):
                panel = _ref()
                if panel is None:
                    return
                panel._index = None   # (an old state's index would keep its whole graph)
                if panel.current_mode() == "op":
                    panel._update_completer()  # a pass may add or remove op types
                if panel.query.text().strip():
                    panel._schedule()
            self._doc_slot = slot
            document.changed.connect(slot)
        self._update_completer()
        self.run_search()

    def _search_index(self) -> SearchIndex | None:
        if self.document is None:
            return None
        # The document changes its Graph with every edit; index the current one, lazily.
        if self._index is None or self._indexed_revision != self.document.revision:
            self._index = SearchIndex(self.document.graph)
            self._indexed_revision = self.document.revision
        return self._index

    # ------------------------------------------------------------------ searching
    def focus_query(self) -> None:
        """What Ctrl+F does: put the cursor in the box with the old query selected."""
        self.query.setFocus(Qt.ShortcutFocusReason)
        self.query.selectAll()

    def set_mode(self, mode: str) -> None:
        i = self.mode.findData(mode)
        if i < 0:
            raise ValueError(f"unknown search mode {mode!r}")
        self.mode.setCurrentIndex(i)

    def current_mode(self) -> str:
        return self.mode.currentData()

    def _update_completer(self) -> None:
        """In op mode the box offers the op types present in the graph."""
        if self.current_mode() != "op" or self.document is None:
            self.query.setCompleter(None)
            return
        ops = sorted(self.document.graph.op_histogram())
        completer = QCompleter(ops, self.query)
        completer.setCaseSensitivity(Qt.CaseInsensitive)
        completer.setFilterMode(Qt.MatchContains)
        self.query.setCompleter(completer)

    def _mode_changed(self) -> None:
        mode = self.current_mode()
        self._update_completer()
        self.query.setPlaceholderText(PLACEHOLDERS[mode])
        # A narrow dock has room for two columns: the second shows what matched.
        self.results.setHeaderLabels(["Node", "Matching attribute" if mode == "attr" else "Op"])
        self.run_search()

    def _schedule(self) -> None:
        self._timer.start()
        if self._announce_timer.isActive():
            self._announce_timer.start()  # still typing: push the highlight back

    def run_search(self, announce_now: bool = True) -> list[SearchHit]:
        """Search now (typing schedules this after a short pause).

        ``results_changed`` follows at once, or after :attr:`ANNOUNCE_MS` when the search was
        triggered by typing (``announce_now=False``).
        """
        self._timer.stop()
        self._announce_now = announce_now
        text = self.query.text()
        index = self._search_index()
        self.results.clear()
        self.hits = []
        self._set_error(None)
        if index is None or not text.strip():
            self.count_label.setText("" if index is not None else "No model open.")
            self._announce([])
            return []
        try:
            hits = index.search(text, self.current_mode(), self.regex.isChecked(), limit=None)
        except ValueError as e:
            self._set_error(str(e))
            self._announce([])
            return []
        self.hits = hits
        shown = hits[:self.MAX_LISTED]
        attr_mode = self.current_mode() == "attr"
        items = []
        for hit in shown:
            item = QTreeWidgetItem([hit.name, hit.detail if attr_mode else hit.op])
            item.setData(0, Qt.UserRole, hit.name)
            tip = f"{hit.name}\n{hit.op}" + (f"\n{hit.detail}" if attr_mode else "")
            item.setToolTip(0, tip)
            item.setToolTip(1, tip)
            items.append(item)
        self.results.addTopLevelItems(items)
        if items:
            self.results.setCurrentItem(items[0])
        n = len(hits)
        more = f" (first {len(shown):,} listed)" if n > len(shown) else ""
        self.count_label.setText(f"{n:,} match{'es' if n != 1 else ''}{more}" if n
                                 else "No matches.")
        self._announce([h.name for h in hits])
        return hits

    def _announce(self, names: list[str]) -> None:
        self._pending_names = names
        if self._announce_now:
            self._flush_announce()
        else:
            self._announce_timer.start()

    def _flush_announce(self) -> None:
        self._announce_timer.stop()
        names, self._pending_names = self._pending_names, None
        if names is None:
            return
        # "No results" is announced once, so an idle panel does not keep clearing highlights
        # that other tools (trace) set in the view.
        if names or self._announced:
            self._stepped = False
            self.results_changed.emit(names)
        self._announced = bool(names)

    def _set_error(self, message: str | None) -> None:
        if message:
            self.count_label.setText(message)
            self.count_label.setStyleSheet("color: #b00020;")
            self.query.setStyleSheet("QLineEdit { border: 1px solid #b00020; }")
        else:
            self.count_label.setStyleSheet("")
            self.query.setStyleSheet("")

    def result_names(self) -> list[str]:
        return [self.results.topLevelItem(i).data(0, Qt.UserRole)
                for i in range(self.results.topLevelItemCount())]

    # ------------------------------------------------------------------ going to a result
    def _go(self, item: QTreeWidgetItem | None) -> None:
        if item is not None:
            self.node_activated.emit(item.data(0, Qt.UserRole))

    def step_hit(self, forward: bool = True) -> str | None:
        """F3 / Shift+F3: make the next (previous) result current, wrapping around, and go to
        it. Returns its name (None without results)."""
        if self._timer.isActive():
            self.run_search()
        self._flush_announce()
        n = self.results.topLevelItemCount()
        if not n:
            return None
        cur = self.results.indexOfTopLevelItem(self.results.currentItem())
        if cur < 0 or not self._stepped:
            nxt = 0 if forward else n - 1
        else:
            nxt = (cur + (1 if forward else -1)) % n
        self._stepped = True
        item = self.results.topLevelItem(nxt)
        self.results.setCurrentItem(item)
        self.results.scrollToItem(item)
        self._go(item)
        return item.data(0, Qt.UserRole)

    def activate_current(self) -> None:
        """Enter in the box: search now if a search is pending, then go to the current hit."""
        if self._timer.isActive():
            self.run_search()
        self._flush_announce()
        self._go(self.results.currentItem() or self.results.topLevelItem(0))

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        # Escape in a non-empty box clears the query (and so the highlight); it is taken before
        # the window's own Esc shortcut sees it. In an empty box the window's Esc applies.
        if obj is self.query and event.type() in (event.Type.ShortcutOverride,
                                                  event.Type.KeyPress) \
                and event.key() == Qt.Key_Escape and self.query.text():
            event.accept()
            if event.type() == event.Type.KeyPress:
                self.query.clear()
                self.run_search()
            return True
        # Up/Down in the box walk the result list without leaving the box.
        if obj is self.query and event.type() == event.Type.KeyPress \
                and event.key() in (Qt.Key_Down, Qt.Key_Up) and self.results.topLevelItemCount():
            n = self.results.topLevelItemCount()
            cur = self.results.indexOfTopLevelItem(self.results.currentItem())
            step = 1 if event.key() == Qt.Key_Down else -1
            nxt = min(max(cur + step, 0), n - 1)
            self.results.setCurrentItem(self.results.topLevelItem(nxt))
            return True
        return super().eventFilter(obj, event)
