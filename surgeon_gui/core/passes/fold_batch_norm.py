"""Fold batch norm (fused, global-normalization or decomposed) into the Conv2D, depthwise
convolution or MatMul before it: new weights and one BiasAdd."""
from __future__ import annotations

from collections import ChainMap
from dataclasses import dataclass, field

import numpy as np

from ..model.consteval import Constants, error_text
from ..model.graph import Graph, GraphError, NodeDef, make_const, parse_input
from .base import Match, Param, Pass, Refusal, sorted_names
from .context import PassContext, pass_body
from .pattern import Any, Foldable, Matcher, Op

LINEAR_OPS = ("Conv2D", "DepthwiseConv2dNative", "MatMul")
FUSED_BN_OPS = frozenset({"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"})
BN_OPS = FUSED_BN_OPS | {"BatchNormWithGlobalNormalization"}
ELEMENTWISE_OPS = frozenset({"Mul", "Add", "AddV2", "Sub", "RealDiv", "BiasAdd", "BiasAddV1"})
#: Steps that scale: a chain needs one of them to be a batch norm (a bare bias is not).
SCALING = frozenset({"Mul", "RealDiv"}) | BN_OPS
FLOAT_DTYPES = {1: np.float32, 2: np.float64, 19: np.float16}

EXPLANATION = """\
**What it matches.** A `Conv2D`, `DepthwiseConv2dNative` or `MatMul` with constant weights,
followed by a chain of per-channel affine steps whose other operands are constant:

- `FusedBatchNorm`/`V2`/`V3` with `is_training=False`, `BatchNormWithGlobalNormalization`;
- decomposed batch norm: the `Mul`/`Add`/`AddV2`/`Sub`/`RealDiv` nodes that
  `tf.nn.batch_normalization`, Keras 3 (`x * (gamma * rsqrt(var + eps)) + (beta - mean * …)`)
  and hand-written code (`x*inv - mean*inv + beta`) produce, whether or not
  **fold_constants** ran first (the constant operands are evaluated here);
- optionally a `BiasAdd`/`Add`/`AddV2` of a constant between the op and the batch norm: the
  case where TensorFlow's `optimize_for_inference_lib` stops with "Didn't find expected Conv2D
  input".

NHWC and NCHW are both handled (the channel axis follows `data_format`).

**The math.** Every step is `y = x*a + c` per output channel, so the chain composes to one
`y = conv(x, W)*s + o`. For a conv with bias `b` and a batch norm:

    y = gamma * (conv(x, W) + b - mean) / sqrt(var + eps) + beta
      = conv(x, W * s) + (b - mean) * s + beta        with s = gamma / sqrt(var + eps)

because a convolution (or a matrix product) is linear in its weights: scaling output
channel `k` of the result is scaling the filter of channel `k`. The new weights are `W*s`
(scaled along the last axis for `Conv2D` HWIO and `MatMul`, along axis 0 with
`transpose_b`; for `DepthwiseConv2dNative` `[H, W, C, M]` the output channel `c*M + m`
scales `W[..., c, m]`), and the last node of the chain becomes a `BiasAdd` (same name, so its
readers need no rewiring) of the new bias `(b - mean)*s + beta`. The arithmetic is done in
float64 and stored in the weights' dtype.

**Shared weights.** If another node also reads the weights, they cannot be scaled in place.
With `shared_weights=copy` (the default) the op gets its own scaled copy
(`<op>/folded_weights`) and the original stays for the other readers (the model grows by one
copy); with `shared_weights=refuse` the candidate is refused.

**What it refuses** (each listed with the reason): `is_training=True`; an intermediate tensor
that something else also reads (folding would change what that reader sees); an operand that
is not per-output-channel (it must broadcast as `[C]` on the channel axis, or be a scalar);
weights or batch-norm parameters that are not constant; `RealDiv` by zero; an op that is
itself a named graph output (its value would change); a batch norm whose input is not such an
op. A chain stops at a named graph output: that node becomes the `BiasAdd`, keeping its name
and its value.

**A batch norm with no op right before it.** After a `ConcatV2` of convolutions on the channel
axis (NASNet's `adjust_bn`), the per-channel affine distributes over the concat: each slice of
the scale goes into its convolution's weights and each slice of the offset into its bias. After
a ReLU or a pool, when the batch norm alone feeds a `Conv2D` with VALID padding (or a 1×1
kernel) or a `MatMul`, it folds forward: the weights are scaled per input channel and the offset
becomes a bias after that op (zero padding would meet the offset, so SAME k×k convs are left).
Otherwise `unfoldable=mul_add` (the default) makes the batch
norm one `Mul` + `Add` with its folded scale and offset: in TensorFlow 2.21 on CPU that is as
fast or faster than the fused op (0.81 vs 0.92 ms on [1,187,96,64]; equal on [8,32,32,128]),
and every runtime takes it; `unfoldable=keep` leaves it, with the reason.
"""


@dataclass
class Step:
    node: str
    kind: str            # "mul", "div", "add", "sub", "rsub", "bias", "fused", "global"
    operands: list[str] = field(default_factory=list)


