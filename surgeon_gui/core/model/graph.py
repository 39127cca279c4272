"""The graph model: an index over a ``GraphDef`` that every pass, view and command shares.

A :class:`Graph` wraps a ``tf.compat.v1.GraphDef`` protobuf and indexes it: node by name,
producers and consumers (data and control ``^`` inputs, output ports ``name:1``), the graph's
inputs (Placeholders) and outputs (sinks, or as given), and a networkx view.

The index never decodes tensor contents: a Const's ``tensor_content`` stays inside the protobuf
until a pass or the inspector asks for it (:func:`const_value`).

No TensorFlow import: the protobuf classes come from :mod:`.protos` (TensorFlow's own classes,
imported without TensorFlow's runtime), and the runtime is imported lazily only where a graph is
run or a value decoded.
"""
from __future__ import annotations

import gc
from collections import defaultdict, deque
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator, NamedTuple

from .protos import graph_pb2, node_def_pb2, types_pb2

GraphDef = graph_pb2.GraphDef
NodeDef = node_def_pb2.NodeDef

#: Ops that feed a graph.
INPUT_OPS = frozenset({"Placeholder", "PlaceholderWithDefault", "PlaceholderV2"})
#: Ops with no data output worth calling a graph output.
NO_OUTPUT_OPS = frozenset({"NoOp", "Assert", "SaveV2", "RestoreV2", "Print", "PrintV2",
                           "AssignVariableOp", "Assign", "AssignAdd", "AssignSub"})
#: Ops that make a graph impossible to sort topologically on purpose (v1 while loops).
LOOP_BACK_OPS = frozenset({"NextIteration", "RefNextIteration"})


