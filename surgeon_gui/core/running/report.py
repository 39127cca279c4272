"""A before/after comparison as a short report (Markdown or HTML) and its values as ``.npz``.

The report works from :meth:`Comparison.to_dict` (so a saved ``surgeon compare --json`` can be
turned into a report too): the verdict, the tolerances and their definitions, the sample inputs,
one row per output, size and speed before/after with the speed-up, a latency chart (inline SVG
in HTML; a side ``.svg`` file linked from Markdown) and, when per-node drift was measured, the
nodes where the error starts.
"""
from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from ..model.files import write_atomic


def _f(x, fmt=".3g") -> str:
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    if isinstance(x, float) and (math.isinf(x) or math.isnan(x)):
        return str(x)
    return format(x, fmt)


def _bytes(n) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def _speed(speedup) -> str:
    if not speedup:
        return "–"
    return f"{speedup:.2f}× faster" if speedup >= 1 else f"{1 / speedup:.2f}× slower"


def _pct(x) -> str:
    return "–" if x is None else f"{x:.1%}"


def _change(a, b) -> str:
    if not a or b is None:
        return "–"
    return f"{(b - a) / a:+.1%}"


def report_tables(cmp: dict, drift: dict | None = None) -> dict[str, list[list[str]]]:
    """The report's tables as rows of strings (the first row is the header)."""
    outs = [["output", "shape", "max abs err", "max rel err", "allclose", "top-1", "top-5"]]
    for name, o in cmp["outputs"].items():
        verdict = "yes" if o["allclose"] else "**NO**"
        if o.get("note"):
            verdict += f" ({o['note']})"
        outs.append([name, "×".join(str(d) for d in o["shape_b"]) or "scalar",
                     _f(o["max_abs_err"]), _f(o["max_rel_err"]), verdict,
                     _pct(o.get("top1_agreement")), _pct(o.get("top5_agreement"))])
    a, b = cmp["graphs"]["a"], cmp["graphs"]["b"]

    def lat(g):
        if g.get("latency_ms") is None:
            return "not timed"
        return (f"{g['latency_ms']:.3f} ms ({g['latency_p10_ms']:.3f}–"
                f"{g['latency_p90_ms']:.3f})")
    sizes = [["", a["label"], b["label"], "change"],
             ["latency, median (p10–p90)", lat(a), lat(b),
              _speed(cmp.get("speedup"))],
             ["nodes", f"{a['node_count']:,}", f"{b['node_count']:,}",
              _change(a["node_count"], b["node_count"])],
             ["op types", str(a["op_count"]), str(b["op_count"]),
              _change(a["op_count"], b["op_count"])],
             ["parameters", f"{a['parameter_count']:,}", f"{b['parameter_count']:,}",
              _change(a["parameter_count"], b["parameter_count"])],
             ["serialized size", _bytes(a["serialized_bytes"]), _bytes(b["serialized_bytes"]),
              _change(a["serialized_bytes"], b["serialized_bytes"])]]
    feeds = [["input", "shape", "dtype", "values"]]
    for name, f in cmp.get("feeds", {}).items():
        feeds.append([name, "×".join(str(d) for d in f["shape"]), f["dtype"],
                      f.get("source", "")])
    tables = {"outputs": outs, "graphs": sizes, "inputs": feeds}
    if drift:
        rows = [["node (where the error starts first)", "max abs err", "max rel err"]]
        for n in drift.get("origins", [])[:10]:
            e = drift["errors"].get(n, {})
            rows.append([n, _f(e.get("max_abs_err")), _f(e.get("max_rel_err"))])
        tables["drift"] = rows
    return tables


def latency_svg(cmp: dict, width: int = 420) -> str:
    """A small horizontal bar chart: median latency per graph, p10–p90 whisker."""
    gs = [cmp["graphs"]["a"], cmp["graphs"]["b"]]
    if any(g.get("latency_ms") is None for g in gs):
        return ""
    top = max(g["latency_p90_ms"] for g in gs) or 1.0
    left, bar_h, gap = 110, 22, 14
    plot_w = width - left - 70
    height = 2 * (bar_h + gap) + 28
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<text x="{left}" y="14" fill="#444">latency, ms (median; whisker p10–p90)</text>']
    colors = ["#7f8fa6", "#3c8dbc"]
    for i, g in enumerate(gs):
        y = 24 + i * (bar_h + gap)
        w = plot_w * g["latency_ms"] / top
        x10 = left + plot_w * g["latency_p10_ms"] / top
        x90 = left + plot_w * g["latency_p90_ms"] / top
        cy = y + bar_h / 2
        parts += [
            f'<text x="{left - 6}" y="{cy + 4:.1f}" text-anchor="end">'
            f'{html.escape(str(g["label"]))}</text>',
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colors[i]}"/>',
            f'<line x1="{x10:.1f}" y1="{cy:.1f}" x2="{x90:.1f}" y2="{cy:.1f}" stroke="#222"/>',
            f'<line x1="{x10:.1f}" y1="{cy - 5:.1f}" x2="{x10:.1f}" y2="{cy + 5:.1f}" '
            f'stroke="#222"/>',
            f'<line x1="{x90:.1f}" y1="{cy - 5:.1f}" x2="{x90:.1f}" y2="{cy + 5:.1f}" '
            f'stroke="#222"/>',
            f'<text x="{max(x90, left + w) + 6:.1f}" y="{cy + 4:.1f}">'
            f'{g["latency_ms"]:.2f}</text>']
    parts.append("</svg>")
    return "\n".join(parts)