@dataclass
class Candidate:
    linear: str
    weights: str          # the weight tensor the linear op reads
    axis: int             # channel axis of the linear op's output
    rank: int
    steps: list[Step]
    blocked: str = ""     # why the chain stopped early at a batch-norm step (if it did)
    blocked_node: str = ""


@pass_body("fold_batch_norm")
def fold_batch_norm(ctx: PassContext, shared_weights: str = "copy",
                    unfoldable: str = "mul_add") -> None:
    if shared_weights not in ("copy", "refuse"):
        raise ValueError("shared_weights must be 'copy' or 'refuse'")
    if unfoldable not in ("mul_add", "keep"):
        raise ValueError("unfoldable must be 'mul_add' or 'keep'")
    graph, report, select = ctx.graph, ctx.report, ctx.select
    try:
        cn = ctx.constants
        cn.analyse()
    except GraphError as e:
        ctx.refuse("graph", f"cannot analyse the graph: {e.problem}", e.nodes)
        return
    protected = ctx.protected
    refusals: list[Refusal] = []
    candidates: list[Candidate] = []
    explained: set[str] = set()   # batch-norm nodes already matched or refused

    for node in graph.graph_def.node:
        if node.op not in LINEAR_OPS:
            continue
        cand, problem = _walk(graph, cn, node, protected)
        if cand is None:
            continue
        if problem:
            involved = [s.node for s in cand.steps] + ([cand.blocked_node]
                                                       if cand.blocked_node else [])
            refusals.append(Refusal(node.name, problem, [node.name] + involved))
            explained.update(involved)
            continue
        if cand.blocked:
            refusals.append(Refusal(node.name, cand.blocked, [node.name, cand.blocked_node]))
            explained.add(cand.blocked_node)
        if not any(s.kind in ("mul", "div", "fused", "global") for s in cand.steps):
            continue
        candidates.append(cand)
        explained.update(s.node for s in cand.steps)

    # Batch-norm ops that no candidate explains: say why they stay, or (unfoldable=mul_add)
    # make each one Mul + Add with its folded per-channel scale and offset.
    lone = []
    for node in graph.graph_def.node:
        if node.op in BN_OPS and node.name not in explained:
            why = _bn_refusal(graph, cn, node)
            if node.op in FUSED_BN_OPS:
                lone.append((node, why))
            else:
                refusals.append(Refusal(node.name, why, [node.name]))
    for node, why in lone:
        # After a ConcatV2 of convolutions (NASNet's adjust_bn): fold each slice into its conv.
        concat_problem = _fold_into_concat(ctx, cn, node)
        if concat_problem is None:
            continue
        if "ConcatV2" in why:
            why = f"{why} ({concat_problem})"
        if "remove_switch_merge first" not in why:
            # Nothing before it: fold forward into a VALID/1x1 conv or a matmul it alone feeds.
            forward_problem = _fold_forward(ctx, cn, node, why)
            if forward_problem is None:
                continue
        if unfoldable != "mul_add" or "remove_switch_merge first" in why:
            # Behind a Switch it may well fold into its conv once the cond is resolved.
            refusals.append(Refusal(node.name, why + (" (unfoldable=keep)" if unfoldable !=
                                                      "mul_add" else ""), [node.name]))
            continue
        problem = _to_mul_add(ctx, cn, node, why)
        if problem:
            refusals.append(Refusal(node.name, f"{why}; not made Mul+Add either: {problem}",
                                    [node.name]))

    # Evaluate every constant operand at once (in float64, numpy where the ops allow: the
    # folding is float64 anyway); the weights one candidate at a time (exactly: they are stored
    # again in their dtype), so a big model's weights are not all decoded at the same time.
    operands = [t for c in candidates for s in c.steps for t in s.operands]
    operand_values = cn.evaluate(operands, exact=False) if operands else {}
    computed = [c.weights for c in candidates if cn.const_root(c.weights) is None]
    operand_values.update(cn.evaluate(computed) if computed else {})  # one session for all

    candidates_dead: set[str] = set()
    regions: dict[str, set[str]] = {}
    for c in candidates:
        lin = graph.nodes[c.linear]
        try:
            # a Const's weights decoded (no TF) and looked up before the operands: not a
            # merged copy of every operand's value per candidate (O(candidates x operands):
            # 3,400 copies of a ~15k-entry dict on the 107k-node graph)
            values = operand_values if c.weights in operand_values else \
                ChainMap(cn.evaluate([c.weights]), operand_values)
            w, scale, offset = _compose(graph, lin, c, values)
        except _Refuse as r:
            refusals.append(Refusal(c.linear, str(r), [c.linear] + [s.node for s in c.steps]))
            continue
        wref = parse_input(c.weights)
        wnode = graph.nodes[wref.node]
        # Control readers do not see the values, so they do not make the weights shared.
        readers = graph.consumers(wref.node, control=False)
        shared = (wref.port != 0 or wref.node in protected
                  or any(r[0] != c.linear for r in readers) or len(readers) != 1)
        steps_desc = ", ".join(f"{graph.nodes[s.node].op} {s.node}" for s in c.steps)
        if shared and shared_weights == "refuse":
            others = sorted({r[0] for r in readers} - {c.linear})
            refusals.append(Refusal(
                c.linear, f"its weights {c.weights} are also read by "
                          f"{', '.join(others) or 'a named input/output'}; shared_weights=refuse "
                          "(with shared_weights=copy the op would get its own scaled copy)",
                [c.linear, wref.node] + others))
            continue
        last = c.steps[-1].node
        scale_w = _weight_scale_shape(lin, scale, w)
        dtype = w.dtype
        editor = ctx.editor
        bias_name = editor.fresh_name(f"{last}/bias")
        desc = (f"{lin.op} {c.linear} absorbs {steps_desc}: weights scaled per output channel "
                f"(C={scale.size}), {last} becomes BiasAdd with bias {bias_name}")
        m = Match(c.linear, desc, nodes=[c.linear] + [s.node for s in c.steps])
        m.applied = select is None or c.linear in select
        report.matches.append(m)
        if not m.applied:
            continue
        # Controls that gated the removed chain or its constants stay on the new BiasAdd.
        gates = cn.gates(cn.region([op for s in c.steps for op in s.operands]))
        for s in c.steps:
            gates += [t[1:] for t in graph.nodes[s.node].input if t.startswith("^")]
        weight_gates = cn.gates(cn.region([c.weights]))
        if shared:
            wname = editor.fresh_name(f"{c.linear}/folded_weights")
            wc = make_const(wname, (w * scale_w).astype(dtype))
            wc.device = wnode.device
            wc.input.extend("^" + g for g in weight_gates)
            editor.add_node(wc)
            live = editor.node(c.linear)
            live.input[1] = wname
            editor.mark_changed(c.linear)
            m.added.append(wname)
            m.changed.append(c.linear)
            m.description += f"; the weights are shared, so {wname} is a scaled copy"
        elif wnode.op == "Const" and editor.defer_scale(wref.node, scale_w, weight_gates):
            # the same node, its new weights computed when written (model/deferred.py): the
            # old ones are not held twice
            m.changed.append(wref.node)
        elif (wnode.op == "Identity" and (root := _identity_root(graph, wnode)) is not None
              and editor.defer_scale_moved(wref.node, root, scale_w, weight_gates)):
            # read through an identity (``w/read``): the Const itself takes its place, marked
            m.changed.append(wref.node)
        else:
            wc = make_const(wref.node, (w * scale_w).astype(dtype))
            wc.device = wnode.device
            wc.input.extend("^" + g for g in weight_gates)
            editor.replace_node(wref.node, wc)
            m.changed.append(wref.node)
        bias = make_const(bias_name, offset.astype(dtype))
        bias.device = lin.device
        editor.add_node(bias)
        m.added.append(bias_name)
        lastnode = graph.nodes[last]
        ba = NodeDef(name=last, op="BiasAdd", device=lastnode.device)
        ba.input.extend([c.linear, bias_name])
        seen = set()
        for g in gates:
            if g not in seen and g != c.linear and g not in {s.node for s in c.steps}:
                seen.add(g)
                ba.input.append("^" + g)
        ba.attr["T"].CopyFrom(lin.attr["T"])
        fmt = lin.attr["data_format"].s if lin.op != "MatMul" else b"NHWC"
        ba.attr["data_format"].s = fmt or b"NHWC"
        editor.replace_node(last, ba)
        m.changed.append(last)
        middle = [s.node for s in c.steps[:-1]]
        for mid in middle:
            if graph.consumers(mid, control=True):
                editor.rewire(mid, last)   # readers of ^mid wait on the new BiasAdd instead
        editor.remove(middle)
        m.removed = list(middle)
        # Constants only the folded chain and the old weights used are cleaned up below.
        own = cn.region([op for s in c.steps for op in s.operands]) | cn.region([c.weights])
        if not shared:
            own.discard(wref.node)
        regions[c.linear] = own
        candidates_dead |= own

    dead = set(ctx.editor.remove_unread(candidates_dead, protected)) if candidates_dead else set()
    for m in report.matches:
        if m.applied:
            m.removed = sorted_names(graph, set(m.removed) | (dead & regions.get(m.key, set())))
    report.refused = refusals
    in_functions = sum(1 for f in graph.graph_def.library.function for n in f.node_def
                       if n.op in BN_OPS)
    if in_functions:
        report.notes.append(f"{in_functions} batch-norm op(s) inside function bodies are not "
                            "touched: run inline_functions first")


