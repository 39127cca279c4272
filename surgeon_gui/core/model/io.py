"""Loading and saving models.

Loads a frozen GraphDef (``.pb`` binary, ``.pbtxt`` text), a SavedModel directory (one signature
frozen into a GraphDef), a Keras ``.keras``/``.h5`` file (frozen), or a graph with variables plus
a checkpoint (frozen). Every failure is a :class:`GraphError` naming the file and the problem.

Saving goes through the one write path, :mod:`.files` (atomic; refuses to overwrite unless
asked, and to write onto an input).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import message as pb_message
from google.protobuf import text_format

from .files import write_file
from .checks import raise_on_bad_enums
from .graph import Graph, GraphDef, GraphError, node_of
from .protos import meta_graph_pb2, saved_model_pb2
from .trust import UntrustedCode, keras_code_risks, keras_config, saved_model_init_risks

MODEL_SUFFIXES = (".pb", ".pbtxt", ".txt", ".keras", ".h5", ".hdf5")
#: Files read with protobuf alone (no TensorFlow runtime needed to load them).
GRAPHDEF_SUFFIXES = (".pb", ".pbtxt", ".txt")


@dataclass
class LoadedModel:
    """A model as loaded: its GraphDef, the inputs/outputs known from the file, and where from."""
    graph_def: GraphDef
    path: str
    kind: str  # "graphdef", "savedmodel", "keras", "checkpoint"
    inputs: list[str] | None = None
    outputs: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    #: The SavedModel signature that was frozen (None for other kinds).
    signature: str | None = None
    #: The checkpoint the variables were frozen from (kind "checkpoint"), as given.
    checkpoint: str | None = None
    #: The index built when the graph was checked on loading (reused by :meth:`graph`).
    index: Graph | None = field(default=None, repr=False, compare=False)

    def graph(self) -> Graph:
        if self.index is not None and self.index.graph_def is self.graph_def:
            return self.index.sharing_index(self.inputs, self.outputs, source=self.path)
        return Graph(self.graph_def, self.inputs, self.outputs, source=self.path)


def load_model(path: str | os.PathLike, signature: str | None = None,
               checkpoint: str | None = None, outputs: list[str] | None = None,
               validate: bool = True, progress=None, trust_code: bool = False) -> LoadedModel:
    """Load any supported model file as a GraphDef. Opening never runs code from the file:
    a Keras Lambda or custom object, or a SavedModel initializer that does more than set up
    variables and tables, is refused (:class:`~.trust.UntrustedCode`) unless ``trust_code``.

    ``signature`` picks a SavedModel signature (default ``serving_default``, else the first).
    ``checkpoint`` with a ``.pb``/``.pbtxt`` holding variables freezes them (needs ``outputs``).
    ``progress(fraction, text)`` is called at a few milestones.
    """
    p = Path(path)
    src = str(p)
    report = progress or (lambda f, t: None)
    if not p.exists():
        raise GraphError("no such file or folder", src)
    if p.is_dir():
        if (p / "saved_model.pb").exists() or (p / "saved_model.pbtxt").exists():
            report(0.1, "loading SavedModel")
            model = _load_saved_model(p, signature, trust_code)
        else:
            raise GraphError("a folder that is not a SavedModel (no saved_model.pb inside)", src)
    else:
        suffix = p.suffix.lower()
        if suffix in (".keras", ".h5", ".hdf5"):
            report(0.1, "loading Keras model")
            model = _load_keras(p, trust_code)
        else:
            report(0.1, "reading GraphDef")
            # (its plausibility is checked on the index below, with no pass of its own)
            gd = read_graph_def(p, plausible=not validate)
            model = LoadedModel(gd, src, "graphdef")
            if checkpoint:
                report(0.5, "freezing variables from checkpoint")
                model = _freeze_with_checkpoint(model, checkpoint, outputs)
    if outputs:
        model.outputs = list(outputs)
    if not validate:
        raise_on_bad_enums(model.graph_def, src)
    else:
        report(0.9, "checking graph")
        gd = model.graph_def
        index = Graph(gd, source=src)
        if "" in index.nodes or "" in index.ops.values() or len(index.nodes) != len(gd.node):
            _check_plausible(gd, src)  # (the names and ops the index read: no second pass)
        raise_on_bad_enums(gd, src)
        model.index = index.validate()
    report(1.0, "loaded")
    return model


#: Bytes of top-level fields parsed per protobuf call by :func:`_parse_in_pieces`.
PARSE_PIECE_BYTES = 8 << 20


def _parse_in_pieces(gd: GraphDef, data: bytes) -> None:
    """``gd.ParseFromString(data)`` in pieces of whole top-level fields (a GraphDef's nodes).

    One ParseFromString of a 350 MB GraphDef is a single C call that holds the GIL for
    0.2-0.8 s, so loading in a worker thread froze the GUI thread that long. Merging the
    fields a few megabytes at a time gives the same message (parsing concatenated fields is
    merging them), and other threads run in between. Anything the scan does not understand
    falls back to one whole parse (which then says what is wrong)."""
    view = memoryview(data)
    n = len(data)
    cuts = [0]
    pos = last = 0
    piece = PARSE_PIECE_BYTES
    try:
        # (a 107k-node graph has 107k fields: the loop is what this costs)
        while pos < n:
            start = pos
            if data[pos] == 0x0A:  # a node (field 1, length-delimited): nearly every field
                b = data[pos + 1]
                if b < 0x80:
                    pos += 2 + b
                else:
                    c = data[pos + 2]
                    if c < 0x80:
                        pos += 3 + ((b & 0x7F) | (c << 7))
                    else:
                        size, pos = _varint_at(data, pos + 1)
                        pos += size
            else:
                key, pos = _varint_at(data, pos)
                wire = key & 7
                if key >> 3 == 0:
                    raise ValueError("field 0")
                if wire == 0:
                    _, pos = _varint_at(data, pos)
                elif wire == 1:
                    pos += 8
                elif wire == 2:
                    size, pos = _varint_at(data, pos)
                    pos += size
                elif wire == 5:
                    pos += 4
                else:
                    raise ValueError("groups")
            if pos - last >= piece and start > last:
                cuts.append(start)
                last = start
        if pos > n:  # (only the last field can end past the data)
            raise ValueError("truncated")
    except (ValueError, IndexError):
        gd.Clear()
        gd.ParseFromString(data)
        return
    cuts.append(n)
    gd.Clear()
    for a, b in zip(cuts, cuts[1:]):
        gd.MergeFromString(view[a:b])


def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def read_graph_def(path: str | os.PathLike, plausible: bool = True) -> GraphDef:
    """Parse a ``.pb`` (binary) or ``.pbtxt`` (text) GraphDef; guess by content when unsure.
    A TF1 ``.meta`` (``tf.compat.v1.train.Saver``'s MetaGraph) gives its graph.

    ``plausible=False``: the caller checks that every node has a name and an op
    (:func:`_check_plausible`; :func:`load_model` does on its index)."""
    p = Path(path)
    src = str(p)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise GraphError(f"cannot read: {e.strerror}", src) from None
    if not data:
        raise GraphError("the file is empty", src)
    if p.name.lower().endswith(".meta"):
        return _meta_graph_def(data, src, plausible)
    gd = GraphDef()
    looks_text = p.suffix.lower() in (".pbtxt", ".txt") or _looks_like_text(data)
    if looks_text:
        try:
            text_format.Parse(data.decode("utf-8"), gd, allow_unknown_field=False)
            return gd
        except (text_format.ParseError, UnicodeDecodeError) as e:
            if p.suffix.lower() in (".pbtxt", ".txt"):
                raise GraphError(f"not a text GraphDef: {e}", src) from None
    try:
        _parse_in_pieces(gd, data)
    except (pb_message.DecodeError, RuntimeError) as e:
        if _is_saved_model_proto(data):
            raise GraphError("this is a SavedModel's saved_model.pb: open its folder instead",
                             src) from None
        raise GraphError(
            "not a GraphDef, or the file is truncated or corrupt "
            f"({len(data):,} bytes; protobuf says: {e})", src) from None
    if not gd.node and not gd.library.function:
        if _is_saved_model_proto(data):
            raise GraphError("this is a SavedModel's saved_model.pb: open its folder instead", src)
        raise GraphError("not a GraphDef (it parsed to an empty graph)", src)
    if plausible:
        _check_plausible(gd, src)
    return gd


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    try:
        s = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    s = s.lstrip()
    return s.startswith(("node", "library", "versions", "#"))


def _meta_graph_def(data: bytes, src: str, plausible: bool = True) -> GraphDef:
    """The graph of a MetaGraphDef (a TF1 checkpoint's ``model.ckpt.meta``). Its
    ``_output_shapes`` are dropped: shapes the training-time TensorFlow inferred, hints that
    today's may not agree with (musicnn's FusedBatchNormGrad), not meaning."""
    meta = meta_graph_pb2.MetaGraphDef()
    try:
        meta.ParseFromString(data)
    except (pb_message.DecodeError, RuntimeError) as e:
        raise GraphError(f"not a MetaGraph (.meta), or the file is truncated or corrupt "
                         f"({len(data):,} bytes; protobuf says: {e})", src) from None
    gd = meta.graph_def
    if not gd.node and not gd.library.function:
        raise GraphError("a MetaGraph (.meta) without a graph", src)
    for node in gd.node:
        if "_output_shapes" in node.attr:
            del node.attr["_output_shapes"]
    if plausible:
        _check_plausible(gd, src)
    return gd


def _is_saved_model_proto(data: bytes) -> bool:
    try:
        sm = saved_model_pb2.SavedModel()
        sm.ParseFromString(data)
        return len(sm.meta_graphs) > 0
    except Exception:  # noqa: BLE001
        return False


def _check_plausible(gd: GraphDef, src: str) -> None:
    """Random bytes sometimes parse as a GraphDef: catch nodes with no op or no name."""
    bad = [i for i, n in enumerate(gd.node) if not n.name or not n.op]
    if bad:
        raise GraphError(f"not a GraphDef, or corrupt: {len(bad)} node(s) without a name or op "
                         f"(first at index {bad[0]})", src)


def check_graph_def(gd: GraphDef, source: str | None = None) -> Graph:
    """Structural checks (duplicates, dangling inputs, cycles). Unknown ops are allowed.
    Returns the checked graph's index (with its topological order computed)."""
    return Graph(gd, source=source).validate()


def unregistered_ops(gd: GraphDef) -> list[str]:
    """Ops in the graph (outside its function library) that this TensorFlow does not know.

    Uses the cached list of registered ops when there is one (no TensorFlow import)."""
    from .registered_ops import registered_op_names
    lib = {f.signature.name for f in gd.library.function}
    known = registered_op_names()
    return sorted({n.op for n in gd.node if n.op not in lib and n.op not in known})


# ---------------------------------------------------------------------- SavedModel / Keras
def _freeze_concrete(func, src: str, kind: str) -> LoadedModel:
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )
    try:
        frozen = convert_variables_to_constants_v2(func, lower_control_flow=False)
    except Exception as e:  # noqa: BLE001
        raise GraphError(f"cannot freeze the model's variables: {e}", src) from None
    gd = frozen.graph.as_graph_def()
    repair_frozen_functions(gd)
    inputs = [t.name.split(":")[0] for t in frozen.inputs
              if t.dtype != "resource" and t.name.split(":")[0] in {n.name for n in gd.node}]
    outputs = []
    for t in frozen.outputs:
        name = t.name
        outputs.append(name if not name.endswith(":0") else name[:-2])
    return LoadedModel(gd, src, kind, inputs or None, outputs or None)


def _load_saved_model(p: Path, signature: str | None, trust_code: bool = False) -> LoadedModel:
    src = str(p)
    risks = saved_model_init_risks(p)
    if risks and not trust_code:
        raise UntrustedCode(risks, src, "SavedModel")
    import tensorflow as tf
    _check_fingerprint(p)
    try:
        obj = tf.saved_model.load(src)
    except Exception as e:  # noqa: BLE001
        raise GraphError(f"cannot load SavedModel: {_first_line(e)}", src) from None
    sigs = dict(getattr(obj, "signatures", {}) or {})
    if not sigs:
        raise GraphError("the SavedModel has no signatures to freeze", src)
    if signature is None:
        signature = "serving_default" if "serving_default" in sigs else sorted(sigs)[0]
    if signature not in sigs:
        raise GraphError(f"no signature {signature!r}; it has: {', '.join(sorted(sigs))}", src)
    model = _freeze_concrete(sigs[signature], src, "savedmodel")
    model.signature = signature
    model.notes.append(f"signature {signature!r} of {', '.join(sorted(sigs))}")
    return model


def _check_fingerprint(p: Path) -> None:
    """A corrupt ``fingerprint.pb``: our one line (TensorFlow logs a traceback and goes on)."""
    f = p / "fingerprint.pb"
    if not f.exists():
        return
    from tensorflow.core.protobuf import fingerprint_pb2
    try:
        fp = fingerprint_pb2.FingerprintDef()
        fp.ParseFromString(f.read_bytes())
        ok = fp.saved_model_checksum != 0 or fp.graph_def_program_hash != 0
    except Exception:  # noqa: BLE001 - DecodeError, OSError
        ok = False
    if not ok:
        raise GraphError("its fingerprint.pb is corrupt: the SavedModel was damaged or changed "
                         "after it was saved", str(p))


def is_saved_model_dir(path: str | os.PathLike) -> bool:
    """True for a folder holding ``saved_model.pb`` (or ``saved_model.pbtxt``)."""
    p = Path(path)
    return p.is_dir() and ((p / "saved_model.pb").is_file()
                           or (p / "saved_model.pbtxt").is_file())


def read_saved_model_proto(path: str | os.PathLike):
    """The ``SavedModel`` proto of a SavedModel folder (``saved_model.pb`` or ``.pbtxt``), read
    without loading anything; :class:`GraphError` with one line when it cannot be read."""
    p = Path(path)
    src = str(p)
    if not p.exists():
        raise GraphError("no such file or folder", src)
    if not is_saved_model_dir(p):
        raise GraphError("a folder that is not a SavedModel (no saved_model.pb inside)", src)
    sm = saved_model_pb2.SavedModel()
    binary = p / "saved_model.pb"
    try:
        if binary.is_file():
            sm.ParseFromString(binary.read_bytes())
        else:
            text_format.Parse((p / "saved_model.pbtxt").read_text(encoding="utf-8"), sm)
    except (pb_message.DecodeError, text_format.ParseError, UnicodeDecodeError) as e:
        raise GraphError(f"saved_model.pb is not a readable SavedModel: {_first_line(e)}",
                         src) from None
    except OSError as e:
        raise GraphError(f"cannot read saved_model.pb: {e.strerror or e}", src) from None
    return sm


def saved_model_signatures(path: str | os.PathLike) -> list[str]:
    """The signature keys of a SavedModel folder, sorted, without loading the model.

    Reads only ``saved_model.pb`` (or ``.pbtxt``) and lists the ``signature_def`` keys of its
    serving MetaGraph (tag ``serve``, else the first); TensorFlow's internal
    ``__saved_model_init_op`` entry is left out, as ``tf.saved_model.load(...).signatures``
    leaves it out. Raises :class:`GraphError` when the folder is not a readable SavedModel.
    """
    sm = read_saved_model_proto(path)
    src = str(path)
    if not sm.meta_graphs:
        raise GraphError("the SavedModel has no MetaGraph", src)
    meta = next((m for m in sm.meta_graphs if "serve" in m.meta_info_def.tags),
                sm.meta_graphs[0])
    return sorted(k for k in meta.signature_def if not k.startswith("__saved_model"))


def _load_keras(p: Path, trust_code: bool = False) -> LoadedModel:
    """Load a Keras file without running code from it: its config is read first (a broken
    file is refused before Keras touches it), a Lambda or custom object is refused unless
    ``trust_code``, and Keras then loads in safe mode whatever its version."""
    import inspect
    src = str(p)
    config = keras_config(p)
    if config is None:
        raise GraphError("not a Keras model (the .h5 holds no model config: weights only?)", src)
    risks = keras_code_risks(config)
    if risks and not trust_code:
        raise UntrustedCode(risks, src, "Keras model")
    import tensorflow as tf
    load = tf.keras.models.load_model
    kwargs = {"compile": False}
    try:
        if "safe_mode" in inspect.signature(load).parameters:
            kwargs["safe_mode"] = not trust_code
    except (TypeError, ValueError):
        pass
    try:
        model = load(src, **kwargs)
    except Exception as e:  # noqa: BLE001
        raise GraphError(f"cannot load Keras model: {_first_line(e)}", src) from None
    try:
        return freeze_keras_model(model, src)
    except GraphError:
        raise
    except Exception as e:  # noqa: BLE001
        raise GraphError(f"cannot freeze the Keras model: {_first_line(e)}", src) from None


def freeze_keras_model(model, src: str = "keras model") -> LoadedModel:
    """Freeze an in-memory Keras model (inference mode) into a GraphDef."""
    import tensorflow as tf
    specs = [tf.TensorSpec(i.shape, i.dtype, name=_clean(getattr(i, "name", f"input_{k}")))
             for k, i in enumerate(model.inputs)]
    fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0], training=False))
    concrete = fn.get_concrete_function(*specs)
    return _freeze_concrete(concrete, src, "keras")