@contextmanager
def gc_paused():
    """No cyclic garbage collection inside (for loops that make many small containers and no
    cycles); restores the collector's state after.

    What lives when the block ends is frozen (``gc.freeze``) before the collector is back on:
    else everything made inside is in the young generation, and the first young collection
    after it walks it all in one C call holding the GIL (after an index of the 107k-node graph
    was built on a worker, young collections of 40-145 ms in which the GUI thread could not
    run). A frozen object is still freed when its last reference goes; only reference cycles
    among frozen objects wait (until ``gc.unfreeze``)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


class GraphError(Exception):
    """A problem with a graph or a model file, phrased for the user.

    ``source`` names the file (or "graph") and ``nodes`` the nodes concerned, so a GUI can
    point at them.
    """

    def __init__(self, problem: str, source: str | None = None, nodes: Iterable[str] = ()):
        self.problem = problem
        self.source = source
        self.nodes = list(nodes)
        super().__init__(f"{source}: {problem}" if source else problem)


class InputRef(NamedTuple):
    """One entry of ``NodeDef.input`` parsed: ``^a`` → (a, -1, True); ``a:1`` → (a, 1, False)."""
    node: str
    port: int
    control: bool

    def __str__(self) -> str:
        return format_input(self.node, self.port, self.control)


@lru_cache(maxsize=1 << 18)
def parse_input(text: str) -> InputRef:
    """Parse a NodeDef input string (``name``, ``name:3``, ``^name``).

    Cached: every pass parses every input of every node several times, and an ``InputRef``
    is immutable."""
    if text.startswith("^"):
        return InputRef(text[1:], -1, True)
    name, sep, port = text.rpartition(":")
    if sep and port.isdigit():
        return InputRef(name, int(port), False)
    return InputRef(text, 0, False)


def format_input(node: str, port: int = 0, control: bool = False) -> str:
    """Inverse of :func:`parse_input`."""
    if control:
        return "^" + node
    return node if port == 0 else f"{node}:{port}"


def node_of(tensor_or_input: str) -> str:
    """The node name of a tensor name (``a:0``), an input (``^a``, ``a:1``) or a node name."""
    return parse_input(tensor_or_input).node


def tensor_name(text: str) -> str:
    """``a`` → ``a:0``; ``a:1`` stays. For feeding and fetching in a session."""
    ref = parse_input(text)
    return f"{ref.node}:{max(ref.port, 0)}"


#: NodeDef wrappers made per C call by :func:`_node_list`.
NODE_LIST_SLICE = 8192


def _node_list(graph_def: GraphDef) -> list[NodeDef]:
    """``list(graph_def.node)`` a slice at a time: one call for 107k nodes makes their
    wrappers holding the GIL 40-50 ms (the GUI thread waits meanwhile when a worker loads),
    a slice of 8k about 4 ms."""
    nodes = graph_def.node
    n = len(nodes)
    if n <= NODE_LIST_SLICE:
        return list(nodes)
    out: list[NodeDef] = []
    for i in range(0, n, NODE_LIST_SLICE):
        out += nodes[i:i + NODE_LIST_SLICE]
    return out


def _share_inputs_in_order(old: "Graph", new: "Graph") -> None:
    """``new`` shares ``old``'s consumer map (same nodes in the same order, same wiring): it
    shares the map's entries in node order too (``inputs_in_order``, which the group tree's
    edges are read from; without them the tree sorts every input back into node order)."""
    kept = old.__dict__.get("inputs_in_order")
    if kept is not None and kept[0] is new._consumers:
        new.inputs_in_order = kept


@dataclass(frozen=True)
class Edge:
    """A data or control edge from ``src:port`` to input slot ``index`` of ``dst``."""
    src: str
    port: int
    dst: str
    index: int
    control: bool


def patched_consumers(cons: dict, removed: set, added: set, changed: set, old_inputs,
                      new_inputs, order: dict) -> defaultdict:
    """A copy of the consumer index ``cons`` (producer -> [(consumer, input index, ref)] in
    node order) with a change patched in: the entries of removed and changed nodes (whose
    inputs were ``old_inputs(n)``) leave, those of added and changed nodes (now
    ``new_inputs(n)``) come in, sorted by ``order``. Only the producers they touch are
    looked at; the other lists are shared with ``cons``."""
    cons = defaultdict(list, cons)
    moved = removed | added | changed
    touched: set[str] = set()   # producers whose consumer lists change
    for n in removed | changed:
        for text in old_inputs(n):
            touched.add(parse_input(text).node)
    fresh: dict[str, list[tuple[str, int, InputRef]]] = defaultdict(list)
    for n in added | changed:
        for i, text in enumerate(new_inputs(n)):
            ref = parse_input(text)
            fresh[ref.node].append((n, i, ref))
    touched.update(fresh)
    for p in touched:
        kept = [e for e in cons.get(p, ()) if e[0] not in moved]
        extra = fresh.get(p)
        if extra:
            kept += extra
            kept.sort(key=lambda e: (order[e[0]], e[1]))
        if kept:
            cons[p] = kept
        else:
            cons.pop(p, None)
    return cons


class Graph:
    """An index over a GraphDef. Treat it as read-only: passes build a new GraphDef.

    ``inputs``/``outputs`` are node names (or tensor names for multi-output nodes). When not
    given they are detected: inputs are Placeholders, outputs are nodes nothing consumes.
    """

    def __init__(self, graph_def: GraphDef, inputs: Iterable[str] | None = None,
                 outputs: Iterable[str] | None = None, validate: bool = False,
                 source: str | None = None):
        self.graph_def = graph_def
        self.source = source
        # Whole-list reads: one protobuf access per node, the dicts built in C.
        node_list = _node_list(graph_def)
        names = [n.name for n in node_list]  # (each read of a protobuf string makes a new str)
        nodes: dict[str, NodeDef] = dict(zip(names, node_list))
        #: name -> position in ``graph_def.node`` (the last one of a duplicated name); its keys
        #: are in node order.
        order: dict[str, int] = dict(zip(names, range(len(names))))
        duplicates: list[str] = []
        if len(nodes) != len(names):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    duplicates.append(name)
                seen.add(name)
        self.nodes, self.order = nodes, order
        self._duplicates = duplicates
        self._consumers: dict[str, list[tuple[str, int, InputRef]]] | None = None
        self._ops: dict[str, str] | None = None
        self._topo: dict[bool, list[str]] = {}
        #: (source, structural problems: dangling inputs, cycle), found once per index.
        self._problems: tuple[str | None, list[GraphError]] | None = None
        self._given_inputs = list(inputs) if inputs else None
        self._given_outputs = list(outputs) if outputs else None
        if validate:
            self.validate()

    # ------------------------------------------------------------------ basic access
    def __contains__(self, name: str) -> bool:
        return node_of(name) in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[NodeDef]:
        return iter(self.graph_def.node)

    def node(self, name: str) -> NodeDef:
        try:
            return self.nodes[node_of(name)]
        except KeyError:
            raise GraphError(f"no node named {node_of(name)!r}", self.source) from None

    @property
    def ops(self) -> dict[str, str]:
        """name -> op of every node, in node order (read from the protos once per index and
        kept up to date by :meth:`updated`; the group tree, the checks and the sort share it)."""
        if self._ops is None:
            nodes = self.nodes
            self._ops = dict(zip(nodes, [n.op for n in nodes.values()]))
        return self._ops

    def node_ops(self):
        """(name, op) of every node in node order, duplicates included (from :attr:`ops`, read
        once per index, unless names repeat)."""
        if self._duplicates:
            return [(n.name, n.op) for n in self.graph_def.node]
        return self.ops.items()

    def input_refs(self, name: str) -> list[InputRef]:
        return [parse_input(s) for s in self.node(name).input]

    def producers(self, name: str, control: bool | None = None) -> list[InputRef]:
        """The inputs of ``name`` (all, data only with control=False, control only with True)."""
        refs = self.input_refs(name)
        if control is None:
            return refs
        return [r for r in refs if r.control == control]

    def _build_consumers(self) -> dict[str, list[tuple[str, int, InputRef]]]:
        """name -> (consumer, input index, ref) for every input reading it, in node order
        (only names something reads; a dangling input's missing name too). Built once per
        index, kept up to date by :meth:`updated`."""
        if self._consumers is None:
            cons: dict[str, list[tuple[str, int, InputRef]]] = defaultdict(list)
            in_order: list[tuple[str, int, InputRef]] = []
            add = in_order.append
            parse = parse_input
            make = tuple.__new__   # (an InputRef made in C: its own __new__ is Python code)
            # the index's names and NodeDefs (no second read of every name from the protos),
            # unless names repeat
            listed = self.nodes.items() if len(self.nodes) == len(self.graph_def.node) \
                else ((n.name, n) for n in self.graph_def.node)
            # A tuple per input (150k on a 100k-node graph) would set off the cyclic garbage
            # collector dozens of times, each walking every object the process holds: half of
            # this build's time. Nothing here makes a cycle.
            with gc_paused():
                for name, node in listed:
                    inputs = node.input
                    if not inputs:
                        continue
                    i = 0
                    for text in inputs:
                        # a plain name (most inputs, each read once here): parse_input's
                        # result without its call and its cache
                        if ":" in text or text.startswith("^"):
                            ref = parse(text)
                        else:
                            ref = make(InputRef, (text, 0, False))
                        entry = (name, i, ref)
                        i += 1
                        cons[ref[0]].append(entry)
                        add(entry)
            self._consumers = cons
            #: the same entries in node order (then input index), with the index they belong
            #: to (the group tree's edges; valid while ``_consumers`` is that index)
            self.inputs_in_order = (cons, in_order)
        return self._consumers

    def consumers(self, name: str, port: int | None = None,
                  control: bool | None = None) -> list[tuple[str, int, InputRef]]:
        """(consumer name, input index, parsed ref) for every input that reads ``name``.

        ``port`` restricts to one output port; ``control`` to control (True) or data (False).
        """
        out = self._build_consumers().get(node_of(name), [])
        if port is not None:
            out = [c for c in out if c[2].port == port]
        if control is not None:
            out = [c for c in out if c[2].control == control]
        return out

    def consumer_names(self, name: str) -> list[str]:
        seen: dict[str, None] = {}
        for c, _, _ in self.consumers(name):
            seen[c] = None
        return list(seen)

    def edges(self) -> Iterator[Edge]:
        for node in self.graph_def.node:
            for i, text in enumerate(node.input):
                ref = parse_input(text)
                yield Edge(ref.node, ref.port, node.name, i, ref.control)

    # ------------------------------------------------------------------ inputs / outputs
    @property
    def inputs(self) -> list[str]:
        if self._given_inputs is not None:
            return list(self._given_inputs)
        return detect_inputs(self)

    @property
    def placeholders(self) -> list[str]:
        """Every Placeholder (not PlaceholderWithDefault, which has a default)."""
        return [n for n, op in self.node_ops() if op in ("Placeholder", "PlaceholderV2")]

    @property
    def outputs(self) -> list[str]:
        if self._given_outputs is not None:
            return list(self._given_outputs)
        return detect_outputs(self)

    def with_io(self, inputs=None, outputs=None) -> "Graph":
        return self.sharing_index(inputs if inputs is not None else self._given_inputs,
                                  outputs if outputs is not None else self._given_outputs,
                                  source=self.source)

    def sharing_index(self, inputs=None, outputs=None, source: str | None = None) -> "Graph":
        """A Graph of the same (unchanged) GraphDef with other inputs/outputs, reusing this
        one's index, consumers and topological order instead of building them again."""
        g = Graph.__new__(Graph)
        g.graph_def, g.source = self.graph_def, source
        # (shared, as updated() shares them: an index never changes its maps in place)
        g.nodes, g.order = self.nodes, self.order
        g._duplicates = list(self._duplicates)
        g._consumers = self._consumers
        _share_inputs_in_order(self, g)
        g._ops = self._ops
        g._topo = dict(self._topo)
        g._problems = self._problems
        g._given_inputs = list(inputs) if inputs else None
        g._given_outputs = list(outputs) if outputs else None
        return g

    def big_change(self, n_changed: int) -> bool:
        """True when changing this many nodes is better met by building the consumer index
        again when it is next asked for than by patching it (:meth:`updated`)."""
        return n_changed > max(64, len(self.nodes) // 8)

    def updated(self, removed: Iterable[str], added: Iterable[str], changed: Iterable[str],
                old: dict[str, tuple[str, list[str]]], names: list[str] | None = None,
                reordered: bool = False, inputs=None, outputs=None) -> "Graph":
        """The index of ``graph_def`` after it was edited in place, updated from this one in
        proportion to the change instead of rebuilt (undo and redo of a step on a 100k-node
        graph): ``removed``/``added``/``changed`` name the nodes; ``old`` gives (op, inputs) of
        every removed and changed node as they were before the edit (not needed when the
        change is big, see :meth:`big_change`); ``names`` is the new node
        order when nodes were added, removed or reordered (None: same order); ``reordered``
        says the nodes both states have changed their relative order. ``inputs``/``outputs``
        are the new given ones. This Graph is left as it was (a stale index of a GraphDef that
        has moved on). Equal, field by field, to ``Graph(graph_def, inputs, outputs)`` (the
        topological order and the problems are kept when the wiring did not change, else
        found again when asked); a graph with duplicate names is simply rebuilt."""
        gd = self.graph_def
        removed, added, changed = set(removed), set(added), set(changed)
        if self._duplicates:
            return Graph(gd, inputs, outputs, source=self.source)
        g = Graph.__new__(Graph)
        g.graph_def, g.source = gd, self.source
        g._duplicates = []
        g._given_inputs = list(inputs) if inputs else None
        g._given_outputs = list(outputs) if outputs else None
        if names is not None:
            # (the maps' keys stay in node order: passes iterate them)
            order = dict(zip(names, range(len(names))))
            if len(order) != len(names):
                return Graph(gd, inputs, outputs, source=self.source)
            node_list = list(gd.node)   # (the same wrapper objects: the index holds them)
            if len(node_list) != len(names):   # not the GraphDef's order: index it afresh
                return Graph(gd, inputs, outputs, source=self.source)
            nodes = dict(zip(names, node_list))
        elif removed or added:
            raise ValueError("nodes were added or removed: give the new node order")
        else:
            nodes, order = self.nodes, self.order
        g.nodes, g.order = nodes, order
        ops = self._ops
        if ops is not None:
            if names is not None:
                ops = dict(zip(names, map(ops.get, names)))
            elif changed:
                ops = dict(ops)
            for n in changed | added:
                ops[n] = nodes[n].op
        g._ops = ops
        # A big change (a pass that rewrote an eighth of the graph) costs about as much to
        # patch into the consumer index as to build it again when asked: drop it then.
        big = self.big_change(len(removed) + len(added) + len(changed))
        structural = removed or added or reordered or big
        new_wiring = {} if big else {n: (nodes[n].op, list(nodes[n].input))
                                     for n in changed | added}
        wiring_same = not structural and all(new_wiring[n] == old[n] for n in changed)
        if wiring_same:
            g._topo = dict(self._topo)
            g._problems = self._problems
        else:
            g._topo = {}
            g._problems = None
        cons = self._consumers
        if cons is None or reordered or big:
            g._consumers = None
        elif wiring_same:
            g._consumers = cons
            _share_inputs_in_order(self, g)
        else:
            g._consumers = patched_consumers(
                cons, removed, added, changed, lambda n: old[n][1],
                lambda n: new_wiring[n][1], order)
        return g

    @property
    def given_inputs(self) -> list[str] | None:
        return self._given_inputs

    @property
    def given_outputs(self) -> list[str] | None:
        return self._given_outputs

    # ------------------------------------------------------------------ algorithms
    def to_networkx(self, control: bool = True):
        """A ``networkx.MultiDiGraph`` with one node per NodeDef and one edge per input."""
        import networkx as nx
        g = nx.MultiDiGraph()
        for node in self.graph_def.node:
            g.add_node(node.name, op=node.op)
        for e in self.edges():
            if e.control and not control:
                continue
            g.add_edge(e.src, e.dst, port=e.port, index=e.index, control=e.control)
        return g

    def topological_order(self, ignore_loops: bool = True) -> list[str]:
        """A stable topological order (Kahn's algorithm, ties broken by original position).

        Back edges into v1 ``Merge`` nodes from ``NextIteration`` are ignored when
        ``ignore_loops`` so graphs with while loops still sort. Raises GraphError on a cycle.
        Computed once per Graph (like the consumer index): a pipeline asks for it in many
        passes of the same graph.
        """
        cached = self._topo.get(ignore_loops)
        if cached is None:
            cached = self._topo[ignore_loops] = self._sort(ignore_loops)
        return list(cached)

    def _sort(self, ignore_loops: bool) -> list[str]:
        import heapq
        # Over node positions (ints), from the consumer index (no second read of every
        # input): this runs on every pass of a pipeline and validates every load. A node is
        # known by its position in ``graph_def.node`` (the last one of a duplicated name),
        # which is also the tie-break.
        order = self.order
        size = len(self.graph_def.node)
        if len(order) == size:
            names: list[str | None] = list(order)
        else:
            names = [None] * size
            for n, i in order.items():
                names[i] = n
        indeg = [0] * size
        out: list[list[int] | None] = [None] * size
        skip = {order[n] for n, op in self.ops.items() if op in LOOP_BACK_OPS} \
            if ignore_loops else ()
        get = order.get
        consumers = self._build_consumers()
        with gc_paused():   # a list per producer (see _build_consumers)
            for prod, readers in consumers.items():
                src = get(prod)
                if src is None or src in skip:
                    continue
                dsts = [order[c] for c, _, _ in readers]
                out[src] = dsts
                for d in dsts:
                    indeg[d] += 1
        result: list = []
        push, pop = heapq.heappush, heapq.heappop
        if len(order) == size:
            # Kahn's algorithm taking the lowest ready position first, with the heap only for
            # what became ready behind a scan of the positions (in a graph listed mostly in
            # order, few nodes): the same order as with every ready node on the heap
            add = result.append
            heap: list[int] = []
            scan = 0
            while True:
                while scan < size and indeg[scan]:
                    scan += 1
                if heap and (scan >= size or heap[0] < scan):
                    i = pop(heap)
                elif scan < size:
                    i = scan
                    scan += 1
                else:
                    break
                add(names[i])
                succ = out[i]
                if succ is not None:
                    for m in succ:
                        d = indeg[m] - 1
                        indeg[m] = d
                        if not d and m < scan:
                            push(heap, m)
        else:  # duplicated names: only the positions the index knows
            heap = [i for i in order.values() if indeg[i] == 0]
            heapq.heapify(heap)
            while heap:
                i = pop(heap)
                result.append(names[i])
                succ = out[i]
                if succ is not None:
                    for m in succ:
                        indeg[m] -= 1
                        if indeg[m] == 0:
                            push(heap, m)
        if len(result) != len(self.nodes):
            stuck = sorted((n for n, i in order.items() if indeg[i] > 0), key=order.get)
            raise GraphError(f"the graph has a cycle through {len(stuck)} nodes, e.g. "
                             + ", ".join(stuck[:5]), self.source, stuck)
        return result

    def upstream(self, names: Iterable[str], control: bool = True) -> set[str]:
        """Every node the given nodes depend on, them included."""
        seen: set[str] = set()
        todo = deque(node_of(n) for n in names)
        while todo:
            n = todo.popleft()
            if n in seen or n not in self.nodes:
                continue
            seen.add(n)
            for text in self.nodes[n].input:
                ref = parse_input(text)
                if control or not ref.control:
                    todo.append(ref.node)
        return seen

    def downstream(self, names: Iterable[str], control: bool = True) -> set[str]:
        """Every node that depends on the given nodes, them included."""
        seen: set[str] = set()
        todo = deque(node_of(n) for n in names)
        while todo:
            n = todo.popleft()
            if n in seen:
                continue
            seen.add(n)
            for c, _, ref in self.consumers(n):
                if control or not ref.control:
                    todo.append(c)
        return seen

    # ------------------------------------------------------------------ validation
    def problems(self) -> list[GraphError]:
        """Every structural problem: duplicate names, dangling inputs, cycles (found once per
        index)."""
        found: list[GraphError] = []
        if self._duplicates:
            d = sorted(set(self._duplicates))
            found.append(GraphError(f"duplicate node names: {', '.join(d[:5])}"
                                    + (f" and {len(d) - 5} more" if len(d) > 5 else ""),
                                    self.source, d))
        if self._problems is None or self._problems[0] != self.source:
            self._problems = (self.source, self._wiring_problems())
        return found + list(self._problems[1])

    def _wiring_problems(self) -> list[GraphError]:
        nodes = self.nodes
        cons = self._build_consumers()
        if any(p not in nodes for p in cons):
            dangling = []
            for node in self.graph_def.node:
                for text in node.input:
                    if parse_input(text).node not in nodes:
                        dangling.append((node.name, text))
            desc = "; ".join(f"{n} reads {i!r}" for n, i in dangling[:5])
            return [GraphError(f"{len(dangling)} input(s) name a missing node: {desc}",
                               self.source, [n for n, _ in dangling])]
        try:
            self.topological_order()
        except GraphError as e:
            return [e]
        return []

    def validate(self) -> "Graph":
        problems = self.problems()
        if problems:
            first = problems[0]
            if len(problems) > 1:
                raise GraphError(first.problem + " (and: "
                                 + "; ".join(p.problem for p in problems[1:]) + ")",
                                 self.source, [n for p in problems for n in p.nodes])
            raise first
        return self

    # ------------------------------------------------------------------ statistics
    def op_histogram(self) -> dict[str, int]:
        from collections import Counter
        hist = Counter(op for _, op in self.node_ops())
        return dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0])))

    def parameter_count(self) -> int:
        """Elements in every float Const (weights); shapes only, no decoding."""
        total = 0
        for node in self.graph_def.node:
            if node.op == "Const":
                t = node.attr["value"].tensor
                if t.dtype in FLOAT_DTYPES:
                    total += shape_size(t.tensor_shape)
        return total

    def function_names(self) -> list[str]:
        return [f.signature.name for f in self.graph_def.library.function]


