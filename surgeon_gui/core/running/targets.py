"""Deployment targets: does the graph load in OpenCV's DNN module or TensorFlow Lite, does it
compute what TensorFlow computes on the same feeds, and how fast?

:func:`check_target` converts/imports a GraphDef for one target, runs it on the feeds, compares
each output with TensorFlow's (the reference values, in the graph's own layout) and times a few
runs. OpenCV goes through :mod:`.opencv_check` (NHWC blobs become NCHW); TFLite through
TensorFlow's own converter and interpreter (``tf.compat.v1.lite.TFLiteConverter`` on the
GraphDef with the feeds' shapes, then ``tf.lite.Interpreter``). Every failure is a sentence in
the result, never an exception.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..model.graph import GraphDef, node_of

TARGETS = ("opencv", "tflite")
TITLES = {"opencv": "OpenCV DNN", "tflite": "TensorFlow Lite"}


@dataclass
class TargetResult:
    """What one target made of one graph."""
    target: str
    loads: bool
    error: str = ""
    #: Max |target - TensorFlow| per output (None: not run).
    errors: dict = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    atol: float = 1e-4
    rtol: float = 1e-3

    @property
    def ran(self) -> bool:
        return bool(self.errors)

    @property
    def matches(self) -> bool:
        return self.loads and self.ran and all(ok for ok in self._ok().values())

    def _ok(self) -> dict:
        return {k: v[0] <= self.atol + self.rtol * v[1] for k, v in self.errors.items()}

    @property
    def latency_ms(self) -> float | None:
        return float(np.median(self.latencies_ms)) if self.latencies_ms else None

    def summary(self) -> str:
        head = TITLES.get(self.target, self.target)
        if not self.loads:
            return f"{head}: does not load: {self.error}"
        if not self.ran:
            return f"{head}: loads but does not run: {self.error or 'no feeds'}"
        worst = max(self.errors.items(), key=lambda kv: kv[1][0])
        verdict = "matches TensorFlow" if self.matches else \
            f"does NOT match TensorFlow (output {worst[0]}: max abs err {worst[1][0]:.3g})"
        lat = f"; latency {self.latency_ms:.3f} ms" if self.latency_ms is not None else ""
        return f"{head}: loads, {verdict}{lat}" + (f" ({self.error})" if self.error else "")

    def to_dict(self) -> dict:
        return dict(target=self.target, loads=self.loads, ran=self.ran, matches=self.matches,
                    error=self.error, latency_ms=self.latency_ms,
                    max_abs_err={k: float(v[0]) for k, v in self.errors.items()})


def check_target(gd: GraphDef, target: str, feeds: dict[str, np.ndarray], outputs: list[str],
                 reference: list[np.ndarray], runs: int = 5) -> TargetResult:
    """Load ``gd`` in ``target``, run it on ``feeds`` and compare with ``reference``
    (TensorFlow's values of ``outputs``)."""
    if target == "opencv":
        return _opencv(gd, feeds, outputs, reference, runs)
    if target == "tflite":
        return _tflite(gd, feeds, outputs, reference, runs)
    raise ValueError(f"unknown target {target!r}; known: {', '.join(TARGETS)}")


def _errors(got, reference, outputs) -> dict:
    out = {}
    for name, g, r in zip(outputs, got, reference):
        g, r = np.asarray(g, np.float64), np.asarray(r, np.float64)
        if g.shape != r.shape:
            if g.size != r.size:
                out[node_of(name)] = (float("inf"), 0.0)
                continue
            g = g.reshape(r.shape)
        out[node_of(name)] = (float(np.abs(g - r).max()) if r.size else 0.0,
                              float(np.abs(r).max()) if r.size else 0.0)
    return out


def _opencv(gd, feeds, outputs, reference, runs) -> TargetResult:
    from .opencv_check import is_nchw, opencv_check
    # A training flag made constant needs no feed; OpenCV takes the one data input.
    data = {k: v for k, v in feeds.items() if np.asarray(v).dtype != np.bool_}
    res = opencv_check(gd, data, outputs, None)
    if not res.loads:
        return TargetResult("opencv", False, res.error)
    if res.outputs is None:
        return TargetResult("opencv", True,
                            res.error.replace("loads but does not run: ", "") or "not run")
    nhwc = not is_nchw(gd)
    ref = [np.asarray(r).transpose(0, 3, 1, 2) if np.ndim(r) == 4 and nhwc else r
           for r in reference]
    result = TargetResult("opencv", True, res.error, _errors(res.outputs, ref, outputs))
    import cv2
    net = cv2.dnn.readNetFromTensorflow(np.frombuffer(gd.SerializeToString(), np.uint8))
    (x,) = data.values()
    blob = np.ascontiguousarray(x.transpose(0, 3, 1, 2) if (x.ndim == 4 and nhwc) else x)
    names = [node_of(o) for o in outputs]
    for _ in range(runs):
        t0 = time.perf_counter()
        net.setInput(blob)
        try:
            net.forward(names)
        except cv2.error:
            net.forward()
        result.latencies_ms.append((time.perf_counter() - t0) * 1e3)
    return result


def _tflite(gd, feeds, outputs, reference, runs) -> TargetResult:
    import tensorflow as tf
    names = {n.name for n in gd.node}
    fed = {k: np.asarray(v) for k, v in feeds.items() if node_of(k) in names
           and next(n for n in gd.node if n.name == node_of(k)).op.startswith("Placeholder")}
    try:
        conv = tf.compat.v1.lite.TFLiteConverter(
            gd, None, None,
            input_arrays_with_shape=[(node_of(k), list(v.shape)) for k, v in fed.items()],
            output_arrays=[node_of(o) for o in outputs])
        model = conv.convert()
    except Exception as e:  # noqa: BLE001 - the converter raises many kinds of errors
        return TargetResult("tflite", False, _first_line(e))
    try:
        interp = tf.lite.Interpreter(model_content=model, num_threads=1)
        interp.allocate_tensors()
        ins = {d["name"]: d for d in interp.get_input_details()}
        outs = interp.get_output_details()
        for k, v in fed.items():
            d = ins.get(node_of(k))
            if d is None:
                continue
            interp.set_tensor(d["index"], v.astype(d["dtype"]))
        interp.invoke()
        by_name = {d["name"]: d for d in outs}
        got = [interp.get_tensor((by_name.get(node_of(o)) or outs[i])["index"])
               for i, o in enumerate(outputs)]
    except Exception as e:  # noqa: BLE001
        return TargetResult("tflite", True, "converts but does not run: " + _first_line(e))
    result = TargetResult("tflite", True, "", _errors(got, reference, outputs))
    for _ in range(runs):
        t0 = time.perf_counter()
        interp.invoke()
        result.latencies_ms.append((time.perf_counter() - t0) * 1e3)
    return result


def _first_line(e: Exception) -> str:
    text = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    useful = [ln for ln in text if "error" in ln.lower() or "not supported" in ln.lower()]
    return (useful or text or [type(e).__name__])[0][:300]
