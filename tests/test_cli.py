"""The synthgen command line: listings, render → inspect, preview, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from synthgen.cli import app

runner = CliRunner()
SCENES = Path(__file__).resolve().parents[1] / "scenes"


def test_products_and_defects_list_every_type_with_parameters():
    products = runner.invoke(app, ["products"])
    assert products.exit_code == 0, products.output
    for name in ("bottle_cap", "capped_bottle", "hex_nut", "wheel", "cad", "notch_length"):
        assert name in products.output
    defects = runner.invoke(app, ["defects"])
    assert defects.exit_code == 0, defects.output
    for name in ("bulge", "short_notch", "scratch", "radius", "[0.05, 500.0]"):
        assert name in defects.output


@pytest.fixture()
def small_recipe(tmp_path) -> Path:
    recipe = yaml.safe_load((SCENES / "bottle_cap.yaml").read_text())
    recipe.update(samples=6, render={"size": 64})
    path = tmp_path / "cap.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.gl
def test_render_then_inspect(small_recipe, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(small_recipe), "-o", str(out), "-n", "5",
                                 "--format", "coco,yolo", "--size", "48"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "manifest.json").read_text())
    assert summary["counts"]["samples"] == 5 and summary["formats"] == ["coco", "yolo"]
    assert summary["recipe"]["render"]["size"] == 48
    assert not (out / "mvtec").exists()
    inspected = runner.invoke(app, ["inspect", str(out)])
    assert inspected.exit_code == 0, inspected.output
    assert "5 samples" in inspected.output
    assert (out / "inspect.png").stat().st_size > 1000


@pytest.mark.gl
def test_preview_writes_a_contact_sheet(small_recipe, tmp_path):
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(app, ["preview", str(small_recipe), "-o", str(sheet), "-n", "4",
                                 "--columns", "2", "--size", "64"])
    assert result.exit_code == 0, result.output
    from PIL import Image

    assert Image.open(sheet).size == (128, 2 * (64 + 14))


def test_bad_recipe_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("defects:\n  - type: bulgee\n")
    done = subprocess.run(
        [sys.executable, "-m", "synthgen.cli", "render", str(bad), "-o", str(tmp_path / "o")],
        capture_output=True, text=True,
    )
    assert done.returncode == 2
    assert "defects[0].type: 'bulgee' is not a defect type" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_shard_argument(small_recipe, tmp_path):
    result = runner.invoke(app, ["render", str(small_recipe), "-o", str(tmp_path / "o"),
                                 "--shard", "3"])
    assert result.exit_code == 2 and "I/N" in result.output
