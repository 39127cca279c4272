"""Fuzz: a few hundred seeded mutations of the bundled examples, and the hostile files, through
``surgeon info --check`` and ``surgeon optimize``, each case in a forked child.

Mutations: truncations, bit flips, overwritten byte runs, and semantic faults made on the parsed
GraphDef (a DataType TensorFlow does not know, a missing attribute, a Const without a value or
with a value of the wrong size, an input naming a missing node or a port out of range, duplicate
names, a cycle, an unknown op, absurd shapes) plus mutated recipes. The parent imports
TensorFlow once (no session) so the children start fast; a child that dies by a signal is a
crash, one still running after its time limit is a hang (killed).

Pass criteria, for every case: no crash, no hang, exit 0 (success) or 2 (refusal), and a
refusal is exactly one line on stderr, ours (``surgeon: ...``), with no traceback and no
"internal error". The figures are printed (``-s``) and kept in tests/fuzz_figures.json by
``python tests/test_fuzz.py``.
"""
from __future__ import annotations

import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "resources" / "examples"
SEED = 20261126
N_BYTE_CASES = 200
N_SEMANTIC_CASES = 120
N_RECIPE_CASES = 40
N_OPTIMIZE = 30            # cases also run through `surgeon optimize` (these run TensorFlow)
INFO_TIMEOUT_S = 30
OPTIMIZE_TIMEOUT_S = 30
FRESH_TIMEOUT_S = 180      # the re-run of a forked child that timed out (see run_case)

_NOISE = ("oneDNN", "absl::", "cpu_feature_guard", "To enable the following", "cuda", "CUDA",
          "TF-TRT", "computation placer", "E0000", "W0000", "I0000", "WARNING:tensorflow",
          "Instructions for updating", "warn(")


# ---------------------------------------------------------------------- the generator
def _examples() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(EXAMPLES.iterdir())
            if p.suffix in (".pb", ".pbtxt")}


def byte_mutations(rng: random.Random, n: int):
    """(name, suffix, bytes): truncations, bit flips and overwritten runs of the examples."""
    ex = _examples()
    names = sorted(ex)
    for i in range(n):
        name = rng.choice(names)
        data = bytearray(ex[name])
        kind = rng.choice(("truncate", "bitflip", "bitflip", "overwrite"))
        if kind == "truncate":
            data = data[: rng.randrange(0, len(data))]
        elif kind == "bitflip":
            for _ in range(rng.choice((1, 2, 4, 16))):
                k = rng.randrange(len(data))
                data[k] ^= 1 << rng.randrange(8)
        else:
            k = rng.randrange(len(data))
            run = rng.randrange(1, 64)
            data[k:k + run] = bytes(rng.randrange(256) for _ in range(run))
        yield f"{i:03d}_{kind}_{name}", Path(name).suffix, bytes(data)


