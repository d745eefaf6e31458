"""`hole`: a drilled or punched cylindrical hole along the inward normal, blind or through."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import trimesh
from pydantic import field_validator

from synthgen.config import Range, uniform, within
from synthgen.defects.base import DefectConfig, DefectType, register_defect, sample_surface_point
from synthgen.defects.cutting import require_solid, subtract
from synthgen.defects.labelling import as_list, unit
from synthgen.defects.probing import first_hits
from synthgen.errors import DefectNotApplicable
from synthgen.part import Part

SECTIONS = 48
"""Facets around the hole's wall."""


@register_defect("hole")
class Hole(DefectType):
    """A cylinder of `diameter` removed from `standoff` above the surface to `depth` below it,
    along −normal. A through hole goes just past the far wall; a blind hole stops at `depth`
    (at most 80 % of the wall thickness there).

    Params: location [x, y, z] mm, normal [nx, ny, nz], diameter mm, depth mm (below the
    location), standoff mm (cutter start above the location), through (bool), draw (the
    uniform [0, 1) number that chose through or blind), region (name of the region it was
    placed on; the hole's faces join it).
    """

    class Config(DefectConfig):
        """Attributes:
        diameter: mm.
        depth: mm, depth of blind holes.
        through_probability: chance that a hole goes through the wall.
        """

        diameter: Range = (0.5, 2.0)
        depth: Range = (0.3, 1.5)
        through_probability: float = 0.5

        _diameter = field_validator("diameter")(within(0.02, 500.0))
        _depth = field_validator("depth")(within(0.01, 500.0))

        @field_validator("through_probability")
        @classmethod
        def _probability(cls, v):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"through_probability must lie within [0, 1], got {v}")
            return v

    def sample(
        self, part: Part, rng: np.random.Generator, face_weights: np.ndarray | None = None
    ) -> dict[str, Any]:
        require_solid(part, self.name)
        point, normal, face = sample_surface_point(
            part, self.config.regions, rng, self.name, face_weights
        )
        diameter = uniform(rng, self.config.diameter)
        blind = uniform(rng, self.config.depth)
        draw = float(rng.uniform())
        through = draw < self.config.through_probability
        wall = float(first_hits(part.mesh, point[None], -normal, leaving=True)[0])
        if not np.isfinite(wall):
            raise DefectNotApplicable(f"hole: no wall found below the surface of {part.product}")
        if through:
            exit_point = point - normal * wall
            gap = float(first_hits(part.mesh, exit_point[None], -normal, leaving=False)[0])
            depth = wall + min(0.5 * diameter + 0.1, 0.5 * gap)
        else:
            depth = min(blind, 0.8 * wall)
        clearance = float(first_hits(part.mesh, point[None], normal, leaving=False)[0])
        return {
            "location": as_list(point),
            "normal": as_list(normal),
            "diameter": diameter,
            "depth": depth,
            "standoff": min(0.5 * diameter + 0.1, 0.5 * clearance),
            "through": bool(through),
            "region": part.region_names[part.face_region[face]],
            "draw": draw,
        }

    def apply(self, part: Part, params: Mapping[str, Any]) -> Part:
        location = np.asarray(params["location"], dtype=np.float64).reshape(3)
        normal = unit(params["normal"])
        diameter, depth = float(params["diameter"]), float(params["depth"])
        standoff = float(params["standoff"])
        if not (diameter > 0 and depth > 0 and standoff > 0):
            raise ValueError(
                f"hole: diameter, depth and standoff must be > 0, got {diameter}, {depth}, "
                f"{standoff}"
            )
        cutter = trimesh.creation.cylinder(
            radius=diameter / 2,
            segment=[location + normal * standoff, location - normal * depth],
            sections=SECTIONS,
        )
        return subtract(part, cutter, params, defect=self.name, size_mm=diameter)
