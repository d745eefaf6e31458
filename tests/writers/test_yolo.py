"""YOLO segment and detect files, parsed back as ultralytics reads them."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image

from synthgen.errors import ConfigError
from synthgen.labels import bbox, components, rasterize_polygons
from synthgen.writers import WRITERS
from synthgen.writers.yolo import YOLODetectWriter, YOLOWriter

from .helpers import INFO, H, W, iou, make_samples, records, tree

FOLDER = {"train": "train", "test": "val"}


def _write(root, name, samples=None):
    samples = samples if samples is not None else make_samples()
    writer = WRITERS.get(name)(root, INFO)
    for s in reversed(samples):
        writer.write(s)
    writer.finalize(records(samples))
    return writer, samples


def _parse(path):
    """[(class id, (N, 2) coordinates in pixels)] from a label file, checking its syntax."""
    out = []
    for line in path.read_text().splitlines():
        fields = line.split()
        cls, values = int(fields[0]), np.array([float(v) for v in fields[1:]])
        assert 0 <= cls < len(INFO.defect_types)
        assert np.all((values >= 0) & (values <= 1)), line
        out.append((cls, values))
    return out


def test_segment_layout_and_label_files(tmp_path):
    _, samples = _write(tmp_path, "yolo")
    names = set(tree(tmp_path / "yolo"))
    expected = {"data.yaml"}
    for s in samples:
        expected |= {
            f"images/{FOLDER[s.split]}/{s.stem}.png",
            f"labels/{FOLDER[s.split]}/{s.stem}.txt",
        }
    assert names == expected
    for s in samples:
        label = tmp_path / "yolo" / "labels" / FOLDER[s.split] / f"{s.stem}.txt"
        with Image.open(tmp_path / "yolo" / "images" / FOLDER[s.split] / f"{s.stem}.png") as im:
            np.testing.assert_array_equal(np.asarray(im), s.rgb)
        lines = _parse(label)
        if s.is_good:
            assert label.read_text() == ""
            continue
        expected_lines = sum(len(components(i.mask)) for i in s.visible_instances)
        assert len(lines) == expected_lines


def test_segment_polygons_rasterise_back_to_the_masks(tmp_path):
    _, samples = _write(tmp_path, "yolo")
    scale = np.array([W, H])
    for s in samples:
        lines = _parse(tmp_path / "yolo" / "labels" / FOLDER[s.split] / f"{s.stem}.txt")
        for inst in s.visible_instances:
            cls = INFO.defect_types.index(inst.defect_type)
            polys = []
            for c, values in lines:
                assert len(values) % 2 == 0 and len(values) >= 6
                pts = values.reshape(-1, 2) * scale
                if c == cls and rasterize_polygons([pts], H, W)[inst.mask].any():
                    polys.append(pts)
            back = rasterize_polygons(polys, H, W)
            assert inst.mask.sum() < 50 or iou(back, inst.mask) >= 0.9
            np.testing.assert_array_equal(back, inst.mask)  # these masks have no holes


def test_data_yaml_lists_classes_and_split_folders(tmp_path):
    _write(tmp_path, "yolo")
    data = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())
    assert data["names"] == {0: "bulge", 1: "dent", 2: "scratch"}
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    assert "path" not in data  # ultralytics then uses the yaml's folder: portable
    for key in ("train", "val"):
        assert any((tmp_path / "yolo" / data[key]).glob("*.png"))


def test_val_falls_back_to_train_without_test_samples(tmp_path, caplog):
    train_only = [s for s in make_samples() if s.split == "train"]
    _write(tmp_path, "yolo", train_only)
    data = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())
    assert data["val"] == "images/train"
    assert "no sample is in the test split" in caplog.text


def test_detect_boxes_match_the_masks(tmp_path):
    writer, samples = _write(tmp_path, "yolo_detect")
    assert isinstance(writer, YOLODetectWriter) and writer.task == "detect"
    assert (tmp_path / "yolo_detect" / "data.yaml").exists()
    for s in samples:
        lines = _parse(tmp_path / "yolo_detect" / "labels" / FOLDER[s.split] / f"{s.stem}.txt")
        assert len(lines) == len(s.visible_instances)
        for (cls, (xc, yc, w, h)), inst in zip(lines, s.visible_instances, strict=True):
            assert cls == INFO.defect_types.index(inst.defect_type)
            x, y, bw, bh = bbox(inst.mask)
            got = [(xc - w / 2) * W, (yc - h / 2) * H, w * W, h * H]
            np.testing.assert_allclose(got, [x, y, bw, bh], atol=1e-3)


def test_same_samples_give_byte_identical_files(tmp_path):
    _write(tmp_path / "a", "yolo")
    before = tree(tmp_path / "a")
    _write(tmp_path / "a", "yolo")
    assert tree(tmp_path / "a") == before
    _write(tmp_path / "b", "yolo")
    other = tree(tmp_path / "b")
    assert {k: v for k, v in other.items() if k != "yolo/data.yaml"} == {
        k: v for k, v in before.items() if k != "yolo/data.yaml"
    }


def test_simplification_tolerance_and_bad_task(tmp_path):
    s = make_samples()[1]
    exact = YOLOWriter(tmp_path, INFO).label_lines(s)
    simple = YOLOWriter(tmp_path, INFO, tolerance=1.0).label_lines(s)
    assert len(simple[0].split()) < len(exact[0].split())
    with pytest.raises(ConfigError, match="segment"):
        YOLOWriter(tmp_path, INFO, task="obb")
