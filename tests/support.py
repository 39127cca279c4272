"""Helpers several test modules share (import as ``from support import ...``)."""
import re

import numpy as np

#: A line TensorFlow's C++ runtime logs about CUDA on a machine with CUDA libraries and no GPU
#: ("failed call to cuInit", "Could not find cuda drivers"). It is printed before Python can
#: silence anything, so tests accept it; every other line on stderr is ours to keep quiet.
_TF_CUDA_LINE = re.compile(
    r"^(?:[EWI]\d{4} |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [EWI] |WARNING: All log messages)"
    r".*(?:cuda|cuInit|CUDA|GPU|gpu|absl::InitializeLog)", re.S)


def our_stderr(text: str) -> list[str]:
    """The lines of a process's stderr that we are responsible for (CUDA start-up noise from
    TensorFlow's C++ runtime removed)."""
    return [ln for ln in text.splitlines() if ln.strip() and not _TF_CUDA_LINE.match(ln)]


def assert_no_traceback(text: str) -> None:
    assert "Traceback (most recent call last)" not in text, text


def make_window(qtbot, tmp_path, monkeypatch, size=None):
    """A shown MainWindow with its own settings folder, nothing persisted, and no
    unsaved-changes question when pytest-qt closes it (the shared window fixture body)."""
    monkeypatch.setenv("GRAPH_SURGEON_SETTINGS_DIR", str(tmp_path / "settings"))
    from surgeon_gui.ui.main_window import MainWindow
    w = MainWindow()
    w.persist_settings = False
    qtbot.addWidget(w, before_close_func=lambda w: w.close_guards.clear())
    if size:
        w.resize(*size)
    w.show()
    return w


def freeze_tf1(build):
    """Build a TF1 graph with ``build(v1, var)`` (resource variables, as tf.keras/Keras 2 made
    them; ``var(name, shape)`` makes one) and freeze it: returns (GraphDef, output op name)."""
    import tensorflow as tf
    v1 = tf.compat.v1
    rng = np.random.default_rng(0)
    g = tf.Graph()
    with g.as_default():
        def var(name, shape):
            return v1.get_variable(name, initializer=rng.normal(0, 0.1, shape).astype(np.float32),
                                   use_resource=True)
        out = build(v1, var)
        with v1.Session(graph=g) as s:
            s.run(v1.global_variables_initializer())
            gd = v1.graph_util.convert_variables_to_constants(s, g.as_graph_def(),
                                                              [out.op.name])
    return gd, out.op.name


def window_with_model(qtbot, tmp_path, monkeypatch, graph_def, size=None, exposed=True):
    """make_window, then the graph saved as a .pb and opened as a user opens it, until the view
    is laid out."""
    from surgeon_gui.core.model.io import save_graph
    path = tmp_path / "model.pb"
    save_graph(graph_def, path)
    return window_with_file(qtbot, tmp_path, monkeypatch, path, size, exposed)


def window_with_file(qtbot, tmp_path, monkeypatch, path, size=None, exposed=True):
    """make_window, then the model file ``path`` opened as a user opens it, until the view is
    laid out."""
    w = make_window(qtbot, tmp_path, monkeypatch, size=size)
    if exposed:
        qtbot.waitExposed(w)
    with qtbot.waitSignal(w.document_opened, timeout=60_000):
        w.open_model(str(path))
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=60_000)
    return w


class TextAnswers:
    """Scripted answers for the window's text questions (a rename's new name, ...)."""

    def __init__(self, *texts):
        self.texts = list(texts)

    def text(self, title, label, default=""):
        return self.texts.pop(0)


