"""Build the hostile and corrupt inputs the untrusted-input tests open (never stored in git).

    python tests/hostile/make_hostile.py OUTDIR

Each file is made the way a real one comes about (Keras ``save``, a TF1 SavedModel builder, a
GraphDef edited by hand). A file that would run code when opened also names a *marker* path:
the tests assert the marker was never written. :func:`build` returns {name: path}.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The file a hostile model tries to create when its code runs (relative to OUTDIR).
MARKER = "PWNED"


def _tiny_keras(with_lambda: bool, marker: Path):
    import keras
    inp = keras.Input((4,), name="x")
    h = keras.layers.Dense(3, name="d")(inp)
    if with_lambda:
        path = str(marker)

        # The payload (a Python lambda, stored as bytecode): runs only if a loader executes it.
        h = keras.layers.Lambda(lambda t: (__import__("pathlib").Path(path).write_text("ran"),
                                           t)[1], name="payload")(h)
    return keras.Model(inp, h)


def _graph(nodes_text: str):
    from google.protobuf import text_format
    from tensorflow.core.framework import graph_pb2
    gd = graph_pb2.GraphDef()
    text_format.Parse(nodes_text, gd)
    return gd


def _write_gd(path: Path, gd) -> Path:
    path.write_bytes(gd.SerializeToString())
    return path


_CONST = """node {{ name: "{name}" op: "Const" attr {{ key: "dtype" value {{ type: DT_FLOAT }} }}
  attr {{ key: "value" value {{ tensor {{ dtype: DT_FLOAT tensor_shape {{}} float_val: {v} }} }} }} }}
"""
_PH = """node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
"""


def build(out: str | os.PathLike) -> dict[str, Path]:
    import tensorflow as tf
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER
    files: dict[str, Path] = {}

    # ---------------------------------------------------------------- Keras
    k = _tiny_keras(False, marker)
    files["keras_ok"] = out / "ok.keras"
    k.save(files["keras_ok"])
    files["h5_ok"] = out / "ok.h5"
    k.save(files["h5_ok"])
    kl = _tiny_keras(True, marker)
    files["keras_lambda"] = out / "lambda.keras"
    kl.save(files["keras_lambda"])
    files["h5_lambda"] = out / "lambda.h5"
    kl.save(files["h5_lambda"])
    if marker.exists():  # saving may trace the Lambda once: start clean
        marker.unlink()
    # a .keras whose config names a custom class from a module of the attacker's choosing
    files["keras_custom"] = out / "custom.keras"
    with zipfile.ZipFile(files["keras_ok"]) as zin, \
            zipfile.ZipFile(files["keras_custom"], "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "config.json":
                cfg = json.loads(data)
                layer = cfg["config"]["layers"][-1]
                layer["module"] = "os"
                layer["class_name"] = "system"
                layer["registered_name"] = "os>system"
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)
    files["keras_empty"] = out / "empty.keras"
    files["keras_empty"].write_bytes(b"")
    files["h5_empty"] = out / "empty.h5"
    files["h5_empty"].write_bytes(b"")
    for name, src in (("keras_truncated", "keras_ok"), ("h5_truncated", "h5_ok")):
        data = files[src].read_bytes()
        files[name] = out / f"truncated{files[src].suffix}"
        files[name].write_bytes(data[: len(data) // 2])

    # ---------------------------------------------------------------- SavedModels
    # TF1 SavedModel whose main_op writes the marker (runs on tf.saved_model.load).
    sm = out / "init_writes"
    if sm.exists():
        shutil.rmtree(sm)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        w = tf.compat.v1.get_variable("w", initializer=tf.ones([4, 2]))
        y = tf.identity(tf.matmul(x, w), name="y")
        write = tf.io.write_file(str(marker), "ran")
        with tf.compat.v1.Session(graph=g) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            b = tf.compat.v1.saved_model.Builder(str(sm))
            sig = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
            b.add_meta_graph_and_variables(sess, ["serve"], {"serving_default": sig},
                                           main_op=tf.group(write))
            b.save()
    files["savedmodel_init_writes"] = sm
    # A plain TF2 SavedModel and one with a corrupt fingerprint.
    ok = out / "sm_ok"
    if ok.exists():
        shutil.rmtree(ok)

    class M(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.ones([4, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": tf.matmul(x, self.w)}
    m = M()
    tf.saved_model.save(m, str(ok), signatures={"serving_default": m.__call__})
    files["savedmodel_ok"] = ok
    bad = out / "sm_bad_fingerprint"
    if bad.exists():
        shutil.rmtree(bad)
    shutil.copytree(ok, bad)
    (bad / "fingerprint.pb").write_bytes(b"\xff\xfe garbage \x00\x01\x02")
    files["savedmodel_bad_fingerprint"] = bad

    # ---------------------------------------------------------------- GraphDefs
    # DebugIdentity whose debug_urls point at a file: fold_constants must not evaluate it.
    files["debug_identity"] = _write_gd(out / "debug_identity.pb", _graph(
        _PH + _CONST.format(name="c", v=2.0) + f"""
