"""An edit's group tree derived from the tree before it (Qt-free).

A :class:`~surgeon_gui.core.viewmodel.grouping.GroupTree` of a 107k-node graph takes 1.6 s to
build; an edit that deletes one node changes a handful of its groups. :func:`derive_tree` makes
the tree of the new state from the old tree and the names the step removed, added and changed
(with the removed and changed nodes' old op and inputs), equal field by field to a fresh build:

- which nodes are weights drawn as badges is worked out again only around the touched nodes
  (an existing node whose status flips: a full build);
- the grouping decisions (cells, series blocks, numbered name blocks) are made again for every
  scope level holding a touched name, from that level's siblings and spans counted afresh, and
  must come out as before, else a full build (one pass over the names, no tree);
- paths are then unchanged but for the removed and added nodes: the drawn-node counts per path
  key decide which groups vanish (their last node moves up); a group that would appear means a
  full build;
- children lists, sizes, op histograms (in the order of each op's first node, kept per group),
  the drawn edges, the edges inside each group, signatures and repeats are patched; only the
  groups that change are copied, the rest are shared with the old tree.

:func:`derive_tree` returns None whenever it cannot promise the fresh build's result (the
caller builds one then): too big a change, a reordered node list, duplicated names, a deferred
old tree, or one of the cases above.
"""
from __future__ import annotations

import threading
import weakref
import zlib
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict

from ..model.graph import Graph, parse_input, patched_consumers
from .grouping import (MIN_SIBLINGS_FOR_BLOCKS, _MAYBE_HIDDEN, _READ_OPS, Badge, Group, GroupTree,
                       VisibleEdge, tensor_label, _Spans, _step, _virtual_level,
                       badge_name, format_shape, output_info, path_entries)

#: Up to this many touched names (or an eighth of the graph, whichever is more), an edit's tree
#: is derived; more is a pass, built afresh.
MAX_TOUCHED = 256


def wiring_before(delta, forward: bool) -> dict[str, tuple[str, list[str]]]:
    """(op, inputs) of the nodes a move along ``delta`` removes or changes, as they were before
    it (``forward``: the step applied or redone; else undone): what :func:`derive_tree` needs
    of the old state. Parses just those nodes' stored versions."""
    from ..history.delta import _load
    from ..model.graph import NodeDef
    stored = delta.old_nodes if forward else delta.new_nodes
    gone = delta.removed if forward else delta.added
    out = {}
    for name in set(gone) | set(delta.changed):
        node = NodeDef.FromString(_load(stored[name]))
        out[name] = (node.op, list(node.input))
    return out


#: Why the last :func:`derive_tree` call gave None ("" when it derived the tree).
last_fallback = ""


def _no(why: str) -> None:
    global last_fallback
    last_fallback = why
    return None


def derive_tree(old: GroupTree, graph: Graph, removed, added, changed,
                old_wiring: dict[str, tuple[str, list[str]]],
                reordered: bool = False) -> GroupTree | None:
    """The group tree of ``graph`` (the state after a change) from ``old`` (the tree of the
    state before it): ``removed``/``added``/``changed`` name the nodes the change removed,
    added and changed; ``old_wiring`` gives (op, inputs) of every removed and changed node
    before it (:func:`wiring_before`); ``reordered``: the nodes both states have changed their
    order. None when only a full build gives the right tree."""
    global last_fallback
    last_fallback = ""
    try:
        return _derive(old, graph, set(removed), set(added), set(changed), old_wiring,
                       reordered)
    except (KeyError, IndexError, ValueError) as e:   # an index out of step: never a wrong tree
        return _no(f"{type(e).__name__}: {e}")


