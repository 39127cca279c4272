"""Untrusted input and destructive writes (issue 10): opening a model never runs its code, no
write destroys a file, no input crashes or hangs the app.

The hostile files are built by tests/hostile/make_hostile.py into a temporary folder.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import make_window

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "resources" / "examples"
sys.path.insert(0, str(Path(__file__).resolve().parent / "hostile"))


@pytest.fixture(scope="session")
def hostile(tmp_path_factory):
    from make_hostile import build
    out = tmp_path_factory.mktemp("hostile")
    files = build(out)
    files["dir"] = out
    return files


def surgeon(*args, cwd=None, timeout=180):
    """Run the CLI in a child process: (exit code, stdout, stderr)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "surgeon_gui", *map(str, args)], cwd=cwd or ROOT,
                       capture_output=True, text=True, timeout=timeout, env=env)
    return r.returncode, r.stdout, r.stderr


def our_lines(stderr: str) -> list[str]:
    """stderr without TensorFlow's start-up chatter (CUDA/oneDNN notices)."""
    noise = ("oneDNN", "absl::", "cpu_feature_guard", "To enable the following", "cuda",
             "CUDA", "TF-TRT", "computation placer", "E0000", "W0000", "I0000")
    return [ln for ln in stderr.splitlines() if ln.strip() and not any(n in ln for n in noise)]


def one_clear_line(stderr: str) -> str:
    lines = our_lines(stderr)
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in lines[0], stderr
    assert lines[0].startswith("surgeon: "), lines
    return lines[0]


# ---------------------------------------------------------------------- 2. one write path
def test_write_refuses_overwrite_and_keeps_file(tmp_path):
    from surgeon_gui.core.model.files import OverwriteRefused, write_file
    p = tmp_path / "a.pb"
    p.write_bytes(b"precious")
    with pytest.raises(OverwriteRefused, match="exists; not overwriting"):
        write_file(p, b"new")
    assert p.read_bytes() == b"precious"
    write_file(p, b"new", overwrite=True)
    assert p.read_bytes() == b"new"


def test_write_refuses_same_file_through_a_link(tmp_path):
    from surgeon_gui.core.model.files import (
        WriteRefused,
        check_destinations,
        write_files,
    )
    src = tmp_path / "model.pb"
    src.write_bytes(b"model")
    link = tmp_path / "link.pb"
    link.symlink_to(src)
    with pytest.raises(WriteRefused, match="is the input"):
        check_destinations([link], inputs=[src], overwrite=True)
    hard = tmp_path / "hard.pb"
    os.link(src, hard)
    with pytest.raises(WriteRefused, match="is the input"):
        check_destinations([hard], inputs=[src], overwrite=True)
    with pytest.raises(WriteRefused, match="two outputs"):
        write_files({tmp_path / "o.pb": b"1", tmp_path / "sub" / ".." / "o.pb": b"2"})
    assert not (tmp_path / "o.pb").exists()


def test_write_checks_every_destination_first(tmp_path):
    from surgeon_gui.core.model.files import WriteRefused, write_files
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(WriteRefused, match="no permission"):
            write_files({tmp_path / "out.pb": b"graph", locked / "r.json": b"{}"})
        assert not (tmp_path / "out.pb").exists()
    finally:
        locked.chmod(0o700)


def test_write_into_unwritable_folder_checked_even_as_root(tmp_path):
    from surgeon_gui.core.model.files import WriteRefused, write_files
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(WriteRefused):
        write_files({tmp_path / "out.pb": b"graph", not_a_folder / "r.json": b"{}"})
    assert not (tmp_path / "out.pb").exists()


def test_force_onto_symlink_keeps_the_link_and_replaces_its_target(tmp_path):
    from surgeon_gui.core.model.files import write_file
    target = tmp_path / "real.pb"
    target.write_bytes(b"old")
    link = tmp_path / "link.pb"
    link.symlink_to(target)
    write_file(link, b"new", overwrite=True)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new"