def _clean(name: str) -> str:
    return name.split(":")[0].replace("/", "_")


def _freeze_with_checkpoint(model: LoadedModel, checkpoint: str,
                            outputs: list[str] | None) -> LoadedModel:
    import tensorflow as tf
    src = model.path
    if not outputs:
        guess = guess_inference_outputs(model.graph_def)
        hint = (f"; it looks like --outputs {','.join(guess.outputs)}" if guess.sure else
                f"; candidates: {', '.join(guess.outputs)}" if guess.outputs else "")
        raise GraphError("freezing from a checkpoint needs the output node names (--outputs)"
                         + hint, src)
    g = tf.Graph()
    try:
        with g.as_default():
            tf.compat.v1.import_graph_def(model.graph_def, name="")
            with tf.compat.v1.Session(graph=g) as sess:
                _restore_variables(g, sess, model.graph_def, checkpoint, src)
                frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                    sess, model.graph_def, [node_of(o) for o in outputs])
    except GraphError:
        raise
    except Exception as e:  # noqa: BLE001
        raise GraphError(f"cannot freeze with checkpoint {checkpoint}: {_first_line(e)}",
                         src) from None
    repair_frozen_functions(frozen)
    return LoadedModel(frozen, src, "checkpoint", model.inputs, list(outputs),
                       checkpoint=str(checkpoint))


