"""Local, conforming longest-edge bisection (Rivara's LEPP refinement), vectorised.

CAD and flat product faces are a few huge triangles; a smooth displacement needs small ones
near the defect. `refine_local` splits, round after round, every selected triangle whose
longest edge is above a target length. A triangle is always split at its longest edge first
and any triangle sharing a split edge is split too (the marked-edge closure), so the result
has no T-junctions: a watertight mesh stays watertight and triangles keep their shape.

The work is done on a patch of faces around the selection; the rest of the mesh is copied.
If a split reaches the patch's border the patch grows and the refinement starts again, so
the result does not depend on the first patch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from synthgen.errors import MeshError

log = logging.getLogger(__name__)

Selector = Callable[[np.ndarray], np.ndarray]
"""(K, 3, 3) triangles in mm → (K,) bool: which triangles lie in the region to refine."""

_SHIFT = np.int64(32)


def _edge_keys(tri: np.ndarray) -> np.ndarray:
    """(K, 3) int64 keys of the edges (v0,v1), (v1,v2), (v2,v0), independent of direction."""
    a = tri
    b = np.roll(tri, -1, axis=1)
    return (np.minimum(a, b) << _SHIFT) | np.maximum(a, b)


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """`np.isin(keys, sorted_keys)` for sorted unique `sorted_keys`, by binary search (the
    marked set is small next to the patch's edges, so this beats sorting both)."""
    if len(sorted_keys) == 0:
        return np.zeros(keys.shape, dtype=bool)
    index = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[index] == keys


def _closure(keys: np.ndarray, longest: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """Grow `marked` (sorted unique keys) until each face with a marked edge has its longest
    edge marked.

    Works on the frontier only: the faces on newly marked edges are looked up in the sorted
    edge list of the patch, so each round costs in proportion to what it adds.
    """
    flat = keys.reshape(-1)
    order = np.argsort(flat, kind="stable")
    sorted_flat = flat[order]
    long_keys = keys[np.arange(len(keys)), longest]
    frontier = marked
    while len(frontier):
        lo = np.searchsorted(sorted_flat, frontier, "left")
        counts = np.searchsorted(sorted_flat, frontier, "right") - lo
        starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        faces = order[starts + np.arange(int(counts.sum()))] // 3
        candidates = np.unique(long_keys[faces])
        frontier = candidates[~_member(candidates, marked)]
        marked = np.union1d(marked, frontier)
    return marked


def _split(
    tri: np.ndarray, keys: np.ndarray, longest: np.ndarray, marked: np.ndarray, first_new: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split every face with marked edges at their midpoints (longest edge first).

    Returns:
        new faces (K', 3) int64, the row of `tri` each came from (K',), and the rows of
        `tri` left whole (their faces come first in the output, unchanged).
    """
    rows = np.arange(len(tri))
    split = _member(keys[rows, longest], marked)
    whole = np.flatnonzero(~split)
    todo = np.flatnonzero(split)
    order = (longest[todo, None] + np.arange(3)) % 3
    a, b, c = (tri[todo, order[:, i]] for i in range(3))
    kab, kbc, kca = (keys[todo, order[:, i]] for i in range(3))
    mid = lambda k: first_new + np.searchsorted(marked, k)  # noqa: E731
    sbc = _member(kbc, marked)
    sca = _member(kca, marked)
    m = mid(kab)
    pieces = [
        (~sca, np.stack([a, m, c], 1)),
        (sca, np.stack([a, m, mid(kca)], 1)),
        (sca, np.stack([mid(kca), m, c], 1)),
        (~sbc, np.stack([m, b, c], 1)),
        (sbc, np.stack([m, b, mid(kbc)], 1)),
        (sbc, np.stack([m, mid(kbc), c], 1)),
    ]
    faces = np.concatenate([tri[whole], *(f[mask] for mask, f in pieces)])
    origin = np.concatenate([whole, *(todo[mask] for mask, _ in pieces)])
    return faces, origin, whole


def _face_state(
    vertices: np.ndarray, tri: np.ndarray, select: Selector, target: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per face: index of its longest edge (K,), whether it must be split (K,) bool, and
    its edge keys (K, 3)."""
    pts = vertices[tri]
    lengths = np.linalg.norm(pts - np.roll(pts, -1, axis=1), axis=2)
    longest = np.argmax(lengths, axis=1)
    want = lengths.max(axis=1) > target
    if want.any():
        want[want] = select(pts[want])
    return longest, want, _edge_keys(tri)


def _refine_patch(
    vertices: np.ndarray,
    tri: np.ndarray,
    frozen: np.ndarray,
    select: Selector,
    target: float,
    max_faces: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | np.ndarray:
    """Refine the faces `tri` (global vertex ids) whose border edges `frozen` may not split.

    Faces left whole by a round keep their state; only the new faces are measured again.

    Returns:
        (vertices, faces, parent row) when done, or the frozen edge keys that would have to
        split (the caller grows the patch).
    """
    parent = np.arange(len(tri))
    longest, want, keys = _face_state(vertices, tri, select, target)
    for _ in range(200):
        if not want.any():
            return vertices, tri, parent
        seed = np.unique(keys[np.flatnonzero(want), longest[want]])
        marked = _closure(keys, longest, seed)
        blocked = np.intersect1d(marked, frozen)
        if len(blocked):
            return blocked
        ends = np.stack([marked >> _SHIFT, marked & np.int64(0xFFFFFFFF)], axis=1)
        first_new = len(vertices)
        vertices = np.concatenate([vertices, vertices[ends].mean(axis=1)])
        tri, origin, whole = _split(tri, keys, longest, marked, first_new)
        parent = parent[origin]
        if len(tri) > max_faces:
            raise MeshError(f"local refinement needs more than {max_faces} faces")
        new_longest, new_want, new_keys = _face_state(vertices, tri[len(whole):], select, target)
        longest = np.concatenate([longest[whole], new_longest])
        want = np.concatenate([want[whole], new_want])
        keys = np.concatenate([keys[whole], new_keys])
    raise MeshError("local refinement did not converge in 200 rounds")


def _border(tri: np.ndarray) -> np.ndarray:
    """Sorted keys of the edges used by exactly one face of `tri`."""
    keys, counts = np.unique(_edge_keys(tri), return_counts=True)
    return keys[counts == 1]


def _faces_on_edges(faces: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """(F,) bool: faces that have one of the edges `keys`."""
    ends = np.unique(np.concatenate([keys >> _SHIFT, keys & np.int64(0xFFFFFFFF)]))
    touch = np.flatnonzero(np.isin(faces, ends).sum(axis=1) >= 2)
    hit = np.zeros(len(faces), dtype=bool)
    hit[touch] = np.isin(_edge_keys(faces[touch]), keys).any(axis=1)
    return hit


def _dilate(faces: np.ndarray, chosen: np.ndarray, rings: int) -> np.ndarray:
    """(F,) bool: `chosen` faces and every face within `rings` vertex-rings of them."""
    grown = chosen.copy()
    for _ in range(rings):
        mark = np.zeros(int(faces.max()) + 1, dtype=bool)
        mark[faces[grown]] = True
        grown = mark[faces].any(axis=1)
    return grown


def refine_local(
    vertices: np.ndarray,
    faces: np.ndarray,
    select: Selector,
    target: float,
    max_faces: int = 400_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split selected triangles until their edges are at most `target` long, conformingly.

    Args:
        vertices: (V, 3) float64 mm.
        faces: (F, 3) int vertex ids of a closed, vertex-merged mesh.
        select: which triangles (by their current corners) must meet the target.
        target: mm, longest allowed edge of selected triangles.
        max_faces: refuse (MeshError) refinements that would need more faces than this.

    Returns:
        vertices (V', 3) (the first V unchanged, midpoints appended), faces (F', 3) int64,
        parent (F',) int64: the input face each output face lies on.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    inside = select(vertices[faces])
    if not inside.any():
        return vertices, faces, np.arange(len(faces))
    patch = _dilate(faces, inside, rings=2)  # the selection and two rings around it
    for attempt in range(64):
        rows = np.flatnonzero(patch)
        result = _refine_patch(
            vertices, faces[rows], _border(faces[rows]), select, target, max_faces
        )
        if not isinstance(result, np.ndarray):
            new_vertices, tri, parent = result
            rest = np.flatnonzero(~patch)
            log.debug("refined %d faces into %d (%d restarts)", len(rows), len(tri), attempt)
            return (
                new_vertices,
                np.concatenate([faces[rest], tri]),
                np.concatenate([rest, rows[parent]]),
            )
        patch |= _dilate(faces, _faces_on_edges(faces, result), rings=1)
    raise MeshError("local refinement kept spreading over the mesh")
