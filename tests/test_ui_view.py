"""The main window and the graph view, driven headless with pytest-qt on real models."""
import itertools
import os

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDropEvent
from PySide6.QtWidgets import QMenu, QToolButton

from surgeon_gui.core.history.document import GraphChange
from surgeon_gui.ui import style
from surgeon_gui.ui.graph_scene import EdgeItem, FrameItem, GhostItem, GroupItem, NodeItem


@pytest.fixture(autouse=True)
def temp_settings(tmp_path, monkeypatch):
    """Every test gets its own settings file (recent files, geometry)."""
    monkeypatch.setenv("GRAPH_SURGEON_SETTINGS_DIR", str(tmp_path / "settings"))
    return tmp_path / "settings"


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, tf1_graph, mobilenet_v2):
    d = tmp_path_factory.mktemp("models")
    paths = {}
    for name, (gd, _, _) in (("tf1", tf1_graph), ("mnv2", mobilenet_v2)):
        p = d / f"{name}.pb"
        p.write_bytes(gd.SerializeToString())
        paths[name] = str(p)
    bad = d / "garbage.pb"
    bad.write_bytes(b"\x00\x01 this is not a graph \xff" * 10)
    paths["garbage"] = str(bad)
    return paths


@pytest.fixture
def window(qtbot):
    from surgeon_gui.ui.main_window import MainWindow
    w = MainWindow()
    qtbot.addWidget(w)
    w.close_guards.clear()  # tests edit documents; closing must not ask about saving
    w.resize(1200, 800)
    w.show()
    return w


def open_model(qtbot, window, path):
    with qtbot.waitSignal(window.document_opened, timeout=60000):
        window.open_model(path)
    qtbot.waitUntil(lambda: not window.view.layout_pending, timeout=60000)
    return window.document


def items(view, cls):
    return [i for i in view.graph_scene.items_by_key.values() if isinstance(i, cls)]


def click_pos(view, item, local=None):
    r = item.sceneBoundingRect()
    pt = item.mapToScene(local) if local is not None else r.center()
    return view.mapFromScene(pt)


def assert_siblings_do_not_overlap(view):
    tree, placement = view.tree, view.placement
    for container in [""] + list(placement.expanded):
        kids = [view.graph_scene.items_by_key[k] for k in tree.children(container)
                if k in view.graph_scene.items_by_key]
        for a, b in itertools.combinations(kids, 2):
            ra = a.mapRectToScene(a.rect())
            rb = b.mapRectToScene(b.rect())
            assert not ra.adjusted(1, 1, -1, -1).intersects(rb.adjusted(1, 1, -1, -1)), \
                (a.key, b.key)


def assert_ghosts_cover_nothing(view):
    for g in view.graph_scene.ghosts:
        r = g.mapRectToScene(g.r).adjusted(2, 2, -2, -2)
        under = [it for it in view.graph_scene.items(r, Qt.IntersectsItemShape)
                 if isinstance(it, (NodeItem, GroupItem, FrameItem, EdgeItem))]
        assert not under, (g.name, [getattr(it, "key", type(it).__name__) for it in under])


# ---------------------------------------------------------------- opening
def test_start_page_lists_examples_and_opens_one(qtbot, window):
    from surgeon_gui.ui.start_page import bundled_examples
    assert window.stack.currentWidget() is window.start_page
    examples = bundled_examples()
    lst = window.start_page.examples_list
    if not examples:
        pytest.skip("no bundled examples in resources/examples")
    assert lst.count() == len(examples)
    item = lst.item(0)
    rect = lst.visualItemRect(item)
    with qtbot.waitSignal(window.document_opened, timeout=60000):
        qtbot.mouseClick(lst.viewport(), Qt.LeftButton, pos=rect.center())
    assert window.document is not None
    assert window.stack.currentWidget() is window.view
    assert window.recent_files()[0] == os.path.abspath(str(examples[0]))


