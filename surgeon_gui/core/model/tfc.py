"""TensorFlow's C++ runtime through its C API, without TensorFlow's Python runtime.

``import tensorflow`` costs 3-4 s and some 500 MB before anything runs. Optimizing a GraphDef
needs far less of it: the op registry (which ops exist, which are stateful), importing a
GraphDef into a graph (the import check: TensorFlow's own C++ importer, the one
``tf.compat.v1.import_graph_def`` calls) and running a small graph in a session (evaluating
constants with TensorFlow's own kernels, bit for bit). All three are in
``_pywrap_tf_session``, the C API's Python binding, which loads in about 0.4 s.

When TensorFlow is not imported yet and nothing is importing it (the CLI; the GUI always
imports it whole, in its background thread), the binding is imported the way
:mod:`.protos` imports TensorFlow's protos: under a placeholder ``tensorflow`` package that is
never executed and is removed straight afterwards. The modules loaded that way
(``tensorflow.python.client.pywrap_tf_session``, ``framework.errors_impl`` which registers
TensorFlow's exception classes with the binding, ``framework.op_def_registry``,
``framework.dtypes``) are TensorFlow's own and a later ``import tensorflow`` reuses them.
Otherwise the same modules come from the ordinary import.
"""
from __future__ import annotations

import builtins
import importlib
import importlib.util
import itertools
import sys
import threading
from collections.abc import Iterable

import numpy as np

from .startup_lines import restore_fd2, silence_fd2

_lock = threading.Lock()
_mods: dict | None = None

_MODULES = {
    "c": "tensorflow.python.client.pywrap_tf_session",
    "errors": "tensorflow.python.framework.errors_impl",
    "registry": "tensorflow.python.framework.op_def_registry",
    "dtypes": "tensorflow.python.framework.dtypes",
    "config": "tensorflow.core.protobuf.config_pb2",
}


def _bare_allowed() -> bool:
    if "tensorflow" in sys.modules:
        return False
    from . import tfenv
    # a background import is running, or imports are gated for one: take the ordinary path
    return tfenv._thread is None and not tfenv._gated


def _load() -> dict:
    if not _bare_allowed():
        from . import tfenv
        tfenv.wait_if_gated()   # never TensorFlow's first import in a Qt pool thread
        return {k: importlib.import_module(m) for k, m in _MODULES.items()}
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("TensorFlow is not installed (pip install tensorflow-cpu)")
    placeholder = importlib.util.module_from_spec(spec)  # __path__ set, __init__ not run
    saved = silence_fd2()  # the library's C++ start-up lines (absl, oneDNN)
    sys.modules["tensorflow"] = placeholder
    try:
        mods = {k: importlib.import_module(m) for k, m in _MODULES.items()}
    except Exception:  # noqa: BLE001 - another TF release's layout: the slow, sure path
        mods = None
    finally:
        if sys.modules.get("tensorflow") is placeholder:
            del sys.modules["tensorflow"]
        restore_fd2(saved)
    if mods is None:  # the modules that did load are TF's own; the full import reuses them
        importlib.import_module("tensorflow")
        mods = {k: importlib.import_module(m) for k, m in _MODULES.items()}
    return mods


def modules() -> dict:
    global _mods
    with _lock:
        if _mods is None:
            _mods = _load()
        return _mods


def c_api():
    """The C API binding (``pywrap_tf_session``)."""
    return modules()["c"]


def op_def(op: str):
    """The registered OpDef of ``op``, or None."""
    try:
        return modules()["registry"].get(op)
    except Exception:  # noqa: BLE001 - a malformed name is simply unknown
        return None


def _import(c, data: bytes):
    graph = c.PyGraph()
    opts = c.TF_NewImportGraphDefOptions()
    buf = c.TF_NewBufferFromString(data)
    try:
        results = c.TF_GraphImportGraphDefWithResults(graph, buf, opts)
        c.TF_DeleteImportGraphDefResults(results)
    finally:
        c.TF_DeleteBuffer(buf)
        c.TF_DeleteImportGraphDefOptions(opts)
    return graph


def import_error(data: bytes) -> BaseException | None:
    """What TensorFlow's C++ importer objects to in the serialized GraphDef ``data``, or None
    when it imports into a fresh graph."""
    c = c_api()
    try:
        _import(c, data)
    except Exception as e:  # noqa: BLE001 - TF raises InvalidArgumentError, ...
        return e
    return None


_ids = itertools.count(1)
_tensor_class = None


def _tensor_type(c, dtypes):
    global _tensor_class
    if _tensor_class is None:
        class _Tensor(c.PyTensor):  # what PyOperation makes its outputs of (shape, dtype)
            def __new__(cls, op, index, dtype):
                return c.PyTensor.__new__(cls, op, index, dtypes.as_dtype(dtype), next(_ids))
        _tensor_class = _Tensor
    return _tensor_class