def _derive(old: GroupTree, graph: Graph, R: set, A: set, C: set, old_wiring: dict,
            reordered: bool) -> GroupTree | None:
    if reordered or old.graph is None or getattr(old, "_counted", None) is None \
            or old._badges is None or old._hidden_groups_made is None:
        return _no("the old tree is deferred, graphless or reordered")
    nodes, ops_old = graph.nodes, old.op_of
    if graph._duplicates or len(nodes) != len(graph.graph_def.node):
        return _no("duplicated names")
    touched_n = len(R) + len(A) + len(C)
    if not touched_n or touched_n > max(MAX_TOUCHED, len(nodes) // 8):
        return _no("too big a change")
    if any(n not in ops_old or n in nodes for n in R) or \
            any(n in ops_old or n not in nodes for n in A) or \
            any(n not in ops_old or n not in nodes for n in C) or \
            any(n not in old_wiring for n in R | C):
        return _no("the names do not match the trees")
    if graph._ops is None and len(nodes) == len(ops_old) - len(R) + len(A):
        # the new index's op map from the old one (else it reads every NodeDef's op)
        carried = dict(zip(graph.order, map(ops_old.get, graph.order)))
        for n in A | C:
            carried[n] = nodes[n].op
        if None not in carried.values():
            graph._ops = carried
    ops_new = graph.ops
    old_order = old.graph.order
    if any(n not in old_order for n in R | C):
        return _no("the old index does not know a touched node")
    order = graph.order
    show = old.show_constants
    _carry_consumers(old.graph, graph, R, A, C, old_wiring)

    # ---------------------------------------------------------------- weights (badges)
    hidden_old = old.hidden
    touched = R | A | C
    for n in R | C:
        touched.update(parse_input(t).node for t in old_wiring[n][1])
    for n in A | C:
        touched.update(parse_input(t).node for t in nodes[n].input)
    for n in list(touched):
        c = hidden_old.get(n)
        if c is not None and c != n:
            touched.add(c)

    def const_hidden(k: str) -> bool:
        return ops_new.get(k) == "Const" and not nodes[k].input and bool(graph.consumers(k))

    # a read's status follows its Const's: the reads of the touched nodes are looked at too
    for n in list(touched):
        if n in nodes:
            touched.update(c for c, _, _ in graph.consumers(n) if ops_new[c] in _READ_OPS)

    hidden = dict(hidden_old)
    for n in R:
        hidden.pop(n, None)
    shown, hid = set(), set()   # weights drawn as boxes now, boxes that became weights
    for k in touched:
        if k not in nodes:
            continue
        op = ops_new[k]
        now = None
        if not show and op in _MAYBE_HIDDEN:
            if op == "Const":
                now = k if const_hidden(k) else None
            elif op in _READ_OPS:
                inputs = nodes[k].input
                if len(inputs) == 1:
                    ref = parse_input(inputs[0])
                    if not ref.control and ref.node in nodes and const_hidden(ref.node):
                        now = ref.node
        if k in A:
            if now is not None:
                hidden[k] = now
        elif now != hidden_old.get(k):
            if now is None:        # (its readers were deleted: a Const left alone)
                del hidden[k]
                shown.add(k)
            else:
                if hidden_old.get(k) is None:
                    hid.add(k)
                hidden[k] = now    # (else a read of another Const now)
    drawn_old = old._ancestors
    # drawn nodes that go and come, as far as groups and boxes are concerned
    R_drawn = [n for n in R if n in drawn_old] + sorted(hid)
    A_drawn = [n for n in A if n not in hidden] + sorted(shown)

    # ---------------------------------------------------------------- grouping decisions
    levels = set()
    for n in touched & (R | A | C):
        segs = n.split("/")
        for d in range(len(segs)):
            levels.add(tuple(segs[:d]))
    # a level with fewer than six children keeps no decision as long as none come (cells
    # need twelve): not looked at again
    narrow = old._narrow
    grown = set()
    for n in A:
        segs = n.split("/")
        grown.update(tuple(segs[:d]) for d in range(len(segs)))
    levels = {lv for lv in levels if lv not in narrow or lv in grown}
    if grown & narrow:
        narrow = narrow - grown
    new = GroupTree.__new__(GroupTree)
    new.graph = graph
    new.show_constants = show
    cells, virtual = dict(old._cells), dict(old._virtual)
    redecided = []   # (level, its spans, segments decided otherwise)
    stats = _level_stats(ops_new, hidden, levels)
    for level, (kids, spans, all_segs, sub) in stats.items():
        if len(kids) < MIN_SIBLINGS_FOR_BLOCKS and len(level) <= 2 and level not in narrow:
            if narrow is old._narrow:
                narrow = set(narrow)
            narrow.add(level)
        if not kids:    # the level is gone: its decision with it
            cells.pop(level, None)
            virtual.pop(level, None)
            continue
        found = new._cell_level(level, kids, spans)
        chains = None if found is not None else (_virtual_level(level, kids, spans) or None)
        was_c, was_v = old._cells.get(level), old._virtual.get(level)
        if found == was_c and chains == was_v:
            continue
        # (a segment no node is under any more: its decision is moot)
        segs = {s for s in kids
                if _seg_decision(was_c, was_v, s) != _seg_decision(found, chains, s)}
        if segs and A:   # (a segment of added nodes only: they are placed by the new one)
            head = "/".join(level) + "/" if level else ""
            came = Counter(n[len(head):].partition("/")[0] for n in A if n.startswith(head))
            if came:
                have = Counter(all_segs)
                segs = {s for s in segs if came.get(s) != have[s]}
        redecided.append((level, segs, kids, sub))
        for d, v in ((cells, found), (virtual, chains)):
            if v is None:
                d.pop(level, None)
            else:
                d[level] = v
    # nodes whose groups change with a level's decision (a block of bn_a and bn_b that is no
    # block once the level has five siblings): taken out of their old groups and put into
    # their new ones, as if deleted and added again
    M: set[str] = set()
    for level, segs, kids, sub in redecided:
        head = "/".join(level) + "/" if level else ""
        for decisions in ((old._cells, old._virtual), (cells, virtual)):
            base = path_entries("/".join(level + ("\0",)), *decisions)[1]

            def seg_keys(seg: str) -> set[str]:
                out: list = []
                _step(*decisions, out, base, level, seg, head, True)
                return {k for k, _, _, _ in out}
            changing = set().union(*map(seg_keys, segs))
            if changing and any(seg_keys(k) & changing for k in kids if k not in segs):
                return _no("a level's grouping changed (a block shared with others)")
        cut = len(head)
        M.update(n for n in sub if n[cut:].partition("/")[0] in segs and n not in A)
    old_groups = old.groups
    names = None
    for _ in range(3):
        if len(M) > 4 * MAX_TOUCHED:
            return _no("a level's grouping changed (too many nodes)")
        gone_paths = {n: path_entries(n, old._cells, old._virtual)[0] for n in R | hid | M}
        come_paths = {n: path_entries(n, cells, virtual)[0] for n in A | shown | hid | M}
        gone_drawn = R_drawn + [n for n in M if n in drawn_old and n not in hid]
        come_drawn = A_drawn + [n for n in M if n not in hidden and n not in shown]
        counted = Counter(old._counted)
        keys = set()
        for n in gone_drawn:
            for k, _, _, _ in gone_paths[n]:
                keys.add(k)
                left = counted[k] - 1
                if left > 0:
                    counted[k] = left
                else:
                    del counted[k]
        for n in come_drawn:
            for k, _, _, _ in come_paths[n]:
                keys.add(k)
                counted[k] += 1
        created = {k for k in keys if k not in old_groups and counted.get(k, 0) >= 2}
        # a group an added node (or a weight drawn now) makes (a deleted group back): the
        # nodes of its scope that were there already (its weights, a node hoisted out of it)
        # move in
        extra: set[str] = set()
        for n in (A | shown) - M:
            for k, label, is_virtual, prefix in come_paths.get(n, ()):
                if k in created:
                    if names is None:
                        names = list(ops_new)
                    extra.update(_members_by_name(names, label, is_virtual, prefix, cells,
                                                  virtual))
        extra -= A | M
        if not extra:
            break
        M |= extra
    else:
        return _no("a new group")
    dropped = {k for k in keys if k in old_groups and counted.get(k, 0) < 2}

    groups = dict(old_groups)
    for k in dropped:
        del groups[k]
    made: dict[str, object] = {}
    for n in sorted(come_drawn, key=order.__getitem__):   # (parents before children)
        parent = ""
        for k, label, is_virtual, prefix in come_paths[n]:
            if k in created and k not in made:
                made[k] = groups[k] = Group(k, label, parent, is_virtual, prefix)
            if k in groups:
                parent = k
    mine: dict[str, object] = dict(made)    # groups copied (or made) for this tree

    def own(k: str):
        g = mine.get(k)
        if g is None:
            g = mine[k] = _copy_group(groups[k])
            groups[k] = g
        return g

    # hidden nodes: the groups their names put them in
    hidden_groups = dict(old._hidden_groups_made)
    for n in R | shown:
        hidden_groups.pop(n, None)
    if dropped:
        for h, tup in hidden_groups.items():
            if not dropped.isdisjoint(tup):
                hidden_groups[h] = tuple(k for k in tup if k not in dropped)
    for n in A | hid | M:
        if n in hidden:
            hidden_groups[n] = tuple(k for k, _, _, _ in come_paths[n] if k in groups)

    # ---------------------------------------------------------------- drawn nodes' places
    parent_of, node_label = dict(old.parent_of), dict(old.node_label)
    ancestors = dict(drawn_old)
    containers: dict[str, list[str]] = {}      # container ("" = top) → its new children
    gone_units: dict[str, set[str]] = defaultdict(set)

    def kids_of(k: str) -> list[str]:
        lst = containers.get(k)
        if lst is None:
            lst = containers[k] = list(groups[k].children if k else old.root_children)
        return lst

    for n in gone_drawn:
        p = old.parent_of[n]
        if p not in dropped:
            gone_units[p].add("n:" + n)
        del parent_of[n], node_label[n], ancestors[n]
    moved: list[tuple[str, tuple]] = []
    for k in dropped:
        up = old_groups[k].parent
        while up in dropped:
            up = old_groups[up].parent
        gone_units[up].add("g:" + k)
        if old_groups[k].parent in dropped:
            continue   # (walked from the outermost dissolved group)
        stack = [k]
        while stack:   # the drawn nodes left inside (one at most)
            for u in old_groups[stack.pop()].children:
                if u[0] == "g":
                    stack.append(u[2:])
                elif u[2:] not in R and u[2:] not in hid and u[2:] not in M:
                    x = u[2:]
                    moved.append((x, tuple(g for g in drawn_old[x] if g not in dropped)))
    for n in come_drawn:
        moved.append((n, tuple(k for k, _, _, _ in come_paths[n] if k in groups)))
    for k, g in made.items():
        kids_of(g.parent).append("g:" + k)
    for p, units in gone_units.items():
        lst = kids_of(p)
        lst[:] = [u for u in lst if u not in units]
    for x, chain in moved:
        p = chain[-1] if chain else ""
        parent_of[x] = p
        ancestors[x] = chain
        prefix = groups[p].prefix if p else ""
        if prefix.endswith("_"):  # virtual block: keep the whole layer name
            prefix = prefix[:prefix.rfind("/") + 1]
        node_label[x] = x[len(prefix):] if x.startswith(prefix) else x
        kids_of(p).append("n:" + x)

    def first_pos(u: str) -> int:
        while u[0] == "g":
            k = u[2:]
            lst = containers.get(k)
            u = (lst if lst is not None else groups[k].children)[0]
        return order[u[2:]]

    def depth(k: str) -> int:
        d = 0
        while k:
            k = groups[k].parent
            d += 1
        return d
    depth = {k: depth(k) for k in containers}
    for k in sorted(containers, key=depth.__getitem__, reverse=True):  # inner ones first
        lst = containers[k]
        lst.sort(key=first_pos)
        if k:
            own(k).children = lst
    root = containers.get("", old.root_children)

    # ---------------------------------------------------------------- sizes, histograms
    op_firsts = dict(old._op_firsts)
    for k in dropped:
        op_firsts.pop(k, None)
    work: dict[str, dict[str, list]] = {}

    def ops_of(k: str) -> dict[str, list]:
        w = work.get(k)
        if w is None:
            g = groups[k]
            w = work[k] = {op: [n, f] for (op, n), f in zip(g.ops.items(),
                                                            op_firsts.get(k, ()))}
        return w

    rescan: list[tuple[str, str, int]] = []   # (group, op, where to look from)

    def take(k: str, n: str, op: str) -> None:
        w = ops_of(k)
        e = w[op]
        e[0] -= 1
        if not e[0]:
            del w[op]
        elif e[1] == n:   # its first node of that op: the next one is found below
            e[1] = None
            rescan.append((k, op, max(0, old_order[n] - len(R))))

    gave: list[tuple[str, str, str]] = []
    for n in R | M:
        drawn = n in drawn_old
        chain = drawn_old[n] if drawn else old._hidden_groups_made.get(n, ())
        for k in chain:
            if k in dropped:
                continue
            g = own(k)
            g.size -= 1
            if drawn:
                g.visible_size -= 1
            take(k, n, ops_old[n])
    for n in shown - M:
        for k in ancestors[n]:
            own(k).visible_size += 1
    for n in hid - M:
        for k in drawn_old[n]:
            if k not in dropped:
                own(k).visible_size -= 1
    for n in C - M:
        if ops_old[n] != ops_new[n]:
            chain = ancestors[n] if n in ancestors else hidden_groups.get(n, ())
            for k in chain:
                take(k, n, ops_old[n])
                gave.append((k, n, ops_new[n]))
    for n in A | M:
        chain = ancestors[n] if n in ancestors else hidden_groups.get(n, ())
        for k in chain:
            g = own(k)
            g.size += 1
            if n in ancestors:
                g.visible_size += 1
            gave.append((k, n, ops_new[n]))
    if rescan:
        if names is None:
            names = list(ops_new)
        for k, op, i in rescan:
            e = work[k].get(op)
            if e is None or e[1] is not None:
                continue
            while True:
                m = names[i]
                if ops_new[m] == op and k in (ancestors[m] if m in ancestors
                                              else hidden_groups.get(m, ())):
                    break
                i += 1
            e[1] = m
    for k, n, op in gave:
        w = ops_of(k)
        e = w.get(op)
        if e is None:
            w[op] = [1, n]
        else:
            e[0] += 1
            if e[1] is None or order[n] < order[e[1]]:
                e[1] = n
    for k, w in work.items():
        items = sorted(w.items(), key=lambda kv: order[kv[1][1]])
        g = own(k)
        g.ops = Counter({op: c for op, (c, _) in items})
        op_firsts[k] = tuple([f for _, (_, f) in items])

    # ---------------------------------------------------------------- drawn edges
    redo = R | A | C | shown | hid | M
    for n in shown | hid | M | A | R:   # (R: readers left with a dangling input)
        redo.update(c for c, _, _ in graph.consumers(n))
    old_edges = old._edges
    old_key = lambda e: old_order[e[3]]
    cuts = []
    for d in redo:
        if d in drawn_old:
            p = old_order[d]
            lo = bisect_left(old_edges, p, key=old_key)
            hi = bisect_right(old_edges, p, lo=lo, key=old_key)
            if hi > lo:
                cuts.append((lo, hi))
    cuts.sort()
    gone_edges = []
    edges = []
    at = 0
    for lo, hi in cuts:
        edges += old_edges[at:lo]
        gone_edges += old_edges[lo:hi]
        at = hi
    edges += old_edges[at:]
    come_edges = []
    new_key = lambda e: order[e[3]]
    for d in sorted((d for d in redo if d in nodes and d not in hidden), key=order.__getitem__):
        run = []
        for ref in map(parse_input, nodes[d].input):
            src = ref.node
            if src in nodes and src not in hidden:
                run.append((src, ref.port, ref.control, d))
        if run:
            i = bisect_left(edges, order[d], key=new_key)
            edges[i:i] = run
            come_edges += run
    internal = Counter(old._internal)
    for k in dropped:
        internal.pop(k, None)
    for lst, chains, step in ((gone_edges, drawn_old, -1), (come_edges, ancestors, 1)):
        for s, _, _, d in lst:
            for k1, k2 in zip(chains[s], chains[d]):
                if k1 != k2:
                    break
                if k1 in dropped:
                    continue
                n = internal[k1] + step
                if n:
                    internal[k1] = n
                else:
                    del internal[k1]
                own(k1)

    # ---------------------------------------------------------------- signatures, repeats
    by_sig = old._by_sig
    if by_sig is None:
        by_sig = defaultdict(set)
        for k, g in old_groups.items():
            if g.visible_size >= 3:
                by_sig[g.signature].add(k)
        old._by_sig = by_sig = dict(by_sig)
    by_sig = dict(by_sig)
    sig_count = Counter(old._sig_count)
    copied_sets: set[int] = set()

    def members(s: int) -> set:
        if s not in copied_sets:
            by_sig[s] = set(by_sig.get(s, ()))
            copied_sets.add(s)
        return by_sig[s]

    hit: set[int] = set()
    for k in dropped:
        g = old_groups[k]
        if g.visible_size >= 3:
            sig_count[g.signature] -= 1
            members(g.signature).discard(k)
            hit.add(g.signature)
    for k, g in list(mine.items()):
        before = old_groups.get(k)
        ops = sorted(g.ops.items())
        g.signature = zlib.crc32(repr((ops, internal[k])).encode())
        if before is not None and before.visible_size >= 3:
            sig_count[before.signature] -= 1
            members(before.signature).discard(k)
            hit.add(before.signature)
        if g.visible_size >= 3:
            sig_count[g.signature] += 1
            members(g.signature).add(k)
            hit.add(g.signature)
        else:
            g.repeats = 1
    for s in hit:
        n = sig_count.get(s, 0)
        if n <= 0:
            sig_count.pop(s, None)
            by_sig.pop(s, None)
            continue
        for k in by_sig[s]:
            if groups[k].repeats != n:
                own(k).repeats = n

    # ---------------------------------------------------------------- badges
    badge_owner = dict(old.badge_owner)
    for n in R | shown:
        badge_owner.pop(n, None)
    weights = {k for k in touched if k in hidden}
    weights |= {hidden[k] for k in weights}
    weights |= {hidden_old[k] for k in touched if hidden_old.get(k) in hidden}
    affected = set()
    for h in touched:
        affected.update(old.badge_owner.get(h, ()))

    def direct_owners(h: str) -> list[str]:
        owners = []
        for c, _, ref in graph.consumers(h):
            if c in hidden or ref[2]:
                continue
            if c not in owners:
                owners.append(c)
        return owners

    for h in weights:
        if hidden[h] != h:
            badge_owner[h] = direct_owners(h)
    for c in {hidden[h] for h in weights}:
        own_list = direct_owners(c)
        reads = sorted({r for r, _, _ in graph.consumers(c) if r != c and hidden.get(r) == c},
                       key=order.__getitem__)
        for r in reads:
            own_list.extend(o for o in badge_owner.get(r, ()) if o not in own_list)
        badge_owner[c] = own_list
    for h in weights:
        affected.update(badge_owner.get(h, ()))
    affected |= {n for n in A | C | shown if n not in hidden}
    affected -= R
    badges = defaultdict(list, old._badges)
    for n in R:
        badges.pop(n, None)
    info_of: dict[str, tuple] = {}
    for o in affected:
        if o not in nodes or o in hidden:
            badges.pop(o, None)
            continue
        feeds = []
        seen = set()
        for i, text in enumerate(nodes[o].input):
            ref = parse_input(text)
            h = ref.node
            if ref.control or h in seen or h not in hidden:
                continue
            seen.add(h)
            feeds.append(((0 if hidden[h] == h else 1, order[h]), h, i))
        if not feeds:
            badges.pop(o, None)
            continue
        feeds.sort()
        out = []
        for _, h, i in feeds:
            const = hidden[h]
            info = info_of.get(h)
            if info is None:
                dtype, shape = output_info(nodes[const])
                info = info_of[h] = (format_shape(shape), shape, dtype)
            short = badge_name(const, ops_new.get(o, ""), i)
            out.append(Badge(h, const, f"{short} {info[0]}", info[1], info[2]))
        badges[o] = out

    # ---------------------------------------------------------------- the new tree
    new.groups = groups
    new.parent_of, new.node_label, new.badge_owner = parent_of, node_label, badge_owner
    new._badges, new._hidden_groups_made = badges, hidden_groups
    new._complete_lock = threading.Lock()
    new.root_children = root
    new.op_of = ops_new
    new._ancestors = ancestors
    new.hidden = hidden
    new._edges = edges
    new._feeds = new._made_badges = new._path_of = None
    new._badge_info, new._const_nodes = {}, {}
    new._cells, new._virtual, new._counted = cells, virtual, counted
    new._narrow = narrow
    new._op_firsts = op_firsts
    new._internal, new._sig_count, new._by_sig = internal, sig_count, by_sig
    #: what the visible edges of this tree are derived from (see :func:`derive_visible`)
    new._came_from = (weakref.ref(old), frozenset(R), frozenset(A), frozenset(C),
                      frozenset(redo), frozenset(x for x, _ in moved) | shown | hid,
                      frozenset(made), frozenset(dropped))
    return new


def derive_visible(old: GroupTree, new: GroupTree, old_edges: list, expanded,
                   old_expanded=None) -> list | None:
    """The visible edges of ``new`` (a tree :func:`derive_tree` made from ``old``) under
    ``expanded``, from ``old_edges`` (``old.visible_graph(old_expanded)``; ``old_expanded``,
    by default ``expanded``, may also hold groups the change dissolved), equal to
    ``new.visible_graph(expanded)``. The edges into a unit are made from its nodes' inputs
    alone; so the units the change touched (a node whose inputs, sources or groups changed,
    and a group it made or dissolved) get theirs made again and put where a fresh build puts
    them (in the order of each edge's first graph edge), the others are copied (the layout
    writes routes into them, and the old ones belong to the old state's placement). None when
    a touched node is inside a group that stays closed (its edges are merged with others'):
    build them afresh then."""
    came = getattr(new, "_came_from", None)
    if came is None or came[0]() is not old or new.graph is None:
        return None
    _, R, A, C, redo, moved, made, dropped = came
    if old_expanded is None:
        old_expanded = expanded
    if any(k not in old_expanded for k in expanded) or \
            any(k in new.groups and k not in expanded for k in old_expanded):
        return None
    graph = new.graph
    blocks = set(redo) | moved
    for n in C | moved:   # (a source's shape label is read from its NodeDef; a moved
        blocks.update(c for c, _, _ in graph.consumers(n))   # source, its unit)
    old_anc, new_anc = old._ancestors, new._ancestors
    old_rep: dict[str, str] = {}
    new_rep: dict[str, str] = {}

    def rep_in(tree, cache, opened, n: str) -> str:
        r = cache.get(n)
        if r is None:
            r = cache[n] = tree.representative(n, opened)
        return r
    gone: set[str] = set()
    targets: dict[str, list[str]] = defaultdict(list)
    for d in blocks | R:
        if d in old_anc:
            r = rep_in(old, old_rep, old_expanded, d)
            if r != "n:" + d and r[2:] not in dropped:
                return None
            gone.add(r)
        if d in new_anc:
            r = rep_in(new, new_rep, expanded, d)
            if r != "n:" + d and r[2:] not in made:
                return None
            targets[r].append(d)
    make = VisibleEdge
    edges = [make(e.src, e.dst, e.control, e.count, e.label, e.pairs, e.route, e.unrouted)
             for e in old_edges if e.dst not in gone]
    order, nodes = graph.order, graph.nodes
    tree_edges = new._edges
    run_key = lambda e: order[e[3]]
    vis_key = lambda e: order[e.pairs[0][1]]
    for dst, members in targets.items():
        agg: dict[str, VisibleEdge] = {}
        for d in sorted(members, key=order.__getitem__):
            p = order[d]
            lo = bisect_left(tree_edges, p, key=run_key)
            hi = bisect_right(tree_edges, p, lo=lo, key=run_key)
            for s, port, control, _ in tree_edges[lo:hi]:
                src = rep_in(new, new_rep, expanded, s)
                if src == dst:
                    continue
                e = agg.get(src)
                if e is None:
                    label = "" if control else tensor_label(nodes[s], port)
                    e = agg[src] = VisibleEdge(src, dst, control, 0, label)
                elif e.control and not control:
                    e.control = False
                    e.label = tensor_label(nodes[s], port)
                e.count += 1
                if len(e.pairs) < 50:
                    e.pairs.append((s, d))
        for e in agg.values():   # (after any of the same first edge's node: in made order)
            edges.insert(bisect_right(edges, order[e.pairs[0][1]], key=vis_key), e)
    return edges


def _members_by_name(names: list[str], label: str, is_virtual: bool, prefix: str,
                     cells: dict, virtual: dict) -> list[str]:
    """The nodes whose path holds a group (its entry: label, virtual, prefix) under the
    levels' decisions ``cells``/``virtual``: a scope's, those under its prefix; a cell's or
    series block's, those under the segments of its level in it; a numbered name block's,
    those under the segments whose blocks include it."""
    if not is_virtual:
        return [m for m in names if m.startswith(prefix)]
    if prefix.endswith("/") or not prefix:    # a cell or a block of a series
        real = prefix
        level = tuple(real[:-1].split("/")) if real else ()
        segs = {s for s, c in cells.get(level, {}).items() if c == label}
    else:
        real = prefix[:prefix.rfind("/") + 1]
        level = tuple(real[:-1].split("/")) if real else ()
        segs = {s for s, chain in virtual.get(level, {}).items() if label in chain}
    cut = len(real)
    return [m for m in names if m.startswith(real) and m[cut:].partition("/")[0] in segs]


def _copy_group(g):
    new = object.__new__(type(g))
    new.__dict__.update(g.__dict__)
    return new


def _carry_consumers(old: Graph, graph: Graph, R: set, A: set, C: set,
                     old_wiring: dict) -> None:
    """Give ``graph`` (the new state's index, made afresh by the edit) the consumer index of
    ``old`` patched with the change, as :meth:`Graph.updated` patches it for undo and redo:
    the derivation asks who reads a few nodes, and building the index reads every node's
    inputs (0.24 s on the 53k-node graph). Nothing when ``graph`` has one or ``old`` none."""
    cons = old._consumers
    if graph._consumers is not None or cons is None:
        return
    nodes = graph.nodes
    graph._consumers = patched_consumers(cons, R, A, C, lambda n: old_wiring[n][1],
                                         lambda n: nodes[n].input, graph.order)


def _seg_decision(cells_l: dict | None, virtual_l: dict | None, seg: str) -> tuple:
    """What one level's decision does to segment ``seg``: (its cell or block, its name
    blocks)."""
    return ((cells_l or {}).get(seg), tuple((virtual_l or {}).get(seg, ())))


def _level_stats(ops: dict[str, str], hidden: dict, levels: set) -> dict:
    """Per scope level (a tuple of segments): its sibling segments in order of first
    appearance (every node under it) and their spans among its drawn nodes (a
    :class:`~surgeon_gui.core.viewmodel.grouping._Spans`), as ``_build_groups`` counts them.
    One filtered list per level (outer levels first: each inner one filters its parent's),
    the counting done by comprehensions; spans when first looked at."""
    names = list(ops)
    out = {}
    under: dict[tuple, list[str]] = {(): names}
    for level in sorted(levels, key=len):
        head = "/".join(level) + "/" if level else ""
        if level:
            up = under.get(level[:-1])
            if up is None:
                up = names
            sub = under[level] = [n for n in up if n.startswith(head)]
            cut = len(head)
            segs = [n[cut:].partition("/")[0] for n in sub]
        else:
            sub = names
            segs = [n.partition("/")[0] for n in names]
        kids = dict.fromkeys(segs)
        out[level] = (kids, _LazySpans(segs, sub, hidden, head), segs, sub)
    return out


class _LazySpans(_Spans):
    """A level's spans (see ``_Spans``), counted when first looked at: most levels' decisions
    need none (stage_1…stage_200: no numbered blocks, one kind of layer)."""
    __slots__ = ("_args", "_made")

    def __init__(self, segs: list[str], sub: list[str], hidden: dict, head: str):
        self._args = (segs, sub, hidden, head)
        self._made = None

    @property
    def by_path(self) -> dict[str, list[int]]:
        if self._made is None:
            segs, sub, hidden, head = self._args
            drawn = [s for s, n in zip(segs, sub) if n not in hidden] if hidden else segs
            count = Counter(drawn)
            last = {s: i for i, s in enumerate(drawn)}
            first = {s: i for i, s in zip(range(len(drawn) - 1, -1, -1), reversed(drawn))}
            self._made = {head + s: [first[s], last[s], n] for s, n in count.items()}
        return self._made


def derive_for_change(old: GroupTree, graph: Graph, change) -> GroupTree | None:
    """:func:`derive_tree` for a document's :class:`~surgeon_gui.core.history.document.
    GraphChange` of one step (taken, redone or undone) from ``old``, the tree of the state
    before it; None when the change is not one step or the tree must be built afresh."""
    delta = getattr(change, "delta", None)
    if delta is None or change.kind not in ("apply", "undo") or delta.old_full is not None \
            or delta.old_fields or delta.new_fields:
        return _no("not one step of nodes")
    forward = change.kind == "apply"
    if len(delta.removed) + len(delta.added) + len(delta.changed) > \
            max(MAX_TOUCHED, len(graph.nodes) // 8):
        return _no("too big a change")
    removed, added = (delta.removed, delta.added) if forward else (delta.added, delta.removed)
    return derive_tree(old, graph, removed, added, delta.changed, wiring_before(delta, forward),
                       reordered=delta.old_order is not None)
