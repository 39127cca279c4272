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
