"""`crack`: a narrow, deep V-groove along a jagged random walk on the surface."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from synthgen.config import Range, within
from synthgen.defects.base import DefectConfig, DefectType, register_defect
from synthgen.defects.cutting import require_solid, subtract
from synthgen.defects.groove import path_length, sample_groove, sweep_cutter
from synthgen.part import Part


@register_defect("crack")
class Crack(DefectType):
    """A crack: a V-shaped groove `width` wide and `depth` deep along a path of about
    `length` mm whose heading jumps by up to ±`jag` degrees at every step.

    Params: location, normal (middle of the path), path (N, 3) mm, normals (N, 3), width,
    depth, standoff (mm the cutter reaches above the surface), length (drawn; the path may
    end sooner at a sharp edge), heading (rad), turns (rad per step), region.
    """

    class Config(DefectConfig):
        """Attributes:
        width: mm, opening of the crack at the surface.
        depth: mm (capped at half the wall thickness where it starts).
        length: mm along the surface.
        jag: degrees, largest heading change per step.
        """

        width: Range = (0.05, 0.2)
        depth: Range = (0.2, 0.6)
        length: Range = (2.0, 6.0)
        jag: float = Field(35.0, ge=0.0, le=45.0)

        _width = field_validator("width")(within(0.005, 20.0))
        _depth = field_validator("depth")(within(0.005, 50.0))
        _length = field_validator("length")(within(0.05, 500.0))


    def sample(
        self, part: Part, rng: np.random.Generator, face_weights: np.ndarray | None = None
    ) -> dict[str, Any]:
        require_solid(part, self.name)
        jag = np.radians(self.config.jag)
        return sample_groove(
            part, rng, defect=self.name, regions=self.config.regions,
            width=self.config.width, depth=self.config.depth, length=self.config.length,
            turn=lambda g, n: g.uniform(-jag, jag, n), face_weights=face_weights,
        )

    def apply(self, part: Part, params: Mapping[str, Any]) -> Part:
        cutter = sweep_cutter(params, "v")
        return subtract(part, cutter, params, defect=self.name, size_mm=path_length(params))
