"""Evaluation metrics of industrial defect detection: image and pixel level (region, box and
COCO metrics are in `localisation.py`).

Conventions shared by every function here:

- The defect is the positive class: label 1 / mask True means "defective".
- A score or anomaly-map value is "higher = more defective"; a sample or pixel is predicted
  defective when its score is >= the threshold (the rule of scikit-learn's curves), except in
  `boxes_from_map`, which keeps pixels strictly above the threshold (map > threshold).
- Masks are (N, H, W) or (H, W) bool in image pixels (row = y down, column = x right).
- Boxes are xyxy in the pixel-corner frame of `synthgen.labels`: a pixel (r, c) is the unit
  square [c, c + 1] × [r, r + 1], so a single pixel is the box [c, r, c + 1, r + 1] and a COCO
  box [x, y, w, h] is the xyxy box [x, y, x + w, y + h]. Box areas are (x1 - x0) * (y1 - y0).
- Ratios whose denominator is zero are 0.0 (scikit-learn's zero_division=0), except where a
  function documents otherwise (region IoU and box matching when both sides are empty: 1.0).

Thresholds are chosen on VALIDATION data (`f1_max`, `choose_threshold`) and then applied,
unchanged, to test data (`f1_at`, `classification_report`); choosing them on the test set
inflates every reported number.

Pure numpy, scipy and scikit-learn.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from sklearn import metrics as skm

log = logging.getLogger(__name__)

_EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity structuring element for ndimage.label


# --------------------------------------------------------------------------- input checks


def _as_labels(labels: Any, name: str = "labels") -> np.ndarray:
    """(N,) int64 view of a 0/1 label vector; a clear ValueError for anything else."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D (N,) array of 0/1, got shape {arr.shape}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        bad = np.unique(arr[~np.isin(arr, (0, 1))])[:5]
        raise ValueError(f"{name} must hold only 0 (good) and 1 (defect), found {bad.tolist()}")
    return arr.astype(np.int64)


def _as_scores(scores: Any, n: int, name: str = "scores") -> np.ndarray:
    """(N,) float64 view of a score vector of length `n` with finite values."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match the labels, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, found NaN or inf")
    return arr


def _both_classes(labels: np.ndarray, what: str) -> None:
    """Raise a ValueError unless `labels` holds both 0 and 1."""
    n_pos = int(np.count_nonzero(labels))
    if n_pos == 0 or n_pos == labels.size:
        present = "only defects" if n_pos else "no defects"
        raise ValueError(
            f"{what} needs both defective and good samples, but the labels hold {present} "
            f"({labels.size} samples)"
        )


def _as_stack(masks: Any, maps: Any) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) bool masks and (N, H, W) float64 maps; (H, W) inputs become N = 1."""
    m = np.asarray(masks)
    a = np.asarray(maps, dtype=np.float64)
    if m.ndim == 2:
        m = m[None]
    if a.ndim == 2:
        a = a[None]
    if m.ndim != 3:
        raise ValueError(f"masks must be (N, H, W) or (H, W), got shape {np.shape(masks)}")
    if m.shape != a.shape:
        raise ValueError(f"masks {m.shape} and maps {a.shape} must have the same shape")
    if not np.isfinite(a).all():
        raise ValueError("maps must be finite, found NaN or inf")
    return m.astype(bool, copy=False), a


# --------------------------------------------------------------------------- image level


def image_auroc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve of image-level defect scores.

    Args:
        labels: (N,) int or bool, 1 = defective image, 0 = good.
        scores: (N,) float, higher = more defective.

    Returns:
        The AUROC in [0, 1] (ties count one half, as in sklearn.metrics.roc_auc_score).

    Raises:
        ValueError: the labels hold only one class, or the shapes do not match.
    """
    y = _as_labels(labels)
    s = _as_scores(scores, y.size)
    _both_classes(y, "image AUROC")
    return float(skm.roc_auc_score(y, s))


def roc_curve(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve points for plotting (thin wrapper of sklearn.metrics.roc_curve).

    Args:
        labels: (N,) int or bool, 1 = defective.
        scores: (N,) float, higher = more defective.

    Returns:
        fpr, tpr, thresholds: (P,) float64 each, fpr and tpr increasing. Point i is the rate
        obtained by predicting "defect" when score >= thresholds[i]; thresholds[0] is +inf
        (nothing predicted, the (0, 0) point). Collinear intermediate points are dropped.

    Raises:
        ValueError: the labels hold only one class.
    """
    y = _as_labels(labels)
    s = _as_scores(scores, y.size)
    _both_classes(y, "an ROC curve")
    fpr, tpr, thr = skm.roc_curve(y, s)
    return fpr.astype(np.float64), tpr.astype(np.float64), thr.astype(np.float64)


