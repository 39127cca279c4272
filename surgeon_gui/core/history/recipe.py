"""Recipes: the steps of a surgery session, saved as JSON and replayed on the same model.

A recipe is what the user did — passes with their parameters and the matches they selected, and
hand edits — so that ``surgeon optimize IN OUT --recipe FILE`` gives exactly the same bytes as
doing it interactively. The file format::

    {"format": "graph-surgeon-recipe", "version": 1,
     "source": "model.pb",                      # optional, informational
     "inputs": ["input"] | null, "outputs": ["probs"] | null,
     "steps": [
        {"pass": "fold_batch_norm", "params": {...}, "select": ["bn1/cond/Merge"] | null},
        {"edit": "remove_node", "args": {...}}
     ]}

``inputs``/``outputs`` are the graph's chosen inputs and outputs (null: detected). A pass step with
``select: null`` applies every match; a list applies only the matches with those keys. The pass
id ``inference`` stands for the preset (run until nothing changes); its ``params`` are keyed by
the preset's passes: ``{"training_flags": {"names": "model/Placeholder_1"}}``. Edit steps are applied by
:func:`surgeon_gui.core.history.edits.apply_edit`.
"""
from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..model.graph import Graph, GraphDef, GraphError
from ..passes import PRESET_ID
from ..passes.base import PassReport

FORMAT = "graph-surgeon-recipe"
VERSION = 1


class RecipeError(GraphError):
    """A recipe file that cannot be read, or a step that cannot be replayed."""


@dataclass
class RecipeStep:
    """One step: a pass (``pass_id``, ``params``, ``select``) or a hand edit (``edit``, ``args``)."""
    pass_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    select: list[str] | None = None
    edit: str | None = None
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def is_pass(self) -> bool:
        return self.pass_id is not None

    @property
    def label(self) -> str:
        if self.is_pass:
            sel = "" if self.select is None else f" ({len(self.select)} selected)"
            return f"{self.pass_id}{sel}"
        return f"edit {self.edit}"

    def to_dict(self) -> dict:
        if self.is_pass:
            return {"pass": self.pass_id, "params": dict(self.params),
                    "select": None if self.select is None else list(self.select)}
        return {"edit": self.edit, "args": dict(self.args)}

    @classmethod
    def from_dict(cls, d: Any, where: str = "step") -> "RecipeStep":
        if not isinstance(d, dict):
            raise ValueError(f"{where} is not an object")
        if ("pass" in d) == ("edit" in d):
            raise ValueError(f"{where} needs exactly one of \"pass\" or \"edit\"")
        if "pass" in d:
            pid = d["pass"]
            params = d.get("params") or {}
            select = d.get("select")
            if not isinstance(pid, str) or not pid:
                raise ValueError(f"{where}: \"pass\" must be a pass id")
            if not isinstance(params, dict):
                raise ValueError(f"{where}: \"params\" must be an object")
            if select is not None and (not isinstance(select, list)
                                       or not all(isinstance(k, str) for k in select)):
                raise ValueError(f"{where}: \"select\" must be a list of match keys or null")
            extra = set(d) - {"pass", "params", "select"}
            if extra:
                raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
            return cls(pass_id=pid, params=dict(params), select=select)
        kind = d["edit"]
        args = d.get("args") or {}
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"{where}: \"edit\" must be an edit kind")
        if not isinstance(args, dict):
            raise ValueError(f"{where}: \"args\" must be an object")
        extra = set(d) - {"edit", "args"}
        if extra:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
        return cls(edit=kind, args=dict(args))


