"""A comparison that fails because an input's unknown dimensions were filled with 1 says so:
an image model with ``placeholder(shape=[None, None, None, 3])`` run on a 1×1 image fails deep
inside (RetinaFace: "input depth must be evenly divisible by filter depth"), and the user did not
choose that shape. The same graph with a real shape under Sample inputs compares fine."""
import numpy as np
import pytest

from surgeon_gui.core.model.graph import Graph
from surgeon_gui.core.running.comparison import CompareRequest, run_comparison
from surgeon_gui.core.running.runner import RunError
from surgeon_gui.core.running.samples import InputSource, SampleSet


@pytest.fixture(scope="module")
def image_net():
    """A frozen TF1 conv net on images of any size (a 3×3 VALID conv, then a 2×2 stride-2 pool)."""
    import tensorflow as tf
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, None, None, 3], name="x")
        w = tf.constant(np.random.default_rng(0).standard_normal((3, 3, 3, 4)).astype(np.float32))
        y = tf.nn.conv2d(x, w, strides=1, padding="VALID")
        y = tf.nn.max_pool2d(tf.nn.relu(y), 2, 2, "VALID")
        tf.identity(tf.reduce_mean(y, axis=[1, 2]), name="out")
    return g.as_graph_def()


def request(gd, samples):
    return CompareRequest(reference=gd, current=gd, reference_label="Original",
                          current_label="Current", inputs=["x"], outputs=["out"],
                          samples=samples, runs=0, warmup=0)


def test_a_run_failing_on_a_guessed_shape_says_which_input_and_shape(image_net):
    samples = SampleSet()
    assert samples.guessed_shapes(Graph(image_net), ["x"]) == {"x": [1, 1, 1, 3]}
    with pytest.raises(RunError) as e:
        run_comparison(request(image_net, samples))
    msg = str(e.value)
    assert msg.startswith("Original: running the graph failed")
    assert "fed x 1×1×1×3: unknown dimensions filled with 1" in msg and "Sample inputs" in msg
    # the user gives a real shape: no guess left, and the comparison runs
    samples.inputs["x"] = InputSource(shape=[1, 16, 16, 3])
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
    assert "fed x 1x1x1x3: unknown dimensions filled with 1" in err[0]
    assert err[0].endswith("--shape x=1,N,N,3)")
    code, err = surgeon("--shape", "x=1,16,16,3")
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
    assert result is None and "fed x 1×1×1×3" in error
    assert panel.samples.isVisible() and panel.samples_toggle.isChecked()
    table = panel.samples.table
    assert (table.currentRow(), table.currentColumn()) == (0, 2)
    assert table.item(0, 0).text() == "x" and table.item(0, 2).text() == "1,1,1,3"
    table.item(0, 2).setText("1,16,16,3")   # what typing in the cell does
    with qtbot.waitSignal(panel.finished, timeout=120_000) as run:
        qtbot.mouseClick(panel.run_btn, Qt.LeftButton)
    result, error = run.args
    assert result is not None and result.comparison.allclose, error
