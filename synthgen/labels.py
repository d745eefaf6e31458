"""Pixel masks → the labels dataset formats store: boxes, areas, COCO RLE, polygons, components.

Every function takes a (H, W) bool mask in image pixels (row = y down, column = x right) and
uses one frame, the COCO one: a pixel (r, c) is the unit square [c, c + 1] × [r, r + 1], so
x, y = 0, 0 is the top-left corner of the top-left pixel. A box is [x, y, w, h] in pixels
(a single pixel at (r, c) is [c, r, 1, 1]); polygon vertices lie on pixel corners, and
a pixel belongs to a polygon when its centre (c + 0.5, r + 0.5) lies inside.

Pure numpy; pycocotools and OpenCV are imported inside the functions that need them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def _as_mask(mask: np.ndarray) -> np.ndarray:
    """The (H, W) bool view of `mask`; a clear ValueError for any other shape."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be a 2-D (H, W) array, got shape {mask.shape}")
    return mask.astype(bool, copy=False)


def area(mask: np.ndarray) -> int:
    """Number of pixels in `mask`.

    Args:
        mask: (H, W) bool.

    Returns:
        The area in pixels (0 for an empty mask).
    """
    return int(np.count_nonzero(_as_mask(mask)))


def bbox(mask: np.ndarray) -> list[int]:
    """Tight bounding box of `mask` in the COCO convention.

    Args:
        mask: (H, W) bool.

    Returns:
        [x, y, w, h] in pixels: x, y the top-left corner of the top-left pixel of the mask,
        w, h its extent (a single pixel at (r, c) gives [c, r, 1, 1]); [0, 0, 0, 0] when
        the mask is empty.
    """
    mask = _as_mask(mask)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return [0, 0, 0, 0]
    cols = np.flatnonzero(mask.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed run-length encoding of `mask` (pycocotools.mask.encode).

    Args:
        mask: (H, W) bool.

    Returns:
        {"size": [H, W], "counts": str}, JSON-ready; pycocotools decodes it as it is.
    """
    from pycocotools import mask as mask_utils

    mask = _as_mask(mask)
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Inverse of `rle_encode`.

    Args:
        rle: {"size": [H, W], "counts": str or bytes} (compressed COCO RLE).

    Returns:
        (H, W) bool mask.
    """
    from pycocotools import mask as mask_utils

    counts = rle["counts"]
    counts = counts.encode("ascii") if isinstance(counts, str) else counts
    return mask_utils.decode({"size": list(rle["size"]), "counts": counts}).astype(bool)


def components(mask: np.ndarray, connectivity: int = 8) -> list[np.ndarray]:
    """Connected components of `mask`.

    Args:
        mask: (H, W) bool.
        connectivity: 8 (pixels touching at a corner belong together, as in `polygons`)
            or 4.

    Returns:
        One (H, W) bool mask per component, ordered by their first pixel in raster order
        (row by row, left to right); [] for an empty mask.
    """
    import cv2

    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    mask = _as_mask(mask)
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=connectivity)
    if n <= 1:
        return []
    flat = labels.ravel()
    ids, first = np.unique(flat, return_index=True)
    order = [int(i) for i, _ in sorted(zip(ids, first, strict=True), key=lambda t: t[1]) if i]
    return [labels == i for i in order]


def _clean_ring(points: np.ndarray) -> np.ndarray:
    """Drop repeated vertices and straight-through collinear vertices of a closed ring.

    Args:
        points: (N, 2) float, a closed polygon (the last vertex joins the first).

    Returns:
        (M, 2) float, M <= N, the same outline.
    """
    pts = [p for i, p in enumerate(points) if i == 0 or not np.array_equal(p, points[i - 1])]
    changed = True
    while changed and len(pts) >= 3:
        changed = False
        if np.array_equal(pts[0], pts[-1]):
            pts.pop()
            changed = True
            continue
        for i in range(len(pts)):
            a, b, c = pts[i - 1], pts[i], pts[(i + 1) % len(pts)]
            u, v = b - a, c - b
            if u[0] * v[1] - u[1] * v[0] == 0 and float(np.dot(u, v)) > 0:
                del pts[i]
                changed = True
                break
    return np.array(pts, dtype=np.float64).reshape(-1, 2)


