"""The ``surgeon`` command: Graph Surgeon's scripting surface.

    surgeon info MODEL
    surgeon passes
    surgeon optimize IN OUT [--inputs A,B] [--outputs X,Y] [--passes p1,p2] [--recipe FILE]
                            [--save-recipe FILE] [--force] [--signature S]
                            [--report tutorial.html|tutorial.md]
                            [--checkpoint PREFIX|FOLDER] [--keep-variables]
    surgeon compare A B [--inputs ...] [--outputs ...] [--runs N] [--json] [--feeds F.npz]
                        [--shape name=1,224,224,3] [--rtol R] [--atol A]

Every error is one line on stderr naming the file and the problem, with exit status 2 (``--debug``
shows the traceback). ``compare`` exits 0 when every output is allclose and 1 when one is not.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
from pathlib import Path

# Before anything imports TensorFlow: no C++ info/warning logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROG = "surgeon"
EXIT_OK, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2
GRAPH_SUFFIXES = (".pb", ".pbtxt", ".txt")


class CliError(Exception):
    """A usage or input problem, already phrased for the user."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 (not the multi-line usage dump)."""

    def error(self, message):
        raise CliError(f"{PROG}: {message} (see: {self.prog} --help)")


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items or None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Inspect and optimize TensorFlow graphs for inference.")
    p.add_argument("--debug", action="store_true", help="show tracebacks and TensorFlow logs")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("info", help="inputs, outputs, op histogram, node and parameter counts")
    s.add_argument("model", help=".pb, .pbtxt, SavedModel folder, .keras or .h5")
    s.add_argument("--signature", help="SavedModel signature (default: serving_default)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--checkpoint", help="freeze the graph's variables from this checkpoint "
                                        "(needs --outputs)")
    s.add_argument("--outputs", help="comma-separated output node names (default: detected)")
    s.add_argument("--check", action="store_true",
                   help="also ask TensorFlow (op registry and import) what is wrong with the "
                        "graph (imports TensorFlow)")
    s.add_argument("--trust-code", action="store_true", help=TRUST_HELP)

    s = sub.add_parser("passes", help="list the pass ids with their titles")
    s.add_argument("pass_id", nargs="?", metavar="PASS",
                   help="show this pass's explanation and parameters")
    s.add_argument("-v", "--verbose", action="store_true", help="list every pass's parameters")

    s = sub.add_parser("optimize", help="run passes (default: the inference preset) and save")
    s.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    s.add_argument("input", metavar="IN")
    s.add_argument("output", metavar="OUT", help="the result: .pb (binary) or .pbtxt (text)")
    s.add_argument("--inputs", help="comma-separated input node names (default: detected)")
    s.add_argument("--outputs", help="comma-separated output node names (default: detected)")
    s.add_argument("--passes", help="comma-separated pass ids; 'inference' is the preset "
                                    "(default when neither --passes nor --recipe is given)")
    s.add_argument("--recipe", help="replay a recipe JSON file (then --passes, if given)")
    s.add_argument("--param", action="append", default=[], metavar="PASS.NAME=VALUE",
                   help="a parameter of a pass named in --passes or run by the preset, e.g. "
                        "fold_constants.max_bytes=1e6 (repeatable; see: surgeon passes -v)")
    s.add_argument("--save-recipe", metavar="FILE", help="write the steps run as a recipe")
    s.add_argument("--allow-outside-npy", action="store_true",
                   help="let the recipe read .npy files outside its own folder")
    s.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    s.add_argument("--signature", help="SavedModel signature (default: serving_default)")
    s.add_argument("--report", metavar="TUTORIAL",
                   help="also write the session as a tutorial: .html (one self-contained page) "
                        "or .md (plus a folder of PNGs): each step's explanation, before/after "
                        "pictures, worked numbers, node counts, and the comparison's verdict")
    s.add_argument("--checkpoint", help="freeze the graph's variables from this checkpoint "
                                        "first: a prefix, its .index file or its folder "
                                        "(needs --outputs)")
    s.add_argument("--keep-variables", action="store_true",
                   help="optimize a graph that holds variables without freezing them")
    s.add_argument("--skip-import-check", action="store_true",
                   help="optimize even a graph TensorFlow cannot import (with a warning)")
    s.add_argument("--check", action="append", default=[], choices=["opencv", "tflite"],
                   help="run the result in this runtime on generated feeds: does it load and "
                        "match TensorFlow, how fast (repeatable)")

    s = sub.add_parser("compare", help="run two graphs on the same feeds and compare outputs")
    s.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    s.add_argument("a", metavar="A")
    s.add_argument("b", metavar="B")
    s.add_argument("--inputs", help="comma-separated input names (default: A's Placeholders)")
    s.add_argument("--outputs", help="comma-separated output names (default: detected in A)")
    s.add_argument("--runs", type=int, default=10, help="timed runs per graph (default 10)")
    s.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--feeds", help=".npy (one input) or .npz (one array per input name)")
    s.add_argument("--shape", action="append", default=[], metavar="NAME=D1,D2,...",
                   help="shape of an input with unknown dims (repeatable)")
    s.add_argument("--seed", type=int, default=0, help="seed for generated feeds")
    s.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance (1e-4)")
    s.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (1e-5)")
    s.add_argument("--signature", help="SavedModel signature (default: serving_default)")
    s.add_argument("--target", action="append", default=[], choices=["opencv", "tflite"],
                   help="also run both graphs in this runtime (OpenCV DNN, TensorFlow Lite): "
                        "does it load, match TensorFlow, how fast (repeatable)")
    return p


