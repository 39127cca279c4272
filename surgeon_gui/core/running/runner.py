"""Running a GraphDef in TensorFlow: feeds, a reusable session, and clear errors.

:class:`GraphRunner` imports a GraphDef once into its own ``tf.Graph`` and session, so latency
can be measured over repeated runs. :func:`make_feeds` builds seeded inputs from each
Placeholder's dtype and shape (unknown dims given by the user, else 1). Every failure is a
:class:`RunError` naming the node and the problem.
"""
from __future__ import annotations

import re
from typing import Iterable

import numpy as np

from ..model.checks import unchanged_by_import
from ..model.graph import Graph, GraphDef, GraphError, node_of, shape_list, tensor_name


class RunError(GraphError):
    """Running a graph failed (unknown op, missing feed, wrong shape, broken graph)."""


def _tf():
    import tensorflow as tf
    return tf


def placeholder_spec(graph: Graph, name: str) -> tuple[np.dtype, list[int] | None]:
    """(numpy dtype, shape with -1 for unknown dims, or None for unknown rank) of an input."""
    tf = _tf()
    node = graph.node(name)
    dtype = tf.dtypes.as_dtype(node.attr["dtype"].type).as_numpy_dtype if "dtype" in node.attr \
        else np.float32
    shape = shape_list(node.attr["shape"].shape) if "shape" in node.attr else None
    return np.dtype(dtype), shape


def make_feeds(graph: Graph, inputs: Iterable[str] | None = None,
               shapes: dict[str, list[int]] | None = None, seed: int = 0,
               distribution: str = "normal", low: float = 0.0, high: float = 1.0,
               batch: int = 1) -> dict[str, np.ndarray]:
    """Seeded random feeds for each input; unknown dims take ``batch`` (first) or 1.

    ``distribution`` is ``normal``, ``uniform`` (in ``[low, high)``) or ``zeros``. Bool inputs
    are False (inference), integer inputs small non-negative ints. A bool input of unknown rank
    (``tf.compat.v1.placeholder(tf.bool)``, the usual TF1 training flag) gets a scalar: the
    inference value that the ``training_flags`` pass would set.
    """
    rng = np.random.default_rng(seed)
    shapes = shapes or {}
    feeds = {}
    for name in (inputs if inputs is not None else graph.inputs):
        dtype, shape = placeholder_spec(graph, name)
        if name in shapes or node_of(name) in shapes:
            given = list(shapes.get(name, shapes.get(node_of(name))))
            if shape is not None and len(shape) != len(given):
                raise RunError(f"input {name!r} has rank {len(shape)} ({shape}); the shape "
                               f"given has {len(given)} dims ({given})", nodes=[name])
            if shape is not None:
                # Unknown dims the user left unknown (-1) take the graph's known ones.
                given = [s if (g is None or g < 0) and s is not None and s >= 0 else g
                         for g, s in zip(given, shape)]
            shape = given
        if shape is None and dtype == np.bool_:
            shape = []  # a training flag: one scalar decides the whole graph
        if shape is None:
            raise RunError(f"input {name!r} ({dtype.name}) has unknown rank: give its shape "
                           f"(--shape {node_of(name)}=D1,D2,...)", nodes=[name])
        shape = [(batch if i == 0 else 1) if d is None or d < 0 else d
                 for i, d in enumerate(shape)]
        if dtype == np.bool_:
            value = np.zeros(shape, dtype=bool)
        elif np.issubdtype(dtype, np.integer):
            value = rng.integers(0, 10, size=shape).astype(dtype)
        elif distribution == "zeros":
            value = np.zeros(shape, dtype=dtype)
        elif distribution == "uniform":
            value = rng.uniform(low, high, size=shape).astype(dtype)
        else:
            value = rng.standard_normal(size=shape).astype(dtype)
        feeds[node_of(name)] = value
    return feeds


_NODE_IN_MSG = re.compile(r"node[ ']+\{?\{?(?:node )?([\w/.\-]+)")


