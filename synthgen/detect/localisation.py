"""Localisation metrics: region IoU, boxes from anomaly maps, box matching, COCO mAP.

The conventions of `metrics.py` hold here too (defect = positive; boxes xyxy in the pixel-
corner frame of `synthgen.labels`; zero denominators give 0.0 unless documented). Boxes are
cut from a map where it is strictly above the threshold (map > threshold). pycocotools is
imported inside `coco_map`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from synthgen.detect.metrics import _EIGHT, _ratio

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- region level


def region_iou(pred_mask: Any, true_mask: Any) -> float:
    """Intersection over union of the predicted and true defect regions of one image.

    Args:
        pred_mask: (H, W) bool, predicted defect pixels.
        true_mask: (H, W) bool, ground-truth defect pixels.

    Returns:
        |pred ∩ true| / |pred ∪ true| in [0, 1]. When both masks are empty (a good image
        correctly left clean) the IoU is defined as 1.0.
    """
    p = np.asarray(pred_mask).astype(bool, copy=False)
    t = np.asarray(true_mask).astype(bool, copy=False)
    if p.ndim != 2 or p.shape != t.shape:
        raise ValueError(f"masks must be two (H, W) arrays of one shape, got {p.shape}, {t.shape}")
    union = int(np.count_nonzero(p | t))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(p & t)) / union


def mean_region_iou(pred_masks: Any, true_masks: Any) -> float:
    """Mean over images of `region_iou` (empty/empty images count 1.0).

    Args:
        pred_masks: (N, H, W) bool, predicted defect pixels.
        true_masks: (N, H, W) bool, ground-truth defect pixels.

    Returns:
        The mean per-image IoU in [0, 1].
    """
    p = np.asarray(pred_masks)
    t = np.asarray(true_masks)
    if p.ndim != 3 or p.shape != t.shape or p.shape[0] == 0:
        raise ValueError(f"masks must be two non-empty (N, H, W) arrays of one shape, "
                         f"got {p.shape}, {t.shape}")
    return float(np.mean([region_iou(pi, ti) for pi, ti in zip(p, t, strict=True)]))


# --------------------------------------------------------------------------- box level


def scored_boxes_from_map(
    anomaly_map: Any, threshold: float, min_area: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and scores of the regions of an anomaly map above a threshold.

    The localisation of a reconstruction model: map → map > threshold → 8-connected
    components with at least `min_area` pixels → one box per component.

    Args:
        anomaly_map: (H, W) float, higher = more defective.
        threshold: pixels with map > threshold (strictly) are kept.
        min_area: components with fewer pixels are dropped.

    Returns:
        boxes: (K, 4) int64 xyxy in the pixel-corner frame ([c0, r0, c1 + 1, r1 + 1] for a
            component spanning rows r0..r1 and columns c0..c1), ordered by each component's
            first pixel in raster order.
        scores: (K,) float64, the largest map value inside each component.
    """
    a = np.asarray(anomaly_map, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"the anomaly map must be (H, W), got shape {a.shape}")
    lab, n = ndimage.label(a > threshold, structure=_EIGHT)
    if n == 0:
        return np.zeros((0, 4), dtype=np.int64), np.zeros(0, dtype=np.float64)
    areas = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    slices = ndimage.find_objects(lab)
    peaks = np.asarray(ndimage.maximum(a, lab, index=np.arange(1, n + 1)), dtype=np.float64)
    keep = np.flatnonzero(areas >= min_area)
    boxes = np.array(
        [[slices[k][1].start, slices[k][0].start, slices[k][1].stop, slices[k][0].stop]
         for k in keep],
        dtype=np.int64,
    ).reshape(-1, 4)
    log.debug("%d of %d regions above %g have >= %d pixels", keep.size, n, threshold, min_area)
    return boxes, peaks[keep]


def boxes_from_map(anomaly_map: Any, threshold: float, min_area: int = 1) -> np.ndarray:
    """Boxes of the 8-connected regions of map > threshold with at least min_area pixels.

    Args:
        anomaly_map: (H, W) float, higher = more defective.
        threshold: pixels with map > threshold (strictly) are kept.
        min_area: components with fewer pixels are dropped.

    Returns:
        (K, 4) int64 xyxy boxes in the pixel-corner frame; see `scored_boxes_from_map`.
    """
    return scored_boxes_from_map(anomaly_map, threshold, min_area)[0]


