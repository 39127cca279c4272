"""Values as a person reads them, computed without Qt: attributes and Const tensors.

- :func:`render_attr` turns an ``AttrValue`` into readable text: dtype names (``float32``),
  shapes (``[?, 224, 224, 3]``), lists (``[1, 2, 2, 1]``), strings without protobuf quoting
  (``SAME``), tensors as a summary (``float32 [3, 3, 3, 8], 216 values``).
- :func:`const_stats` decodes one Const and summarises it: dtype, shape, min/max/mean/std,
  NaN/Inf counts, the first values and histogram counts; :func:`const_array` decodes it with a
  one-line error; :func:`save_const_npy` writes it out.

The inspector, the diff and the manual edits all render through this module, so a value reads
the same everywhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .graph import GraphError, NodeDef, const_value, dtype_name, shape_list, shape_size

#: Longest rendered attribute text; longer lists are cut with "… (N items)".
MAX_LIST_ITEMS = 32
MAX_TEXT = 400


# --------------------------------------------------------------------------- attributes
def render_shape(shape_proto) -> str:
    """``[?, 224, 224, 3]``; ``[]`` for a scalar; ``<unknown rank>``."""
    dims = shape_list(shape_proto)
    if dims is None:
        return "<unknown rank>"
    return "[" + ", ".join("?" if d < 0 else str(d) for d in dims) + "]"


def _render_bytes(b: bytes) -> str:
    try:
        text = b.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(b)} bytes: {b[:16].hex()}{'…' if len(b) > 16 else ''}>"
    if len(text) > MAX_TEXT:
        return text[:MAX_TEXT] + f"… ({len(text)} characters)"
    return text


def _render_float(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return f"{x:.6g}"


def render_tensor(tensor_proto, max_values: int = 8) -> str:
    """``float32 [3, 3, 3, 8], 216 values`` (small tensors also show their values).

    Only a tensor with at most ``max_values`` elements is decoded.
    """
    dims = shape_list(tensor_proto.tensor_shape) or []
    n = shape_size(tensor_proto.tensor_shape)
    head = f"{dtype_name(tensor_proto.dtype)} {render_shape(tensor_proto.tensor_shape)}"
    if n <= max_values:
        try:
            from tensorflow.python.framework import tensor_util
            arr = tensor_util.MakeNdarray(tensor_proto)
            return f"{head} = {format_values(arr.reshape(-1), max_values, dims == [])}"
        except Exception:  # noqa: BLE001 - an undecodable tensor still gets its summary
            pass
    return f"{head}, {n:,} value{'s' if n != 1 else ''}"


def format_values(flat, limit: int = 16, scalar: bool = False) -> str:
    """``[0.1, -2, …]`` for a flat array (strings decoded, floats to 6 significant digits)."""
    items = [_format_scalar(v) for v in flat[:limit]]
    if scalar and len(items) == 1:
        return items[0]
    more = len(flat) - len(items)
    return "[" + ", ".join(items) + (f", … (+{more:,})" if more > 0 else "") + "]"


def _format_scalar(v) -> str:
    if isinstance(v, (bytes, np.bytes_)):
        return repr(_render_bytes(bytes(v)))
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)):
        return _render_float(float(v))
    if isinstance(v, (complex, np.complexfloating)):
        return f"{_render_float(v.real)}{'+' if v.imag >= 0 else '-'}{_render_float(abs(v.imag))}j"
    return str(v)


def _render_func(func) -> str:
    if not func.attr:
        return func.name
    inner = ", ".join(f"{k}={render_attr(v)}" for k, v in sorted(func.attr.items()))
    return f"{func.name}({inner})"


def _render_list(lst) -> str:
    for kind, render in (("s", lambda v: repr(_render_bytes(v))), ("i", str),
                         ("f", _render_float), ("b", lambda v: "true" if v else "false"),
                         ("type", dtype_name), ("shape", render_shape),
                         ("tensor", render_tensor), ("func", _render_func)):
        values = getattr(lst, kind)
        if len(values):
            items = [render(v) for v in values[:MAX_LIST_ITEMS]]
            more = len(values) - len(items)
            return "[" + ", ".join(items) + (f", … ({len(values)} items)" if more else "") + "]"
    return "[]"


def render_attr(attr_value) -> str:
    """One ``AttrValue`` as readable text (see the module docstring for examples)."""
    kind = attr_value.WhichOneof("value")
    if kind is None:
        return "(unset)"
    if kind == "s":
        return _render_bytes(attr_value.s)
    if kind == "i":
        return str(attr_value.i)
    if kind == "f":
        return _render_float(attr_value.f)
    if kind == "b":
        return "true" if attr_value.b else "false"
    if kind == "type":
        return dtype_name(attr_value.type)
    if kind == "shape":
        return render_shape(attr_value.shape)
    if kind == "tensor":
        return render_tensor(attr_value.tensor)
    if kind == "list":
        return _render_list(attr_value.list)
    if kind == "func":
        return _render_func(attr_value.func)
    if kind == "placeholder":
        return f"${attr_value.placeholder}"
    return str(getattr(attr_value, kind))  # pragma: no cover - future AttrValue kinds


def attr_kind(attr_value) -> str:
    """``type``, ``shape``, ``list(i)``, ``tensor``… (the kind as TF's op registry names it)."""
    kind = attr_value.WhichOneof("value") or "unset"
    if kind == "list":
        for k in ("s", "i", "f", "b", "type", "shape", "tensor", "func"):
            if len(getattr(attr_value.list, k)):
                return f"list({k})"
        return "list"
    return {"s": "string", "i": "int", "f": "float", "b": "bool"}.get(kind, kind)


# --------------------------------------------------------------------------- Const values
@dataclass
class ConstStats:
    """A Const's value summarised. Numeric statistics are over finite values only."""
    name: str
    dtype: str
    shape: list[int]
    size: int
    nbytes: int
    first_values: str
    #: Numeric (int/float/bool) tensors only; None otherwise or when no finite value exists.
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    nan_count: int = 0
    inf_count: int = 0
    zero_count: int = 0
    #: Histogram of finite values: ``counts[i]`` values in ``[edges[i], edges[i+1])``.
    hist_counts: list[int] = field(default_factory=list)
    hist_edges: list[float] = field(default_factory=list)

    @property
    def numeric(self) -> bool:
        return self.min is not None

    def shape_text(self) -> str:
        return "[" + ", ".join(str(d) for d in self.shape) + "]"


def const_array(node: NodeDef) -> np.ndarray:
    """A Const's value as a numpy array; GraphError (never a traceback) if it cannot be read."""
    if node.op != "Const":
        raise GraphError(f"{node.name} is a {node.op}, not a Const: it has no stored value")
    try:
        return const_value(node)
    except Exception as e:  # noqa: BLE001 - corrupt or exotic tensors: say so plainly
        msg = str(e).strip().splitlines()
        raise GraphError(f"cannot decode the value of {node.name}: "
                         f"{msg[0] if msg else type(e).__name__}") from None


def const_stats(node: NodeDef, first: int = 16, bins: int = 24) -> ConstStats:
    """Decode one Const and summarise it (see :class:`ConstStats`)."""
    arr = const_array(node)
    flat = arr.reshape(-1)
    stats = ConstStats(node.name, dtype_name(node.attr["value"].tensor.dtype)
                       if "value" in node.attr else str(arr.dtype),
                       list(arr.shape), int(arr.size), int(arr.nbytes),
                       format_values(flat, first, arr.ndim == 0))
    if arr.size == 0:
        return stats
    if arr.dtype.kind not in "biuf":
        try:  # bfloat16 and other numeric extension dtypes (numpy kind "V")
            flat = flat.astype(np.float32)
        except (TypeError, ValueError):
            return stats  # strings, complex, resources: values only
    if flat.dtype.kind == "b":
        values = flat.view(np.uint8)
    else:
        values = flat
    # No float64 copy of the whole tensor (a 100M-value Const would need 800 MB): reduce in
    # float64 accumulators, copy only the finite values and only when something is not finite.
    if values.dtype.kind == "f":
        nan = np.isnan(values)
        stats.nan_count = int(nan.sum())
        finite_mask = np.isfinite(values)
        stats.inf_count = int(values.size - finite_mask.sum()) - stats.nan_count
        finite = values if stats.nan_count + stats.inf_count == 0 else values[finite_mask]
        del nan, finite_mask
    else:
        finite = values
    stats.zero_count = int(np.count_nonzero(values == 0))
    if finite.size == 0:
        return stats
    stats.min, stats.max = float(finite.min()), float(finite.max())
    stats.mean = float(finite.mean(dtype=np.float64))
    stats.std = float(finite.std(dtype=np.float64))
    if arr.dtype.kind == "b":
        counts = [int((~flat).sum()), int(flat.sum())]
        stats.hist_counts, stats.hist_edges = counts, [0.0, 0.5, 1.0]
    else:
        lo, hi = stats.min, stats.max
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        if arr.dtype.kind in "iu" and hi - lo + 1 <= bins:
            # Small integer ranges: one bin per integer, so the bars read as exact counts.
            edges = np.arange(math.floor(lo), math.floor(hi) + 2, dtype=np.float64) - 0.5
            counts, edges = np.histogram(finite, bins=edges)
        else:
            counts, edges = np.histogram(finite, bins=bins, range=(lo, hi))
        stats.hist_counts = [int(c) for c in counts]
        stats.hist_edges = [float(e) for e in edges]
    return stats


def save_const_npy(node: NodeDef, path, overwrite: bool = False):
    """Write a Const's value to ``path`` as ``.npy`` (atomic; refuses to overwrite unless asked)."""
    import io as _io
    from pathlib import Path

    from .files import check_destinations, write_atomic
    p = Path(path)
    if p.is_dir():
        raise GraphError("is a folder; give a .npy file name", str(p))
    check_destinations([p], overwrite=overwrite)
    arr = const_array(node)
    buf = _io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    write_atomic(p, buf.getvalue())
    return p
