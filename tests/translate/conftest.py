"""Tiny unpaired data (good tiles, tiles with a dark blob + mask) and a tiny trained run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

try:  # the translator needs synthgen[torch]; without it these tests are not collected
    import torch  # noqa: F401
    import torchvision  # noqa: F401
except ImportError:
    collect_ignore_glob = ["test_*.py"]

SIZE = 40


def _tile(rng: np.random.Generator) -> np.ndarray:
    base = rng.integers(110, 150)
    noise = rng.normal(0, 6, (SIZE, SIZE))
    grey = np.clip(base + noise, 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def make_domains(root: Path, n_good: int = 6, n_bad: int = 4, seed: int = 0) -> tuple[Path, Path]:
    """root/good/*.jpg and root/bad/*.jpg with same-stem .png masks (the magnetic tile layout).

    Returns:
        (good folder, defective folder).
    """
    rng = np.random.default_rng(seed)
    good, bad = root / "good", root / "bad"
    good.mkdir(parents=True)
    bad.mkdir(parents=True)
    for k in range(n_good):
        Image.fromarray(_tile(rng)).save(good / f"g{k}.jpg", quality=95)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    for k in range(n_bad):
        rgb = _tile(rng)
        r, c = rng.integers(10, SIZE - 10, size=2)
        mask = (rows - r) ** 2 + (cols - c) ** 2 <= 25
        rgb[mask] = 30
        Image.fromarray(rgb).save(bad / f"b{k}.jpg", quality=95)
        Image.fromarray(mask.astype(np.uint8) * 255).save(bad / f"b{k}.png")
    return good, bad


def _tiny_config(**kw):
    from synthgen.translate.model import TranslatorConfig

    return TranslatorConfig(size=32, load_size=36, ngf=4, ndf=4, n_blocks=1, pool_size=4,
                            **kw)


@pytest.fixture(scope="session")
def tiny_config():
    """A factory of tiny translator settings (32 px crops, 4 filters, 1 residual block)."""
    return _tiny_config


@pytest.fixture(scope="session")
def domains(tmp_path_factory) -> tuple[Path, Path]:
    return make_domains(tmp_path_factory.mktemp("domains"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, domains) -> Path:
    """A translator trained for 2 epochs of 3 iterations on the tiny domains."""
    import torch

    from synthgen.translate.data import read_domain
    from synthgen.translate.train import Schedule, train_translator

    run = tmp_path_factory.mktemp("run") / "tiny"
    good, bad = domains
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # session fixtures run before the autouse one below
    try:
        train_translator(read_domain(good, "good"), read_domain(bad, "defective"), run,
                         _tiny_config(defect_type="blob"),
                         Schedule(epochs=1, decay_epochs=1, iters_per_epoch=3), device="cpu")
    finally:
        torch.set_num_threads(before)
    return run


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: far faster than two on a shared, loaded 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
