"""A long chain of collapsed blocks (a TF1 MobileNet-like stack of 20 blocks) wraps into
side-by-side columns in the first view, so that it fits the window at a readable zoom; opened in
the main window the way a user opens a file."""
import pytest
from support import freeze_tf1, make_window
from PySide6.QtCore import QPointF

from surgeon_gui.core.model.io import save_graph

N_BLOCKS = 20


def build_chain(path, wrapper=""):
    """20 conv/bn/relu6 blocks in ``block<i>`` variable scopes (inside ``wrapper`` when given:
    a model-wide scope, as Keras models have), frozen and saved to ``path``."""
    import contextlib

    import tensorflow as tf

    def build(v1, var):
        h = v1.placeholder(tf.float32, [1, 16, 16, 8], name="input")
        outer = v1.variable_scope(wrapper) if wrapper else contextlib.nullcontext()
        with outer:
            for i in range(1, N_BLOCKS + 1):  # the way tf.compat.v1 layers name scopes
                with v1.variable_scope(f"block{i}"):
                    h = tf.nn.bias_add(tf.nn.conv2d(h, var("kernel", [3, 3, 8, 8]),
                                                    [1, 1, 1, 1], "SAME"), var("bias", [8]))
                    h, _, _ = v1.nn.fused_batch_norm(h, var("gamma", [8]), var("beta", [8]),
                                                     mean=var("mean", [8]),
                                                     variance=tf.abs(var("var", [8])) + 1,
                                                     is_training=False)
                    h = tf.nn.relu6(h)
            h = tf.reduce_mean(h, [1, 2])
        return tf.nn.softmax(h, name="probs")
    gd, _ = freeze_tf1(build)
    save_graph(gd, path)
    return str(path)


@pytest.fixture(scope="module", params=["", "model"], ids=["top_level", "in_a_wrapper"])
def chain_pb(request, tmp_path_factory):
    return build_chain(tmp_path_factory.mktemp("chain") / "chain.pb", request.param)


def open_window(qtbot, path, monkeypatch, tmp_path, wrap=True):
    from surgeon_gui.ui import window_layout
    w = make_window(qtbot, tmp_path, monkeypatch, size=(1600, 1000))
    qtbot.waitExposed(w)
    window_layout.apply_default(w)
    qtbot.wait(50)
    w.view.wrap_long_chains = wrap
    with qtbot.waitSignal(w.document_opened, timeout=60_000):
        w.open_model(path)
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=60_000)
    qtbot.wait(50)
    return w


def block_rects(view):
    out = {}
    for k, it in view.graph_scene.items_by_key.items():
        last = k.split("/")[-1].removeprefix("g:")
        if k.startswith("g:") and last.startswith("block") and last[5:].isdigit():
            out[int(last[5:])] = it.sceneBoundingRect()
    return out


def test_a_long_chain_of_blocks_wraps_into_columns_that_fit_at_a_readable_zoom(
        qtbot, chain_pb, monkeypatch, tmp_path):
    # one column: the blocks do not fit the window at a readable zoom
    w = open_window(qtbot, chain_pb, monkeypatch, tmp_path, wrap=False)
    rects = block_rects(w.view)
    assert sorted(rects) == list(range(1, N_BLOCKS + 1))
    vp = w.view.viewport()
    tall = w.view.graph_scene.itemsBoundingRect()
    assert vp.height() / tall.height() < 0.55
    w.close()

    w = open_window(qtbot, chain_pb, monkeypatch, tmp_path)
    view = w.view
    rects = block_rects(view)
    assert sorted(rects) == list(range(1, N_BLOCKS + 1))
    # the whole graph is on screen, at a zoom where the labels read
    shown = view.mapToScene(view.viewport().rect()).boundingRect()
    assert shown.contains(view.graph_scene.itemsBoundingRect())
    assert view.transform().m11() >= 0.55
    # columns read left to right, top to bottom: each block below the one before, or at the
    # top of the next column to its right
    columns = 1
    for i in range(2, N_BLOCKS + 1):
        a, b = rects[i - 1], rects[i]
        if b.top() > a.bottom():
            assert abs(b.center().x() - a.center().x()) < a.width()
        else:
            assert b.left() > a.right() and b.top() < a.top()
            columns += 1
    assert columns >= 2
    # no two boxes overlap (an open wrapper's frame holds the others)
    frames = {"g:" + k for k in view.expanded}
    boxes = [it.sceneBoundingRect() for k, it in view.graph_scene.items_by_key.items()
             if k not in frames]
    for i, r in enumerate(boxes):
        for q in boxes[i + 1:]:
            assert not r.adjusted(1, 1, -1, -1).intersects(q.adjusted(1, 1, -1, -1))
    # the edge from the bottom of one column to the top of the next runs round the boxes
    cross = [e for e in view.graph_scene.edge_items if not e.stub
             and e.end.y() < e.start.y() and e.edge.route]
    assert cross
    for e in cross:
        for p in e.polyline[1:-1]:
            assert not any(r.contains(QPointF(p)) for r in boxes), (e.edge.src, e.edge.dst, p)


def test_the_input_sits_over_the_first_column_where_reading_starts(
        qtbot, chain_pb, monkeypatch, tmp_path):
    """Above a model-wide wrapper whose chain wraps, the graph's input is drawn over the first
    column (where its edge goes in and the view starts), not over the middle of the columns."""
    w = open_window(qtbot, chain_pb, monkeypatch, tmp_path)
    view = w.view
    rects = block_rects(view)
    first = [r for r in rects.values() if abs(r.center().x() - rects[1].center().x()) < 1]
    later = [r for r in rects.values() if r.left() > rects[1].right()]
    assert first and later  # wrapped into columns
    inp = view.graph_scene.items_by_key["n:input"].sceneBoundingRect()
    assert inp.bottom() < rects[1].top()
    if view.expanded:  # in a wrapper: over its first column, left of the second
        assert inp.center().x() < min(r.left() for r in later)
        assert abs(inp.center().x() - rects[1].center().x()) < rects[1].width()
    # and the view shows it, with the first block
    shown = view.mapToScene(view.viewport().rect()).boundingRect()
    assert shown.contains(inp) and shown.contains(rects[1])
