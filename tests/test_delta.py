"""GraphDelta: undo/redo give byte-identical GraphDefs and store only what changed."""
import random

import numpy as np
import pytest

from surgeon_gui.core.history.delta import GraphDelta, SpillStore, Spilled, copy_graph_def
from surgeon_gui.core.model.graph import GraphDef, NodeDef, make_const
from surgeon_gui.core.model.io import serialize
from surgeon_gui.core.model.editor import GraphEditor


def chain(n=6, weights=1000):
    """input -> n0 -> n1 ... each reading a weight Const of ``weights`` floats."""
    gd = GraphDef()
    gd.versions.producer = 1234
    gd.node.add(name="input", op="Placeholder").attr["dtype"].type = 1
    prev = "input"
    for i in range(n):
        w = make_const(f"w{i}", np.full(weights, i, np.float32))
        gd.node.add().CopyFrom(w)
        node = gd.node.add(name=f"n{i}", op="Mul", input=[prev, f"w{i}"])
        node.attr["T"].type = 1
        prev = f"n{i}"
    return gd


def check_round_trip(old, new, exact=False):
    before, after = serialize(old), serialize(new)
    d = GraphDelta.between(old, new, exact=exact)
    work = copy_graph_def(old)
    d.apply(work)
    assert serialize(work) == after
    d.revert(work)
    assert serialize(work) == before
    d.apply(work)
    assert serialize(work) == after
    inv = d.inverse()
    inv.apply(work)
    assert serialize(work) == before
    return d


def test_identical_graphs_give_an_empty_delta():
    gd = chain()
    d = GraphDelta.between(gd, copy_graph_def(gd))
    assert d.empty and d.nbytes == 0


def test_bypass_stores_only_the_removed_and_rewired_nodes():
    old = chain(weights=100_000)
    ed = GraphEditor(old)
    ed.bypass("n2")
    new = ed.result()
    d = check_round_trip(old, new)
    assert d.removed == {"n2"} and d.changed == {"n3"} and not d.added
    assert d.old_order is None  # relative order kept: only the removed index is stored
    assert d.removed_at == [(6, "n2")]
    # Two small nodes stored, none of the 400 KB weights.
    assert d.nbytes < 1000 < old.ByteSize() // 1000


def test_changed_weight_stores_that_weight_only():
    old = chain(weights=50_000)
    new = copy_graph_def(old)
    new.node[3].CopyFrom(make_const("w1", np.full(50_000, 7.0, np.float32)))
    d = check_round_trip(old, new)
    assert d.changed == {"w1"}
    assert 2 * 200_000 <= d.nbytes < 2 * 200_000 + 1000
    assert d.nbytes < old.ByteSize() / 2


def test_added_nodes_in_the_middle_come_back_in_place():
    old = chain()
    new = GraphDef()
    new.CopyFrom(old)
    extra = NodeDef(name="extra", op="Identity", input=["n1"])
    nodes = list(new.node)
    del new.node[:]
    new.node.extend(nodes[:4] + [extra] + nodes[4:])
    new.node.add(name="tail", op="NoOp", input=["^extra"])
    d = check_round_trip(old, new)
    assert d.added == {"extra", "tail"}
    assert d.added_at == [(4, "extra"), (len(new.node) - 1, "tail")]


def test_reordering_stores_both_orders():
    old = chain()
    new = GraphDef()
    new.CopyFrom(old)
    new.node.reverse()
    d = check_round_trip(old, new)
    assert d.old_order == [n.name for n in old.node]
    assert d.new_order == [n.name for n in new.node]
    assert not d.changed and d.nbytes < 2000


def test_top_level_fields_library_and_versions():
    old = chain()
    new = copy_graph_def(old)
    new.versions.producer = 99
    f = new.library.function.add()
    f.signature.name = "my_fn"
    d = check_round_trip(old, new)
    assert set(d.new_fields) == {"versions", "library"}
    assert d.old_fields["library"] is None
    # and back the other way: the library disappears
    check_round_trip(new, old)


def test_negative_zero_counts_as_a_change():
    old = chain(n=1)
    old.node[-1].attr["eps"].f = 0.0
    new = copy_graph_def(old)
    new.node[-1].attr["eps"].f = -0.0
    d = check_round_trip(old, new)
    assert d.changed == {"n0"}
    check_round_trip(old, new, exact=True)


def test_duplicate_names_fall_back_to_whole_graphs():
    old = chain(n=2)
    old.node.add(name="n0", op="NoOp")
    new = copy_graph_def(old)
    del new.node[-1]
    d = check_round_trip(old, new)
    assert d.old_full is not None


