"""Smooth surface displacement shared by `bulge` (outward) and `dent` (inward).

The displacement is a smooth vector field of space, not of the surface:

    u(x) = sign · h · φ(ρ / r) · ψ(z) · n

with `n` the defect normal, `ρ` the distance of x from the axis through the location along
n, `z = (location − x) · n` the depth below the tangent plane, φ(s) = (1 − s²)² for s < 1
(zero with zero slope at the rim: no crease) and ψ a plateau that falls smoothly to zero at
`reach_in` below and `reach_out` above the tangent plane. The reaches are set just short of
the nearest opposite wall (found by ray casts when sampling), so the far wall of a thin
shell or the other side of a bore never moves. The height is capped so that h·|∇(φψ)| < 1:
then x ↦ x + u(x) is one-to-one and the displaced surface cannot fold or self-intersect.

Big triangles are first split locally (see refine.py) so the profile is resolved.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import trimesh

from synthgen.config import uniform
from synthgen.defects.base import sample_surface_point
from synthgen.defects.labelling import as_list, finish, next_instance, unit
from synthgen.defects.probing import face_spheres, first_hits
from synthgen.defects.refine import refine_local
from synthgen.errors import DefectNotApplicable
from synthgen.part import Part

log = logging.getLogger(__name__)

MOVE_EPS = 1e-6
"""mm; vertices displaced by less than this are left exactly where they were."""

REFINE_DIVISOR = 8.0
"""Edges within the support are refined to at most radius / REFINE_DIVISOR."""

_PROFILE_SLOPE = 1.54  # max |dφ/ds| of (1 - s²)²: 8 / (3 √3)
_FALLOFF_SLOPE = 2.25  # max |dψ/dz| · reach: smoothstep over 2/3 of the reach
_MAX_LIPSCHITZ = 0.8


def _frame(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit tangents (3,), (3,) orthogonal to `normal`, picked deterministically."""
    helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
    t1 = np.cross(normal, helper)
    t1 /= np.linalg.norm(t1)
    return t1, np.cross(normal, t1)


def wall_reach(part: Part, location: np.ndarray, normal: np.ndarray, radius: float):
    """How far below and above the tangent plane the displacement may reach (mm).

    Rays from 13 points of the tangent disc of `radius` go along −n to the first face they
    leave the solid through (the far wall) and along +n to the first face they enter it
    through (an opposite wall); each reach is 90 % of the shortest such distance.

    Returns:
        (reach_in, reach_out) mm; a side with no wall gets twice the part's diameter.
    """
    t1, t2 = _frame(normal)
    angles = np.arange(6) * np.pi / 3
    ring = np.cos(angles)[:, None] * t1 + np.sin(angles)[:, None] * t2
    origins = np.concatenate([location[None], location + 0.5 * radius * ring,
                              location + radius * ring])
    far = 4.0 * part.bounding_radius
    below = float(first_hits(part.mesh, origins, -normal, leaving=True).min())
    above = float(first_hits(part.mesh, origins, normal, leaving=False).min())
    return 0.9 * min(below, far), 0.9 * min(above, far)


def max_height(radius: float, reach_in: float, reach_out: float) -> float:
    """mm, the largest height for which the displacement map stays one-to-one."""
    slope = np.hypot(_PROFILE_SLOPE / radius, _FALLOFF_SLOPE / min(reach_in, reach_out))
    return float(_MAX_LIPSCHITZ / slope)


