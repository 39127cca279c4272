"""Scope grouping and the compound layered layout, on real models (Qt-free)."""
import itertools

import pytest

from surgeon_gui.core.model.graph import Graph, GraphDef
from surgeon_gui.core.viewmodel.grouping import GroupTree, is_standout, op_family
from surgeon_gui.core.viewmodel.layout import LayoutEngine, boxes_overlap, layered


def fixed_size(unit):
    return (150.0, 40.0) if unit.startswith("n:") else (170.0, 56.0)


@pytest.fixture(scope="module")
def tf1_tree(tf1_graph):
    gd, ins, outs = tf1_graph
    return GroupTree(Graph(gd, ins, outs))


@pytest.fixture(scope="module")
def mnv2_tree(mobilenet_v2):
    gd, ins, outs = mobilenet_v2
    return GroupTree(Graph(gd, ins, outs))


@pytest.fixture(scope="module")
def r50_tree(resnet50):
    gd, ins, outs = resnet50
    return GroupTree(Graph(gd, ins, outs))


# ---------------------------------------------------------------- grouping
def test_scopes_become_groups_and_top_level_is_small(tf1_tree):
    t = tf1_tree
    assert {"conv1", "bn1", "bn1/cond", "bn2", "bn3", "fc", "dropout"} <= set(t.groups)
    assert t.groups["bn1/cond"].parent == "bn1"
    # the top level of the TF1 CNN reads like the model: ~20 boxes, not 157 nodes
    assert len(t.root_children) < 25
    assert "g:bn1" in t.root_children and "n:input" in t.root_children
    # sizes count every node inside, weights included
    bn1 = [n for n in t.graph.nodes if n.startswith("bn1/")]
    assert t.groups["bn1"].size == len(bn1)
    assert set(t.members("bn1")) == set(bn1)


def test_weights_and_reads_are_badges_on_their_consumer(tf1_tree):
    t = tf1_tree
    assert "conv1/weights" in t.hidden and "conv1/weights/read" in t.hidden
    assert "conv1/weights" not in t.parent_of  # not drawn as a box
    badges = t.badges["conv1/Conv2D"]
    assert [b.const for b in badges] == ["conv1/weights"]
    assert badges[0].shape == [3, 3, 3, 8] and "3×3×3×8" in badges[0].label
    # a /read feeding two Switches is a badge on both
    owners = t.badge_owner["bn1/gamma/read"]
    assert len(owners) == 2 and all(o.startswith("bn1/cond/") for o in owners)
    # a Const with a control input stays a box (hiding it would hide the dependency)
    assert "bn1/cond/Const" not in t.hidden


def test_show_constants_draws_everything(tf1_graph):
    gd, ins, outs = tf1_graph
    t = GroupTree(Graph(gd, ins, outs), show_constants=True)
    assert not t.hidden and not t.badges
    assert len(t.drawn_nodes()) == len(gd.node)


def test_numbered_blocks_are_groups_with_structure_signatures(mnv2_tree):
    t = mnv2_tree
    wrapper = next(k for k in t.groups if "/" not in k)
    blocks = {t.groups[k].label: t.groups[k] for k in t.groups
              if t.groups[k].virtual and t.groups[k].parent == wrapper
              and t.groups[k].label.startswith("block_")}
    assert set(blocks) == {f"block_{i}" for i in range(1, 17)}
    # every block member's name starts with the glob prefix of its key
    for g in blocks.values():
        assert g.key.endswith("_*")
        assert all(n.startswith(g.prefix) for n in t.members(g.key))
    sig = {label: g.signature for label, g in blocks.items()}
    # MobileNetV2: strided blocks, residual blocks, and the two channel-changing blocks
    assert len({sig[f"block_{i}"] for i in (1, 3, 6, 13)}) == 1
    assert len({sig[f"block_{i}"] for i in (2, 4, 5, 7, 8, 9, 11, 12, 14, 15)}) == 1
    assert sig["block_10"] == sig["block_16"]
    assert len({sig["block_1"], sig["block_2"], sig["block_10"]}) == 3
    assert blocks["block_2"].repeats == 10 and blocks["block_1"].repeats == 4
    # the model wrapper is opened by default so the top level shows the blocks
    assert wrapper in t.default_expanded()


