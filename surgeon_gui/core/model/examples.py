"""Model factories: build small real-world-shaped graphs the way users' graphs come about.

Used by the tests, the benchmarks and ``resources/make_examples.py`` (which writes the bundled
examples). Every factory returns ``(graph_def, inputs, outputs)`` with node names for inputs and
outputs. Batch-norm statistics are random and non-trivial so folding them is a real test.
"""
from __future__ import annotations

import numpy as np

from .graph import GraphDef


def _rng(seed):
    return np.random.default_rng(seed)


def _bn_params(rng, c):
    return dict(
        gamma=rng.uniform(0.5, 1.5, c).astype(np.float32),
        beta=rng.normal(0, 0.2, c).astype(np.float32),
        mean=rng.normal(0, 0.3, c).astype(np.float32),
        var=rng.uniform(0.5, 2.0, c).astype(np.float32),
    )


def tf1_cond_bn_dropout(seed: int = 0, height: int = 16, channels: int = 8,
                        classes: int = 5, checkpoint: str | None = None
                        ) -> tuple[GraphDef, list[str], list[str]]:
    """A TF1 graph-mode CNN: v1 ``tf.cond`` (Switch/Merge) around every batch norm on an
    ``is_training`` placeholder, dropout behind the same flag, Identity ``/read`` weights,
    conv → BiasAdd → batch norm, a depthwise conv, and a MatMul head with batch norm.

    Returned frozen for ``probs``, unless ``checkpoint`` (a prefix, e.g. ``run/model.ckpt``) is
    given: then the graph as a TF1 training script saves it (its ``VariableV2`` nodes, a
    ``Saver``'s nodes and the initializer) is returned and the variables' values are written
    to that checkpoint (``.index``, ``.data-00000-of-00001`` and a ``checkpoint`` file), with the
    same values the frozen graph has."""
    import os

    import tensorflow as tf
    v1 = tf.compat.v1
    rng = _rng(seed)
    # v1 control flow must be on while the graph is built (Switch/Merge, not If).
    v1.disable_control_flow_v2()
    try:
        g = tf.Graph()
        with g.as_default():
            x = v1.placeholder(tf.float32, [None, height, height, 3], name="input")
            is_training = v1.placeholder_with_default(False, [], name="is_training")

            def weight(name, shape, value=None):
                # Ref variables, as TF1 made them: VariableV2 read through an Identity "/read".
                init = rng.normal(0, 0.3, shape).astype(np.float32) if value is None else value
                return v1.get_variable(name, initializer=init, use_resource=False)

            def bn(h, scope):
                c = h.shape[-1]
                p = _bn_params(rng, c)
                with v1.variable_scope(scope):
                    gamma = weight("gamma", None, p["gamma"])
                    beta = weight("beta", None, p["beta"])
                    mm = weight("moving_mean", None, p["mean"])
                    mv = weight("moving_variance", None, p["var"])
                    if len(h.shape) == 2:
                        # Dense layers: decomposed batch norm (Mul/Rsqrt/Add/Sub), as
                        # tf.compat.v1.layers.batch_normalization builds for rank-2 inputs.
                        def train2():
                            m, v = tf.nn.moments(h, [0])
                            return tf.nn.batch_normalization(h, m, v, beta, gamma, 1e-3)
                        return tf.cond(is_training, train2,
                                       lambda: tf.nn.batch_normalization(h, mm, mv, beta, gamma,
                                                                         1e-3), name="cond")

                    def train():
                        y, _, _ = v1.nn.fused_batch_norm(h, gamma, beta, epsilon=1e-3,
                                                         is_training=True)
                        return y

                    def infer():
                        y, _, _ = v1.nn.fused_batch_norm(h, gamma, beta, mm, mv, epsilon=1e-3,
                                                         is_training=False)
                        return y
                    return tf.cond(is_training, train, infer, name="cond")

            with v1.variable_scope("conv1"):
                w = weight("weights", [3, 3, 3, channels])
                b = weight("biases", [channels])
                h = tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME")
                h = tf.nn.bias_add(h, b)
            h = tf.nn.relu(bn(h, "bn1"))
            with v1.variable_scope("dw"):
                dw = weight("depthwise", [3, 3, channels, 1])
                h = tf.nn.depthwise_conv2d(h, dw, [1, 2, 2, 1], "SAME")
            h = tf.nn.relu6(bn(h, "bn2"))
            with v1.variable_scope("conv2"):
                w2 = weight("weights", [1, 1, channels, 2 * channels])
                h = tf.nn.conv2d(h, w2, [1, 1, 1, 1], "VALID")
            h = tf.nn.relu(bn(h, "bn3"))
            h = tf.reduce_mean(h, axis=[1, 2], name="gap")
            keep = tf.cond(is_training, lambda: tf.constant(0.5), lambda: tf.constant(1.0),
                           name="keep_prob")
            h = v1.nn.dropout(h, keep_prob=keep, name="dropout")
            with v1.variable_scope("fc"):
                wf = weight("weights", [2 * channels, classes])
                logits = tf.matmul(h, wf)
                logits = bn(logits, "bn_fc")
            out = tf.nn.softmax(logits, name="probs")
            saver = v1.train.Saver() if checkpoint is not None else None
            with v1.Session(graph=g) as sess:
                sess.run(v1.global_variables_initializer())
                if saver is not None:
                    os.makedirs(os.path.dirname(os.path.abspath(checkpoint)), exist_ok=True)
                    saver.save(sess, checkpoint, write_meta_graph=False, write_state=False)
                    name = os.path.basename(checkpoint)  # relative: the folder can move
                    with open(os.path.join(os.path.dirname(os.path.abspath(checkpoint)),
                                           "checkpoint"), "w") as f:
                        f.write(f'model_checkpoint_path: "{name}"\n'
                                f'all_model_checkpoint_paths: "{name}"\n')
                    frozen = g.as_graph_def()
                else:
                    frozen = v1.graph_util.convert_variables_to_constants(
                        sess, g.as_graph_def(), [out.op.name])
    finally:
        v1.enable_control_flow_v2()
    return frozen, ["input"], ["probs"]


