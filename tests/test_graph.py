"""The graph index and the shared editing helpers, on tiny graphs with exact expectations."""
import pytest

from surgeon_gui.core.model.graph import (Graph, GraphDef, GraphError, InputRef, NodeDef,
                                          format_input, parse_input, tensor_name)
from surgeon_gui.core.model.editor import GraphEditor


def make(*specs) -> GraphDef:
    """specs: (name, op, [inputs])."""
    gd = GraphDef()
    for name, op, inputs in specs:
        gd.node.append(NodeDef(name=name, op=op, input=inputs))
    return gd


def linear():
    return make(("x", "Placeholder", []), ("a", "Relu", ["x"]), ("b", "Identity", ["a"]),
                ("c", "Tanh", ["b"]))


def test_parse_and_format_inputs_round_trip():
    assert parse_input("a") == ("a", 0, False)
    assert parse_input("a/b:2") == ("a/b", 2, False)
    assert parse_input("^a/b") == ("a/b", -1, True)
    assert parse_input("weird:name") == ("weird:name", 0, False)
    for s in ("a", "a/b:2", "^a/b"):
        assert format_input(*parse_input(s)) == s
    assert tensor_name("a") == "a:0" and tensor_name("a:3") == "a:3"


def test_index_producers_consumers_and_io():
    gd = make(("x", "Placeholder", []), ("s", "Switch", ["x", "p"]), ("p", "Const", []),
              ("t", "Relu", ["s:1", "^p"]), ("f", "Relu", ["s"]), ("m", "Merge", ["f", "t"]))
    g = Graph(gd)
    assert [r.node for r in g.producers("t")] == ["s", "p"]
    assert g.producers("t", control=True)[0].control
    assert [c for c, _, _ in g.consumers("s", port=1)] == ["t"]
    assert [c for c, _, _ in g.consumers("s", port=0)] == ["f"]
    assert [c for c, _, _ in g.consumers("p", control=True)] == ["t"]
    assert g.inputs == ["x"]
    assert g.outputs == ["m"]
    assert g.upstream(["t"]) == {"t", "s", "x", "p"}
    assert g.downstream(["f"]) == {"f", "m"}
    assert g.op_histogram()["Relu"] == 2


def test_topological_order_is_stable_and_detects_cycles():
    gd = make(("c", "Tanh", ["b"]), ("x", "Placeholder", []), ("b", "Relu", ["x"]),
              ("y", "Placeholder", []))
    assert Graph(gd).topological_order() == ["x", "b", "c", "y"]
    cyc = make(("a", "Relu", ["b"]), ("b", "Relu", ["a"]), ("x", "Placeholder", []))
    with pytest.raises(GraphError, match="cycle"):
        Graph(cyc).validate()


def test_validation_names_duplicates_and_dangling_inputs():
    dup = make(("a", "Placeholder", []), ("a", "Relu", []))
    with pytest.raises(GraphError, match="duplicate node names: a"):
        Graph(dup, source="m.pb").validate()
    dangling = make(("a", "Relu", ["ghost:1"]))
    with pytest.raises(GraphError, match="a reads 'ghost:1'") as e:
        Graph(dangling, source="m.pb").validate()
    assert str(e.value).startswith("m.pb: ")


def test_sort_loops_duplicates_and_problems_from_the_consumer_index():
    """The topological sort reads the consumer index (no second pass over the inputs): v1
    loop back edges are skipped, a duplicated name counts as its last node, and the structural
    problems are found once per index (and say the index's current source)."""
    loop = make(("x", "Placeholder", []), ("enter", "Enter", ["x"]),
                ("merge", "Merge", ["enter", "next"]), ("body", "Relu", ["merge"]),
                ("next", "NextIteration", ["body"]), ("out", "Exit", ["merge"]))
    g = Graph(loop)
    assert g.topological_order() == ["x", "enter", "merge", "body", "next", "out"]
    with pytest.raises(GraphError, match="cycle through 4 nodes, e.g. merge, body, next, out"):
        g.topological_order(ignore_loops=False)
    assert g.problems() == []
    dup = make(("a", "Placeholder", []), ("b", "Relu", ["a"]), ("a", "Relu", ["b"]))
    g = Graph(dup, source="one.pb")
    assert [p.problem for p in g.problems()] == [
        "duplicate node names: a", "the graph has a cycle through 2 nodes, e.g. b, a"]
    g.source = "two.pb"
    assert all(str(p).startswith("two.pb: ") for p in g.problems())


