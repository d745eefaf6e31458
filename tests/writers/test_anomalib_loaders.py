"""anomalib's own MVTecAD and Folder data modules read a rendered dataset as it is.

anomalib (with torch and lightning) is not part of synthgen's environment, so this test
skips unless it is installed; run it with `pip install anomalib` beside synthgen.
"""

from __future__ import annotations

from pathlib import Path

import pytest

anomalib_data = pytest.importorskip("anomalib.data", reason="anomalib is not installed")

pytestmark = [pytest.mark.gl, pytest.mark.slow]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from synthgen.generate import generate
    from synthgen.job import parse_recipe

    job = parse_recipe({
        "samples": 24, "product": {"type": "bottle_cap"}, "good_fraction": 0.5,
        "defects": [{"type": "bulge", "radius": [2, 4], "height": [0.4, 1.0]}],
        "render": {"size": 64}, "output": {"formats": ["mvtec"], "name": "cap"},
    })
    out = tmp_path_factory.mktemp("anomalib") / "data"
    generate(job, out)
    return out / "mvtec"


def test_mvtec_module_reads_images_labels_and_masks(dataset):
    module = anomalib_data.MVTecAD(root=dataset, category="cap", num_workers=0)
    module.setup()
    train = len(list((dataset / "cap" / "train" / "good").glob("*.png")))
    test = len(list((dataset / "cap" / "test").rglob("*.png")))
    assert len(module.train_data) == train and len(module.test_data) == test
    batch = next(iter(module.test_dataloader()))
    assert batch.gt_mask is not None and batch.gt_mask.shape[-2:] == (64, 64)


def test_folder_module_pairs_masks_by_name(dataset):
    base = dataset / "cap"
    module = anomalib_data.Folder(
        name="cap", root=base, normal_dir="train/good", abnormal_dir="test/bulge",
        normal_test_dir="test/good", mask_dir="ground_truth/bulge", num_workers=0,
    )
    module.setup()
    samples = module.test_data.samples
    abnormal = samples[samples.label_index == 1]
    assert len(abnormal) > 0
    for image, mask in zip(abnormal.image_path, abnormal.mask_path, strict=True):
        assert Path(mask).name == f"{Path(image).stem}_mask.png"
