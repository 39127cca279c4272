"""Screenshots of the surgery workflow for docs/: a model before and after "remove Switch/Merge"
and "fold batch norm", with the diff marks of each step (red ghosts where nodes were removed,
green added, amber changed), the History and Diff panels.

    QT_QPA_PLATFORM=offscreen python scripts/surgery_screenshots.py [MODEL] [--out docs]

Unlike ``surgeon-gui --apply --expand-all --screenshot`` (which applies, then expands), this
expands every group first so the removed nodes were drawn and leave ghosts at their old place.
Steps go through the same undo commands as the Passes panel.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?",
                    default=str(ROOT / "resources" / "examples" / "tf1_cond_bn_dropout.pb"))
    ap.add_argument("--out", default=str(ROOT / "docs"))
    ap.add_argument("--size", default="1500x950")
    args = ap.parse_args(argv)
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QAbstractItemView
    from PySide6.QtWidgets import QApplication
    from surgeon_gui.ui.commands import apply_passes
    from surgeon_gui.ui.main_window import MainWindow
    app = QApplication.instance() or QApplication([])
    w = MainWindow()
    w.persist_settings = False
    width, _, height = args.size.partition("x")
    w.resize(int(width), int(height))
    for dock in w.panels():
        if dock.objectName() not in ("PassesDock", "HistoryDock", "DiffDock"):
            dock.hide()
    w.show()

    def settle(timeout=120):
        end = time.time() + timeout
        app.processEvents()
        while (w.view.layout_pending or w.document is None) and time.time() < end:
            app.processEvents()
            time.sleep(0.01)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)

    w.open_model(args.model)
    settle()
    if w.document is None:
        print(f"cannot open {args.model}: {w.last_error}", file=sys.stderr)
        return 1
    w.view.expand_all()
    settle()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def shoot(name):
        w.view.show_readable_overview()
        settle()
        path = out / name
        # full colour (op families are told apart by colour), strongest PNG compression
        w.grab().save(str(path), "PNG", 0)
        print(f"wrote {path}")

    shoot("surgery_0_opened.png")
    # the flag first (Switch/Merge can only go once the condition is a constant)
    apply_passes(w.undo_stack, w.document, ["training_flags"])
    settle()
    apply_passes(w.undo_stack, w.document, ["remove_switch_merge"])
    settle()
    w.surgery.diff.tree.topLevelItem(0).setExpanded(True)
    shoot("surgery_1_remove_switch_merge.png")
    w.view.expand_all()
    settle()
    apply_passes(w.undo_stack, w.document, ["remove_identity"])
    settle()
    w.view.expand_all()
    settle()
    apply_passes(w.undo_stack, w.document, ["fold_batch_norm"])
    settle()
    diff = w.surgery.diff
    diff.tree.topLevelItem(0).setExpanded(False)
    changed = diff.tree.topLevelItem(2)
    changed.setExpanded(True)
    for i in range(changed.childCount()):
        if changed.child(i).text(0).endswith("weights"):
            changed.child(i).setExpanded(True)
            diff.tree.scrollToItem(changed.child(i), QAbstractItemView.PositionAtTop)
            break
    shoot("surgery_2_fold_batch_norm.png")
    w.close_guards.clear()
    w.close()
    del Qt
    return 0


if __name__ == "__main__":
    sys.exit(main())
