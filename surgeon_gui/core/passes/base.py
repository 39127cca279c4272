"""What a pass is: a plain function over a graph that reports every match and refusal.

A pass module defines one :class:`Pass` named ``PASS``. Its ``fn(graph, select, **params)``
takes a :class:`~surgeon_gui.core.model.graph.Graph` (never edited in place) and returns a
:class:`PassResult`: the new GraphDef and a :class:`PassReport` listing every match (with what
was removed, added and changed there) and every candidate refused, with the reason.

``select`` (a set of match keys, or None for all) applies only some matches: the GUI's
"only the ticked ones" and step mode. A pass run with ``select=set()`` changes nothing but still
reports every match: that is the preview.

Copy on write: a pass that changes nothing returns its input GraphDef itself (no copy), so treat
``PassResult.graph_def`` as read-only unless ``report.modified``. A pass that changes k nodes
copies only those (its :class:`~..model.editor.GraphEditor` keeps an overlay) and then builds its
result: a copy of the input with the changes when called directly, or, in the pipeline
(``Pass.run(..., in_place=True)``), the input GraphDef itself with the changes written in, with
``PassResult.old_nodes`` (asked with ``record=True``) holding what was there before.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..model.editor import GraphEditor
from ..model.graph import Graph, GraphDef


@dataclass
class Param:
    """A pass parameter, described well enough for a CLI flag and a GUI form field."""
    name: str
    type: type  # bool, int, float, str, list (comma-separated str in the CLI)
    default: Any
    help: str
    choices: list | None = None

    def parse(self, text: str):
        """The value of ``text`` as typed on a command line (``true``, ``3``, ``a,b``)."""
        t = text.strip()
        if self.type is bool:
            low = t.lower()
            if low in ("1", "true", "yes", "on"):
                value = True
            elif low in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError(f"{self.name} takes true or false, not {text!r}")
        elif self.type is list:
            value = [v.strip() for v in t.split(",") if v.strip()]
        elif self.type in (int, float):
            try:
                value = self.type(float(t)) if self.type is int and "e" in t.lower() \
                    else self.type(t)
            except ValueError:
                raise ValueError(f"{self.name} takes a number, not {text!r}") from None
        else:
            value = t
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{self.name} takes one of {', '.join(map(str, self.choices))}, "
                             f"not {text!r}")
        return value


@dataclass
class Match:
    """One place a pass applies to.

    ``key`` is stable across runs on the same graph (usually the anchor node's name) so a user
    can select matches in a preview and apply only those. ``nodes`` are the matched nodes in the
    input graph (highlighted in the preview).
    """
    key: str
    description: str
    nodes: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    applied: bool = True

    def to_dict(self) -> dict:
        return dict(key=self.key, description=self.description, nodes=self.nodes,
                    removed=self.removed, added=self.added, changed=self.changed,
                    applied=self.applied)


@dataclass
class Refusal:
    """A candidate the pass would not touch, and why (so the user can fix it by hand)."""
    key: str
    reason: str
    nodes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(key=self.key, reason=self.reason, nodes=self.nodes)


@dataclass
class PassReport:
    pass_id: str
    matches: list[Match] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    #: Nodes removed/added/changed overall, including cleanup after the matches.
    removed: set[str] = field(default_factory=set)
    added: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    #: Function-library entries removed/added/changed (a change even when no node moved).
    functions: set[str] = field(default_factory=set)

    @property
    def applied(self) -> list[Match]:
        return [m for m in self.matches if m.applied]

    @property
    def modified(self) -> bool:
        return bool(self.removed or self.added or self.changed or self.functions)

    def summary(self) -> str:
        parts = [f"{len(self.applied)} match(es) applied"]
        skipped = len(self.matches) - len(self.applied)
        if skipped:
            parts.append(f"{skipped} not selected")
        if self.refused:
            parts.append(f"{len(self.refused)} refused")
        parts.append(f"-{len(self.removed)} +{len(self.added)} ~{len(self.changed)} nodes")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return dict(pass_id=self.pass_id, matches=[m.to_dict() for m in self.matches],
                    refused=[r.to_dict() for r in self.refused],
                    removed=sorted(self.removed), added=sorted(self.added),
                    changed=sorted(self.changed), functions=sorted(self.functions),
                    notes=self.notes)


@dataclass
class PassResult:
    graph_def: GraphDef
    report: PassReport
    #: With ``record=True``: the NodeDef each touched node had before the pass, by name (None
    #: for a node the pass added; a renamed node appears under both names). The touched names
    #: are ``report.removed | report.added | report.changed``.
    old_nodes: dict | None = None


PassFn = Callable[..., PassResult]


@dataclass
class Pass:
    id: str
    title: str
    #: For a learner: what it matches, why it is safe, the math where there is math (Markdown).
    explanation: str
    fn: PassFn
    params: list[Param] = field(default_factory=list)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def run(self, graph: Graph, select: set[str] | None = None, in_place: bool = False,
            record: bool = False, **params) -> PassResult:
        """Run the pass; unknown parameters are an error, missing ones take their default.

        ``in_place``: the caller gives ``graph``'s GraphDef up and the result may be that very
        GraphDef, edited (passes written with :func:`~.context.pass_body`; the others copy).
        ``record``: keep the touched nodes' old NodeDefs in ``PassResult.old_nodes``."""
        known = self.defaults()
        unknown = set(params) - set(known)
        if unknown:
            raise ValueError(f"pass {self.id!r} has no parameter(s) {', '.join(sorted(unknown))}; "
                             f"it takes: {', '.join(known) or 'none'}")
        known.update(params)
        if getattr(self.fn, "in_place", False):
            return self.fn(graph, select=select, in_place=in_place, record=record, **known)
        res = self.fn(graph, select=select, **known)
        if record and res.old_nodes is None:
            res.old_nodes = _old_nodes(graph, res.report)
        return res

    def preview(self, graph: Graph, **params) -> PassReport:
        """Every match and refusal, without changing anything."""
        return self.run(graph, select=set(), **params).report


def _old_nodes(graph: Graph, report: PassReport) -> dict:
    """The touched nodes as ``graph`` (left intact) has them: None for an added node."""
    out = {n: graph.nodes.get(n) for n in report.removed | report.changed}
    out.update((n, None) for n in report.added if n not in out)
    return out


def is_selected(key: str, select: set[str] | None) -> bool:
    """Whether the match ``key`` is to be applied (``select`` None means all)."""
    return select is None or key in select


def fill_report(report: PassReport, editor: GraphEditor) -> None:
    """Finish an edit (stale colocation hints dropped) and copy the overall changes."""
    if editor.removed:
        editor.drop_stale_colocation()
    report.removed = set(editor.removed)
    report.added = set(editor.added)
    report.changed = set(editor.changed) - set(editor.removed)


def sorted_names(graph: Graph, names: Iterable[str]) -> list[str]:
    """Names in the graph's node order (unknown names last, alphabetically)."""
    big = len(graph.order)
    return sorted(set(names), key=lambda n: (graph.order.get(n, big), n))
