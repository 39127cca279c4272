"""Lessons: guided walkthroughs written as data (Markdown + a steps file), and their runner.

A lesson is two files in ``resources/lessons/`` (the format is in ``docs/lessons.md``):

- ``NAME.md``: ``# Title``, an introduction, then one ``## Step title`` section per step, in
  order (the text the learner reads at that step);
- ``NAME.json``: the model (a path relative to the lessons folder), and per step what it does
  (``do``: a recipe step, a list of them, or nothing for a step that only explains; or
  ``"freeze": true``: freeze the model's variables from the lesson's ``checkpoint``), which
  nodes to focus (``focus``) and which match's worked numbers to show (``show``).

:class:`LessonRun` walks a lesson on a graph without Qt: the GUI's lesson window drives it
(applying each step through the undo stack so the learner can undo), the tests and
:func:`run_lesson` drive it headless. A step counts as done when its actions have nothing left to
do on the current graph, so a learner may do it by hand (Passes panel, context menu) instead of
pressing Next. A lesson ends with the comparison of the original and the result: "outputs
equal: PASS".
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..history.delta import GraphDelta
from ..history.diff import GraphDiff
from ..history.recipe import RecipeError, RecipeStep, apply_step
from ..model.graph import Graph, GraphError
from ..model.io import load_model, variable_nodes
from ..passes import get_pass
from ..passes.pipeline import run_pass
from .worked import WorkedNumbers, worked_numbers

LESSONS_DIR = Path(__file__).resolve().parents[3] / "resources" / "lessons"


class LessonError(GraphError):
    """A lesson file that cannot be read or does not fit its steps file."""


@dataclass
class LessonStep:
    title: str
    text: str
    actions: list[RecipeStep] = field(default_factory=list)
    focus: list[str] = field(default_factory=list)
    #: Worked numbers to show: {"pass": id, "key": match key} on the graph before the step;
    #: empty: the step's own pass, its first applied match.
    show: dict = field(default_factory=dict)
    #: Freeze the lesson's model: its variables become Consts holding the checkpoint's values.
    freeze: bool = False

    @property
    def acts(self) -> bool:
        """The step changes the graph (it is not only an explanation)."""
        return bool(self.actions) or self.freeze


@dataclass
class Lesson:
    id: str
    title: str
    intro: str
    model: Path
    steps: list[LessonStep]
    inputs: list[str] | None = None
    outputs: list[str] | None = None
    rtol: float = 1e-4
    atol: float = 1e-5
    #: Also check that OpenCV's DNN importer loads the result and computes the same numbers.
    opencv: bool = False
    #: The checkpoint a ``freeze`` step reads (the model then holds variables).
    checkpoint: Path | None = None

    def frozen_model(self) -> Graph:
        """The lesson's model frozen from its checkpoint (what a freeze step makes)."""
        if self.checkpoint is None:
            raise LessonError(f"lesson {self.id} has no checkpoint to freeze from")
        loaded = load_model(str(self.model), checkpoint=str(self.checkpoint),
                            outputs=self.outputs)
        return loaded.graph().with_io(self.inputs or loaded.inputs,
                                      self.outputs or loaded.outputs)


def _sections(text: str, where: str) -> tuple[str, str, list[tuple[str, str]]]:
    m = re.match(r"\s*#\s+(.+)\n", text)
    if not m:
        raise LessonError(f"{where}: the first line must be '# Title'")
    title = m.group(1).strip()
    rest = text[m.end():]
    parts = re.split(r"^##\s+(.+)$", rest, flags=re.MULTILINE)
    intro = parts[0].strip()
    steps = [(parts[i].strip(), parts[i + 1].strip()) for i in range(1, len(parts), 2)]
    return title, intro, steps