_VARIABLE_OPS = ("VariableV2", "Variable", "VarHandleOp")
_DATA_SHARD = re.compile(r"\.data-\d+-of-\d+$")


def variable_nodes(gd: GraphDef, op_of: dict[str, str] | None = None) -> list[str]:
    """The variables a graph still holds (it was saved unfrozen): freeze them from a checkpoint.
    ``op_of``: the graph's node name → op, when at hand (faster than reading the protos)."""
    if op_of is not None:
        return [name for name, op in op_of.items() if op in _VARIABLE_OPS]
    return [n.name for n in gd.node if n.op in _VARIABLE_OPS]


_TRAINING_SCOPES = ("gradients/", "save/", "/IsInitialized", "AssignMovingAvg", "/Assign",
                    "ExponentialMovingAverage", "/Momentum", "/Adam", "init", "report_uninitialized")
_TRAINING_SINK_OPS = frozenset({"NoOp", "VarIsInitializedOp", "IsVariableInitialized", "Assign",
                                "AssignVariableOp", "AssignSub", "AssignAdd", "AssignSubVariableOp",
                                "AssignAddVariableOp", "ReadVariableOp", "Shape", "SaveV2",
                                "RestoreV2", "Const", "Identity"})
_LOSS_OPS = frozenset({"SparseSoftmaxCrossEntropyWithLogits", "SoftmaxCrossEntropyWithLogits",
                       "SigmoidCrossEntropyWithLogits"})