def _outputs(c, dtypes, graph) -> dict[str, list]:
    """name -> the op's output tensors (each with ``_shape`` and ``_dtype``)."""
    tensor_type = _tensor_type(c, dtypes)
    out = {}
    for op in graph.new_operations():
        py_op = c.PyOperation(op, tensor_type)
        py_op.graph = graph
        py_op._init_outputs()  # noqa: SLF001
        out[c.TF_OperationName(op)] = (op, py_op.outputs)
    return out


def static_shapes(sub, tensors: list[str]) -> dict[str, list[int] | None]:
    """TensorFlow's static shape of each tensor once ``sub`` is imported (-1 for an unknown
    dim, None for an unknown rank; missing when the tensor is not there). Raises what the
    importer raises."""
    from .graph import parse_input
    m = modules()
    c = m["c"]
    ops = _outputs(c, m["dtypes"], _import(c, sub.SerializeToString()))
    out: dict[str, list[int] | None] = {}
    for t in tensors:
        ref = parse_input(t)
        entry = ops.get(ref.node)
        port = max(ref.port, 0)
        if entry is None or port >= len(entry[1]):
            continue
        dims, unknown_rank = entry[1][port]._shape  # noqa: SLF001
        out[t] = None if unknown_rank else [-1 if d is None else int(d) for d in dims]
    return out


def run_graph(sub, todo: list[str], max_bytes: dict[str, int] | None = None,
              size_limit=None, not_holdable=None) -> dict[str, object]:
    """Import ``sub`` (a GraphDef) and fetch the tensors ``todo`` in one session call.

    Returns ``{tensor: ndarray or exception}``: every tensor gets the import error if ``sub``
    does not import; a tensor that is not there gets a KeyError; one of a dtype a Const cannot
    hold gets ``not_holdable(tensor, dtype name)``; one whose static shape says it exceeds its
    ``max_bytes`` gets ``size_limit(nbytes, shape)``. If the session call fails, each tensor is
    fetched alone so one bad op only spoils its own result.
    """
    from .graph import parse_input
    m = modules()
    c, dtypes = m["c"], m["dtypes"]
    results: dict[str, object] = {}
    try:
        graph = _import(c, sub.SerializeToString())
    except Exception as e:  # noqa: BLE001
        return {t: e for t in todo}
    ops = _outputs(c, dtypes, graph)
    fetch = []
    for t in todo:
        ref = parse_input(t)
        port = max(ref.port, 0)
        if ref.node not in ops:
            results[t] = KeyError(f"the tensor {t} is not in the graph")
            continue
        op, outputs = ops[ref.node]
        if port >= len(outputs):
            results[t] = ValueError(f"{ref.node} has no output {port}")
            continue
        tensor = outputs[port]
        dtype = tensor._dtype  # noqa: SLF001
        if dtype in (dtypes.resource, dtypes.variant) or dtype._is_ref_dtype:  # noqa: SLF001
            results[t] = not_holdable(t, dtype.name) if not_holdable else TypeError(dtype.name)
            continue
        limit = (max_bytes or {}).get(t)
        dims, unknown_rank = tensor._shape  # noqa: SLF001
        if limit is not None and not unknown_rank and all(d is not None and d >= 0
                                                          for d in dims):
            n = int(np.prod(dims, dtype=np.int64)) * max(dtype.size, 1)
            if n > limit:
                results[t] = size_limit(n, list(dims)) if size_limit else MemoryError(n)
                continue
        out = c.TF_Output()
        out.oper = op
        out.index = port
        fetch.append((t, out))
    if not fetch:
        return results
    config = m["config"].ConfigProto(intra_op_parallelism_threads=2,
                                     inter_op_parallelism_threads=2)
    opts = c.TF_NewSessionOptions(config=config)
    saved = silence_fd2() if _quiet_first_session else None
    try:
        session = c.TF_NewSessionRef(graph, opts)
    except BaseException:
        restore_fd2(saved)
        raise
    finally:
        c.TF_DeleteSessionOptions(opts)
    try:
        return _run(c, session, fetch, results, saved)
    finally:
        c.TF_CloseSession(session)
        c.TF_DeleteSession(session)


#: The first session prints TensorFlow's C++ start-up lines (oneDNN): not to the user's terminal.
_quiet_first_session = True


def _run(c, session, fetch, results, saved) -> dict[str, object]:
    global _quiet_first_session
    try:
        try:
            values = c.TF_SessionRun_wrapper(session, None, {}, [o for _, o in fetch], [],
                                             None)
            for (t, _), v in zip(fetch, values):
                results[t] = np.asarray(v)
        except Exception:  # noqa: BLE001 - isolate the failing tensor(s)
            for t, o in fetch:
                try:
                    (v,) = c.TF_SessionRun_wrapper(session, None, {}, [o], [], None)
                    results[t] = np.asarray(v)
                except Exception as e:  # noqa: BLE001
                    results[t] = e
    finally:
        if saved is not None:
            restore_fd2(saved)
            _quiet_first_session = False
    return results


def loaded_names() -> Iterable[str]:
    return sorted(k for k in sys.modules if k.startswith("tensorflow"))
