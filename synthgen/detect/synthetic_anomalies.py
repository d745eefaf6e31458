"""DRAEM-style synthetic anomalies: Perlin-noise masks blending in foreign texture, exact masks.

A good image I becomes I_a = (1 - M) * I + M * ((1 - beta) * I + beta * A), where M is a
thresholded Perlin-noise mask, A a foreign texture and beta in [0.1, 1] its opacity (DRAEM,
Zavrtanik et al. 2021). DRAEM took A from the DTD texture set; nothing is downloaded here, so
A is made by the project: coloured Perlin noise, stripes, checkers, or another training image,
flipped, rotated and with its channels permuted and scaled.

The mask is exact: it is the set of pixels that actually changed (by at least 1/255 in some
channel); every pixel outside it is bit-for-bit the input. `SyntheticAnomalies` wraps any
dataset of good images (e.g. `DefectDataset`) into (image, clean, mask, label) training
samples, so any model can train on them (DRAEM does by default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

TEXTURES = ("perlin", "stripes", "checker", "image")
MIN_CHANGE = 1.0 / 255.0
"""A pixel counts as changed when some channel moved by at least this much (images in [0, 1])."""


def perlin_noise(shape: tuple[int, int], res: tuple[int, int], rng: np.random.Generator
                 ) -> np.ndarray:
    """2D gradient (Perlin) noise.

    Args:
        shape: (H, W) pixels.
        res: (ry, rx) lattice cells along each axis (>= 1).
        rng: draws the lattice gradients.

    Returns:
        (H, W) float32, roughly in [-0.7, 0.7].
    """
    h, w = shape
    ry, rx = max(1, int(res[0])), max(1, int(res[1]))
    angles = rng.uniform(0.0, 2.0 * np.pi, (ry + 1, rx + 1))
    grads = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    y = np.linspace(0.0, ry, h, endpoint=False)
    x = np.linspace(0.0, rx, w, endpoint=False)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    y0, x0 = yy.astype(int), xx.astype(int)
    fy, fx = yy - y0, xx - x0

    def corner(dy: int, dx: int) -> np.ndarray:
        g = grads[y0 + dy, x0 + dx]
        return g[..., 0] * (fy - dy) + g[..., 1] * (fx - dx)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6 - 15) + 10)

    uy, ux = fade(fy), fade(fx)
    top = corner(0, 0) * (1 - ux) + corner(0, 1) * ux
    bottom = corner(1, 0) * (1 - ux) + corner(1, 1) * ux
    return (top * (1 - uy) + bottom * uy).astype(np.float32)


def anomaly_mask(shape: tuple[int, int], rng: np.random.Generator, threshold: float = 0.5,
                 min_fraction: float = 0.005, tries: int = 8) -> np.ndarray:
    """A thresholded Perlin-noise mask with at least `min_fraction` of the pixels set.

    The lattice resolution along each axis is 2**k, k drawn from 0..5 (capped so cells are at
    least 4 px), as in DRAEM; noise is normalised to [-1, 1] before thresholding.

    Returns:
        (H, W) bool.
    """
    h, w = shape
    kmax = max(1, int(np.log2(max(2, min(h, w) // 4))))
    mask = np.zeros(shape, dtype=bool)
    for _ in range(tries):
        res = (2 ** int(rng.integers(0, min(6, kmax + 1))),
               2 ** int(rng.integers(0, min(6, kmax + 1))))
        noise = perlin_noise(shape, res, rng)
        noise = noise / (np.abs(noise).max() + 1e-12)
        if rng.random() < 0.5:
            noise = noise.T if h == w else noise
        mask = noise > threshold * float(rng.uniform(0.6, 1.0))
        if mask.mean() >= min_fraction:
            return mask
    return mask


def foreign_texture(shape: tuple[int, int], rng: np.random.Generator,
                    other: Callable[[np.random.Generator], np.ndarray] | None = None,
                    kinds: tuple[str, ...] = TEXTURES) -> np.ndarray:
    """A texture to blend in: (H, W, 3) float32 in [0, 1].

    Args:
        other: returns another (H, W, 3) image of the training set, for kind "image"
            (left out of the draw when None).
        kinds: the texture kinds to draw from (see TEXTURES).
    """
    h, w = shape
    choices = [k for k in kinds if k != "image" or other is not None]
    kind = choices[int(rng.integers(len(choices)))]
    if kind == "image":
        tex = np.asarray(other(rng), dtype=np.float32)  # type: ignore[misc]
        tex = np.rot90(tex, int(rng.integers(4)))[: h, : w] if h == w else tex
        if rng.random() < 0.5:
            tex = tex[:, ::-1]
        tex = tex[..., rng.permutation(3)] * rng.uniform(0.5, 1.5, 3) + rng.uniform(-0.2, 0.2)
    elif kind == "perlin":
        tex = np.stack([perlin_noise(shape, (int(rng.integers(2, 17)),) * 2, rng)
                        for _ in range(3)], axis=-1) + 0.5
        tex = tex * rng.uniform(0.5, 1.5, 3) + rng.uniform(-0.3, 0.3, 3)
    else:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        period = float(rng.uniform(3, max(4.0, min(h, w) / 4)))
        angle = float(rng.uniform(0, np.pi))
        u = (xx * np.cos(angle) + yy * np.sin(angle)) / period
        v = (-xx * np.sin(angle) + yy * np.cos(angle)) / period
        pattern = (np.floor(u) % 2) if kind == "stripes" else ((np.floor(u) + np.floor(v)) % 2)
        a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        tex = a * pattern[..., None] + b * (1 - pattern[..., None])
    return np.clip(np.ascontiguousarray(tex), 0.0, 1.0).astype(np.float32)


def synthesize(image: np.ndarray, rng: np.random.Generator,
               other: Callable[[np.random.Generator], np.ndarray] | None = None,
               beta: tuple[float, float] = (0.1, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic anomaly on `image`.

    Args:
        image: (H, W, 3) float32 in [0, 1].
        other: source of other training images for the "image" texture kind.
        beta: range of the texture opacity.

    A grey image (three equal channels) gets a grey texture, so colour alone never gives the
    anomaly away.

    Returns:
        (anomalous image (H, W, 3) float32, mask (H, W) bool). The mask is exactly the set of
        pixels that differ from `image`; the others are copied unchanged.
    """
    image = np.asarray(image, dtype=np.float32)
    h, w = image.shape[:2]
    candidate = anomaly_mask((h, w), rng)
    texture = foreign_texture((h, w), rng, other)
    if np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1],
                                                                        image[..., 2]):
        texture = np.repeat(texture.mean(axis=-1, keepdims=True), 3, axis=-1)  # grey data
    b = np.float32(rng.uniform(*beta))
    blended = (1 - b) * image + b * texture
    changed = candidate & (np.abs(blended - image).max(axis=-1) >= MIN_CHANGE)
    out = image.copy()
    out[changed] = blended[changed]
    return out, changed


