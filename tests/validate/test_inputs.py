"""Sweep specs and detectors: parsing, checking, scoring; every bad input caught early."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from synthgen.errors import ConfigError
from synthgen.validate.detectors import DetectorError, parse_detector, parse_detectors
from synthgen.validate.sweep import (
    check_sweep,
    good_index,
    parse_sweep,
    sweepable,
    view_index,
)


def test_parse_sweep_and_its_grid():
    spec = parse_sweep("bulge.height=0.05:2.0:20")
    assert (spec.defect, spec.param, spec.steps, spec.spacing) == ("bulge", "height", 20, "log")
    sizes = spec.sizes
    assert sizes[0] == pytest.approx(0.05) and sizes[-1] == pytest.approx(2.0)
    np.testing.assert_allclose(np.diff(np.log(sizes)), np.log(40) / 19)
    lin = parse_sweep("short_notch.length=1:4:4:lin")
    np.testing.assert_allclose(lin.sizes, [1, 2, 3, 4])
    assert parse_sweep(lin.text) == lin


@pytest.mark.parametrize(("text", "words"), [
    ("bulge.height", "expected DEFECT.PARAM=LOW:HIGH:N"),
    ("bulge=0.1:1:3", "expected DEFECT.PARAM=LOW:HIGH:N"),
    ("bulge.height=a:1:3", "must be numbers"),
    ("bulge.height=0.1:1:2.5", "must be numbers"),
    ("bulge.height=0:1:3", "0 < LOW <= HIGH"),
    ("bulge.height=2:1:3", "0 < LOW <= HIGH"),
    ("bulge.height=1:1:3", "LOW < HIGH"),
    ("bulge.height=0.1:1:0", "N must be in"),
    ("bulge.height=0.1:1:3:cubic", "expected DEFECT.PARAM=LOW:HIGH:N"),
])
def test_bad_sweep_syntax(text, words):
    with pytest.raises(ConfigError, match="--sweep") as info:
        parse_sweep(text)
    assert words in str(info.value)


@pytest.mark.parametrize(("text", "words"), [
    ("bulgee.height=0.1:1:3", "'bulgee' is not a defect type; known: "),
    ("bulge.depth=0.1:1:3", "bulge has no size parameter 'depth'; sweepable: radius, height"),
    ("short_notch.min_remaining=0.1:1:3", "sweepable: length"),
    ("bulge.height=0.0001:1:3", "must lie within [0.001, 100.0]"),
    ("bulge.radius=1:600:3", "must lie within [0.05, 500.0]"),
])
def test_sweeps_the_defect_refuses(small_job, text, words):
    with pytest.raises(ConfigError) as info:
        check_sweep(small_job, parse_sweep(text))
    assert words in str(info.value) and text in str(info.value)


def test_sweepable_parameters_and_sample_indexes():
    assert sweepable("bulge") == ["radius", "height"]
    assert sweepable("short_notch") == ["length"]
    indexes = {view_index(s, i, k, a) for s in range(2) for i in range(3) for k in range(4)
               for a in range(5)} | {good_index(m) for m in range(50)}
    assert len(indexes) == 2 * 3 * 4 * 5 + 50


def test_callable_detector_scores_images(mean_scorer):
    detector = parse_detector(f"{mean_scorer}:score", 100.0)
    assert detector.kind == "callable" and detector.threshold == 100.0
    images = [np.full((8, 8, 3), v, dtype=np.uint8) for v in (10, 200)]
    scores, maps = detector.score([Path("a.png"), Path("b.png")], images)
    np.testing.assert_allclose(scores, [10.0, 200.0])
    assert maps is None


def test_command_detector_reads_paths_and_prints_scores(tmp_path):
    script = tmp_path / "length.py"
    script.write_text("import sys\nfor line in sys.stdin:\n    print(len(line.strip()))\n")
    detector = parse_detector(f"cmd:{sys.executable} {script}", 3.0)
    paths = [tmp_path / "a.png", tmp_path / "bbbb.png"]
    scores, _ = detector.score(paths)
    np.testing.assert_allclose(scores, [len(str(p.resolve())) for p in paths])
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nsys.stdin.read()\nprint('nan?')\nsys.exit(0)\n")
    with pytest.raises(DetectorError, match="one number per line"):
        parse_detector(f"cmd:{sys.executable} {broken}", 1.0).score(paths)
    short = tmp_path / "short.py"
    short.write_text("import sys\nsys.stdin.read()\nprint(1.0)\n")
    with pytest.raises(DetectorError, match="1 scores for 2 images"):
        parse_detector(f"cmd:{sys.executable} {short}", 1.0).score(paths)


def _fake_run(folder: Path, checkpoint: bool = True, thresholds=None) -> Path:
    folder.mkdir()
    run = {"model": "unet", "kind": "segmenter", "size": 64,
           "thresholds": {"image": 0.4} if thresholds is None else thresholds}
    (folder / "run.json").write_text(json.dumps(run))
    if checkpoint:
        (folder / "best.pt").write_bytes(b"")
    return folder


def test_run_folder_takes_the_runs_threshold(tmp_path):
    detector = parse_detector(str(_fake_run(tmp_path / "run")))
    assert detector.kind == "run" and detector.threshold == 0.4
    assert detector.label == "run (unet)"


@pytest.mark.parametrize(("make", "threshold", "words"), [
    (lambda t: "missing.py:score", 1.0, "'missing.py' does not exist"),
    (lambda t: f"{t / 'scorer.py'}:nope", 1.0, "has no function 'nope'; it defines: score"),
    (lambda t: f"{t / 'scorer.py'}", 1.0, "as path.py:function"),
    (lambda t: f"{t / 'scorer.py'}:score", None, "needs a --threshold"),
    (lambda t: "cmd:no-such-program-xyz --flag", 1.0, "program 'no-such-program-xyz'"),
    (lambda t: f"cmd:{sys.executable} {t / 'gone.py'}", 1.0, "gone.py' does not exist"),
    (lambda t: "cmd:", 1.0, "no command after cmd:"),
    (lambda t: f"cmd:{sys.executable}", None, "needs a --threshold"),
    (lambda t: str(t / "no_run"), None, "no such run folder"),
    (lambda t: str(t / "empty"), None, "not a training run (no run.json)"),
    (lambda t: str(_fake_run(t / "nock", checkpoint=False)), None, "has no checkpoint"),
    (lambda t: str(_fake_run(t / "nothr", thresholds={})), None, "has no image threshold"),
])
def test_bad_detectors(tmp_path, mean_scorer, make, threshold, words):
    (tmp_path / "empty").mkdir()
    spec = make(tmp_path)
    with pytest.raises(ConfigError) as info:
        parse_detector(spec, threshold)
    assert words in str(info.value) and "--detector" in str(info.value)


def test_thresholds_are_paired_with_the_detectors_that_need_them(tmp_path, mean_scorer):
    run = str(_fake_run(tmp_path / "run"))
    specs = [f"{mean_scorer}:score", run, f"{mean_scorer}:score"]
    detectors = parse_detectors(specs, [5.0, 7.0])
    assert [d.threshold for d in detectors] == [5.0, 0.4, 7.0]
    assert len({d.label for d in detectors}) == 3  # repeated labels made unique
    assert [d.threshold for d in parse_detectors(specs, [9.0])] == [9.0, 0.4, 9.0]
    with pytest.raises(ConfigError, match="3 --threshold values for 2"):
        parse_detectors(specs, [1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="at least one --detector"):
        parse_detectors([], [])


def test_a_size_the_part_cannot_take_is_refused_before_rendering(small_job):
    from synthgen.job import build_variants
    from synthgen.validate.sweep import check_applicable

    nominal = build_variants(small_job)[0]  # notch 6 mm long, at least 0.5 mm must remain
    check_applicable(small_job, parse_sweep("short_notch.length=0.5:4:3"), nominal)
    with pytest.raises(ConfigError, match=r"at length=5\.9 the defect cannot go on"):
        check_applicable(small_job, parse_sweep("short_notch.length=0.5:5.9:3"), nominal)
