"""Name-scope groups over a graph, and the collapsed graph that is actually drawn (Qt-free).

A :class:`GroupTree` turns a :class:`~surgeon_gui.core.model.graph.Graph` into what the graph view
shows:

* **Groups.** ``a/b/c`` lives in group ``a/b`` inside group ``a`` (TensorBoard-style). Flat
  Keras-3 layer names that repeat a numbered prefix (``block_1_expand_1``, ``block_1_project_1``,
  ``conv2_block1_1_conv_1`` …) are gathered into *virtual* groups keyed ``<parent>/block_1_*``
  (the key is literally a glob of the member names), so MobileNetV2's ``block_1``…``block_16`` and
  ResNet's ``conv2_block1``… show up as blocks. A group holding a single visible op is not a group:
  the op is shown directly.
* **Cells.** A level of scopes named by a trailing cell index (NASNet's ``normal_left1_5``,
  ``adjust_bn_5``, ``reduction_add_1_reduce_6``) is split into virtual groups ``<parent>/cell 5``
  (see :func:`find_cells`); Keras' auto-numbered layers in between (``activation_83``) join the
  cell they feed. A model-wide wrapper scope alone at the top is opened by default.
* **Badges.** A Const with no inputs, and an Identity/ReadVariableOp that only reads such a Const
  (the TF1 ``/read`` of a weight), are not drawn as boxes: they become small badges (with shape)
  on each op that consumes them. ``show_constants=True`` draws them all as boxes.
* **Repeated structure.** Each group gets a structure *signature* (its op multiset and internal
  edge count, names ignored); groups sharing a signature are the same kind of block and get the
  same colour and a ``×N`` badge.
* **The visible graph.** Given the set of expanded group keys, every visible node is represented
  by itself or by its outermost collapsed group; :meth:`GroupTree.visible_graph` aggregates the
  edges between those representatives (what :mod:`surgeon_gui.core.viewmodel.layout` lays out).

Unit keys used everywhere (layout, scene, selection): ``"n:<node name>"`` for a node and
``"g:<group key>"`` for a group.
"""
from __future__ import annotations

import re
import threading
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter

from ..model.graph import Graph, NodeDef, dtype_name, gc_paused, parse_input, shape_list
from ..model.ops import IF_OPS, LOOP_OPS, MERGE_OPS, SWITCH_OPS, WHILE_OPS, is_random

# ---------------------------------------------------------------------------- op families
#: Legend order. ``const`` only appears when constants are drawn as boxes.
FAMILIES = ["conv", "norm", "activation", "arith", "control", "io", "const", "other"]
FAMILY_TITLES = {
    "conv": "convolution / matmul", "norm": "normalisation", "activation": "activation",
    "arith": "arithmetic / shape", "control": "control flow", "io": "input / output",
    "const": "constant", "other": "other",
}
_CONV = {"Conv2D", "Conv3D", "DepthwiseConv2dNative", "Conv2DBackpropInput", "MatMul",
         "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Conv1D", "_FusedConv2D", "_FusedMatMul",
         "Einsum", "BiasAdd", "Conv3DBackpropInputV2", "FusedResizeAndPadConv2D", "FusedPadConv2D"}
_NORM = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "BatchNormWithGlobalNormalization",
         "LRN", "L2Loss", "Rsqrt", "SquaredDifference", "Moments", "_FusedBatchNormEx"}
_ACT = {"Relu", "Relu6", "Elu", "Selu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Softplus",
        "Softsign", "LeakyRelu", "Gelu", "HardSwish", "Swish", "Erf"}
_CONTROL = {"Switch", "Merge", "If", "StatelessIf", "While", "StatelessWhile", "Enter", "Exit",
            "NextIteration", "LoopCond", "RefSwitch", "RefMerge", "RefEnter", "RefExit",
            "PartitionedCall", "StatefulPartitionedCall", "Case", "StatelessCase", "NoOp",
            "ControlTrigger", "Assert", "Where", "Select", "SelectV2"}
_IO = {"Placeholder", "PlaceholderV2", "PlaceholderWithDefault", "VarHandleOp", "VariableV2",
       "Variable", "ReadVariableOp", "_Arg", "_Retval", "SaveV2", "RestoreV2", "IteratorGetNext",
       "ParseExample", "DecodeJpeg", "DecodePng"}
_ARITH = {"Add", "AddV2", "AddN", "Sub", "Mul", "RealDiv", "Div", "FloorDiv", "Maximum", "Minimum",
          "Neg", "Sqrt", "Square", "Pow", "Exp", "Log", "Abs", "Mean", "Sum", "Max", "Min", "Prod",
          "Reshape", "Transpose", "Squeeze", "ExpandDims", "Pad", "PadV2", "MirrorPad", "ConcatV2",
          "Concat", "Split", "SplitV", "Slice", "StridedSlice", "Pack", "Unpack", "Shape", "Size",
          "Rank", "Fill", "Tile", "Cast", "GatherV2", "Gather", "Identity", "IdentityN",
          "MaxPool", "AvgPool", "MaxPoolV2", "ResizeBilinear", "ResizeNearestNeighbor",
          "Greater", "GreaterEqual", "Less", "LessEqual", "Equal", "NotEqual", "LogicalAnd",
          "LogicalOr", "LogicalNot", "ArgMax", "ArgMin", "Range", "ZerosLike", "OnesLike",
          "StopGradient", "Floor", "Ceil", "Round", "Reciprocal", "BroadcastTo", "Snapshot"}


def op_family(op: str) -> str:
    """The colour family of an op type: conv, norm, activation, arith, control, io, const, other."""
    if op in _CONV:
        return "conv"
    if op in _NORM or "BatchNorm" in op:
        return "norm"
    if op in _ACT:
        return "activation"
    if op in _CONTROL:
        return "control"
    if op in _IO:
        return "io"
    if op == "Const" or op == "HostConst":
        return "const"
    if op in _ARITH:
        return "arith"
    if op.startswith("Random") or op.startswith("StatelessRandom") or op.startswith("Truncated"):
        return "other"
    return "other"


#: Ops that must catch the eye: training-only and control-flow machinery surgery removes
#: (random ops too: see :func:`is_standout`).
STANDOUT_OPS = (SWITCH_OPS | MERGE_OPS | LOOP_OPS | IF_OPS | WHILE_OPS
                | {"PlaceholderWithDefault", "Assert"})


def is_standout(op: str) -> bool:
    return op in STANDOUT_OPS or is_random(op)


# ---------------------------------------------------------------------------- tensor labels
def format_shape(shape: list[int] | None) -> str:
    if shape is None:
        return "?"
    if not shape:
        return "scalar"
    return "×".join("?" if d < 0 else str(d) for d in shape)


_DTYPE_NAMES: dict[int, str] = {}


def _dtype(enum_value: int) -> str:
    name = _DTYPE_NAMES.get(enum_value)
    if name is None:
        name = _DTYPE_NAMES[enum_value] = dtype_name(enum_value)
    return name


