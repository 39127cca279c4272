"""Inspector and search panels, headless, driven the way a user drives them (clicks, keys)."""
import numpy as np
import pytest
from PySide6.QtCore import Qt

from surgeon_gui.core.history.document import Document
from surgeon_gui.core.model.graph import const_value
from surgeon_gui.ui.inspector import InspectorPanel
from surgeon_gui.ui.search_panel import SearchPanel


@pytest.fixture
def doc(tf1_graph):
    gd, inputs, outputs = tf1_graph
    copy = type(gd)()
    copy.CopyFrom(gd)
    return Document(copy, "tf1.pb", inputs, outputs)


class Answers:
    """Stand-ins for the file dialog and the overwrite question, recording what was asked."""

    def __init__(self, path, overwrite):
        self.path, self.overwrite = path, overwrite
        self.asked_overwrite = []

    def choose(self, parent, suggested):
        self.suggested = suggested
        return str(self.path) if self.path else None

    def confirm(self, parent, path):
        self.asked_overwrite.append(path)
        return self.overwrite


@pytest.fixture
def inspector(qtbot, doc):
    panel = InspectorPanel(doc)
    qtbot.addWidget(panel)
    panel.resize(360, 800)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def click_row(qtbot, link_list, row):
    item = link_list.item(row)
    rect = link_list.visualItemRect(item)
    qtbot.mouseClick(link_list.viewport(), Qt.LeftButton, pos=rect.center())


def attr_rows(panel):
    t = panel.attr_table
    return {t.item(r, 0).text(): t.item(r, 1).text() for r in range(t.rowCount())}


def test_shows_selected_node(inspector):
    inspector.set_selection(["dw/depthwise_1"])
    assert inspector.name_label.text() == "dw/depthwise_1"
    assert inspector.op_label.text() == "DepthwiseConv2dNative"
    assert inspector.device_label.text() == "(any)"
    attrs = attr_rows(inspector)
    assert attrs["strides"] == "[1, 2, 2, 1]"
    assert attrs["padding"] == "SAME" and attrs["data_format"] == "NHWC"
    assert attrs["T"] == "float32"
    assert inspector.inputs_section.title() == "Inputs (2)"
    assert inspector.inputs_list.names() == ["Relu", "dw/depthwise/read"]
    # Both batch-norm branches of the v1 cond read it through their own Switch.
    assert inspector.consumers_list.names() == ["bn2/cond/FusedBatchNormV3/Switch",
                                                "bn2/cond/FusedBatchNormV3_1/Switch"]
    assert inspector.attrs_section.isVisible() and not inspector.value_section.isVisible()
    assert not inspector.group_section.isVisible()


def test_clicking_input_and_consumer_emits_node_activated(qtbot, inspector):
    inspector.show_node("conv1/Conv2D")
    with qtbot.waitSignal(inspector.node_activated) as sig:
        click_row(qtbot, inspector.inputs_list, 1)
    assert sig.args == ["conv1/weights/read"]
    with qtbot.waitSignal(inspector.node_activated) as sig:
        click_row(qtbot, inspector.consumers_list, 0)
    assert sig.args == ["conv1/BiasAdd"]


def test_const_value_statistics_and_histogram(inspector, doc):
    inspector.show_node("conv1/weights")
    arr = const_value(doc.graph.node("conv1/weights"))
    assert inspector.value_section.isVisible()
    L = inspector.stat_labels
    assert L["dtype"].text() == "float32"
    assert L["shape"].text() == "[3, 3, 3, 8]"
    assert L["elements"].text() == "216"
    assert float(L["min"].text()) == pytest.approx(float(arr.min()), rel=1e-5)
    assert float(L["max"].text()) == pytest.approx(float(arr.max()), rel=1e-5)
    assert float(L["mean"].text()) == pytest.approx(float(arr.mean()), rel=1e-5)
    assert inspector.first_values.text().startswith(f"[{arr.reshape(-1)[0]:.6g}, ")
    assert sum(inspector.histogram.counts) == 216
    assert inspector.histogram.isVisible() and inspector.save_button.isEnabled()
    # The histogram reports its bars on hover.
    h = inspector.histogram
    i = h.bar_at(h._plot_rect().left() + 1)
    assert i == 0


