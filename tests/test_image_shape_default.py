"""An image input whose Placeholder leaves height and width unknown (RetinaFace's
``[?, ?, ?, 3]``) gets a 224×224 image by default, not 1×1 (which fails its first
convolutions); the batch and other unknown dims stay 1, and the shape says it is assumed."""
import numpy as np
import pytest

from surgeon_gui.core.model import real_models as rm
from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.passes.pipeline import run_pipeline
from surgeon_gui.core.running.comparison import CompareRequest, run_comparison
from surgeon_gui.core.running.samples import InputSource, SampleSet, input_specs


def placeholders(*specs):
    """A graph of ``tf.compat.v1.placeholder`` inputs (dtype, shape, name) summed into one output."""
    import tensorflow as tf
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        for dtype, shape, name in specs:
            v1.placeholder(dtype, shape, name=name)
    return Graph(g.as_graph_def())


def test_unknown_image_sizes_default_to_224_other_unknown_dims_to_1():
    import tensorflow as tf
    g = placeholders((tf.float32, [None, None, None, 3], "nhwc"),
                     (tf.float32, [None, 3, None, None], "nchw"),
                     (tf.float32, [None, None, None, 1], "gray"),
                     (tf.float32, [None, 320, None, 3], "half"),
                     (tf.float32, [None, None], "table"),
                     (tf.float32, [None, None, None, 5], "bands"),
                     (tf.int32, [None, None, None, 3], "ints"),
                     (tf.float32, [None, 160, 160, 3], "fixed"),
                     (tf.float32, [2, None, None, 3], "batch2"))
    s = SampleSet()
    specs = {sp.name: sp for sp in input_specs(g)}
    got = {n: s.resolved_shape(sp) for n, sp in specs.items()}
    assert got == {"nhwc": [1, 224, 224, 3], "nchw": [1, 3, 224, 224],
                   "gray": [1, 224, 224, 1], "half": [1, 320, 224, 3],
                   "table": [1, 1], "bands": [1, 1, 1, 5], "ints": [1, 1, 1, 3],
                   "fixed": [1, 160, 160, 3], "batch2": [2, 224, 224, 3]}
    assert s.assumption(specs["nhwc"]) == \
        "224×224 assumed: the graph does not fix the image size"
    assert s.assumption(specs["nchw"]).startswith("224×224 assumed")
    assert s.assumption(specs["half"]).startswith("224 assumed")
    for n in ("table", "bands", "ints", "fixed"):
        assert s.assumption(specs[n]) == "", n
    # the batch follows the set; the feeds have the shape said
    s.batch = 2
    feeds = s.make_feeds(g, ["nhwc", "nchw", "table"])
    assert {k: v.shape for k, v in feeds.items()} == {
        "nhwc": (2, 224, 224, 3), "nchw": (2, 3, 224, 224), "table": (2, 1)}
    # a shape of the user's wins, and nothing is assumed any more
    s.inputs["nhwc"] = InputSource(shape=[1, 64, 48, 3])
    assert s.resolved_shape(specs["nhwc"]) == [1, 64, 48, 3]
    assert s.assumption(specs["nhwc"]) == ""
    assert "nhwc" not in s.guessed_shapes(g, ["nhwc"]) and "nchw" in s.guessed_shapes(g)


@pytest.fixture(scope="module")
def retinaface_after_preset():
    gd, ins, outs = rm.retinaface()
    opt, _ = run_pipeline(Graph(gd, ins, outs), ["inference"])
    return gd, opt.graph_def, ins, outs


def test_retinaface_compares_after_the_preset_with_default_samples(retinaface_after_preset):
    """Before: the default 1×1×1×3 image failed in RetinaFace's first convolutions, and the user
    had to find the Sample inputs editor. Compared: the detections (the graph's output, empty on
    random pixels) and the per-anchor face scores before the NMS, which are not. (The anchors'
    box offsets are left out: near zero, their rounding noise on random pixels is 0.38.)"""
    gd, opt, ins, outs = retinaface_after_preset
    samples = SampleSet()
    (spec,) = input_specs(Graph(gd, ins, outs), ins)
    assert samples.resolved_shape(spec) == [1, 224, 224, 3]
    assert samples.assumption(spec).startswith("224×224 assumed")
    heads = ["RetinaFaceModel/softmax/Softmax"]
    res = run_comparison(CompareRequest(
        reference=gd, current=opt, reference_label="Original", current_label="Current",
        inputs=ins, outputs=outs + heads, samples=samples, runs=0, warmup=0))
    assert res.comparison.allclose
    scores = res.values_a["RetinaFaceModel/softmax/Softmax"]
    # 224/8, /16, /32 feature maps with 2 anchors each: 2 * (28² + 14² + 7²) = 2058
    assert scores.shape == (1, 2058, 2) and np.ptp(scores) > 0.1