def test_open_tf1_collapsed_view(qtbot, window, model_files):
    doc = open_model(qtbot, window, model_files["tf1"])
    view = window.view
    assert view.document is doc and window.windowTitle().startswith("tf1.pb")
    keys = set(view.graph_scene.items_by_key)
    # the top level: inputs, groups per layer, activations
    assert {"n:input", "n:is_training", "g:conv1", "g:bn1", "g:fc", "n:probs"} <= keys
    # weights are badges, not boxes
    assert "n:conv1/weights" not in keys and "n:conv1/weights/read" not in keys
    assert_siblings_do_not_overlap(view)
    # group boxes show size and repeated structure (bn1, bn2, bn3 are the same block)
    bn1 = view.graph_scene.items_by_key["g:bn1"]
    assert isinstance(bn1, GroupItem) and bn1.group.size == 24 and bn1.group.repeats == 3
    # training-only machinery stands out
    assert view.graph_scene.items_by_key["n:is_training"].standout
    assert not view.graph_scene.items_by_key["n:probs"].standout
    assert "nodes" in window.info_label.text()


def test_expand_and_collapse_by_double_click_and_chevron(qtbot, window, model_files):
    open_model(qtbot, window, model_files["tf1"])
    view = window.view
    bn1 = view.graph_scene.items_by_key["g:bn1"]
    view.centerOn(bn1)
    qtbot.mouseDClick(view.viewport(), Qt.LeftButton, pos=click_pos(view, bn1))
    qtbot.waitUntil(lambda: not view.layout_pending)
    frame = view.graph_scene.items_by_key["g:bn1"]
    assert isinstance(frame, FrameItem)
    assert isinstance(view.graph_scene.items_by_key["g:bn1/cond"], GroupItem)
    assert_siblings_do_not_overlap(view)
    # children sit inside the frame
    fr = frame.mapRectToScene(frame.rect())
    inner = view.graph_scene.items_by_key["g:bn1/cond"]
    assert fr.contains(inner.mapRectToScene(inner.rect()))
    # the chevron of the frame collapses it again
    view.centerOn(frame)
    qtbot.mouseClick(view.viewport(), Qt.LeftButton,
                     pos=click_pos(view, frame, frame.chevron_rect().center()))
    qtbot.waitUntil(lambda: not view.layout_pending)
    assert isinstance(view.graph_scene.items_by_key["g:bn1"], GroupItem)
    assert "g:bn1/cond" not in view.graph_scene.items_by_key


def test_badges_colours_and_dashed_control_edges(qtbot, window, model_files):
    open_model(qtbot, window, model_files["tf1"])
    view = window.view
    view.expand("conv1")
    view.focus_node("bn1/cond/Const")
    qtbot.waitUntil(lambda: not view.layout_pending)
    conv = view.graph_scene.items_by_key["n:conv1/Conv2D"]
    assert [b.const for b in conv.badges] == ["conv1/weights"]
    assert conv.badges[0].shape == [3, 3, 3, 8]
    # colour families drive the fill; check the pixels the user sees
    relu = view.graph_scene.items_by_key["n:Relu"]
    assert relu.family == "activation" and conv.family == "conv"
    for item, family in ((relu, "activation"), (conv, "conv")):
        view.centerOn(item)
        img = view.viewport().grab().toImage()
        p = view.mapFromScene(item.mapToScene(QPointF(item.w - 6, item.h - 4)))
        got = QColor(img.pixel(p.x(), p.y()))
        want = style.FAMILY_FILL[family]
        assert abs(got.red() - want.red()) + abs(got.green() - want.green()) \
            + abs(got.blue() - want.blue()) < 40, (family, got.name(), want.name())
    # control edges (^switch_t → Const) are dashed, data edges solid
    control = [e for e in view.graph_scene.edge_items if e.edge.control]
    data = [e for e in view.graph_scene.edge_items if not e.edge.control]
    assert control and data
    assert all(e.pen().style() == Qt.DashLine for e in control)
    assert all(e.pen().style() == Qt.SolidLine for e in data)
    # legend lists the op families
    titles = [t for t, _ in view.legend.entries]
    assert "convolution / matmul" in titles and "control flow" in titles
    # ... at the bottom left, away from the top where a model starts, and folds to its title
    legend = view.legend
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: legend.geometry().bottom() > view.viewport().height() // 2)
    assert legend.x() < view.viewport().width() // 4
    assert not legend.collapsed  # room enough: unfolded
    full = legend.height()
    toggle = legend.findChild(QToolButton, "legend_toggle")
    qtbot.mouseClick(toggle, Qt.LeftButton)
    assert legend.collapsed and legend.height() < full / 2
    assert legend.geometry().bottom() > view.viewport().height() - 40
    qtbot.mouseClick(toggle, Qt.LeftButton)
    assert not legend.collapsed and legend.height() == full
    # a cramped view folds it by itself, unless the user chose (they just did: it stays)
    view.legend._user_folded = False
    window.resize(700, 500)
    qtbot.waitUntil(lambda: legend.collapsed)
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: not legend.collapsed)