def test_save_npy_writes_the_array_and_asks_before_overwrite(qtbot, inspector, doc, tmp_path):
    target = tmp_path / "w.npy"
    answers = Answers(target, overwrite=False)
    inspector.choose_path, inspector.confirm_overwrite = answers.choose, answers.confirm
    inspector.show_node("fc/weights")
    with qtbot.waitSignal(inspector.saved):
        qtbot.mouseClick(inspector.save_button, Qt.LeftButton)
    np.testing.assert_array_equal(np.load(target), const_value(doc.graph.node("fc/weights")))
    assert answers.asked_overwrite == []
    assert answers.suggested.endswith("fc_weights.npy")

    # Another Const to the same file: asked, answered No, the file is kept.
    inspector.show_node("conv1/weights")
    qtbot.mouseClick(inspector.save_button, Qt.LeftButton)
    assert answers.asked_overwrite == [target]
    assert np.load(target).shape == (16, 5)
    assert "kept" in inspector.status.text()

    # Answered Yes: replaced.
    answers.overwrite = True
    qtbot.mouseClick(inspector.save_button, Qt.LeftButton)
    assert len(answers.asked_overwrite) == 2
    np.testing.assert_array_equal(np.load(target), const_value(doc.graph.node("conv1/weights")))

    # Cancelled dialog: nothing happens. A name without suffix gets ".npy".
    answers.path = None
    assert inspector.save_current_const() is None
    answers.path = tmp_path / "bias"
    inspector.show_node("conv1/biases")
    assert inspector.save_current_const() == tmp_path / "bias.npy"


def test_save_refuses_a_folder(inspector, tmp_path):
    (tmp_path / "d.npy").mkdir()
    answers = Answers(tmp_path / "d.npy", overwrite=True)
    inspector.choose_path, inspector.confirm_overwrite = answers.choose, answers.confirm
    inspector.show_node("fc/weights")
    assert inspector.save_current_const() is None
    assert "folder" in inspector.status.text()


def test_group_selection_shows_op_histogram_and_parameters(qtbot, inspector):
    inspector.set_selection(["group:bn1"])
    assert inspector.group_section.isVisible() and not inspector.attrs_section.isVisible()
    assert inspector.name_label.text().startswith("bn1")
    assert inspector.group_labels["nodes"].text() == "24"
    assert inspector.group_labels["params"].text().startswith("32 ")
    assert dict(inspector.op_bars.rows) == {"Switch": 9, "Const": 6, "Identity": 6,
                                            "FusedBatchNormV3": 2, "Merge": 1}
    # A sub-scope is one click away.
    names = inspector.children_list.names()
    assert "bn1/cond" in names
    click_row(qtbot, inspector.children_list, names.index("bn1/cond"))
    assert inspector.current == ("group", "bn1/cond")
    assert inspector.group_labels["nodes"].text() == "16"


def test_follows_document_changes_and_clears(inspector, doc):
    inspector.show_node("dropout/mul_1" if "dropout/mul_1" in doc.graph.nodes else "probs")
    shown = inspector.current[1]
    gd = type(doc.graph_def)()
    gd.CopyFrom(doc.graph_def)
    keep = [n for n in gd.node if n.name != shown]
    del gd.node[:]
    gd.node.extend(keep)
    doc.push(gd, "edit")
    assert inspector.current is None
    assert "no longer in the graph" in inspector.placeholder.text()
    inspector.set_selection(["no/such/node"])
    assert inspector.current is None and "no node named" in inspector.placeholder.text()
    inspector.set_selection([])
    assert inspector.placeholder.isVisible()


# --------------------------------------------------------------------------- search panel
@pytest.fixture
def search(qtbot, doc):
    panel = SearchPanel(doc)
    qtbot.addWidget(panel)
    panel.resize(360, 400)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_search_lists_ranked_results_as_you_type(qtbot, search):
    with qtbot.waitSignal(search.results_changed, timeout=2000) as sig:
        qtbot.keyClicks(search.query, "weights")
    assert set(sig.args[0]) == {"conv1/weights", "conv2/weights", "fc/weights",
                                "conv1/weights/read", "conv2/weights/read", "fc/weights/read"}
    assert set(search.result_names()[:3]) == {"conv1/weights", "conv2/weights", "fc/weights"}
    assert search.count_label.text() == "6 matches"


def test_search_modes_and_activation(qtbot, search):
    assert search.query.completer() is None
    search.set_mode("op")
    # Op mode completes the op types present in the graph.
    model = search.query.completer().model()
    ops = [model.index(r, 0).data() for r in range(model.rowCount())]
    assert "Merge" in ops and "FusedBatchNormV3" in ops and len(ops) == len(set(ops))
    search.query.setText("Merge")
    search.run_search()
    assert len(search.result_names()) == 5
    # Down then Enter in the box goes to the second result.
    with qtbot.waitSignal(search.node_activated) as sig:
        qtbot.keyClick(search.query, Qt.Key_Down)
        qtbot.keyClick(search.query, Qt.Key_Return)
    assert sig.args == [search.result_names()[1]]

    search.set_mode("attr")
    search.query.setText("strides=[1, 2, 2, 1]")
    search.run_search()
    assert search.result_names() == ["dw/depthwise_1"]
    item = search.results.topLevelItem(0)
    assert item.text(1) == "strides = [1, 2, 2, 1]"
    with qtbot.waitSignal(search.node_activated) as sig:
        rect = search.results.visualItemRect(item)
        qtbot.mouseClick(search.results.viewport(), Qt.LeftButton, pos=rect.center())
    assert sig.args == ["dw/depthwise_1"]


