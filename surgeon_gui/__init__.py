"""Graph Surgeon: inspect and operate on TensorFlow graphs for inference."""
__version__ = "0.1.0"

# TensorFlow's protobuf classes, imported without TensorFlow's runtime before anything else can
# import ``tensorflow.core`` (core/model/protos.py says how and why).
from .core.model import protos as _protos  # noqa: E402,F401
