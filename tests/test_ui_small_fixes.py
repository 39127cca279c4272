"""Small new-user fixes: telling recent-file names, GUI wording of the Lambda refusal, the Diff panel after a preset."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")


def test_recent_entry_with_untelling_name_shows_its_folder(qtbot, tmp_path):
    from surgeon_gui.ui.start_page import StartPage

    folder = tmp_path / "MTT_musicnn"
    folder.mkdir()
    meta = folder / ".meta"
    meta.write_bytes(b"x")
    saved = tmp_path / "resnet" / "saved_model.pb"
    frozen = tmp_path / "ssd_mobilenet" / "frozen_graph.pb"
    plain = tmp_path / "other" / "mobilenet_v2.pb"
    page = StartPage()
    qtbot.addWidget(page)
    paths = [str(meta), str(saved), str(frozen), str(plain)]
    page.set_recent(paths)
    shown = [page.recent_list.item(i).text().split("\n")[0] for i in range(page.recent_list.count())]
    assert shown == ["MTT_musicnn/.meta", "resnet/saved_model.pb", "ssd_mobilenet/frozen_graph.pb",
                     "mobilenet_v2.pb"]
    # the full path stays in the tooltip (and in the data used to open it)
    item = page.recent_list.item(0)
    assert item.toolTip() == str(meta)
    assert item.data(0x0100) == str(meta)


# ---------------------------------------------------------------- long names in the narrow lists
RETINA = "RetinaFaceModel/MobileNetV2_extrator/block_{}_project/Conv2D"


def test_elide_path_keeps_the_components_that_differ(qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QFontMetrics
    from PySide6.QtWidgets import QApplication
    from surgeon_gui.ui.name_elide import elide_path
    fm = QFontMetrics(QApplication.font())
    a, b = RETINA.format(13), RETINA.format(14)
    width = fm.horizontalAdvance("…/block_13_project/Conv2D") + 4
    # what Qt's middle elision did (the Match and Diff lists): both rows read the same
    assert fm.elidedText(a, Qt.ElideMiddle, width) == fm.elidedText(b, Qt.ElideMiddle, width)
    ea, eb = elide_path(a, fm, width), elide_path(b, fm, width)
    assert ea == "…/block_13_project/Conv2D" and eb == "…/block_14_project/Conv2D"
    assert fm.horizontalAdvance(ea) <= width
    # wider: more whole components; fits: unchanged; not a path: Qt's middle elision
    wide = fm.horizontalAdvance("…/MobileNetV2_extrator/block_13_project/Conv2D") + 2
    assert elide_path(a, fm, wide) == "…/MobileNetV2_extrator/block_13_project/Conv2D"
    assert elide_path(a, fm, fm.horizontalAdvance(a)) == a
    assert elide_path("a long sentence with words", fm, 40) == \
        fm.elidedText("a long sentence with words", Qt.ElideMiddle, 40)


def _row_pixels(view, row):
    from PySide6.QtCore import QRect
    idx = view.model().index(row, 0)
    r = view.visualRect(idx)
    return view.viewport().grab(QRect(r.x(), r.y(), r.width(), r.height())).toImage()


@pytest.mark.parametrize("which", ["search", "matches", "diff"])
def test_narrow_lists_show_rows_that_differ(qtbot, tmp_path, monkeypatch, which):
    """Two long names that differ only near their end paint differently in a narrow column
    (the Match and Diff lists' middle elision painted "RetinaFaceMo…oject/Conv2D" for both)."""
    from PySide6.QtWidgets import QHeaderView, QTreeWidgetItem
    from support import make_window
    w = make_window(qtbot, tmp_path, monkeypatch, size=(1300, 850))
    w.finish_panels()
    view = {"search": lambda: w.inspection.search.results, "matches": lambda: w.surgery.passes.matches,
            "diff": lambda: w.surgery.diff.tree}[which]()
    view.setParent(None)     # on its own, narrow (the panels' own layout does not matter here)
    qtbot.addWidget(view)
    view.clear()
    view.setAlternatingRowColors(False)
    for n in (13, 14):
        view.addTopLevelItem(QTreeWidgetItem([RETINA.format(n), "Conv2D"]))
    view.header().setSectionResizeMode(QHeaderView.Interactive)
    view.header().setStretchLastSection(False)
    view.setColumnWidth(0, view.fontMetrics().horizontalAdvance("…/block_13_project/Conv2D") + 30)
    view.setColumnWidth(1, 60)
    view.resize(400, 200)
    view.show()
    qtbot.waitExposed(view)
    a, b = _row_pixels(view, 0), _row_pixels(view, 1)
    assert a.size() == b.size() and a.width() > 50
    assert a != b
