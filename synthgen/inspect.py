"""What a rendered dataset holds: counts, class balance and defect sizes (`synthgen inspect`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from synthgen.errors import ConfigError
from synthgen.writers.manifest import ManifestWriter


def _records(dataset: Path) -> list[dict[str, Any]]:
    """The dataset's manifest records: manifest.jsonl, or the sample parts of a job that has
    not been finalised yet."""
    lines = dataset / "manifest.jsonl"
    if lines.is_file():
        return [json.loads(line) for line in lines.read_text().splitlines() if line.strip()]
    return ManifestWriter(dataset).records()


def dataset_summary(dataset: str | Path) -> dict[str, Any]:
    """Counts per split, and per defect type: visible instances, images, sizes.

    Returns:
        {"name", "samples", "complete", "splits": {split: {"good", "defective"}},
         "defects": {type: {"instances", "images", "median_size_mm", "median_area_px",
         "sizes_mm": [...], "areas_px": [...]}}}

    Raises:
        ConfigError: the folder holds no synthgen dataset.
    """
    dataset = Path(dataset)
    summary_file = dataset / "manifest.json"
    if not dataset.is_dir() or not (summary_file.is_file() or (dataset / ".parts").is_dir()):
        raise ConfigError(f"{dataset} holds no synthgen dataset (no manifest.json)")
    meta = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    records = _records(dataset)
    splits: dict[str, dict[str, int]] = {}
    defects: dict[str, dict[str, Any]] = {}
    for record in records:
        counts = splits.setdefault(record["split"], {"good": 0, "defective": 0})
        counts["good" if record["is_good"] else "defective"] += 1
        seen = set()
        for defect in record["defects"]:
            if not defect["visible"]:
                continue
            row = defects.setdefault(defect["type"], {"instances": 0, "images": 0,
                                                      "sizes_mm": [], "areas_px": []})
            row["instances"] += 1
            row["sizes_mm"].append(defect["size_mm"])
            row["areas_px"].append(defect["mask_area_px"])
            seen.add(defect["type"])
        for kind in seen:
            defects[kind]["images"] += 1
    for row in defects.values():
        row["median_size_mm"] = float(np.median(row["sizes_mm"]))
        row["median_area_px"] = float(np.median(row["areas_px"]))
    return {
        "name": meta.get("name", dataset.name),
        "samples": len(records),
        "complete": bool(meta.get("complete", False)),
        "splits": dict(sorted(splits.items())),
        "defects": dict(sorted(defects.items())),
    }


def plot_summary(summary: dict[str, Any], path: str | Path) -> Path:
    """Save a PNG: images per split (good / defective) and a defect-size histogram per type.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    splits = list(summary["splits"])
    good = [summary["splits"][s]["good"] for s in splits]
    bad = [summary["splits"][s]["defective"] for s in splits]
    left.bar(splits, good, label="good")
    left.bar(splits, bad, bottom=good, label="defective")
    left.set_title(f"{summary['name']}: {summary['samples']} images")
    left.set_ylabel("images")
    left.legend()
    kinds = list(summary["defects"])
    if kinds:
        sizes = [summary["defects"][k]["sizes_mm"] for k in kinds]
        bins = np.histogram_bin_edges(np.concatenate(sizes), bins=20)
        right.hist(sizes, bins=bins, stacked=True, label=kinds)
        right.legend(fontsize=8)
    right.set_title("visible defects by size")
    right.set_xlabel("defect size (mm)")
    right.set_ylabel("instances")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