def test_failed_write_leaves_no_temp_and_stale_temp_is_removed(tmp_path, monkeypatch):
    from surgeon_gui.core.model import files
    p = tmp_path / "m.pb"
    p.write_bytes(b"old")

    def boom(*a):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError):
        files.write_file(p, b"x" * 1000, overwrite=True)
    monkeypatch.undo()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m.pb"]
    assert p.read_bytes() == b"old"
    # a temp left by a writer that was killed (pid no longer running)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".m.pb.{dead.pid}.abc123.tmp"
    stale.write_bytes(b"\0" * 4096)
    files.write_file(p, b"new", overwrite=True)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m.pb"]


def test_killed_save_temp_is_cleaned_by_next_save(tmp_path):
    """A real kill: a child writes through the write path and is SIGKILLed mid-write."""
    p = tmp_path / "big.pb"
    code = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from surgeon_gui.core.model import files
real = os.fsync
def hang(fd):
    print('writing', flush=True)
    import time; time.sleep(60)
files.os.fsync = hang
files.write_file({str(p)!r}, b'x' * 10_000_000)
"""
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    leftovers = [x for x in tmp_path.iterdir() if x.name.endswith(".tmp")]
    assert len(leftovers) == 1 and not p.exists()
    from surgeon_gui.core.model.files import write_file
    write_file(p, b"graph")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["big.pb"]


def test_optimize_save_recipe_onto_output_or_input_refused(tmp_path):
    src = tmp_path / "in.pbtxt"
    src.write_bytes((EXAMPLES / "conv_bias_bn.pbtxt").read_bytes())
    before = src.read_bytes()
    out = tmp_path / "out.pb"
    code, _, err = surgeon("optimize", src, out, "--save-recipe", out)
    assert code == 2 and "two outputs cannot be the same file" in one_clear_line(err)
    assert not out.exists()
    code, _, err = surgeon("optimize", src, out, "--save-recipe", src, "--force")
    assert code == 2 and "is the input" in one_clear_line(err)
    assert src.read_bytes() == before and not out.exists()
    locked = tmp_path / "ro"
    locked.mkdir()
    code, _, err = surgeon("optimize", src, out, "--save-recipe", locked / "x" / "r.json")
    assert code == 0, err  # a folder that can be created is fine
    (tmp_path / "afile").write_text("x")
    out2 = tmp_path / "out2.pb"
    code, _, err = surgeon("optimize", src, out2, "--save-recipe", tmp_path / "afile" / "r.json")
    assert code == 2 and not out2.exists(), err
    one_clear_line(err)


# ---------------------------------------------------------------------- 1. no code runs
def test_fold_constants_never_evaluates_debug_identity(hostile):
    from surgeon_gui.core.model.io import load_model
    from surgeon_gui.core.passes.pipeline import run_pass
    g = load_model(hostile["debug_identity"]).graph()
    result = run_pass(g, "fold_constants", {})
    dump = hostile["dir"] / "debug_dump"
    assert not dump.exists()
    assert "dbg" in {n.name for n in result.graph_def.node}


def test_pure_ops_allowlist_excludes_io_and_state():
    from surgeon_gui.core.model.consteval import may_evaluate
    from surgeon_gui.core.model.ops import PURE_OPS
    for op in ("DebugIdentity", "DebugIdentityV2", "Print", "PrintV2", "WriteFile", "Save",
               "SaveV2", "Restore", "RestoreV2", "ReadFile", "ImmutableConst", "PyFunc",
               "EagerPyFunc", "FIFOQueueV2", "QueueDequeueV2", "RandomUniform",
               "StatelessRandomUniform", "VarHandleOp", "ReadVariableOp", "Assert"):
        assert op not in PURE_OPS and may_evaluate(op), op
    for op in ("Add", "Conv2D", "Reshape", "Rsqrt", "FusedBatchNormV3"):
        assert op in PURE_OPS and may_evaluate(op) is None, op


# ---------------------------------------------------------------------- 6. recipes checked first
@pytest.mark.parametrize("name, expected", [
    ("nan_param", "NaN is not a JSON number"),
    ("string_param", "fold_constants.max_bytes takes a number, not \"lots\""),
    ("negative_param", "max_bytes takes a number of 0 or more, not -5"),
    ("huge_param", "more than the limit"),
    ("deep", "JSON nested 65 levels deep"),
    ("version_true", "recipe version True is not supported"),
    ("npy_dev_zero", "/dev/zero: is outside the recipe's folder"),
    ("npy_outside", "is outside the recipe's folder"),
    ("npy_absolute_outside", "is outside the recipe's folder"),
    ("npy_no_checksum", "needs its \"sha256\" checksum"),
    ("npy_wrong_checksum", "changed since the recipe was written"),
])
def test_recipe_refused_before_anything_runs(hostile, name, expected):
    from surgeon_gui.core.history.recipe import Recipe, RecipeError
    with pytest.raises(RecipeError) as e:
        Recipe.load(hostile[f"recipe_{name}"])
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_recipe_npy_outside_allowed_still_needs_regular_file(hostile):
    from surgeon_gui.core.history.recipe import Recipe, RecipeError
    r = Recipe.load(hostile["recipe_npy_outside"], allow_outside=True)
    assert r.steps[0].args["value"]["npy"] == str(hostile["npy_outside"].resolve())
    with pytest.raises(RecipeError, match="/dev/zero: is not a regular file"):
        Recipe.load(hostile["recipe_npy_dev_zero"], allow_outside=True)


def test_recipe_npy_relative_to_recipe_replays(hostile, tmp_path):
    """The .npy is found next to the recipe whatever the current folder, and applied."""
    from surgeon_gui.core.model.graph import const_value
    out = tmp_path / "o.pb"
    code, _, err = surgeon("optimize", hostile["debug_identity"], out, "--passes",
                           "strip_attributes", "--recipe", hostile["recipe_npy_inside_ok"],
                           cwd=tmp_path)
    assert code == 0, err
    from surgeon_gui.core.model.io import read_graph_def
    c = next(n for n in read_graph_def(out).node if n.name == "c")
    assert float(const_value(c)) == 3.0


def test_recipe_select_naming_no_match_is_refused(hostile, tmp_path):
    code, _, err = surgeon("optimize", hostile["debug_identity"], tmp_path / "o.pb",
                           "--recipe", hostile["recipe_select_nothing"])
    assert code == 2 and "\"select\" names no match here: no/such/match" in one_clear_line(err)
    assert not (tmp_path / "o.pb").exists()


def test_recipe_save_writes_npy_relative(tmp_path):
    import hashlib

    import numpy as np

    from surgeon_gui.core.history.recipe import Recipe
    np.save(tmp_path / "v.npy", np.ones(3, np.float32))
    digest = hashlib.sha256((tmp_path / "v.npy").read_bytes()).hexdigest()
    r = Recipe()
    r.add_edit("replace_const", {"node": "c", "value": {"npy": str(tmp_path / "v.npy"),
                                                        "sha256": digest}})
    r.save(tmp_path / "r.json")
    assert '"npy": "v.npy"' in (tmp_path / "r.json").read_text()
    assert r.steps[0].args["value"]["npy"] == str(tmp_path / "v.npy")  # in memory: unchanged
    assert Recipe.load(tmp_path / "r.json").steps[0].args["value"]["npy"] == \
        str((tmp_path / "v.npy").resolve())


# ---------------------------------------------------------------------- 1. no code runs (load)
@pytest.mark.parametrize("key, what", [
    ("h5_lambda", "Lambda layer 'payload'"),
    ("keras_lambda", "Lambda layer 'payload'"),
    ("keras_custom", "custom object 'system' from module 'os'"),
    ("savedmodel_init_writes", "WriteFile"),
])
def test_opening_never_runs_code_from_the_file(hostile, key, what):
    from surgeon_gui.core.model.io import load_model
    from surgeon_gui.core.model.trust import UntrustedCode
    marker = hostile["dir"] / "PWNED"
    with pytest.raises(UntrustedCode) as e:
        load_model(hostile[key])
    assert what in str(e.value) and "--trust-code" in str(e.value)
    assert not marker.exists()
    code, _, err = surgeon("info", hostile[key])
    assert code == 2 and what in one_clear_line(err)
    assert not marker.exists()


def test_trust_code_runs_it_only_when_asked(hostile, tmp_path):
    """With --trust-code the Lambda is a real Lambda: the marker proves the check can fail."""
    import shutil
    src = tmp_path / "lambda.h5"
    shutil.copy(hostile["h5_lambda"], src)
    marker = hostile["dir"] / "PWNED"
    code, out, err = surgeon("info", src, "--trust-code")
    assert code == 0, err
    assert "(keras)" in out and marker.exists()
    marker.unlink()


def test_plain_keras_and_savedmodel_still_open(hostile):
    from surgeon_gui.core.model.io import load_model
    assert load_model(hostile["keras_ok"]).kind == "keras"
    assert load_model(hostile["h5_ok"]).kind == "keras"
    m = load_model(hostile["savedmodel_ok"])
    assert m.kind == "savedmodel" and "MatMul" in m.graph().op_histogram()


# ---------------------------------------------------------------------- 3./7. failed loads
@pytest.mark.parametrize("key, expected", [
    ("keras_empty", "the file is empty"),
    ("h5_empty", "the file is empty"),
    ("keras_truncated", "truncated or corrupt"),
    ("h5_truncated", "truncated or corrupt"),
    ("savedmodel_bad_fingerprint", "fingerprint.pb is corrupt"),
    ("bad_enum", "node x: attr dtype holds DataType 999"),
])
def test_broken_files_one_clear_line(hostile, key, expected):
    code, out, err = surgeon("info", hostile[key])
    assert code == 2 and expected in one_clear_line(err)


@pytest.mark.slow
def test_failed_keras_load_never_crashes_the_gui(hostile, tmp_path):
    """5 runs each of the app on empty and truncated Keras files: exit 1 with one line, never
    a signal (the SIGSEGV of issue 10.3)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT),
               TF_CPP_MIN_LOG_LEVEL="3")
    for key in ("keras_empty", "h5_empty", "keras_truncated", "h5_truncated", "h5_lambda"):
        for _ in range(5 if key != "h5_lambda" else 1):
            r = subprocess.run([sys.executable, "-m", "surgeon_gui.ui.app", str(hostile[key]),
                                "--screenshot", str(tmp_path / "x.png")], capture_output=True,
                               text=True, timeout=180, env=env)
            assert r.returncode == 1, (key, r.returncode, r.stderr)
            lines = our_lines(r.stderr)
            assert len(lines) == 1 and lines[0].startswith("surgeon-gui: error:"), r.stderr
    assert not (hostile["dir"] / "PWNED").exists()


