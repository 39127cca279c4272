"""Merge duplicate nodes: nodes that compute the same thing from the same inputs become one."""
from __future__ import annotations

import hashlib
from collections import defaultdict

from tensorflow.core.framework import types_pb2

from ..model.deferred import MARK
from ..model.editor import _dedupe_controls
from ..model.graph import (
    INPUT_OPS,
    GraphError,
    NodeDef,
    format_input,
    parse_input,
)
from ..model.ops import CONTROL_FLOW_OPS, FUNCTION_CALL_OPS, is_random, op_def
from .base import Match, Param, Pass, Refusal, sorted_names
from .context import PassContext, pass_body

EXPLANATION = """\
**What it matches.** Two nodes with the same op, the same data inputs in the same order, the
same set of control inputs, the same attributes and the same device. Two `Const`s match when
their tensors hold the same bytes (same dtype and shape), however they are encoded. Merging
runs to a fixed point: once two nodes are merged, their readers may become duplicates too
(two identical `Reshape`s of two identical `Const`s merge in one run).

**What it does.** The first node in node order survives; every reader of a duplicate reads
the survivor's output of the same port instead, and the duplicate is removed.

**Why it is safe.** A deterministic op given the same inputs and attributes computes the same
tensor, so reading one copy instead of the other changes nothing.

**Never merged:** stateful and random ops (two `RandomUniform`s draw different numbers; two
variable reads may see different values), graph inputs (two `Placeholder`s are two different
inputs even when they look alike), v1 control flow and function calls, ops TensorFlow does not
register, and the graph's named inputs and outputs. A duplicate whose merge depends on another
merge that was not selected is refused with that reason.

**Kept apart on purpose** (parameter `keep_conv_pads`, on by default): two equal `Pad`,
`MirrorPad` or `SpaceToBatchND` nodes that feed convolutions (NASNet's reduction cells have
them). OpenCV's TensorFlow importer folds such a node into the one convolution that reads it
and fails ("`next_layers.size() == 1` in `parseConvolution`") once a merge makes it feed two.
"""


def _mergeable(node: NodeDef, funcs: frozenset, protected: set[str]) -> bool:
    op = node.op
    if op in INPUT_OPS or op in CONTROL_FLOW_OPS or op in FUNCTION_CALL_OPS or op in funcs:
        return False
    if node.name in protected or is_random(op):
        return False
    d = op_def(op)
    return d is not None and not d.is_stateful


def _const_bytes(node: NodeDef) -> bytes:
    """The Const's elements as raw bytes, however the tensor is encoded (raw
    ``tensor_content`` is exactly what decoding it would give, so it is used as it is)."""
    t = node.attr["value"].tensor
    if t.tensor_content and t.dtype != types_pb2.DT_STRING and MARK not in node.attr:
        return t.tensor_content
    from ..model.graph import const_value
    v = const_value(node)
    return v.tobytes() if v.dtype != object else repr(v.tolist()).encode()


_SAMPLE = 4096


def _fingerprint(data: bytes) -> bytes:
    """A cheap digest of a sample of the bytes: equal tensors have equal fingerprints; most
    different ones already differ here, so big weights are hashed in full only on a clash."""
    if len(data) <= 4 * _SAMPLE:
        return hashlib.sha256(data).digest()
    step = len(data) // _SAMPLE
    return hashlib.sha256(len(data).to_bytes(8, "little") + data[:_SAMPLE] + data[-_SAMPLE:]
                          + data[::step]).digest()


def _value_fingerprint(node: NodeDef) -> bytes:
    """``_fingerprint`` of the Const's value bytes."""
    if MARK in node.attr:
        return _deferred_fingerprint(node)
    return _fingerprint(_const_bytes(node))


