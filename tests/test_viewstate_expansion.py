"""The view's open groups across states of one model (Qt-free): what the user opened stays open
where the group exists, what the app opened by default follows the default rule of the state
shown. On the bundled TF1 example the preset leaves a 23-node graph whose small ``fc`` group is
opened by default; back at the model as opened ``fc`` holds 48 nodes and is closed by default."""
import pytest

from surgeon_gui.core.history.document import Document
from surgeon_gui.core.history.steps import prepare_pipeline
from surgeon_gui.core.viewmodel.grouping import GroupTree
from surgeon_gui.core.viewmodel.viewstate import ViewState


@pytest.fixture
def tf1_doc(tf1_graph):
    gd, ins, outs = tf1_graph
    doc = Document(gd, inputs=ins, outputs=outs)
    opened = GroupTree(doc.graph)
    doc.adopt(prepare_pipeline(doc.graph, ["inference"]))
    assert doc.cursor > 1
    return doc, opened


def _tree_at(doc, n):
    doc.go_to(n)
    return GroupTree(doc.graph)


def test_default_opened_group_follows_the_state_shown(tf1_doc):
    doc, opened = tf1_doc
    after = GroupTree(doc.graph)
    # the premise: fc is small and opened by default after the preset, closed as opened
    assert "fc" in after.default_expanded() and "fc" not in opened.default_expanded()
    assert len(opened.members("fc")) == 48 and len(after.members("fc")) < 10

    s = ViewState()
    s.open_by_default(opened)
    s.follow(after)                       # the preset applied
    assert "fc" in s.expanded and s.auto_opened == {"fc"}
    s.follow(_tree_at(doc, 0))            # History: "Opened model"
    assert "fc" not in s.expanded
    s.follow(_tree_at(doc, doc.cursor + len(doc.steps)))  # redo all: the default again
    assert s.expanded == {"fc"}


def test_user_choices_survive_undo_redo_and_jumps(tf1_doc):
    doc, opened = tf1_doc
    last = doc.cursor
    s = ViewState()
    s.open_by_default(opened)
    # the user opens a batch norm's cond (and so bn2 around it) in the model as opened
    assert s.expand(opened, "bn2/cond") and s.expanded == {"bn2", "bn2/cond"}
    after = _tree_at(doc, last)
    s.follow(after)
    assert s.expanded == {"fc"}           # bn2 is gone after the preset; fc by default
    # the user opens fc after the preset: now it is theirs, open at every state
    s.collapse(after, "fc")
    assert "fc" not in s.expanded
    s.follow(_tree_at(doc, last - 1))
    assert "fc" not in s.expanded         # closed by the user: the default does not reopen it
    s.expand(after, "fc")
    s.follow(_tree_at(doc, 0))
    assert {"fc", "bn2", "bn2/cond"} <= s.expanded   # both of the user's choices, back again
    s.follow(_tree_at(doc, last))
    assert s.expanded == {"fc"}


def test_collapse_all_and_expand_all_are_the_users(small_cond_bn):
    gd, ins, outs = small_cond_bn
    tree = GroupTree(Document(gd, inputs=ins, outputs=outs).graph)
    default = tree.default_expanded()
    assert default and default != set(tree.groups)
    s = ViewState()
    s.open_by_default(tree)
    assert s.expanded == default and s.auto_opened == default
    s.collapse_all()
    s.follow(tree)
    assert s.expanded == set()            # Collapse All stays collapsed
    s.expand_all(tree)
    s.follow(tree)
    assert s.expanded == set(tree.groups) and not s.auto_opened
    s.open_by_default(tree)               # a model opened anew forgets the choices
    assert s.expanded == default
