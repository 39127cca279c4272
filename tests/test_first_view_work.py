"""What a big graph's first view does once and no more (issue 12): the loader's index is shared
with the document whole, so the group tree reads the edges from it in node order."""
from surgeon_gui.core.history.document import Document
from surgeon_gui.core.model.io import load_model, save_graph
from surgeon_gui.core.viewmodel import grouping


def test_the_documents_index_keeps_the_loaders_inputs_in_order(tmp_path, mobilenet_v2,
                                                               monkeypatch):
    """``Document.from_loaded`` shares the loader's index (``sharing_index``) with the entries
    of its consumer map in node order, so the first group tree takes its edges from them
    instead of sorting every input back into node order; the tree is the one a tree read
    from the protos gives."""
    gd, _, _ = mobilenet_v2
    path = tmp_path / "m.pb"
    save_graph(gd, path)
    loaded = load_model(path)
    doc = Document.from_loaded(loaded)
    g = doc.graph
    assert g is not loaded.index and g._consumers is loaded.index._consumers
    assert g.inputs_in_order is loaded.index.inputs_in_order
    assert g.inputs_in_order[0] is g._consumers
    seen = []
    real = grouping.GroupTree._edges_from_index

    def edges_from_index(self, index, in_order, *a):
        seen.append(in_order is not None)
        return real(self, index, in_order, *a)
    monkeypatch.setattr(grouping.GroupTree, "_edges_from_index", edges_from_index)
    tree = grouping.GroupTree(g)
    assert seen == [True]
    monkeypatch.undo()
    # the same tree as one built on an index with no consumer map (read from the protos)
    from surgeon_gui.core.model.graph import Graph
    plain = grouping.GroupTree(Graph(gd))
    assert tree._edges == plain._edges and tree.parent_of == plain.parent_of
    assert tree.hidden == plain.hidden and tree.badge_owner == plain.badge_owner
    assert list(tree.groups) == list(plain.groups)
    # an index updated in place with its wiring unchanged shares them too
    names = list(g.nodes)
    same = g.updated((), (), [names[-1]], {names[-1]: (g.ops[names[-1]],
                                                       list(g.nodes[names[-1]].input))})
    assert same._consumers is g._consumers and same.inputs_in_order is g.inputs_in_order


def test_the_index_reads_the_node_list_a_slice_at_a_time(mobilenet_v2, monkeypatch):
    """Graph() reads the NodeDefs a slice at a time (a loader on a worker then lets the GUI
    thread run between slices): the same wrappers, in the same order, as one read, whatever
    the slice size (a last partial slice, an exact multiple)."""
    from surgeon_gui.core.model import graph as graph_mod
    gd, _, _ = mobilenet_v2
    whole = list(gd.node)
    n = len(whole)
    assert n > 100
    for size in (n + 1, n, 64, n // 2, 7):
        monkeypatch.setattr(graph_mod, "NODE_LIST_SLICE", size)
        got = graph_mod._node_list(gd)
        assert len(got) == n and all(a is b for a, b in zip(got, whole))
        g = graph_mod.Graph(gd)
        assert list(g.nodes) == [x.name for x in whole] and list(g.order.values()) == \
            list(range(n))
