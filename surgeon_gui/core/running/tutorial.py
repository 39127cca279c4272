"""A session as a tutorial: one self-contained HTML page (or Markdown + PNGs) a teacher can share.

For each step: the explanation, a before/after picture of the neighbourhood of the changes with the
diff marks, the worked numbers of one representative match, and the node counts; at the end the
comparison table of the original and the result with its verdict ("outputs equal: PASS").

Pictures are drawn by the GUI's own graph scene, which needs Qt. This module stays Qt-free: the
caller passes a ``render`` function (``surgeon_gui.ui.tutorial_pictures.render_png``) that turns a
small GraphDef plus diff marks into PNG bytes. Without one (no PySide6, or no way to start it) the
tutorial is written without pictures and says so; everything else is the same.

Steps come either from the GUI's undo history (one step per command) or from
:func:`trace_recipe`, which replays a recipe the way ``surgeon optimize`` does but keeps the graph
before and after every pass (the ``inference`` preset is one step per pass that changed
something), so the final graph is byte-identical to the CLI's.
"""
from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..history.recipe import Recipe, RecipeStep, apply_step
from ..model.graph import Graph, GraphDef, node_of
from ..model.files import write_atomic
from ..passes import PRESET_ID, get_pass
from ..passes.base import PassReport
from ..passes.pipeline import run_pipeline
from .worked import WorkedNumbers, worked_numbers

#: Most nodes drawn in one picture (the changes first, then their neighbours).
PICTURE_NODES = 30

#: ``render(graph_def, marks) -> PNG bytes``: marks maps node name → "added" | "changed" |
#: "removed" | "" (context).
Renderer = Callable[[GraphDef, dict], bytes]


@dataclass
class TraceStep:
    """One step of a session: the graphs before and after it and what it reported."""
    label: str
    before: Graph
    after: Graph
    pass_id: str | None = None
    params: dict = field(default_factory=dict)
    report: PassReport | None = None
    #: For a hand edit: its kind and arguments.
    edit: str | None = None
    args: dict = field(default_factory=dict)
    #: Extra text for this step (a lesson's own explanation).
    text: str = ""


@dataclass
class TutorialStep:
    label: str
    explanation: str
    nodes_before: int
    nodes_after: int
    removed: list[str]
    added: list[str]
    changed: list[str]
    worked: WorkedNumbers | None = None
    worked_error: str = ""
    picture_before: bytes | None = None
    picture_after: bytes | None = None
    #: How many matches the step applied (passes) and which one the worked numbers show.
    matches: int = 0


@dataclass
class Tutorial:
    title: str
    source: str
    steps: list[TutorialStep]
    comparison: dict | None = None
    comparison_error: str = ""
    picture_note: str = ""

    @property
    def verdict(self) -> str:
        if self.comparison is None:
            return "outputs equal: not compared" + (f" ({self.comparison_error})"
                                                     if self.comparison_error else "")
        ok = all(o["allclose"] for o in self.comparison["outputs"].values())
        return f"outputs equal: {'PASS' if ok else 'FAIL'}"


