"""TensorFlow's protobuf classes (``GraphDef``, ``NodeDef``, ...) without importing TensorFlow.

TensorFlow's generated ``*_pb2`` modules are plain protobuf, but ``import
tensorflow.core.framework.graph_pb2`` first runs ``tensorflow/__init__.py``, which loads the
whole runtime (2-4 s and some 400 MB). Nothing before the first view needs that runtime.

So the modules are imported under their own names while ``sys.modules["tensorflow"]`` is a
module made from TensorFlow's import spec but never executed; the placeholder is removed at
once. ``tensorflow.core`` and the ``*_pb2`` modules stay in ``sys.modules``: a later
``import tensorflow`` runs TensorFlow's real ``__init__`` and finds these very modules, so the
classes are TensorFlow's own (``tf.compat.v1.GraphDef is graph_pb2.GraphDef``), a GraphDef
goes to ``import_graph_def``, sessions and Grappler as it is (no conversion, no copy), and the
descriptors are registered once. ``tensorflow/core/__init__.py`` and its ``framework`` and
``protobuf`` packages are empty, and TensorFlow's ``__init__`` deletes its ``core`` attribute
anyway, so the end state is the one a plain ``import tensorflow`` gives. Any later
``from tensorflow.core.framework import types_pb2`` in our code also resolves without TF.

This runs when :mod:`surgeon_gui.core` is imported, in the importing (main) thread, before
anything can start a background TensorFlow import (:func:`.tfenv.import_in_background`).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys

_MODULES = (
    "tensorflow.core.framework.types_pb2",
    "tensorflow.core.framework.tensor_shape_pb2",
    "tensorflow.core.framework.tensor_pb2",
    "tensorflow.core.framework.attr_value_pb2",
    "tensorflow.core.framework.node_def_pb2",
    "tensorflow.core.framework.op_def_pb2",
    "tensorflow.core.framework.function_pb2",
    "tensorflow.core.framework.versions_pb2",
    "tensorflow.core.framework.graph_pb2",
    "tensorflow.core.protobuf.meta_graph_pb2",
    "tensorflow.core.protobuf.saved_model_pb2",
)


def _import_protos() -> list:
    if "tensorflow" in sys.modules:  # TF is (being) imported already: nothing to avoid
        return [importlib.import_module(m) for m in _MODULES]
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("TensorFlow is not installed (surgeon_gui needs its protobuf "
                          "definitions: pip install tensorflow-cpu)")
    placeholder = importlib.util.module_from_spec(spec)  # __path__ set, __init__ not run
    sys.modules["tensorflow"] = placeholder
    try:
        return [importlib.import_module(m) for m in _MODULES]
    except Exception:  # noqa: BLE001 - another TensorFlow layout: take the slow, sure path
        for name in [n for n in sys.modules if n == "tensorflow" or n.startswith("tensorflow.")]:
            del sys.modules[name]
        importlib.import_module("tensorflow")
        return [importlib.import_module(m) for m in _MODULES]
    finally:
        if sys.modules.get("tensorflow") is placeholder:
            del sys.modules["tensorflow"]


(types_pb2, tensor_shape_pb2, tensor_pb2, attr_value_pb2, node_def_pb2, op_def_pb2,
 function_pb2, versions_pb2, graph_pb2, meta_graph_pb2, saved_model_pb2) = _import_protos()

GraphDef = graph_pb2.GraphDef
NodeDef = node_def_pb2.NodeDef


def tensorflow_imported() -> bool:
    """True once TensorFlow's runtime has been imported (not just its protos)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and hasattr(tf, "__version__")
