"""COCO instances: pycocotools loads the JSON, masks decode exactly, COCOeval runs."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from synthgen.errors import ConfigError, SynthgenError
from synthgen.writers import WRITERS
from synthgen.writers.base import Instance

from .helpers import INFO, H, W, box, make_samples, records, sample, tree


def _write_all(root, samples, order=None):
    writer = WRITERS.get("coco")(root, INFO)
    for s in order or samples:
        writer.write(s)
    writer.finalize(records(samples))
    return writer


@pytest.fixture
def coco_root(tmp_path):
    samples = make_samples()
    _write_all(tmp_path, samples, order=[samples[i] for i in (3, 0, 4, 2, 1)])
    return tmp_path, samples


def _load(root):
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(root / "coco" / "annotations" / "instances.json"))


def test_pycocotools_loads_images_categories_and_fields(coco_root):
    root, samples = coco_root
    coco = _load(root)
    cats = coco.loadCats(coco.getCatIds())
    assert [(c["id"], c["name"], c["supercategory"]) for c in cats] == [
        (1, "bulge", "defect"),
        (2, "dent", "defect"),
        (3, "scratch", "defect"),
    ]
    assert sorted(coco.getImgIds()) == [s.index + 1 for s in samples]
    for s in samples:
        img = coco.loadImgs(s.index + 1)[0]
        assert img["file_name"] == f"{s.stem}.png"
        assert (img["width"], img["height"]) == (W, H)
        assert img["split"] == s.split and img["is_good"] == s.is_good
        assert img["defect_types"] == sorted({i.defect_type for i in s.visible_instances})
        with Image.open(root / "coco" / "images" / img["file_name"]) as im:
            np.testing.assert_array_equal(np.asarray(im), s.rgb)


def test_one_annotation_per_visible_instance_with_exact_mask_and_box(coco_root):
    root, samples = coco_root
    coco = _load(root)
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == sum(len(s.visible_instances) for s in samples) == 4
    assert [a["id"] for a in anns] == [1, 2, 3, 4]
    by_index = {s.index: s for s in samples}
    for ann in anns:
        s = by_index[ann["image_id"] - 1]
        inst = next(i for i in s.instances if i.instance == ann["instance"])
        assert inst.visible
        assert coco.loadCats(ann["category_id"])[0]["name"] == inst.defect_type
        assert isinstance(ann["segmentation"]["counts"], str)
        decoded = coco.annToMask(ann).astype(bool)
        np.testing.assert_array_equal(decoded, inst.mask)
        x, y, w, h = ann["bbox"]
        rows, cols = np.nonzero(inst.mask)
        assert (x, y, x + w - 1, y + h - 1) == (cols.min(), rows.min(), cols.max(), rows.max())
        assert ann["area"] == int(inst.mask.sum())
        assert ann["iscrowd"] == 0
        assert ann["size_mm"] == 0.25 * inst.instance


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_cocoeval_of_ground_truth_against_itself_is_perfect(coco_root, iou_type):
    root, _ = coco_root
    gt = _load(root)
    dets = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "segmentation": a["segmentation"],
            "bbox": a["bbox"],
            "score": 0.9,
        }
        for a in gt.loadAnns(gt.getAnnIds())
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # AP @ IoU 0.50:0.95
    assert ev.stats[1] == pytest.approx(1.0)  # AP @ IoU 0.50


def test_same_samples_give_byte_identical_files(coco_root, tmp_path_factory):
    root, samples = coco_root
    other = tmp_path_factory.mktemp("again")
    _write_all(other, samples)
    assert tree(root / "coco") == tree(other / "coco")
    before = tree(root)
    _write_all(root, samples)  # writing the same samples twice changes nothing
    assert tree(root) == before


def test_finalize_on_a_subset_and_a_missing_part(coco_root):
    root, samples = coco_root
    writer = WRITERS.get("coco")(root, INFO)
    data = writer.dataset(records(samples)[1:3])
    assert [i["id"] for i in data["images"]] == [2, 3]
    assert len(data["annotations"]) == 3
    with pytest.raises(SynthgenError, match="sample 99 has no annotation part"):
        writer.finalize([{"index": 99}])
    assert json.loads(writer.annotation_file.read_text())["images"][0]["id"] == 1  # untouched


def test_unknown_defect_type_is_refused(tmp_path):
    s = sample(0, "test", (Instance("crack", 1, box(1, 1, 4, 4), True),))
    with pytest.raises(ConfigError, match="'crack' is not one of"):
        WRITERS.get("coco")(tmp_path, INFO).write(s)


def test_rle_counts_match_pycocotools_encoding(coco_root):
    root, samples = coco_root
    coco = _load(root)
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[2]))[0]
    ref = mask_utils.encode(np.asfortranarray(samples[1].instances[0].mask.astype(np.uint8)))
    assert ann["segmentation"] == {"size": [H, W], "counts": ref["counts"].decode()}
