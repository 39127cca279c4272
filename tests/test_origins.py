"""What a node was, from the history (Qt-free): a batch norm fold_batch_norm made the BiasAdd
of the conv before it keeps its name, and ``Document.origins`` says it was a FusedBatchNormV3
folded into that conv, read from the steps' deltas; undo, redo and jumps follow it."""
from surgeon_gui.core.history.document import Document, absorbed, absorbed_text
from surgeon_gui.core.history.steps import prepare_edits, prepare_pipeline
from surgeon_gui.core.model.graph import Graph

BN, CONV = "bn1/cond/FusedBatchNormV3_1", "conv1/Conv2D"


def _preset_doc(tf1_graph) -> tuple[Document, int]:
    gd, ins, outs = tf1_graph
    g = Graph(gd, ins, outs)
    doc = Document(g.graph_def.__deepcopy__(), "tf1.pb", ins, outs)
    assert doc.origins() == {}
    doc.adopt(prepare_pipeline(doc.graph, ["inference"]))
    fold = next(i for i, s in enumerate(doc.steps, 1) if s.recipe_step.get("pass")
                == "fold_batch_norm")
    return doc, fold


def test_origins_say_a_folded_batch_norm_was_one_and_follow_undo_redo(tf1_graph):
    doc, fold = _preset_doc(tf1_graph)
    assert doc.graph.nodes[BN].op == "BiasAdd"
    assert doc.steps[fold - 1].delta.op_changes[BN] == ("FusedBatchNormV3", "BiasAdd")
    o = doc.origins()[BN]
    assert (o.was, o.now, o.step, o.pass_id, o.into) == ("FusedBatchNormV3", "BiasAdd", fold,
                                                        "fold_batch_norm", CONV)
    assert o.tag == "folded BN"
    assert o.describe().startswith(f"folded from FusedBatchNormV3 into {CONV} (step {fold}, "
                                   "Fold batch norm")
    # every batch norm the fold took is there, each with the op it was folded into
    folded = {n: x.into for n, x in doc.origins().items() if x.folded_batch_norm}
    assert len(folded) == len(doc.steps[fold - 1].report.applied) >= 3
    assert all(doc.graph.nodes[n].op == "BiasAdd" and doc.graph.nodes[n].input[0] == into
               for n, into in folded.items())
    assert BN in absorbed_text(absorbed(doc.origins())[CONV])

    doc.go_to(fold - 1)                       # undo the fold: nothing was folded
    assert doc.graph.nodes[BN].op == "FusedBatchNormV3"
    assert BN not in doc.origins() and CONV not in absorbed(doc.origins())
    doc.go_to(fold)                           # redo it
    assert doc.origins()[BN] == o
    assert doc.origins(fold) == {}            # nothing since the fold changed an op
    doc.go_to(0)                              # the model as opened
    assert doc.origins() == {}
    doc.go_to(len(doc.steps))
    assert doc.origins()[BN] == o


def test_a_folded_node_removed_later_has_no_origin(tf1_graph):
    doc, fold = _preset_doc(tf1_graph)
    doc.adopt([prepare_edits(doc.graph, [("remove_node", {"node": BN, "mode": "bypass"})])])
    assert BN not in doc.graph.nodes and BN not in doc.origins()
    doc.undo()
    assert doc.origins()[BN].was == "FusedBatchNormV3"


def test_inverse_delta_swaps_the_op_changes(tf1_graph):
    doc, fold = _preset_doc(tf1_graph)
    d = doc.steps[fold - 1].delta
    assert d.inverse().op_changes[BN] == ("BiasAdd", "FusedBatchNormV3")


def test_an_origin_names_its_pass_by_title_or_else_by_its_step_label(tf1_graph):
    """Origin.step_title reads the pass's title (looked up once per pass id); a step whose pass
    id no pass has keeps its own label."""
    from surgeon_gui.core.history.document import Origin
    doc, fold = _preset_doc(tf1_graph)
    o = doc.origins()[BN]
    assert o.step_title == f"step {fold}, Fold batch norm into the op before it"
    assert o.step_title == o.step_title            # (second look-up: from the cache)
    odd = Origin(BN, "FusedBatchNormV3", "BiasAdd", 3, "my own edit", "no_such_pass", None)
    assert odd.step_title == "step 3, my own edit"


def test_origins_are_kept_per_span_and_follow_new_steps_and_labels(tf1_graph):
    """Document.origins keeps its last answers (asked at every undo, redo and node click): the
    same span gives the same dict, one step back is had without walking again, and a span
    whose steps changed (new steps after an undo, a step renamed) is worked out anew — always
    equal to a walk from scratch."""
    doc, fold = _preset_doc(tf1_graph)

    def fresh(end=None):
        doc.__dict__.pop("_origins_memo", None)
        return doc.origins(0, end)
    n = len(doc.steps)
    full = doc.origins()
    assert doc.origins() is full                       # kept
    back = doc.origins(0, n - 1)
    assert back == fresh(n - 1) and full == fresh()
    doc.origins()
    early = doc.origins(0, fold - 1)
    assert BN not in early and early == fresh(fold - 1)
    doc.go_to(fold - 1)                                # before the fold; then another step
    doc.adopt([prepare_edits(doc.graph, [("rename_node", {"node": BN, "new_name": "bn_x"})])])
    assert doc.origins() == fresh() and BN not in doc.origins()
    doc.steps[0].label = "renamed in History"
    doc.go_to(n if n <= len(doc.steps) else len(doc.steps))
    got = doc.origins(0, 1)
    assert got == fresh(1)