def press_key(qtbot, w, k, mod=None):
    """A key press on the window, then wait until the view is laid out again."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication
    from surgeon_gui.ui.commands import moves_waiting
    w.activateWindow()
    # (a shortcut fires only in the active window, and activation is asynchronous)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=10_000)
    qtbot.keyClick(w, k, Qt.NoModifier if mod is None else mod)
    QApplication.processEvents()
    # an undo/redo waits (retried every 20 ms) while a background job reads the document
    # (e.g. the group tree's completion after the preset): only then is a layout pending
    qtbot.waitUntil(lambda: not moves_waiting() and not w.view.layout_pending, timeout=60_000)


def assert_index_fresh(graph) -> None:
    """``graph`` (a :class:`~surgeon_gui.core.model.graph.Graph`, perhaps updated
    incrementally by undo/redo) equals an index built from scratch over its GraphDef, field by
    field: node map (the very protobuf objects of the node list), positions and their order,
    duplicates, given and detected inputs/outputs, and whatever it has cached (consumers,
    topological orders, problems)."""
    from surgeon_gui.core.model.graph import Graph
    fresh = Graph(graph.graph_def, graph.given_inputs, graph.given_outputs,
                  source=graph.source)
    assert list(graph.nodes) == list(fresh.nodes)  # keys in node order
    for name, node in fresh.nodes.items():
        assert graph.nodes[name] is node, f"index holds a stale NodeDef for {name}"
    assert graph.order == fresh.order
    assert list(graph.order) == list(fresh.order)  # keys in node order
    assert [n.name for n in graph.graph_def.node] == list(graph.order)
    assert graph._duplicates == fresh._duplicates
    assert graph.given_inputs == fresh.given_inputs
    assert graph.given_outputs == fresh.given_outputs
    assert graph.inputs == fresh.inputs and graph.outputs == fresh.outputs
    if graph._ops is not None:
        assert graph._ops == fresh.ops and list(graph._ops) == list(fresh.ops)
    if graph._consumers is not None:
        got, want = dict(graph._consumers), dict(fresh._build_consumers())
        assert set(got) == set(want), (set(got) ^ set(want))
        for name in want:
            assert got[name] == want[name], f"consumers of {name}"
    for loops, topo in graph._topo.items():
        assert topo == fresh.topological_order(loops)
    if graph._problems is not None:
        assert [p.problem for p in graph.problems()] == [p.problem for p in fresh.problems()]


def random_edit(rng, graph, tmp_path):
    names = [n.name for n in graph.graph_def.node]
    name = rng.choice(names)
    kind = rng.choice(["remove_node", "remove_node", "rename_node", "set_attr", "set_input",
                       "make_output", "replace_const", "placeholder_to_const",
                       "cut_to_outputs"])
    if kind == "remove_node":
        return kind, {"node": name, "mode": rng.choice(["bypass", "cascade"])}
    if kind == "rename_node":
        return kind, {"node": name, "new_name": name + "_renamed"}
    if kind == "set_attr":
        return kind, {"node": name, "attr": "_note", "type": "s",
                      "value": f"edited {rng.randrange(100)}"}
    if kind == "set_input":
        return kind, {"node": name, "index": 0, "source": rng.choice(names)}
    if kind == "make_output":
        return kind, {"node": name}
    if kind == "replace_const":
        consts = [n for n in graph.graph_def.node if n.op == "Const"]
        c = rng.choice(consts)
        shape = [d.size for d in c.attr["value"].tensor.tensor_shape.dim]
        from surgeon_gui.core.model.graph import const_value
        arr = const_value(c) * 0 + 1 if const_value(c).dtype.kind in "fiu" else const_value(c)
        path = tmp_path / f"v{rng.randrange(10**9)}.npy"
        np.save(path, np.asarray(arr).reshape(shape))
        from surgeon_gui.core.history.edits import value_spec
        return kind, {"node": c.name, "value": value_spec(None, str(path))}
    if kind == "placeholder_to_const":
        phs = [n.name for n in graph.graph_def.node if n.op == "PlaceholderWithDefault"]
        return kind, {"node": phs[0] if phs else name, "value": False}
    return kind, {"outputs": [rng.choice(graph.outputs or names)]}


def tree_fields(tree) -> dict:
    """Every field of a GroupTree, for comparing two trees."""
    import dataclasses
    return {
        "groups": [(k, dataclasses.astuple(g)) for k, g in tree.groups.items()],
        "root": tree.root_children, "parent_of": list(tree.parent_of.items()),
        "node_label": list(tree.node_label.items()),
        "badges": [(k, [dataclasses.astuple(b) for b in v]) for k, v in tree.badges.items()],
        "badge_owner": list(tree.badge_owner.items()), "hidden": list(tree.hidden.items()),
        "edges": tree._edges, "ancestors": list(tree._ancestors.items()),
        "hidden_groups": list(tree._hidden_groups.items()),
        "visible": [(e.src, e.dst, e.control, e.count, e.label, e.pairs)
                    for e in tree.visible_graph(frozenset(tree.groups))],
    }


def tree_view_fields(tree) -> dict:
    """What the view and the layout read of a GroupTree (and what the next edit's derived tree
    is made from), for comparing a tree derived from an edit with one built afresh: groups with
    every field (children in order; op histograms in their order, which ``most_common`` ties
    follow), node parents, labels and group chains, badges (no empty entries: reading a
    missing one makes it), weights and their owners, the drawn edges in order, the visible
    graph of everything expanded (in order), and the per-level grouping decisions."""
    groups = {k: (g.label, g.parent, g.virtual, g.prefix, list(g.children), g.size,
                  g.visible_size, list(g.ops.items()), g.signature, g.repeats)
              for k, g in tree.groups.items()}
    return {
        "groups": groups, "root": list(tree.root_children), "parent_of": dict(tree.parent_of),
        "node_label": dict(tree.node_label), "ancestors": dict(tree._ancestors),
        "badges": {k: [(b.node, b.const, b.label, b.shape, b.dtype) for b in v]
                   for k, v in tree.badges.items() if v},
        "badge_owner": dict(tree.badge_owner), "hidden": dict(tree.hidden),
        "hidden_groups": dict(tree._hidden_groups), "op_of": dict(tree.op_of),
        "edges": list(tree._edges),
        "visible": [(e.src, e.dst, e.control, e.count, e.label, e.pairs)
                    for e in tree.visible_graph(frozenset(tree.groups))],
        "decisions": (tree._cells, tree._virtual, +tree._counted, +tree._internal,
                      +tree._sig_count, tree._op_firsts),
    }


def assert_same_tree(got, want) -> None:
    """``got`` (an edit's derived tree) equals ``want`` (built afresh), field by field as
    :func:`tree_view_fields` reads them; names the first field that differs."""
    a, b = tree_view_fields(got), tree_view_fields(want)
    for key in b:
        if a[key] != b[key]:
            x, y = a[key], b[key]
            if isinstance(x, dict) and isinstance(y, dict):
                diff = sorted(k for k in x.keys() | y.keys() if x.get(k) != y.get(k))[:5]
                raise AssertionError(f"{key} differ at {diff}: "
                                     f"{[(x.get(k), y.get(k)) for k in diff[:2]]}")
            if isinstance(x, list) and isinstance(y, list):
                i = next((i for i, (u, v) in enumerate(zip(x, y)) if u != v),
                         min(len(x), len(y)))
                raise AssertionError(f"{key} differ at {i}: {x[i:i + 3]} vs {y[i:i + 3]} "
                                     f"(lengths {len(x)}, {len(y)})")
            if isinstance(x, tuple):
                i = next(i for i, (u, v) in enumerate(zip(x, y)) if u != v)
                u, v = x[i], y[i]
                diff = sorted((k for k in u.keys() | v.keys() if u.get(k) != v.get(k)), key=str)
                raise AssertionError(f"{key} differ ({i}) at {diff[:3]}: "
                                     f"{[(u.get(k), v.get(k)) for k in diff[:2]]}")
            raise AssertionError(f"{key} differ")
