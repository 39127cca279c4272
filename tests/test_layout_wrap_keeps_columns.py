"""Opening one block of a chain wrapped into columns keeps the columns (Qt-free, the bundled
MobileNetV2 at 96 px in a 1600x1000 window's canvas): the blocks before the opened one keep
their columns and the opened block stays in its column, instead of the whole chain being cut
afresh for the new heights (issue 11)."""
from pathlib import Path

import pytest

from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import load_model
from surgeon_gui.core.viewmodel.grouping import GroupTree
from surgeon_gui.core.viewmodel.layout import LayoutEngine, boxes_overlap

MODEL = Path(__file__).resolve().parents[1] / "resources" / "examples" / "mobilenet_v2_96.pb"
CANVAS = (980, 950)  # the graph view of the default window at 1600x1000


def size_of(unit):  # about the scene's boxes: a node, a collapsed block
    return (150.0, 44.0) if unit.startswith("n:") else (190.0, 60.0)


@pytest.fixture(scope="module")
def tree():
    m = load_model(MODEL)
    return GroupTree(Graph(m.graph_def, m.inputs, m.outputs))


def wrapper_of(tree):
    tops = [k for k in tree.default_expanded() if tree.groups[k].parent == ""]
    assert len(tops) == 1
    return tops[0]


def columns(placement, wrapper):
    """The wrapper's children column by column, left to right: {unit: column index}."""
    items = sorted((b.x, b.x + b.w, k) for k, b in placement.boxes.items()
                   if (k.startswith("g:") or k.startswith("n:"))
                   and k[2:] != wrapper and k[2:].rsplit("/", 1)[0] == wrapper)
    out, col, right = {}, -1, None
    for x0, x1, k in items:
        if right is None or x0 > right + 20:
            col, right = col + 1, x1
        else:
            right = max(right, x1)
        out[k] = col
    return out


def block(tree, wrapper, name):
    return next(k for k in tree.groups
                if tree.groups[k].parent == wrapper and k.rsplit("/", 1)[1].startswith(name + "_"))


def chain_order(placement, cols):
    """Children in reading order: column, then top to bottom."""
    return sorted(cols, key=lambda k: (cols[k], placement.boxes[k].y))


@pytest.mark.parametrize("name", ["block_2", "block_5", "block_8", "block_11", "block_14"])
def test_opening_a_block_keeps_the_columns_before_it_and_its_own(tree, name):
    w = wrapper_of(tree)
    eng = LayoutEngine(tree, size_of, wrap_in=CANVAS)
    base = tree.default_expanded()
    first = eng.layout(base)
    before = columns(first, w)
    assert max(before.values()) >= 2  # the first view is wrapped into columns
    g = "g:" + block(tree, w, name)
    order = chain_order(first, before)
    earlier = order[:order.index(g)]
    assert earlier

    opened = eng.layout(base | {g[2:]})
    after = columns(opened, w)
    assert opened.boxes[g].h > first.boxes[g].h * 3  # it did open, and grew
    assert after[g] == before[g], "the opened block left its column"
    moved = {k: (before[k], after[k]) for k in earlier if after[k] != before[k]}
    assert not moved, f"blocks before {name} changed column: {moved}"
    # units after it only ever move on to later columns, never back
    assert all(after[k] >= before[k] for k in order)
    # nothing overlaps among the wrapper's children
    kids = list(after)
    for i, a in enumerate(kids):
        for b in kids[i + 1:]:
            assert not boxes_overlap(opened.boxes[a], opened.boxes[b]), (a, b)

    closed = eng.layout(base)  # closing it again: the first view's columns come back
    assert columns(closed, w) == before


def test_the_first_view_is_cut_as_before_whatever_was_opened_earlier(tree):
    w = wrapper_of(tree)
    fresh = columns(LayoutEngine(tree, size_of, wrap_in=CANVAS).layout(tree.default_expanded()), w)
    eng = LayoutEngine(tree, size_of, wrap_in=CANVAS)
    base = tree.default_expanded()
    eng.layout(base)
    a, b = block(tree, w, "block_3"), block(tree, w, "block_12")
    eng.layout(base | {a})
    both = eng.layout(base | {a, b})
    cols = columns(both, w)
    one = columns(eng.layout(base | {a}), w)
    assert cols["g:" + a] == one["g:" + a]
    assert columns(eng.layout(base), w) == fresh