def output_info(node: NodeDef, port: int = 0) -> tuple[str | None, list[int] | None]:
    """(dtype name, shape) of output ``port`` of ``node`` where the GraphDef says so.

    Shapes come from ``_output_shapes`` (TF1 exports) or a Const's tensor; dtypes from the
    ``T``/``dtype``/``out_type`` attribute. Either may be None.
    """
    dtype = shape = None
    attr = node.attr
    if node.op == "Const" and "value" in attr:
        t = attr["value"].tensor
        return _dtype(t.dtype), shape_list(t.tensor_shape)
    if "_output_shapes" in attr:
        shapes = attr["_output_shapes"].list.shape
        if 0 <= port < len(shapes):
            shape = shape_list(shapes[port])
    for key in ("T", "dtype", "out_type", "DstT"):
        if key in attr and attr[key].type:
            dtype = _dtype(attr[key].type)
            break
    if shape is None and node.op in ("Placeholder", "PlaceholderWithDefault") and "shape" in attr:
        shape = shape_list(attr["shape"].shape)
    return dtype, shape


def tensor_label(node: NodeDef, port: int = 0) -> str:
    """Short edge label: ``1×48×48×32`` (dtype added when it is not float32)."""
    dtype, shape = output_info(node, port)
    parts = []
    if shape is not None:
        parts.append(format_shape(shape))
    if dtype and dtype != "float32":
        parts.append(dtype)
    return " ".join(parts)


# ---------------------------------------------------------------------------- data classes
@dataclass
class Badge:
    """A weight or constant drawn on the op that consumes it."""
    node: str          # the hidden node the badge stands for (Const or its /read Identity)
    const: str         # the Const behind it
    label: str         # e.g. "weights 3×3×3×8"
    shape: list[int] | None
    dtype: str | None


@dataclass
class Group:
    key: str                       # "a/b", or "a/block_1_*" for a virtual group
    label: str                     # last segment as shown ("block_1")
    parent: str                    # "" for top level
    virtual: bool = False
    prefix: str = ""               # every member's name starts with this ("a/b/", "a/block_1_")
    children: list[str] = field(default_factory=list)   # unit keys ("g:…", "n:…"), in graph order
    size: int = 0                  # every node of the graph inside (badges included)
    visible_size: int = 0          # nodes drawn as boxes when fully expanded
    ops: Counter = field(default_factory=Counter)        # op histogram of everything inside
    signature: int = 0
    repeats: int = 1               # how many groups share the signature

    def top_ops(self, k: int = 3) -> list[str]:
        """The ops that say what the group does: convolutions and normalisation before
        activations before arithmetic, then by count (Const/Identity last)."""
        rank = {"conv": 0, "norm": 1, "control": 2, "activation": 3, "io": 4, "other": 5,
                "arith": 6, "const": 8}
        ops = sorted(self.ops.items(), key=lambda kv: (
            rank.get(op_family(kv[0]), 5) + (2 if kv[0] in ("Identity", "Rsqrt") else 0),
            -kv[1], kv[0]))
        return [op for op, _ in ops[:k]]


@dataclass
class VisibleEdge:
    """An edge of the visible (collapsed) graph between two unit keys."""
    src: str
    dst: str
    control: bool                  # every underlying edge is a control edge
    count: int                     # how many graph edges it stands for
    label: str                     # tensor shape/dtype of the first data edge ("" if unknown)
    pairs: list[tuple[str, str]] = field(default_factory=list)  # underlying (src node, dst node)
    #: Bend points (x, y) set by the layout so long edges pass between boxes, not through them.
    route: list[tuple[float, float]] = field(default_factory=list)
    #: The layout left a long stretch of it unrouted (a flag feeding many): draw it short.
    unrouted: bool = False


_NUM_PREFIX = re.compile(r"(?<=[A-Za-z_])\d+(?=_)")
#: Virtual grouping only where a level has at least this many siblings.
MIN_SIBLINGS_FOR_BLOCKS = 6
#: A nested model-wide wrapper scope is opened by default when it has at most this many children
#: (the one scope holding a whole model is always opened).
MAX_WRAPPER_CHILDREN = 150


#: Cell grouping: at least this many distinct cell indices, each holding this many layer kinds.
MIN_CELLS = 3
MIN_CELL_KINDS = 3
#: Layers per cell (on average) for stray layers to be left out of a cell split; fewer means
#: the "cells" are Keras' auto-numbering lining up (TF1 conv2d_3 + batch_normalization_3).
MIN_CELL_LAYERS = 8
_CELL_WORD = re.compile(r"^[A-Za-z]+$")


def _cell_split(seg: str, strip_call: bool) -> list[tuple[str, str]]:
    """Candidate (layer kind, cell index) splits of a scope segment named by a trailing cell
    index, most specific first: ``normal_add_1_5`` → ``[("normal_add_1", "5")]``,
    ``reduction_left1_reduce_6`` → ``[("reduction_left1", "reduce_6"), ("reduction_left1_reduce",
    "6")]``. ``strip_call`` first drops a trailing Keras-3 call suffix (``adjust_bn_5_1``)."""
    toks = seg.split("_")
    if strip_call:
        if len(toks) < 3 or not toks[-1].isdigit():
            return []
        toks = toks[:-1]
    if len(toks) < 2 or not toks[-1].isdigit() or not toks[0]:
        return []
    out = []
    if len(toks) >= 3 and _CELL_WORD.match(toks[-2]):
        out.append(("_".join(toks[:-2]), toks[-2] + "_" + toks[-1]))
    out.append(("_".join(toks[:-1]), toks[-1]))
    return out


def find_cells(segments) -> dict[str, str]:
    """Segment → cell index for sibling scopes named ``<layer kind>_<cell index>`` (NASNet's
    ``normal_left1_5``, ``adjust_bn_5``, ``reduction_add_1_reduce_6``, each maybe with Keras-3's
    ``_1`` call suffix): a cell is an index shared by at least :data:`MIN_CELL_KINDS` different
    layer kinds, and there must be :data:`MIN_CELLS` such cells whose kinds repeat. Plain
    numbered siblings (``stage_1``…``stage_20``: one kind per index) are not cells. Empty when
    the level is not made of cells."""
    segments = list(segments)
    best: dict[str, str] = {}
    for strip_call in (False, True):
        kinds: dict[str, set[str]] = defaultdict(set)
        splits = {s: _cell_split(s, strip_call) for s in segments}
        for cands in splits.values():
            for kind, cell in cands:
                kinds[cell].add(kind)
        cells = {c for c, k in kinds.items() if len(k) >= MIN_CELL_KINDS}
        # distinct indices (``relu_1``, ``BN_1``, ``add_1`` sharing Keras' call suffix are not
        # cells)
        if len({c.rsplit("_", 1)[-1] for c in cells}) < MIN_CELLS:
            continue
        # the kinds must repeat from cell to cell (a cell is a repeated structure)
        seen = Counter(k for c in cells for k in kinds[c])
        if sum(1 for n in seen.values() if n >= MIN_CELLS) < MIN_CELL_KINDS:
            continue
        # a kind numbered mostly outside the cells is Keras' auto-numbering (``activation_6``
        # is the sixth activation, not a layer of cell 6)
        indices: dict[str, set[str]] = defaultdict(set)
        for cands in splits.values():
            if cands:
                indices[cands[-1][0]].add(cands[-1][1])
        auto = {k for k, idx in indices.items()
                if len(idx) >= 2 * MIN_CELLS and len(idx & cells) < 0.5 * len(idx)}
        found = {}
        found_kinds = set()
        for s, cands in splits.items():
            if cands and cands[-1][0] in auto:
                continue
            for kind, cell in cands:
                if cell in cells:
                    found[s] = cell
                    found_kinds.add(kind)
                    break
        # once Keras' auto-numbered kinds are set aside, cells still hold several kinds (a
        # Transformer's ``multi_head_attention_<N>`` alone is a series, not cells)
        if len(found_kinds) < MIN_CELL_KINDS:
            continue
        if len(found) > len(best):
            best = found
    return best


