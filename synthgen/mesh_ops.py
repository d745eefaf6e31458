"""Exact mesh booleans (manifold3d) that remember where every output face came from.

Products use them to build solids with named face regions, defects to cut holes, chips and
grooves while keeping the labels of the faces they did not touch.
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import manifold3d
import numpy as np
import trimesh

from synthgen.errors import MeshError

BooleanOp = Literal["union", "difference", "intersection"]
T = TypeVar("T")


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


def cached(mesh: trimesh.Trimesh, key: str, compute: Callable[[], T]) -> T:
    """`compute()`, memoised on `mesh` in trimesh's own cache, which drops it if the mesh's
    vertices or faces change (a nominal part reused for many samples pays once)."""
    value = mesh._cache[key]
    if value is None:
        value = compute()
        mesh._cache[key] = value
    return value


def to_manifold(mesh: trimesh.Trimesh, what: str = "mesh") -> tuple[manifold3d.Manifold, int]:
    """A manifold3d solid whose triangles carry their mesh face index, and its mesh id
    (cached on the mesh).

    Each operand gets its own reserved mesh id, so the output's runs tell the operands
    apart, the face ids survive, and manifold3d never merges coplanar triangles of
    different source faces.

    Raises:
        MeshError: the mesh is not a closed 2-manifold (manifold3d's status names why).
    """
    _HOLDERS.add(mesh)
    return cached(mesh, MANIFOLD_KEY, lambda: _build_manifold(mesh, what))


MANIFOLD_KEY = "synthgen.manifold"
_HOLDERS: weakref.WeakSet[trimesh.Trimesh] = weakref.WeakSet()
"""Meshes that may hold a cached manifold3d solid."""


@atexit.register
def _drop_cached_manifolds() -> None:
    """Free cached manifold3d solids before the interpreter shuts down (nanobind otherwise
    reports the ones still referenced by long-lived meshes as leaks)."""
    for mesh in list(_HOLDERS):
        mesh._cache.cache.pop(MANIFOLD_KEY, None)


def _build_manifold(mesh: trimesh.Trimesh, what: str) -> tuple[manifold3d.Manifold, int]:
    mesh_id = manifold3d.Manifold.reserve_ids(1)
    solid = manifold3d.Manifold(
        manifold3d.Mesh64(
            # Copies: manifold3d refuses read-only arrays (as its own outputs are).
            vert_properties=np.array(mesh.vertices, dtype=np.float64, order="C"),
            tri_verts=np.array(mesh.faces, dtype=np.uint64, order="C"),
            run_index=np.array([0, 3 * len(mesh.faces)], dtype=np.uint64),
            run_original_id=np.array([mesh_id], dtype=np.uint32),
            face_id=np.arange(len(mesh.faces), dtype=np.uint64),
        )
    )
    status = solid.status()
    if status != manifold3d.Error.NoError:
        raise MeshError(f"{what} is not a closed manifold solid ({status.name})")
    return solid, mesh_id


def is_closed_consistent(faces: np.ndarray) -> bool:
    """Whether every edge is shared by exactly two faces that traverse it in opposite
    directions (watertight and consistently wound), from one sort of the half-edges.

    Args:
        faces: (F, 3) int vertex indices.
    """
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) == 0:
        return False
    n = int(faces.max()) + 1
    start, end = faces.reshape(-1), faces[:, [1, 2, 0]].reshape(-1)
    forward = np.sort(start * n + end)
    if (forward[1:] == forward[:-1]).any():  # a half-edge used twice
        return False
    return bool(np.array_equal(forward, np.sort(end * n + start)))


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume (mm³) enclosed by a closed mesh; positive for outward normals."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces, dtype=np.int64)]
    return float(np.einsum("ij,ij->", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0)


def canonical_order(
    vertices: np.ndarray, faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices and faces in an order set by the geometry alone.

    manifold3d's output order depends on its thread scheduling (the triangles do not), so
    vertices are sorted by (x, y, z), each face is rotated to start at its lowest vertex
    index (keeping its winding), and faces are sorted by their vertex indices.

    Args:
        vertices: (V, 3) float64 mm.
        faces: (F, 3) int vertex indices.

    Returns:
        vertices (V, 3), faces (F, 3) int64, and face_order (F,) int64: output face i is
        input face face_order[i].
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    order = np.lexsort(vertices.T[::-1])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    faces = rank[np.asarray(faces, dtype=np.int64)]
    start = faces.argmin(axis=1)[:, None]
    faces = np.take_along_axis(faces, (start + np.arange(3)) % 3, axis=1)
    if len(vertices) < 2**21:  # one argsort of (f0, f1, f2) packed into an int64
        face_order = np.argsort((faces[:, 0] << 42) | (faces[:, 1] << 21) | faces[:, 2])
    else:
        face_order = np.lexsort(faces.T[::-1])
    return vertices[order], faces[face_order], face_order


def boolean(
    first: trimesh.Trimesh, second: trimesh.Trimesh, op: BooleanOp
) -> BooleanResult:
    """`first op second` with per-face provenance, in canonical (thread-independent) order.

    Args:
        first, second: watertight meshes in the same frame (mm).
        op: "union", "difference" (first minus second) or "intersection".
    """
    a, _ = to_manifold(first, "first operand")
    b, b_id = to_manifold(second, "second operand")
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
    operand = np.zeros(len(tri), dtype=np.int8)
    starts = np.asarray(result.run_index, dtype=np.int64) // 3
    for run, original in enumerate(np.asarray(result.run_original_id, dtype=np.int64)):
        if original == b_id:
            operand[starts[run] : starts[run + 1]] = 1
    vertices, faces, face_order = canonical_order(
        np.asarray(result.vert_properties, dtype=np.float64)[:, :3], tri
    )
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    source_face = np.asarray(result.face_id, dtype=np.int64)[face_order]
    return BooleanResult(mesh=mesh, operand=operand[face_order], source_face=source_face)
