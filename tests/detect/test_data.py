"""Dataset readers (MVTec AD, COCO, YOLO, mask folders), splits, and the torch Dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthgen.detect.data import (
    Item,
    good_only,
    load_image,
    load_mask,
    mask_boxes,
    read_coco,
    read_dataset,
    read_mask_folder,
    read_mvtec,
    read_yolo,
    split_items,
    with_split,
)
from synthgen.errors import ConfigError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TILES = SHARED / "data" / "magnetic_tile"

RECIPE = {
    "samples": 10,
    "seed": 5,
    "product": {"type": "bottle_cap"},
    "defects": [{"type": "bulge", "radius": [2, 4], "height": [0.4, 1.0]}],
    "render": {"size": 48},
    "output": {"formats": ["mvtec", "coco", "yolo"]},
}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory) -> Path:
    """A tiny synthgen dataset in all three formats (needs OpenGL)."""
    from synthgen.generate import generate
    from synthgen.job import parse_recipe

    out = tmp_path_factory.mktemp("job") / "data"
    report = generate(parse_recipe(RECIPE), out)
    assert report.complete
    return out


def _blob_mask(height: int, width: int, rects: list[tuple[int, int, int, int]]) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in rects:
        mask[y1:y2, x1:x2] = True
    return mask


@pytest.fixture
def folder(tmp_path) -> Path:
    """good/ with 2 grey JPEGs; defect/ with 3 masked images (one with an all-zero mask)."""
    rng = np.random.default_rng(0)
    (tmp_path / "good").mkdir()
    (tmp_path / "defect" / "Imgs").mkdir(parents=True)
    for k in range(2):
        grey = rng.integers(0, 255, (30, 40), dtype=np.uint8)
        Image.fromarray(grey).save(tmp_path / "good" / f"g{k}.jpg")
    shapes = {
        "d0": (36, 50, [(3, 4, 10, 9), (30, 20, 33, 30)]),  # L-free, off-centre: flips show
        "d1": (40, 40, [(5, 25, 15, 38)]),
        "d2": (20, 24, []),  # all-zero mask → good
    }
    for stem, (h, w, rects) in shapes.items():
        grey = rng.integers(0, 255, (h, w), dtype=np.uint8)
        Image.fromarray(grey).save(tmp_path / "defect" / "Imgs" / f"{stem}.jpg")
        mask = _blob_mask(h, w, rects).astype(np.uint8) * 255
        Image.fromarray(mask).save(tmp_path / "defect" / "Imgs" / f"{stem}.png")
    return tmp_path


def _bbox(mask: np.ndarray) -> np.ndarray:
    """[x1, y1, x2, y2] of a non-empty (H, W) mask, pixel edges."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64)


def _check_boxes_enclose(item: Item) -> None:
    mask = load_mask(item)
    assert item.boxes.dtype == np.float32 and item.boxes.shape == (len(item.classes), 4)
    if item.label == 0:
        assert not mask.any() and len(item.boxes) == 0
        return
    covered = np.zeros_like(mask)
    for x1, y1, x2, y2 in item.boxes.astype(int):
        covered[y1:y2, x1:x2] = True
        assert mask[y1:y2, x1:x2].any()  # no box over background only
    assert not (mask & ~covered).any(), f"{item.image}: mask pixels outside every box"
    union = np.r_[item.boxes[:, :2].min(0), item.boxes[:, 2:].max(0)]
    np.testing.assert_array_equal(union, _bbox(mask))


# --------------------------------------------------------------------------- synthgen data


@pytest.mark.gl
def test_readers_agree_on_a_synthgen_dataset(job_dir):
    mvtec = read_mvtec(job_dir / "mvtec", _category(job_dir))
    coco = read_coco(job_dir / "coco" / "annotations" / "instances.json")
    yolo = read_yolo(job_dir / "yolo" / "data.yaml")
    by_stem = [{it.image.stem: it for it in items} for items in (mvtec, coco, yolo)]
    assert len(mvtec) == len(coco) == len(yolo) == RECIPE["samples"]
    assert set(by_stem[0]) == set(by_stem[1]) == set(by_stem[2])
    assert any(it.label == 1 for it in mvtec) and any(it.label == 0 for it in mvtec)
    for stem, m in by_stem[0].items():
        c, y = by_stem[1][stem], by_stem[2][stem]
        assert m.label == c.label == y.label, stem
        assert m.defect_type == c.defect_type == y.defect_type, stem
        assert m.split == c.split == y.split, stem
        np.testing.assert_array_equal(load_mask(m), load_mask(c), err_msg=stem)
        assert (load_mask(m) <= load_mask(y)).all(), stem  # YOLO fills holes
        assert load_image(m).shape == load_image(c).shape == (48, 48, 3)
        for item in (m, c, y):
            _check_boxes_enclose(item)
            assert all(item.class_names[k] == "bulge" for k in item.classes)
    assert [it.image.name for it in coco] == sorted(it.image.name for it in coco)


