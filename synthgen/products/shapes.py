"""Construction helpers for the parametric products: labelled solids, revolved profiles,
prisms and booleans that keep face regions.

A `Solid` is a watertight triangle mesh (mm) with one region index per face. Products build
solids with `revolve` and `prism`, combine them with `combine` (manifold3d booleans through
`synthgen.mesh_ops.boolean`, which reports the source face of every output face, so regions
survive the boolean), and turn the result into a centred `Part` with `finish_part`.

Everything here is deterministic: the same inputs give bit-identical vertices and faces.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import trimesh

from synthgen.config import StrictModel
from synthgen.errors import MeshError
from synthgen.mesh_ops import (
    BooleanOp,
    boolean,
    canonical_order,
    is_closed_consistent,
    signed_volume,
)
from synthgen.part import Notch, Part

logger = logging.getLogger(__name__)

_AXIS_EPS = 1e-12  # mm; profile points with r below this lie on the axis


@dataclass(frozen=True, eq=False)
class Solid:
    """A watertight mesh with a region index per face.

    Attributes:
        mesh: triangle mesh, mm.
        region: (F,) int16, index into the product's region names.
    """

    mesh: trimesh.Trimesh
    region: np.ndarray

    @property
    def n_faces(self) -> int:
        return len(self.mesh.faces)


class Profile:
    """A closed polyline in the (r, z) half-plane with a region index per segment.

    Segment i runs from point i to point i + 1; the closing segment (last point back to the
    first) gets the region given to `close`. Segments lying on the axis (r = 0 at both ends)
    make no faces when revolved.

    Args:
        r, z: mm, the first point.
    """

    def __init__(self, r: float, z: float):
        self._points: list[tuple[float, float]] = [(float(r), float(z))]
        self._labels: list[int] = []

    @property
    def last(self) -> tuple[float, float]:
        """mm, the current end point (r, z)."""
        return self._points[-1]

    def to(self, points: Sequence[tuple[float, float]] | np.ndarray, region: int) -> Profile:
        """Append points, each joined to the previous one by a segment of `region`."""
        for r, z in np.asarray(points, dtype=np.float64).reshape(-1, 2):
            if (float(r), float(z)) == self._points[-1]:
                raise ValueError(f"profile repeats the point ({r}, {z})")
            self._points.append((float(r), float(z)))
            self._labels.append(region)
        return self

    def line(self, r: float, z: float, region: int, steps: int = 1) -> Profile:
        """A straight segment to (r, z) mm, split into `steps` equal pieces."""
        r0, z0 = self.last
        t = np.arange(1, steps + 1) / steps
        pts = np.stack([r0 + (r - r0) * t, z0 + (z - z0) * t], axis=1)
        pts[-1] = (r, z)
        return self.to(pts, region)

    def vertical(self, r: float, levels: np.ndarray, region: int) -> Profile:
        """Segments at radius r (mm) through the given z levels (mm), in the given order."""
        return self.to(np.stack([np.full(len(levels), r), levels], axis=1), region)

    def arc(
        self,
        centre: tuple[float, float],
        radius: float,
        stop_deg: float,
        end: tuple[float, float],
        region: int,
        steps: int,
    ) -> Profile:
        """A circular arc from the current point to `end` (both on the circle).

        Args:
            centre: (r, z) mm, centre of the circle.
            radius: mm.
            stop_deg: degrees, angle of `end` about `centre` (0 = +r, 90 = +z); the start
                angle is taken from the current point, and the arc runs the signed way
                from start to stop.
            end: (r, z) mm, exact end point (avoids round-off at the end of the arc).
            region: region index of the arc's segments.
            steps: number of segments.
        """
        r0, z0 = self.last
        start = math.atan2(z0 - centre[1], r0 - centre[0])
        stop = math.radians(stop_deg)
        angles = start + (stop - start) * np.arange(1, steps) / steps
        inner = np.stack(
            [centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], axis=1
        )
        return self.to(np.vstack([inner, [end]]), region)

    def close(self, region: int) -> tuple[np.ndarray, np.ndarray]:
        """The points (K, 2) mm and segment regions (K,) int, closing back to the start."""
        if len(self._points) < 3:
            raise ValueError("a profile needs at least three points")
        return np.asarray(self._points), np.asarray([*self._labels, region], dtype=np.int16)


def arc_steps(angle_deg: float, per_quarter: int, minimum: int = 2) -> int:
    """Segment count for an arc of `angle_deg` degrees at `per_quarter` segments per 90°."""
    return max(minimum, math.ceil(abs(angle_deg) / 90.0 * per_quarter - 1e-9))


def uniform_levels(z0: float, z1: float, step: float) -> np.ndarray:
    """(n + 1,) mm: z0 to z1 in n equal rows no taller than `step` (z1 exactly last)."""
    n = max(1, math.ceil((z1 - z0) / step - 1e-9))
    levels = z0 + (z1 - z0) / n * np.arange(n + 1)
    levels[-1] = z1
    return levels


def grid_levels(z0: float, row: float, stop: float, start: float | None = None) -> np.ndarray:
    """Levels on the fixed grid z0 + k * row (mm) strictly between start and stop, then stop.

    Used so that surfaces which must line up (a skirt and the cutter of a notch) share row
    heights that do not depend on where they stop. Grid levels closer than row / 4 to `stop`
    are dropped to avoid slivers.

    Returns:
        (n,) mm, ascending, starting after `start` (default z0) and ending at `stop`.
    """
    start = z0 if start is None else start
    k = np.arange(1, max(1, math.ceil((stop - z0) / row)) + 1)
    levels = z0 + row * k
    keep = (levels > start + row / 4) & (levels < stop - row / 4)
    return np.append(levels[keep], stop)


def revolve(points: np.ndarray, labels: np.ndarray, segments: int) -> Solid:
    """Revolve a closed (r, z) profile about the Z axis into a watertight solid.

    Points with r = 0 become single pole vertices (triangle fans, no degenerate faces).
    The winding is made outward whichever way the profile runs. Column j lies at angle
    360° * j / segments from +X toward +Y.

    Args:
        points: (K, 2) mm, the closed profile (r >= 0), no repeated consecutive points.
        labels: (K,) region index of segment k (point k to point k + 1, wrapping).
        segments: number of facets around the axis.

    Returns:
        The solid, faces grouped by profile segment in profile order.
    """
    pts = np.asarray(points, dtype=np.float64)
    if np.any(pts[:, 0] < -_AXIS_EPS):
        raise ValueError("revolve profile has points at r < 0")
    theta = 2.0 * np.pi * np.arange(segments) / segments
    cos, sin = np.cos(theta), np.sin(theta)
    on_axis = pts[:, 0] <= _AXIS_EPS
    first_index, vertices = [], []
    count = 0
    for (r, z), pole in zip(pts, on_axis, strict=True):
        first_index.append(count)
        if pole:
            vertices.append(np.array([[0.0, 0.0, z]]))
            count += 1
        else:
            vertices.append(np.stack([r * cos, r * sin, np.full(segments, z)], axis=1))
            count += segments
    cols = np.arange(segments)
    nxt = (cols + 1) % segments
    faces, regions = [], []
    for k in range(len(pts)):
        m = (k + 1) % len(pts)
        if on_axis[k] and on_axis[m]:
            continue
        a, b = first_index[k], first_index[m]
        if on_axis[k]:
            tris = np.stack([np.full(segments, a), b + cols, b + nxt], axis=1)
        elif on_axis[m]:
            tris = np.stack([a + cols, np.full(segments, b), a + nxt], axis=1)
        else:
            upper = np.stack([a + cols, b + cols, b + nxt], axis=1)
            lower = np.stack([a + cols, b + nxt, a + nxt], axis=1)
            tris = np.stack([upper, lower], axis=1).reshape(-1, 3)
        faces.append(tris)
        regions.append(np.full(len(tris), labels[k], dtype=np.int16))
    mesh = trimesh.Trimesh(np.vstack(vertices), np.vstack(faces), process=False)
    return _outward(Solid(mesh, np.concatenate(regions)))


def prism(
    outline: np.ndarray,
    levels: np.ndarray,
    side: int | Sequence[int],
    bottom: int,
    top: int,
) -> Solid:
    """Extrude a convex polygon along +Z through the given z levels.

    Args:
        outline: (K, 2) mm, convex polygon in the XY plane, counter-clockwise.
        levels: (L,) mm, ascending z levels (L >= 2); each row between levels is one band of
            side quads (two triangles each).
        side: region of every side face, or (K,) one per edge (edge k: point k to k + 1).
        bottom, top: regions of the end caps (triangle fans from point 0).
    """
    xy = np.asarray(outline, dtype=np.float64)
    z = np.asarray(levels, dtype=np.float64)
    k, n_levels = len(xy), len(z)
    vertices = np.concatenate([np.column_stack([xy, np.full(k, level)]) for level in z], axis=0)
    cols = np.arange(k)
    nxt = (cols + 1) % k
    side_regions = np.broadcast_to(np.asarray(side, dtype=np.int16), (k,))
    faces, regions = [], []
    for row in range(n_levels - 1):
        a, b = row * k, (row + 1) * k
        quads = np.stack(
            [
                np.stack([a + cols, a + nxt, b + nxt], axis=1),
                np.stack([a + cols, b + nxt, b + cols], axis=1),
            ],
            axis=1,
        ).reshape(-1, 3)
        faces.append(quads)
        regions.append(np.repeat(side_regions, 2))
    fan = np.arange(1, k - 1)
    top_base = (n_levels - 1) * k
    faces.append(np.stack([np.zeros(k - 2, dtype=np.int64), fan + 1, fan], axis=1))
    regions.append(np.full(k - 2, bottom, dtype=np.int16))
    faces.append(np.stack([np.full(k - 2, top_base), top_base + fan, top_base + fan + 1], 1))
    regions.append(np.full(k - 2, top, dtype=np.int16))
    mesh = trimesh.Trimesh(vertices, np.vstack(faces), process=False)
    return _outward(Solid(mesh, np.concatenate(regions).astype(np.int16)))


def regular_polygon(radius: float, count: int, phase_deg: float = 0.0) -> np.ndarray:
    """(count, 2) mm, counter-clockwise corners of a regular polygon of circumradius `radius`."""
    angles = np.radians(phase_deg) + 2.0 * np.pi * np.arange(count) / count
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def rotated_z(solid: Solid, angle_deg: float) -> Solid:
    """The solid rotated about +Z by `angle_deg` degrees (counter-clockwise seen from +Z)."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0, 0, 1]])
    mesh = trimesh.Trimesh(solid.mesh.vertices @ rot.T, solid.mesh.faces, process=False)
    return replace(solid, mesh=mesh)


