"""What the graph view shows on top of the graph, kept apart from Qt: which groups are open,
which nodes are highlighted (search hits, a trace, a preview), the diff marks of the last step
and where its removed nodes were drawn, and the search-hit cursor (F3 / Shift+F3).

:class:`ViewState` holds it; :meth:`ViewState.decorations` says, for each drawn unit of a
:class:`~surgeon_gui.core.viewmodel.grouping.GroupTree`, what it should show. ``ui/graph_view``
only turns that into paint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .grouping import GroupTree

#: A box in scene coordinates: (x, y, width, height).
Box = tuple[float, float, float, float]


@dataclass
class Decoration:
    """What one drawn unit shows: its own highlight/mark, and for a group how many of the
    highlighted/marked nodes are inside."""
    highlight: str | None = None
    highlight_count: int = 0
    mark: str | None = None
    mark_counts: dict[str, int] = field(default_factory=dict)


class ViewState:
    def __init__(self) -> None:
        #: Keys of the open groups of the tree shown: the user's (:attr:`user_opened`, where
        #: they exist) and the default rule's (``GroupTree.default_expanded``) less the ones
        #: the user closed (:attr:`user_closed`).
        self.expanded: set[str] = set()
        #: Groups the user opened (a click, Enter, a search result, Expand All) and groups the
        #: user closed. Both outlive a state where the group is missing: undo brings it back
        #: as the user left it. What the app opened by default is in neither: another state
        #: of the model (undo, redo, a History jump, Before) opens its own defaults instead.
        self.user_opened: set[str] = set()
        self.user_closed: set[str] = set()
        #: node name → highlight kind (match, search, preview, kept, dead, refused, upstream,
        #: downstream, trace).
        self.highlight: dict[str, str] = {}
        #: node name → added / changed / removed / renamed.
        self.marks: dict[str, str] = {}
        #: removed node → (op, box it had, anchor) — where its ghost goes. The anchor is the
        #: nearest unit that survived, with its old position: ``(unit key, x, y)`` or None.
        self.ghost_boxes: dict[str, tuple] = {}
        #: Search hits in the order the user steps through them, and the current one.
        self.hits: list[str] = []
        self.hit_index = -1

    # ------------------------------------------------------------------ groups
    @property
    def auto_opened(self) -> set[str]:
        """The open groups the app opened by default (not the user)."""
        return self.expanded - self.user_opened

    def open_by_default(self, tree: GroupTree) -> None:
        """A model just opened: its default groups open, no choice of the user's yet."""
        self.user_opened = set()
        self.user_closed = set()
        self.expanded = set(tree.default_expanded())

    def follow(self, tree: GroupTree) -> None:
        """Show another state of the model (or another graph) as ``tree``: the groups the user
        opened stay open where they exist; the ones the app opened
        follow ``tree``'s default rule, less those the user closed."""
        groups = tree.groups   # (the user's groups came with their ancestors: expand_path)
        self.expanded = {k for k in self.user_opened if k in groups} | {
            k for k in tree.default_expanded() if k not in self.user_closed and k in groups}

    def expand(self, tree: GroupTree, key: str) -> bool:
        """The user opens ``key``, and so the groups around it."""
        return self.expand_path(tree, (key,))

    def expand_path(self, tree: GroupTree, keys) -> bool:
        """The user opens ``keys`` (e.g. the groups around a search result): they and their
        ancestors count as the user's choice from now on. True when one was closed."""
        keys = {k for k in keys if k in tree.groups}
        for k in list(keys):
            keys.update(tree.ancestors_of_group(k))
        self.user_opened |= keys
        self.user_closed -= keys
        new = keys - self.expanded
        self.expanded |= keys
        return bool(new)

    def collapse(self, tree: GroupTree, key: str) -> bool:
        """Close ``key`` and everything inside it (reopening starts collapsed)."""
        if key not in self.expanded:
            return False
        gone = {k for k in self.expanded
                if k == key or key in tree.ancestors_of_group(k)}
        self.expanded -= gone
        self.user_opened -= gone
        self.user_closed.add(key)
        return True

    def expand_all(self, tree: GroupTree) -> None:
        self.user_opened |= set(tree.groups)
        self.user_closed.clear()
        self.expanded = set(tree.groups)

    def collapse_all(self) -> None:
        self.user_closed |= self.expanded
        self.user_opened.clear()
        self.expanded = set()

    def set_expanded(self, keys) -> None:
        """Exactly ``keys`` open, as the user's choice (what was open besides is closed)."""
        keys = set(keys)
        self.user_closed = (self.user_closed | self.expanded) - keys
        self.user_opened = set(keys)
        self.expanded = set(keys)

    # ------------------------------------------------------------------ marks / highlight
    def set_highlight(self, names, kind: str = "match") -> None:
        self.highlight = {} if names is None else {n: kind for n in names}

    def set_highlight_kinds(self, kinds: dict[str, str] | None) -> None:
        """Each node its own highlight kind (a preview's dead and kept branches)."""
        self.highlight = dict(kinds or {})

    def set_marks(self, added=(), changed=(), removed=(), renamed=(),
                  old_boxes: dict[str, tuple] | None = None) -> None:
        marks = {}
        for n in changed:
            marks[n] = "changed"
        for n in added:
            marks[n] = "added"
        for n in renamed:
            marks[n] = "renamed"
        for n in removed:
            marks[n] = "removed"
        self.marks = marks
        self.ghost_boxes = dict(old_boxes or {})

    def clear_marks(self) -> None:
        self.marks.clear()
        self.ghost_boxes.clear()

    def clear(self) -> None:
        self.clear_marks()
        self.highlight.clear()
        self.hits = []
        self.hit_index = -1

    # ------------------------------------------------------------------ ghosts
    @staticmethod
    def ghost_anchors(removed_boxes: dict[str, Box], old_boxes: dict[str, Box],
                      gone: set[str]) -> dict[str, tuple[str, float, float] | None]:
        """For each removed node's old box, the nearest unit of the old layout that is not
        gone (``gone``: unit keys of removed nodes), with its old position: the ghost moves
        with it when the layout shifts."""
        survivors = [(b[0] + b[2] / 2, b[1] + b[3] / 2, k, b[0], b[1])
                     for k, b in old_boxes.items() if k not in gone]
        out: dict[str, tuple[str, float, float] | None] = {}
        for name, (x, y, w, h) in list(removed_boxes.items())[:500]:
            cx, cy = x + w / 2, y + h / 2
            best = min(survivors, key=lambda s: (s[0] - cx) ** 2 + (s[1] - cy) ** 2,
                       default=None)
            out[name] = (best[2], best[3], best[4]) if best else None
        return out

    def place_ghosts(self, new_boxes: dict[str, Box],
                     is_free: Callable[[Box], bool]) -> dict[str, tuple[str, Box]]:
        """Where each removed node's ghost goes in the new layout: moved with its anchor, then
        slid sideways (or down) to the first spot that covers no live box, group header or
        edge (``is_free``) nor another ghost. Every removed node that had a box gets one."""
        placed: dict[str, tuple[str, Box]] = {}
        taken: list[Box] = []

        def clear_of_ghosts(b: Box) -> bool:
            return all(b[0] + b[2] <= t[0] or t[0] + t[2] <= b[0] or b[1] + b[3] <= t[1]
                       or t[1] + t[3] <= b[1] for t in taken)

        items = sorted(self.ghost_boxes.items(), key=lambda kv: (kv[1][1][1], kv[1][1][0]))
        for name, entry in items:
            if self.marks.get(name) != "removed":
                continue
            op, (x, y, w, h) = entry[0], entry[1]
            anchor = entry[2] if len(entry) > 2 else None
            if anchor is not None and anchor[0] in new_boxes:
                nb = new_boxes[anchor[0]]
                x, y = x + nb[0] - anchor[1], y + nb[1] - anchor[2]
            choice = None
            for k in range(0, 9):
                for dx, dy in ((k * (w + 16), 0.0), (-k * (w + 16), 0.0),
                               (0.0, k * (h + 12))):
                    b = (x + dx, y + dy, w, h)
                    if clear_of_ghosts(b) and is_free(b):
                        choice = b
                        break
                    if k == 0:
                        break
                if choice:
                    break
            choice = choice or (x, y, w, h)
            taken.append(choice)
            placed[name] = (op, choice)
        return placed

    # ------------------------------------------------------------------ search hits
    def set_hits(self, names: list[str]) -> None:
        self.hits = list(names)
        self.hit_index = -1

    def step_hit(self, forward: bool = True) -> str | None:
        """The next (or previous) search hit, wrapping around; None without hits."""
        if not self.hits:
            return None
        if self.hit_index < 0:
            self.hit_index = 0 if forward else len(self.hits) - 1
        else:
            self.hit_index = (self.hit_index + (1 if forward else -1)) % len(self.hits)
        return self.hits[self.hit_index]

    # ------------------------------------------------------------------ what to draw
    def decorations(self, tree: GroupTree, expanded, drawn: set[str]) -> dict[str, Decoration]:
        """Unit key → what it shows, for the drawn unit keys ``drawn`` (``n:``/``g:`` keys).

        A highlighted or marked node lights its own box when drawn, and counts on every group
        box around it; a removed node no longer in the graph counts on its old group (found by
        its name)."""
        out: dict[str, Decoration] = {}

        def deco(key: str) -> Decoration:
            d = out.get(key)
            if d is None:
                d = out[key] = Decoration()
            return d

        def units_of(name: str) -> tuple[str | None, list[str]]:
            unit = tree.representative(name, expanded)
            if not unit:
                key = "/".join(name.split("/")[:-1])
                while key and key not in tree.groups:
                    key = "/".join(key.split("/")[:-1])
                return None, (list(tree.ancestors_of_group(key)) + [key] if key else [])
            own = unit if unit.startswith("n:") and unit in drawn else None
            groups = list(tree.ancestors(name))
            if unit.startswith("g:") and unit[2:] in groups:
                groups = groups[:groups.index(unit[2:]) + 1]
            return own, groups

        for name, kind in self.highlight.items():
            own, groups = units_of(name)
            if own:
                deco(own).highlight = kind
            for key in groups:
                if "g:" + key in drawn:
                    d = deco("g:" + key)
                    d.highlight = kind
                    d.highlight_count += 1
        for name, kind in self.marks.items():
            own, groups = units_of(name)
            if own:
                deco(own).mark = kind
            for key in groups:
                if "g:" + key in drawn:
                    d = deco("g:" + key)
                    d.mark_counts[kind] = d.mark_counts.get(kind, 0) + 1
        return out