# ---------------------------------------------------------------------- commands
def _load(path: str, signature: str | None = None, outputs=None, checkpoint=None,
          trust_code: bool = False):
    from .core.model.io import load_model
    return load_model(path, signature=signature, outputs=outputs, checkpoint=checkpoint,
                      trust_code=trust_code)


TRUST_HELP = ("load a Keras Lambda / custom object or run a SavedModel's initializer: runs "
              "code from the file; only for files you trust")


def cmd_info(args, out) -> int:
    from .core.model.graph import dtype_name, shape_list
    from .core.model.io import guess_inference_outputs, unregistered_ops, variable_nodes
    from .core.model.checks import graph_problems
    model = _load(args.model, args.signature, _split(args.outputs), args.checkpoint,
                  args.trust_code)
    g = model.graph()
    problems = graph_problems(g.graph_def, deep=True if args.check else None)
    inputs = []
    for name in g.inputs:
        node = g.node(name)
        shape = shape_list(node.attr["shape"].shape) if "shape" in node.attr else None
        dtype = dtype_name(node.attr["dtype"].type) if "dtype" in node.attr else "?"
        inputs.append(dict(name=name, dtype=dtype, shape=shape))
    defaults = [n.name for n in g.graph_def.node if n.op == "PlaceholderWithDefault"]
    size = (os.path.getsize(model.path) if model.kind == "graphdef"
            and Path(model.path).suffix.lower() == ".pb" else g.graph_def.ByteSize())
    info = dict(path=model.path, kind=model.kind, nodes=len(g), parameters=g.parameter_count(),
                serialized_bytes=size, inputs=inputs,
                inputs_with_default=defaults, outputs=g.outputs,
                functions=g.function_names(), unregistered_ops=unregistered_ops(g.graph_def),
                op_histogram=g.op_histogram(), notes=model.notes, problems=problems)
    if args.json:
        print(json.dumps(info, indent=2), file=out)
        return EXIT_OK
    w = lambda s="": print(s, file=out)
    w(f"{model.path} ({model.kind})")
    w(f"  nodes:      {info['nodes']:,}")
    w(f"  parameters: {info['parameters']:,}")
    w(f"  size:       {info['serialized_bytes']:,} bytes")
    w("  inputs:     " + (", ".join(f"{i['name']} {i['dtype']}"
                                     + (str(i['shape']) if i['shape'] is not None else '[?]')
                                     for i in inputs) or "none"))
    if defaults:
        w("  with default (not required): " + ", ".join(defaults))
    variables = [] if args.checkpoint else variable_nodes(g.graph_def)
    if variables and not _split(args.outputs) and len(info["outputs"]) > 8:
        # a training graph: its sinks are mostly training machinery; say what to freeze
        outs = info["outputs"]
        w(f"  outputs:    {len(outs)} sinks of a training graph ({', '.join(outs[:3])}, ... "
          "--json lists them all)")
    else:
        w("  outputs:    " + (", ".join(info["outputs"]) or "none"))
    if variables:
        guess = guess_inference_outputs(g.graph_def)
        w(f"  variables:  {len(variables)}, their values in a checkpoint: freeze them with "
          "--checkpoint PREFIX|FOLDER --outputs NAMES")
        if guess.outputs:
            w(f"  the model's output{'s' if len(guess.outputs) > 1 else ''} "
              f"{'look' if len(guess.outputs) > 1 else 'looks'} like: "
              f"{','.join(guess.outputs)}" + ("" if guess.sure else " (not sure)"))
    if info["functions"]:
        w(f"  functions:  {len(info['functions'])} ({', '.join(info['functions'][:6])}"
          + (", ..." if len(info["functions"]) > 6 else "") + ")")
    if info["unregistered_ops"]:
        w("  ops this TensorFlow does not register (cannot run): "
          + ", ".join(info["unregistered_ops"]))
    if problems:
        w(f"  problems ({len(problems)}; TensorFlow would reject this graph as it is):")
        for p in problems:
            w(f"    - {p}")
    for note in model.notes:
        w(f"  note: {note}")
    w("  op histogram:")
    for op, n in info["op_histogram"].items():
        w(f"    {n:6d}  {op}")
    return EXIT_OK


