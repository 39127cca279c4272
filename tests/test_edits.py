"""Manual edits: each works on a real model and keeps it runnable; invalid ones are refused with
a reason before anything changes."""
import numpy as np
import pytest

from surgeon_gui.core.history.edits import (EDIT_KINDS, EditRefused, apply_edit, apply_edit_io,
                                    check_edit, load_value, value_spec)
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import serialize
from surgeon_gui.core.running.runner import run_graph


@pytest.fixture(scope="module")
def g(tf1_graph):
    gd, inputs, outputs = tf1_graph
    return Graph(gd, inputs, outputs)


def refused(graph, kind, args, *words):
    before = serialize(graph.graph_def)
    with pytest.raises(EditRefused) as e:
        apply_edit(graph, kind, args)
    assert serialize(graph.graph_def) == before  # nothing changed
    for w in words:
        assert w in e.value.problem, e.value.problem
    assert check_edit(graph, kind, args) == e.value.problem
    return e.value


def run(graph_def, outputs, feeds):
    return run_graph(graph_def, feeds, outputs)[0]


def test_every_kind_is_registered():
    assert set(EDIT_KINDS) == {"remove_node", "rename_node", "set_attr", "set_input",
                               "make_output", "cut_to_outputs", "placeholder_to_const",
                               "replace_const"}


def test_bypass_identity_keeps_the_numbers(g):
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    gd = apply_edit(g, "remove_node", {"node": "conv1/weights/read", "mode": "bypass"})
    new = Graph(gd)
    assert "conv1/weights/read" not in new.nodes
    assert list(new.nodes["conv1/Conv2D"].input) == ["input", "conv1/weights"]
    a = run(g.graph_def, ["probs:0"], {"input:0": x})
    b = run(gd, ["probs:0"], {"input:0": x})
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_bypass_refusals(g):
    refused(g, "remove_node", {"node": "conv1/weights"}, "no data input")
    refused(g, "remove_node", {"node": "probs"}, "graph output")
    refused(g, "remove_node", {"node": "nope"}, "no node named 'nope'")
    refused(g, "remove_node", {"node": "input", "mode": "sideways"}, "mode")
    # a Switch whose output 1 is read: bypassing would leave that reader with nothing
    refused(g, "remove_node", {"node": "bn1/cond/Switch"}, "reads its output")


def test_bypass_dtype_mismatch_refused(g):
    # GreaterEqual(float, float) -> bool; bypassing it hands SelectV2 a float condition
    refused(g, "remove_node", {"node": "dropout/GreaterEqual"}, "dtype mismatch", "bool")


def test_cascade_removes_dependents_and_their_weights(g):
    # deleting the dropout branch would remove the output: refused
    refused(g, "remove_node", {"node": "dropout/GreaterEqual", "mode": "cascade"},
            "graph output", "probs")
    # Relu6 reads the depthwise conv directly: the bn2 cond becomes a dead side branch
    side = Graph(apply_edit(g, "set_input", {"node": "Relu6", "index": 0,
                                             "source": "dw/depthwise_1"}),
                 g.given_inputs, g.given_outputs)
    gd = apply_edit(side, "remove_node", {"node": "bn2/cond/Merge", "mode": "cascade"})
    new = Graph(gd)
    removed = set(side.nodes) - set(new.nodes)
    assert {"bn2/cond/Merge", "bn2/cond/FusedBatchNormV3", "bn2/gamma", "bn2/gamma/read",
            "bn2/cond/FusedBatchNormV3_1/Switch_4"} <= removed
    assert "dw/depthwise_1" in new.nodes and "is_training" in new.nodes
    assert all(n.startswith("bn2/") for n in removed), removed
    assert not new.problems()


def test_rename_follows_every_reference(g):
    res = apply_edit_io(g, "rename_node", {"node": "input", "new_name": "image"})
    new = Graph(res.graph_def)
    assert "image" in new.nodes and "input" not in new.nodes
    assert new.nodes["conv1/Conv2D"].input[0] == "image"
    assert res.inputs == ["image"]
    assert not new.problems()
    res = apply_edit_io(g, "rename_node", {"node": "bn1/cond/Switch", "new_name": "sw"})
    assert Graph(res.graph_def).nodes["bn1/cond/switch_t"].input[0] == "sw:1"
    refused(g, "rename_node", {"node": "input", "new_name": "probs"}, "already exists")
    refused(g, "rename_node", {"node": "input", "new_name": "bad name!"}, "not a valid")
    refused(g, "rename_node", {"node": "input", "new_name": "input"}, "already has")