@pytest.mark.parametrize("seed", range(12))
def test_random_mutations_round_trip(seed):
    rng = random.Random(seed)
    old = chain(n=12, weights=64)
    new = copy_graph_def(old)
    for _ in range(rng.randint(1, 8)):
        what = rng.choice(["remove", "add", "change", "shuffle", "attr"])
        names = [n.name for n in new.node]
        if what == "remove" and len(names) > 2:
            i = rng.randrange(len(names))
            del new.node[i]
        elif what == "add":
            node = NodeDef(name=f"new{rng.randrange(10**6)}", op="Identity",
                           input=[rng.choice(names)])
            nodes = list(new.node)
            nodes.insert(rng.randrange(len(nodes) + 1), node)
            del new.node[:]
            new.node.extend(nodes)
        elif what == "change":
            n = new.node[rng.randrange(len(names))]
            n.input.append("^" + rng.choice(names))
        elif what == "shuffle":
            nodes = list(new.node)
            rng.shuffle(nodes)
            del new.node[:]
            new.node.extend(nodes)
        else:
            n = new.node[rng.randrange(len(names))]
            n.attr[f"a{rng.randrange(5)}"].i = rng.randrange(100)
    check_round_trip(old, new)
    check_round_trip(old, new, exact=True)


def test_real_model_round_trip(tf1_graph):
    gd, inputs, outputs = tf1_graph
    ed = GraphEditor(gd)
    # a realistic step: bypass every Identity "/read" and prune what outputs no longer need
    for n in list(ed.nodes()):
        if n.op == "Identity" and n.name.endswith("/read"):
            ed.bypass(n.name)
    ed.prune([], outputs)
    new = ed.result()
    d = check_round_trip(gd, new)
    assert d.removed and d.changed
    assert d.nbytes < len(serialize(gd)) + len(serialize(new))


def test_big_node_versions_are_spilled_to_disk(tmp_path):
    old = chain(n=4, weights=100_000)  # 400 KB weights
    new = copy_graph_def(old)
    for i, n in enumerate(new.node):
        if n.op == "Const":
            n.CopyFrom(make_const(n.name, np.full(100_000, 9.0 + i, np.float32)))
    store = SpillStore(threshold=64 * 1024, directory=str(tmp_path))
    d = GraphDelta.between(old, new, store=store)
    assert d.changed == {"w0", "w1", "w2", "w3"}
    assert all(isinstance(v, Spilled) for v in d.old_nodes.values())
    assert d.nbytes < 1000  # nothing big stays in memory
    assert 8 * 400_000 <= d.spilled_bytes == store.size < 8 * 400_000 + 1000
    work = copy_graph_def(old)
    d.apply(work)
    assert serialize(work) == serialize(new)
    d.revert(work)
    assert serialize(work) == serialize(old)
    from surgeon_gui.core.history.diff import GraphDiff
    diff = GraphDiff.from_delta(d)
    assert diff.changed[0].weights.new["mean"] == 9.0 + 1


def test_an_unwritable_scratch_folder_keeps_versions_in_memory(tmp_path):
    old = chain(n=1, weights=100_000)
    new = copy_graph_def(old)
    new.node[1].CopyFrom(make_const("w0", np.full(100_000, 3.0, np.float32)))
    store = SpillStore(threshold=1024, directory=str(tmp_path / "missing"))
    d = GraphDelta.between(old, new, store=store)
    assert store.failed and not d.spilled_bytes and d.nbytes > 800_000
    work = copy_graph_def(old)
    d.apply(work)
    assert serialize(work) == serialize(new)