def _deferred_fingerprint(node: NodeDef) -> bytes:
    """``_fingerprint`` of a weight computed when written (model/deferred.py), computing only
    the elements the fingerprint samples (the same bytes: each element is ``old * scale`` in
    float64, stored in the old dtype)."""
    import numpy as np

    from ..model.deferred import stored
    from ..model.tensors import to_ndarray
    old = stored(node.attr["value"].tensor)
    scale = to_ndarray(node.attr[MARK].tensor)
    n = old.nbytes
    if n <= 4 * _SAMPLE or scale.ndim != old.ndim:
        return _fingerprint(_const_bytes(node))
    isz = old.itemsize
    step = n // _SAMPLE
    offsets = np.arange(0, n, step)
    h = _SAMPLE // isz
    idx = np.concatenate([np.arange(h), np.arange(n // isz - h, n // isz), offsets // isz])
    multi = np.unravel_index(idx, old.shape)
    at = tuple(m if d != 1 else 0 for m, d in zip(multi, scale.shape))
    vals = (old.reshape(-1)[idx] * scale[at]).astype(old.dtype)
    mid = vals[2 * h:].view(np.uint8).reshape(-1, isz)[np.arange(offsets.size), offsets % isz]
    return hashlib.sha256(n.to_bytes(8, "little") + vals[:h].tobytes()
                          + vals[h:2 * h].tobytes() + mid.tobytes()).digest()


def _const_digests(nodes: list[NodeDef]) -> dict[str, bytes]:
    """Value digests of Consts of one dtype and shape, for those that may equal another one
    (a Const whose value is unique gets none: it can never be merged)."""
    # One tensor's bytes at a time (reading a weight copies it): a first sweep fingerprints,
    # a second reads again only the Consts whose fingerprints clash.
    by_print: dict[bytes, list[NodeDef]] = defaultdict(list)
    for node in nodes:
        try:
            by_print[_value_fingerprint(node)].append(node)
        except Exception:  # noqa: BLE001 - an undecodable Const is never merged
            continue
    out: dict[str, bytes] = {}
    for members in by_print.values():
        if len(members) > 1:
            for node in members:
                data = _const_bytes(node)
                out[node.name] = data if len(data) <= 4 * _SAMPLE else \
                    hashlib.sha256(data).digest()
    return out


#: Ops OpenCV's TensorFlow importer folds into the one convolution that reads them.
CONV_PREFIX_OPS = frozenset({"Pad", "MirrorPad", "SpaceToBatchND"})
CONV_OPS = frozenset({"Conv2D", "DepthwiseConv2dNative", "Conv3D"})


@pass_body("merge_duplicates")
def merge_duplicates(ctx: PassContext, keep_conv_pads: bool = True) -> None:
    graph, report, select = ctx.graph, ctx.report, ctx.select
    try:
        order = graph.topological_order()
    except GraphError as e:
        ctx.refuse("graph", f"cannot sort the graph: {e.problem}", e.nodes)
        return
    funcs = frozenset(graph.function_names())
    protected = ctx.protected

    # Consts can only be equal with equal dtype and shape: decode only those that collide.
    const_groups: dict[bytes, list[str]] = defaultdict(list)
    for node in graph.graph_def.node:
        if node.op == "Const" and _mergeable(node, funcs, protected):
            t = node.attr["value"].tensor
            const_groups[t.dtype.to_bytes(4, "little") + t.tensor_shape.SerializeToString(
                deterministic=True) + node.device.encode()].append(node.name)
    digest: dict[str, bytes] = {}
    for members in const_groups.values():
        if len(members) > 1:
            digest.update(_const_digests([graph.nodes[n] for n in members]))

    # One sweep in topological order reaches the fixed point: a node's signature names the
    # duplicate *class* of each input, so readers of merged nodes become duplicates too.
    cls: dict[str, str] = {}
    members: dict[str, list[str]] = defaultdict(list)
    seen: dict[bytes, str] = {}
    for name in order:
        node = graph.nodes[name]
        cls[name] = name
        if not _mergeable(node, funcs, protected):
            continue
        if node.op == "Const" and name not in digest:
            continue
        data, ctrl = [], set()
        for t in node.input:
            r = parse_input(t)
            c = cls.get(r.node, r.node)
            if r.control:
                ctrl.add(c)
            else:
                data.append(format_input(c, r.port))
        h = hashlib.sha256()
        h.update(node.op.encode() + b"\0" + node.device.encode() + b"\0")
        h.update("\0".join(data).encode() + b"\1" + "\0".join(sorted(ctrl)).encode() + b"\1")
        for k in sorted(node.attr):
            if k == MARK:
                continue  # a weight computed when written: its value is in digest[name]
            if node.op == "Const" and k == "value":
                t = node.attr["value"].tensor
                h.update(b"value=" + t.dtype.to_bytes(4, "little")
                         + t.tensor_shape.SerializeToString(deterministic=True) + digest[name])
            else:
                h.update(k.encode() + b"=" + node.attr[k].SerializeToString(deterministic=True))
        sig = h.digest()
        if sig in seen and keep_conv_pads and node.op in CONV_PREFIX_OPS and any(
                graph.nodes[c].op in CONV_OPS for c in graph.consumer_names(name)):
            report.refused.append(Refusal(
                name, f"{node.op} {name} duplicates {seen[sig]} but is kept: it feeds a "
                "convolution, and OpenCV's importer folds such a node into its one "
                "convolution reader (it fails on one that feeds two); set keep_conv_pads="
                "false to merge it", [name, seen[sig]]))
        elif sig in seen:
            cls[name] = seen[sig]
        else:
            seen[sig] = name
        members[cls[name]].append(name)

    # The survivor of each class is its first node in node order.
    survivor: dict[str, str] = {}
    keep_of: dict[str, str] = {}
    for label, group in members.items():
        keep = min(group, key=graph.order.get)
        keep_of[label] = keep
        for n in group:
            if n != keep:
                survivor[n] = keep

    def canon(n: str) -> str:
        return keep_of.get(cls.get(n, n), n)

    def depends(dup: str, keep: str) -> set[str]:
        """The merges that make dup's inputs the same as keep's."""
        a = [parse_input(t) for t in graph.nodes[dup].input]
        b = [parse_input(t) for t in graph.nodes[keep].input]
        deps = set()
        for x, y in zip([r for r in a if not r.control], [r for r in b if not r.control]):
            if x.node != y.node:
                deps |= {n for n in (x.node, y.node) if canon(n) != n}
        ca = {r.node for r in a if r.control}
        cb = {r.node for r in b if r.control}
        deps |= {n for n in ca ^ cb if canon(n) != n}
        return deps

    # Decide which merges apply (a merge needs every merge it relied on).
    applied: set[str] = set()
    refusals = []
    topo_pos = {n: i for i, n in enumerate(order)}
    for dup in sorted(survivor, key=topo_pos.get):
        keep = survivor[dup]
        m = Match(dup, f"{dup} ({graph.nodes[dup].op}) duplicates {keep}", nodes=[keep, dup])
        wanted = select is None or dup in select
        missing = sorted(d for d in depends(dup, keep) if d not in applied)
        if wanted and missing:
            refusals.append(Refusal(dup, f"it duplicates {keep} only once {missing[0]} is merged, "
                                         "which was not selected", [dup, keep] + missing))
            m.applied = False
        else:
            m.applied = wanted
        report.matches.append(m)
        if m.applied:
            applied.add(dup)

    if applied:
        editor = ctx.editor
        target = {d: survivor[d] for d in applied}
        for node in list(editor.nodes(read_only=True)):
            if node.name in target:
                continue
            new_inputs, changed = [], False
            for t in node.input:
                r = parse_input(t)
                if r.node in target:
                    new_inputs.append(format_input(target[r.node], r.port, r.control))
                    changed = True
                else:
                    new_inputs.append(t)
            if changed:
                live = editor.node(node.name)
                del live.input[:]
                live.input.extend(_dedupe_controls(new_inputs, node.name))
                editor.mark_changed(node.name)
        editor.remove(sorted(applied))
        for m in report.matches:
            if m.applied:
                m.removed = [m.key]
        for m in report.matches:
            if m.applied:
                m.changed = sorted_names(graph, {c for c, _, _ in graph.consumers(m.key)}
                                         & editor.changed)
    report.refused.extend(refusals)


PASS = Pass(
    id="merge_duplicates",
    title="Merge duplicate nodes",
    explanation=EXPLANATION,
    fn=merge_duplicates,
    params=[Param("keep_conv_pads", bool, True,
                  "keep duplicate Pad/MirrorPad/SpaceToBatchND nodes that feed convolutions "
                  "apart (OpenCV folds each into its one convolution reader)")],
)

__all__ = ["PASS", "merge_duplicates"]