@pytest.mark.slow
def test_resnet_blocks_nest(r50_tree):
    t = r50_tree
    labels = {g.label for g in t.groups.values() if g.virtual}
    assert {"conv2", "conv3", "conv4", "conv5", "conv2_block1", "conv4_block6"} <= labels
    c2b1 = next(g for g in t.groups.values() if g.label == "conv2_block1")
    assert t.groups[c2b1.parent].label == "conv2"


def test_op_families_and_standouts():
    assert op_family("Conv2D") == "conv" and op_family("MatMul") == "conv"
    assert op_family("FusedBatchNormV3") == "norm"
    assert op_family("Relu6") == "activation"
    assert op_family("Switch") == "control" and op_family("Merge") == "control"
    assert op_family("AddV2") == "arith"
    assert op_family("Placeholder") == "io"
    assert op_family("SomethingNew") == "other"
    for op in ("Switch", "Merge", "If", "PlaceholderWithDefault", "RandomUniform"):
        assert is_standout(op)
    assert not is_standout("Conv2D")


def test_visible_graph_aggregates_edges_between_units(tf1_tree):
    t = tf1_tree
    edges = t.visible_graph(set())
    units = set(t.root_children)
    for e in edges:
        assert e.src in units and e.dst in units and e.src != e.dst
    pairs = [(e.src, e.dst) for e in edges]
    assert len(pairs) == len(set(pairs))
    # is_training feeds every batch-norm cond: one edge per group, counting the graph edges
    flag = [e for e in edges if e.src == "n:is_training" and e.dst == "g:bn1"]
    assert flag and flag[0].count >= 2
    # data edges carry a shape when the GraphDef knows it (Placeholder shape here)
    first = [e for e in edges if e.src == "n:input"][0]
    assert "16×16×3" in first.label
    # representative: a node inside collapsed bn1 is drawn by bn1; expanded, by itself
    assert t.representative("bn1/cond/Merge", set()) == "g:bn1"
    assert t.representative("bn1/cond/Merge", {"bn1", "bn1/cond"}) == "n:bn1/cond/Merge"
    assert t.representative("conv1/weights", set()) == "g:conv1"  # via its consumer


# ---------------------------------------------------------------- layout
def _check_no_overlap(tree, placement):
    for container in [""] + list(placement.expanded):
        kids = [k for k in tree.children(container) if k in placement.boxes]
        for a, b in itertools.combinations(kids, 2):
            assert not boxes_overlap(placement.boxes[a], placement.boxes[b]), (a, b)


def _check_inside_frames(tree, placement):
    for key in placement.expanded:
        frame = placement.boxes["g:" + key]
        for kid in tree.children(key):
            b = placement.boxes[kid]
            assert frame.x <= b.x and b.x + b.w <= frame.x + frame.w + 0.01
            assert frame.y <= b.y and b.y + b.h <= frame.y + frame.h + 0.01


@pytest.mark.parametrize("horizontal", [False, True])
def test_layout_collapsed_and_expanded_without_overlap(tf1_tree, horizontal):
    t = tf1_tree
    eng = LayoutEngine(t, fixed_size, horizontal)
    p = eng.layout(set())
    assert set(p.boxes) == set(t.root_children)
    _check_no_overlap(t, p)
    full = eng.layout(set(t.groups))
    assert set(full.boxes) >= {"n:" + n for n in t.drawn_nodes()}
    _check_no_overlap(t, full)
    _check_inside_frames(t, full)
    # flow: along the layout direction, producers come before consumers at the top level
    b = p.boxes
    first, last = b["n:input"], b["n:probs"]
    assert (first.x < last.x) if horizontal else (first.y < last.y)


