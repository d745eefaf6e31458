"""A tiny training run on the CPU: losses improve, checkpoints resume exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from synthgen.errors import ConfigError
from synthgen.translate.data import read_domain
from synthgen.translate.train import Schedule, load_translator_checkpoint, train_translator


def test_tiny_run_writes_its_folder(tiny_run):
    assert (tiny_run / "last.pt").is_file() and (tiny_run / "translator.json").is_file()
    history = json.loads((tiny_run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[0]["lr"] == pytest.approx(2e-4) and history[1]["lr"] < 2e-4
    grid = np.asarray(Image.open(tiny_run / "samples" / "epoch_002.png"))
    assert grid.shape[0] == 3 * 32  # good images, translations, masks
    ckpt = load_translator_checkpoint(tiny_run / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == 6


@pytest.mark.slow
def test_tiny_training_improves_losses(domains, tmp_path, tiny_config):
    good, bad = domains
    result = train_translator(
        read_domain(good, "good"), read_domain(bad, "defective"), tmp_path / "run",
        tiny_config(), Schedule(epochs=3, decay_epochs=0, iters_per_epoch=8, lr=1e-3),
        device="cpu")
    first, last = result["history"][0], result["history"][-1]
    # D_C consistency dominates at the start; it and the total must fall.
    assert last["consistency"] < 0.8 * first["consistency"]
    assert last["G"] < 0.8 * first["G"]
    assert last["D_C"] < first["D_C"]


@pytest.mark.slow
def test_resume_continues_exactly(domains, tmp_path, tiny_config):
    """2 + 2 iterations with a stop in the middle of an epoch == 4 straight iterations."""
    good, bad = read_domain(domains[0], "good"), read_domain(domains[1], "defective")
    schedule = Schedule(epochs=1, decay_epochs=1, iters_per_epoch=2)
    straight = train_translator(good, bad, tmp_path / "a", tiny_config(), schedule,
                                device="cpu", seed=3)
    assert straight["global_step"] == 4
    stopped = train_translator(good, bad, tmp_path / "b", tiny_config(), schedule,
                               device="cpu", seed=3, max_seconds=0.0)
    assert stopped["stopped_early"] and stopped["global_step"] == 1
    with pytest.raises(ConfigError, match="--resume"):
        train_translator(good, bad, tmp_path / "b", tiny_config(), schedule, device="cpu")
    mid = load_translator_checkpoint(tmp_path / "b" / "last.pt")
    assert (mid["epoch"], mid["step"]) == (0, 1)
    assert mid["opt_g"]["state"][0]["step"].item() == 1.0
    resumed = train_translator(good, bad, tmp_path / "b", None, schedule, device="cpu",
                               seed=3, resume=True)
    assert resumed["global_step"] == 4 and resumed["epoch"] == 2
    a = load_translator_checkpoint(tmp_path / "a" / "last.pt")
    b = load_translator_checkpoint(tmp_path / "b" / "last.pt")
    for key, value in a["model"].items():
        assert torch.allclose(value, b["model"][key], atol=1e-6), key
    assert a["opt_g"]["state"][0]["step"] == b["opt_g"]["state"][0]["step"] == 4
    assert torch.allclose(a["opt_d"]["state"][0]["exp_avg"], b["opt_d"]["state"][0]["exp_avg"],
                          atol=1e-6)


def test_schedule_is_constant_then_linear():
    s = Schedule(epochs=100, decay_epochs=200)
    assert s.lr_at(0) == s.lr_at(99) == 2e-4
    assert s.lr_at(100) < 2e-4 and s.lr_at(299) < s.lr_at(200) < s.lr_at(100)
    assert s.lr_at(299) == pytest.approx(2e-4 / 201)


def test_mask_losses_need_masks(domains, tmp_path, tiny_config):
    good = read_domain(domains[0], "good")
    unmasked = read_domain(domains[0], "defective")  # plain images, no masks
    with pytest.raises(ConfigError, match="need masks"):
        train_translator(good, unmasked, tmp_path / "r", tiny_config(), Schedule(1, 0),
                         device="cpu")
