"""`dent`: a smooth inward depression of depth h over radius r about a surface point."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import field_validator

from synthgen.config import Range, within
from synthgen.defects.base import DefectConfig, DefectType, register_defect
from synthgen.defects.displacement import apply_displacement, sample_displacement
from synthgen.part import Part


@register_defect("dent")
class Dent(DefectType):
    """Material pushed inward: the surface sinks by up to `depth` at the location and
    blends smoothly back to nominal at `radius` (see displacement.py).

    Params: location [x, y, z] mm, normal [nx, ny, nz], radius mm, depth mm, reach_in mm,
    reach_out mm (how far below/above the tangent plane anything may move).
    """

    class Config(DefectConfig):
        """Attributes:
        radius: mm, radius of the dented disc.
        depth: mm, peak inward displacement (capped against the local wall thickness).
        """

        radius: Range = (1.0, 3.0)
        depth: Range = (0.1, 0.5)

        _radius = field_validator("radius")(within(0.05, 500.0))
        _depth = field_validator("depth")(within(0.001, 100.0))

    def sample(
        self, part: Part, rng: np.random.Generator, face_weights: np.ndarray | None = None
    ) -> dict[str, Any]:
        return sample_displacement(
            part, rng, defect=self.name, regions=self.config.regions,
            radius=self.config.radius, amount=self.config.depth, amount_key="depth",
            face_weights=face_weights,
        )

    def apply(self, part: Part, params: Mapping[str, Any]) -> Part:
        return apply_displacement(part, params, defect=self.name, amount_key="depth", sign=-1.0)