@dataclass
class OutputGuess:
    """What :func:`guess_inference_outputs` makes of a training graph's sinks.

    ``outputs``: the names to offer (the guess; every plausible sink when unsure);
    ``left_out``: (name, why) for plausible-looking sinks it dropped; ``sure``: one clear
    answer."""
    outputs: list[str]
    left_out: list[tuple[str, str]] = field(default_factory=list)
    sure: bool = False

    def message(self) -> str:
        """One or two sentences for the user who confirms or edits the guess."""
        dropped = "".join(f"\n  • {n}: {why}" for n, why in self.left_out)
        if self.sure:
            text = f"Guessed {self.outputs[0]}."
        elif self.outputs:
            text = (f"Not sure: {len(self.outputs)} nodes look like outputs; all are filled "
                    "in: remove the ones you do not need.")
        else:
            return ("Could not guess the model's output: give the name of the node it "
                    "serves (e.g. its softmax or sigmoid).")
        return text + (f"\nLeft out:{dropped}" if dropped else "")


def guess_inference_outputs(gd: GraphDef) -> OutputGuess:
    """Guess the outputs a training graph (saved with its variables) serves, as a user would
    pick them among its sinks: not the training machinery (initializers, saver, gradients,
    update ops), not the loss (what gradients are taken of, or what a loss op feeds), and not
    a side result left over on the way to another output (a ``tf.nn.moments`` variance nobody
    reads: no weights of its own while that other output has some). Several left: unsure.
    Only a suggestion for the user to confirm before freezing."""
    g = Graph(gd)
    loss_side = g.downstream([n.name for n in gd.node if n.op in _LOSS_OPS], control=False)
    differentiated = {m.group(1) for m in map(_GRADIENT_OF.match, g.nodes) if m}
    candidates, left_out = [], []
    for name in g.outputs:
        node = g.node(name)
        if node.op in _VARIABLE_OPS or (node.op in _TRAINING_SINK_OPS and (
                node.op != "Identity" or _is_cond_marker(g, node))):
            continue
        if any(s in name for s in _TRAINING_SCOPES) or node.op.startswith(("Apply",
                                                                           "ResourceApply")):
            continue
        if name in differentiated:
            left_out.append((name, "the loss: gradients are taken of it"))
        elif name in loss_side:
            left_out.append((name, "computed from the loss"))
        else:
            candidates.append(name)
    if len(candidates) > 1:
        # A sink whose weights are a strict subset of another's branched off on the way to it.
        weights = {c: frozenset(n for n in g.upstream([c], control=False)
                                if g.node(n).op in _VARIABLE_OPS) for c in candidates}
        kept = []
        for c in candidates:
            wider = [o for o in candidates if weights[c] < weights[o]]
            if wider:
                near = min(wider, key=lambda o: len(weights[o]))
                left_out.append((c, f"a side result on the way to {near}: no weights of its "
                                    "own"))
            else:
                kept.append(c)
        candidates = kept
    return OutputGuess(candidates, left_out, sure=len(candidates) == 1)


