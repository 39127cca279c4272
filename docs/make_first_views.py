"""Writes docs/first_view_<model>_<tag>.png: the main window's first view of a model, at
1600×1000, as a new user sees it right after opening the file.

    QT_QPA_PLATFORM=offscreen python docs/make_first_views.py TAG MODEL.pb [MODEL.pb ...]

The models of issue 11.4 (ResNet50, EfficientNetB7, a 12-layer Transformer, a TF1 MobileNet v1
with auto-numbered layers) are built by docs/build_first_view_models.py.
"""
import os
import sys
import time

from PySide6.QtWidgets import QApplication

app = QApplication([])
from surgeon_gui.ui.main_window import MainWindow  # noqa: E402


def settle(n=10):
    for _ in range(n):
        app.processEvents()
        time.sleep(0.03)


def shot(path: str, out: str) -> None:
    w = MainWindow()
    w.persist_settings = False
    w.close_guards.clear()
    w.resize(1600, 1000)
    w.show()
    try:
        from surgeon_gui.ui import window_layout
        window_layout.apply_default(w)
    except ImportError:
        pass
    settle()
    done = []
    w.document_opened.connect(lambda *_: done.append(1))
    w.open_model(path)
    t0 = time.time()
    while not done and time.time() - t0 < 600:
        settle(1)
    while getattr(w.view, "layout_pending", False) and time.time() - t0 < 600:
        settle(1)
    settle()
    w.grab().save(out)
    tree = w.view.tree
    print(out, f"{len(w.view.graph_scene.items_by_key)} items drawn,",
          f"{len(tree.groups)} groups", flush=True)
    w.close()


tag = sys.argv[1]
for p in sys.argv[2:]:
    name = os.path.splitext(os.path.basename(p))[0]
    shot(p, os.path.join(os.path.dirname(__file__), f"first_view_{name}_{tag}.png"))