def test_selection_signal_and_focus(qtbot, window, model_files):
    open_model(qtbot, window, model_files["tf1"])
    view = window.view
    relu6 = view.graph_scene.items_by_key["n:Relu6"]
    view.centerOn(relu6)
    with qtbot.waitSignal(view.selection_changed) as sig:
        qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=click_pos(view, relu6))
    assert sig.args[0] == ["Relu6"] and view.selected_nodes() == ["Relu6"]
    bn2 = view.graph_scene.items_by_key["g:bn2"]
    view.centerOn(bn2)
    with qtbot.waitSignal(view.selection_changed) as sig:
        qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=click_pos(view, bn2))
    assert sig.args[0] == ["scope:bn2"]
    assert set(view.group_members("scope:bn2")) == {n for n in window.document.graph.nodes
                                                    if n.startswith("bn2/")}
    # focus a node deep inside collapsed groups: they open, it is selected and shown
    assert view.focus_node("bn3/cond/FusedBatchNormV3_1/Switch_2")
    qtbot.waitUntil(lambda: not view.layout_pending)
    assert {"bn3", "bn3/cond", "bn3/cond/FusedBatchNormV3_1"} <= view.expanded
    assert view.selected_nodes() == ["bn3/cond/FusedBatchNormV3_1/Switch_2"]
    item = view.item_for("bn3/cond/FusedBatchNormV3_1/Switch_2")
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(item.sceneBoundingRect().center())
    # a weight focuses the op it is a badge on
    assert view.focus_node("conv2/weights")
    qtbot.waitUntil(lambda: not view.layout_pending)
    assert view.selected_nodes() == ["conv2/Conv2D"]
    assert not view.focus_node("no/such/node")


def test_trace_highlights_cones(qtbot, window, model_files):
    open_model(qtbot, window, model_files["tf1"])
    view = window.view
    up = view.trace("Relu6", "inputs")
    assert {"Relu6", "input", "dw/depthwise_1", "bn1/cond/Merge"} <= up and "probs" not in up
    items_ = view.graph_scene.items_by_key
    assert items_["n:input"].highlight == "upstream"
    assert items_["n:probs"].highlight is None
    assert items_["g:bn1"].highlight_count > 0  # collapsed group says how many inside
    lit = [e for e in view.graph_scene.edge_items if e.highlight]
    assert lit and all(items_[e.src].highlight and items_[e.dst].highlight for e in lit)
    down = view.trace("Relu6", "outputs")
    assert "probs" in down and "input" not in down
    assert items_["n:probs"].highlight == "downstream"
    view.set_highlight(None)
    assert all(i.highlight is None for i in items_.values())
    # highlight for other panels: any names and kind
    view.set_highlight({"probs", "bn2/cond/Merge"}, "match")
    assert items_["n:probs"].highlight == "match" and items_["g:bn2"].highlight_count == 1


