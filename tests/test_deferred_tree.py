"""The window's first tree is built with ``GroupTree(defer=True)``: badge labels and the groups of
hidden nodes are made after the first view. The first view (default expansion, visible graph,
node sizes, layout) must be exactly the eager tree's, and once completed every field must be
equal; expanding and finding nodes must see every node before and after. Qt-free but the last
test (the window completes its tree after the first view)."""
import dataclasses
from pathlib import Path

import pytest
from support import tree_fields

from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.model.io import load_model
from surgeon_gui.core.viewmodel.grouping import Badge, GroupTree
from surgeon_gui.core.viewmodel.layout import LayoutEngine

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.name for p in (ROOT / "resources" / "examples").iterdir()
                  if p.suffix in (".pb", ".pbtxt"))


def _loaded_graph(path) -> Graph:
    """As the window's loader makes it (with its consumer index)."""
    return load_model(path).index


def _size(tree: GroupTree):
    """Box sizes that depend on what a deferred tree makes later (badges) and on the labels."""
    def size(unit: str):
        if unit.startswith("n:"):
            name = unit[2:]
            return (100.0 + 4 * len(tree.node_label.get(name, name)),
                    40.0 + 9 * len(tree.badges.get(name, [])))
        grp = tree.groups[unit[2:]]
        return (120.0 + 5 * len(grp.label) + 3 * len(" ".join(grp.top_ops(3))),
                50.0 + (8 if grp.repeats > 1 else 0))
    return size


def _first_view(tree: GroupTree):
    """What the first view is made of: expansion, visible edges, every box and route."""
    expanded = frozenset(k for k in tree.default_expanded() if k in tree.groups)
    edges = tree.visible_graph(expanded)
    place = LayoutEngine(tree, _size(tree), False, wrap_in=(1400.0, 900.0)).layout(
        expanded, edges=edges)
    badges = {k: [dataclasses.astuple(x) for x in tree.badges.get(k[2:], [])]
              for k in place.boxes if k.startswith("n:")}
    return (sorted(expanded), [(e.src, e.dst, e.control, e.count, e.label, e.pairs, e.route)
                               for e in place.edges],
            {k: dataclasses.astuple(b) for k, b in place.boxes.items()},
            place.width, place.height, sorted(place.routes.items()), badges)


def _expected_badges(tree: GroupTree) -> dict:
    """The badges by their definition, read from the protos: each drawn node gets one per
    hidden node it reads (a weight or its /read; the first data input reading it names it),
    in the order the hidden nodes were found (weights, then reads, each in graph order)."""
    from surgeon_gui.core.model.graph import parse_input
    from surgeon_gui.core.viewmodel.grouping import badge_name, format_shape, output_info
    order = {h: i for i, h in enumerate(tree.hidden)}
    nodes = tree.graph.nodes
    out = {}
    for c in tree.drawn_nodes():
        first = {}
        for i, text in enumerate(nodes[c].input):
            ref = parse_input(text)
            if not ref.control and ref.node in tree.hidden and ref.node not in first:
                first[ref.node] = i
        found = []
        for h, i in sorted(first.items(), key=lambda hi: order[hi[0]]):
            const = tree.hidden[h]
            dtype, shape = output_info(nodes[const])
            found.append((h, const, f"{badge_name(const, nodes[c].op, i)} {format_shape(shape)}",
                          shape, dtype))
        if found:
            out[c] = found
    return out


