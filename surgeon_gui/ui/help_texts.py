"""Help ▸ Quick Guide and Help ▸ Keyboard Shortcuts.

The shortcut list is read from the window's own menus and actions, so it cannot drift from what
the keys really do; the few keys the graph view handles itself are listed with them.
"""
from __future__ import annotations

import html

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

GUIDE = """
<h2>Graph Surgeon in five steps</h2>
<ol>
<li><b>Open</b> a frozen graph (<code>.pb</code>/<code>.pbtxt</code>), a SavedModel folder or a
Keras file: File ▸ Open, a recent file on the start page, or drop it on the window.</li>
<li><b>Look around.</b> Boxes are ops, coloured by family; grey boxes with a triangle are
name-scope groups (double-click or Enter to open, Ctrl+Shift+E opens all). Click a node to see
it in the <i>Inspector</i> — attributes, weights, what the op does. Ctrl+F searches by name, op
or attribute; F3 / Shift+F3 step through the hits. Ctrl+I traces the inputs of the selection
(everything else dims), Esc clears.</li>
<li><b>Operate.</b> In <i>Passes</i> pick one — <i>Optimize for inference</i> runs the usual
set — and press <i>Preview</i> to see every match (and every refusal, with its reason) before
anything changes, then <i>Apply all</i>. Or edit by hand: right-click a node ▸ Edit graph
(Del deletes, F2 renames).</li>
<li><b>Check.</b> The <i>Diff</i> panel lists what the step changed (green added, amber
changed, red removed; <i>Before</i> shows the old graph). <i>Comparison</i> (Ctrl+R) runs the
original and the current graph on the same inputs and says whether the outputs still agree.</li>
<li><b>Keep.</b> Ctrl+Z undoes a step (the <i>History</i> lists them all; click one to go
back there); File ▸ Save writes the result (never over the original without asking);
File ▸ Export Recipe writes the steps as a recipe that <code>surgeon optimize --recipe</code>
replays on the command line.</li>
</ol>
<p>View ▸ Reset Layout puts every panel back where it started.</p>
"""

#: Keys the graph view handles itself (not menu actions).
VIEW_KEYS = [
    ("+ / −, mouse wheel", "Zoom the graph"),
    ("Arrow keys, drag", "Move around the graph"),
    ("Enter", "Open or close the selected group"),
    ("Double-click", "Open or close a group; show a node in the Inspector"),
]
#: Keys of the panels' own widgets.
PANEL_KEYS = [
    ("Alt+Left", "Inspector: back to what was inspected before"),
    ("Enter", "Search box: go to the current result"),
    ("Up / Down", "Search box: move through the results"),
    ("Esc", "Search box: clear the search"),
]


def shortcut_rows(window) -> list[tuple[str, str, str]]:
    """(menu, action text, keys) for every action of the window that has a shortcut."""
    rows: list[tuple[str, str, str]] = []
    seen: set[int] = set()

    def walk(menu, path: str) -> None:
        for a in menu.actions():
            if a.menu() is not None:
                walk(a.menu(), f"{path} ▸ {a.menu().title().replace('&', '')}")
                continue
            keys = [k.toString(QKeySequence.NativeText) for k in a.shortcuts() if not k.isEmpty()]
            if keys and id(a) not in seen:
                seen.add(id(a))
                rows.append((path, a.text().replace("&", "").split("\t")[0], ", ".join(keys)))
    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), top.menu().title().replace("&", ""))
    for a in window.findChildren(QAction):
        keys = [k.toString(QKeySequence.NativeText) for k in a.shortcuts() if not k.isEmpty()]
        if keys and id(a) not in seen and a.text() and a.isVisible():
            seen.add(id(a))
            rows.append(("", a.text().replace("&", ""), ", ".join(keys)))
    return rows


def shortcuts_html(window) -> str:
    out = ["<h2>Keyboard shortcuts</h2><table cellspacing=0 cellpadding=3>"]
    for menu, text, keys in shortcut_rows(window):
        out.append(f"<tr><td><b>{html.escape(keys)}</b></td><td>{html.escape(text)}</td>"
                   f"<td style='color:#667'>{html.escape(menu)}</td></tr>")
    for title, rows in (("In the graph", VIEW_KEYS), ("In the panels", PANEL_KEYS)):
        out.append(f"<tr><td colspan=3><h3>{title}</h3></td></tr>")
        for keys, text in rows:
            out.append(f"<tr><td><b>{html.escape(keys)}</b></td><td>{html.escape(text)}</td>"
                       "<td></td></tr>")
    out.append("</table>")
    return "".join(out)


def _show(window, title: str, body: str, name: str) -> QDialog:
    dlg = QDialog(window)
    dlg.setObjectName(name)
    dlg.setWindowTitle(title)
    text = QTextBrowser(dlg)
    text.setObjectName("help_text")
    text.setOpenExternalLinks(True)
    text.setHtml(body)
    buttons = QDialogButtonBox(QDialogButtonBox.Close, parent=dlg)
    buttons.rejected.connect(dlg.reject)
    lay = QVBoxLayout(dlg)
    lay.addWidget(text)
    lay.addWidget(buttons)
    dlg.resize(640, 560)
    dlg.setModal(False)
    dlg.show()
    window._help_dialog = dlg  # keep it alive while open
    return dlg


def show_guide(window) -> QDialog:
    return _show(window, "Quick Guide", GUIDE, "help_guide")


def show_shortcuts(window) -> QDialog:
    return _show(window, "Keyboard Shortcuts", shortcuts_html(window), "help_shortcuts")