FLOAT_DTYPES = frozenset({types_pb2.DT_FLOAT, types_pb2.DT_HALF, types_pb2.DT_DOUBLE,
                          types_pb2.DT_BFLOAT16})


def copy_without_nodes(gd: GraphDef) -> GraphDef:
    """A copy of everything in ``gd`` but its nodes (versions, library, ...)."""
    out = GraphDef()
    for field, value in gd.ListFields():
        if field.name == "node":
            continue
        if field.message_type is not None:
            getattr(out, field.name).CopyFrom(value)
        else:
            setattr(out, field.name, value)
    return out


def copy_graph_def(gd: GraphDef) -> GraphDef:
    """A deep copy of ``gd``, made node by node.

    One ``CopyFrom`` of a 350 MB GraphDef is a single C call that holds the GIL for about half
    a second, so a worker thread copying the graph froze the GUI thread that long; node by
    node, each call is short (the biggest weight, a few ms) and other threads run in between.
    The copy serializes to the same bytes."""
    out = copy_without_nodes(gd)
    add = out.node.add
    for n in gd.node:
        add().CopyFrom(n)
    return out


def shape_size(shape_proto) -> int:
    n = 1
    for d in shape_proto.dim:
        if d.size < 0:
            return 0
        n *= d.size
    return n


