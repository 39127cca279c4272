"""First views that read like TensorBoard's: name-scope groups plus series of numbered names, on
graphs built the way real ones come about (TF1 variable scopes with auto-numbered layers,
frozen resource-variable reads, Keras 3 layers). Qt-free."""
import pytest
from support import freeze_tf1, tree_fields

from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.viewmodel.grouping import GroupTree, _num_prefixes, series_blocks


def _freeze(build):
    """support.freeze_tf1, as a Graph with its input and output."""
    gd, out = freeze_tf1(build)
    return Graph(gd, ["input"], [out])


def _conv_bn_relu(v1, var, h, scope, c, relu=True):
    import tensorflow as tf
    with v1.variable_scope(scope + "_conv"):
        h = tf.nn.bias_add(tf.nn.conv2d(h, var("kernel", [1, 1, int(h.shape[-1]), c]),
                                        [1, 1, 1, 1], "SAME"), var("bias", [c]))
    with v1.variable_scope(scope + "_bn"):
        h, _, _ = v1.nn.fused_batch_norm(h, var("gamma", [c]), var("beta", [c]),
                                         mean=var("moving_mean", [c]),
                                         variance=tf.abs(var("moving_variance", [c])) + 1,
                                         is_training=False)
    if relu:
        h = tf.nn.relu(h, name=scope + "_relu/Relu")
    return h


def assert_groups_are_stretches_of_the_graph(tree: GroupTree):
    """Never nodes far apart in one group: a group's drawn members fill at least half of the
    stretch of the graph (in graph order) they span."""
    order = {n: i for i, n in enumerate(tree.drawn_nodes())}
    inside: dict[str, list[int]] = {}
    for n in tree.drawn_nodes():
        for k in tree.ancestors(n):
            inside.setdefault(k, []).append(order[n])
    for key, pos in inside.items():
        parent = tree.groups[key].parent
        siblings = [order[n] for n in tree.drawn_nodes() if not parent or parent in
                    tree.ancestors(n)]
        span = [p for p in siblings if min(pos) <= p <= max(pos)]
        assert len(pos) >= 0.5 * len(span), (key, len(pos), len(span))


def test_numbered_prefixes_include_stages_and_lettered_blocks():
    assert _num_prefixes("conv2_block1_1_conv") == ["conv2", "conv2_block1", "conv2_block1_1"]
    assert _num_prefixes("block2b_expand_conv") == ["block2", "block2b"]
    assert _num_prefixes("stem_conv") == []


def test_keras2_resnet_names_with_frozen_weight_reads_nest_into_stages_and_blocks():
    import tensorflow as tf

    def build(v1, var):
        h = v1.placeholder(tf.float32, [1, 8, 8, 4], name="input")
        with v1.variable_scope("resnet"):
            for stage in (2, 3):
                for block in (1, 2, 3):
                    b = f"conv{stage}_block{block}"
                    x = h
                    for layer in (1, 2, 3):
                        h = _conv_bn_relu(v1, var, h, f"{b}_{layer}", 4, relu=layer < 3)
                    h = tf.nn.relu(tf.add(x, h, name=f"{b}_add/add"), name=f"{b}_out/Relu")
            return tf.reduce_mean(h, [1, 2], name="avg_pool/Mean")
    tree = GroupTree(_freeze(build))
    assert "resnet/conv2_*" in tree.groups and "resnet/conv3_*" in tree.groups
    assert "resnet/conv2_*/conv2_block1_*" in tree.groups
    assert tree.ancestors("resnet/conv3_block2_2_bn/FusedBatchNormV3")[:3] == (
        "resnet", "resnet/conv3_*", "resnet/conv3_*/conv3_block2_*")
    # first view: the model scope opened into its two stages (not 60 layer boxes)
    assert "resnet" in tree.default_expanded()
    assert [tree.groups[c[2:]].label for c in tree.groups["resnet"].children
            if c.startswith("g:")] == ["conv2", "conv3"]
    assert_groups_are_stretches_of_the_graph(tree)