#: A stage number followed by a block letter (EfficientNet's ``block2b_expand_conv``).
_LETTERED = re.compile(r"(?<=[A-Za-z_])(\d+)([a-z])(?=_)")


def _num_prefixes(seg: str) -> list[str]:
    """Numbered name prefixes, outermost first: ``conv2_block1_1_conv_1`` → ``["conv2",
    "conv2_block1", "conv2_block1_1"]``; ``block2b_expand_conv`` → ``["block2", "block2b"]``
    (a stage, then its lettered block)."""
    cuts = {m.end() for m in _NUM_PREFIX.finditer(seg)}
    for m in _LETTERED.finditer(seg):
        cuts.add(m.end(1))
        cuts.add(m.end(2))
    return [seg[:c] for c in sorted(cuts)]


@lru_cache(maxsize=1 << 16)
def _block_prefixes(seg: str) -> tuple[str, ...]:
    """Name prefixes a block of sibling layers may share, outermost first: the numbered ones
    (:func:`_num_prefixes`) and a leading word that is not a series' stem (EfficientNet's
    ``stem_conv``, ``stem_bn``, ``stem_activation`` → ``stem``; not ``block`` of
    ``block_1_expand``, whose blocks are numbered)."""
    out = _num_prefixes(seg)
    toks = seg.split("_")
    if len(toks) >= 2 and toks[0].isalpha() and not toks[1].isdigit() \
            and not (out and out[0].startswith(toks[0] + "_")):
        out = [toks[0]] + [p for p in out if p != toks[0]]
    return tuple(out)


#: A layer name's kind: the name without its trailing numbers (``dense_12_1`` → ``dense``).
_TRAILING_NUMBERS = re.compile(r"(_\d+)+$")


def layer_kind(seg: str) -> str:
    return _TRAILING_NUMBERS.sub("", seg)


def series_blocks(ordered: list[str]) -> dict[str, int]:
    """Cut a run of auto-numbered sibling layers (in graph order) into repeated blocks:
    {segment: block number, from 1}; empty when the level does not repeat.

    A marker kind that occurs once per repetition (a Transformer layer's
    ``multi_head_attention_N``, MobileNet's ``separable_conv2d_N``) starts each block; the
    marker is the kind whose blocks most often hold the same sequence of layer kinds. Layers
    before the first block (the stem) and after the last full repetition (the head) stay
    outside."""
    kinds = [layer_kind(k) for k in ordered]
    counts = Counter(kinds)
    best = None
    for marker, n in counts.items():
        if n < MIN_CELLS:
            continue
        starts = [i for i, k in enumerate(kinds) if k == marker]
        segs = [tuple(kinds[a:b]) for a, b in zip(starts, starts[1:])]
        if not segs:
            continue
        common, same = Counter(segs).most_common(1)[0]
        if len(common) < 2 or same < MIN_CELLS - 1:
            continue
        score = (same * len(common), -n)
        if best is None or score > best[0]:
            best = (score, starts, common)
    if best is None:
        return {}
    _, starts, common = best
    out: dict[str, int] = {}
    bounds = list(zip(starts, starts[1:])) + [(starts[-1], len(ordered))]
    for b, (a, end) in enumerate(bounds, 1):
        if end == len(ordered):  # the last block ends where a repetition ends: then the head
            end = a
            while end < len(ordered) and end - a < len(common) and kinds[end] == common[end - a]:
                end += 1
        for k in ordered[a:end]:
            out[k] = b
    return out


def _drop_strays(parent: tuple, units: dict[str, object],
                 spans: dict[tuple, list[int]]) -> dict[str, object]:
    """``units`` without the segments lying far from the rest of their unit in the graph: a
    head layer carrying Keras-3's ``_1`` call suffix (``predictions_1``) is not a layer of
    NASNet's cell 1 thousands of nodes earlier. Per unit, its segments' spans are cut where
    the gap to the next exceeds what the stretch so far holds; the biggest stretch stays."""
    by_unit: dict[object, list[tuple[list[int], str]]] = defaultdict(list)
    for k, u in units.items():
        if (parent, k) in spans:
            by_unit[u].append((spans[(parent, k)], k))
    drop = set()
    for members in by_unit.values():
        members.sort(key=lambda m: m[0][0])
        stretches: list[list] = [[members[0]]]
        end, own = members[0][0][1], members[0][0][2]
        for span, k in members[1:]:
            if span[0] - end > max(20, own):
                stretches.append([])
                own = 0
            stretches[-1].append((span, k))
            end, own = max(end, span[1]), own + span[2]
        if len(stretches) > 1:
            keep = max(stretches, key=lambda st: sum(m[0][2] for m in st))
            drop.update(k for st in stretches if st is not keep for _, k in st)
    return {k: u for k, u in units.items() if k not in drop}


def _units_contiguous(parent: tuple, units: dict[str, object],
                      spans: dict[tuple, list[int]]) -> bool:
    """Each unit (segments sharing a value) is a stretch of the level's drawn nodes, at least
    half of it its own: nodes far apart in the graph are never one group."""
    by_unit: dict[object, list[list[int]]] = defaultdict(list)
    for k, u in units.items():
        if (parent, k) in spans:
            by_unit[u].append(spans[(parent, k)])
    for found in by_unit.values():
        first = min(f[0] for f in found)
        last = max(f[1] for f in found)
        if sum(f[2] for f in found) < 0.5 * (last - first + 1):
            return False
    return True


#: Name segments that say nothing about a weight (what reads it, not what it is).
_PLUMBING = re.compile(r"^(read|resource|ReadVariableOp|Read|Identity|Const|Cast|"
                       r"(ReadVariableOp|Identity|Const|Cast|read)_\d+|\d+)$")
#: What each input of common ops is, by index (the names users know from Keras).
INPUT_ROLES = {
    "FusedBatchNorm": [None, "gamma", "beta", "mean", "variance"],
    "FusedBatchNormV2": [None, "gamma", "beta", "mean", "variance"],
    "FusedBatchNormV3": [None, "gamma", "beta", "mean", "variance"],
    "Conv2D": [None, "kernel"], "Conv3D": [None, "kernel"],
    "DepthwiseConv2dNative": [None, "depthwise_kernel"], "MatMul": [None, "kernel"],
    "BiasAdd": [None, "bias"], "Conv2DBackpropInput": ["output_shape", "kernel"],
}


def badge_name(weight: str, consumer_op: str, index: int) -> str:
    """The short name of a weight drawn as a badge: its own name when that says what it is
    (``gamma``, ``kernel``, ``moving_mean``), else its role in the op reading it (a Keras-2
    ``conv1_bn/ReadVariableOp_2`` read by FusedBatchNormV3's input 3 is the ``mean``)."""
    segs = weight.split("/")
    popped = []
    while len(segs) > 1 and _PLUMBING.match(segs[-1]):
        popped.append(segs.pop())
    own = segs[-1]
    roles = INPUT_ROLES.get(consumer_op)
    role = roles[index] if roles and index < len(roles) else None
    # behind a resource-variable read the name left is the layer's (``conv1_bn``) or the
    # op's (``FusedBatchNormV3``), not the weight's; a TF1 ``gamma/read`` names the weight
    unnamed = any(p == "resource" or re.search(r"_\d+$", p) for p in popped)
    if role and (unnamed or _PLUMBING.match(own) or own == consumer_op):
        return role
    return own