# ---------------------------------------------------------------------- steps
def trace_recipe(graph: Graph, recipe: Recipe,
                 should_stop: Callable[[], bool] | None = None) -> tuple[Graph, list[TraceStep]]:
    """Replay ``recipe`` on ``graph`` keeping every step's before/after graph.

    The preset becomes one step per pass that changed something (as in the GUI's history).
    Returns the final graph (what :func:`~surgeon_gui.core.history.recipe.replay` gives) and the
    steps that changed the graph.
    """
    if recipe.inputs is not None or recipe.outputs is not None:
        graph = graph.with_io(recipe.inputs, recipe.outputs)
    out: list[TraceStep] = []
    for i, step in enumerate(recipe.steps, 1):
        if should_stop and should_stop():
            raise InterruptedError("cancelled")
        if step.is_pass and step.pass_id == PRESET_ID:
            prev = graph
            new, steps = run_pipeline(graph, [PRESET_ID], should_stop=should_stop)
            cur = prev
            for s in steps:
                nxt = Graph(s.result.graph_def, _inputs_after(cur, s.result.graph_def),
                            cur.given_outputs, source=cur.source)
                out.append(TraceStep(_label(s.pass_id, s.result.report), cur, nxt, s.pass_id,
                                     dict(s.params), s.result.report))
                cur = nxt
            graph = new
            continue
        new, reports = apply_step(graph, step, f"step {i}")
        if step.is_pass:
            if reports and reports[0].modified:
                out.append(TraceStep(_label(step.pass_id, reports[0]), graph, new, step.pass_id,
                                     dict(step.params), reports[0]))
        else:
            out.append(TraceStep(step.label, graph, new, edit=step.edit, args=dict(step.args)))
        graph = new
    return graph, out


def _inputs_after(before: Graph, gd: GraphDef):
    from ..passes.pipeline import inputs_after
    return inputs_after(before, gd)


def _label(pass_id: str, report: PassReport) -> str:
    n = len(report.applied)
    return f"{get_pass(pass_id).title} ({n} match{'es' if n != 1 else ''})"


def step_from_recipe_step(step: RecipeStep) -> dict:
    return step.to_dict()


# ---------------------------------------------------------------------- building
def build_tutorial(title: str, source: str, steps: list[TraceStep],
                   compare: dict | None = None, compare_error: str = "",
                   render: Renderer | None = None, render_note: str = "",
                   feeds: dict | None = None, worked: bool = True,
                   should_stop: Callable[[], bool] | None = None) -> Tutorial:
    """The tutorial of ``steps``; ``compare`` is a comparison dict
    (:meth:`~surgeon_gui.core.running.compare.Comparison.to_dict`) of the original and the
    result. ``render`` draws the pictures (see :data:`Renderer`); without it there are none."""
    out = []
    for st in steps:
        if should_stop and should_stop():
            raise InterruptedError("cancelled")
        before_names = {n.name for n in st.before.graph_def.node}
        after_names = {n.name for n in st.after.graph_def.node}
        removed = sorted(before_names - after_names, key=st.before.order.get)
        added = sorted(after_names - before_names, key=st.after.order.get)
        changed = _changed(st.before, st.after, before_names & after_names)
        if st.pass_id:
            p = get_pass(st.pass_id)
            explanation = (st.text + "\n\n" if st.text else "") + p.explanation
        else:
            from ..history.edits import describe
            explanation = ((st.text + "\n\n") if st.text else "") + \
                f"A hand edit: {describe(st.edit, st.args)}."
        ts = TutorialStep(st.label, explanation, len(st.before), len(st.after), removed, added,
                          changed)
        if st.report is not None:
            applied = st.report.applied
            ts.matches = len(applied)
            if applied and worked:
                try:
                    ts.worked = worked_numbers(st.before, st.pass_id, applied[0].key,
                                               st.params, feeds=_feeds_for(feeds, st.before))
                except Exception as e:  # noqa: BLE001 - the step is still shown
                    ts.worked_error = _short(e)
        out.append(ts)
    tut = Tutorial(title, source, out, compare, compare_error, render_note)
    if render is not None:
        add_pictures(tut, steps, render)
    elif not tut.picture_note:
        tut.picture_note = "no pictures: drawing them needs PySide6 (the GUI's graph scene)"
    return tut


def step_focus(st: TraceStep) -> set[str]:
    """The nodes a step's picture is centred on: its first applied match (nodes, removed,
    added, changed), else everything the step changed."""
    if st.report is not None and st.report.applied:
        rep = st.report.applied[0]
        return set(rep.nodes) | set(rep.removed) | set(rep.added) | set(rep.changed) | {rep.key}
    before = {n.name for n in st.before.graph_def.node}
    after = {n.name for n in st.after.graph_def.node}
    return (before ^ after) | set(_changed(st.before, st.after, before & after))


