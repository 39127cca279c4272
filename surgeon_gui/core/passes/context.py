"""The frame every pass runs in: what it starts with and how it ends.

A pass body is ``body(ctx, **params)``; :func:`pass_body` turns it into the plain pass
function ``fn(graph, select=None, **params) -> PassResult`` that :class:`~.base.Pass` runs::

    @pass_body("remove_identity")
    def remove_identity(ctx: PassContext) -> None:
        for node in ctx.graph.graph_def.node:
            ...
            m = ctx.match(node.name, "what it does", nodes=[node.name])
            if m.applied:
                ctx.editor.bypass(node.name)

The context holds the report, the editor (made on first use), the protected names, the
selection, the graph's constants and a pattern :class:`~.pattern.Matcher`; :meth:`result` fills
the report from the editor (what was removed, added, changed) and builds the result.
"""
from __future__ import annotations

import functools
from typing import Callable, Iterable

from ..model.consteval import Constants
from ..model.editor import GraphEditor, protected_names, protection_reason
from ..model.graph import Graph
from .base import Match, PassReport, PassResult, Refusal, fill_report, is_selected
from .pattern import Matcher


class PassContext:
    """One run of one pass over ``graph``."""

    def __init__(self, pass_id: str, graph: Graph, select: set[str] | None = None,
                 in_place: bool = False, record: bool = False):
        self.graph = graph
        self.select = select
        #: Write the result into the input GraphDef (the caller gave it up: the pipeline);
        #: ``record`` keeps the old NodeDefs of the touched nodes (see :class:`GraphEditor`).
        self.in_place = in_place
        self.record = record
        self.report = PassReport(pass_id)
        #: Nodes named as graph inputs or outputs: never removed or renamed.
        self.protected = protected_names(graph)
        #: The protected names and, when no outputs were given, the detected outputs.
        self.keep = protected_names(graph, detected_outputs=True)
        self._editor: GraphEditor | None = None
        self._constants: Constants | None = None
        self._matcher: Matcher | None = None
        self._finish: list[Callable] = []

    @property
    def editor(self) -> GraphEditor:
        if self._editor is None:
            self._editor = GraphEditor(self.graph, in_place=self.in_place, record=self.record)
        return self._editor

    @property
    def constants(self) -> Constants:
        """The graph's constants (analysed on the first question that needs it)."""
        if self._constants is None:
            self._constants = Constants(self.graph, analyse=False)
        return self._constants

    @property
    def matcher(self) -> Matcher:
        if self._matcher is None:
            self._matcher = Matcher(self.graph, self.constants)
        return self._matcher

    # ------------------------------------------------------------ the report
    def selected(self, key: str) -> bool:
        return is_selected(key, self.select)

    def match(self, key: str, description: str, nodes: Iterable[str] = (), **changes) -> Match:
        """Report a match; ``match.applied`` says whether the selection includes it."""
        m = Match(key, description, nodes=list(nodes), **changes)
        m.applied = self.selected(key)
        self.report.matches.append(m)
        return m

    def refuse(self, key: str, reason: str, nodes: Iterable[str] = ()) -> Refusal:
        r = Refusal(key, reason, list(nodes))
        self.report.refused.append(r)
        return r

    def why_kept(self, name: str) -> str:
        """Why a node in :attr:`keep` is kept (for a refusal)."""
        return protection_reason(self.graph, name)

    def note(self, text: str) -> None:
        self.report.notes.append(text)

    def finish_with(self, fn: Callable) -> None:
        """Run ``fn(graph_def)`` on the result once the edit is done (e.g. a final reorder)."""
        self._finish.append(fn)

    def result(self) -> PassResult:
        fill_report(self.report, self.editor)
        out = self.editor.result()
        for fn in self._finish:
            fn(out)
        ed = self._editor
        return PassResult(out, self.report,
                          old_nodes=ed.old_nodes if ed is not None and self.record else None)


def pass_body(pass_id: str) -> Callable:
    """Make ``body(ctx, **params)`` a pass function ``fn(graph, select=None, **params)``.

    The function leaves ``graph`` untouched. The pipeline, which owns its working graph, calls
    it with ``in_place=True`` (and ``record=True`` to keep the old NodeDefs): the result is then
    the input GraphDef with the changes written into it, which costs what was changed, not a
    copy of the graph."""
    def wrap(body: Callable[..., None]) -> Callable[..., PassResult]:
        @functools.wraps(body)
        def run(graph: Graph, select: set[str] | None = None, *, in_place: bool = False,
                record: bool = False, **params) -> PassResult:
            ctx = PassContext(pass_id, graph, select, in_place=in_place, record=record)
            body(ctx, **params)
            return ctx.result()
        run.in_place = True  # takes in_place/record (Pass.run asks)
        return run
    return wrap
