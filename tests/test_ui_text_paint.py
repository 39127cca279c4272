"""Box and edge texts laid out once (graph_scene._Text) draw the very pixels
``QPainter.drawText(rect, flags, text)`` draws, at any zoom and sub-pixel position, and
what they cannot draw the same way (a text wider than its rectangle, which drawText clips;
tabs; right-to-left scripts) is left to drawText."""
import random

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QTransform

from surgeon_gui.ui import style
from surgeon_gui.ui.graph_scene import _LEFT_MIDDLE, _Text, _font, _text

CENTER = Qt.AlignCenter


def _picture(transform: QTransform, font, draw) -> QImage:
    img = QImage(420, 260, QImage.Format_ARGB32_Premultiplied)
    img.fill(QColor(240, 242, 245))
    p = QPainter(img)
    p.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
    p.setTransform(transform)
    p.setPen(style.TEXT_DIM)
    p.setFont(font)
    draw(p)
    p.end()
    return img


def test_a_laid_out_text_draws_what_draw_text_draws(qapp):
    m = style.Metrics()
    cases = [  # the scene's texts: stub label, group title, ×N badge, size, ops line
        (_font(6.5), "is_training", 300, 13, CENTER),
        (m.title_font, "stage_123", 160, m.title_h, _LEFT_MIDDLE),
        (m.badge_font, "×199", 28, 13, CENTER),
        (m.body_font, "535 nodes", 180, m.body_h, _LEFT_MIDDLE),
        (m.body_font, "BiasAdd · Conv2D · FusedBatc…", 176, m.body_h, _LEFT_MIDDLE),
        (_font(6.5), "x  ×3", 126, 16, _LEFT_MIDDLE),
    ]
    rnd = random.Random(7)
    for font, text, w, h, flags in cases:
        t = _Text(text, font)
        assert t.offset(w, h, flags) is not None, text  # drawn from the layout, not drawText
        for scale in (1.0, 0.8, 0.64, 0.512, 0.41, 0.33, 1.25, 2.0):
            for _ in range(4):
                tr = QTransform(scale, 0, 0, scale, rnd.uniform(-5, 5), rnd.uniform(-5, 5))
                r = QRectF(rnd.uniform(-20, 50), rnd.uniform(0, 80), w, h)  # (in the picture)
                want = _picture(tr, font, lambda p: p.drawText(r, flags, text))
                got = _picture(tr, font, lambda p: t.draw(p, r, flags))
                assert got == want, (text, scale, r)
                # (the pixels are not the same wherever the text goes: it is really drawn)
                assert got != _picture(tr, font, lambda p: None)


def test_what_a_layout_would_not_draw_the_same_is_left_to_draw_text(qapp):
    m = style.Metrics()
    long = _Text("a_rather_long_scope_name_that_overflows", m.title_font)
    assert long.offset(60, m.title_h, _LEFT_MIDDLE) is None      # drawText clips it
    assert long.offset(400, m.title_h, Qt.AlignRight | Qt.AlignVCenter) is None
    for text in ("a\tb", "two\nlines", "&File", "שלום", "→ 199 far consumers"):
        assert _Text(text, m.title_font).offset(400, 40, _LEFT_MIDDLE) is None, text
    tr = QTransform(0.8, 0, 0, 0.8, 0.3, 0.7)
    r = QRectF(10, 10, 60, m.title_h)
    assert _picture(tr, m.title_font, lambda p: long.draw(p, r, _LEFT_MIDDLE)) == \
        _picture(tr, m.title_font, lambda p: p.drawText(r, _LEFT_MIDDLE, long.text))
    assert _text(6.5, "is_training") is _text(6.5, "is_training")  # laid out once


def test_a_device_of_another_dpi_gets_draw_texts_own_layout(qapp):
    """A layout is made for Qt's default DPI; drawText lays text out for the painter's device
    (a window on a screen with another logical DPI): there it is drawText again."""
    from surgeon_gui.ui.graph_scene import _laid_out_for

    def picture(dpi, draw):
        img = QImage(420, 120, QImage.Format_ARGB32_Premultiplied)
        img.setDotsPerMeterX(round(dpi / 0.0254))
        img.setDotsPerMeterY(round(dpi / 0.0254))
        img.fill(QColor(240, 242, 245))
        p = QPainter(img)
        p.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        p.setPen(style.TEXT_DIM)
        p.setFont(_font(6.5))
        assert _laid_out_for(p) == (dpi == QImage(1, 1, QImage.Format_ARGB32).logicalDpiY())
        draw(p)
        p.end()
        return img
    t, r = _Text("is_training", _font(6.5)), QRectF(20, 20, 300, 13)
    for dpi in (144, QImage(1, 1, QImage.Format_ARGB32).logicalDpiY()):
        assert picture(dpi, lambda p: t.draw(p, r, CENTER)) == \
            picture(dpi, lambda p: p.drawText(r, CENTER, t.text)), dpi
    # (at 144 dpi the layout's own drawing is another picture: the guard is needed)
    dx, dy = t.offset(300, 13, CENTER)
    at = r.topLeft() + QPointF(dx, dy)
    assert picture(144, lambda p: t.layout.draw(p, at)) != \
        picture(144, lambda p: p.drawText(r, CENTER, t.text))