def test_node_colour_override_and_legend(qtbot, window, model_files):
    open_model(qtbot, window, model_files["tf1"])
    view = window.view
    red = QColor("#d32f2f")
    view.set_node_colors({"probs": red}, [("wrong", red)])
    assert view.graph_scene.items_by_key["n:probs"].fill_override == red
    assert [t for t, _ in view.legend.entries] == ["wrong"]
    view.set_node_colors(None, None)
    assert view.graph_scene.items_by_key["n:probs"].fill_override is None
    assert len(view.legend.entries) == len(style.legend_entries())


def test_context_menu_hooks(qtbot, window, model_files):
    open_model(qtbot, window, model_files["tf1"])
    view = window.view
    seen = []

    def hook(menu: QMenu, names):
        seen.append(list(names))
        menu.addAction("Delete node")
    view.context_menu_hooks.append(hook)
    menu = view.build_context_menu(["Relu6"])
    texts = [a.text() for a in menu.actions()]
    assert seen == [["Relu6"]]
    assert "Trace inputs" in texts and "Delete node" in texts
    menu = view.build_context_menu(["scope:bn1"])
    assert "Expand group" in [a.text() for a in menu.actions()]


def test_diff_marks_follow_document_changes(qtbot, window, model_files):
    doc = open_model(qtbot, window, model_files["tf1"])
    view = window.view
    view.expand("fc")
    qtbot.waitUntil(lambda: not view.layout_pending)
    relu_rect = view.graph_scene.items_by_key["n:Relu"].sceneBoundingRect()
    # an edit: drop Relu (its consumer reads its input), change probs, add a node
    from surgeon_gui.core.model.graph import GraphDef, NodeDef
    gd = GraphDef()
    gd.CopyFrom(doc.graph_def)
    kept = [n for n in gd.node if n.name != "Relu"]
    del gd.node[:]
    gd.node.extend(kept)
    for n in gd.node:
        for i, inp in enumerate(n.input):
            if inp == "Relu":
                n.input[i] = "bn1/cond/Merge"
        if n.name == "probs":
            n.attr["_note"].s = b"changed"
        if n.name == "fc/bn_fc/cond/Merge":
            n.attr["_note"].s = b"changed"
    extra = NodeDef(name="extra", op="Identity", input=["probs"])
    extra.attr["T"].type = 1
    gd.node.append(extra)
    step = doc.push(gd, "edit")
    assert step.delta.removed == {"Relu"} and step.delta.added == {"extra"}
    assert {"probs", "fc/bn_fc/cond/Merge"} <= step.delta.changed
    qtbot.waitUntil(lambda: not view.layout_pending)
    items_ = view.graph_scene.items_by_key
    assert "n:Relu" not in items_ and "n:extra" in items_
    assert items_["n:extra"].mark == "added"
    assert items_["n:probs"].mark == "changed"
    assert "fc" in view.expanded  # expansion survives the change
    assert items_["g:fc/bn_fc"].mark_counts == {"changed": 1}  # collapsed group is marked
    # group boxes describe the new graph, not the one before the edit
    assert all(it.group is view.tree.groups[k[2:]] for k, it in items_.items()
               if k.startswith("g:"))
    ghosts = view.graph_scene.ghosts
    assert [g.name for g in ghosts] == ["Relu"]
    gc, rc = ghosts[0].sceneBoundingRect().center(), relu_rect.center()
    # next to where Relu used to be, covering no live box, group header or edge
    assert abs(gc.x() - rc.x()) < 4 * relu_rect.width() and abs(gc.y() - rc.y()) < 200
    assert_ghosts_cover_nothing(view)
    view.clear_marks()
    assert not view.graph_scene.ghosts and items_["n:extra"].mark is None
    # explicit marks (compare with another file)
    view.show_diff_marks(GraphChange(changed={"Relu6"}, removed={"bn2/cond/only_in_other"}))
    assert view.graph_scene.items_by_key["n:Relu6"].mark == "changed"
    # a node only the other file has is counted on the group it would sit in
    assert view.graph_scene.items_by_key["g:bn2"].mark_counts == {"removed": 1}


