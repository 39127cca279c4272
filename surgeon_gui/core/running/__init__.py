"""The running layer: run graphs, make sample inputs, compare two graphs, per-node drift, reports, deployment checks."""