def concatenate(solids: Sequence[Solid]) -> Solid:
    """The disjoint union of solids that do not touch (one mesh, several shells)."""
    offsets = np.cumsum([0] + [len(s.mesh.vertices) for s in solids[:-1]])
    vertices = np.vstack([s.mesh.vertices for s in solids])
    faces = np.vstack([s.mesh.faces + o for s, o in zip(solids, offsets, strict=True)])
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    return Solid(mesh, np.concatenate([s.region for s in solids]).astype(np.int16))


def combine(first: Solid, second: Solid, op: BooleanOp) -> Solid:
    """`first op second` (exact manifold3d boolean); every output face keeps its region.

    Faces cut from `second` (the walls of a hole or slot in a difference) keep the regions
    `second` gave them.
    """
    result = boolean(first.mesh, second.mesh, op)
    region = np.empty(len(result.mesh.faces), dtype=np.int16)
    from_first = result.operand == 0
    region[from_first] = first.region[result.source_face[from_first]]
    region[~from_first] = second.region[result.source_face[~from_first]]
    if len(region) == 0:
        raise MeshError(f"boolean {op} of two product solids is empty")
    return Solid(result.mesh, region)


def params_key(params: StrictModel, exclude: Sequence[str] = ()) -> tuple[tuple[str, Any], ...]:
    """A hashable key of validated params without the `exclude` fields (for memoising the
    parts of a build that do not depend on them)."""
    return tuple(sorted(params.model_dump(exclude=set(exclude)).items()))