def _category(job_dir: Path) -> str:
    (category,) = [p.name for p in (job_dir / "mvtec").iterdir() if p.is_dir()]
    return category


@pytest.mark.gl
def test_read_dataset_detects_the_format(job_dir):
    category = _category(job_dir)
    assert read_dataset(job_dir / "mvtec" / category)[0].image.parts[-3:-1] == ("train", "good")
    assert read_dataset(job_dir / "coco")[0].image.parent.name == "images"
    assert read_dataset(job_dir / "yolo" / "data.yaml")[0].image.parts[-3] == "images"
    assert read_dataset(job_dir)[0].image.parts[-3] == "coco"  # job folder → COCO
    assert read_dataset(job_dir, fmt="mvtec")[0].image.parts[-4] == category
    assert read_dataset(job_dir, fmt="yolo")[0].image.parts[-4] == "yolo"


@pytest.mark.gl
def test_torch_dataset_on_a_synthgen_dataset(job_dir):
    torch = pytest.importorskip("torch")
    from synthgen.detect.torch_data import DefectDataset, collate

    items = read_coco(job_dir / "coco" / "annotations" / "instances.json")
    loader = torch.utils.data.DataLoader(DefectDataset(items, size=96, train=True),
                                         batch_size=4, collate_fn=collate)
    batches = list(loader)
    assert sum(len(b["boxes"]) for b in batches) == len(items)
    for batch in batches:
        for k, boxes in enumerate(batch["boxes"]):
            mask = batch["mask"][k, 0].numpy() > 0
            if len(boxes):
                boxes = boxes.numpy()
                union = np.r_[boxes[:, :2].min(0), boxes[:, 2:].max(0)]
                np.testing.assert_allclose(union, _bbox(mask), atol=1.0)
            else:
                assert not mask.any()


# --------------------------------------------------------------------------- real data


def test_magnetic_tiles_as_a_mask_folder():
    if not TILES.is_dir():
        pytest.skip(f"the magnetic tile data is not at {TILES}")
    items = read_mask_folder(TILES, ["MT_Free"], ["MT_Blowhole", "MT_Crack"])
    free = [it for it in items if it.image.parts[-3] == "MT_Free"]
    defective = [it for it in items if it.image.parts[-3] != "MT_Free"]
    assert free and defective
    assert all(it.label == 0 and it.mask is None and it.defect_type is None for it in free)
    assert all(it.label == 1 and it.defect_type == it.image.parts[-3] for it in defective)
    assert items[0].class_names == ("MT_Blowhole", "MT_Crack")
    for item in defective[:: max(1, len(defective) // 8)]:
        assert load_mask(item).any()
        assert load_image(item).shape[:2] == load_mask(item).shape == item.size
        _check_boxes_enclose(item)
    assert load_image(free[0]).ndim == 3 and not load_mask(free[0]).any()
    assert good_only(items) == free


# --------------------------------------------------------------------------- hand-made


def test_mask_folder_labels_boxes_and_grey_images(folder):
    items = read_mask_folder(folder, ["good"], {"defect": "blob"})
    assert [it.image.stem for it in items] == ["g0", "g1", "d0", "d1", "d2"]
    assert [it.label for it in items] == [0, 0, 1, 1, 0]  # d2's mask is all zero
    d0 = items[2]
    assert d0.defect_type == "blob" and d0.class_names == ("blob",)
    np.testing.assert_array_equal(d0.boxes, [[3, 4, 10, 9], [30, 20, 33, 30]])
    assert d0.classes.tolist() == [0, 0] and d0.size == (36, 50)
    image = load_image(d0)
    assert image.shape == (36, 50, 3) and image.dtype == np.uint8
    assert (image[..., 0] == image[..., 2]).all()
    for item in items:
        _check_boxes_enclose(item)
    with pytest.raises(ValueError):
        d0.boxes[0, 0] = 1  # Items are read-only


def test_coco_polygons_and_plain_rle(tmp_path):
    from synthgen.labels import rle_encode

    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tmp_path / "a.png")
    rle = rle_encode(_blob_mask(10, 12, [(1, 1, 3, 4)]))
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "height": 10, "width": 12}],
        "categories": [{"id": 3, "name": "scratch"}, {"id": 7, "name": "dent"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [6, 2, 4, 5],
             "segmentation": [[6, 2, 10, 2, 10, 7, 6, 7]]},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [1, 1, 2, 3],
             "segmentation": rle},
        ],
    }
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    (item,) = read_coco(tmp_path / "instances.json")
    assert item.class_names == ("scratch", "dent") and item.classes.tolist() == [1, 0]
    assert item.defect_type == "combined" and item.split is None
    expected = _blob_mask(10, 12, [(6, 2, 10, 7), (1, 1, 3, 4)])
    np.testing.assert_array_equal(load_mask(item), expected)
    np.testing.assert_array_equal(item.load_mask(), expected)
    _check_boxes_enclose(item)


