"""The mask rule on hand-made label images (no OpenGL)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthgen.part import DefectRecord
from synthgen.render.masks import defect_masks, surfaces_differ
from synthgen.scene.model import Camera

SIZE = 40
DEPTH = 100.0  # mm, a wall facing the camera


def _camera() -> Camera:
    pose = np.eye(4)
    return Camera(pose=pose, yfov=math.radians(40), width=SIZE, height=SIZE, znear=1, zfar=1e3)


def _record(instance: int, location, extent: float) -> DefectRecord:
    return DefectRecord(
        type="bulge",
        instance=instance,
        params={},
        location=tuple(location),
        normal=(0.0, 0.0, 1.0),
        extent=extent,
        size_mm=2 * extent,
        n_faces=1,
    )


def _wall(face: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A wall at DEPTH mm filling the view: every pixel sees face `face - 1`."""
    return np.full((SIZE, SIZE), face, np.uint32), np.full((SIZE, SIZE), DEPTH, np.float32)


def _point(row: int, col: int, depth: float = DEPTH) -> np.ndarray:
    """Camera/world/object point (identity poses) seen through a pixel centre."""
    cam = _camera()
    x = (col + 0.5 - SIZE / 2) / cam.focal_px * depth
    y = -(row + 0.5 - SIZE / 2) / cam.focal_px * depth
    return np.array([x, y, -depth])


def test_no_records_gives_empty_stack():
    face, depth = _wall()
    face[:5] = 0
    obj, masks = defect_masks(face, depth, None, None, np.zeros(1), (), _camera(), np.eye(4))
    assert masks.shape == (0, SIZE, SIZE)
    assert obj.sum() == (SIZE - 5) * SIZE


def test_labelled_faces_form_the_mask_without_depth_change():
    face_def, depth = _wall()
    face_def[10:20, 10:20] = 2  # face index 1 is labelled 1
    face_nom, depth_nom = _wall()
    obj, masks = defect_masks(
        face_def, depth, face_nom, depth_nom, np.array([0, 1]), (_record(1, (0, 0, 0), 1),),
        _camera(), np.eye(4),
    )
    assert masks[0].sum() == 100 and masks[0][10:20, 10:20].all()
    assert obj.all()


def test_depth_change_is_attributed_to_the_nearest_record_in_reach():
    face_def, depth_def = _wall()
    face_nom, depth_nom = _wall()
    depth_def[5:8, 5:8] -= 2.0  # raised patch near record 1
    depth_def[30:33, 30:33] -= 2.0  # raised patch near record 2
    depth_def[5:8, 30:33] -= 2.0  # raised patch near no record: dropped
    depth_def[20, 20] += 1e-3  # below tolerance: not a change
    records = (
        _record(1, _point(6, 6), 3.0),
        _record(2, _point(31, 31), 3.0),
    )
    _, masks = defect_masks(
        face_def, depth_def, face_nom, depth_nom, np.zeros(1), records, _camera(), np.eye(4)
    )
    assert masks[0].sum() == 9 and masks[0][5:8, 5:8].all()
    assert masks[1].sum() == 9 and masks[1][30:33, 30:33].all()


def test_missing_material_uses_the_nominal_point_and_joins_the_object_mask():
    face_def, depth_def = _wall()
    face_nom, depth_nom = _wall()
    face_def[18:22, 18:22] = 0  # background through a hole
    depth_def[18:22, 18:22] = 0
    face_def[22:24, 18:22] = 1  # a far wall seen through the hole: differs, far from record
    depth_def[22:24, 18:22] = 400.0
    record = _record(1, _point(20, 20), 4.0)
    obj, masks = defect_masks(
        face_def, depth_def, face_nom, depth_nom, np.zeros(1), (record,), _camera(), np.eye(4)
    )
    assert masks[0][18:24, 18:22].all() and masks[0].sum() == 24
    assert obj.all()


def test_object_pose_is_applied_before_measuring_distance():
    face_def, depth_def = _wall()
    face_nom, depth_nom = _wall()
    depth_def[5:8, 5:8] -= 2.0
    pose = np.eye(4)
    pose[:3, 3] = (7.0, -3.0, 11.0)  # object frame = world - translation
    record = _record(1, _point(6, 6) - pose[:3, 3], 3.0)
    _, masks = defect_masks(
        face_def, depth_def, face_nom, depth_nom, np.zeros(1), (record,), _camera(), pose
    )
    assert masks[0].sum() == 9


def test_surfaces_differ_tolerance():
    a = np.array([[0.0, 100.0, 100.0, 100.0, 0.0]], np.float32)
    b = np.array([[0.0, 100.0, 100.005, 100.02, 50.0]], np.float32)
    assert surfaces_differ(a, b).tolist() == [[False, False, False, True, True]]


def test_records_without_nominal_labels_raise():
    face, depth = _wall()
    with pytest.raises(ValueError, match="nominal"):
        defect_masks(
            face, depth, None, None, np.zeros(1), (_record(1, (0, 0, 0), 1),), _camera(), np.eye(4)
        )