def _confusion(y: np.ndarray, pred: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) of 0/1 vectors, defect = positive."""
    tp = int(np.count_nonzero((pred == 1) & (y == 1)))
    fp = int(np.count_nonzero((pred == 1) & (y == 0)))
    tn = int(np.count_nonzero((pred == 0) & (y == 0)))
    fn = int(np.count_nonzero((pred == 0) & (y == 1)))
    return tp, fp, tn, fn


def _ratio(num: float, den: float) -> float:
    """num / den, 0.0 when den is 0."""
    return float(num) / float(den) if den else 0.0


def f1_max(labels: Any, scores: Any) -> tuple[float, float]:
    """The best F1 over all thresholds of the precision-recall curve, and that threshold.

    Run it on VALIDATION data only; the threshold it returns is then applied to test data
    with `f1_at` or `classification_report`. Never pass test data here.

    Args:
        labels: (N,) int or bool, 1 = defective.
        scores: (N,) float, higher = more defective.

    Returns:
        (best F1, threshold): F1 in [0, 1]; the threshold is one of the scores, and a sample
        is predicted defective when score >= threshold. Among thresholds with equal F1 the
        smallest is returned.

    Raises:
        ValueError: there is no defective sample (F1 is undefined).
    """
    y = _as_labels(labels)
    s = _as_scores(scores, y.size)
    if not y.any():
        raise ValueError(f"F1 needs at least one defective sample; none among {y.size} labels")
    precision, recall, thresholds = skm.precision_recall_curve(y, s)
    # The last (precision 1, recall 0) point has no threshold; drop it.
    p, r = precision[:-1], recall[:-1]
    den = p + r
    f1 = np.divide(2 * p * r, den, out=np.zeros_like(den), where=den > 0)
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])


def f1_at(labels: Any, scores: Any, threshold: float) -> float:
    """F1 of the predictions score >= threshold.

    Args:
        labels: (N,) int or bool, 1 = defective.
        scores: (N,) float, higher = more defective.
        threshold: the decision threshold, chosen on validation data.

    Returns:
        F1 = 2 tp / (2 tp + fp + fn), 0.0 when that denominator is 0.
    """
    y = _as_labels(labels)
    s = _as_scores(scores, y.size)
    tp, fp, _, fn = _confusion(y, (s >= threshold).astype(np.int64))
    return _ratio(2 * tp, 2 * tp + fp + fn)


def choose_threshold(labels_val: Any, scores_val: Any, method: str = "f1") -> float:
    """A decision threshold chosen on VALIDATION data.

    The caller must never pass test data: a threshold fitted on the test set makes every
    test metric computed with it optimistic. Apply the returned value unchanged to test
    scores (predict defect when score >= threshold).

    Args:
        labels_val: (N,) int or bool, validation labels, 1 = defective.
        scores_val: (N,) float, validation scores, higher = more defective.
        method: "f1" (the threshold of `f1_max`), "youden" (maximises TPR - FPR on the
            ROC curve; the largest such threshold on ties) or "between" (the adaptive
            threshold between the two score distributions: see `between_classes`).

    Returns:
        The threshold, one of the validation scores ("between": a point between them).

    Raises:
        ValueError: an unknown method, or labels that the method cannot use (no defect for
            "f1", a single class for "youden").
    """
    if method == "f1":
        return f1_max(labels_val, scores_val)[1]
    if method == "youden":
        fpr, tpr, thr = roc_curve(labels_val, scores_val)
        j = tpr - fpr
        # thr[0] is +inf (J = 0 there); skip it so the threshold is a real score.
        best = 1 + int(np.argmax(j[1:]))
        return float(thr[best])
    if method == "between":
        return between_classes(labels_val, scores_val)
    raise ValueError(f"method must be 'f1', 'youden' or 'between', got {method!r}")


def between_classes(labels_val: Any, scores_val: Any) -> float:
    """The score where Gaussians fitted to the good and the defective scores have equal
    density, taken between the two class means (their midpoint when the fit gives no
    crossing there, e.g. equal spreads give exactly the midpoint).

    Args:
        labels_val: (N,) 0/1 validation labels; both classes needed.
        scores_val: (N,) validation scores.
    """
    y = _as_labels(labels_val)
    s = _as_scores(scores_val, len(y))
    _both_classes(y, "a threshold between the classes")
    m0, m1 = float(s[y == 0].mean()), float(s[y == 1].mean())
    v0 = max(float(s[y == 0].var()), 1e-12)
    v1 = max(float(s[y == 1].var()), 1e-12)
    mid = 0.5 * (m0 + m1)
    lo, hi = min(m0, m1), max(m0, m1)
    # log N(x; m0, v0) = log N(x; m1, v1)  →  a x² + b x + c = 0
    a = 1 / v1 - 1 / v0
    b = 2 * (m0 / v0 - m1 / v1)
    c = m1**2 / v1 - m0**2 / v0 + np.log(v1 / v0)
    if abs(a) < 1e-12:
        roots = [-c / b] if abs(b) > 1e-12 else []
    else:
        disc = b * b - 4 * a * c
        roots = [] if disc < 0 else [(-b + sq * np.sqrt(disc)) / (2 * a) for sq in (1, -1)]
    inside = [float(r) for r in roots if lo <= r <= hi]
    return min(inside, key=lambda r: abs(r - mid)) if inside else mid


@dataclass(frozen=True)
class ClassificationReport:
    """Binary classification counts and rates, defect = positive class.

    Attributes:
        tp, fp, tn, fn: confusion counts (defects found, false alarms, good passed,
            defects missed).
        accuracy: (tp + tn) / N.
        precision: tp / (tp + fp), 0.0 without positive predictions.
        recall: tp / (tp + fn), 0.0 without defective samples.
        f1: 2 tp / (2 tp + fp + fn), 0.0 when that denominator is 0.
    """

    tp: int
    fp: int
    tn: int
    fn: int
    accuracy: float
    precision: float
    recall: float
    f1: float

    def as_dict(self) -> dict[str, float | int]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def classification_report(labels: Any, predictions: Any) -> ClassificationReport:
    """Accuracy, precision, recall, F1 and the confusion counts of hard predictions.

    Args:
        labels: (N,) int or bool, 1 = defective.
        predictions: (N,) int or bool, 1 = predicted defective (e.g. scores >= a threshold
            chosen on validation data).

    Returns:
        A `ClassificationReport`; ratios with a zero denominator are 0.0.
    """
    y = _as_labels(labels)
    pred = _as_labels(predictions, "predictions")
    if pred.shape != y.shape:
        raise ValueError(f"predictions {pred.shape} and labels {y.shape} must match")
    tp, fp, tn, fn = _confusion(y, pred)
    return ClassificationReport(
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        accuracy=_ratio(tp + tn, y.size),
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
    )


# --------------------------------------------------------------------------- pixel level


def pixel_auroc(masks: Any, maps: Any) -> float:
    """Area under the ROC curve over every pixel of every image (exact, no subsampling).

    Args:
        masks: (N, H, W) bool ground truth, True = defect pixel ((H, W) is taken as N = 1).
        maps: (N, H, W) float anomaly maps, higher = more defective.

    Returns:
        The AUROC in [0, 1] of all N * H * W pixels pooled.

    Raises:
        ValueError: the shapes differ, or the masks hold no defect pixel or no good pixel.
    """
    m, a = _as_stack(masks, maps)
    y = m.ravel()
    n_pos = int(np.count_nonzero(y))
    if n_pos == 0 or n_pos == y.size:
        raise ValueError(
            f"pixel AUROC needs both defect and good pixels; the masks hold {n_pos} defect "
            f"pixels out of {y.size}"
        )
    return float(skm.roc_auc_score(y, a.ravel()))


def _component_ids(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global ids of the 8-connected ground-truth regions, labelled image by image.

    Args:
        masks: (N, H, W) bool.

    Returns:
        ids: (N, H, W) int64, 0 for good pixels, 1..K for the K regions of all images.
        sizes: (K + 1,) int64 pixel count per id (sizes[0] = good pixels).
    """
    ids = np.zeros(masks.shape, dtype=np.int64)
    offset = 0
    for i, mask in enumerate(masks):
        lab, n = ndimage.label(mask, structure=_EIGHT)
        ids[i] = np.where(lab > 0, lab + offset, 0)
        offset += n
    return ids, np.bincount(ids.ravel(), minlength=offset + 1)


