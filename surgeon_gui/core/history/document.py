"""The open model as an observable document that owns its history (Qt-free).

The document holds the current graph and the list of :class:`Step` s taken since the model was
opened: each step is its :class:`GraphDelta` (only the nodes that changed), a label and the
recipe step that replays it. A cursor says how many steps are applied; undo, redo and a jump in
the History move the cursor and nothing else changes the graph. Everything that shows the
history reads this one list: the Diff panel, the comparison's references, recipe export, the
view's marks and the status bar. Undo commands in the GUI only call :meth:`Document.go_to`.

A change is made in two halves so that the costly one runs off the GUI thread:
:func:`prepare_step` (run the pass, index the new graph, compute the delta: any thread) and
:meth:`Document.adopt` (take the prepared steps, O(1) per step, one announcement).
:meth:`Document.push` does both for small synchronous changes (tests, scripts).

Memory: the document holds one GraphDef; undo/redo edit it in place from the deltas, so a
350 MB model with twenty steps costs 350 MB plus the changed nodes. :attr:`Document.original`
and :meth:`Document.graph_at` rebuild other states on a copy. A move over big node versions
can instead be built next to the current graph (:meth:`Document.prepare_move`, on a worker)
and swapped in by :meth:`Document.go_to`: two graphs for a moment, the old one then freed.

Every change is announced with a :class:`GraphChange` naming the removed, added and changed
nodes (after an undo, ``removed`` are the nodes the undo took away) and the step now current.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from ..model.graph import Graph, GraphDef, GraphError, gc_paused
from .delta import GraphDelta, Spilled, build_state, copy_graph_def, preloaded, read_spilled
from .events import Signal

_KEEP = object()
_serials = itertools.count(1)


class StaleStepError(GraphError):
    """A step computed on a state of the document that has since changed."""


@dataclass
class GraphChange:
    """What one change did, by node name (drives diff highlighting and incremental redraw)."""
    label: str = ""
    removed: set[str] = field(default_factory=set)
    added: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    #: True when everything should be redrawn (a new model was loaded).
    reset: bool = False
    #: "apply" (steps were taken or redone), "undo" (the cursor moved back), or "" (other).
    kind: str = ""
    #: The delta of the change when it is one step (taken, redone or undone).
    delta: GraphDelta | None = None
    #: How many steps are applied after the change (the document's cursor).
    cursor: int = 0

    @property
    def empty(self) -> bool:
        return not (self.removed or self.added or self.changed or self.reset)


@dataclass(eq=False)
class Step:
    """One step of the history: what it changed, what the user sees, what a recipe replays."""
    delta: GraphDelta
    label: str
    #: ``{"pass": id, "params": {...}, "select": [...] | None}`` or ``{"edit": kind, "args":
    #: {...}}``, or a list of such dicts for one user action made of several edits; None for a
    #: change no recipe can replay.
    recipe_step: dict | list | None = None
    #: The pass report, for a pass step.
    report: object = None

    @property
    def recipe_steps(self) -> list[dict]:
        r = self.recipe_step
        return [] if r is None else list(r) if isinstance(r, list) else [r]


@dataclass(frozen=True)
class Origin:
    """What a node was before a step changed its op type in place (the name stayed): a
    FusedBatchNorm that fold_batch_norm made the BiasAdd of the conv before it."""
    name: str
    #: Its op at the start of the span asked for (usually: in the model as opened).
    was: str
    #: Its op now (at the end of the span).
    now: str
    #: The step (1-based) that changed the op first, and that step's History label.
    step: int
    label: str
    #: The pass of that step (None for a hand edit).
    pass_id: str | None = None
    #: The node that match was anchored on when it is another one (fold_batch_norm: the conv
    #: the batch norm was folded into), from the step's report.
    into: str | None = None

    @property
    def folded_batch_norm(self) -> bool:
        return self.pass_id == "fold_batch_norm"

    @property
    def tag(self) -> str:
        """A few words for the node's box: "folded BN", "was Mul"."""
        return "folded BN" if self.folded_batch_norm else f"was {self.was}"

    @property
    def step_title(self) -> str:
        """"step 6, Fold batch norm into the op before it" (a pass step by its title)."""
        title = (_pass_title(self.pass_id) if self.pass_id else None) or self.label
        return f"step {self.step}, {title}"

    def describe(self) -> str:
        """One line for a tooltip, the Inspector or the CLI."""
        how = self.step_title
        if self.folded_batch_norm:
            into = f" into {self.into}" if self.into else ""
            return (f"folded from {self.was}{into} ({how}); it keeps the batch norm's name so "
                    "that its readers need no rewiring")
        into = f", merged into {self.into}" if self.into else ""
        return f"was {self.was}{into} ({how})"


