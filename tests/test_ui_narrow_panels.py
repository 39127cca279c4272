"""The narrow panels at the default 1600×1000 layout, on real models' long names: the name
column gets the room (RetinaFace's Search results read "…onv1_pad/Pad" beside a full
"DepthwiseConv2dNative"), placeholders are not cut."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

NAMES = [("RetinaFaceModel/MobileNetV2_extrator/block_13_expand/Conv2D", "Conv2D"),
         ("RetinaFaceModel/MobileNetV2_extrator/block_13_depthwise/depthwise",
          "DepthwiseConv2dNative"),
         ("RetinaFaceModel/MobileNetV2_extrator/block_13_expand_BN/FusedBatchNormV3",
          "FusedBatchNormV3")]


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    from support import make_window
    w = make_window(qtbot, tmp_path, monkeypatch, size=(1600, 1000))
    w.finish_panels()
    qtbot.waitExposed(w)
    return w


def _dock_of(w, name):
    from PySide6.QtWidgets import QDockWidget
    return next(d for d in w.findChildren(QDockWidget) if d.objectName() == name)


@pytest.mark.parametrize("dock, view", [
    ("SearchDock", lambda w: w.inspection.search.results),
    ("DiffDock", lambda w: w.surgery.diff.tree),
    ("PassesDock", lambda w: w.surgery.passes.matches)])
def test_the_name_column_gets_the_room(qtbot, window, dock, view):
    from PySide6.QtWidgets import QApplication, QTreeWidgetItem
    d = _dock_of(window, dock)
    d.show()
    d.raise_()
    tree = view(window)
    tree.clear()
    for name, op in NAMES:
        tree.addTopLevelItem(QTreeWidgetItem([name, op]))
    QApplication.processEvents()
    qtbot.wait(50)
    h, fm = tree.header(), tree.fontMetrics()
    room = tree.viewport().width()
    assert 200 < room < 400, room   # the default layout's narrow column
    # the block and the op show whole ("…/block_13_expand/Conv2D")
    wanted = fm.horizontalAdvance("…/block_13_expand/Conv2D")
    assert h.sectionSize(0) >= wanted + 12, (h.sectionSize(0), h.sectionSize(1), room, wanted)
    assert h.sectionSize(0) + h.sectionSize(1) <= room + 1   # no horizontal scrolling
    assert h.sectionSize(1) > fm.horizontalAdvance("Conv2D")  # short ops still whole


def test_search_placeholders_fit(window):
    from surgeon_gui.ui.search_panel import PLACEHOLDERS
    panel = window.inspection.search
    d = _dock_of(window, "SearchDock")
    d.show()
    d.raise_()
    q = panel.query
    for text in PLACEHOLDERS.values():
        assert q.fontMetrics().horizontalAdvance(text) <= q.width() - 30, (text, q.width())


@pytest.mark.parametrize("samples", ["closed", "random", "file", "image"])
def test_comparison_panel_fits_its_dock(qtbot, window, samples):
    """At 1600×1000 the Comparison tab sits in the ~320 px right column: everything fits its
    width (no horizontal scroll bar; the progress bar, the target and the reference choice
    are not cut off at the right edge)."""
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication, QScrollArea
    d = _dock_of(window, "CompareDock")
    d.show()
    d.raise_()
    QApplication.processEvents()
    panel = d.widget()
    if samples != "closed":   # the Sample inputs editor open, each source's row shown
        panel.samples_toggle.setChecked(True)
        panel.samples.stack.setCurrentIndex(["random", "file", "image"].index(samples))
        QApplication.processEvents()
    scroll = panel.findChild(QScrollArea)
    room = scroll.viewport().width()
    assert 250 < room < 400, room
    body = scroll.widget()
    assert body.minimumSizeHint().width() <= room, (body.minimumSizeHint().width(), room)
    assert not scroll.horizontalScrollBar().isVisible()
    ed = panel.samples
    shown = ([] if samples == "closed" else [ed.load_btn, ed.set_combo, ed.seed, ed.batch]) + {
        "closed": [], "random": [ed.high, ed.distribution], "file": [ed.file_key, ed.file_browse],
        "image": [ed.image_browse, ed.mean_std]}[samples]
    for w in [panel.progress, panel.target_combo, panel.reference_combo, panel.run_btn,
              panel.cancel_btn, panel.drift_cap, panel.npz_btn] + shown:
        right = w.mapTo(scroll.viewport(), QPoint(w.width(), 0)).x()
        assert right <= room, (w.objectName() or type(w).__name__, right, room)
        assert w.isVisible() and w.width() >= min(w.sizeHint().width(), 60), type(w).__name__


def test_what_a_match_does_beside_its_name():
    """RetinaFace's fold_batch_norm rows read "Conv2D RetinaFac…" beside the name: the text
    shown drops the "<op> <name>" the name column shows and the model's scope; the tooltip
    keeps it whole."""
    from surgeon_gui.core.model import real_models as rm
    from surgeon_gui.core.model.graph import Graph
    from surgeon_gui.core.passes import get_pass
    from surgeon_gui.ui.name_elide import beside_name
    gd, ins, outs = rm.retinaface()
    report = get_pass("fold_batch_norm").run(Graph(gd).with_io(ins, outs)).report
    m = next(m for m in report.matches if m.key.endswith("block_13_expand/Conv2D"))
    assert m.description.startswith("Conv2D RetinaFaceModel/MobileNetV2_extrator/block_13_expand")
    shown = beside_name(m.key, m.description)
    assert shown.startswith("absorbs FusedBatchNormV3 …/block_13_expand_BN/FusedBatchNormV3: ")
    assert "RetinaFaceModel/" not in shown
    assert beside_name("x", "a reason about x") == "a reason about x"


@pytest.mark.parametrize("width", [300, 900])
def test_histogram_labels_do_not_run_together(qtbot, width):
    """The error histogram's bin labels at the dock's width: drawn ones do not overlap, the
    first ("0") and last (">1") always are; wide enough, all are."""
    from PySide6.QtGui import QFont, QFontMetricsF
    from surgeon_gui.core.running.compare import HIST_EDGES
    from surgeon_gui.ui.error_histogram import ErrorHistogram
    h = ErrorHistogram()
    qtbot.addWidget(h)
    h.resize(width, 150)
    h.set_histogram([5] * (len(HIST_EDGES) - 1), 1e-5, "x")
    h.grab()   # paints (no exception)
    small = QFont(h.font())
    small.setPointSizeF(max(6.5, small.pointSizeF() * 0.8))
    fm = QFontMetricsF(small)
    labels = h.bin_labels()
    n = len(labels)
    w = (width - 16) / n
    widths = [fm.horizontalAdvance(t) for t in labels]
    shown = h.labelled_bins(widths, w)
    assert shown[0] == 0 and shown[-1] == n - 1
    for i, j in zip(shown, shown[1:]):
        assert (j - i) * w >= (widths[i] + widths[j]) / 2, (labels[i], labels[j])
    if width >= 900:
        assert shown == list(range(n))
    else:
        assert len(shown) < n   # at this width not all fit: some were left out


def test_recent_files_tell_the_model_and_keep_the_paths_end(qtbot, tmp_path):
    """RetinaFace's recent entry read "src/frozen_graph.pb" and its path ran off the list's
    edge (a sideways scroll bar); the label goes up past untelling folders, the path is
    elided in the middle."""
    from PySide6.QtWidgets import QApplication
    from surgeon_gui.ui.start_page import StartPage, recent_label
    retina = "/venv/lib/python3.11/site-packages/retinaface/src/frozen_graph.pb"
    assert recent_label(retina) == "retinaface/src/frozen_graph.pb"
    assert recent_label("/m/resnet/1/saved_model.pb") == "resnet/1/saved_model.pb"
    assert recent_label("/p/musicnn/MTT_musicnn/.meta") == "MTT_musicnn/.meta"
    assert recent_label("/p/models/mobilenet_v2.pb") == "mobilenet_v2.pb"
    page = StartPage()
    qtbot.addWidget(page)
    page.resize(700, 500)
    page.show()
    long = str(tmp_path / ("deep/" * 12) / "retinaface" / "src" / "frozen_graph.pb")
    page.set_recent([long])
    QApplication.processEvents()
    lst = page.recent_list
    assert lst.viewport().width() < lst.fontMetrics().horizontalAdvance(long)
    assert lst.horizontalScrollBar().maximum() == 0 or not lst.horizontalScrollBar().isVisible()
    assert lst.item(0).toolTip() == long + " (missing)"


def test_short_names_leave_the_room_to_the_change(qtbot, window):
    """tf2's Diff rows have short names ("cond_1/input_0") and long changes ("FusedBatchNormV3
    → BiasAdd", shown "Fused…asAdd" in 30% of the list): the change column then takes all the
    names leave."""
    from PySide6.QtWidgets import QApplication, QTreeWidgetItem
    d = _dock_of(window, "DiffDock")
    d.show()
    d.raise_()
    tree = window.surgery.diff.tree
    tree.clear()
    change = "FusedBatchNormV3 → BiasAdd"
    for name in ("cond_1/input_0", "cond/FusedBatchNormV3"):
        tree.addTopLevelItem(QTreeWidgetItem([name, change]))
    QApplication.processEvents()
    qtbot.wait(50)
    h, room = tree.header(), tree.viewport().width()
    names = tree.sizeHintForColumn(0)      # the longest name, whole
    assert names < 0.7 * room
    assert h.sectionSize(0) == names and h.sectionSize(1) == room - names > 0.3 * room
