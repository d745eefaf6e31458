"""Near-duplicate images in a real dataset: groups that a train/test split must keep together.

Real inspection sets often hold the same part several times (one crop photographed under
several lights, or the same frame saved twice). A random split then tests on near-copies of
training images and overstates every metric. `near_duplicate_groups` finds them and
`synthgen.detect.data.split_items(..., groups=...)` keeps each group in one part.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from synthgen.detect.data import Item, load_image

THUMBNAIL = 32
"""Side (pixels) of the grey thumbnails that are compared."""


def thumbnail(image: np.ndarray, side: int = THUMBNAIL) -> np.ndarray:
    """(side * side,) float32 of an (H, W, 3) uint8 image: grey, resized to side x side, zero
    mean and unit norm, so the dot product of two thumbnails is their normalised
    cross-correlation."""
    grey = Image.fromarray(image).convert("L").resize((side, side), Image.BILINEAR)
    flat = np.asarray(grey, dtype=np.float32).ravel()
    flat = flat - flat.mean()
    return flat / max(float(np.linalg.norm(flat)), 1e-6)


def near_duplicate_groups(items: Sequence[Item], threshold: float = 0.9,
                          same_size: bool = True) -> list[int]:
    """One group id per Item: Items whose thumbnails correlate at >= `threshold` (and, with
    `same_size`, whose images have the same pixel size) share a group, transitively.

    Ids are 0, 1, ... in order of first appearance; a unique image is a group of its own.
    O(N²) comparisons of 1024 numbers: about a second for a few thousand images.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    n = len(items)
    if n == 0:
        return []
    images = (load_image(item) for item in items)
    thumbs, sizes = zip(*((thumbnail(im), im.shape[:2] if same_size else None)
                          for im in images), strict=True)
    thumbs = np.stack(thumbs)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    similar = thumbs @ thumbs.T >= threshold
    for i, j in zip(*np.nonzero(np.triu(similar, k=1)), strict=True):
        if sizes[i] == sizes[j]:
            parent[root(int(i))] = root(int(j))
    ids: dict[int, int] = {}
    return [ids.setdefault(root(i), len(ids)) for i in range(n)]
