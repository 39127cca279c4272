"""Per-node drift: shared tensors compared, where the error starts, what cannot be compared."""
import numpy as np
import pytest
import tensorflow as tf

from surgeon_gui.core.model.graph import (
    Graph,
    GraphDef,
    GraphError,
    const_value,
    make_const,
)
from surgeon_gui.core.running.drift import compute_drift, drift_level, tensor_error
from surgeon_gui.core.running.samples import SampleSet


def _copy(gd):
    out = GraphDef()
    out.CopyFrom(gd)
    return out


def _edit_weight(gd, name, delta=1.0):
    out = _copy(gd)
    for n in out.node:
        if n.name == name:
            v = const_value(n).copy()
            v.flat[0] += delta
            n.CopyFrom(make_const(n.name, v))
            return out
    raise KeyError(name)


@pytest.fixture(scope="module")
def tf1(tf1_graph):
    gd, ins, outs = tf1_graph
    feeds = SampleSet(batch=2).make_feeds(Graph(gd, ins, outs))
    return gd, ins, outs, feeds


def test_identical_graphs_are_exact_everywhere(tf1):
    gd, _, _, feeds = tf1
    d = compute_drift(gd, gd, feeds)
    assert len(d.errors) > 30
    assert all(e.max_abs == 0 and e.level == 0 for e in d.errors.values())
    assert d.drifting() == [] and d.no_counterpart == [] and d.edited_consts == []
    # Tensors inside v1 cond branches may be dead: skipped with the reason, never fetched.
    assert d.skipped["bn1/cond/FusedBatchNormV3"] == "inside a v1 cond branch"
    assert "bn1/cond/Merge" in d.errors
    # Dropout's random numbers differ on every run: not compared.
    rnd = [n for n in d.skipped if n.endswith("RandomUniform")]
    assert rnd and d.skipped[rnd[0]] == "random values differ on every run"


def test_a_weight_edit_drifts_from_its_consumers(tf1):
    gd, _, _, feeds = tf1
    edited = _edit_weight(gd, "conv2/weights", 0.5)
    d = compute_drift(gd, edited, feeds)
    g = Graph(edited)
    consumers = set(g.consumer_names("conv2/weights"))
    assert d.edited_consts == ["conv2/weights"]
    drifting = d.drifting()
    assert drifting[0] in consumers
    assert d.origins(g) == sorted(consumers, key=drifting.index)
    # Everything upstream of the edit is exact; the output drifts.
    assert d.errors["conv1/Conv2D"].max_abs == 0
    assert d.errors["dw/depthwise_1"].max_abs == 0
    assert "probs" in drifting and "conv2/Conv2D" in drifting
    assert drifting.index("conv2/Conv2D") < drifting.index("probs")


def test_nodes_without_counterpart_and_removed_nodes(tf1):
    gd, _, _, feeds = tf1
    b = _copy(gd)
    for n in b.node:      # rename one node (and its readers): no counterpart in a
        if n.name == "gap":
            n.name = "gap_renamed"
        for i, inp in enumerate(n.input):
            if inp == "gap":
                n.input[i] = "gap_renamed"
    d = compute_drift(gd, b, feeds)
    assert d.no_counterpart == ["gap_renamed"] and d.removed == ["gap"]
    assert d.drifting() == []
    assert "gap" not in d.errors


def test_caps_and_shapes():
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        a = tf.nn.relu(x, name="a")
        r = tf.reshape(a, [-1, 2, 2], name="r")
        s = tf.strings.as_string(x, name="s")
        tf.identity(r, name="out")
        tf.identity(s, name="sout")
    ga = g.as_graph_def()
    g2 = tf.Graph()
    with g2.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        a = tf.nn.relu(x, name="a")
        r = tf.reshape(a, [-1, 4, 1], name="r")     # same name, other shape
        s = tf.strings.as_string(x, name="s")
        tf.identity(r, name="out")
        tf.identity(s, name="sout")
    gb = g2.as_graph_def()
    feeds = {"x": np.ones((3, 4), np.float32)}
    d = compute_drift(ga, gb, feeds)
    assert d.errors["a"].max_abs == 0
    assert d.skipped["r"].startswith("shape differs")
    assert d.skipped["s"] == "string is not numeric"
    capped = compute_drift(ga, ga, feeds, max_tensors=1)
    assert capped.truncated and list(capped.errors) == ["a"]
    tiny = compute_drift(ga, ga, feeds, max_bytes=4)
    assert tiny.truncated and not tiny.errors