def load_lesson(md_path: str | Path) -> Lesson:
    """Read ``NAME.md`` and its ``NAME.json``; every problem is one LessonError line."""
    md_path = Path(md_path)
    js_path = md_path.with_suffix(".json")
    where = md_path.name
    try:
        text = md_path.read_text(encoding="utf-8")
        spec = json.loads(js_path.read_text(encoding="utf-8"))
    except OSError as e:
        raise LessonError(f"{e.filename}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise LessonError(f"{js_path.name}: not JSON ({e.msg}, line {e.lineno})") from None
    title, intro, sections = _sections(text, where)
    if not isinstance(spec, dict) or not isinstance(spec.get("steps"), list):
        raise LessonError(f"{js_path.name}: needs an object with a \"steps\" list")
    if len(spec["steps"]) != len(sections):
        raise LessonError(f"{where} has {len(sections)} '## ' step sections but "
                          f"{js_path.name} lists {len(spec['steps'])} steps")
    if not isinstance(spec.get("model"), str):
        raise LessonError(f"{js_path.name}: \"model\" must be a path (relative to the lesson)")
    steps = []
    for i, ((stitle, stext), s) in enumerate(zip(sections, spec["steps"]), 1):
        w = f"{js_path.name} step {i}"
        if not isinstance(s, dict):
            raise LessonError(f"{w}: not an object")
        extra = set(s) - {"do", "focus", "show", "freeze"}
        if extra:
            raise LessonError(f"{w}: unknown field(s) {', '.join(sorted(extra))}")
        freeze = s.get("freeze", False)
        if not isinstance(freeze, bool):
            raise LessonError(f"{w}: \"freeze\" must be true or false")
        if freeze and (s.get("do") or not isinstance(spec.get("checkpoint"), str)
                       or not isinstance(spec.get("outputs"), list)
                       or any(st.actions for st in steps)):
            raise LessonError(f"{w}: a \"freeze\" step does nothing else, comes before any "
                              "\"do\" step, and needs the lesson's \"checkpoint\" and "
                              "\"outputs\"")
        do = s.get("do") or []
        if isinstance(do, dict):
            do = [do]
        try:
            actions = [RecipeStep.from_dict(d, f"{w} action {k}") for k, d in enumerate(do, 1)]
            for a in actions:
                if a.is_pass:
                    get_pass(a.pass_id)
        except (ValueError, KeyError) as e:
            raise LessonError(str(e.args[0] if e.args else e)) from None
        show = s.get("show") or {}
        if not isinstance(show, dict):
            raise LessonError(f"{w}: \"show\" must be an object {{\"pass\", \"key\"}}")
        focus = s.get("focus") or []
        if isinstance(focus, str):
            focus = [focus]
        steps.append(LessonStep(stitle, stext, actions, list(focus), dict(show), freeze))
    model = (md_path.parent / spec["model"]).resolve()
    checkpoint = spec.get("checkpoint")
    cmp = spec.get("compare") or {}
    return Lesson(md_path.stem, title, intro, model, steps, spec.get("inputs"),
                  spec.get("outputs"), float(cmp.get("rtol", 1e-4)), float(cmp.get("atol", 1e-5)),
                  bool(spec.get("opencv", False)),
                  (md_path.parent / checkpoint).resolve() if checkpoint else None)


def list_lessons(folder: str | Path = LESSONS_DIR) -> list[Lesson]:
    """Every lesson in ``folder`` (``*.md`` with a ``.json`` beside it), by file name."""
    folder = Path(folder)
    return [load_lesson(p) for p in sorted(folder.glob("*.md"))
            if p.with_suffix(".json").exists()]


# ---------------------------------------------------------------------- running
@dataclass
class StepOutcome:
    """What one step did: the diff, node counts and the worked numbers."""
    index: int
    nodes_before: int
    nodes_after: int
    diff: GraphDiff
    worked: WorkedNumbers | None = None
    worked_error: str = ""
    #: List the changed nodes first (a freeze: each variable became a Const).
    changed_first: bool = False

    def summary(self) -> str:
        return (f"nodes {self.nodes_before} → {self.nodes_after} "
                f"({self.nodes_after - self.nodes_before:+d}); {self.diff.summary()}")

    def diff_lines(self, limit: int = 30) -> list[str]:
        d = self.diff
        removed = [f"removed {n.name} ({n.op})" for n in d.removed]
        added = [f"added {n.name} ({n.op})" for n in d.added]
        if self.changed_first:  # a freeze: per variable, one line (its op and its value)
            changed = [f"{c.name}: " + "; ".join(ln for ln in c.lines()
                                                 if ln.startswith(("op:", "value:")))
                       for c in d.changed]
        else:
            changed = [f"{c.name}: {line}" for c in d.changed for line in c.lines()]
        lines = changed + removed + added if self.changed_first else removed + added + changed
        return lines[:limit] + ([f"… {len(lines) - limit} more"] if len(lines) > limit else [])


def action_done(graph: Graph, action: RecipeStep) -> bool:
    """Is there nothing left for ``action`` to do on ``graph``?"""
    if action.is_pass:
        try:
            res = run_pass(graph, action.pass_id, action.params,
                           select=None if action.select is None else set(action.select))
        except GraphError:
            return False
        return not res.report.modified
    node = action.args.get("node")
    if action.edit == "remove_node":
        return node not in graph.nodes
    if action.edit == "placeholder_to_const":
        return node in graph.nodes and graph.nodes[node].op == "Const"
    try:
        new, _ = apply_step(graph, action)
    except RecipeError:
        return False
    return new.graph_def.SerializeToString(deterministic=True) == \
        graph.graph_def.SerializeToString(deterministic=True)


class LessonRun:
    """One walk through a lesson: which step, the graph it started from, what each step did.

    ``original`` is what the lesson's check compares the result with: the model as opened, or
    after a freeze step the frozen model (a graph with variables cannot run on its own)."""

    def __init__(self, lesson: Lesson, graph: Graph):
        self.lesson = lesson
        self.original = graph
        self.index = 0
        self.start = graph          # the graph the current step started from
        self.outcomes: list[StepOutcome] = []

    @property
    def step(self) -> LessonStep | None:
        return self.lesson.steps[self.index] if self.index < len(self.lesson.steps) else None

    @property
    def finished(self) -> bool:
        return self.index >= len(self.lesson.steps)

    def is_done(self, graph: Graph) -> bool:
        """The current step's actions have nothing left to do on ``graph``."""
        step = self.step
        if step is not None and step.freeze:
            return not variable_nodes(graph.graph_def)
        return step is not None and all(action_done(graph, a) for a in step.actions)

    def apply(self, graph: Graph) -> Graph:
        """Do the current step's actions (what Next does), in order; returns the new graph."""
        if self.step.freeze:
            return graph if self.is_done(graph) else self.lesson.frozen_model()
        for k, a in enumerate(self.step.actions, 1):
            if not action_done(graph, a):
                graph, _ = apply_step(graph, a, f"lesson step {self.index + 1} action {k}")
        return graph

    def outcome(self, graph: Graph, feeds=None, run_check: bool = True) -> StepOutcome:
        """What the current step did, from its start to ``graph``."""
        step = self.step
        delta = GraphDelta.between(self.start.graph_def, graph.graph_def)
        out = StepOutcome(self.index, len(self.start), len(graph), GraphDiff.from_delta(delta),
                          changed_first=step.freeze)
        spec = dict(step.show)
        try:
            found = self._worked_target(spec)
            if found is not None:
                g, pid, key = found
                out.worked = worked_numbers(g, pid, key, feeds=feeds, run_check=run_check)
        except (GraphError, KeyError, ValueError) as e:
            out.worked_error = getattr(e, "problem", None) or str(e)
        return out

    def _worked_target(self, spec: dict):
        """``(graph, pass id, match key)`` whose worked numbers the step shows: the ``show``
        pass (default: the step's first pass that applies something) on the graph just before
        that pass runs in the step (replayed from the step's start)."""
        step = self.step
        want = spec.get("pass")
        g = self.start
        for a in step.actions:
            if a.is_pass and (want is None or a.pass_id == want):
                if spec.get("key"):
                    return g, a.pass_id, spec["key"]
                rep = run_pass(g, a.pass_id, a.params,
                               select=None if a.select is None else set(a.select)).report
                key = next((m.key for m in rep.matches if m.applied), None)
                if key is not None:
                    return g, a.pass_id, key
            if not action_done(g, a):
                g, _ = apply_step(g, a)
        if want and spec.get("key"):  # a pass the step does not run (an edit explained by it)
            return self.start, want, spec["key"]
        return None

    def advance(self, graph: Graph, outcome: StepOutcome | None = None) -> None:
        """Go to the next step from ``graph``."""
        if outcome is not None:
            self.outcomes.append(outcome)
        if self.step.freeze:
            self.original = graph  # the frozen model is what the result must compute
        self.index += 1
        self.start = graph

    def restart_step(self, graph: Graph) -> None:
        """The learner undid past the step's start: the step starts again from ``graph``."""
        self.start = graph


def compare_result(lesson: Lesson, original: Graph, final: Graph) -> tuple[dict, str, str]:
    """``(comparison dict, verdict, opencv line)``: the lesson's last check."""
    from .compare import compare_graphs
    from .runner import make_feeds
    feeds = make_feeds(original, seed=0)
    cmp = compare_graphs(original.graph_def, final.graph_def, feeds, original.outputs,
                         runs=3, warmup=1, rtol=lesson.rtol, atol=lesson.atol,
                         labels=("original", "result"))
    verdict = f"outputs equal: {'PASS' if cmp.allclose else 'FAIL'}"
    cv_line = ""
    if lesson.opencv:
        from .opencv_check import opencv_check
        from .runner import run_graph
        ref = run_graph(final.graph_def, {k: v for k, v in feeds.items() if k in final},
                        final.outputs)
        res = opencv_check(final.graph_def, {k: v for k, v in feeds.items() if k in final},
                           final.outputs, ref)
        first = opencv_check(original.graph_def)
        if not first.loads:
            cv_line = (f"OpenCV DNN on the original: does not load "
                       f"({' '.join(first.error.split())[:160]}). ")
        if not res.loads:
            cv_line += f"OpenCV DNN on the result: does not load ({res.error})"
        elif res.max_abs_err is None:
            cv_line += f"OpenCV DNN on the result: loads{'; ' + res.error if res.error else ''}"
        else:
            ok = res.matches(1e-4)
            cv_line += (f"OpenCV DNN on the result: loads and computes the same outputs: "
                        f"{'PASS' if ok else 'FAIL'} (max |difference| {res.max_abs_err:.3g})")
    return cmp.to_dict(), verdict, cv_line


def run_lesson(lesson: Lesson, run_check: bool = True) -> tuple[list[StepOutcome], str]:
    """Walk a lesson headless, doing every step; returns the outcomes and the verdict."""
    loaded = load_model(str(lesson.model))
    graph = loaded.graph().with_io(lesson.inputs or loaded.inputs,
                                   lesson.outputs or loaded.outputs)
    run = LessonRun(lesson, graph)
    while not run.finished:
        graph = run.apply(graph)
        run.advance(graph, run.outcome(graph, run_check=run_check))
    _, verdict, cv_line = compare_result(lesson, run.original, graph)
    return run.outcomes, verdict + (f"; {cv_line}" if cv_line else "")


__all__ = ["LESSONS_DIR", "Lesson", "LessonError", "LessonRun", "LessonStep", "StepOutcome",
           "action_done", "compare_result", "list_lessons", "load_lesson", "run_lesson"]