class _Refuse(Exception):
    pass


def _bn_affine(cn, node: NodeDef):
    """(k, b, None) with ``bn(x) = x*k + b`` per channel, or (None, None, problem)."""
    if node.attr["is_training"].b:
        return None, None, "it normalizes with batch statistics (is_training=True)"
    data = [t for t in node.input if not t.startswith("^")]
    if len(data) < 5:
        return None, None, "it has fewer than 5 inputs"
    values = [cn.value(t) for t in data[1:5]]
    if any(v is None for v in values):
        return None, None, "its scale, offset, mean or variance is not constant"
    scale, offset, mean, var = (np.asarray(v, np.float64) for v in values)
    c = scale.size
    if not all(v.ndim == 1 and v.size == c for v in (scale, offset, mean, var)):
        return None, None, "its parameters are not vectors of one size"
    eps = node.attr["epsilon"].f
    if np.any(var + eps <= 0):
        return None, None, "variance + epsilon is not positive"
    k = scale / np.sqrt(var + eps)
    return k, offset - mean * k, None


def _fold_into_concat(ctx: PassContext, cn, node: NodeDef) -> str | None:
    """Fold a batch norm after ``ConcatV2(conv_1, …, conv_n)`` on the channel axis into each
    conv (its slice of the per-channel scale into the weights, of the offset into a bias).
    Returns None when done, else why not."""
    graph = ctx.graph
    data = [t for t in node.input if not t.startswith("^")]
    if not data:
        return "no input"
    src = parse_input(data[0])
    concat = graph.nodes.get(src.node)
    if concat is None or concat.op != "ConcatV2" or src.port != 0:
        return "its input is not a ConcatV2"
    if concat.name in ctx.protected or len(graph.consumers(concat.name, control=False)) != 1:
        return f"the concat {concat.name} has other readers"
    if any(ref.port != 0 and not ref.control for _, _, ref in graph.consumers(node.name)):
        return "its batch mean/variance outputs are read"
    k, b, problem = _bn_affine(cn, node)
    if problem:
        return problem
    parts = [t for t in concat.input if not t.startswith("^")]
    axis = cn.value(parts[-1])
    nchw = node.attr["data_format"].s == b"NCHW"
    if axis is None or int(np.asarray(axis)) not in ((1,) if nchw else (3, -1)):
        return f"the concat {concat.name} is not along the channel axis"
    slices = []   # (conv, bias_add or None, weights tensor, bias tensor or None, channels)
    for t in parts[:-1]:
        ref = parse_input(t)
        p = graph.nodes.get(ref.node)
        if p is None or ref.port != 0 or len(graph.consumers(p.name, control=False)) != 1 \
                or p.name in ctx.protected:
            return f"the concat input {t} is not read by the concat alone"
        bias_add, bias = None, None
        if p.op == "BiasAdd":
            conv_ref = parse_input(p.input[0])
            conv = graph.nodes.get(conv_ref.node)
            bias = p.input[1]
            if conv is None or len(graph.consumers(conv.name, control=False)) != 1 \
                    or cn.value(bias) is None:
                return f"{p.name} is not a constant bias on a conv read by it alone"
            bias_add = p
        else:
            conv = p
        if conv.op not in ("Conv2D", "DepthwiseConv2dNative") or conv.name in ctx.protected:
            return f"the concat input {p.name} is a {p.op}, not a convolution"
        if (conv.attr["data_format"].s == b"NCHW") != nchw:
            return f"{conv.name} has another data format"
        w = cn.value(conv.input[1])
        if w is None or np.ndim(w) != 4:
            return f"the weights of {conv.name} are not constant"
        ch = w.shape[3] if conv.op == "Conv2D" else w.shape[2] * w.shape[3]
        slices.append((conv, bias_add, conv.input[1], bias, ch))
    if sum(sl[4] for sl in slices) != k.size:
        return (f"the concat's slices have {sum(sl[4] for sl in slices)} channels, the batch "
                f"norm {k.size}")
    desc = (f"{node.op} {node.name} after ConcatV2 {concat.name}: each of its "
            f"{len(slices)} slices folded into its convolution ("
            + ", ".join(sl[0].name for sl in slices) + ")")
    if ctx.select is not None and node.name not in ctx.select:
        ctx.report.matches.append(Match(node.name, desc, nodes=[node.name], applied=False))
        return None
    ed = ctx.editor
    match = Match(node.name, desc, nodes=[node.name, concat.name] + [sl[0].name for sl in slices])
    start = 0
    old = []
    for i, (conv, bias_add, wt, bt, ch) in enumerate(slices):
        ks, bs = k[start:start + ch], b[start:start + ch]
        start += ch
        w = np.asarray(cn.value(wt))
        wk = ks.reshape(w.shape[2], w.shape[3]) if conv.op == "DepthwiseConv2dNative" else ks
        wname = ed.fresh_name(f"{conv.name}/folded_weights")
        const = make_const(wname, (w * wk).astype(w.dtype))
        const.device = conv.device
        ed.add_node(const)
        live = ed.node(conv.name)
        live.input[1] = wname
        ed.mark_changed(conv.name)
        old.append(wt)
        match.added.append(wname)
        match.changed.append(conv.name)
        if bias_add is not None:
            bias = np.asarray(cn.value(bt), np.float64) * ks + bs
            bname = ed.fresh_name(f"{bias_add.name}/folded_bias")
            ed.add_node(make_const(bname, bias.astype(w.dtype)))
            ed.node(bias_add.name).input[1] = bname
            ed.mark_changed(bias_add.name)
            old.append(bt)
            match.added.append(bname)
        else:
            bname = ed.fresh_name(f"{conv.name}/bias")
            ed.add_node(make_const(bname, bs.astype(w.dtype)))
            ba = NodeDef(name=ed.fresh_name(f"{conv.name}/BiasAdd"), op="BiasAdd",
                         device=conv.device)
            ba.input.extend([conv.name, bname])
            ba.attr["T"].CopyFrom(conv.attr["T"])
            ba.attr["data_format"].s = b"NCHW" if nchw else b"NHWC"
            ed.add_node(ba)
            cc = ed.node(concat.name)
            cc.input[i] = ba.name
            ed.mark_changed(concat.name)
            match.added += [bname, ba.name]
    ident = NodeDef(name=node.name, op="Identity", device=node.device)
    ident.input.append(concat.name)
    ident.input.extend(t for t in node.input if t.startswith("^"))
    ident.attr["T"].CopyFrom(node.attr["T"])
    ed.replace_node(node.name, ident)
    match.changed.append(node.name)
    ctx.report.matches.append(match)
    ed.remove_unread(cn.region(data[1:5] + old), ctx.protected)
    return None