def step_marks(added, changed, removed, renames: dict[str, str] | None,
               before: bool = False) -> dict[str, set[str]]:
    """The marks of one step whose delta is ``added``/``changed``/``removed``, with the step's
    renames (new name → old name): a renamed node is one "renamed" mark — on its new name in
    the graph after the step, on its old name in the graph before it (``before``) — not an
    added node plus a removed one (which would leave a ghost)."""
    added, changed, removed = set(added), set(changed), set(removed)
    pairs = {new: old for new, old in (renames or {}).items() if new in added and old in removed}
    added -= set(pairs)
    removed -= set(pairs.values())
    renamed = set(pairs.values()) if before else set(pairs)
    return {"added": added, "changed": changed - renamed, "removed": removed, "renamed": renamed}


#: Ops that route a TF1 cond's branches.
_COND_OPS = {"Switch", "RefSwitch", "Merge", "RefMerge"}


def preview_kinds(graph, matches) -> dict[str, str]:
    """Highlight kinds for a pass preview: every matched node ``preview``; for a match that
    resolves a cond (its nodes include Switch/Merge), the nodes it removes besides the Switch
    and Merge are the branch that dies (``dead``) and the nodes between its Switches and Merges
    that stay are the branch that is kept (``kept``)."""
    kinds: dict[str, str] = {}
    for m in matches:
        nodes = list(m.nodes) or [m.key]
        cond = [n for n in nodes if n in graph.nodes and graph.nodes[n].op in _COND_OPS]
        for n in nodes:
            kinds.setdefault(n, "preview")
        if not cond:
            continue
        switches = [n for n in cond if "Switch" in graph.nodes[n].op]
        merges = [n for n in cond if "Merge" in graph.nodes[n].op]
        for n in nodes:
            if n not in cond:
                kinds[n] = "dead"
        if switches and merges:
            between = set(graph.downstream(switches)) & set(graph.upstream(merges))
            for n in between - set(nodes):
                # tf.cond's pivots (switch_t / switch_f) only carry control: they go too
                if n.rsplit("/", 1)[-1] not in ("switch_t", "switch_f"):
                    kinds[n] = "kept"
    return kinds
