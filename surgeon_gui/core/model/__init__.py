"""The model layer: the graph index, its editor, loading and saving, TensorFlow access."""