def test_search_bad_regex_and_no_match_say_so(search):
    search.regex.setChecked(True)
    search.query.setText("([")
    assert search.run_search() == []
    assert "regular expression" in search.count_label.text()
    search.regex.setChecked(False)
    search.query.setText("definitely_not_here")
    search.run_search()
    assert search.count_label.text() == "No matches."
    search.query.clear()
    search.run_search()
    assert search.result_names() == [] and search.count_label.text() == ""


def test_search_follows_document_edits(qtbot, search, doc):
    search.query.setText("probs")
    search.run_search()
    assert search.result_names() == ["probs"]
    gd = type(doc.graph_def)()
    gd.CopyFrom(doc.graph_def)
    for n in gd.node:
        if n.name == "probs":
            n.name = "softmax_out"
    doc.push(gd, "edit")
    qtbot.waitUntil(lambda: search.result_names() == [], timeout=2000)
    assert search.count_label.text() == "No matches."


# --------------------------------------------------------------------------- in the main window
@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, tf1_graph):
    from surgeon_gui.core.model.io import save_graph
    from surgeon_gui.ui.main_window import MainWindow
    monkeypatch.setenv("GRAPH_SURGEON_SETTINGS_DIR", str(tmp_path / "settings"))
    path = tmp_path / "tf1.pb"
    save_graph(tf1_graph[0], path)
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    with qtbot.waitSignal(w.document_opened, timeout=30000):
        w.open_model(path)
    qtbot.waitUntil(lambda: not w.view.layout_pending, timeout=30000)
    return w


def test_window_selection_drives_inspector_and_links_focus_the_view(qtbot, window):
    view, panels = window.view, window.inspection
    assert panels.inspector.document is window.document
    view.focus_node("dw/depthwise_1")
    qtbot.waitUntil(lambda: panels.inspector.current == ("node", "dw/depthwise_1"),
                    timeout=10000)
    # Clicking the Relu input selects the producer in the view, which the inspector follows.
    row = panels.inspector.inputs_list.names().index("Relu")
    click_row(qtbot, panels.inspector.inputs_list, row)
    qtbot.waitUntil(lambda: view.selected_nodes() == ["Relu"], timeout=10000)
    assert panels.inspector.current == ("node", "Relu")
    # A weight is a badge on its consumer: the view selects the consumer, the inspector shows
    # the weight that was asked for.
    panels.inspector.show_node("conv1/Conv2D")
    row = panels.inspector.inputs_list.names().index("conv1/weights/read")
    click_row(qtbot, panels.inspector.inputs_list, row)
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=10000)
    assert view.selected_nodes() == ["conv1/Conv2D"]
    assert panels.inspector.current == ("node", "conv1/weights/read")


def test_window_group_selection_and_ctrl_f_search(qtbot, window):
    view, panels = window.view, window.inspection
    view.collapse_all()
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=10000)
    view.select(["scope:bn2"])
    assert panels.inspector.current == ("group", "bn2")
    assert panels.inspector.group_labels["nodes"].text() == "24"

    view.setFocus()
    qtbot.keyClick(window, Qt.Key_F, Qt.ControlModifier)
    qtbot.waitUntil(lambda: panels.search.query.hasFocus(), timeout=5000)
    qtbot.keyClicks(panels.search.query, "FusedBatchNormV3_1")
    qtbot.waitUntil(lambda: len(panels.search.result_names()) == 18, timeout=5000)
    # The three ops named exactly so come first, before the Switches inside them.
    assert panels.search.result_names()[:3] == [f"bn{i}/cond/FusedBatchNormV3_1"
                                                for i in (1, 2, 3)]
    # Matches are highlighted in the view once typing pauses.
    qtbot.waitUntil(lambda: len(view.highlighted()) == 18, timeout=5000)
    assert set(view.highlighted().values()) == {"search"}
    # Enter goes to the first result: its groups open, it is selected and inspected.
    first = panels.search.result_names()[0]
    qtbot.keyClick(panels.search.query, Qt.Key_Return)
    qtbot.waitUntil(lambda: view.selected_nodes() == [first], timeout=10000)
    assert panels.inspector.current == ("node", first)
    assert view.item_for(first) is not None
    # Escape in the box clears the query and the search highlight.
    qtbot.keyClick(panels.search.query, Qt.Key_Escape)
    assert panels.search.query.text() == "" and not view.highlighted()


