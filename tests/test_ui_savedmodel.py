"""SavedModel folders with several signatures: listing them cheaply (core), asking which one to
open in the main window, cancelling, File ▸ Open SavedModel Folder… and ``--signature``."""
import numpy as np
import pytest
from support import make_window
from PySide6.QtWidgets import QApplication

from surgeon_gui.core.model.graph import GraphError
from surgeon_gui.core.model.io import load_model, save_graph, saved_model_signatures


@pytest.fixture(scope="module")
def two_sig_dir(tmp_path_factory):
    """serving_default: relu(x @ w + b) -> y; other: sigmoid(x) * 3 -> z (no MatMul, no Relu)."""
    import tensorflow as tf

    class Two(tf.Module):
        def __init__(self):
            self.w = tf.Variable(np.arange(12, dtype=np.float32).reshape(4, 3))
            self.b = tf.Variable(np.ones(3, np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def f1(self, x):
            return {"y": tf.nn.relu(tf.matmul(x, self.w) + self.b)}

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def f2(self, x):
            return {"z": tf.sigmoid(x) * 3.0}

    m = Two()
    path = tmp_path_factory.mktemp("sm2") / "two_sigs"
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.f1, "other": m.f2})
    return path


@pytest.fixture(scope="module")
def one_sig_dir(tmp_path_factory):
    import tensorflow as tf

    class One(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def f(self, x):
            return {"t": tf.tanh(x)}

    m = One()
    path = tmp_path_factory.mktemp("sm1") / "one_sig"
    tf.saved_model.save(m, str(path), signatures={"only": m.f})
    return path


# ---------------------------------------------------------------------- core
def test_saved_model_signatures_lists_keys_without_init_op(two_sig_dir, one_sig_dir):
    assert saved_model_signatures(two_sig_dir) == ["other", "serving_default"]
    assert saved_model_signatures(one_sig_dir) == ["only"]


def test_saved_model_signatures_bad_input(tmp_path):
    with pytest.raises(GraphError, match="no such file"):
        saved_model_signatures(tmp_path / "missing")
    with pytest.raises(GraphError, match="not a SavedModel"):
        saved_model_signatures(tmp_path)
    (tmp_path / "saved_model.pb").write_bytes(b"\xff\xfe not a protobuf \x00\x01" * 7)
    with pytest.raises(GraphError, match="not a readable SavedModel"):
        saved_model_signatures(tmp_path)


def test_load_model_reports_the_signature(two_sig_dir):
    assert load_model(two_sig_dir).signature == "serving_default"
    other = load_model(two_sig_dir, signature="other")
    assert other.signature == "other"
    ops = {n.op for n in other.graph_def.node}
    assert "Sigmoid" in ops and "MatMul" not in ops


# ---------------------------------------------------------------------- GUI
class ScriptedAsk:
    """Stands in for the surgery controller's Asker: scripted ``choose`` answers."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked = []

    def choose(self, title, label, items):
        self.asked.append((label, list(items)))
        assert self.answers, f"unexpected question: {label}"
        return self.answers.pop(0)

    def question(self, title, text, choices):  # no unsaved changes in these tests
        raise AssertionError(f"unexpected question: {text}")


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    w = make_window(qtbot, tmp_path, monkeypatch)
    return w


def _open(qtbot, w, path, **kw):
    with qtbot.waitSignal(w.document_opened, timeout=60_000):
        assert w.open_model(str(path), **kw) is not None
    QApplication.processEvents()
    return w.document


def test_asks_and_opens_the_chosen_signature(qtbot, win, two_sig_dir):
    ask = win.surgery.controller.ask = ScriptedAsk("other")
    doc = _open(qtbot, win, two_sig_dir)
    label, items = ask.asked[0]
    assert items == ["serving_default", "other"]  # the default is offered first
    assert "2 signatures" in label
    ops = set(doc.graph.op_histogram())
    assert "Sigmoid" in ops and "MatMul" not in ops and "Relu" not in ops
    assert win.signature == "other"
    assert "(other)" in win.windowTitle()

    # the default signature is a different graph
    ask.answers.append("serving_default")
    doc2 = _open(qtbot, win, two_sig_dir)
    ops2 = set(doc2.graph.op_histogram())
    assert "MatMul" in ops2 and "Relu" in ops2 and "Sigmoid" not in ops2
    assert "(serving_default)" in win.windowTitle()


def test_cancel_opens_nothing_and_keeps_the_open_model(qtbot, win, two_sig_dir, tmp_path,
                                                       tf1_graph):
    gd, _, _ = tf1_graph
    pb = tmp_path / "tf1.pb"
    save_graph(gd, pb)
    doc = _open(qtbot, win, pb)
    assert win.signature is None and "(" not in win.windowTitle().split("—")[0]
    ask = win.surgery.controller.ask = ScriptedAsk(None)  # the user pressed Cancel
    assert win.open_model(str(two_sig_dir)) is None
    assert ask.asked and not ask.answers
    qtbot.wait(50)
    assert win.document is doc and win._load_worker is None
    assert "tf1.pb" in win.windowTitle()
    assert "cancelled" in win.statusBar().currentMessage().lower()


def test_unknown_scripted_answer_is_a_clear_error(qtbot, win, two_sig_dir):
    win.surgery.controller.ask = ScriptedAsk("nope")
    assert win.open_model(str(two_sig_dir)) is None
    assert "no signature 'nope'" in win.last_error and win.document is None


def test_single_signature_opens_without_asking(qtbot, win, one_sig_dir):
    win.surgery.controller.ask = ScriptedAsk()  # any question fails the test
    doc = _open(qtbot, win, one_sig_dir)
    assert "Tanh" in doc.graph.op_histogram()
    assert win.signature == "only" and "(only)" in win.windowTitle()


def test_explicit_signature_skips_the_question(qtbot, win, two_sig_dir):
    win.surgery.controller.ask = ScriptedAsk()
    doc = _open(qtbot, win, two_sig_dir, signature="other")
    assert "Sigmoid" in doc.graph.op_histogram()
    assert "signature 'other'" in win.statusBar().currentMessage()


def test_open_folder_menu_uses_a_folder_dialog(qtbot, win, two_sig_dir, monkeypatch):
    from PySide6.QtWidgets import QFileDialog
    seen = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: seen.append(a) or str(two_sig_dir)))
    win.surgery.controller.ask = ScriptedAsk("other")
    assert win.open_folder_action in win.file_menu.actions()
    with qtbot.waitSignal(win.document_opened, timeout=60_000):
        win.open_folder_action.trigger()
    assert seen and win.signature == "other"


def test_cli_signature_option_is_checked(two_sig_dir, tmp_path, capsys):
    from surgeon_gui.ui.app import main
    assert main([str(two_sig_dir), "--signature", "nope",
                 "--screenshot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "no signature 'nope'" in err and "other, serving_default" in err
    pb = tmp_path / "g.pb"
    pb.write_bytes(b"")
    assert main([str(pb), "--signature", "other"]) == 2
    assert "applies to a SavedModel folder" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_screenshot_with_signature(two_sig_dir, tmp_path):
    import os
    import subprocess
    import sys
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TF_CPP_MIN_LOG_LEVEL="2",
               GRAPH_SURGEON_SETTINGS_DIR=str(tmp_path / "settings"))
    r = subprocess.run([sys.executable, "-m", "surgeon_gui.ui.app", str(two_sig_dir),
                        "--signature", "other", "--screenshot", str(out), "--size", "800x600"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 1000


def test_scripted_run_never_asks(two_sig_dir, one_sig_dir, tmp_path):
    from surgeon_gui.ui.app import _default_signature
    assert _default_signature(str(two_sig_dir)) == "serving_default"
    assert _default_signature(str(one_sig_dir)) == "only"
    assert _default_signature(str(tmp_path)) is None  # not a SavedModel: nothing to pick
