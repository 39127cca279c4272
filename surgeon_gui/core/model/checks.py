"""What is wrong with a graph, as a list of one-line problems (TensorFlow would reject it).

:func:`bad_enums` finds enum values TensorFlow does not know (a ``DataType`` of 999); the loader
refuses such a file and names them. :func:`graph_problems` lists the rest for ``surgeon info``
and the app: structure (duplicate names, inputs naming a missing node, cycles), a ``Const``
without a value or whose value's dtype is not its ``dtype``, and — with TensorFlow's op
registry at hand (``deep``) — required attributes missing, an attribute of the wrong kind,
an input port the producer does not have, a data input count the op does not take, and
finally what ``import_graph_def`` itself says. An op TensorFlow does not register is not a
problem for inspection: :func:`~surgeon_gui.core.model.io.unregistered_ops` lists those.
"""
from __future__ import annotations

import sys

from .graph import Graph, GraphDef, GraphError, parse_input
from .protos import types_pb2

_VALID_DTYPES = frozenset(types_pb2.DataType.values())
#: Problems listed at most (a broken graph can have thousands).
MAX_PROBLEMS = 50


def bad_enums(gd: GraphDef, limit: int = 10) -> list[str]:
    """``node X: attr T holds DataType 999, which TensorFlow does not know`` ...

    Runs on every load over every attribute of every node, so the common case (nothing wrong)
    builds no strings: a node's attributes are only described once one of them is bad."""
    found: list[str] = []
    valid = _VALID_DTYPES

    def bad_values(attrs) -> list[tuple[str, str, int]]:
        out = []
        for key in attrs:   # (the map's items() is a Python-level view: slower)
            v = attrs[key]
            which = v.WhichOneof("value")
            if which == "type":
                if v.type not in valid:
                    out.append((key, "", v.type))
            elif which == "list":
                lst = v.list
                if not lst.type and not lst.tensor:  # (most lists: strings, ints, shapes)
                    continue
                for t in lst.type:
                    if t not in valid:
                        out.append((key, "", t))
                for t in lst.tensor:
                    if t.dtype not in valid:
                        out.append((key, " tensor", t.dtype))
            elif which == "tensor":
                if v.tensor.dtype not in valid:
                    out.append((key, " tensor", v.tensor.dtype))
        return out

    def report(prefix: str, bad) -> None:
        for key, what, value in bad:
            if len(found) < limit:
                found.append(f"{prefix} attr {key}{what} holds DataType {value}, which "
                             "TensorFlow does not know")

    # the nodes' attributes, inlined (a call per node, and per attribute a second branch,
    # cost as much as the reads on a 107k-node graph's 243k attributes); a node with one
    # that is not plainly valid is described by bad_values
    for node in gd.node:
        attrs = node.attr
        for key in attrs:
            v = attrs[key]
            which = v.WhichOneof("value")
            if which == "type":
                if v.type in valid:
                    continue
            elif which == "tensor":
                if v.tensor.dtype in valid:
                    continue
            elif which != "list":
                continue
            else:
                lst = v.list
                if not lst.type and not lst.tensor:  # (most lists: strings, ints, shapes)
                    continue
            bad = bad_values(attrs)
            if bad:
                report(f"node {node.name}:", bad)
                if len(found) >= limit:
                    return found
            break
    for f in gd.library.function:
        for node in f.node_def:
            bad = bad_values(node.attr)
            if bad:
                report(f"function {f.signature.name} node {node.name}:", bad)
        for arg in list(f.signature.input_arg) + list(f.signature.output_arg):
            if arg.type and arg.type not in valid and len(found) < limit:
                found.append(f"function {f.signature.name} arg {arg.name} holds DataType "
                             f"{arg.type}, which TensorFlow does not know")
        if len(found) >= limit:
            break
    return found


