"""Running or checking a graph in TensorFlow leaves the GraphDef as it was.

``tf.compat.v1.import_graph_def`` writes every attribute its op has a default for into the
caller's NodeDefs. A graph written without them (``strip_default_attrs``, an older TensorFlow:
the RetinaFace graph shipped on PyPI lacks ``explicit_paddings`` on its 16 depthwise convs)
then changed under the app: opening it once TensorFlow was imported (the loader asks
TensorFlow whether it imports the graph) or running it gave a document that differed from the
file with no step, and Save wrote other bytes than the recipe's replay with ``surgeon optimize``."""
import numpy as np
import pytest
from PySide6.QtCore import Qt

from support import window_with_model
from surgeon_gui.core.model.checks import import_problem
from surgeon_gui.core.model.io import read_graph_def, serialize
from surgeon_gui.core.running.runner import GraphRunner, make_feeds
from surgeon_gui.core.model.graph import Graph


def stripped(gd):
    """``gd`` without the attributes that hold their op's default (``strip_default_attrs``)."""
    from tensorflow.python.framework import op_def_registry
    out = type(gd)()
    out.CopyFrom(gd)
    n = 0
    for node in out.node:
        for a in op_def_registry.get(node.op).attr:
            if a.HasField("default_value") and a.name in node.attr \
                    and node.attr[a.name] == a.default_value:
                del node.attr[a.name]
                n += 1
    assert n > 0
    return out


@pytest.fixture
def tf1_stripped(tf1_graph):
    """(a fresh copy each test: a failing one must not leave it changed for the next)"""
    gd, ins, outs = tf1_graph
    return stripped(gd), ins, outs


def test_tensorflow_import_would_change_the_stripped_graph(tf1_stripped):
    """The premise: TensorFlow's importer fills in the defaults of the graph it is given."""
    import tensorflow as tf
    gd, _, _ = tf1_stripped
    victim = type(gd)()
    victim.CopyFrom(gd)
    with tf.Graph().as_default():
        tf.compat.v1.import_graph_def(victim, name="")
    assert serialize(victim) != serialize(gd)


def test_running_and_checking_leave_the_graph_as_it_was(tf1_graph, tf1_stripped):
    full, ins, outs = tf1_graph
    gd, _, _ = tf1_stripped
    before = serialize(gd)
    feeds = make_feeds(Graph(full, ins, outs), ins, seed=0)
    with GraphRunner(gd) as r:
        got = r.run(feeds, outs)
    assert serialize(gd) == before
    with GraphRunner(full) as r:     # and it still runs as the graph with its defaults
        want = r.run(feeds, outs)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6, atol=1e-6)
    assert import_problem(gd) is None and serialize(gd) == before


def test_run_comparison_leaves_the_document_unchanged(qtbot, tmp_path, monkeypatch,
                                                      tf1_stripped):
    gd, _, _ = tf1_stripped
    w = window_with_model(qtbot, tmp_path, monkeypatch, gd, size=(1300, 850))
    on_disk = (tmp_path / "model.pb").read_bytes()
    assert serialize(w.document.graph_def) == on_disk     # as opened (TF imported already)
    panel = w.compare_panel
    panel.runs.setValue(0)
    with qtbot.waitSignal(panel.finished, timeout=120_000) as blocker:
        panel.run_action.trigger()                          # Edit ▸ Run Comparison
    result, error = blocker.args
    assert error == "" and result is not None and result.comparison.allclose, error
    assert serialize(w.document.graph_def) == on_disk
    assert not w.document.dirty and not w.isWindowModified()
    assert serialize(read_graph_def(tmp_path / "model.pb")) == on_disk