def shape_list(shape_proto) -> list[int] | None:
    """A TensorShapeProto as a list (None for unknown rank, -1 for unknown dims)."""
    if shape_proto.unknown_rank:
        return None
    return [d.size for d in shape_proto.dim]


def detect_outputs(graph: Graph) -> list[str]:
    """Nodes nothing consumes (by data or control), skipping side-effect-only ops and Consts."""
    outs = []
    consumers = graph._build_consumers()
    for name, op in graph.node_ops():
        if consumers.get(name):
            continue
        if op in NO_OUTPUT_OPS or op == "Const" or op in INPUT_OPS:
            continue
        outs.append(name)
    return outs


def detect_inputs(graph: Graph) -> list[str]:
    """Placeholders with consumers (a PlaceholderWithDefault is not a required input)."""
    return graph.placeholders


def const_value(node: NodeDef):
    """Decode a Const node's tensor into a numpy array (the only place weights are decoded)."""
    from .tensors import to_ndarray
    if "_surgeon_deferred_scale" in node.attr:  # a weight computed when written (.deferred)
        from .deferred import value as deferred_value
        return deferred_value(node)
    value = to_ndarray(node.attr["value"].tensor)  # common dtypes: no TensorFlow
    if value is not None:
        return value
    from tensorflow.python.framework import tensor_util
    return tensor_util.MakeNdarray(node.attr["value"].tensor)