def cmd_passes(args, out) -> int:
    from .core.passes import PRESET_ID, PRESET_PASSES, PRESET_TITLE, all_passes
    reg = all_passes()
    width = max(len(i) for i in list(reg) + [PRESET_ID])
    pass_id = getattr(args, "pass_id", None)
    if pass_id:
        if pass_id == PRESET_ID:
            print(f"{PRESET_ID}: {PRESET_TITLE}\n\nRuns, in this order and until nothing "
                  f"changes: {', '.join(PRESET_PASSES)}", file=out)
            return EXIT_OK
        if pass_id not in reg:
            raise CliError(f"unknown pass {pass_id!r} (see: surgeon passes)")
        p = reg[pass_id]
        print(f"{p.id}: {p.title}\n\n{p.explanation.strip()}\n", file=out)
        _print_params(p, out)
        return EXIT_OK
    for pid, p in reg.items():
        print(f"{pid:<{width}}  {p.title}", file=out)
        if getattr(args, "verbose", False):
            _print_params(p, out, indent=" " * (width + 4))
    print(f"{PRESET_ID:<{width}}  {PRESET_TITLE}: {', '.join(PRESET_PASSES)}", file=out)
    return EXIT_OK


def _print_params(p, out, indent: str = "") -> None:
    if not p.params:
        print(f"{indent}(no parameters)", file=out)
    for prm in p.params:
        choices = f" [{'|'.join(map(str, prm.choices))}]" if prm.choices else ""
        print(f"{indent}--param {p.id}.{prm.name}={prm.default!r}{choices}  {prm.help}",
              file=out)


def _check_out_path(path: str, force: bool) -> Path:
    p = Path(path)
    if p.suffix.lower() not in GRAPH_SUFFIXES:
        raise CliError(f"{path}: the output must end in .pb (binary) or .pbtxt (text)")
    return p


def _check_writes(args, outputs: list[str]) -> None:
    """Every destination checked before anything runs or is written (the one write path):
    no overwrite without --force, no output that is an input or another output."""
    from .core.model.files import check_destinations
    inputs = [x for x in (args.input, getattr(args, "recipe", None)) if x]
    check_destinations(outputs, inputs, overwrite=args.force)


