"""Image augmentation that keeps every mask aligned: the only module importing albumentations.

`augment(rgb, masks, spec, rng)` applies one preset of transforms to a rendered image and to
all of its masks (the object mask and one mask per defect instance, stacked as (N, H, W)):

- ``"none"``: the identity (unless `geometric` is set, then only the geometric part).
- ``"sensor"``: camera effects: mild Gaussian or motion blur, Gaussian noise, gamma, JPEG.
- ``"factory"``: line lighting: smooth uneven illumination, brightness/contrast,
  colour-temperature-like RGB shift, hue/saturation/value.

Presets are photometric, so masks are unchanged by construction. With ``geometric=True`` a
small affine warp (shift, scale, rotation) and random flips run first, applied identically
to the image (bilinear) and every mask (nearest neighbour, replicated border), so masks stay
exact, binary and aligned with the pixels they label.

Every magnitude is drawn here from the caller's `rng` (and scaled by `strength`); the
albumentations transforms get fixed values, and their own RNG (noise fields, the corner of a
corner illumination) is seeded from one `rng` draw. So the same `rng` state gives
byte-identical outputs (for a given albumentations version: 2.0.8 is the tested one), and
`params` records the seed plus every sampled value.

albumentations and cv2 are imported lazily: importing this module imports neither.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from synthgen.config import StrictModel
from synthgen.errors import MissingDependency

logger = logging.getLogger(__name__)

# Keys of albumentations' applied params that are bulky or redundant in a manifest.
_DROPPED_APPLIED_KEYS = frozenset(
    {"shape", "output_shape", "bbox_matrix", "kernel", "fill", "fill_mask"}
)
_MAX_RECORDED_ARRAY = 16  # arrays with more elements (noise fields) are not recorded


class AugmentSpec(StrictModel):
    """Which augmentation to apply to each sample.

    Attributes:
        preset: "none" (identity), "sensor" (camera effects) or "factory" (line lighting).
        geometric: Also apply a small random affine warp and flips to the image and masks.
        strength: In [0, 2]; multiplies every magnitude, and optional steps fire with their
            probability times min(strength, 1). 0 is the exact identity, 1 the documented
            magnitudes.
    """

    preset: Literal["none", "sensor", "factory"] = "none"
    geometric: bool = False
    strength: float = Field(default=1.0, ge=0.0, le=2.0, allow_inf_nan=False)


@dataclass(frozen=True)
class _Step:
    """One albumentations transform (p=1, fixed values) and the values it was built with."""

    transform: Any
    values: dict[str, Any]


def augment(
    rgb: np.ndarray, masks: np.ndarray, spec: AugmentSpec, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Augment one image and all of its masks together.

    Pass the object mask as one of `masks` (e.g. stacked first) to keep it aligned too.

    Args:
        rgb: (H, W, 3) uint8 image.
        masks: (N, H, W) bool masks, N >= 0 (object mask and/or defect instance masks).
        spec: The augmentation to apply.
        rng: Source of every random draw; the same state gives byte-identical outputs.

    Returns:
        (rgb, masks, params): new (H, W, 3) uint8 and (N, H, W) bool arrays, and a JSON-ready
        dict with "preset", "geometric", "strength", "seed" (albumentations' seed) and
        "transforms" (one dict per applied transform: "name", the values sampled here and
        "applied", albumentations' own applied parameters). The identity spec
        (preset "none", geometric False) returns copies and ``{"preset": "none"}``
        without drawing from `rng`.

    Raises:
        ValueError: If the arrays have the wrong shape or dtype.
        MissingDependency: If albumentations is not installed.
    """
    _check_inputs(rgb, masks)
    if spec.preset == "none" and not spec.geometric:
        return rgb.copy(), masks.copy(), {"preset": "none"}
    albu = _import_albumentations()
    seed = int(rng.integers(0, 2**32 - 1))
    strength = float(spec.strength)
    steps: list[_Step] = []
    if spec.geometric:
        steps += _geometric_steps(albu, rng, strength)
    if spec.preset != "none":
        steps += _PRESETS[spec.preset](albu, rng, strength)
    params: dict[str, Any] = {
        "preset": spec.preset,
        "geometric": spec.geometric,
        "strength": strength,
        "seed": seed,
        "transforms": [],
    }
    if not steps:
        return rgb.copy(), masks.copy(), params
    out_rgb, out_masks, applied = _run(albu, steps, rgb, masks, seed)
    params["transforms"] = _records(steps, applied)
    logger.debug("augmented with %s", [t["name"] for t in params["transforms"]])
    return out_rgb, out_masks, params