def _fold_forward(ctx: PassContext, cn, node: NodeDef, why: str) -> str | None:
    """``op(x*k + b, W)`` = ``op(x, W*k) + Σ W*b`` over the input channels, for the one
    Conv2D (VALID padding or a 1x1 kernel, so no zero padding meets the offset) or MatMul the
    batch norm alone feeds. Returns None when done, else why not."""
    graph = ctx.graph
    if node.name in ctx.protected or node.attr["data_format"].s == b"NCHW":
        return "a named output, or NCHW"
    readers = graph.consumers(node.name)
    if len(readers) != 1 or readers[0][2].port != 0 or readers[0][2].control:
        return "it has more than one reader"
    nxt = graph.nodes[readers[0][0]]
    if readers[0][1] != 0:
        return "it is not the next op's data input"
    # A named next op keeps its name and value: it becomes the BiasAdd after the moved op.
    if nxt.op == "Conv2D":
        if nxt.attr["data_format"].s == b"NCHW":
            return "the next conv is NCHW"
    elif nxt.op == "MatMul":
        if nxt.attr["transpose_a"].b:
            return "the next MatMul transposes its input"
    else:
        return f"the next op {nxt.name} is a {nxt.op}, not a Conv2D or MatMul"
    w = cn.value(nxt.input[1])
    if w is None:
        return "the next op's weights are not constant"
    w = np.asarray(w)
    wref = parse_input(nxt.input[1])
    if len(graph.consumers(wref.node, control=False)) != 1:
        return "the next op's weights are shared"
    if nxt.op == "Conv2D" and nxt.attr["padding"].s != b"VALID" and w.shape[:2] != (1, 1):
        return f"the next conv {nxt.name} pads with zeros ({nxt.attr['padding'].s.decode()})"
    k, b, problem = _bn_affine(cn, node)
    if problem:
        return problem
    if nxt.op == "Conv2D":
        if w.ndim != 4 or w.shape[2] != k.size:
            return "the next conv's input channels do not match"
        new_w = w * k[None, None, :, None]
        bias = np.einsum("hwio,i->o", w.astype(np.float64), b)
    else:
        tb = nxt.attr["transpose_b"].b
        if w.ndim != 2 or (w.shape[1] if tb else w.shape[0]) != k.size:
            return "the next MatMul's input size does not match"
        new_w = w * (k[None, :] if tb else k[:, None])
        bias = (w.astype(np.float64) @ b) if tb else (b @ w.astype(np.float64))
    desc = (f"{node.op} {node.name} ({why}) folded forward into {nxt.op} {nxt.name}: its "
            "weights scaled per input channel, the offset became a bias")
    if ctx.select is not None and node.name not in ctx.select:
        ctx.report.matches.append(Match(node.name, desc, nodes=[node.name, nxt.name],
                                        applied=False))
        return None
    ed = ctx.editor
    data = [t for t in node.input if not t.startswith("^")]
    wname = ed.fresh_name(f"{nxt.name}/folded_weights")
    ed.add_node(make_const(wname, new_w.astype(w.dtype)))
    bname = ed.fresh_name(f"{nxt.name}/folded_bias")
    ed.add_node(make_const(bname, bias.astype(w.dtype)))
    op_name = ed.fresh_name(f"{nxt.name}/{nxt.op}")
    moved = NodeDef()
    moved.CopyFrom(nxt)
    moved.name = op_name
    moved.input[0] = data[0]
    moved.input[1] = wname
    ed.add_node(moved)
    ba = NodeDef(name=nxt.name, op="BiasAdd", device=nxt.device)
    ba.input.extend([op_name, bname])
    ba.attr["T"].CopyFrom(nxt.attr["T"])
    ba.attr["data_format"].s = b"NHWC"
    ed.replace_node(nxt.name, ba)
    ctx.report.matches.append(Match(node.name, desc, nodes=[node.name, nxt.name],
                                    added=[wname, bname, op_name], changed=[nxt.name]))
    ed.remove_unread([node.name] + list(cn.region(data[1:5] + [nxt.input[1]])), ctx.protected)
    return None