def polygons(mask: np.ndarray, tolerance: float = 0.0) -> list[np.ndarray]:
    """Outer outlines of `mask`, one closed polygon per 8-connected component.

    The outline follows pixel edges exactly (vertices on pixel corners): it is traced with
    cv2.findContours (RETR_EXTERNAL, CHAIN_APPROX_SIMPLE) on the mask upsampled 2×, where
    every contour pixel lies next to a corner of an original pixel. Rasterising an outline
    with `rasterize_polygons` gives back its component exactly, holes filled (outer contours
    only). Two pixels that touch only at a corner share one outline through that corner.

    Args:
        mask: (H, W) bool.
        tolerance: Douglas-Peucker simplification tolerance in pixels (cv2.approxPolyDP);
            0 keeps the exact staircase outline.

    Returns:
        Polygons as (N, 2) float64 arrays of (x, y) vertices in pixels (COCO frame, see the
        module docstring), N >= 3, not repeating the first vertex at the end; ordered by the
        top-left of each component (raster order). Degenerate outlines are dropped.
    """
    import cv2

    mask = _as_mask(mask)
    x0, y0, w, h = bbox(mask)
    if w == 0:
        return []
    crop = mask[y0 : y0 + h, x0 : x0 + w].astype(np.uint8)
    up = np.kron(crop, np.ones((2, 2), dtype=np.uint8))
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour in contours:
        p = contour.reshape(-1, 2).astype(np.int64)
        # A contour pixel of the 2× mask at even (odd) coordinate lies on the near (far)
        # side of its original pixel: map it to that pixel corner.
        ring = _clean_ring(((p + (p % 2)) // 2).astype(np.float64))
        if tolerance > 0 and len(ring) > 3:
            approx = cv2.approxPolyDP(ring.astype(np.float32).reshape(-1, 1, 2), tolerance, True)
            ring = _clean_ring(approx.reshape(-1, 2).astype(np.float64))
        if len(ring) >= 3:
            out.append(ring + np.array([x0, y0], dtype=np.float64))
    out.sort(key=lambda r: (float(r[:, 1].min()), float(r[r[:, 1] == r[:, 1].min(), 0].min())))
    return out


def rasterize_polygons(polys: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """Fill polygons in the COCO frame: a pixel is in when its centre is inside (even-odd).

    The exact inverse of `polygons` for masks without holes. Unlike cv2.fillPoly and PIL
    (which also fill pixels the outline merely touches), the rule is half-open, so
    an outline on pixel edges does not grow by a pixel on its right and bottom.

    Args:
        polys: polygons as (N, 2) arrays of (x, y) vertices in pixels.
        height, width: output size in pixels.

    Returns:
        (height, width) bool, the union of the polygons' interiors.
    """
    out = np.zeros((height, width), dtype=bool)
    yc = np.arange(height) + 0.5
    xc = np.arange(width) + 0.5
    for poly in polys:
        p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if len(p) < 3:
            continue
        a, b = p, np.roll(p, -1, axis=0)
        # Edge i crosses the scanline at y when min(y) <= y < max(y) (half-open).
        lo, hi = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
        crosses = (lo[None, :] <= yc[:, None]) & (yc[:, None] < hi[None, :])  # (H, E)
        dy = np.where(b[:, 1] == a[:, 1], 1.0, b[:, 1] - a[:, 1])
        t = (yc[:, None] - a[None, :, 1]) / dy[None, :]
        x = a[None, :, 0] + t * (b[None, :, 0] - a[None, :, 0])  # (H, E)
        inside = np.zeros((height, width), dtype=bool)
        for r in np.flatnonzero(crosses.any(axis=1)):
            xs = np.sort(x[r, crosses[r]])
            counts = np.searchsorted(xs, xc, side="right")  # crossings left of each centre
            inside[r] = counts % 2 == 1
        out |= inside
    return out


def visible_instances(instances: Iterable[Any]) -> list[Any]:
    """The instances that show at least one pixel: `visible` and a non-empty mask.

    An instance flagged visible with an empty mask (for example after a crop in the
    augmentation) is left out with a warning: it has no box, polygon or area to write.

    Args:
        instances: objects with `visible` (bool), `mask` ((H, W) bool), `defect_type` and
            `instance` attributes (synthgen.writers.base.Instance).

    Returns:
        The shown instances, in their given order.
    """
    shown = []
    for inst in instances:
        if not inst.visible:
            continue
        if not np.any(inst.mask):
            log.warning(
                "defect instance %d (%s) is flagged visible but its mask is empty; "
                "writing it as not visible",
                inst.instance,
                inst.defect_type,
            )
            continue
        shown.append(inst)
    return shown


def check_aligned(rgb: np.ndarray, masks: Iterable[np.ndarray]) -> tuple[int, int]:
    """Check that an image and its masks have matching sizes.

    Args:
        rgb: (H, W, 3) uint8 image.
        masks: (H, W) masks.

    Returns:
        (H, W).

    Raises:
        ValueError: naming the shape that does not fit.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"an image must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    for mask in masks:
        if np.shape(mask) != rgb.shape[:2]:
            raise ValueError(
                f"a mask of shape {np.shape(mask)} does not match its image {rgb.shape[:2]}"
            )
    return int(rgb.shape[0]), int(rgb.shape[1])
