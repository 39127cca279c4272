"""Strip attributes inference does not need: device placements, colocation constraints and,
on request, shape annotations and other private (``_``-prefixed) attributes."""
from __future__ import annotations

from .base import Param, Pass
from .context import PassContext, pass_body

#: Private attributes that still steer how TensorFlow runs a node: kept even on request.
KEEP_PRIVATE = frozenset({
    "_class",                      # handled by the `colocation` parameter
    "_lower_using_switch_merge",   # how an If/While is lowered
    "_noinline",                   # whether a function call may be inlined
})

EXPLANATION = """\
**What it removes.**
- `devices` (default on): the `device` field (`/job:worker/task:0/device:GPU:0`, …). A frozen
  graph carries the placements of the machine it was trained on; on another machine they
  either fail ("no such device") or pin work to the wrong place. Without them TensorFlow
  places every node itself.
- `colocation` (default on): `_class: loc:@node` attributes, which ask TensorFlow to put a
  node on the same device as another. They are placement hints only, and they break import
  as soon as the named node is gone ("expects to be colocated with unknown node").
- `output_shapes` (default off): `_output_shapes` shape annotations and the other
  `_`-prefixed bookkeeping attributes (`_has_manual_control_dependencies`, `_input_shapes`,
  `_XlaCompile`, …). Some tools read `_output_shapes`, so this is only on request. A few
  private attributes that change how TensorFlow runs a node are kept
  (`_lower_using_switch_merge`, `_noinline`).

Function bodies in the library are cleaned the same way.

**Why it is safe.** None of these attributes takes part in computing a value: kernels read
only the op's declared attributes, which are never touched.
"""


def _strip(node, devices: bool, colocation: bool, private: bool) -> dict[str, int]:
    done = {"device": 0, "_class": 0, "private": 0}
    if devices and node.device:
        node.device = ""
        done["device"] = 1
    if colocation and "_class" in node.attr:
        del node.attr["_class"]
        done["_class"] = 1
    if private:
        drop = [k for k in node.attr if k.startswith("_") and k not in KEEP_PRIVATE]
        for k in drop:
            del node.attr[k]
        done["private"] = len(drop)
    return done


@pass_body("strip_attributes")
def strip_attributes(ctx: PassContext, devices: bool = True, colocation: bool = True,
                     output_shapes: bool = False) -> None:
    graph, report = ctx.graph, ctx.report
    gd = graph.graph_def
    kinds = [("devices", devices, "device placement(s)",
              lambda n: bool(n.device)),
             ("colocation", colocation, "_class colocation attribute(s)",
              lambda n: "_class" in n.attr),
             ("output_shapes", output_shapes, "node(s) with _output_shapes or other private "
                                              "attributes",
              lambda n: any(k.startswith("_") and k not in KEEP_PRIVATE for k in n.attr))]
    func_nodes = [nd for f in gd.library.function for nd in f.node_def]
    active = {}
    for key, on, what, has in kinds:
        if not on:
            continue
        hits = [n.name for n in gd.node if has(n)]
        fhits = sum(1 for n in func_nodes if has(n))
        if not hits and not fhits:
            continue
        desc = f"{len(hits)} {what}"
        if fhits:
            desc += f" (and {fhits} in function bodies)"
        m = ctx.match(key, desc, nodes=hits)
        active[key] = m.applied
    if any(active.values()):
        editor = ctx.editor
        flags = dict(devices=active.get("devices", False),
                     colocation=active.get("colocation", False),
                     private=active.get("output_shapes", False))
        for node in editor.graph_def.node:
            if any(_strip(node, **flags).values()):
                editor.mark_changed(node.name)
        touched_funcs = set()
        for f in editor.graph_def.library.function:
            for nd in f.node_def:
                if any(_strip(nd, **flags).values()):
                    touched_funcs.add(f.signature.name)
        report.functions = touched_funcs
        for m in report.matches:
            if m.applied:
                m.changed = list(m.nodes)


PASS = Pass(
    id="strip_attributes",
    title="Strip device placements and unneeded attributes",
    explanation=EXPLANATION,
    fn=strip_attributes,
    params=[
        Param("devices", bool, True, "remove device placements"),
        Param("colocation", bool, True, "remove _class colocation attributes"),
        Param("output_shapes", bool, False,
              "also remove _output_shapes and other private _ attributes"),
    ],
)

__all__ = ["PASS", "strip_attributes"]