def test_graph_problems_reuses_the_loaders_index(tmp_path):
    """``graph_problems(graph=index, enums_checked=True)`` (what the loader's caller passes)
    says the same as a check from scratch, on a graph with real problems."""
    from surgeon_gui.core.model.checks import bad_enums, graph_problems
    gd = make(("x", "Placeholder", []), ("a", "Relu", ["x", "ghost:1"]), ("k", "Const", []))
    gd.node[0].attr["dtype"].type = 1
    fresh = graph_problems(gd, deep=False)
    assert any("ghost:1" in p for p in fresh) and any("Const without a value" in p for p in fresh)
    g = Graph(gd)
    assert graph_problems(gd, deep=False, graph=g, enums_checked=True) == fresh
    gd.node[0].attr["dtype"].type = 999
    assert bad_enums(gd) == ["node x: attr dtype holds DataType 999, which TensorFlow does not "
                             "know"]
    assert graph_problems(gd, deep=False)[0] == bad_enums(gd)[0]
    other = make(("y", "Placeholder", []))  # an index of another GraphDef is not used
    assert graph_problems(gd, deep=False, graph=Graph(other), enums_checked=True) == fresh


def test_bypass_moves_data_and_control_readers():
    gd = make(("x", "Placeholder", []), ("k", "NoOp", []), ("i", "Identity", ["x", "^k"]),
              ("r", "Relu", ["i"]), ("z", "Tanh", ["x", "^i"]))
    ed = GraphEditor(Graph(gd))
    ed.bypass("i")
    out = Graph(ed.result())
    assert [n.name for n in out] == ["x", "k", "r", "z"]
    assert list(out.node("r").input) == ["x", "^k"]
    # z read x as data already, so the control dependency on x is implied and dropped.
    assert list(out.node("z").input) == ["x", "^k"]
    assert ed.removed == {"i"} and ed.changed == {"r", "z"}
    # The input graph is untouched.
    assert [n.name for n in gd.node] == ["x", "k", "i", "r", "z"]


def test_bypass_refuses_other_output_ports():
    gd = make(("x", "Placeholder", []), ("s", "Split", ["x"]), ("r", "Relu", ["s:1"]))
    with pytest.raises(GraphError, match="reads its output 1"):
        GraphEditor(Graph(gd)).bypass("s")


def test_rewire_prune_and_sort():
    gd = make(("x", "Placeholder", []), ("a", "Relu", ["x"]), ("b", "Tanh", ["x"]),
              ("c", "Identity", ["a"]), ("dead", "Exp", ["x"]))
    ed = GraphEditor(Graph(gd))
    assert ed.rewire("a", "b") == 1
    dead = ed.prune(keep=[], outputs=["c"])
    assert dead == {"a", "dead"}
    assert [n.name for n in ed.result().node] == ["x", "b", "c"]
    gd2 = make(("c", "Tanh", ["b"]), ("b", "Relu", ["x"]), ("x", "Placeholder", []))
    ed2 = GraphEditor(Graph(gd2))
    ed2.sort()
    assert [n.name for n in ed2.result().node] == ["x", "b", "c"]


def test_editor_tracks_added_and_replaced_nodes():
    ed = GraphEditor(Graph(linear()))
    new = NodeDef(name="c2", op="Sigmoid", input=["b"])
    ed.add_node(new)
    ed.replace_node("a", NodeDef(name="a", op="Relu6", input=["x"]))
    assert ed.added == {"c2"} and ed.changed == {"a"}
    assert ed.fresh_name("a") == "a_1"
    with pytest.raises(GraphError, match="already exists"):
        ed.add_node(new)


