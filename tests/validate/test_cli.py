"""`synthgen validate` end to end on a tiny sweep, and bad input refused before rendering."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import synthgen.cli.validate  # noqa: F401  (registers the command)
from synthgen.cli import app
from synthgen.validate.pod import false_call_rate, fit_pod

runner = CliRunner()


@pytest.fixture
def no_render(monkeypatch):
    """Fails the test if anything starts making samples."""
    from synthgen import generate

    def refuse(*args, **kwargs):
        raise AssertionError("rendering started")

    monkeypatch.setattr(generate.JobRunner, "__init__", refuse)


@pytest.mark.parametrize(("args", "words"), [
    (["--sweep", "bulge.depth=0.1:1:3"], "bulge has no size parameter 'depth'"),
    (["--sweep", "bulge.height=0.0001:1:3"], "must lie within [0.001, 100.0]"),
    (["--sweep", "bulgee.height=0.1:1:3"], "'bulgee' is not a defect type"),
    (["--sweep", "bulge.height=0.1-1-3"], "expected DEFECT.PARAM=LOW:HIGH:N"),
    (["--detector", "nowhere/run"], "no such run folder"),
    (["--detector", "gone.py:score"], "'gone.py' does not exist"),
    (["--no-threshold"], "needs a --threshold"),
])
def test_bad_input_fails_before_rendering(tmp_path, recipe_file, mean_scorer, no_render,
                                          args, words):
    out = tmp_path / "report"
    sweep = ["--sweep", "bulge.height=0.5:1.5:2"]
    detector = ["--detector", f"{mean_scorer}:score"]
    threshold = ["--threshold", "100"]
    if "--sweep" in args:
        sweep = args
    elif "--detector" in args:
        detector = args
    else:
        threshold = []
    result = runner.invoke(app, ["validate", str(recipe_file), "-o", str(out), *sweep,
                                 *detector, *threshold])
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())
    assert not out.exists()


def test_a_non_empty_report_folder_is_refused(tmp_path, recipe_file, mean_scorer, no_render):
    out = tmp_path / "report"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["validate", str(recipe_file), "-o", str(out), "--sweep",
                                 "bulge.height=0.5:1.5:2", "--detector",
                                 f"{mean_scorer}:score", "--threshold", "1"])
    assert result.exit_code == 2 and "must be new or empty" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.gl
@pytest.mark.slow
def test_validate_end_to_end_with_two_detectors(tmp_path, recipe_file, mean_scorer, gl,
                                                area_command):
    out = tmp_path / "report"
    result = runner.invoke(app, [
        "validate", str(recipe_file), "-o", str(out), "--sweep", "bulge.radius=2:10:3",
        "--sweep", "bulge.height=0.5:1.5:2:lin", "--per-size", "3", "--good", "3",
        "--detector", f"{mean_scorer}:score", "--detector", area_command,
        "--threshold", "60", "--threshold", "12"])
    assert result.exit_code == 0, result.output
    for name in ("report.html", "pod.png", "result.json", "views.jsonl",
                 "examples_bulge_radius.png", "examples_bulge_height.png"):
        assert (out / name).is_file(), name
    assert len(list((out / "images").glob("*.png"))) == 3 * 3 + 2 * 3 + 3
    assert len(list((out / "masks").glob("*.png"))) == 3 * 3 + 2 * 3
    data = json.loads((out / "result.json").read_text())
    assert [d["threshold"] for d in data["detectors"]] == [60.0, 12.0]
    assert len(data["rows"]) == 2 * (3 * 3 + 2 * 3 + 3)
    for detector in data["detectors"]:
        label = detector["label"]
        mine = [r for r in data["rows"] if r["detector"] == label]
        assert all(r["hit"] == (r["score"] >= detector["threshold"]) for r in mine)
        for sweep in data["sweeps"]:
            rows = [r for r in mine if r["sweep"] == sweep["spec"].split(":")[0].split("=")[0]]
            assert len(rows) == sweep["steps"] * 3
            assert all(r["mask_area_px"] > 0 for r in rows)  # every defect was visible
            refit = fit_pod([r["size"] for r in rows], [r["hit"] for r in rows]).as_dict()
            stored = data["fits"][label][f"{sweep['defect']}.{sweep['param']}"]
            assert json.loads(json.dumps(refit)) == stored
        good = [r["hit"] for r in mine if r["sweep"] is None]
        assert data["false_calls"][label] == false_call_rate(good)
    # Reproducible: the recipe, seed, sweeps and every view's sample index are recorded.
    assert data["seed"] == 3 and data["recipe"]["render"]["size"] == 64
    assert "--seed 3 --size 64 --sweep bulge.radius=2:10:3:log" in data["command"]
    assert {s["spec"] for s in data["sweeps"]} == {"bulge.radius=2:10:3:log",
                                                  "bulge.height=0.5:1.5:2:lin"}
    views = [json.loads(line) for line in (out / "views.jsonl").read_text().splitlines()]
    assert len({v["index"] for v in views}) == len(views)
    assert all(v["attempts"] == len(v["redraws"]) + 1 for v in views)
    # The page is self-contained: every image inline, each a valid PNG.
    page = (out / "report.html").read_text()
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)
    for source in sources:
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "pod.png").stat().st_size < 300_000
    areas = np.array([v["mask_area_px"] for v in views if v["sweep"] == "bulge.radius"])
    assert areas.min() > 0