def _to_mul_add(ctx: PassContext, cn, node: NodeDef, why: str) -> str | None:
    """Replace an inference batch norm with nothing to fold into by ``x*k + b`` (one Mul and
    one Add, the Add keeping its name); returns the problem when it cannot."""
    graph = ctx.graph
    if node.name in ctx.protected:
        return "it is a named graph input or output"
    if any(ref.port != 0 and not ref.control for _, _, ref in graph.consumers(node.name)):
        return "its batch mean/variance outputs are read"
    k, b, problem = _bn_affine(cn, node)
    if problem:
        return problem
    data = [t for t in node.input if not t.startswith("^")]
    c = k.size
    desc = (f"{node.op} {node.name} stays a batch norm ({why}): made one Mul + Add with its "
            f"folded per-channel scale and offset (C={c})")
    if ctx.select is not None and node.name not in ctx.select:
        ctx.report.matches.append(Match(node.name, desc, nodes=[node.name], applied=False))
        return None
    nchw = node.attr["data_format"].s == b"NCHW"
    shape = [c, 1, 1] if nchw else [c]
    dtype = np.float32 if node.attr["T"].type == 1 else np.float16
    ed = ctx.editor
    kn, bn_, mul = (ed.fresh_name(f"{node.name}/{s}") for s in ("scale", "offset", "mul"))
    for name, v in ((kn, k), (bn_, b)):
        const = make_const(name, v.reshape(shape).astype(dtype))
        const.device = node.device
        ed.add_node(const)
    m = NodeDef(name=mul, op="Mul", device=node.device)
    m.input.extend([data[0], kn])
    m.attr["T"].CopyFrom(node.attr["T"])
    ed.add_node(m)
    add = NodeDef(name=node.name, op="Add", device=node.device)
    add.input.extend([mul, bn_] + [t for t in node.input if t.startswith("^")])
    add.attr["T"].CopyFrom(node.attr["T"])
    ed.replace_node(node.name, add)
    match = Match(node.name, desc, nodes=[node.name], added=[kn, bn_, mul],
                  changed=[node.name])
    ctx.report.matches.append(match)
    ed.remove_unread(cn.region(data[1:5]), ctx.protected)
    return None


