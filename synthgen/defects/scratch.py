"""`scratch`: a shallow, flat-bottomed groove along a smooth, gently curving path."""

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

WOBBLE_DEG = 1.5
"""Largest random heading change per step on top of the steady bend (degrees)."""


@register_defect("scratch")
class Scratch(DefectType):
    """A scratch: a trough `width` wide and `depth` deep along a path of about `length` mm
    that bends steadily by up to ±`bend` degrees over its whole length, with a slight wobble.

    Params: location, normal (middle of the path), path (N, 3) mm, normals (N, 3), width,
    depth, standoff (mm the cutter reaches above the surface), length (drawn; the path may
    end sooner at a sharp edge), heading (rad), turns (rad per step), region.
    """

    class Config(DefectConfig):
        """Attributes:
        width: mm at the surface.
        depth: mm (capped at half the wall thickness where it starts).
        length: mm along the surface.
        bend: degrees, largest total change of heading along the scratch.
        """

        width: Range = (0.1, 0.4)
        depth: Range = (0.02, 0.08)
        length: Range = (3.0, 12.0)
        bend: float = Field(40.0, ge=0.0, le=180.0)

        _width = field_validator("width")(within(0.005, 20.0))
        _depth = field_validator("depth")(within(0.002, 10.0))
        _length = field_validator("length")(within(0.05, 1000.0))


    def sample(
        self, part: Part, rng: np.random.Generator, face_weights: np.ndarray | None = None
    ) -> dict[str, Any]:
        require_solid(part, self.name)
        bend, wobble = np.radians(self.config.bend), np.radians(WOBBLE_DEG)

        def turns(g: np.random.Generator, n: int) -> np.ndarray:
            steady = g.uniform(-bend, bend) / n
            return steady + g.uniform(-wobble, wobble, n)

        return sample_groove(
            part, rng, defect=self.name, regions=self.config.regions,
            width=self.config.width, depth=self.config.depth, length=self.config.length,
            turn=turns, face_weights=face_weights,
        )

    def apply(self, part: Part, params: Mapping[str, Any]) -> Part:
        cutter = sweep_cutter(params, "trough")
        return subtract(part, cutter, params, defect=self.name, size_mm=path_length(params))