_PASS_TITLES: dict[str, str] = {}


def _pass_title(pass_id: str) -> str | None:
    """A pass's title (None for an id no pass has); asked once per origin of every folded
    node (tens of thousands after the preset on a big graph), so found once per id."""
    title = _PASS_TITLES.get(pass_id)
    if title is None:
        from ..passes import get_pass
        try:
            title = _PASS_TITLES[pass_id] = get_pass(pass_id).title
        except (KeyError, ValueError):
            return None
    return title


def absorbed(origins: dict[str, "Origin"]) -> dict[str, list["Origin"]]:
    """The other way round: node -> the origins folded into it (the conv a batch norm was
    folded into lists that batch norm)."""
    out: dict[str, list[Origin]] = {}
    for o in origins.values():
        if o.into:
            out.setdefault(o.into, []).append(o)
    return out


def absorbed_text(items: list["Origin"]) -> str:
    """One line for a node others were folded into: "BN folded in: bn1/FusedBatchNormV3"."""
    bns = [o.name for o in items if o.folded_batch_norm]
    rest = [f"{o.name} (was {o.was})" for o in items if not o.folded_batch_norm]
    parts = []
    if bns:
        parts.append(f"batch norm folded in: {', '.join(bns)} "
                     f"(step {min(o.step for o in items if o.folded_batch_norm)}: its weights "
                     "are scaled per output channel)")
    if rest:
        parts.append("folded in: " + ", ".join(rest))
    return "; ".join(parts)


def _match_anchors(report) -> dict[str, str]:
    """Node name -> the key of the first applied match of ``report`` that changed it, when
    that key is another node (one pass over the matches: a lookup per node would make
    :meth:`Document.origins` quadratic, 0.5 s after the preset on a 107k-node graph)."""
    out: dict[str, str] = {}
    for m in getattr(report, "matches", None) or ():
        if m.applied:
            for name in m.changed:
                if name != m.key:
                    out.setdefault(name, m.key)
    return out


@dataclass(eq=False)
class PreparedMove:
    """The state after ``n`` steps, built apart from the live graph by
    :meth:`Document.prepare_move`, for :meth:`Document.go_to` to swap in."""
    n: int
    #: The document's revision it was built from (stale, and not used, once that changed).
    revision: int
    graph: Graph


@dataclass(eq=False)
class PreparedStep:
    """A step computed on a base graph, ready for :meth:`Document.adopt` (see module doc).
    ``graph`` is the graph after the step, or None when it is not kept (the preset's steps
    before its last: one working graph went on through them): adopting such a step applies
    its delta to the graph before it."""
    graph: Graph | None
    step: Step


def prepare_step(base: Graph, new: Graph, label: str, recipe_step=None,
                 report=None) -> PreparedStep:
    """The step from ``base`` to ``new`` (both kept as they are; ``new`` is adopted later).
    Costs a node-by-node comparison: call it where the pass ran (a worker thread)."""
    delta = GraphDelta.between(base.graph_def, new.graph_def, old_names=_names(base),
                               new_names=_names(new))
    return _prepared(base, new, delta, label, recipe_step, report)


