"""The last step of every defect: label the changed faces and append the DefectRecord."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import trimesh

from synthgen.part import DefectRecord, Part


def next_instance(part: Part) -> int:
    """The instance number the next defect on `part` gets (1-based)."""
    return len(part.records) + 1


def finish(
    part: Part,
    mesh: trimesh.Trimesh,
    face_region: np.ndarray,
    face_defect: np.ndarray,
    *,
    defect: str,
    params: Mapping[str, Any],
    size_mm: float,
    changed_points: np.ndarray,
) -> Part:
    """A new Part with the defect's mesh, labels and record.

    Args:
        part: the part the defect was applied to (unchanged).
        mesh: the defective mesh (mm).
        face_region: (F,) region index of each face of `mesh`.
        face_defect: (F,) defect instance of each face, the new faces already set to
            `next_instance(part)`.
        defect: registered defect type.
        params: the parameters `apply` used; "location" and "normal" are read from them.
        size_mm: the record's characteristic size (see DefectRecord).
        changed_points: (N, 3) mm, points whose convex hull holds all changed geometry
            (old and new); the record's extent is their farthest distance from location.
    """
    instance = next_instance(part)
    location = np.asarray(params["location"], dtype=np.float64)
    points = np.asarray(changed_points, dtype=np.float64).reshape(-1, 3)
    extent = float(np.linalg.norm(points - location, axis=1).max()) if len(points) else 0.0
    record = DefectRecord(
        type=defect,
        instance=instance,
        params=dict(params),
        location=tuple(float(v) for v in location),
        normal=tuple(float(v) for v in params["normal"]),
        extent=extent,
        size_mm=float(size_mm),
        n_faces=int(np.count_nonzero(face_defect == instance)),
    )
    return part.with_defect(mesh, face_region, face_defect, record)


def unit(vector: Any, what: str = "normal") -> np.ndarray:
    """`vector` as a (3,) float64 unit vector; ValueError if it has no direction."""
    v = np.asarray(vector, dtype=np.float64).reshape(3)
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"{what} {list(v)} has no direction")
    return v / norm


def as_list(values: Any) -> list:
    """Plain (nested) lists of Python floats: JSON-ready params."""
    return np.asarray(values, dtype=np.float64).tolist()