def _virtual_level(parent: tuple, kids: dict, spans) -> dict[str, list[str]]:
    """Numbered name blocks of one scope level: {segment: [block prefixes, outermost first]}
    (empty when the level has none)."""
    if len(kids) < MIN_SIBLINGS_FOR_BLOCKS:
        return {}
    members: dict[str, list[str]] = defaultdict(list)
    for k in kids:
        for p in set(_block_prefixes(k)):
            members[p].append(k)

    def contiguous(p: str) -> bool:
        """A block is a stretch of the graph (block_3's layers follow one another);
        a shared numbered prefix scattered all over (NASNet's ``normal_add_1_<cell>``
        in every cell) is a naming pattern, not a block."""
        found = [spans[(parent, k)] for k in members[p] if (parent, k) in spans]
        if not found:
            return True
        first = min(f[0] for f in found)
        last = max(f[1] for f in found)
        return sum(f[2] for f in found) >= 0.5 * (last - first + 1)

    # not a prefix that is itself a sibling's name (MobileNetV2's scope ``Conv1`` next
    # to ``Conv1_pad``, ``bn_Conv1``, ``Conv1_relu``): a virtual "Conv1" beside the
    # real one would read twice, and the chain would run out of it and back in
    ok = {p for p, m in members.items()
          if 2 <= len(m) < len(kids) and p not in kids and contiguous(p)}
    chains = {}
    for k in kids:
        chain = [p for p in _block_prefixes(k) if p in ok and p != k]
        if chain:
            chains[k] = chain
    return chains


def _step(cells: dict, virtual: dict, out: list, key: str, level: tuple, seg: str, real: str,
          last: bool) -> str:
    """Append the groups segment ``seg`` of scope level ``level`` opens (its cell or
    series block, its numbered name blocks, then — unless it is the node's own last
    segment — its scope) as (key, label, virtual, name prefix); return the innermost
    key."""
    cell = cells.get(level, {}).get(seg)
    if cell is not None:  # a cell or a block of a series (not a name prefix)
        ckey = f"{key}/{cell}" if key else cell
        out.append((ckey, cell, True, real))
        key = ckey
    # a node whose own name starts a numbered block joins that block too
    for p in virtual.get(level, {}).get(seg, ()):
        vkey = f"{key}/{p}_*" if key else f"{p}_*"
        out.append((vkey, p, True, real + p + "_"))
        key = vkey
    if not last:
        key = f"{key}/{seg}" if key else seg
        out.append((key, seg, False, real + seg + "/"))
    return key


def path_entries(name: str, cells: dict, virtual: dict) -> tuple[list, str]:
    """The group path of node ``name`` (as ``GroupTree._build_groups`` makes it, one node):
    [(key, label, virtual, name prefix)] from the outside in, and the innermost key."""
    out: list = []
    key = real = ""
    level: tuple = ()
    segs = name.split("/")
    last = len(segs) - 1
    for i, seg in enumerate(segs):
        key = _step(cells, virtual, out, key, level, seg, real, i == last)
        real += seg + "/"
        level += (seg,)
    return out, key


class _Scope:
    """A name scope while the group tree is built (see ``GroupTree._build_groups``)."""
    __slots__ = ("own", "steps", "siblings", "rank", "head", "leaf_cells", "leaf_virtual")

    def __init__(self, own: tuple):
        self.own = own          # its segments: the parent level of its nodes' last segments
        self.steps: list = []   # per level above its nodes: (rank counter, span) to count into
        self.siblings: dict = {}
        self.rank: list[int] = []
        self.head: _Path | None = None
        self.leaf_cells: dict | None = None
        self.leaf_virtual: dict | None = None


_READ_OPS = frozenset({"Identity", "ReadVariableOp", "Snapshot"})
_MAYBE_HIDDEN = _READ_OPS | {"Const"}


class _Spans:
    """``(parent level, segment) → [first, last, count]`` over spans kept by path string
    (``(("a",), "b")`` is ``"a/b"``): only the levels that are looked at pay for the key."""
    __slots__ = ("by_path",)

    def __init__(self, by_path: dict[str, list[int]]):
        self.by_path = by_path

    def __contains__(self, key: tuple) -> bool:
        found = self.by_path.get("/".join(key[0] + (key[1],)))
        return found is not None and found[2] > 0

    def __getitem__(self, key: tuple) -> list[int]:
        found = self.by_path.get("/".join(key[0] + (key[1],)))
        if found is None or not found[2]:
            raise KeyError(key)
        return found


class _Path:
    """A group path (key, label, virtual, name prefix) from the outside in, shared by the
    nodes of a scope; with what is counted per path while the tree is built."""
    __slots__ = ("entries", "key", "drawn", "parent", "children", "label_prefix", "size",
                 "visible", "ops", "in_groups")

    def __init__(self, entries: list, key: str):
        self.entries, self.key = entries, key
        self.drawn = self.size = self.visible = 0
        self.parent: str | None = None
        self.children: list | None = None
        self.label_prefix = ""
        self.ops: dict[str, list[int]] = {}
        self.in_groups: tuple | None = None


def _add_counts(acc: list, size: int, visible: int, ops: dict[str, list[int]]) -> None:
    """Add sizes and an op histogram ({op: [count, first position]}) to ``acc``."""
    acc[0] += size
    acc[1] += visible
    mine = acc[2]
    for op, (n, first) in ops.items():
        have = mine.get(op)
        if have is None:
            mine[op] = [n, first]
        else:
            have[0] += n
            if first < have[1]:
                have[1] = first


