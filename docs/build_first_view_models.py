"""Builds the first-view models of issue 11.4 (docs/first_view_*.png) into a folder.

    python docs/build_first_view_models.py OUT_DIR [resnet50 effb7 transformer]
    PYTHONPATH=TF_KERAS_DIR TF_USE_LEGACY_KERAS=1 \
        python docs/build_first_view_models.py OUT_DIR resnet_keras2 mobilenet_tf1

The Keras-2 ResNet50 and the TF1 MobileNet v1 (``tf.compat.v1.layers``, auto-numbered layer
names, batch norms behind an ``is_training`` flag) need ``tf_keras``, which is not a dependency:
install it to a temporary folder only (``pip install --target TF_KERAS_DIR tf-keras``).
Then ``QT_QPA_PLATFORM=offscreen python docs/make_first_views.py after OUT_DIR/*.pb``.
"""
import os
import sys

import tensorflow as tf

from surgeon_gui.core.model.examples import keras_application
from surgeon_gui.core.model.io import freeze_keras_model, save_graph

out = sys.argv[1]
which = sys.argv[2:] or ["resnet50", "effb7", "transformer"]
os.makedirs(out, exist_ok=True)


def save(gd, name):
    p = os.path.join(out, name + ".pb")
    if os.path.exists(p):
        os.remove(p)
    save_graph(gd, p)
    print("wrote", p, len(gd.node), flush=True)


if "resnet50" in which:
    gd, i, o = keras_application("ResNet50", input_size=64)
    save(gd, "resnet50")
if "effb7" in which:
    gd, i, o = keras_application("EfficientNetB7", input_size=64)
    save(gd, "effb7")
if "transformer" in which:
    L = tf.keras.layers
    x_in = tf.keras.Input((16, 64), name="tokens")
    x = x_in
    for _ in range(12):
        a = L.MultiHeadAttention(num_heads=4, key_dim=16)(x, x)
        a = L.Dropout(0.1)(a)
        x = L.LayerNormalization()(x + a)
        f = L.Dense(128, activation="relu")(x)
        f = L.Dense(64)(f)
        f = L.Dropout(0.1)(f)
        x = L.LayerNormalization()(x + f)
    y = L.Dense(10, activation="softmax")(L.GlobalAveragePooling1D()(x))
    m = tf.keras.Model(x_in, y)
    save(freeze_keras_model(m).graph_def, "transformer12")
if "resnet_keras2" in which:
    import tf_keras
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    m = tf_keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=10)
    fn = tf.function(lambda x: m(x, training=False))
    c = fn.get_concrete_function(tf.TensorSpec([1, 64, 64, 3], tf.float32, name="input_1"))
    save(convert_variables_to_constants_v2(c).graph.as_graph_def(), "resnet50_keras2")
if "mobilenet_tf1" in which:
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [1, 96, 96, 3], name="input")
        training = v1.placeholder_with_default(False, [], name="is_training")
        def bnr(h):
            return tf.nn.relu6(v1.layers.batch_normalization(h, training=training))
        h = bnr(v1.layers.conv2d(x, 16, 3, strides=2, padding="same", use_bias=False))
        for c, s in [(32,1),(64,2),(64,1),(128,2),(128,1),(256,2),(256,1),(256,1),(256,1),(256,1),(256,1),(512,2),(512,1)]:
            h = bnr(v1.layers.separable_conv2d(h, int(h.shape[-1]), 3, strides=s, padding="same", use_bias=False))
            h = bnr(v1.layers.conv2d(h, c, 1, use_bias=False))
        h = tf.reduce_mean(h, [1, 2])
        h = v1.layers.dropout(h, 0.5, training=training)
        h = v1.layers.dense(h, 64, activation=tf.nn.relu)
        h = v1.layers.dense(h, 10)
        tf.nn.softmax(h, name="probs")
        with v1.Session(graph=g) as s:
            s.run(v1.global_variables_initializer())
            gd = v1.graph_util.convert_variables_to_constants(s, g.as_graph_def(), ["probs"])
    save(gd, "mobilenet_v1_tf1")
