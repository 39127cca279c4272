"""Manual edits: the hand surgery a user does from the graph view, as plain functions (Qt-free).

Each edit is ``kind`` + ``args`` (JSON-friendly, so it is recorded in recipes as
``{"edit": kind, "args": {...}}``) and is checked in full before anything changes: an invalid
edit raises :class:`EditRefused` with the reason (a cycle, a dtype mismatch, a dangling input, a
name taken) and the graph is untouched. The input graph is never edited in place.

Kinds (args):

- ``remove_node`` (``node``, ``mode``: ``"bypass"`` | ``"cascade"``) — *bypass*: the node's
  readers read its first data input instead; *cascade*: remove the node, everything that depends
  on it, and the producers left feeding nothing (weights only it used).
- ``rename_node`` (``node``, ``new_name``) — every input, colocation and graph input/output
  naming it follows.
- ``set_attr`` (``node``, ``attr``, ``value``, optional ``type``) — a typed value: ``i``, ``f``,
  ``b``, ``s``, ``type`` (dtype name), ``shape`` (list, -1 unknown, null unknown rank),
  ``list_i``/``list_f``/``list_s``/``list_b``/``list_type``/``list_shape``, ``tensor`` (an
  array value, see below). The type defaults to the attribute's current kind.
- ``set_input`` (``node``, ``index``, ``source``) — input slot ``index`` reads ``source``
  (``producer`` or ``producer:port``).
- ``make_output`` (``node``) — add the node to the graph's outputs.
- ``cut_to_outputs`` (``outputs``: list) — make these the outputs and remove everything they do not
  need.
- ``placeholder_to_const`` (``node``, ``value``) — a Placeholder (or PlaceholderWithDefault)
  becomes a Const holding the value (cast to its dtype; shape must fit).
- ``replace_const`` (``node``, ``value``, optional ``allow_reshape``) — a Const gets a new value
  of the same dtype (and the same shape unless ``allow_reshape``).

Array values (``value`` of the last two, ``tensor`` attributes) are stored in recipes either
inline, ``{"dtype": "float32", "shape": [2, 3], "values": [...flat...]}`` (also a bare number or
nested list, cast to the target dtype), or as a file, ``{"npy": "/abs/path.npy", "sha256": ...}``:
the GUI keeps the path the user chose (absolute) and its SHA-256, and replay refuses a file whose
contents changed. Relative ``npy`` paths are taken from the current folder.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..model.editor import GraphEditor
from ..model.graph import (
    LOOP_BACK_OPS,
    Graph,
    GraphDef,
    GraphError,
    NodeDef,
    format_input,
    gc_paused,
    make_const,
    node_of,
    parse_input,
)


class EditRefused(GraphError):
    """An edit that would break the graph, refused before anything changed."""


@dataclass
class EditResult:
    graph_def: GraphDef
    inputs: list[str] | None
    outputs: list[str] | None
    label: str
    removed: set[str] = field(default_factory=set)
    added: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    #: an index of ``graph_def`` the checks built (no given inputs/outputs; source None), to
    #: share instead of indexing the result again (None: not made)
    graph: Graph | None = None


#: kind -> (title for menus, function)
EDIT_KINDS: dict[str, tuple[str, Callable[[Graph, dict], EditResult]]] = {}

_NAME_RE = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/>]*$")
INLINE_LIMIT = 4096  # elements; bigger arrays go to recipes as .npy files


def _kind(name: str, title: str):
    def deco(fn):
        EDIT_KINDS[name] = (title, fn)
        return fn
    return deco


def apply_edit(graph: Graph, kind: str, args: dict) -> GraphDef:
    """Apply one edit; returns the new GraphDef (``graph`` is untouched)."""
    return apply_edit_io(graph, kind, args).graph_def


def apply_edit_io(graph: Graph, kind: str, args: dict) -> EditResult:
    """Apply one edit; returns the new GraphDef with the graph inputs/outputs after it."""
    if kind not in EDIT_KINDS:
        raise EditRefused(f"unknown edit {kind!r}; known: {', '.join(EDIT_KINDS)}")
    if not isinstance(args, dict):
        raise EditRefused(f"edit {kind}: args must be an object")
    return EDIT_KINDS[kind][1](graph, dict(args))


def check_edit(graph: Graph, kind: str, args: dict) -> str | None:
    """The reason the edit would be refused, or None if it applies."""
    try:
        apply_edit_io(graph, kind, args)
    except GraphError as e:
        return e.problem
    return None


def describe(kind: str, args: dict) -> str:
    """A short label for the History panel."""
    node = args.get("node", "")
    return {
        "remove_node": f"Delete {node}" + (" (bypass)" if args.get("mode", "bypass") == "bypass"
                                           else " and its dependents"),
        "rename_node": f"Rename {node} → {args.get('new_name', '')}",
        "set_attr": f"Set {node}.{args.get('attr', '')}",
        "set_input": f"Set input {args.get('index', '')} of {node} ← {args.get('source', '')}",
        "make_output": f"Make {node} an output",
        "cut_to_outputs": "Cut graph to " + ", ".join(args.get("outputs") or []),
        "placeholder_to_const": f"Placeholder {node} → Const",
        "replace_const": f"Replace value of {node}",
    }.get(kind, f"Edit {kind}")


# ---------------------------------------------------------------------- helpers
def _need(args: dict, key: str, kind: str, typ=str):
    if key not in args:
        raise EditRefused(f"edit {kind}: missing argument {key!r}")
    v = args[key]
    if typ is str and (not isinstance(v, str) or not v):
        raise EditRefused(f"edit {kind}: {key!r} must be a non-empty name")
    if typ is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise EditRefused(f"edit {kind}: {key!r} must be an integer")
    return v


def _node(graph: Graph, name: str) -> NodeDef:
    if name not in graph.nodes:
        raise EditRefused(f"no node named {name!r}", nodes=[name])
    return graph.nodes[name]


def _io_names(lst):
    return {node_of(x) for x in (lst or [])}


def _check_structure(gd: GraphDef | Graph, what: str) -> None:
    problems = (gd if isinstance(gd, Graph) else Graph(gd)).problems()
    if problems:
        raise EditRefused(f"{what} would break the graph: {problems[0].problem}",
                          nodes=problems[0].nodes)


def _op_def(op: str):
    try:
        from tensorflow.python.framework import op_def_registry
        return op_def_registry.get(op)
    except Exception:  # noqa: BLE001
        return None


def _arg_types(node: NodeDef, args) -> list[int | None] | None:
    out: list[int | None] = []
    for arg in args:
        if arg.type_list_attr:
            if arg.type_list_attr not in node.attr:
                return None
            out.extend(node.attr[arg.type_list_attr].list.type)
            continue
        n = 1
        if arg.number_attr:
            if arg.number_attr not in node.attr:
                return None
            n = node.attr[arg.number_attr].i
        if arg.type:
            t = arg.type
        elif arg.type_attr and arg.type_attr in node.attr:
            t = node.attr[arg.type_attr].type
        else:
            t = None
        out.extend([t] * n)
    return out


def output_dtypes(node: NodeDef) -> list[int | None] | None:
    """The dtype of each output of ``node`` from its op definition (None: unknown op)."""
    od = _op_def(node.op)
    return None if od is None else _arg_types(node, od.output_arg)


def input_dtypes(node: NodeDef) -> list[int | None] | None:
    """The dtype each data input of ``node`` expects (None: unknown op)."""
    od = _op_def(node.op)
    return None if od is None else _arg_types(node, od.input_arg)


def _dtype_name(t) -> str:
    from ..model.graph import dtype_name
    return dtype_name(t)


def dtype_conflicts(graph: Graph, names) -> list[str]:
    """Dtype mismatches on the data inputs of ``names`` and of their readers."""
    found = []
    check = set()
    for n in names:
        if n in graph.nodes:
            check.add(n)
            check.update(graph.consumer_names(n))
    for name in sorted(check):
        node = graph.nodes[name]
        want = input_dtypes(node)
        if want is None:
            continue
        data = [parse_input(t) for t in node.input if not t.startswith("^")]
        for i, ref in enumerate(data):
            if i >= len(want) or want[i] is None or ref.node not in graph.nodes:
                continue
            have = output_dtypes(graph.nodes[ref.node])
            if not have or ref.port >= len(have) or have[ref.port] is None:
                continue
            if (have[ref.port] % 100) != (want[i] % 100):  # ignore ref-ness
                found.append(f"{name} input {i} expects {_dtype_name(want[i])} but "
                             f"{format_input(ref.node, ref.port)} gives "
                             f"{_dtype_name(have[ref.port])}")
    return found


def _check_dtypes(graph: Graph, names, what: str) -> None:
    problems = dtype_conflicts(graph, names)
    if problems:
        raise EditRefused(f"{what}: dtype mismatch: {problems[0]}",
                          nodes=[problems[0].split(" ", 1)[0]])


def _result_index(graph: Graph, ed: GraphEditor, gd: GraphDef, in_order: bool) -> Graph:
    """The index of ``gd``, the copy ``ed`` made of ``graph``'s GraphDef (its given inputs and
    outputs left out), patched from ``graph``'s index in proportion to the edit
    (:meth:`Graph.updated`: its consumers) instead of built again from every node. Only when
    the editor removed and changed nodes of ``graph`` and added none, and made ``gd`` with
    the rest in their old order (``in_order``: :attr:`GraphEditor.keeps_order`, asked before
    its result); else a fresh index."""
    nodes = graph.nodes
    removed, changed = set(ed.removed), set(ed.changed)
    if (not in_order or graph._duplicates or graph._consumers is None or ed.added
            or removed & changed or not removed <= nodes.keys() or not changed <= nodes.keys()
            or len(gd.node) != len(nodes) - len(removed)):
        return Graph(gd, source=graph.source)
    names = [n for n in graph.order if n not in removed]
    old = {n: (nodes[n].op, list(nodes[n].input)) for n in removed | changed}
    base = graph.sharing_index(source=graph.source)
    base.graph_def = gd   # (the index of graph's GraphDef, now read as gd's before the edit)
    with gc_paused():   # (dicts of every node: no use walking the heap meanwhile)
        return base.updated(removed, (), changed, old, names=names)


def _bypass_keeps_structure(graph: Graph, node: NodeDef, readers: list[str],
                            new_graph: Graph) -> bool:
    """Whether bypassing ``node`` (its ``readers`` now read its inputs) is known to leave no
    structural problem in ``new_graph``, the result's index, without the structure check's
    topological sort of every node (which is then left for when the order is asked for); if
    so, the result's index records that it has none, as the check would have.

    Every edge the bypass makes, input -> reader, stands for the path input -> node -> reader
    of the old graph, so a cycle of the result maps onto one of the old graph, which had none
    (its index checked it) -- unless the node is a loop's back edge (NextIteration: its edge
    into the Merge is the one the sort ignores, and the bypass makes it an ordinary one), so
    then, and whenever a reader is a Merge, the old index is unchecked or has a problem, or
    an input of the result names a missing node, the full check runs."""
    known = graph._problems
    if (graph._duplicates or new_graph._duplicates or known is None
            or known[0] != graph.source or known[1] or new_graph.source != graph.source
            or node.op in LOOP_BACK_OPS
            or any(graph.nodes[r].op in ("Merge", "RefMerge") for r in readers)):
        return False
    present = new_graph.nodes
    if any(p not in present for p in new_graph._build_consumers()):
        return False
    new_graph._problems = (new_graph.source, [])
    return True


def _result(graph: Graph, ed: GraphEditor, label: str, inputs=None, outputs=None,
            keep_io=True) -> EditResult:
    gd = ed.result()
    ins = graph.given_inputs if inputs is None and keep_io else inputs
    outs = graph.given_outputs if outputs is None and keep_io else outputs
    return EditResult(gd, ins, outs, label, set(ed.removed), set(ed.added), set(ed.changed))


# ---------------------------------------------------------------------- values
def load_value(spec: Any) -> np.ndarray:
    """An array from a recipe value spec (inline list/number, dict with values, or npy file)."""
    if isinstance(spec, np.ndarray):
        return spec
    if isinstance(spec, dict):
        if "npy" in spec:
            path = Path(str(spec["npy"])).expanduser()
            try:
                data = path.read_bytes()
            except OSError as e:
                raise EditRefused(f"cannot read {path}: {e.strerror or e}") from None
            want = spec.get("sha256")
            if want and hashlib.sha256(data).hexdigest() != want:
                raise EditRefused(f"{path} changed since the edit was recorded (SHA-256 differs)")
            try:
                import io
                arr = np.load(io.BytesIO(data), allow_pickle=False)
            except Exception as e:  # noqa: BLE001
                raise EditRefused(f"{path} is not a .npy array file ({e})") from None
            if not isinstance(arr, np.ndarray):
                raise EditRefused(f"{path} holds several arrays (.npz); give a .npy file")
            return arr
        if "values" in spec:
            try:
                arr = np.asarray(spec["values"], dtype=spec.get("dtype"))
                if "shape" in spec and spec["shape"] is not None:
                    arr = arr.reshape([int(d) for d in spec["shape"]])
            except (TypeError, ValueError) as e:
                raise EditRefused(f"bad inline value: {e}") from None
            return arr
        raise EditRefused("a value must be a number, a list, {\"values\": ...} or "
                          "{\"npy\": path}")
    try:
        arr = np.asarray(spec)
    except (TypeError, ValueError) as e:
        raise EditRefused(f"bad value: {e}") from None
    if arr.dtype == object:
        raise EditRefused("bad value: a ragged or non-numeric list")
    return arr


def value_spec(arr: np.ndarray, npy_path: str | None = None) -> dict:
    """How an array is written into a recipe (see the module docstring)."""
    if npy_path is not None:
        data = Path(npy_path).read_bytes()
        return {"npy": str(Path(npy_path).resolve()),
                "sha256": hashlib.sha256(data).hexdigest()}
    arr = np.asarray(arr)
    if arr.size > INLINE_LIMIT:
        raise ValueError(f"{arr.size} values are too many to store inline; use a .npy file")
    return {"dtype": arr.dtype.name, "shape": list(arr.shape), "values": arr.ravel().tolist()}


def _cast(arr: np.ndarray, dtype, what: str) -> np.ndarray:
    target = np.dtype(dtype)
    if arr.dtype == target:
        return arr
    if arr.dtype.kind == "f" and target.kind in "iu" and not np.all(np.mod(arr, 1) == 0):
        raise EditRefused(f"{what}: dtype mismatch: the value has fractions but the node holds "
                          f"{target.name}")
    if arr.dtype.kind in "fc" and target.kind == "b" or arr.dtype.kind == "b" and \
            target.kind not in "biu":
        raise EditRefused(f"{what}: dtype mismatch: {arr.dtype.name} value for a "
                          f"{target.name} node")
    if arr.dtype.kind in "iu" and target.kind in "iu":
        info = np.iinfo(target)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise EditRefused(f"{what}: values do not fit in {target.name}")
    return arr.astype(target)


def _np_dtype(tf_enum: int):
    from tensorflow.python.framework import dtypes
    return dtypes.as_dtype(tf_enum).as_numpy_dtype


# ---------------------------------------------------------------------- the edits
@_kind("remove_node", "Delete node")
def remove_node(graph: Graph, args: dict) -> EditResult:
    name = _need(args, "node", "remove_node")
    mode = args.get("mode", "bypass")
    node = _node(graph, name)
    given_outs = _io_names(graph.given_outputs)
    ed = GraphEditor(graph)
    if mode == "bypass":
        data = [t for t in node.input if not t.startswith("^")]
        if not data:
            raise EditRefused(f"cannot bypass {name}: it has no data input for its readers to "
                              f"take (delete it with its dependents instead)", nodes=[name])
        if name in given_outs:
            raise EditRefused(f"cannot bypass {name}: it is a graph output (choose other "
                              f"outputs first)", nodes=[name])
        bad = [c for c, _, ref in graph.consumers(name) if not ref.control and ref.port > 0]
        if bad:
            raise EditRefused(f"cannot bypass {name}: {bad[0]} reads its output other than the "
                              f"first, which has no input to take its place", nodes=[name, bad[0]])
        # (the readers from the document's consumer index, the editor's index from its
        # node index: no look at every node)
        readers = graph.consumer_names(name)
        ed.index_from(graph)
        try:
            ed.bypass(name, readers=readers)
        except GraphError as e:
            raise EditRefused(e.problem, nodes=e.nodes or [name]) from None
        in_order = ed.keeps_order
        gd = ed.result()
        new_graph = _result_index(graph, ed, gd, in_order)   # one index: checks and step
        _check_dtypes(new_graph, readers, f"bypassing {name}")
        if not _bypass_keeps_structure(graph, node, readers, new_graph):
            _check_structure(new_graph, f"bypassing {name}")
        res = _result(graph, ed, describe("remove_node", args))
        res.graph = new_graph
        return res
    if mode != "cascade":
        raise EditRefused(f"remove_node: mode must be 'bypass' or 'cascade', not {mode!r}")
    doomed = graph.downstream([name])
    outs = _io_names(graph.outputs)   # (detected when not given: a look at every node)
    lost = sorted(given_outs & doomed)
    if lost:
        raise EditRefused(f"deleting {name} would remove graph output(s) {', '.join(lost)} "
                          f"(choose other outputs first)", nodes=[name] + lost)
    if outs and outs <= doomed:
        raise EditRefused(f"deleting {name} would remove every graph output", nodes=[name])
    # then the producers that fed only doomed nodes (their weights); graph inputs stay
    doomed |= _orphaned(graph, [r.node for d in doomed for r in graph.input_refs(d)], doomed)
    ed.remove(doomed)
    in_order = ed.keeps_order
    gd = ed.result()
    new_graph = _result_index(graph, ed, gd, in_order)   # one index: the check and the step
    _check_structure(new_graph, f"deleting {name}")
    res = _result(graph, ed, describe("remove_node", args))
    res.graph = new_graph
    return res


@_kind("rename_node", "Rename node")
def rename_node(graph: Graph, args: dict) -> EditResult:
    name = _need(args, "node", "rename_node")
    new = _need(args, "new_name", "rename_node")
    _node(graph, name)
    if new == name:
        raise EditRefused(f"{name} already has that name", nodes=[name])
    if not _NAME_RE.match(new):
        raise EditRefused(f"{new!r} is not a valid node name (letters, digits, . _ - / >; not "
                          f"starting with _ - / >)", nodes=[name])
    if new in graph.nodes:
        raise EditRefused(f"a node named {new!r} already exists", nodes=[name, new])
    if any(f.signature.name == new for f in graph.graph_def.library.function):
        raise EditRefused(f"{new!r} is the name of a function in the library", nodes=[name])
    ed = GraphEditor(graph)
    node = ed.node(name)
    node.name = new
    ed._index[new] = ed._index.pop(name)
    ed.changed.add(new)
    loc_old, loc_new = f"loc:@{name}".encode(), f"loc:@{new}".encode()
    for n in ed.nodes():
        changed = False
        for i, text in enumerate(n.input):
            ref = parse_input(text)
            if ref.node == name:
                n.input[i] = format_input(new, ref.port, ref.control)
                changed = True
        if "_class" in n.attr:
            vals = n.attr["_class"].list.s
            for i, v in enumerate(vals):
                if v == loc_old:
                    vals[i] = loc_new
                    changed = True
        if changed:
            ed.mark_changed(n.name)

    def follow(lst):
        if lst is None:
            return None
        out = []
        for x in lst:
            ref = parse_input(x)
            out.append(format_input(new, ref.port) if ref.node == name and ":" in x else
                       (new if ref.node == name else x))
        return out
    res = _result(graph, ed, describe("rename_node", args), follow(graph.given_inputs),
                  follow(graph.given_outputs))
    res.removed, res.added = {name}, {new}
    res.changed.discard(new)
    return res


_ATTR_KINDS = {"i", "f", "b", "s", "type", "shape", "tensor", "list_i", "list_f", "list_s",
               "list_b", "list_type", "list_shape", "func"}


def attr_kind(attr_value) -> str | None:
    """The kind of an AttrValue (``i``, ``list_type``, ...) or None when unset."""
    which = attr_value.WhichOneof("value")
    if which is None:
        return None
    if which == "list":
        lst = attr_value.list
        for k in ("i", "f", "s", "b", "type", "shape", "tensor", "func"):
            if len(getattr(lst, k)):
                return "list_" + k
        return "list_i"
    return which


def _dtype_enum(v) -> int:
    from tensorflow.python.framework import dtypes
    try:
        return dtypes.as_dtype(v).as_datatype_enum
    except (TypeError, ValueError):
        raise EditRefused(f"{v!r} is not a dtype name (float32, int32, bool, ...)") from None


def _shape_proto(v, proto):
    proto.Clear()
    if v is None:
        proto.unknown_rank = True
        return
    if not isinstance(v, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in v):
        raise EditRefused(f"a shape must be a list of integers (-1 unknown), not {v!r}")
    for d in v:
        proto.dim.add().size = d


def set_attr_value(attr_value, kind: str, value) -> None:
    """Write ``value`` of ``kind`` into an AttrValue (raises EditRefused on a bad value)."""
    attr_value.Clear()
    try:
        if kind == "i":
            if isinstance(value, bool) or int(value) != value:
                raise ValueError
            attr_value.i = int(value)
        elif kind == "f":
            attr_value.f = float(value)
        elif kind == "b":
            if not isinstance(value, bool):
                raise ValueError
            attr_value.b = value
        elif kind == "s":
            attr_value.s = value.encode() if isinstance(value, str) else bytes(value)
        elif kind == "type":
            attr_value.type = _dtype_enum(value)
        elif kind == "shape":
            _shape_proto(value, attr_value.shape)
        elif kind == "tensor":
            from tensorflow.python.framework import tensor_util
            attr_value.tensor.CopyFrom(tensor_util.make_tensor_proto(load_value(value)))
        elif kind.startswith("list_"):
            if not isinstance(value, (list, tuple)):
                raise ValueError
            lst = attr_value.list
            lst.SetInParent()
            k = kind[5:]
            if k == "i":
                lst.i.extend(int(x) for x in value)
            elif k == "f":
                lst.f.extend(float(x) for x in value)
            elif k == "b":
                lst.b.extend(bool(x) for x in value)
            elif k == "s":
                lst.s.extend(x.encode() if isinstance(x, str) else bytes(x) for x in value)
            elif k == "type":
                lst.type.extend(_dtype_enum(x) for x in value)
            elif k == "shape":
                for x in value:
                    _shape_proto(x, lst.shape.add())
            else:
                raise EditRefused(f"attributes of kind {kind} cannot be edited")
        elif kind == "func":
            raise EditRefused("function attributes cannot be edited by hand")
        else:
            raise EditRefused(f"unknown attribute type {kind!r}; one of "
                              f"{', '.join(sorted(_ATTR_KINDS))}")
    except EditRefused:
        raise
    except (TypeError, ValueError, OverflowError):
        raise EditRefused(f"{value!r} is not a valid {kind} value") from None


@_kind("set_attr", "Set attribute")
def set_attr(graph: Graph, args: dict) -> EditResult:
    name = _need(args, "node", "set_attr")
    attr = _need(args, "attr", "set_attr")
    if "value" not in args:
        raise EditRefused("edit set_attr: missing argument 'value'")
    node = _node(graph, name)
    kind = args.get("type") or (attr_kind(node.attr[attr]) if attr in node.attr else None)
    if kind is None:
        raise EditRefused(f"{name} has no attribute {attr!r}; give its type to add it",
                          nodes=[name])
    ed = GraphEditor(graph)
    target = ed.node(name)
    set_attr_value(target.attr[attr], kind, args["value"])
    ed.mark_changed(name)
    gd = ed.result()
    _check_dtypes(Graph(gd), [name], f"setting {name}.{attr}")
    return _result(graph, ed, describe("set_attr", args))


@_kind("set_input", "Set input")
def set_input(graph: Graph, args: dict) -> EditResult:
    name = _need(args, "node", "set_input")
    index = _need(args, "index", "set_input", int)
    source = _need(args, "source", "set_input")
    node = _node(graph, name)
    data = [i for i, t in enumerate(node.input) if not t.startswith("^")]
    if not 0 <= index < len(data):
        raise EditRefused(f"{name} has {len(data)} data input(s); there is no input {index}",
                          nodes=[name])
    ref = parse_input(source)
    if ref.control:
        raise EditRefused("give a tensor (producer or producer:port), not a control input",
                          nodes=[name])
    if ref.node not in graph.nodes:
        raise EditRefused(f"dangling input: no node named {ref.node!r}", nodes=[name])
    outs = output_dtypes(graph.nodes[ref.node])
    if outs is not None and ref.port >= len(outs):
        raise EditRefused(f"{ref.node} ({graph.nodes[ref.node].op}) has {len(outs)} output(s); "
                          f"there is no output {ref.port}", nodes=[ref.node])
    if ref.node == name or ref.node in graph.downstream([name]):
        raise EditRefused(f"reading {source} into {name} would make a cycle ({ref.node} "
                          f"depends on {name})", nodes=[name, ref.node])
    ed = GraphEditor(graph)
    target = ed.node(name)
    target.input[data[index]] = format_input(ref.node, ref.port)
    ed.mark_changed(name)
    gd = ed.result()
    _check_dtypes(Graph(gd), [name], f"reading {source} into {name}")
    return _result(graph, ed, describe("set_input", args))


@_kind("make_output", "Make graph output")
def make_output(graph: Graph, args: dict) -> EditResult:
    name = _need(args, "node", "make_output")
    _node(graph, name)
    outs = list(graph.outputs)
    if name in outs or name in _io_names(outs):
        raise EditRefused(f"{name} is already a graph output", nodes=[name])
    ed = GraphEditor(graph)
    return _result(graph, ed, describe("make_output", args), outputs=outs + [name])


@_kind("cut_to_outputs", "Cut graph to outputs")
def cut_to_outputs(graph: Graph, args: dict) -> EditResult:
    outs = args.get("outputs")
    if not isinstance(outs, list) or not outs or not all(isinstance(o, str) for o in outs):
        raise EditRefused("cut_to_outputs: 'outputs' must be a non-empty list of node names")
    missing = [o for o in outs if node_of(o) not in graph.nodes]
    if missing:
        raise EditRefused(f"no node named {missing[0]!r}", nodes=missing)
    ed = GraphEditor(graph)
    ed.prune([], outs)
    ins = graph.given_inputs
    if ins is not None:
        ins = [i for i in ins if node_of(i) in ed]
    gd = ed.result()
    if not ed.removed and list(graph.outputs) == outs:
        raise EditRefused("the graph already has exactly these outputs and nothing else")
    _check_structure(gd, "cutting the graph")
    return _result(graph, ed, describe("cut_to_outputs", args), inputs=ins, outputs=list(outs),
                   keep_io=False)


def _check_shape(arr: np.ndarray, shape_attr, what: str) -> None:
    if shape_attr is None or shape_attr.unknown_rank:
        return
    dims = [d.size for d in shape_attr.dim]
    if len(dims) != arr.ndim or any(d >= 0 and d != s for d, s in zip(dims, arr.shape)):
        raise EditRefused(f"{what}: shape mismatch: the node takes {dims} (-1 = any), the value "
                          f"has {list(arr.shape)}")


@_kind("placeholder_to_const", "Placeholder → Const")
def placeholder_to_const(graph: Graph, args: dict) -> EditResult:
    name = _need(args, "node", "placeholder_to_const")
    node = _node(graph, name)
    if node.op not in ("Placeholder", "PlaceholderV2", "PlaceholderWithDefault"):
        raise EditRefused(f"{name} is a {node.op}, not a Placeholder", nodes=[name])
    if "value" not in args:
        raise EditRefused("edit placeholder_to_const: missing argument 'value'")
    arr = load_value(args["value"])
    what = f"{name} ← value"
    arr = _cast(arr, _np_dtype(node.attr["dtype"].type), what)
    _check_shape(arr, node.attr["shape"].shape if "shape" in node.attr else None, what)
    const = make_const(name, arr, device=node.device)
    ctrl = [t for t in node.input if t.startswith("^")]
    const.input.extend(ctrl)
    ed = GraphEditor(graph)
    ed.replace_node(name, const)
    # A PlaceholderWithDefault's default: drop the producers that fed only it.
    ed.remove(_orphaned(graph, [r.node for r in graph.input_refs(name)], {name}))
    ins = graph.given_inputs
    if ins is not None:
        ins = [i for i in ins if node_of(i) != name] or None
    gd = ed.result()
    _check_structure(gd, f"turning {name} into a Const")
    return _result(graph, ed, describe("placeholder_to_const", args), inputs=ins,
                   outputs=graph.given_outputs, keep_io=False)


def _orphaned(graph: Graph, start, gone: set[str]) -> set[str]:
    """Producers (from ``start`` upwards) whose every reader is in ``gone`` or orphaned too;
    graph inputs stay."""
    keep = _io_names(graph.given_inputs) | set(graph.placeholders) | _io_names(
        graph.given_outputs)
    orphans: set[str] = set()
    todo = list(start)
    while todo:
        p = todo.pop()
        if p in gone or p in orphans or p in keep or p not in graph.nodes:
            continue
        if all(c in gone or c in orphans for c, _, _ in graph.consumers(p)):
            orphans.add(p)
            todo.extend(r.node for r in graph.input_refs(p))
    return orphans


@_kind("replace_const", "Replace Const value")
def replace_const(graph: Graph, args: dict) -> EditResult:
    name = _need(args, "node", "replace_const")
    node = _node(graph, name)
    if node.op != "Const":
        raise EditRefused(f"{name} is a {node.op}, not a Const", nodes=[name])
    if "value" not in args:
        raise EditRefused("edit replace_const: missing argument 'value'")
    arr = load_value(args["value"])
    what = f"{name} ← value"
    old = node.attr["value"].tensor
    arr = _cast(arr, _np_dtype(old.dtype), what)
    old_shape = [d.size for d in old.tensor_shape.dim]
    if list(arr.shape) != old_shape and not args.get("allow_reshape"):
        raise EditRefused(f"{what}: shape mismatch: the Const is {old_shape}, the value is "
                          f"{list(arr.shape)} (allow reshaping to force it)", nodes=[name])
    const = make_const(name, arr, device=node.device)
    const.input.extend(node.input)
    for k, v in node.attr.items():
        if k not in ("value", "dtype"):
            const.attr[k].CopyFrom(v)
    ed = GraphEditor(graph)
    ed.replace_node(name, const)
    return _result(graph, ed, describe("replace_const", args))