def pro_curve(
    masks: Any, maps: Any, steps: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-region-overlap (PRO) curve of anomaly maps (Bergmann et al., MVTec AD).

    For a threshold t, a pixel is predicted defective when map >= t. PRO(t) is the mean,
    over the ground-truth regions (8-connected components of each image's mask), of the
    fraction of the region's pixels predicted defective; FPR(t) is the fraction of the good
    pixels of all images predicted defective.

    Threshold sampling: with steps=None every distinct map value is a threshold, so the
    curve is exact (computed in O(P log P) for P pixels by one sort and cumulative sums).
    With steps=S the thresholds are S values evenly spaced from the largest map value down
    to the smallest (a coarser, anomalib-style curve). Either way the curve starts at
    (0, 0) (threshold +inf) and ends at (1, 1) (the smallest map value).

    Args:
        masks: (N, H, W) bool ground truth ((H, W) is taken as N = 1).
        maps: (N, H, W) float anomaly maps, higher = more defective.
        steps: None for the exact curve, or the number of evenly spaced thresholds (>= 2).

    Returns:
        fpr, pro, thresholds: (P,) float64 each, fpr and pro non-decreasing,
        thresholds decreasing with thresholds[0] = +inf.

    Raises:
        ValueError: the masks hold no defect pixel or no good pixel, or steps < 2.
    """
    m, a = _as_stack(masks, maps)
    ids, sizes = _component_ids(m)
    n_regions, n_good = sizes.size - 1, int(sizes[0])
    if n_regions == 0 or n_good == 0:
        raise ValueError(
            f"PRO needs both defect and good pixels; the masks hold {n_regions} defect "
            f"regions and {n_good} good pixels"
        )
    flat_ids = ids.ravel()
    order = np.argsort(-a.ravel(), kind="stable")  # descending scores
    s = a.ravel()[order]
    sorted_ids = flat_ids[order]
    # Weight of each pixel in PRO: 1 / (K * size of its region); good pixels weigh 0.
    region_weight = np.zeros(sizes.size, dtype=np.float64)
    region_weight[1:] = 1.0 / (n_regions * sizes[1:])
    # cum_*[k] = value after predicting the k highest-scoring pixels defective.
    cum_good = np.concatenate([[0], np.cumsum(sorted_ids == 0)])
    cum_pro = np.concatenate([[0.0], np.cumsum(region_weight[sorted_ids])])
    if steps is None:
        last_of_tie = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
        counts = np.r_[0, last_of_tie + 1]
        thresholds = np.r_[np.inf, s[last_of_tie]]
    else:
        if steps < 2:
            raise ValueError(f"steps must be None (exact) or an integer >= 2, got {steps}")
        grid = np.linspace(s[0], s[-1], int(steps))
        counts = np.r_[0, np.searchsorted(-s, -grid, side="right")]
        counts[-1] = s.size  # the last threshold is the minimum: every pixel is above it
        thresholds = np.r_[np.inf, grid]
    fpr = cum_good[counts] / n_good
    pro = np.minimum(cum_pro[counts], 1.0)
    pro[-1] = 1.0  # remove the rounding of the cumulative sum at the end of the curve
    return fpr.astype(np.float64), pro, thresholds.astype(np.float64)


def _area_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area under the curve (x, y) for x in [x[0], x_max], x non-decreasing.

    The curve is interpolated linearly at exactly x_max when no point lies there.
    """
    i = int(np.searchsorted(x, x_max, side="right"))  # first index with x > x_max
    xs, ys = x[:i], y[:i]
    if i < x.size and xs[-1] < x_max:
        frac = (x_max - xs[-1]) / (x[i] - xs[-1])
        xs = np.r_[xs, x_max]
        ys = np.r_[ys, ys[-1] + frac * (y[i] - ys[-1])]
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) * 0.5))