def semantic_mutations(rng: random.Random, n: int):
    """(name, ".pb", bytes): a parsed example with one fault a real tool could make."""
    from google.protobuf import text_format

    from surgeon_gui.core.model.graph import GraphDef
    graphs = {}
    for name, data in _examples().items():
        gd = GraphDef()
        if name.endswith(".pbtxt"):
            text_format.Parse(data.decode(), gd)
        else:
            gd.ParseFromString(data)
        graphs[name] = gd
    faults = ("bad_dtype", "drop_attr", "const_no_value", "const_short_content", "bad_port",
              "missing_input", "duplicate_name", "cycle", "unknown_op", "huge_shape",
              "negative_dim", "empty_name", "self_loop", "bad_list_type")
    names = sorted(graphs)
    for i in range(n):
        name = rng.choice(names)
        gd = GraphDef()
        gd.CopyFrom(graphs[name])
        fault = faults[i % len(faults)]
        nodes = list(gd.node)
        node = rng.choice(nodes)
        consts = [x for x in nodes if x.op == "Const"]
        with_inputs = [x for x in nodes if x.input] or nodes
        if fault == "bad_dtype":
            typed = [(x, k) for x in nodes for k, v in x.attr.items()
                     if v.WhichOneof("value") == "type"]
            x, k = rng.choice(typed)
            x.attr[k].type = rng.choice((999, 30, 1000000, -1 & 0x7FFFFFFF))
        elif fault == "drop_attr":
            have = [x for x in nodes if x.attr]
            x = rng.choice(have)
            del x.attr[rng.choice(sorted(x.attr))]
        elif fault == "const_no_value":
            del rng.choice(consts).attr["value"]
        elif fault == "const_short_content":
            big = [c for c in consts if c.attr["value"].tensor.tensor_content] or consts
            t = rng.choice(big).attr["value"].tensor
            t.tensor_content = t.tensor_content[: len(t.tensor_content) // 2 + 1]
        elif fault == "bad_port":
            x = rng.choice(with_inputs)
            j = rng.randrange(len(x.input)) if x.input else None
            if j is not None and not x.input[j].startswith("^"):
                x.input[j] = x.input[j].split(":")[0] + f":{rng.choice((3, 17, 65535))}"
        elif fault == "missing_input":
            x = rng.choice(with_inputs)
            if x.input:
                x.input[rng.randrange(len(x.input))] = "no/such/node"
        elif fault == "duplicate_name":
            a, b = rng.sample(nodes, 2)
            b.name = a.name
        elif fault == "cycle":
            a = rng.choice(with_inputs)
            readers = [x for x in nodes if any(t.split(":")[0].lstrip("^") == a.name
                                               for t in x.input)]
            if readers and a.input:
                a.input[0] = rng.choice(readers).name
        elif fault == "unknown_op":
            node.op = rng.choice(("NoSuchOp", "DebugIdentity", "WriteFile", "PyFunc", "", "Ä"))
        elif fault == "huge_shape":
            c = rng.choice(consts)
            t = c.attr["value"].tensor
            del t.tensor_shape.dim[:]
            for d in (1 << 20, 1 << 20, 1 << 10):
                t.tensor_shape.dim.add().size = d
            t.tensor_content = b""
        elif fault == "negative_dim":
            c = rng.choice(consts)
            c.attr["value"].tensor.tensor_shape.dim.add().size = -7
        elif fault == "empty_name":
            node.name = ""
        elif fault == "self_loop":
            x = rng.choice(with_inputs)
            if x.input:
                x.input[0] = x.name
        elif fault == "bad_list_type":
            x = rng.choice(nodes)
            x.attr["_fuzz"].list.type.append(999)
        yield f"{i:03d}_{fault}_{name}", ".pb", gd.SerializeToString()


def recipe_mutations(rng: random.Random, n: int):
    """(name, ".json", bytes): a real recipe with bytes or values broken."""
    base = {"format": "graph-surgeon-recipe", "version": 1, "inputs": None, "outputs": None,
            "steps": [{"pass": "remove_dropout", "params": {}, "select": None},
                      {"pass": "fold_constants", "params": {"max_bytes": 1000000},
                       "select": None},
                      {"edit": "remove_node", "args": {"node": "probs"}}]}
    values = (None, True, -1, 1e308, "x" * 50, [], {}, [[[]]], 2 ** 70, -0.0, "NaN")
    for i in range(n):
        d = json.loads(json.dumps(base))
        kind = rng.choice(("bytes", "value", "key"))
        if kind == "value":
            step = rng.choice(d["steps"])
            field = rng.choice(sorted(step))
            step[field] = rng.choice(values)
            text = json.dumps(d)
        elif kind == "key":
            d[rng.choice(("format", "version", "steps", "inputs"))] = rng.choice(values)
            text = json.dumps(d)
        else:
            raw = bytearray(json.dumps(d).encode())
            for _ in range(rng.choice((1, 3))):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            text = raw.decode("utf-8", "replace")
        yield f"{i:03d}_recipe_{kind}", ".json", text.encode()


# ---------------------------------------------------------------------- running a case
def run_in_child(argv: list[str], timeout: float) -> dict:
    """Run ``surgeon ARGV`` in a forked child: exit code or signal, hang, and its stderr."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:  # the child
        code = 99
        try:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            sys.stdout = os.fdopen(os.dup(1), "w")
            sys.stderr = os.fdopen(os.dup(2), "w")
            from surgeon_gui.cli import main
            code = main(argv)
        except BaseException:  # noqa: BLE001 - reported as a traceback, a failure
            import traceback
            traceback.print_exc()
            code = 99
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    t0 = time.monotonic()
    status = None
    while time.monotonic() - t0 < timeout:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
        time.sleep(0.005)
    hang = status is None
    if hang:
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    err.seek(0)
    stderr = err.read().decode("utf-8", "replace")
    out.close()
    err.close()
    return dict(hang=hang, signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None, stderr=stderr,
                seconds=time.monotonic() - t0)


def run_fresh(argv: list[str], timeout: float) -> dict:
    """Run ``surgeon ARGV`` in a new interpreter (fork + exec): a signal is still a crash."""
    import subprocess
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-m", "surgeon_gui", *argv], capture_output=True,
                           text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        return dict(hang=True, signal=None, code=None, seconds=time.monotonic() - t0,
                    stderr=(e.stderr or b"").decode("utf-8", "replace")
                    if isinstance(e.stderr, bytes) else (e.stderr or ""))
    return dict(hang=False, signal=-r.returncode if r.returncode < 0 else None,
                code=r.returncode if r.returncode >= 0 else None, stderr=r.stderr,
                seconds=time.monotonic() - t0)


def run_case(argv: list[str], timeout: float, stats: dict) -> dict:
    """A forked child of this process (TensorFlow already imported: children start fast).

    This process never runs TensorFlow itself (only imports it), so its children start
    clean; still, should a child that runs TensorFlow sessions time out, it is run again in a
    new interpreter (fork + exec) and only a time-out there counts as a hang (a child forked
    from a process whose TensorFlow had started its thread pools can deadlock in them: a
    limit of fork with multi-threaded libraries, not of the app). The re-runs are counted."""
    r = run_in_child(argv, timeout)
    if r["hang"]:
        stats["reruns"] = stats.get("reruns", 0) + 1
        r = run_fresh(argv, FRESH_TIMEOUT_S)
    return r


def verdict(r: dict) -> str:
    """"ok", "refused", or what is wrong."""
    if r["hang"]:
        return "HANG"
    if r["signal"] is not None:
        return f"CRASH (signal {r['signal']})"
    lines = [ln for ln in r["stderr"].splitlines()
             if ln.strip() and not any(n in ln for n in _NOISE)]
    if "Traceback" in r["stderr"]:
        return "TRACEBACK: " + (lines[-1] if lines else "")
    if r["code"] == 0:
        return "ok"
    if r["code"] != 2:
        return f"EXIT {r['code']}: " + " | ".join(lines[-3:])
    if len(lines) != 1:
        return f"NOT ONE LINE ({len(lines)}): " + " | ".join(lines[:3])
    if not lines[0].startswith("surgeon: ") or "internal error" in lines[0]:
        return "UNCLEAR: " + lines[0]
    return "refused"


def cases(workdir: Path, hostile: dict | None = None):
    """Write every case into ``workdir``; yields (name, argv, timeout)."""
    rng = random.Random(SEED)
    items = list(byte_mutations(rng, N_BYTE_CASES)) + \
        list(semantic_mutations(rng, N_SEMANTIC_CASES))
    optimize_at = set(rng.sample(range(len(items)), N_OPTIMIZE))
    for k, (name, suffix, data) in enumerate(items):
        p = workdir / f"{name}{'' if name.endswith(suffix) else suffix}"
        p.write_bytes(data)
        yield name, ["info", str(p), "--check"], INFO_TIMEOUT_S
        if k in optimize_at:
            yield name + " (optimize)", ["optimize", str(p), str(workdir / f"{name}.opt.pb"),
                                         "--force"], OPTIMIZE_TIMEOUT_S
    small = EXAMPLES / "conv_bias_bn.pbtxt"
    for name, suffix, data in recipe_mutations(rng, N_RECIPE_CASES):
        p = workdir / f"{name}{suffix}"
        p.write_bytes(data)
        yield name, ["optimize", str(small), str(workdir / f"{name}.pb"), "--recipe", str(p),
                     "--force"], OPTIMIZE_TIMEOUT_S
    for key, path in sorted((hostile or {}).items()):
        if key == "dir" or key == "npy_outside":
            continue
        if key.startswith("recipe_"):
            yield f"hostile {key}", ["optimize", str(hostile["debug_identity"]),
                                     str(workdir / f"{key}.pb"), "--recipe", str(path),
                                     "--force"], OPTIMIZE_TIMEOUT_S
        else:
            yield f"hostile {key}", ["info", str(path), "--check"], OPTIMIZE_TIMEOUT_S


def run_fuzz(workdir: Path, hostile: dict | None = None) -> dict:
    from surgeon_gui.core.model.tfenv import quiet_tensorflow
    quiet_tensorflow()  # imported once here; the children start with it loaded
    results = {}
    stats: dict = {}
    t0 = time.monotonic()
    for name, argv, timeout in cases(workdir, hostile):
        results[name] = verdict(run_case(argv, timeout, stats))
    counts = dict(cases=len(results),
                  refusals=sum(v == "refused" for v in results.values()),
                  successes=sum(v == "ok" for v in results.values()),
                  crashes=sum(v.startswith("CRASH") for v in results.values()),
                  hangs=sum(v == "HANG" for v in results.values()),
                  other_failures=sum(v not in ("ok", "refused") and not v.startswith("CRASH")
                                     and v != "HANG" for v in results.values()),
                  fork_timeouts_rerun_fresh=stats.get("reruns", 0),
                  seconds=round(time.monotonic() - t0, 1))
    return dict(counts=counts, failures={k: v for k, v in results.items()
                                         if v not in ("ok", "refused")})


def build_hostile(out: Path) -> dict:
    """The hostile fixtures, built in a separate process: building them runs TensorFlow
    (Keras saves, a SavedModel builder), and a process whose TensorFlow has started its thread
    pools must not fork children that run TensorFlow again (they can deadlock)."""
    import subprocess
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "hostile"
                                            / "make_hostile.py"), str(out)],
                       capture_output=True, text=True, timeout=600, env=env, check=True)
    files = {}
    for line in r.stdout.splitlines():
        key, _, path = line.partition(" ")
        if key and path.strip():
            files[key] = Path(path.strip())
    files["dir"] = out
    return files


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory):
    return build_hostile(tmp_path_factory.mktemp("hostile_fuzz"))


@pytest.mark.slow
def test_fuzz_no_crash_no_hang_one_clear_line(tmp_path, hostile_files):
    if not hasattr(os, "fork"):
        pytest.skip("needs fork")
    report = run_fuzz(tmp_path, hostile_files)
    print("\nfuzz:", json.dumps(report["counts"]))
    assert report["counts"]["cases"] >= 300
    assert not report["failures"], json.dumps(report["failures"], indent=1)[:4000]
    assert not (hostile_files["dir"] / "PWNED").exists()


def test_fuzz_generator_is_seeded_and_varied():
    a = [(n, d) for n, _, d in byte_mutations(random.Random(SEED), 20)]
    b = [(n, d) for n, _, d in byte_mutations(random.Random(SEED), 20)]
    assert a == b
    names = [n for n, _, _ in semantic_mutations(random.Random(SEED), 28)]
    assert len({n.split("_", 1)[1].rsplit("_", 1)[0] for n in names}) >= 10


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as d:
        h = build_hostile(Path(d) / "hostile")
        rep = run_fuzz(Path(d), h)
    print(json.dumps(rep, indent=1))
