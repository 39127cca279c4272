"""Import TensorFlow without its start-up chatter, for the command-line entry points.

TensorFlow's C++ side prints absl/oneDNN lines straight to file descriptor 2 while it is
imported, before any Python logging setting can act; a user of ``surgeon`` or of
``surgeon-gui --screenshot`` should see only our one-line messages.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def quiet_tensorflow(debug: bool = False) -> None:
    """Import TensorFlow with its start-up chatter (absl/oneDNN lines on fd 2) silenced."""
    if "tensorflow" in sys.modules:
        quiet_python_logs()
        return
    if debug:
        import tensorflow  # noqa: F401
        quiet_python_logs()
        return
    saved = None
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        saved = None
    try:
        import tensorflow  # noqa: F401
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
    quiet_python_logs()


def quiet_python_logs() -> None:
    import logging
    import warnings
    warnings.filterwarnings("ignore")
    try:
        import absl.logging
        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