def test_real_tf1_graph_index(tf1_graph):
    gd, ins, outs = tf1_graph
    g = Graph(gd, ins, outs).validate()
    assert g.inputs == ["input"] and g.outputs == ["probs"]
    hist = g.op_histogram()
    assert hist["Switch"] > 10 and hist["Merge"] >= 4
    nx_graph = g.to_networkx()
    assert nx_graph.number_of_nodes() == len(gd.node)
    assert g.parameter_count() > 0


def _reference_sort(gd: GraphDef, ignore_loops: bool = True) -> list[str] | None:
    """Kahn's algorithm as the definition says it: every ready node on one heap, the lowest
    position first (None on a cycle)."""
    import heapq
    names = [n.name for n in gd.node]
    pos = {n: i for i, n in enumerate(names)}
    indeg = [0] * len(names)
    succ: list[list[int]] = [[] for _ in names]
    for i, node in enumerate(gd.node):
        for text in node.input:
            src = pos.get(parse_input(text).node)
            if src is None or (ignore_loops and gd.node[src].op == "NextIteration"):
                continue
            succ[src].append(i)
            indeg[i] += 1
    heap = [i for i, d in enumerate(indeg) if d == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        i = heapq.heappop(heap)
        out.append(names[i])
        for m in succ[i]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(heap, m)
    return out if len(out) == len(names) else None


def _example_graphs() -> list[tuple[str, GraphDef]]:
    from pathlib import Path
    from surgeon_gui.core.model.io import read_graph_def
    root = Path(__file__).resolve().parent.parent / "resources" / "examples"
    return [(p.name, read_graph_def(p)) for p in sorted(root.rglob("*.pb"))]


def test_sort_and_consumer_index_match_their_definitions_on_real_graphs():
    """The index's consumer lists and topological order (the scan-and-heap sort, the consumer
    build that parses plain names inline) equal what their definitions give, on the bundled
    graphs (TF1 cond graphs list Switches after the ops reading them: nodes that become ready
    behind the scan), the same graphs with their nodes listed in reverse and shuffled, a v1
    while loop, and a cycle."""
    import random
    graphs = _example_graphs()
    assert any(name == "tf1_cond_bn_dropout.pb" for name, _ in graphs)
    rng = random.Random(7)
    cases = []
    for name, gd in graphs:
        cases.append((name, gd))
        for how in ("reversed", "shuffled"):
            nodes = list(gd.node)
            nodes = nodes[::-1] if how == "reversed" else rng.sample(nodes, len(nodes))
            other = GraphDef()
            other.node.extend(nodes)
            cases.append((f"{name} {how}", other))
    cases.append(("loop", make(("x", "Placeholder", []), ("enter", "Enter", ["x"]),
                               ("merge", "Merge", ["enter", "next"]), ("body", "Relu", ["merge"]),
                               ("next", "NextIteration", ["body"]), ("out", "Exit", ["merge:0"]),
                               ("late", "Identity", ["^out", "body"]))))
    cases.append(("cycle", make(("x", "Placeholder", []), ("a", "Relu", ["x", "c"]),
                                ("b", "Relu", ["a"]), ("c", "Relu", ["b:0"]),
                                ("d", "Relu", ["x"]))))
    out_of_order = 0
    for label, gd in cases:
        for loops in (True, False):
            want = _reference_sort(gd, loops)
            g = Graph(gd)
            if want is None:
                with pytest.raises(GraphError, match="cycle"):
                    g.topological_order(ignore_loops=loops)
            else:
                got = g.topological_order(ignore_loops=loops)
                assert got == want, label
                out_of_order += got != [n.name for n in gd.node]
        expected: dict[str, list] = {}
        for node in gd.node:
            for i, text in enumerate(node.input):
                expected.setdefault(parse_input(text).node, []).append(
                    (node.name, i, parse_input(text)))
        g = Graph(gd)
        assert dict(g._build_consumers()) == expected, label
        assert all(isinstance(ref, InputRef) and ref.node == ref[0]
                   for found in g._build_consumers().values() for _, _, ref in found)
    assert out_of_order > 10   # (the heap's part of the sort was exercised)