def test_set_attr_typed(g):
    gd = apply_edit(g, "set_attr", {"node": "conv1/Conv2D", "attr": "padding", "value": "VALID"})
    assert Graph(gd).nodes["conv1/Conv2D"].attr["padding"].s == b"VALID"
    gd = apply_edit(g, "set_attr", {"node": "conv1/Conv2D", "attr": "strides",
                                    "value": [1, 2, 2, 1]})
    assert list(Graph(gd).nodes["conv1/Conv2D"].attr["strides"].list.i) == [1, 2, 2, 1]
    gd = apply_edit(g, "set_attr", {"node": "conv1/Conv2D", "attr": "note", "value": 3,
                                    "type": "i"})
    assert Graph(gd).nodes["conv1/Conv2D"].attr["note"].i == 3
    refused(g, "set_attr", {"node": "conv1/Conv2D", "attr": "T", "value": "int32"},
            "dtype mismatch")
    refused(g, "set_attr", {"node": "conv1/Conv2D", "attr": "T", "value": "floaty"},
            "not a dtype")
    refused(g, "set_attr", {"node": "conv1/Conv2D", "attr": "strides", "value": "x"},
            "not a valid list_i")
    refused(g, "set_attr", {"node": "conv1/Conv2D", "attr": "missing", "value": 1},
            "no attribute")


def test_set_input(g):
    gd = apply_edit(g, "set_input", {"node": "Relu6", "index": 0, "source": "dw/depthwise_1"})
    assert Graph(gd).nodes["Relu6"].input[0] == "dw/depthwise_1"
    refused(g, "set_input", {"node": "conv1/Conv2D", "index": 0, "source": "Relu"}, "cycle")
    refused(g, "set_input", {"node": "Relu", "index": 0, "source": "ghost"}, "dangling")
    refused(g, "set_input", {"node": "Relu", "index": 3, "source": "input"}, "no input 3")
    refused(g, "set_input", {"node": "Relu", "index": 0, "source": "input:4"}, "no output 4")
    refused(g, "set_input", {"node": "dropout/SelectV2", "index": 0, "source": "gap"},
            "dtype mismatch", "bool")


def test_make_output_and_cut(g):
    res = apply_edit_io(g, "make_output", {"node": "gap"})
    assert res.outputs == ["probs", "gap"]
    assert serialize(res.graph_def) == serialize(g.graph_def)
    refused(g, "make_output", {"node": "probs"}, "already")
    res = apply_edit_io(g, "cut_to_outputs", {"outputs": ["gap"]})
    new = Graph(res.graph_def, res.inputs, res.outputs)
    assert res.outputs == ["gap"] and "probs" not in new.nodes and "fc/weights" not in new.nodes
    assert "conv1/Conv2D" in new.nodes and not new.problems()
    refused(g, "cut_to_outputs", {"outputs": ["nothing"]}, "no node named")


def test_placeholder_to_const_and_replace_const(g, tmp_path):
    x = np.random.default_rng(1).normal(size=(1, 16, 16, 3)).astype(np.float32)
    res = apply_edit_io(g, "placeholder_to_const", {"node": "input", "value": value_spec(x)})
    assert Graph(res.graph_def).nodes["input"].op == "Const"
    assert res.inputs is None
    a = run(g.graph_def, ["probs:0"], {"input:0": x})
    b = run(res.graph_def, ["probs:0"], {})
    np.testing.assert_allclose(a, b, rtol=1e-6)
    refused(g, "placeholder_to_const", {"node": "input", "value": [[1.0, 2.0]]},
            "shape mismatch")
    refused(g, "placeholder_to_const", {"node": "conv1/weights", "value": 1}, "not a Placeholder")
    # PlaceholderWithDefault: its default's producer goes too
    gd = apply_edit(g, "placeholder_to_const", {"node": "is_training", "value": False})
    assert "is_training/input" not in Graph(gd).nodes
    refused(g, "placeholder_to_const", {"node": "is_training", "value": 2.5}, "dtype mismatch")

    w = np.ones((3, 3, 3, 8), np.float32)
    path = tmp_path / "w.npy"
    np.save(path, w)
    spec = value_spec(w, str(path))
    gd = apply_edit(g, "replace_const", {"node": "conv1/weights", "value": spec})
    from surgeon_gui.core.model.graph import const_value
    np.testing.assert_array_equal(const_value(Graph(gd).nodes["conv1/weights"]), w)
    np.save(path, w * 2)  # the file changed since it was recorded
    refused(g, "replace_const", {"node": "conv1/weights", "value": spec}, "changed")
    refused(g, "replace_const", {"node": "conv1/weights", "value": [1.0, 2.0]},
            "shape mismatch")
    refused(g, "replace_const", {"node": "Relu", "value": 1.0}, "not a Const")
    refused(g, "replace_const", {"node": "conv1/weights",
                                 "value": {"npy": str(tmp_path / "none.npy")}}, "cannot read")


def test_value_specs_round_trip(tmp_path):
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    np.testing.assert_array_equal(load_value(value_spec(a)), a)
    assert load_value(value_spec(a)).dtype == np.int32
    with pytest.raises(ValueError):
        value_spec(np.zeros(10_000))
    with pytest.raises(EditRefused):
        load_value([[1, 2], [3]])


def test_unknown_kind_and_bad_args(g):
    refused(g, "explode", {}, "unknown edit")
    refused(g, "set_input", {"node": "Relu", "index": "0", "source": "input"}, "integer")
    refused(g, "rename_node", {"node": "Relu"}, "missing argument 'new_name'")