def _is_cond_marker(g: Graph, node) -> bool:
    """An Identity a v1 ``tf.cond`` leaves unread (``switch_t``/``switch_f`` on a Switch,
    ``pred_id`` on the predicate) or one with no data input: not a model's output."""
    data = [i for i in node.input if not i.startswith("^")]
    if not data:
        return True
    src = g.nodes.get(node_of(data[0]))
    return src is None or src.op in ("Switch", "RefSwitch", "Placeholder",
                                     "PlaceholderWithDefault", "Const")


#: a gradient's scope names the node it differentiates: gradients/<node>_grad/...
_GRADIENT_OF = re.compile(r"^gradients(?:_\d+)?/(.+)_grad/")


def resolve_checkpoint(path: str | os.PathLike) -> str:
    """The checkpoint prefix TensorFlow's reader wants, from any layout a ``Saver`` writes.

    Accepts a prefix (``model.ckpt``, or ``run/`` whose files are ``run/.index`` and
    ``run/.data-00000-of-00001``), its ``.index`` or ``.data-…`` file, or the folder holding
    it (with or without a ``checkpoint`` file; one written on another machine names that
    machine's path: its last part is looked up in this folder). Raises :class:`GraphError`.
    """
    text = os.fspath(path)
    if not text:
        raise GraphError("no checkpoint given")
    if text.endswith(".index"):
        text = text[:-len(".index")]
    else:
        text = _DATA_SHARD.sub("", text)
    if os.path.isfile(text + ".index"):
        return text
    folder = Path(text)
    if not folder.is_dir():
        raise GraphError(f"no checkpoint there (neither {text}.index nor a folder holding "
                         "one)", text)
    named = _checkpoint_file_entry(folder)
    if named is not None:
        for prefix in (named, os.path.join(str(folder), os.path.basename(named))):
            if os.path.isfile(prefix + ".index"):
                return prefix
    indexes = sorted(folder.glob("*.index"), key=lambda f: f.stat().st_mtime)
    if not indexes:
        raise GraphError("the folder holds no checkpoint (no .index file)"
                         + (f"; its 'checkpoint' file names {named}, which is not here"
                            if named else ""), text)
    # Several checkpoints and no usable 'checkpoint' file: the newest, as Saver would write.
    return str(indexes[-1])[:-len(".index")]