def cmd_optimize(args, out) -> int:
    from .core.history.recipe import Recipe, replay
    from .core.model.graph import GraphError
    from .core.model.io import serialize
    from .core.passes import PRESET_ID, PRESET_PASSES, expand_pass_ids
    out_path = _check_out_path(args.output, args.force)
    if args.report:
        _check_report_path(args.report, args.force)
    destinations = [args.output] + [x for x in (args.save_recipe, args.report) if x]
    _check_writes(args, destinations)
    pass_ids = _split(args.passes)
    if args.passes is not None and not pass_ids:
        raise CliError("--passes is empty; give pass ids (see: surgeon passes)")
    if pass_ids:
        try:
            expand_pass_ids(pass_ids)
        except KeyError as e:
            raise CliError(f"--passes: {e.args[0]}") from None
    params = _pass_params(args.param, pass_ids or ([PRESET_ID] if args.recipe is None else []))
    recipe_in = Recipe.load(args.recipe, allow_outside=args.allow_outside_npy) if args.recipe else None
    if recipe_in is None and not pass_ids:
        pass_ids = [PRESET_ID]
    if recipe_in is not None and recipe_in.checkpoint and not args.checkpoint:
        # the recipe of a graph frozen from a checkpoint when opened: freeze it the same way
        args.checkpoint = recipe_in.checkpoint
        print(f"checkpoint: {args.checkpoint} (from the recipe; --checkpoint overrides it)",
              file=out)
        from .core.model.tfenv import quiet_tensorflow
        quiet_tensorflow()
    inputs = _split(args.inputs) or (recipe_in.inputs if recipe_in else None)
    outputs = _split(args.outputs) or (recipe_in.outputs if recipe_in else None)

    text = out_path.suffix.lower() in (".pbtxt", ".txt")
    t0 = time.perf_counter()
    model = _load(args.input, args.signature, outputs if args.checkpoint else None,
                  args.checkpoint, args.trust_code)
    graph = model.graph()
    _check_names(graph, inputs, "--inputs", args.input)
    _check_names(graph, outputs, "--outputs", args.input)
    _check_variables(model, args)
    graph = graph.with_io(inputs or model.inputs, outputs or model.outputs)
    input_imports = _check_imports(graph, args)
    before = len(graph)
    print(f"{args.input}: {before} nodes; inputs {', '.join(graph.inputs) or 'none'}; "
          f"outputs {', '.join(graph.outputs) or 'none'}", file=out)

    recipe = Recipe(source=str(args.input), inputs=graph.given_inputs,
                    outputs=graph.given_outputs,
                    checkpoint=os.path.abspath(args.checkpoint) if args.checkpoint else None)
    if recipe_in is not None:
        recipe.steps.extend(recipe_in.steps)
    for pid in pass_ids or []:
        if pid == PRESET_ID:
            # The preset's step records its passes' parameters: {pass id: {name: value}}.
            recipe.add_pass(pid, {p: dict(v) for p, v in params.items()
                                  if p in PRESET_PASSES})
        else:
            recipe.add_pass(pid, params.get(pid))

    def show(rs):
        label = rs.step.label
        for rep in rs.reports:
            if rep.modified:
                print(f"  {rep.pass_id:<22} {rep.summary()}", file=out)
        if not rs.step.is_pass:
            print(f"  {label:<22} applied", file=out)
        elif not any(r.modified for r in rs.reports):
            print(f"  {label:<22} nothing to do", file=out)

    # A recipe's own inputs/outputs were already applied above (CLI flags win).
    plan = Recipe(steps=recipe.steps)
    original = graph
    try:
        if args.report:
            from .core.running.tutorial import trace_recipe
            graph, traced = trace_recipe(graph, plan)
            for st in traced:
                print(f"  {st.pass_id or 'edit ' + str(st.edit):<22} "
                      f"{st.report.summary() if st.report else 'applied'}", file=out)
        else:
            # The passes edit the loaded graph in place (no copy per pass, nor of the model):
            # ``original`` is used up, and the failure path below loads the file again. A
            # binary result is streamed to the file, so the weights fold_batch_norm scales are
            # computed as they are written (core/model/deferred.py: not held twice); not when
            # manual edits (which may set a Const's value) or --check read the graph.
            from .core.model.deferred import deferring
            defer = not (text or args.check) and all(s.is_pass for s in plan.steps)
            with deferring() if defer else contextlib.nullcontext():
                graph, _ = replay(graph, plan, on_step=show, keep_graphs=False, consume=True)
            original = None
    except GraphError as e:
        raise GraphError(e.problem, e.source or args.input, e.nodes) from None
    del model
    if input_imports:
        def load_original():
            m = _load(args.input, args.signature, outputs if args.checkpoint else None,
                      args.checkpoint, args.trust_code)
            return m.graph().with_io(inputs or m.inputs, outputs or m.outputs)
        _check_result_imports(original if original is not None else load_original, graph,
                              plan, args)
    if any(s.is_pass and s.pass_id == PRESET_ID for s in plan.steps):
        _print_leftovers(graph, out)
    elapsed = time.perf_counter() - t0
    from .core.model.files import graph_def_chunks, write_files
    # binary: streamed node by node (the same bytes, no second copy of a big graph in memory)
    files = {out_path: serialize(graph.graph_def, "pbtxt") if text
             else graph_def_chunks(graph.graph_def)}
    if args.save_recipe:
        files[args.save_recipe] = recipe.to_json(
            os.path.dirname(os.path.abspath(args.save_recipe))).encode("utf-8")
    # checked again just before writing (a file may have appeared while the passes ran)
    write_files(files, inputs=[x for x in (args.input, args.recipe) if x], overwrite=args.force)
    after = len(graph)
    print(f"{args.output}: {after} nodes ({after - before:+d}) in {elapsed:.2f} s", file=out)
    if args.save_recipe:
        print(f"recipe: {args.save_recipe}", file=out)
    if args.report:
        _write_report(args, original, graph, traced, out)
    if args.check:
        _check_targets(graph, args.check, out)
    return EXIT_OK


