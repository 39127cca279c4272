"""Writes docs/view_*.png: the graph view on the bundled examples (run from the repo root,
QT_QPA_PLATFORM=offscreen python docs/make_view_pngs.py)."""
import time
from PySide6.QtWidgets import QApplication
app = QApplication([])
from surgeon_gui.core.model.io import load_model
from surgeon_gui.core.history.document import Document
from surgeon_gui.ui.graph_view import GraphView

def settle():
    for _ in range(20):  # the minimap follows the layout after a short debounce
        app.processEvents(); time.sleep(0.03)

def shot(path, out, expand=(), scale=0.85, center=None, size=(1100, 720), horizontal=False, select=None):
    v = GraphView(); v.resize(*size); v.show()
    v.set_horizontal(horizontal)
    v.set_document(Document.from_loaded(load_model(path)), reset_view=True)
    for k in expand:  # a group key, or a group's label
        key = k if k in v.tree.groups else next(g for g, grp in v.tree.groups.items()
                                                if grp.label == k)
        v.expand(key)
        if center == "scope:" + k:
            center = "scope:" + key
    if select:
        v.select([select])
    v.resetTransform(); v.scale(scale, scale)
    if center:
        it = v.item_for(center); v.centerOn(it)
        v.horizontalScrollBar().setValue(v.horizontalScrollBar().value() - 130)  # legend room
    else:
        r = v.graph_scene.itemsBoundingRect(); vis = v.mapToScene(v.viewport().rect()).boundingRect()
        v.centerOn(r.center().x(), r.top() + vis.height() / 2 - 10)
    settle()
    v.grab().save(out)
    print(out)

shot("resources/examples/tf1_cond_bn_dropout.pb", "docs/view_tf1.png", expand=["bn1", "bn1/cond"], scale=0.8, center="scope:bn1/cond/FusedBatchNormV3_1", select="bn1/cond/Merge")
shot("resources/examples/mobilenet_v2_96.pb", "docs/view_mobilenet.png", scale=0.8)
shot("resources/examples/mobilenet_v2_96.pb", "docs/view_mobilenet_block.png",
     expand=["block_2", "block_2_expand_BN_1"], scale=0.8, center="scope:block_2")
