"""Detection metrics checked against values worked out by hand in the comments."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the trainer's metrics need scikit-learn (synthgen[torch])")

from synthgen import labels
from synthgen.detect import localisation as loc
from synthgen.detect import metrics

# ----------------------------------------------------------------------------- image level


def test_image_auroc_ranked_example():
    # Positive/negative pairs: 0.35 > 0.1 yes, 0.35 > 0.4 no, 0.8 > 0.1 yes, 0.8 > 0.4 yes
    # → 3 of 4 pairs ranked right → 0.75.
    assert metrics.image_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_image_auroc_ties_count_half_and_one_class_raises():
    assert metrics.image_auroc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="both defective and good"):
        metrics.image_auroc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="only 0"):
        metrics.image_auroc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="shape"):
        metrics.image_auroc([0, 1], [0.1, 0.2, 0.3])


def test_roc_curve_points():
    fpr, tpr, thr = metrics.roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    # Thresholds +inf, 0.8, 0.4, 0.35, 0.1 give (0,0), (0,.5), (.5,.5), (.5,1), (1,1); sklearn
    # keeps the corners, so the curve still starts at (0, 0) and ends at (1, 1).
    assert thr[0] == np.inf
    assert (fpr[0], tpr[0]) == (0.0, 0.0)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    # Trapezoid area under these points is the AUROC.
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(0.75)


# Labels and scores of the F1 example, sorted by score:
#   score 0.1 0.2 0.3 0.6 0.8
#   label  0   1   0   1   1
# F1 = 2tp / (2tp + fp + fn) at each threshold (predict defect when score >= t):
#   t=0.8: tp1 fp0 fn2 → 2/4 = 0.5      t=0.6: tp2 fp0 fn1 → 4/5 = 0.8
#   t=0.3: tp2 fp1 fn1 → 4/6            t=0.2: tp3 fp1 fn0 → 6/7 (best)
#   t=0.1: tp3 fp2 fn0 → 6/8
F1_LABELS = [0, 1, 0, 1, 1]
F1_SCORES = [0.1, 0.2, 0.3, 0.6, 0.8]


def test_f1_max_and_its_threshold():
    f1, thr = metrics.f1_max(F1_LABELS, F1_SCORES)
    assert f1 == pytest.approx(6 / 7)
    assert thr == pytest.approx(0.2)


def test_f1_at_fixed_thresholds():
    assert metrics.f1_at(F1_LABELS, F1_SCORES, 0.6) == pytest.approx(0.8)
    assert metrics.f1_at(F1_LABELS, F1_SCORES, 0.7) == pytest.approx(0.5)
    assert metrics.f1_at(F1_LABELS, F1_SCORES, 0.2) == pytest.approx(6 / 7)
    assert metrics.f1_at(F1_LABELS, F1_SCORES, 0.9) == 0.0  # nothing predicted


def test_choose_threshold_methods():
    assert metrics.choose_threshold(F1_LABELS, F1_SCORES) == pytest.approx(0.2)
    # Youden J = TPR - FPR: t=0.8 → 1/3, t=0.6 → 2/3 (best), t=0.3 → 2/3-1/2, t=0.2 → 1-1/2.
    assert metrics.choose_threshold(F1_LABELS, F1_SCORES, "youden") == pytest.approx(0.6)
    with pytest.raises(ValueError, match="method"):
        metrics.choose_threshold(F1_LABELS, F1_SCORES, "accuracy")
    with pytest.raises(ValueError, match="at least one defective"):
        metrics.f1_max([0, 0], [0.1, 0.2])


def test_classification_report_counts():
    # labels 1 1 1 0 0 0 0 / preds 1 1 0 1 0 0 0 → tp 2, fn 1, fp 1, tn 3.
    rep = metrics.classification_report([1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 1, 0, 0, 0])
    assert (rep.tp, rep.fp, rep.tn, rep.fn) == (2, 1, 3, 1)
    assert rep.accuracy == pytest.approx(5 / 7)
    assert rep.precision == pytest.approx(2 / 3)
    assert rep.recall == pytest.approx(2 / 3)
    assert rep.f1 == pytest.approx(2 / 3)
    assert rep.as_dict()["tp"] == 2


def test_classification_report_zero_division_is_zero():
    rep = metrics.classification_report([1, 0, 0], [0, 0, 0])
    assert (rep.tp, rep.fp, rep.tn, rep.fn) == (0, 0, 2, 1)
    assert rep.precision == 0.0 and rep.recall == 0.0 and rep.f1 == 0.0
    assert rep.accuracy == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------- pixel level


def test_pixel_auroc_pools_all_pixels():
    masks = np.zeros((2, 2, 2), dtype=bool)
    masks[0, 0, 0] = True
    masks[1, 1, 1] = True
    maps = np.array([[[0.9, 0.2], [0.1, 0.3]], [[0.4, 0.5], [0.6, 0.35]]])
    # Positives 0.9 and 0.35; negatives 0.2 0.1 0.3 0.4 0.5 0.6. 0.9 beats all 6,
    # 0.35 beats 0.2 0.1 0.3 → 9 of 12 pairs = 0.75 (the per-image mean would be 0.5).
    assert metrics.pixel_auroc(masks, maps) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="defect"):
        metrics.pixel_auroc(np.zeros((1, 2, 2), bool), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="same shape"):
        metrics.pixel_auroc(masks, maps[:1])


def _hand_pro_case():
    """Two images, two regions, 10 good pixels; see test_aupro_hand_worked."""
    masks = np.zeros((2, 2, 4), dtype=bool)
    maps = np.full((2, 2, 4), 0.1)
    masks[0, :, :2] = True  # region A: 4 pixels
    maps[0, :, :2] = [[0.9, 0.9], [0.9, 0.2]]
    maps[0, 0, 3] = 0.45  # the one good pixel above 0.1
    masks[1, 0, :2] = True  # region B: 2 pixels
    maps[1, 0, :2] = [0.9, 0.2]
    return masks, maps


def test_pro_curve_hand_worked_points():
    # Thresholds (score >= t):
    #   t=0.9:  A 3/4, B 1/2 → PRO (3/4 + 1/2)/2 = 5/8;  FPR 0/10
    #   t=0.45: PRO 5/8;                                   FPR 1/10
    #   t=0.2:  PRO 1;                                     FPR 1/10
    #   t=0.1:  PRO 1;                                     FPR 1
    fpr, pro, thr = metrics.pro_curve(*_hand_pro_case())
    np.testing.assert_allclose(fpr, [0, 0, 0.1, 0.1, 1])
    np.testing.assert_allclose(pro, [0, 5 / 8, 5 / 8, 1, 1])
    np.testing.assert_allclose(thr, [np.inf, 0.9, 0.45, 0.2, 0.1])


def test_aupro_hand_worked():
    masks, maps = _hand_pro_case()
    # Area over FPR [0, 0.3]: 0.1 * 5/8 + 0.2 * 1 = 0.2625 → / 0.3 = 0.875.
    assert metrics.aupro(masks, maps) == pytest.approx(0.875, abs=1e-12)
    # FPR limit 0.05 falls inside the flat 5/8 stretch → 5/8.
    assert metrics.aupro(masks, maps, fpr_limit=0.05) == pytest.approx(5 / 8, abs=1e-12)
    # Whole curve: 0.0625 + 0.9 * 1 = 0.9625.
    assert metrics.aupro(masks, maps, fpr_limit=1.0) == pytest.approx(0.9625, abs=1e-12)


def test_aupro_coarse_steps():
    masks, maps = _hand_pro_case()
    # steps=5 → thresholds 0.9 0.7 0.5 0.3 0.1: points (0,0) (0,5/8) (0,5/8) (0,5/8)
    # (0.1,5/8) (1,1); the (0.1, 1) corner is lost. At FPR 0.3 the segment (0.1,5/8)-(1,1)
    # is at 5/8 + 3/8 * 0.2/0.9; area 0.1*5/8 + 0.2*(5/8 + that)/2, then / 0.3.
    at_03 = 5 / 8 + 3 / 8 * 0.2 / 0.9
    expected = (0.1 * 5 / 8 + 0.2 * (5 / 8 + at_03) / 2) / 0.3
    assert metrics.aupro(masks, maps, steps=5) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="steps"):
        metrics.aupro(masks, maps, steps=1)


def test_aupro_perfect_and_constant_maps():
    rng = np.random.default_rng(0)
    masks = rng.random((3, 16, 16)) < 0.1
    masks[0, 2:5, 2:5] = True
    perfect = masks.astype(float)
    assert metrics.aupro(masks, perfect) == pytest.approx(1.0, abs=1e-12)
    # A constant map ties every pixel: the curve is (0,0)→(1,1), area 0.3²/2 → / 0.3 = 0.15.
    constant = np.full(masks.shape, 0.5)
    assert metrics.aupro(masks, constant) == pytest.approx(0.15, abs=1e-12)
    assert metrics.aupro(masks, constant, fpr_limit=1.0) == pytest.approx(0.5, abs=1e-12)


def test_aupro_uses_8_connected_regions():
    # One 2×5 image: (0,0) and (1,1) touch at a corner → one region of 2 pixels; (0,4) is a
    # second region. At t=0.9 only (0,0) is above → PRO = (1/2 + 0)/2 = 1/4 (4-connectivity
    # would give three regions and 1/3). 7 good pixels, one at 0.45 → FPR step of 1/7.
    masks = np.zeros((2, 5), dtype=bool)
    masks[0, 0] = masks[1, 1] = masks[0, 4] = True
    maps = np.full((2, 5), 0.1)
    maps[0, 0], maps[1, 1], maps[0, 4] = 0.9, 0.2, 0.2
    maps[1, 3] = 0.45
    expected = (1 / 7 * 1 / 4 + (0.3 - 1 / 7) * 1.0) / 0.3
    assert metrics.aupro(masks, maps) == pytest.approx(expected, abs=1e-12)


def test_aupro_monotonic_in_fpr_limit_and_bounded():
    rng = np.random.default_rng(1)
    masks = np.zeros((4, 24, 24), dtype=bool)
    masks[:, 5:10, 5:12] = True
    masks[1, 15:20, 15:22] = True
    maps = rng.random(masks.shape) + 0.8 * masks
    values = [metrics.aupro(masks, maps, fpr_limit=f) for f in (0.01, 0.05, 0.1, 0.3, 0.6, 1.0)]
    assert np.all(np.diff(values) >= -1e-12)
    assert 0.0 <= values[0] and values[-1] <= 1.0
    assert metrics.aupro(masks, maps, steps=200) == pytest.approx(
        metrics.aupro(masks, maps), abs=0.02
    )
    with pytest.raises(ValueError, match="fpr_limit"):
        metrics.aupro(masks, maps, fpr_limit=0.0)


def _brute_force_aupro(masks, maps, fpr_limit):
    """AU-PRO straight from the definition: one pass over the pixels per distinct threshold."""
    from scipy import ndimage

    regions = []  # (image index, (H, W) bool region)
    for i, mask in enumerate(masks):
        lab, n = ndimage.label(mask, structure=np.ones((3, 3)))
        regions += [(i, lab == k) for k in range(1, n + 1)]
    good = ~masks
    xs, ys = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        above = maps >= t
        xs.append(np.count_nonzero(above & good) / np.count_nonzero(good))
        ys.append(np.mean([np.count_nonzero(above[i] & r) / r.sum() for i, r in regions]))
    xs, ys = np.array(xs), np.array(ys)
    k = int(np.searchsorted(xs, fpr_limit, side="right"))  # first point beyond the limit
    y_at = ys[k - 1] + (ys[k] - ys[k - 1]) * (fpr_limit - xs[k - 1]) / (xs[k] - xs[k - 1])
    x, y = np.r_[xs[:k], fpr_limit], np.r_[ys[:k], y_at]
    return np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2) / fpr_limit


def test_aupro_matches_the_definition_on_random_maps_with_ties():
    rng = np.random.default_rng(2)
    masks = np.zeros((3, 12, 12), dtype=bool)
    masks[0, 2:5, 2:6] = True
    masks[0, 8, 8] = masks[0, 9, 9] = True  # a diagonal (8-connected) region
    masks[2, 6:11, 1:4] = True
    maps = np.round(rng.random(masks.shape) + 0.4 * masks, 1)  # 1 decimal → many ties
    for limit in (0.05, 0.3, 0.77):
        assert metrics.aupro(masks, maps, fpr_limit=limit) == pytest.approx(
            _brute_force_aupro(masks, maps, limit), abs=1e-9
        )


def test_aupro_needs_defect_pixels():
    with pytest.raises(ValueError, match="defect"):
        metrics.aupro(np.zeros((1, 4, 4), bool), np.zeros((1, 4, 4)))


# ----------------------------------------------------------------------------- region level


def test_region_iou_cases():
    pred = np.zeros((4, 4), bool)
    true = np.zeros((4, 4), bool)
    pred[0:2, 0:2] = True
    true[0:2, 1:3] = True
    # Intersection column 1 of rows 0-1 = 2 pixels; union 4 + 4 - 2 = 6 → 1/3.
    assert loc.region_iou(pred, true) == pytest.approx(1 / 3)
    empty = np.zeros((4, 4), bool)
    assert loc.region_iou(empty, empty) == 1.0
    assert loc.region_iou(empty, true) == 0.0
    assert loc.region_iou(pred, empty) == 0.0
    # Mean over three images: (1/3 + 1 + 0) / 3 = 4/9.
    preds = np.stack([pred, empty, empty])
    trues = np.stack([true, empty, true])
    assert loc.mean_region_iou(preds, trues) == pytest.approx(4 / 9)


# ----------------------------------------------------------------------------- box level


def _two_blob_map():
    amap = np.zeros((10, 12))
    amap[1:4, 2:6] = 0.8  # blob A: rows 1-3, cols 2-5, 12 pixels
    amap[6:9, 8:11] = 0.7  # blob B: rows 6-8, cols 8-10, 9 pixels
    amap[7, 9] = 0.9  # B's peak
    amap[9, 0] = 0.95  # a lone pixel
    return amap


def test_boxes_from_map_exact_boxes():
    boxes, scores = loc.scored_boxes_from_map(_two_blob_map(), 0.5)
    # xyxy pixel-corner boxes, raster order of each region's first pixel.
    np.testing.assert_array_equal(boxes, [[2, 1, 6, 4], [8, 6, 11, 9], [0, 9, 1, 10]])
    assert boxes.dtype == np.int64
    np.testing.assert_allclose(scores, [0.8, 0.9, 0.95])


def test_boxes_from_map_min_area_and_strict_threshold():
    amap = _two_blob_map()
    np.testing.assert_array_equal(
        loc.boxes_from_map(amap, 0.5, min_area=2), [[2, 1, 6, 4], [8, 6, 11, 9]]
    )
    np.testing.assert_array_equal(loc.boxes_from_map(amap, 0.5, min_area=10), [[2, 1, 6, 4]])
    # map > 0.8 is strict: blob A (exactly 0.8) goes, B's peak and the lone pixel stay.
    np.testing.assert_array_equal(loc.boxes_from_map(amap, 0.8), [[9, 7, 10, 8], [0, 9, 1, 10]])
    assert loc.boxes_from_map(amap, 1.0).shape == (0, 4)


def test_boxes_from_map_is_8_connected_and_matches_labels_bbox():
    amap = np.zeros((4, 4))
    amap[0, 0] = amap[1, 1] = 1.0
    np.testing.assert_array_equal(loc.boxes_from_map(amap, 0.5), [[0, 0, 2, 2]])
    x, y, w, h = labels.bbox(amap > 0.5)
    assert [x, y, x + w, y + h] == [0, 0, 2, 2]


def test_box_iou():
    # [0,0,2,2] and [1,1,3,3]: intersection 1, union 4 + 4 - 1 = 7.
    iou = loc.box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [5, 5, 6, 6]])
    np.testing.assert_allclose(iou, [[1 / 7, 0.0]])
    assert loc.box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_box_f1_iou_matching():
    preds = [
        np.array([[0, 0, 10, 10], [20, 20, 30, 30]]),  # one exact hit, one false alarm
        np.array([[0, 0, 10, 10]]),  # IoU with the truth 50/150 = 1/3
        np.zeros((0, 4)),  # a missed defect
    ]
    trues = [np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]]), np.array([[0, 0, 4, 4]])]
    # At IoU 0.5: tp 1, fp 2 (false alarm + the 1/3 box), fn 2 → P = R = F1 = 1/3.
    rep = loc.box_f1_iou(preds, trues)
    assert (rep.tp, rep.fp, rep.fn) == (1, 2, 2)
    assert rep.precision == pytest.approx(1 / 3)
    assert rep.recall == pytest.approx(1 / 3)
    assert rep.f1 == pytest.approx(1 / 3)
    assert rep.mean_iou == pytest.approx(1.0)
    # At IoU 0.3 the second image matches: tp 2, fp 1, fn 1; mean IoU (1 + 1/3) / 2.
    rep = loc.box_f1_iou(preds, trues, iou_threshold=0.3)
    assert (rep.tp, rep.fp, rep.fn) == (2, 1, 1)
    assert rep.f1 == pytest.approx(2 / 3)
    assert rep.mean_iou == pytest.approx(2 / 3)


def test_box_f1_iou_one_to_one_and_empty():
    # Two predictions on one truth: only the better one (IoU 1) matches, the other is an fp.
    rep = loc.box_f1_iou([[[1, 0, 11, 10], [0, 0, 10, 10]]], [[[0, 0, 10, 10]]])
    assert (rep.tp, rep.fp, rep.fn) == (1, 1, 0)
    assert rep.mean_iou == pytest.approx(1.0)
    # Greedy by IoU, best pair first. IoUs: P0-T0 80/100 = 0.8, P0-T1 90/100 = 0.9,
    # P1-T0 70/100 = 0.7, P1-T1 1.0. Greedy takes P1-T1 (1.0), then P0-T0 (0.8): mean 0.9.
    # (Matching in prediction order would take P0-T1, then P1-T0: mean 0.8.)
    pred = [[0, 0, 10, 10], [0, 0, 9, 10]]
    true = [[2, 0, 10, 10], [0, 0, 9, 10]]
    rep = loc.box_f1_iou([pred], [true])
    assert (rep.tp, rep.fp, rep.fn) == (2, 0, 0)
    assert rep.mean_iou == pytest.approx(0.9)
    empty = loc.box_f1_iou([np.zeros((0, 4))], [np.zeros((0, 4))])
    assert (empty.precision, empty.recall, empty.f1) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="images"):
        loc.box_f1_iou([np.zeros((0, 4))], [])


# ----------------------------------------------------------------------------- COCO


def _coco_gt():
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:30] = True
    return {
        "images": [{"id": 1, "width": 40, "height": 40}, {"id": 2, "width": 40, "height": 40}],
        "categories": [{"id": 1, "name": "dent"}, {"id": 2, "name": "scratch"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10],
             "segmentation": labels.rle_encode(mask), "area": 200, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [2, 2, 8, 8],
             "segmentation": labels.rle_encode(np.pad(np.ones((8, 8), bool), ((2, 30), (2, 30)))),
             "area": 64, "iscrowd": 0},
        ],
    }


def _as_detections(gt, shift=0.0):
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"],
         "bbox": [a["bbox"][0] + shift, *a["bbox"][1:]], "segmentation": a["segmentation"],
         "score": 1.0}
        for a in gt["annotations"]
    ]


def test_coco_map_ground_truth_against_itself(capsys, tmp_path):
    gt = _coco_gt()
    assert loc.coco_map(gt, _as_detections(gt)) == pytest.approx(
        {"mAP": 1.0, "AP50": 1.0, "AP75": 1.0}
    )
    assert loc.coco_map(gt, _as_detections(gt), iou_type="segm")["mAP"] == pytest.approx(1.0)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    assert loc.coco_map(path, _as_detections(gt))["mAP"] == pytest.approx(1.0)
    assert capsys.readouterr().out == ""  # COCOeval's prints are silenced


def test_coco_map_empty_and_shifted():
    gt = _coco_gt()
    assert loc.coco_map(gt, []) == {"mAP": 0.0, "AP50": 0.0, "AP75": 0.0}
    # Only the 20×10 dent box, shifted 4 px right: IoU = 16*10 / (2*200 - 160) = 2/3, so it
    # matches at IoU 0.50 0.55 0.60 0.65 (4 of 10 thresholds) → mAP 0.4 for that class; the
    # scratch box is exact → 1.0. Mean over the two classes: 0.7; AP50 1.0; AP75 0.5.
    dets = _as_detections(gt)
    dets[0]["bbox"][0] += 4
    res = loc.coco_map(gt, dets)
    assert res["mAP"] == pytest.approx(0.7)
    assert res["AP50"] == pytest.approx(1.0)
    assert res["AP75"] == pytest.approx(0.5)


def test_coco_map_rejects_bad_input():
    gt = _coco_gt()
    with pytest.raises(ValueError, match="image_id"):
        loc.coco_map(gt, [{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1],
                               "score": 1.0}])
    with pytest.raises(ValueError, match="iou_type"):
        loc.coco_map(gt, [], iou_type="keypoints")
    with pytest.raises(ValueError, match="segmentation"):
        loc.coco_map(gt, [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1],
                               "score": 1.0}], iou_type="segm")
