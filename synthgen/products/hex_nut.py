"""hex_nut: an ISO-style hexagon nut with 30° chamfered corners and a plain through bore.

The solid is a hexagonal prism intersected with a revolved body whose top and bottom edges
are cones (the chamfer): where the cone passes inside the hexagon's corners it cuts the
usual chamfer arcs into the flats. The bore is a plain cylinder at about the thread's minor
diameter. Defaults are an M10 nut (ISO 4032: s = 16 mm, m = 8.4 mm).

Frame: mm, +Z along the bore axis, bounding-box centre at the origin, two corners on ±X.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, model_validator

from synthgen.config import StrictModel
from synthgen.part import Part
from synthgen.products.base import register_product
from synthgen.products.shapes import (
    Profile,
    combine,
    finish_part,
    prism,
    regular_polygon,
    revolve,
)

REGIONS = ("top", "bottom", "flats", "chamfer", "bore")
TOP, BOTTOM, FLATS, CHAMFER, BORE = range(len(REGIONS))


class HexNutParams(StrictModel):
    """Dimensions of a hexagon nut (mm unless stated)."""

    across_flats: float = Field(16.0, ge=3.0, le=150.0, description="width across flats, s (mm)")
    height: float = Field(8.4, ge=1.0, le=120.0, description="nut height, m (mm)")
    bore_diameter: float = Field(
        8.4, ge=0.5, le=140.0, description="diameter of the plain through bore (mm)"
    )
    bearing_diameter: float = Field(
        15.0,
        ge=2.0,
        le=170.0,
        description="diameter where the chamfer cone meets the end faces, dw (mm)",
    )
    chamfer_angle: float = Field(
        30.0, ge=10.0, le=60.0, description="angle of the chamfer cone to the end face (deg)"
    )
    segments: int = Field(96, ge=24, le=256, description="facets around the axis (count)")

    @property
    def across_corners(self) -> float:
        """mm, the hexagon's corner-to-corner width e = s / cos 30°."""
        return self.across_flats / math.cos(math.pi / 6)

    @model_validator(mode="after")
    def _check(self) -> HexNutParams:
        if self.bore_diameter > 0.9 * self.across_flats - 1.0:
            raise ValueError(
                f"bore_diameter ({self.bore_diameter} mm) must be at most "
                f"0.9 * across_flats - 1 mm ({0.9 * self.across_flats - 1.0:.3g} mm)"
            )
        if not self.bore_diameter + 0.5 < self.bearing_diameter < self.across_corners - 0.1:
            raise ValueError(
                f"bearing_diameter ({self.bearing_diameter} mm) must lie between "
                f"bore_diameter + 0.5 mm and across_flats / cos 30° - 0.1 mm "
                f"({self.across_corners - 0.1:.3g} mm)"
            )
        rise = _chamfer_rise(self)
        if 2 * rise > self.height - 0.2:
            raise ValueError(
                f"the chamfers ({rise:.3g} mm each, set by across_flats, bearing_diameter and "
                f"chamfer_angle) must leave at least 0.2 mm of height ({self.height} mm)"
            )
        return self


def _chamfer_rise(p: HexNutParams) -> float:
    """mm, height of the chamfer cone from the bearing circle to the hexagon's corners."""
    return (p.across_corners - p.bearing_diameter) / 2 * math.tan(math.radians(p.chamfer_angle))


def _chamfer_body(p: HexNutParams) -> tuple[np.ndarray, np.ndarray]:
    """The revolved profile: bore, end annuli, chamfer cones, reaching past the corners."""
    h, rb, rw = p.height, p.bore_diameter / 2, p.bearing_diameter / 2
    slope = math.tan(math.radians(p.chamfer_angle))
    # Outer radius: a little past the corners, but short of where the two cones would meet.
    meet = rw + h / 2 / slope
    outer = p.across_corners / 2 + min(0.5, (meet - p.across_corners / 2) / 2)
    rise = (outer - rw) * slope
    profile = Profile(rb, 0.0).line(rw, 0.0, BOTTOM).line(outer, rise, CHAMFER)
    profile.line(outer, h - rise, FLATS).line(rw, h, CHAMFER).line(rb, h, TOP)
    return profile.close(BORE)


@register_product(
    "hex_nut",
    HexNutParams,
    "ISO-style hexagon nut with chamfered corners",
    defect_presets={  # an M10 nut is 16 mm across flats: keep defects small
        "bulge": {"radius": [0.6, 1.5], "height": [0.1, 0.3]},
        "dent": {"radius": [0.6, 1.5], "depth": [0.1, 0.3]},
        "chip": {"width": [0.5, 1.5], "depth": [0.2, 0.6]},
        "hole": {"diameter": [0.4, 1.2], "depth": [0.3, 1.0]},
        "crack": {"width": [0.05, 0.15], "depth": [0.1, 0.4], "length": [1.5, 4.0]},
        "scratch": {"width": [0.08, 0.2], "depth": [0.02, 0.05], "length": [2.0, 6.0]},
    },
)
def build_hex_nut(params: HexNutParams) -> Part:
    """Build the nominal hexagon nut.

    Regions: top and bottom (end faces), flats (the six sides), chamfer (the cone surfaces
    at both ends), bore.

    Args:
        params: validated dimensions.

    Returns:
        The Part, mm, bore along Z, bounding box centred on the origin, no notch.
    """
    points, labels = _chamfer_body(params)
    body = revolve(points, labels, params.segments)
    hexagon = regular_polygon(params.across_corners / 2, 6)
    block = prism(hexagon, np.array([-1.0, params.height + 1.0]), FLATS, BOTTOM, TOP)
    solid = combine(body, block, "intersection")
    return finish_part(solid, REGIONS, "hex_nut", params.model_dump())
