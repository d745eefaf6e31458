"""Dataset jobs end to end: determinism across workers and shards, resume after a kill,
the formats read back with the tools people use, and clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthgen.errors import ConfigError
from synthgen.generate import finalize, generate
from synthgen.job import parse_recipe

pytestmark = pytest.mark.gl

RECIPE = {
    "samples": 8,
    "seed": 3,
    "product": {"type": "bottle_cap"},
    "good_fraction": 0.5,
    "defects": [
        {"type": "bulge", "probability": 0.5, "radius": [2, 4], "height": [0.4, 1.0]},
        {"type": "hole", "probability": 0.5, "diameter": [1.5, 3], "depth": [1, 2]},
        {"type": "short_notch", "probability": 0.3, "length": [1, 3]},
    ],
    "render": {"size": 96},
    "augment": {"preset": "sensor"},
    "output": {"formats": ["mvtec", "coco", "yolo"], "good_test_fraction": 0.25},
}


def _job(**changes):
    return parse_recipe({**RECIPE, **changes})


def _tree(root: Path) -> dict[str, bytes]:
    """Every dataset file under root (job bookkeeping and parts excluded)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".parts" not in p.parts and p.name != "manifest.json"
    }


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "data"
    report = generate(_job(), out)
    assert report.complete and report.made == 8
    return out


def test_workers_and_shards_give_the_same_bytes(single, tmp_path):
    generate(_job(), tmp_path / "two", workers=2)
    for part in range(3):  # three shards into one folder, in any order
        generate(_job(), tmp_path / "shards", shard=(2 - part, 3), resume=part > 0)
    reference = _tree(single)
    assert reference and _tree(tmp_path / "two") == reference
    assert _tree(tmp_path / "shards") == reference


def test_manifest_lines_are_complete(single):
    lines = (single / "manifest.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["index"] for r in records] == list(range(8))
    for record in records:
        assert {"scene", "defects", "split", "augment", "product_params"} <= set(record)
        for defect in record["defects"]:
            assert {"params", "size_mm", "visible", "mask_area_px", "location"} <= set(defect)
    summary = json.loads((single / "manifest.json").read_text())
    assert summary["complete"] and summary["counts"]["samples"] == 8
    assert summary["recipe_hash"] == _job().hash and "numpy" in summary["versions"]


def test_coco_masks_equal_the_mvtec_masks(single):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    coco = COCO(str(single / "coco" / "annotations" / "instances.json"))
    records = {json.loads(line)["index"]: json.loads(line)
               for line in (single / "manifest.jsonl").read_text().splitlines()}
    seen = 0
    for image in coco.dataset["images"]:
        record = records[image["index"]]
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        assert len(annotations) == sum(d["visible"] for d in record["defects"])
        union = np.zeros((image["height"], image["width"]), dtype=bool)
        for ann in annotations:
            mask = mask_utils.decode(ann["segmentation"]).astype(bool)
            rows, cols = np.nonzero(mask)
            x, y, w, h = ann["bbox"]
            assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (x, y, x + w, y + h)
            union |= mask
            seen += 1
        if annotations:
            kinds = {a["category_id"] for a in annotations}
            folder = (coco.cats[kinds.pop()]["name"] if len(kinds) == 1 else "combined")
            png = single / "mvtec" / "bottle_cap" / "ground_truth" / folder
            gt = np.array(Image.open(png / f"{record['stem']}_mask.png")) > 127
            np.testing.assert_array_equal(gt, union)
    assert seen > 0


def test_mvtec_tree_names(single):
    root = single / "mvtec" / "bottle_cap"
    train = sorted((root / "train" / "good").glob("*.png"))
    assert train, "no training image"
    for folder in (root / "test").iterdir():
        for image in folder.glob("*.png"):
            mask = root / "ground_truth" / folder.name / f"{image.stem}_mask.png"
            assert mask.exists() == (folder.name != "good")


def test_existing_output_needs_resume_and_the_same_recipe(single):
    with pytest.raises(ConfigError, match="--resume"):
        generate(_job(), single)
    with pytest.raises(ConfigError, match="different recipe"):
        generate(_job(seed=4), single, resume=True)
    report = generate(_job(), single, resume=True)
    assert report.made == 0 and report.skipped == 8 and report.complete


def test_file_url_writes_the_same_local_folder(single, tmp_path):
    """file:// URLs resolve to local paths: atomic rename and SYNTHGEN_FSYNC as for a path."""
    report = generate(_job(), f"file://{tmp_path / 'url'}")
    assert report.out == tmp_path / "url" and report.complete
    assert _tree(tmp_path / "url") == _tree(single)


def test_unrelated_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        generate(_job(), tmp_path)


def test_killed_run_resumes_to_the_same_dataset(single, tmp_path):
    """kill -9 in the middle, then --resume: every index once, no corrupt file."""
    out = tmp_path / "killed"
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(RECIPE))
    code = (
        "import json, sys\n"
        "from synthgen.job import parse_recipe\n"
        "from synthgen.generate import generate\n"
        "generate(parse_recipe(json.load(open(sys.argv[1]))), sys.argv[2])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(recipe), str(out)])
    parts = out / ".parts" / "manifest"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("*.json"))) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list(parts.glob("*.json"))) < 8, "the run finished before it could be killed"
    generate(_job(), out, resume=True)
    assert _tree(out) == _tree(single)
    assert not [p for p in out.rglob("*.tmp") if ".parts" not in p.parts]