def test_efficientnet_lettered_blocks_nest_in_their_stage():
    import tensorflow as tf

    def build(v1, var):
        h = v1.placeholder(tf.float32, [1, 8, 8, 4], name="input")
        with v1.variable_scope("effnet"):
            h = _conv_bn_relu(v1, var, h, "stem", 4)
            for name in ("block1a", "block2a", "block2b", "block3a", "block3b", "block3c"):
                h = _conv_bn_relu(v1, var, h, f"{name}_expand", 4)
                h = _conv_bn_relu(v1, var, h, f"{name}_project", 4, relu=False)
            return _conv_bn_relu(v1, var, h, "top", 4)
    tree = GroupTree(_freeze(build))
    assert "effnet/block3_*/block3b_*" in tree.groups
    # the stem and the top layers share a leading word: a group each, so the model level reads
    # stem → block1 … block3 → top
    assert "effnet/stem_*" in tree.groups and "effnet/top_*" in tree.groups
    assert [c for c in tree.groups["effnet"].children] == [
        "g:effnet/stem_*", "g:effnet/block1_*", "g:effnet/block2_*", "g:effnet/block3_*",
        "g:effnet/top_*"]
    assert tree.ancestors("effnet/block2b_project_bn/FusedBatchNormV3")[:3] == (
        "effnet", "effnet/block2_*", "effnet/block2_*/block2b_*")
    assert_groups_are_stretches_of_the_graph(tree)


def test_tf1_auto_numbered_layers_form_a_series_of_blocks_and_the_head_stays_apart():
    """TF1 layers numbered by creation (``conv2d_7``, ``batch_normalization_13``, ``dense_1``)
    used to give "cell N" groups mixing the classifier head with early blocks."""
    import tensorflow as tf

    def build(v1, var):
        x = v1.placeholder(tf.float32, [1, 8, 8, 3], name="input")

        def layer(kind, fn):
            with v1.variable_scope(None, default_name=kind):
                return fn()
        h = x
        for i in range(6):
            c = int(h.shape[-1])
            h = layer("separable_conv2d", lambda h=h, c=c: tf.nn.separable_conv2d(
                h, var("depthwise_kernel", [3, 3, c, 1]), var("pointwise_kernel", [1, 1, c, 8]),
                [1, 1, 1, 1], "SAME"))
            h = layer("batch_normalization", lambda h=h: v1.nn.fused_batch_norm(
                h, var("gamma", [8]), var("beta", [8]), mean=var("moving_mean", [8]),
                variance=tf.abs(var("moving_variance", [8])) + 1, is_training=False)[0])
            h = tf.nn.relu6(h)
            h = layer("conv2d", lambda h=h: tf.nn.conv2d(h, var("kernel", [1, 1, 8, 8]),
                                                         [1, 1, 1, 1], "SAME"))
            h = layer("batch_normalization", lambda h=h: v1.nn.fused_batch_norm(
                h, var("gamma", [8]), var("beta", [8]), mean=var("moving_mean", [8]),
                variance=tf.abs(var("moving_variance", [8])) + 1, is_training=False)[0])
            h = tf.nn.relu6(h)
        h = tf.reduce_mean(h, [1, 2])
        h = layer("dense", lambda: tf.nn.relu(tf.matmul(h, var("kernel", [8, 8]))))
        h = layer("dense", lambda: tf.matmul(h, var("kernel", [8, 4])))
        return tf.nn.softmax(h, name="probs")
    tree = GroupTree(_freeze(build))
    blocks = sorted((k for k in tree.groups if k.startswith("block ") and "/" not in k),
                    key=lambda k: int(k.split()[1]))
    assert len(blocks) == 6
    assert not any(k.startswith("cell") for k in tree.groups)
    # each block: one separable conv (depthwise + pointwise) and one 1×1 conv; the head is
    # outside every block
    for k in blocks:
        ops = tree.groups[k].ops
        assert ops["DepthwiseConv2dNative"] == 1 and ops["Conv2D"] == 2, (k, ops)
    for head in ("dense/MatMul", "dense_1/MatMul", "probs"):
        assert not any(a.startswith("block") for a in tree.ancestors(head)), head
    assert_groups_are_stretches_of_the_graph(tree)


