"""Tiny synthetic images and batches for the model tests (imports torch: import it after
`pytest.importorskip("torch")`)."""

from __future__ import annotations

import math

import numpy as np
import torch


def clean_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """'Good' images (B, 3, S, S) in [0, 1]: a shifted sine texture with a random tint."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    base = 0.35 + 0.08 * torch.sin(math.pi * xx / 4) * torch.sin(math.pi * yy / 4)
    shifts = torch.randint(0, 8, (n, 2), generator=g).tolist()
    images = torch.stack([torch.roll(base, (a, b), (0, 1)) for a, b in shifts])
    return images[:, None] + 0.1 * torch.rand(n, 3, 1, 1, generator=g)


def with_square(
    images: torch.Tensor, side: int = 6, seed: int = 1, margin: int = 2
) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
    """Copies of `images` with a bright square 'defect' at a random place in each (at least
    `margin` px from the border).

    Returns:
        images (B, 3, S, S), masks (B, 1, S, S) float {0, 1}, and per image its (1, 4) xyxy box.
    """
    g = torch.Generator().manual_seed(seed)
    out = images.clone()
    masks = torch.zeros(len(images), 1, *images.shape[-2:])
    boxes = []
    size = images.shape[-1]
    for i in range(len(out)):
        y, x = torch.randint(margin, size - side - margin, (2,), generator=g).tolist()
        out[i, :, y : y + side, x : x + side] = 1.0
        masks[i, :, y : y + side, x : x + side] = 1.0
        boxes.append(np.array([[x, y, x + side, y + side]]))
    return out, masks, boxes


def batch_of(images: torch.Tensor, label: int = 0, masks: torch.Tensor | None = None) -> dict:
    """A batch in the trainer's contract (no boxes)."""
    n, _, h, w = images.shape
    return {
        "image": images,
        "mask": masks if masks is not None else torch.zeros(n, 1, h, w),
        "label": torch.full((n,), label, dtype=torch.int64),
        "boxes": [torch.zeros(0, 4) for _ in range(n)],
        "classes": [torch.zeros(0, dtype=torch.int64) for _ in range(n)],
        "index": torch.arange(n),
    }