class GroupTree:
    """Groups, badges and visible-graph construction for one Graph (immutable once built).

    ``defer=True`` leaves out what the first view of a big graph does not need (the
    :class:`Badge` objects with their labels, and which groups each hidden node's name puts it
    in, for :meth:`members`): the first read of one of them, or :meth:`complete` (which the
    window runs on a worker right after the first view), makes them, exactly as an eager build
    does; until then ``badges.get(node)`` makes one node's badges. Reading them later reads
    the weights' NodeDefs then: whoever defers keeps the graph from being edited in place
    until :meth:`complete` (a document just opened has no step to undo)."""

    def __init__(self, graph: Graph, show_constants: bool = False, defer: bool = False):
        self.graph = graph
        self.show_constants = show_constants
        self.groups: dict[str, Group] = {}
        #: node name → its innermost group key ("" = top level); only for drawn nodes.
        self.parent_of: dict[str, str] = {}
        #: node name → text shown under the op type (its last name segment, or its hoisted scope).
        self.node_label: dict[str, str] = {}
        #: hidden node → the drawn nodes it is a badge on.
        self.badge_owner: dict[str, list[str]] = {}
        # drawn node → its badges (see the ``badges`` property): None until made
        self._badges: dict[str, list[Badge]] | None = None
        self._hidden_groups_made: dict[str, tuple[str, ...]] | None = None
        self._complete_lock = threading.Lock()
        self.root_children: list[str] = []
        #: node name → op type (plain strings: safe to read from a layout worker while the
        #: document's protobuf changes on the GUI thread).
        #: (The index's own map, read once per index and never changed in place.)
        self.op_of: dict[str, str] = graph.ops
        self._ancestors: dict[str, tuple[str, ...]] = {}
        # the tens of thousands of lists and tuples a 100k-node tree is made of set off
        # collections that walk the whole heap again and again (a third of the build), and
        # none of it is cyclic garbage
        with gc_paused():
            self._find_badges()
            self._build_groups()
            self._signatures()
        if not defer:
            self.complete()

    # ------------------------------------------------------------------ deferred parts
    @property
    def is_complete(self) -> bool:
        """Whether the deferred parts are made (always, unless built with ``defer=True``)."""
        return self._badges is not None and self._hidden_groups_made is not None

    def complete(self) -> None:
        """Make the deferred parts (badges, hidden nodes' groups); any thread, idempotent."""
        with self._complete_lock:
            if self._badges is None:
                made, feeds = self._made_badges, self._feeds
                badges: dict[str, list[Badge]] = defaultdict(list)
                for c in feeds:  # in the order each drawn node got its first badge
                    found = made.get(c)
                    badges[c] = found if found is not None else self._badges_of(c, feeds)
                self._badges = badges
                self._made_badges = self._feeds = None
            if self._hidden_groups_made is None:
                groups, path_of = self.groups, self._path_of

                def in_groups(path: _Path) -> tuple[str, ...]:
                    if path.in_groups is None:
                        path.in_groups = tuple(k for k, _, _, _ in path.entries if k in groups)
                    return path.in_groups
                self._hidden_groups_made = dict(zip(
                    self.hidden, map(in_groups, map(path_of.__getitem__, self.hidden))))
                self._path_of = None

    @property
    def badges(self) -> dict[str, list[Badge]]:
        """Drawn node → its badges (a defaultdict). Deferred: a view whose ``get(node)``
        makes that node's badges; anything else makes them all first."""
        found = self._badges
        if found is None:
            return _DeferredBadges(self)
        return found

    @property
    def _hidden_groups(self) -> dict[str, tuple[str, ...]]:
        """Hidden node → the groups its name puts it in (what :meth:`members` reports)."""
        if self._hidden_groups_made is None:
            self.complete()
        return self._hidden_groups_made

    def _badges_of(self, c: str, feeds: dict) -> list[Badge]:
        """The badges of drawn node ``c``, as the eager build makes them."""
        out = []
        info_of = self._badge_info
        for name, index in feeds.get(c, ()):
            const = self.hidden[name]
            info = info_of.get(name)
            if info is None:  # once per weight: every badge of it shares its shape
                dtype, shape = output_info(self._const_nodes[const])
                info = info_of[name] = (format_shape(shape), shape, dtype)
            short = badge_name(const, self.op_of.get(c, ""), index)
            out.append(Badge(name, const, f"{short} {info[0]}", info[1], info[2]))
        return out

    # ------------------------------------------------------------------ badges
    def _find_badges(self) -> None:
        """Weights drawn as badges, and the edges between drawn nodes (``_edges``), from the
        graph's consumer index where the loader built it (see :meth:`_edges_from_index`), else
        from one pass over every node's inputs."""
        g = self.graph
        nodes, op_of = g.nodes, self.op_of
        hidden: dict[str, str] = {}  # hidden node → its Const
        # what may be hidden: Consts with no inputs, and a lone read of one
        watch = set() if self.show_constants else \
            {name for name, op in op_of.items() if op in _MAYBE_HIDDEN}
        consumers: dict[str, list[tuple[str, int, object]]] = {}  # of the watched nodes
        lone_input: dict[str, object] = {}  # watched node → its input, if it has exactly one
        with_inputs: set[str] = set()  # watched nodes with inputs
        edges = []
        listed = g.graph_def.node
        index_built = g._consumers  # the loader's validation built it: no pass over the protos
        if index_built is not None and len(nodes) == len(listed):
            in_order = getattr(g, "inputs_in_order", None)  # (its entries in node order)
            in_order = in_order[1] if in_order is not None and in_order[0] is index_built \
                else None
            try:
                edges = self._edges_from_index(index_built, in_order, watch, consumers,
                                               lone_input, with_inputs)
                listed = ()
            except KeyError:  # an index out of step with the nodes: read the protos instead
                edges = []
                consumers.clear(), lone_input.clear(), with_inputs.clear()
        names = nodes if len(nodes) == len(listed) else [n.name for n in listed]
        for name, node in zip(names, listed):
            inputs = node.input
            if not inputs:
                continue
            if name in watch:
                with_inputs.add(name)
                if len(inputs) == 1:
                    lone_input[name] = parse_input(inputs[0])
            for index, text in enumerate(inputs):
                ref = parse_input(text)
                src = ref.node
                if src in watch:
                    found = consumers.get(src)
                    if found is None:
                        consumers[src] = [(name, index, ref)]
                    else:
                        found.append((name, index, ref))
                if src in nodes:
                    edges.append((src, ref.port, ref.control, name))
        # a Const with no inputs that something reads (only watched nodes have consumers here)
        for name, op in op_of.items():  # graph order
            if op == "Const" and name in consumers and name not in with_inputs:
                hidden[name] = name
        for name, op in op_of.items():
            if op in _READ_OPS:
                ref = lone_input.get(name)
                if ref is not None and not ref.control:
                    src = ref.node
                    if src in hidden and hidden[src] == src:
                        hidden[name] = src
        self.hidden = hidden
        #: (source, port, control, consumer) of every input between drawn nodes, in graph
        #: order: every visible graph is built from this plain Python data (a 107k-node graph
        #: has 120k of them)
        self._edges = [e for e in edges if e[0] not in hidden and e[3] not in hidden] \
            if hidden else edges
        # who shows each weight, and (made later: see ``_badges_of``) the badges: drawn node →
        # [(hidden node, the input index it is read at)] in the order its badges come
        feeds: dict[str, list[tuple[str, int]]] = {}
        for name, const in hidden.items():
            owners = []
            for c, index, ref in consumers.get(name, ()):
                if c in hidden or ref[2]:  # (a control input)
                    continue
                if c not in owners:
                    owners.append(c)
                    found = feeds.get(c)
                    if found is None:
                        feeds[c] = [(name, index)]
                    else:
                        found.append((name, index))
            self.badge_owner[name] = owners
        self._feeds = feeds
        self._badge_info: dict[str, tuple] = {}
        self._made_badges: dict[str, list[Badge]] = {}
        # the NodeDefs of the weights, as the graph holds them now
        self._const_nodes = {c: nodes[c] for c in set(hidden.values())} if hidden else {}
        # a weight read only through its /read is shown (and found) on the read's consumers
        for name, const in hidden.items():
            if name != const:
                own = self.badge_owner.setdefault(const, [])
                own.extend(o for o in self.badge_owner.get(name, []) if o not in own)

    def _edges_from_index(self, index: dict, in_order: list | None, watch: set, consumers: dict,
                          lone_input: dict, with_inputs: set) -> list:
        """What ``_find_badges``' pass over every input finds, read from the graph's consumer
        index instead (producer → (consumer, input index, ref), each list in node order): the
        edges from existing nodes in graph order (consumer, then input index), the watched
        nodes' consumers in that order, and which watched nodes have inputs (one: its ref).
        ``in_order``: the index's entries in that order already, as the index keeps them
        (else they are put in order here)."""
        nodes = self.graph.nodes
        if in_order is None:
            pos = {name: i for i, name in enumerate(nodes)}
            flat = []
            for src, found in index.items():
                if found:  # (a dangling input's missing producer too: an input all the same)
                    flat += [((pos[e[0]] << 32) | e[1], e) for e in found]
            flat.sort(key=itemgetter(0))  # nearly sorted already: cheap
            in_order = map(itemgetter(1), flat)
        edges = []
        add = edges.append
        n_inputs: dict[str, int] = {}
        for entry in in_order:
            c, _, ref = entry
            if c in watch:
                n_inputs[c] = n_inputs.get(c, 0) + 1
                lone_input[c] = ref
            src, port, control = ref
            if src in nodes:
                add((src, port, control, c))
                if src in watch:
                    have = consumers.get(src)
                    if have is None:
                        consumers[src] = [entry]
                    else:
                        have.append(entry)
        with_inputs.update(n_inputs)
        for c, n in n_inputs.items():
            if n != 1:
                del lone_input[c]
        return edges

    # ------------------------------------------------------------------ groups
    def _build_groups(self) -> None:
        """Groups from the node names. The work is per scope (a 107k-node graph has 39k
        scopes): each scope's group path is worked out once, from its parent scope's, and a
        node only adds what its own last segment changes; counts and op histograms are summed
        per path and then up the tree, not per node and level."""
        g = self.graph
        hidden = self.hidden
        names = list(g.nodes)  # graph order, one per name
        if len(names) == len(g.graph_def.node):
            drawn = [n for n in names if n not in hidden]
        else:  # duplicated names (an unvalidated graph): every listed node
            drawn = [n.name for n in g.graph_def.node if n.name not in hidden]
        # raw scope segments → per-level sibling sets, to find numbered block prefixes
        siblings: dict[tuple, dict[str, None]] = defaultdict(dict)
        #: (parent, segment) → [first, last, count] of the positions of the drawn nodes inside,
        #: counted among the drawn nodes of the parent level (weights and their reads, which
        #: frozen graphs list far from their ops, do not stretch a block). Kept per path
        #: string ("a/b" for (("a",), "b")) while counting.
        span_at: dict[str, list[int]] = {}
        rank_of: dict[tuple, list[int]] = {}
        scopes: dict[str, _Scope] = {}

        def scope_of(scope: str) -> _Scope:
            """The scope ``a/b/`` ("" for the top level), set up on first sight (in graph
            order, so every level's siblings keep their order of first appearance) from its
            parent scope."""
            if not scope:
                sc = _Scope(())
            else:
                seg = scope[:-1].rpartition("/")[2]
                up_scope = scope[:len(scope) - len(seg) - 1]
                up = scopes.get(up_scope) or scope_of(up_scope)
                sc = _Scope(up.own + (seg,))
                up.siblings[seg] = None
                path = scope[:-1]  # the span key of (up.own, seg)
                cell = span_at.get(path)
                if cell is None:
                    cell = span_at[path] = [0, 0, 0]
                sc.steps = up.steps + [(up.rank, cell)]
            sc.siblings = siblings[sc.own]
            rank = rank_of.get(sc.own)
            if rank is None:
                rank = rank_of[sc.own] = [0]
            sc.rank = rank
            scopes[scope] = sc
            return sc

        def count_run(sc: _Scope, n: int) -> None:
            """Count ``n`` drawn nodes of scope ``sc`` in a row (no other scope's drawn node
            between them) into every level above them: their places there follow on."""
            for rank, cell in sc.steps:
                where = rank[0]
                rank[0] = where + n
                if not cell[2]:
                    cell[0] = where
                cell[1] = where + n - 1
                cell[2] += n

        node_scope: list[_Scope] = []
        leaves: list[str] = []
        run_sc, run_n = None, 0  # the scope of the last drawn nodes, how many in a row
        for name in names:
            leaf = name.rpartition("/")[2]
            scope = name[:len(name) - len(leaf)]
            sc = scopes.get(scope) or scope_of(scope)
            node_scope.append(sc)
            leaves.append(leaf)
            sc.siblings[leaf] = None
            if name in hidden:
                continue
            if sc is not run_sc:
                if run_n:
                    count_run(run_sc, run_n)
                run_sc, run_n = sc, 0
            run_n += 1
            rank = sc.rank
            where = rank[0]
            rank[0] = where + 1
            cell = span_at.get(name)
            if cell is None:
                span_at[name] = [where, where, 1]
            else:  # a node named like a scope ("a/b" next to "a/b/c")
                if not cell[2]:
                    cell[0] = where
                cell[1] = where
                cell[2] += 1
        if run_n:
            count_run(run_sc, run_n)
        spans = _Spans(span_at)
        del rank_of
        cells = self._find_cell_levels(siblings, spans)
        virtual: dict[tuple, dict[str, list[str]]] = {}
        for parent, kids in siblings.items():
            if parent in cells:
                continue
            chains = _virtual_level(parent, kids, spans)
            if chains:
                virtual[parent] = chains
        #: the scope levels' decisions (cells or series blocks, numbered name blocks): what an
        #: edit's tree keeps where the edit did not touch a level (see ``grouping_delta``)
        self._cells, self._virtual = cells, virtual
        # outer levels too narrow to be cut into blocks (an edit that only takes nodes away
        # from one keeps it so: not looked at again; an outer level's look is a pass over
        # every name, an inner one's a short list)
        self._narrow = {level for level, kids in siblings.items()
                        if len(level) <= 2 and len(kids) < MIN_SIBLINGS_FOR_BLOCKS}

        heads: dict[str, _Path] = {"": _Path([], "")}

        def head_of(scope: str, own: tuple) -> _Path:
            """The group path of a scope's nodes up to their own last segment, from the
            parent scope's."""
            head = heads.get(scope)
            if head is None:
                real = scope[:len(scope) - len(own[-1]) - 1]
                up = head_of(real, own[:-1])
                out = list(up.entries)
                key = _step(cells, virtual, out, up.key, own[:-1], own[-1], real, False)
                head = heads[scope] = _Path(out, key)
            return head

        paths: list[_Path] = []
        for name, sc, leaf in zip(names, node_scope, leaves):
            head = sc.head
            if head is None:
                head = sc.head = head_of(name[:len(name) - len(leaf)], sc.own)
                sc.leaf_cells = cells.get(sc.own)
                sc.leaf_virtual = virtual.get(sc.own)
            if (sc.leaf_cells is not None and leaf in sc.leaf_cells) or \
                    (sc.leaf_virtual is not None and leaf in sc.leaf_virtual):
                out = list(head.entries)
                key = _step(cells, virtual, out, head.key, sc.own, leaf,
                            name[:len(name) - len(leaf)], True)
                paths.append(_Path(out, key))
            else:
                paths.append(head)
        path_of = dict(zip(names, paths))
        # (the two recursive closures hold themselves, and through their cells every scope and
        # head path: a reference cycle, which a frozen collector kept for good, ~260k objects
        # on the 53k-node graph; emptying their cells breaks it)
        del node_scope, leaves, scope_of, head_of
        # a group with a single drawn node is not worth a box: hoist the node out
        for name in drawn:
            path_of[name].drawn += 1
        unique = list({id(p): p for p in paths}.values())
        counted: Counter = Counter()
        for path in unique:
            if path.drawn:
                for key, _, _, _ in path.entries:
                    counted[key] += path.drawn
        keep = {k for k, n in counted.items() if n >= 2}
        self._counted = counted  # (drawn nodes per path key: which an edit keeps as groups)
        groups = self.groups
        root = self.root_children
        parent_of, node_label = self.parent_of, self.node_label
        for name in drawn:
            path = path_of[name]
            if path.parent is None:  # the first node on this path: make its groups
                parent = ""
                for key, label, is_virtual, prefix in path.entries:
                    if key not in keep:
                        continue
                    if key not in groups:
                        groups[key] = Group(key, label, parent, is_virtual, prefix)
                        (groups[parent].children if parent else root).append("g:" + key)
                    parent = key
                path.parent = parent
                path.children = groups[parent].children if parent else root
                # label: the name relative to the enclosing shown group
                prefix = groups[parent].prefix if parent else ""
                if prefix.endswith("_"):  # virtual block: keep the whole layer name
                    prefix = prefix[:prefix.rfind("/") + 1]
                path.label_prefix = prefix
            parent_of[name] = path.parent
            path.children.append("n:" + name)
            prefix = path.label_prefix
            node_label[name] = name[len(prefix):] if name.startswith(prefix) else name
        # sizes and histograms (hidden nodes count towards the group of their name): per path
        # into its innermost group, then summed up the tree (a parent is made before its
        # children, so in reverse order of making every child is done before its parent)
        if len(drawn) == len(names) - len(hidden):  # no duplicated names
            for path in unique:
                path.visible = path.drawn
        else:
            for name in names:
                if name not in hidden:
                    path_of[name].visible += 1
        for i, (path, op) in enumerate(zip(paths, self.op_of.values())):
            path.size += 1
            ops = path.ops
            seen = ops.get(op)
            if seen is None:
                ops[op] = [1, i]
            else:
                seen[0] += 1
        own: dict[str, list] = {}  # group key → [size, visible size, {op: [count, first]}]
        op_firsts: dict[str, tuple[str, ...]] = {}
        self._op_firsts = op_firsts
        for path in unique:
            inner = path.parent  # the innermost group (set for paths with drawn nodes)
            if inner is None:
                for key, _, _, _ in reversed(path.entries):
                    if key in groups:
                        inner = key
                        break
            if not inner:
                continue
            acc = own.get(inner)
            if acc is None:
                acc = own[inner] = [0, 0, {}]
            _add_counts(acc, path.size, path.visible, path.ops)
        for key in reversed(list(groups)):
            acc = own.get(key)
            if acc is None:
                continue
            grp = groups[key]
            grp.size, grp.visible_size = acc[0], acc[1]
            # insertion order = each op's first node in graph order (as counted node by node)
            in_order = sorted(acc[2].items(), key=lambda kv: kv[1][1])
            grp.ops = Counter({op: n for op, (n, _) in in_order})
            # (each op's first node inside, in that order: what an edit's tree keeps the
            # order by)
            op_firsts[key] = tuple([names[f] for _, (_, f) in in_order])
            if grp.parent:
                up = own.get(grp.parent)
                if up is None:
                    up = own[grp.parent] = [0, 0, {}]
                _add_counts(up, acc[0], acc[1], acc[2])
        # every group's chain from its parent's (a parent is made before its children)
        chains: dict[str, tuple[str, ...]] = {"": ()}
        for key, grp in groups.items():
            chains[key] = chains[grp.parent] + (key,)
        self._ancestors.update(zip(drawn, map(chains.__getitem__,
                                              map(parent_of.__getitem__, drawn))))

        # hidden node → the groups its name puts it in: made by ``complete``
        self._path_of = path_of

    def _find_cell_levels(self, siblings: dict[tuple, dict[str, None]],
                          spans: dict[tuple, list[int]]) -> dict[tuple, dict[str, str]]:
        """Scope levels made of repeated units: level → {segment: group label}.

        A level of NASNet-style cells gives ``cell 5`` groups (see :meth:`_cells_of_level`);
        one that is not, but holds a long run of auto-numbered layers (a Transformer's
        ``multi_head_attention_3``, TF1's ``conv2d_7``), is cut into a series of blocks
        ``block 1``… (see :func:`series_blocks`). A unit is always a stretch of the graph: cells
        whose layers lie far apart are not used."""
        out: dict[tuple, dict[str, str]] = {}
        for parent, kids in siblings.items():
            found = self._cell_level(parent, kids, spans)
            if found is not None:
                out[parent] = found
        return out

    def _cell_level(self, parent: tuple, kids, spans) -> dict[str, str] | None:
        """One level's units for :meth:`_find_cell_levels`: {segment: group label}, or None."""
        if len(kids) < 4 * MIN_CELL_KINDS:
            return None
        found = self._cells_of_level(parent, kids)
        if found and len(found) >= MIN_CELL_LAYERS * len(set(found.values())):
            # cells of real size but for a few far-away layers numbered like one
            # (NASNet's head under Keras 3): those stay at the level
            found = _drop_strays(parent, found, spans)
        if found and _units_contiguous(parent, found, spans):
            return {k: f"cell {c}" for k, c in found.items()}
        if len({layer_kind(k) for k in kids}) < 2:
            return None   # (one kind of layer, stage_1…stage_200: no series, in any order)
        ordered = sorted((k for k in kids if (parent, k) in spans),
                         key=lambda k: spans[(parent, k)][0])
        blocks = series_blocks(ordered)
        if blocks and _units_contiguous(parent, blocks, spans):
            return {k: f"block {b}" for k, b in blocks.items()}
        return None

    def _cells_of_level(self, parent: tuple, kids) -> dict[str, str]:
        """NASNet-style cells of one level: {segment: cell index} (empty if none).

        Segments named by a trailing cell index are found by :func:`find_cells`; the
        auto-numbered layers between them (``activation_17``, ``concatenate_3``: Keras' unique
        names, no cell in them) join the cell their outputs feed (or, failing that, the cell
        feeding them), so a cell shows everything it computes. Specifically named layers with
        no cell (``stem_conv1``, ``predictions``) stay at the level itself."""
        g = self.graph
        found = find_cells(kids)
        if not found:
            return {}
        depth = len(parent)
        head = "/".join(parent) + "/" if parent else ""

        def seg_of(name: str) -> str | None:
            if not name.startswith(head):
                return None
            segs = name.split("/")
            return segs[depth] if len(segs) > depth else None

        nodes_of: dict[str, list[str]] = defaultdict(list)
        for name in g.nodes:
            sg = seg_of(name)
            if sg is not None:
                nodes_of[sg].append(name)

        def near(k: str, look: str):
            for n in nodes_of[k]:
                if look == "down":
                    yield from (c for c, _, _ in g.consumers(n))
                else:
                    yield from (parse_input(i).node for i in g.nodes[n].input)

        # a layer of a cell talks to its cell; one whose number only looks like a cell
        # index (``activation_1`` feeding cell 0) is placed by its neighbours instead
        # (or a pair of them: zero_padding2d_2 → cropping2d_2 between cells 7 and 2): its
        # own cell must be the one most of its neighbours are in; ties (a cell's first
        # layer reads the previous cell) are settled by the consumers below
        misnamed = []
        for k, cell in found.items():
            votes = Counter(c for c in (found.get(seg_of(m)) for look in ("down", "up")
                                        for m in near(k, look) if seg_of(m) != k)
                            if c is not None)
            if votes and any(n >= votes[cell] for c, n in votes.items() if c != cell):
                misnamed.append(k)
        for k in misnamed:
            del found[k]
        base = Counter(re.sub(r"[_\d]+$", "", k) for k in kids if k not in found)
        orphans = [k for k in kids if k not in found
                   and (base[re.sub(r"[_\d]+$", "", k)] >= 2 or k in misnamed)]
        if orphans:
            # consumers first (an activation belongs to the cell it starts), chains
            # resolved over a few passes; producers only for what still has no cell
            for look in ("down", "up"):
                for _ in range(4):
                    changed = False
                    for k in orphans:
                        if k in found:
                            continue
                        votes = Counter(c for c in (found.get(seg_of(m))
                                                    for m in near(k, look))
                                        if c is not None)
                        if votes:
                            found[k] = votes.most_common(1)[0][0]
                            changed = True
                    if not changed:
                        break
        return found

    def _chain(self, key: str) -> tuple[str, ...]:
        chain = []
        while key:
            chain.append(key)
            key = self.groups[key].parent
        return tuple(reversed(chain))

    def _signatures(self) -> None:
        # edges inside each group: counted at the innermost group holding both ends, then
        # summed up the tree (children are made after their parent)
        internal = Counter()
        ancestors, parent_of, groups = self._ancestors, self.parent_of, self.groups
        for s, _, _, d in self._edges:
            inner = parent_of[s]
            if inner != parent_of[d]:
                inner = ""
                for k1, k2 in zip(ancestors[s], ancestors[d]):
                    if k1 != k2:
                        break
                    inner = k1
            if inner:
                internal[inner] += 1
        for key in reversed(list(groups)):
            n = internal.get(key)
            if n:
                up = groups[key].parent
                if up:
                    internal[up] += n
        sigs = Counter()
        made: dict[tuple, int] = {}  # most groups repeat: one checksum per structure
        for grp in self.groups.values():
            # stable across runs (not Python's salted hash): same structure, same colour
            ops = sorted(grp.ops.items())
            key = (tuple(ops), internal[grp.key])
            sig = made.get(key)
            if sig is None:
                sig = made[key] = zlib.crc32(repr((ops, key[1])).encode())
            grp.signature = sig
            if grp.visible_size >= 3:
                sigs[sig] += 1
        for grp in self.groups.values():
            grp.repeats = sigs.get(grp.signature, 1) if grp.visible_size >= 3 else 1
        # (what an edit's tree is derived from: see ``grouping_delta``)
        self._internal, self._sig_count = internal, sigs
        self._by_sig: dict[int, set[str]] | None = None   # made when first needed

    # ------------------------------------------------------------------ queries
    def drawn_nodes(self) -> list[str]:
        return list(self._ancestors)

    def ancestors(self, name: str) -> tuple[str, ...]:
        """Group keys around a drawn node, outermost first (hidden nodes: those of an owner)."""
        if name in self._ancestors:
            return self._ancestors[name]
        owners = self.badge_owner.get(name)
        return self._ancestors[owners[0]] if owners else ()

    def ancestors_of_group(self, key: str) -> tuple[str, ...]:
        """Group keys around group ``key`` (itself excluded), outermost first."""
        return self._chain(self.groups[key].parent)

    def members(self, key: str) -> list[str]:
        """Every graph node inside a group (hidden badge nodes included), in graph order."""
        grp = self.groups[key]
        out = []
        for name in self.graph.nodes:
            if name in self._ancestors:
                if key in self._ancestors[name]:
                    out.append(name)
            elif key in self._hidden_groups.get(name, ()):
                out.append(name)
        return out

    def representative(self, name: str, expanded: set[str] | frozenset) -> str:
        """Unit key drawing ``name`` under the expansion state (hidden nodes: their first owner)."""
        if name not in self._ancestors:
            owners = self.badge_owner.get(name)
            if not owners:
                return ""
            name = owners[0]
        for key in self._ancestors[name]:
            if key not in expanded:
                return "g:" + key
        return "n:" + name

    def default_expanded(self, max_units: int = 40) -> set[str]:
        """Groups to open first so the top level of any model is readable.

        Wrapper scopes (a model whose every node sits in ``model_name/``) are opened while the
        visible graph stays small, largest first.
        """
        expanded: set[str] = set()
        visible = len(self.root_children)
        frontier = [c[2:] for c in self.root_children if c.startswith("g:")]
        if len(frontier) == 1:
            # the top level is one model-wide scope (plus inputs/outputs): always open it,
            # like TensorBoard; a level that is still too wide is split into cells/blocks
            key = frontier.pop()
            expanded.add(key)
            visible += len(self.groups[key].children) - 1
            frontier = [c[2:] for c in self.groups[key].children if c.startswith("g:")]
        while frontier and visible <= 8:
            frontier.sort(key=lambda k: -self.groups[k].visible_size)
            key = frontier.pop(0)
            n = len(self.groups[key].children)
            # a wrapper holding (nearly) the whole model is opened even into a hundred boxes:
            # a top level of "input → model → output" says nothing
            wrapper = (self.groups[key].visible_size >= 0.8 * len(self._ancestors)
                       and n <= MAX_WRAPPER_CHILDREN)
            if visible - 1 + n > max_units and visible > 1 and not wrapper:
                break
            expanded.add(key)
            visible += n - 1
            frontier.extend(c[2:] for c in self.groups[key].children if c.startswith("g:"))
        return expanded

    def visible_graph(self, expanded: set[str] | frozenset) -> list[VisibleEdge]:
        """Edges between visible units; parallel graph edges are aggregated into one."""
        g = self.graph
        rep_cache: dict[str, str] = {}

        def rep(n: str) -> str:
            r = rep_cache.get(n)
            if r is None:
                r = rep_cache[n] = self.representative(n, expanded)
            return r

        agg: dict[tuple[str, str], VisibleEdge] = {}
        dst = last = None
        for s, port, control, d in self._edges:
            if d is not last:  # an input list is consecutive: one look-up per node
                dst, last = rep(d), d
            src = rep(s)
            if src == dst:
                continue
            e = agg.get((src, dst))
            if e is None:
                label = "" if control else tensor_label(g.nodes[s], port)
                e = agg[(src, dst)] = VisibleEdge(src, dst, control, 0, label)
            elif e.control and not control:
                e.control = False
                e.label = tensor_label(g.nodes[s], port)
            e.count += 1
            if len(e.pairs) < 50:
                e.pairs.append((s, d))
        return list(agg.values())

    def children(self, container: str) -> list[str]:
        """Unit keys directly inside a container ("" = top level)."""
        return self.root_children if not container else self.groups[container].children

    def all_group_keys(self) -> list[str]:
        return list(self.groups)


