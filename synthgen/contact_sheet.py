"""Contact sheets: a grid of rendered samples with their defect masks outlined, to look at."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

# One outline colour per defect type (RGB); unknown types fall back to white.
DEFECT_COLORS = {
    "bulge": (255, 60, 60),
    "dent": (60, 160, 255),
    "short_notch": (255, 220, 0),
    "chip": (255, 130, 0),
    "hole": (200, 60, 255),
    "crack": (0, 255, 120),
    "scratch": (0, 230, 230),
}


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """(H, W) bool boundary pixels of a (H, W) bool mask, `width` pixels thick."""
    if not mask.any():
        return mask.copy()
    inner = ndimage.binary_erosion(mask, iterations=width, border_value=0)
    return mask & ~inner


def annotate(rgb: np.ndarray, masks: np.ndarray, types: Sequence[str]) -> np.ndarray:
    """Draw each defect mask's outline on a copy of `rgb`.

    Args:
        rgb: (H, W, 3) uint8.
        masks: (N, H, W) bool, one per defect.
        types: N defect type names (they pick the colours).

    Returns:
        (H, W, 3) uint8.
    """
    out = rgb.copy()
    for mask, kind in zip(masks, types, strict=True):
        out[outline(mask)] = DEFECT_COLORS.get(kind, (255, 255, 255))
    return out


def contact_sheet(
    tiles: Sequence[np.ndarray], captions: Sequence[str], columns: int = 4
) -> Image.Image:
    """A grid of equally sized (H, W, 3) uint8 tiles with a caption line under each."""
    if not tiles:
        raise ValueError("contact_sheet needs at least one tile")
    height, width = tiles[0].shape[:2]
    caption_h = 14
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * width, rows * (height + caption_h)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, (tile, caption) in enumerate(zip(tiles, captions, strict=True)):
        x, y = (i % columns) * width, (i // columns) * (height + caption_h)
        sheet.paste(Image.fromarray(tile), (x, y))
        draw.text((x + 3, y + height + 1), caption[: width // 6], fill=(230, 230, 230))
    return sheet
