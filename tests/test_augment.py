"""Augmentation: identity, photometric presets leave masks alone, geometric keeps them aligned."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from synthgen.augment import AugmentSpec, augment
from synthgen.config import validate
from synthgen.errors import ConfigError, MissingDependency

needs_albumentations = pytest.mark.skipif(
    importlib.util.find_spec("albumentations") is None, reason="albumentations not installed"
)

PRESETS = ["sensor", "factory"]
KNOWN_TRANSFORMS = {
    "GaussNoise", "GaussianBlur", "MotionBlur", "ImageCompression", "RandomGamma",
    "Illumination", "RandomBrightnessContrast", "RGBShift", "HueSaturationValue",
    "Affine", "HorizontalFlip", "VerticalFlip",
}


def _textured(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A mid-grey textured (H, W, 3) uint8 image and (2, H, W) bool masks: object, defect."""
    rng = np.random.default_rng(123)
    rgb = rng.integers(60, 200, (size, size, 3), dtype=np.uint8)
    masks = np.zeros((2, size, size), bool)
    masks[0, 10:50, 12:52] = True
    masks[1, 20:30, 25:33] = True
    return rgb, masks


def _square(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A bright square on black with its (1, H, W) mask, away from the borders."""
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[30:62, 36:60] = 255
    masks = np.zeros((1, size, size), bool)
    masks[0, 30:62, 36:60] = True
    return rgb, masks


def _run(spec: AugmentSpec, seed: int, image=None):
    rgb, masks = image if image is not None else _textured()
    return augment(rgb, masks, spec, np.random.default_rng(seed))


def test_none_is_an_exact_identity_and_draws_nothing():
    rgb, masks = _textured()
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    out_rgb, out_masks, params = augment(rgb, masks, AugmentSpec(), rng)
    assert params == {"preset": "none"}
    np.testing.assert_array_equal(out_rgb, rgb)
    np.testing.assert_array_equal(out_masks, masks)
    assert out_rgb is not rgb and out_masks is not masks
    assert rng.bit_generator.state == state


@needs_albumentations
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_photometric_presets_change_the_image_but_not_the_masks(preset, seed):
    rgb, masks = _textured()
    out_rgb, out_masks, params = _run(AugmentSpec(preset=preset), seed)
    assert out_rgb.shape == rgb.shape and out_rgb.dtype == np.uint8
    assert out_masks.dtype == np.bool_
    assert not np.array_equal(out_rgb, rgb)
    np.testing.assert_array_equal(out_masks, masks)
    assert params["transforms"], "a preset at strength 1 applies at least one transform"


@needs_albumentations
@pytest.mark.parametrize("preset", ["none", *PRESETS])
@pytest.mark.parametrize("geometric", [False, True])
def test_same_seed_is_byte_identical_and_another_seed_differs(preset, geometric):
    spec = AugmentSpec(preset=preset, geometric=geometric)
    rgb_a, masks_a, params_a = _run(spec, 7)
    rgb_b, masks_b, params_b = _run(spec, 7)
    assert rgb_a.tobytes() == rgb_b.tobytes()
    assert masks_a.tobytes() == masks_b.tobytes()
    assert json.dumps(params_a) == json.dumps(params_b)
    if preset != "none" or geometric:
        rgb_c, _, params_c = _run(spec, 8)
        assert rgb_c.tobytes() != rgb_a.tobytes()
        assert params_c["seed"] != params_a["seed"]


@needs_albumentations
@pytest.mark.parametrize("preset", ["none", "sensor"])
@pytest.mark.parametrize("seed", range(6))
def test_geometric_moves_image_and_masks_together(preset, seed):
    rgb, masks = _square()
    spec = AugmentSpec(preset=preset, geometric=True, strength=2.0)
    out_rgb, out_masks, params = _run(spec, seed, image=(rgb, masks))
    assert out_masks.dtype == np.bool_ and out_masks.shape == masks.shape
    assert not np.array_equal(out_masks, masks), "the warp should move the square"
    bright = out_rgb.mean(axis=2) > 128
    iou = (bright & out_masks[0]).sum() / (bright | out_masks[0]).sum()
    assert iou >= 0.9, f"mask no longer covers the bright pixels (IoU {iou:.3f})"
    assert "Affine" in [t["name"] for t in params["transforms"]]


@needs_albumentations
@pytest.mark.parametrize("preset", PRESETS)
def test_mask_geometry_does_not_depend_on_the_photometric_preset(preset):
    # factory shadows and contrast can push the square across any fixed threshold, so its
    # alignment is checked through the masks: the same seed gives the same warp as "none".
    spec = AugmentSpec(preset=preset, geometric=True, strength=2.0)
    plain = AugmentSpec(preset="none", geometric=True, strength=2.0)
    for seed in range(4):
        _, masks, params = _run(spec, seed, image=_square())
        _, plain_masks, plain_params = _run(plain, seed, image=_square())
        np.testing.assert_array_equal(masks, plain_masks)
        assert params["transforms"][0] == plain_params["transforms"][0]


@needs_albumentations
def test_geometric_keeps_defect_masks_inside_the_object_mask():
    for seed in range(5):
        _, out_masks, _ = _run(AugmentSpec(preset="factory", geometric=True), seed)
        assert out_masks[1].any()
        assert not (out_masks[1] & ~out_masks[0]).any()
def test_zero_masks_are_accepted():
    rgb, _ = _textured()
    empty = np.zeros((0, *rgb.shape[:2]), bool)
    for geometric in (False, True):
        spec = AugmentSpec(preset="sensor", geometric=geometric)
        out_rgb, out_masks, _ = augment(rgb, empty, spec, np.random.default_rng(0))
        assert out_masks.shape == empty.shape and out_masks.dtype == np.bool_
        assert out_rgb.shape == rgb.shape


@needs_albumentations
@pytest.mark.parametrize("preset", PRESETS)
def test_params_are_json_ready_and_name_the_transforms(preset):
    names = set()
    for seed in range(10):
        _, _, params = _run(AugmentSpec(preset=preset, geometric=True), seed)
        restored = json.loads(json.dumps(params))
        assert restored["preset"] == preset and restored["geometric"] is True
        assert isinstance(restored["seed"], int)
        names |= {t["name"] for t in restored["transforms"]}
    assert names <= KNOWN_TRANSFORMS
    assert {"sensor": "GaussNoise", "factory": "RandomBrightnessContrast"}[preset] in names
    assert "Affine" in names


@needs_albumentations
@pytest.mark.parametrize("preset", PRESETS)
def test_strength_zero_is_the_identity_and_small_strength_is_close(preset):
    rgb, masks = _textured()
    out_rgb, out_masks, params = _run(AugmentSpec(preset=preset, geometric=True, strength=0), 3)
    np.testing.assert_array_equal(out_rgb, rgb)
    np.testing.assert_array_equal(out_masks, masks)
    assert params["transforms"] == []
    out_rgb, _, _ = _run(AugmentSpec(preset=preset, strength=0.05), 3)
    assert np.abs(out_rgb.astype(int) - rgb).mean() < 2.0


def test_importing_augment_does_not_import_albumentations_or_cv2():
    code = (
        "import sys, synthgen.augment\n"
        "print(','.join(m for m in ('albumentations', 'cv2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_missing_albumentations_raises_missing_dependency(monkeypatch):
    monkeypatch.setitem(sys.modules, "albumentations", None)
    rgb, masks = _textured()
    with pytest.raises(MissingDependency, match=r"synthgen\[augment\]"):
        augment(rgb, masks, AugmentSpec(preset="sensor"), np.random.default_rng(0))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"preset": "fancy"}, "preset"),
        ({"strength": 2.5}, "strength"),
        ({"strength": -0.1}, "strength"),
        ({"strength": float("nan")}, "strength"),
        ({"geometric": "sometimes"}, "geometric"),
        ({"colour": 1}, "colour: unknown key"),
    ],
)
def test_bad_spec_values_raise_config_errors_naming_the_field(data, field):
    with pytest.raises(ConfigError, match=field):
        validate(AugmentSpec, data, source="augment.")


def test_spec_is_frozen():
    spec = AugmentSpec(preset="sensor")
    with pytest.raises(ValueError):
        spec.strength = 2.0  # type: ignore[misc]


def test_bad_arrays_raise_value_errors():
    rgb, masks = _textured()
    spec = AugmentSpec(preset="sensor")
    with pytest.raises(ValueError, match="rgb must be"):
        augment(rgb.astype(np.float32), masks, spec, np.random.default_rng(0))
    with pytest.raises(ValueError, match="masks must be"):
        augment(rgb, masks.astype(np.uint8), spec, np.random.default_rng(0))
    with pytest.raises(ValueError, match="masks must be"):
        augment(rgb, masks[:, :10], spec, np.random.default_rng(0))