# ---------------------------------------------------------------------- 5. invalid graphs
@pytest.mark.parametrize("key, expected", [
    ("invalid_missing_attr", "node y (Relu): missing attribute(s) T"),
    ("invalid_const_no_value", "node c: a Const without a value"),
    ("invalid_dtype_mismatch", "incompatible with expected float"),
    ("invalid_port_out_of_range", "node y reads 'c:3', but Const has 1 output(s)"),
])
def test_info_lists_what_tensorflow_rejects(hostile, key, expected):
    code, out, err = surgeon("info", hostile[key], "--check")
    assert code == 0, err
    assert "TensorFlow would reject this graph" in out and expected in out


def test_unregistered_op_still_opens_for_inspection(hostile, tmp_path):
    code, out, err = surgeon("info", hostile["invalid_unknown_op"], "--check")
    assert code == 0 and "does not register (cannot run): NoSuchOpAnywhere" in out
    assert "problems" not in out
    code, _, err = surgeon("optimize", hostile["invalid_missing_attr"], tmp_path / "o.pb")
    assert code == 2 and "cannot import" in one_clear_line(err)
    assert not (tmp_path / "o.pb").exists()


# ---------------------------------------------------------------------- GUI
class Answers:
    """Scripted answers to the window's questions (records what was asked)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked = []

    def question(self, title, text, choices):
        self.asked.append(text)
        return self.answers.pop(0)

    def choose(self, title, label, items):
        raise AssertionError(label)


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    w = make_window(qtbot, tmp_path, monkeypatch)
    return w


def test_gui_asks_before_running_code_and_refusing_runs_nothing(qtbot, win, hostile):
    ask = win.surgery.controller.ask = Answers("no")
    with qtbot.waitSignal(win.load_failed, timeout=60_000) as sig:
        win.open_model(str(hostile["h5_lambda"]))
    assert "Lambda layer 'payload'" in ask.asked[0] and "trust" in ask.asked[0]
    assert "would run code" in sig.args[0]
    assert win.document is None and not (hostile["dir"] / "PWNED").exists()


def test_gui_refusal_after_no_is_worded_for_the_gui(qtbot, win, hostile):
    """After No, the message says what to do in the app (one line, no CLI flag, no nested brackets)."""
    win.surgery.controller.ask = Answers("no")
    with qtbot.waitSignal(win.load_failed, timeout=60_000) as sig:
        win.open_model(str(hostile["keras_lambda"]))
    msg = sig.args[0]
    assert "would run code" in msg and "Lambda layer" in msg
    assert "--trust-code" not in msg and "\n" not in msg.strip()
    assert "answer Yes" in msg and "Run code from this file?" in msg
    assert win.document is None and not (hostile["dir"] / "PWNED").exists()


def test_gui_lists_problems_of_an_invalid_graph(qtbot, win, hostile):
    with qtbot.waitSignal(win.document_opened, timeout=60_000):
        win.open_model(str(hostile["invalid_const_no_value"]))
    qtbot.waitUntil(lambda: win.last_error is not None, timeout=5000)
    assert "TensorFlow would reject" in win.last_error
    assert "node c: a Const without a value" in win.last_error
    assert win.document is not None


def test_gui_exception_hook_shows_a_dialog_and_keeps_running(qtbot, win):
    """An exception in a slot (as the bad-enum one was) gives a dialog; the app goes on."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QMessageBox

    from surgeon_gui.ui.app import install_exception_hook
    restore = install_exception_hook(lambda: win)
    try:
        def boom():
            raise ValueError("999 is not a valid DataType")
        QTimer.singleShot(0, boom)
        qtbot.waitUntil(lambda: any(isinstance(b, QMessageBox) and b.isVisible()
                                    and "999 is not a valid DataType" in b.text()
                                    for b in win.findChildren(QMessageBox)), timeout=5000)
    finally:
        restore()
    assert win.isVisible()
    with qtbot.waitSignal(win.document_opened, timeout=60_000):  # still works
        win.open_model(str(EXAMPLES / "conv_bias_bn.pbtxt"))