def _identity_root(graph: Graph, node: NodeDef) -> str | None:
    """The Const an Identity reads when it is that Const's only reader, else None."""
    data = [t for t in node.input if not t.startswith("^")]
    if len(data) != 1:
        return None
    ref = parse_input(data[0])
    root = graph.nodes.get(ref.node)
    if root is None or root.op != "Const" or ref.port != 0:
        return None
    if {r[0] for r in graph.consumers(ref.node)} != {node.name}:
        return None
    return ref.node


def _channel_info(node: NodeDef) -> tuple[int, int, str]:
    """(channel axis, rank, data format) of a linear op's output."""
    if node.op == "MatMul":
        return 1, 2, "NHWC"
    fmt = node.attr["data_format"].s.decode() if "data_format" in node.attr else "NHWC"
    return (1 if fmt.startswith("NC") else 3), 4, fmt or "NHWC"


def _walk(graph: Graph, cn: Constants, lin: NodeDef, protected: set[str]):
    """Follow the per-channel affine steps after a linear op. Returns (candidate, problem):
    (None, "") when there is nothing batch-norm-like after the op."""
    mx = Matcher(graph, cn)
    data = [parse_input(t) for t in lin.input if not t.startswith("^")]
    if len(data) < 2 or lin.attr["T"].type not in FLOAT_DTYPES:
        return None, ""
    axis, rank, fmt = _channel_info(lin)
    weights = str(data[1])
    steps: list[Step] = []
    cur = lin.name
    blocked, blocked_node = "", ""
    while True:
        readers = graph.consumers(cur, control=False)
        nxt_names = sorted({r[0] for r in readers}, key=graph.order.get)
        if not nxt_names:
            break
        bn_like = [n for n in nxt_names if _is_bn_like(mx, graph.nodes[n], cur, fmt)]
        if len(nxt_names) > 1 or len(readers) > 1 or any(r[2].port != 0 for r in readers):
            if bn_like:
                others = [n for n in nxt_names if n != bn_like[0]] or [bn_like[0]]
                blocked_node = bn_like[0]
                blocked = (f"the output of {cur} is also read by {', '.join(others)}: folding "
                           f"{bn_like[0]} into {lin.name} would change what "
                           f"{'they see' if len(others) > 1 else 'it sees'}")
            break
        nxt = graph.nodes[nxt_names[0]]
        if not bn_like:
            break
        if cur != lin.name and cur in protected:
            break
        step, why = _step(mx, nxt, cur, fmt)
        if step is None:
            blocked, blocked_node = why, nxt.name
            break
        steps.append(step)
        cur = nxt.name
        if cur in protected:
            break
    if not steps and not blocked:
        return None, ""
    cand = Candidate(lin.name, weights, axis, rank, steps, blocked, blocked_node)
    if not any(s.kind in ("mul", "div", "fused", "global") for s in steps) and not blocked:
        return cand, ""
    if not cn.is_const(weights):
        return cand, f"the weights {weights} of {lin.name} are not constant"
    if cn.is_const(str(data[0])):
        return cand, f"{lin.name} is constant as a whole: fold_constants computes it"
    if lin.name in protected:
        return cand, f"{lin.name} is a named output: scaling its weights would change it"
    return cand, ""


