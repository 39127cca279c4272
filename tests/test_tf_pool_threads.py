"""TensorFlow is never first imported in a Qt pool thread (the app never crashes).

pybind11 (TensorFlow's Python bindings) remembers the Python thread state of the thread that
loads its first module; a QThreadPool thread gets a new thread state per job, so a later job
on that thread that makes pybind11 take the GIL used freed memory: a segfault or a hang in
``import_graph_def`` (core/model/tfenv.py). The jobs below run in a fresh interpreter, so a
crash shows as a negative return code; without the fix (tfenv.gate_imports in Worker.start)
this exits -11 (SIGSEGV) or hangs.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, tmp_path, timeout=150) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=str(tmp_path))


def test_a_job_that_imports_tensorflow_does_not_break_the_next_job_on_its_thread(tmp_path):
    proc = _python("""
        import sys, threading
        from PySide6.QtCore import QThreadPool
        from PySide6.QtWidgets import QApplication
        from surgeon_gui.core.model.protos import GraphDef
        from surgeon_gui.ui.workers import Worker

        app = QApplication([])
        pool = QThreadPool()
        pool.setMaxThreadCount(1)  # both jobs on the same pool thread
        assert "tensorflow" not in sys.modules

        def first():
            import tensorflow as tf  # the job that needs TensorFlow first
            return tf.__version__, threading.current_thread().name

        def second():
            import numpy as np
            import tensorflow as tf
            g = GraphDef()
            c = g.node.add(name="c", op="Const")  # no _class attr: TF's importer asks, C++ raises
            c.attr["dtype"].type = 1
            c.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.float32(2.0)))
            graph = tf.Graph()
            with graph.as_default():
                tf.compat.v1.import_graph_def(g, name="")
            with tf.compat.v1.Session(graph=graph) as s:
                return float(s.run("c:0"))

        for fn in (first, second, second):
            w = Worker(fn)
            w.start(pool)
            assert w.wait(60), "job hung"
            assert w.error is None, repr(w.error)
        pool.waitForDone()  # the pool thread is done with Python before the interpreter ends
        print("ok", w.result)
        """, tmp_path)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert proc.stdout.split() == ["ok", "2.0"]
