"""A validation study composed: check → render → score → fit → report.

    result = validate(job, sweeps, detectors, "out/pod", per_size=10, good=20)

Everything that can be checked without rendering (sweeps, detectors, the output folder) is
checked first, so bad input fails before the first image. The result (and `result.json`)
holds every hit/miss row, the fits, the false-call rates, the recipe, seed and sample
indexes that reproduce each image.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synthgen.errors import ConfigError
from synthgen.job import Job, build_variants
from synthgen.validate.detectors import Detector
from synthgen.validate.pod import false_call_rate, fit_pod
from synthgen.validate.sweep import (
    SweepSpec,
    View,
    check_applicable,
    check_sweep,
    render_views,
)

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"


def check_output(out: str | Path) -> Path:
    """The report folder: new, or empty.

    Raises:
        ConfigError: it is a file, or a folder that already holds something.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"-o {str(out)!r}: the report folder must be new or empty")
    return out


def validate(
    job: Job,
    sweeps: Sequence[SweepSpec],
    detectors: Sequence[Detector],
    out: str | Path,
    per_size: int = 10,
    good: int = 20,
    max_attempts: int = 20,
    recipe_path: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run a whole validation and write its report into `out`.

    Args:
        job: the recipe (scene randomisation, image size, seed).
        sweeps: the parsed sweeps (checked here again, before rendering).
        detectors: the checked detectors (see `detectors.parse_detectors`).
        out: a new or empty folder: images/, masks/, views.jsonl, result.json, pod.png,
            examples_*.png and report.html are written there.
        per_size: views per size (K); good: defect-free parts (M).
        max_attempts: renders per view to get the defect visible at its size.
        recipe_path: where the recipe came from (recorded).
        progress: (done, total) after each rendered view.

    Returns:
        The result written to result.json.
    """
    from synthgen.validate.report import write_report
    from synthgen.writers.atomic import write_png, write_text

    if not sweeps:
        raise ConfigError("give at least one --sweep")
    keys = [s.key for s in sweeps]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"each sweep must set a different defect parameter, got {keys}")
    for spec in sweeps:
        check_sweep(job, spec)
    nominal = build_variants(job)[0]
    for spec in sweeps:
        check_applicable(job, spec, nominal)
    out = check_output(out)
    views = render_views(job, sweeps, per_size, good, max_attempts, progress)
    paths = []
    for view in views:
        paths.append(out / "images" / f"{view.name}.png")
        write_png(paths[-1], view.rgb)
        if view.sweep is not None:
            write_png(out / "masks" / f"{view.name}.png", view.mask.astype(np.uint8) * 255)
    write_text(out / "views.jsonl", "".join(_view_line(v) for v in views))
    scored = []
    for detector in detectors:
        log.info("scoring %d images with %s", len(views), detector.label)
        scores, maps = detector.score(paths, [v.rgb for v in views])
        scored.append((detector, scores, maps))
    result = summarise(job, sweeps, views, scored, per_size, good, max_attempts, recipe_path)
    maps_by_detector = {d.label: m for d, _, m in scored}
    write_report(out, result, views, maps_by_detector)
    return result


def _view_line(view: View) -> str:
    import json

    entry = {"name": view.name, "sweep": view.sweep, "size": view.size, "view": view.view,
             "index": view.index, "attempts": view.attempts, "redraws": list(view.redraws),
             "mask_area_px": view.mask_area_px, "record": view.record}
    return json.dumps(entry, sort_keys=True, default=float) + "\n"


def summarise(job, sweeps, views, scored, per_size, good, max_attempts, recipe_path):
    """The result dict: rows, fits, false-call rates, missed sizes and the set-up."""
    rows, fits, false_calls, per_size_table, missed = [], {}, {}, {}, {}
    for detector, scores, _ in scored:
        hits = scores >= detector.threshold
        for view, score, hit in zip(views, scores, hits, strict=True):
            rows.append({"detector": detector.label, "sweep": view.sweep, "size": view.size,
                         "size_index": view.size_index, "view": view.view,
                         "index": view.index, "attempts": view.attempts,
                         "mask_area_px": view.mask_area_px, "score": float(score),
                         "hit": bool(hit), "image": f"images/{view.name}.png"})
        is_good = np.array([v.sweep is None for v in views])
        false_calls[detector.label] = false_call_rate(hits[is_good])
        fits[detector.label], per_size_table[detector.label] = {}, {}
        missed[detector.label] = {}
        for spec in sweeps:
            mine = np.array([v.sweep == spec.key for v in views])
            sizes = np.array([v.size for v in views if v.sweep == spec.key], dtype=np.float64)
            fits[detector.label][spec.key] = fit_pod(sizes, hits[mine]).as_dict()
            table = _per_size(spec, sizes, hits[mine])
            per_size_table[detector.label][spec.key] = table
            missed[detector.label][spec.key] = [t["size"] for t in table if t["missed"]]
    return {
        "command": _command(job, sweeps, [d for d, _, _ in scored], per_size, good,
                            max_attempts, recipe_path),
        "recipe": job.to_dict(),
        "recipe_path": recipe_path,
        "recipe_hash": job.hash,
        "seed": job.seed,
        "sweeps": [s.as_dict() for s in sweeps],
        "per_size": per_size,
        "good": good,
        "max_attempts": max_attempts,
        "index_scheme": "view (sweep s, size i, view k, attempt a) = sample "
                        "(((s + 1) * 1000 + i) * 1000 + k) * 100 + a; good part m = m * 100",
        "detectors": [d.as_dict() for d, _, _ in scored],
        "method": "hit/miss POD (MIL-HDBK-1823A): logit link on ln(size), maximum likelihood; "
                  "pointwise one-sided 95% Wald bounds on the linear predictor from the "
                  "inverse Fisher information; a90/95 where the lower bound reaches 0.9",
        "fits": fits,
        "false_calls": false_calls,
        "per_size_table": per_size_table,
        "missed_sizes": missed,
        "attempts": _attempts(views),
        "rows": rows,
    }


def _per_size(spec: SweepSpec, sizes: np.ndarray, hits: np.ndarray) -> list[dict[str, Any]]:
    """Per size of the grid: views, hits, and whether any view was missed."""
    table = []
    for size in spec.sizes:
        here = np.isclose(sizes, size, rtol=1e-9)
        n, k = int(here.sum()), int(hits[here].sum())
        table.append({"size": float(size), "views": n, "hits": k, "missed": n - k})
    return table


def _attempts(views: Sequence[View]) -> dict[str, Any]:
    """How many renders the defect views took to show their defect at their size."""
    tries = np.array([v.attempts for v in views if v.sweep is not None])
    if len(tries) == 0:
        return {"views": 0}
    return {"views": len(tries), "redrawn": int((tries > 1).sum()),
            "mean": float(tries.mean()), "max": int(tries.max())}


def _command(job, sweeps, detectors, per_size, good, max_attempts, recipe_path) -> str:
    """The synthgen validate command line that renders the same views (run folders keep
    their own thresholds)."""
    import shlex

    width, height = job.render.width_height
    parts = ["synthgen", "validate", recipe_path or "RECIPE", "--seed", str(job.seed)]
    if width == height:
        parts += ["--size", str(width)]
    for spec in sweeps:
        parts += ["--sweep", spec.text]
    parts += ["--per-size", str(per_size), "--good", str(good), "--max-attempts",
              str(max_attempts)]
    for detector in detectors:
        parts += ["--detector", detector.spec]
    parts += [item for d in detectors if d.kind != "run"
              for item in ("--threshold", repr(d.threshold))]
    return shlex.join([*parts, "-o", "REPORT"])