def add_pictures(tut: Tutorial, steps: list[TraceStep], render: Renderer) -> None:
    """Draw each step's before/after pictures with ``render`` (on the thread Qt needs)."""
    for ts, st in zip(tut.steps, steps):
        focus = step_focus(st)
        if not focus:
            continue
        try:
            ts.picture_before, ts.picture_after = _pictures(st, focus, render)
        except Exception as e:  # noqa: BLE001 - no picture, the rest stands
            tut.picture_note = tut.picture_note or f"pictures could not be drawn: {_short(e)}"


def _feeds_for(feeds, graph: Graph):
    if not feeds:
        return None
    return {k: v for k, v in feeds.items() if node_of(k) in graph}


def _short(e: Exception) -> str:
    text = getattr(e, "problem", None) or str(e) or type(e).__name__
    return text.strip().splitlines()[0][:200]


def _changed(before: Graph, after: Graph, common: set[str]) -> list[str]:
    out = []
    bn, an = before.nodes, after.nodes
    for name in common:
        if bn[name].SerializeToString(deterministic=True) != \
                an[name].SerializeToString(deterministic=True):
            out.append(name)
    return sorted(out, key=before.order.get)


def neighbourhood(graph: Graph, centre: set[str], limit: int = PICTURE_NODES) -> set[str]:
    """The nodes of ``centre`` present in ``graph`` plus their inputs and readers, up to
    ``limit`` nodes (centre first, in graph order)."""
    names = [n for n in sorted(centre & set(graph.nodes), key=graph.order.get)][:limit]
    chosen = set(names)
    ring = []
    for n in names:
        ring += [node_of(t) for t in graph.nodes[n].input]
        ring += [c for c, _, _ in graph.consumers(n)]
    for n in sorted(set(ring) - chosen, key=lambda x: graph.order.get(x, 0)):
        if len(chosen) >= limit:
            break
        if n in graph.nodes:
            chosen.add(n)
    return chosen


def subgraph(graph: Graph, names: set[str]) -> GraphDef:
    """The nodes ``names`` as a GraphDef, inputs from outside dropped (a picture, not a model)."""
    gd = GraphDef()
    for node in graph.graph_def.node:
        if node.name in names:
            n = gd.node.add()
            n.CopyFrom(node)
            del n.input[:]
            n.input.extend(t for t in node.input if node_of(t) in names)
    return gd


def _pictures(st: TraceStep, focus: set[str], render: Renderer) -> tuple[bytes, bytes]:
    before_names = {n.name for n in st.before.graph_def.node}
    after_names = {n.name for n in st.after.graph_def.node}
    nb = neighbourhood(st.before, focus)
    # the same nodes after, plus what was added there and the nodes around the additions
    na = (nb & after_names) | (focus & after_names)
    added = sorted((focus & after_names) - before_names, key=st.after.order.get)
    for n in added:
        for t in st.after.nodes[n].input:
            if len(na) < PICTURE_NODES and node_of(t) in after_names:
                na.add(node_of(t))
        for c, _, _ in st.after.consumers(n):
            if len(na) < PICTURE_NODES:
                na.add(c)
    marks_b = {n: ("removed" if n not in after_names else
                   "changed" if n in focus and _differs(st, n) else "") for n in nb}
    marks_a = {n: ("added" if n not in before_names else
                   "changed" if n in focus and _differs(st, n) else "") for n in na}
    return (render(subgraph(st.before, nb), marks_b), render(subgraph(st.after, na), marks_a))


def _differs(st: TraceStep, name: str) -> bool:
    a, b = st.before.nodes.get(name), st.after.nodes.get(name)
    return a is not None and b is not None and \
        a.SerializeToString(deterministic=True) != b.SerializeToString(deterministic=True)