def test_layout_flows_down_in_a_dag_container(tf1_tree):
    t = tf1_tree
    p = LayoutEngine(t, fixed_size).layout(set())
    for e in p.edges:
        if e.src in ("n:is_training",):
            continue
        a, b = p.boxes[e.src], p.boxes[e.dst]
        assert a.y + a.h <= b.y, (e.src, e.dst)


def test_expanding_one_group_reuses_the_other_layouts(mnv2_tree):
    t = mnv2_tree
    eng = LayoutEngine(t, fixed_size)
    base = t.default_expanded()
    blocks = [k for k in t.groups if t.groups[k].label in ("block_2", "block_3")]
    eng.layout(base | set(blocks[:1]))
    kept = eng._cache[blocks[0]]
    p = eng.layout(base | set(blocks))
    assert eng._cache[blocks[0]] is kept  # untouched group: same layout object
    _check_no_overlap(t, p)
    _check_inside_frames(t, p)


def test_expand_all_big_models_is_fast_and_clean(mnv2_tree, r50_tree):
    import time
    for t in (mnv2_tree, r50_tree):
        eng = LayoutEngine(t, fixed_size)
        t0 = time.perf_counter()
        p = eng.layout(set(t.groups))
        assert time.perf_counter() - t0 < 5.0
        assert len(p.boxes) == len(t.groups) + len(t.drawn_nodes())
        _check_no_overlap(t, p)
        _check_inside_frames(t, p)


def test_long_edges_get_bend_points_between_layers():
    # a → b → c and a → c: the long edge bends once, beside b, not through it
    sizes = {u: (100.0, 30.0) for u in "abc"}
    local = layered(list("abc"), [("a", "b"), ("b", "c"), ("a", "c")], sizes)
    ya, yb, yc = (local.pos[u][1] for u in "abc")
    assert ya < yb < yc
    route = local.routes[("a", "c")]
    assert len(route) == 1
    x, y = route[0]
    bx = local.pos["b"][0]
    assert yb <= y <= yb + 30  # in b's layer
    assert not (bx <= x <= bx + 100)  # but not inside b


def test_cycles_and_isolated_vertices_are_laid_out():
    sizes = {u: (80.0, 30.0) for u in "abcdefghijklmn"}
    edges = [("a", "b"), ("b", "c"), ("c", "a")]  # a cycle (v1 loops look like this)
    local = layered(list("abcdefghijklmn"), edges, sizes)
    assert set(local.pos) == set(sizes)
    boxes = {u: (x, y) for u, (x, y) in local.pos.items()}
    for u, v in itertools.combinations(boxes, 2):
        (x1, y1), (x2, y2) = boxes[u], boxes[v]
        assert not (abs(x1 - x2) < 80 and abs(y1 - y2) < 30), (u, v)


def test_empty_graph():
    t = GroupTree(Graph(GraphDef()))
    p = LayoutEngine(t, fixed_size).layout(set())
    assert p.boxes == {} and p.width == 0


def test_edges_into_an_expanded_group_enter_through_its_top(tf1_tree):
    t = tf1_tree
    p = LayoutEngine(t, fixed_size).layout({"bn1", "bn1/cond"})
    frame = p.boxes["g:bn1"]
    entering = [e for e in p.edges if e.dst.startswith("n:bn1/") and not e.src.startswith("n:bn1/")
                and not e.src.startswith("g:bn1/")]
    assert entering
    for e in entering:
        # the first bend point of an edge entering bn1 lies on the frame's top padding
        inside = [pt for pt in e.route if frame.x <= pt[0] <= frame.x + frame.w
                  and frame.y <= pt[1] <= frame.y + frame.h]
        assert inside, (e.src, e.dst)
        top = min(y for _, y in inside)
        assert top < frame.y + 26 + 14 + 1  # header + padding