class GraphRunner:
    """A GraphDef imported into its own graph and session, ready to run repeatedly."""

    def __init__(self, graph_def: GraphDef, threads: int = 0):
        tf = _tf()
        from ..model.io import unregistered_ops
        missing = unregistered_ops(graph_def)
        if missing:
            nodes = [n.name for n in graph_def.node if n.op in missing]
            raise RunError("this TensorFlow does not register the op(s) "
                           f"{', '.join(missing)} (used by {', '.join(nodes[:5])}); "
                           "the graph can be inspected and edited but not run", nodes=nodes)
        self.tf_graph = tf.Graph()
        try:
            with self.tf_graph.as_default():
                tf.compat.v1.import_graph_def(unchanged_by_import(graph_def), name="")
        except Exception as e:  # noqa: BLE001 - TF raises many types here
            raise RunError(f"TensorFlow cannot import the graph: {_short(e)}",
                           nodes=_nodes_in(e)) from None
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                          inter_op_parallelism_threads=threads)
        self.session = tf.compat.v1.Session(graph=self.tf_graph, config=config)

    def run(self, feeds: dict[str, np.ndarray], fetches: list[str]) -> list[np.ndarray]:
        try:
            fetch_t = [self.tf_graph.get_tensor_by_name(tensor_name(f)) for f in fetches]
        except (KeyError, ValueError) as e:
            raise RunError(f"cannot fetch: {_short(e)}") from None
        feed_t = {}
        for k, v in feeds.items():
            try:
                t = self.tf_graph.get_tensor_by_name(tensor_name(k))
            except (KeyError, ValueError):
                raise RunError(f"feed {k!r} names no tensor in the graph", nodes=[k]) from None
            if t.shape.rank is not None and (np.ndim(v) != t.shape.rank or any(
                    d is not None and d != s for d, s in zip(t.shape.as_list(), np.shape(v)))):
                raise RunError(f"input {k!r} expects shape {t.shape.as_list()}, "
                               f"got {list(np.shape(v))}", nodes=[node_of(k)])
            feed_t[t] = v
        try:
            return self.session.run(fetch_t, feed_t)
        except Exception as e:  # noqa: BLE001
            raise RunError(f"running the graph failed: {_short(e)}", nodes=_nodes_in(e)) from None

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_graph(graph_def: GraphDef, feeds: dict[str, np.ndarray],
              fetches: list[str]) -> list[np.ndarray]:
    """Run once and return the fetched values (a fresh session, closed afterwards)."""
    with GraphRunner(graph_def) as r:
        return r.run(feeds, fetches)


def _short(e: Exception) -> str:
    msg = getattr(e, "message", None) or str(e)
    lines = [ln for ln in msg.strip().splitlines() if ln.strip()]
    # TF 2.x wraps the cause in "Graph execution error: / Detected at node ... / Node: 'x'".
    useful = [ln for ln in lines if not re.match(
        r"\s*(Graph execution error:|Detected at node|Node: '|File \"|\[\[)", ln)]
    lines = useful or lines
    return lines[0].strip()[:500] if lines else type(e).__name__


def _nodes_in(e: Exception) -> list[str]:
    node_def = getattr(e, "node_def", None)
    if node_def is not None and getattr(node_def, "name", ""):
        return [node_def.name]
    m = _NODE_IN_MSG.search(str(e))
    return [m.group(1)] if m else []


def parse_shape(spec: str) -> tuple[str, list[int]]:
    """``input=1,224,224,3`` → ``("input", [1, 224, 224, 3])`` (``-1``/``?`` unknown)."""
    name, sep, dims = spec.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ValueError(f"bad shape {spec!r}: write NAME=D1,D2,... (e.g. input=1,224,224,3)")
    out = []
    for d in dims.replace("x", ",").split(","):
        d = d.strip()
        if d in ("?", "-1", "None"):
            out.append(-1)
        elif d.isdigit():
            out.append(int(d))
        elif d == "" and not dims.strip():
            break  # a scalar: NAME=
        else:
            raise ValueError(f"bad shape {spec!r}: {d!r} is not a dimension")
    return node_of(name), out
