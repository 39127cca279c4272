"""Open with Checkpoint's guess of the outputs a training graph serves (issue: musicnn's guess
offered the loss and a tf.nn.moments variance next to model/Sigmoid)."""
import numpy as np
import pytest

from surgeon_gui.core.model import real_models as rm
from surgeon_gui.core.model.io import guess_inference_outputs, load_model, save_graph


def _training_graph(heads: str):
    """A TF1 training graph as people save it: placeholders for the input, the labels and an
    is_training flag (a v1 ``tf.cond`` dropout), dense layers on ``get_variable``,
    ``tf.nn.moments`` with only its mean read, a ``tf.compat.v1.losses`` loss plus L2
    minimized by Adam. ``heads``: "one" (sigmoid), "two" (boxes and scores, each with its own
    weights), "argmax" (softmax probabilities and the argmax class of the same logits)."""
    import tensorflow as tf
    v1 = tf.compat.v1
    g = tf.Graph()
    rng = np.random.default_rng(0)

    def dense(h, n, scope):
        with v1.variable_scope(scope):
            w = v1.get_variable("kernel", initializer=rng.normal(
                0, 0.3, [int(h.shape[-1]), n]).astype(np.float32))
            b = v1.get_variable("bias", initializer=np.zeros(n, np.float32))
            return tf.nn.bias_add(tf.matmul(h, w), b)

    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 8], name="x")
        labels = v1.placeholder(tf.float32, [None, 3], name="labels")
        training = v1.placeholder(tf.bool, [], name="is_training")
        with v1.variable_scope("model"):
            h = tf.nn.relu(dense(x, 16, "dense"))
            mean, _variance = tf.nn.moments(h, axes=[0])  # the variance: nobody reads it
            h = v1.cond(training, lambda: tf.nn.dropout(h - mean, rate=0.5),
                        lambda: tf.identity(h - mean), name="dropout")
            logits = dense(h, 3, "dense_1")
            outs = {"one": lambda: [tf.sigmoid(logits, name="Sigmoid")],
                    "two": lambda: [tf.sigmoid(logits, name="scores"),
                                    tf.identity(dense(h, 4, "box"), name="boxes")],
                    "argmax": lambda: [tf.nn.softmax(logits, name="probs"),
                                       tf.argmax(logits, 1, name="classes")]}[heads]()
        with v1.variable_scope("metrics"):
            loss = v1.losses.sigmoid_cross_entropy(labels, logits)
            if heads == "two":
                loss += tf.reduce_mean(tf.square(g.get_tensor_by_name("model/box/BiasAdd:0")))
            loss = loss + 1e-4 * tf.add_n([tf.nn.l2_loss(v) for v in v1.trainable_variables()])
        v1.train.AdamOptimizer(1e-3).minimize(loss)
        v1.train.Saver()
    return g.as_graph_def(), [o.op.name for o in outs]


def test_the_one_output_of_a_training_graph():
    gd, (want,) = _training_graph("one")
    guess = guess_inference_outputs(gd)
    assert guess.sure and guess.outputs == [want]
    why = dict(guess.left_out)
    assert "gradients are taken of it" in why["metrics/add"]
    assert "side result on the way to model/Sigmoid" in why["model/moments/Squeeze_1"]
    assert "Left out:\n  • metrics/add: the loss" in guess.message()


@pytest.mark.parametrize("heads", ["two", "argmax"])
def test_several_outputs_unsure_and_all_offered(heads):
    gd, want = _training_graph(heads)
    guess = guess_inference_outputs(gd)
    assert not guess.sure and sorted(guess.outputs) == sorted(want)
    assert guess.message().startswith(f"Not sure: {len(want)} nodes look like outputs")


def test_musicnn_guess_is_the_sigmoid():
    """The real models: musicnn's loss and moments variance are left out, model/Sigmoid is
    the one answer, and a CLI freeze without --outputs suggests it."""
    for which in ("MTT_musicnn", "MTT_vgg"):
        gd, _folder = rm.musicnn_training_graph(which)
        guess = guess_inference_outputs(gd)
        assert guess.sure and guess.outputs == ["model/Sigmoid"], (which, guess)
        assert "metrics/add" in dict(guess.left_out)