def tf2_if_bn_dropout(seed: int = 0, height: int = 16, channels: int = 8,
                      classes: int = 5) -> tuple[GraphDef, list[str], list[str]]:
    """The same network as a TF2 ``tf.function`` with a ``training`` argument: functional
    ``If``/``StatelessIf`` around batch norm and dropout, frozen with its function library."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )
    rng = _rng(seed)
    p1, p2 = _bn_params(rng, channels), _bn_params(rng, channels)
    w1 = tf.Variable(rng.normal(0, 0.3, [3, 3, 3, channels]).astype(np.float32))
    b1 = tf.Variable(rng.normal(0, 0.3, [channels]).astype(np.float32))
    w2 = tf.Variable(rng.normal(0, 0.3, [3, 3, channels, channels]).astype(np.float32))
    wf = tf.Variable(rng.normal(0, 0.3, [channels, classes]).astype(np.float32))
    bn_vars = [[tf.Variable(p[k]) for k in ("gamma", "beta", "mean", "var")] for p in (p1, p2)]

    def bn(h, training, v):
        gamma, beta, mean, var = v
        return tf.cond(
            training,
            lambda: tf.compat.v1.nn.fused_batch_norm(h, gamma, beta, epsilon=1e-3,
                                                     is_training=True)[0],
            lambda: tf.compat.v1.nn.fused_batch_norm(h, gamma, beta, mean, var, epsilon=1e-3,
                                                     is_training=False)[0])

    @tf.function
    def net(x, training):
        h = tf.nn.bias_add(tf.nn.conv2d(x, w1, 1, "SAME"), b1)
        h = tf.nn.relu(bn(h, training, bn_vars[0]))
        h = tf.nn.conv2d(h, w2, 2, "SAME")
        h = tf.nn.relu(bn(h, training, bn_vars[1]))
        h = tf.reduce_mean(h, axis=[1, 2])
        h = tf.cond(training, lambda: tf.nn.dropout(h, rate=0.5), lambda: h)
        return tf.nn.softmax(tf.matmul(h, wf), name="probs")

    concrete = net.get_concrete_function(
        tf.TensorSpec([None, height, height, 3], tf.float32, name="input"),
        tf.TensorSpec([], tf.bool, name="training"))
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False)
    gd = frozen.graph.as_graph_def()
    outputs = [t.name.split(":")[0] for t in frozen.outputs]
    return gd, ["input", "training"], outputs


def keras_application(name: str = "MobileNetV2", seed: int = 0, input_size: int = 96,
                      classes: int = 10) -> tuple[GraphDef, list[str], list[str]]:
    """A frozen ``tf.keras.applications`` model (``weights=None``) whose batch-norm moving
    statistics and gammas/betas are randomised so folding them changes real numbers."""
    import tensorflow as tf

    from .io import freeze_keras_model
    tf.keras.utils.set_random_seed(seed)
    ctor = getattr(tf.keras.applications, name)
    kwargs = dict(weights=None, classes=classes)
    if name != "NASNetLarge":
        kwargs["input_shape"] = (input_size, input_size, 3)
    model = ctor(**kwargs)
    randomize_batch_norms(model, seed)
    loaded = freeze_keras_model(model, f"keras.applications.{name}")
    return loaded.graph_def, loaded.inputs, loaded.outputs


def randomize_batch_norms(model, seed: int = 0) -> int:
    """Give every BatchNormalization layer non-trivial statistics; returns how many."""
    import tensorflow as tf
    rng = _rng(seed)
    count = 0
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            new = []
            for w, kind in zip(layer.get_weights(), ("gamma", "beta", "mean", "var")
                               if layer.scale and layer.center else
                               _bn_kinds(layer)):
                if kind == "gamma":
                    new.append(rng.uniform(0.5, 1.5, w.shape).astype(w.dtype))
                elif kind in ("beta", "mean"):
                    new.append(rng.normal(0, 0.2, w.shape).astype(w.dtype))
                else:
                    new.append(rng.uniform(0.5, 2.0, w.shape).astype(w.dtype))
            layer.set_weights(new)
            count += 1
    return count


def _bn_kinds(layer):
    kinds = []
    if layer.scale:
        kinds.append("gamma")
    if layer.center:
        kinds.append("beta")
    return kinds + ["mean", "var"]


def conv_bias_bn(seed: int = 0, data_format: str = "NHWC", depthwise: bool = False,
                 bias: bool = True, fused: bool = True) -> tuple[GraphDef, list[str], list[str]]:
    """Conv2D (or depthwise) → BiasAdd → batch norm → Relu, as a plain TF1 graph of Consts.

    ``fused=False`` writes the batch norm as ``tf.nn.batch_normalization`` (Mul/Rsqrt/Add/Sub).
    NCHW graphs can be built and imported but only run on CPU for ops that support it.
    """
    import tensorflow as tf
    v1 = tf.compat.v1
    rng = _rng(seed)
    c_in, c = 3, 6
    g = tf.Graph()
    with g.as_default():
        shape = [None, 8, 8, c_in] if data_format == "NHWC" else [None, c_in, 8, 8]
        x = v1.placeholder(tf.float32, shape, name="input")
        if depthwise:
            w = tf.constant(rng.normal(0, 0.5, [3, 3, c_in, 2]).astype(np.float32), name="w")
            h = tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME", data_format=data_format)
            c = c_in * 2
        else:
            w = tf.constant(rng.normal(0, 0.5, [3, 3, c_in, c]).astype(np.float32), name="w")
            h = tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME", data_format=data_format)
        if bias:
            b = tf.constant(rng.normal(0, 0.5, [c]).astype(np.float32), name="b")
            h = tf.nn.bias_add(h, b, data_format=data_format)
        p = _bn_params(rng, c)
        if fused:
            h = v1.nn.fused_batch_norm(h, p["gamma"], p["beta"], p["mean"], p["var"],
                                       epsilon=1e-3, is_training=False,
                                       data_format=data_format, name="bn")[0]
        else:
            bshape = [1, c, 1, 1] if data_format == "NCHW" else [c]
            h = tf.nn.batch_normalization(h, p["mean"].reshape(bshape), p["var"].reshape(bshape),
                                          p["beta"].reshape(bshape), p["gamma"].reshape(bshape),
                                          1e-3, name="bn")
        tf.nn.relu(h, name="output")
    return g.as_graph_def(), ["input"], ["output"]


def matmul_bn(seed: int = 0) -> tuple[GraphDef, list[str], list[str]]:
    """MatMul → hand-written batch norm ``x*inv - mean*inv + beta`` → output."""
    import tensorflow as tf
    v1 = tf.compat.v1
    rng = _rng(seed)
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 7], name="input")
        w = tf.constant(rng.normal(0, 0.5, [7, 4]).astype(np.float32), name="w")
        h = tf.matmul(x, w, name="matmul")
        p = _bn_params(rng, 4)
        inv = tf.math.rsqrt(tf.constant(p["var"]) + 1e-3) * tf.constant(p["gamma"])
        h = h * inv - tf.constant(p["mean"]) * inv + tf.constant(p["beta"])
        tf.identity(h, name="output")
    return g.as_graph_def(), ["input"], ["output"]


def tf1_layers_flag_net(seed: int = 0, v1_control_flow: bool = True, height: int = 8,
                        channels: int = 6, classes: int = 4, checkpoint_dir: str | None = None,
                        resource_variables: bool = False
                        ) -> tuple[GraphDef, list[str], list[str]]:
    """A TF1 training script's graph: ``flag = tf.compat.v1.placeholder(tf.bool)`` (unknown
    rank, named ``model/Placeholder_1``) drives every batch norm and dropout, built as
    ``tf.compat.v1.layers.batch_normalization(training=flag)`` and ``dropout(training=flag)``
    build them (those layers now live in ``tf_keras``, which pulls in a second TensorFlow, so the
    same ops are written out here): a ``tf.cond`` between the training and the inference
    ``FusedBatchNormV3``, a ``cond_1`` choosing the momentum, ``AssignMovingAvg`` update ops in
    ``UPDATE_OPS`` that a ``train_op`` depends on, and dropout as ``cond(flag, dropout,
    identity)``; after the dense layer a rank-2 (unfused) batch norm whose cond returns the
    moving statistics' values.

    ``v1_control_flow`` picks Switch/Merge (TF1) or ``If`` (TF2 control flow in graph mode).
    Returns the graph frozen for ``model/probs``, unless ``checkpoint_dir`` is given: then the
    whole training graph with its variables is returned and the variables are saved there as
    many projects ship them, prefix ``checkpoint_dir + "/"`` (files ``.index`` and
    ``.data-00000-of-00001``) with a ``checkpoint`` file naming another machine's path.
    ``resource_variables`` makes them ``VarHandleOp`` (TF2 style) instead of ``VariableV2``.
    """
    import os

    import tensorflow as tf
    v1 = tf.compat.v1
    rng = _rng(seed)
    if v1_control_flow:
        v1.disable_control_flow_v2()
    else:
        v1.enable_control_flow_v2()
    try:
        g = tf.Graph()
        with g.as_default(), v1.variable_scope("model"):
            x = v1.placeholder(tf.float32, [None, height, height, 3])  # model/Placeholder
            flag = v1.placeholder(tf.bool)                            # model/Placeholder_1
            labels = v1.placeholder(tf.int32, [None])                 # model/Placeholder_2

            def var(name, value, trainable=True):
                return v1.get_variable(name, initializer=value, trainable=trainable,
                                       use_resource=resource_variables)

            def batch_norm(h, scope):
                c = int(h.shape[-1])
                p = _bn_params(rng, c)
                with v1.variable_scope(scope):
                    gamma, beta = var("gamma", p["gamma"]), var("beta", p["beta"])
                    mm = var("moving_mean", p["mean"], trainable=False)
                    mv = var("moving_variance", p["var"], trainable=False)

                    def train():
                        return v1.nn.fused_batch_norm(h, gamma, beta, epsilon=1e-3,
                                                      is_training=True)

                    def infer():
                        return v1.nn.fused_batch_norm(h, gamma, beta, tf.identity(mm),
                                                      tf.identity(mv), epsilon=1e-3,
                                                      is_training=False)
                    y, mean, variance = tf.cond(flag, train, infer, name="cond")
                    momentum = tf.cond(flag, lambda: tf.constant(0.99),
                                       lambda: tf.constant(1.0), name="cond_1")
                    for v, new in ((mm, mean), (mv, variance)):
                        with tf.name_scope("AssignMovingAvg"):
                            upd = v1.assign_sub(v, (v - new) * (1.0 - momentum))
                        v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, upd)
                    return y

            def batch_norm_dense(h, scope):
                # Rank 2: not fused. Like the layer, pick batch or moving statistics with a cond
                # whose inference branch returns the variable's value as it is.
                c = int(h.shape[-1])
                p = _bn_params(rng, c)
                with v1.variable_scope(scope):
                    gamma, beta = var("gamma", p["gamma"]), var("beta", p["beta"])
                    mm = var("moving_mean", p["mean"], trainable=False)
                    mv = var("moving_variance", p["var"], trainable=False)
                    b_mean, b_var = tf.nn.moments(h, [0])
                    mean = tf.cond(flag, lambda: b_mean, lambda: tf.convert_to_tensor(mm),
                                   name="cond")
                    variance = tf.cond(flag, lambda: b_var, lambda: tf.convert_to_tensor(mv),
                                       name="cond_1")
                    for v, new in ((mm, b_mean), (mv, b_var)):
                        with tf.name_scope("AssignMovingAvg"):
                            upd = v1.assign_sub(v, (v - new) * 0.01)
                        v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, upd)
                    return tf.nn.batch_normalization(h, mean, variance, beta, gamma, 1e-3)

            def dropout(h, rate, scope):
                with v1.variable_scope(scope):
                    return tf.cond(flag, lambda: tf.nn.dropout(h, rate=rate),
                                   lambda: tf.identity(h), name="cond")

            def conv(h, c_out, k, scope, padding="SAME"):
                c_in = int(h.shape[-1])
                with v1.variable_scope(scope):
                    w = var("kernel", rng.normal(0, (k * k * c_in) ** -0.5,
                                                 [k, k, c_in, c_out]).astype(np.float32))
                    return tf.nn.conv2d(h, w, [1, 1, 1, 1], padding)

            h = tf.nn.relu(batch_norm(conv(x, channels, 3, "conv1"), "batch_normalization"))
            h = tf.nn.relu(batch_norm(conv(h, channels, 3, "conv2"), "batch_normalization_1"))
            h = tf.reduce_mean(h, axis=[1, 2])
            h = dropout(h, 0.5, "dropout")
            with v1.variable_scope("dense"):
                w = var("kernel", rng.normal(0, channels ** -0.5,
                                             [channels, classes]).astype(np.float32))
                b = var("bias", rng.normal(0, 0.1, [classes]).astype(np.float32))
                logits = tf.nn.bias_add(tf.matmul(h, w), b)
            logits = batch_norm_dense(logits, "batch_normalization_2")
            probs = tf.nn.softmax(logits, name="probs")
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=logits))
            with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
                v1.train.GradientDescentOptimizer(0.01).minimize(loss, name="train_op")
            with v1.Session(graph=g) as sess:
                sess.run(v1.global_variables_initializer())
                if checkpoint_dir is not None:
                    os.makedirs(checkpoint_dir, exist_ok=True)
                    prefix = os.path.join(checkpoint_dir, "")
                    v1.train.Saver().save(sess, prefix, write_meta_graph=False,
                                          write_state=False)
                    with open(os.path.join(checkpoint_dir, "checkpoint"), "w") as f:
                        # As written on the machine that trained it.
                        f.write('model_checkpoint_path: "/home/trainer/run7/"\n'
                                'all_model_checkpoint_paths: "/home/trainer/run7/"\n')
                    gd = g.as_graph_def()
                else:
                    gd = v1.graph_util.convert_variables_to_constants(
                        sess, g.as_graph_def(), [probs.op.name])
    finally:
        v1.enable_control_flow_v2()
    return gd, [x.op.name, flag.op.name], [probs.op.name]