@pytest.mark.parametrize("passes", [("training_flags", "remove_switch_merge"),
                                    ("training_flags", "remove_switch_merge", "fold_batch_norm")])
def test_every_removed_visible_node_gets_a_ghost_that_covers_nothing(qtbot, window,
                                                                     model_files, passes):
    open_model(qtbot, window, model_files["tf1"])
    view = window.view
    view.expand_all()
    qtbot.waitUntil(lambda: not view.layout_pending)
    panel = window.surgery.passes
    for pid in passes:
        visible = {k[2:] for k in view.graph_scene.items_by_key if k.startswith("n:")}
        before = set(window.document.graph.nodes)
        panel.select_pass(pid)
        qtbot.mouseClick(panel.apply_all_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: not panel.busy, timeout=60000)
        qtbot.waitUntil(lambda: not view.layout_pending)
    removed = before - set(window.document.graph.nodes)
    assert removed & visible
    assert {g.name for g in view.graph_scene.ghosts} == removed & visible
    assert_ghosts_cover_nothing(view)
    # ghosts do not pile up on each other either
    rects = [g.mapRectToScene(g.r) for g in view.graph_scene.ghosts]
    assert not any(a.intersects(b) for a, b in itertools.combinations(rects, 2))


def test_set_document_switches_graphs_keeping_expansion(qtbot, window, model_files):
    doc = open_model(qtbot, window, model_files["tf1"])
    view = window.view
    view.expand("bn2")
    qtbot.waitUntil(lambda: not view.layout_pending)
    from surgeon_gui.core.history.document import Document
    other = Document(doc.graph_def)
    view.set_document(other)
    qtbot.waitUntil(lambda: not view.layout_pending)
    assert view.document is other and "bn2" in view.expanded
    view.set_document(doc)
    assert view.document is doc


def test_mobilenet_blocks_and_expand_all(qtbot, window, model_files):
    open_model(qtbot, window, model_files["mnv2"])
    view = window.view
    groups = items(view, GroupItem)
    labels = {g.group.label for g in groups}
    assert {f"block_{i}" for i in range(1, 17)} <= labels
    same = [g for g in groups if g.group.label in ("block_2", "block_4")]
    assert same[0].group.signature == same[1].group.signature and same[0].group.repeats == 10
    assert_siblings_do_not_overlap(view)
    view.expand_all()
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=60000)
    nodes = items(view, NodeItem)
    assert len(nodes) == len(view.tree.drawn_nodes())
    assert not items(view, GroupItem)
    assert_siblings_do_not_overlap(view)
    view.collapse_all()
    qtbot.waitUntil(lambda: not view.layout_pending)
    assert len(view.graph_scene.items_by_key) < 10


def test_async_layout_keeps_the_window_live(qtbot, window, model_files, monkeypatch):
    from surgeon_gui.ui import graph_view
    monkeypatch.setattr(graph_view, "ASYNC_UNITS", 5)  # force the worker path
    open_model(qtbot, window, model_files["mnv2"])
    view = window.view
    view.expand_all()
    assert view.layout_pending  # computed in a worker, the GUI thread returned at once
    with qtbot.waitSignal(view.layout_finished, timeout=60000):
        pass
    assert len(items(view, NodeItem)) == len(view.tree.drawn_nodes())


def test_bad_files_show_an_error_not_a_crash(qtbot, window, model_files, tmp_path):
    for path in (model_files["garbage"], str(tmp_path / "missing.pb")):
        window.open_model(path)
        qtbot.waitUntil(lambda: window.last_error is not None, timeout=30000)
        assert window.document is None
        assert os.path.basename(path) in window.statusBar().currentMessage() or \
            os.path.basename(path) in window.last_error
        assert "Traceback" not in window.last_error
    assert window.stack.currentWidget() is window.start_page