@dataclass
class Recipe:
    steps: list[RecipeStep] = field(default_factory=list)
    inputs: list[str] | None = None
    outputs: list[str] | None = None
    source: str | None = None

    # ------------------------------------------------------------------ building
    def add_pass(self, pass_id: str, params: dict | None = None,
                 select=None) -> RecipeStep:
        step = RecipeStep(pass_id=pass_id, params=dict(params or {}),
                          select=None if select is None else sorted(select))
        self.steps.append(step)
        return step

    def add_edit(self, kind: str, args: dict | None = None) -> RecipeStep:
        step = RecipeStep(edit=kind, args=dict(args or {}))
        self.steps.append(step)
        return step

    # ------------------------------------------------------------------ (de)serialising
    def to_dict(self) -> dict:
        d: dict[str, Any] = {"format": FORMAT, "version": VERSION}
        if self.source:
            d["source"] = self.source
        d["inputs"] = None if self.inputs is None else list(self.inputs)
        d["outputs"] = None if self.outputs is None else list(self.outputs)
        d["steps"] = [s.to_dict() for s in self.steps]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, d: Any, source: str | None = None) -> "Recipe":
        def bad(problem):
            return RecipeError(problem, source)
        if not isinstance(d, dict):
            raise bad("not a recipe (the JSON is not an object)")
        if d.get("format") != FORMAT:
            raise bad(f"not a recipe (\"format\" is {d.get('format')!r}, expected {FORMAT!r})")
        version = d.get("version")
        if not isinstance(version, int) or version > VERSION or version < 1:
            raise bad(f"recipe version {version!r} is not supported (this app reads version "
                      f"{VERSION})")
        io = {}
        for key in ("inputs", "outputs"):
            v = d.get(key)
            if v is not None and (not isinstance(v, list)
                                  or not all(isinstance(x, str) and x for x in v)):
                raise bad(f"\"{key}\" must be a list of node names or null")
            io[key] = list(v) if v else None
        steps_raw = d.get("steps")
        if not isinstance(steps_raw, list):
            raise bad("\"steps\" must be a list")
        steps = []
        for i, s in enumerate(steps_raw, 1):
            try:
                steps.append(RecipeStep.from_dict(s, f"step {i}"))
            except ValueError as e:
                raise bad(str(e)) from None
        src = d.get("source")
        return cls(steps=steps, inputs=io["inputs"], outputs=io["outputs"],
                   source=src if isinstance(src, str) else None)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Recipe":
        p = Path(path)
        src = str(p)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RecipeError("no such recipe file", src) from None
        except IsADirectoryError:
            raise RecipeError("is a folder, not a recipe file", src) from None
        except (OSError, UnicodeDecodeError) as e:
            raise RecipeError(f"cannot read recipe: {getattr(e, 'strerror', None) or e}",
                              src) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise RecipeError(f"not a recipe (invalid JSON at line {e.lineno}, column "
                              f"{e.colno}: {e.msg})", src) from None
        return cls.from_dict(data, src)

    def save(self, path: str | os.PathLike, overwrite: bool = True, inputs=()) -> Path:
        """Write the recipe through the one write path (atomic; ``inputs``: files it must not
        be)."""
        from ..model.files import write_file
        return write_file(path, self.to_json().encode("utf-8"), overwrite=overwrite,
                          inputs=inputs)

    # ------------------------------------------------------------------ CLI equivalent
    def pass_ids_only(self) -> list[str] | None:
        """The pass ids if every step is a pass with default params and no selection."""
        from ..passes import get_pass
        ids = []
        for s in self.steps:
            if not s.is_pass or s.select is not None:
                return None
            if s.params:
                if s.pass_id == PRESET_ID:
                    return None
                try:
                    defaults = get_pass(s.pass_id).defaults()
                except KeyError:
                    return None
                if any(defaults.get(k, object()) != v for k, v in s.params.items()):
                    return None
            ids.append(s.pass_id)
        return ids

    def cli_command(self, in_path: str, out_path: str, recipe_path: str | None = None) -> str:
        """The equivalent ``surgeon optimize`` command line.

        ``--passes`` when every step is a plain pass; otherwise ``--recipe`` (parameters,
        selections and hand edits need the recipe file: ``recipe_path``, else a placeholder).
        """
        q = shlex.quote
        parts = ["surgeon", "optimize", q(str(in_path)), q(str(out_path))]
        ids = self.pass_ids_only()
        if ids is not None and ids:
            if self.inputs:
                parts += ["--inputs", q(",".join(self.inputs))]
            if self.outputs:
                parts += ["--outputs", q(",".join(self.outputs))]
            parts += ["--passes", q(",".join(ids))]
        else:
            parts += ["--recipe", q(str(recipe_path or "RECIPE.json"))]
        return " ".join(parts)


@dataclass
class ReplayedStep:
    """What one replayed step did: the graph after it (None unless kept) and, for a pass, its
    report(s)."""
    step: RecipeStep
    graph_def: GraphDef | None
    reports: list[PassReport] = field(default_factory=list)

    @property
    def modified(self) -> bool:
        return any(r.modified for r in self.reports) if self.step.is_pass else True

    def summary(self) -> str:
        if not self.step.is_pass:
            return f"edit {self.step.edit}"
        if len(self.reports) == 1:
            return self.reports[0].summary()
        changed = [r for r in self.reports if r.modified]
        return f"{len(changed)} pass run(s) changed the graph"


def recipe_of(document) -> Recipe:
    """The applied steps of a :class:`~surgeon_gui.core.history.document.Document` as a
    recipe (each step records the recipe steps that replay it)."""
    steps = [RecipeStep.from_dict(r) for s in document.applied_steps for r in s.recipe_steps]
    return Recipe(steps=steps, inputs=document.initial_inputs, outputs=document.initial_outputs,
                  source=document.source_path)


