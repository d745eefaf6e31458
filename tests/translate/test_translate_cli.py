"""synthgen translate train | apply | eval, end to end on tiny data (the sub-app directly)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from synthgen.cli.translate import translate_app

runner = CliRunner()


@pytest.mark.slow
def test_train_apply_eval_end_to_end(domains, tmp_path):
    good, bad = domains
    run = tmp_path / "run"
    args = ["train", "--good", str(good), "--defective", str(bad), "-o", str(run),
            "--size", "32", "--ngf", "4", "--blocks", "1", "--epochs", "1",
            "--decay-epochs", "0", "--iters-per-epoch", "2", "--device", "cpu",
            "--defect-type", "blob"]
    result = runner.invoke(translate_app, args)
    assert result.exit_code == 0, result.output
    assert (run / "last.pt").is_file()
    again = runner.invoke(translate_app, args)
    assert again.exit_code == 2 and "--resume" in again.output
    out = tmp_path / "fake"
    result = runner.invoke(translate_app, ["apply", str(run), "--good", str(good), "-o",
                                           str(out), "--n", "3", "--format", "mvtec,coco",
                                           "--threshold", "0.3", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 3
    metrics = tmp_path / "metrics.json"
    result = runner.invoke(translate_app, ["eval", "--real", str(bad), "--fake", str(bad),
                                           "--train", str(bad), "--proxy-seed", "0",
                                           "--size", "32", "-o", str(metrics)])
    assert result.exit_code == 0, result.output
    data = json.loads(metrics.read_text())
    assert data["extractor"].startswith("proxy") and data["fid"] == pytest.approx(0, abs=1e-4)
    assert data["lpips_nearest_train"] == pytest.approx(0, abs=1e-6)


def test_plain_losses_train_without_masks(domains, tmp_path):
    good, _ = domains
    result = runner.invoke(translate_app, [
        "train", "--good", str(good), "--defective", str(good), "-o", str(tmp_path / "r"),
        "--size", "32", "--ngf", "4", "--blocks", "1", "--epochs", "1", "--decay-epochs",
        "0", "--iters-per-epoch", "1", "--losses", "plain", "--device", "cpu"])
    assert result.exit_code == 0, result.output


def test_clear_errors(domains, tmp_path):
    good, bad = domains
    result = runner.invoke(translate_app, ["train", "--good", str(good), "--defective",
                                           str(bad), "-o", str(tmp_path), "--losses", "gan"])
    assert result.exit_code == 2 and "expected a preset" in result.output
    result = runner.invoke(translate_app, ["eval", "--real", str(bad), "--fake", str(bad)])
    assert result.exit_code == 2 and "--inception-weights" in result.output
    result = runner.invoke(translate_app, ["apply", str(tmp_path / "none"), "--good",
                                           str(good), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "does not exist" in result.output
