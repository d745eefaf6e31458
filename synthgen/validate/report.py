"""The validation report: result.json, pod.png, examples_*.png and a self-contained HTML page.

`pod.png` has one panel per sweep and, in each, every detector's fitted POD curve, its 95%
confidence bounds (shaded), the hit/miss scatter (hits at 1, misses at 0, jittered), the
share of views hit at each size, and a90 and a90/95 marked. `examples_<sweep>.png` shows one
view at each of up to ten sizes with the defect mask outlined, and under it the anomaly or
segmentation map of the first detector that gives maps. The HTML page inlines every figure
as a base64 PNG, so it can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import io
import json
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synthgen.validate.pod import PodFit
from synthgen.validate.sweep import View

EXAMPLE_COLUMNS = 10
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    _pyplot().close(fig)
    return buffer.getvalue()


def _fit(entry: Mapping[str, Any]) -> PodFit:
    data = dict(entry)
    for key in ("size_range", "bracket"):
        if data.get(key) is not None:
            data[key] = tuple(data[key])
    return PodFit(**data)


def pod_figure(result: Mapping[str, Any], dpi: int = 100) -> bytes:
    """PNG bytes of the POD figure: one panel per sweep, every detector in each."""
    plt = _pyplot()
    sweeps = result["sweeps"]
    fig, axes = plt.subplots(1, len(sweeps), figsize=(5.2 * len(sweeps), 4.2), dpi=dpi,
                             squeeze=False)
    rng = np.random.default_rng(0)  # jitter of the scatter only
    detectors = [d["label"] for d in result["detectors"]]
    for ax, sweep in zip(axes[0], sweeps, strict=True):
        for j, label in enumerate(detectors):
            _panel(ax, result, sweep, label, COLORS[j % len(COLORS)], j, len(detectors), rng)
        ax.axhline(0.9, color="0.6", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_ylim(-0.08, 1.08)
        ax.set_xlabel(f"{sweep['defect']} {sweep['param']} (mm)")
        ax.set_ylabel("probability of detection")
        ax.set_title(sweep["defect"] + "." + sweep["param"], fontsize=10)
        ax.legend(loc="center right", fontsize=6.5, framealpha=0.85)
    fig.tight_layout()
    return _png(fig)


def _panel(ax, result, sweep, label, color, j, n_detectors, rng) -> None:
    """One detector on one sweep's axes."""
    key = f"{sweep['defect']}.{sweep['param']}"
    rows = [r for r in result["rows"] if r["detector"] == label and r["sweep"] == key]
    sizes = np.array([r["size"] for r in rows])
    hits = np.array([r["hit"] for r in rows], dtype=float)
    spread = np.exp(rng.uniform(-0.02, 0.02, len(sizes)))
    offset = 0.025 * (j - (n_detectors - 1) / 2)
    ax.scatter(sizes * spread, hits + offset + rng.uniform(-0.015, 0.015, len(hits)), s=7,
               color=color, alpha=0.45, lw=0)
    table = result["per_size_table"][label][key]
    ax.plot([t["size"] for t in table], [t["hits"] / max(t["views"], 1) for t in table], "o",
            mfc="none", color=color, ms=4)
    fit = _fit(result["fits"][label][key])
    calls = result["false_calls"][label]
    calls = "" if not calls["good"] else f"; false calls {calls['false_calls']}/{calls['good']}"
    if not fit.ok:
        ax.plot([], [], color=color, label=f"{label}: no fit ({fit.status}){calls}")
        ax.text(0.03, 0.88 - 0.14 * j, textwrap.fill(f"{label}: {fit.message}", 80),
                transform=ax.transAxes, fontsize=6, color=color, va="top",
                bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
        return
    low, high = sweep["low"], sweep["high"]
    reach = [v for v in (fit.a90, fit.a90_95) if v is not None]
    # The sizes tested, stretched to show a90 and a90/95 (up to 5x the largest size).
    grid = np.geomspace(low / 1.3, min(max([high, *reach]) * 1.1, high * 5), 300)
    lower, upper = fit.band(grid)
    ax.fill_between(grid, lower, upper, color=color, alpha=0.15, lw=0)
    a95 = "n/a" if fit.a90_95 is None else f"{fit.a90_95:.3g}"
    ax.plot(grid, fit.pod(grid), color=color, lw=1.6,
            label=f"{label}: a50 {fit.a50:.3g}, a90 {fit.a90:.3g}, a90/95 {a95}{calls}")
    ax.axvline(fit.a90, color=color, lw=0.9, ls="--")
    if fit.a90_95 is not None:
        ax.axvline(fit.a90_95, color=color, lw=0.9, ls=":")


def examples_figure(result: Mapping[str, Any], views: Sequence[View], sweep: Mapping[str, Any],
                    maps: Mapping[str, list | None], dpi: int = 100) -> bytes:
    """PNG bytes: one view per size (up to 10 sizes) with its mask outlined, scores below,
    and the first map-giving detector's map underneath."""
    from synthgen.contact_sheet import annotate

    plt = _pyplot()
    key = f"{sweep['defect']}.{sweep['param']}"
    position = {id(v): n for n, v in enumerate(views)}
    chosen = _example_views(views, key)
    map_label = next((label for label, m in maps.items() if m is not None), None)
    rows = 2 if map_label else 1
    fig, axes = plt.subplots(rows, len(chosen), figsize=(1.7 * len(chosen), 1.95 * rows),
                             dpi=dpi, squeeze=False)
    scores = {(r["detector"], r["image"]): r for r in result["rows"]}
    for c, view in enumerate(chosen):
        ax = axes[0, c]
        ax.imshow(annotate(view.rgb, view.mask[None], [sweep["defect"]]))
        first = scores[(result["detectors"][0]["label"], f"images/{view.name}.png")]
        verdict = "hit" if first["hit"] else "miss"
        ax.set_title(f"{view.size:.3g} mm, {view.mask_area_px} px\n{first['score']:.3g} "
                     f"{verdict}", fontsize=7)
        if map_label:
            found = maps[map_label][position[id(view)]]
            axes[1, c].imshow(view.rgb)
            if found is not None:
                height, width = view.rgb.shape[:2]
                axes[1, c].imshow(found, cmap="inferno", alpha=0.6, vmin=0, vmax=1,
                                  extent=(0, width, height, 0))
        for a in axes[:, c]:
            a.axis("off")
    if map_label:
        axes[1, 0].set_title(f"map: {map_label}", fontsize=7, loc="left")
    fig.tight_layout()
    return _png(fig)


def _example_views(views: Sequence[View], key: str) -> list[View]:
    """The first view of up to EXAMPLE_COLUMNS sizes spread over the grid."""
    firsts = [v for v in views if v.sweep == key and v.view == 0]
    if len(firsts) <= EXAMPLE_COLUMNS:
        return firsts
    picks = np.unique(np.round(np.linspace(0, len(firsts) - 1, EXAMPLE_COLUMNS)).astype(int))
    return [firsts[i] for i in picks]


def write_report(out: str | Path, result: Mapping[str, Any], views: Sequence[View],
                 maps: Mapping[str, list | None]) -> dict[str, Path]:
    """Write result.json, pod.png, examples_<sweep>.png and report.html into `out`.

    Returns:
        The written files by role ("json", "pod", "html", "examples:<sweep>").
    """
    from synthgen.writers.atomic import write_bytes, write_json, write_text

    out = Path(out)
    files = {"json": out / "result.json", "pod": out / "pod.png", "html": out / "report.html"}
    write_json(files["json"], result, indent=1)
    figures = {"pod": pod_figure(result)}
    write_bytes(files["pod"], figures["pod"])
    for sweep in result["sweeps"]:
        key = f"{sweep['defect']}.{sweep['param']}"
        name = f"examples_{key.replace('.', '_')}"
        figures[key] = examples_figure(result, views, sweep, maps)
        files[f"examples:{key}"] = out / f"{name}.png"
        write_bytes(files[f"examples:{key}"], figures[key])
    write_text(files["html"], render_html(result, figures))
    return files


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(result: Mapping[str, Any], figures: Mapping[str, bytes]) -> str:
    """The self-contained report page (figures inlined as base64 PNG)."""
    e = html.escape
    parts = [f"<h1>Probability of detection: {e(str(result.get('recipe_path') or 'recipe'))}"
             "</h1>", f"<p>{e(result['method'])}.</p>", "<h2>POD</h2>",
             _img(figures["pod"], "POD curves"), _summary_table(result),
             "<h2>False calls on good parts</h2>", _false_call_table(result),
             "<h2>Hits per size</h2>", _size_tables(result), "<h2>Examples</h2>"]
    for sweep in result["sweeps"]:
        key = f"{sweep['defect']}.{sweep['param']}"
        parts += [f"<h3>{e(key)}</h3>", _img(figures[key], f"examples {key}")]
    setup = {k: result[k] for k in ("command", "recipe_path", "recipe_hash", "seed", "sweeps",
                                   "per_size", "good", "max_attempts", "index_scheme",
                                   "detectors", "attempts")}
    parts += ["<h2>Reproduce</h2>", f"<pre>{e(json.dumps(setup, indent=1))}</pre>",
              "<details><summary>recipe</summary>",
              f"<pre>{e(json.dumps(result['recipe'], indent=1))}</pre></details>"]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:1em auto}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
             "padding:2px 6px;font-size:13px}img{max-width:100%}pre{font-size:11px}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>synthgen POD report"
            f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _summary_table(result: Mapping[str, Any]) -> str:
    rows = []
    for label, by_sweep in result["fits"].items():
        for key, fit in by_sweep.items():
            rows.append([label, key, fit["n"], fit["hits"], _number(fit["a50"]),
                         _number(fit["a90"]), _number(fit["a90_95"]), fit["message"]])
    return _table(["detector", "sweep", "views", "hits", "a50", "a90", "a90/95", "note"], rows)


def _false_call_table(result: Mapping[str, Any]) -> str:
    rows = [[label, f["good"], f["false_calls"], _number(f["rate"]), _number(f["upper_95"])]
            for label, f in result["false_calls"].items()]
    return _table(["detector", "good parts", "false calls", "rate", "95% upper bound"], rows)


def _size_tables(result: Mapping[str, Any]) -> str:
    rows = []
    for label, by_sweep in result["per_size_table"].items():
        for key, table in by_sweep.items():
            for t in table:
                rows.append([label, key, f"{t['size']:.4g}", t["views"], t["hits"],
                             "missed" if t["missed"] else ""])
    return _table(["detector", "sweep", "size", "views", "hits", ""], rows)