def test_a_move_with_its_spilled_versions_read_beforehand_reads_no_scratch_file(
        tmp_path, monkeypatch):
    """Document.move_reads/read_move (a worker's part of an undo/redo/History jump) read every
    spilled version the move needs; go_to then takes them from memory, to the same bytes."""
    from surgeon_gui.core.history import delta as delta_mod
    from surgeon_gui.core.history.document import Document
    monkeypatch.setattr(delta_mod, "DEFAULT_STORE",
                        SpillStore(threshold=64 * 1024, directory=str(tmp_path)))
    gd = chain(n=4, weights=100_000)
    doc = Document(copy_graph_def(gd))
    states = [serialize(gd)]
    for k in range(3):      # three steps, each rewriting a weight (k, k+1) and removing one
        new = copy_graph_def(doc.graph_def)
        for n in new.node:
            if n.name in (f"w{k}", f"w{k + 1}"):
                n.CopyFrom(make_const(n.name, np.full(100_000, 10.0 * (k + 1), np.float32)))
        if k == 2:          # the last Mul and its weight go (a removed spilled node)
            for i in sorted((i for i, n in enumerate(new.node) if n.name in ("n3", "w3")),
                            reverse=True):
                del new.node[i]
        doc.push(new, f"step {k}")
        states.append(serialize(doc.graph_def))
    reads = []
    real_get = SpillStore.get
    monkeypatch.setattr(SpillStore, "get", lambda self, ref: reads.append(ref) or
                        real_get(self, ref))
    for n in (0, 3, 1, 2, 0, 2):
        refs = doc.move_reads(n)
        assert refs and all(isinstance(r, Spilled) for r in refs)
        loaded = doc.read_move(refs)
        assert sorted(reads, key=id) == sorted(refs, key=id)
        reads.clear()
        doc.go_to(n, loaded)
        assert reads == [] and loaded == {}            # all taken from memory, each once
        assert serialize(doc.graph_def) == states[n] and doc.cursor == n
    doc.go_to(3)                                       # without: read here, same bytes
    assert reads and serialize(doc.graph_def) == states[3]


def _mutate(rng, gd):
    """A random step on a copy of ``gd``: nodes removed, added, changed, reordered, weights
    rewritten (big ones spill), the versions field changed."""
    new = copy_graph_def(gd)
    for _ in range(rng.randint(1, 6)):
        what = rng.choice(["remove", "add", "change", "shuffle", "weight", "versions"])
        names = [n.name for n in new.node]
        if what == "remove" and len(names) > 3:
            del new.node[rng.randrange(len(names))]
        elif what == "add":
            nodes = list(new.node)
            nodes.insert(rng.randrange(len(nodes) + 1),
                         NodeDef(name=f"new{rng.randrange(10**6)}", op="Identity",
                                 input=[rng.choice(names)]))
            del new.node[:]
            new.node.extend(nodes)
        elif what == "change":
            new.node[rng.randrange(len(names))].input.append("^" + rng.choice(names))
        elif what == "shuffle":
            nodes = list(new.node)
            rng.shuffle(nodes)
            del new.node[:]
            new.node.extend(nodes)
        elif what == "weight":
            n = new.node[rng.randrange(len(names))]
            n.CopyFrom(make_const(n.name, np.full(40_000, rng.random(), np.float32)))
        else:
            new.versions.producer = rng.randrange(1, 10**4)
    return new


@pytest.mark.parametrize("seed", range(6))
def test_a_move_built_apart_and_swapped_in_gives_the_same_bytes_and_index(
        tmp_path, monkeypatch, seed):
    """Document.prepare_move (a worker's part of a History jump on a big model) builds the
    target state next to the live graph without touching it; go_to swaps it in: the same
    bytes as the in-place path, a fresh index, the chosen inputs/outputs of that state, and
    the live graph until then unchanged. A stale preparation is ignored."""
    from surgeon_gui.core.history import delta as delta_mod
    from surgeon_gui.core.history.document import Document
    from support import assert_index_fresh
    monkeypatch.setattr(delta_mod, "DEFAULT_STORE",
                        SpillStore(threshold=64 * 1024, directory=str(tmp_path)))
    rng = random.Random(seed)
    doc = Document(chain(n=8, weights=30_000))
    states, ios = [serialize(doc.graph_def)], [(doc.inputs, doc.outputs)]
    for k in range(5):
        new = _mutate(rng, doc.graph_def)
        outputs = [rng.choice([n.name for n in new.node])] if k == 2 else doc.outputs
        doc.push(new, f"step {k}", outputs=outputs)
        states.append(serialize(doc.graph_def))
        ios.append((doc.inputs, doc.outputs))
    assert delta_mod.DEFAULT_STORE.size > 0       # some versions live in the scratch file
    for n in [rng.randrange(6) for _ in range(10)] + [0, 5, 0]:
        live, here = doc.graph_def, serialize(doc.graph_def)
        p = doc.prepare_move(n)
        if n == doc.cursor:
            assert p is None
            continue
        assert serialize(live) == here                # only read
        doc.go_to(n, prepared=p)
        assert doc.graph is p.graph and doc.cursor == n
        assert serialize(doc.graph_def) == states[n] and (doc.inputs, doc.outputs) == ios[n]
        assert_index_fresh(doc.graph)
    p = doc.prepare_move(2)
    doc.go_to(4)                                       # the document moved: p is stale
    doc.go_to(2, prepared=p)
    assert doc.graph is not p.graph and serialize(doc.graph_def) == states[2]
