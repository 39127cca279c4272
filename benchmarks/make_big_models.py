"""Write the big models the graph-view benchmark opens (issue 3, "What must be shown").

    python benchmarks/make_big_models.py [--out benchmarks/_models] [--only nasnet|cond|cond50k|cond100k|mobilenet|transformer]

Writes (to a gitignored folder, they are large):

- ``nasnet_large.pb`` — a frozen ``tf.keras.applications.NASNetLarge`` (``weights=None``, random
  batch-norm statistics): about 350 MB of weights and some 4,400+ nodes once frozen.
- ``mobilenet_v2.pb`` — a frozen MobileNetV2 at 96 px (1,053 nodes), a mid-sized reference.
- ``tf1_cond_bn_50k.pb``, ``tf1_cond_bn_100k.pb`` — the same TF1 CNN with 100 and 200 stages
  (about 53,000 and 107,000 nodes; ``--only cond50k``/``cond100k``, not built by default): the
  scale targets of issue 12.
- ``transformer_l12.pb`` — a frozen 12-layer Keras Transformer encoder (d_model 256, 4 heads,
  feed-forward 1024, dropout, LayerNormalization; about 1,500 nodes and 38 MB; ``--only
  transformer``): the optimize benchmark's Transformer.
- ``tf1_cond_bn_big.pb`` — a TF1 graph-mode, Keras-style CNN built with v1 control flow: every
  batch norm sits inside a ``tf.cond(is_training, ...)`` (Switch/Merge), variables are read
  through ``/read`` Identities, dropout behind the same flag; stages of repeated
  ``block_1``…``block_N`` scopes; frozen with ``convert_variables_to_constants``; 10,000+ nodes.

Each model gets a ``.json`` sidecar with its inputs, outputs and node count, so the benchmark
does not need to guess them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "_models"


def make_nasnet_large():
    """Frozen NASNetLarge through the same factory the tests use for Keras applications."""
    from surgeon_gui.core.model.examples import keras_application
    return keras_application("NASNetLarge", classes=1000)


def make_tf1_cond_bn_big(stages: int = 20, blocks_per_stage: int = 8, channels: int = 8,
                         seed: int = 0):
    """A TF1 graph-mode CNN with a v1 ``tf.cond`` around every batch norm, 10,000+ nodes.

    Layout mimics a TF1 Keras/slim model: ``model/stage_S/block_B/{conv,bn,relu}`` with conv
    weights and biases as ref variables read through ``/read``; each batch norm is a
    ``tf.cond`` between a training (batch statistics) and an inference (moving statistics)
    ``FusedBatchNorm``; each stage ends with a strided conv; the head has dropout behind the
    same ``is_training`` flag. One stage is a group of roughly 500 nodes.
    """
    import tensorflow as tf
    from surgeon_gui.core.model.examples import _bn_params
    v1 = tf.compat.v1
    rng = np.random.default_rng(seed)
    v1.disable_control_flow_v2()
    try:
        g = tf.Graph()
        with g.as_default():
            x = v1.placeholder(tf.float32, [None, 32, 32, 3], name="input")
            is_training = v1.placeholder_with_default(False, [], name="is_training")

            def weight(name, value):
                return v1.get_variable(name, initializer=value, use_resource=False)

            def conv(h, c_out, stride=1, k=3):
                c_in = int(h.shape[-1])
                w = weight("kernel", rng.normal(0, (2.0 / (k * k * c_in)) ** 0.5,
                                                [k, k, c_in, c_out]).astype(np.float32))
                b = weight("bias", np.zeros([c_out], np.float32))
                h = tf.nn.conv2d(h, w, [1, stride, stride, 1], "SAME")
                return tf.nn.bias_add(h, b)

            def batch_norm(h):
                p = _bn_params(rng, int(h.shape[-1]))
                gamma, beta = weight("gamma", p["gamma"]), weight("beta", p["beta"])
                mm, mv = weight("moving_mean", p["mean"]), weight("moving_variance", p["var"])

                def train():
                    return v1.nn.fused_batch_norm(h, gamma, beta, epsilon=1e-3,
                                                  is_training=True)[0]

                def infer():
                    return v1.nn.fused_batch_norm(h, gamma, beta, mm, mv, epsilon=1e-3,
                                                  is_training=False)[0]
                return tf.cond(is_training, train, infer, name="cond")

            with v1.variable_scope("model"):
                with v1.variable_scope("stem"):
                    with v1.variable_scope("conv"):
                        h = conv(x, channels)
                    with v1.variable_scope("bn"):
                        h = tf.nn.relu(batch_norm(h))
                for s in range(1, stages + 1):
                    with v1.variable_scope(f"stage_{s}"):
                        for b in range(1, blocks_per_stage + 1):
                            with v1.variable_scope(f"block_{b}"):
                                shortcut = h
                                with v1.variable_scope("conv_a"):
                                    y = conv(h, channels)
                                with v1.variable_scope("bn_a"):
                                    y = tf.nn.relu(batch_norm(y))
                                with v1.variable_scope("conv_b"):
                                    y = conv(y, channels)
                                with v1.variable_scope("bn_b"):
                                    y = batch_norm(y)
                                h = tf.nn.relu(tf.add(shortcut, y, name="add"), name="relu")
                        if s < stages:
                            with v1.variable_scope("downsample"):
                                with v1.variable_scope("conv"):
                                    h = conv(h, channels, stride=2)
                                with v1.variable_scope("bn"):
                                    h = tf.nn.relu(batch_norm(h))
                with v1.variable_scope("head"):
                    h = tf.reduce_mean(h, axis=[1, 2], name="gap")
                    keep = tf.cond(is_training, lambda: tf.constant(0.5),
                                   lambda: tf.constant(1.0), name="keep_prob")
                    h = v1.nn.dropout(h, keep_prob=keep, name="dropout")
                    wf = weight("dense_kernel",
                                rng.normal(0, 0.3, [channels, 10]).astype(np.float32))
                    bf = weight("dense_bias", np.zeros([10], np.float32))
                    logits = tf.nn.bias_add(tf.matmul(h, wf), bf, name="logits")
            out = tf.nn.softmax(logits, name="probs")
            with v1.Session(graph=g) as sess:
                sess.run(v1.global_variables_initializer())
                frozen = v1.graph_util.convert_variables_to_constants(
                    sess, g.as_graph_def(), [out.op.name])
    finally:
        v1.enable_control_flow_v2()
    return frozen, ["input"], ["probs"]


def make_mobilenet_v2():
    """Frozen MobileNetV2 at 96 px (the size the tests use): a mid-sized reference model."""
    from surgeon_gui.core.model.examples import keras_application
    return keras_application("MobileNetV2", input_size=96)


def make_tf1_cond_bn_50k():
    """The same TF1 cond/batch-norm CNN with 100 stages: about 53,000 nodes (scale target)."""
    return make_tf1_cond_bn_big(stages=100)


def make_tf1_cond_bn_100k():
    """The same TF1 cond/batch-norm CNN with 200 stages: about 107,000 nodes (scale target)."""
    return make_tf1_cond_bn_big(stages=200)


def make_transformer(layers: int = 12, d_model: int = 256, heads: int = 4, ff: int = 1024,
                     seq: int = 32):
    """A frozen Keras Transformer encoder (built as the first-view grouping test builds one)."""
    import tensorflow as tf

    from surgeon_gui.core.model.io import freeze_keras_model
    tf.keras.utils.set_random_seed(0)
    L = tf.keras.layers
    x_in = tf.keras.Input((seq, d_model), name="tokens")
    x = x_in
    for _ in range(layers):
        a = L.MultiHeadAttention(num_heads=heads, key_dim=d_model // heads)(x, x)
        x = L.LayerNormalization()(x + L.Dropout(0.1)(a))
        f = L.Dense(d_model)(L.Dense(ff, activation="relu")(x))
        x = L.LayerNormalization()(x + L.Dropout(0.1)(f))
    y = L.Dense(10, activation="softmax")(L.GlobalAveragePooling1D()(x))
    loaded = freeze_keras_model(tf.keras.Model(x_in, y))
    return loaded.graph_def, loaded.inputs, loaded.outputs


MODELS = {
    "transformer": ("transformer_l12.pb", make_transformer),
    "mobilenet": ("mobilenet_v2.pb", make_mobilenet_v2),
    "nasnet": ("nasnet_large.pb", make_nasnet_large),
    "cond": ("tf1_cond_bn_big.pb", make_tf1_cond_bn_big),
    "cond50k": ("tf1_cond_bn_50k.pb", make_tf1_cond_bn_50k),
    "cond100k": ("tf1_cond_bn_100k.pb", make_tf1_cond_bn_100k),
}


def write(name: str, out: Path, force: bool = False) -> Path:
    filename, factory = MODELS[name]
    path = out / filename
    if path.exists() and not force:
        print(f"{path} exists (use --force to rebuild)")
        return path
    t0 = time.perf_counter()
    gd, inputs, outputs = factory()
    from surgeon_gui.core.model.io import save_graph
    save_graph(gd, path, overwrite=True)
    meta = {"inputs": inputs, "outputs": outputs, "nodes": len(gd.node),
            "bytes": path.stat().st_size}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    print(f"{path}: {len(gd.node)} nodes, {meta['bytes'] / 1e6:.1f} MB, "
          f"built in {time.perf_counter() - t0:.1f} s")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", choices=sorted(MODELS), action="append")
    ap.add_argument("--force", action="store_true", help="rebuild models that already exist")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or ["mobilenet", "cond", "nasnet"]:
        write(name, args.out, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