def sample_displacement(
    part: Part,
    rng: np.random.Generator,
    *,
    defect: str,
    regions: list[str] | None,
    radius: tuple[float, float],
    amount: tuple[float, float],
    amount_key: str,
    face_weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """Draw location, radius and height/depth (all from `rng`); cap the height so the map
    stays one-to-one (thin walls take only shallow dents).

    Returns:
        JSON-ready params: location, normal, radius, `amount_key`, reach_in, reach_out.
    """
    point, normal, _ = sample_surface_point(part, regions, rng, defect, face_weights)
    r = uniform(rng, radius)
    h = uniform(rng, amount)
    if r > part.bounding_radius:
        raise DefectNotApplicable(
            f"{defect}: radius {r:.3g} mm is larger than {part.product} "
            f"(bounding radius {part.bounding_radius:.3g} mm)"
        )
    reach_in, reach_out = wall_reach(part, point, normal, r)
    cap = max_height(r, reach_in, reach_out)
    if h > cap:
        log.debug("%s: %s %.4g mm capped to %.4g mm by the wall", defect, amount_key, h, cap)
        h = cap
    return {
        "location": as_list(point),
        "normal": as_list(normal),
        "radius": r,
        amount_key: h,
        "reach_in": reach_in,
        "reach_out": reach_out,
    }


def _falloff(x: np.ndarray) -> np.ndarray:
    """1 for x ≤ 1/3, smoothstep down to 0 at x = 1, 0 beyond (x ≥ 0)."""
    t = np.clip((1.0 - x) * 1.5, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class _Support:
    """The cylinder-and-slab support of the field about a location (mm, object frame)."""

    def __init__(self, location, normal, radius, reach_in, reach_out):
        self.c, self.n, self.r = location, normal, radius
        self.reach_in, self.reach_out = reach_in, reach_out

    def coords(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ρ, z): distance from the axis and depth below the tangent plane, (N,) mm."""
        rel = points - self.c
        along = rel @ self.n
        rho2 = np.einsum("ij,ij->i", rel, rel) - along * along
        return np.sqrt(np.maximum(rho2, 0.0)), -along

    def touches(self, tris: np.ndarray) -> np.ndarray:
        """(K,) bool: triangles (K, 3, 3) whose bounding sphere meets the support."""
        centres, radii = face_spheres(tris)
        rho, z = self.coords(centres)
        return (rho - radii < self.r) & (z - radii < self.reach_in) & (-z - radii < self.reach_out)

    def weight(self, points: np.ndarray) -> np.ndarray:
        """(N,) φ(ρ/r)·ψ(z) in [0, 1]."""
        rho, z = self.coords(points)
        s2 = np.minimum(rho / self.r, 1.0) ** 2
        psi = np.where(z >= 0, _falloff(z / self.reach_in), _falloff(-z / self.reach_out))
        return (1.0 - s2) ** 2 * psi


def _read(params: Mapping[str, Any], defect: str, amount_key: str) -> tuple:
    location = np.asarray(params["location"], dtype=np.float64).reshape(3)
    normal = unit(params["normal"])
    r, h = float(params["radius"]), float(params[amount_key])
    reach_in, reach_out = float(params["reach_in"]), float(params["reach_out"])
    if not (r > 0 and h >= 0 and reach_in > 0 and reach_out > 0):
        raise ValueError(
            f"{defect}: radius, reach_in and reach_out must be > 0 and {amount_key} >= 0, "
            f"got {r}, {reach_in}, {reach_out}, {h}"
        )
    return location, normal, r, h, reach_in, reach_out


def apply_displacement(
    part: Part, params: Mapping[str, Any], *, defect: str, amount_key: str, sign: float
) -> Part:
    """Refine about the location, displace by sign·h along the normal, label, record.

    Raises:
        DefectNotApplicable: the displacement moves no vertex or would fold the surface.
    """
    location, normal, r, h, reach_in, reach_out = _read(params, defect, amount_key)
    support = _Support(location, normal, r, reach_in, reach_out)
    vertices, faces, parent = refine_local(
        part.mesh.vertices, part.mesh.faces, support.touches, r / REFINE_DIVISOR
    )
    weight = support.weight(vertices)
    amount = sign * h * weight
    amount[np.abs(amount) < MOVE_EPS] = 0.0
    moved = amount != 0.0
    if not moved.any():
        raise DefectNotApplicable(f"{defect}: {amount_key} {h:.3g} mm moves no vertex")
    new_vertices = vertices + amount[:, None] * normal
    changed = moved[faces].any(axis=1)
    _check_no_fold(vertices, new_vertices, faces[changed], defect, part.product)
    instance = next_instance(part)
    face_defect = np.where(changed, instance, part.face_defect[parent]).astype(np.int16)
    mesh = trimesh.Trimesh(vertices=new_vertices, faces=faces, process=False)
    ids = np.unique(faces[changed])
    return finish(
        part,
        mesh,
        part.face_region[parent],
        face_defect,
        defect=defect,
        params=dict(params),
        size_mm=2.0 * r,
        changed_points=np.concatenate([vertices[ids], new_vertices[ids]]),
    )


def _check_no_fold(
    old: np.ndarray, new: np.ndarray, faces: np.ndarray, defect: str, product: str
) -> None:
    """Refuse if a displaced face turned over or collapsed (height too large for the part).

    Needle faces (height under 10 % of their longest edge, as where knurl ribs meet the cap)
    are not judged: their normal is mostly round-off, and the one-to-one displacement cannot
    fold the surface around them.
    """
    before = np.cross(old[faces[:, 1]] - old[faces[:, 0]], old[faces[:, 2]] - old[faces[:, 0]])
    after = np.cross(new[faces[:, 1]] - new[faces[:, 0]], new[faces[:, 2]] - new[faces[:, 0]])
    area_before = np.linalg.norm(before, axis=1)
    tri = old[faces]
    longest = np.linalg.norm(tri - np.roll(tri, -1, axis=1), axis=2).max(axis=1)
    judged = area_before > 0.05 * longest**2  # area = height · longest / 2
    before, after, area_before = before[judged], after[judged], area_before[judged]
    cosine = np.einsum("ij,ij->i", before, after) / np.maximum(
        area_before * np.linalg.norm(after, axis=1), 1e-300
    )
    if (cosine < 0.1).any() or (np.linalg.norm(after, axis=1) < 1e-12 * area_before.max()).any():
        raise DefectNotApplicable(
            f"{defect}: the displacement would fold the surface of {product}; "
            "use a smaller height/depth or a larger radius"
        )