def _as_boxes(boxes: Any, name: str) -> np.ndarray:
    """(K, 4) float64 xyxy boxes; an empty input becomes (0, 4)."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must be (K, 4) xyxy boxes, got shape {arr.shape}")
    return arr


def box_iou(boxes_a: Any, boxes_b: Any) -> np.ndarray:
    """Pairwise IoU of two sets of xyxy boxes.

    Args:
        boxes_a: (K, 4) xyxy, pixels.
        boxes_b: (M, 4) xyxy, pixels.

    Returns:
        (K, M) float64 IoU; 0.0 where the union has zero area.
    """
    a, b = _as_boxes(boxes_a, "boxes_a"), _as_boxes(boxes_b, "boxes_b")
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass(frozen=True)
class BoxMatchReport:
    """Counts and rates of a one-to-one matching of predicted to true boxes.

    Attributes:
        tp: matched pairs (IoU >= the threshold).
        fp: predicted boxes left unmatched.
        fn: true boxes left unmatched.
        precision: tp / (tp + fp).
        recall: tp / (tp + fn).
        f1: 2 tp / (2 tp + fp + fn).
        mean_iou: mean IoU of the matched pairs, 0.0 when nothing matched.

    With no predicted and no true box at all, precision, recall and F1 are 1.0 (nothing to
    find and nothing falsely found); otherwise a zero denominator gives 0.0.
    """

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    mean_iou: float

    def as_dict(self) -> dict[str, float | int]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def _greedy_match(iou: np.ndarray, iou_threshold: float) -> list[float]:
    """IoUs of a greedy one-to-one matching: highest IoU pair first, pairs >= threshold."""
    rows, cols = np.nonzero(iou >= iou_threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_p: set[int] = set()
    used_t: set[int] = set()
    matched = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r in used_p or c in used_t:
            continue
        used_p.add(r)
        used_t.add(c)
        matched.append(float(iou[r, c]))
    return matched


def box_f1_iou(
    pred_boxes: Sequence[Any], true_boxes: Sequence[Any], iou_threshold: float = 0.5
) -> BoxMatchReport:
    """Precision, recall and F1 of predicted boxes against true boxes, image by image.

    In each image the pairs with IoU >= iou_threshold are matched greedily, highest IoU
    first, each box at most once; matches are then pooled over the images.

    Args:
        pred_boxes: one (K_i, 4) xyxy array (pixels) per image; empty arrays allowed.
        true_boxes: one (M_i, 4) xyxy array (pixels) per image, same image order.
        iou_threshold: the least IoU of a match, in (0, 1].

    Returns:
        A `BoxMatchReport` (see its conventions for the empty case).
    """
    if len(pred_boxes) != len(true_boxes):
        raise ValueError(
            f"pred_boxes has {len(pred_boxes)} images but true_boxes has {len(true_boxes)}"
        )
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must lie in (0, 1], got {iou_threshold}")
    tp = fp = fn = 0
    ious: list[float] = []
    for pred, true in zip(pred_boxes, true_boxes, strict=True):
        p, t = _as_boxes(pred, "pred_boxes"), _as_boxes(true, "true_boxes")
        matched = _greedy_match(box_iou(p, t), iou_threshold)
        tp += len(matched)
        fp += len(p) - len(matched)
        fn += len(t) - len(matched)
        ious.extend(matched)
    if tp + fp + fn == 0:
        return BoxMatchReport(0, 0, 0, 1.0, 1.0, 1.0, 0.0)
    return BoxMatchReport(
        tp=tp,
        fp=fp,
        fn=fn,
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        mean_iou=float(np.mean(ious)) if ious else 0.0,
    )


# --------------------------------------------------------------------------- COCO


def _load_gt(gt: dict[str, Any] | str | Path) -> dict[str, Any]:
    """A deep copy of a COCO ground-truth dict (or the JSON file it is read from), with
    the `iscrowd` and `area` fields COCOeval needs filled in where missing."""
    if isinstance(gt, str | Path):
        with open(gt, encoding="utf-8") as fh:
            data = json.load(fh)
    else:
        data = copy.deepcopy(gt)
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ValueError(f"the COCO ground truth has no {key!r} list")
    for ann in data["annotations"]:
        ann.setdefault("iscrowd", 0)
        if "area" not in ann:
            _, _, w, h = ann["bbox"]
            ann["area"] = float(w) * float(h)
    return data


def coco_map(
    gt: dict[str, Any] | str | Path, detections: Sequence[dict[str, Any]], iou_type: str = "bbox"
) -> dict[str, float]:
    """COCO mean average precision of detections (pycocotools COCOeval, prints silenced).

    Args:
        gt: a COCO ground-truth dict ({"images", "annotations", "categories"}) or the path
            of its JSON file. Annotations missing "iscrowd" get 0 and missing "area" the
            box area.
        detections: dicts {"image_id", "category_id", "bbox": [x, y, w, h] (pixels),
            "score"}, plus "segmentation" (COCO RLE) for iou_type "segm".
        iou_type: "bbox" or "segm".

    Returns:
        {"mAP": AP averaged over IoU 0.50:0.05:0.95, "AP50": AP at IoU 0.5, "AP75": AP at
        IoU 0.75}, all areas, up to 100 detections per image, in [0, 1]. An empty
        detection list gives zeros. A value COCOeval cannot define (no ground-truth
        instance at all) is NaN, with a warning logged.

    Raises:
        ValueError: an unknown iou_type, a detection of an image not in `gt`, or a
            detection without "segmentation" when iou_type is "segm".
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    data = _load_gt(gt)
    if len(detections) == 0:
        log.info("coco_map: no detections, every AP is 0")
        return {"mAP": 0.0, "AP50": 0.0, "AP75": 0.0}
    image_ids = {img["id"] for img in data["images"]}
    for k, det in enumerate(detections):
        if det.get("image_id") not in image_ids:
            raise ValueError(f"detection {k} has image_id {det.get('image_id')!r}, "
                             "which is not an image of the ground truth")
        if iou_type == "segm" and "segmentation" not in det:
            raise ValueError(f"detection {k} has no 'segmentation', needed for iou_type 'segm'")

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = data
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(list(detections)))
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [float(v) for v in evaluator.stats[:3]]
    if any(v < 0 for v in stats):
        log.warning("coco_map: the ground truth has no instance to evaluate; AP is NaN")
    stats = [v if v >= 0 else float("nan") for v in stats]
    return {"mAP": stats[0], "AP50": stats[1], "AP75": stats[2]}