def prepare_recorded_step(base: Graph, new: Graph, old_nodes: dict, label: str,
                          recipe_step=None, report=None) -> PreparedStep:
    """The step from ``base`` to ``new`` when the pass edited ``base``'s GraphDef in place
    (the preset's working graph): the delta is built from the touched nodes' recorded old
    versions (``PassResult.old_nodes``), in proportion to the change
    (:meth:`GraphDelta.from_record`); when the pass made a new GraphDef instead, ``base`` is
    intact and is compared with it node by node as :func:`prepare_step` does."""
    if new.graph_def is not base.graph_def:
        return prepare_step(base, new, label, recipe_step, report)
    return _prepared(base, new, GraphDelta.from_record(base, new, old_nodes), label,
                     recipe_step, report)


def _prepared(base: Graph, new: Graph, delta: GraphDelta, label: str, recipe_step,
              report) -> PreparedStep:
    delta.serial = next(_serials)
    old_io = (base.given_inputs, base.given_outputs)
    new_io = (new.given_inputs, new.given_outputs)
    if new_io != old_io:
        delta.old_io, delta.new_io = old_io, new_io
    return PreparedStep(new, Step(delta, label, recipe_step, report))


def _names(graph: Graph) -> list[str] | None:
    """The node names in order from an index (None when it has duplicate names)."""
    return None if graph._duplicates else list(graph.order)