def test_freezing_without_outputs_names_the_guess(tmp_path):
    from surgeon_gui.core.model.graph import GraphError
    gd, _ = _training_graph("one")
    save_graph(gd, tmp_path / "train.pb")
    with pytest.raises(GraphError, match="it looks like --outputs model/Sigmoid"):
        load_model(tmp_path / "train.pb", checkpoint=str(tmp_path))


class _Ask:
    """Scripted answers for opening a graph with variables: yes to freezing it, the
    checkpoint, then the outputs as offered (every question and offer is recorded)."""

    def __init__(self, paths):
        self.paths, self.asked, self.offered, self.saves = list(paths), [], [], []

    def question(self, title, text, choices):
        self.asked.append(text)
        return "yes"

    def open_path(self, title, filters, start=""):
        return self.paths.pop(0)

    def text(self, title, label, default=""):
        self.offered.append((label, default))
        return default

    def save_path(self, title, start, filters):
        self.saves.append(start)
        return None

    def show_text(self, title, text):
        self.shown = text


def test_open_musicnns_meta_offers_the_sigmoid_and_says_why(qtbot, tmp_path, monkeypatch):
    """Opening musicnn's ``.meta`` as a new user does: the question names the model's folder,
    the guess is model/Sigmoid with what was left out and why, and the files suggested from
    it are named after the folder (".meta_optimized.pb" was a hidden file)."""
    from support import make_window
    folder = rm.package_dir("musicnn") / "MTT_musicnn"
    w = make_window(qtbot, tmp_path, monkeypatch)
    ask = w.surgery.controller.ask = _Ask([str(folder / "checkpoint")])
    w.open_model(str(folder / ".meta"))
    qtbot.waitUntil(lambda: w.document is not None and w._load_worker is None
                    and w.document.checkpoint is not None, timeout=60_000)
    assert ask.asked[0].startswith("MTT_musicnn/.meta holds 150 variable(s)")
    ((label, offered),) = ask.offered
    assert offered == "model/Sigmoid"
    assert label.startswith("Guessed model/Sigmoid.\nLeft out:\n  • metrics/add: the loss")
    assert w.document.graph.outputs == ["model/Sigmoid"]
    assert w.windowTitle() == "MTT_musicnn/.meta[*] — Graph Surgeon"   # was ".meta[*] — …"
    ctl = w.surgery.controller
    assert ctl.default_save_path() == str(folder / "MTT_musicnn_optimized.pb")
    assert f" {folder / 'MTT_musicnn_optimized.pb'} " in ctl.cli_command()
    w.surgery.passes.select_pass("inference")
    with qtbot.waitSignal(w.surgery.passes.idle, timeout=120_000):
        w.surgery.passes.apply_all_button.click()
    ctl.export_recipe()
    assert ask.saves == [str(folder / "MTT_musicnn.recipe.json")]
    # Show CLI Command…: one option a line (the .meta path ran the one line off the dialog)
    ctl.show_cli()
    import shlex
    lines = ask.shown.splitlines()
    assert lines[0] == f"surgeon optimize {folder / '.meta'} {folder / 'MTT_musicnn_optimized.pb'} \\"
    assert lines[1] == f"    --checkpoint {folder} \\"
    assert shlex.split(ask.shown.replace("\\\n", "")) == shlex.split(ctl.cli_command())


def test_info_on_a_training_graph_says_what_to_freeze(tmp_path, capsys):
    """``surgeon info`` on a graph with variables listed its hundreds of training sinks as
    "outputs"; it now counts them and names the output to freeze."""
    from surgeon_gui import cli
    folder = rm.package_dir("musicnn") / "MTT_musicnn"
    assert cli.main(["info", str(folder / ".meta")]) == 0
    text = capsys.readouterr().out
    outputs = next(line for line in text.splitlines() if line.startswith("  outputs:"))
    assert "sinks of a training graph" in outputs and len(outputs) < 300
    assert "  variables:  150, their values in a checkpoint" in text
    assert "  the model's output looks like: model/Sigmoid\n" in text
    assert cli.main(["info", str(folder / ".meta"), "--json"]) == 0
    import json
    assert "model/Sigmoid" in json.loads(capsys.readouterr().out)["outputs"]
