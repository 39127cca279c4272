"""Does OpenCV's TensorFlow importer (``cv2.dnn.readNetFromTensorflow``) take this graph, and
does it compute the same numbers?

Deployment targets such as OpenCV's DNN module only import plain inference graphs (no Switch/
Merge, no training-only batch-norm forms, nodes in execution order), so "loads in OpenCV" is a
practical test of an optimized graph. OpenCV is an optional dependency (the ``test`` extra);
without it :func:`opencv_check` says so instead of failing.

OpenCV takes 4-D blobs as NCHW whatever the graph's layout and returns 4-D outputs as NCHW; this
module transposes feeds and reference outputs of NHWC graphs accordingly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.graph import GraphDef, node_of


@dataclass
class OpenCVResult:
    loads: bool
    error: str = ""
    #: Max |opencv - reference| over the outputs (None when not run or no reference given).
    max_abs_err: float | None = None
    outputs: list | None = None

    def matches(self, atol: float) -> bool:
        return self.loads and self.max_abs_err is not None and self.max_abs_err <= atol


FUNCTIONAL_OPS = frozenset({"If", "StatelessIf", "While", "StatelessWhile", "Case",
                            "StatelessCase", "PartitionedCall", "StatefulPartitionedCall"})


def available() -> bool:
    try:
        import cv2  # noqa: F401
        return True
    except ImportError:
        return False


def _quiet(cv2) -> None:
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:
        pass


def is_nchw(gd: GraphDef) -> bool:
    return any(n.attr["data_format"].s == b"NCHW" for n in gd.node if "data_format" in n.attr)


def opencv_check(gd: GraphDef, feeds: dict[str, np.ndarray] | None = None,
                 outputs: list[str] | None = None,
                 reference: list[np.ndarray] | None = None) -> OpenCVResult:
    """Import ``gd`` with OpenCV; with ``feeds`` (one input) run it and compare to ``reference``
    (TensorFlow's values for ``outputs``, in the graph's own layout)."""
    try:
        import cv2
    except ImportError:
        return OpenCVResult(False, "OpenCV (opencv-python-headless) is not installed")
    _quiet(cv2)
    functional = sorted({n.op for n in gd.node if n.op in FUNCTIONAL_OPS})
    if functional or gd.library.function:
        # OpenCV 5.0's importer crashes the process (SIGSEGV) on some of these graphs.
        return OpenCVResult(False, "OpenCV's importer does not take functional control flow "
                                   f"({', '.join(functional) or 'a function library'}); "
                                   "inline it first (inline_functions)")
    crash = _import_crashes(gd)
    if crash:
        return OpenCVResult(False, crash)
    try:
        net = cv2.dnn.readNetFromTensorflow(np.frombuffer(gd.SerializeToString(), np.uint8))
    except cv2.error as e:
        return OpenCVResult(False, _cv_message(e))
    if net.empty():
        return OpenCVResult(False, "OpenCV returned an empty network")
    if feeds is None:
        return OpenCVResult(True)
    if len(feeds) != 1:
        return OpenCVResult(True, f"not run: OpenCV takes one input here, the graph has "
                                  f"{len(feeds)}")
    nhwc = not is_nchw(gd)
    (x,) = feeds.values()
    blob = x.transpose(0, 3, 1, 2) if (x.ndim == 4 and nhwc) else x
    try:
        net.setInput(np.ascontiguousarray(blob))
        if outputs:
            names = [node_of(o) for o in outputs]
            try:
                got = net.forward(names)
            except cv2.error:
                got = [net.forward()]
        else:
            got = [net.forward()]
    except cv2.error as e:
        return OpenCVResult(True, "loads but does not run: " + _cv_message(e))
    got = [np.asarray(g) for g in got]
    if reference is None:
        return OpenCVResult(True, outputs=got)
    err = 0.0
    for g, r in zip(got, reference):
        r = np.asarray(r)
        if r.ndim == 4 and nhwc:
            r = r.transpose(0, 3, 1, 2)
        if g.shape != r.shape:
            if g.size == r.size:
                g = g.reshape(r.shape)
            else:
                return OpenCVResult(True, f"output shape {list(g.shape)} != TensorFlow's "
                                          f"{list(r.shape)}", float("inf"), got)
        err = max(err, float(np.abs(g.astype(np.float64) - r).max()))
    return OpenCVResult(True, "", err, got)


_PROBE = ("import sys, numpy as np, cv2\n"
          "try:\n"
          "    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)\n"
          "except AttributeError:\n"
          "    pass\n"
          "try:\n"
          "    cv2.dnn.readNetFromTensorflow(np.frombuffer(sys.stdin.buffer.read(), np.uint8))\n"
          "except cv2.error:\n"
          "    pass\n")


def _import_crashes(gd: GraphDef) -> str:
    """OpenCV 5.0's TensorFlow importer kills the process (SIGSEGV) on some graphs (seen on
    Grappler's result of a TF2-control-flow graph): try the import in a child process first.
    Returns the problem when the child died, else ""."""
    import subprocess
    import sys
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], input=gd.SerializeToString(),
                           capture_output=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"OpenCV's importer did not finish on this graph ({type(e).__name__})"
    if r.returncode < 0:
        return (f"OpenCV's importer crashes on this graph (signal {-r.returncode}); not "
                "loaded in this process")
    return ""


def _cv_message(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    msg = lines[-1] if lines else type(e).__name__
    # "OpenCV(5.0.0) /path/file.cpp:123: error: (-2:Unspecified error) Can't create layer ..."
    if "error:" in msg:
        msg = msg.split("error:", 1)[1].strip()
        if msg.startswith("(") and ")" in msg:
            msg = msg.split(")", 1)[1].strip()
    return msg[:300]
