"""Material removal shared by `chip`, `hole`, `crack` and `scratch`: part minus a cutter.

The boolean (mesh_ops.boolean, manifold3d) reports for every output face which operand and
which face of it the face lies on. Faces of the part keep their region and defect labels;
faces of the cutter are the new defect's faces and take the region of the face the defect
was placed on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse
import trimesh
from scipy.sparse.csgraph import connected_components

from synthgen.defects.labelling import finish, next_instance
from synthgen.defects.probing import closest_surface_point
from synthgen.errors import DefectNotApplicable
from synthgen.mesh_ops import boolean, cached
from synthgen.part import Part


def require_solid(part: Part, defect: str) -> None:
    """Refuse boolean defects on meshes the user accepted although they are not closed."""
    if not part.watertight:
        raise DefectNotApplicable(
            f"{defect}: {part.product} is not watertight (accepted as is), and {defect} cuts "
            "material away with a boolean, which needs a closed solid"
        )


def count_bodies(mesh: trimesh.Trimesh) -> int:
    """Number of solid pieces: connected surface pieces enclosing positive volume (the
    inner surface of a closed void encloses negative volume and does not count). Cached on
    the mesh."""
    return cached(mesh, "synthgen.bodies", lambda: _count_bodies(mesh))


def _count_bodies(mesh: trimesh.Trimesh) -> int:
    faces = np.asarray(mesh.faces, dtype=np.int64)
    n = len(mesh.vertices)
    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    graph = scipy.sparse.coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), (n, n))
    count, label = connected_components(graph, directed=False)
    tri = np.asarray(mesh.vertices, dtype=np.float64)[faces]
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    volume = np.bincount(label[faces[:, 0]], signed, minlength=count)
    return int(np.count_nonzero(volume > 0))


def placed_region(part: Part, params: Mapping[str, Any]) -> int:
    """Index of the region the defect was placed on: params["region"] when the part has it,
    else the region of the face closest to params["location"]."""
    name = params.get("region")
    if name in part.region_names:
        return part.region_names.index(name)
    _, face = closest_surface_point(part.mesh, np.asarray(params["location"], dtype=np.float64))
    return int(part.face_region[face])


def _removed_points(part: Part, out: trimesh.Trimesh, cutter: trimesh.Trimesh) -> np.ndarray:
    """Vertices of the part that the cut removed (not in the output, inside the cutter's
    bounding box), (N, 3) mm."""
    low, high = cutter.bounds
    verts = part.mesh.vertices
    near = np.flatnonzero(((verts >= low) & (verts <= high)).all(axis=1))
    if len(near) == 0:
        return np.zeros((0, 3))
    kept = {tuple(v) for v in out.vertices[((out.vertices >= low) & (out.vertices <= high)).all(1)]}
    gone = [i for i in near if tuple(verts[i]) not in kept]
    return verts[gone]


def subtract(
    part: Part,
    cutter: trimesh.Trimesh,
    params: Mapping[str, Any],
    *,
    defect: str,
    size_mm: float,
) -> Part:
    """The part minus `cutter`, labelled, with its DefectRecord.

    Args:
        part: a watertight part.
        cutter: (mm, object frame) closed solid to remove.
        params: the defect's params (must hold "location" and "normal"; "region", the name
            of the region the cutter's faces join, is optional).
        defect: registered defect type, for messages and the record.
        size_mm: the record's characteristic size.

    Raises:
        DefectNotApplicable: the part is not a closed solid, the cutter misses it, or the cut
            would split it into more pieces.
    """
    require_solid(part, defect)
    result = boolean(part.mesh, cutter, "difference")
    mesh, from_cutter = result.mesh, result.operand == 1
    if len(mesh.faces) == 0:
        raise DefectNotApplicable(f"{defect}: the cut would remove all of {part.product}")
    if not from_cutter.any():
        raise DefectNotApplicable(f"{defect}: the cut misses {part.product}")
    if count_bodies(mesh) > count_bodies(part.mesh):
        raise DefectNotApplicable(
            f"{defect}: a cut of {size_mm:.3g} mm would split {part.product} in pieces "
            "(too big for the part there)"
        )
    source = np.where(from_cutter, 0, result.source_face)
    region = placed_region(part, params)
    face_region = np.where(from_cutter, region, part.face_region[source])
    instance = next_instance(part)
    face_defect = np.where(from_cutter, instance, part.face_defect[source])
    new_ids = np.unique(mesh.faces[from_cutter])
    changed = np.concatenate([mesh.vertices[new_ids], _removed_points(part, mesh, cutter)])
    return finish(
        part,
        mesh,
        face_region.astype(np.int16),
        face_defect.astype(np.int16),
        defect=defect,
        params=dict(params),
        size_mm=size_mm,
        changed_points=changed,
    )