# ---------------------------------------------------------------- cells and wrappers
def _gd(nodes):
    """A GraphDef from (name, op, inputs) triples (float32 everywhere)."""
    gd = GraphDef()
    for name, op, inputs in nodes:
        n = gd.node.add(name=name, op=op)
        n.input.extend(inputs)
        n.attr["T" if op != "Const" and op != "Placeholder" else "dtype"].type = 1
    return gd


def _nasnet_like(cells=4, pool_head=False):
    """A tiny NASNet-style model: ``net/<layer kind>_<cell>_1/…`` scopes (Keras-3 call suffix),
    auto-numbered ``activation_<k>_1`` layers between them, a stem and a head with no cell."""
    nodes = [("input", "Placeholder", []),
             ("net/stem_conv1_1/w", "Const", []),
             ("net/stem_conv1_1/convolution", "Conv2D", ["input", "net/stem_conv1_1/w"])]
    prev, act = "net/stem_conv1_1/convolution", 0
    for c in range(cells):
        act += 1
        a = f"net/activation_{act}_1/Relu"
        nodes.append((a, "Relu", [prev]))
        sep = f"net/separable_conv_1_normal_left1_{c}_1"
        nodes += [(f"{sep}/w", "Const", []),
                  (f"{sep}/depthwise", "DepthwiseConv2dNative", [a, f"{sep}/w"]),
                  (f"{sep}/pointwise", "Conv2D", [f"{sep}/depthwise", f"{sep}/w"])]
        bn = f"net/normal_bn_1_{c}_1"
        nodes += [(f"{bn}/mul", "Mul", [f"{sep}/pointwise", f"{sep}/w"]),
                  (f"{bn}/add", "AddV2", [f"{bn}/mul", f"{sep}/w"])]
        adj = f"net/adjust_conv_1_{c}_1"
        nodes += [(f"{adj}/w", "Const", []), (f"{adj}/convolution", "Conv2D", [prev, f"{adj}/w"])]
        add = f"net/normal_add_1_{c}_1/Add"
        nodes.append((add, "AddV2", [f"{bn}/add", f"{adj}/convolution"]))
        if pool_head:  # a second branch, as every NASNet cell has several
            sep2, bn2 = f"net/separable_conv_1_normal_right1_{c}_1", f"net/normal_bn_2_{c}_1"
            sep3 = f"net/separable_conv_2_normal_right1_{c}_1"
            nodes += [(f"{sep2}/w", "Const", []),
                      (f"{sep2}/depthwise", "DepthwiseConv2dNative", [a, f"{sep2}/w"]),
                      (f"{bn2}/mul", "Mul", [f"{sep2}/depthwise", f"{sep2}/w"]),
                      (f"{sep3}/depthwise", "DepthwiseConv2dNative", [f"{bn2}/mul", f"{sep2}/w"]),
                      (f"net/normal_add_2_{c}_1/Add", "AddV2", [f"{sep3}/depthwise", add]),
                      (f"net/normal_concat_{c}_1/concat", "AddV2",
                       [f"net/normal_add_2_{c}_1/Add", add])]
            add = f"net/normal_concat_{c}_1/concat"
        prev = add
    if pool_head:  # Keras 3 names the pooling layer's call global_average_pooling2d_1_1
        nodes += [(f"net/activation_{act + 1}_1/Relu", "Relu", [prev]),
                  ("net/global_average_pooling2d_1_1/Mean", "Mean",
                   [f"net/activation_{act + 1}_1/Relu"])]
        prev = "net/global_average_pooling2d_1_1/Mean"
    nodes += [("net/predictions_1/w", "Const", []),
              ("net/predictions_1/MatMul", "MatMul", [prev, "net/predictions_1/w"]),
              ("net/predictions_1/Softmax", "Softmax", ["net/predictions_1/MatMul"]),
              ("output", "Identity", ["net/predictions_1/Softmax"])]
    return Graph(_gd(nodes), ["input"], ["output"])