def _print_leftovers(graph, out) -> None:
    """After the preset: the training machinery a user would expect gone, and why it stays."""
    from .core.passes.leftovers import leftovers
    left = leftovers(graph)
    if not left:
        print("left after the preset: no training machinery", file=out)
        return
    print("left after the preset:", file=out)
    for item in left:
        print(f"  {item.line()}", file=out)


def _check_targets(graph, targets, out) -> None:
    """``optimize --check``: the result in each target, on generated feeds."""
    from .core.running.runner import RunError, make_feeds, run_graph
    try:
        feeds = make_feeds(graph, seed=0)
        values = run_graph(graph.graph_def, feeds, graph.outputs)
    except RunError as e:
        print(f"check: not run ({e.problem})", file=out)
        return
    results = _run_targets(targets, [(graph.graph_def, graph.outputs,
                                      dict(zip(graph.outputs, values)))], feeds)
    for t, (res,) in results.items():
        print(f"check {res.summary()}", file=out)


REPORT_SUFFIXES = (".html", ".htm", ".md", ".markdown")


def _check_report_path(path: str, force: bool) -> None:
    p = Path(path)
    if p.suffix.lower() not in REPORT_SUFFIXES:
        raise CliError(f"{path}: a tutorial report is written as .html or .md")
    if p.is_dir():
        raise CliError(f"{path}: is a folder; give a .html or .md file name")
    if p.exists() and not force:
        raise CliError(f"{path}: exists; not overwriting it (add --force to replace it)")


def _write_report(args, original, final, traced, out) -> None:
    """The tutorial of this run: pictures when Qt can start (offscreen), else without."""
    from .core.running.compare import compare_graphs
    from .core.running.runner import make_feeds
    from .core.running.tutorial import build_tutorial, write_tutorial
    cmp, cmp_error, feeds = None, "", None
    try:
        feeds = make_feeds(original, seed=0)
        cmp = compare_graphs(original.graph_def, final.graph_def, feeds, original.outputs,
                             runs=5, warmup=1, labels=("original", "optimized")).to_dict()
    except Exception as e:  # noqa: BLE001 - the tutorial says why there is no comparison
        cmp_error = " ".join(str(getattr(e, "problem", None) or e).split())[:200]
    try:
        from .ui.tutorial_pictures import cli_renderer
        render, note = cli_renderer()
    except ImportError as e:
        render, note = None, f"no pictures: PySide6 is not available ({e})"
    title = f"Optimizing {Path(args.input).name} for inference"
    tut = build_tutorial(title, str(args.input), traced, cmp, cmp_error, render, note,
                         feeds=feeds)
    try:
        written = write_tutorial(tut, args.report, overwrite=True)
    except OSError as e:
        raise CliError(f"{args.report}: cannot write: {e.strerror or e}") from None
    extra = f" (+{len(written) - 1} pictures)" if len(written) > 1 else ""
    print(f"tutorial: {args.report}{extra}; {tut.verdict}"
          + (f"; {tut.picture_note}" if tut.picture_note else ""), file=out)