def _checkpoint_file_entry(folder: Path) -> str | None:
    """``model_checkpoint_path`` from a folder's ``checkpoint`` file (a text proto), if any."""
    f = folder / "checkpoint"
    try:
        text = f.read_text(encoding="utf-8", errors="replace")[:100_000]
    except OSError:
        return None
    m = re.search(r'^\s*model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', text, re.M)
    if m is None:
        return None
    named = m.group(1).encode("utf-8").decode("unicode_escape")
    return named if os.path.isabs(named) else os.path.join(str(folder), named)


def _restore_variables(g, sess, gd: GraphDef, checkpoint: str, src: str) -> None:
    """Assign every variable node its value from a name-based (TF1 ``Saver``) checkpoint.

    A bare GraphDef carries no variables collection, so ``Saver()`` would find nothing to
    restore; read the checkpoint by name instead.
    """
    import tensorflow as tf
    from tensorflow.python.ops import gen_resource_variable_ops
    from tensorflow.python.training import py_checkpoint_reader
    # The reader takes the prefix as is (tf.train.load_checkpoint takes "run/" for a folder).
    try:
        prefix = resolve_checkpoint(checkpoint)
    except GraphError as e:
        raise GraphError(f"cannot freeze with checkpoint {checkpoint}: {e.problem}",
                         src) from None
    reader = py_checkpoint_reader.NewCheckpointReader(prefix)
    stored = reader.get_variable_to_shape_map()
    assigns, missing = [], []
    for node in gd.node:
        if node.op not in _VARIABLE_OPS:
            continue
        key = node.name
        if node.op == "VarHandleOp" and node.attr["shared_name"].s:
            key = node.attr["shared_name"].s.decode()
        if key not in stored:
            missing.append(node.name)
            continue
        value = reader.get_tensor(key)
        handle = g.get_tensor_by_name(node.name + ":0")
        if node.op == "VarHandleOp":
            assigns.append(gen_resource_variable_ops.assign_variable_op(handle, value))
        else:
            assigns.append(tf.compat.v1.assign(handle, value))
    if missing:
        raise GraphError(f"the checkpoint {checkpoint} has no value for variable(s) "
                         f"{', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""),
                         src, missing)
    if not assigns:
        raise GraphError("the graph holds no variables to freeze from a checkpoint", src)
    sess.run(assigns)