@pytest.fixture(scope="module")
def transformer():
    import tensorflow as tf

    from surgeon_gui.core.model.io import freeze_keras_model
    tf.keras.utils.set_random_seed(0)
    L = tf.keras.layers
    x_in = tf.keras.Input((6, 16), name="tokens")
    x = x_in
    for _ in range(4):
        a = L.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
        x = L.LayerNormalization()(x + L.Dropout(0.1)(a))
        f = L.Dense(16)(L.Dense(32, activation="relu")(x))
        x = L.LayerNormalization()(x + L.Dropout(0.1)(f))
    y = L.Dense(3, activation="softmax")(L.GlobalAveragePooling1D()(x))
    loaded = freeze_keras_model(tf.keras.Model(x_in, y))
    return Graph(loaded.graph_def, loaded.inputs, loaded.outputs)


def test_transformer_layers_are_one_block_each(transformer):
    """Keras numbers a Transformer's layers by creation; the first view used to put nearly the
    whole model into one "cell 11"."""
    tree = GroupTree(transformer)
    top = next(c[2:] for c in tree.root_children if c.startswith("g:"))
    assert top in tree.default_expanded()
    blocks = [c[2:] for c in tree.groups[top].children if c.startswith("g:")
              and tree.groups[c[2:]].label.startswith("block")]
    assert len(blocks) == 4
    # every block is one Transformer layer: the same structure, one attention each
    assert len({tree.groups[b].signature for b in blocks}) == 1
    assert tree.groups[blocks[0]].repeats == 4
    for b in blocks:
        assert tree.groups[b].ops["Softmax"] == 1, tree.groups[b].ops
    assert_groups_are_stretches_of_the_graph(tree)


def test_series_blocks_cut_at_the_repeating_layer_and_leave_stem_and_head():
    names = ["stem_conv", "stem_bn"]
    for i in range(4):
        names += [f"attention_{i}", f"norm_{2 * i}", f"dense_{2 * i}", f"dense_{2 * i + 1}",
                  f"norm_{2 * i + 1}"]
    names += ["pool", "dense_8", "probs"]
    blocks = series_blocks(names)
    assert blocks["attention_0"] == 1 and blocks["norm_7"] == 4
    assert "stem_conv" not in blocks and "dense_8" not in blocks and "probs" not in blocks
    # plain numbered siblings of one kind are not a series of blocks
    assert series_blocks([f"stage_{i}" for i in range(10)]) == {}


def test_weight_badges_are_named_by_what_they_are():
    """Keras-2 resource reads (``conv1_bn/ReadVariableOp_2``) used to show as
    ``ReadVariableOp_2 16``; TF1's ``gamma/read`` keeps its own name."""
    import tensorflow as tf

    def build(v1, var):
        h = v1.placeholder(tf.float32, [1, 8, 8, 4], name="input")
        with v1.variable_scope("net"):
            return _conv_bn_relu(v1, var, h, "conv1", 16)
    tree = GroupTree(_freeze(build))
    labels = {b.label.split()[0] for bs in tree.badges.values() for b in bs}
    assert {"kernel", "bias", "gamma", "beta", "moving_mean"} <= labels, labels
    from surgeon_gui.core.viewmodel.grouping import badge_name
    assert badge_name("resnet50/conv1_bn/ReadVariableOp_2/resource", "FusedBatchNormV3", 3) \
        == "mean"
    assert badge_name("resnet50/conv1_conv/Conv2D/ReadVariableOp/resource", "Conv2D", 1) \
        == "kernel"
    assert badge_name("bn1/gamma/read", "FusedBatchNormV3", 1) == "gamma"
    assert badge_name("conv1/weights/read", "Conv2D", 1) == "weights"


