"""DRAEM's anomaly synthesis: Perlin masks, textures, exact masks, the dataset wrapper."""

from __future__ import annotations

import numpy as np
import pytest

from synthgen.detect.synthetic_anomalies import (
    MIN_CHANGE,
    TEXTURES,
    anomaly_mask,
    foreign_texture,
    perlin_noise,
    synthesize,
)


def _image(seed: int = 0, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 0.8, (size, size, 3)).astype(np.float32)


def test_perlin_noise_is_smooth_bounded_and_seeded():
    a = perlin_noise((32, 48), (2, 3), np.random.default_rng(1))
    b = perlin_noise((32, 48), (2, 3), np.random.default_rng(1))
    assert a.shape == (32, 48) and a.dtype == np.float32
    assert np.array_equal(a, b) and np.abs(a).max() <= 1.0 and a.std() > 0.01
    # Neighbouring pixels differ far less than the range: gradient noise, not white noise.
    assert np.abs(np.diff(a, axis=1)).mean() < 0.1 * (a.max() - a.min())


def test_anomaly_masks_cover_some_but_not_all_pixels():
    for seed in range(5):
        mask = anomaly_mask((32, 32), np.random.default_rng(seed))
        assert mask.dtype == bool and 0.005 <= mask.mean() < 0.9


@pytest.mark.parametrize("kind", TEXTURES)
def test_every_texture_kind_is_an_image_in_range(kind):
    other = lambda rng: _image(7)  # noqa: E731
    tex = foreign_texture((32, 32), np.random.default_rng(0), other, kinds=(kind,))
    assert tex.shape == (32, 32, 3) and tex.dtype == np.float32
    assert 0.0 <= tex.min() and tex.max() <= 1.0 and tex.std() > 0.0


@pytest.mark.parametrize("seed", range(8))
def test_the_mask_is_exactly_the_set_of_changed_pixels(seed):
    image = _image(seed)
    out, mask = synthesize(image, np.random.default_rng(seed), other=lambda r: _image(99))
    changed = (out != image).any(axis=-1)
    assert np.array_equal(mask, changed)
    assert np.array_equal(out[~mask], image[~mask])  # bit for bit outside the mask
    assert mask.any() and (np.abs(out - image).max(axis=-1)[mask] >= MIN_CHANGE).all()
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_synthesis_is_reproducible_from_the_seed():
    image = _image(3)
    a = synthesize(image, np.random.default_rng(5))
    b = synthesize(image, np.random.default_rng(5))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_the_dataset_wrapper_turns_good_images_into_labelled_samples():
    torch = pytest.importorskip("torch")
    from synthgen.detect.synthetic_anomalies import SyntheticAnomalies

    base = [{"image": torch.from_numpy(_image(i)).permute(2, 0, 1).contiguous()}
            for i in range(12)]
    data = SyntheticAnomalies(base, probability=0.5, seed=0)
    samples = [data[i] for i in range(len(data))]
    labels = [int(s["label"]) for s in samples]
    assert 0 < sum(labels) < len(labels)
    for s, b in zip(samples, base, strict=True):
        changed = (s["image"] != s["clean"]).any(0)
        assert torch.equal(changed.float(), s["mask"][0])
        assert torch.equal(s["clean"], b["image"]) and int(s["label"]) == int(changed.any())
        assert len(s["boxes"]) == int(s["label"])
    again = SyntheticAnomalies(base, probability=0.5, seed=0)
    assert torch.equal(again[3]["image"], samples[3]["image"])
    again.set_epoch(1)  # a new epoch draws new anomalies
    assert any(not torch.equal(again[i]["mask"], samples[i]["mask"]) for i in range(12))
    with pytest.raises(ValueError, match="probability"):
        SyntheticAnomalies(base, probability=1.5)


def test_grey_images_get_grey_anomalies():
    grey = np.repeat(_image(2)[..., :1], 3, axis=-1)
    for seed in range(4):
        out, mask = synthesize(grey, np.random.default_rng(seed), other=lambda r: _image(9))
        assert mask.any() and np.array_equal(out[..., 0], out[..., 2])
