"""Nothing up to the first view imports TensorFlow's runtime (issue 12, goal 1).

The protos are TensorFlow's own classes imported without its ``__init__``
(core/model/protos.py); ``surgeon info`` on a GraphDef and opening a .pb in the app never import
``tensorflow``; the app imports it in the background afterwards and whatever needs it waits.
Each check runs in a fresh interpreter: in this test process TensorFlow is long imported.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "resources" / "examples" / "tf1_cond_bn_dropout.pb"


def _python(code: str, tmp_path, timeout=180) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=str(tmp_path))


def test_protos_are_tensorflows_own_classes_without_its_runtime(tmp_path):
    proc = _python(f"""
        import sys
        from surgeon_gui.core.model.protos import GraphDef, NodeDef
        from surgeon_gui.core.model.io import load_model
        from surgeon_gui.core.model.graph import Graph
        model = load_model({str(EXAMPLE)!r})
        assert "tensorflow" not in sys.modules, "loading a .pb imported TensorFlow"
        # what other modules import by TF's own names resolves to the same modules, no TF
        from tensorflow.core.framework import types_pb2, graph_pb2
        assert graph_pb2.GraphDef is GraphDef and "tensorflow" not in sys.modules
        import tensorflow as tf
        assert tf.compat.v1.GraphDef is GraphDef and tf.compat.v1.NodeDef is NodeDef
        # a GraphDef loaded before TF runs in TF as it is
        import numpy as np
        g = tf.Graph()
        with g.as_default():
            tf.compat.v1.import_graph_def(model.graph_def, name="")
            with tf.compat.v1.Session(graph=g) as s:
                x = np.ones([1, 32, 32, 3], np.float32)
                out = s.run("probs:0", {{"input:0": x}})
        assert out.shape[0] == 1 and np.isfinite(out).all()
        print("ok")
        """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_protos_fall_back_to_a_full_tensorflow_import_when_the_bare_one_fails(tmp_path):
    """Another TensorFlow release may lay its modules out differently: if importing the protos
    without TF's __init__ fails, the ordinary (slow) import is taken, never an error."""
    proc = _python(f"""
        import sys
        class Refuse:  # plays a TensorFlow whose saved_model_pb2 needs TF's __init__
            refused = False
            def find_spec(self, name, path=None, target=None):
                if name.endswith("saved_model_pb2") and not Refuse.refused:
                    Refuse.refused = True  # the bare import fails; TF's own import may go on
                    raise ImportError("needs tensorflow's __init__")
                return None
        sys.meta_path.insert(0, Refuse())
        from surgeon_gui.core.model.protos import GraphDef, tensorflow_imported
        from surgeon_gui.core.model.io import load_model
        assert Refuse.refused and tensorflow_imported(), "the fallback should import TensorFlow"
        import tensorflow as tf
        assert tf.compat.v1.GraphDef is GraphDef
        model = load_model({str(EXAMPLE)!r})
        assert isinstance(model.graph_def, GraphDef) and len(model.graph_def.node) > 10
        print("ok")
        """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.slow
def test_surgeon_info_on_a_graphdef_does_not_import_tensorflow(tmp_path):
    """The first run asks TensorFlow's op registry and caches the op names; later runs read
    the cache, never import TF, and say the same."""
    code = f"""
        import sys, io, contextlib
        from surgeon_gui.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = main(["info", {str(EXAMPLE)!r}, "--json"])
        print(rc, "tensorflow" in sys.modules)
        print(out.getvalue())
        """
    first = _python(code, tmp_path)
    assert first.returncode == 0, first.stderr
    head, _, report = first.stdout.partition("\n")
    assert head == "0 True"  # no cache yet: TF answered
    assert list((tmp_path / "cache" / "surgeon_gui").glob("registered-ops-*.txt"))
    second = _python(code, tmp_path)
    assert second.returncode == 0, second.stderr
    head2, _, report2 = second.stdout.partition("\n")
    assert head2 == "0 False", "surgeon info imported TensorFlow"
    assert json.loads(report2) == json.loads(report)
    assert json.loads(report2)["nodes"] > 100


@pytest.mark.slow
def test_unregistered_ops_from_the_cache_match_tensorflows_registry(tmp_path):
    proc = _python(f"""
        import sys
        from surgeon_gui.core.model.io import load_model, unregistered_ops
        from surgeon_gui.core.model.registered_ops import registered_op_names, cache_path
        gd = load_model({str(EXAMPLE)!r}).graph_def
        gd.node[3].op = "NoSuchOpAnywhere"
        cached = registered_op_names()  # imports TF (no cache yet) and writes the cache
        assert cache_path().is_file()
        from tensorflow.python.framework import op_def_registry
        assert all(op_def_registry.get(n) is not None for n in cached)
        assert op_def_registry.get("NoSuchOpAnywhere") is None and "Conv2D" in cached
        print(unregistered_ops(gd))
        """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['NoSuchOpAnywhere']"


@pytest.mark.slow
def test_opening_a_pb_in_the_app_does_not_import_tensorflow(tmp_path):
    """The window opens a .pb and shows it with no TensorFlow; then TF is imported in the
    background, and the GUI thread importing TF at the same time waits for it (no import
    deadlock) and gets the same classes."""
    proc = _python(f"""
        import sys, time, threading
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from surgeon_gui.ui.main_window import MainWindow
        from surgeon_gui.core.model import tfenv
        win = MainWindow(); win.persist_settings = False; win.show()
        opened = []
        win.document_opened.connect(opened.append)
        win.open_model({str(EXAMPLE)!r})
        end = time.time() + 120
        while (not opened or win.view.layout_pending) and time.time() < end:
            app.processEvents(); time.sleep(0.005)
        assert opened, win.last_error
        win.view.viewport().repaint()
        assert "tensorflow" not in sys.modules, "the first view imported TensorFlow"
        assert len(win.view.scene().items()) > 3
        thread = tfenv.import_in_background()
        assert thread is not None and tfenv.background_import_running()
        from tensorflow.python.framework import tensor_util  # waits for the background
        assert not tfenv.background_import_running()
        import tensorflow as tf
        assert tf.compat.v1.GraphDef is type(opened[0].graph_def)
        assert tensor_util.MakeNdarray(tensor_util.make_tensor_proto([1.0, 2.0])).sum() == 3
        print("ok", threading.active_count())
        """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "ok"


def test_dtype_names_without_tensorflow_match_tensorflows():
    import numpy as np
    from tensorflow.python.framework import dtypes

    from surgeon_gui.core.model.graph import dtype_name, numpy_dtype_name
    from surgeon_gui.core.model.protos import types_pb2
    for name, value in types_pb2.DataType.items():
        if value == types_pb2.DT_INVALID:
            assert dtype_name(value) == "DT_INVALID"
            continue
        tf_dtype = dtypes.as_dtype(value)
        assert dtype_name(value) == tf_dtype.name, name
        try:
            expected = np.dtype(tf_dtype.as_numpy_dtype).name
        except (TypeError, KeyError):
            with pytest.raises(TypeError):
                numpy_dtype_name(value)
            continue
        assert numpy_dtype_name(value) == expected, name


def test_a_pass_job_never_imports_tensorflow_in_a_qt_pool_thread(tmp_path):
    """Constant evaluation (core/model/tfc.py) imports TensorFlow's C API with
    importlib.import_module, which the waiting import hook of tfenv.gate_imports() does not
    see: a pass job's first constant evaluation imported TensorFlow in the Qt pool thread, and
    a later job on that thread segfaulted in import_graph_def (core/model/tfenv.py says why;
    found as 'open the TF1 example, Apply all, open another model' crashing 2 runs in 3).
    Now the job waits for the one import in its own Python thread."""
    r = _python(f"""
        import os, sys, threading
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        pool_imports = []
        def hook(ev, args):
            if ev == "import" and str(args[0]).startswith("tensorflow.python"):
                t = threading.current_thread()
                if t is not threading.main_thread() and t.name != "import-tensorflow":
                    pool_imports.append((t.name, args[0]))
        sys.addaudithook(hook)
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from surgeon_gui.core.model.io import load_model
        from surgeon_gui.ui.workers import Worker
        ex = {str(ROOT / "resources" / "examples")!r}
        loaded = load_model(os.path.join(ex, "tf1_cond_bn_dropout.pb"))
        assert "tensorflow" not in sys.modules

        def fold(state=None):
            from surgeon_gui.core.passes.pipeline import run_pass
            return run_pass(loaded.index, "fold_constants")

        def check(state=None):   # a TF call that raises inside (no _class attr): the crash
            from surgeon_gui.core.model.checks import import_problem
            return import_problem(load_model(os.path.join(ex, "tf2_if_bn_dropout.pb")).graph_def)

        for fn in [fold, check, check, fold, check]:
            w = Worker(fn).start()
            while not w._finished.wait(0.01):
                app.processEvents()
            assert w.error is None, w.error
        print("pool imports:", len(pool_imports), pool_imports[:3])
        assert not pool_imports
        print("ok")
    """, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-2000:]
    assert "ok" in r.stdout