def test_screenshot_refuses_to_overwrite(tmp_path):
    out = tmp_path / "shot.png"
    out.write_bytes(b"precious")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "surgeon_gui.ui.app",
                        str(EXAMPLES / "conv_bias_bn.pbtxt"), "--screenshot", str(out)],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 2 and "exists; not overwriting it" in r.stderr
    assert out.read_bytes() == b"precious"


def test_enter_at_the_run_code_question_refuses(qtbot, win, hostile):
    """The real question box: Enter gives its default answer, which must be No (Qt's own
    default is the first accepting button, Yes: run the file's code)."""
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox
    seen = []

    def press_enter():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(50, press_enter)
            return
        seen.append((box.text(), box.defaultButton().text()))
        qtbot.keyClick(box, Qt.Key_Return)

    QTimer.singleShot(50, press_enter)
    with qtbot.waitSignal(win.load_failed, timeout=60_000) as sig:
        win.open_model(str(hostile["keras_lambda"]))
    assert seen and "would run code" in seen[0][0] and seen[0][1].replace("&", "") == "No"
    assert "would run code" in sig.args[0]
    assert win.document is None and not (hostile["dir"] / "PWNED").exists()


@pytest.mark.parametrize("choices, expected", [(["yes", "no"], "no"),
                                               (["overwrite", "cancel"], "cancel"),
                                               (["save", "discard", "cancel"], "save")])
def test_enter_gives_the_safe_answer(qtbot, choices, expected):
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication
    from surgeon_gui.ui.surgery import Asker
    QTimer.singleShot(50, lambda: qtbot.keyClick(QApplication.activeModalWidget(), Qt.Key_Return))
    assert Asker(None).question("Overwrite?", "x exists. Overwrite it?", choices) == expected
