"""A node box's weight badges fit inside it: the box is sized for them (up to NODE_MAX_W),
and what still does not fit is cut with "…" and counted in a "+n" that stays inside the box.
(On conv_bias_bn.pbtxt the Conv2D box read "w 3×3×3×(" and FusedBatchNormV3's badges ran past
its right edge.)"""
from pathlib import Path

from support import window_with_file
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFontMetricsF, QImage, QPainter, QTransform

from surgeon_gui.ui import style
from surgeon_gui.ui.graph_scene import NodeItem, badge_layout

EXAMPLE = Path(__file__).resolve().parents[1] / "resources" / "examples" / "conv_bias_bn.pbtxt"


class RecordingPainter(QPainter):
    """Paints for real and notes every text drawn in the badge font, with its rect."""

    def __init__(self, device, badge_font):
        super().__init__(device)
        self.badge_size = badge_font.pointSizeF()
        self.texts: list[tuple[QRectF, str]] = []

    def drawText(self, *args):
        if len(args) == 3 and isinstance(args[0], QRectF) \
                and self.font().pointSizeF() == self.badge_size:
            self.texts.append((QRectF(args[0]), args[2]))
        return super().drawText(*args)


def drawn_badges(item: NodeItem, metrics) -> list[tuple[QRectF, str]]:
    img = QImage(int(item.w * 2) + 20, int(item.h * 2) + 20, QImage.Format_ARGB32)
    p = RecordingPainter(img, metrics.badge_font)
    p.setWorldTransform(QTransform.fromScale(2, 2))  # close enough for every detail
    try:
        item.paint(p, None)
    finally:
        p.end()
    return p.texts


def assert_inside(item: NodeItem, texts, metrics) -> None:
    fm = QFontMetricsF(metrics.badge_font)
    for rect, text in texts:
        assert rect.left() >= 0 and rect.right() <= item.w, (item.name, text, rect, item.w)
        # the text is not clipped by its rect
        assert fm.horizontalAdvance(text) <= rect.width() + 0.01, (item.name, text, rect)


def test_example_badges_fit_their_boxes(qtbot, tmp_path, monkeypatch):
    w = window_with_file(qtbot, tmp_path, monkeypatch, EXAMPLE, size=(1200, 800), exposed=False)
    scene = w.view.graph_scene
    m = scene.metrics
    boxes = {it.op: it for it in scene.items_by_key.values()
             if isinstance(it, NodeItem) and it.badges}
    assert {"Conv2D", "FusedBatchNormV3"} <= set(boxes)
    for item in boxes.values():
        texts = drawn_badges(item, m)
        assert texts, item.name
        assert_inside(item, texts, m)
        # every badge is shown or counted
        shown = [t for _, t in texts if not t.startswith("+")]
        more = [int(t[1:]) for _, t in texts if t.startswith("+")]
        assert len(shown) + sum(more) == len(item.badges), (item.name, texts)
    # the box is sized for them: the weight badge reads whole, the batch norm's three show
    conv = boxes["Conv2D"]
    assert [t for _, t in drawn_badges(conv, m)] == [b.label for b in conv.badges]
    assert conv.badges[0].label.endswith("3×3×3×6")
    bn = boxes["FusedBatchNormV3"]
    got = [t for _, t in drawn_badges(bn, m)]
    labels = [b.label for b in bn.badges]
    assert got[:style.MAX_BADGES] == labels[:style.MAX_BADGES]
    assert got[style.MAX_BADGES:] == [f"+{len(labels) - style.MAX_BADGES}"]


def test_badges_too_long_for_the_widest_box_are_cut_and_counted(qapp):
    m = style.Metrics()
    labels = ["weights 1024×1024×3×3", "bias 1024", "gamma 1024", "beta 1024", "mean 1024"]
    for box_w in (style.NODE_MIN_W, 150.0, style.NODE_MAX_W):
        pills, more = badge_layout(labels, box_w, m)
        assert pills and more is not None
        right = box_w - 6
        for x, wd, text in pills + [more]:
            assert x >= 6 and x + wd <= right + 1e-6, (box_w, text, x, wd)
        for x, wd, text in pills:
            assert m.badge_text_w(text) + 8 <= wd + 1e-6
        # cut ones end with "…" and start as the label did
        for (_, _, text), label in zip(pills, labels):
            assert text == label or (text.endswith("…") and label.startswith(text[:-1]))
        assert int(more[2][1:]) == len(labels) - len(pills)
    # the first one is cut in the narrowest box (it is wider than it), whole in the widest
    assert badge_layout(labels, style.NODE_MIN_W, m)[0][0][2].endswith("…")
    assert badge_layout(labels, style.NODE_MAX_W, m)[0][0][2] == labels[0]
