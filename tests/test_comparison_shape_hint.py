"""A comparison that fails because an input's unknown dimensions were filled with 1 says so:
a conv net with ``placeholder(shape=[None, None, None, 5])`` (5 bands: not an image, whose
height and width would default to 224) run on a 1×1 input fails deep inside ("input depth must
be evenly divisible by filter depth" for RetinaFace before images got 224×224), and the user did
not choose that shape. The same graph with a real shape under Sample inputs compares fine."""
import numpy as np
import pytest

from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.running.comparison import CompareRequest, run_comparison
from surgeon_gui.core.running.runner import RunError
from surgeon_gui.core.running.samples import InputSource, SampleSet


def conv_net(channels: int):
    """A frozen TF1 conv net on inputs of any size (a 3×3 VALID conv, then a 2×2 stride-2 pool)."""
    import tensorflow as tf
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, None, None, channels], name="x")
        w = tf.constant(np.random.default_rng(0).standard_normal(
            (3, 3, channels, 4)).astype(np.float32))
        y = tf.nn.conv2d(x, w, strides=1, padding="VALID")
        y = tf.nn.max_pool2d(tf.nn.relu(y), 2, 2, "VALID")
        tf.identity(tf.reduce_mean(y, axis=[1, 2]), name="out")
    return g.as_graph_def()


@pytest.fixture(scope="module")
def image_net():
    """Not an image input (5 channels): its unknown dims default to 1, too small for the net.
    (Named image_net before images' sizes defaulted to 224; it had 3 channels then.)"""
    return conv_net(5)


def request(gd, samples):
    return CompareRequest(reference=gd, current=gd, reference_label="Original",
                          current_label="Current", inputs=["x"], outputs=["out"],
                          samples=samples, runs=0, warmup=0)


def test_a_run_failing_on_a_guessed_shape_says_which_input_and_shape(image_net):
    samples = SampleSet()
    assert samples.guessed_shapes(Graph(image_net), ["x"]) == {"x": [1, 1, 1, 5]}
    with pytest.raises(RunError) as e:
        run_comparison(request(image_net, samples))
    msg = str(e.value)
    assert msg.startswith("Original: running the graph failed")
    assert "fed x 1×1×1×5: unknown dimensions filled with 1" in msg and "Sample inputs" in msg
    # the user gives a real shape: no guess left, and the comparison runs
    samples.inputs["x"] = InputSource(shape=[1, 16, 16, 5])
    assert samples.guessed_shapes(Graph(image_net), ["x"]) == {}
    res = run_comparison(request(image_net, samples))
    assert res.comparison.allclose and res.values_a["out"].shape == (1, 4)


def test_cli_compare_says_which_shape_it_guessed(image_net, tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    from surgeon_gui.core.model.io import save_graph
    pb = tmp_path / "net.pb"
    save_graph(image_net, pb)
    root = Path(__file__).resolve().parent.parent

    def surgeon(*args):
        p = subprocess.run([sys.executable, "-m", "surgeon_gui", "compare", str(pb), str(pb),
                            "--runs", "0", *args], cwd=root, capture_output=True, text=True,
                           timeout=180)
        return p.returncode, p.stderr.strip().splitlines()

    code, err = surgeon()
    assert code == 2 and len(err) == 1, err
    assert "running the graph failed" in err[0]
    assert "fed x 1x1x1x5: unknown dimensions filled with 1" in err[0]
    assert err[0].endswith("--shape x=1,N,N,5)")
    code, err = surgeon("--shape", "x=1,16,16,5")
    assert code == 0, err


def test_the_panel_opens_sample_inputs_at_the_shape_to_give(qtbot, image_net):
    """RetinaFace's first Run comparison failed on the 1×1 image filled in by default, and the
    Sample inputs editor stayed folded: the panel now opens it at that input's Shape cell; the
    shape typed there makes the next run compare."""
    from PySide6.QtCore import Qt
    from surgeon_gui.core.history.document import Document
    from surgeon_gui.ui.compare_panel import ComparePanel
    panel = ComparePanel(Document(image_net, "image_net.pb", ["x"], ["out"]))
    qtbot.addWidget(panel)
    panel.runs.setValue(0)
    panel.show()
    assert not panel.samples.isVisible()
    with qtbot.waitSignal(panel.finished, timeout=120_000) as run:
        qtbot.mouseClick(panel.run_btn, Qt.LeftButton)
    result, error = run.args
    assert result is None and "fed x 1×1×1×5" in error
    assert panel.samples.isVisible() and panel.samples_toggle.isChecked()
    table = panel.samples.table
    assert (table.currentRow(), table.currentColumn()) == (0, 2)
    assert table.item(0, 0).text() == "x" and table.item(0, 2).text() == "1,1,1,5"
    table.item(0, 2).setText("1,16,16,5")   # what typing in the cell does
    with qtbot.waitSignal(panel.finished, timeout=120_000) as run:
        qtbot.mouseClick(panel.run_btn, Qt.LeftButton)
    result, error = run.args
    assert result is not None and result.comparison.allclose, error


def test_an_rgb_input_of_unknown_size_gets_224_and_the_cli_says_so(tmp_path):
    """The same net on 3 channels: an image, fed 1×224×224×3 by default (CLI and panel)."""
    import subprocess
    import sys
    from pathlib import Path
    from surgeon_gui.core.model.io import save_graph
    gd = conv_net(3)
    res = run_comparison(request(gd, SampleSet()))
    assert res.comparison.allclose and list(res.comparison.feeds["x"][0]) == [1, 224, 224, 3]
    assert res.values_a["out"].shape == (1, 4) and np.abs(res.values_a["out"]).max() > 0
    pb = tmp_path / "rgb.pb"
    save_graph(gd, pb)
    p = subprocess.run([sys.executable, "-m", "surgeon_gui", "compare", str(pb), str(pb),
                        "--runs", "0"], cwd=Path(__file__).resolve().parent.parent,
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    assert ("input x: 1x224x224x3 (224×224 assumed: the graph does not fix the image size; "
            "--shape x=... sets it)") in p.stdout.splitlines()


def test_the_sample_inputs_editor_says_the_image_size_is_assumed(qtbot):
    from surgeon_gui.core.running.samples import input_specs
    from surgeon_gui.ui.samples_editor import SamplesEditor
    ed = SamplesEditor()
    qtbot.addWidget(ed)
    ed.show()
    ed.set_specs(input_specs(Graph(conv_net(3)), ["x"]))
    assert ed.table.item(0, 2).text() == "1,224,224,3"
    assert ed.assumed.isVisible() and ed.assumed.text() == (
        "224×224 assumed: the graph does not fix the image size (type the real size under "
        "Shape)")
    assert "224×224 assumed" in ed.table.item(0, 2).toolTip()
    ed.table.item(0, 2).setText("1,320,320,3")   # the user gives the size: nothing assumed
    assert ed.sample_set.inputs["x"].shape == [1, 320, 320, 3]
    assert not ed.assumed.isVisible()
    ed.reset(input_specs(Graph(conv_net(5)), ["x"]))  # not an image: nothing to say
    assert ed.table.item(0, 2).text() == "1,1,1,5" and not ed.assumed.isVisible()