def _check_imports(graph, args) -> bool:
    """Stop on an input TensorFlow does not import, unless told; True when it imports."""
    from .core.running.import_guard import import_problem
    problem = import_problem(graph.graph_def)
    if problem is None:
        return True
    if not args.skip_import_check:
        raise CliError(f"{args.input}: TensorFlow cannot import this graph: {problem} (fix it, "
                       "or add --skip-import-check to optimize it anyway)")
    print(f"warning: {args.input}: TensorFlow cannot import this graph ({problem}); "
          "optimizing it anyway", file=sys.stderr)
    return False


def _check_result_imports(original, result, plan, args) -> None:
    """The input imported: a result that does not is a bug. Name the pass; write nothing.
    ``original``: the input graph, or a function that loads it again."""
    from .core.running.import_guard import first_breaking_pass, import_problem
    problem = import_problem(result.graph_def)
    if problem is None:
        return
    found = first_breaking_pass(original() if callable(original) else original, plan)
    where = f"pass {found[0]}" if found else "the steps run"
    raise CliError(f"{args.input}: {where} made a graph TensorFlow cannot import "
                   f"({found[1] if found else problem}); nothing written. This is a bug in "
                   "Graph Surgeon: please report it with the model")


def _check_variables(model, args) -> None:
    """A graph saved with its variables is not ready for inference: say so, unless told."""
    from .core.model.io import variable_nodes
    names = variable_nodes(model.graph_def)
    if not names or args.checkpoint:
        return
    some = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    if not args.keep_variables:
        raise CliError(f"{args.input}: the graph holds {len(names)} variable(s) ({some}) whose "
                       "values are in a checkpoint: give --checkpoint PREFIX|FOLDER and "
                       "--outputs to freeze them, or --keep-variables to optimize it as it is")
    print(f"warning: keeping {len(names)} variable(s) ({some}); their reads and update ops "
          "stay", file=sys.stderr)


def _pass_params(specs: list[str], pass_ids: list[str]) -> dict[str, dict]:
    """``--param PASS.NAME=VALUE`` flags as {pass id: {name: typed value}}."""
    from .core.passes import PRESET_ID, expand_pass_ids, get_pass
    params: dict[str, dict] = {}
    expanded = set(expand_pass_ids(pass_ids))
    for spec in specs:
        key, eq, text = spec.partition("=")
        pid, dot, name = key.strip().partition(".")
        if not eq or not dot or not name:
            raise CliError(f"--param {spec!r}: write PASS.NAME=VALUE, e.g. "
                           "fold_constants.max_bytes=1000000")
        if pid not in expanded:
            raise CliError(f"--param {spec!r}: pass {pid!r} is not in --passes"
                           + (" nor in the inference preset" if PRESET_ID in pass_ids else ""))
        known = {p.name: p for p in get_pass(pid).params}
        if name not in known:
            raise CliError(f"--param {spec!r}: pass {pid!r} has no parameter {name!r}; it "
                           f"takes: {', '.join(known) or 'none'}")
        try:
            params.setdefault(pid, {})[name] = known[name].parse(text)
        except ValueError as e:
            raise CliError(f"--param {spec!r}: {e}") from None
    return params


def _check_names(graph, names, flag, path) -> None:
    from .core.model.graph import node_of
    missing = [n for n in names or [] if node_of(n) not in graph]
    if missing:
        raise CliError(f"{path}: {flag} names node(s) not in the graph: {', '.join(missing)}")