def _format(node: NodeDef) -> str:
    return (node.attr["data_format"].s.decode() if "data_format" in node.attr else "") or "NHWC"


def _bn_checks(node: NodeDef, m) -> str | None:
    """Why a batch norm after the op cannot be folded (None: it can)."""
    fmt = m["fmt"]
    if node.op in FUSED_BN_OPS:
        if node.attr["is_training"].b:
            return (f"{node.name} has is_training=True: it normalises with each batch's own "
                    "statistics (set the training flags to inference first)")
        if _format(node).startswith("NC") != fmt.startswith("NC"):
            return f"{node.name} uses data_format {_format(node)} but the op before uses {fmt}"
        used_ports = {r[2].port for r in m.graph.consumers(node.name, control=False)}
        if used_ports - {0}:
            return (f"outputs {sorted(used_ports - {0})} of {node.name} (batch statistics) "
                    "are read")
    elif fmt.startswith("NC"):
        return f"{node.name} normalises the last axis but the data is {fmt}"
    data = [t for t in node.input if not t.startswith("^")]
    missing = [t for t in data[1:5] if not m.constants.is_const(t)]
    if missing:
        return f"{node.name} reads non-constant parameter(s) {', '.join(missing)}"
    return None


def _bias_checks(node: NodeDef, m) -> str | None:
    if _format(node).startswith("NC") != m["fmt"].startswith("NC"):
        return f"{node.name}: a bias in data_format {_format(node)} after {m['fmt']} data"
    return None


def _not_affine(node: NodeDef, m) -> str:
    return f"{node.name} divides a constant by the tensor (not affine)"


def _bias_first(node: NodeDef, m) -> str:
    return f"{node.name}: a bias in data_format {_format(node)} after {m['fmt']} data"


#: A step of the per-channel affine chain after the op: (kind, pattern of the reader of
#: ``cur``). ``cur`` (the tensor so far) and ``fmt`` (the op's data format) are bound by the
#: caller; ``k`` is the constant operand. A near miss is why the chain stops there.
STEP_RULES = [
    ("bn", Op(BN_OPS, Any("cur"), more_inputs=True, where=_bn_checks)),
    ("bias", Op(("BiasAdd", "BiasAddV1"), Any("cur"), Foldable("k"), where=_bias_checks)),
    ("bias", Op(("BiasAdd", "BiasAddV1"), Foldable("k"), Any("cur"), where=_bias_first)),
    ("mul", Op("Mul", Any("cur"), Foldable("k"), commutative=True)),
    ("add", Op(("Add", "AddV2"), Any("cur"), Foldable("k"), commutative=True)),
    ("sub", Op("Sub", Any("cur"), Foldable("k"))),
    ("rsub", Op("Sub", Foldable("k"), Any("cur"))),
    ("div", Op("RealDiv", Any("cur"), Foldable("k"))),
    ("div", Op("RealDiv", Foldable("k"), Any("cur"), where=_not_affine)),
]


def _classify(mx: Matcher, node: NodeDef, cur: str, fmt: str):
    """(kind, match result) of ``node`` as a step after ``cur``: a near miss says why it
    cannot be folded; a plain miss means it is not a step of an affine chain at all."""
    return mx.first(STEP_RULES, node, cur=cur, fmt=fmt)


def _is_bn_like(mx: Matcher, node: NodeDef, cur: str, fmt: str) -> bool:
    """Could this reader of ``cur`` be a step of a folded affine chain?"""
    kind, r = _classify(mx, node, cur, fmt)
    return kind is not None or r.near


def _step(mx: Matcher, node: NodeDef, cur: str, fmt: str):
    kind, r = _classify(mx, node, cur, fmt)
    if kind is None:
        return None, r.reason if r.near else f"{node.name} ({node.op}) is not an affine step"
    if kind == "bn":
        data = [t for t in node.input if not t.startswith("^")]
        return Step(node.name, "fused" if node.op in FUSED_BN_OPS else "global",
                    list(data[1:5])), ""
    return Step(node.name, kind, [r["k"]]), ""


def _per_channel(value, c: int, axis: int, rank: int, what: str) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64)
    if v.ndim > rank:
        raise _Refuse(f"{what} has shape {list(v.shape)}, more axes than the data ({rank})")
    shape = (1,) * (rank - v.ndim) + v.shape
    for i, d in enumerate(shape):
        if i != axis and d != 1:
            raise _Refuse(f"{what} has shape {list(v.shape)}: not per-output-channel "
                          f"(it varies along axis {i}, the channel axis is {axis})")
    if shape[axis] not in (1, c):
        raise _Refuse(f"{what} has {shape[axis]} channels, the op has {c}")
    return np.broadcast_to(v.reshape(-1), (c,)).copy()


