"""Op families, the identity walk, constant evaluation and the editor's cleanup and names, on
tiny graphs with exact expectations."""
import numpy as np

from surgeon_gui.core.model.consteval import Constants, may_evaluate
from surgeon_gui.core.model.editor import GraphEditor, protected_names, read_nodes
from surgeon_gui.core.model.graph import Graph, GraphDef, NodeDef, make_const
from surgeon_gui.core.model.ops import (
    IDENTITY_OPS,
    PASS_THROUGH_OPS,
    REMOVABLE_PASS_THROUGH_OPS,
    const_source,
    follow_identities,
    is_random,
    trace_source,
)


def make(*specs) -> GraphDef:
    """specs: (name, op, [inputs]) or a ready NodeDef."""
    gd = GraphDef()
    for s in specs:
        gd.node.append(s if isinstance(s, NodeDef) else NodeDef(name=s[0], op=s[1], input=s[2]))
    return gd


def test_families_nest():
    assert IDENTITY_OPS < PASS_THROUGH_OPS < REMOVABLE_PASS_THROUGH_OPS
    assert "CheckNumerics" in PASS_THROUGH_OPS and "CheckNumerics" not in IDENTITY_OPS
    assert is_random("StatelessRandomUniformV2") and is_random("Multinomial")
    assert not is_random("Add")


def test_follow_identities_stops_where_values_may_differ():
    g = Graph(make(make_const("w", np.float32(2.0)), ("i", "Identity", ["w"]),
                   ("s", "Snapshot", ["i"]), ("c", "CheckNumerics", ["s"]),
                   ("n", "Identity", ["c", "^w"])))
    ref, chain = follow_identities(g, "s")
    assert ref.node == "w" and chain == ["s", "i", "w"]
    # CheckNumerics raises on NaN: a walk for values stops there, one for the source does not.
    node, chain = const_source(g, "n")
    assert node is None and chain == ["n", "c"]
    assert trace_source(g, "n") == "w"
    assert const_source(g, "s")[0].name == "w"
    assert follow_identities(g, "i:1")[0] == ("i", 1, False)


def test_may_evaluate_is_the_one_hook():
    assert may_evaluate("Add") is None
    assert may_evaluate("NoOp") is None
    assert "graph input" in may_evaluate("PlaceholderWithDefault")
    assert "random" in may_evaluate("RandomUniform")
    assert "control flow" in may_evaluate("Merge")
    assert "calls a function" in may_evaluate("StatelessIf")
    assert "calls a function" in may_evaluate("my_fn", {"my_fn"})
    assert "stateful" in may_evaluate("VarHandleOp")
    assert "not a registered" in may_evaluate("NoSuchOpAnywhere")


def test_constants_values_follow_a_decided_switch_but_it_is_not_foldable():
    pred = make_const("pred", np.bool_(True))
    gd = make(make_const("x", np.float32([1.0, 2.0])), pred,
              ("sw", "Switch", ["x", "pred"]), make_const("two", np.float32(2.0)),
              ("m", "Mul", ["sw:1", "two"]), ("f", "Neg", ["sw"]))
    for n in gd.node:
        if n.op in ("Switch", "Mul", "Neg"):
            n.attr["T"].type = 1
    c = Constants(Graph(gd))
    np.testing.assert_array_equal(c.value("m"), [2.0, 4.0])
    assert c.value("f") is None          # the false port is dead: no value
    assert c.scalar("pred") is True
    assert not c.is_const("m")           # a Switch output can be dead: never folded
    assert c.is_const("two") and c.region(["two"]) == {"two"}


def test_remove_unread_removes_only_candidates_repeatedly():
    gd = make(("x", "Placeholder", []), ("a", "Relu", ["x"]), ("b", "Relu", ["a"]),
              ("c", "Relu", ["b"]), ("d", "Relu", ["x"]), ("out", "Relu", ["x"]))
    g = Graph(gd, outputs=["out"])
    ed = GraphEditor(g)
    ed.remove(["c"])
    assert ed.remove_unread(read_nodes(g), protected_names(g)) == ["a", "b"]
    assert [n.name for n in ed.result().node] == ["x", "d", "out"]
    ed2 = GraphEditor(g)
    ed2.remove(["c"])
    assert ed2.remove_unread(["b"]) == ["b"]          # a is not a candidate: stays


def test_fresh_names_are_never_handed_out_twice():
    ed = GraphEditor(make(("a", "NoOp", []), ("a_1", "NoOp", [])))
    assert ed.fresh_name("a") == "a_2"
    assert ed.fresh_name("a") == "a_3"
    assert ed.fresh_name("b") == "b"
    assert ed.fresh_name("b") == "b_1"


def test_protected_names_with_detected_outputs():
    gd = make(("x", "Placeholder", []), ("a", "Relu", ["x"]), ("b", "Relu", ["a"]))
    g = Graph(gd, inputs=["x"])
    assert protected_names(g) == {"x"}
    assert protected_names(g, detected_outputs=True) == {"x", "b"}
    assert protected_names(Graph(gd, outputs=["a"]), detected_outputs=True) == {"a"}


def test_editor_copies_on_first_write_only():
    gd = make(("x", "Placeholder", []), ("a", "Relu", ["x"]), ("b", "Identity", ["a"]),
              ("c", "Relu", ["b"]))
    before = gd.SerializeToString()
    ed = GraphEditor(Graph(gd))
    assert "a" in ed and [n.name for n in ed.nodes(read_only=True)] == ["x", "a", "b", "c"]
    assert ed.fresh_name("a") == "a_1" and ed.remove_unread(["x"]) == []
    assert not ed.copied and ed.result() is gd          # nothing changed: no copy at all
    ed.bypass("b")
    assert ed.copied and ed.result() is not gd
    assert [list(n.input) for n in ed.result().node] == [[], ["x"], ["a"]]
    assert gd.SerializeToString() == before             # the input is untouched


def test_a_pass_that_finds_nothing_returns_its_input_and_one_that_changes_copies():
    from surgeon_gui.core.passes import get_pass
    gd = make(("x", "Placeholder", []), ("a", "Relu", ["x"]), ("b", "Identity", ["a"]),
              ("c", "Relu", ["b"]))
    gd.node[0].attr["dtype"].type = 1
    g = Graph(gd, ["x"], ["c"])
    before = gd.SerializeToString()
    for pid in ("training_flags", "remove_switch_merge", "remove_dropout", "static_reshape",
                "simplify_arithmetic", "materialize_constants", "strip_attributes",
                "sort_execution_order", "strip_unused"):
        res = get_pass(pid).run(g)
        assert not res.report.modified and res.graph_def is gd, pid
    res = get_pass("remove_identity").run(g)
    assert res.report.modified and res.report.removed == {"b"}
    assert res.graph_def is not gd and gd.SerializeToString() == before