def cmd_compare(args, out) -> int:
    from .core.model.graph import node_of
    from .core.running.compare import compare_graphs
    from .core.running.runner import RunError, make_feeds, parse_shape
    if args.runs < 0 or args.warmup < 0:
        raise CliError("--runs and --warmup must be 0 or more")
    if args.rtol < 0 or args.atol < 0:
        raise CliError("--rtol and --atol must be 0 or more")
    shapes = {}
    for spec in args.shape:
        try:
            name, dims = parse_shape(spec)
        except ValueError as e:
            raise CliError(f"--shape: {e}") from None
        shapes[name] = dims
    outputs = _split(args.outputs)
    a = _load(args.a, args.signature, trust_code=args.trust_code)
    b = _load(args.b, args.signature, trust_code=args.trust_code)
    ga = a.graph()
    _check_names(ga, outputs, "--outputs", args.a)
    inputs = _split(args.inputs)
    _check_names(ga, inputs, "--inputs", args.a)
    ga = ga.with_io(inputs or a.inputs, outputs or a.outputs)
    outputs = ga.outputs
    if not outputs:
        raise CliError(f"{args.a}: no outputs found; give --outputs")
    gb = b.graph()
    outputs_b = outputs
    if b.outputs and len(b.outputs) == len(outputs) and not _split(args.outputs) \
            and any(node_of(o) not in gb for o in outputs):
        outputs_b = b.outputs  # e.g. a re-frozen model whose output got a new name
    missing = [o for o in outputs_b if node_of(o) not in gb]
    if missing:
        raise CliError(f"{args.b}: has no output node(s) {', '.join(missing)} "
                       "(give --outputs names both graphs have)")
    unknown = [n for n in shapes if n not in ga]
    if unknown:
        raise CliError(f"{args.a}: --shape names node(s) not in the graph: {', '.join(unknown)}")
    assumed = {}  # image inputs of unknown height/width: 224×224, said on the output
    if args.feeds:
        feeds = _feeds_with_flags(args.feeds, ga)
    else:
        assumed = _assumed_image_shapes(ga, [n for n in map(node_of, ga.inputs)
                                             if n not in shapes])
        feeds = make_feeds(ga, shapes={**shapes, **{n: s for n, (s, _) in assumed.items()}},
                           seed=args.seed)
    try:
        cmp = compare_graphs(a.graph_def, b.graph_def, feeds, outputs, runs=args.runs,
                             warmup=args.warmup, rtol=args.rtol, atol=args.atol,
                             outputs_b=outputs_b, labels=(args.a, args.b))
    except RunError as e:
        # an input whose unknown dimensions took 1 (a detector fed a 1x1 image): say so
        guessed = [] if args.feeds else [
            (n, s) for n, s in ((node_of(i), feeds.get(node_of(i))) for i in ga.inputs)
            if n not in shapes and s is not None and -1 in _declared_shape(ga, n)]
        if not guessed:
            raise
        fed = ", ".join(f"{n} {'x'.join(map(str, v.shape))}" for n, v in guessed)
        hint = " ".join("--shape {}={}".format(n, ",".join(
            str(d) if d >= 0 else ("1" if i == 0 else "N")
            for i, d in enumerate(_declared_shape(ga, n)))) for n, _ in guessed)
        how = ("unknown image height/width taken as 224, other unknown dimensions 1"
               if assumed else "unknown dimensions filled with 1")
        raise CliError(f"{e} (fed {fed}: {how}; give the real shape: {hint})") from None
    targets = _run_targets(args.target, [(a.graph_def, outputs, cmp.values_a),
                                         (b.graph_def, outputs_b, cmp.values_b)], feeds)
    if args.json:
        d = cmp.to_dict()
        d["graphs"]["a"]["path"] = args.a
        d["graphs"]["b"]["path"] = args.b
        if assumed:
            d["assumed_shapes"] = {n: dict(shape=sh, note=note)
                                   for n, (sh, note) in assumed.items()}
        if targets:
            d["targets"] = {t: dict(a=ra.to_dict(), b=rb.to_dict())
                            for t, (ra, rb) in targets.items()}
        print(json.dumps(d), file=out)
    else:
        print(f"A: {args.a}\nB: {args.b}", file=out)
        for n, (shape, note) in assumed.items():
            print(f"input {n}: {'x'.join(map(str, shape))} ({note}; --shape {n}=... sets it)",
                  file=out)
        for line in cmp.summary_lines():
            print(line, file=out)
        for t, (ra, rb) in targets.items():
            print(f"target A: {ra.summary()}", file=out)
            print(f"target B: {rb.summary()}", file=out)
        print("result: " + ("all outputs allclose" if cmp.allclose
                            else "outputs DIFFER beyond tolerance"), file=out)
    return EXIT_OK if cmp.allclose else EXIT_DIFFERENT