def _check_inputs(rgb: np.ndarray, masks: np.ndarray) -> None:
    """Raise ValueError unless rgb is (H, W, 3) uint8 and masks (N, H, W) bool."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if masks.ndim != 3 or masks.shape[1:] != rgb.shape[:2] or masks.dtype != np.bool_:
        raise ValueError(
            f"masks must be (N, {rgb.shape[0]}, {rgb.shape[1]}) bool, "
            f"got {masks.shape} {masks.dtype}"
        )


def _import_albumentations() -> Any:
    """The albumentations module, or MissingDependency naming the extra to install."""
    try:
        import albumentations
    except ImportError as error:
        raise MissingDependency("augmentation", "augment", "albumentations") from error
    return albumentations


def _run(
    albu: Any, steps: list[_Step], rgb: np.ndarray, masks: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, dict[str, Any]]]]:
    """Apply `steps` with albumentations seeded by `seed`; masks only if some step moves pixels.

    Returns:
        The (H, W, 3) uint8 image, (N, H, W) bool masks and albumentations'
        applied_transforms list of (name, params).
    """
    compose = albu.Compose(
        [step.transform for step in steps], seed=seed, save_applied_params=True, strict=True
    )
    moves_pixels = any(isinstance(step.transform, albu.DualTransform) for step in steps)
    if moves_pixels and len(masks):
        out = compose(image=rgb, masks=masks.view(np.uint8))
        out_masks = np.asarray(out["masks"]) > 0
    else:
        out = compose(image=rgb)
        out_masks = masks.copy()
    out_rgb = np.ascontiguousarray(out["image"], dtype=np.uint8)
    return out_rgb, out_masks, out["applied_transforms"]


def _records(
    steps: list[_Step], applied: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """One JSON-ready dict per step: its name, sampled values and albumentations' params."""
    if [type(s.transform).__name__ for s in steps] != [name for name, _ in applied]:
        raise RuntimeError(f"albumentations applied {[n for n, _ in applied]}, expected all")
    records = []
    for step, (name, raw) in zip(steps, applied, strict=True):
        extra = {k: _jsonable(v) for k, v in raw.items() if k not in _DROPPED_APPLIED_KEYS}
        extra = {k: v for k, v in extra.items() if v is not None}
        records.append({"name": name, **_jsonable(step.values), "applied": extra})
    return records