def aupro(masks: Any, maps: Any, fpr_limit: float = 0.3, steps: int | None = None) -> float:
    """Normalised area under the PRO curve up to a false-positive rate (MVTec AD's AU-PRO).

    The PRO curve of `pro_curve` is integrated over FPR in [0, fpr_limit] with the
    trapezoid rule, interpolating it linearly at exactly fpr_limit, and divided by
    fpr_limit. A perfect map scores 1.0; a constant map (every pixel tied) has the straight
    curve PRO = FPR and scores fpr_limit / 2. The value is non-decreasing in fpr_limit (the
    mean of a non-decreasing curve over a longer interval).

    Args:
        masks: (N, H, W) bool ground truth ((H, W) is taken as N = 1).
        maps: (N, H, W) float anomaly maps, higher = more defective.
        fpr_limit: the upper end of the FPR integration range, in (0, 1].
        steps: None for exact thresholds (every distinct map value), or a number of evenly
            spaced thresholds; see `pro_curve`.

    Returns:
        AU-PRO in [0, 1].

    Raises:
        ValueError: fpr_limit outside (0, 1], or masks without defect or good pixels.
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must lie in (0, 1], got {fpr_limit}")
    fpr, pro, _ = pro_curve(masks, maps, steps=steps)
    return _area_up_to(fpr, pro, fpr_limit) / fpr_limit