def _assumed_image_shapes(graph, names: list[str]) -> dict:
    """{input: (shape, note)} for image inputs whose default shape assumes a 224×224 image
    (the rule of the comparison panel's sample inputs, core.running.samples)."""
    from .core.running.samples import SampleError, SampleSet, input_specs
    out = {}
    for n in names:
        try:
            (spec,) = input_specs(graph, [n])
            if spec.assumed_image_dims:
                out[n] = (SampleSet().resolved_shape(spec), spec.assumption_note)
        except SampleError:
            continue
    return out


def _declared_shape(graph, name: str) -> list[int]:
    """An input's Placeholder shape (-1 unknown), [] for unknown rank."""
    from .core.model.graph import shape_list
    node = graph.node(name)
    return (shape_list(node.attr["shape"].shape) or []) if "shape" in node.attr else []


def _run_targets(targets, graphs, feeds) -> dict:
    """{target: [result per graph]}: each graph run in the target against its own TF values."""
    from .core.running.targets import check_target
    out = {}
    for t in dict.fromkeys(targets):
        res = []
        for gd, outputs, values in graphs:
            names = {n.name for n in gd.node}
            fed = {k: v for k, v in feeds.items() if k in names}
            res.append(check_target(gd, t, fed, outputs, [values[o] for o in outputs]))
        out[t] = res
    return out


def _feeds_with_flags(path: str, graph):
    """Arrays from a feeds file; a bool flag input it leaves out gets the inference value."""
    from .core.model.io import load_feeds
    from .core.running.runner import make_feeds, placeholder_spec
    import numpy as np
    given = load_feeds(path)
    flags = [i for i in graph.inputs if i not in given
             and placeholder_spec(graph, i)[0] == np.bool_
             and placeholder_spec(graph, i)[1] in (None, [])]
    feeds = load_feeds(path, [i for i in graph.inputs if i not in flags])
    feeds.update(make_feeds(graph, inputs=flags))
    return feeds


COMMANDS = dict(info=cmd_info, passes=cmd_passes, optimize=cmd_optimize, compare=cmd_compare)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]  # accepted anywhere on the line
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except CliError as e:
        print(str(e), file=sys.stderr)
        return EXIT_ERROR
    except SystemExit as e:  # --help
        return int(e.code or 0)
    if not args.command:
        parser.print_help()
        return EXIT_ERROR
    try:
        if _needs_tensorflow(args):
            from .core.model.tfenv import quiet_tensorflow
            quiet_tensorflow(debug)
        return COMMANDS[args.command](args, sys.stdout)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`surgeon info big.pb | head`): not an error worth a message.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except Exception as e:
        if debug:
            raise
        print(_one_line(e), file=sys.stderr)
        return EXIT_ERROR


def _needs_tensorflow(args) -> bool:
    """Whether the command needs TensorFlow's runtime, imported up front and quietly.

    ``info`` on a .pb/.pbtxt and ``passes`` do not (protos come without TF, and the registered
    op list from a cache, see core/model/registered_ops.py: ~2-4 s saved); what needs it
    later imports it quietly itself."""
    if args.command == "passes":
        return False
    if args.command == "info":
        model = args.model
        return bool(args.checkpoint or os.path.isdir(model)
                    or not model.lower().endswith(GRAPH_SUFFIXES))
    if args.command == "optimize":
        # A GraphDef is optimized with TensorFlow's C API only (core/model/tfc.py: op registry,
        # constant evaluation, the import check): ~3 s and ~400 MB less.
        model = args.input
        importlib.import_module(".core.model.tfenv", __package__)  # sets TF_CPP_MIN_LOG_LEVEL
        return bool(args.checkpoint or args.check or args.report or os.path.isdir(model)
                    or not model.lower().endswith(GRAPH_SUFFIXES))
    return True


def _one_line(e: Exception) -> str:
    from .core.model.graph import GraphError
    if isinstance(e, (CliError, GraphError)) or isinstance(e, FileExistsError):
        msg = str(e)
    elif isinstance(e, OSError):
        msg = f"{e.filename or ''}: {e.strerror or e}".lstrip(": ")
    elif isinstance(e, MemoryError):
        msg = "out of memory"
    else:
        msg = (f"internal error ({type(e).__name__}: {e}); "
               f"run with --debug for the traceback")
    msg = " ".join(str(msg).split())
    return f"{PROG}: {msg}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
