"""Exact mesh booleans (manifold3d) that remember where every output face came from.

Products use them to build solids with named face regions, defects to cut holes, chips and
grooves while keeping the labels of the faces they did not touch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import manifold3d
import numpy as np
import trimesh

from synthgen.errors import MeshError

BooleanOp = Literal["union", "difference", "intersection"]


@dataclass(frozen=True, eq=False)
class BooleanResult:
    """The output of `boolean`.

    Attributes:
        mesh: the result, watertight, vertices merged (mm).
        operand: (F,) int8, 0 for faces that come from the first operand, 1 from the second.
        source_face: (F,) int64, index of the face of that operand each output face lies on.
    """

    mesh: trimesh.Trimesh
    operand: np.ndarray
    source_face: np.ndarray


def to_manifold(mesh: trimesh.Trimesh, what: str = "mesh") -> manifold3d.Manifold:
    """A manifold3d solid of `mesh` whose face ids are the mesh's face indices.

    Raises:
        MeshError: the mesh is not a closed 2-manifold (manifold3d's status names why).
    """
    solid = manifold3d.Manifold(
        manifold3d.Mesh64(
            vert_properties=np.ascontiguousarray(mesh.vertices, dtype=np.float64),
            tri_verts=np.ascontiguousarray(mesh.faces, dtype=np.uint64),
            face_id=np.arange(len(mesh.faces), dtype=np.uint64),
        )
    )
    status = solid.status()
    if status != manifold3d.Error.NoError:
        raise MeshError(f"{what} is not a closed manifold solid ({status.name})")
    return solid.as_original()


def boolean(
    first: trimesh.Trimesh, second: trimesh.Trimesh, op: BooleanOp
) -> BooleanResult:
    """`first op second` with per-face provenance.

    Args:
        first, second: watertight meshes in the same frame (mm).
        op: "union", "difference" (first minus second) or "intersection".
    """
    a = to_manifold(first, "first operand")
    b = to_manifold(second, "second operand")
    if op == "union":
        out = a + b
    elif op == "difference":
        out = a - b
    elif op == "intersection":
        out = a ^ b
    else:
        raise ValueError(f"unknown boolean op {op!r}")
    result = out.to_mesh64()
    tri = np.asarray(result.tri_verts, dtype=np.int64).reshape(-1, 3)
    n_faces = len(tri)
    operand = np.zeros(n_faces, dtype=np.int8)
    starts = np.asarray(result.run_index, dtype=np.int64) // 3
    ids = np.asarray(result.run_original_id, dtype=np.int64)
    b_id = b.original_id()
    for run, original in enumerate(ids):
        if original == b_id:
            operand[starts[run] : starts[run + 1]] = 1
    source_face = np.asarray(result.face_id, dtype=np.int64)
    vertices = np.asarray(result.vert_properties, dtype=np.float64)[:, :3]
    mesh = trimesh.Trimesh(vertices=vertices, faces=tri, process=False)
    return BooleanResult(mesh=mesh, operand=operand, source_face=source_face)