def test_export_png_and_svg(qtbot, window, model_files, tmp_path):
    open_model(qtbot, window, model_files["tf1"])
    png, svg = tmp_path / "v.png", tmp_path / "v.svg"
    window.view.export_image(str(png))
    window.view.export_image(str(svg))
    assert png.stat().st_size > 5000
    text = svg.read_text()
    assert "<svg" in text and "Softmax" in text


def test_recent_files_and_geometry_persist(qtbot, window, model_files, temp_settings):
    open_model(qtbot, window, model_files["tf1"])
    window.resize(1300, 760)
    window.close()
    assert (temp_settings / "GraphSurgeon.ini").exists()
    from surgeon_gui.ui.main_window import MainWindow
    again = MainWindow()
    qtbot.addWidget(again)
    again.close_guards.clear()
    assert again.recent_files()[0] == os.path.abspath(model_files["tf1"])
    again.show()
    qtbot.waitExposed(again)
    # (the offscreen screen is 800 px wide: Qt clamps the restored width, not the height)
    assert again.size().height() == 760
    assert again.recent_menu.actions()[0].text() == os.path.abspath(model_files["tf1"])


def test_drop_a_file_opens_it(qtbot, window, model_files):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(model_files["tf1"])])
    ev = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(window.document_opened, timeout=60000):
        window.dropEvent(ev)
    assert window.document.path == model_files["tf1"]


def test_undo_actions_bound_to_the_stack(window):
    from PySide6.QtGui import QKeySequence
    assert QKeySequence(QKeySequence.Undo) in window.undo_action.shortcuts()
    assert QKeySequence("Ctrl+Y") in window.redo_action.shortcuts()
    assert not window.undo_action.isEnabled()


def test_add_panel_lists_docks(window):
    from PySide6.QtWidgets import QLabel
    dock = window.add_panel(QLabel("hi"), "My Panel")
    assert dock.objectName() == "dock_my_panel"
    assert dock.toggleViewAction() in window.panels_menu.actions()


# ---------------------------------------------------------------- the surgeon-gui script
def test_screenshot_mode_writes_png(qapp, model_files, tmp_path, capsys):
    from surgeon_gui.ui.app import main
    out = tmp_path / "shot.png"
    assert main([model_files["tf1"], "--screenshot", str(out), "--expand-all"]) == 0
    assert out.stat().st_size > 20000
    from PySide6.QtGui import QImage
    img = QImage(str(out))
    assert img.width() == 1400 and img.height() == 900


def test_screenshot_mode_with_passes(qapp, model_files, tmp_path):
    from surgeon_gui.ui.app import main
    out = tmp_path / "after.png"
    assert main([model_files["tf1"], "--apply", "remove_dropout", "--screenshot", str(out)]) == 0
    assert out.stat().st_size > 20000


