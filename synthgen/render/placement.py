"""Several objects in one view: each with its own part, nominal twin and pose.

A backend draws every object's mesh into one exact label image, face ids offset per object
(object k's face i is `offset_k + i + 1`), so depth testing settles who occludes whom. These
pure functions split such an image per object and apply the single-object mask rule
(`masks.defect_masks`) to each, so an object's defect is labelled only where that object is
the visible surface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from synthgen.part import Part
from synthgen.render.masks import defect_masks
from synthgen.scene.model import Camera, Scene

if TYPE_CHECKING:
    from synthgen.render.result import Renderer, RenderResult


@dataclass(frozen=True, eq=False)
class Placed:
    """One object of a scene.

    Attributes:
        part: the (possibly defective) part drawn.
        nominal: its defect-free twin (the part itself when it has no defect).
        pose: (4, 4) object → world, mm.
    """

    part: Part
    nominal: Part
    pose: np.ndarray


def offsets(parts: Sequence[Part]) -> np.ndarray:
    """(K + 1,) int64: the face-id offset of each object, then the total face count."""
    counts = [len(p.mesh.faces) for p in parts]
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def split_labels(
    face_id: np.ndarray, depth: np.ndarray, starts: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per object: (H, W) uint32 local face id + 1 (0 where another object or nothing shows)
    and (H, W) float32 depth (0 there too).

    Args:
        face_id: (H, W) uint32 combined ids (0 = background).
        depth: (H, W) float32 mm.
        starts: `offsets` of the objects drawn.
    """
    ids = face_id.astype(np.int64)
    owner = np.searchsorted(starts, ids - 1, side="right") - 1  # -1 for background
    owner[face_id == 0] = -1
    out = []
    for k in range(len(starts) - 1):
        mine = owner == k
        local = np.where(mine, ids - starts[k], 0).astype(np.uint32)
        out.append((local, np.where(mine, depth, 0.0).astype(np.float32)))
    return out


def placed_masks(
    defective: tuple[np.ndarray, np.ndarray],
    nominal: tuple[np.ndarray, np.ndarray] | None,
    placed: Sequence[Placed],
    camera: Camera,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Object, instance and defect masks of a multi-object view.

    Args:
        defective: combined (face id, depth) images of the objects' parts.
        nominal: the same for their nominal twins (None when no part has a defect).
        placed: the objects, in drawing order.
        camera: the camera of both passes.

    Returns:
        object_mask (H, W) bool, instance_masks (K, H, W) bool, defect_masks (N, H, W)
        bool (every object's records in order) and defect_owner (N,) int.
    """
    if len(placed) == 1:  # one object: its ids are already local
        per_def, per_nom = [defective], [nominal if nominal is not None else (None, None)]
    else:
        per_def = split_labels(*defective, offsets([p.part for p in placed]))
        per_nom = (
            split_labels(*nominal, offsets([p.nominal for p in placed]))
            if nominal is not None
            else [(None, None)] * len(placed)
        )
    instances, masks, owners = [], [], []
    for k, (obj, (face_def, depth_def), (face_nom, depth_nom)) in enumerate(
        zip(placed, per_def, per_nom, strict=True)
    ):
        mask, own = defect_masks(
            face_def, depth_def, face_nom, depth_nom, obj.part.face_defect,
            obj.part.records, camera, obj.pose,
        )
        instances.append(mask)
        masks.append(own)
        owners += [k] * len(own)
    height, width = defective[0].shape
    instance_masks = np.stack(instances) if instances else np.zeros((0, height, width), bool)
    defect = np.concatenate(masks) if masks else np.zeros((0, height, width), bool)
    return (instance_masks.any(axis=0), instance_masks, defect,
            np.asarray(owners, dtype=np.int64))


def render_single(renderer: Renderer, scene: Scene, part: Part,
                  nominal: Part | None = None) -> RenderResult:
    """One object through `renderer.render_placed`, without the per-object fields.

    Args:
        renderer: a backend with `render_placed`.
        scene: the scene; its camera sets the image size.
        part: the (possibly defective) part, posed by scene.object_pose.
        nominal: the defect-free twin; required when `part.records` is not empty.

    Returns:
        The RenderResult with `instance_masks` and `defect_owner` set to None.
    """
    if part.records and nominal is None:
        raise ValueError("part has defect records; pass its nominal twin as `nominal`")
    placed = [Placed(part, nominal if nominal is not None else part, scene.object_pose)]
    result = renderer.render_placed(scene, placed)
    return replace(result, instance_masks=None, defect_owner=None)
