"""Training runs end to end through the CLI: train → evaluate → predict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from synthgen.cli import app

pytestmark = [pytest.mark.gl, pytest.mark.slow]
runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from synthgen.generate import generate
    from synthgen.job import parse_recipe

    job = parse_recipe({
        "samples": 30, "product": {"type": "bottle_cap"}, "good_fraction": 0.5,
        "defects": [{"type": "bulge", "radius": [3, 5], "height": [0.8, 1.5]}],
        "render": {"size": 64}, "output": {"formats": ["coco"]},
    })
    out = tmp_path_factory.mktemp("train") / "data"
    generate(job, out)
    return out


@pytest.mark.parametrize(("model", "size"), [("ae_l2", 64), ("resnet18", 64), ("ssdlite", 128)])
def test_train_evaluate_predict(dataset, tmp_path, model, size):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", model, "--data", str(dataset), "-o", str(run),
                                 "--epochs", "1", "--size", str(size), "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    info = json.loads((run / "run.json").read_text())
    split = {k: set(v) for k, v in info["split"].items()}
    assert not (split["train"] & split["test"]) and not (split["val"] & split["test"])
    assert sum(len(v) for v in split.values()) == 30 and "image" in info["thresholds"]

    result = runner.invoke(app, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["images"] == len(split["test"])
    assert 0.0 <= metrics["at_threshold"]["accuracy"] <= 1.0
    if model == "ae_l2":
        assert (run / "maps.png").exists() and "pixel" in info["thresholds"]
        assert 0.0 <= metrics["pixel_auroc"] <= 1.0 and "box_f1" in metrics
    if model == "ssdlite":
        assert 0.0 <= metrics["mAP"] <= 1.0

    images = sorted(split["test"])[:2]
    result = runner.invoke(app, ["predict", str(run), *images, "-o", str(tmp_path / "pred")])
    assert result.exit_code == 0, result.output
    predictions = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    assert [p["image"] for p in predictions["predictions"]] == images


def test_evaluate_needs_a_run(tmp_path):
    result = runner.invoke(app, ["evaluate", str(tmp_path)])
    assert result.exit_code != 0
    assert "not a training run" in str(result.exception)


def test_a_run_trained_through_a_symlinked_folder_evaluates(tmp_path, dataset):
    """run.json stores the resolved dataset path; the split must use the same paths."""
    from synthgen.detect.run import evaluate_run, train_run

    link = tmp_path / "link"
    link.symlink_to(dataset, target_is_directory=True)
    run = train_run("ae_l2", link, tmp_path / "run", epochs=1, size=32, batch_size=4)
    assert run["split"]["test"]
    assert evaluate_run(tmp_path / "run")["images"] == len(run["split"]["test"])