def assert_deferred_equals_eager(graph: Graph, show_constants: bool) -> None:
    eager = GroupTree(graph, show_constants)
    assert {c: [dataclasses.astuple(b) for b in bs] for c, bs in eager.badges.items()} == \
        _expected_badges(eager)
    lazy = GroupTree(graph, show_constants, defer=True)
    assert eager.is_complete and not lazy.is_complete
    # the first view is the same, and drawing it does not complete the tree
    assert _first_view(lazy) == _first_view(eager)
    assert not lazy.is_complete
    # every drawn node's badges, made one node at a time, are the eager tree's
    for name in eager.drawn_nodes():
        got = lazy.badges.get(name)
        want = eager.badges.get(name)
        assert (got and [dataclasses.astuple(b) for b in got]) == \
               (want and [dataclasses.astuple(b) for b in want]), name
    assert not lazy.is_complete
    # expanding: every node of the graph (hidden weights too) is drawn somewhere, the same
    # way, with everything collapsed and everything open
    for expanded in (frozenset(), frozenset(eager.groups)):
        for name in graph.nodes:
            assert lazy.representative(name, expanded) == eager.representative(name, expanded)
    # what a group holds (members completes the tree), then every field
    for key in eager.groups:
        assert lazy.members(key) == eager.members(key)
    assert lazy.is_complete or not (eager.groups and eager.hidden)
    lazy.complete()
    assert tree_fields(lazy) == tree_fields(eager)
    inside = {n for k in eager.root_children if k.startswith("g:")
              for n in lazy.members(k[2:])}
    inside |= {k[2:] for k in eager.root_children if k.startswith("n:")}
    outside = set(graph.nodes) - inside
    # every node is in a top-level group or drawn at the top (or a weight shown on one)
    assert all(lazy.badge_owner.get(n) for n in outside), sorted(outside)[:5]


@pytest.mark.parametrize("show_constants", [False, True])
@pytest.mark.parametrize("example", EXAMPLES)
def test_a_deferred_tree_shows_the_same_first_view_and_completes_to_the_eager_tree(
        example, show_constants):
    graph = _loaded_graph(ROOT / "resources" / "examples" / example)
    if not show_constants:
        assert GroupTree(graph).hidden, "the examples carry weights drawn as badges"
    assert_deferred_equals_eager(graph, show_constants)


def test_a_deferred_tree_of_a_keras_model_is_the_eager_tree(mobilenet_v2, tmp_path):
    """MobileNetV2 from Keras, frozen: numbered blocks (virtual groups), resource reads."""
    from surgeon_gui.core.model.io import save_graph
    gd = mobilenet_v2[0]
    save_graph(gd, tmp_path / "m.pb")
    graph = _loaded_graph(tmp_path / "m.pb")
    assert any(g.virtual for g in GroupTree(graph).groups.values())
    assert_deferred_equals_eager(graph, False)


@pytest.mark.slow
def test_a_deferred_tree_of_the_10k_graph_is_the_eager_tree(cond_bn_10k_path):
    """The benchmarks' 10.7k-node TF1 graph (made on a fresh machine, CI)."""
    graph = _loaded_graph(cond_bn_10k_path)
    assert len(graph.nodes) > 10_000
    assert_deferred_equals_eager(graph, False)


def test_a_deferred_trees_whole_badge_map_completes_it(tf1_graph):
    """Reading the badges as a whole (not one node's) completes the tree first."""
    graph = Graph(tf1_graph[0])
    eager = GroupTree(graph)
    lazy = GroupTree(graph, defer=True)
    owner = next(iter(eager.badges))
    assert isinstance(lazy.badges.get(owner)[0], Badge) and not lazy.is_complete
    assert list(lazy.badges.items()) == list(eager.badges.items())
    assert lazy.is_complete
    assert lazy.badges.get("no such node", "x") == "x"


def test_the_window_completes_its_first_tree_after_the_first_view(qtbot, tmp_path, monkeypatch,
                                                                  tf1_graph):
    """The loader's tree is deferred; once the view is up the window completes it on a worker,
    holding the document meanwhile (an undo would wait), and lets go of it after."""
    from support import window_with_model

    from surgeon_gui.ui.commands import held
    w = window_with_model(qtbot, tmp_path, monkeypatch, tf1_graph[0])
    tree = w.view.tree
    qtbot.waitUntil(lambda: tree.is_complete, timeout=30_000)
    qtbot.waitUntil(lambda: not held(w.document), timeout=10_000)
    assert tree_fields(tree) == tree_fields(GroupTree(w.document.graph))