def test_screenshot_mode_failures_are_one_line(qapp, model_files, tmp_path, capsys):
    from surgeon_gui.ui.app import main
    out = tmp_path / "x.png"
    assert main([model_files["garbage"], "--screenshot", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("surgeon-gui: error:") and "garbage.pb" in err[0]
    assert not out.exists()
    assert main([str(tmp_path / "nope.pb"), "--screenshot", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main([model_files["tf1"], "--apply", "no_such_pass", "--screenshot", str(out)]) == 1
    assert "no_such_pass" in capsys.readouterr().err


def test_view_settings_left_to_right_and_constants(qtbot, window, model_files):
    open_model(qtbot, window, model_files["tf1"])
    view = window.view
    window.horizontal_action.trigger()  # View ▸ Left-to-Right Layout
    qtbot.waitUntil(lambda: not view.layout_pending)
    items_ = view.graph_scene.items_by_key
    assert items_["n:input"].pos().x() < items_["n:probs"].pos().x()
    assert_siblings_do_not_overlap(view)
    window.horizontal_action.trigger()
    qtbot.waitUntil(lambda: not view.layout_pending)
    items_ = view.graph_scene.items_by_key
    assert items_["n:input"].pos().y() < items_["n:probs"].pos().y()
    window.show_constants_action.trigger()  # every Const and /read as a box
    qtbot.waitUntil(lambda: not view.layout_pending)
    view.expand("conv1")
    assert "n:conv1/weights" in view.graph_scene.items_by_key
    assert not view.graph_scene.items_by_key["n:conv1/Conv2D"].badges
    window.show_constants_action.trigger()
    assert "n:conv1/weights" not in view.graph_scene.items_by_key


def test_keyboard_zoom_pan_and_minimap(qtbot, window, model_files):
    open_model(qtbot, window, model_files["mnv2"])
    view = window.view
    view.setFocus()
    s0 = view.transform().m11()
    qtbot.keyClick(view, Qt.Key_Plus)
    assert view.transform().m11() == pytest.approx(s0 * 1.25)
    qtbot.keyClick(view, Qt.Key_Minus)
    assert view.transform().m11() == pytest.approx(s0)
    v0 = view.verticalScrollBar().value()
    qtbot.keyClick(view, Qt.Key_Down)
    assert view.verticalScrollBar().value() > v0
    view.fit()
    r = view.graph_scene.itemsBoundingRect()
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(r.adjusted(10, 10, -10, -10))
    # the minimap: rendered after layout, a click moves the view there
    qtbot.waitUntil(lambda: view.minimap.isVisible(), timeout=5000)
    view.resetTransform()
    before = view.mapToScene(view.viewport().rect().center())
    mm = view.minimap
    qtbot.mouseClick(mm, Qt.LeftButton, pos=QPoint(mm.width() // 2, mm.height() - 12))
    after = view.mapToScene(view.viewport().rect().center())
    assert after.y() > before.y() + 100


def test_cancel_loading_keeps_the_window_usable(qtbot, window, model_files):
    window.open_model(model_files["mnv2"])
    window.cancel_loading()
    qtbot.waitUntil(lambda: window._load_worker is None, timeout=30000)
    assert not window.progress_bar.isVisible()
    # cancelled before it finished (or it had already finished): either way, no crash and
    # the next open works
    open_model(qtbot, window, model_files["tf1"])
    assert window.document.path == model_files["tf1"]


def _differing_pixels(a, b, tolerance: int = 48) -> int:
    """Pixels whose colour differs visibly (a channel by more than ``tolerance`` of 255)."""
    a, b = a.toImage(), b.toImage()
    assert a.size() == b.size()
    n = 0
    for x in range(a.width()):
        for y in range(a.height()):
            p, q = a.pixel(x, y), b.pixel(x, y)
            if p != q and max(abs(((p >> s) & 255) - ((q >> s) & 255)) for s in (0, 8, 16)) \
                    > tolerance:
                n += 1
    return n


def _ink(pixmap) -> int:
    img = pixmap.toImage()
    bg = style.BACKGROUND.rgb() | 0xFF000000
    return sum(1 for x in range(img.width()) for y in range(img.height())
               if img.pixel(x, y) | 0xFF000000 != bg)


def test_long_edges_stroke_only_exposed_pieces_and_look_the_same(qtbot, window, model_files):
    from PySide6.QtGui import QTransform
    from surgeon_gui.ui.graph_scene import PIECE_LENGTH
    open_model(qtbot, window, model_files["mnv2"])
    view = window.view
    view.expand_all()
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=60000)
    long = [e for e in view.graph_scene.edge_items if e.pieces]
    assert any(e.edge.control for e in long) and any(not e.edge.control for e in long)
    view.minimap.enabled = False
    view.minimap.hide()
    view.setTransform(QTransform())
    for control in (False, True):
        e = max((e for e in long if e.edge.control == control), key=lambda e: e.path.length())
        # the pieces run from the edge's start to its end, each short, all inside the bounds
        first, last = e.pieces[0][1], e.pieces[-1][1]
        assert (first.pointAtPercent(0) - e.start).manhattanLength() < 0.5
        assert (last.pointAtPercent(1) - e.end).manhattanLength() < 0.5
        for bounds, piece, _ in e.pieces:
            cr = piece.controlPointRect()
            assert cr.width() + cr.height() <= PIECE_LENGTH + 1e-6
            b = e.boundingRect()
            assert b.contains(cr.topLeft()) and b.contains(cr.bottomRight())
        # hit tests and tooltips use the stroke, not the region the open curve encloses
        import math
        for t in (0.3, 0.7):
            on = e.path.pointAtPercent(t)
            a = math.radians(e.path.angleAtPercent(t))
            off = on + QPointF(math.sin(a), math.cos(a)) * 25  # 25 px across the line
            assert e.shape().contains(on) and not e.shape().contains(off)
        total = sum(p.length() for _, p, _ in e.pieces)
        assert abs(total - e.path.length()) < 0.01 * e.path.length()
        # each piece's dash offset (estimated, in floats) moves on by the piece's length, so
        # the dashes run on where two pieces meet
        offsets = [done for _, _, done in e.pieces]
        for (_, p, done), nxt in zip(e.pieces, offsets[1:]):
            assert abs((nxt - done) - p.length()) <= 0.01 * p.length() + 0.5
        # a view of the middle of the edge: drawn in pieces or whole, the same picture
        view.centerOn(e.path.pointAtPercent(0.5))
        qtbot.wait(20)
        pieces = view.viewport().grab()
        saved, e.pieces = e.pieces, None
        view.viewport().update()
        whole = view.viewport().grab()
        e.pieces = saved
        if not control:  # antialiasing may differ by a shade where two pieces meet
            assert _differing_pixels(pieces, whole) < 12
        else:  # the dash pattern runs on across pieces (phase within a pixel or so)
            assert abs(_ink(pieces) - _ink(whole)) < 0.02 * _ink(whole)


def test_far_zoom_draws_the_batched_overview(qtbot, window, model_files):
    from PySide6.QtGui import QTransform
    open_model(qtbot, window, model_files["mnv2"])
    view = window.view
    view.expand_all()
    qtbot.waitUntil(lambda: not view.layout_pending, timeout=60000)
    view.setTransform(QTransform.fromScale(0.5, 0.5))
    assert not view.far_zoom()
    view.fit()
    assert view.transform().m11() < 0.2 and view.far_zoom()
    ov = view.graph_scene.overview()
    boxes = [it for it in view.graph_scene.items_by_key.values() if not isinstance(it, FrameItem)]
    assert sum(len(r) for _, r in ov.fills.values()) == len(boxes)
    assert len(ov.frames) == len(items(view, FrameItem))
    assert len(ov.lines) >= len([e for e in view.graph_scene.edge_items if not e.edge.control])
    assert not ov.outlines
    img = view.viewport().grab().toImage()
    bg = style.BACKGROUND.rgb()
    drawn = sum(1 for x in range(0, img.width(), 3) for y in range(0, img.height(), 3)
                if img.pixel(x, y) | 0xFF000000 != bg | 0xFF000000)
    assert drawn > 50
    # a highlight shows in the overview (rebuilt, edge lines kept) and in the minimap
    lines = ov.lines
    name = next(it.name for it in boxes if isinstance(it, NodeItem))
    view.set_highlight({name}, "search")
    ov2 = view.graph_scene.overview()
    assert ov2 is not ov and ov2.lines is lines
    assert [len(r) for _, r in ov2.outlines.values()] == [1]
    view.minimap._pixmap = None
    qtbot.waitUntil(lambda: view.minimap._pixmap is not None, timeout=3000)