def test_building_a_tree_leaves_the_garbage_collector_as_it_was():
    """The collector is paused while a tree is built (it is process-wide): on again after,
    and still off if it was off."""
    import gc

    from surgeon_gui.core.model.examples import tf1_layers_flag_net
    gd, _, _ = tf1_layers_flag_net(v1_control_flow=True)
    graph = Graph(gd)
    assert gc.isenabled()
    GroupTree(graph)
    assert gc.isenabled()
    gc.disable()
    try:
        GroupTree(graph)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_building_a_tree_leaves_no_reference_cycles():
    """What a tree's build makes and drops is freed when dropped: no reference cycles (the
    app freezes what lives after a big build, so cyclic garbage would be kept for good: it
    was ~260k objects, 28 MB, per tree of the 53k-node graph)."""
    import gc

    from surgeon_gui.core.model.examples import tf1_layers_flag_net
    graph = Graph(tf1_layers_flag_net(v1_control_flow=True)[0])
    gc.collect()
    gc.disable()
    try:
        tree = GroupTree(graph)
        assert tree.groups
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize("show_constants", [False, True])
def test_a_tree_read_from_the_loaders_consumer_index_equals_one_read_from_the_protos(
        show_constants):
    """The loader's validation builds the graph's consumer index; the tree reads its edges and
    weights' consumers from it instead of parsing every input again, in the same order."""
    from surgeon_gui.core.model.examples import tf1_layers_flag_net
    gd, _, _ = tf1_layers_flag_net(v1_control_flow=True)
    # a control input, and a weight read by two ops (badges on both owners, in graph order)
    gd.node[-1].input.append("^" + gd.node[1].name)
    from_protos = GroupTree(Graph(gd), show_constants)
    indexed = Graph(gd)
    indexed._build_consumers()
    from_index = GroupTree(indexed, show_constants)
    assert any(control for _, _, control, _ in from_protos._edges)
    assert show_constants or from_protos.badges
    assert tree_fields(from_index) == tree_fields(from_protos)
    # the index's entries in node order (kept by the index) or put in that order by the tree
    assert indexed.inputs_in_order[0] is indexed._consumers
    indexed.inputs_in_order = None
    assert tree_fields(GroupTree(indexed, show_constants)) == tree_fields(from_protos)


def test_a_name_prefix_that_is_a_sibling_scope_makes_no_second_group():
    """MobileNetV2's stem as Keras freezes it (RetinaFace): Conv1_pad, Conv1/Conv2D, bn_Conv1,
    Conv1_relu. A virtual "Conv1" block of Conv1_pad and Conv1_relu beside the real scope Conv1
    read as two "Conv1"s, and the chain ran out of the block (Conv2D, bn_Conv1) and back in,
    like a cycle: the stem stays four plain nodes in a row."""
    import tensorflow as tf

    def build(v1, var):
        h = v1.placeholder(tf.float32, [1, 8, 8, 3], name="input")
        with v1.variable_scope("MobileNetV2"):
            h = tf.pad(h, [[0, 0], [1, 1], [1, 1], [0, 0]], name="Conv1_pad/Pad")
            with v1.variable_scope("Conv1"):
                h = tf.nn.conv2d(h, var("kernel", [3, 3, 3, 8]), [1, 2, 2, 1], "VALID",
                                 name="Conv2D")
            with v1.variable_scope("bn_Conv1"):
                h, _, _ = v1.nn.fused_batch_norm(
                    h, var("gamma", [8]), var("beta", [8]), mean=var("moving_mean", [8]),
                    variance=var("moving_variance", [8]), is_training=False)
            h = tf.nn.relu6(h, name="Conv1_relu/Relu6")
            for b in ("expanded_conv_depthwise", "expanded_conv_project"):
                with v1.variable_scope(b):
                    h = tf.nn.conv2d(h, var("kernel", [1, 1, 8, 8]), [1, 1, 1, 1], "SAME",
                                     name="Conv2D")
            return tf.nn.relu6(h, name="out_relu/Relu6")
    tree = GroupTree(_freeze(build))
    stem = ["MobileNetV2/Conv1_pad/Pad", "MobileNetV2/Conv1/Conv2D",
            "MobileNetV2/bn_Conv1/FusedBatchNormV3", "MobileNetV2/Conv1_relu/Relu6"]
    assert [tree.parent_of[n] for n in stem] == ["MobileNetV2"] * 4
    assert not [k for k in tree.groups if k.endswith("Conv1_*")]
    assert [tree.node_label[n] for n in stem] == [
        "Conv1_pad/Pad", "Conv1/Conv2D", "bn_Conv1/FusedBatchNormV3", "Conv1_relu/Relu6"]
    assert_groups_are_stretches_of_the_graph(tree)