def _value(values, t):
    v = values.get(t)
    if v is None or isinstance(v, BaseException):
        raise _Refuse(f"cannot compute {t}: {error_text(v) if v is not None else 'unknown'}")
    return v


def _compose(graph: Graph, lin: NodeDef, c: Candidate, values):
    """(weights, per-channel scale, per-channel offset) of the whole chain."""
    w = _value(values, c.weights)
    if w.dtype.type not in (np.float16, np.float32, np.float64):
        raise _Refuse(f"weights {c.weights} have dtype {w.dtype}")
    if lin.op == "MatMul":
        if w.ndim != 2:
            raise _Refuse(f"MatMul weights {c.weights} have rank {w.ndim}")
        ch = w.shape[0] if lin.attr["transpose_b"].b else w.shape[1]
    else:
        if w.ndim != 4:
            raise _Refuse(f"weights {c.weights} have rank {w.ndim}, expected 4")
        ch = w.shape[3] if lin.op == "Conv2D" else w.shape[2] * w.shape[3]
    scale = np.ones(ch)
    offset = np.zeros(ch)
    for s in c.steps:
        node = graph.nodes[s.node]
        vals = [_value(values, t) for t in s.operands]
        if s.kind in ("fused", "global"):
            names = ["scale", "offset", "mean", "variance"] if s.kind == "fused" \
                else ["mean", "variance", "beta", "gamma"]
            vecs = {}
            for name, v in zip(names, vals):
                v = np.asarray(v, dtype=np.float64)
                if v.ndim != 1 or v.size != ch:
                    raise _Refuse(f"{s.node}: {name} has shape {list(v.shape)}, expected [{ch}]")
                vecs[name] = v
            eps = node.attr["epsilon" if s.kind == "fused" else "variance_epsilon"].f
            if s.kind == "global":
                gamma = vecs["gamma"] if node.attr["scale_after_normalization"].b else 1.0
                vecs["scale"], vecs["offset"] = gamma, vecs["beta"]
            if np.any(vecs["variance"] + eps <= 0):
                raise _Refuse(f"{s.node}: variance + epsilon is not positive")
            k = vecs["scale"] / np.sqrt(vecs["variance"] + eps)
            scale = scale * k
            offset = (offset - vecs["mean"]) * k + vecs["offset"]
            continue
        if s.kind == "bias":   # BiasAdd adds a [C] vector on its data_format's channel axis
            b = np.asarray(vals[0], dtype=np.float64)
            if b.shape != (ch,):
                raise _Refuse(f"{s.node}: bias has shape {list(b.shape)}, expected [{ch}]")
            offset = offset + b
            continue
        v = _per_channel(vals[0], ch, c.axis, c.rank, f"the operand {s.operands[0]} of {s.node}")
        if s.kind == "mul":
            scale, offset = scale * v, offset * v
        elif s.kind == "div":
            if np.any(v == 0):
                raise _Refuse(f"{s.node} divides by zero")
            scale, offset = scale / v, offset / v
        elif s.kind == "add":
            offset = offset + v
        elif s.kind == "sub":
            offset = offset - v
        elif s.kind == "rsub":
            scale, offset = -scale, v - offset
    if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(offset))):
        raise _Refuse("the folded scale or bias is not finite")
    return w, scale, offset


def _weight_scale_shape(lin: NodeDef, scale: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The scale reshaped to multiply the weights per output channel."""
    if lin.op == "MatMul":
        return scale.reshape(-1, 1) if lin.attr["transpose_b"].b else scale.reshape(1, -1)
    if lin.op == "DepthwiseConv2dNative":
        return scale.reshape(1, 1, w.shape[2], w.shape[3])
    return scale.reshape(1, 1, 1, -1)


def _bn_refusal(graph: Graph, cn: Constants, node: NodeDef) -> str:
    if node.op in FUSED_BN_OPS and node.attr["is_training"].b:
        return ("is_training=True: it normalises with each batch's own statistics (set the "
                "training flags to inference and remove the training branch first)")
    src = parse_input(node.input[0]).node if node.input else "?"
    prod = graph.nodes.get(src)
    what = f"{prod.op} {src}" if prod is not None else src
    hint = ""
    if prod is not None and prod.op in ("Switch", "RefSwitch"):
        hint = "; run training_flags and remove_switch_merge first"
    return (f"its input comes from {what}, not from Conv2D/DepthwiseConv2dNative/MatMul "
            f"(optionally through a constant BiasAdd/Add){hint}")


PASS = Pass(
    id="fold_batch_norm",
    title="Fold batch norm into the op before it",
    explanation=EXPLANATION,
    fn=fold_batch_norm,
    params=[Param("shared_weights", str, "copy",
                  "weights that another node also reads: give the op a scaled copy, or refuse",
                  choices=["copy", "refuse"]),
            Param("unfoldable", str, "mul_add",
                  "a batch norm with no conv/matmul before it to fold into (after a ReLU or a "
                  "pool): make it one Mul + Add (as fast or faster in TF, measured), or keep it",
                  choices=["mul_add", "keep"])],
)

__all__ = ["PASS", "fold_batch_norm"]
