"""Defect masks from two exact label images: the defective part's and its nominal twin's.

Pure numpy, no OpenGL, so every backend that can produce per-pixel face ids and view-space
depth (pyrender's label pass, a Blender render of index and Z passes) shares the same rule,
the one the `RenderResult` docstring states:

defect mask k = pixels whose visible face of the defective part is labelled k in
`Part.face_defect`, plus pixels where the visible surfaces of the defective and the nominal
part differ (depth differs by more than `rel_tol · depth + abs_tol`, or one of them is
background and the other is not) and the differing surface point lies within the record's
`extent` (+ `footprint_px` pixel footprints) of its `location`. Both candidate points are
tried, the defective part's visible point and the nominal part's (whichever exist): seen
through a hole, the defective part may show a far wall while the nominal surface point sits
on the hole. The nearest record wins; differing pixels near no record are dropped (they can
only be numerical noise or a record whose extent is too small, logged at debug level).
"""

from __future__ import annotations

import logging

import numpy as np

from synthgen.part import DefectRecord
from synthgen.scene.model import Camera

log = logging.getLogger(__name__)

#: Relative depth tolerance: a boolean re-triangulates unchanged planes, so the two depths of
#: one unchanged surface agree to float32 rounding (~1e-7 relative), far inside this.
REL_TOL = 1e-4
#: Absolute depth tolerance floor, mm.
ABS_TOL = 1e-3
#: Margin added to a record's extent, in pixel footprints at the point's depth.
FOOTPRINT_PX = 1.5


def _camera_points(
    rows: np.ndarray, cols: np.ndarray, depth: np.ndarray, camera: Camera
) -> np.ndarray:
    """(M, 3) camera-frame points (mm) seen through pixel centres at the given depths."""
    f = camera.focal_px
    x = (cols + 0.5 - camera.width / 2.0) / f
    y = -(rows + 0.5 - camera.height / 2.0) / f
    d = depth.astype(np.float64)
    return np.stack([x * d, y * d, -d], axis=1)


def _record_scores(
    points_cam: np.ndarray,
    depth: np.ndarray,
    present: np.ndarray,
    camera_to_object: np.ndarray,
    records: tuple[DefectRecord, ...],
    focal_px: float,
) -> np.ndarray:
    """(M, N) distance from each point to each record's location; inf where out of reach."""
    pts = points_cam @ camera_to_object[:3, :3].T + camera_to_object[:3, 3]
    locations = np.array([r.location for r in records], dtype=np.float64)
    extents = np.array([r.extent for r in records], dtype=np.float64)
    dist = np.linalg.norm(pts[:, None, :] - locations[None, :, :], axis=2)
    reach = extents[None, :] + FOOTPRINT_PX * depth.astype(np.float64)[:, None] / focal_px
    return np.where((dist <= reach) & present[:, None], dist, np.inf)


def surfaces_differ(depth_a: np.ndarray, depth_b: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels where two label images show different surfaces.

    |depth_a − depth_b| > REL_TOL · max(depth_a, depth_b) + ABS_TOL. Background has depth 0
    and a seen surface at least the camera's znear (≫ ABS_TOL), so a pixel where one image
    shows background and the other a surface always differs.

    Args:
        depth_a, depth_b: (H, W) float32 mm along the viewing axis, 0 = background.
    """
    diff = np.subtract(depth_a, depth_b)
    np.abs(diff, out=diff)
    tol = np.maximum(depth_a, depth_b)
    tol *= REL_TOL
    tol += ABS_TOL
    return diff > tol


def _bbox(mask: np.ndarray) -> tuple[slice, slice]:
    """The smallest window holding every True pixel of (H, W) `mask` (empty if none)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return slice(0, 0), slice(0, 0)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def defect_masks(
    face_def: np.ndarray,
    depth_def: np.ndarray,
    face_nom: np.ndarray | None,
    depth_nom: np.ndarray | None,
    face_defect: np.ndarray,
    records: tuple[DefectRecord, ...],
    camera: Camera,
    object_pose: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The object mask and one mask per defect record.

    Args:
        face_def, depth_def: the defective part's label images, (H, W) uint32 face id + 1
            (0 = background) and (H, W) float32 mm along the camera's -Z axis.
        face_nom, depth_nom: the same for the nominal twin; may be None when `records` is
            empty.
        face_defect: (F,) int, the defective part's per-face defect labels (0 = nominal).
        records: the defective part's records, in order.
        camera: the camera both label images were drawn with.
        object_pose: (4, 4) object → world, mm.

    Returns:
        object_mask (H, W) bool and defect_masks (N, H, W) bool, N = len(records).
    """
    height, width = face_def.shape
    hit_def = face_def > 0
    n = len(records)
    if n == 0:
        return hit_def, np.zeros((0, height, width), dtype=bool)
    if face_nom is None or depth_nom is None:
        raise ValueError("a part with defect records needs the nominal part's labels")
    hit_nom = face_nom > 0
    # Everything below happens inside the window that holds either part.
    window = _bbox(hit_def | hit_nom)
    masks = np.zeros((n, height, width), dtype=bool)
    lut = np.concatenate([[0], np.asarray(face_defect, dtype=np.int16)])
    label = lut[face_def[window]]
    masks[(slice(None), *window)] = (
        label[None, :, :] == np.arange(1, n + 1, dtype=np.int16)[:, None, None]
    )
    differ = surfaces_differ(depth_def[window], depth_nom[window]) & (label == 0)
    rows, cols = np.nonzero(differ)
    if len(rows):
        rows += window[0].start
        cols += window[1].start
        best = _attribute(rows, cols, (depth_def, depth_nom), records, camera, object_pose)
        keep = best >= 0
        masks[best[keep], rows[keep], cols[keep]] = True
        if not keep.all():
            log.debug("%d differing pixels lie near no defect record", int((~keep).sum()))
    object_mask = hit_def | (hit_nom & masks.any(axis=0))
    return object_mask, masks


def _attribute(
    rows: np.ndarray,
    cols: np.ndarray,
    depths: tuple[np.ndarray, ...],
    records: tuple[DefectRecord, ...],
    camera: Camera,
    object_pose: np.ndarray,
) -> np.ndarray:
    """Index of the nearest record within reach of each differing pixel's surface points.

    Args:
        rows, cols: (M,) pixel indices.
        depths: (H, W) float32 mm depth images (0 = background) whose points are tried.

    Returns:
        (M,) int64 record index (0-based), -1 where no record is within reach.
    """
    camera_to_object = np.linalg.inv(np.asarray(object_pose, dtype=np.float64)) @ camera.pose
    score = np.full((len(rows), len(records)), np.inf)
    for depth in depths:
        d = depth[rows, cols]
        pts = _camera_points(rows, cols, d, camera)
        np.minimum(
            score,
            _record_scores(pts, d, d > 0, camera_to_object, records, camera.focal_px),
            out=score,
        )
    best = np.argmin(score, axis=1)
    return np.where(np.isfinite(score[np.arange(len(best)), best]), best, -1)
