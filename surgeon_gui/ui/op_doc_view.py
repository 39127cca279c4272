"""The inspector's "What it does" section: TensorFlow's documentation of the selected node's op
(summary, description, what each input and attribute means), as Netron shows it.

Reading it may import TensorFlow, so the first look-up of an op runs in a worker; later ones
come from the cache at once.
"""
from __future__ import annotations

import html
import weakref

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from ..core.viewmodel import opdocs
from .workers import Worker

#: Characters of the description shown before "more…".
SHORT = 420


def doc_html(doc: opdocs.OpDoc, full: bool = False) -> str:
    desc = doc.description
    more = ""
    if not full and len(desc) > SHORT:
        cut = desc.rfind(" ", 0, SHORT)
        desc = desc[:cut if cut > 0 else SHORT] + " …"
        more = " <a href='more'>more</a>"
    paras = "".join(f"<p>{html.escape(p).replace(chr(10), ' ')}</p>"
                    for p in desc.split("\n\n") if p.strip())
    rows = []
    for name, text in doc.args.items():
        kind = "input" if name in doc.inputs else "attribute"
        rows.append(f"<tr><td valign=top><b>{html.escape(name)}</b><br>"
                    f"<span style='color:#778'>{kind}</span></td>"
                    f"<td valign=top>{html.escape(text)}</td></tr>")
    table = f"<table cellspacing=0 cellpadding=2>{''.join(rows)}</table>" if rows else ""
    return f"<p><b>{html.escape(doc.summary)}</b></p>{paras}{more}{table}"


class OpDocView(QWidget):
    """Shows the documentation of one op type; ``shown(op)`` is emitted once it is filled."""

    shown = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel()
        self.label.setObjectName("op_doc")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.RichText)
        self.label.setTextInteractionFlags(Qt.TextBrowserInteraction)
        self.label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        self.label.linkActivated.connect(self._more)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        self.op: str | None = None
        self.doc: opdocs.OpDoc | None = None
        self._worker: Worker | None = None

    def show_op(self, op: str) -> None:
        if op == self.op and self.doc is not None:
            return
        self.op, self.doc = op, None
        if op not in _known and _tensorflow_ready():
            _known[op] = opdocs.op_doc(op)  # a docstring parse: milliseconds
        if op in _known:
            self._fill(op, _known[op])
            return
        self.label.setText("<i>Looking up what this op does…</i>")
        # One import of TensorFlow for every thread: started here, on the GUI thread, before
        # any worker (this one, the inspector's Const statistics) imports it on its own —
        # two threads importing it at once leave one with a half-initialised module.
        from ..core.model import tfenv
        tfenv.import_in_background()
        ref = weakref.ref(self)

        def done(doc):
            _known[op] = doc
            view = ref()
            if view is not None and view.op == op:
                view._fill(op, doc)
        w = Worker(opdocs.op_doc, op)
        w.signals.finished.connect(done)
        w.signals.failed.connect(lambda msg, exc: done(None))
        self._worker = w
        w.start()

    def attr_text(self, name: str) -> str:
        """What attribute (or input) ``name`` of the shown op means ("" if unknown)."""
        return self.doc.args.get(name, "") if self.doc else ""

    def _fill(self, op: str, doc: opdocs.OpDoc | None) -> None:
        self.doc = doc
        if doc is None:
            self.label.setText(f"<i>TensorFlow has no documentation for {html.escape(op)} "
                               "(a custom op, or one from another TensorFlow version).</i>")
        else:
            self.label.setText(doc_html(doc))
        self.shown.emit(op)

    def _more(self, _link: str) -> None:
        if self.doc is not None:
            self.label.setText(doc_html(self.doc, full=True))


def _tensorflow_ready() -> bool:
    """TensorFlow is imported (and not half-way through its background import)."""
    import sys

    from ..core.model import tfenv
    # never touch a half-imported TensorFlow from this thread (its lazy attributes import)
    if tfenv.background_import_running() or "tensorflow" not in sys.modules:
        return False
    return any(name.endswith("raw_ops") and name.startswith("tensorflow")
               for name in list(sys.modules))


#: op → its documentation, once looked up (shared by every view).
_known: dict[str, opdocs.OpDoc | None] = {}