def finish_part(
    solid: Solid,
    region_names: Sequence[str],
    product: str,
    params: Mapping[str, Any],
    notch: Notch | None = None,
) -> Part:
    """A Part from a finished solid: centred on the bounding-box centre and checked.

    Vertices and faces are put in a canonical order that depends on the geometry only, so
    the same solid gives bit-identical arrays whatever order a boolean returned it in. The
    notch (given in the solid's frame) is moved with the mesh.

    Raises:
        MeshError: the solid is not watertight, not consistently wound, has non-positive
            volume or degenerate faces (a bug in the product, not in the user's params).
    """
    vertices, faces, region = _canonical(solid)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    centre = (lo + hi) / 2.0
    out = trimesh.Trimesh(vertices - centre, faces, process=False)
    problems = []
    if not is_closed_consistent(faces):
        problems.append("not watertight or inconsistently wound")
    volume = signed_volume(vertices, faces)
    if not volume > 0:
        problems.append(f"volume {volume:.6g} mm³")
    if len(out.faces) and out.area_faces.min() <= 0:
        problems.append("degenerate faces")
    if problems:
        raise MeshError(f"product {product} built a bad mesh: {', '.join(problems)}")
    if notch is not None:
        notch = replace(
            notch, open_end=tuple(float(v) for v in np.asarray(notch.open_end) - centre)
        )
    logger.debug("built %s: %d faces, %d regions", product, len(out.faces), len(region_names))
    return Part(
        mesh=out,
        face_region=region,
        region_names=tuple(region_names),
        product=product,
        params=dict(params),
        notch=notch,
    )