def _verdict(cmp: dict) -> str:
    n = len(cmp["outputs"])
    bad = [k for k, o in cmp["outputs"].items() if not o["allclose"]]
    if not bad:
        return f"All {n} output(s) allclose (rtol={cmp['rtol']:g}, atol={cmp['atol']:g})."
    return (f"{len(bad)} of {n} output(s) NOT allclose (rtol={cmp['rtol']:g}, "
            f"atol={cmp['atol']:g}): {', '.join(bad)}.")


def _definitions(cmp: dict) -> str:
    d = cmp.get("definitions", {})
    return "; ".join(f"{k} = {v}" for k, v in d.items())


def markdown_report(cmp: dict, title: str = "Comparison", drift: dict | None = None,
                    svg_name: str | None = None) -> str:
    tables = report_tables(cmp, drift)

    def md(rows):
        esc = [[c.replace("|", "\\|") for c in r] for r in rows]
        return "\n".join(["| " + " | ".join(esc[0]) + " |",
                          "|" + "---|" * len(esc[0])]
                         + ["| " + " | ".join(r) + " |" for r in esc[1:]])
    parts = [f"# {title}", "", f"**{_verdict(cmp)}**", ""]
    if cmp.get("labels_note"):
        parts += [cmp["labels_note"], ""]
    parts += ["## Outputs", "", md(tables["outputs"]), "",
              f"Definitions: {_definitions(cmp)}.", "",
              "## Size and speed", "", md(tables["graphs"]), "",
              f"Latency: median of {cmp['runs']} runs after {cmp['warmup']} warm-up run(s).", ""]
    if svg_name:
        parts += [f"![latency]({svg_name})", ""]
    parts += ["## Sample inputs", "", md(tables["inputs"]), ""]
    if "drift" in tables:
        parts += ["## Per-node drift", "",
                  f"{len(drift['errors'])} nodes compared, {len(drift['no_counterpart'])} "
                  f"with no counterpart, {len(drift['skipped'])} skipped."
                  + (f" Edited constants: {', '.join(drift['edited_consts'][:10])}."
                     if drift.get("edited_consts") else ""), ""]
        if len(tables["drift"]) > 1:
            parts += [md(tables["drift"]), ""]
        else:
            parts += ["No node drifts beyond the tolerance.", ""]
    return "\n".join(parts)


def html_report(cmp: dict, title: str = "Comparison", drift: dict | None = None) -> str:
    tables = report_tables(cmp, drift)

    def tbl(rows):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
        body = "".join("<tr>" + "".join(
            f"<td>{html.escape(c).replace('**', '')}</td>" for c in r) + "</tr>"
            for r in rows[1:])
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    ok = all(o["allclose"] for o in cmp["outputs"].values())
    style = ("body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
             "th{background:#f3f3f3}.ok{color:#1a7f37}.bad{color:#c62828}")
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{style}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='{'ok' if ok else 'bad'}'><b>{html.escape(_verdict(cmp))}</b></p>",
             "<h2>Outputs</h2>", tbl(tables["outputs"]),
             f"<p>Definitions: {html.escape(_definitions(cmp))}.</p>",
             "<h2>Size and speed</h2>", tbl(tables["graphs"]),
             f"<p>Latency: median of {cmp['runs']} runs after {cmp['warmup']} warm-up "
             "run(s).</p>", latency_svg(cmp),
             "<h2>Sample inputs</h2>", tbl(tables["inputs"])]
    if "drift" in tables:
        parts += ["<h2>Per-node drift</h2>",
                  f"<p>{len(drift['errors'])} nodes compared, {len(drift['no_counterpart'])} "
                  f"with no counterpart, {len(drift['skipped'])} skipped.</p>",
                  tbl(tables["drift"]) if len(tables["drift"]) > 1
                  else "<p>No node drifts beyond the tolerance.</p>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | Path, cmp: dict, title: str = "Comparison",
                 drift: dict | None = None, overwrite: bool = True) -> list[Path]:
    """Write ``.md`` (plus a ``<stem>_latency.svg`` beside it) or ``.html``; returns the files."""
    from ..model.files import write_files
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".html", ".htm"):
        return write_files({p: html_report(cmp, title, drift).encode("utf-8")},
                           overwrite=overwrite)
    if suffix not in (".md", ".markdown"):
        raise ValueError(f"a report is .md or .html, not {p.suffix or 'no suffix'!r}")
    svg = latency_svg(cmp)
    files: dict = {}
    svg_name = None
    if svg:
        svg_path = p.with_name(p.stem + "_latency.svg")
        svg_name = svg_path.name
        files[svg_path] = svg.encode("utf-8")
    # every destination is checked before either is written (the one write path)
    files = {p: markdown_report(cmp, title, drift, svg_name).encode("utf-8"), **files}
    return write_files(files, overwrite=overwrite)


def save_outputs_npz(path: str | Path, feeds: dict[str, np.ndarray],
                     values_a: dict[str, np.ndarray], values_b: dict[str, np.ndarray]) -> Path:
    """The sample inputs and both graphs' outputs: keys ``input/<name>``, ``reference/<name>``,
    ``current/<name>`` (``np.load(path)[...]``)."""
    p = Path(path)
    if p.suffix.lower() != ".npz":
        raise ValueError(f"outputs are saved as .npz, not {p.suffix or 'no suffix'!r}")
    arrays = {f"input/{k}": np.asarray(v) for k, v in feeds.items()}
    arrays.update({f"reference/{k}": np.asarray(v) for k, v in values_a.items()})
    arrays.update({f"current/{k}": np.asarray(v) for k, v in values_b.items()})
    p.parent.mkdir(parents=True, exist_ok=True)
    import io
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(p, buf.getvalue())
    return p