def repair_frozen_functions(gd: GraphDef) -> int:
    """Point function returns and inputs at the nodes freezing left in place; returns how many.

    ``convert_variables_to_constants_v2`` turns a ``ReadVariableOp`` inside a function (a cond
    branch that reads a variable) into an ``Identity`` of the frozen value but leaves the branch's
    return naming ``ReadVariableOp:value:0``, an output the Identity does not have, so the graph
    no longer runs. Each such reference to a one-output ``Identity``/``Const`` becomes
    ``name:output:0``.
    """
    fixed = 0
    for func in gd.library.function:
        single = {n.name for n in func.node_def if n.op in ("Identity", "Const")}

        def repair(ref: str) -> str:
            nonlocal fixed
            parts = ref.lstrip("^").split(":")
            if ref.startswith("^") or len(parts) != 3 or parts[0] not in single \
                    or parts[1] == "output":
                return ref
            fixed += 1
            return f"{parts[0]}:output:0"

        for key in list(func.ret):
            func.ret[key] = repair(func.ret[key])
        for node in func.node_def:
            for i, ref in enumerate(node.input):
                node.input[i] = repair(ref)
    return fixed


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# ---------------------------------------------------------------------- saving
def serialize(gd: GraphDef, fmt: str = "pb") -> bytes:
    """Deterministic bytes for a GraphDef (binary ``pb`` or text ``pbtxt``); weights computed
    when written (:mod:`.deferred`) are written as their values."""
    from .deferred import resolved_copy
    gd = resolved_copy(gd)
    if fmt == "pbtxt":
        return text_format.MessageToString(gd).encode("utf-8")
    return gd.SerializeToString(deterministic=True)


