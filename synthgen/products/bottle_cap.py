"""bottle_cap: the founding method's cap, a hollow semi-capsule with a notch.

A cylindrical skirt topped by a spherical dome (a hemisphere at most), hollowed by an inner
cavity offset by the wall thickness and open at the bottom, so the rim is an annulus. A
rectangular slot runs through the skirt wall from the rim upward, centred on +X.

Frame: mm, +Z up (the dome on top), centre of the bounding box at the origin.
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
    arc_steps,
    combine,
    finish_part,
    grid_levels,
    revolve,
    slot_cutter,
    slot_notch,
    uniform_levels,
)

REGIONS = ("cap_top", "skirt", "rim", "inner", "notch")
CAP_TOP, SKIRT, RIM, INNER, NOTCH = range(len(REGIONS))
ROW_MM = 1.5  # target row height of the skirt, so a notch cut stays local
DOME_STEPS_PER_QUARTER = 16


class BottleCapParams(StrictModel):
    """Dimensions of a bottle cap (mm unless stated)."""

    outer_diameter: float = Field(30.0, ge=8.0, le=150.0, description="outer diameter (mm)")
    skirt_height: float = Field(
        12.0, ge=2.0, le=100.0, description="height of the cylindrical skirt, rim to dome (mm)"
    )
    dome_height: float = Field(
        15.0,
        ge=0.5,
        le=75.0,
        description="height of the spherical dome above the skirt (mm); outer_diameter / 2 "
        "makes a hemisphere",
    )
    wall_thickness: float = Field(1.5, ge=0.3, le=10.0, description="wall thickness (mm)")
    notch_length: float = Field(
        6.0, ge=0.5, le=90.0, description="length of the slot from the rim upward (mm)"
    )
    notch_width: float = Field(3.0, ge=0.3, le=40.0, description="width of the slot (mm)")
    segments: int = Field(96, ge=24, le=256, description="facets around the axis (count)")

    @model_validator(mode="after")
    def _check(self) -> BottleCapParams:
        radius = self.outer_diameter / 2
        if self.dome_height > radius:
            raise ValueError(
                f"dome_height ({self.dome_height} mm) must not exceed outer_diameter / 2 "
                f"({radius} mm): the dome is at most a hemisphere"
            )
        if self.wall_thickness > self.outer_diameter / 4:
            raise ValueError(
                f"wall_thickness ({self.wall_thickness} mm) must be at most outer_diameter / 4 "
                f"({self.outer_diameter / 4} mm)"
            )
        inner_height = _dome(self)[2]
        if self.notch_length > inner_height - 0.5:
            raise ValueError(
                f"notch_length ({self.notch_length} mm) must be at least 0.5 mm less than the "
                f"inner skirt height ({inner_height:.3f} mm, set by skirt_height, dome_height, "
                "wall_thickness and outer_diameter)"
            )
        inner_diameter = self.outer_diameter - 2 * self.wall_thickness
        if self.notch_width > inner_diameter / 2:
            raise ValueError(
                f"notch_width ({self.notch_width} mm) must be at most half the inner diameter "
                f"(outer_diameter - 2 * wall_thickness) / 2 = {inner_diameter / 2} mm"
            )
        return self


def _dome(p: BottleCapParams) -> tuple[float, float, float]:
    """The dome's sphere radius (mm), centre height (mm) and inner skirt height (mm).

    The inner skirt height is where the inner sphere (radius reduced by the wall thickness,
    same centre) meets the inner cylinder; below it the cavity is a plain cylinder.
    """
    r, h, d, t = p.outer_diameter / 2, p.skirt_height, p.dome_height, p.wall_thickness
    sphere = (r * r + d * d) / (2 * d)
    centre = h + d - sphere
    inner = centre + math.sqrt(max((sphere - t) ** 2 - (r - t) ** 2, 0.0))
    return sphere, centre, inner


def _shell(p: BottleCapParams) -> tuple[np.ndarray, np.ndarray, float]:
    """The revolved profile of the hollow cap and its skirt row height (mm)."""
    r, h, t = p.outer_diameter / 2, p.skirt_height, p.wall_thickness
    sphere, centre, inner_height = _dome(p)
    top = h + p.dome_height
    levels = uniform_levels(0.0, h, ROW_MM)
    row = h / (len(levels) - 1)
    skirt_angle = math.degrees(math.atan2(h - centre, r))
    inner_angle = math.degrees(math.atan2(inner_height - centre, r - t))
    profile = Profile(0.0, top)
    profile.arc(
        (0.0, centre),
        sphere,
        skirt_angle,
        (r, h),
        CAP_TOP,
        arc_steps(90 - skirt_angle, DOME_STEPS_PER_QUARTER),
    )
    profile.vertical(r, levels[::-1][1:], SKIRT)
    profile.line(r - t, 0.0, RIM)
    profile.vertical(r - t, grid_levels(0.0, row, inner_height), INNER)
    profile.arc(
        (0.0, centre),
        sphere - t,
        90.0,
        (0.0, top - t),
        INNER,
        arc_steps(90 - inner_angle, DOME_STEPS_PER_QUARTER),
    )
    points, labels = profile.close(INNER)
    return points, labels, row


@register_product(
    "bottle_cap", BottleCapParams, "hollow semi-capsule bottle cap with a slot in the skirt"
)
def build_bottle_cap(params: BottleCapParams) -> Part:
    """Build the nominal bottle cap.

    Regions: cap_top (outer dome), skirt (outer cylinder), rim (bottom annulus), inner (the
    cavity's wall and ceiling), notch (the slot's side walls and closed end).

    Args:
        params: validated dimensions.

    Returns:
        The Part, mm, +Z up, bounding box centred on the origin, with `notch` set: open end
        at the rim on +X, running up +Z, cut toward -X.
    """
    points, labels, row = _shell(params)
    shell = revolve(points, labels, params.segments)
    r, t, w = params.outer_diameter / 2, params.wall_thickness, params.notch_width
    levels = np.concatenate([[-1.0], grid_levels(0.0, row, params.notch_length)])
    cutter = slot_cutter(0.5 * (r - t), r + 1.0, w, levels, NOTCH)
    solid = combine(shell, cutter, "difference")
    # The slot's inner edge lies on the faceted inner wall, a little beyond r - t.
    apothem = (r - t) * math.cos(math.pi / params.segments)
    depth = r - math.sqrt(apothem**2 - (w / 2) ** 2)
    notch = slot_notch(np.array([r, 0.0, 0.0]), params.notch_length, w, depth, "notch_length")
    return finish_part(solid, REGIONS, "bottle_cap", params.model_dump(), notch)
