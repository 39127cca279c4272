"""The interactive app keeps TensorFlow's C++ start-up notices (oneDNN, CUDA probing, absl's
InitializeLog warning) off the terminal — TF 2.21 writes them before ``TF_CPP_MIN_LOG_LEVEL``
can act — without dropping anything else written to stderr meanwhile."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import assert_no_traceback

from surgeon_gui.core.model.startup_lines import is_tf_startup_line

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "resources" / "examples" / "tf1_cond_bn_dropout.pb"

#: Runs the app's own entry point (``surgeon-gui MODEL``, no script mode) and closes the window
#: once TensorFlow's background import has ended; while it runs, the GUI thread writes a line
#: of ours to stderr every 20 ms.
APP = r"""
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from surgeon_gui.core.model import tfenv
ticks = []

def poll():
    if tfenv.background_import_running():
        ticks.append(1)
        print(f"ours: tick {len(ticks)}", file=sys.stderr, flush=True)
    elif "tensorflow" in sys.modules:
        print(f"ours: {len(ticks)} ticks", file=sys.stderr, flush=True)
        for w in app.topLevelWidgets():
            w.close()
        return
    QTimer.singleShot(20, poll)

QTimer.singleShot(20, poll)
from surgeon_gui.ui.app import main
sys.exit(main([sys.argv[1]]))
"""


@pytest.mark.slow  # ~8 s: the app starts and imports TensorFlow
def test_the_app_prints_no_tensorflow_start_up_lines_and_keeps_ours(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               GRAPH_SURGEON_SETTINGS_DIR=str(tmp_path / "settings"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # what a user's shell has: nothing
    p = subprocess.run([sys.executable, "-c", APP, str(EXAMPLE)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=240)
    err = p.stderr
    assert p.returncode == 0, err
    assert_no_traceback(err)
    for bad in ("oneDNN", "absl::InitializeLog", "cuda", "CUDA", "cpu_feature_guard",
                "rebuild TensorFlow"):
        assert bad not in err, [ln for ln in err.splitlines() if bad in ln]
    # everything of ours that was written while TensorFlow loaded is there (a line written at
    # the very moment stderr is put back may come out a little early: order is not checked)
    ticks = [ln for ln in err.splitlines() if ln.startswith("ours: tick")]
    n = int(next(ln for ln in err.splitlines() if ln.endswith(" ticks")).split()[1])
    assert n >= 3, "the import ended before the window could write anything: nothing tested"
    assert sorted(ticks) == sorted(f"ours: tick {i}" for i in range(1, n + 1)), \
        (len(ticks), n, [ln for ln in err.splitlines() if not ln.startswith("ours: tick")])


@pytest.mark.parametrize("line, notice", [
    (b"WARNING: All log messages before absl::InitializeLog() is called are written to "
     b"STDERR\n", True),
    (b"I0000 00:00:1795706175.785035   31966 port.cc:153] oneDNN custom operations are on.\n",
     True),
    (b"2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could "
     b"not find cuda drivers on your machine, GPU will not be used.\n", True),
    (b"E0000 00:00:1758131045.203198 3722035 cuda_dnn.cc:8579] Unable to register cuDNN "
     b"factory\n", True),
    (b"2024-01-11 05:40:05.061907: I tensorflow/core/platform/cpu_feature_guard.cc:182] This "
     b"TensorFlow binary is optimized\n", True),
    (b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
     b"TensorFlow with the appropriate compiler flags.\n", True),
    # real errors stay
    (b"E0000 00:00:1758131045.203198 3722035 op_kernel.cc:1839] OP_REQUIRES failed at "
     b"conv_ops.cc:123 : INVALID_ARGUMENT\n", False),
    (b"2024-01-11 05:40:05.061907: F tensorflow/core/framework/tensor.cc:844] Check failed\n",
     False),
    (b"Traceback (most recent call last):\n", False),
    (b"surgeon-gui: error: model.pb: no such file or folder\n", False),
    (b"I0000 is how a line of ours might start\n", False),
])
def test_which_lines_are_tensorflow_start_up_notices(line, notice):
    assert is_tf_startup_line(line) is notice


def test_held_lines_are_passed_on_and_only_the_notices_dropped(capfd):
    """In process: while the context holds fd 2 another thread keeps writing (Python and raw
    fd writes); TensorFlow-like notices are written too. Afterwards every line of ours is on
    stderr, no notice is, and a real TensorFlow error line is kept."""
    import threading
    import time

    from surgeon_gui.core.model.startup_lines import hold_tf_startup_lines
    stop = threading.Event()
    written = []

    def writer():
        i = 0
        while not stop.is_set() or i < 5:
            i += 1
            if i % 2:
                print(f"ours {i}", file=sys.stderr, flush=True)
            else:
                os.write(2, f"ours {i}\n".encode())
            written.append(i)
            time.sleep(0.002)

    t = threading.Thread(target=writer)
    with hold_tf_startup_lines():
        t.start()
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                    b"written to STDERR\n")
        os.write(2, b"I0000 00:00:1795706175.785035   31966 port.cc:153] oneDNN custom "
                    b"operations are on.\n")
        os.write(2, b"E0000 00:00:1795706175.785035   31966 op_kernel.cc:1839] OP_REQUIRES "
                    b"failed\n")
        time.sleep(0.05)
        mid = len(written)
    stop.set()
    t.join()
    err = capfd.readouterr().err
    assert mid >= 3
    # found anywhere in a line: another thread's write (the writer's print, or a TF line of
    # another test's work in this process) may land between a line and its newline
    ours = [int(i) for i in re.findall(r"ours (\d+)", err)]
    assert sorted(ours) == sorted(written)
    assert "oneDNN" not in err and "InitializeLog" not in err
    assert "OP_REQUIRES failed" in err