# ---------------------------------------------------------------------- writing
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #1f2933; line-height: 1.45; }
h1 { border-bottom: 2px solid #0ca5b0; padding-bottom: .2em; }
h2 { margin-top: 2.2em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
code, pre { background: #f3f5f7; border-radius: 3px; }
pre { padding: .6em; overflow-x: auto; }
table { border-collapse: collapse; margin: .6em 0; font-size: 90%; }
th, td { border: 1px solid #d0d7de; padding: .2em .5em; text-align: left;
         overflow-wrap: anywhere; }
th { background: #f3f5f7; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: .2em; }
.pictures { display: flex; gap: 1em; flex-wrap: wrap; align-items: flex-start; }
.pictures figure { margin: 0; flex: 1 1 45%; border: 1px solid #d0d7de; padding: .4em; }
.pictures figure.wide { flex-basis: 100%; }
.pictures img { max-width: 100%; }
figcaption { font-size: 85%; color: #52606d; }
.counts { font-weight: 600; }
.pass { color: #2b8a3e; } .fail { color: #c92a2a; }
.verdict { font-size: 140%; font-weight: 700; }
details > summary { cursor: pointer; color: #52606d; }
.legend span { display: inline-block; padding: 0 .4em; margin-right: .4em; border-radius: 3px; }
"""


def markdown_to_html(text: str) -> str:
    """Markdown (the passes' explanations, lessons) as HTML."""
    from markdown_it import MarkdownIt
    return MarkdownIt("commonmark").enable("table").render(text)


def _aspect(png: bytes) -> float:
    """Width / height of a PNG, from its header (1.0 when it is not a PNG)."""
    if len(png) < 24 or png[:8] != b"\x89PNG\r\n\x1a\n":
        return 1.0
    w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return w / h if h else 1.0


def _counts(s: TutorialStep) -> str:
    return (f"nodes {s.nodes_before} → {s.nodes_after} ({s.nodes_after - s.nodes_before:+d}); "
            f"removed {len(s.removed)}, added {len(s.added)}, changed {len(s.changed)}")


def _comparison_tables(cmp: dict) -> list[list[list[str]]]:
    """The comparison's outputs, graph sizes/speed and sample inputs tables."""
    from .report import report_tables
    tables = report_tables(cmp)
    return [tables[k] for k in ("outputs", "graphs", "inputs") if len(tables.get(k, [])) > 1]


def to_html(t: Tutorial) -> str:
    """The tutorial as one self-contained HTML page (pictures embedded as data: URLs)."""
    e = html.escape
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
           f"<title>{e(t.title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{e(t.title)}</h1>",
           (f"<p>Model: <code>{e(t.source)}</code>. {len(t.steps)} step(s). "
            f"<span class='verdict {'pass' if 'PASS' in t.verdict else 'fail'}'>"
            f"{e(t.verdict)}</span></p>")]
    if t.picture_note:
        out.append(f"<p><i>{e(t.picture_note)}</i></p>")
    else:
        out.append("<p class='legend'>Pictures: the neighbourhood of the changes, drawn by "
                   "Graph Surgeon. Marks: <span style='background:#ffd8d8'>removed</span>"
                   "<span style='background:#d3f9d8'>added</span>"
                   "<span style='background:#fff3bf'>changed</span></p>")
    for i, s in enumerate(t.steps, 1):
        out.append(f"<h2 id='step{i}'>Step {i}: {e(s.label)}</h2>")
        out.append(f"<p class='counts'>{e(_counts(s))}</p>")
        out.append(f"<details{' open' if i == 1 else ''}><summary>What this step does and why"
                   f"</summary>{markdown_to_html(s.explanation)}</details>")
        if s.picture_before or s.picture_after:
            out.append("<div class='pictures'>")
            for cap, png in (("before", s.picture_before), ("after", s.picture_after)):
                if png:
                    b64 = base64.b64encode(png).decode("ascii")
                    wide = " class='wide'" if _aspect(png) > 1.3 else ""
                    out.append(f"<figure{wide}><img alt='{cap}' "
                               f"src='data:image/png;base64,{b64}'>"
                               f"<figcaption>{cap}</figcaption></figure>")
            out.append("</div>")
        if s.worked is not None:
            out.append(f"<p><b>Worked numbers</b> for one of the {s.matches} match(es):</p>")
            out.append(s.worked.to_html())
        elif s.worked_error:
            out.append(f"<p><i>No worked numbers: {e(s.worked_error)}</i></p>")
    out.append("<h2 id='comparison'>Comparison: original against the result</h2>")
    if t.comparison is not None:
        for rows in _comparison_tables(t.comparison):
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in rows[0]) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{e(c.replace('**', ''))}</td>"
                                                  for c in r) + "</tr>" for r in rows[1:])
                       + "</table>")
        tol = t.comparison.get("tolerance", {})
        if tol:
            out.append(f"<p>allclose: |a − b| ≤ atol + rtol·|a| with rtol {tol.get('rtol')} "
                       f"and atol {tol.get('atol')}, on the same sample inputs.</p>")
    out.append(f"<p class='verdict {'pass' if 'PASS' in t.verdict else 'fail'}'>"
               f"{e(t.verdict)}</p>")
    out.append("<p style='color:#7b8794;font-size:85%'>Written by Graph Surgeon.</p>")
    out.append("</body></html>")
    return "\n".join(out)


def to_markdown(t: Tutorial, picture_dir: str | None = None) -> tuple[str, dict[str, bytes]]:
    """The tutorial as Markdown and its pictures ({relative path: PNG bytes})."""
    files: dict[str, bytes] = {}
    out = [f"# {t.title}", "", f"Model: `{t.source}`. {len(t.steps)} step(s). **{t.verdict}**",
           ""]
    if t.picture_note:
        out += [f"*{t.picture_note}*", ""]
    for i, s in enumerate(t.steps, 1):
        out += [f"## Step {i}: {s.label}", "", f"**{_counts(s)}**", "", s.explanation.strip(),
                ""]
        for cap, png in (("before", s.picture_before), ("after", s.picture_after)):
            if png and picture_dir is not None:
                rel = f"{picture_dir}/step{i:02d}_{cap}.png"
                files[rel] = png
                out += [f"![{cap}]({rel})", ""]
        if s.worked is not None:
            out += [f"**Worked numbers** for one of the {s.matches} match(es):", "",
                    s.worked.to_markdown(), ""]
        elif s.worked_error:
            out += [f"*No worked numbers: {s.worked_error}*", ""]
    out += ["## Comparison: original against the result", ""]
    if t.comparison is not None:
        for rows in _comparison_tables(t.comparison):
            out.append("| " + " | ".join(rows[0]) + " |")
            out.append("|" + "---|" * len(rows[0]))
            out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
            out.append("")
    out += [f"**{t.verdict}**", ""]
    return "\n".join(out), files


def write_tutorial(t: Tutorial, path: str | os.PathLike, overwrite: bool = True) -> list[Path]:
    """Write ``.html`` (one self-contained file) or ``.md`` (plus ``<name>_files/*.png``).

    Returns the files written. Writes are atomic; an existing file is only replaced when
    ``overwrite``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".html", ".htm", ".md", ".markdown"):
        raise ValueError(f"{path}: a tutorial is written as .html or .md")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists")
    if suffix in (".html", ".htm"):
        write_atomic(path, to_html(t).encode("utf-8"))
        return [path]
    folder = re.sub(r"[^\w.-]", "_", path.stem) + "_files"
    text, files = to_markdown(t, folder)
    written = []
    for rel, data in files.items():
        target = path.parent / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)
        written.append(target)
    write_atomic(path, text.encode("utf-8"))
    return [path] + written


__all__ = ["TraceStep", "Tutorial", "TutorialStep", "build_tutorial", "neighbourhood",
           "subgraph", "to_html", "to_markdown", "trace_recipe", "write_tutorial"]
