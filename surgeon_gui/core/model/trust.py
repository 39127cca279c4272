"""Opening a model never runs code from it: what in a model file would run code, found by
reading the file (never by loading it).

- A Keras file (``.keras`` zip or legacy ``.h5``) whose config holds a ``Lambda`` layer (its
  Python is stored as bytecode and runs when the layer is built), or a custom object (a class
  or function from a module other than Keras: the loader would import and call it).
- A SavedModel whose initializer (``__saved_model_init_op``, ``saved_model_main_op``,
  ``legacy_init_op``) runs anything but pure ops, variable and table set-up: ``tf.saved_model.load``
  runs it, and an initializer can write files (``WriteFile``), call Python (``PyFunc``)...

:func:`keras_code_risks` and :func:`saved_model_init_risks` list what they found; the loader
refuses with :class:`UntrustedCode` unless the user trusts the file (``--trust-code``; the GUI
asks with a confirmation that names the risk). Keras files are then still loaded in Keras's
safe mode when not trusted, whatever the version.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from .graph import GraphError
from .ops import PURE_OPS

#: Largest Keras ``config.json`` read (a config is kilobytes; more is not a model config).
MAX_KERAS_CONFIG = 64 * 1024 * 1024

#: What a SavedModel initializer may run without the user's trust: pure ops, and setting up
#: variables and lookup tables from constants or the SavedModel's own checkpoint.
INIT_SAFE_OPS = PURE_OPS | frozenset({
    "NoOp", "Const", "Identity", "Placeholder", "PlaceholderWithDefault",
    "VarHandleOp", "VariableV2", "ReadVariableOp", "AssignVariableOp", "Assign",
    "VarIsInitializedOp", "IsVariableInitialized",
    "HashTableV2", "MutableHashTableV2", "MutableDenseHashTableV2",
    "MutableHashTableOfTensorsV2", "LookupTableImportV2", "InitializeTableV2",
    "RestoreV2", "StringJoin", "ShardedFilename", "StaticRegexFullMatch",
})


class UntrustedCode(GraphError):
    """The file would run code when loaded; ``risks`` names what (for a confirmation)."""

    def __init__(self, risks: list[str], source: str | None = None, what: str = "model"):
        self.risks = list(risks)
        self.what = what
        #: the first risks, for a message (the GUI words its own: it has no --trust-code)
        self.shown = shown = "; ".join(self.risks[:3]) + (f" (and {len(self.risks) - 3} more)"
                                                          if len(self.risks) > 3 else "")
        super().__init__(f"this {what} would run code from the file when loaded ({shown}); "
                         "not loading it. Open it only if you trust where it came from "
                         "(--trust-code)", source)


# ---------------------------------------------------------------------- Keras
def keras_config(path: str | os.PathLike) -> dict | list | None:
    """The model config stored in a ``.keras`` zip or a legacy ``.h5`` (None: none found).

    Raises :class:`GraphError` when the file is not a readable Keras file."""
    p = Path(path)
    src = str(p)
    suffix = p.suffix.lower()
    try:
        size = p.stat().st_size
    except OSError as e:
        raise GraphError(f"cannot load Keras model: cannot read: {e.strerror or e}", src) from None
    if size == 0:
        raise GraphError("cannot load Keras model: the file is empty", src)
    if suffix == ".keras":
        try:
            with zipfile.ZipFile(p) as z:
                try:
                    info = z.getinfo("config.json")
                except KeyError:
                    raise GraphError("cannot load Keras model: not a Keras model (no config.json in the .keras zip)",
                                     src) from None
                if info.file_size > MAX_KERAS_CONFIG:
                    raise GraphError("cannot load Keras model: not a Keras model (its config.json is "
                                     f"{info.file_size:,} bytes)", src)
                text = z.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
            raise GraphError("cannot load Keras model: not a Keras model, or the file is truncated or corrupt "
                             f"(not a readable zip: {_first(e)})", src) from None
        except RuntimeError as e:  # encrypted member
            raise GraphError(f"cannot load Keras model: cannot read the .keras zip: {_first(e)}", src) from None
    else:
        with open(p, "rb") as f:
            head = f.read(8)
        if head != b"\x89HDF\r\n\x1a\n":
            raise GraphError("cannot load Keras model: not a Keras .h5 file (no HDF5 signature), or it is corrupt", src)
        try:
            import h5py
        except ImportError:
            raise GraphError("cannot load Keras model: reading .h5 files needs the h5py package", src) from None
        try:
            with h5py.File(p, "r") as f:
                raw = f.attrs.get("model_config")
        except Exception as e:  # noqa: BLE001 - h5py raises OSError, KeyError, RuntimeError...
            raise GraphError("cannot load Keras model: not a Keras .h5 model, or the file is truncated or corrupt "
                             f"({_first(e)})", src) from None
        if raw is None:
            return None
        text = raw if isinstance(raw, (bytes, str)) else bytes(raw)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise GraphError(f"cannot load Keras model: the Keras model config is not valid JSON ({_first(e)})", src) from None


def keras_code_risks(config) -> list[str]:
    """What in a Keras model config would run code: Lambda layers and custom objects."""
    risks: list[str] = []
    todo = [config]
    seen = 0
    while todo:
        o = todo.pop()
        seen += 1
        if isinstance(o, list):
            todo.extend(o)
            continue
        if not isinstance(o, dict):
            continue
        todo.extend(o.values())
        cls = o.get("class_name")
        if not isinstance(cls, str):
            continue
        name = (o.get("config") or {}).get("name") if isinstance(o.get("config"), dict) else None
        if cls == "Lambda":
            risks.append(f"Lambda layer {name!r} (its Python code runs when the model is built)")
        elif cls == "__lambda__" or o.get("function_type") == "lambda":
            continue  # the Lambda's own function: reported with the layer
        module = o.get("module")
        registered = o.get("registered_name")
        custom = (isinstance(module, str) and module != "keras"
                  and not module.startswith("keras."))
        if isinstance(registered, str) and ">" in registered:
            custom = True
        if custom:
            risks.append(f"custom object {cls!r} from module {module!r} (its code runs when "
                         "the model is loaded)")
    return sorted(set(risks))


# ---------------------------------------------------------------------- SavedModel
def saved_model_init_risks(folder: str | os.PathLike) -> list[str]:
    """Ops a SavedModel's initializers would run that are not pure set-up (see module doc)."""
    from .io import read_saved_model_proto  # io imports this module at its top
    try:
        sm = read_saved_model_proto(folder)
    except GraphError as e:
        raise GraphError(f"cannot load SavedModel: {e.problem}", e.source) from None
    risks: set[str] = set()
    for meta in sm.meta_graphs:
        gd = meta.graph_def
        nodes = {n.name: n for n in gd.node}
        funcs = {f.signature.name: f for f in gd.library.function}
        roots: list[str] = []
        init_sig = meta.signature_def.get("__saved_model_init_op")
        if init_sig is not None:
            roots += [t.name for t in init_sig.outputs.values()]
        for key in ("saved_model_main_op", "legacy_init_op", "table_initializer"):
            if key in meta.collection_def:
                roots += list(meta.collection_def[key].node_list.value)
        seen: set[str] = set()
        todo = [r.lstrip("^").split(":")[0] for r in roots]
        seen_funcs: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen or name not in nodes:
                continue
            seen.add(name)
            node = nodes[name]
            _node_risk(node, funcs, seen_funcs, risks)
            todo.extend(i.lstrip("^").split(":")[0] for i in node.input)
    return sorted(risks)


def _node_risk(node, funcs, seen_funcs, risks) -> None:
    called = _called_functions(node, funcs)
    if node.op in funcs:
        called.append(node.op)
    if not called and node.op not in INIT_SAFE_OPS \
            and node.op not in ("StatefulPartitionedCall", "PartitionedCall"):
        risks.add(f"{node.op} (node {node.name!r} of its initializer)")
    for fname in called:
        if fname in seen_funcs:
            continue
        seen_funcs.add(fname)
        for inner in funcs[fname].node_def:
            _node_risk(inner, funcs, seen_funcs, risks)


def _called_functions(node, funcs) -> list[str]:
    out = []
    for v in node.attr.values():
        if v.HasField("func") and v.func.name in funcs:
            out.append(v.func.name)
        for f in v.list.func:
            if f.name in funcs:
                out.append(f.name)
    return out


def _first(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
