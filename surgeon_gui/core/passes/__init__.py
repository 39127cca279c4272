"""The pass library: one module per pass, each defining ``PASS``; plus the ``inference`` preset.

Modules are found by name in :data:`PASS_MODULES` (explicit, so a broken module is an import
error, never a silently missing pass).
"""
from __future__ import annotations

import importlib

from .base import Match, Param, Pass, PassReport, PassResult, Refusal  # noqa: F401

#: Modules in the order ``surgeon passes`` lists them.
PASS_MODULES = [
    "training_flags",
    "remove_switch_merge",
    "inline_functions",
    "remove_dropout",
    "remove_identity",
    "fold_constants",
    "fold_batch_norm",
    "simplify_arithmetic",
    "static_reshape",
    "strip_unused",
    "merge_duplicates",
    "materialize_constants",
    "sort_execution_order",
    "strip_attributes",
]

#: The "optimize for inference" preset, run in this order until nothing changes.
PRESET_ID = "inference"
PRESET_TITLE = "Optimize for inference (preset)"
PRESET_PASSES = [
    "training_flags",
    "inline_functions",
    "remove_switch_merge",
    "remove_dropout",
    "remove_identity",
    "fold_constants",
    "fold_batch_norm",
    "simplify_arithmetic",
    "static_reshape",
    "merge_duplicates",
    "strip_unused",
    "strip_attributes",
    "materialize_constants",
    "sort_execution_order",
]

_registry: dict[str, Pass] | None = None


def all_passes() -> dict[str, Pass]:
    """Pass id → Pass, in listing order."""
    global _registry
    if _registry is None:
        reg = {}
        for mod_name in PASS_MODULES:
            mod = importlib.import_module(f"{__name__}.{mod_name}")
            p = mod.PASS
            reg[p.id] = p
        _registry = reg
    return _registry


def get_pass(pass_id: str) -> Pass:
    reg = all_passes()
    if pass_id not in reg:
        raise KeyError(f"unknown pass {pass_id!r}; known: {', '.join(list(reg) + [PRESET_ID])}")
    return reg[pass_id]


def expand_pass_ids(ids) -> list[str]:
    """Expand ``inference`` to the preset's passes; check every id exists."""
    out = []
    for i in ids:
        i = i.strip()
        if not i:
            continue
        if i == PRESET_ID:
            out.extend(PRESET_PASSES)
        else:
            get_pass(i)
            out.append(i)
    return out