class SyntheticAnomalies:
    """A torch Dataset wrapping good-image samples into synthetic-anomaly training samples.

    Args:
        base: a dataset whose samples are dicts with "image" (3, S, S) float32 in [0, 1]
            (e.g. DefectDataset of good items); its other fields are replaced.
        probability: share of samples that get an anomaly (the rest stay good, empty mask).
        seed: sample i of epoch e draws from `np.random.default_rng([seed, e, i])`.

    A sample holds image (3, S, S) float32 (anomalous or not), clean (3, S, S) the input
    image, mask (1, S, S) float32 exact, label () int64 (1 when the mask is not empty),
    boxes (N, 4) xyxy px of the mask's bounding box (class 0), classes, index.
    """

    def __init__(self, base: Any, probability: float = 0.5, seed: int = 0) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        self.base, self.probability, self.seed, self.epoch = base, float(probability), seed, 0
        self.class_names = ("synthetic",)

    def __len__(self) -> int:
        return len(self.base)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose anomalies (and the base's flips) the next samples draw."""
        self.epoch = int(epoch)
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def _other(self, rng: np.random.Generator) -> np.ndarray:
        sample = self.base[int(rng.integers(len(self.base)))]
        return sample["image"].permute(1, 2, 0).numpy()

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        sample = self.base[index]
        clean = sample["image"]
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        mask = np.zeros(clean.shape[-2:], dtype=bool)
        image = clean
        if rng.random() < self.probability:
            out, mask = synthesize(clean.permute(1, 2, 0).numpy(), rng, self._other)
            image = torch.from_numpy(out).permute(2, 0, 1).contiguous()
        boxes = np.zeros((0, 4), np.float32)
        if mask.any():
            ys, xs = np.nonzero(mask)
            boxes = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        return {
            "image": image,
            "clean": clean,
            "mask": torch.from_numpy(mask.astype(np.float32))[None],
            "label": torch.tensor(int(mask.any()), dtype=torch.int64),
            "boxes": torch.from_numpy(boxes),
            "classes": torch.zeros(len(boxes), dtype=torch.int64),
            "index": int(index),
        }