node {{ name: "dbg" op: "DebugIdentity" input: "c"
  attr {{ key: "T" value {{ type: DT_FLOAT }} }}
  attr {{ key: "tensor_name" value {{ s: "c:0" }} }}
  attr {{ key: "debug_urls" value {{ list {{ s: "file://{out / 'debug_dump'}" }} }} }} }}
node {{ name: "y" op: "Mul" input: "x" input: "dbg" attr {{ key: "T" value {{ type: DT_FLOAT }} }} }}
"""))
    # A dtype enum value TensorFlow does not know.
    gd = _graph(_PH + _CONST.format(name="c", v=1.0) + """
node { name: "y" op: "Add" input: "x" input: "c" attr { key: "T" value { type: DT_FLOAT } } }
""")
    gd.node[0].attr["dtype"].type = 999
    files["bad_enum"] = _write_gd(out / "bad_enum.pb", gd)
    # Graphs TensorFlow rejects.
    invalid = {
        "unknown_op": _PH + """node { name: "y" op: "NoSuchOpAnywhere" input: "x" }""",
        "missing_attr": _PH + """node { name: "y" op: "Relu" input: "x" }""",
        "const_no_value": _PH + """
node { name: "c" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } } }
node { name: "y" op: "Add" input: "x" input: "c" attr { key: "T" value { type: DT_FLOAT } } }""",
        "dtype_mismatch": _PH + """
node { name: "c" op: "Const" attr { key: "dtype" value { type: DT_INT32 } }
  attr { key: "value" value { tensor { dtype: DT_INT32 tensor_shape {} int_val: 1 } } } }
node { name: "y" op: "Add" input: "x" input: "c" attr { key: "T" value { type: DT_FLOAT } } }""",
        "port_out_of_range": _PH + _CONST.format(name="c", v=1.0) + """
node { name: "y" op: "Add" input: "x" input: "c:3" attr { key: "T" value { type: DT_FLOAT } } }""",
    }
    for name, text in invalid.items():
        files[f"invalid_{name}"] = _write_gd(out / f"invalid_{name}.pb", _graph(text))

    # ---------------------------------------------------------------- recipes
    def recipe(name, d):
        p = out / f"recipe_{name}.json"
        p.write_text(json.dumps(d) if not isinstance(d, str) else d)
        files[f"recipe_{name}"] = p
    base = {"format": "graph-surgeon-recipe", "version": 1, "inputs": None, "outputs": None}
    recipe("nan_param", dict(base, steps=[{"pass": "fold_constants",
                                           "params": {"max_bytes": float("nan")}}]))
    recipe("string_param", dict(base, steps=[{"pass": "fold_constants",
                                              "params": {"max_bytes": "lots"}}]))
    recipe("negative_param", dict(base, steps=[{"pass": "fold_constants",
                                                "params": {"max_bytes": -5}}]))
    recipe("huge_param", dict(base, steps=[{"pass": "fold_constants",
                                            "params": {"max_bytes": 10 ** 40}}]))
    recipe("deep", '{"a":' * 100000 + "1" + "}" * 100000)
    recipe("version_true", dict(base, version=True, steps=[]))
    recipe("select_nothing", dict(base, steps=[{"pass": "remove_identity",
                                                "select": ["no/such/match"]}]))
    import hashlib

    import numpy as np
    recipe("npy_dev_zero", dict(base, steps=[{"edit": "replace_const", "args": {
        "node": "c", "value": {"npy": "/dev/zero", "sha256": "0" * 64}}}]))
    outside = out.parent / f"{out.name}_outside.npy"
    np.save(outside, np.float32(3.0))
    digest = hashlib.sha256(outside.read_bytes()).hexdigest()
    files["npy_outside"] = outside
    recipe("npy_outside", dict(base, steps=[{"edit": "replace_const", "args": {
        "node": "c", "value": {"npy": f"../{outside.name}", "sha256": digest}}}]))
    recipe("npy_absolute_outside", dict(base, steps=[{"edit": "replace_const", "args": {
        "node": "c", "value": {"npy": str(outside), "sha256": digest}}}]))
    recipe("npy_no_checksum", dict(base, steps=[{"edit": "replace_const", "args": {
        "node": "c", "value": {"npy": outside.name}}}]))
    inside = out / "value.npy"
    np.save(inside, np.float32(3.0))
    recipe("npy_inside_ok", dict(base, steps=[{"edit": "replace_const", "args": {
        "node": "c", "value": {"npy": "value.npy", "sha256": digest}}}]))
    recipe("npy_wrong_checksum", dict(base, steps=[{"edit": "replace_const", "args": {
        "node": "c", "value": {"npy": "value.npy", "sha256": "1" * 64}}}]))
    return files


if __name__ == "__main__":
    for key, path in build(sys.argv[1] if len(sys.argv) > 1 else "hostile_out").items():
        print(f"{key:28} {path}")
