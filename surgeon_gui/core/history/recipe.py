"""Recipes: the steps of a surgery session, saved as JSON and replayed on the same model.

A recipe is what the user did — passes with their parameters and the matches they selected, and
hand edits — so that ``surgeon optimize IN OUT --recipe FILE`` gives exactly the same bytes as
doing it interactively. The file format::

    {"format": "graph-surgeon-recipe", "version": 1,
     "source": "model.pb",                      # optional, informational
     "checkpoint": "run/model.ckpt",            # optional: the variables were frozen from it
     "inputs": ["input"] | null, "outputs": ["probs"] | null,
     "steps": [
        {"pass": "fold_batch_norm", "params": {...}, "select": ["bn1/cond/Merge"] | null},
        {"edit": "remove_node", "args": {...}}
     ]}

``checkpoint`` (only when the model was a graph with variables, frozen from a checkpoint when
opened: ``surgeon optimize --checkpoint``, the app's Open with Checkpoint) is where their values
come from; a replay freezes them from it too (``--checkpoint`` wins). It is written relative to
the recipe's folder when it lies in that folder or below (the two move together), else absolute;
a relative one is taken from the recipe's folder.
``inputs``/``outputs`` are the graph's chosen inputs and outputs (null: detected). A pass step with
``select: null`` applies every match; a list applies only the matches with those keys. The pass
id ``inference`` stands for the preset (run until nothing changes); its ``params`` are keyed by
the preset's passes: ``{"training_flags": {"names": "model/Placeholder_1"}}``. Edit steps are applied by
:func:`surgeon_gui.core.history.edits.apply_edit`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..model.graph import Graph, GraphDef, GraphError
from ..passes import PRESET_ID
from ..passes.base import PassReport

FORMAT = "graph-surgeon-recipe"
VERSION = 1
#: Limits on what a recipe file may ask for (it is untrusted input).
MAX_RECIPE_BYTES = 64 * 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_INT_PARAM = 1 << 40          # 1 TiB: larger sizes and counts are mistakes
MAX_TEXT_PARAM = 10_000          # characters in a str parameter / list item
MAX_LIST_PARAM = 100_000         # items in a list parameter
MAX_NPY_BYTES = 2 * 1024 ** 3    # a .npy a recipe reads


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
    checkpoint: str | None = None

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
    def to_dict(self, folder: str | os.PathLike | None = None) -> dict:
        """The recipe as JSON data; ``folder``: the one the file is written to (a checkpoint
        inside it is written relative to it)."""
        d: dict[str, Any] = {"format": FORMAT, "version": VERSION}
        if self.source:
            d["source"] = self.source
        if self.checkpoint:
            d["checkpoint"] = _relative_if_inside(self.checkpoint, folder)
        d["inputs"] = None if self.inputs is None else list(self.inputs)
        d["outputs"] = None if self.outputs is None else list(self.outputs)
        d["steps"] = [s.to_dict() for s in self.steps]
        return d

    def to_json(self, folder: str | os.PathLike | None = None) -> str:
        return json.dumps(self.to_dict(folder), indent=2) + "\n"

    @classmethod
    def from_dict(cls, d: Any, source: str | None = None) -> "Recipe":
        def bad(problem):
            return RecipeError(problem, source)
        if not isinstance(d, dict):
            raise bad("not a recipe (the JSON is not an object)")
        if d.get("format") != FORMAT:
            raise bad(f"not a recipe (\"format\" is {d.get('format')!r}, expected {FORMAT!r})")
        version = d.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version > VERSION \
                or version < 1:
            raise bad(f"recipe version {version!r} is not supported (this app reads version "
                      f"{VERSION})")
        io = {}
        for key in ("inputs", "outputs"):
            v = d.get(key)
            if v is not None and (not isinstance(v, list)
                                  or not all(isinstance(x, str) and x for x in v)):
                raise bad(f"\"{key}\" must be a list of node names or null")
            io[key] = list(v) if v else None
        ckpt = d.get("checkpoint")
        if ckpt is not None and (not isinstance(ckpt, str) or not ckpt
                                 or len(ckpt) > MAX_TEXT_PARAM or "\0" in ckpt):
            raise bad("\"checkpoint\" must be a path (text) or null")
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
                   source=src if isinstance(src, str) else None, checkpoint=ckpt or None)

    @classmethod
    def load(cls, path: str | os.PathLike, allow_outside: bool = False) -> "Recipe":
        """Read and check a recipe file: everything is validated before anything runs
        (:func:`validate`), and ``.npy`` files are taken relative to the recipe's folder
        (outside it only with ``allow_outside``)."""
        p = Path(path)
        src = str(p)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise RecipeError("no such recipe file", src) from None
        except OSError as e:
            raise RecipeError(f"cannot read recipe: {e.strerror or e}", src) from None
        if stat.S_ISDIR(st.st_mode):
            raise RecipeError("is a folder, not a recipe file", src)
        if not stat.S_ISREG(st.st_mode):
            raise RecipeError("is not a regular file", src)
        if st.st_size > MAX_RECIPE_BYTES:
            raise RecipeError(f"is {st.st_size:,} bytes; a recipe is at most "
                              f"{MAX_RECIPE_BYTES:,}", src)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise RecipeError(f"cannot read recipe: {getattr(e, 'strerror', None) or e}",
                              src) from None
        depth = _json_depth(text)
        if depth > MAX_JSON_DEPTH:
            raise RecipeError(f"not a recipe (JSON nested {depth} levels deep; at most "
                              f"{MAX_JSON_DEPTH})", src)
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as e:
            raise RecipeError(f"not a recipe (invalid JSON at line {e.lineno}, column "
                              f"{e.colno}: {e.msg})", src) from None
        except ValueError as e:
            raise RecipeError(f"not a recipe ({e})", src) from None
        except RecursionError:
            raise RecipeError("not a recipe (JSON nested too deeply)", src) from None
        recipe = cls.from_dict(data, src)
        if recipe.checkpoint:  # taken from the recipe's folder, as the file was written
            recipe.checkpoint = os.path.normpath(os.path.join(str(p.resolve().parent),
                                                              recipe.checkpoint))
        validate(recipe, src, base_dir=p.resolve().parent, allow_outside=allow_outside)
        return recipe

    def save(self, path: str | os.PathLike, overwrite: bool = True, inputs=()) -> Path:
        """Write the recipe through the one write path (atomic; ``inputs``: files it must not
        be)."""
        from ..model.files import write_file
        # a .npy or checkpoint in the recipe's folder is written relative to it, so the two
        # move together
        folder = Path(os.path.realpath(os.path.abspath(path))).parent
        d = copy.deepcopy(self.to_dict(folder))
        for spec in _npy_specs(d["steps"]):
            if isinstance(spec.get("npy"), str) and os.path.isabs(spec["npy"]):
                real = Path(os.path.realpath(spec["npy"]))
                if folder in real.parents:
                    spec["npy"] = real.relative_to(folder).as_posix()
        data = (json.dumps(d, indent=2) + "\n").encode("utf-8")
        return write_file(path, data, overwrite=overwrite, inputs=inputs)

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

    def cli_command(self, in_path: str, out_path: str, recipe_path: str | None = None,
                    checkpoint: str | None = None) -> str:
        """The equivalent ``surgeon optimize`` command line.

        ``--passes`` when every step is a plain pass; otherwise ``--recipe`` (parameters,
        selections and hand edits need the recipe file: ``recipe_path``, else a placeholder).
        ``checkpoint``: the input's variables are frozen from it first.
        """
        q = shlex.quote
        parts = ["surgeon", "optimize", q(str(in_path)), q(str(out_path))]
        if checkpoint:
            parts += ["--checkpoint", q(str(checkpoint))]
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


def _relative_if_inside(path: str, folder: str | os.PathLike | None) -> str:
    """``path`` relative to ``folder`` (POSIX separators) when it lies there or below; else
    absolute (``folder`` None: as it is)."""
    if folder is None:
        return path
    real = Path(os.path.realpath(os.path.abspath(path)))
    base = Path(os.path.realpath(os.path.abspath(folder)))
    if real == base:
        return "."
    if base in real.parents:
        return real.relative_to(base).as_posix()
    return str(real)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _json_depth(text: str) -> int:
    """How deeply the JSON nests (brackets outside strings), without parsing it."""
    depth = deepest = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def param_problem(param, value) -> str | None:
    """Why ``value`` is not a valid value for pass parameter ``param`` (None when it is)."""
    t = param.type
    if t is bool:
        if not isinstance(value, bool):
            return f"takes true or false, not {_show(value)}"
    elif t in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"takes a number, not {_show(value)}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"takes a finite number, not {value}"
        if t is int and isinstance(value, float) and not value.is_integer():
            return f"takes a whole number, not {value}"
        if value < 0:
            return f"takes a number of 0 or more, not {value}"
        if value > MAX_INT_PARAM:
            return f"is {value:.3g}, more than the limit {MAX_INT_PARAM:,}"
    elif t is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"takes a list of names, not {_show(value)}"
        if len(value) > MAX_LIST_PARAM or any(len(v) > MAX_TEXT_PARAM for v in value):
            return "is too long"
    elif t is str:
        if not isinstance(value, str):
            return f"takes text, not {_show(value)}"
        if len(value) > MAX_TEXT_PARAM:
            return f"is {len(value):,} characters long (at most {MAX_TEXT_PARAM:,})"
    if param.choices is not None and value not in param.choices:
        return f"takes one of {', '.join(map(str, param.choices))}, not {_show(value)}"
    return None


def _show(value) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validate(recipe: Recipe, source: str | None = None, base_dir: str | os.PathLike | None = None,
             allow_outside: bool = False) -> None:
    """Check the whole recipe before anything runs; one :class:`RecipeError` naming every
    problem (``step N: ...``; ...).

    Passes must exist and their parameters be of the right type, finite, not negative and
    within limits. Each ``.npy`` a step reads must be a regular file within
    :data:`MAX_NPY_BYTES`, carry the ``sha256`` it was recorded with (checked here), and lie in
    ``base_dir`` (the recipe's folder; relative paths are taken from there) unless
    ``allow_outside``. The checked absolute path replaces the one written in the recipe.
    """
    from ..passes import PRESET_PASSES, get_pass
    problems: list[str] = []
    for i, step in enumerate(recipe.steps, 1):
        where = f"step {i}"
        if step.is_pass:
            if step.pass_id == PRESET_ID:
                # the preset's params: {pass id: {name: value}} for the passes it runs
                if step.select is not None:
                    problems.append(f"{where}: the preset {PRESET_ID!r} cannot take a selection")
                groups = []
                for pid, params in step.params.items():
                    if pid not in PRESET_PASSES or not isinstance(params, dict):
                        problems.append(f"{where}: the preset's params map its passes "
                                        f"({', '.join(PRESET_PASSES)}) to parameters; "
                                        f"{pid!r} is not one of them")
                    else:
                        groups.append((pid, params))
            else:
                groups = [(step.pass_id, step.params)]
            for pid, params in groups:
                try:
                    p = get_pass(pid)
                except KeyError as e:
                    problems.append(f"{where}: {e.args[0] if e.args else e}")
                    continue
                known = {q.name: q for q in p.params}
                for name, value in params.items():
                    if name not in known:
                        problems.append(f"{where}: pass {pid!r} has no parameter {name!r}; "
                                        f"it takes: {', '.join(known) or 'none'}")
                        continue
                    why = param_problem(known[name], value)
                    if why:
                        problems.append(f"{where}: {pid}.{name} {why}")
        else:
            for spec in _npy_specs(step.args):
                why = _check_npy(spec, base_dir, allow_outside)
                if why:
                    problems.append(f"{where}: {why}")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise RecipeError("; ".join(problems[:5]) + more, source)


def _npy_specs(value) -> list[dict]:
    """Every ``{"npy": ...}`` value spec inside an edit's arguments."""
    found = []
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            if "npy" in v:
                found.append(v)
            else:
                todo.extend(v.values())
        elif isinstance(v, list):
            todo.extend(v)
    return found


def _check_npy(spec: dict, base_dir, allow_outside: bool) -> str | None:
    raw = spec.get("npy")
    if not isinstance(raw, str) or not raw:
        return "\"npy\" must be a file path"
    want = spec.get("sha256")
    if not isinstance(want, str) or len(want) != 64:
        return f"{raw}: a .npy needs its \"sha256\" checksum in the recipe"
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    path = Path(raw)
    path = (path if path.is_absolute() else base / path)
    real = Path(os.path.realpath(path))
    if not allow_outside and real != base.resolve() and base.resolve() not in real.parents:
        return (f"{raw}: is outside the recipe's folder {base} (move it next to the recipe, "
                "or allow it: --allow-outside-npy)")
    try:
        st = os.stat(real)
    except OSError as e:
        return f"{raw}: cannot read: {e.strerror or e}"
    if not stat.S_ISREG(st.st_mode):
        return f"{raw}: is not a regular file"
    if st.st_size > MAX_NPY_BYTES:
        return f"{raw}: is {st.st_size:,} bytes (at most {MAX_NPY_BYTES:,})"
    h = hashlib.sha256()
    try:
        with open(real, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        return f"{raw}: cannot read: {e.strerror or e}"
    if h.hexdigest() != want.lower():
        return f"{raw}: changed since the recipe was written (SHA-256 differs)"
    spec["npy"] = str(real)
    return None


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
    ckpt = getattr(document, "checkpoint", None)
    return Recipe(steps=steps, inputs=document.initial_inputs, outputs=document.initial_outputs,
                  source=document.source_path,
                  checkpoint=os.path.abspath(ckpt) if ckpt else None)


def apply_step(graph: Graph, step: RecipeStep, where: str = "step",
               keep_graphs: bool = True, owns_input: bool = False) -> tuple[Graph, list]:
    """Apply one recipe step exactly as the GUI does; returns the new Graph and the reports.

    ``keep_graphs=False``: the preset does not keep a GraphDef per inner step (big models), and
    its passes edit one working GraphDef in place: ``graph``'s own when ``owns_input`` (a single
    pass then edits it in place too)."""
    from ..passes import get_pass
    from ..passes.pipeline import input_ops, inputs_after, run_pass, run_pipeline
    if step.is_pass:
        if step.pass_id == PRESET_ID:
            if step.select is not None:
                raise RecipeError(f"{where}: the preset {PRESET_ID!r} cannot take a selection")
            params = preset_params(step.params, where)
            try:
                new, steps = run_pipeline(graph, [PRESET_ID], params, keep_graphs=keep_graphs,
                                          owns_input=owns_input)
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
        in_place = not keep_graphs and owns_input
        ops = input_ops(graph) if in_place else None
        try:
            result = run_pass(graph, step.pass_id, step.params,
                              select=None if step.select is None else set(step.select),
                              in_place=in_place)
        except GraphError as e:
            raise RecipeError(f"{where} ({step.pass_id}): {e.problem}", nodes=e.nodes) from None
        if step.select:
            found = {m.key for m in result.report.matches}
            unknown = [k for k in step.select if k not in found]
            if unknown:
                raise RecipeError(
                    f"{where} ({step.pass_id}): \"select\" names no match here: "
                    f"{', '.join(unknown[:5])}" + (" ..." if len(unknown) > 5 else "")
                    + f" (the pass found {len(found)} match(es)"
                    + (f": {', '.join(sorted(found)[:5])}" if found else "") + ")")
        new = Graph(result.graph_def, inputs_after(graph, result.graph_def, ops),
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
           keep_graphs: bool = True, consume: bool = False
           ) -> tuple[Graph, list[ReplayedStep]]:
    """Apply every step of ``recipe`` to ``graph`` (never edited in place, unless
    ``consume``).

    The recipe's inputs/outputs, when set, replace the graph's. Returns the final graph and one
    :class:`ReplayedStep` per recipe step. Errors name the step. ``keep_graphs=False`` keeps
    no intermediate GraphDefs (the CLI on a 350 MB model) and lets the preset edit its working
    graph in place; ``consume`` (with ``keep_graphs=False``) gives ``graph`` itself up to be
    that working graph (no copy; the caller must not use ``graph`` afterwards).
    """
    if recipe.inputs is not None or recipe.outputs is not None:
        graph = graph.with_io(recipe.inputs, recipe.outputs)
    missing = [n for n in (recipe.inputs or []) + (recipe.outputs or []) if n not in graph]
    if missing:
        raise RecipeError(f"the recipe names node(s) the model does not have: "
                          f"{', '.join(missing)}", graph.source, missing)
    done: list[ReplayedStep] = []
    given = graph.graph_def
    for i, step in enumerate(recipe.steps, 1):
        if should_stop and should_stop():
            raise InterruptedError("cancelled")
        # a graph an earlier step made is the replay's own; the caller's only when consumed
        owned = not keep_graphs and (consume or graph.graph_def is not given)
        graph, reports = apply_step(graph, step, f"step {i}", keep_graphs, owned)
        rs = ReplayedStep(step, graph.graph_def if keep_graphs else None, reports)
        done.append(rs)
        if on_step:
            on_step(rs)
    return graph, done
