"""Thin grooves shared by `crack` and `scratch`: a path on the surface and a swept cutter.

`walk_path` steps across the surface: each step turns the heading in the tangent plane,
moves `step` mm and snaps the point back onto the surface (closest point on the allowed
faces). It stops early at a sharp feature (normal turning by more than `max_bend` degrees)
or where the surface runs out, so grooves do not wrap over edges.

`sweep_cutter` sweeps a small cross-section (a V for cracks, a flat-bottomed trough for
scratches) along the path into a closed tube that `cutting.subtract` removes from the part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import trimesh

from synthgen.config import uniform
from synthgen.defects.base import sample_surface_point
from synthgen.defects.labelling import as_list
from synthgen.defects.probing import first_hits, mesh_face_spheres
from synthgen.errors import DefectNotApplicable
from synthgen.part import Part

SECTIONS: dict[str, np.ndarray] = {
    "v": np.array([[-1.0, 1.0], [1.0, 1.0], [0.0, -1.0]]),
    "trough": np.array([[-1.0, 1.0], [1.0, 1.0], [0.6, -1.0], [-0.6, -1.0]]),
}
"""Cross-sections (M, 2): u across in half-widths, v along the normal (+1: standoff above
the surface, −1: full depth below it)."""

END_SCALE = 0.3
"""Width and depth of the groove at its two ends, relative to its middle."""


class _Surface:
    """Closest-point queries restricted to a set of faces, pruned by bounding spheres."""

    def __init__(self, part: Part, faces: np.ndarray):
        self.mesh = part.mesh
        self.faces = faces
        self.tris = part.mesh.triangles[faces]
        centres, radii = mesh_face_spheres(part.mesh)
        self.centres, self.radii = centres[faces], radii[faces]

    def snap(self, point: np.ndarray) -> tuple[np.ndarray, int]:
        """Closest point (3,) on the faces and its face index."""
        rel = self.centres - point
        dist = np.sqrt(np.einsum("ij,ij->i", rel, rel))
        near = np.flatnonzero(dist - self.radii <= (dist + self.radii).min())
        found = trimesh.triangles.closest_point(
            self.tris[near], np.repeat(point[None], len(near), axis=0)
        )
        best = int(np.argmin(np.linalg.norm(found - point, axis=1)))
        return found[best], int(self.faces[near[best]])


def _tangent(normal: np.ndarray, heading: float) -> np.ndarray:
    helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
    t1 = np.cross(normal, helper)
    t1 /= np.linalg.norm(t1)
    return np.cos(heading) * t1 + np.sin(heading) * np.cross(normal, t1)


def walk_path(
    surface: _Surface,
    start: np.ndarray,
    normal: np.ndarray,
    heading: float,
    turns: np.ndarray,
    step: float,
    max_bend: float = 35.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Walk len(turns) steps of `step` mm from `start`, turning by turns[k] radians first.

    Returns:
        points (N, 3) mm on the surface and their unit face normals (N, 3), N ≤ len(turns)+1.
    """
    mesh = surface.mesh
    point, n = np.asarray(start, dtype=np.float64), np.asarray(normal, dtype=np.float64)
    direction = _tangent(n, heading)
    points, normals = [point], [n]
    for turn in turns:
        direction = np.cos(turn) * direction + np.sin(turn) * np.cross(n, direction)
        snapped, face = surface.snap(point + step * direction)
        new_n = mesh.face_normals[face]
        moved = snapped - point
        if new_n @ n < np.cos(np.radians(max_bend)) or np.linalg.norm(moved) < 0.5 * step:
            break
        direction = moved - (moved @ new_n) * new_n
        direction /= np.linalg.norm(direction)
        point, n = snapped, new_n
        points.append(point)
        normals.append(n)
    return np.array(points), np.array(normals)


def _smooth(normals: np.ndarray) -> np.ndarray:
    """Normals averaged with their neighbours (weights 1, 2, 1), renormalised."""
    padded = np.concatenate([normals[:1], normals, normals[-1:]])
    mixed = padded[:-2] + 2 * padded[1:-1] + padded[2:]
    return mixed / np.linalg.norm(mixed, axis=1, keepdims=True)