def test_cells_named_by_a_trailing_index_become_groups():
    from surgeon_gui.core.viewmodel.grouping import find_cells
    t = GroupTree(_nasnet_like(4))
    cells = {t.groups[k].label: t.groups[k] for k in t.groups if t.groups[k].label.startswith("cell")}
    assert set(cells) == {"cell 0", "cell 1", "cell 2", "cell 3"}
    assert all(g.parent == "net" and g.virtual for g in cells.values())
    # an auto-numbered activation joins the cell it feeds, not "cell <its own number>"
    assert t.ancestors("net/activation_1_1/Relu")[-1] == "net/cell 0"
    assert t.ancestors("net/activation_4_1/Relu")[-1] == "net/cell 3"
    # the stem and the head have no cell index: they stay at the model level
    assert t.parent_of["net/stem_conv1_1/convolution"] == "net"
    assert t.ancestors("net/predictions_1/MatMul") == ("net", "net/predictions_1")
    # a cell's members include its hidden weights; same structure → one colour, ×4
    members = t.members("net/cell 2")
    assert "net/separable_conv_1_normal_left1_2_1/w" in members
    assert "net/adjust_conv_1_2_1/convolution" in members
    assert not set(members) & set(t.members("net/cell 1"))
    assert len({g.signature for g in cells.values()}) == 1 and cells["cell 1"].repeats == 4
    # opened by default: the model level reads stem → cell 0 … cell 3 → head
    assert "net" in t.default_expanded()
    assert len(t.groups["net"].children) == 6
    # numbered siblings of one kind each are not cells; nor is Keras' call suffix
    assert find_cells([f"stage_{i}" for i in range(1, 21)]) == {}
    assert find_cells([f"block_{i}_{k}_1" for i in range(1, 17)
                       for k in ("expand", "depthwise", "project", "expand_BN")]) == {}


def test_a_single_model_wide_scope_is_opened_even_when_wide():
    from surgeon_gui.core.viewmodel.grouping import MAX_WRAPPER_CHILDREN
    words = ["".join(p) for p in itertools.product("abcdefghijklmnop", repeat=2)]
    n = MAX_WRAPPER_CHILDREN + 30
    nodes = [("input", "Placeholder", [])]
    prev = "input"
    for w in words[:n]:
        nodes.append((f"model/{w}", "Relu", [prev]))
        prev = f"model/{w}"
    nodes.append(("output", "Identity", [prev]))
    t = GroupTree(Graph(_gd(nodes), ["input"], ["output"]))
    assert [c for c in t.root_children if c.startswith("g:")] == ["g:model"]
    assert len(t.groups["model"].children) == n
    assert t.default_expanded() == {"model"}
    p = LayoutEngine(t, fixed_size).layout(t.default_expanded())
    assert "g:model" in p.boxes and sum(k.startswith("n:model/") for k in p.boxes) == n


def test_a_head_layer_numbered_like_a_cell_stays_out_of_it():
    """NASNetLarge under Keras 3: the head's ``global_average_pooling2d_1_1`` reads as a layer of
    cell 1, thousands of nodes earlier; it stays at the model level and the cells still form."""
    t = GroupTree(_nasnet_like(8, pool_head=True))
    cells = {t.groups[k].label for k in t.groups if t.groups[k].label.startswith("cell")}
    assert cells == {f"cell {i}" for i in range(8)}
    assert t.parent_of["net/global_average_pooling2d_1_1/Mean"] in ("net",
                                                                    "net/global_average_pooling2d_1_1")
    assert "net/cell 1" not in t.ancestors("net/global_average_pooling2d_1_1/Mean")
    assert "net/cell 1" not in t.ancestors("net/activation_9_1/Relu")