class Document:
    """The current graph of one open model, its history of steps, and where it came from."""

    def __init__(self, graph_def: GraphDef, path: str | None = None,
                 inputs: list[str] | None = None, outputs: list[str] | None = None,
                 graph: Graph | None = None):
        self.path = path
        #: The file the model was opened from (``path`` follows Save As; this does not): the
        #: undo history and recipes start from it.
        self.source_path = path
        #: The checkpoint its variables were frozen from when opened (a replay needs it too).
        self.checkpoint: str | None = None
        # ``graph``: an index of ``graph_def`` already built (by the loader's check)
        self._graph = graph if graph is not None and graph.graph_def is graph_def \
            else Graph(graph_def, inputs, outputs, source=path)
        #: The inputs/outputs chosen when the model was opened (a recipe starts from these).
        self.initial_inputs = self._graph.given_inputs
        self.initial_outputs = self._graph.given_outputs
        self.changed = Signal()        # (GraphChange)
        self.dirty_changed = Signal()  # (bool)
        self._steps: list[Step] = []
        self._cursor = 0
        #: The step the file on disk holds (None: the state as opened), or False when that
        #: state is no longer in the history.
        self._saved: Step | None | bool = None
        self._dirty = False
        #: Increases with every change: a background job computed on revision r is stale when
        #: the document has moved on.
        self.revision = 0
        self._io_serial = 0

    @classmethod
    def from_loaded(cls, loaded) -> "Document":
        doc = cls(loaded.graph_def, loaded.path, loaded.inputs, loaded.outputs,
                  graph=loaded.graph())
        doc.checkpoint = getattr(loaded, "checkpoint", None)
        return doc

    # ------------------------------------------------------------------ state
    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def graph_def(self) -> GraphDef:
        return self._graph.graph_def

    @property
    def inputs(self) -> list[str] | None:
        return self._graph.given_inputs

    @property
    def outputs(self) -> list[str] | None:
        return self._graph.given_outputs

    @property
    def steps(self) -> list[Step]:
        """Every step of the history, oldest first, including undone ones after the cursor."""
        return list(self._steps)

    @property
    def cursor(self) -> int:
        """How many of :attr:`steps` are applied (0: the model as opened)."""
        return self._cursor

    @property
    def applied_steps(self) -> list[Step]:
        return self._steps[:self._cursor]

    @property
    def current_step(self) -> Step | None:
        """The newest applied step (None at the model as opened)."""
        return self._steps[self._cursor - 1] if self._cursor else None

    @property
    def applied(self) -> list[GraphDelta]:
        """The deltas of the applied steps, oldest first."""
        return [s.delta for s in self._steps[:self._cursor]]

    @property
    def state_key(self) -> tuple:
        """Identifies the current content: equal keys, identical graphs (and chosen
        inputs/outputs). Undo back to a state gives its key again, so views can cache what
        they derived from it (a group tree) instead of rebuilding it."""
        return (id(self), self._io_serial) + tuple(s.delta.serial
                                                   for s in self._steps[:self._cursor])

    # ------------------------------------------------------------------ saved / dirty
    @property
    def dirty(self) -> bool:
        return self._dirty

    def mark_saved(self, path: str | None = None) -> None:
        """The current state is what is on disk (at ``path`` when given)."""
        if path is not None:
            self.path = path
            self._graph.source = path
        self._saved = self.current_step
        self._update_dirty()

    @property
    def saved_step(self) -> int | None:
        """How many applied steps the file last saved (or opened) holds; None when that state
        is not among the applied steps."""
        if self._saved is None:
            return 0
        if self._saved is False:
            return None
        for i, s in enumerate(self._steps[:self._cursor], 1):
            if s is self._saved:
                return i
        return None

    def _update_dirty(self) -> None:
        dirty = self._saved is False or self.current_step is not self._saved
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirty_changed.emit(dirty)

    # ------------------------------------------------------------------ other states
    def snapshot(self) -> GraphDef:
        """A private copy of the current GraphDef (for background jobs; costs a full copy)."""
        return copy_graph_def(self.graph_def)

    def graph_at(self, n: int) -> Graph:
        """The graph after the first ``n`` steps (0: as opened), rebuilt on a copy."""
        if not 0 <= n <= len(self._steps):
            raise IndexError(f"no state after {n} steps (the history has {len(self._steps)})")
        gd = self.snapshot()
        inputs, outputs = self.inputs, self.outputs
        for s in reversed(self._steps[n:self._cursor]):
            s.delta.revert(gd)
            if s.delta.old_io is not None:
                inputs, outputs = s.delta.old_io
        for s in self._steps[self._cursor:n]:
            s.delta.apply(gd)
            if s.delta.new_io is not None:
                inputs, outputs = s.delta.new_io
        return Graph(gd, inputs, outputs, source=self.path)

    @property
    def original(self) -> GraphDef:
        """The graph as loaded, rebuilt by reverting every applied step on a copy (costly)."""
        return self.graph_at(0).graph_def

    def graph_before(self, steps: int = 1) -> Graph:
        """The graph as it was ``steps`` applied steps ago (a copy)."""
        return self.graph_at(max(self._cursor - steps, 0))

    def renames(self, start: int, end: int | None = None) -> dict[str, str]:
        """New name → name at state ``start``, for the nodes that steps ``start`` .. ``end``
        (default: the cursor) renamed (chains followed)."""
        end = self._cursor if end is None else end
        back: dict[str, str] = {}
        for s in self._steps[start:end]:
            for r in s.recipe_steps:
                if r.get("edit") == "rename_node":
                    old, new = r["args"]["node"], r["args"]["new_name"]
                    back[new] = back.pop(old, old)
        return back

    def origins(self, start: int = 0, end: int | None = None) -> dict[str, Origin]:
        """Node name -> :class:`Origin`, for the nodes that steps ``start`` .. ``end``
        (default: the cursor) changed the op type of, keeping their name (read from the
        steps' deltas; a node changed back to its op, or removed, is left out). The dict is
        kept for the next call: read it, do not change it."""
        end = self._cursor if end is None else end
        return self._origins_of(start, self._steps[start:end])

    def origins_after(self, prepared: list[PreparedStep]) -> dict[str, Origin]:
        """The :meth:`origins` the document will have once ``prepared`` is adopted (from the
        start): any thread, the document is only read. Kept like those, so that the first
        ``origins()`` after the adoption is found, not worked out on the GUI thread."""
        return self._origins_of(0, self._steps[:self._cursor] + [p.step for p in prepared])

    def _origins_of(self, start: int, steps: list) -> dict[str, Origin]:
        # Asked at every adoption, undo and redo (the view's tags) and node click (the
        # Inspector): 10-15 ms after the preset on the 107k-node graph. Kept for the last few
        # spans, with the span one step shorter (one undo away); a span is found again only
        # when it holds the same step objects with the same labels.
        memo = self.__dict__.setdefault("_origins_memo", [])
        labels = [s.label for s in steps]
        out: dict[str, Origin] = {}
        done = 0
        for m_start, m_steps, m_labels, m_out in memo:
            k = len(m_steps)
            if m_start == start and k <= len(steps) and k > done and m_labels == labels[:k] \
                    and all(a is b for a, b in zip(m_steps, steps)):
                if k == len(steps):
                    return m_out
                out, done = dict(m_out), k
        for i, s in enumerate(steps[done:], start + done + 1):
            if i == start + len(steps) and i - 1 > start + done:
                self._remember_origins(start, steps[:-1], labels[:-1], dict(out))
            d = s.delta
            if out:     # (the names found so far: fewer than a big step's removed/added sets)
                gone, came = d.removed, d.added
                for n in [n for n in out if n in gone or n in came]:
                    del out[n]
            if not d.op_changes:
                continue
            pass_id = s.recipe_step.get("pass") if isinstance(s.recipe_step, dict) else None
            anchors = _match_anchors(s.report)
            for n, (old, new) in d.op_changes.items():
                o = out.get(n)
                if o is None:
                    out[n] = Origin(n, old, new, i, s.label, pass_id, anchors.get(n))
                elif new == o.was:
                    del out[n]
                else:
                    out[n] = Origin(n, o.was, new, o.step, o.label, o.pass_id, o.into)
        self._remember_origins(start, steps, labels, out)
        return out

    #: How many spans :meth:`origins` keeps (their results are shared: callers only read them).
    ORIGINS_KEPT = 4

    def _remember_origins(self, start, steps, labels, out) -> None:
        memo = self.__dict__.setdefault("_origins_memo", [])
        memo.append((start, tuple(steps), list(labels), out))
        del memo[:-self.ORIGINS_KEPT]

    # ------------------------------------------------------------------ changes
    def adopt(self, prepared: list[PreparedStep], base_revision: int | None = None,
              change: GraphChange | None = None) -> None:
        """Take steps prepared (by :func:`prepare_step`, each on the graph of the one before,
        the first on the current graph) as the newest steps; undone steps are dropped.
        StaleStepError when the document changed since ``base_revision``. ``change``:
        :func:`adopted_change` of ``prepared``, made beside them (on the job's thread), else
        made here."""
        if base_revision is not None and base_revision != self.revision:
            raise StaleStepError("the graph changed while the step was computed; run it again")
        if not prepared:
            return
        if self._saved not in (None, False) and not any(
                s is self._saved for s in self._steps[:self._cursor]):
            self._saved = False   # the saved state is among the undone steps being dropped
        graph = self._adopted_graph(prepared)
        del self._steps[self._cursor:]
        for p in prepared:
            self._steps.append(p.step)
        self._cursor = len(self._steps)
        self._graph = graph
        self._graph.source = self.path
        self._announce(change if change is not None else adopted_change(prepared))

    def _adopted_graph(self, prepared: list[PreparedStep]) -> Graph:
        """The graph after ``prepared``: the last one's that has a graph (adopted as it is),
        with the deltas of the steps after it (prepared without one: the preset's steps
        before its last) applied in place, in proportion to their change."""
        last = max((i for i, p in enumerate(prepared) if p.graph is not None), default=-1)
        graph = prepared[last].graph if last >= 0 else self._graph
        rest = prepared[last + 1:]
        if rest:
            with gc_paused():
                for p in rest:
                    d = p.step.delta
                    inputs, outputs = d.new_io if d.new_io is not None \
                        else (graph.given_inputs, graph.given_outputs)
                    graph = d.apply_indexed(graph, inputs, outputs)
        return graph

    def push(self, graph_def: GraphDef, label: str = "", recipe_step=None, inputs=_KEEP,
             outputs=_KEEP, report=None) -> Step:
        """Make ``graph_def`` (adopted, not copied) the current graph as one step (computing
        the delta here). ``inputs``/``outputs`` change the chosen inputs/outputs with it."""
        g = self._graph
        new = Graph(graph_def, g.given_inputs if inputs is _KEEP else _opt_list(inputs),
                    g.given_outputs if outputs is _KEEP else _opt_list(outputs),
                    source=self.path)
        p = prepare_step(g, new, label, recipe_step, report)
        self.adopt([p])
        return p.step

    def apply_graph_def(self, graph_def: GraphDef, label: str = "", inputs=_KEEP,
                        outputs=_KEEP) -> GraphDelta:
        """:meth:`push` for a change no recipe replays; returns its delta."""
        return self.push(graph_def, label, None, inputs, outputs).delta

    def _moved(self, n: int) -> tuple[list[Step], bool]:
        back = n < self._cursor
        return (list(reversed(self._steps[n:self._cursor])) if back
                else self._steps[self._cursor:n]), back

    def move_reads(self, n: int) -> list[Spilled]:
        """The spilled node versions (in the scratch file) a move to ``n`` applied steps
        reads: :meth:`read_move` can read them beforehand on another thread."""
        if not 0 <= n <= len(self._steps):
            return []
        moved, back = self._moved(n)
        return [r for s in moved for r in s.delta.spilled_reads(not back)]

    def move_bytes(self, n: int) -> int:
        """Bytes of stored node versions (in memory or in the scratch file) a move to ``n``
        applied steps writes into the graph: what it costs to make in place."""
        if not 0 <= n <= len(self._steps):
            return 0
        moved, back = self._moved(n)
        # (map: asked on the GUI thread before a move; the preset's steps hold ~100k versions)
        return sum(sum(map(len, (s.delta.old_nodes if back else s.delta.new_nodes).values()))
                   for s in moved) + sum(
            len((s.delta.old_full if back else s.delta.new_full) or b"") for s in moved)

    @staticmethod
    def read_move(refs: list[Spilled]) -> dict[Spilled, bytes]:
        """Read ``refs`` (:meth:`move_reads`) from the scratch file: any thread, the document
        is not touched. Pass the result to :meth:`go_to` so that the move does not wait for
        the disk (a History jump on NASNetLarge reads ~300 MB of old weights back)."""
        return read_spilled(refs)

    def prepare_move(self, n: int) -> PreparedMove | None:
        """The state after ``n`` applied steps built as a new graph (GraphDef and index) next
        to the current one, which is only read: any thread, while the document does not
        change (the GUI keeps the move pending meanwhile, see ``ui.commands``). Hand it to
        :meth:`go_to`, which then swaps it in, O(1), instead of editing the graph in place
        (on NASNetLarge the jump back over the preset parses ~300 MB of old weights: 0.2–0.4 s
        that would stall the GUI thread). None when there is nothing to build (``n`` is the
        cursor) or the in-place path must do it (duplicated names, whole-graph steps)."""
        revision = self.revision       # first: a change made meanwhile makes the result stale
        graph = self._graph
        if not 0 <= n <= len(self._steps) or n == self._cursor:
            return None
        moved, back = self._moved(n)
        inputs, outputs = graph.given_inputs, graph.given_outputs
        for s in moved:
            io = s.delta.old_io if back else s.delta.new_io
            if io is not None:
                inputs, outputs = io
        with gc_paused():
            gd = build_state(graph, [(s.delta, not back) for s in moved])
            if gd is None:
                return None
            new = Graph(gd, inputs, outputs, source=self.path)
            # What the in-place path would have kept up to date, found here rather than on
            # the GUI thread when first asked (the op map and consumers of a 100k-node graph)
            if graph._ops is not None:
                new.ops
            if graph._consumers is not None:
                new._build_consumers()
            for ignore_loops in list(graph._topo):
                try:
                    new.topological_order(ignore_loops)
                except GraphError:
                    pass   # (a cycle: asked again, it is reported then)
        return PreparedMove(n, revision, new)

    def go_to(self, n: int, loaded: dict[Spilled, bytes] | None = None,
              prepared: PreparedMove | None = None) -> None:
        """Move the cursor to ``n`` applied steps (undo when ``n`` is smaller, redo when
        larger), editing the graph in place from the deltas. ``loaded``: spilled node
        versions already read (:meth:`read_move`); others are read here. ``prepared``: the
        state built beforehand (:meth:`prepare_move`), swapped in when it is for ``n`` and
        the document has not changed since (else ignored)."""
        if not 0 <= n <= len(self._steps):
            raise IndexError(f"no state after {n} steps (the history has {len(self._steps)})")
        if n == self._cursor:
            return
        graph = self._graph
        inputs, outputs = self.inputs, self.outputs
        moved, back = self._moved(n)
        if prepared is not None and prepared.n == n and prepared.revision == self.revision:
            graph = prepared.graph
        else:
            # The GraphDef is edited in place and its index updated with it, both in
            # proportion to the steps' changes (not rebuilt: undo on a 100k-node graph).
            with gc_paused(), preloaded(loaded):
                graph = self._move(graph, moved, back, inputs, outputs)
        self._cursor = n
        graph.source = self.path
        self._graph = graph
        removed, added, changed = set(), set(), set()
        for s in moved:
            d = s.delta
            gone, new = (d.added, d.removed) if back else (d.removed, d.added)
            # (set operations: the preset's steps on a big graph remove ~100k names)
            came_and_went = added.intersection(gone)
            added -= came_and_went
            removed |= set(gone).difference(came_and_went)
            went_and_came = removed.intersection(new)     # back again: a changed node
            removed -= went_and_came
            changed |= went_and_came
            added |= set(new).difference(went_and_came)
            changed |= set(d.changed)
        changed -= added | removed
        one = moved[0] if len(moved) == 1 else None
        self._announce(GraphChange(one.label if one else "", removed, added, changed,
                                   kind="undo" if back else "apply",
                                   delta=one.delta if one else None))

    @staticmethod
    def _move(graph: Graph, moved: list[Step], back: bool, inputs, outputs) -> Graph:
        for s in moved:
            if back:
                if s.delta.old_io is not None:
                    inputs, outputs = s.delta.old_io
                graph = s.delta.revert_indexed(graph, inputs, outputs)
            else:
                if s.delta.new_io is not None:
                    inputs, outputs = s.delta.new_io
                graph = s.delta.apply_indexed(graph, inputs, outputs)
        return graph

    def set_io(self, inputs=None, outputs=None) -> None:
        """Choose the graph's inputs/outputs outside the history (when a model is opened for
        a purpose that names them, as a lesson does)."""
        self._graph = self._graph.with_io(inputs, outputs)
        self.revision += 1
        self._io_serial += 1
        self.changed.emit(GraphChange(label="inputs/outputs", kind="io", cursor=self._cursor))

    def undo(self) -> None:
        if self._cursor:
            self.go_to(self._cursor - 1)

    def redo(self) -> None:
        if self._cursor < len(self._steps):
            self.go_to(self._cursor + 1)

    def _announce(self, change: GraphChange) -> None:
        self.revision += 1
        change.cursor = self._cursor
        self._update_dirty()
        self.changed.emit(change)


def _opt_list(v):
    return None if v is None else list(v)


def adopted_change(prepared: list[PreparedStep]) -> GraphChange:
    """What :meth:`Document.adopt` of ``prepared`` announces, by node name. Reads only the
    steps' deltas: any thread. A job that prepares steps on a big graph makes it beside them
    (the preset's seven steps on the 107k-node graph remove ~90k names: 20-30 ms of set
    operations the GUI thread then does not spend)."""
    if len(prepared) == 1:
        d = prepared[0].step.delta
        return GraphChange(prepared[0].step.label, set(d.removed), set(d.added),
                           set(d.changed), kind="apply", delta=d)
    removed, added, changed = set(), set(), set()
    for p in prepared:
        d = p.step.delta
        # (set operations: a preset step on a big graph removes ~100k names)
        back = added.intersection(d.removed)   # added by an earlier step: never were
        added -= back
        removed |= set(d.removed).difference(back)
        added |= set(d.added)
        changed |= set(d.changed)
    changed -= added | removed
    return GraphChange(prepared[-1].step.label if prepared else "", removed, added, changed,
                       kind="apply")