def test_a_graph_that_cannot_run_is_a_clear_error(tf1):
    gd, _, _, feeds = tf1
    b = _copy(gd)
    for n in b.node:
        if n.name == "gap":
            n.op = "NoSuchOp"
    with pytest.raises(GraphError, match="NoSuchOp"):
        compute_drift(gd, b, feeds)
    with pytest.raises(GraphError, match="input"):
        compute_drift(gd, gd, {})


def test_error_measures():
    a = np.array([1.0, -2.0, 0.0], np.float32)
    assert tensor_error(a, a) == (0.0, 0.0)
    mx, rel = tensor_error(a, a + np.array([0, 0.5, 0], np.float32))
    assert mx == 0.5 and rel == 0.25
    assert tensor_error(a, np.array([1.0, np.nan, 0.0], np.float32)) == (np.inf, np.inf)
    assert tensor_error(np.array([True]), np.array([False])) == (1.0, 1.0)
    assert [drift_level(r, r) for r in (0, 1e-7, 1e-5, 1e-3, 0.5, 3)] == [0, 1, 2, 3, 4, 5]


def _run_passes(gd, ins, outs, pass_ids):
    from surgeon_gui.core.passes import get_pass
    g = Graph(gd, ins, outs)
    for pid in pass_ids:
        g = Graph(get_pass(pid).run(g).graph_def, ins, outs)
    return g


def test_a_fold_is_expected_and_a_later_bypass_is_blamed_on_the_rewired_node(tf1):
    """After fold batch norm, each convolution differs from the original by the fold's scale:
    expected, not blamed (it is compared where the batch norm was). Bypassing Relu6 afterwards
    changes the numbers from conv2/Conv2D, the node that now reads past it."""
    from surgeon_gui.core.history.edits import apply_edit
    gd, ins, outs, feeds = tf1
    folded = _run_passes(gd, ins, outs, ["training_flags", "remove_switch_merge",
                                         "remove_dropout", "fold_batch_norm"])
    d = compute_drift(gd, folded.graph_def, feeds)
    assert "dw/depthwise_1" in d.expected and "conv2/Conv2D" in d.expected
    assert "folding" in d.expected["dw/depthwise_1"]
    assert not d.edited_consts  # the folded weights are not manual edits
    # (a hand edit of a folded weight still is: test_ui_compare's wrong weight edit)
    assert d.origins(folded) == []  # the fold changes no output
    bypassed = apply_edit(folded, "remove_node", {"node": "Relu6", "mode": "bypass"})
    d = compute_drift(gd, bypassed, feeds)
    assert d.origins(Graph(bypassed, ins, outs)) == ["conv2/Conv2D"]
    # the folded depthwise convolution is measured (it differs) but expected: never blamed
    assert "dw/depthwise_1" in d.expected and "dw/depthwise_1" in d.errors
    assert "dw/depthwise_1" not in d.drifting()


def test_a_renamed_node_is_compared_with_its_old_self(tf1):
    """A rename recorded in the history: the node is compared under its new name with the
    reference's old one (and the nodes reading it still match), not listed as removed plus a
    node with no counterpart."""
    from surgeon_gui.core.history.edits import apply_edit
    gd, ins, outs, feeds = tf1
    renamed = apply_edit(Graph(gd, ins, outs), "rename_node",
                         {"node": "Relu6", "new_name": "act/relu6"})
    without = compute_drift(gd, renamed, feeds)
    assert "act/relu6" in without.no_counterpart and "Relu6" in without.removed
    d = compute_drift(gd, renamed, feeds, renames={"act/relu6": "Relu6"})
    assert d.renamed == {"act/relu6": "Relu6"}
    assert "act/relu6" not in d.no_counterpart and "Relu6" not in d.removed
    assert d.errors["act/relu6"].max_abs == 0.0
    consumer = next(n.name for n in renamed.node if "act/relu6" in n.input)
    assert d.errors[consumer].max_abs == 0.0 and consumer not in d.rewired
    assert d.drifting() == [] and d.origins(Graph(renamed, ins, outs)) == []