def graph_problems(gd: GraphDef, deep: bool | None = None, source: str | None = None,
                   graph: Graph | None = None, enums_checked: bool = False) -> list[str]:
    """Every problem found, one line each (empty: TensorFlow would take the graph).

    ``deep`` (default: when TensorFlow is already imported) also asks TensorFlow's op
    registry and ``import_graph_def``; without it the checks need no TensorFlow. ``graph``:
    an index of ``gd`` already built (the loader's), whose structural checks (a topological
    sort) are then reused rather than done again; ``enums_checked``: :func:`bad_enums` has
    already found nothing (the loader refuses such files), so it is not run again."""
    if deep is None:
        deep = "tensorflow" in sys.modules
    problems: list[str] = [] if enums_checked else list(bad_enums(gd))
    if graph is None or graph.graph_def is not gd:
        graph = Graph(gd, source=source)
    problems += [p.problem for p in graph.problems()]
    if len(graph.nodes) != len(gd.node):  # duplicate names
        consts = [n for n in gd.node if n.op == "Const"]
    else:   # the index's ops, read once and shared with the group tree
        nodes = graph.nodes
        consts = [nodes[n] for n, op in graph.ops.items() if op == "Const"]
    for node in consts:
        if node.op == "Const":
            attrs = node.attr   # (one protobuf map access per node, not five)
            value = attrs["value"] if "value" in attrs else None
            if value is None or value.WhichOneof("value") != "tensor":
                problems.append(f"node {node.name}: a Const without a value")
            elif "dtype" in attrs and value.tensor.dtype != attrs["dtype"].type:
                problems.append(f"node {node.name}: the Const's value is "
                                f"{_dt(value.tensor.dtype)} but its dtype is "
                                f"{_dt(attrs['dtype'].type)}")
    if deep:
        problems += _registry_problems(graph)
        from .io import unregistered_ops
        if not problems and not unregistered_ops(gd):  # those are listed apart
            tf_says = import_problem(gd)
            if tf_says:
                problems.append(f"TensorFlow cannot import it: {tf_says}")
    if len(problems) > MAX_PROBLEMS:
        n = len(problems) - MAX_PROBLEMS
        problems = problems[:MAX_PROBLEMS] + [f"... and {n} more"]
    return problems


def _dt(v: int) -> str:
    from .graph import dtype_name
    return dtype_name(v)


def _registry_problems(graph: Graph) -> list[str]:
    from tensorflow.python.framework import op_def_registry
    gd = graph.graph_def
    lib = {f.signature.name for f in gd.library.function}
    out: list[str] = []
    for node in gd.node:
        if node.op in lib or node.op == "Const":  # a Const is checked above
            continue
        try:
            op = op_def_registry.get(node.op)
        except Exception:  # noqa: BLE001
            op = None
        if op is None:
            continue  # unregistered: listed apart, still open for inspection
        missing = [a.name for a in op.attr
                   if a.name not in node.attr and not a.HasField("default_value")]
        if missing:
            out.append(f"node {node.name} ({node.op}): missing attribute(s) "
                       f"{', '.join(missing)}")
        if not any(a.number_attr or a.type_list_attr for a in op.input_arg):
            data = [t for t in node.input if not t.startswith("^")]
            if len(data) != len(op.input_arg):
                out.append(f"node {node.name} ({node.op}): {len(data)} data input(s), the op "
                           f"takes {len(op.input_arg)}")
    for node in gd.node:
        for text in node.input:
            ref = parse_input(text)
            if ref.control or ref.port <= 0:
                continue
            prod = graph.nodes.get(ref.node)
            if prod is None or prod.op in lib:
                continue
            try:
                op = op_def_registry.get(prod.op)
            except Exception:  # noqa: BLE001
                op = None
            if op is None or any(a.number_attr or a.type_list_attr for a in op.output_arg):
                continue
            if ref.port >= len(op.output_arg):
                out.append(f"node {node.name} reads {text!r}, but {prod.op} has "
                           f"{len(op.output_arg)} output(s)")
    return out


def unchanged_by_import(graph_def: GraphDef) -> GraphDef:
    """What to give ``tf.compat.v1.import_graph_def`` so that ``graph_def`` stays as it is:
    the importer writes every attribute its op has a default for into the caller's NodeDefs
    (undocumented, "visible to the caller"), so a graph written without them (an older
    TensorFlow, ``strip_default_attrs``) would change under the app's feet on a comparison
    run: unsaved edits with no step, and saved bytes that differ from the recipe's replay.
    A copy is given then; a graph that has them all is given as it is."""
    from tensorflow.python.framework import op_def_registry
    defaults: dict[str, list[str]] = {}
    for node in graph_def.node:
        names = defaults.get(node.op)
        if names is None:
            op = op_def_registry.get(node.op)
            names = defaults[node.op] = [a.name for a in op.attr if a.HasField("default_value")] \
                if op is not None else []
        if any(n not in node.attr for n in names):
            copy = type(graph_def)()
            copy.CopyFrom(graph_def)
            return copy
    return graph_def


def import_problem(gd: GraphDef) -> str | None:
    """What ``tf.compat.v1.import_graph_def`` objects to (one line), or None."""
    import tensorflow as tf
    try:
        with tf.Graph().as_default():
            tf.compat.v1.import_graph_def(unchanged_by_import(gd), name="")
    except Exception as e:  # noqa: BLE001 - TF raises ValueError, InvalidArgumentError, ...
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        return (lines[0] if lines else type(e).__name__)[:300]
    return None


def raise_on_bad_enums(gd: GraphDef, source: str | None) -> None:
    bad = bad_enums(gd)
    if bad:
        raise GraphError("holds values TensorFlow does not know: " + "; ".join(bad[:3])
                         + (f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""), source,
                         [b.split(":")[0].removeprefix("node ") for b in bad])