def test_yolo_detect_labels_and_class_names(tmp_path):
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    Image.fromarray(np.zeros((20, 40, 3), np.uint8)).save(tmp_path / "images/train/x.png")
    Image.fromarray(np.zeros((20, 40, 3), np.uint8)).save(tmp_path / "images/train/y.png")
    (tmp_path / "labels/train/x.txt").write_text("1 0.25 0.5 0.1 0.2\n")
    (tmp_path / "data.yaml").write_text("train: images/train\nnames:\n  0: a\n  1: b\n")
    items = read_yolo(tmp_path / "data.yaml", class_names=["b", "a", "c"])
    assert [it.label for it in items] == [1, 0] and items[0].split == "train"
    np.testing.assert_allclose(items[0].boxes, [[8, 8, 12, 12]])
    assert items[0].classes.tolist() == [0] and items[0].defect_type == "b"
    assert load_mask(items[0]).sum() == 16
    (tmp_path / "labels/train/x.txt").write_text("5 0.25 0.5 0.1 0.2\n")
    with pytest.raises(ConfigError, match=r"x\.txt line 1"):
        read_yolo(tmp_path / "data.yaml")


# --------------------------------------------------------------------------- splits


def _fake_items(n_good: int, n_bad: int) -> list[Item]:
    return [Item(image=Path(f"{k:03d}.png"), label=int(k >= n_good))
            for k in range(n_good + n_bad)]


def test_split_items_is_seeded_stratified_and_disjoint():
    items = _fake_items(70, 30)
    train, val, test = split_items(items, (0.6, 0.2, 0.2), np.random.default_rng(3))
    again = split_items(items, (0.6, 0.2, 0.2), np.random.default_rng(3))
    other = split_items(items, (0.6, 0.2, 0.2), np.random.default_rng(4))
    names = [[it.image.name for it in part] for part in (train, val, test)]
    assert names == [[it.image.name for it in part] for part in again]
    assert names != [[it.image.name for it in part] for part in other]
    flat = [n for part in names for n in part]
    assert sorted(flat) == sorted(it.image.name for it in items)  # disjoint, all of them
    assert [len(p) for p in (train, val, test)] == [60, 20, 20]
    assert [sum(it.label for it in p) for p in (train, val, test)] == [18, 6, 6]
    assert len(good_only(train)) == 42
    assert sum(len(p) for p in split_items(_fake_items(7, 3), rng=1, stratify=False)) == 10
    with pytest.raises(ConfigError, match="fractions"):
        split_items(items, (0.5, 0.2, 0.2))
    assert with_split(items, None) == items


# --------------------------------------------------------------------------- errors


def test_clear_errors_for_missing_or_wrong_layouts(tmp_path, folder):
    with pytest.raises(ConfigError, match="does not exist"):
        read_dataset(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="not a known dataset layout"):
        read_dataset(folder)
    with pytest.raises(ConfigError, match=r"MVTec category folder .*cap"):
        read_mvtec(tmp_path, "cap")
    (tmp_path / "cap" / "test" / "crack").mkdir(parents=True)
    with pytest.raises(ConfigError, match="no train/good/ folder"):
        read_mvtec(tmp_path, "cap")
    (tmp_path / "cap" / "train" / "good").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "cap/test/crack/000.png")
    with pytest.raises(ConfigError, match=r"000_mask\.png"):
        read_mvtec(tmp_path, "cap")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"bad\.json is not a JSON"):
        read_coco(tmp_path / "bad.json")
    (tmp_path / "data.yaml").write_text("train: images\n")
    with pytest.raises(ConfigError, match="has no names"):
        read_yolo(tmp_path / "data.yaml")
    (folder / "defect" / "Imgs" / "d1.png").unlink()
    with pytest.raises(ConfigError, match=r"d1\.jpg has no mask"):
        read_mask_folder(folder, ["good"], ["defect"])
    with pytest.raises(ConfigError, match=r"image folder .*other"):
        read_mask_folder(folder, ["other"], ["defect"])


