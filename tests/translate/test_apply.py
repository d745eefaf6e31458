"""Translations written through the writers: binary masks, boxes that match, provenance;
the render-job stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from synthgen.errors import ConfigError
from synthgen.labels import bbox, components, rle_decode
from synthgen.translate.apply import (
    TranslateSpec,
    TranslateStage,
    Translator,
    apply_translator,
    file_sha256,
)


@pytest.fixture(scope="module")
def applied(tiny_run, domains, tmp_path_factory):
    out = tmp_path_factory.mktemp("applied")
    report = apply_translator(tiny_run, domains[0], out, n=8, formats=("mvtec", "coco", "yolo"),
                              seed=4, threshold=0.5, name="tile", device="cpu")
    return out, report


def test_apply_writes_every_format_with_provenance(applied, tiny_run, domains):
    out, report = applied
    assert report.written == 8
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(8))
    sha = file_sha256(tiny_run / "last.pt")
    sources = {p.name for p in domains[0].iterdir()}
    for r in records:
        assert r["checkpoint_sha256"] == sha and r["checkpoint"].endswith("last.pt")
        assert r["seed"] == 4 and r["source_image"].rsplit("/", 1)[1] in sources
        assert r["mask_source"] == "mask_branch"
    # every good image is used once before any repeats (seeded permutation, n > 6 cycles)
    assert len({r["source_image"] for r in records[:6]}) == 6
    assert (out / "coco" / "annotations" / "instances.json").is_file()
    assert (out / "yolo" / "data.yaml").is_file()


def test_written_masks_are_binary_and_match_boxes(applied):
    out, _ = applied
    coco = json.loads((out / "coco" / "annotations" / "instances.json").read_text())
    assert coco["categories"][0]["name"] == "blob"
    for ann in coco["annotations"]:
        mask = rle_decode(ann["segmentation"])
        assert ann["bbox"] == bbox(mask) and ann["area"] == int(mask.sum())
        assert len(components(mask)) == 1  # one instance per connected component
    masks = sorted((out / "mvtec" / "tile" / "ground_truth").rglob("*_mask.png"))
    for path in masks:
        values = np.unique(np.asarray(Image.open(path)))
        assert set(values.tolist()) <= {0, 255}
    by_image = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    for image in coco["images"]:
        anns = by_image.get(image["id"], [])
        assert image["is_good"] == (not anns)
        if anns:
            stem = image["file_name"][:-4]
            mask = np.asarray(Image.open(
                out / "mvtec" / "tile" / "ground_truth" / "blob" / f"{stem}_mask.png")) > 127
            union = np.zeros_like(mask)
            for ann in anns:
                union |= rle_decode(ann["segmentation"])
            assert np.array_equal(union, mask)
            assert sorted(tuple(a["bbox"]) for a in anns) == sorted(
                tuple(bbox(c)) for c in components(mask))


def test_apply_refuses_to_overwrite_and_resumes(applied, tiny_run, domains):
    out, _ = applied
    with pytest.raises(ConfigError, match="--resume"):
        apply_translator(tiny_run, domains[0], out, n=8, device="cpu")
    again = apply_translator(tiny_run, domains[0], out, n=8, formats=("mvtec", "coco", "yolo"),
                             seed=4, threshold=0.5, name="tile", resume=True, device="cpu")
    assert again.written == 0 and again.skipped == 8
    with pytest.raises(ConfigError, match="not one of"):
        apply_translator(tiny_run, domains[0], out, formats=("png",), device="cpu")


def test_translator_keeps_the_input_size_and_low_threshold_grows_masks(tiny_run):
    rgb = np.full((50, 44, 3), 128, np.uint8)
    low = Translator.from_run(tiny_run, "cpu", threshold=0.01)(rgb)
    high = Translator.from_run(tiny_run, "cpu", threshold=0.99)(rgb)
    assert low[0].shape == (50, 44, 3) and low[1].shape == (50, 44) and low[1].dtype == bool
    assert low[1].sum() >= high[1].sum()


def test_stage_translates_with_its_probability(tiny_run):
    spec = TranslateSpec(run=tiny_run, probability=1.0, device="cpu")
    stage = TranslateStage.from_spec(spec)
    rgb = np.full((32, 32, 3), 128, np.uint8)
    out, mask = stage(rgb, np.random.default_rng(0))
    assert stage.last_params["translated"] and out.shape == rgb.shape and mask.shape == (32, 32)
    never = TranslateStage(stage.translator, probability=0.0)
    out, mask = never(rgb, np.random.default_rng(0))
    assert out is rgb and not mask.any() and not never.last_params["translated"]
    with pytest.raises(ValueError):
        TranslateSpec(run=tiny_run, probability=1.5)
    with pytest.raises(ConfigError, match="does not exist"):
        Translator.from_run(tiny_run / "missing.pt")


def test_apply_output_reads_back_as_a_domain(applied):
    from synthgen.translate.data import read_domain

    out, report = applied
    bad = read_domain(out, "defective")
    assert len(bad) == report.defective and all(i.load_mask().any() for i in bad)
    if report.defective < report.written:
        assert len(read_domain(out, "good")) == report.written - report.defective
