"""Training runs end to end: a dataset folder → a run folder → metrics and predictions.

    train_run("ae_ssim", "out/bottles", "runs/ae", epochs=20)      # synthgen train
    evaluate_run("runs/ae")                                        # synthgen evaluate
    predict_run("runs/ae", ["a.png", "b.png"], "pred/")            # synthgen predict

A run folder holds the checkpoints (`last.pt`, `best.pt`), `history.json`, `run.json` (the
model, settings and the exact train/validation/test split, by image path) and, after
evaluation, `metrics.json`, `roc.png` and `maps.png`. Thresholds (image score, anomaly-map
pixels) are chosen on the validation split and stored in `run.json`; the test split is only
ever used to report.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synthgen.detect.data import (
    Item,
    class_names,
    good_only,
    load_image,
    read_dataset,
    split_items,
)
from synthgen.errors import ConfigError
from synthgen.writers.atomic import write_json

log = logging.getLogger(__name__)

RUN_FILE = "run.json"


def _items_by_path(items: Sequence[Item]) -> dict[str, Item]:
    return {str(item.image): item for item in items}


def _datasets(items: Sequence[Item], size: int, seed: int, synthetic: bool = False):
    from synthgen.detect.torch_data import DefectDataset

    dataset = DefectDataset(list(items), size=size, train=True, rng_seed=seed, cache=synthetic)
    if synthetic:  # good images → (image, clean, exact mask) samples with Perlin anomalies
        from synthgen.detect.synthetic_anomalies import SyntheticAnomalies

        return SyntheticAnomalies(dataset, seed=seed)
    return dataset


def train_run(
    model: str,
    data: str | Path,
    out: str | Path,
    *,
    epochs: int = 10,
    size: int = 256,
    batch_size: int = 8,
    lr: float = 1e-3,
    device: str | None = None,
    seed: int = 0,
    resume: bool = False,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    config: dict[str, Any] | None = None,
    synthetic_anomalies: bool | None = None,
    group_duplicates: bool = False,
) -> dict[str, Any]:
    """Split `data` (seeded, stratified), train `model`, choose thresholds on validation.

    Anomaly models train on the good images of the training split only; the other kinds
    on all of it. With `synthetic_anomalies` (default: the preset's choice, on for DRAEM) the
    model trains on the good images with synthetic Perlin-noise anomalies and exact masks.
    With `group_duplicates` near-copies (`synthgen.detect.duplicates.near_duplicate_groups`)
    stay in one part of the split: use it on real photos, where one part is often shot twice.
    Returns the run description written to `run.json`.
    """

    data = Path(data).resolve()  # run.json stores this path; split paths must agree with it
    items = read_dataset(data)
    if not items:
        raise ConfigError(f"{data}: no image found")
    groups = None
    if group_duplicates:
        from synthgen.detect.duplicates import near_duplicate_groups

        groups = near_duplicate_groups(items)
    train, val, test = split_items(items, fractions, rng=seed, groups=groups)
    return train_items(model, train, val, test, out, data=data, epochs=epochs, size=size,
                       batch_size=batch_size, lr=lr, device=device, seed=seed, resume=resume,
                       config=config, synthetic_anomalies=synthetic_anomalies)


def train_items(
    model: str,
    train: Sequence[Item],
    val: Sequence[Item],
    test: Sequence[Item],
    out: str | Path,
    *,
    data: str | Path | None = None,
    epochs: int = 10,
    size: int = 256,
    batch_size: int = 8,
    lr: float = 1e-3,
    device: str | None = None,
    seed: int = 0,
    resume: bool = False,
    config: dict[str, Any] | None = None,
    synthetic_anomalies: bool | None = None,
) -> dict[str, Any]:
    """`train_run` on a split made by the caller (e.g. train on one class of a real
    dataset, test on others); `data` is recorded so `evaluate_run` finds the test items."""
    from synthgen.detect.engine import evaluate, fit, make_loader, pick_device
    from synthgen.detect.models.registry import get_spec
    from synthgen.detect.torch_data import DefectDataset, collate

    spec = get_spec(model)
    out = Path(out)
    if spec.kind == "detector":  # one class per defect type of the data
        config = {"num_classes": max(1, len(class_names(train))), "image_size": size,
                  "score_threshold": 0.01, **(config or {})}
    if "size" in spec.default_config:  # presets built for one image size (the GANs)
        config = {"size": size, **(config or {})}
    synthetic = spec.synthetic_anomalies if synthetic_anomalies is None else synthetic_anomalies
    fit_items = good_only(train) if spec.train_on == "good" or synthetic else list(train)
    if not fit_items:
        raise ConfigError(f"the training split holds no image {spec.kind} models use")
    result = fit(
        model, _datasets(fit_items, size, seed, synthetic), DefectDataset(val, size=size), out,
        epochs=epochs, batch_size=batch_size, lr=lr, device=device, seed=seed, resume=resume,
        config=config, collate=collate,
    )
    dev = pick_device(device)
    outputs = evaluate(result.model, result.spec, make_loader(
        DefectDataset(val, size=size), batch_size, False, 0, collate, device=dev), dev)
    run = {
        "model": model,
        "kind": spec.kind,
        "data": None if data is None else str(Path(data).resolve()),
        "size": size,
        "seed": seed,
        "epochs": result.epochs,
        "split": {name: [str(i.image) for i in part]
                  for name, part in (("train", train), ("val", val), ("test", test))},
        "synthetic_anomalies": bool(synthetic),
        "thresholds": choose_thresholds(spec.kind, outputs, rule=spec.threshold),
    }
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one process writes
        write_json(out / RUN_FILE, run, indent=2)
    return run


def choose_thresholds(kind: str, outputs: dict[str, Any], *, rule: str = "f1"
                      ) -> dict[str, float]:
    """Thresholds from VALIDATION outputs: the image score by `rule` when both classes are
    there ("f1": best F1; "between": where Gaussians fitted to the two classes' scores
    cross), else the 99th percentile of the good scores; for maps the 99.9th percentile of
    good images' pixels (boxes and region masks cut there)."""
    from synthgen.detect.metrics import choose_threshold

    labels, scores = outputs["labels"], image_scores(outputs)
    good = labels == 0
    if (labels == 1).any() and good.any():
        image = choose_threshold(labels, scores, rule)
    else:
        image = float(np.quantile(scores[good] if good.any() else scores, 0.99))
    out = {"image": float(image)}
    if "maps" in outputs and good.any():
        out["pixel"] = float(np.quantile(outputs["maps"][good], 0.999))
    return out


def image_scores(outputs: dict[str, Any]) -> np.ndarray:
    """(N,) float64 image scores: the model's own, or for detectors the highest box score
    of each image (0 when it has no box)."""
    if "scores" in outputs:
        return np.asarray(outputs["scores"], dtype=np.float64)
    return np.array([float(p["scores"].max()) if len(p["scores"]) else 0.0
                     for p in outputs["predictions"]])


def _load(run_dir: Path):
    from synthgen.detect.checkpoint import load_model

    run_file = run_dir / RUN_FILE
    if not run_file.is_file():
        raise ConfigError(f"{run_dir} is not a training run (no {RUN_FILE}); run synthgen train")
    run = json.loads(run_file.read_text())
    checkpoint = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
    model, _ = load_model(checkpoint)
    return run, model


def evaluate_run(
    run_dir: str | Path, data: str | Path | Sequence[Item] | None = None
) -> dict[str, Any]:
    """Metrics on the run's test split (or on every image of `data`, a dataset folder or a
    list of Items), with plots.

    Writes `metrics.json`, `roc.png` and `maps.png` (the most anomalous test images, and
    their anomaly maps laid over them) in the
    run folder and returns the metrics.
    """
    from synthgen.detect.engine import evaluate, make_loader, pick_device
    from synthgen.detect.models.registry import get_spec
    from synthgen.detect.torch_data import DefectDataset, collate

    run_dir = Path(run_dir)
    run, model = _load(run_dir)
    if data is None:
        if run["data"] is None:
            raise ConfigError(f"{run_dir} was trained on a custom split: pass --data")
        known = _items_by_path(read_dataset(run["data"]))
        items = [known[p] for p in run["split"]["test"] if p in known]
    else:
        items = read_dataset(data) if not isinstance(data, list) else data
    if not items:
        raise ConfigError("no test image to evaluate on")
    device = pick_device(None)
    spec = get_spec(run["model"])
    loader = make_loader(DefectDataset(items, size=run["size"]), 8, False, 0, collate,
                         device=device)
    outputs = evaluate(model.to(device), spec, loader, device)
    metrics = score_outputs(spec.kind, outputs, run["thresholds"], run["size"])
    write_json(run_dir / "metrics.json", metrics, indent=2)
    _plots(run_dir, items, outputs)
    if "embedding" in outputs:
        _pca_plot(run_dir / "pca.png", outputs)
    return metrics


def score_outputs(
    kind: str, outputs: dict[str, Any], thresholds: dict[str, float], size: int = 256
):
    """The field's metrics of evaluate() outputs at the validation thresholds (`size`: the
    square image side the model saw, for COCO's image records)."""
    from synthgen.detect import localisation, metrics

    labels, scores = outputs["labels"], image_scores(outputs)
    both = bool((labels == 1).any() and (labels == 0).any())
    predictions = (scores >= thresholds["image"]).astype(np.int64)
    out: dict[str, Any] = {"images": len(labels), "defective": int(labels.sum())}
    out["at_threshold"] = metrics.classification_report(labels, predictions).as_dict()
    if both:
        out["image_auroc"] = metrics.image_auroc(labels, scores)
        out["f1_max"] = metrics.f1_max(labels, scores)[0]
    if kind == "detector":
        gt, detections = localisation.coco_inputs(
            outputs["predictions"], outputs["boxes"], outputs["classes"], (size, size)
        )
        if gt["annotations"]:
            out.update(localisation.coco_map(gt, detections, "bbox"))
    if kind in ("anomaly", "segmenter") and "maps" in outputs:
        masks = outputs["masks"].astype(bool)
        if masks.any() and (~masks).any():
            out["pixel_auroc"] = metrics.pixel_auroc(masks, outputs["maps"])
            out["aupro_0.3"] = metrics.aupro(masks, outputs["maps"], 0.3, steps=200)
        if "pixel" in thresholds:
            regions = outputs["maps"] > thresholds["pixel"]
            out["region_iou"] = localisation.mean_region_iou(regions, masks)
            # Boxes around the large components of the thresholded map (the VAE method).
            predicted = [localisation.boxes_from_map(m, thresholds["pixel"], MIN_BOX_AREA)
                         for m in outputs["maps"]]
            true = [localisation.boxes_from_map(m.astype(np.float32), 0.5) for m in masks]
            boxes = localisation.box_f1_iou(predicted, true, iou_threshold=0.3)
            out["box_f1"], out["box_iou"] = boxes.f1, boxes.mean_iou
    return out


MIN_BOX_AREA = 8
"""Pixels: smaller components of a thresholded anomaly map are not boxed."""


def _plots(run_dir: Path, items: Sequence[Item], outputs: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synthgen.detect import metrics

    labels, scores = outputs["labels"], image_scores(outputs)
    if (labels == 1).any() and (labels == 0).any():
        fpr, tpr, _ = metrics.roc_curve(labels, scores)
        fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
        ax.plot(fpr, tpr, label=f"AUROC {metrics.image_auroc(labels, scores):.3f}")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(run_dir / "roc.png")
        plt.close(fig)
    if "maps" in outputs:
        order = np.argsort(-np.asarray(scores))[:8]
        fig, axes = plt.subplots(2, len(order), figsize=(2 * len(order), 4.2), dpi=100,
                                 squeeze=False)
        for column, i in enumerate(order):
            image = load_image(items[i])
            height, width = image.shape[:2]
            axes[0, column].imshow(image)
            axes[0, column].set_title(f"{scores[i]:.3g} ({'defect' if labels[i] else 'good'})",
                                      fontsize=8)
            # The anomaly map over the image (stretched to the image's size).
            axes[1, column].imshow(image)
            axes[1, column].imshow(outputs["maps"][i], cmap="inferno", alpha=0.55,
                                   extent=(0, width, height, 0))
            for ax in axes[:, column]:
                ax.axis("off")
        fig.tight_layout()
        fig.savefig(run_dir / "maps.png")
        plt.close(fig)


def _pca_plot(path: Path, outputs: dict[str, Any]) -> None:
    """Scatter of the 2-D PCA view of the features ("embedding" (N, 2)), coloured by the
    model's cluster ("cluster" (N,)), marked by the true label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy, labels = outputs["embedding"], outputs["labels"]
    cluster = outputs.get("cluster", np.zeros(len(xy), dtype=np.int64))
    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
    for value, marker, name in ((0, "o", "good"), (1, "x", "defective")):
        pick = labels == value
        if pick.any():
            ax.scatter(xy[pick, 0], xy[pick, 1], c=cluster[pick], cmap="coolwarm", vmin=0,
                       vmax=1, marker=marker, s=14, label=name)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title("features: colour = cluster (red: defective)", fontsize=9)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def predict_run(run_dir: str | Path, images: Sequence[str | Path], out: str | Path):
    """Scores (and, for anomaly models, maps and boxes) of image files.

    Writes `<out>/predictions.json` and, per image, `<stem>_map.png` (the map scaled to
    0-255 over [0, 2 × pixel threshold]); returns the predictions.
    """
    import torch

    from synthgen.detect.localisation import boxes_from_map
    from synthgen.detect.torch_data import DefectDataset, collate

    run, model = _load(Path(run_dir))
    out = Path(out)
    items = [Item(image=Path(p), mask=None, label=0) for p in images]
    missing = [str(i.image) for i in items if not i.image.is_file()]
    if missing:
        raise ConfigError(f"no such image: {', '.join(missing)}")
    batch = collate([DefectDataset(items, size=run["size"])[i] for i in range(len(items))])
    boxes = None
    with torch.no_grad():
        if run["kind"] == "anomaly":
            scores, maps = model.score(batch["image"])
            maps = maps.cpu().numpy()
        elif run["kind"] == "detector":
            found = model.predict(batch["image"])
            boxes = [p["boxes"].cpu().numpy().tolist() for p in found]
            scores = [float(p["scores"].max()) if len(p["scores"]) else 0.0 for p in found]
            maps = None
        elif run["kind"] == "segmenter":
            maps = torch.sigmoid(model(batch["image"]))[:, 0].cpu().numpy()
            scores = maps.reshape(len(maps), -1).max(axis=1)
        else:
            scores, maps = torch.softmax(model(batch["image"]), dim=1)[:, 1], None
    thresholds, results = run["thresholds"], []
    from PIL import Image

    for i, item in enumerate(items):
        entry = {"image": str(item.image), "score": float(scores[i]),
                 "defective": bool(float(scores[i]) >= thresholds["image"])}
        if boxes is not None:
            entry["boxes_xyxy"] = boxes[i]
        if maps is not None and "pixel" in thresholds:
            entry["boxes_xyxy"] = boxes_from_map(maps[i], thresholds["pixel"], 4).tolist()
            scaled = np.clip(maps[i] / (2 * thresholds["pixel"] + 1e-12), 0, 1) * 255
            out.mkdir(parents=True, exist_ok=True)
            Image.fromarray(scaled.astype(np.uint8)).save(out / f"{item.image.stem}_map.png")
        results.append(entry)
    write_json(out / "predictions.json", {"run": str(run_dir), "predictions": results}, indent=2)
    return results