class _DeferredBadges:
    """``GroupTree.badges`` before the tree is complete: ``get(node)`` makes (and keeps) one
    node's badges; any other use completes the tree and reads the whole map."""
    __slots__ = ("tree",)

    def __init__(self, tree: GroupTree):
        self.tree = tree

    def get(self, name: str, default=None):
        tree = self.tree
        done = tree._badges
        if done is not None:
            return done.get(name, default)
        made, feeds = tree._made_badges, tree._feeds
        if made is None or feeds is None:  # completed meanwhile (on another thread)
            return tree.badges.get(name, default)
        found = made.get(name)
        if found is None:
            if name not in feeds:
                return default
            found = made[name] = tree._badges_of(name, feeds)
        return found

    def _whole(self) -> dict[str, list[Badge]]:
        self.tree.complete()
        return self.tree._badges

    def __getitem__(self, name: str) -> list[Badge]:
        return self._whole()[name]

    def __contains__(self, name) -> bool:
        return name in self._whole()

    def __iter__(self):
        return iter(self._whole())

    def __len__(self) -> int:
        return len(self._whole())

    def __bool__(self) -> bool:
        return bool(self._whole())

    def __eq__(self, other) -> bool:
        return self._whole() == other

    def keys(self):
        return self._whole().keys()

    def values(self):
        return self._whole().values()

    def items(self):
        return self._whole().items()


def family_counts(tree: GroupTree) -> Counter:
    return Counter(op_family(tree.graph.nodes[n].op) for n in tree.drawn_nodes())