def save_graph(gd: GraphDef, path: str | os.PathLike, overwrite: bool = False,
               inputs=()) -> Path:
    """Write ``gd`` atomically through the one write path (:mod:`.files`); the format follows
    the suffix (``.pbtxt``/``.txt`` = text). ``inputs``: files it must not be."""
    p = Path(path)
    fmt = "pbtxt" if p.suffix.lower() in (".pbtxt", ".txt") else "pb"
    return write_file(p, serialize(gd, fmt), overwrite=overwrite, inputs=inputs)


# ---------------------------------------------------------------------- feeds
def load_feeds(path: str | os.PathLike, inputs: list[str] | None = None) -> dict:
    """Input arrays from a ``.npy`` (one array: needs exactly one input) or ``.npz`` file.

    ``.npz`` keys are input names (``name`` or ``name:0``). With ``inputs`` given, every input
    must have an array and no key may name something else; errors name the file.
    """
    import zipfile

    import numpy as np
    p = Path(path)
    src = str(p)
    if not p.exists():
        raise GraphError("no such feeds file", src)
    if p.is_dir():
        raise GraphError("is a folder; give a .npy or .npz file", src)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(src, allow_pickle=False)
            if not isinstance(arr, np.ndarray):
                raise GraphError("not a .npy array", src)
            if inputs is None or len(inputs) != 1:
                raise GraphError(
                    "a .npy file holds one array but the graph has "
                    f"{len(inputs or [])} inputs ({', '.join(inputs or []) or 'none given'}); "
                    "use an .npz with one array per input name", src)
            feeds = {node_of(inputs[0]): arr}
        elif suffix == ".npz":
            with np.load(src, allow_pickle=False) as z:
                feeds = {_feed_key(k): z[k] for k in z.files}
            if not feeds:
                raise GraphError("the .npz file holds no arrays", src)
        else:
            raise GraphError("feeds must be a .npy or .npz file", src)
    except GraphError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise GraphError(f"cannot read feeds: {_first_line(e)}", src) from None
    if inputs is not None:
        want = [node_of(i) for i in inputs]
        unknown = sorted(set(feeds) - set(want))
        missing = [i for i in want if i not in feeds]
        if unknown:
            raise GraphError(f"array(s) {', '.join(unknown)} name no input of the graph; its "
                             f"inputs are: {', '.join(want) or 'none'}", src)
        if missing:
            raise GraphError(f"no array for input(s) {', '.join(missing)} (the file has: "
                             f"{', '.join(sorted(feeds))})", src)
    return feeds


def _feed_key(key: str) -> str:
    """``name:0`` → ``name``; other ports stay."""
    return key.removesuffix(":0")
