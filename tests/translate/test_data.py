"""Reading the two domains, and joint transforms that keep masks on their pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from synthgen.errors import ConfigError
from synthgen.translate.data import JointTransform, elastic, make_unpaired_dataset, read_domain


def test_read_domain_magnetic_tile_layout(domains):
    good, bad = domains
    g = read_domain(good, "good")
    b = read_domain(bad, "defective")
    assert len(g) == 6 and all(i.label == 0 for i in g)
    assert len(b) == 4 and all(i.label == 1 and i.mask is not None for i in b)
    assert b[0].load_mask().any()


def test_read_domain_plain_folder_with_mask_folder(tmp_path):
    images, masks = tmp_path / "img", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for k in range(2):
        Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(images / f"a{k}.png")
        mask = np.zeros((8, 8), np.uint8)
        mask[2:4, 2:4] = 255
        Image.fromarray(mask).save(masks / f"a{k}_mask.png")
    items = read_domain(images, "defective", masks)
    assert [i.mask.name for i in items] == ["a0_mask.png", "a1_mask.png"]
    (masks / "a1_mask.png").unlink()
    with pytest.raises(ConfigError, match=r"a1.png has no mask"):
        read_domain(images, "defective", masks)
    with pytest.raises(ConfigError, match="does not exist"):
        read_domain(tmp_path / "nope", "good")


def test_joint_transform_keeps_mask_aligned():
    """A bright square drawn where the mask is stays exactly under the mask after every
    random crop, flip and elastic warp."""
    rgb = np.zeros((40, 40, 3), np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[10:22, 14:30] = True
    rgb[mask] = 255
    t = JointTransform(size=32, load_size=40, elastic_p=1.0, elastic_alpha=6, elastic_sigma=4)
    for seed in range(6):
        image, m = t(rgb, mask, np.random.default_rng(seed))
        assert image.shape == (3, 32, 32) and m.shape == (1, 32, 32)
        assert image.min() >= -1 and image.max() <= 1 and set(np.unique(m)) <= {0.0, 1.0}
        bright = image[0] > 0
        agree = (bright == (m[0] > 0)).mean()
        assert agree > 0.97, seed  # only bilinear edge pixels may differ
    a = t(rgb, mask, np.random.default_rng(3))
    b = t(rgb, mask, np.random.default_rng(3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ConfigError, match="multiple of 4"):
        JointTransform(size=30, load_size=32)


def test_elastic_moves_pixels_smoothly():
    rgb = np.tile(np.arange(32, dtype=np.uint8)[None, :, None] * 8, (32, 1, 3))
    mask = np.zeros((32, 32), bool)
    mask[8:16, 8:16] = True
    out, m = elastic(rgb, mask, alpha=8, sigma=4, rng=np.random.default_rng(0))
    assert out.shape == rgb.shape and m.dtype == bool
    assert not np.array_equal(out, rgb)
    assert abs(int(m.sum()) - 64) < 40  # a warped square, not a new shape


def test_unpaired_dataset_is_seeded_per_epoch(domains):
    good, bad = domains
    t = JointTransform(size=32, load_size=36)
    ds = make_unpaired_dataset(read_domain(good, "good"), read_domain(bad, "defective"), t, 1)
    assert len(ds) == 6
    s0 = ds[2]
    assert s0["x"].shape == (3, 32, 32) and s0["m"].shape == (1, 32, 32)
    assert np.array_equal(ds[2]["y"], s0["y"])
    ds.set_epoch(1)
    assert not np.array_equal(ds[2]["x"], s0["x"])


def test_spec_and_readers_import_without_torch():
    """job.py can import TranslateSpec (and readers) without pulling in torch."""
    import subprocess
    import sys

    code = ("import sys, synthgen.translate, synthgen.translate.apply, synthgen.translate.data\n"
            "print(','.join(m for m in ('torch', 'torchvision', 'albumentations') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