def _jsonable(value: Any) -> Any:
    """Plain Python (float, int, str, bool, list, dict) or None for what is too big to keep."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= _MAX_RECORDED_ARRAY else None
    if isinstance(value, list | tuple):
        items = [_jsonable(v) for v in value]
        return None if any(item is None for item in items) else items
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return repr(value)


def _fires(rng: np.random.Generator, probability: float, strength: float) -> bool:
    """Whether an optional step runs: probability scaled by min(strength, 1); one draw."""
    return bool(rng.random() < probability * min(strength, 1.0))


def _sensor_steps(albu: Any, rng: np.random.Generator, s: float) -> list[_Step]:
    """Camera effects in optical order: blur, sensor noise, gamma, JPEG (s = strength).

    At s = 1: blur with probability 0.5 (half Gaussian sigma 0.4-1.0 px, half motion blur of
    3 or 5 px at a random angle); Gaussian noise std 0.008-0.03 of full scale (2-8 grey
    levels); gamma in [1/1.2, 1.2]; JPEG quality 60-90 with probability 0.5.
    """
    blur_fires, motion = _fires(rng, 0.5, s), bool(rng.random() < 0.5)
    sigma = s * rng.uniform(0.4, 1.0)
    length = 3 + 2 * round(s * rng.uniform(0.0, 1.0))
    angle = float(rng.uniform(0.0, 180.0))
    std = s * rng.uniform(0.008, 0.03)
    gamma = math.exp(s * rng.uniform(-math.log(1.2), math.log(1.2)))
    jpeg_fires = _fires(rng, 0.5, s)
    quality = int(np.clip(round(100 - s * rng.uniform(10.0, 40.0)), 5, 100))
    steps = []
    if blur_fires and motion:
        steps.append(_Step(
            albu.MotionBlur(
                blur_limit=(length, length), angle_range=(angle, angle),
                direction_range=(0.0, 0.0), allow_shifted=False, p=1.0,
            ),
            {"length_px": length, "angle_deg": angle},
        ))
    elif blur_fires:
        steps.append(_Step(
            albu.GaussianBlur(blur_limit=0, sigma_limit=(sigma, sigma), p=1.0),
            {"sigma_px": sigma},
        ))
    if std > 0:
        steps.append(_Step(
            albu.GaussNoise(std_range=(std, std), mean_range=(0.0, 0.0), per_channel=True, p=1.0),
            {"std": std},
        ))
    if gamma != 1.0:
        steps.append(_Step(
            albu.RandomGamma(gamma_limit=(100 * gamma, 100 * gamma), p=1.0), {"gamma": gamma}
        ))
    if jpeg_fires and quality < 100:
        steps.append(_Step(
            albu.ImageCompression(quality_range=(quality, quality), p=1.0), {"quality": quality}
        ))
    return steps


def _factory_steps(albu: Any, rng: np.random.Generator, s: float) -> list[_Step]:
    """Line lighting and colour: uneven illumination, brightness/contrast, white balance, HSV.

    At s = 1: with probability 0.5 a smooth multiplicative illumination pattern (linear
    gradient, corner falloff or broad Gaussian spot, brighten or darken by 5-15 %, capped at
    albumentations' 20 %); brightness and contrast each +-0.15; colour temperature as an RGB
    shift of +t on red and -t on blue with t in +-12 grey levels plus a green tint of +-4;
    hue +-5 (OpenCV hue units, half degrees), saturation +-15, value +-10.
    Hard-edged shadows and CLAHE are left out on purpose: their sharp edges and mottling
    look like scratches or stains that no defect mask labels.
    """
    light_fires = _fires(rng, 0.5, s)
    mode = ("linear", "corner", "gaussian")[int(rng.integers(0, 3))]
    effect = "darken" if rng.random() < 0.5 else "brighten"
    intensity = min(s * rng.uniform(0.05, 0.15), 0.2)
    angle = float(rng.uniform(0.0, 360.0))
    center = float(rng.uniform(0.2, 0.8))  # albumentations draws x and y from one range
    sigma = float(rng.uniform(0.4, 1.0))
    brightness, contrast = s * rng.uniform(-0.15, 0.15, size=2)
    temperature, tint = s * rng.uniform(-12.0, 12.0), s * rng.uniform(-4.0, 4.0)
    hue, sat, val = s * rng.uniform([-5.0, -15.0, -10.0], [5.0, 15.0, 10.0])
    red, green = temperature / 255.0, tint / 255.0
    steps = []
    if light_fires and intensity >= 0.01:
        steps.append(_Step(
            albu.Illumination(
                mode=mode, intensity_range=(intensity, intensity), effect_type=effect,
                angle_range=(angle, angle), center_range=(center, center),
                sigma_range=(sigma, sigma), p=1.0,
            ),
            {"mode": mode, "effect": effect, "intensity": intensity, "angle_deg": angle,
             "center": center, "sigma": sigma},
        ))
    if s > 0:
        steps += [
            _Step(
                albu.RandomBrightnessContrast(
                    brightness_limit=(brightness, brightness),
                    contrast_limit=(contrast, contrast), p=1.0,
                ),
                {"brightness": brightness, "contrast": contrast},
            ),
            _Step(
                albu.RGBShift(  # limits as fractions of 255: 2.0.8 rescales any |v| > 1
                    r_shift_limit=(red, red), g_shift_limit=(green, green),
                    b_shift_limit=(-red, -red), p=1.0,
                ),
                {"temperature_shift": temperature, "tint": tint},
            ),
            _Step(
                albu.HueSaturationValue(
                    hue_shift_limit=(hue, hue), sat_shift_limit=(sat, sat),
                    val_shift_limit=(val, val), p=1.0,
                ),
                {"hue": hue, "saturation": sat, "value": val},
            ),
        ]
    return steps


def _geometric_steps(albu: Any, rng: np.random.Generator, s: float) -> list[_Step]:
    """A small affine warp then flips, applied to the image and every mask alike.

    At s = 1: shift +-4 % of the image size per axis, scale 0.95-1.05, rotation +-8 degrees
    (bilinear for the image, nearest neighbour for masks, replicated border for both);
    horizontal and vertical flips each with probability 0.5.
    """
    import cv2

    tx, ty = s * rng.uniform(-0.04, 0.04, size=2)
    scale = 1.0 + s * rng.uniform(-0.05, 0.05)
    rotate = s * rng.uniform(-8.0, 8.0)
    hflip, vflip = _fires(rng, 0.5, s), _fires(rng, 0.5, s)
    steps = []
    if s > 0:
        steps.append(_Step(
            albu.Affine(
                translate_percent={"x": (tx, tx), "y": (ty, ty)}, scale=(scale, scale),
                rotate=(rotate, rotate), interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST, border_mode=cv2.BORDER_REPLICATE,
                p=1.0,
            ),
            {"translate": [tx, ty], "scale": scale, "rotate_deg": rotate},
        ))
    if hflip:
        steps.append(_Step(albu.HorizontalFlip(p=1.0), {}))
    if vflip:
        steps.append(_Step(albu.VerticalFlip(p=1.0), {}))
    return steps


_PRESETS = {"sensor": _sensor_steps, "factory": _factory_steps}
