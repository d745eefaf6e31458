"""Colour helpers: sRGB transfer, HSV, and light colour from a colour temperature."""

from __future__ import annotations

import colorsys

import numpy as np

# Blackbody colours in sRGB (0-255), normalised so the brightest channel is 255; values
# from published blackbody colour tables (CIE 1964 10° observer, D65 white point).
_BLACKBODY_K = np.array([1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500,
                         7000, 8000, 9000, 10000, 12000])
_BLACKBODY_SRGB = np.array([
    [255, 109, 0], [255, 137, 18], [255, 161, 72], [255, 180, 107], [255, 196, 137],
    [255, 209, 163], [255, 219, 186], [255, 228, 206], [255, 236, 224], [255, 243, 239],
    [255, 249, 253], [245, 243, 255], [227, 233, 255], [214, 225, 255], [204, 219, 255],
    [191, 211, 255],
], dtype=np.float64) / 255.0


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] → linear RGB in [0, 1] (IEC 61966-2-1)."""
    c = np.asarray(srgb, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear RGB in [0, 1] → sRGB-encoded values in [0, 1]."""
    c = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1.0 / 2.4) - 0.055)


def temperature_to_rgb(kelvin: float) -> tuple[float, float, float]:
    """Linear RGB colour (max channel 1) of a blackbody at `kelvin` (1500-12000 K)."""
    k = float(np.clip(kelvin, _BLACKBODY_K[0], _BLACKBODY_K[-1]))
    srgb = [np.interp(k, _BLACKBODY_K, _BLACKBODY_SRGB[:, i]) for i in range(3)]
    linear = srgb_to_linear(np.array(srgb))
    linear = linear / linear.max()
    return (float(linear[0]), float(linear[1]), float(linear[2]))


def hsv_to_srgb(hue_deg: float, saturation: float, value: float) -> tuple[float, float, float]:
    """HSV (hue in degrees, saturation and value in [0, 1]) → sRGB in [0, 1]."""
    r, g, b = colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, saturation, value)
    return (r, g, b)