def coco_inputs(
    predictions: Sequence[dict[str, np.ndarray]],
    true_boxes: Sequence[np.ndarray],
    true_classes: Sequence[np.ndarray],
    size: tuple[int, int],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A detector's outputs over N images as a COCO ground truth and detection list.

    Args:
        predictions: per image {"boxes" (K, 4) xyxy px, "scores" (K,), "classes" (K,) 0-based}.
        true_boxes, true_classes: per image (M, 4) xyxy px and (M,) 0-based class ids.
        size: (height, width) of the images in pixels.

    Returns:
        (ground truth dict, detections) for `coco_map`; image ids 0..N-1, category ids
        class + 1.
    """
    height, width = size
    n_classes = 1 + max([int(c.max()) for c in true_classes if len(c)] +
                        [int(p["classes"].max()) for p in predictions if len(p["classes"])] +
                        [0])
    gt: dict[str, Any] = {"images": [], "annotations": [],
                          "categories": [{"id": k + 1, "name": str(k)} for k in range(n_classes)]}
    detections = []
    for i, (pred, boxes, classes) in enumerate(
        zip(predictions, true_boxes, true_classes, strict=True)
    ):
        gt["images"].append({"id": i, "width": width, "height": height})
        for box, cls in zip(np.asarray(boxes), np.asarray(classes), strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i,
                                      "category_id": int(cls) + 1,
                                      "bbox": [x0, y0, x1 - x0, y1 - y0]})
        for box, score, cls in zip(pred["boxes"], pred["scores"], pred["classes"], strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            detections.append({"image_id": i, "category_id": int(cls) + 1, "score": float(score),
                               "bbox": [x0, y0, x1 - x0, y1 - y0]})
    return gt, detections