# --------------------------------------------------------------------------- torch


def test_defect_dataset_shapes_and_dtypes(folder):
    torch = pytest.importorskip("torch")
    from synthgen.detect.torch_data import DefectDataset, collate

    items = read_mask_folder(folder, ["good"], ["defect"])
    data = DefectDataset(items, size=32)
    sample = data[2]
    assert sample["image"].shape == (3, 32, 32) and sample["image"].dtype == torch.float32
    assert 0 <= float(sample["image"].min()) and float(sample["image"].max()) <= 1
    assert sample["mask"].shape == (1, 32, 32) and sample["mask"].dtype == torch.float32
    assert set(sample["mask"].unique().tolist()) == {0.0, 1.0}
    assert sample["label"].dtype == torch.int64 and sample["label"].shape == ()
    assert sample["boxes"].shape == (2, 4) and sample["boxes"].dtype == torch.float32
    assert sample["classes"].dtype == torch.int64 and sample["index"] == 2
    np.testing.assert_allclose(sample["boxes"][0], [3 * 32 / 50, 4 * 32 / 36,
                                                    10 * 32 / 50, 9 * 32 / 36], rtol=1e-6)
    assert data[0]["boxes"].shape == (0, 4) and data.class_names == ("defect",)
    batch = collate([data[i] for i in range(len(data))])
    assert batch["image"].shape == (5, 3, 32, 32) and batch["label"].tolist() == [0, 0, 1, 1, 0]
    assert isinstance(batch["boxes"], list) and [len(b) for b in batch["boxes"]] == [0, 0, 2, 1, 0]
    cached = DefectDataset(items, size=32, cache=True)
    for _ in range(2):
        torch.testing.assert_close(cached[2]["image"], sample["image"], atol=1 / 255, rtol=0)
        torch.testing.assert_close(cached[2]["mask"], sample["mask"])


def test_flips_keep_mask_and_boxes_aligned_and_follow_the_epoch(folder):
    pytest.importorskip("torch")
    from synthgen.detect.torch_data import DefectDataset

    items = read_mask_folder(folder, ["good"], ["defect"])
    data = DefectDataset(items, size=(48, 64), train=True, rng_seed=7)
    seen = set()
    draws = {}
    for epoch in range(12):
        data.set_epoch(epoch)
        draws[epoch] = [data.flips(i) for i in range(len(data))]
        for index in (2, 3):
            sample = data[index]
            seen.add(data.flips(index))
            mask = sample["mask"][0].numpy() > 0
            for box in sample["boxes"].numpy():  # each box holds its blob
                x1, y1, x2, y2 = np.round(box).astype(int)
                assert mask[y1:y2, x1:x2].sum() >= 0.8 * (x2 - x1) * (y2 - y1)
            boxes = sample["boxes"].numpy()
            union = np.r_[boxes[:, :2].min(0), boxes[:, 2:].max(0)]
            np.testing.assert_allclose(union, _bbox(mask), atol=1.0)
    assert len(seen) == 4  # every flip combination occurs
    assert len({tuple(d) for d in draws.values()}) > 1  # the epoch changes the draw
    data.set_epoch(3)
    assert [data.flips(i) for i in range(len(data))] == draws[3]  # reproducible
    twin = DefectDataset(items, size=(48, 64), train=True, rng_seed=7)
    twin.set_epoch(3)
    assert all((twin[i]["image"] == data[i]["image"]).all() for i in range(len(data)))
    plain = DefectDataset(items, size=(48, 64))
    assert all(plain.flips(i) == (False, False) for i in range(len(plain)))


def test_mask_boxes_uses_8_connectivity():
    mask = _blob_mask(6, 6, [(0, 0, 1, 1), (1, 1, 2, 2), (4, 4, 6, 5)])
    np.testing.assert_array_equal(mask_boxes(mask), [[0, 0, 2, 2], [4, 4, 6, 5]])
    assert mask_boxes(np.zeros((3, 3), bool)).shape == (0, 4)
