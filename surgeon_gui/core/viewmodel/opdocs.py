"""What an op does and what its inputs and attributes mean, from TensorFlow's own documentation
(what Netron shows next to a node).

TensorFlow's op registry (``op_def_registry``) holds every op's signature; in pip builds its
text fields are empty, and the documentation lives in the generated ``tf.raw_ops`` functions'
docstrings (the same text as tensorflow.org's op pages). :func:`op_doc` reads that lazily (the
first call imports TensorFlow: call it off the GUI thread) and caches it per op type. Unknown
ops (custom or from a newer TensorFlow) give None.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass
class OpDoc:
    op: str
    summary: str
    description: str = ""
    #: input or attribute name → its description (inputs first, in signature order)
    args: dict[str, str] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    attrs: list[str] = field(default_factory=list)


_ARG = re.compile(r"^(\w+): ?(.*)$")


def parse_docstring(op: str, doc: str) -> OpDoc:
    """Split a generated raw-op docstring into summary, description and per-argument text."""
    lines = doc.expandtabs().splitlines()
    summary = lines[0].strip() if lines else ""
    body, args_lines, section = [], [], "body"
    for line in lines[1:]:
        s = line.strip()
        if s in ("Args:", "Returns:", "Raises:"):
            section = s[:-1].lower()
            continue
        if section == "body":
            body.append(line)
        elif section == "args":
            args_lines.append(line)
    description = _dedent_paragraphs(body)
    args: dict[str, str] = {}
    indent = None
    current = None
    for line in args_lines:
        if not line.strip():
            continue
        lead = len(line) - len(line.lstrip())
        m = _ARG.match(line.strip())
        if m and (indent is None or lead <= indent):
            indent = lead
            current = m.group(1)
            args[current] = m.group(2).strip()
        elif current is not None:
            args[current] = (args[current] + " " + line.strip()).strip()
    args.pop("name", None)  # every raw op takes a ``name``: not the op's own argument
    return OpDoc(op, summary, description, args)


def _dedent_paragraphs(lines: list[str]) -> str:
    text = "\n".join(line.strip() for line in lines).strip()
    return re.sub(r"\n{3,}", "\n\n", text)


def op_doc(op: str) -> OpDoc | None:
    """Documentation of op type ``op`` (None when TensorFlow does not document it, or cannot
    be imported). Waits for the app's background import of TensorFlow, if one runs."""
    from ..model import tfenv
    tfenv.wait_for_tensorflow()
    try:
        import tensorflow as tf  # noqa: F401 - imported before raw_ops is read
        from tensorflow.python.framework import op_def_registry  # noqa: F401
    except Exception:  # noqa: BLE001 - no TensorFlow: no documentation, not an error
        return None
    return _op_doc(op)


@lru_cache(maxsize=None)
def _op_doc(op: str) -> OpDoc | None:
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry
    fn = getattr(tf.raw_ops, op, None)
    if fn is None or not fn.__doc__:
        return None
    doc = parse_docstring(op, fn.__doc__)
    op_def = op_def_registry.get(op)
    if op_def is not None:
        doc.inputs = [a.name for a in op_def.input_arg]
        doc.attrs = [a.name for a in op_def.attr]
        # signature order, inputs first; an attribute TF inferred (T) may have no text
        doc.args = {k: doc.args[k] for k in doc.inputs + doc.attrs if k in doc.args} | \
            {k: v for k, v in doc.args.items() if k not in doc.inputs + doc.attrs}
    return doc
