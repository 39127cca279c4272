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