def slot_notch(
    open_end: np.ndarray, length: float, width: float, depth: float, length_param: str
) -> Notch:
    """A Notch running up (+Z) from `open_end` at angle 0 (+X), cut toward the axis (-X).

    Args:
        open_end: (3,) mm, centre of the open end on the outer surface.
        length, width, depth: mm.
        length_param: name of the product parameter that sets the length.
    """
    return Notch(
        open_end=tuple(float(v) for v in open_end),
        axes=((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0)),
        length=float(length),
        width=float(width),
        depth=float(depth),
        length_param=length_param,
    )


def slot_cutter(x_in: float, x_out: float, width: float, levels: np.ndarray, region: int) -> Solid:
    """A box cutter for a vertical slot at angle 0: x in [x_in, x_out], |y| <= width / 2.

    Args:
        x_in, x_out: mm, radial extent of the box along +X.
        width: mm, along Y.
        levels: (L,) mm, z levels of the box's rows (bottom first, closed end last).
        region: region index of every face.
    """
    half = width / 2.0
    outline = np.array([[x_in, -half], [x_out, -half], [x_out, half], [x_in, half]])
    return prism(outline, levels, region, region, region)


def _canonical(solid: Solid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (V, 3), faces (F, 3) and regions (F,) int16 in geometry-set order."""
    vertices, faces, face_order = canonical_order(solid.mesh.vertices, solid.mesh.faces)
    return vertices, faces, np.asarray(solid.region, dtype=np.int16)[face_order]


def _outward(solid: Solid) -> Solid:
    """Flip every face if the solid's signed volume is negative."""
    if solid.mesh.volume < 0:
        mesh = trimesh.Trimesh(solid.mesh.vertices, solid.mesh.faces[:, ::-1], process=False)
        return replace(solid, mesh=mesh)
    return solid
