"""Op documentation in the inspector (what Netron shows): TensorFlow's own text for the op, its
inputs and its attributes."""
from PySide6.QtWidgets import QTableWidget

from surgeon_gui.core.history.document import Document
from surgeon_gui.core.viewmodel.opdocs import op_doc, parse_docstring
from surgeon_gui.ui.inspector import InspectorPanel


def test_op_doc_reads_tensorflows_documentation():
    d = op_doc("Conv2D")
    assert "convolution" in d.summary.lower()
    assert d.inputs == ["input", "filter"]
    assert "strides" in d.attrs and "stride" in d.args["strides"].lower()
    assert "padding" in d.args["padding"].lower()
    bn = op_doc("FusedBatchNormV3")
    assert list(bn.args)[:5] == ["x", "scale", "offset", "mean", "variance"]
    assert op_doc("NoSuchOpAnywhere") is None


def test_parse_docstring_splits_summary_description_and_args():
    d = parse_docstring("Foo", """Does foo.

  Longer text
  over two lines.

  Args:
    x: A `Tensor`. The input,
      continued here.
    k: An `int`. How many.
    name: A name for the operation (optional).

  Returns:
    A `Tensor`.
  """)
    assert d.summary == "Does foo."
    assert d.description == "Longer text\nover two lines."
    assert d.args == {"x": "A `Tensor`. The input, continued here.", "k": "An `int`. How many."}


def test_inspector_shows_what_the_op_does(qtbot, tf1_graph):
    gd, ins, outs = tf1_graph
    panel = InspectorPanel(Document(gd, None, ins, outs))
    qtbot.addWidget(panel)
    panel.resize(360, 900)
    panel.show()
    conv = next(n.name for n in gd.node if n.op == "Conv2D")
    with qtbot.waitSignal(panel.op_doc.shown, timeout=60_000):
        panel.show_node(conv)
    assert panel.op_doc_section.isVisible()
    text = panel.op_doc.label.text()
    assert "convolution" in text.lower() and "filter" in text
    table = panel.findChild(QTableWidget)
    rows = {table.item(r, 0).text(): table.item(r, 0).toolTip() for r in range(table.rowCount())}
    assert "stride" in rows["strides"].lower()
    # another node of a documented op: from the cache at once
    relu = next(n.name for n in gd.node if n.op == "Relu")
    panel.show_node(relu)
    assert "rectified linear" in panel.op_doc.label.text().lower()
