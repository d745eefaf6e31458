"""A detector whose true threshold is known: the POD machinery must recover its a90.

The detector (a command, through the whole validation) scores each image by its defect
mask's pixel area and fires at T pixels. The bulge's mask area grows as k r^2 (r its radius,
k > 0 a factor of the view: distance, foreshortening, local curvature), so a view at size r
is a hit when k r^2 >= T and the true POD is POD(r) = P(k >= T / r^2). Its a90 is the size
at which 90% of views have k r^2 >= T: a90 = sqrt(T / q10(k)), q10 the 10th percentile of
k. k is measured on every view at r >= 5 mm (where the mask has enough pixels for
quantisation not to matter); the estimate must lie within 10% of that value and between
the 95% bounds on a90.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthgen.job import parse_recipe
from synthgen.validate.detectors import parse_detectors
from synthgen.validate.study import validate
from synthgen.validate.sweep import parse_sweep

from .conftest import small_recipe

T = 10  # pixels


@pytest.mark.gl
@pytest.mark.slow
def test_estimated_a90_of_an_area_threshold_detector(tmp_path, gl, area_command):
    job = parse_recipe(small_recipe(size=96))
    spec = parse_sweep("bulge.radius=1.5:12:12")
    detectors = parse_detectors([area_command], [T])
    result = validate(job, [spec], detectors, tmp_path / "report", per_size=10, good=3)
    label = detectors[0].label
    rows = [r for r in result["rows"] if r["sweep"] == spec.key]
    assert len(rows) == 120
    # The detector saw what the study recorded: a hit exactly when the area reaches T.
    assert all(r["hit"] == (r["mask_area_px"] >= T) for r in rows)
    assert all(r["mask_area_px"] > 0 and r["attempts"] >= 1 for r in rows)
    size = np.array([r["size"] for r in rows])
    area = np.array([r["mask_area_px"] for r in rows], dtype=float)
    big = size >= 5.0
    k = area[big] / size[big] ** 2
    true_a90 = math.sqrt(T / float(np.quantile(k, 0.1)))
    fit = result["fits"][label][spec.key]
    assert fit["status"] == "ok"
    assert abs(fit["a90"] - true_a90) / true_a90 < 0.10, (fit["a90"], true_a90)
    assert fit["a90_lower"] <= true_a90 <= fit["a90_95"], (fit, true_a90)
    # Good parts have no mask, so no area and no false call.
    assert result["false_calls"][label]["false_calls"] == 0
