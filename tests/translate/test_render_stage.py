"""The translator as a stage of a render job: `translate:` in a recipe."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from synthgen.errors import ConfigError
from synthgen.generate import generate
from synthgen.job import parse_recipe

pytestmark = pytest.mark.gl


def _recipe(**extra):
    return {"product": {"type": "bottle_cap"}, "defects": [{"type": "bulge"}],
            "samples": 3, "good_fraction": 0.0, "render": {"size": 48},
            "output": {"formats": ["mvtec", "coco"]}, **extra}


def test_recipes_without_translate_keep_their_hash():
    job = parse_recipe(_recipe())
    assert "translate" not in job.to_dict()
    assert job.defect_types == ("bulge",)


def test_missing_run_is_refused_before_rendering(tmp_path):
    with pytest.raises(ConfigError, match=r"translate\.run: .* does not exist"):
        parse_recipe(_recipe(translate={"run": "nowhere"}), base_dir=tmp_path)


def test_translated_renders_carry_the_painted_mask(tiny_run, tmp_path):
    job = parse_recipe(_recipe(translate={"run": str(tiny_run), "probability": 1.0,
                                          "threshold": 0.01, "device": "cpu"}))
    assert job.defect_types == ("bulge", "translated")
    plain = generate(parse_recipe(_recipe()), tmp_path / "plain", workers=1)
    report = generate(job, tmp_path / "out", workers=1)
    assert report.complete
    records = [json.loads(line) for line in
               (report.out / "manifest.jsonl").read_text().splitlines()]
    coco = json.loads((report.out / "coco" / "annotations" / "instances.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert "translated" in names.values()
    for record in records:
        translated = [d for d in record["defects"] if d["type"] == "translated"]
        assert len(translated) == 1 and record["translate"]["translated"]
        # the painted mask is cut to the object: never more than the translator painted
        assert translated[0]["mask_area_px"] <= record["translate"]["mask_area_px"]
    # the geometric part of the sample is unchanged: same bulge, same object
    plain_records = [json.loads(line) for line in
                     (plain.out / "manifest.jsonl").read_text().splitlines()]
    for a, b in zip(plain_records, records, strict=True):
        assert a["defects"][0]["params"] == b["defects"][0]["params"]
        assert a["scene"] == b["scene"]
    # the images differ from the plain renders: the translator repainted them
    for stem in ("000000", "000002"):
        ours = np.asarray(Image.open(report.out / "coco" / "images" / f"{stem}.png"))
        theirs = np.asarray(Image.open(plain.out / "coco" / "images" / f"{stem}.png"))
        assert ours.shape == theirs.shape and not np.array_equal(ours, theirs)
