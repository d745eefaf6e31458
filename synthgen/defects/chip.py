"""`chip`: material broken off at a sharp convex edge, as an irregular convex blob cut away."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import trimesh
from pydantic import Field, field_validator

from synthgen.config import Range, uniform, within
from synthgen.defects.base import (
    DefectConfig,
    DefectType,
    check_face_weights,
    register_defect,
)
from synthgen.defects.cutting import require_solid, subtract
from synthgen.defects.labelling import as_list, unit
from synthgen.errors import DefectNotApplicable
from synthgen.part import Part

_UNIT_BLOB = trimesh.creation.icosphere(subdivisions=1).vertices.copy()
"""(42, 3) unit directions; each is scaled by its own jitter factor."""


def sharp_edges(
    part: Part, regions: list[str] | None, min_angle_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Convex edges whose faces meet at more than `min_angle_deg` (between normals).

    Returns:
        edges (E, 2) vertex ids and adjacent face pairs (E, 2), for edges with at least one
        face in `regions` (every edge when None).
    """
    mesh = part.mesh
    allowed = np.zeros(len(mesh.faces), dtype=bool)
    allowed[part.region_faces(regions)] = True
    pairs = mesh.face_adjacency
    keep = (
        (mesh.face_adjacency_angles > np.radians(min_angle_deg))
        & mesh.face_adjacency_convex
        & allowed[pairs].any(axis=1)
    )
    return mesh.face_adjacency_edges[keep], pairs[keep]


def blob(params: Mapping[str, Any]) -> trimesh.Trimesh:
    """The chip's cutter: convex hull of 42 jittered directions scaled to
    (width/2 along the edge, depth across it, depth along the normal), about the location."""
    location = np.asarray(params["location"], dtype=np.float64).reshape(3)
    normal = unit(params["normal"])
    edge = np.asarray(params["edge_direction"], dtype=np.float64)
    edge = unit(edge - (edge @ normal) * normal, "edge_direction")
    width, depth = float(params["width"]), float(params["depth"])
    jitter = np.asarray(params["jitter"], dtype=np.float64)
    if not (width > 0 and depth > 0) or jitter.shape != (len(_UNIT_BLOB),) or jitter.min() <= 0:
        raise ValueError(
            f"chip: width and depth must be > 0 and jitter {len(_UNIT_BLOB)} positive numbers"
        )
    local = _UNIT_BLOB * jitter[:, None] * np.array([width / 2, depth, depth])
    frame = np.stack([edge, np.cross(normal, edge), normal])
    return trimesh.convex.convex_hull(location + local @ frame)


@register_defect("chip")
class Chip(DefectType):
    """Material missing at a sharp edge: an irregular convex blob centred on a point of a
    convex feature edge (faces meeting at more than `min_edge_angle` degrees) is cut away.

    Params: location [x, y, z] mm (on the edge), normal (unit bisector of the two faces),
    edge_direction (unit), width mm (along the edge), depth mm (into the material), jitter
    (42 radial factors of the blob), region (name of the region it was placed on).
    """

    class Config(DefectConfig):
        """Attributes:
        width: mm, size of the chip along the edge.
        depth: mm, how far the chip reaches into the material.
        jitter: relative irregularity of the blob (0: ellipsoid).
        min_edge_angle: degrees between face normals for an edge to count as sharp.
        """

        width: Range = (0.5, 2.0)
        depth: Range = (0.2, 0.8)
        jitter: float = Field(0.25, ge=0.0, le=0.6)
        min_edge_angle: float = Field(40.0, ge=1.0, le=179.0)

        _width = field_validator("width")(within(0.02, 500.0))
        _depth = field_validator("depth")(within(0.01, 500.0))



    def sample(
        self, part: Part, rng: np.random.Generator, face_weights: np.ndarray | None = None
    ) -> dict[str, Any]:
        require_solid(part, self.name)
        cfg = self.config
        edges, pairs = sharp_edges(part, cfg.regions, cfg.min_edge_angle)
        if len(edges) == 0:
            where = f" in regions {cfg.regions}" if cfg.regions else ""
            raise DefectNotApplicable(
                f"chip: {part.product} has no sharp edge (over {cfg.min_edge_angle:g}°){where}"
            )
        ends = part.mesh.vertices[edges]
        lengths = np.linalg.norm(ends[:, 1] - ends[:, 0], axis=1)
        if face_weights is not None:  # only edges beside a face the camera sees
            lengths = lengths * (check_face_weights(part, face_weights)[pairs] > 0).any(axis=1)
            if lengths.sum() <= 0:
                raise DefectNotApplicable(
                    f"chip: no sharp edge of {part.product} is seen by the camera"
                )
        pick = int(rng.choice(len(edges), p=lengths / lengths.sum()))
        t = float(rng.uniform())
        location = ends[pick, 0] + t * (ends[pick, 1] - ends[pick, 0])
        normals = part.mesh.face_normals[pairs[pick]]
        in_regions = np.isin(pairs[pick], part.region_faces(cfg.regions))
        face = int(pairs[pick, int(np.argmax(in_regions))])
        return {
            "location": as_list(location),
            "normal": as_list(unit(normals.sum(axis=0))),
            "edge_direction": as_list(unit(ends[pick, 1] - ends[pick, 0], "edge")),
            "width": uniform(rng, cfg.width),
            "depth": uniform(rng, cfg.depth),
            "jitter": as_list(rng.uniform(1.0 - cfg.jitter, 1.0 + cfg.jitter, len(_UNIT_BLOB))),
            "region": part.region_names[part.face_region[face]],
            "edge_t": t,
        }

    def apply(self, part: Part, params: Mapping[str, Any]) -> Part:
        width = float(params["width"])
        return subtract(part, blob(params), params, defect=self.name, size_mm=width)
