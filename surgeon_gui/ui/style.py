"""Colours, fonts and sizes of the graph view, in one place."""
from __future__ import annotations

import colorsys

from PySide6.QtGui import QColor, QFont, QFontMetricsF

from ..core.viewmodel.grouping import FAMILIES, FAMILY_TITLES

#: Op-family fills (light, so black text stays readable) and their borders.
FAMILY_FILL = {
    "conv": QColor("#a9c9ee"),
    "norm": QColor("#b7e0c3"),
    "activation": QColor("#f7d79f"),
    "arith": QColor("#dcd6ef"),
    "control": QColor("#f3b4b4"),
    "io": QColor("#9edfdb"),
    "const": QColor("#e6e6e6"),
    "other": QColor("#e6dfd0"),
}
FAMILY_BORDER = {k: v.darker(150) for k, v in FAMILY_FILL.items()}

TEXT = QColor("#1d232c")
TEXT_DIM = QColor("#55606e")
EDGE = QColor("#7d8796")
EDGE_CONTROL = QColor("#a3abb7")
EDGE_LABEL = QColor("#5b6572")
BACKGROUND = QColor("#fbfbfc")
GROUP_FILL = QColor("#eef1f6")
GROUP_BORDER = QColor("#8794a8")
FRAME_FILL = QColor(228, 233, 241, 110)
FRAME_BORDER = QColor("#a6b1c2")
SELECTION = QColor("#1a73e8")
WARNING = QColor("#e8590c")
BADGE_FILL = QColor("#ffffff")
BADGE_BORDER = QColor("#9aa5b4")
#: The history's tag on a node's box ("folded BN").
TAG_FILL = QColor("#fff4e0")

#: Diff marks.
MARK_COLORS = {
    "added": QColor("#2b9e3f"),
    "changed": QColor("#f08c00"),
    "removed": QColor("#d62f2f"),
    "renamed": QColor("#1c7ed6"),
}
#: Highlight kinds (set_highlight); unknown kinds use "match".
HIGHLIGHT_COLORS = {
    "match": QColor("#7048e8"),
    "search": QColor("#7048e8"),
    "preview": QColor("#0ca5b0"),
    # a preview of a cond's removal: the branch that dies, and the one that stays
    "dead": QColor("#d62f2f"),
    "kept": QColor("#2b9e3f"),
    "refused": QColor("#868e96"),
    "upstream": QColor("#1a73e8"),
    "downstream": QColor("#d6336c"),
}


def highlight_color(kind: str) -> QColor:
    return HIGHLIGHT_COLORS.get(kind, HIGHLIGHT_COLORS["match"])


def legend_entries() -> list[tuple[str, QColor]]:
    return [(FAMILY_TITLES[f], FAMILY_FILL[f]) for f in FAMILIES]


def signature_color(signature: int) -> QColor:
    """A stable pastel colour for a repeated-structure signature."""
    h = ((signature % 1000003) * 0.61803398875) % 1.0  # (big ints lose the fraction)
    r, g, b = colorsys.hls_to_rgb(h, 0.86, 0.55)
    return QColor.fromRgbF(r, g, b)


def font(size: float = 8.5, bold: bool = False) -> QFont:
    f = QFont()
    f.setPointSizeF(size)
    f.setBold(bold)
    return f


class Metrics:
    """Text widths measured once on the GUI thread; sizes from them are plain arithmetic
    (thread-safe, used by layouts running in a worker)."""

    def __init__(self):
        self.title_font = font(8.5, True)
        self.body_font = font(7.5)
        self.badge_font = font(6.5)
        self.label_font = font(6.5)
        fm_t = QFontMetricsF(self.title_font)
        fm_b = QFontMetricsF(self.body_font)
        sample = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789/"
        self.title_char = fm_t.horizontalAdvance(sample) / len(sample)
        self.body_char = fm_b.horizontalAdvance(sample) / len(sample)
        self.title_h = fm_t.height()
        self.body_h = fm_b.height()
        fm_g = QFontMetricsF(self.badge_font)
        self.badge_char = fm_g.horizontalAdvance(sample + "×") / (len(sample) + 1)
        self.badge_h = fm_g.height() + 3
        # a badge's text ("w 3×3×3×64") is measured char by char: digits and "×" are wider
        # than the average letter, and an average cut "w 3×3×3×6" short. A char not in the
        # table counts as the font's widest.
        self._badge_adv = {c: fm_g.horizontalAdvance(c)
                           for c in sample + " ×…+-?.,:()[]<>=*'\"#%"}
        self._badge_max = fm_g.maxWidth()

    def badge_text_w(self, text: str) -> float:
        """Width of ``text`` in the badge font (pure arithmetic: safe in a worker)."""
        adv, wide = self._badge_adv, self._badge_max
        return sum(adv.get(c, wide) for c in text) + 1.0


NODE_MIN_W = 96.0
NODE_MAX_W = 210.0
GROUP_MIN_W = 130.0
GROUP_MAX_W = 240.0
MAX_BADGES = 3

#: Colours for View ▸ Colour by Device, in order of first use.
DEVICE_PALETTE = ["#8ab4f8", "#f6ae6b", "#81c995", "#f28b82", "#c58af9", "#fdd663",
                  "#78d9ec", "#ff8bcb"]
NO_DEVICE = QColor("#e3e6ea")


def device_colors(graph) -> tuple[dict[str, QColor], list[tuple[str, QColor]]]:
    """Node → fill colour by its device (``/device:GPU:0`` …) and the legend entries; nodes
    with no device share a grey "(no device)"."""
    from collections import Counter
    counts = Counter(n.device for n in graph.graph_def.node)
    palette: dict[str, QColor] = {}
    for dev, _ in counts.most_common():
        if dev:
            palette[dev] = QColor(DEVICE_PALETTE[len(palette) % len(DEVICE_PALETTE)])
    colors = {n.name: palette.get(n.device, NO_DEVICE) for n in graph.graph_def.node}
    legend = [(f"{dev} ({counts[dev]})", c) for dev, c in palette.items()]
    if counts.get("", 0):
        legend.append((f"(no device) ({counts['']})", NO_DEVICE))
    return colors, legend


def monospace_font() -> QFont:
    """A fixed-pitch font at the interface's size (commands, tensor values)."""
    from PySide6.QtWidgets import QApplication
    f = QFont(QApplication.font())
    f.setFamilies(["DejaVu Sans Mono", "Menlo", "Consolas", "Noto Sans Mono", "monospace"])
    f.setStyleHint(QFont.TypeWriter)
    f.setFixedPitch(True)
    return f