def sample_groove(
    part: Part,
    rng: np.random.Generator,
    *,
    defect: str,
    regions: list[str] | None,
    width: tuple[float, float],
    depth: tuple[float, float],
    length: tuple[float, float],
    turn: Callable[[np.random.Generator, int], np.ndarray],
    attempts: int = 5,
    face_weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """Draw a groove: width, depth and length (mm), then a surface path.

    Args:
        turn: (rng, n_steps) → (n_steps,) radians, the heading change before each step.
        attempts: start points tried before giving up (each drawn from rng).

    Returns:
        JSON-ready params: location, normal (middle of the path), path (N, 3), normals
        (N, 3), width, depth, standoff, length (drawn), heading, turns, region (name of the
        region of the start point; the groove's faces join it).
    """
    w, d, target = uniform(rng, width), uniform(rng, depth), uniform(rng, length)
    step = max(3.0 * w, target / 24.0)
    n_steps = int(np.ceil(target / step))
    surface = _Surface(part, part.region_faces(regions))
    for _ in range(attempts):
        start, normal, face = sample_surface_point(part, regions, rng, defect, face_weights)
        heading = float(rng.uniform(0.0, 2.0 * np.pi))
        turns = np.asarray(turn(rng, n_steps), dtype=np.float64)
        points, normals = walk_path(surface, start, normal, heading, turns, step)
        if len(points) >= max(3, n_steps // 2 + 1):
            break
    else:
        raise DefectNotApplicable(
            f"{defect}: found no room for a {target:.3g} mm groove on {part.product} "
            f"in {attempts} tries (the surface is too small or too sharply curved)"
        )
    wall = float(first_hits(part.mesh, start[None], -normal, leaving=True)[0])
    d = min(d, 0.5 * wall)
    middle = len(points) // 2
    return {
        "location": as_list(points[middle]),
        "normal": as_list(normals[middle]),
        "path": as_list(points),
        "normals": as_list(_smooth(normals)),
        "width": w,
        "depth": d,
        "standoff": max(0.5 * w, 0.5 * d, 0.02),
        "length": target,
        "heading": heading,
        "turns": as_list(turns),
        "region": part.region_names[part.face_region[face]],
    }


def path_length(params: Mapping[str, Any]) -> float:
    """mm, length of the groove's path."""
    path = np.asarray(params["path"], dtype=np.float64)
    return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())


def sweep_cutter(params: Mapping[str, Any], section: str) -> trimesh.Trimesh:
    """A closed tube of the cross-section swept along params["path"] (mm, object frame).

    The section's width and depth taper to END_SCALE at both ends; the part above the
    surface (standoff) does not taper.
    """
    path = np.asarray(params["path"], dtype=np.float64).reshape(-1, 3)
    normals = np.asarray(params["normals"], dtype=np.float64).reshape(-1, 3)
    w, d, standoff = float(params["width"]), float(params["depth"]), float(params["standoff"])
    if len(path) < 2 or len(normals) != len(path) or not (w > 0 and d > 0 and standoff > 0):
        raise ValueError("groove: need ≥ 2 path points with normals and width, depth > 0")
    normals = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    tangent = np.gradient(path, axis=0)
    tangent -= np.einsum("ij,ij->i", tangent, normals)[:, None] * normals
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    across = np.cross(normals, tangent)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    scale = END_SCALE + (1 - END_SCALE) * np.sqrt(np.clip(np.sin(np.pi * arc / arc[-1]), 0, 1))
    sec = SECTIONS[section]
    u = sec[:, 0][None] * (0.5 * w * scale[:, None])
    v = np.where(sec[:, 1] > 0, sec[:, 1] * standoff, 0.0)[None] + np.where(
        sec[:, 1] < 0, sec[:, 1] * d, 0.0
    )[None] * scale[:, None]
    rings = path[:, None] + u[..., None] * across[:, None] + v[..., None] * normals[:, None]
    return _tube(rings)


def _tube(rings: np.ndarray) -> trimesh.Trimesh:
    """Closed, outward-oriented tube through rings (N, M, 3), capped at both ends."""
    n, m = rings.shape[:2]
    i, j = np.meshgrid(np.arange(n - 1), np.arange(m), indexing="ij")
    a, b = i * m + j, i * m + (j + 1) % m
    c, e = b + m, a + m
    sides = np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, e], -1)]).reshape(-1, 3)
    k = np.arange(1, m - 1)
    start = np.stack([np.zeros_like(k), k + 1, k], 1)
    end = (n - 1) * m + np.stack([np.zeros_like(k), k, k + 1], 1)
    faces = np.concatenate([sides, start, end])
    mesh = trimesh.Trimesh(vertices=rings.reshape(-1, 3), faces=faces, process=False)
    if mesh.volume < 0:
        mesh = trimesh.Trimesh(vertices=mesh.vertices, faces=faces[:, ::-1], process=False)
    return mesh
