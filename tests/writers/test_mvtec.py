"""MVTec AD layout: the folders and names anomalib's MVTec and Folder loaders expect."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from synthgen.errors import ConfigError
from synthgen.writers import WRITERS
from synthgen.writers.base import DatasetInfo
from synthgen.writers.mvtec import MVTecWriter

from .helpers import INFO, H, W, make_samples, records, tree

EXPECTED = {
    "mvtec/widget/train/good/000000.png",
    "mvtec/widget/test/bulge/000001.png",
    "mvtec/widget/ground_truth/bulge/000001_mask.png",
    "mvtec/widget/test/combined/000002.png",
    "mvtec/widget/ground_truth/combined/000002_mask.png",
    "mvtec/widget/test/dent/000003.png",
    "mvtec/widget/ground_truth/dent/000003_mask.png",
    "mvtec/widget/test/good/000004.png",
}


@pytest.fixture
def written(tmp_path, caplog):
    samples = make_samples()
    writer = WRITERS.get("mvtec")(tmp_path, INFO)
    with caplog.at_level(logging.INFO, logger="synthgen.writers.mvtec"):
        for s in reversed(samples):  # any order
            writer.write(s)
    writer.finalize(records(samples))
    return tmp_path, samples


def test_tree_follows_the_mvtec_naming(written):
    root, _ = written
    assert set(tree(root)) == EXPECTED


def test_train_sample_with_a_defect_goes_to_test_and_is_logged(written, caplog):
    root, _ = written
    assert not (root / "mvtec/widget/train/good/000003.png").exists()
    messages = [r.getMessage() for r in caplog.get_records("setup")]
    assert any("sample 3 is in the train split but shows a defect" in m for m in messages)


def test_masks_are_binary_single_channel_unions_of_visible_instances(written):
    root, samples = written
    base = root / "mvtec" / "widget"
    for s in samples:
        img_path = next(base.rglob(f"{s.stem}.png"))
        with Image.open(img_path) as im:
            assert im.mode == "RGB" and im.size == (W, H)
            np.testing.assert_array_equal(np.asarray(im), s.rgb)
        masks = list(base.glob(f"ground_truth/*/{s.stem}_mask.png"))
        if s.is_good:
            assert masks == []
            continue
        (mask_path,) = masks
        assert mask_path.parent.name == img_path.parent.name
        with Image.open(mask_path) as im:
            assert im.mode == "L" and im.size == (W, H)
            m = np.asarray(im)
        assert set(np.unique(m)) <= {0, 255}
        union = np.logical_or.reduce([i.mask for i in s.instances if i.visible])
        np.testing.assert_array_equal(m == 255, union)


def test_anomalib_pairs_masks_with_images_by_sorted_path(written):
    # anomalib's make_mvtec_dataset sorts abnormal test images and ground-truth masks by
    # path and pairs them in order; each pair must share the image stem.
    root, _ = written
    base = root / "mvtec" / "widget"
    images = sorted(str(p) for p in base.glob("test/*/*.png") if p.parent.name != "good")
    masks = sorted(str(p) for p in base.glob("ground_truth/*/*.png"))
    assert len(images) == len(masks) == 3
    for img, mask in zip(images, masks, strict=True):
        assert mask.endswith(img.split("/test/")[1].replace(".png", "_mask.png"))


def test_writing_again_gives_the_same_bytes(written):
    root, samples = written
    before = tree(root)
    writer = MVTecWriter(root, INFO)
    for s in samples:
        writer.write(s)
    assert tree(root) == before


def test_reserved_defect_names_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="'good'"):
        MVTecWriter(tmp_path, DatasetInfo("x", ("dent", "good"), W, H))