def test_closing_the_model_empties_the_panels(qtbot, window):
    panels = window.inspection
    window.view.focus_node("probs")
    qtbot.waitUntil(lambda: panels.inspector.current == ("node", "probs"), timeout=10000)
    panels.search.query.setText("probs")
    panels.search.run_search()
    window.close_model()
    assert window.document is None
    assert panels.inspector.document is None and panels.inspector.current is None
    assert panels.search.result_names() == [] and panels.search.count_label.text() == \
        "No model open."


def test_big_const_statistics_are_computed_in_the_background(qtbot, inspector, doc):
    inspector.ASYNC_VALUES = 100  # conv1/weights (216 values) counts as big here
    inspector.show_node("conv1/weights")
    # The panel is filled at once; the statistics follow when the job ends.
    assert inspector.first_values.text() == "Computing statistics…"
    assert inspector.save_button.isEnabled()
    qtbot.waitUntil(lambda: inspector.details.const is not None, timeout=10000)
    arr = const_value(doc.graph.node("conv1/weights"))
    assert float(inspector.stat_labels["max"].text()) == pytest.approx(float(arr.max()), rel=1e-5)
    assert sum(inspector.histogram.counts) == 216 and inspector.histogram.isVisible()
    # A result that arrives after the user moved on is dropped.
    inspector.show_node("conv2/weights")
    inspector.show_node("Relu")
    qtbot.waitUntil(lambda: inspector._stats_worker._finished.is_set(), timeout=10000)
    qtbot.wait(50)
    assert inspector.current == ("node", "Relu") and not inspector.value_section.isVisible()


def test_histogram_draws_one_bar_per_non_empty_bin(qtbot, inspector):
    from PySide6.QtGui import QPalette
    inspector.show_node("conv1/weights")
    h = inspector.histogram
    h.resize(240, 90)
    image = h.grab().toImage()
    bar = h.palette().color(QPalette.Highlight).rgb()
    plot = h._plot_rect()
    y = int(plot.bottom()) - 3  # just above the bottom: every non-empty bin has a bar there
    columns = [x for x in range(int(plot.left()) + 1, int(plot.right()) - 1)
               if image.pixel(x, y) == bar]
    assert columns, "no bar drawn"
    # The centre column of each bin is bar-coloured exactly when the bin holds values.
    n = len(h.counts)
    w = plot.width() / n
    coloured = [image.pixel(int(plot.left() + (i + 0.5) * w), y) == bar for i in range(n)]
    assert coloured == [c > 0 for c in h.counts]


def test_back_returns_along_followed_links(qtbot, inspector):
    assert not inspector.back_button.isEnabled()
    inspector.show_node("conv1/BiasAdd")
    emitted = []
    inspector.node_activated.connect(emitted.append)
    # Follow two links (the test plays the view: it shows what was activated).
    inspector.node_activated.connect(lambda name: inspector.set_selection([name]))
    click_row(qtbot, inspector.inputs_list, inspector.inputs_list.names().index("conv1/Conv2D"))
    click_row(qtbot, inspector.inputs_list, inspector.inputs_list.names().index("input"))
    assert inspector.current == ("node", "input") and inspector.back_button.isEnabled()
    qtbot.mouseClick(inspector.back_button, Qt.LeftButton)
    assert inspector.current == ("node", "conv1/Conv2D")
    qtbot.mouseClick(inspector.back_button, Qt.LeftButton)
    assert inspector.current == ("node", "conv1/BiasAdd")
    assert emitted == ["conv1/Conv2D", "input", "conv1/Conv2D", "conv1/BiasAdd"]
    assert not inspector.back_button.isEnabled()
    # Sub-scopes of a group are followed the same way.
    inspector.show_group("bn1")
    click_row(qtbot, inspector.children_list, inspector.children_list.names().index("bn1/cond"))
    qtbot.mouseClick(inspector.back_button, Qt.LeftButton)
    assert inspector.current == ("group", "bn1")
    assert emitted[-1] == "scope:bn1"


def test_a_graph_output_says_so(inspector, doc):
    """musicnn's model/Sigmoid showed only a greyed "Consumers (0)": an output of the graph
    says it is one; a node that is read does not."""
    (out,) = doc.graph.outputs
    inspector.set_selection([out])
    assert inspector.consumers_section.title() == "Consumers (0) — a graph output"
    inspector.set_selection(["fc/MatMul"])
    assert inspector.consumers_section.title().startswith("Consumers (") and \
        "graph output" not in inspector.consumers_section.title()
