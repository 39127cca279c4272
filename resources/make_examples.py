"""Write the bundled example models into ``resources/examples/`` (and its README).

    python resources/make_examples.py            # all examples
    python resources/make_examples.py --only tf1_cond_bn_dropout.pb

Every example is a real TensorFlow graph built the way users' graphs come about (see
``surgeon_gui/core/model/examples.py``), small enough to ship (well under 12 MB together). The output
is deterministic for the TF1 and plain-Const examples (same node names, ops and weights each
run); TF2 function names and Keras layer names come from TensorFlow and may differ between
TensorFlow versions.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "examples"
sys.path.insert(0, str(HERE.parent))


@dataclass
class Example:
    file: str
    title: str
    description: str
    #: ``build()``, or ``build(checkpoint_prefix)`` when ``checkpoint`` is set
    build: Callable[..., tuple]
    #: The checkpoint prefix written beside the graph (relative to the examples folder).
    checkpoint: str | None = None


def _tf1():
    from surgeon_gui.core.model.examples import tf1_cond_bn_dropout
    return tf1_cond_bn_dropout(seed=0, height=32, channels=8, classes=5)


def _tf2():
    from surgeon_gui.core.model.examples import tf2_if_bn_dropout
    return tf2_if_bn_dropout(seed=0, height=32, channels=8, classes=5)


def _tf1_training(checkpoint: str):
    from surgeon_gui.core.model.examples import tf1_cond_bn_dropout
    return tf1_cond_bn_dropout(seed=0, height=32, channels=8, classes=5, checkpoint=checkpoint)


def _mobilenet():
    """MobileNetV2 (alpha 0.35) at 96x96, 10 classes, random weights and BN statistics."""
    import tensorflow as tf
    from surgeon_gui.core.model.examples import randomize_batch_norms
    from surgeon_gui.core.model.io import freeze_keras_model
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((96, 96, 3), name="input")
    model = tf.keras.applications.MobileNetV2(input_tensor=inp, alpha=0.35, weights=None,
                                              classes=10)
    randomize_batch_norms(model, seed=0)
    loaded = freeze_keras_model(model, "MobileNetV2")
    return loaded.graph_def, loaded.inputs, loaded.outputs


def _conv_bias_bn():
    from surgeon_gui.core.model.examples import conv_bias_bn
    return conv_bias_bn(seed=0)


EXAMPLES = [
    Example("tf1_cond_bn_dropout.pb", "TF1 CNN with v1 control flow (the app's default example)",
            "A TF1 graph-mode CNN: every batch norm sits in a v1 `tf.cond` (Switch/Merge) on an "
            "`is_training` PlaceholderWithDefault, dropout behind the same flag, weights read "
            "through Identity `/read` nodes, conv → BiasAdd → FusedBatchNorm, a depthwise conv "
            "and a MatMul head with a decomposed batch norm.", _tf1),
    Example("tf2_if_bn_dropout.pb", "TF2 CNN with functional If",
            "The same network as a TF2 `tf.function` with a `training` argument: functional "
            "`If`/`StatelessIf` around batch norm and dropout, frozen with its function "
            "library.", _tf2),
    Example("mobilenet_v2_96.pb", "Keras MobileNetV2 (alpha 0.35, 96x96, 10 classes)",
            "`tf.keras.applications.MobileNetV2`, random weights and randomised batch-norm "
            "statistics, frozen. Keras 3 writes its batch norms as Mul/Rsqrt/AddV2/Sub.",
            _mobilenet),
    Example("tf1_training/graph.pb", "The TF1 CNN as its training script saved it",
            "`tf1_cond_bn_dropout.pb` before freezing: weights in `VariableV2` nodes, a "
            "`Saver`'s and the initializer's nodes, the values in the checkpoint "
            "`tf1_training/model.ckpt` (`.index`, `.data-00000-of-00001`, `checkpoint`). "
            "Open it with File ▸ Open with Checkpoint… (output `probs`), or "
            "`surgeon optimize --checkpoint`; frozen it is `tf1_cond_bn_dropout.pb`. Lesson 4 "
            "starts here.", _tf1_training, checkpoint="tf1_training/model.ckpt"),
    Example("conv_bias_bn.pbtxt", "Conv2D → BiasAdd → FusedBatchNorm → Relu (text)",
            "The pattern TF's `optimize_for_inference_lib` stops on (\"Didn't find expected "
            "Conv2D input\"), as a readable text GraphDef.", _conv_bias_bn),
]


def build(file: str):
    """(graph_def, inputs, outputs) of one example by file name."""
    for ex in EXAMPLES:
        if ex.file == file:
            return ex.build()
    raise KeyError(f"no example {file!r}; known: {', '.join(e.file for e in EXAMPLES)}")


def write_readme(out_dir: Path, rows: list[tuple[Example, int, list, list, int]]) -> None:
    lines = ["# Bundled examples", "",
             "Written by `python resources/make_examples.py` (do not edit by hand; re-run it).",
             "Open one in the app, or try the command line:", "",
             "    surgeon info resources/examples/tf1_cond_bn_dropout.pb",
             "    surgeon optimize resources/examples/tf1_cond_bn_dropout.pb /tmp/opt.pb",
             "    surgeon compare resources/examples/tf1_cond_bn_dropout.pb /tmp/opt.pb", "",
             "| file | nodes | inputs | outputs | size |", "|---|---|---|---|---|"]
    for ex, nodes, ins, outs, size in rows:
        lines.append(f"| `{ex.file}` | {nodes} | {', '.join(ins)} | {', '.join(outs)} "
                     f"| {size / 1024:.0f} KB |")
    lines.append("")
    for ex, *_ in rows:
        lines += [f"## {ex.file}", "", f"**{ex.title}.** {ex.description}", ""]
    (out_dir / "README.md").write_text("\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(OUT_DIR), help="folder to write into")
    ap.add_argument("--only", action="append", help="only this example file (repeatable)")
    args = ap.parse_args(argv)
    from surgeon_gui.core.model.io import save_graph
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for ex in EXAMPLES:
        if args.only and ex.file not in args.only:
            continue
        if ex.checkpoint:
            gd, ins, outs = ex.build(str(out_dir / ex.checkpoint))
        else:
            gd, ins, outs = ex.build()
        (out_dir / ex.file).parent.mkdir(parents=True, exist_ok=True)
        path = save_graph(gd, out_dir / ex.file, overwrite=True)
        size = path.stat().st_size
        rows.append((ex, len(gd.node), list(ins), list(outs), size))
        print(f"{path}: {len(gd.node)} nodes, {size:,} bytes, inputs {ins}, outputs {outs}")
    if not args.only:
        write_readme(out_dir, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
