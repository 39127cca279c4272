"""The pattern matcher: what it matches, what it binds, and the reason of a near miss."""
import numpy as np

from surgeon_gui.core.model.graph import Graph, GraphDef, NodeDef, make_const
from surgeon_gui.core.passes.pattern import Any, Const, Foldable, Matcher, Op, Value


def make(*specs) -> Graph:
    gd = GraphDef()
    for s in specs:
        gd.node.append(s if isinstance(s, NodeDef) else NodeDef(name=s[0], op=s[1], input=s[2]))
    return Graph(gd)


def graph():
    return make(("x", "Placeholder", []), make_const("one", np.float32(1.0)),
                make_const("two", np.float32(2.0)), ("one/read", "Identity", ["one"]),
                ("m1", "Mul", ["x", "one/read"]),     # x * 1 (through an Identity)
                ("m2", "Mul", ["one", "x"]),          # 1 * x
                ("d", "RealDiv", ["one", "x"]),       # 1 / x: not x / 1
                ("sq", "Mul", ["x", "x"]),
                ("r1", "Relu", ["m1"]), ("r2", "Relu", ["m2"]), ("r3", "Relu", ["m2"]))


def is_one(node, m):
    return float(np.asarray(make_const_value(node))) == 1.0


def make_const_value(node):
    from surgeon_gui.core.model.graph import const_value
    return const_value(node)


def test_commutative_op_with_a_constant_operand_binds_both_orders():
    g = graph()
    mx = Matcher(g)
    pat = Op("Mul", Any("x"), Const("c", where=is_one), commutative=True, name="mul")
    r = mx.match(pat, "m1")
    assert r and r["x"] == "x" and r["c"] == "one/read" and r["mul"] == "m1"
    node, chain = r.consts["c"]
    assert node.name == "one" and chain == ["one/read", "one"]
    r = mx.match(pat, "m2")
    assert r and r["x"] == "x" and r["c"] == "one"
    assert r.nodes == ["m2"]


def test_order_matters_for_a_non_commutative_op():
    mx = Matcher(graph())
    assert not mx.match(Op("RealDiv", Any("x"), Const("c")), "d")
    assert mx.match(Op("RealDiv", Const("c"), Any("x")), "d")


def test_plain_misses_have_no_near_flag():
    mx = Matcher(graph())
    r = mx.match(Op("Add", Any(), Any()), "m1")
    assert not r and not r.near and "Add" in r.reason
    r = mx.match(Op("Mul", Any(), Any(), Any()), "m1")       # wrong number of inputs
    assert not r and not r.near
    r = mx.match(Op("Mul", Any("x"), Const("c"), commutative=True), "sq")  # no constant
    assert not r and not r.near


def test_same_name_twice_is_the_same_tensor():
    mx = Matcher(graph())
    assert mx.match(Op("Mul", Any("a"), Any("a")), "sq")
    assert not mx.match(Op("Mul", Any("a"), Any("a")), "m1")
    # A pre-bound name: the Mul must read exactly this tensor.
    assert mx.match(Op("Mul", Any("cur"), Const("c")), "m1", cur="x")
    assert not mx.match(Op("Mul", Any("cur"), Const("c")), "m1", cur="two")


def test_single_reader_near_miss_names_the_readers():
    mx = Matcher(graph())
    inner = Op("Mul", Any("x"), Const("c"), commutative=True, single_reader=True)
    assert mx.match(Op("Relu", inner), "r1")
    r = mx.match(Op("Relu", inner), "r2")
    assert not r and r.near
    assert r.reason == "m2 is read by 2 nodes (r2, r3)"


def test_where_reason_is_a_near_miss_and_keeps_the_bindings():
    mx = Matcher(graph())

    def not_two(node, m):
        return None if node.name != "two" else f"{m['x']} is scaled by two"
    g = make(("x", "Placeholder", []), make_const("two", np.float32(2.0)),
             ("m", "Mul", ["x", "two"]))
    r = Matcher(g).match(Op("Mul", Any("x"), Const("c", where=not_two)), "m")
    assert not r and r.near and r.reason == "x is scaled by two"
    assert r["c"] == "two"            # the pass can name the nodes of a near miss
    # A near miss beats a plain miss across the orders of a commutative op.
    r = Matcher(g).match(Op("Mul", Any("x"), Const("c", where=not_two), commutative=True), "m")
    assert r.near
    assert mx.match(Op("Mul", Any("x"), Const("c", where=not_two)), "m1")


def test_value_and_foldable_leaves_use_the_graphs_constants():
    g = make(make_const("a", np.float32([1.0, 2.0])), make_const("b", np.float32(3.0)),
             ("s", "AddV2", ["a", "b"]), ("x", "Placeholder", []), ("y", "AddV2", ["x", "s"]))
    for n in g.graph_def.node:
        if n.op == "AddV2":
            n.attr["T"].type = 1
    mx = Matcher(g)
    r = mx.match(Op("AddV2", Any("x"), Value("k")), "y")
    assert r and np.allclose(r.values["k"], [4.0, 5.0])
    assert mx.match(Op("AddV2", Any("x"), Foldable("k")), "y")
    assert not mx.match(Op("AddV2", Foldable("k"), Any("x")), "y")
    assert not mx.match(Op("AddV2", Any("x"), Const("k")), "y")   # computed, not stored


def test_first_rule_wins_and_near_miss_is_reported_when_none_matches():
    mx = Matcher(graph())
    rules = [("div", Op("RealDiv", Any("x"), Const("c"))),
             ("rdiv", Op("RealDiv", Const("c"), Any("x"), where=lambda n, m: "1 / x is not x")),
             ("relu", Op("Relu", Any()))]
    tag, r = mx.first(rules, "d")
    assert tag is None and r.near and r.reason == "1 / x is not x"
    tag, r = mx.first(rules, "r1")
    assert tag == "relu" and r