def make_const(name: str, value, dtype=None, device: str = "") -> NodeDef:
    """A Const NodeDef holding ``value``."""
    import numpy as np

    from .tensors import to_proto
    arr = np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
    node = NodeDef(name=name, op="Const")
    tensor = to_proto(arr)  # common dtypes: no TensorFlow
    if tensor is None:
        from tensorflow.python.framework import tensor_util
        tensor = tensor_util.make_tensor_proto(arr)
    node.attr["dtype"].type = tensor.dtype
    node.attr["value"].tensor.CopyFrom(tensor)
    if device:
        node.device = device
    return node


#: numpy dtype names of the TensorFlow dtypes that numpy has (``tf.DType.as_numpy_dtype``).
_NUMPY_NAMES = {types_pb2.DT_FLOAT: "float32", types_pb2.DT_DOUBLE: "float64",
                types_pb2.DT_HALF: "float16", types_pb2.DT_INT8: "int8",
                types_pb2.DT_INT16: "int16", types_pb2.DT_INT32: "int32",
                types_pb2.DT_INT64: "int64", types_pb2.DT_UINT8: "uint8",
                types_pb2.DT_UINT16: "uint16", types_pb2.DT_UINT32: "uint32",
                types_pb2.DT_UINT64: "uint64", types_pb2.DT_BOOL: "bool",
                types_pb2.DT_COMPLEX64: "complex64", types_pb2.DT_COMPLEX128: "complex128",
                types_pb2.DT_STRING: "object"}


