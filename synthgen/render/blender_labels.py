"""The exact label pass without OpenGL: face ids and depth per pixel centre by ray casting.

Blender has no label pass that gives one exact triangle per pixel (Cycles' passes are
filtered and averaged over samples), so the Blender backend casts one ray through each pixel
centre against a `mathutils.bvhtree.BVHTree` of each part's own triangles (mm, object frame)
and keeps the nearest hit: the same quantity as the pyrender backend's label pass (the face
covering the pixel centre and its distance along the camera's -Z axis), with the same camera
model (`Camera.pixel_rays`). `masks.defect_masks` / `placement.placed_masks` then apply the
one geometric mask rule to these images.

`mathutils` ships with the `bpy` module and inside a running Blender; it needs no GPU or
OpenGL context. Only the pixels inside the projection of each part's bounding box are cast.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from mathutils import Vector
from mathutils.bvhtree import BVHTree

from synthgen.part import Part
from synthgen.scene.model import Camera

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class RayLabels:
    """Label images of one or more parts.

    Attributes:
        face_id: (H, W) uint32, (offset of the part +) face index + 1 of the triangle hit
            through each pixel centre; 0 = background. Row 0 is the top of the image.
        depth: (H, W) float32 mm along the camera's -Z axis; 0 = background.
    """

    face_id: np.ndarray
    depth: np.ndarray


def build_tree(part: Part) -> BVHTree:
    """A BVH of the part's triangles in its object frame (mm); polygon i is face i."""
    vertices = np.asarray(part.mesh.vertices, dtype=np.float64).tolist()
    faces = np.asarray(part.mesh.faces, dtype=np.int64).tolist()
    return BVHTree.FromPolygons(vertices, faces, all_triangles=True)


def _window(camera: Camera, part: Part, pose: np.ndarray) -> tuple[slice, slice]:
    """Pixel rows and columns that can see the part: its projected bounding box (+1 px).

    The whole image when a corner of the box lies behind the camera's near plane.
    """
    low, high = np.asarray(part.mesh.bounds, dtype=np.float64)
    corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1])
                        for z in (low[2], high[2])])
    world = corners @ pose[:3, :3].T + pose[:3, 3]
    uv, depth = camera.project(world)
    if np.any(depth <= camera.znear * 0.5) or not np.all(np.isfinite(uv)):
        return slice(0, camera.height), slice(0, camera.width)
    c0, r0 = np.floor(uv.min(axis=0)).astype(int) - 1
    c1, r1 = np.ceil(uv.max(axis=0)).astype(int) + 1
    rows = slice(int(np.clip(r0, 0, camera.height)), int(np.clip(r1, 0, camera.height)))
    cols = slice(int(np.clip(c0, 0, camera.width)), int(np.clip(c1, 0, camera.width)))
    return rows, cols


def _cast(
    tree: BVHTree, camera: Camera, pose: np.ndarray, rows: slice, cols: slice
) -> tuple[np.ndarray, np.ndarray]:
    """Cast the window's pixel-centre rays at one part.

    Returns:
        face (h, w) int64 face index (-1 = miss) and depth (h, w) float64 mm along -Z
        (inf = miss), for the pixels of the window.
    """
    camera_to_object = np.linalg.inv(np.asarray(pose, dtype=np.float64)) @ camera.pose
    rays = camera.pixel_rays()[rows, cols]  # (h, w, 3), camera frame, z = -1
    h, w = rays.shape[:2]
    directions = rays.reshape(-1, 3) @ camera_to_object[:3, :3].T
    origin = Vector(camera_to_object[:3, 3].tolist())
    reach = camera.zfar * float(np.linalg.norm(directions, axis=1).max()) * 2.0
    cast = tree.ray_cast
    hits = [cast(origin, Vector(d), reach) for d in directions.tolist()]
    face = np.fromiter((-1 if hit[2] is None else hit[2] for hit in hits), np.int64, len(hits))
    points = np.array([hit[0] if hit[0] is not None else (0.0, 0.0, 0.0) for hit in hits],
                      dtype=np.float64).reshape(-1, 3)
    object_to_camera = np.linalg.inv(camera_to_object)
    depth = -(points @ object_to_camera[2, :3] + object_to_camera[2, 3])
    miss = (face < 0) | (depth < camera.znear) | (depth > camera.zfar)
    face[miss] = -1
    depth[miss] = np.inf
    return face.reshape(h, w), depth.reshape(h, w)


def ray_labels(
    camera: Camera,
    parts: Sequence[Part],
    poses: Sequence[np.ndarray],
    trees: Sequence[BVHTree] | None = None,
) -> RayLabels:
    """Label images of several parts seen together (the nearest surface wins).

    Part k's face i is written as `offset_k + i + 1`, offset_k being the face count of the
    parts before it (as `placement.offsets` counts them).

    Args:
        camera: the camera (its pose, field of view, size and clip distances).
        parts: the parts, meshes in mm in their object frames.
        poses: (4, 4) object → world, mm, one per part.
        trees: BVHs of the parts (`build_tree`), built here when None.

    Returns:
        The label images (see `RayLabels`).
    """
    height, width = camera.height, camera.width
    best_depth = np.full((height, width), np.inf)
    best_face = np.zeros((height, width), dtype=np.uint32)
    offset = 0
    for k, (part, pose) in enumerate(zip(parts, poses, strict=True)):
        pose = np.asarray(pose, dtype=np.float64)
        tree = build_tree(part) if trees is None else trees[k]
        rows, cols = _window(camera, part, pose)
        if rows.stop > rows.start and cols.stop > cols.start:
            face, depth = _cast(tree, camera, pose, rows, cols)
            nearer = depth < best_depth[rows, cols]
            best_depth[rows, cols] = np.where(nearer, depth, best_depth[rows, cols])
            best_face[rows, cols] = np.where(nearer, face + 1 + offset, best_face[rows, cols])
        offset += len(part.mesh.faces)
    seen = np.isfinite(best_depth)
    depth = np.where(seen, best_depth, 0.0).astype(np.float32)
    return RayLabels(face_id=np.where(seen, best_face, 0).astype(np.uint32), depth=depth)