def test_finalize_rebuilds_dataset_files(single, tmp_path):
    (single / "coco" / "annotations" / "instances.json").unlink()
    records = finalize(_job(), single)
    assert len(records) == 8
    assert (single / "coco" / "annotations" / "instances.json").exists()


SCRIPT = '''
import numpy as np

def recipe():
    return {"samples": 4, "seed": 1, "product": {"type": "bottle_cap"}, "good_fraction": 0.3,
            "defects": [{"type": "bulge", "radius": [2, 4], "height": [0.4, 1.0]}],
            "scene": {"camera": {"azimuth_deg": [-20, 20], "elevation_deg": [10, 25]}},
            "render": {"size": 96}, "output": {"formats": ["coco", "mvtec"]}}

def arrange(rng, radius):
    count = int(rng.integers(2, 4))
    poses = []
    for i in range(count):
        pose = np.eye(4)
        pose[0, 3] = (i - (count - 1) / 2) * 2.2 * radius
        poses.append(pose)
    return poses
'''


def test_scene_script_with_several_objects(tmp_path):
    from pycocotools.coco import COCO

    from synthgen.job import load_recipe

    script = tmp_path / "row.py"
    script.write_text(SCRIPT)
    job = load_recipe(script)
    assert job.layout == str(script.resolve())
    first, second = tmp_path / "a", tmp_path / "b"
    generate(job, first)
    generate(job, second, workers=2)
    assert _tree(first) == _tree(second)
    coco = COCO(str(first / "coco" / "annotations" / "instances.json"))
    names = {c["name"]: c["id"] for c in coco.dataset["categories"]}
    assert set(names) == {"bulge", "bottle_cap"}
    records = [json.loads(line) for line in (first / "manifest.jsonl").read_text().splitlines()]
    for record, image in zip(records, coco.dataset["images"], strict=True):
        objects = coco.getAnnIds(imgIds=image["id"], catIds=[names["bottle_cap"]])
        assert 2 <= len(record["objects"]) <= 3
        assert len(objects) == sum(o["area_px"] > 0 for o in record["objects"])
        instances = [d["instance"] for d in record["defects"]]
        assert instances == list(range(1, len(instances) + 1))
        assert all(0 <= d["object"] < len(record["objects"]) for d in record["defects"])


def test_workers_cap_their_math_thread_pools():
    """A worker's BLAS/OpenMP pools are capped at its share of the CPUs (no oversubscription),
    unless the user set their size."""
    import subprocess
    import sys

    code = (
        "import numpy, threadpoolctl\n"
        "from synthgen.executors.local import limit_math_threads\n"
        "limit_math_threads(1)\n"
        "print(sorted({p['num_threads'] for p in threadpoolctl.threadpool_info()}))\n"
    )
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    capped = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True).stdout.strip()
    assert capped == "[1]"
    kept = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_NUM_THREADS": "2"},
                          capture_output=True, text=True, check=True).stdout.strip()
    assert kept != "[1]" or os.cpu_count() == 1
