"""What a user would expect the inference preset to remove and it left, and why.

:func:`leftovers` looks at a graph (the preset's result) for training machinery: Switch/Merge
and functional conds, random ops (dropout), bool flag placeholders, batch norms, Identity nodes
and variables. Each :class:`Leftover` says how many, why they stay (the predicate's source, the
pass's own refusal) and the parameter or edit that would remove them, e.g. ``15 If remain:
their predicate model/Placeholder_1 is a bool Placeholder; pass --param
training_flags.names=model/Placeholder_1``. The CLI prints them after the preset; the GUI's
Passes panel lists them.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ..model.graph import Graph, dtype_name, node_of
from ..model.ops import IF_OPS, SWITCH_OPS, VARIABLE_OPS, is_random
from . import get_pass
from ..model.graph import INPUT_OPS as PLACEHOLDER_OPS
from .training_flags import predicate_source

MERGE_OPS = frozenset({"Merge", "RefMerge"})
BN_OPS = frozenset({"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3",
                    "BatchNormWithGlobalNormalization"})


@dataclass
class Leftover:
    """One kind of training machinery still in the graph."""
    kind: str
    nodes: list[str]
    reason: str
    fix: str = ""
    #: What the count is of ("If", "Switch/Merge", "batch norm", ...).
    what: str = ""

    def line(self) -> str:
        n = len(self.nodes)
        text = f"{n} {self.what or self.kind} remain{'s' if n == 1 else ''}: {self.reason}"
        return text + (f"; {self.fix}" if self.fix else "")

    def to_dict(self) -> dict:
        return dict(kind=self.kind, count=len(self.nodes), nodes=list(self.nodes),
                    reason=self.reason, fix=self.fix, line=self.line())


def _describe_source(graph: Graph, src: str) -> tuple[str, str]:
    """(what the predicate's source is, how to make it constant)."""
    node = graph.nodes.get(src)
    if node is None:
        return f"{src} (not in the graph)", ""
    if node.op in PLACEHOLDER_OPS:
        dt = dtype_name(node.attr["dtype"].type) if "dtype" in node.attr else "?"
        if dt == "bool":
            return (f"their predicate {src} is a bool {node.op}",
                    f"pass --param training_flags.names={src}")
        return (f"their predicate {src} is a {dt} {node.op}, not a bool flag",
                f"if it is a training flag, replace {src} with a Const by hand "
                "(edit placeholder_to_const)")
    if node.op == "Const":
        return f"their predicate {src} is a Const", "run the preset again"
    return (f"their predicate comes from {src} ({node.op}), computed at run time",
            f"if it is fixed at inference, make {src} a Const by hand, or cut the graph above it")


def leftovers(graph: Graph) -> list[Leftover]:
    """The training machinery left in ``graph``, grouped by cause (see the module doc)."""
    out: list[Leftover] = []
    nodes = graph.graph_def.node

    # Conds: v1 Switch/Merge and functional If, grouped by where their predicate comes from.
    by_pred: dict[tuple[str, str], list[str]] = defaultdict(list)
    for n in nodes:
        data = [t for t in n.input if not t.startswith("^")]
        if n.op in SWITCH_OPS and len(data) > 1:
            by_pred[("Switch/Merge", predicate_source(graph, data[1]))].append(n.name)
        elif n.op in IF_OPS and data:
            by_pred[(n.op, predicate_source(graph, data[0]))].append(n.name)
    merges = [n.name for n in nodes if n.op in MERGE_OPS]
    for (what, src), names in sorted(by_pred.items()):
        if what == "Switch/Merge":
            names = names + [m for m in merges if any(
                node_of(t) in names for t in graph.nodes[m].input)]
        reason, fix = _describe_source(graph, src)
        if what != "Switch/Merge" and src in graph.nodes \
                and graph.nodes[src].op == "Const":
            reason, fix = f"their predicate {src} is a Const", "inline_functions refused them"
        out.append(Leftover("control flow", names, reason, fix, what))

    # Dropout and other random ops.
    rnd = [n.name for n in nodes if is_random(n.op)]
    if rnd:
        refusals = _refusals(graph, "remove_dropout")
        why = next((r.reason for r in refusals if set(r.nodes) & set(rnd)), None)
        out.append(Leftover(
            "dropout", rnd, why or "random ops (dropout noise?) that no training flag gates",
            "if they are dropout behind a flag, name the flag (--param training_flags.names=...)"
            "; else remove them by hand", "random op(s)"))

    # Training flags: bool placeholders that training_flags refused or did not convert.
    for r in _refusals(graph, "training_flags"):
        out.append(Leftover("training flag", r.nodes or [r.key], r.reason,
                            "convert it by hand if it is a training flag "
                            "(edit placeholder_to_const)", "training flag candidate"))

    # Batch norms, with fold_batch_norm's reason for each.
    bns = [n.name for n in nodes if n.op in BN_OPS]
    if bns:
        items = []
        refusals = _refusals(graph, "fold_batch_norm")
        for bn in bns:
            n = graph.nodes[bn]
            if n.attr["is_training"].b:
                why = "it normalizes with batch statistics (is_training=True)"
            else:
                why = next((r.reason for r in refusals if bn == r.key or bn in r.nodes),
                           "no Conv2D/DepthwiseConv2dNative/MatMul right before it to fold into")
            items.append((bn, why))
        for why, names in _group_by_reason(graph, items).items():
            out.append(Leftover("batch norm", names, why,
                                "fold_batch_norm cannot fold it into a neighbour",
                                "batch norm(s)"))

    # Identity nodes (remove_identity says why it kept them).
    # An Identity that is itself a graph output is the output's name: nobody expects it gone.
    named = {node_of(t) for t in graph.outputs} | {node_of(t) for t in graph.inputs}
    ids = [n.name for n in nodes if n.op == "Identity" and n.name not in named]
    if ids:
        refusals = _refusals(graph, "remove_identity")
        items = [(i, next((r.reason for r in refusals if i == r.key or i in r.nodes),
                          "a named output or input keeps its name through it")) for i in ids]
        for why, names in _group_by_reason(graph, items).items():
            out.append(Leftover("identity", names, why, "", "Identity node(s)"))

    variables = [n.name for n in nodes if n.op in VARIABLE_OPS]
    if variables:
        out.append(Leftover("variables", variables, "the graph was saved with its variables",
                            "freeze them: --checkpoint PREFIX|FOLDER (GUI: File > Open with "
                            "Checkpoint)", "variable(s)"))
    return out


def _refusals(graph: Graph, pass_id: str):
    try:
        return get_pass(pass_id).preview(graph).refused
    except Exception:  # noqa: BLE001 - a leftover report never fails the run it follows
        return []


def _group_by_reason(graph: Graph, items: list[tuple[str, str]]) -> dict[str, list[str]]:
    """{reason with node names blanked out (first one kept as an example): node names}."""
    groups: dict[str, list[str]] = defaultdict(list)
    example: dict[str, str] = {}
    for name, why in items:
        words = why.split(" ")
        key = " ".join("…" if node_of(w.strip(",.;:()")) in graph.nodes else w for w in words)
        groups[key].append(name)
        example.setdefault(key, why)
    return {(example[k] if len(v) == 1 else f"{example[k]} (and {len(v) - 1} more like it)"): v
            for k, v in groups.items()}
