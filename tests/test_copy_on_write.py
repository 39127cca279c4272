"""Passes copy only what they change (issue 12 goal 4).

Called on its own, a pass leaves its input untouched. Inside the pipeline the passes edit one
working GraphDef in place (O(k) per step), which must give the very bytes the copying path
gives, and each step can record the old NodeDefs of what it touched (for undo).
"""
from pathlib import Path

import pytest

from surgeon_gui.core.model import real_models as rm
from surgeon_gui.core.model.editor import GraphEditor
from surgeon_gui.core.model.graph import Graph, GraphDef, NodeDef
from surgeon_gui.core.model.io import load_model
from surgeon_gui.core.passes import PRESET_PASSES, get_pass
from surgeon_gui.core.passes.pipeline import pipeline_steps, run_pipeline

EXAMPLES = Path(__file__).resolve().parent.parent / "resources" / "examples"
EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".pb", ".pbtxt"))


def example(name: str) -> Graph:
    m = load_model(EXAMPLES / name)
    return m.graph().with_io(m.inputs, m.outputs)


def data(gd: GraphDef) -> bytes:
    return gd.SerializeToString(deterministic=True)


def fresh(g: Graph) -> Graph:
    gd = GraphDef()
    gd.CopyFrom(g.graph_def)
    return Graph(gd, g.given_inputs, g.given_outputs, source=g.source)


#: Passes that rewrite the whole graph (its function library and every node reading it) and so
#: build a new GraphDef even in the pipeline.
WHOLE_GRAPH = {"inline_functions"}


def in_place_run(g: Graph, record: bool = True) -> tuple[Graph, list]:
    """The pipeline editing one GraphDef in place (the caller's own, given up)."""
    steps = []
    for step in pipeline_steps(g, ["inference"], in_place=True, owns_input=True, record=record):
        if step.pass_id not in WHOLE_GRAPH:
            assert step.graph.graph_def is g.graph_def, step.pass_id   # edited in place
        steps.append((step.pass_id, step.result.report, step.result.old_nodes,
                      data(step.graph.graph_def)))
        g = step.graph
    return g, steps


def check_same_as_copying(g: Graph) -> int:
    """The in-place pipeline gives the copying path's bytes after every step, and each step's
    recorded old nodes are those of the graph before it. Returns the number of steps."""
    copied, copy_steps = run_pipeline(fresh(g), ["inference"])
    final, steps = in_place_run(fresh(g))
    assert data(final.graph_def) == data(copied.graph_def)
    assert [s[0] for s in steps] == [s.pass_id for s in copy_steps]
    before = g
    for (pid, report, old, after_bytes), cs in zip(steps, copy_steps):
        assert after_bytes == data(cs.graph.graph_def), pid
        assert report.to_dict() == cs.result.report.to_dict(), pid
        touched = report.removed | report.added | report.changed
        assert set(old) >= touched, pid
        for name in touched:
            was = before.nodes.get(name)
            if was is None:
                assert old[name] is None, (pid, name)
            else:
                assert old[name] is not None and data_node(old[name]) == data_node(was), \
                    (pid, name)
        before = cs.graph
    return len(steps)


def data_node(n: NodeDef) -> bytes:
    return n.SerializeToString(deterministic=True)


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_each_pass_called_directly_leaves_its_input_untouched(name):
    """Every preset pass, on the graph the preset gives it, as a plain function: its input's
    bytes are unchanged, and the passes that change something return a new GraphDef."""
    g = example(name)
    changed = 0
    for _ in range(2):
        for pid in PRESET_PASSES:
            before = data(g.graph_def)
            res = get_pass(pid).run(g)
            assert data(g.graph_def) == before, pid
            if res.report.modified:
                changed += 1
                assert res.graph_def is not g.graph_def
                g = Graph(res.graph_def, g.given_inputs, g.given_outputs)
            else:
                assert res.graph_def is g.graph_def      # found nothing: no copy
    assert changed >= 2


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_in_place_pipeline_gives_the_copying_bytes_on_the_examples(name):
    assert check_same_as_copying(example(name)) >= 2


def test_run_pipeline_without_graphs_leaves_its_input_untouched():
    g = example("tf1_cond_bn_dropout.pb")
    before = data(g.graph_def)
    out, steps = run_pipeline(g, ["inference"], keep_graphs=False)
    assert len(steps) >= 3 and data(g.graph_def) == before
    assert out.graph_def is not g.graph_def


@pytest.mark.slow
def test_in_place_pipeline_gives_the_copying_bytes_on_real_models():
    gd, ins, outs = rm.musicnn("MTT_vgg")
    assert check_same_as_copying(Graph(gd)) >= 3
    gd, ins, outs = rm.retinaface()
    assert check_same_as_copying(Graph(gd, ins, outs)) >= 2


def test_editor_in_place_writes_only_what_changed_and_records_it():
    gd = GraphDef()
    for name, op, inputs in (("x", "Placeholder", []), ("w", "Const", []),
                             ("a", "MatMul", ["x", "w"]), ("i", "Identity", ["a"]),
                             ("b", "Relu", ["i"]), ("c", "Relu", ["b"])):
        n = gd.node.add(name=name, op=op)
        n.input.extend(inputs)
    gd.node[1].attr["value"].tensor.tensor_content = b"\0" * 4096
    w_node, c_node = gd.node[1], gd.node[5]
    old_b = data_node(gd.node[4])
    ed = GraphEditor(Graph(gd), in_place=True, record=True)
    ed.bypass("i")                                   # b now reads a
    ed.add_node(NodeDef(name="d", op="Relu", input=["c"]))
    assert [n.name for n in gd.node] == ["x", "w", "a", "i", "b", "c"]  # nothing written yet
    out = ed.result()
    assert out is gd
    assert [n.name for n in gd.node] == ["x", "w", "a", "b", "c", "d"]
    assert list(gd.node[3].input) == ["a"]
    # untouched nodes are the very same messages (not copies)
    assert gd.node[1] is w_node and gd.node[4] is c_node
    assert ed.removed == {"i"} and ed.added == {"d"} and ed.changed == {"b"}
    assert set(ed.old_nodes) == {"i", "d", "b"} and ed.old_nodes["d"] is None
    assert data_node(ed.old_nodes["b"]) == old_b and list(ed.old_nodes["i"].input) == ["a"]


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_graph_streamed_node_by_node_has_the_bytes_of_one_serialization(name, tmp_path):
    from surgeon_gui.core.model.files import OverwriteRefused, graph_def_chunks, write_file
    gd = example(name).graph_def
    gd.library.SetInParent()
    assert b"".join(graph_def_chunks(gd)) == gd.SerializeToString(deterministic=True)
    out = tmp_path / "out.pb"
    write_file(out, graph_def_chunks(gd))
    assert out.read_bytes() == gd.SerializeToString(deterministic=True)
    with pytest.raises(OverwriteRefused):              # the one write path still refuses
        write_file(out, graph_def_chunks(gd))
    assert [p.name for p in tmp_path.iterdir()] == ["out.pb"]   # no temporary file left
