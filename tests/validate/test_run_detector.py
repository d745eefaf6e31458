"""A run folder of the bundled trainer as the detector: its scores, threshold and maps."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

pytestmark = [pytest.mark.gl, pytest.mark.slow]


def test_a_trained_run_scores_the_sweep(tmp_path, gl):
    from synthgen.detect.run import predict_run, train_run
    from synthgen.generate import generate
    from synthgen.job import parse_recipe
    from synthgen.validate.detectors import parse_detectors
    from synthgen.validate.study import validate
    from synthgen.validate.sweep import parse_sweep

    from .conftest import small_recipe

    recipe = {**small_recipe(size=64), "samples": 10, "good_fraction": 0.5,
              "output": {"formats": ["coco"]}}
    job = parse_recipe(recipe)
    generate(job, tmp_path / "data")
    run = tmp_path / "run"
    train_run("ae_l2", tmp_path / "data", run, epochs=1, size=64, batch_size=4)
    threshold = json.loads((run / "run.json").read_text())["thresholds"]["image"]

    detectors = parse_detectors([str(run)], [])
    assert detectors[0].threshold == threshold
    result = validate(job, [parse_sweep("bulge.height=0.5:1.5:2")], detectors,
                      tmp_path / "report", per_size=2, good=2)
    rows = result["rows"]
    assert len(rows) == 2 * 2 + 2
    # The same scores as the trainer's own predict, and its threshold applied to them.
    images = [tmp_path / "report" / r["image"] for r in rows]
    direct = predict_run(run, images, tmp_path / "pred")
    np.testing.assert_allclose([r["score"] for r in rows], [p["score"] for p in direct],
                               rtol=1e-5)
    assert [r["hit"] for r in rows] == [p["defective"] for p in direct]
    assert (tmp_path / "report" / "examples_bulge_height.png").is_file()
