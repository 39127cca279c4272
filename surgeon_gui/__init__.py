"""Graph Surgeon: inspect and operate on TensorFlow graphs for inference."""
__version__ = "0.1.0"