def numpy_dtype_name(enum_value: int) -> str:
    """The numpy dtype name of a ``DataType`` enum (``1`` → ``float32``), as
    ``tf.as_dtype(v).as_numpy_dtype`` gives it; ref types give their base type's. The common
    types need no TensorFlow; the rest (bfloat16, quantized, float8 ...) ask TensorFlow.
    Raises TypeError for a type numpy cannot hold (resource, variant)."""
    base = enum_value - 100 if enum_value > 100 else enum_value
    name = _NUMPY_NAMES.get(base)
    if name is not None:
        return name
    import numpy as np
    from tensorflow.python.framework import dtypes
    try:
        return np.dtype(dtypes.as_dtype(enum_value).as_numpy_dtype).name
    except KeyError:  # TF's own table has no numpy type for it (resource, variant)
        raise TypeError(f"no numpy dtype for {dtype_name(enum_value)}") from None


#: ``DT_X`` enum names whose TensorFlow dtype name is not simply ``x``.
_DTYPE_RENAMES = {"float": "float32", "double": "float64", "half": "float16"}


@lru_cache(maxsize=None)
def dtype_name(enum_value: int) -> str:
    """``1`` → ``float32``, ``101`` → ``float32_ref``: TensorFlow's ``tf.DType.name``, without
    importing TensorFlow (tests/test_graph.py checks every enum value against TF's names)."""
    try:
        proto = types_pb2.DataType.Name(enum_value)
    except ValueError:
        return str(enum_value)
    if enum_value == types_pb2.DT_INVALID:
        return proto
    base, ref = (proto[:-4], "_ref") if proto.endswith("_REF") else (proto, "")
    name = base[3:].lower() if base.startswith("DT_") else base.lower()
    return _DTYPE_RENAMES.get(name, name) + ref
