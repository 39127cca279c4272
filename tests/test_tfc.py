"""TensorFlow's C API without its Python runtime (core/model/tfc.py): `surgeon optimize` of a
GraphDef does not import TensorFlow's Python runtime, and TensorFlow imports normally after."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(code: str) -> str:
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def test_optimize_a_graphdef_without_tensorflows_python_runtime(tmp_path):
    out = tmp_path / "o.pb"
    stdout = run(f"""
import sys
from surgeon_gui.cli import main
rc = main(["optimize", "resources/examples/tf1_cond_bn_dropout.pb", {str(out)!r}])
tf = sys.modules.get("tensorflow")
print(rc, tf is not None and hasattr(tf, "__version__"))
""")
    assert stdout.split()[-2:] == ["0", "False"]
    # the graph was optimized for real: the preset's passes ran (constants folded with TF's
    # kernels, the import check passed)
    from surgeon_gui.core.model.io import read_graph_def
    ops = {n.op for n in read_graph_def(out).node}
    assert not ops & {"Switch", "Merge", "FusedBatchNormV3", "RandomUniform"}


def test_tensorflow_imports_and_runs_after_the_c_api_was_loaded_without_it():
    stdout = run("""
import sys
import numpy as np
from surgeon_gui.core.model import tfc
from surgeon_gui.core.model.graph import GraphDef, make_const
assert tfc.op_def("Conv2D").name == "Conv2D" and tfc.op_def("NoSuchOp") is None
assert "tensorflow" not in sys.modules
sub = GraphDef()
sub.node.append(make_const("a", np.array([4.0, 9.0], np.float32)))
n = sub.node.add(name="r", op="Rsqrt", input=["a"]); n.attr["T"].type = 1
bad = GraphDef(); bad.CopyFrom(sub); bad.node.add(name="z", op="Relu", input=["nope"])
mine = tfc.run_graph(sub, ["r"])["r"]
err = tfc.import_error(bad.SerializeToString())
import tensorflow as tf
assert isinstance(err, tf.errors.InvalidArgumentError), err
with tf.compat.v1.Session(graph=tf.Graph()) as s:
    tf.compat.v1.import_graph_def(sub, name="")
    theirs = s.run("r:0")
print(mine.tobytes() == theirs.tobytes(), tf.compat.v1.GraphDef is GraphDef)
""")
    assert stdout.split()[-2:] == ["True", "True"]


def test_optimize_falls_back_to_the_full_import_when_the_bare_c_api_load_fails(tmp_path):
    """Another TensorFlow release may move a private module: the bare load then gives way to
    the ordinary import (slower), and optimize still works."""
    out = tmp_path / "o.pb"
    stdout = run(f"""
import sys
class Refuse:  # plays a TensorFlow whose dtypes module needs TF's __init__
    refused = False
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow.python.framework.dtypes" and not Refuse.refused:
            Refuse.refused = True
            raise ImportError("needs tensorflow's __init__")
        return None
sys.meta_path.insert(0, Refuse())
from surgeon_gui.cli import main
rc = main(["optimize", "resources/examples/tf1_cond_bn_dropout.pb", {str(out)!r}])
tf = sys.modules.get("tensorflow")
print(rc, Refuse.refused, tf is not None and hasattr(tf, "__version__"))
""")
    assert stdout.split()[-3:] == ["0", "True", "True"]
    from surgeon_gui.core.model.io import read_graph_def
    ops = {n.op for n in read_graph_def(out).node}
    assert not ops & {"Switch", "Merge", "FusedBatchNormV3", "RandomUniform"}