def apply_step(graph: Graph, step: RecipeStep, where: str = "step",
               keep_graphs: bool = True) -> tuple[Graph, list]:
    """Apply one recipe step exactly as the GUI does; returns the new Graph and the reports.

    ``keep_graphs=False``: the preset does not keep a GraphDef per inner step (big models)."""
    from ..passes import get_pass
    from ..passes.pipeline import inputs_after, run_pass, run_pipeline
    if step.is_pass:
        if step.pass_id == PRESET_ID:
            if step.select is not None:
                raise RecipeError(f"{where}: the preset {PRESET_ID!r} cannot take a selection")
            params = preset_params(step.params, where)
            try:
                new, steps = run_pipeline(graph, [PRESET_ID], params, keep_graphs=keep_graphs)
            except GraphError as e:
                raise RecipeError(f"{where} ({PRESET_ID}): {e.problem}", nodes=e.nodes) from None
            return new, [s.result.report for s in steps]
        try:
            known = get_pass(step.pass_id).defaults()
        except KeyError as e:
            raise RecipeError(f"{where}: {e.args[0] if e.args else e}") from None
        unknown = sorted(set(step.params) - set(known))
        if unknown:
            raise RecipeError(f"{where}: pass {step.pass_id!r} has no parameter(s) "
                              f"{', '.join(unknown)}; it takes: {', '.join(known) or 'none'}")
        try:
            result = run_pass(graph, step.pass_id, step.params,
                              select=None if step.select is None else set(step.select))
        except GraphError as e:
            raise RecipeError(f"{where} ({step.pass_id}): {e.problem}", nodes=e.nodes) from None
        new = Graph(result.graph_def, inputs_after(graph, result.graph_def),
                    graph.given_outputs, source=graph.source)
        return new, [result.report]
    from . import edits
    kinds = getattr(edits, "EDIT_KINDS", None)
    if kinds is not None and step.edit not in kinds:
        raise RecipeError(f"{where}: unknown edit kind {step.edit!r}; known: "
                          f"{', '.join(sorted(kinds))}")
    try:
        if hasattr(edits, "apply_edit_io"):
            # Edits such as rename_node / make_output / cut_to_outputs change the graph's
            # inputs and outputs too: follow them, as the GUI does.
            res = edits.apply_edit_io(graph, step.edit, dict(step.args))
            gd, ins, outs = res.graph_def, res.inputs, res.outputs
        else:
            gd = edits.apply_edit(graph, step.edit, dict(step.args))
            ins, outs = graph.given_inputs, graph.given_outputs
    except GraphError as e:
        raise RecipeError(f"{where} (edit {step.edit}): {e.problem}", nodes=e.nodes) from None
    except (KeyError, ValueError, TypeError) as e:
        raise RecipeError(f"{where}: cannot apply edit {step.edit!r}: "
                          f"{e.args[0] if e.args else type(e).__name__}") from None
    return Graph(gd, ins, outs, source=graph.source), []


def preset_params(params: dict, where: str = "step") -> dict[str, dict]:
    """Check the preset step's ``{pass id: {name: value}}`` against the preset's passes."""
    from ..passes import PRESET_PASSES, get_pass
    out = {}
    for pid, values in (params or {}).items():
        if pid not in PRESET_PASSES:
            raise RecipeError(f"{where}: the preset {PRESET_ID!r} runs no pass {pid!r}; its "
                              f"params are keyed by its passes: {', '.join(PRESET_PASSES)}")
        if not isinstance(values, dict):
            raise RecipeError(f"{where}: params of {pid!r} in the preset must be an object")
        known = {p.name: p for p in get_pass(pid).params}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise RecipeError(f"{where}: pass {pid!r} has no parameter(s) {', '.join(unknown)}; "
                              f"it takes: {', '.join(known) or 'none'}")
        out[pid] = dict(values)
    return out


def replay(graph: Graph, recipe: Recipe,
           on_step: Callable[[ReplayedStep], None] | None = None,
           should_stop: Callable[[], bool] | None = None,
           keep_graphs: bool = True) -> tuple[Graph, list[ReplayedStep]]:
    """Apply every step of ``recipe`` to ``graph`` (never edited in place).

    The recipe's inputs/outputs, when set, replace the graph's. Returns the final graph and one
    :class:`ReplayedStep` per recipe step. Errors name the step. ``keep_graphs=False`` keeps
    no intermediate GraphDefs (the CLI on a 350 MB model).
    """
    if recipe.inputs is not None or recipe.outputs is not None:
        graph = graph.with_io(recipe.inputs, recipe.outputs)
    missing = [n for n in (recipe.inputs or []) + (recipe.outputs or []) if n not in graph]
    if missing:
        raise RecipeError(f"the recipe names node(s) the model does not have: "
                          f"{', '.join(missing)}", graph.source, missing)
    done: list[ReplayedStep] = []
    for i, step in enumerate(recipe.steps, 1):
        if should_stop and should_stop():
            raise InterruptedError("cancelled")
        graph, reports = apply_step(graph, step, f"step {i}", keep_graphs)
        rs = ReplayedStep(step, graph.graph_def if keep_graphs else None, reports)
        done.append(rs)
        if on_step:
            on_step(rs)
    return graph, done
